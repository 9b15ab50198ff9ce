//! The stage rules of SPEC §5, in one place: [`StageWalker`] steps through a user's periods and
//! is used by both the batch and the incremental path.

use serde::{Deserialize, Serialize};

use super::LifecycleError;

/// A user's lifecycle stage in one period (SPEC §5, seed 003).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stage {
    /// Registered in this period (registering counts as activity).
    New,
    /// Registered in the previous period and active in this one.
    LastPeriodNew,
    /// An old user active in the previous period and in this one.
    Active,
    /// Inactive for at least one and fewer than the churn threshold periods, active again now.
    Awakened,
    /// Inactive for at least the churn threshold, active again now.
    Returned,
    /// Inactive now, for at least one and fewer than the churn threshold periods.
    Dormant,
    /// Inactive for at least the churn threshold periods.
    Churned,
}

impl Stage {
    /// Every stage, in report order.
    pub const ALL: [Stage; 7] = [
        Stage::New,
        Stage::LastPeriodNew,
        Stage::Active,
        Stage::Awakened,
        Stage::Returned,
        Stage::Dormant,
        Stage::Churned,
    ];

    /// The wire name (`"last_period_new"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::LastPeriodNew => "last_period_new",
            Stage::Active => "active",
            Stage::Awakened => "awakened",
            Stage::Returned => "returned",
            Stage::Dormant => "dormant",
            Stage::Churned => "churned",
        }
    }

    /// Whether a user in this stage was active in the period.
    pub fn is_active(self) -> bool {
        !matches!(self, Stage::Dormant | Stage::Churned)
    }

    /// The group of the decomposition this stage feeds in the *next* period.
    pub fn group(self) -> Group {
        match self {
            Stage::New => Group::New,
            Stage::LastPeriodNew | Stage::Active | Stage::Awakened | Stage::Returned => {
                Group::OldActive
            }
            Stage::Dormant => Group::Dormant,
            Stage::Churned => Group::Churned,
        }
    }

    /// A compact code (1..=7; 0 means "not registered yet") for dense stage tables.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The stage of a [`Stage::code`]; `None` for 0 or an unknown code.
    pub fn from_code(code: u8) -> Option<Stage> {
        Stage::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }
}

/// The four groups of period m-1 whose retention makes up the actives of period m.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Group {
    /// New in m-1; its rate is the new-user retention.
    New,
    /// Active in m-1 but not new (active, last-period-new, awakened, returned); its rate is the
    /// old-user retention.
    OldActive,
    /// Dormant in m-1; its rate is the wake rate.
    Dormant,
    /// Churned in m-1; its rate is the return rate.
    Churned,
}

impl Group {
    /// Every group, in report order.
    pub const ALL: [Group; 4] = [Group::OldActive, Group::New, Group::Dormant, Group::Churned];
}

/// The configurable thresholds of the stage machine.
///
/// The dormant threshold is one period, as SPEC §5 defines dormant ("inactive for ≥ 1 period");
/// the churn threshold is configurable. A second, larger dormant threshold would leave users in
/// no stage (and no group of the decomposition), so it is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRules {
    churn_after: u32,
}

impl Default for StageRules {
    fn default() -> Self {
        StageRules { churn_after: 2 }
    }
}

impl StageRules {
    /// Rules with a churn threshold: a user inactive for at least `churn_after` periods is
    /// churned (at least 2, so that dormant is a real stage).
    ///
    /// ```
    /// use userops::lifecycle::StageRules;
    /// assert_eq!(StageRules::new(3).unwrap().churn_after(), 3);
    /// assert!(StageRules::new(1).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`LifecycleError::BadThreshold`] for a threshold outside 2..=10000.
    pub fn new(churn_after: u32) -> Result<StageRules, LifecycleError> {
        if !(2..=10_000).contains(&churn_after) {
            return Err(LifecycleError::BadThreshold(churn_after));
        }
        Ok(StageRules { churn_after })
    }

    /// The churn threshold in periods.
    pub fn churn_after(&self) -> u32 {
        self.churn_after
    }
}

/// Walks one user's periods from registration on, one period per [`StageWalker::step`].
///
/// ```
/// use userops::lifecycle::{Stage, StageRules, StageWalker};
/// let mut w = StageWalker::new(StageRules::default(), 0);
/// let stages: Vec<Stage> = [true, false, false, false, true, true]
///     .into_iter().map(|a| w.step(a)).collect();
/// assert_eq!(stages, [Stage::New, Stage::Dormant, Stage::Churned, Stage::Churned,
///     Stage::Returned, Stage::Active]);
/// ```
#[derive(Debug, Clone)]
pub struct StageWalker {
    churn_after: i64,
    registered: i64,
    last_active: i64,
    next: i64,
}

impl StageWalker {
    /// Start at the registration period `registered`.
    pub fn new(rules: StageRules, registered: i64) -> StageWalker {
        StageWalker {
            churn_after: i64::from(rules.churn_after),
            registered,
            last_active: registered,
            next: registered,
        }
    }

    /// The period the next [`StageWalker::step`] classifies.
    pub fn next_period(&self) -> i64 {
        self.next
    }

    /// Classify the next period given whether the user was active in it.
    #[inline]
    pub fn step(&mut self, active: bool) -> Stage {
        let m = self.next;
        self.next += 1;
        if m == self.registered {
            // Registering is the period's qualifying activity.
            return Stage::New;
        }
        if active {
            let gap = m - self.last_active - 1;
            self.last_active = m;
            if m == self.registered + 1 {
                Stage::LastPeriodNew
            } else if gap == 0 {
                Stage::Active
            } else if gap < self.churn_after {
                Stage::Awakened
            } else {
                Stage::Returned
            }
        } else if m - self.last_active < self.churn_after {
            Stage::Dormant
        } else {
            Stage::Churned
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(rules: StageRules, active: &[bool]) -> Vec<Stage> {
        let mut w = StageWalker::new(rules, 10);
        active.iter().map(|&a| w.step(a)).collect()
    }

    #[test]
    fn every_stage_by_hand() {
        use Stage::*;
        let r = StageRules::default();
        // Registered, then active next period: last-period-new, then active.
        assert_eq!(walk(r, &[true, true, true]), [New, LastPeriodNew, Active]);
        // Registration with no activity recorded still counts as the New period.
        assert_eq!(walk(r, &[false, true]), [New, LastPeriodNew]);
        // Gap of exactly 1 (the dormant threshold): dormant then awakened.
        assert_eq!(
            walk(r, &[true, true, false, true]),
            [New, LastPeriodNew, Dormant, Awakened]
        );
        // Gap of exactly 2 (the churn threshold): dormant, churned, returned.
        assert_eq!(
            walk(r, &[true, true, false, false, true]),
            [New, LastPeriodNew, Dormant, Churned, Returned]
        );
        // Inactive right after registering: dormant in m+1 (never last-period-new).
        assert_eq!(walk(r, &[true, false, true]), [New, Dormant, Awakened]);
        // Long absence stays churned; the period after a return is active again.
        assert_eq!(
            walk(r, &[true, false, false, false, false, true, true]),
            [New, Dormant, Churned, Churned, Churned, Returned, Active]
        );
    }

    #[test]
    fn churn_threshold_is_configurable() {
        use Stage::*;
        let r = StageRules::new(3).unwrap();
        assert_eq!(
            walk(r, &[true, true, false, false, true]),
            [New, LastPeriodNew, Dormant, Dormant, Awakened]
        );
        assert_eq!(
            walk(r, &[true, true, false, false, false, true]),
            [New, LastPeriodNew, Dormant, Dormant, Churned, Returned]
        );
    }

    #[test]
    fn codes_round_trip() {
        for s in Stage::ALL {
            assert_eq!(Stage::from_code(s.code()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
        assert_eq!(Stage::from_code(0), None);
        assert_eq!(Stage::from_code(8), None);
    }
}
