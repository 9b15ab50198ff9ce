//! The `userops._native` extension module. It only converts and delegates: every call is a
//! method name plus JSON arguments handed to [`userops::Engine::call_json`]; the Python package
//! (`python/userops`) builds the JSON and raises the typed exceptions.

mod analytics;
mod models;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use pyo3::prelude::*;
use userops::identity::{BatchColumns, IdentityGraph, IdentityRules};
use userops::Error;
use userops_store::EngineHandle;

// ---- native modules: one `mod` line each; a module adds its own `#[pymethods] impl
//      NativeEngine` block (the `multiple-pymethods` feature) and a `register` function ----
pub mod tables;

mod ingest;

pub mod columns;

mod identity;

mod tags;

mod outputs;

mod parts;

/// The native engine handle: an in-memory engine or a durable store (`NativeEngine.open`).
/// Shared by threads without a lock of its own: the handle's [`userops::shared::SharedEngine`]
/// lets reads run together (and, with `concurrency="replicas"`, never wait for a write).
///
/// Native modules add methods in their own `#[pymethods] impl NativeEngine` block; run the
/// engine call inside `py.detach` (every call releases the GIL).
#[pyclass(module = "userops._native", name = "NativeEngine", frozen)]
pub struct NativeEngine {
    pub(crate) inner: EngineHandle,
}

/// `(True, output_json)` on success, `(False, error_report_json)` on failure.
type Reply = (bool, String);

fn reply(result: Result<String, Error>) -> Reply {
    match result {
        Ok(json) => (true, json),
        Err(e) => (false, report(&e)),
    }
}

fn report(e: &Error) -> String {
    serde_json::to_string(&e.to_report()).unwrap_or_else(|_| {
        r#"{"code":"internal","status":99,"message":"error report not serializable"}"#.to_owned()
    })
}

impl NativeEngine {
    /// Run `f` on the handle (memory or durable) without the GIL, turning a panic into an
    /// `internal` error.
    fn with_handle(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&EngineHandle) -> Result<String, Error> + Send,
    ) -> Reply {
        py.detach(|| {
            let out = catch_unwind(AssertUnwindSafe(|| f(&self.inner)));
            reply(out.unwrap_or_else(|_| Err(Error::Internal("panic inside the engine".into()))))
        })
    }
}

#[pymethods]
impl NativeEngine {
    /// An empty in-memory engine: `(engine, "")`, or `(None, error_report_json)` for an
    /// unknown `concurrency`.
    #[staticmethod]
    #[pyo3(signature = (concurrency="lock"))]
    fn memory(concurrency: &str) -> (Option<NativeEngine>, String) {
        match EngineHandle::memory(concurrency) {
            Ok(h) => (Some(NativeEngine { inner: h }), String::new()),
            Err(e) => (None, report(&e)),
        }
    }

    /// Open a durable engine: `(engine, "")`, or `(None, error_report_json)`.
    #[staticmethod]
    #[pyo3(signature = (path, durability, concurrency="lock"))]
    fn open(
        py: Python<'_>,
        path: &str,
        durability: &str,
        concurrency: &str,
    ) -> (Option<NativeEngine>, String) {
        let (path, durability, concurrency) = (
            path.to_owned(),
            durability.to_owned(),
            concurrency.to_owned(),
        );
        py.detach(|| {
            let opened = catch_unwind(|| EngineHandle::open_with(&path, &durability, &concurrency))
                .unwrap_or_else(|_| Err(Error::Internal("panic inside the engine".into())));
            match opened {
                Ok(h) => (Some(NativeEngine { inner: h }), String::new()),
                Err(e) => (None, report(&e)),
            }
        })
    }

    /// Commit pending commands of a durable engine (a no-op in memory).
    fn flush(&self, py: Python<'_>) -> Reply {
        self.with_handle(py, |h| h.flush().map(|()| "null".to_owned()))
    }

    /// Execute `method` with JSON `args`; see the module docs for the reply.
    fn call(&self, py: Python<'_>, method: &str, args_json: &str) -> Reply {
        let (method, args) = (method.to_owned(), args_json.to_owned());
        self.with_handle(py, move |h| h.call_json(&method, &args))
    }

    /// Ingest one event given as JSON text; the reply holds the receipt.
    fn ingest_json(&self, py: Python<'_>, event_json: &str) -> Reply {
        let event = event_json.to_owned();
        self.with_handle(py, move |h| h.ingest_json(&event))
    }

    /// A fingerprint of the whole engine state (its snapshot bytes): equal fingerprints, same
    /// state. The tests compare it before and after a refused call (nothing may change).
    fn state_fingerprint(&self, py: Python<'_>) -> u64 {
        py.detach(|| userops::util::fingerprint(&self.inner.engine().snapshot()))
    }
}

/// A standalone identity graph (no engine around it): calls by method name with JSON arguments.
#[pyclass(module = "userops._native", name = "NativeIdentityGraph")]
struct NativeIdentityGraph {
    inner: Mutex<IdentityGraph>,
}

/// `(oneids, rejected_json)`: one OneID (or `None`) per row, and the rejected rows as JSON.
type BatchReply = (Vec<Option<u64>>, String);

impl NativeIdentityGraph {
    fn with_graph<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut IdentityGraph) -> Result<T, Error> + Send,
    ) -> Result<T, String> {
        py.detach(|| {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let out = catch_unwind(AssertUnwindSafe(|| f(&mut g)));
            out.unwrap_or_else(|_| Err(Error::Internal("panic inside the identity graph".into())))
                .map_err(|e| report(&e))
        })
    }
}

#[pymethods]
impl NativeIdentityGraph {
    /// A new graph under the default rules (change them with the `set_rules` call).
    #[new]
    fn new() -> Self {
        NativeIdentityGraph {
            inner: Mutex::new(IdentityGraph::with_rules(IdentityRules::default())),
        }
    }

    /// Execute `method` with JSON `args`: `(True, output_json)` or `(False, error_json)`.
    fn call(&self, py: Python<'_>, method: &str, args_json: &str) -> Reply {
        let (method, args) = (method.to_owned(), args_json.to_owned());
        match self.with_graph(py, move |g| g.call_json(&method, &args)) {
            Ok(out) => (true, out),
            Err(e) => (false, e),
        }
    }

    /// Resolve identifier rows given as columns; `(True, (oneids, rejected_json))` or
    /// `(False, error_json)`.
    fn resolve_columns(
        &self,
        py: Python<'_>,
        record_id: Vec<String>,
        kind: Vec<String>,
        value: Vec<String>,
        source: Vec<String>,
        ts: Vec<i64>,
    ) -> (bool, Option<BatchReply>, String) {
        let out = self.with_graph(py, move |g| {
            let r = g.resolve_batch(&BatchColumns {
                record_id: &record_id,
                kind: &kind,
                value: &value,
                source: &source,
                ts: &ts,
            })?;
            let rejected =
                serde_json::to_string(&r.rejected).map_err(|e| Error::Internal(e.to_string()))?;
            Ok((r.oneids.iter().map(|o| o.map(|o| o.0)).collect(), rejected))
        });
        match out {
            Ok(reply) => (true, Some(reply), String::new()),
            Err(e) => (false, None, e),
        }
    }
}

#[pymodule]
#[pyo3(name = "_native")]
fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeEngine>()?;
    m.add_class::<NativeIdentityGraph>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Every error code the engine reports, with its C status number: the package maps each to
    // an exception class, and its tests fail for a code that has none.
    let codes: Vec<(&str, i32)> = userops::ErrorCode::ALL
        .iter()
        .map(|c| (c.name(), *c as i32))
        .collect();
    m.add("error_codes", codes)?;
    // ---- native modules: one registration line each ----
    tables::register(m)?;
    // ---- module table functions: one `register` call each ----
    analytics::register(m)?;

    models::register(m)?;

    parts::register(m)?;

    outputs::register(m)?;
    Ok(())
}
