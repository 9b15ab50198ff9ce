//! Period arithmetic in the business time zone: a timestamp (ms since the epoch, UTC) maps to a
//! period index (days, ISO weeks or calendar months since 1970 in local time) and back to a label.
//!
//! Written with integer civil-date arithmetic rather than `chrono` calls per row: the batch path
//! maps 100M timestamps, and this is a few integer operations each.

use chrono::{DateTime, Utc};

use crate::config::Period;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// The widest timestamp accepted: ±10 000 years around 1970, far inside `i64` so that adding a
/// time-zone offset can never overflow.
pub const MAX_ABS_MS: i64 = 315_537_897_599_999;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month 1-12, day 1-31)` of a day number.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Maps timestamps to periods for one time zone and period length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodClock {
    offset_ms: i64,
    period: Period,
}

impl PeriodClock {
    /// A clock for `period`s in the zone `utc_offset_seconds` east of UTC.
    pub fn new(period: Period, utc_offset_seconds: i32) -> PeriodClock {
        PeriodClock {
            offset_ms: i64::from(utc_offset_seconds) * 1000,
            period,
        }
    }

    /// The clock of an engine configuration.
    pub fn of(config: &crate::Config) -> PeriodClock {
        PeriodClock::new(config.period(), config.business_tz().local_minus_utc())
    }

    /// The zone's offset from UTC in ms.
    pub(crate) fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    /// The period length.
    pub fn period(&self) -> Period {
        self.period
    }

    /// The period index of a timestamp, or `None` when it is outside ±[`MAX_ABS_MS`].
    #[inline]
    pub fn index(&self, ms: i64) -> Option<i64> {
        if !(-MAX_ABS_MS..=MAX_ABS_MS).contains(&ms) {
            return None;
        }
        let days = (ms + self.offset_ms).div_euclid(DAY_MS);
        Some(match self.period {
            Period::Day => days,
            // 1970-01-01 was a Thursday: day -3 is the Monday that starts week 0.
            Period::Week => (days + 3).div_euclid(7),
            Period::Month => {
                let (y, m, _) = civil_from_days(days);
                y * 12 + i64::from(m) - 1
            }
        })
    }

    /// The period index of a `chrono` time.
    pub fn index_of(&self, t: DateTime<Utc>) -> Option<i64> {
        self.index(t.timestamp_millis())
    }

    /// The first local day of a period, as days since 1970-01-01.
    fn first_day(&self, index: i64) -> i64 {
        match self.period {
            Period::Day => index,
            Period::Week => index * 7 - 3,
            Period::Month => {
                days_from_civil(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
            }
        }
    }

    /// The UTC instant (ms) at which a period starts.
    pub fn start_ms(&self, index: i64) -> i64 {
        self.first_day(index) * DAY_MS - self.offset_ms
    }

    /// A human label: `2026-03` for a month, the Monday `2026-03-02` for a week, the date
    /// for a day.
    pub fn label(&self, index: i64) -> String {
        match self.period {
            Period::Month => format!(
                "{:04}-{:02}",
                index.div_euclid(12),
                index.rem_euclid(12) + 1
            ),
            _ => {
                let (y, m, d) = civil_from_days(self.first_day(index));
                format!("{y:04}-{m:02}-{d:02}")
            }
        }
    }

    /// Parse a label written by [`PeriodClock::label`] (or any date inside the period,
    /// `YYYY-MM-DD`; for months also `YYYY-MM`).
    pub fn parse_label(&self, label: &str) -> Option<i64> {
        let parts: Vec<&str> = label.trim().split('-').collect();
        let num = |s: &str| s.parse::<i64>().ok();
        let (y, m, d) = match parts.as_slice() {
            [y, m] if self.period == Period::Month => (num(y)?, num(m)?, 1),
            [y, m, d] => (num(y)?, num(m)?, num(d)?),
            _ => return None,
        };
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(-9999..=9999).contains(&y) {
            return None;
        }
        let days = days_from_civil(y, m as u32, d as u32);
        if civil_from_days(days) != (y, m as u32, d as u32) {
            return None; // 2026-02-30 and the like
        }
        self.index(days * DAY_MS - self.offset_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn civil_round_trip() {
        for z in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2024, 2, 29), 19782);
    }

    #[test]
    fn month_boundaries_follow_the_business_zone() {
        let c = PeriodClock::new(Period::Month, 8 * 3600);
        let jan = c.index(ms("2026-01-31T23:59:59.999+08:00")).unwrap();
        let feb = c.index(ms("2026-02-01T00:00:00+08:00")).unwrap();
        assert_eq!(feb, jan + 1);
        assert_eq!(c.label(jan), "2026-01");
        // 2026-01-31T16:00Z is already February in +08:00 but January in UTC.
        let utc = PeriodClock::new(Period::Month, 0);
        assert_eq!(c.index(ms("2026-01-31T16:00:00Z")), Some(feb));
        assert_eq!(utc.index(ms("2026-01-31T16:00:00Z")), Some(jan));
        assert_eq!(c.start_ms(feb), ms("2026-02-01T00:00:00+08:00"));
        assert_eq!(c.parse_label("2026-02"), Some(feb));
        assert_eq!(c.parse_label("2026-02-30"), None);
    }

    #[test]
    fn weeks_start_on_monday() {
        let c = PeriodClock::new(Period::Week, 8 * 3600);
        let sun = c.index(ms("2026-03-01T23:59:59+08:00")).unwrap();
        let mon = c.index(ms("2026-03-02T00:00:00+08:00")).unwrap();
        assert_eq!(mon, sun + 1);
        assert_eq!(c.label(mon), "2026-03-02");
        assert_eq!(c.parse_label("2026-03-04"), Some(mon));
        let d = PeriodClock::new(Period::Day, -5 * 3600);
        assert_eq!(
            d.label(d.index(ms("2026-03-02T03:00:00Z")).unwrap()),
            "2026-03-01"
        );
        assert_eq!(c.index(i64::MAX), None);
    }
}
