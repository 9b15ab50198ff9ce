//! Automation rules (seed 002 自运营: audience marketing and event marketing) and the delivery
//! plan they produce. Sending is the host's job: a run returns plan rows and records each
//! planned touch for monitoring.
//!
//! Guards, in order, for every (rule, user, trigger instance): de-duplication (a rule fires once
//! per user per trigger instance: once per audience run, once per order, once per birthday
//! year, once per inactivity spell), quiet hours (the whole firing is deferred to a later run),
//! then per touch: consent for the channel and purpose, and the frequency cap per user per
//! channel (counting touches from every rule). A suppressed touch does not stop the rule's other
//! actions.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, FixedOffset, Timelike, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::coupons::{CouponBook, CouponState};
use super::monitoring::{Monitor, DEFAULT_ATTRIBUTION_DAYS};
use super::CampaignError;
use crate::ids::OneId;
use crate::util::Fnv1a;

/// What starts a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Trigger {
    /// Everyone in the audience now, once per user (主动营销).
    Audience {
        /// The name of a saved audience (`save_audience`; its members as of its last save or
        /// refresh), not an expression: the engine's `add_rule` refuses a name that is not
        /// saved (`NotFound`), and `delete_audience` refuses while a rule uses it.
        audience: String,
    },
    /// `delay_days` after an order (optionally of a category or sku), e.g. 365 days after an
    /// air-conditioner purchase. Fires within `grace_days` of the due date, so a backlog of old
    /// orders does not flood a first run.
    Order {
        /// Only orders with a line of this category.
        #[serde(default)]
        category: Option<String>,
        /// Only orders with a line of this sku.
        #[serde(default)]
        sku: Option<String>,
        /// Days after the order.
        #[serde(default)]
        delay_days: u32,
        /// Days after the due date it may still fire.
        #[serde(default = "grace")]
        grace_days: u32,
    },
    /// `delay_days` after registration.
    Register {
        /// Days after.
        #[serde(default)]
        delay_days: u32,
        /// Days after the due date it may still fire.
        #[serde(default = "grace")]
        grace_days: u32,
    },
    /// On the birthday (or `days_before` it), in the business time zone. The birthday is the
    /// profile attribute `birthday` (a date, or a `YYYY-MM-DD` / `MM-DD` string); a 29 February
    /// birthday is celebrated on 28 February in other years.
    Birthday {
        /// Days ahead.
        #[serde(default)]
        days_before: u32,
    },
    /// In the audience (or anyone, without one) and inactive for `days`.
    Inactive {
        /// The name of a saved audience, as for [`Trigger::Audience`].
        #[serde(default)]
        audience: Option<String>,
        /// Days without activity.
        days: u32,
    },
}

fn grace() -> u32 {
    7
}

/// A frequency cap: at most `max` touches per user on the channel within `days`, counting
/// the touches planned in `(now − days, now]`: a touch planned exactly `days` earlier is
/// outside. With `{"max": 1, "days": 7}`, a touch on Monday 10:00 blocks the channel until the
/// next Monday 10:00, when a new touch may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    /// Touches allowed on the channel within any window of `days` days.
    pub max: u32,
    /// Window in days.
    pub days: u32,
}

/// What a rule does for each user it fires for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum RuleAction {
    /// Send content on a channel.
    Touch {
        /// push, sms, community, wechat, offline, ….
        channel: String,
        /// Content id.
        content: String,
        /// Consent purpose.
        #[serde(default = "marketing")]
        purpose: String,
        /// Cap per user on this channel.
        #[serde(default)]
        frequency_cap: Option<FrequencyCap>,
    },
    /// Issue a coupon of a template (issued by the run).
    IssueCoupon {
        /// The coupon template id.
        template: String,
    },
    /// Grant points: posted to the loyalty ledger by the run, under a key derived from the
    /// rule, the user and the trigger instance (so a replay posts nothing twice).
    GrantPoints {
        /// Points (> 0).
        points: i64,
        /// The loyalty program (default: the only one; `add_rule` fills it in).
        #[serde(default)]
        program: Option<String>,
    },
    /// Add a (bool, manual) tag: written to the tag index by the run, defined if new.
    AddTag {
        /// The tag's name.
        tag: String,
    },
}

fn marketing() -> String {
    "marketing".into()
}

/// An automation rule. Wire: `{"id", "name", "trigger": {...}, "actions": [...],
/// "quiet_hours": [22, 8], "attribution_days": 7}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// What starts it.
    pub trigger: Trigger,
    /// What it does.
    pub actions: Vec<RuleAction>,
    /// Hours `[from, to)` in the business time zone when touches are not sent.
    #[serde(default)]
    pub quiet_hours: Option<[u32; 2]>,
    /// Conversion window for its touches.
    #[serde(default)]
    pub attribution_days: Option<u32>,
}

impl Rule {
    /// Check the rule.
    ///
    /// # Errors
    ///
    /// [`CampaignError::Invalid`] naming the field: a blank id, no action, quiet hours that are
    /// not a window within 0–24, an inactivity trigger of 0 days, a touch with a blank channel or
    /// content or a frequency cap of 0, points not above 0, a blank tag.
    /// [`CampaignError::NotFound`]: a coupon action's template is not in `coupons`.
    pub fn validate(&self, coupons: &CouponBook) -> Result<(), CampaignError> {
        if self.id.trim().is_empty() {
            return Err(CampaignError::invalid("id", "must not be empty"));
        }
        if self.actions.is_empty() {
            return Err(CampaignError::invalid(
                "actions",
                "a rule needs at least one action",
            ));
        }
        if let Some([f, t]) = self.quiet_hours {
            if f > 24 || t > 24 || f == t {
                return Err(CampaignError::invalid(
                    "quiet_hours",
                    "not a window of hours within 0–24",
                ));
            }
        }
        if let Trigger::Inactive { days: 0, .. } = self.trigger {
            return Err(CampaignError::invalid("trigger.days", "must be ≥ 1"));
        }
        for (i, a) in self.actions.iter().enumerate() {
            let f = |s: &str| format!("actions[{i}].{s}");
            match a {
                RuleAction::Touch {
                    channel,
                    content,
                    frequency_cap,
                    ..
                } => {
                    if channel.trim().is_empty() || content.trim().is_empty() {
                        return Err(CampaignError::invalid(
                            f("channel"),
                            "channel and content must not be empty",
                        ));
                    }
                    if frequency_cap.is_some_and(|c| c.max == 0 || c.days == 0) {
                        return Err(CampaignError::invalid(
                            f("frequency_cap"),
                            "max and days must be ≥ 1",
                        ));
                    }
                }
                RuleAction::IssueCoupon { template } if coupons.template(template).is_none() => {
                    return Err(CampaignError::NotFound {
                        what: "coupon template",
                        id: template.clone(),
                    });
                }
                RuleAction::GrantPoints { points, .. } if *points <= 0 => {
                    return Err(CampaignError::invalid(f("points"), "must be > 0"))
                }
                RuleAction::AddTag { tag } if tag.trim().is_empty() => {
                    return Err(CampaignError::invalid(f("tag"), "must not be empty"))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// One order as automation sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    /// Order id.
    pub order_id: String,
    /// When the order was placed (UTC).
    #[serde(with = "crate::event::rfc3339")]
    pub time: DateTime<Utc>,
    /// Skus (sorted, distinct).
    pub skus: Vec<String>,
    /// Categories (sorted, distinct).
    pub categories: Vec<String>,
    /// The amount paid.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// What campaigns remember about a user from ingested events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFacts {
    /// The user's orders, as ingested.
    pub purchases: Vec<Purchase>,
    /// First registration.
    #[serde(default, with = "super::promotion::time_opt")]
    pub registered_at: Option<DateTime<Utc>>,
    /// Latest activity (any activity, order, behaviour, community or registration event).
    #[serde(default, with = "super::promotion::time_opt")]
    pub last_active: Option<DateTime<Utc>>,
}

/// What automation needs from the rest of the engine: audiences, birthdays and consent.
/// The engine implements it from what it holds; tests implement it directly.
pub trait AutomationContext {
    /// Members of an audience, sorted; `None` when the audience is unknown.
    fn audience_members(&self, audience: &str) -> Option<Vec<OneId>>;
    /// Whether `user` is in `audience`.
    fn in_audience(&self, user: OneId, audience: &str) -> bool;
    /// Birthday (month, day), if known.
    fn birthday(&self, user: OneId) -> Option<(u32, u32)>;
    /// Everyone whose birthday is (month, day), sorted; `None` when the context cannot list
    /// them (then the users automation knows from events are asked one by one).
    fn birthday_users(&self, _month: u32, _day: u32) -> Option<Vec<OneId>> {
        None
    }
    /// Whether `user` consented to touches on `channel` for `purpose`.
    fn consents(&self, user: OneId, channel: &str, purpose: &str) -> bool;
}

/// One row of the delivery plan. Strings repeated across rows (rule, channel, content, the
/// reason of one firing) are shared, so that a plan of millions of rows stays compact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanRow {
    /// For touches: the id to report outcomes against.
    pub touch_id: Option<u64>,
    /// The person the row is for.
    pub user: OneId,
    /// touch, issue_coupon, grant_points or add_tag.
    pub action: &'static str,
    /// Channel (touches).
    #[serde(with = "super::promotion::arc_str_opt")]
    pub channel: Option<Arc<str>>,
    /// Content id (touches).
    #[serde(with = "super::promotion::arc_str_opt")]
    pub content: Option<Arc<str>>,
    /// Coupon issued.
    pub coupon_id: Option<String>,
    /// Points granted.
    pub points: Option<i64>,
    /// The loyalty program the points went to.
    pub program: Option<String>,
    /// The idempotency key the points were posted under (rule, user, trigger instance).
    pub key: Option<String>,
    /// Tag to add.
    pub tag: Option<String>,
    /// The id of the rule that fired.
    #[serde(with = "super::promotion::arc_str")]
    pub rule: Arc<str>,
    /// Why the rule fired.
    #[serde(with = "super::promotion::arc_str")]
    pub reason: Arc<str>,
}

/// The de-duplication key of a firing: 128 bits of two independent FNV-1a hashes of
/// (rule, user, trigger instance), so that millions of firings take 16 bytes each (a
/// collision among 10⁹ firings has odds below 10⁻²⁰).
fn fired_key(rule: &str, user: OneId, instance: &str) -> u128 {
    let mut a = Fnv1a::new();
    // The snapshot stores these keys: the second half's basis and prime must stay as they are.
    let mut b = Fnv1a::with(0x6c62_272e_07bb_0142, 0x0000_0100_0000_01b3 ^ 0x1000);
    for bytes in [
        rule.as_bytes(),
        &[0x1f],
        &user.0.to_le_bytes(),
        &[0x1f],
        instance.as_bytes(),
    ] {
        a.feed(bytes);
        b.feed(bytes);
    }
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// Rules, what they fired and the users' facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Automation {
    rules: BTreeMap<String, Rule>,
    /// Firings already done ([`fired_key`]).
    fired: BTreeSet<u128>,
    /// Facts per user.
    pub(super) facts: BTreeMap<OneId, UserFacts>,
    /// Touches suppressed, per (rule, reason code).
    suppressed: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per live person, the OneIDs merged into it: their firings count as its own, so a rule
    /// does not fire again for an order, a registration or a birthday it already handled.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) aliases: BTreeMap<OneId, Vec<OneId>>,
}

/// A run in progress ([`Automation::start`]): the rules not in their quiet hours, with the
/// user lists fetched for the run, and where the next chunk of users starts.
#[derive(Debug)]
pub struct AutomationRun {
    now: DateTime<Utc>,
    tz: FixedOffset,
    chunk: usize,
    rules: Vec<RunRule>,
    /// Where the next chunk starts (`None`: done).
    from: Option<Bound<OneId>>,
    /// Buffers reused from chunk to chunk (growing them anew each time made the allocator
    /// consolidate its free lists over and over).
    targets: Vec<Target>,
    rows: usize,
}

/// A firing to consider: (user, trigger instance, reason, audience).
type Target = (OneId, String, String, Option<Arc<str>>);

impl AutomationRun {
    /// When the run happens.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

/// A rule as one run uses it.
#[derive(Debug)]
struct RunRule {
    rule: Rule,
    id: Arc<str>,
    /// Per action: channel and content of touches (shared by the rows and records).
    texts: Vec<(Arc<str>, Arc<str>)>,
    listed: Listed,
}

impl RunRule {
    fn new(rule: &Rule, listed: Listed) -> RunRule {
        RunRule {
            id: Arc::from(rule.id.as_str()),
            // The touch actions' channel and content, shared by every row and record.
            texts: rule
                .actions
                .iter()
                .map(|a| match a {
                    RuleAction::Touch {
                        channel, content, ..
                    } => (Arc::from(channel.as_str()), Arc::from(content.as_str())),
                    _ => (Arc::from(""), Arc::from("")),
                })
                .collect(),
            listed,
            rule: rule.clone(),
        }
    }
}

/// One firing of a rule chosen by a planned run ([`Automation::plan_chunk`]), applied later
/// by [`Automation::fire_planned`]: which rule fires for whom, for which trigger instance
/// (an order, a registration, a birthday year, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firing {
    /// The rule's id.
    pub rule: String,
    /// The person it fires for.
    pub user: OneId,
    /// The trigger instance (`register`, `order:<id>`, `birthday:<year>`, ...): a rule fires
    /// once per user and instance.
    pub instance: String,
    /// Why it fires, for the plan rows.
    pub reason: String,
    /// The audience the firing came from, for touch attribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// A rule's users fetched once per run (sorted): audience members or birthdays, with the
/// birthday's trigger instance and reason.
#[derive(Debug, Default)]
struct Listed {
    users: Vec<OneId>,
    instance: String,
    reason: String,
}

impl Rule {
    /// In its quiet hours (at local hour `hour`) a rule with touches is deferred to a later
    /// run.
    fn deferred_at(&self, hour: u32) -> bool {
        self.quiet_hours.is_some_and(|q| in_hours(hour, q))
            && self
                .actions
                .iter()
                .any(|a| matches!(a, RuleAction::Touch { .. }))
    }
}

fn in_hours(h: u32, [from, to]: [u32; 2]) -> bool {
    if from < to {
        from <= h && h < to
    } else {
        h >= from || h < to
    }
}

fn due(at: DateTime<Utc>, delay: u32, grace: u32, now: DateTime<Utc>) -> bool {
    let d = at + Duration::days(i64::from(delay));
    d <= now && now < d + Duration::days(i64::from(grace.max(1)))
}

impl Automation {
    /// Add or replace a rule.
    ///
    /// # Errors
    ///
    /// As [`Rule::validate`]; nothing changes.
    pub fn add_rule(&mut self, rule: Rule, coupons: &CouponBook) -> Result<(), CampaignError> {
        rule.validate(coupons)?;
        self.rules.insert(rule.id.clone(), rule);
        Ok(())
    }

    /// The rules, in id order (the order a run takes them in).
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.values()
    }

    /// Suppressed actions per rule and reason (`no_consent`, `frequency_cap`, `coupon_stock`,
    /// `points_failed`, `tag_failed`).
    pub fn suppressed(&self) -> &BTreeMap<String, BTreeMap<String, u64>> {
        &self.suppressed
    }

    /// Count an action of `rule` that did not happen, and why.
    pub(crate) fn suppress(&mut self, rule: &str, why: &str) {
        *self
            .suppressed
            .entry(rule.to_owned())
            .or_default()
            .entry(why.to_owned())
            .or_default() += 1;
    }

    /// Users in `range` a rule fires for now: (user, trigger instance, reason, audience).
    /// `listed` is the rule's user list fetched once per run (audience members, birthdays).
    fn targets(
        &self,
        rule: &Rule,
        listed: &Listed,
        ctx: &dyn AutomationContext,
        (now, tz): (DateTime<Utc>, FixedOffset),
        range: (Bound<OneId>, Bound<OneId>),
        out: &mut Vec<Target>,
    ) {
        out.clear();
        let in_range = |list: &[OneId]| -> std::ops::Range<usize> {
            let lo = match range.0 {
                Bound::Included(u) => list.partition_point(|x| *x < u),
                _ => 0,
            };
            let hi = match range.1 {
                Bound::Excluded(u) => list.partition_point(|x| *x < u),
                _ => list.len(),
            };
            lo..hi.max(lo)
        };
        match &rule.trigger {
            Trigger::Audience { audience } => {
                let shared: Arc<str> = Arc::from(audience.as_str());
                let why = format!("in audience {audience:?}");
                for &u in &listed.users[in_range(&listed.users)] {
                    out.push((u, "audience".into(), why.clone(), Some(shared.clone())));
                }
            }
            Trigger::Order {
                category,
                sku,
                delay_days,
                grace_days,
            } => {
                for (&u, f) in self.facts.range(range) {
                    for p in &f.purchases {
                        let fits = category.as_ref().is_none_or(|c| p.categories.contains(c))
                            && sku.as_ref().is_none_or(|s| p.skus.contains(s));
                        if fits && due(p.time, *delay_days, *grace_days, now) {
                            out.push((
                                u,
                                format!("order:{}", p.order_id),
                                format!(
                                    "{delay_days} days after order {:?} of {}",
                                    p.order_id,
                                    p.time.with_timezone(&tz).date_naive()
                                ),
                                None,
                            ));
                        }
                    }
                }
            }
            Trigger::Register {
                delay_days,
                grace_days,
            } => {
                for (&u, f) in self.facts.range(range) {
                    if let Some(r) = f
                        .registered_at
                        .filter(|r| due(*r, *delay_days, *grace_days, now))
                    {
                        out.push((
                            u,
                            "register".into(),
                            format!(
                                "{delay_days} days after registering on {}",
                                r.with_timezone(&tz).date_naive()
                            ),
                            None,
                        ));
                    }
                }
            }
            Trigger::Birthday { .. } => {
                for &u in &listed.users[in_range(&listed.users)] {
                    out.push((u, listed.instance.clone(), listed.reason.clone(), None));
                }
            }
            Trigger::Inactive { audience, days } => {
                let cutoff = now - Duration::days(i64::from(*days));
                let shared: Option<Arc<str>> = audience.as_deref().map(Arc::from);
                for (&u, f) in self.facts.range(range) {
                    let Some(last) = f.last_active.filter(|l| *l <= cutoff) else {
                        continue;
                    };
                    if audience.as_ref().is_some_and(|a| !ctx.in_audience(u, a)) {
                        continue;
                    }
                    out.push((
                        u,
                        format!("inactive:{}", last.timestamp()),
                        format!("inactive since {}", last.with_timezone(&tz).date_naive()),
                        shared.clone(),
                    ));
                }
            }
        }
    }

    /// The user list a rule works from for a whole run (audience members, birthdays), fetched
    /// once when the run starts; empty for rules that work from the users' facts.
    fn listed(
        &self,
        rule: &Rule,
        ctx: &dyn AutomationContext,
        now: DateTime<Utc>,
        tz: FixedOffset,
    ) -> Listed {
        let mut l = Listed::default();
        match &rule.trigger {
            Trigger::Audience { audience } => {
                l.users = ctx.audience_members(audience).unwrap_or_default();
                l.users.sort_unstable();
                l.users.dedup();
            }
            Trigger::Birthday { days_before } => {
                let target =
                    (now.with_timezone(&tz) + Duration::days(i64::from(*days_before))).date_naive();
                // 29 February birthdays are kept on 28 February outside leap years.
                let mut days = vec![(target.month(), target.day())];
                if (target.month(), target.day()) == (2, 28)
                    && chrono::NaiveDate::from_ymd_opt(target.year(), 2, 29).is_none()
                {
                    days.push((2, 29));
                }
                for &(m, d) in &days {
                    match ctx.birthday_users(m, d) {
                        Some(v) => l.users.extend(v),
                        None => l.users.extend(
                            self.facts
                                .keys()
                                .copied()
                                .filter(|&u| ctx.birthday(u) == Some((m, d))),
                        ),
                    }
                }
                l.users.sort_unstable();
                l.users.dedup();
                l.instance = format!("birthday:{}", target.year());
                l.reason = format!("birthday on {target}");
            }
            _ => {}
        }
        l
    }

    /// Run every rule at `now`: the delivery plan. Touches are recorded in `monitor`, coupons
    /// issued in `coupons`. The plan is in rule order, then user order.
    pub fn run(
        &mut self,
        now: DateTime<Utc>,
        tz: FixedOffset,
        ctx: &dyn AutomationContext,
        coupons: &mut CouponBook,
        monitor: &mut Monitor,
    ) -> Vec<PlanRow> {
        let mut run = self.start(now, tz, ctx, usize::MAX);
        let mut plan = Vec::new();
        while let Some(rows) = self.next_chunk(&mut run, ctx, coupons, monitor) {
            // One chunk here: moved, not copied.
            if plan.is_empty() {
                plan = rows;
            } else {
                plan.extend(rows);
            }
        }
        plan
    }

    /// Start a run at `now` that visits the users in chunks of about `chunk_users` (by user
    /// id), so that only one chunk's plan rows exist at a time: call
    /// [`Automation::next_chunk`] until it returns `None`. Audience members and birthdays are
    /// fetched here, once per run. Per user the outcome is the same as one [`Automation::run`]
    /// (frequency caps, consent and de-duplication are per user); rows come in chunk order,
    /// then rule order, then user order, and a coupon template's stock, if it runs out, goes
    /// to the earlier chunks.
    pub fn start(
        &self,
        now: DateTime<Utc>,
        tz: FixedOffset,
        ctx: &dyn AutomationContext,
        chunk_users: usize,
    ) -> AutomationRun {
        let hour = now.with_timezone(&tz).hour();
        let rules = self
            .rules
            .values()
            .filter(|rule| !rule.deferred_at(hour))
            .map(|rule| RunRule::new(rule, self.listed(rule, ctx, now, tz)))
            .collect();
        AutomationRun {
            now,
            tz,
            chunk: chunk_users.max(1),
            rules,
            from: Some(Bound::Unbounded),
            targets: Vec::new(),
            rows: 0,
        }
    }

    /// The next chunk of a run's plan (`None` once every user was visited).
    pub fn next_chunk(
        &mut self,
        run: &mut AutomationRun,
        ctx: &dyn AutomationContext,
        coupons: &mut CouponBook,
        monitor: &mut Monitor,
    ) -> Option<Vec<PlanRow>> {
        let (from, to) = self.next_range(run)?;
        let (now, tz) = (run.now, run.tz);
        let mut plan = Vec::with_capacity(run.rows);
        let targets = &mut run.targets;
        for r in &run.rules {
            self.targets(&r.rule, &r.listed, ctx, (now, tz), (from, to), targets);
            for target in targets.drain(..) {
                self.fire(r, target, now, ctx, (coupons, monitor), &mut plan);
            }
        }
        run.rows = run.rows.max(plan.len());
        Some(plan)
    }

    /// Fire `rule` for one target unless it already fired (also through a OneID merged into
    /// the user): its rows go to `plan`, touches blocked by consent or a frequency cap and
    /// coupons out of stock are counted as suppressed, and the firing is remembered.
    fn fire(
        &mut self,
        r: &RunRule,
        (user, instance, reason, audience): Target,
        now: DateTime<Utc>,
        ctx: &dyn AutomationContext,
        (coupons, monitor): (&mut CouponBook, &mut Monitor),
        plan: &mut Vec<PlanRow>,
    ) {
        let rule = &r.rule;
        let rule_id = &r.id;
        let key = fired_key(&rule.id, user, &instance);
        let fired = |o: OneId| self.fired.contains(&fired_key(&rule.id, o, &instance));
        if self.fired.contains(&key)
            || self
                .aliases
                .get(&user)
                .is_some_and(|a| a.iter().any(|o| fired(*o)))
        {
            return;
        }
        let reason: Arc<str> = Arc::from(reason);
        for (ai, a) in rule.actions.iter().enumerate() {
            let mut row = PlanRow {
                touch_id: None,
                user,
                action: "",
                channel: None,
                content: None,
                coupon_id: None,
                points: None,
                program: None,
                key: None,
                tag: None,
                rule: rule_id.clone(),
                reason: reason.clone(),
            };
            match a {
                RuleAction::Touch {
                    channel,
                    purpose,
                    frequency_cap,
                    ..
                } => {
                    let (ch, co) = &r.texts[ai];
                    let blocked = if !ctx.consents(user, channel, purpose) {
                        Some("no_consent")
                    } else if frequency_cap.is_some_and(|c| {
                        monitor.recent(user, channel, now - Duration::days(i64::from(c.days)))
                            >= c.max as usize
                    }) {
                        Some("frequency_cap")
                    } else {
                        None
                    };
                    if let Some(why) = blocked {
                        *self
                            .suppressed
                            .entry(rule.id.clone())
                            .or_default()
                            .entry(why.to_owned())
                            .or_default() += 1;
                        continue;
                    }
                    let id = monitor.plan(
                        user,
                        ch,
                        co,
                        rule_id,
                        audience.as_ref(),
                        now,
                        rule.attribution_days.unwrap_or(DEFAULT_ATTRIBUTION_DAYS),
                    );
                    row.action = "touch";
                    row.touch_id = Some(id);
                    row.channel = Some(ch.clone());
                    row.content = Some(co.clone());
                }
                RuleAction::IssueCoupon { template } => {
                    match coupons.issue(template, &[user], now, CouponState::Issued) {
                        Ok(mut ids) => {
                            row.action = "issue_coupon";
                            row.coupon_id = ids.pop();
                        }
                        Err(_) => {
                            *self
                                .suppressed
                                .entry(rule.id.clone())
                                .or_default()
                                .entry("coupon_stock".into())
                                .or_default() += 1;
                            continue;
                        }
                    }
                }
                RuleAction::GrantPoints { points, program } => {
                    // The engine posts the row to the loyalty ledger after the run.
                    row.action = "grant_points";
                    row.points = Some(*points);
                    row.program = program.clone();
                    row.key = Some(format!(
                        "automation:{}:{}:{}:{ai}",
                        rule.id, user.0, instance
                    ));
                }
                RuleAction::AddTag { tag } => {
                    // The engine writes the row to the tag index after the run.
                    row.action = "add_tag";
                    row.tag = Some(tag.clone());
                }
            }
            plan.push(row);
        }
        self.fired.insert(key);
    }

    /// The firings of the next chunk of a run (`None` once every user was visited), without
    /// changing anything: who each rule fires for, judged on this state (triggers, audiences,
    /// birthdays, firings already done). [`Automation::fire_planned`] applies them later,
    /// possibly to a newer state, and checks again what may have changed meanwhile.
    pub fn plan_chunk(
        &self,
        run: &mut AutomationRun,
        ctx: &dyn AutomationContext,
    ) -> Option<Vec<Firing>> {
        let (from, to) = self.next_range(run)?;
        let mut firings = Vec::new();
        for r in &run.rules {
            self.targets(
                &r.rule,
                &r.listed,
                ctx,
                (run.now, run.tz),
                (from, to),
                &mut run.targets,
            );
            for (user, instance, reason, audience) in run.targets.drain(..) {
                // Already fired on this state: it would be skipped at commit too.
                if self.fired.contains(&fired_key(&r.rule.id, user, &instance)) {
                    continue;
                }
                firings.push(Firing {
                    rule: r.rule.id.clone(),
                    user,
                    instance,
                    reason,
                    audience: audience.map(|a| a.to_string()),
                });
            }
        }
        Some(firings)
    }

    /// Apply firings planned by [`Automation::plan_chunk`], in their order, as a run at `now`
    /// would: each is checked again on this state — skipped when it already fired (a run that
    /// committed meanwhile, a merge), when its rule is gone or is in its quiet hours with
    /// touches; a touch without consent or over its frequency cap and a coupon out of stock
    /// are suppressed. Rules are as they are now. The rows, in the firings' order.
    pub fn fire_planned(
        &mut self,
        now: DateTime<Utc>,
        tz: FixedOffset,
        firings: Vec<Firing>,
        ctx: &dyn AutomationContext,
        coupons: &mut CouponBook,
        monitor: &mut Monitor,
    ) -> Vec<PlanRow> {
        let hour = now.with_timezone(&tz).hour();
        let mut plan = Vec::new();
        let mut current: Option<RunRule> = None;
        for f in firings {
            if current.as_ref().is_none_or(|r| r.rule.id != f.rule) {
                current = self
                    .rules
                    .get(&f.rule)
                    .filter(|rule| !rule.deferred_at(hour))
                    .map(|rule| RunRule::new(rule, Listed::default()));
            }
            let Some(r) = &current else { continue };
            let target = (f.user, f.instance, f.reason, f.audience.map(Arc::from));
            self.fire(r, target, now, ctx, (coupons, monitor), &mut plan);
        }
        plan
    }

    /// The users of a run's next chunk (`None` once every user was visited), and the run
    /// moved past them.
    fn next_range(&self, run: &mut AutomationRun) -> Option<(Bound<OneId>, Bound<OneId>)> {
        let from = run.from?;
        let to = self.chunk_end(run, from);
        run.from = match to {
            Bound::Excluded(u) => Some(Bound::Included(u)),
            _ => None,
        };
        Some((from, to))
    }

    /// Where the chunk of `run` that starts at `from` ends.
    fn chunk_end(&self, run: &AutomationRun, from: Bound<OneId>) -> Bound<OneId> {
        // The chunk ends where any one source (the users' facts, a rule's list) has reached
        // `chunk` more users, so no source gives more than `chunk` users to one chunk.
        let mut to: Bound<OneId> = Bound::Unbounded;
        let mut tighten = |u: OneId| {
            if matches!(to, Bound::Excluded(t) if t <= u) {
                return;
            }
            to = Bound::Excluded(u);
        };
        if run.chunk != usize::MAX {
            if let Some((&u, _)) = self.facts.range((from, Bound::Unbounded)).nth(run.chunk) {
                tighten(u);
            }
            for r in &run.rules {
                let list = &r.listed.users;
                let at = match from {
                    Bound::Included(u) => list.partition_point(|x| *x < u),
                    _ => 0,
                };
                if let Some(&u) = at.checked_add(run.chunk).and_then(|k| list.get(k)) {
                    tighten(u);
                }
            }
        }
        to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Snapshots store firing keys: the construction must keep giving these bits.
    #[test]
    fn fired_key_is_stable() {
        assert_eq!(
            fired_key("welcome", OneId(7), "registered"),
            0xe3b3_a78b_1d71_d3c4_0aba_61a6_f604_0ff5
        );
    }
}
