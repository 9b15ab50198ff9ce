//! Analyses against naive implementations and hand-computed cases.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::config::Period;
use crate::lifecycle::PeriodClock;
use crate::{Engine, Event};

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

/// Brute force: the best level over every start and every ordered choice of later events.
fn naive_level(events: &[(i64, u32)], codes: &[u32], window: i64) -> usize {
    fn go(
        ev: &[(i64, u32)],
        codes: &[u32],
        from: usize,
        k: usize,
        start: i64,
        window: i64,
    ) -> usize {
        if k == codes.len() {
            return k;
        }
        let mut best = k;
        for j in from..ev.len() {
            if ev[j].1 == codes[k] && ev[j].0 - start <= window {
                best = best.max(go(ev, codes, j + 1, k + 1, start, window));
            }
        }
        best
    }
    let mut best = 0;
    for (i, e) in events.iter().enumerate() {
        if e.1 == codes[0] {
            best = best.max(go(events, codes, i + 1, 1, e.0, window));
        }
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn funnel_matches_brute_force(
        rows in prop::collection::vec((0u64..6, 0i64..50, 0u32..4), 1..60),
        steps in prop::collection::vec(0u32..4, 1..4),
        window in 0i64..30,
    ) {
        let n = names(&["a", "b", "c", "d"]);
        let user: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let time: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let event: Vec<u32> = rows.iter().map(|r| r.2).collect();
        let t = EventTable { user: &user, time: &time, event: &event, names: &n };
        let step_names: Vec<&str> = steps.iter().map(|&s| n[s as usize].as_str()).collect();
        let present: BTreeSet<u32> = event.iter().copied().collect();
        match funnel_levels(t, &step_names, window) {
            Err(AnalyticsError::UnknownStep(_)) => prop_assert!(steps.iter().any(|s| !present.contains(s))),
            Err(e) => prop_assert!(false, "{e}"),
            Ok(levels) => {
                for (u, level) in levels {
                    // Events of u sorted by (time, row), as the funnel sees them.
                    let mut ev: Vec<(i64, usize, u32)> = rows.iter().enumerate()
                        .filter(|(_, r)| r.0 == u).map(|(i, r)| (r.1, i, r.2)).collect();
                    ev.sort();
                    let ev: Vec<(i64, u32)> = ev.into_iter().map(|e| (e.0, e.2)).collect();
                    prop_assert_eq!(level, naive_level(&ev, &steps, window), "user {}", u);
                }
            }
        }
    }

    #[test]
    fn cohorts_match_naive(rows in prop::collection::vec((0u64..15, 0i64..200), 0..80)) {
        let clock = PeriodClock::new(Period::Week, 0);
        let day = 86_400_000;
        let user: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let time: Vec<i64> = rows.iter().map(|r| r.1 * day).collect();
        let table = cohort_retention(&user, &time, clock).unwrap();
        let mut periods: BTreeMap<u64, BTreeSet<i64>> = BTreeMap::new();
        for (&u, &t) in user.iter().zip(&time) {
            periods.entry(u).or_default().insert(clock.index(t).unwrap());
        }
        let mut total = 0;
        for row in &table.cohorts {
            let c = clock.parse_label(&row.cohort).unwrap();
            let members: Vec<&BTreeSet<i64>> = periods.values().filter(|s| s.first() == Some(&c)).collect();
            prop_assert_eq!(row.users, members.len() as u64);
            for (k, &r) in row.retained.iter().enumerate() {
                let want = members.iter().filter(|s| s.contains(&(c + k as i64))).count() as u64;
                prop_assert_eq!(r, want);
            }
            total += row.users;
        }
        prop_assert_eq!(total, periods.len() as u64);
    }

    #[test]
    fn attribution_credit_adds_up(
        touches in prop::collection::vec((0u64..5, 0i64..100, 0u32..3), 0..40),
        convs in prop::collection::vec((0u64..5, 0i64..120, 0u32..10_000), 0..15),
        model in 0usize..5,
    ) {
        let ch = names(&["sms", "push", "wechat"]);
        let tu: Vec<u64> = touches.iter().map(|r| r.0).collect();
        let tt: Vec<i64> = touches.iter().map(|r| r.1).collect();
        let tc: Vec<u32> = touches.iter().map(|r| r.2).collect();
        let cu: Vec<u64> = convs.iter().map(|r| r.0).collect();
        let ct: Vec<i64> = convs.iter().map(|r| r.1).collect();
        let cv: Vec<Decimal> = convs.iter().map(|r| Decimal::new(i64::from(r.2), 2)).collect();
        let m = [AttributionModel::FirstTouch, AttributionModel::LastTouch, AttributionModel::Linear,
            AttributionModel::TimeDecay { half_life_hours: 0.000_01 }, AttributionModel::PositionBased][model];
        let r = attribute(
            EventTable { user: &tu, time: &tt, event: &tc, names: &ch },
            Conversions { user: &cu, time: &ct, value: Some(&cv) },
            m,
            30,
        ).unwrap();
        // Naive: a conversion is attributed when its user has a touch in [t - 30, t].
        let attributed: Vec<bool> = convs.iter().map(|c| touches.iter().any(|t| t.0 == c.0 && t.1 <= c.1 && t.1 >= c.1 - 30)).collect();
        prop_assert_eq!(r.attributed, attributed.iter().filter(|a| **a).count() as u64);
        let credit: f64 = r.channels.iter().map(|c| c.conversions).sum();
        prop_assert!((credit - r.attributed as f64).abs() < 1e-9);
        let value: Decimal = r.channels.iter().map(|c| c.value).sum::<Decimal>() + r.unattributed_value;
        prop_assert_eq!(value, cv.iter().copied().sum::<Decimal>());
    }
}

#[test]
fn funnel_by_hand_with_window_breakdown_and_errors() {
    let n = names(&["view", "cart", "pay", "share"]);
    // u1: view, cart, pay within 10; u2: view, cart, pay after the window; u3: cart only.
    let user = [1, 1, 1, 2, 2, 2, 3];
    let time = [0, 5, 10, 0, 5, 100, 3];
    let event = [0, 1, 2, 0, 1, 2, 1];
    let t = EventTable {
        user: &user,
        time: &time,
        event: &event,
        names: &n,
    };
    let f = funnel(
        t,
        &["view", "cart", "pay"],
        50,
        Some(|u: u64| {
            Some(if u == 1 {
                "a".to_string()
            } else {
                "b".to_string()
            })
        }),
    )
    .unwrap();
    let users: Vec<u64> = f.steps.iter().map(|s| s.users).collect();
    assert_eq!(users, [2, 2, 1]);
    assert_eq!(f.steps[2].drop_off, 1);
    assert_eq!(f.steps[2].from_previous, Some(0.5));
    assert_eq!(f.segments["a"][2].users, 1);
    assert_eq!(f.segments["b"][0].users, 1);
    // An unknown step is a typed error, also for a name in the dictionary that never occurs.
    assert_eq!(
        funnel_levels(t, &["view", "nope"], 5).unwrap_err(),
        AnalyticsError::UnknownStep("nope".into())
    );
    assert_eq!(
        funnel_levels(t, &["share"], 5).unwrap_err(),
        AnalyticsError::UnknownStep("share".into())
    );
    assert!(matches!(
        funnel_levels(t, &[], 5),
        Err(AnalyticsError::BadArgument { .. })
    ));
    assert!(matches!(
        funnel_levels(t, &["view"], -1),
        Err(AnalyticsError::BadArgument { .. })
    ));
    let bad = EventTable {
        event: &[0, 9, 0, 0, 0, 0, 0],
        ..t
    };
    assert!(matches!(
        funnel_levels(bad, &["view"], 5),
        Err(AnalyticsError::BadCode { row: 1, .. })
    ));
}

#[test]
fn attribution_models_by_hand() {
    let ch = names(&["a", "b", "c", "d"]);
    let hour = 3_600_000;
    // Touches a, b, c, d at 0h, 1h, 2h, 3h; conversion at 3h worth 100.
    let t = EventTable {
        user: &[1, 1, 1, 1],
        time: &[0, hour, 2 * hour, 3 * hour],
        event: &[0, 1, 2, 3],
        names: &ch,
    };
    let v = [Decimal::new(100, 0)];
    let c = Conversions {
        user: &[1],
        time: &[3 * hour],
        value: Some(&v),
    };
    let credit = |m| {
        let r = attribute(t, c, m, 10 * hour).unwrap();
        let map: BTreeMap<String, (f64, Decimal)> = r
            .channels
            .into_iter()
            .map(|c| (c.channel, (c.conversions, c.value)))
            .collect();
        map
    };
    let pb = credit(AttributionModel::PositionBased);
    assert_eq!(pb["a"].0, 0.4);
    assert!((pb["b"].0 - 0.1).abs() < 1e-12);
    assert_eq!(pb["d"].1, Decimal::new(40, 0));
    let first = credit(AttributionModel::FirstTouch);
    assert_eq!(first.len(), 1);
    assert_eq!(first["a"], (1.0, Decimal::new(100, 0)));
    // Half-life of 1 hour: weights 1/8, 1/4, 1/2, 1 → normalized by 15/8.
    let td = credit(AttributionModel::TimeDecay {
        half_life_hours: 1.0,
    });
    assert!((td["d"].0 - 8.0 / 15.0).abs() < 1e-12);
    assert!((td["a"].0 - 1.0 / 15.0).abs() < 1e-12);
    let lin = credit(AttributionModel::Linear);
    assert_eq!(lin["c"].1, Decimal::new(25, 0));
    // Lookback: only touches within 1.5 h count.
    let r = attribute(t, c, AttributionModel::Linear, 3 * hour / 2).unwrap();
    assert_eq!(r.channels.len(), 2);
    assert!(attribute(
        t,
        c,
        AttributionModel::TimeDecay {
            half_life_hours: 0.0
        },
        1
    )
    .is_err());
}

#[test]
fn paths_micro_repurchase_warnings_and_trees() {
    let n = names(&["home", "item", "cart", "pay"]);
    let user = [1, 1, 1, 1, 2, 2, 2, 3, 3];
    let time = [0, 1, 2, 3, 0, 1, 2, 0, 1];
    let event = [0, 1, 2, 3, 0, 1, 0, 0, 2];
    let t = EventTable {
        user: &user,
        time: &time,
        event: &event,
        names: &n,
    };
    let p = paths(t, "item", "pay", 5).unwrap();
    assert_eq!((p.users, p.converted, p.dropped), (2, 1, 1));
    assert_eq!(
        p.next_after_from,
        vec![
            StepCount {
                step: "cart".into(),
                count: 1
            },
            StepCount {
                step: "home".into(),
                count: 1
            }
        ]
    );
    assert_eq!(
        p.previous_before_to,
        vec![StepCount {
            step: "cart".into(),
            count: 1
        }]
    );
    assert_eq!(
        p.drop_points,
        vec![StepCount {
            step: "home".into(),
            count: 1
        }]
    );
    let m = micro_conversions(t, "pay").unwrap();
    let cart = m.iter().find(|x| x.event == "cart").unwrap();
    assert_eq!((cart.users, cart.converted_after), (2, 1));
    assert_eq!(cart.rate_without, Some(0.0));
    assert!(paths(t, "item", "nope", 5).is_err());

    // Repurchase: u1 orders twice in Jan (new, repurchasing) and once in Feb (old);
    // u2 once in Feb (new).
    let clock = PeriodClock::new(Period::Month, 0);
    let d = |day: i64| day * 86_400_000 + 1_767_225_600_000; // from 2026-01-01Z
    let skus = names(&["oil", "tyre"]);
    let amount: Vec<Decimal> = [10, 20, 30, 40]
        .iter()
        .map(|&a| Decimal::new(a, 0))
        .collect();
    let r = repurchase(
        OrderTable {
            user: &[1, 1, 1, 2],
            time: &[d(1), d(5), d(40), d(41)],
            amount: &amount,
            lines: Some(OrderLines {
                order: &[0, 1, 2, 3],
                sku: &[0, 0, 1, 0],
                names: &skus,
            }),
        },
        clock,
        5,
        1,
    )
    .unwrap();
    assert_eq!(r.periods.len(), 2);
    assert_eq!(
        (
            r.periods[0].buyers,
            r.periods[0].new_buyers,
            r.periods[0].new_rate
        ),
        (1, 1, Some(1.0))
    );
    assert_eq!(
        (
            r.periods[1].new_buyers,
            r.periods[1].old_buyers,
            r.periods[1].old_rate
        ),
        (1, 1, Some(0.0))
    );
    assert_eq!(r.periods[1].first_order_gmv, Decimal::new(40, 0));
    assert_eq!(r.periods[1].repurchase_gmv, Decimal::new(30, 0));
    assert_eq!(r.products[0].sku, "oil");
    assert_eq!(r.products[0].rate, 0.5);
    let trees = gmv_tree(&r);
    assert_eq!(trees[0].1.value, Decimal::new(30, 0));
    assert!(trees.iter().all(|t| t.1.is_consistent()));
    let mut tree = trees[1].1.clone();
    assert!(tree
        .split("repurchase_gmv", vec![MetricNode::leaf("x", Decimal::ONE)])
        .is_err());
    tree.split(
        "repurchase_gmv",
        vec![
            MetricNode::leaf("oil", Decimal::new(10, 0)),
            MetricNode::leaf("tyre", Decimal::new(20, 0)),
        ],
    )
    .unwrap();
    assert!(tree.is_consistent());

    // Seasonal warnings: a weekly pattern, then a Monday that breaks it.
    let mut s: Vec<(String, f64)> = (0..28)
        .map(|i| {
            (
                format!("d{i}"),
                if i % 7 == 0 {
                    100.0 + (i / 7) as f64
                } else {
                    10.0 + (i % 3) as f64
                },
            )
        })
        .collect();
    s.push(("d28".into(), 10.0));
    let w = data_warnings(&s, WarningMethod::Seasonal { season: 7, k: 3.0 }).unwrap();
    assert_eq!(
        w.iter().map(|w| w.label.as_str()).collect::<Vec<_>>(),
        ["d28"]
    );
    let rolling = data_warnings(&s, WarningMethod::Rolling { window: 7, k: 3.0 }).unwrap();
    assert!(
        rolling.iter().all(|w| w.label != "d28"),
        "a rolling band misses the broken weekly pattern"
    );
    assert!(data_warnings(&s, WarningMethod::Rolling { window: 1, k: 3.0 }).is_err());
}

#[test]
fn community_by_hand() {
    use crate::event::CommunityAction::*;
    let clock = PeriodClock::new(Period::Day, 0);
    let day = 86_400_000;
    let comm = names(&["g1"]);
    // Day 0: u1, u2 join; u1 posts. Day 1: u2 leaves; u3 posts (implicit join); u1 orders 50.
    let ev = CommunityEvents {
        user: &[1, 2, 1, 2, 3],
        time: &[0, 0, 10, day, day + 5],
        community: &[0; 5],
        names: &comm,
        action: &[Join, Join, Message, Leave, Message],
    };
    let amount = [Decimal::new(50, 0), Decimal::new(70, 0)];
    let orders = OrderTable {
        user: &[1, 2],
        time: &[day + 1, day + 2],
        amount: &amount,
        lines: None,
    };
    let t = community_stats(ev, orders, clock).unwrap();
    assert_eq!(t.rows.len(), 2);
    let (d0, d1) = (&t.rows[0], &t.rows[1]);
    assert_eq!(
        (d0.joins, d0.members, d0.active_members, d0.activity_rate),
        (2, 2, 1, Some(0.5))
    );
    assert_eq!(
        (d1.joins, d1.leavers, d1.members, d1.active_members),
        (1, 1, 2, 1)
    );
    // u2 had left before ordering: only u1 converts.
    assert_eq!((d1.conversions, d1.gmv), (1, Decimal::new(50, 0)));
}

/// The step names of a journey.
fn step_names(journey: &serde_json::Value) -> Vec<&str> {
    journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

fn ingest(e: &mut Engine, json: &str) {
    e.ingest(Event::from_json(json).unwrap()).unwrap();
}

#[test]
fn engine_analyses_over_ingested_events() {
    let mut e = Engine::default();
    let src = r#""source":{"platform":"app","program":"p"}"#;
    let u = |n: u32| format!(r#"{{"kind":"member_no","value":"M{n}"}}"#);
    for n in 1..=3 {
        ingest(
            &mut e,
            &format!(
                r#"{{"kind":"touch","key":"t{n}","time":"2026-03-01T10:00:00+08:00",{src},"user":{},"channel":"sms","content":"c1","outcome":"clicked"}}"#,
                u(n)
            ),
        );
        ingest(
            &mut e,
            &format!(
                r#"{{"kind":"activity","key":"v{n}","time":"2026-03-01T10:05:00+08:00",{src},"user":{},"type":"view"}}"#,
                u(n)
            ),
        );
    }
    ingest(
        &mut e,
        &format!(
            r#"{{"kind":"touch","key":"t9","time":"2026-03-01T11:00:00+08:00",{src},"user":{},"channel":"push","content":"c2","outcome":"opened"}}"#,
            u(1)
        ),
    );
    ingest(
        &mut e,
        &format!(
            r#"{{"kind":"coupon","key":"c1","time":"2026-03-01T11:10:00+08:00",{src},"user":{},"coupon_id":"k1","action":"claimed"}}"#,
            u(1)
        ),
    );
    ingest(
        &mut e,
        &format!(
            r#"{{"kind":"order","key":"o1","time":"2026-03-01T12:00:00+08:00",{src},"user":{},"order_id":"o1","amount":"99.00","lines":[{{"sku":"s1","price":"99.00","qty":1}}]}}"#,
            u(1)
        ),
    );
    let call = |e: &mut Engine, m: &str, a: &str| -> serde_json::Value {
        serde_json::from_str(&e.call_json(m, a).unwrap()).unwrap()
    };
    let f = call(
        &mut e,
        "funnel",
        r#"{"steps": ["touch_clicked", "view", "order"], "window_seconds": 7200, "segments": {"vip": [1]}}"#,
    );
    let users: Vec<u64> = f["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_u64().unwrap())
        .collect();
    assert_eq!(users, [3, 3, 1]);
    assert_eq!(f["segments"]["vip"][2]["users"], 1);
    let a = call(&mut e, "attribution", r#"{"model": "linear"}"#);
    assert_eq!(a["attributed"], 1);
    assert_eq!(a["channels"][0]["value"], "49.50");
    let j = call(
        &mut e,
        "journey",
        r#"{"user": {"kind": "member_no", "value": "M1"}}"#,
    );
    assert_eq!(
        step_names(&j),
        [
            "touch_clicked",
            "view",
            "touch_opened",
            "coupon_claimed",
            "order"
        ]
    );
    let c = call(&mut e, "cohort_retention", "{}");
    assert_eq!(c["cohorts"][0]["users"], 3);
    let p = call(&mut e, "paths", r#"{"from": "view", "to": "order"}"#);
    assert_eq!(p["converted"], 1);
    let m = call(&mut e, "micro_conversions", "{}");
    assert!(m
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["event"] == "coupon_claimed" && x["rate"] == 1.0));
    let t = call(&mut e, "metric_tree", "{}");
    assert_eq!(t[0]["tree"]["value"], "99.00");
    let r = call(&mut e, "repurchase", "{}");
    assert_eq!(r["products"][0]["sku"], "s1");
    let w = call(
        &mut e,
        "data_warnings",
        r#"{"metric": "events", "method": {"method": "rolling", "window": 3, "k": 2.0}}"#,
    );
    assert!(w.as_array().unwrap().is_empty());
    let cs = call(&mut e, "community_stats", "{}");
    assert!(cs["rows"].as_array().unwrap().is_empty());
    // Unknown step and unknown user: typed errors.
    let err = e
        .call_json("funnel", r#"{"steps": ["view", "fly"]}"#)
        .unwrap_err();
    assert_eq!(err.field(), Some("steps"));
    assert!(matches!(
        e.call_json(
            "journey",
            r#"{"user": {"kind": "member_no", "value": "ZZ"}}"#
        ),
        Err(crate::Error::NotFound { .. })
    ));
    assert!(e
        .call_json("attribution", r#"{"model": "time_decay"}"#)
        .is_err());
    assert_eq!(
        Engine::restore(&e.snapshot()).unwrap().snapshot(),
        e.snapshot()
    );
}

#[test]
fn json_table_door() {
    let call = |m: &str, a: &str| -> serde_json::Value {
        serde_json::from_str(&table_call_json(m, a).unwrap()).unwrap()
    };
    let f = call(
        "funnel",
        r#"{"user": [1, 1, 2], "time": [0, 5, "1970-01-01T08:00:00.001+08:00"],
        "event": ["view", "pay", "view"], "steps": ["view", "pay"], "window_seconds": 60}"#,
    );
    assert_eq!(f["steps"][1]["users"], 1);
    let c = call(
        "cohort_retention",
        r#"{"user": [1, 2], "time": [0, 0], "period": "day"}"#,
    );
    assert_eq!(c["cohorts"][0]["users"], 2);
    let a = call(
        "attribution",
        r#"{"touches": {"user": [1], "time": [0], "channel": ["sms"]},
        "conversions": {"user": [1], "time": [10], "value": ["9.90"]}, "model": "last_touch"}"#,
    );
    assert_eq!(a["channels"][0]["value"], "9.90");
    let d = call(
        "active_rate_decomposition",
        r#"{"user": [1, 1], "time": [0, 2678400000], "utc_offset_seconds": 0}"#,
    );
    assert_eq!(d["periods"][1]["decomposition"]["terms"][1]["retained"], 1);
    // Bad input: typed errors naming the field.
    let e = table_call_json(
        "lifecycle",
        r#"{"user": [1], "time": ["2026-01-01 10:00"]}"#,
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("time[0]"));
    let e = table_call_json(
        "funnel",
        r#"{"user": [1], "time": [0], "event": ["a"], "steps": ["b"]}"#,
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("steps"));
    let e = table_call_json(
        "lifecycle",
        r#"{"user": [1, 1], "time": [5, 0], "registered": {"user": [1], "time": [3]}}"#,
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("time"));
    assert!(matches!(
        table_call_json("fly", "{}"),
        Err(crate::Error::UnknownMethod(_))
    ));
    assert!(table_call_json("lifecycle", r#"{"user": [1], "time": [0], "extra": 1}"#).is_err());
}

#[test]
fn absurd_spans_are_refused_not_allocated() {
    // Two activities 9000 years apart, by day: 3.3M periods.
    let far = 9000 * 365 * 86_400_000i64;
    let c = cohort_retention(&[1, 1], &[0, far], PeriodClock::new(Period::Day, 0));
    assert!(matches!(
        c,
        Err(AnalyticsError::BadArgument {
            field: "period",
            ..
        })
    ));
    let t = crate::lifecycle::stage_table(
        crate::lifecycle::ActivityTable {
            user: &[1, 1],
            time: &[0, far],
        },
        None,
        crate::lifecycle::StageOptions::new(PeriodClock::new(Period::Day, 0)),
    );
    assert!(matches!(
        t,
        Err(crate::lifecycle::LifecycleError::TooManyPeriods(_))
    ));
}

/// The engine's analyses as JSON, for the issue-27 cases below.
fn ask(e: &mut Engine, method: &str, args: serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&e.call_json(method, &args.to_string()).unwrap()).unwrap()
}

fn event(kind: &str, key: &str, user: &str, time: &str, body: serde_json::Value) -> Event {
    let mut v = serde_json::json!({"kind": kind, "key": key, "time": time,
        "source": {"platform": "app", "program": "p"},
        "user": {"kind": "member_no", "value": user}});
    for (k, x) in body.as_object().unwrap() {
        v[k] = x.clone();
    }
    Event::from_json(&v.to_string()).unwrap()
}

/// Ingest a line-less order `key` of `user` at `time` for `amount`.
fn buy(e: &mut Engine, key: &str, user: &str, time: &str, amount: &str) {
    let lines = serde_json::json!([]);
    e.ingest(order_event(key, user, time, amount, lines))
        .unwrap();
}

fn order_event(key: &str, user: &str, time: &str, amount: &str, lines: serde_json::Value) -> Event {
    event(
        "order",
        key,
        user,
        time,
        serde_json::json!({"order_id": key, "amount": amount, "lines": lines}),
    )
}

#[test]
fn two_orders_at_one_instant_are_two_purchases() {
    // M1 orders A1 (100.00) and A2 (50.00) in the same second; M2 orders 70.00 and 30.00 on two
    // days. Both M1 and M2 bought a second time: rate 1; first-order GMV 100 + 70.
    for order in [["A1", "A2"], ["A2", "A1"]] {
        let mut e = Engine::default();
        let at = "2026-03-05T10:00:00+08:00";
        for key in order {
            let amount = if key == "A1" { "100.00" } else { "50.00" };
            buy(&mut e, key, "M1", at, amount);
        }
        buy(&mut e, "B1", "M2", "2026-03-10T10:00:00+08:00", "70.00");
        // M1's first order is A1, the smaller order id, whatever came in first.
        let tree = ask(&mut e, "metric_tree", serde_json::json!({}));
        let r = ask(&mut e, "repurchase", serde_json::json!({}));
        let march = &r["periods"][0];
        assert_eq!(march["rate"], 0.5, "{order:?}");
        assert_eq!(tree[0]["tree"]["children"][0]["value"], "170.00");
        buy(&mut e, "B2", "M2", "2026-03-12T10:00:00+08:00", "30.00");
        let r = ask(&mut e, "repurchase", serde_json::json!({}));
        let march = &r["periods"][0];
        assert_eq!(march["buyers"], 2);
        assert_eq!(march["rate"], 1.0, "{order:?}");
        assert_eq!(march["first_order_gmv"], "170.00");
        assert_eq!(march["repurchase_gmv"], "80.00");
        // Orders without lines bought no product: no "" product.
        assert_eq!(r["products"], serde_json::json!([]));
    }
    let mut e = Engine::default();
    let at = "2026-03-05T10:00:00+08:00";
    buy(&mut e, "A2", "M1", at, "50.00");
    buy(&mut e, "A1", "M1", at, "100.00");
    let tree = ask(&mut e, "metric_tree", serde_json::json!({}));
    let parts = &tree[0]["tree"]["children"];
    assert_eq!(parts[0]["name"], "first_order_gmv");
    assert_eq!(parts[0]["value"], "100.00");
    assert_eq!(parts[1]["value"], "50.00");
}

#[test]
fn products_repurchased_count_orders() {
    // M1 buys tea in two orders at the same instant: a repeat buyer of tea; M2 buys tea once.
    let mut e = Engine::default();
    let at = "2026-03-05T10:00:00+08:00";
    let tea = serde_json::json!([{"sku": "tea", "price": "10.00", "qty": 1}]);
    e.ingest(order_event("A1", "M1", at, "10.00", tea.clone()))
        .unwrap();
    e.ingest(order_event("A2", "M1", at, "10.00", tea.clone()))
        .unwrap();
    e.ingest(order_event("B1", "M2", at, "10.00", tea)).unwrap();
    buy(&mut e, "B2", "M2", at, "5.00");
    let r = ask(&mut e, "repurchase", serde_json::json!({}));
    assert_eq!(
        r["products"],
        serde_json::json!([{"sku": "tea", "buyers": 2, "repeat_buyers": 1, "rate": 0.5}])
    );
}

#[test]
fn attribution_counts_every_outcome_by_default() {
    // A touch `sent` (M1) or `converted` (M2) one day before a 100.00 order gets the credit.
    let mut e = Engine::default();
    for (user, outcome) in [("M1", "sent"), ("M2", "converted")] {
        e.ingest(event(
            "touch",
            &format!("t-{user}"),
            user,
            "2026-03-04T10:00:00+08:00",
            serde_json::json!({"channel": "sms", "content": "c", "outcome": outcome}),
        ))
        .unwrap();
        buy(
            &mut e,
            &format!("o-{user}"),
            user,
            "2026-03-05T10:00:00+08:00",
            "100.00",
        );
    }
    let a = ask(
        &mut e,
        "attribution",
        serde_json::json!({"model": "last_touch"}),
    );
    assert_eq!(
        (a["conversions"].clone(), a["attributed"].clone()),
        (2.into(), 2.into())
    );
    assert_eq!(a["channels"][0]["value"], "200.00");
    let only = ask(
        &mut e,
        "attribution",
        serde_json::json!({"model": "last_touch", "outcomes": ["converted"]}),
    );
    assert_eq!(only["attributed"], 1);
    // An outcome that does not exist, or none at all: typed errors.
    for bad in [serde_json::json!(["fly"]), serde_json::json!([])] {
        let err = e
            .call_json(
                "attribution",
                &serde_json::json!({"model": "linear", "outcomes": bad}).to_string(),
            )
            .unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidArgument, "{err}");
    }
}

#[test]
fn attribution_credit_is_split_in_cents_with_the_remainder_last() {
    let mut e = Engine::default();
    for (i, ch) in ["sms", "push", "app"].iter().enumerate() {
        e.ingest(event(
            "touch",
            &format!("t{i}"),
            "M1",
            &format!("2026-03-04T1{i}:00:00+08:00"),
            serde_json::json!({"channel": ch, "content": "c", "outcome": "clicked"}),
        ))
        .unwrap();
    }
    buy(&mut e, "o1", "M1", "2026-03-05T10:00:00+08:00", "100.00");
    let a = ask(
        &mut e,
        "attribution",
        serde_json::json!({"model": "linear"}),
    );
    let value = |ch: &str| {
        a["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == ch)
            .unwrap()["value"]
            .clone()
    };
    // In time order: sms, push, app; the last (app) takes the remainder.
    assert_eq!(
        (value("sms"), value("push"), value("app")),
        ("33.33".into(), "33.33".into(), "33.34".into())
    );
}

#[test]
fn community_conversions_are_orders_by_members() {
    // A member's two orders in one week: two conversions.
    let mut e = Engine::default();
    e.ingest(event(
        "community",
        "j1",
        "M1",
        "2026-03-02T10:00:00+08:00",
        serde_json::json!({"community": "g", "action": "join"}),
    ))
    .unwrap();
    for (key, day) in [("o1", "03"), ("o2", "04")] {
        buy(
            &mut e,
            key,
            "M1",
            &format!("2026-03-{day}T10:00:00+08:00"),
            "10.00",
        );
    }
    let c = ask(&mut e, "community_stats", serde_json::json!({}));
    let row = &c["rows"][0];
    assert_eq!(
        (row["conversions"].clone(), row["gmv"].clone()),
        (2.into(), "20.00".into())
    );
}

#[test]
fn steps_at_one_instant_have_one_order_whatever_the_ingest_order() {
    // A register, a click, a view and an order of M1 at the same second, in every ingest
    // order: the journey, the funnel and the paths do not change.
    let at = "2026-03-05T10:00:00+08:00";
    let events = || {
        vec![
            event("register", "r", "M1", at, serde_json::json!({})),
            event(
                "touch",
                "t",
                "M1",
                at,
                serde_json::json!({"channel": "sms", "content": "c", "outcome": "clicked"}),
            ),
            event(
                "activity",
                "v",
                "M1",
                at,
                serde_json::json!({"type": "view"}),
            ),
            event(
                "activity",
                "l",
                "M1",
                at,
                serde_json::json!({"type": "login"}),
            ),
            order_event("o", "M1", at, "9.00", serde_json::json!([])),
        ]
    };
    let answers = |order: &[usize]| {
        let mut e = Engine::default();
        let evs = events();
        for &i in order {
            e.ingest(evs[i].clone()).unwrap();
        }
        (
            ask(
                &mut e,
                "journey",
                serde_json::json!({"user": {"kind": "member_no", "value": "M1"}}),
            ),
            ask(
                &mut e,
                "funnel",
                serde_json::json!({"steps": ["touch_clicked", "view", "order"]}),
            ),
            ask(
                &mut e,
                "paths",
                serde_json::json!({"from": "login", "to": "order"}),
            ),
        )
    };
    let first = answers(&[0, 1, 2, 3, 4]);
    assert_eq!(
        step_names(&first.0),
        ["register", "touch_clicked", "login", "view", "order"]
    );
    assert_eq!(first.1["steps"][2]["users"], 1);
    for order in [[4, 3, 2, 1, 0], [2, 4, 0, 3, 1], [1, 0, 4, 2, 3]] {
        assert_eq!(answers(&order), first, "{order:?}");
    }
}
