//! Budgets and limits: what committed quotes have consumed, idempotent by key.
//!
//! `commit` re-checks every budget and limit against the current usage before it changes
//! anything (a quote may be stale), so a budget is never overspent however commits interleave:
//! the engine executes commands one at a time, and each commit sees the previous one's usage.
//! `cancel` gives back exactly what its commit took.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::promotion::{Budget, Promotion};
use super::CampaignError;
use crate::ids::OneId;
use crate::util::fingerprint;

/// What one promotion has consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoUsage {
    /// Money: discounts plus cash handed out.
    #[serde(with = "rust_decimal::serde::str")]
    pub money: Decimal,
    /// Orders it applied to.
    pub orders: u64,
    /// Orders per customer.
    pub by_user: BTreeMap<OneId, u64>,
}

/// One promotion's share of a committed quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Use {
    /// The promotion's id.
    pub id: String,
    /// Money consumed.
    #[serde(with = "rust_decimal::serde::str")]
    pub money: Decimal,
}

/// A committed quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    fingerprint: u64,
    /// The quote's customer (`None`: an anonymous cart).
    pub user: Option<OneId>,
    /// What it consumed.
    pub uses: Vec<Use>,
    /// True once cancelled (its usage was given back).
    pub cancelled: bool,
    /// Rewards granted on commit (coupons issued, points posted), given back on cancel.
    #[serde(default)]
    pub granted: Granted,
}

/// What a commit granted after the order: rebate coupons and points.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granted {
    /// Coupons issued.
    #[serde(default)]
    pub coupons: Vec<String>,
    /// Points posted to loyalty ledgers, in total.
    #[serde(default)]
    pub points: i64,
    /// The order key the points were posted under (a cancel refunds it).
    #[serde(default)]
    pub points_order: Option<String>,
    /// When the rewards were granted.
    #[serde(default, with = "super::promotion::time_opt")]
    pub time: Option<chrono::DateTime<chrono::Utc>>,
}

/// What `commit` and `cancel` return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitReceipt {
    /// The idempotency key.
    pub key: String,
    /// What was consumed (for `cancel`: given back).
    pub uses: Vec<Use>,
    /// `"committed"` or `"cancelled"`.
    pub state: &'static str,
    /// True when this call repeated an earlier one and changed nothing.
    pub duplicate: bool,
    /// Coupons issued by the commit (rebates, gifts), withdrawn by a cancel when unused.
    pub coupons: Vec<String>,
    /// Points posted by the commit, reversed by a cancel.
    pub points: i64,
}

/// The part of a quote `commit` reads (the rest of a quote dict is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteRef {
    /// The quote's customer (`None`: anonymous cart).
    #[serde(default)]
    pub user: Option<OneId>,
    /// The applied promotions.
    #[serde(default)]
    pub applied: Vec<AppliedRef>,
    /// The quote's subtotal: bounds how many `every` rewards a commit grants.
    #[serde(
        default,
        with = "super::promotion::dec_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub subtotal: Option<Decimal>,
    /// The cart's time (rewards are granted at it unless the commit names a time).
    #[serde(
        default,
        with = "super::promotion::time_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// The checksum `quote` wrote over the fields above: the engine's `commit` refuses a quote
    /// without one or whose fields no longer match it (see [`QuoteRef::expected_checksum`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl QuoteRef {
    /// The checksum of the fields `commit` reads (everything but `checksum`): what `quote`
    /// writes into a quote, so that `commit` can tell a quote it made from an edited one.
    ///
    /// It detects edits (a `budget_use`, `discount` or reward changed by a caller or a bug),
    /// not forgery: it is a plain SHA-256, which anyone can recompute. Amounts count by value
    /// (`"10.0"` and `"10.00"` are the same).
    pub fn expected_checksum(&self) -> String {
        let mut sum = QuoteSum::new(self.user, self.time, self.subtotal);
        for a in &self.applied {
            sum.applied(&a.id, a.discount, a.budget_use);
            for r in &a.rewards {
                match r {
                    RewardRef::Coupon { template, count } => sum.coupon(template, *count),
                    RewardRef::Points { points, program } => {
                        sum.points(*points, program.as_deref())
                    }
                    RewardRef::Other => sum.other(),
                }
            }
        }
        sum.finish()
    }
}

/// The checksum of [`QuoteRef::expected_checksum`], fed field by field (the evaluator feeds
/// it from a [`Quote`](super::Quote) without building a `QuoteRef`). Every field is written
/// with its length or a tag, so no two different quotes write the same bytes.
pub(crate) struct QuoteSum(sha2::Sha256);

impl QuoteSum {
    pub(crate) fn new(
        user: Option<OneId>,
        time: Option<chrono::DateTime<chrono::Utc>>,
        subtotal: Option<Decimal>,
    ) -> QuoteSum {
        let mut s = QuoteSum(sha2::Digest::new());
        s.bytes(b"userops quote v1");
        s.opt_u64(user.map(|u| u.0));
        s.opt_u64(time.map(|t| t.timestamp() as u64));
        s.opt_u64(time.map(|t| u64::from(t.timestamp_subsec_nanos())));
        s.opt_money(subtotal);
        s
    }

    fn bytes(&mut self, b: &[u8]) {
        sha2::Digest::update(&mut self.0, (b.len() as u64).to_le_bytes());
        sha2::Digest::update(&mut self.0, b);
    }

    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => self.bytes(&v.to_le_bytes()),
            None => self.bytes(b""),
        }
    }

    fn opt_money(&mut self, d: Option<Decimal>) {
        match d {
            // By value: the same amount written with more zeros is the same amount.
            Some(d) if d.is_zero() => self.bytes(&Decimal::ZERO.serialize()),
            Some(d) => self.bytes(&d.normalize().serialize()),
            None => self.bytes(b""),
        }
    }

    pub(crate) fn applied(&mut self, id: &str, discount: Decimal, budget_use: Option<Decimal>) {
        self.bytes(b"applied");
        self.bytes(id.as_bytes());
        self.opt_money(Some(discount));
        self.opt_money(budget_use);
    }

    pub(crate) fn coupon(&mut self, template: &str, count: u64) {
        self.bytes(b"coupon");
        self.bytes(template.as_bytes());
        self.opt_u64(Some(count));
    }

    pub(crate) fn points(&mut self, points: i64, program: Option<&str>) {
        self.bytes(b"points");
        self.opt_u64(Some(points as u64));
        match program {
            Some(p) => self.bytes(p.as_bytes()),
            None => self.bytes(b"\xff"),
        }
    }

    pub(crate) fn other(&mut self) {
        self.bytes(b"other");
    }

    pub(crate) fn finish(self) -> String {
        let h = sha2::Digest::finalize(self.0);
        h[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One applied promotion of a quote, as `commit` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedRef {
    /// The promotion's id.
    pub id: String,
    /// The discount it gave in the quote.
    #[serde(with = "rust_decimal::serde::str")]
    pub discount: Decimal,
    /// Money budget use (discount plus cash); defaults to the discount.
    #[serde(default, with = "super::promotion::dec_opt")]
    pub budget_use: Option<Decimal>,
    /// The rewards of the quote: coupons and points are granted on commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewards: Vec<RewardRef>,
}

/// A reward of a quote as `commit` reads it (other reward kinds are the host's to hand out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RewardRef {
    /// Coupons of a template.
    Coupon {
        /// The coupon template id.
        template: String,
        /// How many.
        #[serde(default = "one")]
        count: u64,
    },
    /// Points, which the engine's `commit` posts to a loyalty program's ledger.
    Points {
        /// How many.
        points: i64,
        /// The loyalty program.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        program: Option<String>,
    },
    /// Anything else (red packets, goods, multipliers, exchange offers).
    #[serde(other)]
    Other,
}

fn one() -> u64 {
    1
}

/// Usage per promotion and the commitments that produced it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    usage: BTreeMap<String, PromoUsage>,
    commits: BTreeMap<String, Commitment>,
}

impl Ledger {
    /// Usage of one promotion (`None` when never used).
    pub fn usage(&self, id: &str) -> Option<&PromoUsage> {
        self.usage.get(id)
    }

    /// The commitment under `key`.
    pub fn commitment(&self, key: &str) -> Option<&Commitment> {
        self.commits.get(key)
    }

    /// Record what a fresh commit granted (its receipt and later replays show it).
    pub(crate) fn set_granted(&mut self, key: &str, granted: Granted) {
        if let Some(c) = self.commits.get_mut(key) {
            c.granted = granted;
        }
    }

    /// Every promotion's usage.
    pub fn all_usage(&self) -> &BTreeMap<String, PromoUsage> {
        &self.usage
    }

    /// Consume budgets and limits for `quote` under `key`. Replaying the same key with the same
    /// quote returns the first receipt marked `duplicate`; another quote under it is an error.
    /// `find` looks a promotion up by id.
    ///
    /// # Errors
    ///
    /// Nothing changes on an error. [`CampaignError::Invalid`]: a blank key, a promotion applied
    /// twice, a negative amount. [`CampaignError::DuplicateKey`]: the key committed another quote.
    /// [`CampaignError::NotFound`]: an applied promotion `find` does not know.
    /// [`CampaignError::OutOfRange`]: an amount above [`MAX_AMOUNT`](crate::money::MAX_AMOUNT).
    /// [`CampaignError::BudgetExhausted`]: a money budget that cannot cover the use, or a count
    /// budget spent. [`CampaignError::LimitReached`]: a promotion's total limit, or its per-user
    /// limit (reached, or the quote has no customer).
    pub fn commit<'p>(
        &mut self,
        key: &str,
        quote: &QuoteRef,
        find: impl Fn(&str) -> Option<&'p Promotion>,
    ) -> Result<CommitReceipt, CampaignError> {
        if key.trim().is_empty() {
            return Err(CampaignError::invalid("key", "must not be empty"));
        }
        let print = fingerprint(
            &serde_json::to_vec(quote)
                .map_err(|e| CampaignError::invalid("quote", e.to_string()))?,
        );
        if let Some(c) = self.commits.get(key) {
            if c.fingerprint != print {
                return Err(CampaignError::DuplicateKey(key.to_owned()));
            }
            return Ok(CommitReceipt {
                key: key.to_owned(),
                uses: c.uses.clone(),
                state: if c.cancelled {
                    "cancelled"
                } else {
                    "committed"
                },
                duplicate: true,
                coupons: c.granted.coupons.clone(),
                points: c.granted.points,
            });
        }
        let mut uses = Vec::with_capacity(quote.applied.len());
        for (i, a) in quote.applied.iter().enumerate() {
            let p = find(&a.id).ok_or_else(|| CampaignError::NotFound {
                what: "promotion",
                id: a.id.clone(),
            })?;
            if quote.applied[..i].iter().any(|b| b.id == a.id) {
                return Err(CampaignError::invalid(
                    format!("quote.applied[{i}].id"),
                    "a promotion appears twice",
                ));
            }
            let money = a.budget_use.unwrap_or(a.discount);
            if money < Decimal::ZERO || a.discount < Decimal::ZERO {
                return Err(CampaignError::invalid(
                    format!("quote.applied[{i}]"),
                    "amounts must be ≥ 0",
                ));
            }
            // A quote's amounts are at most its subtotal, itself bounded: usage sums stay exact.
            if money.max(a.discount) > crate::money::MAX_AMOUNT {
                return Err(CampaignError::OutOfRange {
                    field: format!("quote.applied[{i}]"),
                    reason: format!(
                        "amounts are at most {}, got {}",
                        crate::money::MAX_AMOUNT,
                        money.max(a.discount)
                    ),
                });
            }
            let u = self.usage.get(&a.id);
            let orders = u.map_or(0, |u| u.orders);
            match &p.budget {
                Some(Budget::Money { amount }) => {
                    let used = u.map(|u| u.money).unwrap_or_default();
                    if used.checked_add(money).is_none_or(|after| after > *amount) {
                        return Err(CampaignError::BudgetExhausted {
                            promotion: a.id.clone(),
                            reason: format!("needs {money}, {} of {amount} left", *amount - used),
                        });
                    }
                }
                Some(Budget::Count { count }) if u64::try_from(*count).unwrap_or(0) <= orders => {
                    return Err(CampaignError::BudgetExhausted {
                        promotion: a.id.clone(),
                        reason: format!("all {count} uses are spent"),
                    });
                }
                _ => {}
            }
            if p.limits.total.is_some_and(|t| orders >= t) {
                return Err(CampaignError::LimitReached {
                    promotion: a.id.clone(),
                    reason: "total limit reached".into(),
                });
            }
            if let Some(per_user) = p.limits.per_user {
                let Some(user) = quote.user else {
                    return Err(CampaignError::LimitReached {
                        promotion: a.id.clone(),
                        reason: "a per-user limit needs a known customer".into(),
                    });
                };
                if u.and_then(|u| u.by_user.get(&user))
                    .is_some_and(|n| *n >= per_user)
                {
                    return Err(CampaignError::LimitReached {
                        promotion: a.id.clone(),
                        reason: format!("customer {user} reached the per-user limit {per_user}"),
                    });
                }
            }
            uses.push(Use {
                id: a.id.clone(),
                money,
            });
        }
        // Checks passed: consume.
        for u in &uses {
            let e = self.usage.entry(u.id.clone()).or_default();
            e.money += u.money;
            e.orders += 1;
            if let Some(user) = quote.user {
                *e.by_user.entry(user).or_default() += 1;
            }
        }
        self.commits.insert(
            key.to_owned(),
            Commitment {
                fingerprint: print,
                user: quote.user,
                uses: uses.clone(),
                cancelled: false,
                granted: Granted::default(),
            },
        );
        Ok(CommitReceipt {
            key: key.to_owned(),
            uses,
            state: "committed",
            duplicate: false,
            coupons: Vec::new(),
            points: 0,
        })
    }

    /// Give back what the commit under `key` consumed. Cancelling twice changes nothing more.
    ///
    /// # Errors
    ///
    /// [`CampaignError::NotFound`] for a key that committed nothing.
    pub fn cancel(&mut self, key: &str) -> Result<CommitReceipt, CampaignError> {
        self.cancel_owned(key, |o| o)
    }

    /// [`Ledger::cancel`], where `owner` maps the customer the commit was made for to the
    /// person whose per-customer count it is now (the survivor, after a merge).
    pub(crate) fn cancel_owned(
        &mut self,
        key: &str,
        owner: impl Fn(OneId) -> OneId,
    ) -> Result<CommitReceipt, CampaignError> {
        let c = self
            .commits
            .get_mut(key)
            .ok_or_else(|| CampaignError::NotFound {
                what: "commit",
                id: key.to_owned(),
            })?;
        let receipt = CommitReceipt {
            key: key.to_owned(),
            uses: c.uses.clone(),
            state: "cancelled",
            duplicate: c.cancelled,
            coupons: c.granted.coupons.clone(),
            points: c.granted.points,
        };
        if c.cancelled {
            return Ok(receipt);
        }
        c.cancelled = true;
        let user = c.user.map(owner);
        for u in &c.uses {
            if let Some(e) = self.usage.get_mut(&u.id) {
                e.money -= u.money;
                e.orders = e.orders.saturating_sub(1);
                if let Some(user) = user {
                    if let Some(n) = e.by_user.get_mut(&user) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            e.by_user.remove(&user);
                        }
                    }
                }
                if e.orders == 0 && e.money.is_zero() && e.by_user.is_empty() {
                    self.usage.remove(&u.id);
                }
            }
        }
        Ok(receipt)
    }
}

/// Per-customer counts follow the person: a commit keeps the OneID it was made for, and the
/// counts are kept under the person that OneID names now (see `campaigns/person.rs`).
impl Ledger {
    /// A merge: `from`'s per-customer counts now count for `into`.
    pub(crate) fn merge_user(&mut self, from: OneId, into: OneId) {
        for u in self.usage.values_mut() {
            if let Some(n) = u.by_user.remove(&from) {
                *u.by_user.entry(into).or_default() += n;
            }
        }
    }

    /// Recount the per-customer counts of `persons` from the commits, each counting for
    /// `owner(its customer)` (after a split).
    pub(crate) fn recount_users(&mut self, persons: &[OneId], owner: impl Fn(OneId) -> OneId) {
        let want = self.counts(&owner, |o| persons.contains(&o));
        for (id, u) in self.usage.iter_mut() {
            for p in persons {
                match want.get(&(id.clone(), *p)) {
                    Some(n) => {
                        u.by_user.insert(*p, *n);
                    }
                    None => {
                        u.by_user.remove(p);
                    }
                }
            }
        }
    }

    /// Non-cancelled commits per (promotion, person) for the persons `keep` selects.
    fn counts(
        &self,
        owner: impl Fn(OneId) -> OneId,
        keep: impl Fn(OneId) -> bool,
    ) -> BTreeMap<(String, OneId), u64> {
        let mut out: BTreeMap<(String, OneId), u64> = BTreeMap::new();
        for c in self.commits.values().filter(|c| !c.cancelled) {
            let Some(p) = c.user.map(&owner).filter(|p| keep(*p)) else {
                continue;
            };
            for u in &c.uses {
                *out.entry((u.id.clone(), p)).or_default() += 1;
            }
        }
        out
    }

    /// Erasure: commits of `oneids` re-keyed to `pseudonym` under a fresh key (commit keys are
    /// order ids), their counts with them; budgets and limits keep what was used.
    pub(crate) fn pseudonymize(&mut self, oneids: &[OneId], pseudonym: OneId) {
        let mine: Vec<String> = self
            .commits
            .iter()
            .filter(|(_, c)| c.user.is_some_and(|u| oneids.contains(&u)))
            .map(|(k, _)| k.clone())
            .collect();
        for (i, k) in mine.into_iter().enumerate() {
            if let Some(mut c) = self.commits.remove(&k) {
                c.user = Some(pseudonym);
                c.granted.points_order = None;
                self.commits
                    .insert(format!("erased:{}:commit:{i}", pseudonym.0), c);
            }
        }
        for &o in oneids {
            self.merge_user(o, pseudonym);
        }
    }

    /// The commits whose customer `mine` selects: (key, cancelled), by key.
    pub(crate) fn commits_of(&self, mine: impl Fn(OneId) -> bool) -> Vec<(&str, bool)> {
        self.commits
            .iter()
            .filter(|(_, c)| c.user.is_some_and(&mine))
            .map(|(k, c)| (k.as_str(), c.cancelled))
            .collect()
    }

    /// A person's per-customer count of every promotion that has one.
    pub(crate) fn counts_of(&self, person: OneId) -> BTreeMap<&str, u64> {
        self.usage
            .iter()
            .filter_map(|(id, u)| u.by_user.get(&person).map(|n| (id.as_str(), *n)))
            .collect()
    }

    /// The per-customer counts are what the commits add up to (for the invariant checks).
    pub(crate) fn check_users(&self, owner: impl Fn(OneId) -> OneId) -> Vec<String> {
        let want = self.counts(owner, |_| true);
        let got: BTreeMap<(String, OneId), u64> = self
            .usage
            .iter()
            .flat_map(|(id, u)| u.by_user.iter().map(move |(o, n)| ((id.clone(), *o), *n)))
            .filter(|(_, n)| *n > 0)
            .collect();
        if want == got {
            Vec::new()
        } else {
            let first = want
                .iter()
                .find(|(k, n)| got.get(*k) != Some(*n))
                .map(|(k, n)| format!("{k:?}: {n} commits, counted {:?}", got.get(k)))
                .or_else(|| {
                    got.iter()
                        .find(|(k, _)| !want.contains_key(*k))
                        .map(|(k, n)| format!("{k:?}: counted {n}, no commit"))
                })
                .unwrap_or_default();
            vec![format!(
                "campaigns: per-customer promotion counts disagree with the commits ({first})"
            )]
        }
    }
}
