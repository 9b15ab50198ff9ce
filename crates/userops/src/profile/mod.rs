//! Profiles: the 360° view of one person (SPEC §4) — typed attributes with a merge strategy
//! each, tags, and aggregates maintained from ingested events.
//!
//! A merge strategy says how two observations of one attribute combine. It applies both when a
//! new value arrives for a person and when two persons merge (`person.rs`), so a
//! merged profile is the same as if every observation had been made on the survivor.
//!
//! Scalar attributes and the aggregates are also columns of the tag index, so audiences can use
//! them (`age BETWEEN 40 AND 60`, `last_order < now - 90d`, `gmv > 1000`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::event::{Event, EventBody, UserRef};
use crate::ids::{Identifier, OneId};
use crate::tags::{wall_clock, Value, ValueType, AGGREGATE_COLUMNS};
use crate::Engine;

mod person;

/// The type of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttrType {
    /// Text (indexed as an enum column).
    String,
    /// A number (f64).
    Number,
    /// An exact decimal (money; a decimal string on the wire).
    Decimal,
    /// A date (UTC).
    Date,
    /// true / false.
    Bool,
    /// A set of strings (indexed as a multi-valued enum column).
    List,
}

impl AttrType {
    fn column_type(self) -> ValueType {
        match self {
            AttrType::String | AttrType::List => ValueType::Enum,
            AttrType::Number | AttrType::Decimal => ValueType::Number,
            AttrType::Date => ValueType::Date,
            AttrType::Bool => ValueType::Bool,
        }
    }
}

/// How two observations of an attribute combine (on a new value and on a merge of persons).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MergeStrategy {
    /// The most recent observation wins (the default).
    Latest,
    /// The first observation wins.
    Earliest,
    /// The largest value (number, decimal, date, string).
    Max,
    /// The smallest value.
    Min,
    /// Values add up (number, decimal).
    Sum,
    /// Lists unite.
    Union,
    /// The source earliest in this list wins; unlisted sources rank last; ties go to the latest.
    SourcePriority(Vec<String>),
}

/// An attribute definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeDef {
    /// The attribute's name, unique in the engine.
    pub name: String,
    /// Its value type, which also fixes its index column's type.
    #[serde(rename = "type")]
    pub attr_type: AttrType,
    /// Its merge strategy.
    pub merge: MergeStrategy,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttrValue {
    /// Free text.
    String(String),
    /// A floating-point number.
    Number(f64),
    /// An exact decimal, for money (written as a string).
    Decimal(#[serde(with = "rust_decimal::serde::str")] Decimal),
    /// An instant, kept in UTC (written as RFC 3339).
    Date(#[serde(with = "crate::event::rfc3339")] DateTime<Utc>),
    /// True or false.
    Bool(bool),
    /// A set of strings (sorted, no duplicates).
    List(Vec<String>),
}

impl AttrValue {
    /// The value as plain JSON (decimals as strings, dates as RFC 3339).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AttrValue::String(s) => s.clone().into(),
            AttrValue::Number(x) => (*x).into(),
            AttrValue::Decimal(d) => d.to_string().into(),
            AttrValue::Date(t) => t
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .into(),
            AttrValue::Bool(b) => (*b).into(),
            AttrValue::List(l) => l.clone().into(),
        }
    }

    fn index_values(&self) -> Vec<Value> {
        match self {
            AttrValue::String(s) if !s.is_empty() => vec![Value::Text(s.clone())],
            AttrValue::String(_) => vec![],
            AttrValue::Number(x) => vec![Value::Number(*x)],
            AttrValue::Decimal(d) => d.to_f64().map(Value::Number).into_iter().collect(),
            AttrValue::Date(t) => vec![Value::Date(*t)],
            AttrValue::Bool(b) => vec![Value::Bool(*b)],
            AttrValue::List(l) => l
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| Value::Text(s.clone()))
                .collect(),
        }
    }
}

/// One observation of an attribute: value, when, and from which source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The value observed.
    pub value: AttrValue,
    /// When it was observed.
    #[serde(with = "crate::event::rfc3339")]
    pub at: DateTime<Utc>,
    /// The source that reported it.
    pub source: String,
}

/// Aggregates maintained from events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregates {
    /// Orders placed.
    pub orders: u64,
    /// Sum of order amounts.
    #[serde(with = "rust_decimal::serde::str")]
    pub gmv: Decimal,
    /// Refunds accepted (count).
    pub refunds: u64,
    /// Sum of refunded amounts.
    #[serde(with = "rust_decimal::serde::str")]
    pub refund_amount: Decimal,
    /// First order time.
    pub first_order: Option<DateTime<Utc>>,
    /// Last order time.
    pub last_order: Option<DateTime<Utc>>,
    /// Touches per outcome (sent, delivered, opened, clicked, converted).
    pub touches: BTreeMap<String, u64>,
    /// Coupon steps per action (issued, claimed, used, expired).
    pub coupons: BTreeMap<String, u64>,
}

/// Everything stored about one person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredProfile {
    /// Attributes by name.
    pub attributes: BTreeMap<String, Observation>,
    /// Counts and sums kept from the ingested orders and events.
    pub aggregates: Aggregates,
}

/// The profiles module's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profiles {
    pub(crate) defs: BTreeMap<String, AttributeDef>,
    #[serde(with = "pairs")]
    pub(crate) people: BTreeMap<OneId, StoredProfile>,
    /// What merges moved, for a split to give back (see `person.rs`).
    #[serde(default, skip_serializing_if = "crate::person::Stash::is_empty")]
    pub(crate) merged: crate::person::Stash<person::ProfileMoved>,
}

impl Profiles {
    /// Every person's value of the attribute `name`, in OneID order (persons without it are
    /// left out).
    pub(crate) fn attribute_values<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (OneId, &'a AttrValue)> + 'a {
        self.people
            .iter()
            .filter_map(move |(o, p)| Some((*o, &p.attributes.get(name)?.value)))
    }

    /// A person's value of the attribute `name`.
    pub(crate) fn attribute_value(&self, oneid: OneId, name: &str) -> Option<&AttrValue> {
        Some(&self.people.get(&oneid)?.attributes.get(name)?.value)
    }
}

mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::StoredProfile;
    use crate::ids::OneId;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<OneId, StoredProfile>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<OneId, StoredProfile>, D::Error> {
        Ok(Vec::<(OneId, StoredProfile)>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

/// The 360° view of one person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileView {
    /// The person's live OneID (the survivor's, when asked by a merged one).
    pub oneid: OneId,
    /// Its identifiers, by kind then value.
    pub identifiers: Vec<Identifier>,
    /// Attributes as plain JSON values.
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Where each attribute value came from and when.
    pub attribute_sources: BTreeMap<String, (String, String)>,
    /// Tags (a list only for multi-valued enums).
    pub tags: BTreeMap<String, serde_json::Value>,
    /// Aggregates from events.
    pub aggregates: Aggregates,
    /// Points balance summed over every loyalty program (saturating); `None` when the person
    /// has no loyalty account or membership. Per program in `loyalty`.
    pub points: Option<i64>,
    /// The tier held in the first program (by id) where the person holds one; per program in
    /// `loyalty`.
    pub tier: Option<String>,
    /// Standing per loyalty program id (balance, pending points, tier), read from the ledger
    /// when the view is made, so it follows every earn, spend, expiry and tier change.
    pub loyalty: BTreeMap<String, crate::loyalty::Standing>,
}

/// What a merge did to the profiles (the `profile` section of a merge report).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeReport {
    /// The person that remains.
    pub survivor: OneId,
    /// The absorbed person.
    pub absorbed: OneId,
    /// Attribute → what the strategy did (`"kept"`/`"taken"`/`"combined"`).
    pub attributes: BTreeMap<String, String>,
    /// Attributes that could not be combined (e.g. a sum overflowing): survivor's value kept.
    pub problems: Vec<String>,
}

/// Commands of the profile module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProfileCommand {
    /// Define an attribute with its type and merge strategy. Output: the [`AttributeDef`].
    DefineAttribute {
        /// The attribute's name: new, and no tag or aggregate column of that name.
        name: String,
        /// Its value type ([`AttrType`]).
        #[serde(rename = "type")]
        attr_type: AttrType,
        /// The merge strategy (default latest).
        #[serde(default = "latest")]
        merge: MergeStrategy,
    },
    /// Observe an attribute value of a user (created if new); combined with the current value
    /// by the attribute's strategy. An undefined attribute is defined from the JSON type of the
    /// value (string, number, bool, list) with strategy latest. `null` removes it.
    /// Output: the [`ProfileView`].
    SetAttribute {
        /// The person: an identifier (a new one makes a new person) or the OneID of a known person.
        user: UserRef,
        /// The attribute's name.
        name: String,
        /// The value (`null` removes the attribute).
        value: serde_json::Value,
        /// The reporting source.
        #[serde(default = "operator")]
        source: String,
        /// When it was observed.
        #[serde(default = "wall_clock", with = "crate::event::rfc3339")]
        at: DateTime<Utc>,
    },
    /// The 360° view of a user. Output: [`ProfileView`].
    Profile {
        /// The person: an identifier of theirs or their OneID.
        user: UserRef,
    },
}

fn latest() -> MergeStrategy {
    MergeStrategy::Latest
}

fn operator() -> String {
    "operator".into()
}

/// What the profile commands return.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ProfileOutput {
    /// What `define_attribute` returns.
    Def(AttributeDef),
    /// What `set_attribute` and `profile` return.
    View(Box<ProfileView>),
}

fn check_strategy(t: AttrType, m: &MergeStrategy) -> Result<(), Error> {
    let ok = match m {
        MergeStrategy::Latest | MergeStrategy::Earliest | MergeStrategy::SourcePriority(_) => true,
        MergeStrategy::Max | MergeStrategy::Min => {
            matches!(
                t,
                AttrType::Number | AttrType::Decimal | AttrType::Date | AttrType::String
            )
        }
        MergeStrategy::Sum => matches!(t, AttrType::Number | AttrType::Decimal),
        MergeStrategy::Union => t == AttrType::List,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_argument(
            "merge",
            format!("{m:?} does not apply to a {t:?} attribute"),
        ))
    }
}

fn attr_value(
    t: AttrType,
    v: &serde_json::Value,
    tz: chrono::FixedOffset,
) -> Result<AttrValue, String> {
    use serde_json::Value as J;
    Ok(match (t, v) {
        (AttrType::String, J::String(s)) => AttrValue::String(s.clone()),
        (AttrType::Number, J::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() => AttrValue::Number(x),
            _ => return Err(format!("{n} is not a finite number")),
        },
        (AttrType::Decimal, J::String(s)) => AttrValue::Decimal(
            s.trim()
                .parse()
                .map_err(|e| format!("{s:?} is not a decimal: {e}"))?,
        ),
        (AttrType::Decimal, J::Number(n)) if n.is_i64() || n.is_u64() => {
            AttrValue::Decimal(n.to_string().parse().map_err(|e| format!("{n}: {e}"))?)
        }
        (AttrType::Date, J::String(s)) => match crate::tags::value_of(ValueType::Date, v, tz)? {
            Some(Value::Date(t)) => AttrValue::Date(t),
            _ => return Err(format!("{s:?} is not a date")),
        },
        (AttrType::Bool, J::Bool(b)) => AttrValue::Bool(*b),
        (AttrType::List, J::Array(items)) => {
            let mut out = BTreeSet::new();
            for i in items {
                match i {
                    J::String(s) => {
                        out.insert(s.clone());
                    }
                    other => return Err(format!("a list holds strings, got {other}")),
                }
            }
            AttrValue::List(out.into_iter().collect())
        }
        (t, other) => return Err(format!("expected a {t:?} value, got {other}")),
    })
}

fn rank(order: &[String], source: &str) -> usize {
    order
        .iter()
        .position(|s| s == source)
        .unwrap_or(order.len())
}

/// Combine the current observation with an incoming one by `strategy`. `Err` when the values
/// cannot be combined (overflow); the caller keeps the current one.
///
/// # Errors
///
/// Why, when a sum would overflow or the two values are of different types.
pub fn combine(
    strategy: &MergeStrategy,
    current: &Observation,
    incoming: &Observation,
) -> Result<Observation, String> {
    use AttrValue as V;
    let take_incoming = match strategy {
        MergeStrategy::Latest => incoming.at >= current.at,
        MergeStrategy::Earliest => incoming.at < current.at,
        MergeStrategy::SourcePriority(order) => {
            let (ri, rc) = (rank(order, &incoming.source), rank(order, &current.source));
            ri < rc || (ri == rc && incoming.at >= current.at)
        }
        MergeStrategy::Max | MergeStrategy::Min => {
            let ord = match (&current.value, &incoming.value) {
                (V::Number(a), V::Number(b)) => b.partial_cmp(a),
                (V::Decimal(a), V::Decimal(b)) => Some(b.cmp(a)),
                (V::Date(a), V::Date(b)) => Some(b.cmp(a)),
                (V::String(a), V::String(b)) => Some(b.cmp(a)),
                _ => None,
            }
            .unwrap_or(std::cmp::Ordering::Equal);
            if *strategy == MergeStrategy::Max {
                ord.is_gt()
            } else {
                ord.is_lt()
            }
        }
        MergeStrategy::Sum | MergeStrategy::Union => {
            let value = match (&current.value, &incoming.value) {
                (V::Number(a), V::Number(b)) => {
                    let s = a + b;
                    if !s.is_finite() {
                        return Err("sum overflows".into());
                    }
                    V::Number(s)
                }
                (V::Decimal(a), V::Decimal(b)) => {
                    V::Decimal(a.checked_add(*b).ok_or("sum overflows")?)
                }
                (V::List(a), V::List(b)) => {
                    let s: BTreeSet<String> = a.iter().chain(b).cloned().collect();
                    V::List(s.into_iter().collect())
                }
                _ => return Err("values of different types".into()),
            };
            return Ok(Observation {
                value,
                at: current.at.max(incoming.at),
                source: if incoming.at >= current.at {
                    incoming.source.clone()
                } else {
                    current.source.clone()
                },
            });
        }
    };
    Ok(if take_incoming {
        incoming.clone()
    } else {
        current.clone()
    })
}

fn dec_f64(d: Decimal) -> Value {
    Value::Number(d.to_f64().unwrap_or(0.0))
}

/// The index values of the aggregates, in the order of [`AGGREGATE_COLUMNS`].
fn aggregate_values(a: &Aggregates) -> [Option<Value>; 6] {
    [
        (a.orders > 0).then_some(Value::Number(a.orders as f64)),
        (a.orders > 0).then(|| dec_f64(a.gmv)),
        (a.refunds > 0).then_some(Value::Number(a.refunds as f64)),
        (a.refunds > 0).then(|| dec_f64(a.refund_amount)),
        a.first_order.map(Value::Date),
        a.last_order.map(Value::Date),
    ]
}

impl Engine {
    /// The 360° view of a person.
    ///
    /// # Errors
    ///
    /// `not_found` for a OneID that never existed. (A merged OneID gives its survivor's view.)
    pub fn profile(&self, oneid: OneId) -> Result<ProfileView, Error> {
        let o = self
            .state
            .identity
            .canonical(oneid)
            .ok_or(Error::NotFound {
                what: "oneid",
                id: oneid.to_string(),
            })?;
        let stored = self
            .state
            .profiles
            .people
            .get(&o)
            .cloned()
            .unwrap_or_default();
        let standing = self.state.loyalty.standing(o);
        let tags = match self.state.users.dense(o) {
            Some(d) => self
                .state
                .tags
                .values_of(d)
                .into_iter()
                .map(|(k, vs)| {
                    let js: Vec<serde_json::Value> = vs
                        .iter()
                        .map(|v| match v {
                            Value::Bool(b) => (*b).into(),
                            Value::Text(s) => s.clone().into(),
                            Value::Number(x) => (*x).into(),
                            Value::Date(t) => t
                                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                                .into(),
                        })
                        .collect();
                    let v = if js.len() == 1 {
                        js.into_iter().next().unwrap_or_default()
                    } else {
                        js.into()
                    };
                    (k, v)
                })
                .collect(),
            None => BTreeMap::new(),
        };
        Ok(ProfileView {
            oneid: o,
            // Sorted (by kind, then value): the graph keeps them in the order first seen.
            identifiers: self
                .state
                .identity
                .identifiers(o)
                .map(|s| {
                    let mut ids = s.to_vec();
                    ids.sort();
                    ids
                })
                .unwrap_or_default(),
            attributes: stored
                .attributes
                .iter()
                .map(|(k, ob)| (k.clone(), ob.value.to_json()))
                .collect(),
            attribute_sources: stored
                .attributes
                .iter()
                .map(|(k, ob)| {
                    (
                        k.clone(),
                        (
                            ob.source.clone(),
                            ob.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                        ),
                    )
                })
                .collect(),
            tags,
            aggregates: stored.aggregates,
            points: (!standing.is_empty()).then(|| {
                standing
                    .values()
                    .fold(0i64, |a, s| a.saturating_add(s.points))
            }),
            tier: standing.values().find_map(|s| s.tier.clone()),
            loyalty: standing,
        })
    }

    pub(crate) fn index_attribute(&mut self, oneid: OneId, name: &str) {
        let Some(def) = self.state.profiles.defs.get(name) else {
            return;
        };
        let t = def.attr_type.column_type();
        let d = self.state.users.dense_or_insert(oneid);
        let vals = self
            .state
            .profiles
            .people
            .get(&oneid)
            .and_then(|p| p.attributes.get(name))
            .map(|o| o.value.index_values())
            .unwrap_or_default();
        self.state.tags.write(name, t, d, &vals);
    }

    pub(crate) fn index_aggregates(&mut self, oneid: OneId) {
        let d = self.state.users.dense_or_insert(oneid);
        let a = self
            .state
            .profiles
            .people
            .get(&oneid)
            .map(|p| p.aggregates.clone())
            .unwrap_or_default();
        for ((name, t), v) in AGGREGATE_COLUMNS.iter().zip(aggregate_values(&a)) {
            self.state.tags.write(name, *t, d, v.as_slice());
        }
    }

    /// Update aggregates from an accepted event (called by `apply_event` once checks passed).
    pub(crate) fn profile_on_event(&mut self, event: &Event, oneid: Option<OneId>) {
        let Some(oneid) = oneid else { return };
        self.state.users.dense_or_insert(oneid);
        let touched = {
            let a = &mut self
                .state
                .profiles
                .people
                .entry(oneid)
                .or_default()
                .aggregates;
            let name = |v: &dyn erased::Named| v.name();
            match &event.body {
                EventBody::Order { amount, .. } => {
                    a.orders = a.orders.saturating_add(1);
                    // Decimal tops out near 7.9e28: unreachable by real money, so saturate.
                    a.gmv = a.gmv.checked_add(*amount).unwrap_or(Decimal::MAX);
                    a.first_order = Some(a.first_order.map_or(event.time, |t| t.min(event.time)));
                    a.last_order = Some(a.last_order.map_or(event.time, |t| t.max(event.time)));
                    true
                }
                EventBody::Refund { amount, .. } => {
                    a.refunds = a.refunds.saturating_add(1);
                    a.refund_amount = a.refund_amount.checked_add(*amount).unwrap_or(Decimal::MAX);
                    true
                }
                EventBody::Touch { outcome, .. } => {
                    *a.touches.entry(name(outcome)).or_default() += 1;
                    false
                }
                EventBody::Coupon { action, .. } => {
                    *a.coupons.entry(name(action)).or_default() += 1;
                    false
                }
                _ => false,
            }
        };
        if touched {
            self.index_aggregates(oneid);
            let changed: Vec<String> = AGGREGATE_COLUMNS
                .iter()
                .map(|(n, _)| n.to_string())
                .collect();
            let d = self.state.users.dense_or_insert(oneid);
            self.refresh_rules_for(&changed, &crate::tags::Dirty::user(d), event.time);
        }
    }

    pub(crate) fn execute_profile(&mut self, c: ProfileCommand) -> Result<ProfileOutput, Error> {
        let tz = self.config.business_tz();
        match c {
            ProfileCommand::DefineAttribute {
                name,
                attr_type,
                merge,
            } => {
                check_attr_name(&name)?;
                if self.state.profiles.defs.contains_key(&name)
                    || self.state.tags.columns.0.contains_key(&name)
                {
                    return Err(Error::invalid_argument(
                        "name",
                        format!("{name:?} already exists"),
                    ));
                }
                check_strategy(attr_type, &merge)?;
                let def = AttributeDef {
                    name: name.clone(),
                    attr_type,
                    merge,
                };
                self.state.profiles.defs.insert(name.clone(), def.clone());
                self.state
                    .tags
                    .ensure_column(&name, attr_type.column_type());
                Ok(ProfileOutput::Def(def))
            }
            ProfileCommand::SetAttribute {
                user,
                name,
                value,
                source,
                at,
            } => {
                check_attr_name(&name)?;
                let def = match self.state.profiles.defs.get(&name) {
                    Some(d) => d.clone(),
                    None => {
                        if self.state.tags.columns.0.contains_key(&name) {
                            return Err(Error::invalid_argument(
                                "name",
                                format!("{name:?} is a tag or an aggregate"),
                            ));
                        }
                        let attr_type = match &value {
                            serde_json::Value::String(_) => AttrType::String,
                            serde_json::Value::Number(_) => AttrType::Number,
                            serde_json::Value::Bool(_) => AttrType::Bool,
                            serde_json::Value::Array(_) => AttrType::List,
                            _ => {
                                return Err(Error::invalid_argument(
                                    "value",
                                    format!("{name:?} is not defined; define_attribute it or give a string, number, bool or list"),
                                ))
                            }
                        };
                        AttributeDef {
                            name: name.clone(),
                            attr_type,
                            merge: MergeStrategy::Latest,
                        }
                    }
                };
                let incoming = match value {
                    serde_json::Value::Null => None,
                    v => Some(
                        attr_value(def.attr_type, &v, tz)
                            .map_err(|r| Error::invalid_argument("value", r))?,
                    ),
                };
                self.check_user(&user)
                    .map_err(|e| Error::invalid_argument("user", e.to_string()))?;
                if let UserRef::Id(id) = &user {
                    if !self.config.accepts_kind(id.kind()) {
                        return Err(Error::invalid_argument(
                            "user",
                            "custom identifier kind not registered in the config",
                        ));
                    }
                }
                let current = self.lookup(&user)?.and_then(|o| {
                    self.state
                        .profiles
                        .people
                        .get(&o)
                        .and_then(|p| p.attributes.get(&name))
                        .cloned()
                });
                let next = match (incoming, current) {
                    (None, _) => None,
                    (Some(v), None) => Some(Observation {
                        value: v,
                        at,
                        source,
                    }),
                    (Some(v), Some(cur)) => Some(
                        combine(
                            &def.merge,
                            &cur,
                            &Observation {
                                value: v,
                                at,
                                source,
                            },
                        )
                        .map_err(|r| Error::invalid_argument("value", r))?,
                    ),
                };
                // From here on nothing fails.
                let oneid = self.ensure_user(&user, "set_attribute", "operator");
                if !self.state.profiles.defs.contains_key(&name) {
                    self.state.profiles.defs.insert(name.clone(), def.clone());
                    self.state
                        .tags
                        .ensure_column(&name, def.attr_type.column_type());
                }
                let p = self.state.profiles.people.entry(oneid).or_default();
                match next {
                    Some(ob) => p.attributes.insert(name.clone(), ob),
                    None => p.attributes.remove(&name),
                };
                self.index_attribute(oneid, &name);
                let d = self.state.users.dense_or_insert(oneid);
                self.refresh_rules_for(&[name], &crate::tags::Dirty::user(d), at);
                Ok(ProfileOutput::View(Box::new(self.profile(oneid)?)))
            }
            q @ ProfileCommand::Profile { .. } => self.query_profile(q),
        }
    }

    /// The profile commands that change nothing, on a shared engine ([`Engine::query`]).
    pub(crate) fn query_profile(&self, c: ProfileCommand) -> Result<ProfileOutput, Error> {
        match c {
            ProfileCommand::Profile { user } => {
                let o = self.lookup(&user)?.ok_or(Error::NotFound {
                    what: "user",
                    id: format!("{user:?}"),
                })?;
                Ok(ProfileOutput::View(Box::new(self.profile(o)?)))
            }
            other => Err(Error::not_a_query(&other)),
        }
    }
}

fn check_attr_name(name: &str) -> Result<(), Error> {
    if AGGREGATE_COLUMNS.iter().any(|(n, _)| *n == name) {
        return Err(Error::invalid_argument(
            "name",
            format!("{name:?} is an aggregate"),
        ));
    }
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !crate::tags::expr::KEYWORDS
            .iter()
            .any(|k| name.eq_ignore_ascii_case(k));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_argument(
            "name",
            format!("{name:?} is not an attribute name"),
        ))
    }
}

mod erased {
    /// The wire name of a unit enum value (touch outcome, coupon action).
    pub trait Named {
        fn name(&self) -> String;
    }

    impl<T: serde::Serialize> Named for T {
        fn name(&self) -> String {
            serde_json::to_value(self)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }
    }
}
