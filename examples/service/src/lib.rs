//! An HTTP service on axum embedding one durable userops store, shared by its threads with
//! [`Concurrency::Replicas`]: profile, quote, consent and balance lookups answer from the
//! published state and never wait for an ingest, a commit, their journal commit, an
//! automation run or a snapshot (see [`userops::shared`] for what a read may see).
//!
//! Every endpoint takes and returns JSON; a body is the named arguments of the engine method
//! of the same name (the Python `Engine`'s keyword arguments):
//!
//! | endpoint            | method          | kind  |
//! |---------------------|-----------------|-------|
//! | `POST /ingest`      | `ingest` (the body is the event) | write |
//! | `POST /profile`     | `profile`       | read  |
//! | `POST /quote`       | `quote`         | read  |
//! | `POST /commit`      | `commit`        | write |
//! | `POST /consent`     | `consent`       | read  |
//! | `PUT /consent`      | `set_consent`   | write |
//! | `POST /balance`     | `balance`       | read  |
//! | `POST /call/{method}` | any method (operators: `create_program`, `add_promotion`, `run_automation`, `stats`, ...) | by method |
//! | `POST /snapshot`    | a store snapshot, written beside the live journal | -     |
//! | `GET /health`       | the journal's last and durable sequence numbers | - |
//!
//! A refused call answers with the engine's error report (`{"code", "status", "message",
//! "field"}`) and an HTTP status by its kind: 400 for bad input, 404 for an unknown user or
//! key, 409 for a conflict (a reused key, points short, a budget or limit reached), 500 for
//! storage and internal errors.
//!
//! Reads run on the async workers (they take no lock a writer holds); writes, long reads
//! (`run_automation` plans, analyses) and snapshots run on tokio's blocking pool, so that a
//! write waiting for its journal commit never holds a worker that reads need.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use userops::shared::{Concurrency, Route};
use userops::{Command, Error, ErrorCode};
use userops_store::{Durability, Store, StoreError, StoreOptions};

/// Open the durable store a service embeds: [`Concurrency::Replicas`] and group commit
/// (`durability`: `"every"` or `"group"`).
///
/// # Errors
///
/// `invalid_argument` for an unknown `durability`; then as [`StoreOptions::open`].
pub fn open_store(path: &std::path::Path, durability: &str) -> Result<Store, StoreError> {
    StoreOptions::new()
        .durability(durability.parse::<Durability>()?)
        .concurrency(Concurrency::Replicas)
        .open(path)
}

/// The routes, over one store shared by every request.
pub fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ingest", post(ingest))
        .route("/profile", post(|s, b| call(s, "profile", b)))
        .route("/quote", post(|s, b| call(s, "quote", b)))
        .route("/commit", post(|s, b| call(s, "commit", b)))
        .route(
            "/consent",
            post(|s, b| call(s, "consent", b)).put(|s, b| call(s, "set_consent", b)),
        )
        .route("/balance", post(|s, b| call(s, "balance", b)))
        .route("/call/{method}", post(call_any))
        .route("/snapshot", post(snapshot))
        .with_state(store)
}

/// Serve `router(store)` on `addr` until `shutdown` resolves; the bound address is sent to
/// `bound` first (useful with port 0).
pub async fn serve(
    store: Arc<Store>,
    addr: SocketAddr,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    bound(listener.local_addr()?);
    axum::serve(listener, router(store))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A JSON answer with its status.
struct Json(StatusCode, String);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        (
            self.0,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.1,
        )
            .into_response()
    }
}

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::NotFound | ErrorCode::UnknownAccount | ErrorCode::UnknownMethod => {
            StatusCode::NOT_FOUND
        }
        ErrorCode::DuplicateKey
        | ErrorCode::LedgerDuplicateKey
        | ErrorCode::InsufficientPoints
        | ErrorCode::LimitReached
        | ErrorCode::NotEligible
        | ErrorCode::NotPending
        | ErrorCode::BudgetExhausted
        | ErrorCode::PromotionLimitReached
        | ErrorCode::CouponUnusable => StatusCode::CONFLICT,
        ErrorCode::Storage | ErrorCode::Corrupt | ErrorCode::Internal => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

fn refused(e: Error) -> Json {
    let report = serde_json::to_string(&e.to_report()).unwrap_or_else(|_| "{}".into());
    Json(status_of(e.code()), report)
}

fn answer(out: Result<userops::Output, Error>) -> Json {
    match out.and_then(|o| serde_json::to_string(&o).map_err(|e| Error::Internal(e.to_string()))) {
        Ok(body) => Json(StatusCode::OK, body),
        Err(e) => refused(e),
    }
}

/// Run a command where it belongs: a short read here, on the async worker (it never waits
/// for a writer); a write or a long read on the blocking pool.
async fn run(store: Arc<Store>, command: Command) -> Json {
    if Route::of(&command) == Route::Online {
        return answer(store.execute(command).map_err(Error::from));
    }
    match tokio::task::spawn_blocking(move || store.execute(command).map_err(Error::from)).await {
        Ok(out) => answer(out),
        Err(e) => refused(Error::Internal(format!("the call did not finish: {e}"))),
    }
}

async fn call(State(store): State<Arc<Store>>, method: &'static str, body: String) -> Json {
    match Command::from_call(method, &body) {
        Ok(command) => run(store, command).await,
        Err(e) => refused(e),
    }
}

async fn call_any(
    State(store): State<Arc<Store>>,
    Path(method): Path<String>,
    body: String,
) -> Json {
    let body = if body.trim().is_empty() { "{}" } else { &body };
    match Command::from_call(&method, body) {
        Ok(command) => run(store, command).await,
        Err(e) => refused(e),
    }
}

async fn ingest(State(store): State<Arc<Store>>, body: String) -> Json {
    match userops::Event::from_json(&body) {
        Ok(event) => run(store, Command::ingest(event)).await,
        Err(e) => refused(e),
    }
}

async fn snapshot(State(store): State<Arc<Store>>) -> Json {
    match tokio::task::spawn_blocking(move || store.snapshot()).await {
        Ok(Ok(())) => Json(StatusCode::OK, r#"{"snapshot": true}"#.into()),
        Ok(Err(e)) => refused(e.into()),
        Err(e) => refused(Error::Internal(format!("the snapshot did not finish: {e}"))),
    }
}

async fn health(State(store): State<Arc<Store>>) -> Json {
    Json(
        StatusCode::OK,
        format!(
            r#"{{"ok": true, "last_seq": {}, "durable_seq": {}}}"#,
            store.last_seq(),
            store.durable_seq()
        ),
    )
}
