//! The one merge flow, the one split flow and the one erase flow. Each reads top to bottom:
//! checks first (by its caller, before the identity graph changes), then every module's own
//! change through [`PersonState`], then the index columns other modules' state feeds.
//!
//! Every flow destructures [`State`] without `..`: a state field added later does not compile
//! until each flow hands it to its [`PersonState`] implementation (or says why it holds nothing
//! per person).

use chrono::{DateTime, Utc};
use roaring::RoaringBitmap;

use super::{Engine, State};
use crate::error::Error;
use crate::identity::{MergeReport, SplitReport};
use crate::ids::OneId;
use crate::person::{EraseStep, MergeStep, PersonState, Persons, SplitStep};
use crate::tags::Dirty;

/// What [`Engine::erase_person`] removed.
#[derive(Default)]
pub(crate) struct Erased {
    pub(crate) identifiers: u64,
    pub(crate) consents: u64,
    /// Persons erased with the person: they existed only through its records.
    pub(crate) with: Vec<OneId>,
}

impl Engine {
    /// Checks before two persons merge by an operator: both live and not erased (the identity
    /// graph then checks they differ and the caps), and the survivor's points balances can take
    /// the absorbed person's.
    pub(crate) fn check_merge(&self, a: OneId, b: OneId) -> Result<(), Error> {
        for o in [a, b] {
            if self.state.privacy.is_erased(o) {
                return Err(Error::NotFound {
                    what: "oneid",
                    id: format!("{o} (erased)"),
                });
            }
        }
        let (survivor, absorbed) = (a.min(b), a.max(b));
        if survivor != absorbed {
            self.state
                .loyalty
                .check_merge(survivor, absorbed)
                .map_err(|e| Error::invalid_argument("b", e.to_string()))?;
        }
        Ok(())
    }

    /// The one merge flow: after the identity graph joined persons (an `identify` record or
    /// an operator's `merge`), every module folds each absorbed person's state into the
    /// survivor's and says what it did in `report.modules`. Never fails: the merge happened.
    pub(crate) fn merge_persons(&mut self, report: &mut MergeReport, time: DateTime<Utc>) {
        let survivor = report.survivor;
        let absorbed = report.absorbed.clone();
        // The graph numbered the merges in the order it absorbed the persons.
        let last = self.state.identity.merge_count() as u64;
        let first = last + 1 - absorbed.len() as u64;
        let touch = self.loyalty_touch_users(&[survivor]);
        let mut dirty = RoaringBitmap::new();
        for (i, &a) in absorbed.iter().enumerate() {
            let step = MergeStep {
                survivor,
                absorbed: a,
                seq: first + i as u64,
                time,
            };
            if let Some(d) = self.state.users.dense(a) {
                dirty.insert(d);
            }
            let State {
                seq: _,
                receipts,
                events_by_kind: _,
                identity,
                users,
                profiles,
                tags,
                loyalty,
                lifecycle,
                analytics,
                models,
                campaigns,
                orders,
                privacy,
            } = &mut self.state;
            let mut sections = vec![
                (
                    name(&*identity),
                    PersonState::merge(identity, &*receipts, &step),
                ),
                (name(&*users), PersonState::merge(users, (), &step)),
                (name(&*profiles), PersonState::merge(profiles, (), &step)),
                (name(&*tags), PersonState::merge(tags, &*users, &step)),
                (
                    name(&*loyalty),
                    PersonState::merge(loyalty, self.config.business_tz(), &step),
                ),
                (name(&*lifecycle), PersonState::merge(lifecycle, (), &step)),
                (name(&*analytics), PersonState::merge(analytics, (), &step)),
                (name(&*models), PersonState::merge(models, (), &step)),
                (name(&*campaigns), PersonState::merge(campaigns, (), &step)),
                (name(&*orders), PersonState::merge(orders, (), &step)),
                (name(&*privacy), PersonState::merge(privacy, (), &step)),
            ];
            for (module, section) in sections.drain(..) {
                if let Some(v) = section {
                    match report
                        .modules
                        .entry(module.to_owned())
                        .or_insert_with(|| serde_json::Value::Array(Vec::new()))
                    {
                        serde_json::Value::Array(list) => list.push(v),
                        other => *other = serde_json::Value::Array(vec![v]),
                    }
                }
            }
        }
        dirty.insert(self.state.users.dense_or_insert(survivor));
        self.reindex_persons(&[survivor], dirty);
        self.loyalty_reindex(touch, None, time);
    }

    /// The one split flow: after the identity graph split persons, every module gives each
    /// part back what merges moved into the person it was split from, and says in
    /// `report.not_split_back` what it could not.
    pub(crate) fn split_persons(&mut self, report: &mut SplitReport, time: DateTime<Utc>) {
        let groups = report.groups.clone();
        let all: Vec<OneId> = groups.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        let touch = self.loyalty_touch_users(&all);
        for (old, parts) in &groups {
            // Every OneID that names a part now, read from the split graph before the modules
            // (the graph among them) are handed their own state.
            let members: std::collections::BTreeMap<OneId, OneId> = parts
                .iter()
                .flat_map(|&p| self.oneids_of(p).into_iter().map(move |o| (o, p)))
                .collect();
            let State {
                seq: _,
                receipts,
                events_by_kind: _,
                identity,
                users,
                profiles,
                tags,
                loyalty,
                lifecycle,
                analytics,
                models,
                campaigns,
                orders,
                privacy,
            } = &mut self.state;
            let step = SplitStep {
                old: *old,
                parts,
                members: &members,
                time,
            };
            // The dense index first: the tag index writes the parts' values under it.
            let sections = [
                (
                    name(&*identity),
                    PersonState::split(identity, &*receipts, &step),
                ),
                (name(&*users), PersonState::split(users, (), &step)),
                (name(&*profiles), PersonState::split(profiles, (), &step)),
                (name(&*tags), PersonState::split(tags, &*users, &step)),
                (
                    name(&*loyalty),
                    PersonState::split(loyalty, self.config.business_tz(), &step),
                ),
                (name(&*lifecycle), PersonState::split(lifecycle, (), &step)),
                (name(&*analytics), PersonState::split(analytics, (), &step)),
                (name(&*models), PersonState::split(models, (), &step)),
                (name(&*campaigns), PersonState::split(campaigns, (), &step)),
                (name(&*orders), PersonState::split(orders, (), &step)),
                (name(&*privacy), PersonState::split(privacy, (), &step)),
            ];
            for (module, section) in sections {
                if let Some(v) = section {
                    report.not_split_back.insert(module.to_owned(), v);
                }
            }
        }
        let dirty: RoaringBitmap = all
            .iter()
            .map(|o| self.state.users.dense_or_insert(*o))
            .collect();
        self.reindex_persons(&all, dirty);
        self.loyalty_reindex(touch, None, time);
    }

    /// The one erase flow (SPEC §9): every module removes what it holds about `person` (or, for
    /// ledgers that must stay balanced, re-keys it to a fresh pseudonym). The caller checked that
    /// `person` is a live person not erased before.
    ///
    /// An identifier one of the person's events claimed, that a rule kept apart (a cap, the
    /// junk threshold), became a person of its own: when nothing but erased persons' records
    /// evidences that person (no event of its own, no edge laid by a live record, no conflict
    /// of a live record), it is the erased person's data and is erased with it.
    pub(crate) fn erase_person(&mut self, person: OneId) -> Erased {
        let mut erased = Erased::default();
        let mut todo = vec![person];
        while let Some(p) = todo.pop() {
            let oneids = self.oneids_of(p);
            let claimed = self
                .state
                .identity
                .claimed_by(|o| oneids.binary_search(&o).is_ok());
            self.erase_one(p, &oneids, &mut erased);
            let with = self.only_evidenced_by_erased(claimed);
            erased.with.extend(&with);
            todo.extend(with);
        }
        erased
    }

    /// The live persons of `candidates` that nothing but erased persons' records evidences.
    fn only_evidenced_by_erased(&self, mut candidates: Vec<OneId>) -> Vec<OneId> {
        let g = &self.state.identity;
        candidates.retain(|q| {
            g.canonical(*q) == Some(*q)
                && !self.state.privacy.is_erased(*q)
                && !g.has_own_evidence(*q)
        });
        if candidates.is_empty() {
            return candidates;
        }
        // An event of its own (a record holding only its identifiers lays no edge).
        for o in self.state.receipts.oneids() {
            if let Some(c) = g.canonical(o) {
                candidates.retain(|q| *q != c);
                if candidates.is_empty() {
                    break;
                }
            }
        }
        candidates
    }

    fn erase_one(&mut self, person: OneId, oneids: &[OneId], erased: &mut Erased) {
        erased.identifiers += self
            .state
            .identity
            .identifiers(person)
            .map_or(0, |ids| ids.len() as u64);
        erased.consents += self.state.privacy.consents_of(person).count() as u64;
        // Numbered by erasure, above any OneID ever handed out: nothing links the pseudonym
        // back to the person or to the tombstone.
        let pseudonym = self.state.privacy.next_pseudonym();
        let step = EraseStep {
            person,
            oneids,
            pseudonym,
        };
        let dense: Vec<u32> = oneids
            .iter()
            .filter_map(|o| self.state.users.dense(*o))
            .collect();
        let State {
            seq: _,
            receipts,
            events_by_kind: _,
            identity,
            users,
            profiles,
            tags,
            loyalty,
            lifecycle,
            analytics,
            models,
            campaigns,
            orders,
            privacy,
        } = &mut self.state;
        PersonState::erase(identity, &*receipts, &step);
        PersonState::erase(profiles, (), &step);
        PersonState::erase(tags, &*users, &step);
        PersonState::erase(users, (), &step);
        PersonState::erase(loyalty, self.config.business_tz(), &step);
        PersonState::erase(lifecycle, (), &step);
        PersonState::erase(analytics, (), &step);
        PersonState::erase(models, (), &step);
        PersonState::erase(campaigns, (), &step);
        PersonState::erase(orders, (), &step);
        PersonState::erase(privacy, (), &step);
        // Rules over "everyone" (`NOT ...`) lose the tombstone from their universe.
        let now = self.state.tags.clock().unwrap_or_default();
        self.refresh_rules_for(
            &["*".to_owned()],
            &Dirty::Users(dense.into_iter().collect()),
            now,
        );
    }

    /// Every module's invariants (`Engine::check_invariants`), and the index columns fed by
    /// the profiles agreeing with them.
    pub(crate) fn check_person_modules(&self, bad: &mut Vec<String>) {
        let State {
            seq: _,
            receipts,
            events_by_kind: _,
            identity,
            users,
            profiles,
            tags,
            loyalty,
            lifecycle,
            analytics,
            models,
            campaigns,
            orders,
            privacy,
        } = &self.state;
        let persons = Persons {
            identity,
            erased: privacy.erased_set(),
        };
        bad.extend(PersonState::check_invariants(identity, receipts, &persons));
        bad.extend(PersonState::check_invariants(users, (), &persons));
        bad.extend(PersonState::check_invariants(profiles, (), &persons));
        bad.extend(PersonState::check_invariants(tags, users, &persons));
        bad.extend(PersonState::check_invariants(
            loyalty,
            self.config.business_tz(),
            &persons,
        ));
        bad.extend(PersonState::check_invariants(lifecycle, (), &persons));
        bad.extend(PersonState::check_invariants(analytics, (), &persons));
        bad.extend(PersonState::check_invariants(models, (), &persons));
        bad.extend(PersonState::check_invariants(campaigns, (), &persons));
        bad.extend(PersonState::check_invariants(orders, (), &persons));
        bad.extend(PersonState::check_invariants(privacy, (), &persons));
        bad.extend(self.check_profile_columns());
    }

    /// What every module holds about a live person, by module name: a subject-access report,
    /// and what a merge followed by a split of the same evidence gives back exactly (the
    /// store's lifecycle property test compares it).
    ///
    /// # Errors
    ///
    /// `not_found` for a OneID that never existed or was erased.
    ///
    /// ```
    /// use userops::{Engine, Event};
    /// let mut e = Engine::default();
    /// e.ingest(Event::from_json(r#"{"kind": "register", "key": "r1", "time": "2026-01-01T00:00:00Z",
    ///     "source": {"platform": "app", "program": "b"}, "user": {"kind": "member_no", "value": "M1"}}"#)?)?;
    /// let h = e.holdings(userops::OneId(1))?;
    /// assert_eq!(h["identity"][0]["value"], "M1");
    /// assert_eq!(h["analytics"][0]["name"], "register");
    /// assert!(e.holdings(userops::OneId(9)).is_err());
    /// # Ok::<(), userops::Error>(())
    /// ```
    pub fn holdings(
        &self,
        oneid: OneId,
    ) -> Result<std::collections::BTreeMap<String, serde_json::Value>, Error> {
        let person = self
            .lookup(&crate::event::UserRef::OneId(oneid))?
            .ok_or_else(|| Error::NotFound {
                what: "oneid",
                id: oneid.to_string(),
            })?;
        let State {
            seq: _,
            receipts,
            events_by_kind: _,
            identity,
            users,
            profiles,
            tags,
            loyalty,
            lifecycle,
            analytics,
            models,
            campaigns,
            orders,
            privacy,
        } = &self.state;
        let persons = Persons {
            identity,
            erased: privacy.erased_set(),
        };
        let p = &persons;
        Ok([
            (name(identity), identity.holdings(receipts, p, person)),
            (name(users), users.holdings((), p, person)),
            (name(profiles), profiles.holdings((), p, person)),
            (name(tags), tags.holdings(users, p, person)),
            (
                name(loyalty),
                loyalty.holdings(self.config.business_tz(), p, person),
            ),
            (name(lifecycle), lifecycle.holdings((), p, person)),
            (name(analytics), analytics.holdings((), p, person)),
            (name(models), models.holdings((), p, person)),
            (name(campaigns), campaigns.holdings((), p, person)),
            (name(orders), orders.holdings((), p, person)),
            (name(privacy), privacy.holdings((), p, person)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect())
    }

    /// After a merge or split: the index columns other modules' state feeds (attributes and
    /// aggregates of the profiles) rewritten for `persons`, and the rule tags recomputed for
    /// the dense users `dirty`.
    fn reindex_persons(&mut self, persons: &[OneId], dirty: RoaringBitmap) {
        let names: Vec<String> = self
            .state
            .profiles
            .attribute_names()
            .map(str::to_owned)
            .collect();
        for &o in persons {
            for n in &names {
                self.index_attribute(o, n);
            }
            self.index_aggregates(o);
        }
        // Rules are recomputed at the latest time the index has seen (no clock is read here).
        let now = self.state.tags.clock().unwrap_or_default();
        self.refresh_rules_for(&["*".to_owned()], &Dirty::Users(dirty), now);
    }
}

/// A module's name in the reports.
fn name<M: PersonState>(_: &M) -> &'static str {
    M::MODULE
}
