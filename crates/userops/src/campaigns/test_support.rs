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

/// `run_automation` at `now`: the plan rows.
pub(super) fn run(e: &mut Engine, now: &str) -> Value {
    ok(e, "run_automation", json!({ "now": now }))
}

/// A loyalty program and a coupon template (`benefit` as the template's wire form).
pub(super) fn program_and_template(e: &mut Engine, program: &str, template: &str, benefit: Value) {
    ok(e, "create_program", json!({"program": {"id": program}}));
    ok(
        e,
        "add_coupon_template",
        json!({"template": {"id": template, "kind": if benefit["type"] == "service" { "service" } else { "consumption" }, "benefit": benefit}}),
    );
}
