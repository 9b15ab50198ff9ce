//! Points and tier as columns of the tag index, so that audiences filter on them:
//! `points("brand-a") >= 1000`, `tier("brand-a") IN ("gold", "platinum")`,
//! `EXISTS points("brand-a")` (members holding an account).
//!
//! Each program has two columns, created with the program: `points("<id>")` (number: the
//! posted balance, for members with an account) and `tier("<id>")` (enum: the tier name, for
//! members holding one). They are kept current incrementally: after every loyalty write (a
//! command, an order or refund event, a merge) only the members it touched are re-read from the
//! ledger and the tier ladders — the members named by the write, those on either side of the
//! transfers it wrote, and, for a tier evaluation, the members whose tier moved — and the rule
//! tags reading those columns are recomputed for those users only (the tag index's dirty sets).

use std::collections::BTreeSet;

use super::commands::LoyaltyCommand;
use super::ledger::AccountKind;
use super::Loyalty;
use crate::event::UserRef;
use crate::ids::OneId;
use crate::tags::{IndexWrite, Value, ValueType};

/// The index column holding members' points in `program`: `points("<program>")`.
///
/// ```
/// assert_eq!(userops::loyalty::points_column("brand-a"), r#"points("brand-a")"#);
/// ```
pub fn points_column(program: &str) -> String {
    format!(
        "points({})",
        crate::tags::expr::Literal::Str(program.to_owned())
    )
}

/// The index column holding members' tier names in `program`: `tier("<program>")`.
pub fn tier_column(program: &str) -> String {
    format!(
        "tier({})",
        crate::tags::expr::Literal::Str(program.to_owned())
    )
}

/// What a loyalty write may have touched, read before it runs.
pub(crate) struct Touch {
    /// Transfers in the ledger before the write: the ones after it are the write's.
    since: usize,
    /// The member the write names, if any.
    users: Vec<OneId>,
    /// Whether every tiered member may have moved (a tier evaluation).
    all_tiers: bool,
}

/// The member a command names, if any.
pub(crate) fn named_user(c: &LoyaltyCommand) -> Option<&UserRef> {
    match c {
        LoyaltyCommand::Balance { user, .. }
        | LoyaltyCommand::Statement { user, .. }
        | LoyaltyCommand::Tier { user, .. }
        | LoyaltyCommand::Benefits { user, .. }
        | LoyaltyCommand::Earn { user, .. }
        | LoyaltyCommand::Spend { user, .. }
        | LoyaltyCommand::Convert { user, .. }
        | LoyaltyCommand::AddGrowth { user, .. }
        | LoyaltyCommand::RecordSpend { user, .. }
        | LoyaltyCommand::ClaimBenefit { user, .. }
        | LoyaltyCommand::CompleteTask { user, .. } => Some(user),
        _ => None,
    }
}

/// The two index columns of `program` and their types, created with the program (so that
/// audiences may name a program no member has touched yet, and an unknown program is an
/// error).
pub(crate) fn columns(program: &str) -> [(String, ValueType); 2] {
    [
        (points_column(program), ValueType::Number),
        (tier_column(program), ValueType::Enum),
    ]
}

impl Loyalty {
    /// Note what a command may touch, before it runs. `named`: the member the command names,
    /// when already known.
    pub(crate) fn touch_for(&self, c: &LoyaltyCommand, named: Option<OneId>) -> Touch {
        Touch {
            since: self.ledger.transfers().len(),
            users: named.into_iter().collect(),
            all_tiers: matches!(c, LoyaltyCommand::EvaluateTiers { .. }),
        }
    }

    /// [`Touch`] for a write naming `users` directly (events, merges).
    pub(crate) fn touch(&self, users: &[OneId]) -> Touch {
        Touch {
            since: self.ledger.transfers().len(),
            users: users.to_vec(),
            all_tiers: false,
        }
    }

    /// After a write noted by `t`: the points and tier of every member it touched (those it
    /// names, `named` — the member a command named, resolved after the write —, those on either
    /// side of the transfers it wrote, and for a tier evaluation every tiered member), per
    /// program, as read from the ledger and the ladders now.
    pub(crate) fn index_writes(&self, t: Touch, named: Option<OneId>) -> Vec<IndexWrite> {
        let mut users: BTreeSet<OneId> = t.users.into_iter().collect();
        users.extend(named);
        let ledger = &self.ledger;
        for tr in ledger.transfers().get(t.since..).unwrap_or_default() {
            for a in [tr.debit, tr.credit] {
                let acc = &ledger.accounts()[a.0 as usize];
                // An account a merge absorbed speaks for a person who is gone.
                if let (AccountKind::Member(o), None) = (acc.kind, acc.merged_into) {
                    users.insert(o);
                }
            }
        }
        let mut writes = Vec::new();
        for p in &self.programs {
            let (pc, tc) = (points_column(&p.spec.id), tier_column(&p.spec.id));
            let mut visit = |o: OneId| {
                let points = ledger
                    .member_account(p.book, o)
                    .map(|_| Value::Number(ledger.balance(p.book, o) as f64));
                writes.push(IndexWrite {
                    column: pc.clone(),
                    value_type: ValueType::Number,
                    user: o,
                    values: points.into_iter().collect(),
                });
                writes.push(IndexWrite {
                    column: tc.clone(),
                    value_type: ValueType::Enum,
                    user: o,
                    values: self.tier_of(p, o).map(Value::Text).into_iter().collect(),
                });
            };
            users.iter().copied().for_each(&mut visit);
            if t.all_tiers && p.spec.tiers.is_some() {
                p.members
                    .keys()
                    .copied()
                    .filter(|o| !users.contains(o))
                    .for_each(&mut visit);
            }
        }
        writes
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use roaring::RoaringBitmap;
    use serde_json::{json, Value as J};

    use crate::error::ErrorCode;
    use crate::Engine;

    const USERS: u64 = 5;

    #[derive(Debug, Clone)]
    enum Op {
        Earn {
            u: u64,
            q: bool,
            points: i64,
            expiring: bool,
        },
        Spend {
            u: u64,
            q: bool,
            points: i64,
        },
        Growth {
            u: u64,
            count: u32,
        },
        Order {
            u: u64,
            amount: u32,
        },
        Refund {
            u: u64,
            amount: u32,
        },
        Evaluate,
        Expire,
        Tick,
    }

    fn op() -> impl Strategy<Value = Op> {
        let u = 0..USERS;
        prop_oneof![
            (u.clone(), any::<bool>(), 1i64..200, any::<bool>()).prop_map(
                |(u, q, points, expiring)| Op::Earn {
                    u,
                    q,
                    points,
                    expiring
                }
            ),
            (u.clone(), any::<bool>(), 1i64..150).prop_map(|(u, q, points)| Op::Spend {
                u,
                q,
                points
            }),
            (u.clone(), 1u32..40).prop_map(|(u, count)| Op::Growth { u, count }),
            (u.clone(), 1u32..300).prop_map(|(u, amount)| Op::Order { u, amount }),
            (u, 1u32..300).prop_map(|(u, amount)| Op::Refund { u, amount }),
            Just(Op::Evaluate),
            Just(Op::Expire),
            Just(Op::Tick),
        ]
    }

    fn user(u: u64) -> J {
        json!({"kind": "member_no", "value": format!("M{u}")})
    }

    const RULES: [(&str, &str); 3] = [
        ("rich", r#"points("p") >= 100"#),
        ("golden", r#"tier("p") = "gold""#),
        ("mixed", r#"points("q") > 0 AND NOT tier("p") = "silver""#),
    ];

    fn engine() -> Engine {
        let mut e = Engine::default();
        let mut call = |m: &str, a: J| e.call_json(m, &a.to_string()).unwrap();
        call(
            "create_program",
            json!({"program": {"id": "p",
            "earn": {"points_per_unit": "1"},
            "growth": {"weights": {"login": 1}},
            "tiers": {"basis": "growth", "window": "rolling_12_months", "grace_days": 0,
                      "levels": [{"name": "silver", "threshold": "10"},
                                 {"name": "gold", "threshold": "50"}]}}}),
        );
        call("create_program", json!({"program": {"id": "q"}}));
        for (name, rule) in RULES {
            call(
                "define_tag",
                json!({"name": name, "rule": rule, "now": "2026-01-01T00:00:00Z"}),
            );
        }
        e
    }

    /// What a full recompute from the ledger and the ladders says, per rule.
    fn expected(e: &Engine) -> Vec<RoaringBitmap> {
        let lo = &e.state.loyalty;
        let (p, q) = (lo.program("p").unwrap(), lo.program("q").unwrap());
        let mut out = vec![RoaringBitmap::new(); 3];
        for u in 0..USERS {
            let id: crate::event::UserRef = serde_json::from_value(user(u)).unwrap();
            let Some(o) = e.lookup(&id).unwrap() else {
                continue;
            };
            let d = e.state.users.dense(o).unwrap();
            let has = |b| lo.ledger().member_account(b, o).is_some();
            let tier = lo.tier_of(p, o);
            if has(p.book) && lo.ledger().balance(p.book, o) >= 100 {
                out[0].insert(d);
            }
            if tier.as_deref() == Some("gold") {
                out[1].insert(d);
            }
            if has(q.book)
                && lo.ledger().balance(q.book, o) > 0
                && tier.as_deref() != Some("silver")
            {
                out[2].insert(d);
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

        /// After every loyalty write the points and tier columns, the rule tags reading them
        /// and fresh audience evaluations agree with a full recompute from the ledger.
        #[test]
        fn points_and_tier_columns_follow_every_write(ops in prop::collection::vec(op(), 1..40)) {
            let mut e = engine();
            let mut day = 1i64;
            let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
            for (k, o) in ops.iter().enumerate() {
                let time = (t0 + chrono::Duration::days(day)).to_rfc3339();
                let key = format!("k{k}");
                let prog = |q: bool| if q { "q" } else { "p" };
                // Refused writes (a spend above the balance, a refund of nothing) are part of
                // the test: they must leave the index as it was.
                let _ = match o {
                    Op::Earn { u, q, points, expiring } => {
                        let mut a = json!({"user": user(*u), "program": prog(*q), "points": points,
                            "key": key, "time": time});
                        if *expiring {
                            a["expires"] = json!((t0 + chrono::Duration::days(day + 3)).to_rfc3339());
                        }
                        e.call_json("earn", &a.to_string())
                    }
                    Op::Spend { u, q, points } => e.call_json("spend", &json!({"user": user(*u),
                        "program": prog(*q), "points": points, "key": key, "time": time}).to_string()),
                    Op::Growth { u, count } => e.call_json("add_growth", &json!({"user": user(*u),
                        "program": "p", "behaviour": "login", "count": count, "key": key,
                        "time": time}).to_string()),
                    Op::Order { u, amount } => e.ingest_json(&json!({"kind": "order", "key": key,
                        "time": time, "source": {"platform": "app", "program": "p"},
                        "user": user(*u), "order_id": format!("O{u}"), "amount": amount.to_string()})
                        .to_string()).map(|_| String::new()),
                    Op::Refund { u, amount } => e.ingest_json(&json!({"kind": "refund", "key": key,
                        "time": time, "source": {"platform": "app", "program": "p"},
                        "user": user(*u), "order_id": format!("O{u}"), "amount": amount.to_string()})
                        .to_string()).map(|_| String::new()),
                    Op::Evaluate => e.call_json("evaluate_tiers", &json!({"now": time}).to_string()),
                    Op::Expire => e.call_json("expire", &json!({"now": time}).to_string()),
                    Op::Tick => { day += 200; Ok(String::new()) }
                };
                let want = expected(&e);
                for (i, (name, rule)) in RULES.iter().enumerate() {
                    let now = t0 + chrono::Duration::days(day);
                    let got = e.audience_at(name, now).unwrap();
                    let fresh = e.audience_at(rule, now).unwrap();
                    let ids = |r: &crate::tags::AudienceResult| {
                        r.oneids.iter().map(|o| e.state.users.dense(*o).unwrap()).collect::<RoaringBitmap>()
                    };
                    prop_assert_eq!(&ids(&got), &want[i], "rule tag {} after {:?}", name, o);
                    prop_assert_eq!(&ids(&fresh), &want[i], "expression {} after {:?}", rule, o);
                }
            }
        }
    }

    #[test]
    fn unknown_program_is_a_typed_error_pointing_at_it() {
        let e = engine();
        let err = e
            .audience(r#"tier("p") = "gold" AND points("pp") > 1"#)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::AudienceSyntax);
        assert!(err.to_string().contains("column 24"), "{err}");
        assert!(err.to_string().contains(r#"points("p")"#), "{err}");
        // The expression prints as it parses.
        let x =
            crate::tags::expr::parse(r#"points("a \"b\"") >= 1000 OR EXISTS tier("c")"#).unwrap();
        assert_eq!(crate::tags::expr::parse(&x.to_string()).unwrap(), x);
        assert_eq!(
            x.to_string(),
            r#"points("a \"b\"") >= 1000.0 OR EXISTS tier("c")"#
        );
        // A tag may still be called points.
        assert!(crate::tags::expr::parse("points > 3").is_ok());
    }
}
