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
use crate::event::UserRef;
use crate::ids::{Identifier, OneId};
use crate::tags::{wall_clock, Value, ValueType, AGGREGATE_COLUMNS};

mod commands;
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
    defs: BTreeMap<String, AttributeDef>,
    #[serde(with = "pairs")]
    people: BTreeMap<OneId, StoredProfile>,
    /// What merges moved, for a split to give back (see `person.rs`).
    #[serde(default, skip_serializing_if = "crate::person::Stash::is_empty")]
    merged: crate::person::Stash<person::ProfileMoved>,
}

impl Profiles {
    /// The names of the defined attributes, in name order.
    pub(crate) fn attribute_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.defs.keys().map(String::as_str)
    }

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
