//! Every operator against a naive row-by-row evaluator on random data.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use roaring::RoaringBitmap;

use super::column::{Column, Value, ValueType};
use super::eval::Ctx;
use super::expr::{CmpOp, Expr, Lit, Literal, Name};

const NUMS: [f64; 8] = [-2.5, 0.0, 1.0, 3.0, 3.5, 10.0, 100.0, 1e12];
const ENUMS: [&str; 4] = ["a", "b", "c", "d"];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// One write: (user, column, values) — empty values clear.
#[derive(Debug, Clone)]
struct Write(u32, usize, Vec<Value>);

fn write(n_users: u32) -> impl Strategy<Value = Write> {
    (
        0..n_users,
        0usize..4,
        0usize..4,
        proptest::collection::vec(0usize..8, 0..3),
    )
        .prop_map(|(u, col, k, picks)| {
            let vals = if k == 0 {
                vec![]
            } else {
                match col {
                    0 => vec![Value::Bool(picks.first().copied().unwrap_or(0) % 2 == 0)],
                    1 => {
                        let mut v: Vec<String> =
                            picks.iter().map(|p| ENUMS[p % 4].to_owned()).collect();
                        v.sort();
                        v.dedup();
                        v.into_iter().map(Value::Text).collect()
                    }
                    2 => vec![Value::Number(NUMS[picks.first().copied().unwrap_or(3)])],
                    _ => vec![Value::Date(
                        now()
                            + chrono::TimeDelta::days(
                                picks.first().map_or(0, |p| *p as i64 * 7 - 25),
                            ),
                    )],
                }
            };
            Write(u, col, vals)
        })
}

const NAMES: [&str; 4] = ["b", "e", "n", "d"];

fn name(i: usize) -> Name {
    Name {
        name: NAMES[i].to_owned(),
        pos: 0,
    }
}

fn lit_for(col: usize) -> BoxedStrategy<Lit> {
    let l = |value| Lit { value, pos: 0 };
    match col {
        0 => any::<bool>().prop_map(move |b| l(Literal::Bool(b))).boxed(),
        1 => (0usize..5)
            .prop_map(move |i| l(Literal::Str(["a", "b", "c", "d", "zz"][i].to_owned())))
            .boxed(),
        2 => prop_oneof![(0usize..8).prop_map(|i| NUMS[i]), (-5.0f64..200.0)]
            .prop_map(move |x| l(Literal::Number(x)))
            .boxed(),
        _ => prop_oneof![
            (-40i64..40).prop_map(|d| Literal::Now(d * 86_400)),
            (-40i64..40).prop_map(|d| Literal::Str(
                (now() + chrono::TimeDelta::days(d))
                    .format("%Y-%m-%d")
                    .to_string()
            )),
        ]
        .prop_map(l)
        .boxed(),
    }
}

fn leaf() -> BoxedStrategy<Expr> {
    (0usize..4)
        .prop_flat_map(|c| {
            let ops = if c >= 2 {
                vec![
                    CmpOp::Eq,
                    CmpOp::Ne,
                    CmpOp::Lt,
                    CmpOp::Le,
                    CmpOp::Gt,
                    CmpOp::Ge,
                ]
            } else {
                vec![CmpOp::Eq, CmpOp::Ne]
            };
            let cmp = (proptest::sample::select(ops), lit_for(c)).prop_map(move |(op, value)| {
                Expr::Compare {
                    field: name(c),
                    op,
                    value,
                }
            });
            let inn =
                proptest::collection::vec(lit_for(c), 1..4).prop_map(move |values| Expr::In {
                    field: name(c),
                    values,
                });
            let mut options: Vec<BoxedStrategy<Expr>> = vec![
                cmp.boxed(),
                inn.boxed(),
                Just(Expr::Exists(name(c))).boxed(),
                Just(Expr::InAudience(Name {
                    name: "saved".into(),
                    pos: 0,
                }))
                .boxed(),
            ];
            if c >= 2 {
                options.push(
                    (lit_for(c), lit_for(c))
                        .prop_map(move |(lo, hi)| Expr::Between {
                            field: name(c),
                            lo,
                            hi,
                        })
                        .boxed(),
                );
            }
            if c == 0 {
                options.push(Just(Expr::Truthy(name(0))).boxed());
            }
            proptest::strategy::Union::new(options)
        })
        .boxed()
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(vec![a, b])),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(vec![a, b])),
            inner.prop_map(|a| Expr::Not(Box::new(a))),
        ]
    })
}

/// The naive evaluator: one row at a time, no bitmaps.
struct Rows {
    data: Vec<[Vec<Value>; 4]>,
    live: Vec<bool>,
    saved: Vec<bool>,
}

fn lit_value(col: usize, l: &Lit) -> Value {
    let tz = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    match (&l.value, col) {
        (Literal::Bool(b), _) => Value::Bool(*b),
        (Literal::Str(s), 1) => Value::Text(s.clone()),
        (Literal::Str(s), _) => Value::Date(super::eval::parse_date(s, tz).unwrap()),
        (Literal::Number(x), _) => Value::Number(*x),
        (Literal::Now(off), _) => Value::Date(now() + chrono::TimeDelta::seconds(*off)),
    }
}

fn cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::Text(x), Value::Text(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl Rows {
    fn col(n: &Name) -> usize {
        NAMES.iter().position(|x| *x == n.name).unwrap()
    }

    fn row(&self, u: usize, e: &Expr) -> bool {
        use std::cmp::Ordering::*;
        match e {
            Expr::And(terms) => terms.iter().all(|t| self.row(u, t)),
            Expr::Or(terms) => terms.iter().any(|t| self.row(u, t)),
            Expr::Not(a) => !self.row(u, a),
            Expr::Exists(n) => !self.data[u][Self::col(n)].is_empty(),
            Expr::Truthy(n) => self.data[u][Self::col(n)] == vec![Value::Bool(true)],
            Expr::InAudience(_) => self.saved[u],
            Expr::Compare { field, op, value } => {
                let c = Self::col(field);
                let lit = lit_value(c, value);
                let vals = &self.data[u][c];
                let any = |f: &dyn Fn(std::cmp::Ordering) -> bool| {
                    vals.iter().any(|v| cmp(v, &lit).is_some_and(f))
                };
                match op {
                    CmpOp::Eq => any(&|o| o == Equal),
                    CmpOp::Ne => !vals.is_empty() && !any(&|o| o == Equal),
                    CmpOp::Lt => any(&|o| o == Less),
                    CmpOp::Le => any(&|o| o != Greater),
                    CmpOp::Gt => any(&|o| o == Greater),
                    CmpOp::Ge => any(&|o| o != Less),
                }
            }
            Expr::Between { field, lo, hi } => {
                let c = Self::col(field);
                let (lo, hi) = (lit_value(c, lo), lit_value(c, hi));
                self.data[u][c].iter().any(|v| {
                    cmp(v, &lo).is_some_and(|o| o != Less)
                        && cmp(v, &hi).is_some_and(|o| o != Greater)
                })
            }
            Expr::In { field, values } => {
                let c = Self::col(field);
                values.iter().any(|l| {
                    let lit = lit_value(c, l);
                    self.data[u][c].iter().any(|v| cmp(v, &lit) == Some(Equal))
                })
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn bitmap_evaluation_matches_row_by_row(
        writes in proptest::collection::vec(write(120), 0..400),
        batch in proptest::collection::vec((0u32..120, proptest::option::of(0usize..8)), 0..120),
        retired in proptest::collection::vec(0u32..120, 0..10),
        saved in proptest::collection::vec(0u32..120, 0..40),
        subset in proptest::collection::vec(0u32..130, 0..30),
        e in expr(),
    ) {
        let n = 120usize;
        let types = [ValueType::Bool, ValueType::Enum, ValueType::Number, ValueType::Date];
        let mut cols: Vec<Column> = types.iter().map(|t| Column::new(*t)).collect();
        let mut rows = Rows {
            data: vec![Default::default(); n],
            live: vec![true; n],
            saved: vec![false; n],
        };
        // Incremental writes (exercise the rank-shifting insert of new values)...
        for Write(u, c, vals) in &writes {
            cols[*c].set(*u, vals);
            rows.data[*u as usize][*c] = vals.clone();
        }
        // ...then a batch over the number column (the rebuild path).
        let batch: Vec<(u32, Option<Value>)> = batch
            .into_iter()
            .map(|(u, v)| (u, v.map(|i| Value::Number(NUMS[i]))))
            .collect();
        cols[2].set_many(&batch);
        for (u, v) in &batch {
            rows.data[*u as usize][2] = v.iter().cloned().collect();
        }
        let mut universe: RoaringBitmap = (0..n as u32).collect();
        for r in &retired {
            universe.remove(*r);
            rows.live[*r as usize] = false;
        }
        let mut saved_set = RoaringBitmap::new();
        for s in &saved {
            saved_set.insert(*s);
            rows.saved[*s as usize] = true;
        }
        let columns: BTreeMap<String, Column> =
            NAMES.iter().map(|s| s.to_string()).zip(cols).collect();
        let audiences: BTreeMap<String, RoaringBitmap> = [("saved".to_owned(), saved_set)].into();
        let ctx = Ctx {
            columns: &columns,
            audiences: &audiences,
            universe: &universe,
            users: n as u64,
            now: now(),
            tz: chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        };
        let got: Vec<u32> = ctx.eval(&e).map_err(|err| TestCaseError::fail(format!("{e}: {err}")))?.iter().collect();
        let want: Vec<u32> = (0..n).filter(|u| rows.live[*u] && rows.row(*u, &e)).map(|u| u as u32).collect();
        prop_assert_eq!(&got, &want, "{}", e);
        // Evaluated for a subset of users only (how rule tags are recomputed for the users
        // whose inputs changed): the full answer restricted to that subset.
        let subset: RoaringBitmap = subset.into_iter().collect();
        let part: Vec<u32> = ctx.eval_for(&e, &subset).map_err(|err| TestCaseError::fail(format!("{e}: {err}")))?.iter().collect();
        let want_part: Vec<u32> = want.iter().copied().filter(|u| subset.contains(*u)).collect();
        prop_assert_eq!(part, want_part, "within {:?}: {}", subset, e);
        // The column's canonical form round-trips through its entries.
        for (name, c) in &columns {
            let back = Column::from_entries(c.value_type(), &c.entries());
            prop_assert_eq!(back.entries(), c.entries(), "{}", name);
        }
    }
}

/// One engine step of the rule-refresh property test.
#[derive(Debug, Clone)]
enum Step {
    /// `set_tag` of one user: (user, column 0..3, value pick; 0 = null).
    One(u8, usize, u8),
    /// `set_tags` over several users of one column.
    Many(Vec<(u8, u8)>, usize),
    /// A model tag write over several users.
    Model(Vec<(u8, u8)>),
    /// Save (or re-save) the audience `aud` from an expression pick.
    Save(u8),
    /// An order event for a user (moves the `orders`/`gmv`/`last_order` aggregates).
    Order(u8, u8),
    /// Time moves on (one day).
    Tick,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..30, 0usize..4, 0u8..6).prop_map(|(u, c, v)| Step::One(u, c, v)),
        2 => (proptest::collection::vec((0u8..30, 0u8..6), 1..8), 0usize..4)
            .prop_map(|(r, c)| Step::Many(r, c)),
        1 => proptest::collection::vec((0u8..30, 0u8..6), 1..6).prop_map(Step::Model),
        1 => (0u8..3).prop_map(Step::Save),
        2 => (0u8..30, 1u8..200).prop_map(|(u, a)| Step::Order(u, a)),
        1 => Just(Step::Tick),
    ]
}

fn json_value(col: usize, v: u8) -> serde_json::Value {
    if v == 0 {
        return serde_json::Value::Null;
    }
    match col {
        0 => serde_json::json!(v % 2 == 0),
        1 => serde_json::json!(["x", "y", "z"][v as usize % 3]),
        2 => serde_json::json!(f64::from(v) * 10.0),
        _ => serde_json::json!((now() - chrono::TimeDelta::days(i64::from(v) * 5))
            .format("%Y-%m-%d")
            .to_string()),
    }
}

const STEP_COLS: [(&str, &str); 4] = [("b", "bool"), ("c", "enum"), ("n", "number"), ("d", "date")];
const SAVED: [&str; 3] = ["n > 25", "c = \"y\" OR b", "EXISTS d AND NOT b"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Rule tags recomputed only for the users whose inputs changed hold, after every step,
    /// exactly what recomputing them for every user gives.
    #[test]
    fn rules_recomputed_for_changed_users_match_full_recompute(
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        use crate::Engine;
        let mut e = Engine::default();
        let mut t = now();
        let call = |e: &mut Engine, m: &str, a: serde_json::Value| {
            e.call_json(m, &a.to_string()).map(|_| ()).map_err(|err| TestCaseError::fail(format!("{m} {a}: {err}")))
        };
        let ts = |t: DateTime<Utc>| t.to_rfc3339();
        for (name, ty) in STEP_COLS {
            call(&mut e, "define_tag", serde_json::json!({"name": name, "type": ty, "now": ts(t)}))?;
        }
        call(&mut e, "define_tag", serde_json::json!({"name": "m", "type": "number", "model": "test", "now": ts(t)}))?;
        call(&mut e, "save_audience", serde_json::json!({"name": "aud", "expression": SAVED[0], "now": ts(t)}))?;
        let rules = [
            ("r1", "n BETWEEN 20 AND 40 AND NOT c = \"x\""),
            ("r2", "b OR d > now - 12d"),
            ("r3", "r1 AND NOT r2 OR in_audience(\"aud\") OR m > 30"),
            ("r4", "orders >= 2 OR gmv > 150 OR last_order < now - 1d"),
            ("r5", "NOT (r4 OR c IN (\"y\", \"z\"))"),
        ];
        for (name, rule) in rules {
            call(&mut e, "define_tag", serde_json::json!({"name": name, "rule": rule, "now": ts(t)}))?;
        }
        let user = |u: u8| format!("U{u}");
        for (k, s) in steps.iter().enumerate() {
            match s {
                Step::One(u, c, v) => call(&mut e, "set_tag", serde_json::json!({
                    "user": {"kind": "member_no", "value": user(*u)},
                    "tag": STEP_COLS[*c].0, "value": json_value(*c, *v), "now": ts(t)}))?,
                Step::Many(rows, c) => {
                    let mut seen = std::collections::BTreeSet::new();
                    let rows: Vec<_> = rows.iter().filter(|r| seen.insert(r.0)).collect();
                    call(&mut e, "set_tags", serde_json::json!({
                        "kind": "member_no",
                        "users": rows.iter().map(|r| user(r.0)).collect::<Vec<_>>(),
                        "tags": [{"name": STEP_COLS[*c].0,
                                  "values": rows.iter().map(|r| json_value(*c, r.1)).collect::<Vec<_>>()}],
                        "now": ts(t)}))?
                }
                Step::Model(rows) => {
                    let mut ids = Vec::new();
                    for (u, v) in rows {
                        call(&mut e, "set_tag", serde_json::json!({
                            "user": {"kind": "member_no", "value": user(*u)},
                            "tag": "b", "value": json_value(0, *v), "now": ts(t)}))?;
                        let o = e.lookup(&crate::event::UserRef::Id(
                            crate::ids::Identifier::new("member_no".parse().unwrap(), &user(*u)).unwrap(),
                        )).unwrap().unwrap();
                        ids.push((o, (*v > 0).then(|| Value::Number(f64::from(*v)))));
                    }
                    ids.sort_by_key(|r| r.0);
                    ids.dedup_by_key(|r| r.0);
                    e.write_model_tag("test", "m", ValueType::Number, &ids, t)
                        .map_err(|err| TestCaseError::fail(err.to_string()))?;
                }
                Step::Save(i) => call(&mut e, "save_audience", serde_json::json!({
                    "name": "aud", "expression": SAVED[*i as usize], "now": ts(t)}))?,
                Step::Order(u, a) => {
                    let ev = serde_json::json!({
                        "kind": "order", "key": format!("k{k}"), "time": ts(t),
                        "source": {"platform": "app", "program": "p"},
                        "user": {"kind": "member_no", "value": user(*u)},
                        "order_id": format!("o{k}"), "amount": a.to_string(),
                    });
                    e.ingest_json(&ev.to_string()).map_err(|err| TestCaseError::fail(format!("{ev}: {err}")))?;
                }
                Step::Tick => t += chrono::TimeDelta::days(1),
            }
            let clock = e.state.tags.clock.unwrap_or(t);
            for (name, rule) in rules {
                let parsed = super::expr::parse(rule).unwrap();
                if parsed.uses_now() && e.state.tags.rule_clocks.get(name) != Some(&clock) {
                    continue; // stale by design until touched (time moved, no input did)
                }
                let (_, full) = e.state.tags.evaluate(e.tag_reads(), rule, clock).map_err(|err| TestCaseError::fail(err.to_string()))?;
                let kept = match e.state.tags.columns.0.get(name) {
                    Some(Column::Bool { yes, .. }) => yes & e.state.users.live(),
                    _ => RoaringBitmap::new(),
                };
                prop_assert_eq!(kept, full, "{} after {:?}", name, s);
            }
        }
    }
}

/// Deleting an audience a rule tag or another saved audience uses is refused (the tag would
/// silently stop refreshing); once no saved audience uses it (rule tags are permanent), it
/// can go.
#[test]
fn an_audience_in_use_cannot_be_deleted() {
    use crate::{Engine, ErrorCode};
    let mut e = Engine::default();
    let call = |e: &mut Engine, m: &str, a: serde_json::Value| e.call_json(m, &a.to_string());
    let t = "2026-03-01T00:00:00Z";
    for (name, expr) in [("base", "orders >= 1"), ("alone", "orders >= 5")] {
        call(
            &mut e,
            "save_audience",
            serde_json::json!({"name": name, "expression": expr, "now": t}),
        )
        .unwrap();
    }
    call(
        &mut e,
        "define_tag",
        serde_json::json!({"name": "buyer", "rule": "in_audience(\"base\")", "now": t}),
    )
    .unwrap();
    call(
        &mut e,
        "combine_audiences",
        serde_json::json!({"name": "both", "op": "union",
        "audiences": ["base", "alone"], "now": t}),
    )
    .unwrap();
    let before = e.snapshot();
    let err = call(
        &mut e,
        "delete_audience",
        serde_json::json!({"name": "base"}),
    )
    .unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        (ErrorCode::InvalidArgument, Some("name"))
    );
    let text = err.to_string();
    assert!(
        text.contains("rule tag \"buyer\"") && text.contains("saved audience \"both\""),
        "{text}"
    );
    let err = call(
        &mut e,
        "delete_audience",
        serde_json::json!({"name": "alone"}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("saved audience \"both\""), "{err}");
    assert!(before == e.snapshot());
    // Once "both" is gone, "alone" can go; "base" stays while the rule tag uses it.
    call(
        &mut e,
        "delete_audience",
        serde_json::json!({"name": "both"}),
    )
    .unwrap();
    call(
        &mut e,
        "delete_audience",
        serde_json::json!({"name": "alone"}),
    )
    .unwrap();
    assert!(call(
        &mut e,
        "delete_audience",
        serde_json::json!({"name": "base"})
    )
    .is_err());
}

/// Number tags hold finite values (an infinity must not vanish as if missing): an infinity or NaN (handed over as text, JSON having none) is refused
/// with the value named, and nothing changes.
#[test]
fn set_tags_refuses_infinities_by_name() {
    use crate::{Engine, ErrorCode};
    let mut e = Engine::default();
    for bad in ["inf", "-inf", "Infinity", "NaN"] {
        let before = e.snapshot();
        let err = e
            .call_json(
                "set_tags",
                &serde_json::json!({"kind": "member_no", "users": ["M1", "M2"],
                    "tags": [{"name": "score", "type": "number", "values": [1.0, bad]}],
                    "now": "2026-03-01T00:00:00Z"})
                .to_string(),
            )
            .unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            (ErrorCode::InvalidArgument, Some("tags[0].values[1]"))
        );
        assert!(err.to_string().contains(bad), "{err}");
        assert!(before == e.snapshot());
    }
    // An enum tag may hold the text "inf".
    e.call_json(
        "set_tags",
        &serde_json::json!({"kind": "member_no", "users": ["M1"],
            "tags": [{"name": "label", "type": "enum", "values": ["inf"]}],
            "now": "2026-03-01T00:00:00Z"})
        .to_string(),
    )
    .unwrap();
}

/// A chain `a OR b OR …` is one node however long it is, so no walk of an expression recurses
/// deeper than its parentheses: a chain of 100,000 operators, flat and inside the deepest
/// accepted nesting, is parsed, evaluated, saved, refreshed, listed and dropped on a test
/// thread's stack (2 MiB, unoptimized), and so are combinations of 20,001 saved audiences and
/// a rule tag naming them all. (A binary tree per operator overflowed such a stack at a few
/// thousand operators, killing the host process.)
#[test]
fn a_chain_of_any_length_fits_on_a_small_stack() {
    use crate::Engine;
    let mut e = Engine::default();
    let t = now().to_rfc3339();
    let chain = |n: usize| vec!["gmv > 1"; n + 1].join(" OR ");
    let nested = |inner: String| format!("{}{inner}{}", "(".repeat(199), ")".repeat(199));
    for (name, expression) in [("flat", chain(100_000)), ("deep", nested(chain(100_000)))] {
        let args = serde_json::json!({"name": name, "expression": expression, "now": t});
        e.call_json("save_audience", &args.to_string()).unwrap();
        let args = serde_json::json!({"name": name, "now": t});
        e.call_json("refresh_audience", &args.to_string()).unwrap();
    }
    let names: Vec<String> = (0..=20_000).map(|i| format!("a{i}")).collect();
    let rule = names
        .iter()
        .map(|n| format!("in_audience(\"{n}\")"))
        .collect::<Vec<_>>()
        .join(" AND ");
    for n in &names {
        let args = serde_json::json!({"name": n, "expression": "gmv > 1", "now": t});
        e.call_json("save_audience", &args.to_string()).unwrap();
    }
    for op in ["union", "intersection", "difference"] {
        let args =
            serde_json::json!({"name": format!("c_{op}"), "op": op, "audiences": names, "now": t});
        e.call_json("combine_audiences", &args.to_string()).unwrap();
    }
    let args = serde_json::json!({"name": "all_of_them", "rule": rule, "now": t});
    e.call_json("define_tag", &args.to_string()).unwrap();
    e.call_json("audiences", "{}").unwrap();
    drop(e);
}
