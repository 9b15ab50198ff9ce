//! Helpers shared by the engine-level campaigns tests (`engine_tests`, `wired_tests`): calls
//! through the JSON command surface and the events they ingest.

use serde_json::{json, Value};

use crate::{Engine, Error};

/// The time the tests' carts and runs happen at.
pub(super) const T: &str = "2026-03-02T10:00:00+08:00";

pub(super) fn call(e: &mut Engine, method: &str, args: Value) -> Result<Value, Error> {
    e.call_json(method, &args.to_string())
        .map(|s| serde_json::from_str(&s).unwrap())
}

pub(super) fn ok(e: &mut Engine, method: &str, args: Value) -> Value {
    call(e, method, args).unwrap_or_else(|err| panic!("{method}: {err}"))
}

pub(super) fn ingest(e: &mut Engine, v: Value) {
    e.ingest_json(&v.to_string()).unwrap();
}

pub(super) fn member(n: &str) -> Value {
    json!({"kind": "member_no", "value": n})
}

/// A one-line cart at [`T`].
pub(super) fn cart(price: &str) -> Value {
    json!({"time": T, "channel": "app",
        "lines": [{"sku": "a", "category": "x", "price": price, "qty": 1}]})
}
