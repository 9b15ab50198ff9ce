//! What an automation delivery plan asks of the other modules: points for its `grant_points`
//! rows and bool tags for its `add_tag` rows. The engine applies them (engine/campaigns.rs)
//! and reports what failed; campaigns then drops those rows and counts them as suppressed.

use std::collections::{BTreeMap, BTreeSet};

use super::commit::PointsEarn;
use super::{Campaigns, PlanRow};
use crate::ids::OneId;

/// The description of a tag automation defines when a rule's `add_tag` names a new one.
pub(crate) const AUTOMATION_TAG_DESCRIPTION: &str = "set by automation rules";

/// A delivery plan and what it asks of the other modules, in the order they are applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlanEffects {
    /// The plan's rows (a `grant_points` row without its points, program or key is dropped).
    rows: Vec<PlanRow>,
    /// Points to post, in plan order, with the index of their row in `rows`.
    pub(crate) earns: Vec<(usize, PointsEarn)>,
    /// Bool tags to set true, by tag name (defined first when missing), users in plan order.
    pub(crate) tags: BTreeMap<String, Vec<OneId>>,
}

impl PlanEffects {
    /// The effects of a delivery plan.
    pub(crate) fn of(plan: Vec<PlanRow>) -> PlanEffects {
        let mut fx = PlanEffects {
            rows: Vec::with_capacity(plan.len()),
            earns: Vec::new(),
            tags: BTreeMap::new(),
        };
        for row in plan {
            match row.action {
                "grant_points" => {
                    let (Some(points), Some(program), Some(key)) =
                        (row.points, row.program.clone(), row.key.clone())
                    else {
                        continue;
                    };
                    let earn = PointsEarn {
                        user: row.user,
                        program,
                        points,
                        key,
                        reason: format!("automation rule {}", row.rule),
                        expires: None,
                        order: None,
                        actor: "automation",
                    };
                    fx.earns.push((fx.rows.len(), earn));
                }
                "add_tag" => {
                    if let Some(t) = &row.tag {
                        fx.tags.entry(t.clone()).or_default().push(row.user);
                    }
                }
                _ => {}
            }
            fx.rows.push(row);
        }
        fx
    }
}

impl Campaigns {
    /// The plan as applied: the rows whose earn (by index) or tag failed are dropped and
    /// counted as suppressed (`points_failed`, `tag_failed`); the rest go ahead.
    pub(crate) fn finish_plan(
        &mut self,
        fx: PlanEffects,
        failed_earns: &BTreeSet<usize>,
        failed_tags: &BTreeSet<String>,
    ) -> Vec<PlanRow> {
        let mut keep = Vec::with_capacity(fx.rows.len());
        for (i, r) in fx.rows.into_iter().enumerate() {
            if failed_earns.contains(&i) {
                self.automation.suppress(&r.rule, "points_failed");
            } else if r.action == "add_tag"
                && r.tag.as_ref().is_some_and(|t| failed_tags.contains(t))
            {
                self.automation.suppress(&r.rule, "tag_failed");
            } else {
                keep.push(r);
            }
        }
        keep
    }
}
