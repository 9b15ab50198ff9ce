//! The `userops._native` extension module. It only converts and delegates: every call is a
//! method name plus JSON arguments handed to [`userops::Engine::call_json`]; the Python package
//! (`python/userops`) builds the JSON and raises the typed exceptions.

mod models;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use pyo3::prelude::*;
use userops::{Engine, Error};

/// The native engine handle. Internally synchronized: one engine may be shared by threads.
#[pyclass(module = "userops._native", name = "NativeEngine")]
struct NativeEngine {
    inner: Mutex<Engine>,
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
    /// Run `f` on the engine without the GIL, turning a panic into an `internal` error.
    fn with_engine(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Engine) -> Result<String, Error> + Send,
    ) -> Reply {
        py.detach(|| {
            let mut engine = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let out = catch_unwind(AssertUnwindSafe(|| f(&mut engine)));
            reply(out.unwrap_or_else(|_| Err(Error::Internal("panic inside the engine".into()))))
        })
    }
}

#[pymethods]
impl NativeEngine {
    #[new]
    fn new() -> Self {
        NativeEngine {
            inner: Mutex::new(Engine::default()),
        }
    }

    /// Execute `method` with JSON `args`; see the module docs for the reply.
    fn call(&self, py: Python<'_>, method: &str, args_json: &str) -> Reply {
        let (method, args) = (method.to_owned(), args_json.to_owned());
        self.with_engine(py, move |e| e.call_json(&method, &args))
    }

    /// Ingest one event given as JSON text; the reply holds the receipt.
    fn ingest_json(&self, py: Python<'_>, event_json: &str) -> Reply {
        let event = event_json.to_owned();
        self.with_engine(py, move |e| {
            let receipt = e.ingest_json(&event)?;
            serde_json::to_string(&receipt).map_err(|e| Error::Internal(e.to_string()))
        })
    }
}

#[pymodule]
#[pyo3(name = "_native")]
fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeEngine>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    models::register(m)?;
    Ok(())
}
