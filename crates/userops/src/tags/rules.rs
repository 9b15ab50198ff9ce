//! Evaluating expressions on the index, and keeping rule tags up to date as their inputs change.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use roaring::RoaringBitmap;

use super::column::Column;
use super::{eval, expr, Dirty, Expr, TagKind, TagState};
use crate::error::Error;
use crate::users::UserIndex;

/// What the tags module reads of the rest of the engine: the user index (live users are the
/// universe of `NOT`) and the business time zone (dates without a time).
#[derive(Clone, Copy)]
pub(crate) struct Reads<'a> {
    /// The dense user index.
    pub(crate) users: &'a UserIndex,
    /// The configured business time zone.
    pub(crate) tz: FixedOffset,
}

impl TagState {
    fn ctx<'a>(&'a self, r: Reads<'a>, now: DateTime<Utc>) -> eval::Ctx<'a> {
        eval::Ctx {
            columns: &self.columns.0,
            audiences: &self.audiences,
            universe: r.users.live(),
            users: r.users.len() as u64,
            now,
            tz: r.tz,
        }
    }

    /// Parse and evaluate an expression at `now`: the canonical text and the members.
    pub(crate) fn evaluate(
        &self,
        r: Reads<'_>,
        expression: &str,
        now: DateTime<Utc>,
    ) -> Result<(Expr, RoaringBitmap), Error> {
        let e = expr::parse(expression)?;
        let members = self.ctx(r, now).eval(&e)?;
        Ok((e, members))
    }

    /// Recompute the rule tags that read any of `changed` (and, transitively, rules reading
    /// those), for every user (`changed` holding `"*"`: every column) or only for the users
    /// in `users` whose inputs changed. A saved audience is named `@name`. Returns the rule
    /// tags recomputed. Never fails: rules were checked when defined.
    ///
    /// A rule's answer for a user depends only on that user's values (and saved audiences),
    /// so recomputing it for the users whose inputs changed, keeping everyone else's, gives
    /// the same column as recomputing it for all (the property test in `tags/tests.rs` checks
    /// this on random command sequences). The exception is a rule with relative dates: when
    /// time has moved since it was last computed for everyone, it is recomputed for everyone.
    pub(crate) fn refresh_rules(
        &mut self,
        r: Reads<'_>,
        changed: &[String],
        users: &Dirty,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        // Time only moves forward: an event older than one already seen does not turn back
        // the clock that relative dates in rules refer to.
        let now = self.clock.map_or(now, |c| c.max(now));
        self.clock = Some(now);
        let mut every = changed.iter().any(|c| c == "*").then(|| users.clone());
        let numbered = r.users.len() as u32;
        if numbered > self.rule_users {
            let fresh = Dirty::Users((self.rule_users..numbered).collect());
            every = Dirty::merge(every, &fresh);
        }
        self.rule_users = numbered;
        let mut dirty: BTreeMap<String, Dirty> = changed
            .iter()
            .filter(|c| *c != "*")
            .map(|c| (c.clone(), users.clone()))
            .collect();
        let mut done = Vec::new();
        let rules: Vec<(String, String)> = self
            .defs
            .iter()
            .filter_map(|d| match &d.kind {
                TagKind::Rule { expression } => Some((d.name.clone(), expression.clone())),
                _ => None,
            })
            .collect();
        for (name, expression) in rules {
            let Ok(e) = expr::parse(&expression) else {
                continue;
            };
            let (mut fields, mut auds) = (Vec::new(), Vec::new());
            e.names(&mut fields, &mut auds);
            let mut need = every.clone();
            let reads = fields
                .iter()
                .cloned()
                .chain(auds.iter().map(|a| format!("@{a}")))
                .chain([name.clone()]);
            for f in reads {
                if let Some(d) = dirty.get(&f) {
                    need = Dirty::merge(need, d);
                }
            }
            let Some(mut need) = need else { continue };
            if e.uses_now() && self.rule_clocks.get(&name) != Some(&now) {
                need = Dirty::All;
            }
            let Some(yes) = self.rule_members(r, &e, &name, &need, now) else {
                continue;
            };
            if matches!(need, Dirty::All) && e.uses_now() {
                self.rule_clocks.insert(name.clone(), now);
            }
            // The members that came or went are the rows the command changed.
            let before = self
                .columns
                .0
                .get(&name)
                .map(Column::present)
                .unwrap_or_default();
            self.note(&(&before ^ &yes));
            self.columns.0.insert(
                name.clone(),
                Column::Bool {
                    yes,
                    no: RoaringBitmap::new(),
                },
            );
            dirty.insert(name.clone(), need);
            done.push(name);
        }
        done
    }

    /// The members of rule `name` after recomputing it for `need`; `None` when a saved
    /// audience the rule reads was deleted (the rule then keeps its members).
    fn rule_members(
        &self,
        r: Reads<'_>,
        e: &Expr,
        name: &str,
        need: &Dirty,
        now: DateTime<Utc>,
    ) -> Option<RoaringBitmap> {
        match need {
            Dirty::All => self.ctx(r, now).eval(e).ok(),
            Dirty::Users(u) => {
                let part = self.ctx(r, now).eval_for(e, u).ok()?;
                let mut yes = match self.columns.0.get(name) {
                    Some(Column::Bool { yes, .. }) => yes - u,
                    _ => RoaringBitmap::new(),
                };
                yes |= part;
                Some(yes)
            }
        }
    }
}
