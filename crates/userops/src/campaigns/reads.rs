//! What campaigns reads of the other modules: [`Reads`], the read-only views the engine hands
//! in, and the answers automation and the promotion engine get from them (saved audiences,
//! birthdays, consent, tiers, tag and program checks).

use chrono::FixedOffset;

use super::{month_day, AutomationContext, Campaigns, CustomerContext, BIRTHDAY_ATTRIBUTE};
use crate::error::Error;
use crate::identity::IdentityGraph;
use crate::ids::OneId;
use crate::loyalty::Loyalty;
use crate::privacy::PrivacyState;
use crate::profile::Profiles;
use crate::tags::TagState;
use crate::users::UserIndex;

/// Read-only views of the modules campaigns consults, and the business time zone.
pub(crate) struct Reads<'a> {
    pub(crate) identity: &'a IdentityGraph,
    pub(crate) privacy: &'a PrivacyState,
    pub(crate) users: &'a UserIndex,
    pub(crate) tags: &'a TagState,
    pub(crate) profiles: &'a Profiles,
    pub(crate) loyalty: &'a Loyalty,
    pub(crate) tz: FixedOffset,
}

/// Automation's questions: saved audiences from the tags module, birthdays from the profile
/// attribute, consent from the privacy module.
impl AutomationContext for Reads<'_> {
    fn audience_members(&self, audience: &str) -> Option<Vec<OneId>> {
        let members = self.tags.saved_members(audience)?;
        let mut v = self.users.oneids(&(members & self.users.live()));
        v.retain(|o| !self.privacy.is_erased(*o));
        v.sort_unstable();
        Some(v)
    }

    fn in_audience(&self, user: OneId, audience: &str) -> bool {
        let (Some(members), Some(d)) = (self.tags.saved_members(audience), self.users.dense(user))
        else {
            return false;
        };
        members.contains(d) && self.users.live().contains(d)
    }

    fn birthday(&self, user: OneId) -> Option<(u32, u32)> {
        month_day(
            self.profiles.attribute_value(user, BIRTHDAY_ATTRIBUTE)?,
            self.tz,
        )
    }

    fn birthday_users(&self, month: u32, day: u32) -> Option<Vec<OneId>> {
        Some(
            self.profiles
                .attribute_values(BIRTHDAY_ATTRIBUTE)
                .filter(|(o, v)| {
                    !self.privacy.is_erased(*o)
                        && self.identity.canonical(*o) == Some(*o)
                        && month_day(v, self.tz) == Some((month, day))
                })
                .map(|(o, _)| o)
                .collect(),
        )
    }

    fn consents(&self, user: OneId, channel: &str, purpose: &str) -> bool {
        self.identity
            .canonical(user)
            .is_some_and(|o| self.privacy.granted(o, channel, purpose))
    }
}

impl Reads<'_> {
    /// The loyalty program a points reward or action goes to: the one named, else the only
    /// program there is.
    pub(crate) fn points_program(&self, named: Option<&str>, field: &str) -> Result<String, Error> {
        let lo = self.loyalty;
        match named {
            Some(p) => lo
                .program(p)
                .map(|p| p.spec.id.clone())
                .ok_or_else(|| Error::NotFound {
                    what: "loyalty program",
                    id: p.to_owned(),
                }),
            None => match lo.programs() {
                [only] => Ok(only.spec.id.clone()),
                ps => Err(Error::invalid_argument(
                    field,
                    format!(
                        "points need a loyalty program: name one ({} programs exist)",
                        ps.len()
                    ),
                )),
            },
        }
    }

    /// Whether `u` is a live person: its own canonical OneID, and not erased.
    pub(crate) fn is_live(&self, u: OneId) -> bool {
        self.identity.canonical(u) == Some(u) && !self.privacy.is_erased(u)
    }
}

impl Campaigns {
    /// What the promotion engine knows about a customer: tiers from the loyalty programs,
    /// the saved audiences (tags module) they belong to, and whether this is a first order.
    pub(crate) fn customer_context(&self, user: Option<OneId>, r: &Reads<'_>) -> CustomerContext {
        let mut ctx = CustomerContext {
            oneid: user,
            first_order: true,
            ..CustomerContext::default()
        };
        let Some(u) = user else { return ctx };
        ctx.first_order = self
            .automation
            .facts
            .get(&u)
            .is_none_or(|f| f.purchases.is_empty());
        for p in r.loyalty.programs() {
            if let Some(t) = r.loyalty.tier_of(p, u) {
                ctx.tier.get_or_insert_with(|| t.clone());
                ctx.program_tiers.insert(p.spec.id.clone(), t);
            }
        }
        if let Some(d) = r.users.dense(u).filter(|d| r.users.live().contains(*d)) {
            ctx.audiences = r.tags.saved_audiences_of(d).map(str::to_owned).collect();
        }
        ctx
    }
}

impl Campaigns {
    /// `add_rule`: check the rule against the other modules, fill in what it leaves to
    /// defaults (the loyalty program of `grant_points`), and add or replace it.
    pub(crate) fn add_rule_checked(
        &mut self,
        rule: super::Rule,
        r: &Reads<'_>,
    ) -> Result<(), Error> {
        let rule = resolve_rule(rule, r)?;
        self.automation
            .add_rule(rule, &self.coupons)
            .map_err(|e| e.at("rule"))?;
        Ok(())
    }
}

/// Check a rule against the other modules and fill in what it leaves to defaults.
fn resolve_rule(mut rule: super::Rule, r: &Reads<'_>) -> Result<super::Rule, Error> {
    use super::{RuleAction, Trigger};
    // A rule selects users by the name of a saved audience, never by an expression: a
    // name that is not saved (such as `orders >= 3`) would make a rule that never fires.
    if let Trigger::Audience { audience }
    | Trigger::Inactive {
        audience: Some(audience),
        ..
    } = &rule.trigger
    {
        if r.tags.saved_members(audience).is_none() {
            return Err(Error::NotFound {
                what: "saved audience",
                id: format!(
                    "{audience:?} (a rule names a saved audience: save an expression with \
                     save_audience first)"
                ),
            });
        }
    }
    for (i, a) in rule.actions.iter_mut().enumerate() {
        match a {
            RuleAction::GrantPoints { program, .. } => {
                let p =
                    r.points_program(program.as_deref(), &format!("rule.actions[{i}].program"))?;
                *program = Some(p);
            }
            RuleAction::AddTag { tag } => {
                let field = format!("rule.actions[{i}].tag");
                match r.tags.def(tag) {
                    Some(d)
                        if d.value_type != crate::tags::ValueType::Bool
                            || matches!(d.kind, crate::tags::TagKind::Rule { .. }) =>
                    {
                        return Err(Error::invalid_argument(
                            field,
                            format!("{tag:?} is not a bool tag a rule can set"),
                        ))
                    }
                    Some(_) => {}
                    None if r.tags.has_column(tag) => {
                        return Err(Error::invalid_argument(
                            field,
                            format!("{tag:?} is a profile attribute"),
                        ))
                    }
                    None => crate::tags::check_name(tag)
                        .map_err(|e| Error::invalid_argument(field, e.to_string()))?,
                }
            }
            _ => {}
        }
    }
    Ok(rule)
}
