//! Promotion quotes as a typed handle: evaluate a cart once, read its figures, commit it.

use std::ffi::{c_char, CString};
use std::ptr;

use userops_core::campaigns::{CampaignsCommand, CampaignsOutput, Quote, QuoteRef};
use userops_core::{Command, Output};

use super::typed::{read_user, userops_user};
use super::{
    execute, guard, handle_ref, null, read_str, register, release_handle, unexpected,
    userops_engine, userops_status, write_out, Fail, Handle, HandleKind,
};

/// An evaluated promotion quote: the cart's subtotal, discount and total, the promotions that
/// applied and those that did not (with reasons). Create with `userops_quote_evaluate`, commit
/// with `userops_quote_commit`, free with `userops_quote_free`. Immutable: any thread may read
/// it; it does not refer to the engine (it stays valid after `userops_engine_free`).
pub struct userops_quote {
    /// What `commit` reads: the customer and the applied promotions.
    commit_ref: QuoteRef,
    subtotal: CString,
    discount: CString,
    total: CString,
    applied: CString,
    not_applied: CString,
    json: CString,
}

impl Handle for userops_quote {
    const KIND: HandleKind = HandleKind::Quote;
    const NAME: &'static str = "userops_quote";
}

fn internal(e: impl std::fmt::Display) -> Fail {
    (userops_status::UOPS_INTERNAL, e.to_string())
}

fn c_string(s: String) -> Result<CString, Fail> {
    CString::new(s).map_err(internal)
}

impl userops_quote {
    fn new(q: &Quote) -> Result<userops_quote, Fail> {
        let value = serde_json::to_value(q).map_err(internal)?;
        // The same reading of a quote as `commit` on the JSON door: the part it needs.
        let commit_ref: QuoteRef = serde_json::from_value(value.clone()).map_err(internal)?;
        Ok(userops_quote {
            commit_ref,
            subtotal: c_string(q.subtotal.to_string())?,
            discount: c_string(q.discount.to_string())?,
            total: c_string(q.total.to_string())?,
            applied: c_string(value["applied"].to_string())?,
            not_applied: c_string(value["not_applied"].to_string())?,
            json: c_string(value.to_string())?,
        })
    }
}

/// Evaluate a cart against the promotions: `cart_json` is the cart as the `quote` method takes
/// it (`{"time": RFC 3339, "lines": [{"sku", "category", "price": "12.50", "qty"}], "channel",
/// "region", "store", "currency"}`, money as decimal strings), `user` the customer (NULL:
/// anonymous; per-user limits and first-order conditions need one). Nothing changes: a quote
/// reserves nothing until committed. On success writes a handle to `*out` (free with
/// `userops_quote_free`); on error `*out` is NULL. Errors: `UOPS_INVALID_ARGUMENT` (bad JSON or
/// a bad field: the message names it, e.g. `cart.lines[0].price`), `UOPS_INVALID_IDENTIFIER`,
/// `UOPS_NULL_POINTER`, `UOPS_INVALID_UTF8`, `UOPS_INVALID_HANDLE`.
///
/// # Safety
/// `cart_json` is NULL or NUL-terminated; `user` is NULL or a valid `userops_user`; `out` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_quote_evaluate(
    engine: *mut userops_engine,
    cart_json: *const c_char,
    user: *const userops_user,
    out: *mut *mut userops_quote,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: non-null out-parameter; NULL first so that an error leaves nothing.
        unsafe { *out = ptr::null_mut() };
        // SAFETY: per this function's contract.
        let cart = unsafe { read_str(cart_json, "cart_json") }?;
        let cart: serde_json::Value = serde_json::from_str(cart).map_err(|e| {
            (
                userops_status::UOPS_INVALID_ARGUMENT,
                format!("cart_json is not JSON: {e}"),
            )
        })?;
        let user = if user.is_null() {
            serde_json::Value::Null
        } else {
            // SAFETY: per this function's contract.
            serde_json::to_value(unsafe { read_user(user, "user") }?).map_err(internal)?
        };
        // Through the JSON door's parser: the same checks and field paths (`cart.lines[0]`).
        let args = serde_json::json!({"cart": cart, "user": user});
        let command =
            Command::from_call("quote", &args.to_string()).map_err(super::engine_error)?;
        // SAFETY: execute only dereferences live handles.
        let q = match unsafe { execute(engine, command) }? {
            Output::Campaigns(CampaignsOutput::Quote(q)) => q,
            other => return Err(unexpected("quote", &other)),
        };
        let handle = userops_quote::new(&q)?;
        // SAFETY: checked non-null above.
        unsafe { *out = register(handle) };
        Ok(())
    })
}

/// # Safety
/// `quote` is NULL or a pointer; only dereferenced when live.
unsafe fn field(
    quote: *const userops_quote,
    pick: fn(&userops_quote) -> &CString,
) -> *const c_char {
    let mut p = ptr::null();
    guard(|| {
        p = pick(handle_ref(quote)?).as_ptr();
        Ok(())
    });
    p
}

/// The cart's subtotal as a decimal string (`"360.00"`). Owned by the quote: valid until
/// `userops_quote_free`, not to be freed. NULL (with the error set) for a NULL or dead handle.
///
/// # Safety
/// `quote` is NULL or a pointer; only dereferenced when live.
#[no_mangle]
pub unsafe extern "C" fn userops_quote_subtotal(quote: *const userops_quote) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(quote, |q| &q.subtotal) }
}

/// The sum of the discounts as a decimal string. Ownership as `userops_quote_subtotal`.
///
/// # Safety
/// As `userops_quote_subtotal`.
#[no_mangle]
pub unsafe extern "C" fn userops_quote_discount(quote: *const userops_quote) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(quote, |q| &q.discount) }
}

/// subtotal − discount (never negative) as a decimal string. Ownership as
/// `userops_quote_subtotal`.
///
/// # Safety
/// As `userops_quote_subtotal`.
#[no_mangle]
pub unsafe extern "C" fn userops_quote_total(quote: *const userops_quote) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(quote, |q| &q.total) }
}

/// The promotions that applied, in application order, as a JSON array: `[{"id", "discount",
/// "budget_use", "lines": [{"line", "discount"}], "rewards": [...]}]`. Ownership as
/// `userops_quote_subtotal`.
///
/// # Safety
/// As `userops_quote_subtotal`.
#[no_mangle]
pub unsafe extern "C" fn userops_quote_applied_json(quote: *const userops_quote) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(quote, |q| &q.applied) }
}

/// Every other promotion, in priority order, as a JSON array: `[{"id", "code", "reason"}]`
/// (`code` is stable, e.g. `"threshold_not_met"`; `reason` is for people). Ownership as
/// `userops_quote_subtotal`.
///
/// # Safety
/// As `userops_quote_subtotal`.
#[no_mangle]
pub unsafe extern "C" fn userops_quote_not_applied_json(
    quote: *const userops_quote,
) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(quote, |q| &q.not_applied) }
}

/// The whole quote as JSON (what the `quote` method returns: `user`, `mode`, `subtotal`,
/// `discount`, `total`, `lines`, `applied`, `not_applied`). Ownership as
/// `userops_quote_subtotal`.
///
/// # Safety
/// As `userops_quote_subtotal`.
#[no_mangle]
pub unsafe extern "C" fn userops_quote_json(quote: *const userops_quote) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(quote, |q| &q.json) }
}

/// Commit a quote under the idempotency key `key` (typically the order id): consumes the
/// applied promotions' budgets and limits. Committing the same quote under the same key again
/// changes nothing (`"duplicate": true`). Writes the receipt as JSON to `*receipt_json` (may be
/// NULL; `{"key", "uses": [...], "state": "committed", "duplicate"}`; free with
/// `userops_string_free`). The quote handle stays valid (free it as usual). Errors:
/// `UOPS_BUDGET_EXHAUSTED`, `UOPS_PROMOTION_LIMIT_REACHED` (nothing consumed),
/// `UOPS_DUPLICATE_KEY` (the key used for another quote), `UOPS_NOT_FOUND` (a promotion removed
/// since), `UOPS_NULL_POINTER`, `UOPS_INVALID_HANDLE` (engine or quote), `UOPS_STORAGE`.
///
/// # Safety
/// `quote` is NULL or a pointer (only dereferenced when live); `key` is NULL or NUL-terminated;
/// `receipt_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_quote_commit(
    engine: *mut userops_engine,
    quote: *const userops_quote,
    key: *const c_char,
    receipt_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        if !receipt_json.is_null() {
            // SAFETY: non-null out-parameter.
            unsafe { *receipt_json = ptr::null_mut() };
        }
        let q = handle_ref(quote)?;
        // SAFETY: per this function's contract.
        let key = unsafe { read_str(key, "key") }?.to_owned();
        let command = Command::Campaigns(CampaignsCommand::Commit {
            quote: q.commit_ref.clone(),
            key,
            time: None,
        });
        // SAFETY: execute only dereferences live handles.
        commit_receipt(unsafe { execute(engine, command) }?, "commit", receipt_json)
    })
}

fn commit_receipt(output: Output, method: &str, out: *mut *mut c_char) -> Result<(), Fail> {
    match output {
        Output::Campaigns(CampaignsOutput::Commit(r)) => {
            if out.is_null() {
                return Ok(());
            }
            write_out(out, serde_json::to_string(&r).map_err(internal)?)
        }
        other => Err(unexpected(method, &other)),
    }
}

/// Cancel the commit made under `key` (an order refunded or abandoned): gives its budgets and
/// limits back. Cancelling again changes nothing (`"duplicate": true`). Writes the receipt as
/// JSON to `*receipt_json` (may be NULL; `"state": "cancelled"`). Errors: `UOPS_NOT_FOUND` (no
/// commit under that key), `UOPS_NULL_POINTER`, `UOPS_INVALID_HANDLE`, `UOPS_STORAGE`.
///
/// # Safety
/// `key` is NULL or NUL-terminated; `receipt_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_quote_cancel(
    engine: *mut userops_engine,
    key: *const c_char,
    receipt_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        if !receipt_json.is_null() {
            // SAFETY: non-null out-parameter.
            unsafe { *receipt_json = ptr::null_mut() };
        }
        // SAFETY: per this function's contract.
        let key = unsafe { read_str(key, "key") }?.to_owned();
        let command = Command::Campaigns(CampaignsCommand::Cancel { key, time: None });
        // SAFETY: execute only dereferences live handles.
        commit_receipt(unsafe { execute(engine, command) }?, "cancel", receipt_json)
    })
}

/// Free a quote. NULL is a no-op; a double free (or a pointer that is not a live quote) is
/// detected and ignored, with `UOPS_INVALID_HANDLE` as the thread's last error.
///
/// # Safety
/// No other thread may be using `quote` while it is freed.
#[no_mangle]
pub unsafe extern "C" fn userops_quote_free(quote: *mut userops_quote) {
    // SAFETY: forwarded contract.
    unsafe { release_handle(quote, "userops_quote_free") }
}
