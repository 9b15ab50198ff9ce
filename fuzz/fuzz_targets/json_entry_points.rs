//! Arbitrary bytes into the JSON entry points of the C ABI (and the core's parsers behind them):
//! every input must give a status, never a crash, a hang or a leak. The first byte picks the
//! entry point, the rest is its text:
//! * ingest + `userops_engine_call` (method picked by the byte),
//! * `userops_quote_evaluate` (the text is the cart JSON; a promotion is defined so that the
//!   evaluation runs, then the quote's accessors and a commit),
//! * `userops_identity_explain` (the text split in two identifier values of picked kinds),
//! * `userops_identity_link` (the text split in values),
//! * `userops_table_call`.
#![no_main]

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use libfuzzer_sys::fuzz_target;

// The exact source of the C ABI, compiled into the fuzz binary.
#[allow(dead_code)]
#[path = "../../bindings/c/src/lib.rs"]
mod capi;

use capi::*;

const KINDS: [&str; 6] = ["phone", "email", "member_no", "device_id", "oneid", "nope"];

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL in constants")
}

unsafe fn call(e: *mut userops_engine, method: &str, args: &str) {
    let (m, a) = (c(method), c(args));
    let mut out = ptr::null_mut();
    if userops_engine_call(e, m.as_ptr(), a.as_ptr(), &mut out) == 0 {
        userops_string_free(out);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let text: Vec<u8> = rest.iter().copied().filter(|b| *b != 0).collect();
    let Ok(text) = CString::new(text) else { return };
    unsafe {
        let e = userops_engine_new();
        match pick % 5 {
            0 => {
                let methods = ["ingest", "resolve", "stats", "quote", "explain", "nope"];
                let method = c(methods[(pick as usize / 5) % methods.len()]);
                let mut out = ptr::null_mut();
                if userops_engine_ingest_json(e, text.as_ptr(), &mut out) == 0 {
                    userops_string_free(out);
                }
                let mut out = ptr::null_mut();
                if userops_engine_call(e, method.as_ptr(), text.as_ptr(), &mut out) == 0 {
                    userops_string_free(out);
                }
            }
            1 => {
                call(e, "add_promotion", r#"{"promotion": {"id": "p300", "action":
                    {"type": "threshold_discount", "threshold": "300", "off": "50"}}}"#);
                call(e, "add_promotion", r#"{"promotion": {"id": "p10", "action":
                    {"type": "percent_off", "percent": "10"}, "budget": {"kind": "count", "count": 1}}}"#);
                let mut q = ptr::null_mut();
                let user = userops_user { kind: ptr::null(), value: ptr::null(), oneid: 0 };
                let user_ptr = if pick & 0x20 != 0 { &user as *const _ } else { ptr::null() };
                if userops_quote_evaluate(e, text.as_ptr(), user_ptr, &mut q) == 0 {
                    for f in [
                        userops_quote_subtotal,
                        userops_quote_discount,
                        userops_quote_total,
                        userops_quote_applied_json,
                        userops_quote_not_applied_json,
                        userops_quote_json,
                    ] {
                        let p: *const c_char = f(q);
                        assert!(!p.is_null());
                        let _ = CStr::from_ptr(p).to_str().expect("UTF-8");
                    }
                    let key = c("order-1");
                    let mut r = ptr::null_mut();
                    if userops_quote_commit(e, q, key.as_ptr(), &mut r) == 0 {
                        userops_string_free(r);
                        if userops_quote_cancel(e, key.as_ptr(), &mut r) == 0 {
                            userops_string_free(r);
                        }
                    }
                    userops_quote_free(q);
                } else {
                    assert!(q.is_null());
                }
            }
            2 | 3 => {
                let bytes = text.as_bytes();
                let mid = bytes.len() / 2;
                let a = CString::new(&bytes[..mid]).expect("no NUL");
                let b = CString::new(&bytes[mid..]).expect("no NUL");
                let ka = c(KINDS[(pick as usize / 5) % KINDS.len()]);
                let kb = c(KINDS[(pick as usize / 30) % KINDS.len()]);
                if pick % 5 == 2 {
                    let mut out = ptr::null_mut();
                    if userops_identity_explain(e, ka.as_ptr(), a.as_ptr(), kb.as_ptr(), b.as_ptr(), &mut out) == 0 {
                        userops_string_free(out);
                    }
                } else {
                    let kinds = [ka.as_ptr(), kb.as_ptr()];
                    let values = [a.as_ptr(), b.as_ptr()];
                    let (key, time, pf, pg) = (c("k1"), c("2026-01-05T10:00:00+08:00"), c("jd"), c("brand-a"));
                    let mut r = userops_link_result::default();
                    if userops_identity_link(e, key.as_ptr(), time.as_ptr(), pf.as_ptr(), pg.as_ptr(),
                        kinds.as_ptr(), values.as_ptr(), 2, &mut r) == 0 {
                        // An identifier the link accepted is one resolve accepts.
                        let mut o = 0u64;
                        assert_eq!(userops_identity_resolve(e, ka.as_ptr(), a.as_ptr(), &mut o), 0);
                        let mut out = ptr::null_mut();
                        assert_eq!(userops_identity_explain(e, ka.as_ptr(), a.as_ptr(), kb.as_ptr(), b.as_ptr(), &mut out), 0);
                        userops_string_free(out);
                    }
                }
            }
            _ => {
                let methods = ["lifecycle", "funnel", "cohort_retention", "attribution", "active_rate_decomposition"];
                let method = c(methods[(pick as usize / 5) % methods.len()]);
                let mut out = ptr::null_mut();
                if userops_table_call(method.as_ptr(), text.as_ptr(), &mut out) == 0 {
                    userops_string_free(out);
                }
            }
        }
        userops_engine_free(e);
    }
    let _ = userops_core::Event::from_json(&String::from_utf8_lossy(rest));
});
