//! Per-period counts, the transition matrix, the active rate, its exact decomposition, and the
//! projection of the next period's rate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stage::{Group, Stage};
use super::table::StageTable;
use super::LifecycleError;

/// One term of the decomposition: a group of period m-1 and how much of it is active in m.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// The group of m-1.
    pub group: Group,
    /// Its size in m-1.
    pub size: u64,
    /// How many of them are active in m.
    pub retained: u64,
    /// `retained / size`; `None` for an empty group.
    pub rate: Option<f64>,
}

/// actives(m) = new(m) + Σ over the groups of m-1 of size·rate, exactly (in whole users).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decomposition {
    /// Active users in m.
    pub actives: u64,
    /// New users in m.
    pub new: u64,
    /// One term per [`Group`], in [`Group::ALL`] order.
    pub terms: Vec<Term>,
}

impl Decomposition {
    /// The one place the identity is asserted: a decomposition that does not add up is refused
    /// (as an internal error — the counts come from one table, so it would be a bug).
    ///
    /// # Errors
    ///
    /// [`LifecycleError::Internal`] when the terms and new users do not add up to `actives`, or a
    /// term retains more than its size.
    pub fn new(actives: u64, new: u64, terms: Vec<Term>) -> Result<Decomposition, LifecycleError> {
        let sum = terms.iter().map(|t| t.retained).sum::<u64>() + new;
        if sum != actives || terms.iter().any(|t| t.retained > t.size) {
            return Err(LifecycleError::Internal(format!(
                "decomposition does not add up: {actives} actives vs {new} new + retained {:?}",
                terms.iter().map(|t| t.retained).collect::<Vec<_>>()
            )));
        }
        Ok(Decomposition {
            actives,
            new,
            terms,
        })
    }

    /// The term of a group.
    pub fn term(&self, group: Group) -> Option<&Term> {
        self.terms.iter().find(|t| t.group == group)
    }
}

/// A transition between the stages of two consecutive periods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The stage in m-1 (`None`: not registered yet).
    pub from: Option<Stage>,
    /// The stage in m.
    pub to: Stage,
    /// How many users.
    pub users: u64,
}

/// Everything about one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodSummary {
    /// The period's label (`2026-03`).
    pub period: String,
    /// Users registered by the end of the period.
    pub registered: u64,
    /// Users active in the period (new ones included).
    pub actives: u64,
    /// `actives / registered`; `None` when nobody is registered yet.
    pub active_rate: Option<f64>,
    /// Users per stage (every stage present, zeros included).
    pub stages: BTreeMap<Stage, u64>,
    /// The decomposition against the previous period (`None` for the first period).
    pub decomposition: Option<Decomposition>,
    /// Non-zero transitions from the previous period.
    pub transitions: Vec<Transition>,
}

impl PeriodSummary {
    /// Users in a stage.
    pub fn count(&self, stage: Stage) -> u64 {
        self.stages.get(&stage).copied().unwrap_or(0)
    }

    /// The size of a group in this period (what the next period's terms start from).
    pub fn group_size(&self, group: Group) -> u64 {
        Stage::ALL
            .iter()
            .filter(|s| s.group() == group)
            .map(|s| self.count(*s))
            .sum()
    }
}

/// The lifecycle over a range of periods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleReport {
    /// The churn threshold used, in periods.
    pub churn_after: u32,
    /// One summary per period, oldest first.
    pub periods: Vec<PeriodSummary>,
}

/// Counts of one period: stages and transitions (index 0 of `from` = not registered).
#[derive(Clone, Default)]
struct Counts {
    stages: [u64; 7],
    transitions: [[u64; 7]; 8],
}

impl LifecycleReport {
    /// Summarize a stage table: counts, transitions, active rate and decomposition per period.
    ///
    /// # Errors
    ///
    /// [`LifecycleError::Internal`] when a period's decomposition does not add up (see
    /// [`Decomposition::new`]): never for a table the crate built.
    pub fn from_table(table: &StageTable) -> Result<LifecycleReport, LifecycleError> {
        Self::build(table, |_| true)
    }

    /// The report of the users `u` (table order) for which `keep(u)` holds: a breakdown by any
    /// tag or segment.
    ///
    /// # Errors
    ///
    /// As [`LifecycleReport::from_table`].
    pub fn from_table_where(
        table: &StageTable,
        keep: impl Fn(usize) -> bool,
    ) -> Result<LifecycleReport, LifecycleError> {
        Self::build(table, keep)
    }

    fn build(
        table: &StageTable,
        keep: impl Fn(usize) -> bool,
    ) -> Result<LifecycleReport, LifecycleError> {
        let n = table.periods;
        let mut counts = vec![Counts::default(); n];
        for u in 0..table.users.len() {
            if !keep(u) {
                continue;
            }
            let row = table.row(u);
            let mut prev = 0u8;
            for (p, &c) in row.iter().enumerate() {
                if c != 0 {
                    let k = &mut counts[p];
                    k.stages[usize::from(c - 1)] += 1;
                    k.transitions[usize::from(prev)][usize::from(c - 1)] += 1;
                }
                prev = c;
            }
        }
        let mut periods = Vec::with_capacity(n);
        for (p, k) in counts.iter().enumerate() {
            let registered: u64 = k.stages.iter().sum();
            let actives: u64 = Stage::ALL
                .iter()
                .filter(|s| s.is_active())
                .map(|s| k.stages[usize::from(s.code() - 1)])
                .sum();
            let decomposition = if p == 0 {
                None
            } else {
                let prev = &counts[p - 1];
                let terms = Group::ALL
                    .iter()
                    .map(|&g| {
                        let mut size = 0;
                        let mut retained = 0;
                        for from in Stage::ALL.iter().filter(|s| s.group() == g) {
                            let f = usize::from(from.code() - 1);
                            size += prev.stages[f];
                            retained += Stage::ALL
                                .iter()
                                .filter(|s| s.is_active())
                                .map(|to| k.transitions[f + 1][usize::from(to.code() - 1)])
                                .sum::<u64>();
                        }
                        Term {
                            group: g,
                            size,
                            retained,
                            rate: ratio(retained, size),
                        }
                    })
                    .collect();
                Some(Decomposition::new(
                    actives,
                    k.stages[usize::from(Stage::New.code() - 1)],
                    terms,
                )?)
            };
            let mut transitions = Vec::new();
            for (f, row) in k.transitions.iter().enumerate() {
                for (t, &users) in row.iter().enumerate() {
                    if users > 0 {
                        transitions.push(Transition {
                            from: if f == 0 {
                                None
                            } else {
                                Stage::from_code(f as u8)
                            },
                            to: Stage::ALL[t],
                            users,
                        });
                    }
                }
            }
            periods.push(PeriodSummary {
                period: table.clock.label(table.first + p as i64),
                registered,
                actives,
                active_rate: ratio(actives, registered),
                stages: Stage::ALL
                    .iter()
                    .map(|s| (*s, k.stages[usize::from(s.code() - 1)]))
                    .collect(),
                decomposition,
                transitions,
            });
        }
        Ok(LifecycleReport {
            churn_after: table.rules.churn_after(),
            periods,
        })
    }

    /// The summary of a period by label.
    pub fn period(&self, label: &str) -> Option<&PeriodSummary> {
        self.periods.iter().find(|p| p.period == label)
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The four rates of the decomposition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Share of old active users still active next period.
    pub old_retention: f64,
    /// Share of new users active next period.
    pub new_retention: f64,
    /// Share of dormant users active next period.
    pub wake_rate: f64,
    /// Share of churned users active next period.
    pub return_rate: f64,
}

impl Rates {
    /// The rates observed in a decomposition (an empty group's rate is 0).
    pub fn observed(d: &Decomposition) -> Rates {
        let r = |g| d.term(g).and_then(|t| t.rate).unwrap_or(0.0);
        Rates {
            old_retention: r(Group::OldActive),
            new_retention: r(Group::New),
            wake_rate: r(Group::Dormant),
            return_rate: r(Group::Churned),
        }
    }

    fn get(&self, g: Group) -> f64 {
        match g {
            Group::OldActive => self.old_retention,
            Group::New => self.new_retention,
            Group::Dormant => self.wake_rate,
            Group::Churned => self.return_rate,
        }
    }

    fn check(&self) -> Result<(), LifecycleError> {
        for (name, v) in [
            ("old_retention", self.old_retention),
            ("new_retention", self.new_retention),
            ("wake_rate", self.wake_rate),
            ("return_rate", self.return_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(LifecycleError::BadRate {
                    field: name,
                    value: v,
                });
            }
        }
        Ok(())
    }
}

/// The lever a target is solved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Lever {
    /// Old-user retention.
    OldRetention,
    /// New-user retention.
    NewRetention,
    /// Wake rate of dormant users.
    WakeRate,
    /// Return rate of churned users.
    ReturnRate,
    /// The number of new users next period.
    NewUsers,
}

/// The projected next period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// Expected actives next period (fractional: rates × sizes).
    pub actives: f64,
    /// Registered users by the end of next period.
    pub registered: u64,
    /// `actives / registered`.
    pub active_rate: Option<f64>,
    /// The rates used.
    pub rates: Rates,
    /// The new users assumed.
    pub new_users: u64,
}

/// What a lever must reach for a target active rate, the others held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeverTarget {
    /// The lever solved for; the others are held.
    pub lever: Lever,
    /// The target active rate.
    pub target: f64,
    /// The value the lever must reach (a rate, or a number of new users).
    pub required: f64,
    /// The lever's value now.
    pub current: f64,
    /// Whether the required value is reachable (a rate within 0..=1, new users ≥ 0).
    pub feasible: bool,
}

/// Next period's active rate from this period's summary, the rates and the new users expected.
///
/// ```
/// use userops::lifecycle::{project, PeriodSummary, Rates, Stage};
/// let mut s = PeriodSummary { period: "2026-06".into(), registered: 1000, actives: 0,
///     active_rate: None, stages: Default::default(), decomposition: None, transitions: vec![] };
/// s.stages.insert(Stage::Active, 800);
/// s.stages.insert(Stage::Dormant, 200);
/// let r = Rates { old_retention: 0.9, new_retention: 0.9, wake_rate: 0.5, return_rate: 0.1 };
/// let p = project(&s, r, 0).unwrap();
/// assert!((p.active_rate.unwrap() - 0.82).abs() < 1e-12);
/// ```
///
/// # Errors
///
/// [`LifecycleError::BadRate`] for a rate outside 0..=1; [`LifecycleError::Overflow`] when the
/// registered users plus `new_users` overflow.
pub fn project(
    now: &PeriodSummary,
    rates: Rates,
    new_users: u64,
) -> Result<Projection, LifecycleError> {
    rates.check()?;
    let actives = new_users as f64
        + Group::ALL
            .iter()
            .map(|&g| now.group_size(g) as f64 * rates.get(g))
            .sum::<f64>();
    let registered = now
        .registered
        .checked_add(new_users)
        .ok_or(LifecycleError::Overflow("registered + new_users"))?;
    Ok(Projection {
        actives,
        registered,
        active_rate: (registered > 0).then(|| actives / registered as f64),
        rates,
        new_users,
    })
}

/// The value `lever` must reach for next period's active rate to be `target`, the other rates
/// and the new users held.
///
/// # Errors
///
/// [`LifecycleError::BadRate`] for a rate or `target` outside 0..=1.
pub fn required_lever(
    now: &PeriodSummary,
    rates: Rates,
    new_users: u64,
    target: f64,
    lever: Lever,
) -> Result<LeverTarget, LifecycleError> {
    rates.check()?;
    if !(0.0..=1.0).contains(&target) {
        return Err(LifecycleError::BadRate {
            field: "target",
            value: target,
        });
    }
    let group = match lever {
        Lever::OldRetention => Some(Group::OldActive),
        Lever::NewRetention => Some(Group::New),
        Lever::WakeRate => Some(Group::Dormant),
        Lever::ReturnRate => Some(Group::Churned),
        Lever::NewUsers => None,
    };
    let retained_except = |skip: Option<Group>| -> f64 {
        Group::ALL
            .iter()
            .filter(|&&g| Some(g) != skip)
            .map(|&g| now.group_size(g) as f64 * rates.get(g))
            .sum()
    };
    let (required, current, feasible) = match group {
        Some(g) => {
            let size = now.group_size(g) as f64;
            let registered = now.registered as f64 + new_users as f64;
            let need = target * registered - new_users as f64 - retained_except(Some(g));
            if size == 0.0 {
                // An empty group cannot move the rate: feasible only if already met.
                (0.0, rates.get(g), need <= 0.0)
            } else {
                // Below 0: the target is met whatever this lever does.
                let r = need / size;
                (r.max(0.0), rates.get(g), r <= 1.0)
            }
        }
        None => {
            // target·(R + N) = N + rest  ⇒  N = (target·R − rest) / (1 − target)
            let rest = retained_except(None);
            let r = if target >= 1.0 {
                f64::INFINITY
            } else {
                (target * now.registered as f64 - rest) / (1.0 - target)
            };
            (r.max(0.0), new_users as f64, r.is_finite())
        }
    };
    Ok(LeverTarget {
        lever,
        target,
        required,
        current,
        feasible,
    })
}
