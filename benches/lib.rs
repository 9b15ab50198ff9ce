//! Shared inputs for the criterion benches in `benches/` of this crate.

use userops::Event;

/// `n` intake events, alternating an `identify` (member number + a device shared by a few
/// members) and an `activity` of a member: the same stream for the ingest and store benches,
/// so their figures compare.
pub fn events(n: usize) -> Vec<Event> {
    (0..n).map(event).collect()
}

/// The `i`-th event of [`events`] (for streams too long to hold at once).
pub fn event(i: usize) -> Event {
    let json = if i.is_multiple_of(2) {
        format!(
            r#"{{"kind": "identify", "key": "i{i}", "time": "2026-01-05T10:00:00+08:00",
            "source": {{"platform": "jd", "program": "b"}},
            "ids": [{{"kind": "member_no", "value": "M{}"}}, {{"kind": "device_id", "value": "d{}"}}]}}"#,
            i / 2,
            i / 3
        )
    } else {
        format!(
            r#"{{"kind": "activity", "key": "a{i}", "time": "2026-01-05T10:00:00+08:00",
            "source": {{"platform": "app", "program": "b"}},
            "user": {{"kind": "member_no", "value": "M{}"}}, "type": "login"}}"#,
            i / 2
        )
    };
    Event::from_json(&json).expect("bench event parses")
}

/// A memory figure of this process from `/proc/self/status` (Linux), in MiB: `"VmRSS"` (resident
/// now) or `"VmHWM"` (peak resident); 0 where unknown.
pub fn proc_status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
