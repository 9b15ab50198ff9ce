//! The profile commands and event hook as methods on [`Profiles`]: each checks on `&self`
//! and changes on `&mut self`, and returns the values the tag index should hold for what
//! changed ([`IndexWrite`]); the engine flow writes them and recomputes the rules reading them.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;

use super::{aggregate_values, attr_value, check_attr_name, check_strategy, combine, erased};
use super::{AttrType, AttributeDef, MergeStrategy, Observation, ProfileView, Profiles};
use crate::error::Error;
use crate::event::{Event, EventBody};
use crate::ids::{Identifier, OneId};
use crate::tags::{IndexWrite, TagState, Value, ValueType, AGGREGATE_COLUMNS};

/// A checked `set_attribute` before the person is known: the attribute (defined already, or
/// to be defined from the value's JSON type) and the incoming value (`None`: remove).
pub(crate) struct SetAttribute {
    def: AttributeDef,
    incoming: Option<super::AttrValue>,
}

impl Profiles {
    /// Define an attribute: a new name that no index column (tag, aggregate, program column)
    /// has, with a strategy that fits its type. Returns the definition and the type of the
    /// index column to create for it.
    pub(crate) fn define_attribute(
        &mut self,
        tags: &TagState,
        name: String,
        attr_type: AttrType,
        merge: MergeStrategy,
    ) -> Result<(AttributeDef, ValueType), Error> {
        check_attr_name(&name)?;
        if self.defs.contains_key(&name) || tags.has_column(&name) {
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
        self.defs.insert(name, def.clone());
        Ok((def, attr_type.column_type()))
    }

    /// Check a `set_attribute`'s name and value (an undefined attribute takes its type from
    /// the value's JSON type, with strategy latest).
    pub(crate) fn check_set(
        &self,
        tags: &TagState,
        name: &str,
        value: serde_json::Value,
        tz: FixedOffset,
    ) -> Result<SetAttribute, Error> {
        check_attr_name(name)?;
        let def = match self.defs.get(name) {
            Some(d) => d.clone(),
            None => {
                if tags.has_column(name) {
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
                    name: name.to_owned(),
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
        Ok(SetAttribute { def, incoming })
    }

    /// The observation person `person` (`None`: a new person) ends with: the incoming value
    /// combined with their current one by the attribute's strategy.
    pub(crate) fn next_observation(
        &self,
        person: Option<OneId>,
        set: &SetAttribute,
        at: DateTime<Utc>,
        source: String,
    ) -> Result<Option<Observation>, Error> {
        let current = person.and_then(|o| self.people.get(&o)?.attributes.get(&set.def.name));
        Ok(match (&set.incoming, current) {
            (None, _) => None,
            (Some(v), None) => Some(Observation {
                value: v.clone(),
                at,
                source,
            }),
            (Some(v), Some(cur)) => Some(
                combine(
                    &set.def.merge,
                    cur,
                    &Observation {
                        value: v.clone(),
                        at,
                        source,
                    },
                )
                .map_err(|r| Error::invalid_argument("value", r))?,
            ),
        })
    }

    /// Store person `oneid`'s attribute (defining it if it was new). Returns the type of the
    /// index column to create when the attribute is new, and the person's values of it.
    pub(crate) fn set_attribute(
        &mut self,
        oneid: OneId,
        set: SetAttribute,
        next: Option<Observation>,
    ) -> (Option<ValueType>, IndexWrite) {
        let name = set.def.name.clone();
        let value_type = set.def.attr_type.column_type();
        let new_column = (!self.defs.contains_key(&name)).then_some(value_type);
        self.defs.entry(name.clone()).or_insert(set.def);
        let p = self.people.entry(oneid).or_default();
        match next {
            Some(ob) => p.attributes.insert(name.clone(), ob),
            None => p.attributes.remove(&name),
        };
        let values = p
            .attributes
            .get(&name)
            .map(|o| o.value.index_values())
            .unwrap_or_default();
        let write = IndexWrite {
            column: name,
            value_type,
            user: oneid,
            values,
        };
        (new_column, write)
    }

    /// Person `oneid`'s index values of attribute `name` (`None` for no such attribute).
    pub(crate) fn attribute_write(&self, oneid: OneId, name: &str) -> Option<IndexWrite> {
        let def = self.defs.get(name)?;
        let values = self
            .people
            .get(&oneid)
            .and_then(|p| p.attributes.get(name))
            .map(|o| o.value.index_values())
            .unwrap_or_default();
        Some(IndexWrite {
            column: name.to_owned(),
            value_type: def.attr_type.column_type(),
            user: oneid,
            values,
        })
    }

    /// Person `oneid`'s index values of the aggregates, one write per aggregate column.
    pub(crate) fn aggregate_writes(&self, oneid: OneId) -> Vec<IndexWrite> {
        let a = self
            .people
            .get(&oneid)
            .map(|p| p.aggregates.clone())
            .unwrap_or_default();
        AGGREGATE_COLUMNS
            .iter()
            .zip(aggregate_values(&a))
            .map(|((name, t), v)| IndexWrite {
                column: (*name).to_owned(),
                value_type: *t,
                user: oneid,
                values: v.into_iter().collect(),
            })
            .collect()
    }

    /// Update the aggregates from an accepted event of `oneid`. Returns the aggregates' index
    /// values when an order or refund changed them (touches and coupon steps are not indexed).
    pub(crate) fn on_event(&mut self, event: &Event, oneid: OneId) -> Option<Vec<IndexWrite>> {
        let a = &mut self.people.entry(oneid).or_default().aggregates;
        let name = |v: &dyn erased::Named| v.name();
        let indexed = match &event.body {
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
        };
        indexed.then(|| self.aggregate_writes(oneid))
    }

    /// The 360° view of live person `o`, from its profile and what the other modules hold:
    /// its identifiers (identity graph), tag values (by tag) and loyalty standing.
    pub(crate) fn view(
        &self,
        o: OneId,
        identifiers: Option<Vec<Identifier>>,
        tags: BTreeMap<String, Vec<Value>>,
        standing: BTreeMap<String, crate::loyalty::Standing>,
    ) -> ProfileView {
        let stored = self.people.get(&o).cloned().unwrap_or_default();
        let tags = tags
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
            .collect();
        ProfileView {
            oneid: o,
            // Sorted (by kind, then value): the graph keeps them in the order first seen.
            identifiers: identifiers
                .map(|mut ids| {
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
        }
    }
}
