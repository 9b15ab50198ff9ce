//! Arbitrary bytes into the JSON entry points of the C ABI (and the core's parsers behind them):
//! every input must give a status, never a crash, a hang or a leak.
#![no_main]

use std::ffi::CString;

use libfuzzer_sys::fuzz_target;

// The exact source of the C ABI, compiled into the fuzz binary.
#[allow(dead_code)]
#[path = "../../bindings/c/src/lib.rs"]
mod capi;

use capi::{userops_engine_call, userops_engine_free, userops_engine_ingest_json, userops_engine_new, userops_string_free};

fuzz_target!(|data: &[u8]| {
    // First byte picks a method for the call path; the rest is the JSON text.
    let Some((&pick, rest)) = data.split_first() else { return };
    let text: Vec<u8> = rest.iter().copied().filter(|b| *b != 0).collect();
    let Ok(text) = CString::new(text) else { return };
    let methods = ["ingest", "resolve", "stats", "nope"];
    let method = CString::new(methods[pick as usize % methods.len()]).expect("no NUL");
    unsafe {
        let e = userops_engine_new();
        let mut out = std::ptr::null_mut();
        if userops_engine_ingest_json(e, text.as_ptr(), &mut out) == 0 {
            userops_string_free(out);
        }
        let mut out = std::ptr::null_mut();
        if userops_engine_call(e, method.as_ptr(), text.as_ptr(), &mut out) == 0 {
            userops_string_free(out);
        }
        userops_engine_free(e);
    }
    let _ = userops_core::Event::from_json(&String::from_utf8_lossy(rest));
});
