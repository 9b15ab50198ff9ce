//! Growth value and tier ladders.
//!
//! Growth value = Σ behaviour weight × count, with optional daily caps per behaviour (SPEC §6,
//! seed 004). A ladder ranks members on growth value or on spend (money) inside a window (the
//! calendar year or the rolling 12 months, in the business time zone). Upgrades happen at once,
//! when the growth or spend that earns them is recorded, judged on the window ending at the
//! later of the write's time and the latest time the module has seen (a late, backdated write
//! counts where its date puts it, but cannot upgrade on a window that has already moved on);
//! downgrades only at an evaluation, and only once a member has stayed below their tier for the
//! grace period.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, Months, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::LoyaltyError;

/// Behaviour weights and daily caps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrowthRules {
    /// Growth value per occurrence of a behaviour type (`"login"`, `"order"`, `"share"`, ...).
    #[serde(default)]
    pub weights: BTreeMap<String, i64>,
    /// Most growth value one behaviour type may give a member per business day.
    #[serde(default)]
    pub daily_caps: BTreeMap<String, i64>,
}

impl GrowthRules {
    pub(crate) fn validate(&self) -> Result<(), LoyaltyError> {
        for (k, w) in &self.weights {
            if *w <= 0 {
                return Err(LoyaltyError::InvalidProgram {
                    field: format!("growth.weights.{k}"),
                    reason: "a weight must be positive".into(),
                });
            }
        }
        for (k, c) in &self.daily_caps {
            if *c <= 0 || !self.weights.contains_key(k) {
                return Err(LoyaltyError::InvalidProgram {
                    field: format!("growth.daily_caps.{k}"),
                    reason: "a cap must be positive and name a weighted behaviour".into(),
                });
            }
        }
        Ok(())
    }
}

/// What a ladder ranks members on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TierBasis {
    /// Growth value in the window.
    #[default]
    Growth,
    /// Money spent in the window.
    Spend,
}

/// The window a ladder measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TierWindow {
    /// From January 1st (business time zone) of the evaluation's year.
    #[default]
    CalendarYear,
    /// The 12 months up to the evaluation (`"rolling_12_months"`).
    #[serde(rename = "rolling_12_months")]
    Rolling12Months,
}

/// One rung: the lowest metric that qualifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLevel {
    /// Name (`"silver"`, `"gold"`, ...).
    pub name: String,
    /// Threshold (growth value or money, per the ladder's basis).
    pub threshold: Decimal,
}

/// A tier ladder: rungs in increasing threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLadder {
    /// Growth or spend.
    #[serde(default)]
    pub basis: TierBasis,
    /// Calendar year or rolling 12 months.
    #[serde(default)]
    pub window: TierWindow,
    /// Days a member may stay below their tier before an evaluation downgrades them.
    #[serde(default)]
    pub grace_days: u32,
    /// The rungs, lowest first, thresholds strictly increasing.
    pub levels: Vec<TierLevel>,
}

impl TierLadder {
    pub(crate) fn validate(&self) -> Result<(), LoyaltyError> {
        let bad = |reason: &str| {
            Err(LoyaltyError::InvalidProgram {
                field: "tiers.levels".into(),
                reason: reason.into(),
            })
        };
        if self.levels.is_empty() || self.levels.len() > 1000 {
            return bad("a ladder has 1 to 1000 levels");
        }
        if self.grace_days > 3660 {
            return Err(LoyaltyError::InvalidProgram {
                field: "tiers.grace_days".into(),
                reason: "at most 3660 days".into(),
            });
        }
        for w in self.levels.windows(2) {
            if w[0].threshold >= w[1].threshold {
                return bad("thresholds must increase strictly");
            }
        }
        if self.levels[0].threshold < Decimal::ZERO {
            return bad("thresholds must not be negative");
        }
        let mut names = std::collections::BTreeSet::new();
        if !self.levels.iter().all(|l| names.insert(&l.name)) {
            return bad("level names must be unique");
        }
        Ok(())
    }

    /// The index of a level by name.
    pub fn level(&self, name: &str) -> Option<u16> {
        self.levels
            .iter()
            .position(|l| l.name == name)
            .map(|i| i as u16)
    }

    /// The highest level whose threshold `metric` reaches.
    pub fn qualifying(&self, metric: Decimal) -> Option<u16> {
        let n = self.levels.partition_point(|l| l.threshold <= metric);
        n.checked_sub(1).map(|i| i as u16)
    }

    /// The first business day inside the window ending at `now`.
    pub fn window_start(&self, now: DateTime<Utc>, tz: FixedOffset) -> i32 {
        let local = now.with_timezone(&tz);
        let start = match self.window {
            TierWindow::CalendarYear => NaiveDate::from_ymd_opt(local.year(), 1, 1),
            TierWindow::Rolling12Months => local
                .date_naive()
                .checked_sub_months(Months::new(12))
                .and_then(|d| d.succ_opt()),
        };
        start
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|d| tz.from_local_datetime(&d).single())
            .map_or(i32::MIN, |d| day_of(d.with_timezone(&Utc), tz))
    }
}

/// The business day number (days since 1970-01-01 in the business time zone).
pub fn day_of(t: DateTime<Utc>, tz: FixedOffset) -> i32 {
    let secs = t.timestamp() + i64::from(tz.local_minus_utc());
    secs.div_euclid(86_400) as i32
}

/// Growth and spend of one member on one business day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotal {
    /// Business day number.
    pub day: i32,
    /// Growth value earned.
    pub growth: i64,
    /// Money spent.
    pub spend: Decimal,
}

/// Why a tier changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TierReason {
    /// Reached a threshold (at once).
    Upgrade,
    /// Stayed below the tier past the grace period (at an evaluation).
    Downgrade,
}

/// One entry of a member's tier history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierChange {
    /// When the change took effect (UTC).
    pub time: DateTime<Utc>,
    /// Level index before (`None`: no tier).
    pub from: Option<u16>,
    /// Level index after.
    pub to: Option<u16>,
    /// Upgrade (a threshold reached) or downgrade (below the tier past the grace period).
    pub reason: TierReason,
}

/// Rarely used per-member state, boxed to keep the common member small.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberExtras {
    /// Behaviour → (business day, growth given that day).
    #[serde(default)]
    pub caps: BTreeMap<String, (i32, i64)>,
    /// Benefit id → claim times.
    #[serde(default)]
    pub claims: BTreeMap<String, Vec<DateTime<Utc>>>,
    /// Task id → completions.
    #[serde(default)]
    pub tasks: BTreeMap<String, u32>,
}

/// A member's growth, spend and tier in one program.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Current level index.
    pub tier: Option<u16>,
    /// When an evaluation found the member below their tier: the downgrade is due then.
    pub downgrade_due: Option<DateTime<Utc>>,
    /// Lifetime growth value.
    pub growth_total: i64,
    /// Lifetime spend.
    pub spend_total: Decimal,
    /// Daily totals, by day (recent ones; evaluations drop days older than any window needs).
    pub days: Vec<DayTotal>,
    /// Tier history.
    pub history: Vec<TierChange>,
    /// Caps, claims, task completions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<Box<MemberExtras>>,
}

/// Fold another member record into `m` (a OneID merge): totals and days added, the higher tier
/// kept (an upgrade dated `time`; never a downgrade on merge), claims and task completions
/// added.
pub(crate) fn fold_member(m: &mut Member, gone: &Member, time: DateTime<Utc>) {
    m.growth_total = m.growth_total.saturating_add(gone.growth_total);
    m.spend_total = m.spend_total.saturating_add(gone.spend_total);
    for d in &gone.days {
        let i = m.days.partition_point(|x| x.day < d.day);
        match m.days.get_mut(i) {
            Some(x) if x.day == d.day => {
                x.growth = x.growth.saturating_add(d.growth);
                x.spend = x.spend.saturating_add(d.spend);
            }
            _ => m.days.insert(i, d.clone()),
        }
    }
    if gone.tier > m.tier {
        m.history.push(TierChange {
            time,
            from: m.tier,
            to: gone.tier,
            reason: TierReason::Upgrade,
        });
        m.tier = gone.tier;
        m.downgrade_due = gone.downgrade_due;
    }
    if let Some(gx) = &gone.extras {
        let x = m.extras.get_or_insert_with(Default::default);
        for (k, v) in &gx.claims {
            let c = x.claims.entry(k.clone()).or_default();
            c.extend_from_slice(v);
            c.sort();
        }
        for (k, v) in &gx.tasks {
            let c = x.tasks.entry(k.clone()).or_default();
            *c = c.saturating_add(*v);
        }
    }
}

/// Take a folded member record back out of `m` (a split that cannot restore `m` as it was):
/// totals, days, claims and task completions of `gone` subtracted; the tier stays.
pub(crate) fn unfold_member(m: &mut Member, gone: &Member) {
    m.growth_total = m.growth_total.saturating_sub(gone.growth_total);
    m.spend_total = (m.spend_total - gone.spend_total).max(Decimal::ZERO);
    for d in &gone.days {
        if let Ok(i) = m.days.binary_search_by_key(&d.day, |x| x.day) {
            let x = &mut m.days[i];
            x.growth = x.growth.saturating_sub(d.growth);
            x.spend = (x.spend - d.spend).max(Decimal::ZERO);
            if x.growth == 0 && x.spend.is_zero() {
                m.days.remove(i);
            }
        }
    }
    if let (Some(x), Some(gx)) = (m.extras.as_mut(), &gone.extras) {
        for (k, v) in &gx.claims {
            if let Some(c) = x.claims.get_mut(k) {
                for t in v {
                    if let Some(i) = c.iter().position(|u| u == t) {
                        c.remove(i);
                    }
                }
                if c.is_empty() {
                    x.claims.remove(k);
                }
            }
        }
        for (k, v) in &gx.tasks {
            if let Some(c) = x.tasks.get_mut(k) {
                *c = c.saturating_sub(*v);
                if *c == 0 {
                    x.tasks.remove(k);
                }
            }
        }
    }
}

/// Counts from an evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Members evaluated.
    pub members: u64,
    /// Members upgraded.
    pub upgraded: u64,
    /// Members downgraded.
    pub downgraded: u64,
    /// Members below their tier, inside the grace period.
    pub grace: u64,
}

impl Member {
    /// The ladder metric in the window ending at `now`.
    pub fn metric(&self, ladder: &TierLadder, now: DateTime<Utc>, tz: FixedOffset) -> Decimal {
        let start = ladder.window_start(now, tz);
        let end = day_of(now, tz);
        let first = self.days.partition_point(|d| d.day < start);
        let in_window = self.days[first..].iter().take_while(|d| d.day <= end);
        match ladder.basis {
            TierBasis::Growth => {
                Decimal::from(in_window.map(|d| d.growth).fold(0i64, i64::saturating_add))
            }
            TierBasis::Spend => in_window.fold(Decimal::ZERO, |a, d| a.saturating_add(d.spend)),
        }
    }

    /// Growth value a behaviour would give now, after its daily cap.
    pub fn capped(&self, rules: &GrowthRules, behaviour: &str, raw: i64, day: i32) -> i64 {
        match rules.daily_caps.get(behaviour) {
            None => raw,
            Some(cap) => {
                let used = self
                    .extras
                    .as_ref()
                    .and_then(|x| x.caps.get(behaviour))
                    .filter(|(d, _)| *d == day)
                    .map_or(0, |(_, g)| *g);
                raw.min(cap - used).max(0)
            }
        }
    }

    /// Record growth and spend on a day. The caller checked the totals cannot overflow.
    pub fn record(&mut self, day: i32, growth: i64, spend: Decimal) {
        self.growth_total += growth;
        self.spend_total += spend;
        self.record_day(day, growth, spend);
    }

    /// Add to a day's totals (saturating) without touching the lifetime totals.
    pub fn record_day(&mut self, day: i32, growth: i64, spend: Decimal) {
        let i = self.days.partition_point(|d| d.day < day);
        match self.days.get_mut(i) {
            Some(d) if d.day == day => {
                d.growth = d.growth.saturating_add(growth);
                d.spend = d.spend.saturating_add(spend);
            }
            _ => self.days.insert(i, DayTotal { day, growth, spend }),
        }
    }

    /// Upgrade at once if the metric in the window ending at `now` reaches a higher level
    /// (the caller passes the later of the write's time and the module's clock). Returns
    /// whether it did.
    pub fn upgrade(&mut self, ladder: &TierLadder, now: DateTime<Utc>, tz: FixedOffset) -> bool {
        let q = ladder.qualifying(self.metric(ladder, now, tz));
        if q > self.tier {
            self.change(q, now, TierReason::Upgrade);
            true
        } else {
            if q == self.tier {
                self.downgrade_due = None;
            }
            false
        }
    }

    fn change(&mut self, to: Option<u16>, time: DateTime<Utc>, reason: TierReason) {
        self.history.push(TierChange {
            time,
            from: self.tier,
            to,
            reason,
        });
        self.tier = to;
        self.downgrade_due = None;
    }

    /// Evaluate at `now`: upgrade, start or finish a grace period, or downgrade.
    pub fn evaluate(
        &mut self,
        ladder: &TierLadder,
        now: DateTime<Utc>,
        tz: FixedOffset,
        out: &mut Evaluation,
    ) {
        out.members += 1;
        // Days older than any window can reach are dropped (a window spans at most 366 days).
        let keep_from = day_of(now, tz) - 400;
        let old = self.days.partition_point(|d| d.day < keep_from);
        if old > 0 {
            self.days.drain(..old);
        }
        let q = ladder.qualifying(self.metric(ladder, now, tz));
        if q > self.tier {
            self.change(q, now, TierReason::Upgrade);
            out.upgraded += 1;
        } else if q == self.tier {
            self.downgrade_due = None;
        } else {
            let due = *self.downgrade_due.get_or_insert_with(|| {
                now.checked_add_signed(Duration::days(i64::from(ladder.grace_days)))
                    .unwrap_or(now)
            });
            if now >= due {
                self.change(q, now, TierReason::Downgrade);
                out.downgraded += 1;
            } else {
                out.grace += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros_free::dec;

    mod rust_decimal_macros_free {
        macro_rules! dec {
            ($s:literal) => {
                $s.parse::<rust_decimal::Decimal>().unwrap()
            };
        }
        pub(crate) use dec;
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ladder(window: TierWindow, grace: u32) -> TierLadder {
        TierLadder {
            basis: TierBasis::Growth,
            window,
            grace_days: grace,
            levels: vec![
                TierLevel {
                    name: "silver".into(),
                    threshold: dec!("0"),
                },
                TierLevel {
                    name: "gold".into(),
                    threshold: dec!("100"),
                },
                TierLevel {
                    name: "platinum".into(),
                    threshold: dec!("500"),
                },
            ],
        }
    }

    #[test]
    fn upgrade_at_once_downgrade_after_grace() {
        let tz = FixedOffset::east_opt(8 * 3600).unwrap();
        let l = ladder(TierWindow::CalendarYear, 30);
        let mut m = Member::default();
        let now = t("2026-06-01T00:00:00Z");
        m.record(day_of(now, tz), 150, Decimal::ZERO);
        assert!(m.upgrade(&l, now, tz));
        assert_eq!(m.tier, Some(1));
        // New year: the window restarts, the member is below gold.
        let mut ev = Evaluation::default();
        let jan = t("2027-01-02T00:00:00Z");
        m.evaluate(&l, jan, tz, &mut ev);
        assert_eq!((m.tier, ev.grace), (Some(1), 1));
        let mut ev = Evaluation::default();
        m.evaluate(&l, t("2027-01-20T00:00:00Z"), tz, &mut ev);
        assert_eq!((m.tier, ev.grace), (Some(1), 1));
        let mut ev = Evaluation::default();
        m.evaluate(&l, t("2027-02-02T00:00:00Z"), tz, &mut ev);
        assert_eq!((m.tier, ev.downgraded), (Some(0), 1));
        assert_eq!(m.history.len(), 2);
        assert_eq!(m.history[1].reason, TierReason::Downgrade);
    }

    #[test]
    fn rolling_window_and_caps() {
        let tz = FixedOffset::east_opt(0).unwrap();
        let l = ladder(TierWindow::Rolling12Months, 0);
        let mut m = Member::default();
        m.record(day_of(t("2025-03-01T00:00:00Z"), tz), 200, Decimal::ZERO);
        assert_eq!(m.metric(&l, t("2026-02-28T00:00:00Z"), tz), dec!("200"));
        assert_eq!(m.metric(&l, t("2026-03-01T00:00:00Z"), tz), dec!("0"));
        let rules = GrowthRules {
            weights: [("login".to_owned(), 5)].into(),
            daily_caps: [("login".to_owned(), 12)].into(),
        };
        let mut x = MemberExtras::default();
        x.caps.insert("login".into(), (7, 10));
        m.extras = Some(Box::new(x));
        assert_eq!(m.capped(&rules, "login", 5, 7), 2);
        assert_eq!(m.capped(&rules, "login", 5, 8), 5);
    }
}
