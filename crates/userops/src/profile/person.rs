//! The profiles' side of the person contract ([`PersonState`]): attributes by their merge
//! strategy, aggregates added, both given back on a split.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{combine, Aggregates, AttributeDef, MergeReport, MergeStrategy, Observation};
use super::{Profiles, StoredProfile};
use crate::ids::OneId;
use crate::person::{unmerge, EraseStep, MergeStep, PersonState, Persons, SplitStep};
use crate::tags::TagState;
use crate::tags::AGGREGATE_COLUMNS;
use crate::users::UserIndex;

/// What a merge moved, kept until a split gives it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProfileMoved {
    /// The absorbed person's profile as it was.
    moved: StoredProfile,
    /// Attributes the merge changed on the survivor: its value before (`None`: it had none)
    /// and the merged value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    changed: BTreeMap<String, (Option<Observation>, Observation)>,
    /// The survivor's aggregates before the merge.
    aggregates: Aggregates,
}

/// Fold `from` into `into` (attributes by their strategies, aggregates added): the report's
/// attribute column and problems, and what changed on `into`.
#[expect(
    clippy::type_complexity,
    reason = "a private helper's three results, each named in its doc comment"
)]
fn fold(
    defs: &BTreeMap<String, AttributeDef>,
    into: &mut StoredProfile,
    from: &StoredProfile,
) -> (
    BTreeMap<String, String>,
    Vec<String>,
    BTreeMap<String, (Option<Observation>, Observation)>,
) {
    let (mut what, mut problems, mut changed) = (BTreeMap::new(), Vec::new(), BTreeMap::new());
    for (name, ob) in &from.attributes {
        let strategy = defs
            .get(name)
            .map_or(MergeStrategy::Latest, |d| d.merge.clone());
        match into.attributes.get(name) {
            None => {
                what.insert(name.clone(), "taken".to_owned());
                changed.insert(name.clone(), (None, ob.clone()));
                into.attributes.insert(name.clone(), ob.clone());
            }
            Some(cur) => match combine(&strategy, cur, ob) {
                Ok(next) => {
                    let w = if next == *cur {
                        "kept"
                    } else if next == *ob {
                        "taken"
                    } else {
                        "combined"
                    };
                    what.insert(name.clone(), w.to_owned());
                    if next != *cur {
                        changed.insert(name.clone(), (Some(cur.clone()), next.clone()));
                        into.attributes.insert(name.clone(), next);
                    }
                }
                Err(why) => problems.push(format!("{name}: {why}")),
            },
        }
    }
    add_aggregates(&mut into.aggregates, &from.aggregates);
    (what, problems, changed)
}

fn add_aggregates(a: &mut Aggregates, b: &Aggregates) {
    a.orders = a.orders.saturating_add(b.orders);
    // Decimal tops out near 7.9e28: unreachable by real money, so saturate.
    a.gmv = a.gmv.checked_add(b.gmv).unwrap_or(Decimal::MAX);
    a.refunds = a.refunds.saturating_add(b.refunds);
    a.refund_amount = a
        .refund_amount
        .checked_add(b.refund_amount)
        .unwrap_or(Decimal::MAX);
    a.first_order = a.first_order.into_iter().chain(b.first_order).min();
    a.last_order = a.last_order.into_iter().chain(b.last_order).max();
    for (k, n) in &b.touches {
        let e = a.touches.entry(k.clone()).or_default();
        *e = e.saturating_add(*n);
    }
    for (k, n) in &b.coupons {
        let e = a.coupons.entry(k.clone()).or_default();
        *e = e.saturating_add(*n);
    }
}

/// Take `b`'s counts and sums out of `a` (never below zero); first and last order back to
/// `before` unless they changed since the merge.
fn take_aggregates(a: &mut Aggregates, b: &Aggregates, before: &Aggregates) {
    let mut merged = before.clone();
    add_aggregates(&mut merged, b);
    if *a == merged {
        // Nothing since the merge: exactly as before (decimals keep their scale too).
        *a = before.clone();
        return;
    }
    a.orders = a.orders.saturating_sub(b.orders);
    a.gmv = (a.gmv - b.gmv).max(Decimal::ZERO);
    a.refunds = a.refunds.saturating_sub(b.refunds);
    a.refund_amount = (a.refund_amount - b.refund_amount).max(Decimal::ZERO);
    a.first_order = unmerge(a.first_order, before.first_order, &merged.first_order);
    a.last_order = unmerge(a.last_order, before.last_order, &merged.last_order);
    for (map, take) in [(&mut a.touches, &b.touches), (&mut a.coupons, &b.coupons)] {
        for (k, n) in take {
            if let Some(e) = map.get_mut(k) {
                *e = e.saturating_sub(*n);
                if *e == 0 {
                    map.remove(k);
                }
            }
        }
    }
}

fn is_empty(p: &StoredProfile) -> bool {
    *p == StoredProfile::default()
}

impl PersonState for Profiles {
    const MODULE: &'static str = "profile";
    type Reads<'r> = ();

    fn merge(&mut self, (): (), step: &MergeStep) -> Option<serde_json::Value> {
        let gone = self.people.remove(&step.absorbed)?;
        let s = self.people.entry(step.survivor).or_default();
        let aggregates = s.aggregates.clone();
        let (attributes, problems, changed) = fold(&self.defs, s, &gone);
        self.merged.put(
            step,
            ProfileMoved {
                moved: gone,
                changed,
                aggregates,
            },
        );
        serde_json::to_value(MergeReport {
            survivor: step.survivor,
            absorbed: step.absorbed,
            attributes,
            problems,
        })
        .ok()
    }

    fn split(&mut self, (): (), step: &SplitStep<'_>) -> Option<serde_json::Value> {
        let mut kept: Vec<String> = Vec::new();
        for u in self.merged.take_undone(step) {
            let ProfileMoved {
                moved,
                changed,
                aggregates,
            } = u.data;
            if let Some(h) = self.people.get_mut(&u.holder) {
                for (name, (before, merged)) in changed {
                    match h.attributes.get(&name) {
                        Some(cur) if *cur == merged => match before {
                            Some(b) => {
                                h.attributes.insert(name, b);
                            }
                            None => {
                                h.attributes.remove(&name);
                            }
                        },
                        _ => kept.push(name),
                    }
                }
                take_aggregates(&mut h.aggregates, &moved.aggregates, &aggregates);
                if is_empty(h) {
                    self.people.remove(&u.holder);
                }
            }
            if !is_empty(&moved) {
                match self.people.get_mut(&u.target) {
                    // Another OneID of the part came back first: fold this one in.
                    Some(t) => {
                        fold(&self.defs, t, &moved);
                    }
                    None => {
                        self.people.insert(u.target, moved);
                    }
                }
            }
        }
        kept.sort();
        kept.dedup();
        (!kept.is_empty()).then(|| {
            serde_json::json!({
                "attributes_changed_since_merge": kept,
                "note": "the survivor keeps these attributes as they are now; the part got its own values back"
            })
        })
    }

    fn erase(&mut self, (): (), step: &EraseStep<'_>) {
        for o in step.oneids {
            self.people.remove(o);
        }
        self.merged.forget(step);
    }

    fn check_invariants(&self, (): (), persons: &Persons<'_>) -> Vec<String> {
        let mut bad: Vec<String> = self
            .people
            .keys()
            .filter(|o| !persons.is_live(**o))
            .map(|o| format!("profile: held for {o}, which is not a live person"))
            .collect();
        for (o, p) in &self.people {
            for name in p.attributes.keys() {
                if !self.defs.contains_key(name) {
                    bad.push(format!("profile: {o} holds undefined attribute {name:?}"));
                }
            }
        }
        bad.extend(self.merged.check(Self::MODULE, persons));
        bad
    }

    /// An empty profile counts as none.
    fn holdings(&self, (): (), _: &Persons<'_>, person: OneId) -> serde_json::Value {
        serde_json::to_value(self.people.get(&person).filter(|p| !is_empty(p))).unwrap_or_default()
    }
}

impl Profiles {
    /// The index columns of attributes and aggregates hold exactly what the live persons'
    /// profiles say (for `Engine::check_invariants`).
    pub(crate) fn check_columns(&self, tags: &TagState, users: &UserIndex) -> Vec<String> {
        let mut bad = Vec::new();
        let names = self
            .defs
            .iter()
            .map(|(n, d)| (n.as_str(), Some(d)))
            .chain(AGGREGATE_COLUMNS.iter().map(|(n, _)| (*n, None)));
        for (name, def) in names {
            if !tags.has_column(name) {
                if def.is_some() {
                    bad.push(format!("profile: attribute {name:?} has no index column"));
                }
                continue;
            }
            for d in users.live().iter() {
                let Some(o) = users.oneid(d) else { continue };
                let p = self.people.get(&o);
                let want = match def {
                    Some(_) => p
                        .and_then(|p| p.attributes.get(name))
                        .map(|ob| ob.value.index_values())
                        .unwrap_or_default(),
                    None => super::aggregate_values(
                        &p.map(|p| p.aggregates.clone()).unwrap_or_default(),
                    )
                    .into_iter()
                    .zip(AGGREGATE_COLUMNS.iter())
                    .find(|(_, (n, _))| *n == name)
                    .and_then(|(v, _)| v)
                    .into_iter()
                    .collect(),
                };
                let mut got = tags.column_values(name, d).unwrap_or_default();
                // A date column holds whole seconds.
                let mut want: Vec<crate::tags::Value> = want
                    .into_iter()
                    .map(|v| match v {
                        crate::tags::Value::Date(t) => {
                            crate::tags::Value::Date(crate::tags::column::date_as_indexed(t))
                        }
                        v => v,
                    })
                    .collect();
                let key = |v: &crate::tags::Value| format!("{v:?}");
                got.sort_by_key(key);
                want.sort_by_key(key);
                if got != want {
                    bad.push(format!(
                        "profile: index column {name:?} of {o} holds {got:?}, the profile says {want:?}"
                    ));
                    if bad.len() > 20 {
                        return bad;
                    }
                }
            }
        }
        bad
    }
}
