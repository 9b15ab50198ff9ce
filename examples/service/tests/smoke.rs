//! The service end to end on loopback: every endpoint once, errors with their statuses, a
//! read answering while a write holds the store's write lock, and a restart that finds what
//! was acknowledged.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

/// One HTTP/1.1 request on a fresh connection: (status, body as JSON).
fn http(addr: SocketAddr, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status: u16 = raw[9..12].parse().unwrap();
    let (_, payload) = raw.split_once("\r\n\r\n").unwrap();
    (
        status,
        serde_json::from_str(payload).unwrap_or(Value::String(payload.into())),
    )
}

/// A service on a port of its own, on its own runtime, until the guard is dropped.
struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap();
    }
}

fn start(store: Arc<userops_store::Store>) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(userops_service::serve(
            store,
            "127.0.0.1:0".parse().unwrap(),
            move |a| tx.send(a).unwrap(),
            async {
                let _ = stopped.await;
            },
        ))
        .unwrap();
    });
    Running {
        addr: rx.recv().unwrap(),
        stop: Some(stop),
        thread: Some(thread),
    }
}

fn order(key: &str, member: &str, amount: &str) -> Value {
    json!({"kind": "order", "key": key, "time": "2026-03-01T02:00:00Z",
           "source": {"platform": "app", "program": "b"},
           "user": {"kind": "member_no", "value": member},
           "order_id": key, "amount": amount,
           "lines": [{"sku": "s", "category": "x", "price": amount, "qty": 1}]})
}

#[test]
fn every_endpoint_answers_and_a_restart_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.db");
    let m1 = json!({"kind": "member_no", "value": "M1"});
    let quote;
    {
        let store = Arc::new(userops_service::open_store(&path, "every").unwrap());
        let svc = start(store.clone());
        let a = svc.addr;
        assert_eq!(http(a, "GET", "/health", &Value::Null).0, 200);
        let (s, _) = http(
            a,
            "POST",
            "/call/create_program",
            &json!({"program": {"id": "b", "earn": {"points_per_unit": "1"}}}),
        );
        assert_eq!(s, 200);
        let (s, _) = http(
            a,
            "POST",
            "/call/add_promotion",
            &json!({"promotion": {"id": "p300", "action":
                {"type": "threshold_discount", "threshold": "300", "off": "50"}}}),
        );
        assert_eq!(s, 200);

        let (s, receipt) = http(a, "POST", "/ingest", &order("o1", "M1", "350"));
        assert_eq!(s, 200, "{receipt}");
        assert_eq!(receipt["duplicate"], false);
        let (s, again) = http(a, "POST", "/ingest", &order("o1", "M1", "350"));
        assert_eq!((s, &again["duplicate"]), (200, &json!(true)));

        let (s, profile) = http(a, "POST", "/profile", &json!({"user": m1}));
        assert_eq!(s, 200, "{profile}");
        assert_eq!(profile["oneid"], receipt["oneid"], "{profile}");
        let (s, balance) = http(a, "POST", "/balance", &json!({"user": m1, "program": "b"}));
        assert_eq!((s, balance), (200, json!(350)));

        let cart = json!({"time": "2026-03-01T02:00:00Z", "channel": "app",
                          "lines": [{"sku": "s", "category": "x", "price": "320.00", "qty": 1}]});
        let (s, q) = http(a, "POST", "/quote", &json!({"cart": cart, "user": m1}));
        assert_eq!(s, 200, "{q}");
        assert_eq!(q["total"], "270.00", "{q}");
        let (s, c) = http(a, "POST", "/commit", &json!({"quote": q, "key": "order-9"}));
        assert_eq!(s, 200, "{c}");
        assert_eq!(c["state"], "committed", "{c}");
        quote = q;

        let consent = json!({"user": m1, "channel": "sms", "purpose": "marketing"});
        let (s, before) = http(a, "POST", "/consent", &consent);
        assert_eq!((s, &before["granted"]), (200, &json!(false)), "{before}");
        let mut set = consent.clone();
        set["granted"] = json!(true);
        set["time"] = json!("2026-03-01T03:00:00Z");
        set["actor"] = json!("checkout");
        assert_eq!(http(a, "PUT", "/consent", &set).0, 200);
        let (_, after) = http(a, "POST", "/consent", &consent);
        assert_eq!(after["granted"], true, "{after}");

        // Errors: typed, with a status by kind, and nothing changed.
        let (s, e) = http(
            a,
            "POST",
            "/profile",
            &json!({"user": {"kind": "member_no", "value": "nobody"}}),
        );
        assert_eq!((s, &e["code"]), (404, &json!("not_found")), "{e}");
        let (s, e) = http(a, "POST", "/ingest", &json!({"kind": "order"}));
        assert_eq!((s, &e["code"]), (400, &json!("invalid_event")), "{e}");
        let (s, e) = http(a, "POST", "/quote", &json!({"cart": {"lines": "no"}}));
        assert_eq!(s, 400, "{e}");
        let (s, e) = http(a, "POST", "/call/teleport", &Value::Null);
        assert_eq!((s, &e["code"]), (404, &json!("unknown_method")), "{e}");
        let mut reused = order("o1", "M1", "999");
        reused["order_id"] = json!("o1");
        let (s, e) = http(a, "POST", "/ingest", &reused);
        assert_eq!((s, &e["code"]), (409, &json!("duplicate_key")), "{e}");

        // A read answers while another thread holds the write lock (a write in progress).
        {
            let writer = store.shared().write().unwrap();
            let (s, b) = http(a, "POST", "/balance", &json!({"user": m1, "program": "b"}));
            assert_eq!((s, b), (200, json!(350)));
            drop(writer);
        }

        let (s, snap) = http(a, "POST", "/snapshot", &Value::Null);
        assert_eq!(s, 200, "{snap}");
        let (_, stats) = http(a, "POST", "/call/stats", &Value::Null);
        assert_eq!(stats["events"], 1, "{stats}");
    }
    // Restart on the same file: every acknowledged write is there.
    let store = Arc::new(userops_service::open_store(&path, "every").unwrap());
    let svc = start(store);
    let (_, balance) = http(
        svc.addr,
        "POST",
        "/balance",
        &json!({"user": m1, "program": "b"}),
    );
    assert_eq!(balance, json!(350));
    let (s, c) = http(
        svc.addr,
        "POST",
        "/commit",
        &json!({"quote": quote, "key": "order-9"}),
    );
    assert_eq!((s, &c["duplicate"]), (200, &json!(true)), "{c}");
    let (_, usage) = http(
        svc.addr,
        "POST",
        "/call/promotion_usage",
        &json!({"id": "p300"}),
    );
    assert_eq!(usage["orders"], 1, "{usage}");
}
