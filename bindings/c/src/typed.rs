//! Typed functions for the commonest calls (identity, loyalty, tiers, lifecycle, automation), so
//! that C, C++ and Java callers need not build JSON for them. Each builds the same command the
//! JSON door builds and executes it on the engine (journaled when durable): the results are those
//! of `userops_engine_call` with the same method.
//!
//! Conventions: a user is a `userops_user` (an identifier, or a OneID when `kind` is NULL);
//! times are RFC 3339 strings with a zone (`"2026-01-05T10:00:00+08:00"`), NULL where a default
//! exists; an optional out-parameter may be NULL; a required one left NULL is
//! `UOPS_NULL_POINTER` and nothing happens.

use std::ffi::c_char;
use std::ptr;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use chrono::{DateTime, Utc};
use userops_core::identity::{IdentityCommand, IdentityOutput};
use userops_core::lifecycle::{LifecycleCommand, LifecycleOutput};
use userops_core::loyalty::{LoyaltyCommand, LoyaltyOutput, Posting};
use userops_core::{Command, Event, Identifier, OneId, Output, UserRef};

use super::arrow::{check_arrow_out, export_batch};
use super::{
    execute, guard, handle_ref, null, read_str, unexpected, userops_audience, userops_engine,
    userops_status, write_out, Fail,
};

/// A reference to a user. Either an identifier (`kind` and `value` non-NULL, e.g. `"phone"`,
/// `"13800138000"`; the value is normalized as everywhere else) or, with `kind` NULL, the
/// person `oneid`. Borrowed for the duration of the call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct userops_user {
    /// Identifier kind (`"phone"`, `"email"`, `"member_no"`, `"device_id"`, ...), or NULL to
    /// name the person by `oneid`.
    pub kind: *const c_char,
    /// Identifier value (ignored when `kind` is NULL).
    pub value: *const c_char,
    /// The OneID (used when `kind` is NULL; 0 is never a OneID).
    pub oneid: u64,
}

/// What a ledger write did (earn, spend, post, void).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct userops_posting {
    /// Points moved for the member (positive; for post/void the pending earn's points).
    pub points: i64,
    /// The member's posted balance right after the write.
    pub balance: i64,
    /// The id of the last ledger transfer the write made (1-based, dense; a replay reports the
    /// original write's).
    pub transfer: u64,
    /// 1 when the points are pending (a pending earn), else 0.
    pub pending: i32,
    /// 1 when the idempotency key had been seen with the same content: nothing changed.
    pub duplicate: i32,
}

/// What `userops_identity_link` did.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct userops_link_result {
    /// The person the identifiers now form.
    pub oneid: u64,
    /// The event's sequence number (the first one's, for a replay).
    pub seq: u64,
    /// How many persons this link merged into `oneid`.
    pub absorbed: u64,
    /// 1 when the key had been seen with the same content: nothing changed.
    pub duplicate: i32,
}

/// What `userops_loyalty_evaluate_tiers` did.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct userops_tier_evaluation {
    /// Members evaluated.
    pub members: u64,
    /// Members upgraded.
    pub upgraded: u64,
    /// Members downgraded.
    pub downgraded: u64,
    /// Members below their tier, inside the grace period.
    pub grace: u64,
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> Fail {
    (
        userops_status::UOPS_INVALID_ARGUMENT,
        format!("invalid argument at `{field}`: {reason}"),
    )
}

/// # Safety
/// `kind` and `value` are NULL or NUL-terminated.
unsafe fn read_identifier(
    kind: *const c_char,
    value: *const c_char,
    name: &str,
) -> Result<Identifier, Fail> {
    // SAFETY: forwarded contract.
    let kind = unsafe { read_str(kind, &format!("{name} kind")) }?;
    // SAFETY: forwarded contract.
    let value = unsafe { read_str(value, &format!("{name} value")) }?;
    Identifier::parse(kind, value).map_err(|e| {
        (
            userops_status::UOPS_INVALID_IDENTIFIER,
            format!("{name}: {e}"),
        )
    })
}

/// # Safety
/// `user` is NULL or points to a `userops_user` whose strings are NULL or NUL-terminated.
pub(crate) unsafe fn read_user(user: *const userops_user, name: &str) -> Result<UserRef, Fail> {
    if user.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-null, and a valid userops_user per the contract.
    let u = unsafe { &*user };
    if u.kind.is_null() {
        if u.oneid == 0 {
            return Err(invalid(name, "neither an identifier (kind) nor a OneID"));
        }
        return Ok(UserRef::OneId(OneId(u.oneid)));
    }
    // SAFETY: forwarded contract.
    unsafe { read_identifier(u.kind, u.value, name) }.map(UserRef::Id)
}

/// # Safety
/// `time` is NULL or NUL-terminated.
pub(crate) unsafe fn read_time(
    time: *const c_char,
    name: &str,
) -> Result<Option<DateTime<Utc>>, Fail> {
    if time.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    let s = unsafe { read_str(time, name) }?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| invalid(name, format!("{s:?} is not RFC 3339 with a zone: {e}")))
}

/// # Safety
/// `time` is NULL or NUL-terminated.
unsafe fn required_time(time: *const c_char, name: &str) -> Result<DateTime<Utc>, Fail> {
    // SAFETY: forwarded contract.
    unsafe { read_time(time, name) }?.ok_or_else(|| null(name))
}

/// # Safety
/// `s` is NULL or NUL-terminated.
unsafe fn opt_str(s: *const c_char, name: &str) -> Result<Option<String>, Fail> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { read_str(s, name) }.map(|s| Some(s.to_owned()))
}

/// # Safety
/// `items` is NULL (with `n` 0) or holds `n` pointers, each NULL or NUL-terminated.
unsafe fn read_strs(
    items: *const *const c_char,
    n: usize,
    name: &str,
) -> Result<Vec<String>, Fail> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(null(name));
    }
    (0..n)
        .map(|i| {
            // SAFETY: `items` holds `n` pointers per the contract.
            let p = unsafe { *items.add(i) };
            // SAFETY: forwarded contract.
            unsafe { read_str(p, &format!("{name}[{i}]")) }.map(str::to_owned)
        })
        .collect()
}

fn to_json(v: &impl serde::Serialize) -> Result<String, Fail> {
    serde_json::to_string(v).map_err(|e| (userops_status::UOPS_INTERNAL, e.to_string()))
}

/// Write `text` to an optional string out-parameter.
fn write_opt(
    out: *mut *mut c_char,
    text: impl FnOnce() -> Result<String, Fail>,
) -> Result<(), Fail> {
    if out.is_null() {
        return Ok(());
    }
    write_out(out, text()?)
}

/// NULL an optional string out-parameter, so that an error leaves nothing to free.
fn clear_opt(out: *mut *mut c_char) {
    if !out.is_null() {
        // SAFETY: non-null out-parameter, writable per the callers' contract.
        unsafe { *out = ptr::null_mut() };
    }
}

/// Write a plain value to an optional out-parameter.
fn put<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-null out-parameter, writable per the callers' contract.
        unsafe { ptr::write(out, value) };
    }
}

// ------------------------------------------------------------------------------------------------
// identity

/// Link identifiers seen together in one record (an `identify` event): the identifiers become
/// one person, merging persons they already belonged to when the identity rules allow. `kinds`
/// and `values` are parallel arrays of `n` (≥ 1) strings; `key` is the event's idempotency key,
/// `time` its RFC 3339 time, `platform` and `program` its source. On success writes to `*out`
/// (may be NULL). A replay of the key with the same content is `UOPS_OK` with `duplicate` 1.
/// Errors: `UOPS_NULL_POINTER`, `UOPS_INVALID_UTF8`, `UOPS_INVALID_EVENT` (a bad identifier,
/// time or empty list: the message names the field, e.g. `ids[1]`), `UOPS_DUPLICATE_KEY` (the
/// key reused for other content), `UOPS_INVALID_HANDLE`, `UOPS_STORAGE` (durable engines).
///
/// # Safety
/// Strings are NULL or NUL-terminated; `kinds` and `values` are NULL or hold `n` pointers;
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_identity_link(
    engine: *mut userops_engine,
    key: *const c_char,
    time: *const c_char,
    platform: *const c_char,
    program: *const c_char,
    kinds: *const *const c_char,
    values: *const *const c_char,
    n: usize,
    out: *mut userops_link_result,
) -> i32 {
    guard(|| {
        // SAFETY (all reads below): per this function's contract.
        let key = unsafe { read_str(key, "key") }?;
        let time = unsafe { read_str(time, "time") }?;
        let platform = unsafe { read_str(platform, "platform") }?;
        let program = unsafe { read_str(program, "program") }?;
        let kinds = unsafe { read_strs(kinds, n, "kinds") }?;
        let values = unsafe { read_strs(values, n, "values") }?;
        let ids: Vec<serde_json::Value> = kinds
            .iter()
            .zip(&values)
            .map(|(k, v)| serde_json::json!({"kind": k, "value": v}))
            .collect();
        // Through the event's own parser: the same checks and field paths as the JSON door.
        let event = serde_json::json!({
            "kind": "identify", "key": key, "time": time,
            "source": {"platform": platform, "program": program}, "ids": ids,
        });
        let event = Event::from_json(&event.to_string()).map_err(super::engine_error)?;
        // SAFETY: execute only dereferences live handles.
        let r = match unsafe { execute(engine, Command::ingest(event)) }? {
            Output::Receipt(r) => r,
            other => return Err(unexpected("ingest", &other)),
        };
        put(
            out,
            userops_link_result {
                oneid: r.oneid.map_or(0, |o| o.0),
                seq: r.seq,
                absorbed: r.absorbed.len() as u64,
                duplicate: i32::from(r.duplicate),
            },
        );
        Ok(())
    })
}

/// Resolve an identifier to its person without creating anything: writes the OneID to
/// `*oneid`, or 0 when the identifier is unknown (OneIDs start at 1). Errors:
/// `UOPS_NULL_POINTER`, `UOPS_INVALID_UTF8`, `UOPS_INVALID_IDENTIFIER` (a malformed value or
/// unknown kind), `UOPS_INVALID_HANDLE`.
///
/// # Safety
/// `kind` and `value` are NULL or NUL-terminated; `oneid` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_identity_resolve(
    engine: *mut userops_engine,
    kind: *const c_char,
    value: *const c_char,
    oneid: *mut u64,
) -> i32 {
    guard(|| {
        if oneid.is_null() {
            return Err(null("oneid"));
        }
        // SAFETY: per this function's contract.
        let id = unsafe { read_identifier(kind, value, "identifier") }?;
        // SAFETY: with_handle only dereferences live handles.
        let found = unsafe { super::with_handle(engine, |h| h.engine().lookup(&UserRef::Id(id))) }?;
        put(oneid, found.map_or(0, |o| o.0));
        Ok(())
    })
}

/// Why two identifiers are (or are not) one person: writes the explanation as JSON to
/// `*explanation_json` (free with `userops_string_free`): `{"joined": bool, "oneid_a": N|null,
/// "oneid_b": N|null, "chain": [{"from", "to", "evidence", ...}], "reasons": [string]}`.
/// Errors: `UOPS_NULL_POINTER`, `UOPS_INVALID_UTF8`, `UOPS_INVALID_IDENTIFIER`,
/// `UOPS_INVALID_HANDLE`.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `explanation_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_identity_explain(
    engine: *mut userops_engine,
    kind_a: *const c_char,
    value_a: *const c_char,
    kind_b: *const c_char,
    value_b: *const c_char,
    explanation_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        super::check_out(explanation_json, "explanation_json")?;
        // SAFETY: per this function's contract.
        let a = unsafe { read_identifier(kind_a, value_a, "a") }?;
        // SAFETY: per this function's contract.
        let b = unsafe { read_identifier(kind_b, value_b, "b") }?;
        let command = Command::Identity(IdentityCommand::Explain { a, b });
        // SAFETY: execute only dereferences live handles.
        match unsafe { execute(engine, command) }? {
            Output::Identity(IdentityOutput::Explanation(x)) => {
                write_out(explanation_json, to_json(&x)?)
            }
            other => Err(unexpected("explain", &other)),
        }
    })
}

/// Merge two persons by hand (an audited operator action; `actor` and `reason` are recorded).
/// `time` (RFC 3339, or NULL for now) dates the member-state transfers. Every module folds the
/// absorbed person's state into the survivor's. Writes the surviving OneID to `*survivor` and
/// the merge report as JSON to `*report_json` (`{"survivor", "absorbed": [N],
/// "identifiers_moved", "evidence", "modules"}`; free with `userops_string_free`); both may be
/// NULL. Errors: `UOPS_NULL_POINTER`, `UOPS_INVALID_ARGUMENT` (an unknown identifier, both the
/// same person, a cap or a points balance the merge would break), `UOPS_NOT_FOUND` (a OneID
/// never handed out, or erased), `UOPS_INVALID_IDENTIFIER`, `UOPS_INVALID_HANDLE`,
/// `UOPS_STORAGE`.
///
/// # Safety
/// `a` and `b` are NULL or valid `userops_user`s; strings are NULL or NUL-terminated;
/// `survivor` and `report_json` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_identity_merge(
    engine: *mut userops_engine,
    a: *const userops_user,
    b: *const userops_user,
    actor: *const c_char,
    reason: *const c_char,
    time: *const c_char,
    survivor: *mut u64,
    report_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        clear_opt(report_json);
        // SAFETY (all reads below): per this function's contract.
        let a = unsafe { read_user(a, "a") }?;
        let b = unsafe { read_user(b, "b") }?;
        let actor = unsafe { read_str(actor, "actor") }?.to_owned();
        let reason = unsafe { read_str(reason, "reason") }?.to_owned();
        let time = unsafe { read_time(time, "time") }?;
        let command = Command::Identity(IdentityCommand::Merge {
            a,
            b,
            actor,
            reason,
            time,
        });
        // SAFETY: execute only dereferences live handles.
        match unsafe { execute(engine, command) }? {
            Output::Identity(IdentityOutput::Merge(r)) => {
                put(survivor, r.survivor.0);
                write_opt(report_json, || to_json(&r))
            }
            other => Err(unexpected("merge", &other)),
        }
    })
}

/// Remove evidence (`n` record ids, or `"manual:N"` for a manual merge) and recompute the
/// persons it joined (audited: `actor`, `reason`), at `time` (RFC 3339, or NULL for now). Each
/// part gets back what the merges moved. Writes the split report as JSON to `*report_json`
/// (may be NULL; `{"split": [N], "parts": [{"oneid", "identifiers"}], "edges_removed",
/// "not_split_back"}`: per module, what could not go back). Errors: `UOPS_NULL_POINTER`,
/// `UOPS_INVALID_ARGUMENT` (no evidence, evidence of an erased person, a malformed time),
/// `UOPS_NOT_FOUND` (an unknown record), `UOPS_INVALID_HANDLE`, `UOPS_STORAGE`.
///
/// # Safety
/// `evidence` is NULL or holds `n` pointers; strings are NULL or NUL-terminated;
/// `report_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_identity_split(
    engine: *mut userops_engine,
    evidence: *const *const c_char,
    n: usize,
    actor: *const c_char,
    reason: *const c_char,
    time: *const c_char,
    report_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        clear_opt(report_json);
        // SAFETY (all reads below): per this function's contract.
        let evidence = unsafe { read_strs(evidence, n, "evidence") }?;
        let actor = unsafe { read_str(actor, "actor") }?.to_owned();
        let reason = unsafe { read_str(reason, "reason") }?.to_owned();
        let time = unsafe { read_time(time, "time") }?;
        let command = Command::Identity(IdentityCommand::Split {
            evidence,
            actor,
            reason,
            time,
        });
        // SAFETY: execute only dereferences live handles.
        match unsafe { execute(engine, command) }? {
            Output::Identity(IdentityOutput::Split(r)) => write_opt(report_json, || to_json(&r)),
            other => Err(unexpected("split", &other)),
        }
    })
}

// ------------------------------------------------------------------------------------------------
// loyalty

/// # Safety
/// As [`execute`].
unsafe fn ledger_write(
    engine: *mut userops_engine,
    command: LoyaltyCommand,
    method: &str,
    out: *mut userops_posting,
) -> Result<(), Fail> {
    // SAFETY: forwarded contract.
    match unsafe { execute(engine, Command::Loyalty(command)) }? {
        Output::Loyalty(LoyaltyOutput::Posting(p)) => {
            put(out, posting(&p));
            Ok(())
        }
        other => Err(unexpected(method, &other)),
    }
}

/// Post (or void) a pending earn: the body of `userops_loyalty_post` and `_void`.
///
/// # Safety
/// As `userops_loyalty_post`.
unsafe fn resolve_pending(
    engine: *mut userops_engine,
    earn_key: *const c_char,
    time: *const c_char,
    post: bool,
    out: *mut userops_posting,
) -> i32 {
    guard(|| {
        // SAFETY (all reads below): per the callers' contract.
        let key = unsafe { read_str(earn_key, "earn_key") }?.to_owned();
        let time = unsafe { read_time(time, "time") }?;
        let (command, method) = if post {
            (LoyaltyCommand::Post { key, time }, "post")
        } else {
            (LoyaltyCommand::Void { key, time }, "void")
        };
        // SAFETY: ledger_write only dereferences live handles.
        unsafe { ledger_write(engine, command, method, out) }
    })
}

fn posting(p: &Posting) -> userops_posting {
    userops_posting {
        points: p.points,
        balance: p.balance,
        transfer: p.transfers.last().copied().unwrap_or(0),
        pending: i32::from(p.pending),
        duplicate: i32::from(p.duplicate),
    }
}

/// Earn `points` (> 0) for `user` in `program` under the idempotency key `key` (also the order
/// key refunds find it by). `time` (RFC 3339, or NULL for the latest time loyalty has seen)
/// dates it; the program's policy sets the expiry. With `pending` non-zero the points are held
/// until `userops_loyalty_post` (or `userops_loyalty_void`). An unknown identifier creates the
/// person. On success writes to `*out` (may be NULL). Errors: `UOPS_INVALID_AMOUNT` (points ≤ 0
/// or overflowing), `UOPS_LEDGER_DUPLICATE_KEY` (key reused for another write),
/// `UOPS_NOT_FOUND` (unknown program), `UOPS_INVALID_ARGUMENT`, `UOPS_INVALID_IDENTIFIER`,
/// `UOPS_NULL_POINTER`, `UOPS_INVALID_HANDLE`, `UOPS_STORAGE`.
///
/// # Safety
/// `user` is NULL or a valid `userops_user`; strings are NULL or NUL-terminated; `out` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_loyalty_earn(
    engine: *mut userops_engine,
    user: *const userops_user,
    program: *const c_char,
    points: i64,
    key: *const c_char,
    time: *const c_char,
    pending: i32,
    out: *mut userops_posting,
) -> i32 {
    guard(|| {
        // SAFETY (all reads below): per this function's contract.
        let user = unsafe { read_user(user, "user") }?;
        let program = unsafe { read_str(program, "program") }?.to_owned();
        let key = unsafe { read_str(key, "key") }?.to_owned();
        let time = unsafe { read_time(time, "time") }?;
        let command = LoyaltyCommand::Earn {
            user,
            program,
            points,
            key,
            reason: String::new(),
            expires: None,
            pending: pending != 0,
            order: None,
            apply_multiplier: false,
            actor: String::new(),
            time,
        };
        // SAFETY: ledger_write only dereferences live handles.
        unsafe { ledger_write(engine, command, "earn", out) }
    })
}

/// Spend `points` (> 0) of `user` in `program`, earliest-expiring first, under the idempotency
/// key `key`. `time` may be NULL (the latest time loyalty has seen). On success writes to
/// `*out` (may be NULL). Errors: `UOPS_INSUFFICIENT_POINTS` (above the balance; nothing
/// changes), `UOPS_UNKNOWN_ACCOUNT`, `UOPS_INVALID_AMOUNT`, `UOPS_LEDGER_DUPLICATE_KEY`,
/// `UOPS_NOT_FOUND`, `UOPS_INVALID_ARGUMENT`, `UOPS_NULL_POINTER`, `UOPS_INVALID_HANDLE`,
/// `UOPS_STORAGE`.
///
/// # Safety
/// As `userops_loyalty_earn`.
#[no_mangle]
pub unsafe extern "C" fn userops_loyalty_spend(
    engine: *mut userops_engine,
    user: *const userops_user,
    program: *const c_char,
    points: i64,
    key: *const c_char,
    time: *const c_char,
    out: *mut userops_posting,
) -> i32 {
    guard(|| {
        // SAFETY (all reads below): per this function's contract.
        let user = unsafe { read_user(user, "user") }?;
        let program = unsafe { read_str(program, "program") }?.to_owned();
        let key = unsafe { read_str(key, "key") }?.to_owned();
        let time = unsafe { read_time(time, "time") }?;
        let command = LoyaltyCommand::Spend {
            user,
            program,
            points,
            key,
            reason: String::new(),
            actor: String::new(),
            time,
        };
        // SAFETY: ledger_write only dereferences live handles.
        unsafe { ledger_write(engine, command, "spend", out) }
    })
}

/// Post the pending earn made under `earn_key` (its points join the balance). `time` may be
/// NULL. Errors: `UOPS_NOT_PENDING` (no open pending earn under that key), `UOPS_NULL_POINTER`,
/// `UOPS_INVALID_ARGUMENT`, `UOPS_INVALID_HANDLE`, `UOPS_STORAGE`.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_loyalty_post(
    engine: *mut userops_engine,
    earn_key: *const c_char,
    time: *const c_char,
    out: *mut userops_posting,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { resolve_pending(engine, earn_key, time, true, out) }
}

/// Void the pending earn made under `earn_key` (its points never join the balance). Errors as
/// `userops_loyalty_post`.
///
/// # Safety
/// As `userops_loyalty_post`.
#[no_mangle]
pub unsafe extern "C" fn userops_loyalty_void(
    engine: *mut userops_engine,
    earn_key: *const c_char,
    time: *const c_char,
    out: *mut userops_posting,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { resolve_pending(engine, earn_key, time, false, out) }
}

/// The posted balance of `user` in `program`, written to `*balance`. Errors:
/// `UOPS_UNKNOWN_ACCOUNT` (no account: never earned), `UOPS_NOT_FOUND` (unknown program),
/// `UOPS_INVALID_ARGUMENT`, `UOPS_NULL_POINTER`, `UOPS_INVALID_HANDLE`.
///
/// # Safety
/// `user` is NULL or a valid `userops_user`; `program` is NULL or NUL-terminated; `balance`
/// is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_loyalty_balance(
    engine: *mut userops_engine,
    user: *const userops_user,
    program: *const c_char,
    balance: *mut i64,
) -> i32 {
    guard(|| {
        if balance.is_null() {
            return Err(null("balance"));
        }
        // SAFETY (all reads below): per this function's contract.
        let user = unsafe { read_user(user, "user") }?;
        let program = unsafe { read_str(program, "program") }?.to_owned();
        let command = Command::Loyalty(LoyaltyCommand::Balance { user, program });
        // SAFETY: execute only dereferences live handles.
        match unsafe { execute(engine, command) }? {
            Output::Loyalty(LoyaltyOutput::Points(p)) => {
                put(balance, p);
                Ok(())
            }
            other => Err(unexpected("balance", &other)),
        }
    })
}

/// The statement of `user` in `program` as an Arrow struct array, one row per posting in
/// order: `id` uint64, `time` timestamp[ms, UTC], `kind` utf8 (`earn`, `pending_earn`, `post`,
/// `void`, `spend`, `expire`, `reversal`, `clawback`, `convert_out`, `convert_in`, `merge`, `split`),
/// `key` utf8, `amount` int64 (+ in, − out), `balance` int64 (posted, after the row),
/// `pending` bool, `counterparty` utf8, `expires` timestamp[ms, UTC] (nullable), `reason`
/// utf8, `actor` utf8. Release contract: see the Arrow section of this header. Errors:
/// `UOPS_UNKNOWN_ACCOUNT`, `UOPS_NOT_FOUND`, `UOPS_INVALID_ARGUMENT`, `UOPS_NULL_POINTER`,
/// `UOPS_INVALID_HANDLE` (both out structs then released, `release == NULL`).
///
/// # Safety
/// `user` is NULL or a valid `userops_user`; `program` is NULL or NUL-terminated; `out_array`
/// and `out_schema` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_loyalty_statement(
    engine: *mut userops_engine,
    user: *const userops_user,
    program: *const c_char,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
) -> i32 {
    guard(|| {
        check_arrow_out(out_array, out_schema)?;
        // SAFETY (all reads below): per this function's contract.
        let user = unsafe { read_user(user, "user") }?;
        let program = unsafe { read_str(program, "program") }?.to_owned();
        let command = Command::Loyalty(LoyaltyCommand::Statement { user, program });
        // SAFETY: execute only dereferences live handles.
        let rows = match unsafe { execute(engine, command) }? {
            Output::Loyalty(LoyaltyOutput::Statement(rows)) => rows,
            other => return Err(unexpected("statement", &other)),
        };
        export_batch(userops_arrow::statement(&rows), out_array, out_schema)
    })
}

/// The tier of `user` in `program` at `now` (RFC 3339, or NULL for loyalty's clock): writes the
/// tier's name to `*tier` (NULL when the member has no tier yet or the program no ladder; free
/// with `userops_string_free`) and the whole view as JSON to `*view_json` (may be NULL:
/// `{"program", "tier", "metric", "growth_total", "spend_total", "next", "to_next",
/// "downgrade_due", "history"}`, money as decimal strings). Errors: `UOPS_NOT_FOUND`,
/// `UOPS_INVALID_ARGUMENT`, `UOPS_NULL_POINTER`, `UOPS_INVALID_HANDLE`.
///
/// # Safety
/// `user` is NULL or a valid `userops_user`; strings are NULL or NUL-terminated; `tier` and
/// `view_json` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_loyalty_tier(
    engine: *mut userops_engine,
    user: *const userops_user,
    program: *const c_char,
    now: *const c_char,
    tier: *mut *mut c_char,
    view_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        super::check_out(tier, "tier")?;
        clear_opt(view_json);
        // SAFETY (all reads below): per this function's contract.
        let user = unsafe { read_user(user, "user") }?;
        let program = unsafe { read_str(program, "program") }?.to_owned();
        let now = unsafe { read_time(now, "now") }?;
        let command = Command::Loyalty(LoyaltyCommand::Tier { user, program, now });
        // SAFETY: execute only dereferences live handles.
        let view = match unsafe { execute(engine, command) }? {
            Output::Loyalty(LoyaltyOutput::Tier(v)) => v,
            other => return Err(unexpected("tier", &other)),
        };
        write_opt(view_json, || to_json(&view))?;
        if let Some(name) = &view.tier {
            if let Err(e) = write_out(tier, name.clone()) {
                // Leave nothing half-written: the view string goes too.
                if !view_json.is_null() {
                    // SAFETY: written just above by write_opt (or NULL).
                    unsafe { super::userops_string_free(*view_json) };
                    clear_opt(view_json);
                }
                return Err(e);
            }
        }
        Ok(())
    })
}

/// Evaluate every tier ladder at `now` (RFC 3339, required): upgrades, and downgrades after
/// grace periods. Writes the counts to `*out` (may be NULL). Errors: `UOPS_NULL_POINTER`,
/// `UOPS_INVALID_ARGUMENT` (a bad time), `UOPS_INVALID_HANDLE`, `UOPS_STORAGE`.
///
/// # Safety
/// `now` is NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_loyalty_evaluate_tiers(
    engine: *mut userops_engine,
    now: *const c_char,
    out: *mut userops_tier_evaluation,
) -> i32 {
    guard(|| {
        // SAFETY: per this function's contract.
        let now = unsafe { required_time(now, "now") }?;
        let command = Command::Loyalty(LoyaltyCommand::EvaluateTiers { now });
        // SAFETY: execute only dereferences live handles.
        match unsafe { execute(engine, command) }? {
            Output::Loyalty(LoyaltyOutput::Evaluation(e)) => {
                put(
                    out,
                    userops_tier_evaluation {
                        members: e.members,
                        upgraded: e.upgraded,
                        downgraded: e.downgraded,
                        grace: e.grace,
                    },
                );
                Ok(())
            }
            other => Err(unexpected("evaluate_tiers", &other)),
        }
    })
}

// ------------------------------------------------------------------------------------------------
// lifecycle

/// The lifecycle report of every period: stages, transitions, active rate and its
/// decomposition, as JSON in `*report_json` (free with `userops_string_free`; the shape of the
/// `lifecycle_report` method: `{"periods": [{"period", "counts", "active_rate",
/// "decomposition", ...}]}`). `churn_after` is the churn threshold in periods (0: the default
/// rule); `through` extends the report to that period label (NULL: the last period with data).
/// Errors: `UOPS_INVALID_ARGUMENT` (a bad threshold or period label), `UOPS_NULL_POINTER`,
/// `UOPS_INVALID_HANDLE`.
///
/// # Safety
/// `through` is NULL or NUL-terminated; `report_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_lifecycle_report(
    engine: *mut userops_engine,
    churn_after: u32,
    through: *const c_char,
    report_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        super::check_out(report_json, "report_json")?;
        // SAFETY: per this function's contract.
        let through = unsafe { opt_str(through, "through") }?;
        let command = Command::Lifecycle(LifecycleCommand::LifecycleReport {
            churn_after: (churn_after != 0).then_some(churn_after),
            early_activity: None,
            through,
            segments: None,
            audiences: None,
            by_tag: None,
        });
        // SAFETY: execute only dereferences live handles.
        match unsafe { execute(engine, command) }? {
            Output::Lifecycle(r @ LifecycleOutput::Report(_)) => {
                write_out(report_json, to_json(&r)?)
            }
            other => Err(unexpected("lifecycle_report", &other)),
        }
    })
}

/// The lifecycle stage table of one period (NULL: the last period with data) as an Arrow
/// struct array, one row per registered person: `oneid` uint64, `period` utf8 (the label, e.g.
/// `"2026-01"`), `stage` utf8 (`new`, `last_period_new`, `active`, `awakened`, `returned`,
/// `dormant`, `churned`). `churn_after` as in `userops_lifecycle_report`. Release contract: see
/// the Arrow section. Errors: `UOPS_INVALID_ARGUMENT` (unknown period, no data yet),
/// `UOPS_NULL_POINTER`, `UOPS_INVALID_HANDLE`.
///
/// # Safety
/// `period` is NULL or NUL-terminated; `out_array` and `out_schema` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_lifecycle_stages(
    engine: *mut userops_engine,
    period: *const c_char,
    churn_after: u32,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
) -> i32 {
    guard(|| {
        check_arrow_out(out_array, out_schema)?;
        // SAFETY: per this function's contract.
        let period = unsafe { opt_str(period, "period") }?;
        let command = Command::Lifecycle(LifecycleCommand::LifecycleStages {
            period,
            churn_after: (churn_after != 0).then_some(churn_after),
            early_activity: None,
        });
        // SAFETY: execute only dereferences live handles.
        let s = match unsafe { execute(engine, command) }? {
            Output::Lifecycle(LifecycleOutput::Stages(s)) => s,
            other => return Err(unexpected("lifecycle_stages", &other)),
        };
        export_batch(userops_arrow::lifecycle_stages(&s), out_array, out_schema)
    })
}

// ------------------------------------------------------------------------------------------------
// automation

/// Run the automation rules at `now` (RFC 3339, required) and export the delivery plan as an
/// Arrow struct array, one row per planned action: `touch_id` uint64 (nullable; touches only),
/// `user` uint64 (OneID), `action` utf8 (`touch`, `issue_coupon`, `grant_points`, `add_tag`),
/// `channel`, `content`, `coupon_id` utf8 (nullable), `points` int64 (nullable), `program`, `key`, `tag` utf8
/// (nullable), `rule` utf8, `reason` utf8. Running changes state (rules fire once, coupons are
/// issued, points posted and tags written, touches are recorded for monitoring; journaled when
/// durable). Release contract: see
/// the Arrow section. Errors: `UOPS_NULL_POINTER`, `UOPS_INVALID_ARGUMENT` (a bad time),
/// `UOPS_INVALID_HANDLE`, `UOPS_STORAGE`.
///
/// # Safety
/// `now` is NULL or NUL-terminated; `out_array` and `out_schema` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_automation_plan(
    engine: *mut userops_engine,
    now: *const c_char,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
) -> i32 {
    guard(|| {
        check_arrow_out(out_array, out_schema)?;
        // SAFETY: per this function's contract.
        let now = unsafe { required_time(now, "now") }?;
        let command =
            Command::Campaigns(userops_core::campaigns::CampaignsCommand::RunAutomation { now });
        // SAFETY: execute only dereferences live handles.
        let plan = match unsafe { execute(engine, command) }? {
            Output::Campaigns(userops_core::campaigns::CampaignsOutput::Plan(p)) => p,
            other => return Err(unexpected("run_automation", &other)),
        };
        export_batch(userops_arrow::automation_plan(&plan), out_array, out_schema)
    })
}

// ------------------------------------------------------------------------------------------------
// audiences

/// The members of an audience as an Arrow struct array with one column `oneid` (uint64,
/// ascending). The array is a copy: it stays valid after `userops_audience_free`. Release
/// contract: see the Arrow section. Errors: `UOPS_NULL_POINTER`, `UOPS_INVALID_HANDLE`.
///
/// # Safety
/// `audience` is NULL or a pointer (only dereferenced when live); `out_array` and `out_schema`
/// are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn userops_audience_to_arrow(
    audience: *const userops_audience,
    out_array: *mut FFI_ArrowArray,
    out_schema: *mut FFI_ArrowSchema,
) -> i32 {
    guard(|| {
        check_arrow_out(out_array, out_schema)?;
        let a = handle_ref(audience)?;
        export_batch(
            userops_arrow::audience_members(&a.oneids),
            out_array,
            out_schema,
        )
    })
}
