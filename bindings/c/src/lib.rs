//! The C ABI of userops.
//!
//! Modeled on SQLite and regex-capi: opaque handles, explicit free functions, status codes plus
//! a thread-local error message. Every entry point catches panics, so none crosses the boundary;
//! null pointers and invalid UTF-8 are reported as errors. The commonest calls are typed
//! functions (`typed.rs`, `quote.rs`); every other call crosses as JSON (`userops_engine_call`);
//! bulk results cross as Arrow C Data Interface arrays (`arrow.rs`).
//!
//! Ownership: a `char *` written to an out-parameter belongs to the caller and must be freed with
//! `userops_string_free`; a `const char *` returned by the library (error message, version) is
//! owned by the library; a handle is freed with its own `userops_*_free`; an exported Arrow array
//! and schema are released by the consumer through their `release` callbacks.
//!
//! Thread safety: any thread may call any function on a `userops_engine` at any time. Writes run
//! one at a time, in journal order; a read sees a whole state holding every write that returned
//! before it started. With the default concurrency (`"lock"`, one copy of the state) reads run
//! together but wait for a write in progress; an engine made with `"replicas"`
//! (`userops_engine_new_with`, `userops_engine_open_with`) never makes a read wait for a write
//! or its commit, and runs long analyses on a copy of their own (three copies of the state; see
//! the README's "Threads" section). Audience and quote handles are immutable once made and may
//! be read from several threads. The last error is per thread. Freeing a handle while another
//! thread uses it is undefined behaviour.
#![expect(
    non_camel_case_types,
    reason = "C type names (`userops_engine`, ...) are the ABI's own spelling"
)]

mod arrow;
mod quote;
mod typed;

pub use arrow::*;
pub use quote::*;
pub use typed::*;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{Mutex, OnceLock};

use userops_core::{Command, Error, ErrorCode, Output};
use userops_store::EngineHandle;

/// An engine: the unified user pool. Create with `userops_engine_new` (in memory) or
/// `userops_engine_open` (durable), free with `userops_engine_free`.
pub struct userops_engine {
    inner: EngineHandle,
}

/// Status codes. `UOPS_OK` (0) is success; every other value is an error, with a message from
/// `userops_last_error_message`. The numbers are stable.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum userops_status {
    /// Success.
    UOPS_OK = 0,
    /// A malformed argument (bad JSON, wrong shape, a bad field).
    UOPS_INVALID_ARGUMENT = 1,
    /// An invalid identifier (bad phone, email, unknown kind).
    UOPS_INVALID_IDENTIFIER = 2,
    /// A malformed event.
    UOPS_INVALID_EVENT = 3,
    /// An unknown method name.
    UOPS_UNKNOWN_METHOD = 4,
    /// An idempotency key reused for different content.
    UOPS_DUPLICATE_KEY = 5,
    /// Something referenced does not exist.
    UOPS_NOT_FOUND = 6,
    /// A number out of range or overflowing.
    UOPS_OUT_OF_RANGE = 7,
    /// An order id already ingested from its source program under another idempotency key.
    UOPS_DUPLICATE_ORDER = 8,
    /// A model fit that did not converge.
    UOPS_NOT_CONVERGED = 70,
    /// A promotion budget cannot cover a commit.
    UOPS_BUDGET_EXHAUSTED = 80,
    /// A promotion limit or coupon stock is reached.
    UOPS_PROMOTION_LIMIT_REACHED = 81,
    /// A coupon cannot be used in its state, window or on the cart.
    UOPS_COUPON_UNUSABLE = 82,
    /// The durable store failed: I/O, a directory, a read-only or foreign file, a newer schema.
    UOPS_STORAGE = 90,
    /// The durable store holds a corrupt record (the message names its sequence number).
    UOPS_CORRUPT = 91,
    /// A required pointer argument was NULL.
    UOPS_NULL_POINTER = 20,
    /// A string argument was not valid UTF-8.
    UOPS_INVALID_UTF8 = 21,
    /// A handle that is not live (already freed, or never returned by this library).
    UOPS_INVALID_HANDLE = 22,
    /// An audience expression error (syntax, unknown tag, type mismatch); the message says the
    /// column and suggests the nearest known name.
    UOPS_AUDIENCE_SYNTAX = 40,
    /// Loyalty: a spend above the balance (and overdraft).
    UOPS_INSUFFICIENT_POINTS = 50,
    /// Loyalty: an idempotency key reused for a different ledger write.
    UOPS_LEDGER_DUPLICATE_KEY = 51,
    /// Loyalty: no points account for the member in the program.
    UOPS_UNKNOWN_ACCOUNT = 52,
    /// Loyalty: a zero, negative or overflowing amount.
    UOPS_INVALID_AMOUNT = 53,
    /// Loyalty: an expiry at or before the posting time.
    UOPS_EXPIRY_IN_PAST = 54,
    /// Loyalty: not an open pending earn (or nothing left to refund).
    UOPS_NOT_PENDING = 55,
    /// Loyalty: a benefit or task limit reached.
    UOPS_LIMIT_REACHED = 56,
    /// Loyalty: a benefit the member's tier does not grant.
    UOPS_NOT_ELIGIBLE = 57,
    /// A bug inside userops (a caught panic included).
    UOPS_INTERNAL = 99,
}

fn status_of(code: ErrorCode) -> userops_status {
    match code {
        ErrorCode::Ok => userops_status::UOPS_OK,
        ErrorCode::InvalidArgument => userops_status::UOPS_INVALID_ARGUMENT,
        ErrorCode::InvalidIdentifier => userops_status::UOPS_INVALID_IDENTIFIER,
        ErrorCode::InvalidEvent => userops_status::UOPS_INVALID_EVENT,
        ErrorCode::UnknownMethod => userops_status::UOPS_UNKNOWN_METHOD,
        ErrorCode::DuplicateKey => userops_status::UOPS_DUPLICATE_KEY,
        ErrorCode::NotFound => userops_status::UOPS_NOT_FOUND,
        ErrorCode::OutOfRange => userops_status::UOPS_OUT_OF_RANGE,
        ErrorCode::DuplicateOrder => userops_status::UOPS_DUPLICATE_ORDER,
        ErrorCode::AudienceSyntax => userops_status::UOPS_AUDIENCE_SYNTAX,
        ErrorCode::InsufficientPoints => userops_status::UOPS_INSUFFICIENT_POINTS,
        ErrorCode::LedgerDuplicateKey => userops_status::UOPS_LEDGER_DUPLICATE_KEY,
        ErrorCode::UnknownAccount => userops_status::UOPS_UNKNOWN_ACCOUNT,
        ErrorCode::InvalidAmount => userops_status::UOPS_INVALID_AMOUNT,
        ErrorCode::ExpiryInPast => userops_status::UOPS_EXPIRY_IN_PAST,
        ErrorCode::NotPending => userops_status::UOPS_NOT_PENDING,
        ErrorCode::LimitReached => userops_status::UOPS_LIMIT_REACHED,
        ErrorCode::NotEligible => userops_status::UOPS_NOT_ELIGIBLE,
        ErrorCode::NotConverged => userops_status::UOPS_NOT_CONVERGED,
        ErrorCode::BudgetExhausted => userops_status::UOPS_BUDGET_EXHAUSTED,
        ErrorCode::PromotionLimitReached => userops_status::UOPS_PROMOTION_LIMIT_REACHED,
        ErrorCode::CouponUnusable => userops_status::UOPS_COUPON_UNUSABLE,
        ErrorCode::Storage => userops_status::UOPS_STORAGE,
        ErrorCode::Corrupt => userops_status::UOPS_CORRUPT,
        ErrorCode::Internal => userops_status::UOPS_INTERNAL,
    }
}

thread_local! {
    static LAST_ERROR: RefCell<(i32, CString)> = RefCell::new((0, CString::default()));
    /// The field of the last error, when it names one (`userops_last_error_field`).
    static LAST_FIELD: RefCell<Option<CString>> = const { RefCell::new(None) };
    /// The field of the engine error `engine_error` turned into a message last, with that
    /// message: a `Fail` carries only the status and message, so `set_error` takes the field from
    /// here when the message it reports is that one (and never a stale one from a `Fail` dropped
    /// on the way).
    static PENDING_FIELD: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

fn set_error(status: userops_status, message: &str) -> i32 {
    let msg = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let field = PENDING_FIELD
        .with(|p| p.borrow_mut().take())
        .filter(|(m, _)| m == message)
        .and_then(|(_, f)| CString::new(f.replace('\0', " ")).ok());
    LAST_ERROR.with(|e| *e.borrow_mut() = (status as i32, msg));
    LAST_FIELD.with(|f| *f.borrow_mut() = field);
    status as i32
}

fn clear_error() {
    LAST_ERROR.with(|e| *e.borrow_mut() = (0, CString::default()));
    LAST_FIELD.with(|f| *f.borrow_mut() = None);
    PENDING_FIELD.with(|p| *p.borrow_mut() = None);
}

/// The kinds of handle the library hands out: the registry records each live handle's kind, so
/// that a handle of one kind passed where another is expected (a cast in C) is refused too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandleKind {
    Engine,
    Audience,
    Quote,
}

/// A type the library hands out behind an opaque pointer.
pub(crate) trait Handle: Sized {
    const KIND: HandleKind;
    /// The C type's name, for messages.
    const NAME: &'static str;
}

impl Handle for userops_engine {
    const KIND: HandleKind = HandleKind::Engine;
    const NAME: &'static str = "userops_engine";
}

impl Handle for userops_audience {
    const KIND: HandleKind = HandleKind::Audience;
    const NAME: &'static str = "userops_audience";
}

/// Handles handed out and not yet freed, by address: lets every entry point refuse a freed or
/// foreign pointer instead of reading freed memory.
fn live() -> &'static Mutex<HashMap<usize, HandleKind>> {
    static LIVE: OnceLock<Mutex<HashMap<usize, HandleKind>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

/// Box a value and record it as a live handle of its kind.
pub(crate) fn register<T: Handle>(value: T) -> *mut T {
    let p = Box::into_raw(Box::new(value));
    live()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(p as usize, T::KIND);
    p
}

/// The value behind a handle, if it is a live handle of this kind.
pub(crate) fn handle_ref<'a, T: Handle>(p: *const T) -> Result<&'a T, Fail> {
    if p.is_null() {
        return Err((
            userops_status::UOPS_NULL_POINTER,
            format!("{} is NULL", T::NAME),
        ));
    }
    let kind = live()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(p as usize))
        .copied();
    if kind != Some(T::KIND) {
        return Err((
            userops_status::UOPS_INVALID_HANDLE,
            format!(
                "not a live {} handle (freed, or not returned by userops)",
                T::NAME
            ),
        ));
    }
    // SAFETY: a live handle of this kind points to a Box<T> not yet freed.
    Ok(unsafe { &*p })
}

/// The one release path of every handle: NULL is a no-op; a pointer that is not a live handle
/// of this kind (a double free, a foreign pointer, another kind) is left alone and reported as
/// `UOPS_INVALID_HANDLE` in the thread's last error.
///
/// # Safety
/// No other thread may be using `p` while it is released.
pub(crate) unsafe fn release_handle<T: Handle>(p: *mut T, function: &str) {
    if p.is_null() {
        return;
    }
    let _ = guard(|| {
        let was_live = {
            let mut live = live().lock().unwrap_or_else(|p| p.into_inner());
            match live.get(&(p as usize)) {
                Some(k) if *k == T::KIND => live.remove(&(p as usize)).is_some(),
                _ => false,
            }
        };
        if !was_live {
            return Err((
                userops_status::UOPS_INVALID_HANDLE,
                format!("{function}: not a live {} handle (double free?)", T::NAME),
            ));
        }
        // SAFETY: it was live with this kind, so it came from `register::<T>`'s Box::into_raw,
        // and removing it from the registry makes this the only release.
        drop(unsafe { Box::from_raw(p) });
        Ok(())
    });
}

/// An error status and its message.
pub(crate) type Fail = (userops_status, String);

pub(crate) fn null(name: &str) -> Fail {
    (userops_status::UOPS_NULL_POINTER, format!("{name} is NULL"))
}

/// Run an entry point body, turning panics into `UOPS_INTERNAL`.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Fail>) -> i32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            clear_error();
            userops_status::UOPS_OK as i32
        }
        Ok(Err((status, message))) => set_error(status, &message),
        Err(_) => set_error(userops_status::UOPS_INTERNAL, "panic inside userops"),
    }
}

pub(crate) fn engine_error(e: Error) -> Fail {
    let message = e.to_string();
    let field = e.field().filter(|f| !f.is_empty()).map(str::to_owned);
    PENDING_FIELD.with(|p| *p.borrow_mut() = field.map(|f| (message.clone(), f)));
    (status_of(e.code()), message)
}

/// # Safety
/// `s` is null or points to a NUL-terminated string.
pub(crate) unsafe fn read_str<'a>(s: *const c_char, name: &str) -> Result<&'a str, Fail> {
    if s.is_null() {
        return Err((userops_status::UOPS_NULL_POINTER, format!("{name} is NULL")));
    }
    // SAFETY: non-null, and the caller promises NUL termination.
    unsafe { CStr::from_ptr(s) }.to_str().map_err(|e| {
        (
            userops_status::UOPS_INVALID_UTF8,
            format!("{name} is not UTF-8: {e}"),
        )
    })
}

/// Run `f` on the engine behind a live handle (shared by threads: the handle synchronizes).
///
/// # Safety
/// `engine` is null or a pointer; it is only dereferenced when it is a live handle.
pub(crate) unsafe fn with_handle<T>(
    engine: *mut userops_engine,
    f: impl FnOnce(&EngineHandle) -> Result<T, Error>,
) -> Result<T, Fail> {
    let handle = handle_ref(engine)?;
    f(&handle.inner).map_err(engine_error)
}

/// Execute a command on the engine behind a handle (journaled when durable).
///
/// # Safety
/// As [`with_handle`].
pub(crate) unsafe fn execute(
    engine: *mut userops_engine,
    command: Command,
) -> Result<Output, Fail> {
    // SAFETY: forwarded contract.
    unsafe { with_handle(engine, |h| h.execute(command)) }
}

/// An output of another shape than the command's: a bug, reported as `UOPS_INTERNAL`.
pub(crate) fn unexpected(method: &str, output: &Output) -> Fail {
    (
        userops_status::UOPS_INTERNAL,
        format!("{method} returned an unexpected output: {output:?}"),
    )
}

pub(crate) fn write_out(out: *mut *mut c_char, text: String) -> Result<(), Fail> {
    let c = CString::new(text).map_err(|_| {
        (
            userops_status::UOPS_INTERNAL,
            "output holds a NUL byte".to_string(),
        )
    })?;
    // SAFETY: checked non-null by the caller before any work.
    unsafe { *out = c.into_raw() };
    Ok(())
}

pub(crate) fn check_out(out: *mut *mut c_char, name: &str) -> Result<(), Fail> {
    if out.is_null() {
        return Err((userops_status::UOPS_NULL_POINTER, format!("{name} is NULL")));
    }
    // SAFETY: non-null out-parameter; NULL it first so that an error leaves nothing to free.
    unsafe { *out = ptr::null_mut() };
    Ok(())
}

fn register_engine(handle: EngineHandle) -> *mut userops_engine {
    register(userops_engine { inner: handle })
}

/// Create an engine with the default configuration (business time zone +08:00, monthly
/// periods). Returns NULL only if allocation fails. Free with `userops_engine_free`.
#[no_mangle]
pub extern "C" fn userops_engine_new() -> *mut userops_engine {
    catch_unwind(|| register_engine(EngineHandle::default())).unwrap_or(ptr::null_mut())
}

/// Open (or create) a durable engine kept in the SQLite file at `path`: every command that
/// changes state is journaled and committed before the call returns. On success writes the
/// handle to `*engine` (free with `userops_engine_free`, which also closes the file) and
/// returns `UOPS_OK`; on error writes NULL there and returns the status: `UOPS_STORAGE` for a
/// directory, a read-only file, a file that is not a userops store or a newer schema (the
/// file is left untouched), `UOPS_CORRUPT` for a corrupt record (the message names it).
///
/// # Safety
/// `path` is NULL or NUL-terminated; `engine` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_engine_open(
    path: *const c_char,
    engine: *mut *mut userops_engine,
) -> i32 {
    // SAFETY: per this function's contract.
    unsafe {
        make_engine(engine, || {
            EngineHandle::open(read_str(path, "path")?, "every").map_err(engine_error)
        })
    }
}

/// Make an engine into the out-parameter `engine`: NULL there on any error.
///
/// # Safety
/// `engine` is NULL or writable; `make` reads only pointers its caller's contract covers.
unsafe fn make_engine(
    engine: *mut *mut userops_engine,
    make: impl FnOnce() -> Result<EngineHandle, Fail>,
) -> i32 {
    guard(|| {
        if engine.is_null() {
            return Err(null("engine"));
        }
        // SAFETY: non-null out-parameter; NULL it first so that an error leaves nothing.
        unsafe { *engine = ptr::null_mut() };
        let handle = make()?;
        // SAFETY: checked non-null above.
        unsafe { *engine = register_engine(handle) };
        Ok(())
    })
}

/// Create an in-memory engine shared by threads as `concurrency` says: `"lock"` (what
/// `userops_engine_new` makes: one copy of the state, reads wait for a write in progress) or
/// `"replicas"` (reads never wait for writes; three copies). On success writes the handle to
/// `*engine` and returns `UOPS_OK`; `UOPS_INVALID_ARGUMENT` for another string.
///
/// # Safety
/// `concurrency` is NULL or NUL-terminated; `engine` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_engine_new_with(
    concurrency: *const c_char,
    engine: *mut *mut userops_engine,
) -> i32 {
    // SAFETY: per this function's contract.
    unsafe {
        make_engine(engine, || {
            EngineHandle::memory(read_str(concurrency, "concurrency")?).map_err(engine_error)
        })
    }
}

/// `userops_engine_open` with the commit mode and the concurrency: `durability` is `"every"`
/// (each command committed before the call returns) or `"group"` (commands committed in
/// groups of up to 1,000 or every 10 ms: faster, a crash loses the last group);
/// `concurrency` is `"lock"` or `"replicas"` (as `userops_engine_new_with`; with replicas,
/// reads never wait for a write or its commit and snapshots are written in the background).
/// Errors as `userops_engine_open`, and `UOPS_INVALID_ARGUMENT` for an unknown mode.
///
/// # Safety
/// `path`, `durability` and `concurrency` are NULL or NUL-terminated; `engine` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn userops_engine_open_with(
    path: *const c_char,
    durability: *const c_char,
    concurrency: *const c_char,
    engine: *mut *mut userops_engine,
) -> i32 {
    // SAFETY: per this function's contract.
    unsafe {
        make_engine(engine, || {
            EngineHandle::open_with(
                read_str(path, "path")?,
                read_str(durability, "durability")?,
                read_str(concurrency, "concurrency")?,
            )
            .map_err(engine_error)
        })
    }
}

/// Free an engine. NULL is a no-op; freeing a handle twice (or a pointer userops never returned)
/// is detected and ignored, with `UOPS_INVALID_HANDLE` as the thread's last error.
///
/// # Safety
/// No other thread may be using `engine` while it is freed.
#[no_mangle]
pub unsafe extern "C" fn userops_engine_free(engine: *mut userops_engine) {
    // SAFETY: forwarded contract.
    unsafe { release_handle(engine, "userops_engine_free") }
}

/// Ingest one event given as JSON (the wire shape of SPEC §2). On success writes the receipt as
/// JSON to `*receipt_json` (free it with `userops_string_free`) and returns `UOPS_OK`; on error
/// writes NULL there and returns the status. A replayed idempotency key is not an error: the
/// receipt says `"duplicate": true`.
///
/// # Safety
/// `event_json` is NULL or NUL-terminated; `receipt_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_engine_ingest_json(
    engine: *mut userops_engine,
    event_json: *const c_char,
    receipt_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        check_out(receipt_json, "receipt_json")?;
        // SAFETY: per this function's contract.
        let event = unsafe { read_str(event_json, "event_json") }?;
        // SAFETY: with_handle only dereferences live handles.
        let out = unsafe { with_handle(engine, |h| h.ingest_json(event)) }?;
        write_out(receipt_json, out)
    })
}

/// Call any engine method by name with its arguments as a JSON object; the method and argument
/// names are those of the Python `Engine` methods. On success writes the result as JSON to
/// `*result_json` (free with `userops_string_free`).
///
/// # Safety
/// `method` and `args_json` are NULL or NUL-terminated; `result_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_engine_call(
    engine: *mut userops_engine,
    method: *const c_char,
    args_json: *const c_char,
    result_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        check_out(result_json, "result_json")?;
        // SAFETY: per this function's contract.
        let method = unsafe { read_str(method, "method") }?;
        // SAFETY: per this function's contract.
        let args = unsafe { read_str(args_json, "args_json") }?;
        // SAFETY: with_handle only dereferences live handles.
        let out = unsafe { with_handle(engine, |h| h.call_json(method, args)) }?;
        write_out(result_json, out)
    })
}

/// Run a table function without an engine: `method` is `lifecycle`,
/// `active_rate_decomposition`, `funnel`, `cohort_retention` or `attribution`, `args_json` the
/// Python function's keyword arguments with the columns inline (times as ms UTC or RFC 3339 with
/// a zone). On success writes the result as JSON to `*result_json` (free with
/// `userops_string_free`).
///
/// # Safety
/// `method` and `args_json` are NULL or NUL-terminated; `result_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_table_call(
    method: *const c_char,
    args_json: *const c_char,
    result_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        check_out(result_json, "result_json")?;
        // SAFETY: per this function's contract.
        let method = unsafe { read_str(method, "method") }?;
        // SAFETY: per this function's contract.
        let args = unsafe { read_str(args_json, "args_json") }?;
        let out = userops_core::analytics::table_call_json(method, args).map_err(engine_error)?;
        write_out(result_json, out)
    })
}

/// The message of the last error on this thread ("" after a success). Owned by the library;
/// valid until the next userops call on this thread.
#[no_mangle]
pub extern "C" fn userops_last_error_message() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().1.as_ptr())
}

/// The status of the last call on this thread (`UOPS_OK` after a success).
#[no_mangle]
pub extern "C" fn userops_last_error_code() -> i32 {
    LAST_ERROR.with(|e| e.borrow().0)
}

/// Free a string the library returned through an out-parameter. NULL is a no-op.
///
/// # Safety
/// `s` is NULL or a string from this library not freed before.
#[no_mangle]
pub unsafe extern "C" fn userops_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: per this function's contract it came from CString::into_raw.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The field the last error on this thread is about (a path such as `"ids[1]"` or
/// `"cart.lines[0].price"`), or NULL when it names none (and after a success). Owned by the
/// library; valid until the next userops call on this thread.
#[no_mangle]
pub extern "C" fn userops_last_error_field() -> *const c_char {
    LAST_FIELD.with(|f| f.borrow().as_ref().map_or(ptr::null(), |f| f.as_ptr()))
}

/// The stable name of a status, as Python's `UserOpsError.code` spells it: `"ok"`,
/// `"invalid_argument"`, ..., `"internal"` (the enum constant without `UOPS_`, in lower case).
/// NULL for a number that is not a status. Owned by the library, never freed.
#[no_mangle]
pub extern "C" fn userops_status_name(status: i32) -> *const c_char {
    userops_status::from_number(status).map_or(ptr::null(), |s| s.name().as_ptr())
}

impl userops_status {
    /// The status with this number. The C++ and Java tests ask for the name of every status
    /// the header declares, so a status missing here fails them.
    fn from_number(n: i32) -> Option<userops_status> {
        use userops_status::*;
        Some(match n {
            0 => UOPS_OK,
            1 => UOPS_INVALID_ARGUMENT,
            2 => UOPS_INVALID_IDENTIFIER,
            3 => UOPS_INVALID_EVENT,
            4 => UOPS_UNKNOWN_METHOD,
            5 => UOPS_DUPLICATE_KEY,
            6 => UOPS_NOT_FOUND,
            7 => UOPS_OUT_OF_RANGE,
            8 => UOPS_DUPLICATE_ORDER,
            20 => UOPS_NULL_POINTER,
            21 => UOPS_INVALID_UTF8,
            22 => UOPS_INVALID_HANDLE,
            40 => UOPS_AUDIENCE_SYNTAX,
            50 => UOPS_INSUFFICIENT_POINTS,
            51 => UOPS_LEDGER_DUPLICATE_KEY,
            52 => UOPS_UNKNOWN_ACCOUNT,
            53 => UOPS_INVALID_AMOUNT,
            54 => UOPS_EXPIRY_IN_PAST,
            55 => UOPS_NOT_PENDING,
            56 => UOPS_LIMIT_REACHED,
            57 => UOPS_NOT_ELIGIBLE,
            70 => UOPS_NOT_CONVERGED,
            80 => UOPS_BUDGET_EXHAUSTED,
            81 => UOPS_PROMOTION_LIMIT_REACHED,
            82 => UOPS_COUPON_UNUSABLE,
            90 => UOPS_STORAGE,
            91 => UOPS_CORRUPT,
            99 => UOPS_INTERNAL,
            _ => return None,
        })
        .filter(|s| *s as i32 == n)
    }

    /// The stable name (exhaustive: a new status needs one to compile).
    fn name(self) -> &'static CStr {
        use userops_status::*;
        match self {
            UOPS_OK => c"ok",
            UOPS_INVALID_ARGUMENT => c"invalid_argument",
            UOPS_INVALID_IDENTIFIER => c"invalid_identifier",
            UOPS_INVALID_EVENT => c"invalid_event",
            UOPS_UNKNOWN_METHOD => c"unknown_method",
            UOPS_DUPLICATE_KEY => c"duplicate_key",
            UOPS_NOT_FOUND => c"not_found",
            UOPS_OUT_OF_RANGE => c"out_of_range",
            UOPS_DUPLICATE_ORDER => c"duplicate_order",
            UOPS_NOT_CONVERGED => c"not_converged",
            UOPS_BUDGET_EXHAUSTED => c"budget_exhausted",
            UOPS_PROMOTION_LIMIT_REACHED => c"promotion_limit_reached",
            UOPS_COUPON_UNUSABLE => c"coupon_unusable",
            UOPS_STORAGE => c"storage",
            UOPS_CORRUPT => c"corrupt",
            UOPS_NULL_POINTER => c"null_pointer",
            UOPS_INVALID_UTF8 => c"invalid_utf8",
            UOPS_INVALID_HANDLE => c"invalid_handle",
            UOPS_AUDIENCE_SYNTAX => c"audience_syntax",
            UOPS_INSUFFICIENT_POINTS => c"insufficient_points",
            UOPS_LEDGER_DUPLICATE_KEY => c"ledger_duplicate_key",
            UOPS_UNKNOWN_ACCOUNT => c"unknown_account",
            UOPS_INVALID_AMOUNT => c"invalid_amount",
            UOPS_EXPIRY_IN_PAST => c"expiry_in_past",
            UOPS_NOT_PENDING => c"not_pending",
            UOPS_LIMIT_REACHED => c"limit_reached",
            UOPS_NOT_ELIGIBLE => c"not_eligible",
            UOPS_INTERNAL => c"internal",
        }
    }
}

/// The library version, e.g. "0.1.0". Owned by the library, never freed.
#[no_mangle]
pub extern "C" fn userops_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"",
        };
    VERSION.as_ptr()
}

/// The members of an evaluated audience: a typed result for audiences too large for JSON.
/// Create with `userops_audience_eval`, free with `userops_audience_free`.
pub struct userops_audience {
    oneids: Vec<u64>,
}

/// Evaluate an audience expression now (the same language as the `audience` method) and
/// write a handle to its members to `*out` (free with `userops_audience_free`). On error
/// `*out` is NULL; an expression error is `UOPS_AUDIENCE_SYNTAX`.
///
/// # Safety
/// `expression` is NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_audience_eval(
    engine: *mut userops_engine,
    expression: *const c_char,
    out: *mut *mut userops_audience,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err((userops_status::UOPS_NULL_POINTER, "out is NULL".into()));
        }
        // SAFETY: non-null out-parameter.
        unsafe { *out = ptr::null_mut() };
        // SAFETY: per this function's contract.
        let expression = unsafe { read_str(expression, "expression") }?;
        // SAFETY: with_handle only dereferences live handles.
        let result = unsafe { with_handle(engine, |h| h.engine().audience(expression)) }?;
        let p = register(userops_audience {
            oneids: result.oneids.iter().map(|o| o.0).collect(),
        });
        // SAFETY: checked non-null above.
        unsafe { *out = p };
        Ok(())
    })
}

/// The number of members (0 for NULL or a dead handle, with the error set).
///
/// # Safety
/// `audience` is NULL or a pointer; it is only dereferenced when live.
#[no_mangle]
pub unsafe extern "C" fn userops_audience_len(audience: *const userops_audience) -> u64 {
    let mut n = 0;
    guard(|| {
        n = handle_ref(audience)?.oneids.len() as u64;
        Ok(())
    });
    n
}

/// Copy up to `capacity` member OneIDs (ascending dense order) starting at member `offset`
/// into `buf`; the number copied goes to `*written`. Page through large audiences this way.
///
/// # Safety
/// `buf` is NULL or holds `capacity` u64; `written` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_audience_oneids(
    audience: *const userops_audience,
    offset: u64,
    buf: *mut u64,
    capacity: usize,
    written: *mut usize,
) -> i32 {
    guard(|| {
        if written.is_null() || (buf.is_null() && capacity > 0) {
            return Err((
                userops_status::UOPS_NULL_POINTER,
                "buf or written is NULL".into(),
            ));
        }
        let a = handle_ref(audience)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(a.oneids.len());
        let n = capacity.min(a.oneids.len() - start);
        if n > 0 {
            // SAFETY: buf holds `capacity` ≥ n elements per the contract; source is in bounds.
            unsafe { ptr::copy_nonoverlapping(a.oneids.as_ptr().add(start), buf, n) };
        }
        // SAFETY: checked non-null.
        unsafe { *written = n };
        Ok(())
    })
}

/// Free an audience handle. NULL is a no-op; a double free is detected and ignored.
///
/// # Safety
/// No other thread may be using `audience` while it is freed.
#[no_mangle]
pub unsafe extern "C" fn userops_audience_free(audience: *mut userops_audience) {
    // SAFETY: forwarded contract.
    unsafe { release_handle(audience, "userops_audience_free") }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every engine error code has a C status with the same number, each its own (`status_of`
    /// is an exhaustive match: a new code without a status does not compile).
    #[test]
    fn statuses_match_error_codes() {
        let mut seen = std::collections::BTreeSet::new();
        for &code in ErrorCode::ALL {
            assert_eq!(status_of(code) as i32, code as i32, "{}", code.name());
            assert!(
                seen.insert(status_of(code) as i32),
                "{} shares a status",
                code.name()
            );
        }
    }

    /// A model tag with a bad name is refused at `tag`, the argument the caller named it in.
    #[test]
    fn a_bad_model_tag_name_is_reported_at_tag() {
        let e = userops_engine_new();
        let method = CString::new("rfm").expect("no NUL");
        let args = CString::new(r#"{"as_of": "2026-03-01T00:00:00Z", "tag": "1bad"}"#);
        let args = args.expect("no NUL");
        let mut out = ptr::null_mut();
        // SAFETY: a live engine, NUL-terminated strings, a writable out.
        let status = unsafe { userops_engine_call(e, method.as_ptr(), args.as_ptr(), &mut out) };
        assert_eq!(status, userops_status::UOPS_INVALID_ARGUMENT as i32);
        assert!(out.is_null());
        let field = userops_last_error_field();
        assert!(!field.is_null());
        // SAFETY: non-null, NUL-terminated, valid until the next call on this thread.
        let field = unsafe { std::ffi::CStr::from_ptr(field) };
        assert_eq!(field.to_str(), Ok("tag"));
        // SAFETY: created above, freed once.
        unsafe { userops_engine_free(e) };
    }

    /// A status shared with the engine has the engine code's name; every number maps back.
    #[test]
    fn status_names_match_error_code_names() {
        for &code in ErrorCode::ALL {
            let status = userops_status::from_number(code as i32).expect("a status");
            assert_eq!(status.name().to_str(), Ok(code.name()));
        }
        assert!(userops_status::from_number(12345).is_none());
        assert!(userops_status_name(-1).is_null());
    }
}
