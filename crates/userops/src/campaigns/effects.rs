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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn row(user: u64, action: &'static str, rule: &str) -> PlanRow {
        PlanRow {
            touch_id: None,
            user: OneId(user),
            action,
            channel: None,
            content: None,
            coupon_id: None,
            points: None,
            program: None,
            key: None,
            tag: None,
            rule: Arc::from(rule),
            reason: Arc::from(""),
        }
    }

    fn points(user: u64, rule: &str, key: Option<&str>) -> PlanRow {
        PlanRow {
            points: Some(5),
            program: Some("p".into()),
            key: key.map(str::to_owned),
            ..row(user, "grant_points", rule)
        }
    }

    fn tag(user: u64, rule: &str, tag: &str) -> PlanRow {
        PlanRow {
            tag: Some(tag.into()),
            ..row(user, "add_tag", rule)
        }
    }

    /// The effects name each earn by its row and each tag with its users in plan order; the
    /// rows whose effect failed are dropped and counted as suppressed, the rest kept in order.
    #[test]
    fn failed_effects_drop_their_rows_and_count_as_suppressed() {
        let plan = vec![
            row(1, "touch", "r"),
            points(1, "r", Some("k1")),
            points(2, "r", None),
            points(3, "s", Some("k3")),
            tag(1, "r", "a"),
            tag(3, "s", "b"),
            tag(2, "r", "a"),
        ];
        let fx = PlanEffects::of(plan.clone());
        let earns: Vec<(usize, u64, &str)> = fx
            .earns
            .iter()
            .map(|(i, e)| (*i, e.user.0, e.key.as_str()))
            .collect();
        // The row without a key is dropped: the indexes are of the rows kept.
        assert_eq!(earns, vec![(1, 1, "k1"), (2, 3, "k3")]);
        assert_eq!(fx.earns[0].1.reason, "automation rule r");
        let tags: Vec<(&str, Vec<u64>)> = fx
            .tags
            .iter()
            .map(|(t, u)| (t.as_str(), u.iter().map(|o| o.0).collect()))
            .collect();
        assert_eq!(tags, vec![("a", vec![1, 2]), ("b", vec![3])]);

        let mut c = Campaigns::default();
        let kept = c.finish_plan(fx, &BTreeSet::from([2]), &BTreeSet::from(["a".to_owned()]));
        assert_eq!(
            kept,
            vec![plan[0].clone(), plan[1].clone(), plan[5].clone()]
        );
        let suppressed = c.automation().suppressed();
        assert_eq!(suppressed["s"]["points_failed"], 1);
        assert_eq!(suppressed["r"]["tag_failed"], 2);
        assert_eq!(suppressed.values().map(|m| m.len()).sum::<usize>(), 2);
    }
}
