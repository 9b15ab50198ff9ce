//! Stage rules on hand-made histories, the decomposition identity on random data, and the batch
//! path against the incremental one.

use std::collections::{BTreeMap, BTreeSet};

use chrono::DateTime;
use proptest::prelude::*;

use super::*;
use crate::config::{Config, Period};
use crate::{Engine, Event};

fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn month8() -> PeriodClock {
    PeriodClock::new(Period::Month, 8 * 3600)
}

/// Stages of one user from registration on, as names.
fn stages_of(clock: PeriodClock, reg: &str, acts: &[&str], through: &str) -> Vec<&'static str> {
    let act: Vec<i64> = acts.iter().map(|a| ms(a)).collect();
    let users = vec![1u64; act.len()];
    let t = stage_table(
        ActivityTable {
            user: &users,
            time: &act,
        },
        Some(Registrations {
            user: &[1],
            time: &[ms(reg)],
        }),
        StageOptions::new(clock).through(clock.index(ms(through)).unwrap()),
    )
    .unwrap();
    t.row(0)
        .iter()
        .filter_map(|&c| Stage::from_code(c).map(Stage::name))
        .collect()
}

#[test]
fn registration_in_the_last_second_of_a_month() {
    // 2026-01-31 23:59:59 +08:00 is January: new in January, then last-period-new in February.
    let s = stages_of(
        month8(),
        "2026-01-31T23:59:59+08:00",
        &["2026-01-31T23:59:59+08:00", "2026-02-01T00:00:00+08:00"],
        "2026-03-15T00:00:00+08:00",
    );
    assert_eq!(s, ["new", "last_period_new", "dormant"]);
    // One second later is February: new in February, and March is the last-period-new month.
    let s = stages_of(
        month8(),
        "2026-02-01T00:00:00+08:00",
        &["2026-03-01T00:00:00+08:00"],
        "2026-03-15T00:00:00+08:00",
    );
    assert_eq!(s, ["new", "last_period_new"]);
}

#[test]
fn time_zone_boundary() {
    // 16:30 UTC on Jan 31 is Feb 1 in +08:00 but still Jan 31 in UTC.
    let reg = "2026-01-10T00:00:00Z";
    let acts = ["2026-01-31T16:30:00Z"];
    let beijing = stages_of(month8(), reg, &acts, "2026-02-10T00:00:00Z");
    assert_eq!(beijing, ["new", "last_period_new"]);
    let utc = stages_of(
        PeriodClock::new(Period::Month, 0),
        reg,
        &acts,
        "2026-02-10T00:00:00Z",
    );
    assert_eq!(utc, ["new", "dormant"]);
}

#[test]
fn gaps_of_exactly_the_thresholds() {
    let c = month8();
    // Active Jan (reg), Feb; nothing in Mar; back in Apr: gap of exactly 1 → awakened.
    let s = stages_of(
        c,
        "2026-01-05T00:00:00+08:00",
        &["2026-02-05T00:00:00+08:00", "2026-04-30T23:59:59+08:00"],
        "2026-04-01T00:00:00+08:00",
    );
    assert_eq!(s, ["new", "last_period_new", "dormant", "awakened"]);
    // Gap of exactly 2 (Mar, Apr) → churned in Apr, returned in May.
    let s = stages_of(
        c,
        "2026-01-05T00:00:00+08:00",
        &["2026-02-05T00:00:00+08:00", "2026-05-01T00:00:00+08:00"],
        "2026-05-01T00:00:00+08:00",
    );
    assert_eq!(
        s,
        ["new", "last_period_new", "dormant", "churned", "returned"]
    );
    // Seed 003: active Jan 2, nothing by Feb 5 → still dormant in February (natural months).
    let s = stages_of(
        c,
        "2025-12-01T00:00:00+08:00",
        &["2025-12-03T00:00:00+08:00", "2026-01-02T00:00:00+08:00"],
        "2026-02-05T00:00:00+08:00",
    );
    assert_eq!(s, ["new", "last_period_new", "dormant"]);
}

#[test]
fn weekly_periods_and_configurable_churn() {
    let c = PeriodClock::new(Period::Week, 8 * 3600);
    let act: Vec<i64> = ["2026-03-02T08:00:00+08:00", "2026-03-30T08:00:00+08:00"]
        .iter()
        .map(|a| ms(a))
        .collect();
    let t = stage_table(
        ActivityTable {
            user: &[5, 5],
            time: &act,
        },
        None,
        StageOptions::new(c).rules(StageRules::new(4).unwrap()),
    )
    .unwrap();
    let names: Vec<_> = t
        .row(0)
        .iter()
        .map(|&c| Stage::from_code(c).unwrap().name())
        .collect();
    // Weeks of Mar 2, 9, 16, 23, 30: 3 quiet weeks < 4 → dormant, then awakened.
    assert_eq!(names, ["new", "dormant", "dormant", "dormant", "awakened"]);
}

#[test]
fn bad_input_is_a_typed_error() {
    let c = StageOptions::new(month8());
    let e = stage_table(
        ActivityTable {
            user: &[1, 2],
            time: &[0],
        },
        None,
        c,
    )
    .unwrap_err();
    assert!(matches!(e, LifecycleError::LengthMismatch { .. }));
    // Activity before registration: refused by default, with the row.
    let e = stage_table(
        ActivityTable {
            user: &[9, 1],
            time: &[ms("2026-03-01T00:00:00Z"), ms("2026-01-01T00:00:00Z")],
        },
        Some(Registrations {
            user: &[1],
            time: &[ms("2026-02-01T00:00:00Z")],
        }),
        c,
    )
    .unwrap_err();
    assert!(matches!(
        e,
        LifecycleError::ActivityBeforeRegistration {
            row: Some(1),
            user: 1,
            ..
        }
    ));
    // ... or moved to the first activity when asked.
    let t = stage_table(
        ActivityTable {
            user: &[1],
            time: &[ms("2026-01-01T12:00:00Z")],
        },
        Some(Registrations {
            user: &[1],
            time: &[ms("2026-02-01T12:00:00Z")],
        }),
        c.early_activity(EarlyActivity::RegisterAtFirstActivity),
    )
    .unwrap();
    assert_eq!(t.stage(0, t.first_period()), Some(Stage::New));
    assert_eq!(t.stage(0, t.first_period() + 1), Some(Stage::Dormant));
    let e = stage_table(
        ActivityTable {
            user: &[],
            time: &[],
        },
        Some(Registrations {
            user: &[1, 1],
            time: &[0, 1],
        }),
        c,
    )
    .unwrap_err();
    assert!(matches!(
        e,
        LifecycleError::ConflictingRegistration { row: 1, user: 1 }
    ));
    let e = stage_table(
        ActivityTable {
            user: &[1],
            time: &[i64::MIN],
        },
        None,
        c,
    )
    .unwrap_err();
    assert!(matches!(
        e,
        LifecycleError::TimeOutOfRange { row: Some(0), .. }
    ));
    // Empty input: an empty table, no error.
    let t = stage_table(
        ActivityTable {
            user: &[],
            time: &[],
        },
        None,
        c,
    )
    .unwrap();
    assert!(t.users().is_empty());
    assert!(LifecycleReport::from_table(&t).unwrap().periods.is_empty());
}

#[test]
fn empty_periods_and_unordered_rows() {
    // Two users, registered in Jan; nobody active in Feb or Mar; rows shuffled.
    let c = month8();
    let jan = ms("2026-01-10T00:00:00+08:00");
    let apr = ms("2026-04-10T00:00:00+08:00");
    let t = stage_table(
        ActivityTable {
            user: &[2, 1, 2, 1],
            time: &[apr, apr, jan, jan],
        },
        None,
        StageOptions::new(c),
    )
    .unwrap();
    let r = LifecycleReport::from_table(&t).unwrap();
    let labels: Vec<_> = r.periods.iter().map(|p| p.period.as_str()).collect();
    assert_eq!(labels, ["2026-01", "2026-02", "2026-03", "2026-04"]);
    assert_eq!(r.periods[1].actives, 0);
    assert_eq!(r.periods[1].active_rate, Some(0.0));
    assert_eq!(r.periods[2].count(Stage::Churned), 2);
    assert_eq!(r.periods[3].count(Stage::Returned), 2);
    let d = r.periods[3].decomposition.as_ref().unwrap();
    assert_eq!(d.term(Group::Churned).unwrap().rate, Some(1.0));
    assert_eq!(d.term(Group::New).unwrap().rate, None);
}

/// The seed-003 shape: actives(m) = new + old·r_old + lastnew·r_new + dormant·wake + churned·ret.
#[test]
fn decomposition_by_hand_and_projection() {
    let c = month8();
    let m = |s: &str| ms(&format!("{s}-15T12:00:00+08:00"));
    // Users 1-4 registered in Jan; 5 in Feb; 6 in Mar.
    let rows: &[(u64, &str)] = &[
        (1, "2026-01"),
        (1, "2026-02"),
        (1, "2026-03"), // active, active
        (2, "2026-01"),
        (2, "2026-02"), // active → dormant in Mar
        (3, "2026-01"),
        (3, "2026-03"), // dormant in Feb → awakened
        (4, "2026-01"), // dormant, churned
        (5, "2026-02"),
        (5, "2026-03"), // new → last-period-new
        (6, "2026-03"), // new
    ];
    let users: Vec<u64> = rows.iter().map(|r| r.0).collect();
    let times: Vec<i64> = rows.iter().map(|r| m(r.1)).collect();
    let t = stage_table(
        ActivityTable {
            user: &users,
            time: &times,
        },
        None,
        StageOptions::new(c),
    )
    .unwrap();
    let r = LifecycleReport::from_table(&t).unwrap();
    let mar = r.period("2026-03").unwrap();
    assert_eq!((mar.registered, mar.actives), (6, 4));
    assert_eq!(mar.active_rate, Some(4.0 / 6.0));
    let d = mar.decomposition.as_ref().unwrap();
    assert_eq!(d.new, 1);
    let term = |g| d.term(g).map(|t| (t.size, t.retained)).unwrap();
    assert_eq!(term(Group::OldActive), (2, 1)); // users 1, 2 in Feb
    assert_eq!(term(Group::New), (1, 1)); // user 5
    assert_eq!(term(Group::Dormant), (2, 1)); // users 3, 4
    assert_eq!(term(Group::Churned), (0, 0));
    assert_eq!(mar.count(Stage::Awakened), 1);
    assert_eq!(mar.count(Stage::Churned), 1);
    assert!(mar.transitions.contains(&Transition {
        from: Some(Stage::Dormant),
        to: Stage::Awakened,
        users: 1
    }));

    // Projection with the observed rates and a target solved for the return rate.
    let rates = Rates::observed(d);
    let p = project(mar, rates, 2).unwrap();
    // April groups: old active {1,3,5}=3 ·0.5 + new {6}=1 ·1 + dormant {2}=1 ·0.5 + churned {4}=1 ·0 + 2 new.
    assert!((p.actives - (1.5 + 1.0 + 0.5 + 0.0 + 2.0)).abs() < 1e-12);
    assert_eq!(p.registered, 8);
    let need = required_lever(mar, rates, 2, 5.5 / 8.0, Lever::ReturnRate).unwrap();
    assert!((need.required - 0.5).abs() < 1e-12 && need.feasible);
    let hard = required_lever(mar, rates, 2, 0.95, Lever::ReturnRate).unwrap();
    assert!(!hard.feasible);
    let n = required_lever(mar, rates, 0, 0.6, Lever::NewUsers).unwrap();
    // (N + 3) / (6 + N) = 0.6 → N = 1.5
    assert!((n.required - 1.5).abs() < 1e-12 && n.feasible);
    let bad = Rates {
        wake_rate: 1.5,
        ..rates
    };
    assert!(matches!(
        project(mar, bad, 0),
        Err(LifecycleError::BadRate {
            field: "wake_rate",
            ..
        })
    ));
}

/// A naive model: a set of (user, period) actives, registration periods, then the definitions
/// of SPEC §5 written directly.
fn naive(
    acts: &[(u64, i64)],
    regs: &BTreeMap<u64, i64>,
    p: i64,
    churn: i64,
) -> BTreeMap<u64, &'static str> {
    let active: BTreeSet<(u64, i64)> = acts.iter().copied().collect();
    let is_active = |u: u64, q: i64| q == regs[&u] || active.contains(&(u, q));
    let mut out = BTreeMap::new();
    for (&u, &r) in regs {
        if r > p {
            continue;
        }
        // Periods of inactivity ending at q (inclusive).
        let quiet = |q: i64| (r..=q).rev().take_while(|&x| !is_active(u, x)).count() as i64;
        let s = if r == p {
            "new"
        } else if is_active(u, p) {
            let gap = quiet(p - 1);
            if p == r + 1 {
                "last_period_new"
            } else if gap == 0 {
                "active"
            } else if gap < churn {
                "awakened"
            } else {
                "returned"
            }
        } else if quiet(p) < churn {
            "dormant"
        } else {
            "churned"
        };
        out.insert(u, s);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn identity_and_naive_stages_on_random_data(
        rows in prop::collection::vec((0u64..40, 0i64..12, 0i64..86_400_000 * 28), 0..300),
        churn in 2u32..4,
    ) {
        let c = month8();
        let base = ms("2025-01-01T00:00:00+08:00");
        let clock_p = |mo: i64, off: i64| {
            let start = c.start_ms(c.index(base).unwrap() + mo);
            start + off
        };
        let users: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let times: Vec<i64> = rows.iter().map(|r| clock_p(r.1, r.2)).collect();
        let t = stage_table(
            ActivityTable { user: &users, time: &times },
            None,
            StageOptions::new(c).rules(StageRules::new(churn).unwrap()),
        ).unwrap();
        let report = LifecycleReport::from_table(&t).unwrap();
        let first = c.index(base).unwrap();
        let acts: Vec<(u64, i64)> = rows.iter().map(|r| (r.0, first + r.1)).collect();
        let mut regs = BTreeMap::new();
        for &(u, p) in &acts {
            let e = regs.entry(u).or_insert(p);
            *e = (*e).min(p);
        }
        for (i, summary) in report.periods.iter().enumerate() {
            let p = t.first_period() + i as i64;
            let want = naive(&acts, &regs, p, i64::from(churn));
            let got: BTreeMap<u64, &str> = t.users().iter().enumerate()
                .filter_map(|(u, &id)| t.stage(u, p).map(|s| (id, s.name()))).collect();
            prop_assert_eq!(&got, &want);
            // Independent count of actives: registered in p, or an activity row in p.
            let actives = regs.iter().filter(|(&u, &r)| r == p || (r < p && acts.contains(&(u, p)))).count() as u64;
            prop_assert_eq!(summary.actives, actives);
            prop_assert_eq!(summary.registered, regs.values().filter(|&&r| r <= p).count() as u64);
            if let Some(d) = &summary.decomposition {
                let sum: u64 = d.new + d.terms.iter().map(|t| t.retained).sum::<u64>();
                prop_assert_eq!(sum, actives);
                // Each rate × size is the retained count, to the unit.
                for term in &d.terms {
                    if let Some(r) = term.rate {
                        prop_assert_eq!((r * term.size as f64).round() as u64, term.retained);
                    }
                }
            }
        }
    }
}

fn event(json: String) -> Event {
    Event::from_json(&json).unwrap()
}

/// Batch and incremental give the same stage for every user in every period.
#[test]
fn batch_equals_incremental() {
    let mut engine = Engine::new(Config::builder().period(Period::Month).build().unwrap());
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let base = ms("2025-06-01T00:00:00+08:00");
    let (mut au, mut at, mut ru, mut rt) = (vec![], vec![], vec![], vec![]);
    for u in 1..=60u64 {
        let reg = base + (next() % (200 * 86_400_000)) as i64;
        engine
            .ingest(event(format!(
                r#"{{"kind":"register","key":"r{u}","time":"{}","source":{{"platform":"app","program":"p"}},"user":{{"oneid_hint":0}}}}"#,
                chrono::DateTime::from_timestamp_millis(reg).unwrap().to_rfc3339()
            ).replace(r#"{"oneid_hint":0}"#, &format!(r#"{{"kind":"member_no","value":"M{u}"}}"#))))
            .unwrap();
        ru.push(u);
        rt.push(reg);
        for k in 0..(next() % 8) {
            let t = reg + (next() % (300 * 86_400_000)) as i64;
            engine
                .ingest(event(format!(
                    r#"{{"kind":"activity","key":"a{u}-{k}","time":"{}","source":{{"platform":"app","program":"p"}},"user":{{"kind":"member_no","value":"M{u}"}},"type":"login"}}"#,
                    chrono::DateTime::from_timestamp_millis(t).unwrap().to_rfc3339()
                )))
                .unwrap();
            au.push(u);
            at.push(t);
        }
    }
    // OneIDs were given in order 1..=60 to M1..M60.
    let batch = stage_table(
        ActivityTable {
            user: &au,
            time: &at,
        },
        Some(Registrations {
            user: &ru,
            time: &rt,
        }),
        StageOptions::new(month8()),
    )
    .unwrap();
    let incr = engine
        .state
        .lifecycle
        .stage_table(month8(), StageRules::default(), EarlyActivity::Error, None)
        .unwrap();
    assert_eq!(batch.users(), incr.users());
    assert_eq!(batch.first_period(), incr.first_period());
    assert_eq!(batch.period_count(), incr.period_count());
    assert_eq!(batch, incr);
    // And through the command surface.
    let out = engine.call_json("lifecycle_report", "{}").unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Both sides through JSON text: serde_json's float parsing is not exact to the last ulp.
    let expect: serde_json::Value = serde_json::from_str(
        &serde_json::to_string(&LifecycleReport::from_table(&batch).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(v["periods"], expect["periods"]);
    let last = batch.first_period() + batch.period_count() as i64 - 1;
    let stages = engine.lifecycle_stages(None).unwrap();
    assert_eq!(stages.period, month8().label(last));
    assert_eq!(stages.users.len(), 60);
    for s in &stages.users {
        let u = batch.users().iter().position(|&x| x == s.oneid.0).unwrap();
        assert_eq!(batch.stage(u, last), Some(s.stage));
    }
}

#[test]
fn engine_commands_and_merges() {
    let mut e = Engine::default();
    let ev = |key: &str, kind: &str, time: &str, user: &str| {
        let extra = if kind == "activity" {
            r#","type":"login""#
        } else {
            ""
        };
        event(format!(
            r#"{{"kind":"{kind}","key":"{key}","time":"{time}","source":{{"platform":"app","program":"p"}},"user":{user}{extra}}}"#
        ))
    };
    let m1 = r#"{"kind":"member_no","value":"M1"}"#;
    let d1 = r#"{"kind":"device_id","value":"D1"}"#;
    e.ingest(ev("r1", "register", "2026-01-05T00:00:00+08:00", m1))
        .unwrap();
    e.ingest(ev("a1", "activity", "2026-02-05T00:00:00+08:00", d1))
        .unwrap();
    // Before the merge, D1 is its own person registered at first activity in February.
    let s = e.lifecycle_stages(Some("2026-02")).unwrap();
    assert_eq!(s.users.len(), 2);
    assert!(s
        .users
        .iter()
        .all(|u| u.stage == Stage::New || u.stage == Stage::Dormant));
    let ident = r#"{"kind":"identify","key":"i1","time":"2026-02-06T00:00:00+08:00","source":{"platform":"app","program":"p"},"ids":[{"kind":"member_no","value":"M1"},{"kind":"device_id","value":"D1"}]}"#;
    e.ingest(event(ident.into())).unwrap();
    let s = e.lifecycle_stages(Some("2026-02")).unwrap();
    assert_eq!(
        s.users,
        vec![UserStage {
            oneid: crate::OneId(1),
            stage: Stage::LastPeriodNew
        }]
    );
    let before = e.snapshot();
    // Unknown period, bad threshold, lever without target: typed errors, nothing changed.
    assert!(matches!(
        e.call_json("lifecycle_stages", r#"{"period": "2026-13"}"#),
        Err(crate::Error::InvalidArgument { .. })
    ));
    assert!(e
        .call_json("lifecycle_report", r#"{"churn_after": 1}"#)
        .is_err());
    assert!(e
        .call_json("project_active_rate", r#"{"lever": "wake_rate"}"#)
        .is_err());
    let out = e.call_json("project_active_rate", r#"{"target": 0.9, "lever": "new_users", "rates": {"old_retention": 0.5, "new_retention": 0.5, "wake_rate": 0.5, "return_rate": 0.1}}"#).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["period"], "2026-02");
    assert_eq!(v["lever"]["feasible"], true);
    let out = e
        .call_json(
            "active_rate_decomposition",
            r#"{"period": "2026-02", "segments": {"m": [1]}}"#,
        )
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["actives"], 1);
    assert_eq!(
        v["segments"]["m"]["decomposition"]["terms"][1]["retained"],
        1
    );
    // Activity before registration: by default the person counts as registered at
    // their first activity, the same as the explicit policy; "error" refuses on request.
    e.ingest(ev("r2", "register", "2026-03-05T00:00:00+08:00", d1))
        .unwrap();
    e.ingest(ev(
        "a2",
        "activity",
        "2026-03-01T00:00:00+08:00",
        r#"{"kind":"member_no","value":"M2"}"#,
    ))
    .unwrap();
    e.ingest(ev(
        "r3",
        "register",
        "2026-03-05T00:00:00+08:00",
        r#"{"kind":"member_no","value":"M2"}"#,
    ))
    .unwrap();
    assert!(e
        .call_json("lifecycle_report", r#"{"early_activity": "error"}"#)
        .is_err());
    assert_eq!(
        e.call_json("lifecycle_report", "{}").unwrap(),
        e.call_json(
            "lifecycle_report",
            r#"{"early_activity": "register_at_first_activity"}"#
        )
        .unwrap()
    );
    let m2 = e
        .lookup(&crate::UserRef::Id(
            crate::Identifier::new(crate::IdKind::MemberNo, "M2").unwrap(),
        ))
        .unwrap()
        .unwrap();
    let stages = e.lifecycle_stages(None).unwrap();
    assert!(stages.users.iter().any(|u| u.oneid == m2), "{stages:?}");
    e.call_json("write_lifecycle_tags", "{}").unwrap();
    assert_eq!(
        Engine::restore(&e.snapshot()).unwrap().snapshot(),
        e.snapshot()
    );
    assert_ne!(before, e.snapshot());
}

/// The cache-blocked path (compact ids, large bitmaps) and the hashed path (sparse ids) agree.
#[test]
fn partitioned_and_hashed_paths_agree() {
    let n_users = 100_000u64; // 100k × 8 B of bitmaps: 4 blocks, above the (test) threshold
    let base = ms("2025-01-01T00:00:00+08:00");
    let mut x = 88_172_645_463_325_252u64;
    let (mut dense, mut sparse, mut time) = (vec![], vec![], vec![]);
    for _ in 0..150_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = x % n_users;
        dense.push(u);
        sparse.push(u * 1_000_003 + 7);
        time.push(base + ((x >> 20) % (400 * 86_400_000)) as i64);
    }
    let opts = StageOptions::new(month8());
    let a = stage_table(
        ActivityTable {
            user: &dense,
            time: &time,
        },
        None,
        opts,
    )
    .unwrap();
    let b = stage_table(
        ActivityTable {
            user: &sparse,
            time: &time,
        },
        None,
        opts,
    )
    .unwrap();
    assert_eq!(a.users().len(), b.users().len());
    assert!(a
        .users()
        .iter()
        .zip(b.users())
        .all(|(d, s)| d * 1_000_003 + 7 == *s));
    assert_eq!(a.codes, b.codes);
    assert_eq!(a.first_period(), b.first_period());
}

/// `write_lifecycle_tags` writes every person's stage as the `lifecycle_stage` model tag (and
/// the per-period tag), which audiences and rule tags can then read; rewriting for another
/// period replaces the values.
#[test]
fn stages_written_as_model_tags() {
    let mut e = Engine::default();
    let ev = |key: String, kind: &str, time: String, user: String| {
        let extra = if kind == "activity" {
            r#","type":"login""#
        } else {
            ""
        };
        event(format!(
            r#"{{"kind":"{kind}","key":"{key}","time":"{time}","source":{{"platform":"app","program":"p"}},"user":{user}{extra}}}"#
        ))
    };
    for u in 0..24u32 {
        let user = format!(r#"{{"kind":"member_no","value":"M{u}"}}"#);
        let reg_month = 1 + u % 3;
        e.ingest(ev(
            format!("r{u}"),
            "register",
            format!("2026-{reg_month:02}-10T00:00:00Z"),
            user.clone(),
        ))
        .unwrap();
        for m in (reg_month + 1)..=6 {
            // A per-user activity pattern over the months (some gaps, some long absences).
            if (u * 7 + m * 3) % 5 < 2 + u % 3 {
                e.ingest(ev(
                    format!("a{u}-{m}"),
                    "activity",
                    format!("2026-{m:02}-15T00:00:00Z"),
                    user.clone(),
                ))
                .unwrap();
            }
        }
    }
    e.call_json(
        "define_tag",
        r#"{"name": "rule_x", "rule": "NOT EXISTS lifecycle_stage", "now": "2026-07-01T00:00:00Z"}"#,
    )
    .unwrap_err(); // the tag does not exist yet: a typed error
    for period in ["2026-06", "2026-04"] {
        let out = e
            .call_json(
                "write_lifecycle_tags",
                &format!(
                    r#"{{"period": "{period}", "per_period": true, "now": "2026-07-01T00:00:00Z"}}"#
                ),
            )
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["period"], period);
        let stages = e.lifecycle_stages(Some(period)).unwrap();
        let mut seen = 0;
        for stage in [
            Stage::New,
            Stage::LastPeriodNew,
            Stage::Active,
            Stage::Awakened,
            Stage::Returned,
            Stage::Dormant,
            Stage::Churned,
        ] {
            let mut want: Vec<crate::OneId> = stages
                .users
                .iter()
                .filter(|u| u.stage == stage)
                .map(|u| u.oneid)
                .collect();
            want.sort();
            seen += want.len();
            for tag in ["lifecycle_stage".to_owned(), super::period_tag(period)] {
                let a = e
                    .audience(&format!(r#"{tag} = "{}""#, stage.name()))
                    .unwrap();
                assert_eq!(a.oneids, want, "{tag} = {stage:?} in {period}");
            }
        }
        assert_eq!(seen, stages.users.len());
        // Registered after April: no stage then, no value (replaced, not kept from June).
        let none = e.audience("NOT EXISTS lifecycle_stage").unwrap();
        assert_eq!(none.size as usize, 24 - stages.users.len());
    }
    let a = e.audience(r#"stage_2026_06 = "new" OR stage_2026_06 = "dormant""#);
    assert!(a.is_ok());
    // The per-period tags stay; `lifecycle_stage` is the latest one written.
    let tags = e.call_json("tags", "{}").unwrap();
    assert!(tags.contains("stage_2026_04") && tags.contains("stage_2026_06"));
}

/// Breakdowns by a tag (one segment per value) and by audience expressions give what the
/// explicit OneID segments give for members computed by hand.
#[test]
fn breakdowns_by_tag_and_audience_match_hand_made_segments() {
    let mut e = Engine::default();
    let ev = |key: String, kind: &str, time: String, user: &str, extra: &str| {
        event(format!(
            r#"{{"kind":"{kind}","key":"{key}","time":"{time}","source":{{"platform":"app","program":"p"}},"user":{{"kind":"member_no","value":"{user}"}}{extra}}}"#
        ))
    };
    let cities = ["bj", "sh", "gz"];
    let mut city_of = Vec::new();
    for u in 0..30u32 {
        let user = format!("M{u}");
        e.ingest(ev(
            format!("r{u}"),
            "register",
            format!("2026-0{}-03T00:00:00Z", 1 + u % 2),
            &user,
            "",
        ))
        .unwrap();
        for m in 2..=5u32 {
            if (u * 5 + m * 7) % 4 != 0 {
                e.ingest(ev(
                    format!("a{u}-{m}"),
                    "activity",
                    format!("2026-0{m}-10T00:00:00Z"),
                    &user,
                    r#","type":"login""#,
                ))
                .unwrap();
                if u % 3 != 1 {
                    e.ingest(ev(
                        format!("b{u}-{m}"),
                        "activity",
                        format!("2026-0{m}-10T01:00:00Z"),
                        &user,
                        r#","type":"pay""#,
                    ))
                    .unwrap();
                }
            }
        }
        city_of.push(cities[(u % 3) as usize]);
    }
    let users: Vec<String> = (0..30).map(|u| format!("M{u}")).collect();
    e.call_json(
        "set_tags",
        &serde_json::json!({"kind": "member_no", "users": users,
            "tags": [{"name": "city", "type": "enum", "values": city_of},
                     {"name": "score", "type": "number", "values": (0..30).collect::<Vec<u32>>()}],
            "now": "2026-06-01T00:00:00Z"})
        .to_string(),
    )
    .unwrap();
    // Members by hand: M{u} is OneID u + 1 (persons numbered in order of first sight).
    let mut hand: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (u, c) in city_of.iter().enumerate() {
        hand.entry(format!("city={c}"))
            .or_default()
            .push(u as u64 + 1);
    }
    hand.insert(
        "low".into(),
        (0..30u64).filter(|u| *u < 12).map(|u| u + 1).collect(),
    );
    let explicit = serde_json::to_string(&hand).unwrap();
    let call = |e: &mut Engine, m: &str, args: String| -> serde_json::Value {
        serde_json::from_str(&e.call_json(m, &args).unwrap()).unwrap()
    };
    for (m, base) in [
        ("active_rate_decomposition", r#""period": "2026-04""#),
        ("lifecycle_report", r#""churn_after": 2"#),
        (
            "funnel",
            r#""steps": ["login", "pay"], "window_seconds": 7200"#,
        ),
    ] {
        let by = call(
            &mut e,
            m,
            format!(r#"{{{base}, "by_tag": "city", "audiences": {{"low": "score < 12"}}}}"#),
        );
        let want = call(&mut e, m, format!(r#"{{{base}, "segments": {explicit}}}"#));
        assert_eq!(by["segments"], want["segments"], "{m}");
        assert_eq!(by["segments"].as_object().unwrap().len(), 4, "{m}");
    }
    // A number tag cannot be grouped; an unknown tag suggests the nearest name.
    let err = e
        .call_json("funnel", r#"{"steps": ["login"], "by_tag": "score"}"#)
        .unwrap_err();
    assert!(err.to_string().contains("enum or bool"), "{err}");
    let err = e
        .call_json("funnel", r#"{"steps": ["login"], "by_tag": "cty"}"#)
        .unwrap_err();
    assert!(err.to_string().contains("city"), "{err}");
    assert!(e
        .call_json(
            "funnel",
            r#"{"steps": ["login"], "audiences": {"x": "score >"}}"#
        )
        .is_err());
}

/// Progress is reported monotonically up to its total, the result is the same as without a
/// hook (both the plain and the cache-partitioned paths), and a hook that stops gets
/// `Interrupted` at once.
#[test]
fn stage_table_reports_progress_and_stops() {
    use std::ops::ControlFlow;
    let jan = ms("2026-01-01T00:00:00+08:00");
    // 150 000 rows over 3 000 users (direct slots) and over sparse ids (hashed slots).
    for spread in [1u64, 1 << 40] {
        let user: Vec<u64> = (0..150_000u64).map(|i| (i % 3_000) * spread).collect();
        let time: Vec<i64> = (0..150_000i64)
            .map(|i| jan + (i * 7919 % 200) * 86_400_000)
            .collect();
        let act = ActivityTable {
            user: &user,
            time: &time,
        };
        let plain = stage_table(act, None, StageOptions::new(month8())).unwrap();
        let mut seen: Vec<(u64, u64)> = Vec::new();
        let mut hook = |d: u64, t: u64| {
            seen.push((d, t));
            ControlFlow::Continue(())
        };
        let with =
            stage_table_with_progress(act, None, StageOptions::new(month8()), &mut hook).unwrap();
        assert_eq!(
            with.rows().collect::<Vec<_>>(),
            plain.rows().collect::<Vec<_>>()
        );
        assert!(seen.len() >= 5, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
        assert!(seen.iter().all(|&(_, t)| t == 300_000));
        assert_eq!(seen.last(), Some(&(300_000, 300_000)));
        let mut calls = 0;
        let mut stop = |_: u64, _: u64| {
            calls += 1;
            ControlFlow::Break(())
        };
        let e = stage_table_with_progress(act, None, StageOptions::new(month8()), &mut stop);
        assert_eq!(e.unwrap_err(), LifecycleError::Interrupted);
        assert_eq!(calls, 1);
    }
}

/// A refused `write_lifecycle_tags` changes nothing: when the per-period tag cannot be
/// written (an operator's tag holds its name), `lifecycle_stage` is not written either.
#[test]
fn write_lifecycle_tags_refused_writes_no_tag() {
    let mut e = Engine::default();
    e.ingest(event(
        r#"{"kind":"register","key":"r1","time":"2026-02-05T00:00:00+08:00","source":{"platform":"app","program":"p"},"user":{"kind":"member_no","value":"M1"}}"#.into(),
    ))
    .unwrap();
    e.call_json(
        "define_tag",
        r#"{"name": "stage_2026_02", "type": "enum", "now": "2026-03-01T00:00:00Z"}"#,
    )
    .unwrap();
    let before = e.snapshot();
    let refused = e.call_json(
        "write_lifecycle_tags",
        r#"{"period": "2026-02", "per_period": true, "now": "2026-03-01T00:00:00Z"}"#,
    );
    assert!(matches!(refused, Err(crate::Error::InvalidArgument { .. })));
    assert!(e.tag_defs().iter().all(|d| d.name != "lifecycle_stage"));
    assert!(
        e.snapshot() == before,
        "a refused command changed the state"
    );
    // Without the clashing per-period tag the same command writes the stage tag.
    e.call_json(
        "write_lifecycle_tags",
        r#"{"period": "2026-02", "now": "2026-03-01T00:00:00Z"}"#,
    )
    .unwrap();
    assert!(e.tag_defs().iter().any(|d| d.name == "lifecycle_stage"));
}
