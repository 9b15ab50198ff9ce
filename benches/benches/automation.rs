//! Automation over many users with 20 rules: one full run (targets, de-duplication, quiet
//! hours, consent, frequency caps, coupon issue, touch recording, plan building), then a second
//! run that only de-duplicates. Prints wall time per phase, plan rows, and the process's
//! resident memory (VmRSS now, VmHWM peak) after each phase.
//!
//! `USERS=10000000 cargo bench -p userops-benches --bench automation` (default 1,000,000).
//! The plan streams in chunks of `CHUNK` users (default 100,000; `CHUNK=0`: one `Vec` of the
//! whole plan, as `run_automation` returns it), counted as it comes and then dropped, as a
//! host sending it would.
//!
//! The data is generated in-process and loaded through `Campaigns::record_order` — what an
//! ingested order event does to campaigns — so the figures are automation's own, without the
//! identity graph and the other modules an engine ingest would also fill (10 M persons through
//! the whole engine do not fit this shared machine next to the run). Consent (half the users,
//! SMS marketing) comes from the context automation asks, as the engine's privacy module
//! answers it. A single timed run, not a criterion loop: a run changes the state it measures.
use std::time::Instant;

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;
use userops::campaigns::{AutomationContext, Campaigns, CouponTemplate, Rule};
use userops::OneId;

/// Consent for SMS marketing to every other user; nothing else (no audiences, no birthdays).
struct Ctx;

impl AutomationContext for Ctx {
    fn audience_members(&self, _: &str) -> Option<Vec<OneId>> {
        None
    }
    fn in_audience(&self, _: OneId, _: &str) -> bool {
        false
    }
    fn birthday(&self, _: OneId) -> Option<(u32, u32)> {
        None
    }
    fn consents(&self, user: OneId, channel: &str, purpose: &str) -> bool {
        (channel == "sms" || channel == "push")
            && purpose == "marketing"
            && user.0.is_multiple_of(2)
    }
}

/// (VmRSS, VmHWM) of this process in MiB.
fn memory() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("bench time")
        .with_timezone(&Utc)
}

fn main() {
    let users: u64 = std::env::var("USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let tz = FixedOffset::east_opt(8 * 3600).expect("offset");
    let mut c = Campaigns::default();
    let start = t("2025-01-01T10:00:00+08:00");
    let skus: Vec<String> = (0..500).map(|s| format!("s{s}")).collect();
    let cats: Vec<String> = (0..20).map(|k| format!("c{k}")).collect();
    let clock = Instant::now();
    for i in 0..users {
        // Orders spread over the 400 days before "now".
        let when = start + chrono::Duration::days((i % 400) as i64);
        let id = format!("o{i}");
        c.record_order(
            OneId(i + 1),
            &id,
            when,
            &[&skus[(i % 500) as usize]],
            &[&cats[(i % 20) as usize]],
            Decimal::new(10_000, 2),
        );
    }
    let load = clock.elapsed();
    let (rss, _) = memory();
    println!(
        "users {users}: loaded in {:.1} s, RSS {rss} MiB",
        load.as_secs_f64()
    );
    let template: CouponTemplate = serde_json::from_str(
        r#"{"id": "t", "kind": "service", "benefit": {"type": "service", "service": "cleaning"}}"#,
    )
    .expect("template");
    c.add_coupon_template(template).expect("template");
    // 20 rules: 10 order-anniversary rules by category (SMS, capped, quiet hours), 5
    // inactivity rules (push + points), 5 catch-all order rules (SMS, capped, + coupon).
    for r in 0..20u32 {
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
                "actions": [{{"type": "touch", "channel": "push", "content": "k{r}"}}, {{"type": "grant_points", "points": 10, "program": "p"}}]}}"#,
                60 * (r - 9)
            ),
            _ => format!(
                r#"{{"id": "r{r}", "trigger": {{"type": "order", "delay_days": {}}},
                "actions": [{{"type": "touch", "channel": "sms", "content": "k{r}", "frequency_cap": {{"max": 1, "days": 30}}}},
                            {{"type": "issue_coupon", "template": "t"}}]}}"#,
                r * 10
            ),
        };
        let rule: Rule = serde_json::from_str(&rule).expect("bench rule");
        c.add_rule(rule).expect("rule");
    }
    let chunk: usize = std::env::var("CHUNK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let run = |c: &mut Campaigns, now: &str| -> (usize, usize, usize) {
        let now = t(now);
        if chunk == 0 {
            let plan = c.run_automation(now, tz, &Ctx);
            let touches = plan.iter().filter(|r| r.action == "touch").count();
            return (plan.len(), touches, 1);
        }
        let (mut touches, mut chunks) = (0, 0);
        let rows = c.run_automation_chunked(now, tz, &Ctx, chunk, |rows| {
            chunks += 1;
            touches += rows.iter().filter(|r| r.action == "touch").count();
        });
        (rows, touches, chunks)
    };
    let clock = Instant::now();
    let (rows, touches, chunks) = run(&mut c, "2026-02-01T10:00:00+08:00");
    let first = clock.elapsed();
    let (rss, hwm) = memory();
    println!(
        "first run: {:.2} s → {rows} plan rows ({touches} touches) in {chunks} chunk(s); RSS {rss} MiB, peak {hwm} MiB",
        first.as_secs_f64()
    );
    let clock = Instant::now();
    let (again, _, _) = run(&mut c, "2026-02-01T10:05:00+08:00");
    let second = clock.elapsed();
    let (rss, hwm) = memory();
    println!(
        "second run (everything de-duplicated): {:.2} s → {again} rows; RSS {rss} MiB, peak {hwm} MiB",
        second.as_secs_f64(),
    );
    let suppressed: u64 = c
        .automation()
        .suppressed()
        .values()
        .flat_map(|m| m.values())
        .sum();
    println!("suppressed actions (consent, caps): {suppressed}");
}
