//! The operator's side of the demo: what a brand does with the unified pool once the data is in.
//! Every step is an engine command sent through the store (so it is journaled and survives a
//! restart, and `userops report --db` sees its effects): rule tags and saved audiences, a loyalty
//! program with points earned on every order and a spend-based tier ladder, touch consent,
//! automation rules and a run, promotions with a quoted and committed cart.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use indicatif::ProgressBar;
use serde_json::{json, Value};
use userops::{Command, Event, EventBody, IdKind, OneId, UserRef};
use userops_store::Store;

/// The loyalty program the demo creates (the report looks it up by this id).
pub const PROGRAM: &str = "group-club";
/// The promotions the demo adds, by id.
pub const PROMOTIONS: [&str; 3] = ["spend-300-save-50", "app-95", "beauty-gift"];
/// The rule tags the demo defines, with their expressions over the profile aggregates.
pub const RULE_TAGS: [(&str, &str); 3] = [
    ("repeat_buyer", "orders >= 3"),
    ("big_spender", "gmv >= 3000"),
    ("refunder", "refunds >= 1"),
];
/// The saved audiences, with their expressions.
pub const AUDIENCES: [(&str, &str); 2] = [
    ("vip", "repeat_buyer AND big_spender"),
    (
        "lapsed_buyers",
        "orders >= 1 AND last_order < \"2026-10-01\"",
    ),
];
/// Channels a person may consent to, and the identifier kind that makes the channel reachable.
const CONSENT: [(&str, IdKind); 3] = [
    ("push", IdKind::DeviceId),
    ("sms", IdKind::Phone),
    ("wechat", IdKind::OpenId),
];
/// When the operator acts: the last evening of the generated year, business time.
pub const NOW: &str = "2026-12-31T10:00:00+08:00";

/// Call a method by name with JSON arguments through the store; the output as JSON.
pub fn call(store: &mut Store, method: &str, args: Value) -> Result<Value, String> {
    let command =
        Command::from_call(method, &args.to_string()).map_err(|e| format!("{method}: {e}"))?;
    let out = store
        .execute(command)
        .map_err(|e| format!("{method}: {e}"))?;
    serde_json::to_value(out).map_err(|e| format!("{method}: {e}"))
}

/// What the operator's steps did, for the printed summary.
#[derive(Debug, Default)]
pub struct ChainSummary {
    /// Rule tags defined.
    pub rule_tags: usize,
    /// Saved audiences and their sizes.
    pub audiences: Vec<(String, u64)>,
    /// Points earned (sum over orders) and orders earned on.
    pub points_earned: i64,
    /// Orders earned on.
    pub orders_earned: u64,
    /// Orders refunded in the ledger.
    pub refunds: u64,
    /// Tier evaluation: members, upgraded, downgraded, in grace.
    pub evaluation: Value,
    /// Consents granted.
    pub consents: u64,
    /// Automation rules added.
    pub rules: usize,
    /// Plan rows per channel (touches) or per action.
    pub plan: BTreeMap<String, u64>,
    /// The quoted sample cart.
    pub quote: Value,
    /// The commit receipt of the quote.
    pub commit: Value,
}

fn money_points(amount: &userops::Decimal) -> i64 {
    // One point per whole yuan, rounded down.
    amount.trunc().to_string().parse::<i64>().unwrap_or(0)
}

/// An order (with its amount) or a refund (without), as the loyalty step needs it.
pub struct OrderFact {
    user: UserRef,
    order_id: String,
    amount: Option<userops::Decimal>,
    time: DateTime<Utc>,
}

/// The orders and refunds of the generated events, in time order.
pub fn order_facts(events: &[Event]) -> Vec<OrderFact> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Order {
                user,
                order_id,
                amount,
                ..
            } => Some(OrderFact {
                user: user.clone(),
                order_id: order_id.clone(),
                amount: Some(*amount),
                time: e.time,
            }),
            EventBody::Refund { user, order_id, .. } => Some(OrderFact {
                user: user.clone(),
                order_id: order_id.clone(),
                amount: None,
                time: e.time,
            }),
            _ => None,
        })
        .collect()
}

/// Run the operator's steps on a store that holds the ingested events.
pub fn run(
    store: &mut Store,
    orders: &[OrderFact],
    bar: impl Fn(u64, &str) -> ProgressBar,
) -> Result<ChainSummary, String> {
    let mut s = ChainSummary::default();

    tags_and_audiences(store, &mut s)?;
    loyalty(store, orders, &bar, &mut s)?;
    consent(store, &bar, &mut s)?;
    automation(store, &mut s)?;
    promotions(store, &mut s)?;
    Ok(s)
}

/// Tags and audiences on the profile aggregates the engine keeps from orders and refunds.
fn tags_and_audiences(store: &mut Store, s: &mut ChainSummary) -> Result<(), String> {
    for (name, rule) in RULE_TAGS {
        call(
            store,
            "define_tag",
            json!({"name": name, "rule": rule, "now": NOW,
                   "description": format!("rule: {rule}")}),
        )?;
        s.rule_tags += 1;
    }
    for (name, expression) in AUDIENCES {
        let info = call(
            store,
            "save_audience",
            json!({"name": name, "expression": expression, "now": NOW}),
        )?;
        s.audiences.push((
            name.to_owned(),
            info.get("size").and_then(Value::as_u64).unwrap_or(0),
        ));
    }
    Ok(())
}

/// Loyalty: a group-level program, one point per yuan, points valid to the end of next year,
/// a calendar-year spend ladder with a 30-day grace period.
fn loyalty(
    store: &mut Store,
    orders: &[OrderFact],
    bar: &impl Fn(u64, &str) -> ProgressBar,
    s: &mut ChainSummary,
) -> Result<(), String> {
    call(
        store,
        "create_program",
        json!({"program": {
            "id": PROGRAM, "name": "Group club", "level": "group",
            "expiry": {"kind": "end_of_year", "years": 1},
            "tiers": {"basis": "spend", "window": "calendar_year", "grace_days": 30,
                      "levels": [{"name": "silver", "threshold": "500"},
                                 {"name": "gold", "threshold": "2000"},
                                 {"name": "platinum", "threshold": "6000"}]}}}),
    )?;
    let pb = bar(orders.len() as u64, "loyalty");
    for (done, o) in orders.iter().enumerate() {
        let time = o.time.to_rfc3339();
        match &o.amount {
            Some(amount) => {
                let points = money_points(amount);
                if points > 0 {
                    call(
                        store,
                        "earn",
                        json!({"user": o.user, "program": PROGRAM, "points": points,
                               "key": format!("earn-{}", o.order_id), "order": o.order_id,
                               "reason": "order", "actor": "demo", "time": time}),
                    )?;
                    s.points_earned += points;
                    s.orders_earned += 1;
                }
                call(
                    store,
                    "record_spend",
                    json!({"user": o.user, "program": PROGRAM, "amount": amount.to_string(),
                           "key": format!("spend-{}", o.order_id), "time": time}),
                )?;
            }
            None => {
                // A refund reverses the points of its order.
                call(
                    store,
                    "refund",
                    json!({"order_key": o.order_id, "key": format!("refund-{}", o.order_id),
                           "time": time}),
                )?;
                s.refunds += 1;
            }
        }
        if done % 512 == 0 {
            pb.set_position(done as u64);
        }
    }
    pb.finish_and_clear();
    s.evaluation = call(store, "evaluate_tiers", json!({"now": NOW}))?;
    Ok(())
}

/// Consent: a person may be touched on a channel they are reachable on.
fn consent(
    store: &mut Store,
    bar: &impl Fn(u64, &str) -> ProgressBar,
    s: &mut ChainSummary,
) -> Result<(), String> {
    let persons: Vec<(OneId, Vec<&str>)> = store
        .engine()
        .identity()
        .persons()
        .map(|(o, ids)| {
            let channels = CONSENT
                .iter()
                .filter(|(_, kind)| ids.iter().any(|i| i.kind() == kind))
                .map(|(c, _)| *c)
                .collect();
            (o, channels)
        })
        .collect();
    let pb = bar(persons.len() as u64, "consent");
    for (i, (oneid, channels)) in persons.iter().enumerate() {
        for channel in channels {
            call(
                store,
                "set_consent",
                json!({"user": {"oneid": oneid.0}, "channel": channel, "purpose": "marketing",
                       "granted": true, "actor": "demo", "time": NOW}),
            )?;
            s.consents += 1;
        }
        if i % 1024 == 0 {
            pb.set_position(i as u64);
        }
    }
    pb.finish_and_clear();
    Ok(())
}

/// Automation: win back the inactive, look after appliance buyers, welcome the newly
/// registered; one run at NOW gives the delivery plan.
fn automation(store: &mut Store, s: &mut ChainSummary) -> Result<(), String> {
    let rules = [
        json!({"id": "winback-push", "name": "Win back after 45 quiet days",
               "trigger": {"type": "inactive", "days": 45},
               "actions": [{"type": "touch", "channel": "push", "content": "winback-coupon",
                            "frequency_cap": {"max": 2, "days": 30}}],
               "quiet_hours": [22, 8], "attribution_days": 14}),
        json!({"id": "appliance-care-sms", "name": "Appliance care 30 days after purchase",
               "trigger": {"type": "order", "category": "appliance", "delay_days": 30,
                           "grace_days": 7},
               "actions": [{"type": "touch", "channel": "sms", "content": "appliance-care"}]}),
        json!({"id": "welcome-wechat", "name": "Welcome a month after registering",
               "trigger": {"type": "register", "delay_days": 30, "grace_days": 14},
               "actions": [{"type": "touch", "channel": "wechat", "content": "welcome-guide"},
                           {"type": "grant_points", "points": 100}]}),
    ];
    for rule in rules {
        call(store, "add_rule", json!({ "rule": rule }))?;
        s.rules += 1;
    }
    let plan = call(store, "run_automation", json!({"now": NOW}))?;
    for row in plan.as_array().into_iter().flatten() {
        let key = row
            .get("channel")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                row.get("action")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned()
            });
        *s.plan.entry(key).or_default() += 1;
    }
    Ok(())
}

/// Promotions: a store-wide threshold discount, an app-only 5% off that stacks with it, and
/// a gift on beauty spend; a sample cart quoted for a known member and committed.
fn promotions(store: &mut Store, s: &mut ChainSummary) -> Result<(), String> {
    let promotions = [
        json!({"id": PROMOTIONS[0], "name": "满300减50",
               "action": {"type": "threshold_discount", "threshold": "300", "off": "50",
                          "every": true, "max_off": "200"},
               "stacking": {"mode": "stackable", "group": "store", "priority": 1},
               "budget": {"kind": "money", "amount": "500000"}}),
        json!({"id": PROMOTIONS[1], "name": "App 95折", "conditions": {"channels": ["app"]},
               "action": {"type": "percent_off", "percent": "5", "max_off": "100"},
               "stacking": {"mode": "stackable", "group": "app", "priority": 2}}),
        json!({"id": PROMOTIONS[2], "name": "Beauty gift over 500",
               "conditions": {"categories": ["beauty"]},
               "action": {"type": "threshold_gift", "threshold": "500",
                          "reward": {"type": "goods", "sku": "beauty-sample"}},
               "limits": {"per_user": 1}}),
    ];
    for p in promotions {
        call(store, "add_promotion", json!({ "promotion": p }))?;
    }
    let cart = json!({"time": NOW, "channel": "app", "region": "shanghai",
        "lines": [{"sku": "beauty-03", "category": "beauty", "price": "268.00", "qty": 2},
                  {"sku": "fruit-11", "category": "fruit", "price": "39.90", "qty": 3},
                  {"sku": "appliance-01", "category": "appliance", "price": "1999.00", "qty": 1}]});
    let member = json!({"kind": "member_no", "value": crate::generate::member_of(1)});
    s.quote = call(store, "quote", json!({"cart": cart, "user": member}))?;
    s.commit = call(
        store,
        "commit",
        json!({"quote": s.quote, "key": "demo-order-1"}),
    )?;
    Ok(())
}
