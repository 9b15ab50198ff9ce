//! Automation over many users with 20 rules: one full run (plan building, consent, caps,
//! de-duplication, coupon issue, touch recording), then a second run that only de-duplicates.
//!
//! `USERS=1000000 cargo bench -p userops-benches --bench automation` (default 200,000 users).
//! A single timed run, not a criterion loop: a run changes the state it measures (it records
//! what fired), so repeating it would measure a different workload.
use std::time::Instant;

use userops::campaigns::CampaignsCommand;
use userops::{Command, Engine, Event, UserRef};

fn main() {
    let users: usize = std::env::var("USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut e = Engine::default();
    let t = Instant::now();
    for i in 0..users {
        // Orders spread over the year before "now"; every 10th user also registered.
        let day = i % 400;
        let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("date")
            + chrono::Duration::days(day as i64);
        let json = format!(
            r#"{{"kind": "order", "key": "o{i}", "time": "{date}T10:00:00+08:00",
            "source": {{"platform": "app", "program": "b"}}, "user": {{"kind": "member_no", "value": "M{i}"}},
            "order_id": "o{i}", "amount": "100.00",
            "lines": [{{"sku": "s{}", "category": "c{}", "price": "100.00", "qty": 1}}]}}"#,
            i % 500,
            i % 20
        );
        e.ingest(Event::from_json(&json).expect("bench event"))
            .expect("ingest");
        if i % 2 == 0 {
            e.execute(Command::Campaigns(CampaignsCommand::SetTouchConsent {
                user: UserRef::OneId(userops::OneId(i as u64 + 1)),
                channel: "sms".into(),
                purpose: "marketing".into(),
                granted: true,
            }))
            .expect("consent");
        }
    }
    let setup = t.elapsed();
    e.call_json("add_coupon_template", r#"{"template": {"id": "t", "kind": "service", "benefit": {"type": "service", "service": "cleaning"}}}"#)
        .expect("template");
    // 20 rules: 10 order-anniversary rules by category, 5 inactivity rules, 5 catch-all
    // order rules (with coupon issue and frequency caps).
    for r in 0..20 {
        let rule = match r {
            0..=9 => format!(
                r#"{{"id": "r{r}", "trigger": {{"type": "order", "category": "c{}", "delay_days": {}}},
                "actions": [{{"type": "touch", "channel": "sms", "content": "k{r}", "frequency_cap": {{"max": 2, "days": 7}}}}],
                "quiet_hours": [22, 8]}}"#,
                r * 2,
                30 + r * 30
            ),
            10..=14 => format!(
                r#"{{"id": "r{r}", "trigger": {{"type": "inactive", "days": {}}},
                "actions": [{{"type": "touch", "channel": "push", "content": "k{r}"}}, {{"type": "grant_points", "points": 10}}]}}"#,
                60 * (r - 9)
            ),
            _ => format!(
                r#"{{"id": "r{r}", "trigger": {{"type": "order", "delay_days": {}}},
                "actions": [{{"type": "touch", "channel": "sms", "content": "k{r}", "frequency_cap": {{"max": 1, "days": 30}}}},
                            {{"type": "issue_coupon", "template": "t"}}]}}"#,
                r * 10
            ),
        };
        e.call_json("add_rule", &format!(r#"{{"rule": {rule}}}"#))
            .expect("rule");
    }
    let run = |e: &mut Engine, now: &str| -> usize {
        let now = chrono::DateTime::parse_from_rfc3339(now)
            .expect("time")
            .with_timezone(&chrono::Utc);
        match e
            .execute(Command::Campaigns(CampaignsCommand::RunAutomation { now }))
            .expect("run")
        {
            userops::Output::Campaigns(userops::campaigns::CampaignsOutput::Plan(rows)) => {
                rows.len()
            }
            _ => panic!("run_automation returns a plan"),
        }
    };
    let t = Instant::now();
    let rows = run(&mut e, "2026-02-01T10:00:00+08:00");
    let first = t.elapsed();
    let t = Instant::now();
    let again = run(&mut e, "2026-02-01T10:05:00+08:00");
    let second = t.elapsed();
    println!(
        "users {users}, rules 20: setup (ingest + consent) {:.1} s; first run {:.2} s → {rows} plan rows; \
         second run (dedup) {:.2} s → {} rows",
        setup.as_secs_f64(),
        first.as_secs_f64(),
        second.as_secs_f64(),
        again
    );
}
