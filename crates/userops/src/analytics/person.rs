//! Journeys' side of the person contract ([`PersonState`]): a merge moves the absorbed
//! person's steps into the survivor's timeline, each remembering the OneID it was recorded
//! under, so that a split can give every step back to the part that OneID belongs to now.

use super::commands::{step_order, AnalyticsState, Names, Step};
use crate::ids::OneId;
use crate::person::{EraseStep, MergeStep, PersonState, Persons, SplitStep};

/// A OneID as a step's origin.
fn origin_of(o: OneId) -> u32 {
    u32::try_from(o.0).expect("OneIDs are numbered below 2^32: at most one per identifier node")
}

/// Insert `step` into a timeline in [`step_order`], after every step that orders equal.
fn insert(names: &Names, line: &mut Vec<Step>, step: Step) {
    let at = line.partition_point(|s| step_order(names, s, &step).is_le());
    line.insert(at, step);
}

impl PersonState for AnalyticsState {
    const MODULE: &'static str = "analytics";
    type Reads<'r> = ();

    fn merge(&mut self, (): (), step: &MergeStep) -> Option<serde_json::Value> {
        let mut gone = self.timelines.remove(&step.absorbed)?;
        let from = origin_of(step.absorbed);
        for s in &mut gone {
            if s.origin == 0 {
                s.origin = from;
            }
        }
        let n = gone.len();
        let mine = self.timelines.entry(step.survivor).or_default();
        mine.extend(gone);
        mine.sort_by(|a, b| step_order(&self.names, a, b)); // stable: equal steps keep their order
        Some(serde_json::json!({"absorbed": step.absorbed, "journey_steps": n}))
    }

    fn split(&mut self, (): (), step: &SplitStep<'_>) -> Option<serde_json::Value> {
        let line = self.timelines.remove(&step.old)?;
        let mut stay = Vec::with_capacity(line.len());
        let mut away: Vec<(OneId, Step)> = Vec::new();
        for mut s in line {
            let part = (s.origin != 0)
                .then(|| step.part_of(OneId(u64::from(s.origin))))
                .flatten();
            match part {
                Some(p) if p != step.old => {
                    if u64::from(s.origin) == p.0 {
                        s.origin = 0;
                    }
                    away.push((p, s));
                }
                _ => stay.push(s),
            }
        }
        if !stay.is_empty() {
            self.timelines.insert(step.old, stay);
        }
        for (p, s) in away {
            insert(&self.names, self.timelines.entry(p).or_default(), s);
        }
        None
    }

    fn erase(&mut self, (): (), step: &EraseStep<'_>) {
        let mut removed = false;
        for o in step.oneids {
            removed |= self.timelines.remove(o).is_some();
        }
        if removed {
            self.compact_names();
        }
    }

    fn check_invariants(&self, (): (), persons: &Persons<'_>) -> Vec<String> {
        let mut bad = Vec::new();
        let n = self.names.len() as u32;
        for (o, line) in &self.timelines {
            if !persons.is_live(*o) {
                bad.push(format!(
                    "analytics: journey held for {o}, which is not a live person"
                ));
            }
            if line
                .windows(2)
                .any(|w| step_order(&self.names, &w[0], &w[1]).is_gt())
            {
                bad.push(format!("analytics: journey of {o} is out of step order"));
            }
            for s in line {
                if s.origin != 0
                    && persons.identity.canonical(OneId(u64::from(s.origin))) != Some(*o)
                {
                    bad.push(format!(
                        "analytics: a step of {o} was recorded under {}, which is not merged into it",
                        s.origin
                    ));
                    break;
                }
                if [s.kind, s.name, s.channel]
                    .iter()
                    .chain(s.skus.iter())
                    .any(|c| *c >= n)
                {
                    bad.push(format!("analytics: a step of {o} names an unknown string"));
                    break;
                }
            }
        }
        bad
    }

    /// The journey, as the `journey` command shows it.
    fn holdings(&self, (): (), _: &Persons<'_>, person: OneId) -> serde_json::Value {
        serde_json::to_value(self.journey(person)).unwrap_or_default()
    }
}

impl AnalyticsState {
    /// Drop every name no step uses any more (an erased person's SKUs, channels, activity
    /// types), renumbering the rest in their old order.
    fn compact_names(&mut self) {
        let mut used = vec![false; self.names.len()];
        let mut mark = |c: u32| {
            if let Some(u) = used.get_mut(c as usize) {
                *u = true;
            }
        };
        for s in self.timelines.values().flatten() {
            mark(s.kind);
            mark(s.name);
            mark(s.channel);
            s.skus.iter().for_each(|c| mark(*c));
        }
        if used.iter().all(|u| *u) {
            return;
        }
        let mut names = Names::default();
        let map: Vec<u32> = (0..used.len() as u32)
            .map(|c| {
                if used[c as usize] {
                    names.code(self.names.get(c))
                } else {
                    u32::MAX
                }
            })
            .collect();
        let re = |c: &mut u32| *c = map[*c as usize];
        for s in self.timelines.values_mut().flatten() {
            re(&mut s.kind);
            re(&mut s.name);
            re(&mut s.channel);
            s.skus.iter_mut().for_each(re);
        }
        self.names = names;
    }
}
