//! Writing the index: tag definitions, operators' values (`set_tag`, `set_tags`), models'
//! answers (model tags), and the columns other modules feed (attributes, aggregates, loyalty
//! program columns, automation's tags) through [`TagState::write_values`].
//!
//! Every write here is in two steps where it can fail: a check on `&self` that returns what
//! to write, then the write on `&mut self`, which cannot fail. The engine flow numbers new
//! persons between the two, so a refused command numbers no one.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, Utc};
use roaring::RoaringBitmap;

use super::column::Column;
use super::rules::Reads;
use super::{check_name, unknown_tag, value_of, Dirty, TagColumnInput, TagDef, TagKind, TagState};
use super::{Value, ValueType};
use crate::error::Error;
use crate::ids::OneId;

/// One person's values of one index column, as another module wants them written: an
/// attribute or aggregate (profile), a program's points or tier (loyalty), a tag set by an
/// automation rule (campaigns). No values removes the person's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexWrite {
    /// The column (created with `value_type` when missing).
    pub(crate) column: String,
    /// The column's type.
    pub(crate) value_type: ValueType,
    /// Whose values.
    pub(crate) user: OneId,
    /// The values (several only for a multi-valued enum column).
    pub(crate) values: Vec<Value>,
}

/// A checked column of `set_tags`: its name, type, whether it defines a new manual tag, and a
/// value per row.
pub(crate) struct TypedColumn {
    name: String,
    value_type: ValueType,
    define: bool,
    values: Vec<Option<Value>>,
}

/// What [`TagState::write_values`] wrote: the users written (dense), and per column the users
/// whose values it changed.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Every user given a place and written, changed or not.
    pub(crate) users: RoaringBitmap,
    /// Per column, the users whose values differ from before the write.
    pub(crate) changed: BTreeMap<String, RoaringBitmap>,
}

impl TagState {
    /// Write other modules' values to the index. `place` gives each write's person its dense
    /// user (numbering persons new to the index), or `None` for a person that has no place
    /// (merged away, erased): that write is dropped. A value equal to the one held is not
    /// rewritten. Rules are not recomputed: the flow that wrote calls
    /// [`TagState::refresh_rules`] once, over [`Written::users`] or [`Written::changed`].
    pub(crate) fn write_values(
        &mut self,
        mut place: impl FnMut(OneId) -> Option<u32>,
        writes: impl IntoIterator<Item = IndexWrite>,
    ) -> Written {
        let mut written = Written::default();
        for w in writes {
            let Some(d) = place(w.user) else { continue };
            written.users.insert(d);
            if self.column_values(&w.column, d).as_deref() == Some(w.values.as_slice()) {
                continue;
            }
            self.write(&w.column, w.value_type, d, &w.values);
            written.changed.entry(w.column).or_default().insert(d);
        }
        written
    }

    /// Define a manual, rule or model tag; a rule tag is evaluated at once.
    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of the define_tag command, as the caller destructured them"
    )]
    pub(crate) fn define_tag(
        &mut self,
        r: Reads<'_>,
        name: String,
        value_type: ValueType,
        rule: Option<String>,
        model: Option<String>,
        description: String,
        now: DateTime<Utc>,
    ) -> Result<TagDef, Error> {
        check_name(&name)?;
        if self.columns.0.contains_key(&name) || self.def(&name).is_some() {
            return Err(Error::invalid_argument(
                "name",
                format!("{name:?} already exists"),
            ));
        }
        let kind = match (rule, model) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_argument(
                    "rule",
                    "a tag has a rule or a model, not both",
                ))
            }
            (Some(rule), None) => {
                if value_type != ValueType::Bool {
                    return Err(Error::invalid_argument("type", "a rule tag is a bool tag"));
                }
                let (e, _) = self.evaluate(r, &rule, now)?;
                TagKind::Rule {
                    expression: e.to_string(),
                }
            }
            (None, Some(m)) => TagKind::Model { model: m },
            (None, None) => TagKind::Manual,
        };
        let def = TagDef {
            name: name.clone(),
            value_type,
            kind,
            description,
        };
        self.defs.push(def.clone());
        self.note_defined();
        self.ensure_column(&name, value_type);
        self.refresh_rules(r, &[name], &Dirty::All, now);
        Ok(def)
    }

    /// Check a `set_tag`: the tag is a manual or model tag and the value fits its type.
    /// Returns the type and the value (`None`: remove).
    pub(crate) fn check_set_tag(
        &self,
        tag: &str,
        value: &serde_json::Value,
        tz: FixedOffset,
    ) -> Result<(ValueType, Option<Value>), Error> {
        let def = self
            .def(tag)
            .ok_or_else(|| unknown_tag("tag", tag, self.defs.iter().map(|d| d.name.as_str())))?;
        if matches!(def.kind, TagKind::Rule { .. }) {
            return Err(Error::invalid_argument(
                "tag",
                format!("{tag:?} is a rule tag: it is computed"),
            ));
        }
        let t = def.value_type;
        let v = value_of(t, value, tz).map_err(|r| Error::invalid_argument("value", r))?;
        Ok((t, v))
    }

    /// Set one user's value of a tag (checked by [`TagState::check_set_tag`]) and recompute
    /// the rules reading it for that user.
    pub(crate) fn set_tag(
        &mut self,
        r: Reads<'_>,
        tag: String,
        (t, value): (ValueType, Option<Value>),
        user: u32,
        now: DateTime<Utc>,
    ) {
        self.write(&tag, t, user, value.as_slice());
        self.refresh_rules(r, &[tag], &Dirty::user(user), now);
    }

    /// Check the columns of a `set_tags` table of `rows` rows: names, types, one value per
    /// row of the column's type.
    pub(crate) fn check_columns(
        &self,
        tags: &[TagColumnInput],
        rows: usize,
        tz: FixedOffset,
    ) -> Result<Vec<TypedColumn>, Error> {
        let mut seen = BTreeSet::new();
        let mut typed = Vec::with_capacity(tags.len());
        for (j, col) in tags.iter().enumerate() {
            let field = |s: &str| format!("tags[{j}].{s}");
            check_name(&col.name)
                .map_err(|e| Error::invalid_argument(field("name"), e.to_string()))?;
            if !seen.insert(col.name.clone()) {
                return Err(Error::invalid_argument(
                    field("name"),
                    format!("{:?} given twice", col.name),
                ));
            }
            if col.values.len() != rows {
                return Err(Error::invalid_argument(
                    field("values"),
                    format!("{} values for {} users", col.values.len(), rows),
                ));
            }
            let (t, define) = self.column_type(col, &field)?;
            let values = col
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    value_of(t, v, tz)
                        .map_err(|r| Error::invalid_argument(format!("tags[{j}].values[{i}]"), r))
                })
                .collect::<Result<Vec<_>, _>>()?;
            typed.push(TypedColumn {
                name: col.name.clone(),
                value_type: t,
                define,
                values,
            });
        }
        Ok(typed)
    }

    /// The type of a `set_tags` column, and whether it defines a new manual tag.
    fn column_type(
        &self,
        col: &TagColumnInput,
        field: &dyn Fn(&str) -> String,
    ) -> Result<(ValueType, bool), Error> {
        Ok(match (self.def(&col.name), col.value_type) {
            (Some(d), _) if matches!(d.kind, TagKind::Rule { .. }) => {
                return Err(Error::invalid_argument(
                    field("name"),
                    format!("{:?} is a rule tag: it is computed", col.name),
                ))
            }
            (Some(d), Some(t)) if d.value_type != t => {
                return Err(Error::invalid_argument(
                    field("type"),
                    format!(
                        "{:?} is a {} tag, the column is {}",
                        col.name,
                        d.value_type.name(),
                        t.name()
                    ),
                ))
            }
            (Some(d), _) => (d.value_type, false),
            (None, _) if self.columns.0.contains_key(&col.name) => {
                return Err(Error::invalid_argument(
                    field("name"),
                    format!("{:?} is a profile attribute", col.name),
                ))
            }
            (None, Some(t)) => (t, true),
            (None, None) => {
                return Err(Error::invalid_argument(
                    field("type"),
                    format!("{:?} is not defined: give its type", col.name),
                ))
            }
        })
    }

    /// Write checked `set_tags` columns for the rows' users (`dense`, one per row), defining
    /// new manual tags, and recompute the rules reading them. Returns the tags written and the
    /// rules recomputed.
    pub(crate) fn set_columns(
        &mut self,
        r: Reads<'_>,
        dense: &[u32],
        typed: Vec<TypedColumn>,
        now: DateTime<Utc>,
    ) -> (Vec<String>, Vec<String>) {
        let mut names = Vec::new();
        let written: RoaringBitmap = dense.iter().copied().collect();
        self.note(&written);
        for col in typed {
            if col.define {
                self.note_defined();
                self.defs.push(TagDef {
                    name: col.name.clone(),
                    value_type: col.value_type,
                    kind: TagKind::Manual,
                    description: String::new(),
                });
            }
            self.ensure_column(&col.name, col.value_type);
            let rows: Vec<(u32, Option<Value>)> = dense.iter().copied().zip(col.values).collect();
            if let Some(c) = self.columns.0.get_mut(&col.name) {
                c.set_many(&rows);
            }
            names.push(col.name);
        }
        let rules = self.refresh_rules(
            r,
            &names,
            &Dirty::Users(dense.iter().copied().collect()),
            now,
        );
        (names, rules)
    }

    /// Check a model's answer for tag `tag` before it is written: the tag is a model tag of
    /// `value_type` (or a new name), and each row is a live person (`is_live`), listed once,
    /// with values of the type (several only for an enum).
    pub(crate) fn check_model_values(
        &self,
        tag: &str,
        value_type: ValueType,
        rows: &[(OneId, Vec<Value>)],
        is_live: impl Fn(OneId) -> bool,
    ) -> Result<(), Error> {
        // The caller passed the name as `tag`: the error names that, not `check_name`'s `name`.
        check_name(tag).map_err(|e| match e {
            Error::InvalidArgument { reason, .. } => Error::invalid_argument("tag", reason),
            other => other,
        })?;
        match self.def(tag) {
            Some(d) if d.value_type != value_type || !matches!(d.kind, TagKind::Model { .. }) => {
                return Err(Error::invalid_argument(
                    "tag",
                    format!(
                        "{tag:?} exists and is not a {} model tag",
                        value_type.name()
                    ),
                ))
            }
            None if self.columns.0.contains_key(tag) => {
                return Err(Error::invalid_argument(
                    "tag",
                    format!("{tag:?} is an attribute"),
                ))
            }
            _ => {}
        }
        let mut seen = BTreeSet::new();
        for (i, (o, vs)) in rows.iter().enumerate() {
            let reason = if !is_live(*o) {
                format!("{o} is not a live OneID")
            } else if !seen.insert(*o) {
                format!("{o} listed twice")
            } else if vs.iter().any(|v| v.value_type() != value_type) {
                "value of another type".to_owned()
            } else if vs.len() > 1 && value_type != ValueType::Enum {
                "several values need an enum tag".to_owned()
            } else {
                continue;
            };
            return Err(Error::invalid_argument(format!("rows[{i}]"), reason));
        }
        Ok(())
    }

    /// Write a model's answer (checked by [`TagState::check_model_values`]) for the users
    /// `dense` (numbered by the caller), defining the model tag if needed; with `replace`,
    /// users not listed lose their value. Then recompute the rules reading the tag.
    pub(crate) fn write_model_values(
        &mut self,
        r: Reads<'_>,
        model: &str,
        (tag, value_type): (&str, ValueType),
        mut dense: Vec<(u32, Vec<Value>)>,
        replace: bool,
        now: DateTime<Utc>,
    ) {
        if self.def(tag).is_none() {
            self.note_defined();
            self.defs.push(TagDef {
                name: tag.to_owned(),
                value_type,
                kind: TagKind::Model {
                    model: model.to_owned(),
                },
                description: String::new(),
            });
        }
        self.ensure_column(tag, value_type);
        let mut touched: RoaringBitmap = dense.iter().map(|r| r.0).collect();
        if replace {
            let gone = self
                .columns
                .0
                .get(tag)
                .map(|c| c.present() - &touched)
                .unwrap_or_default();
            dense.extend(gone.iter().map(|u| (u, vec![])));
            touched |= gone;
        }
        self.note(&touched);
        if let Some(c) = self.columns.0.get_mut(tag) {
            set_rows(c, dense);
        }
        self.refresh_rules(r, &[tag.to_owned()], &Dirty::Users(touched), now);
    }
}

/// Set each row's values: in one pass when every row has at most one value.
fn set_rows(c: &mut Column, dense: Vec<(u32, Vec<Value>)>) {
    if dense.iter().all(|r| r.1.len() <= 1) {
        let single: Vec<(u32, Option<Value>)> = dense
            .into_iter()
            .map(|(u, v)| (u, v.into_iter().next()))
            .collect();
        c.set_many(&single);
    } else {
        for (u, v) in &dense {
            c.set(*u, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(user: u64, column: &str, v: Option<f64>) -> IndexWrite {
        IndexWrite {
            column: column.to_owned(),
            value_type: ValueType::Number,
            user: OneId(user),
            values: v.map(Value::Number).into_iter().collect(),
        }
    }

    #[test]
    fn a_write_reports_who_changed_and_skips_persons_without_a_place() {
        let mut tags = TagState::default();
        // OneID n sits at dense n - 1; OneID 9 has no place (merged away, say).
        let place = |o: OneId| (o.0 != 9).then(|| o.0 as u32 - 1);
        let first = tags.write_values(
            place,
            [
                number(1, "a", Some(1.0)),
                number(2, "a", Some(2.0)),
                number(9, "a", Some(9.0)),
            ],
        );
        assert_eq!(first.users.iter().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(first.changed["a"].iter().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(tags.column_values("a", 8), Some(vec![]));

        // The same value again changes nothing; a new value and a removal do.
        let second = tags.write_values(
            place,
            [
                number(1, "a", Some(1.0)),
                number(2, "a", None),
                number(1, "b", Some(5.0)),
                number(3, "b", None),
            ],
        );
        assert_eq!(second.users.iter().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(second.changed["a"].iter().collect::<Vec<_>>(), [1]);
        assert_eq!(second.changed["b"].iter().collect::<Vec<_>>(), [0]);
        assert_eq!(tags.column_values("a", 0), Some(vec![Value::Number(1.0)]));
        assert_eq!(tags.column_values("a", 1), Some(vec![]));
        assert_eq!(tags.column_values("b", 0), Some(vec![Value::Number(5.0)]));
    }
}
