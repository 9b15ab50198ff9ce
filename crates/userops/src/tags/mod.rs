//! Tags, the bitmap index and audiences (SPEC §4).
//!
//! Every tag and every indexed profile attribute or aggregate is a *column* of a roaring-bitmap
//! index over dense user indexes ([`crate::users`]). Tags are manual (set by an operator), rule
//! (a bool tag computed from an audience expression, recomputed when a column it reads changes
//! and on `refresh_tags`), or model (written by other modules through
//! [`Engine::write_model_tag`]). Audiences are expressions ([`expr`]) evaluated on the index;
//! saved audiences keep their members and a size history and can be exported.
//!
//! Time: commands that depend on "now" carry it (`now`, defaulting to the wall clock when the
//! command is made), so a journaled command replays to the same state.

pub mod column;
mod eval;
pub mod expr;
mod index;
mod person;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

pub use column::{Value, ValueType};
pub use expr::{Expr, ExprError};
pub use index::TagIndex;

use crate::error::Error;
use crate::event::UserRef;
use crate::ids::{Identifier, OneId};
use crate::Engine;
use column::Column;

/// The current time: the default of every `now` argument (fixed when the command is built).
pub fn wall_clock() -> DateTime<Utc> {
    Utc::now()
}

/// How a tag gets its values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TagKind {
    /// Set by an operator (`set_tag`, `set_tags`).
    Manual,
    /// A bool tag: users matching an audience expression.
    Rule {
        /// The expression (canonical form).
        expression: String,
    },
    /// Written by a model (RFM, churn, lifecycle, preference).
    Model {
        /// Which model.
        model: String,
    },
}

/// A tag definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagDef {
    /// The name used in expressions.
    pub name: String,
    /// Its value type.
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// Where values come from.
    pub kind: TagKind,
    /// Free text for operators.
    #[serde(default)]
    pub description: String,
}

/// One point of a saved audience's size history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizePoint {
    /// When it was evaluated.
    #[serde(with = "crate::event::rfc3339")]
    pub at: DateTime<Utc>,
    /// How many members it had.
    pub size: u64,
}

/// A saved audience (audience package).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedAudience {
    /// Its name, as `in_audience("...")` and the audience commands refer to it.
    pub name: String,
    /// Its expression (canonical form).
    pub expression: String,
    /// Members as of the last evaluation (dense user indexes).
    #[serde(with = "bitmap")]
    pub(crate) members: RoaringBitmap,
    /// Size at every evaluation, oldest first.
    pub history: Vec<SizePoint>,
}

/// Index columns that hold profile aggregates (maintained from events; read-only for commands).
pub const AGGREGATE_COLUMNS: [(&str, ValueType); 6] = [
    ("orders", ValueType::Number),
    ("gmv", ValueType::Number),
    ("refunds", ValueType::Number),
    ("refund_amount", ValueType::Number),
    ("first_order", ValueType::Date),
    ("last_order", ValueType::Date),
];

/// Everything the tags module keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagState {
    /// Tag definitions, in definition order (a rule only reads columns defined before it).
    pub(crate) defs: Vec<TagDef>,
    pub(crate) columns: Columns,
    pub(crate) audiences: BTreeMap<String, SavedAudience>,
    /// The latest time rules were recomputed at.
    #[serde(default)]
    pub(crate) clock: Option<DateTime<Utc>>,
    /// Per rule reading relative dates: the time it was last computed for every user at. Such
    /// a rule is recomputed for everyone when touched at a later time.
    #[serde(default)]
    pub(crate) rule_clocks: BTreeMap<String, DateTime<Utc>>,
    /// Users numbered when rules were last refreshed: the ones numbered since are new to
    /// every rule (a new user can match `NOT ...` without any input of theirs changing).
    #[serde(default)]
    pub(crate) rule_users: u32,
    /// What merges moved, for a split to give back (see `person.rs`).
    #[serde(default, skip_serializing_if = "crate::person::Stash::is_empty")]
    pub(crate) merged: crate::person::Stash<person::TagsMoved>,
}

/// Which users of a column changed.
#[derive(Debug, Clone)]
pub(crate) enum Dirty {
    /// Possibly every user.
    All,
    /// These dense user indexes.
    Users(RoaringBitmap),
}

impl eval::Audiences for BTreeMap<String, SavedAudience> {
    fn members(&self, name: &str) -> Option<&RoaringBitmap> {
        self.get(name).map(|a| &a.members)
    }
    fn names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        Box::new(self.keys().map(String::as_str))
    }
}

impl Dirty {
    /// One user.
    pub(crate) fn user(d: u32) -> Dirty {
        Dirty::Users(std::iter::once(d).collect())
    }

    fn merge(a: Option<Dirty>, b: &Dirty) -> Option<Dirty> {
        Some(match (a, b) {
            (Some(Dirty::All), _) | (_, Dirty::All) => Dirty::All,
            (None, Dirty::Users(u)) => Dirty::Users(u.clone()),
            (Some(Dirty::Users(mut a)), Dirty::Users(u)) => {
                a |= u;
                Dirty::Users(a)
            }
        })
    }
}

/// The index: column name → column. Serialized as sorted `(user, value)` entries.
#[derive(Debug, Clone, Default)]
pub(crate) struct Columns(pub(crate) BTreeMap<String, Column>);

type ColumnsWire = BTreeMap<String, (ValueType, Vec<(u32, Value)>)>;

impl Serialize for Columns {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let w: ColumnsWire = self
            .0
            .iter()
            .map(|(k, c)| (k.clone(), (c.value_type(), c.entries())))
            .collect();
        w.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Columns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = ColumnsWire::deserialize(d)?;
        Ok(Columns(
            w.into_iter()
                .map(|(k, (t, e))| (k, Column::from_entries(t, &e)))
                .collect(),
        ))
    }
}

impl PartialEq for Columns {
    fn eq(&self, o: &Self) -> bool {
        self.0.len() == o.0.len()
            && self
                .0
                .iter()
                .zip(&o.0)
                .all(|((k1, c1), (k2, c2))| k1 == k2 && c1.entries() == c2.entries())
    }
}

mod bitmap {
    use roaring::RoaringBitmap;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &RoaringBitmap, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(b.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RoaringBitmap, D::Error> {
        Ok(Vec::<u32>::deserialize(d)?.into_iter().collect())
    }
}

/// A column of `set_tags`: one value per row (`null` removes the user's value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagColumnInput {
    /// The tag's name: a manual or model tag, or a new name (defined here as a manual tag).
    pub name: String,
    /// Its type: defines the tag as a manual tag if it does not exist yet.
    #[serde(rename = "type", default)]
    pub value_type: Option<ValueType>,
    /// One value per user row.
    pub values: Vec<serde_json::Value>,
}

/// How `combine_audiences` combines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SetOp {
    /// In any.
    Union,
    /// In all.
    Intersection,
    /// In the first and none of the others.
    Difference,
}

/// Commands of the tags module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TagsCommand {
    /// Define a tag: manual by default, a rule tag when `rule` is given (bool), a model tag when
    /// `model` is given. Output: the [`TagDef`].
    DefineTag {
        /// The name (letters, digits, `_`; not a keyword).
        name: String,
        /// The value type (default bool).
        #[serde(rename = "type", default = "default_bool")]
        value_type: ValueType,
        /// For a rule tag: the expression.
        #[serde(default)]
        rule: Option<String>,
        /// For a model tag: the model that writes it.
        #[serde(default)]
        model: Option<String>,
        /// Free text.
        #[serde(default)]
        description: String,
        /// The time relative dates in the rule refer to.
        #[serde(default = "wall_clock", with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Set (or with `null`, remove) one user's value of a manual or model tag. Output: the user.
    SetTag {
        /// Who (created if new).
        user: UserRef,
        /// The tag's name: a defined manual or model tag (a rule tag is computed, not set).
        tag: String,
        /// The value (JSON of the tag's type; dates as strings), or null.
        value: serde_json::Value,
        /// The time rule tags are recomputed at.
        #[serde(default = "wall_clock", with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// A wide table: row `i` sets the tags of the user whose identifier of `kind` is `users[i]`
    /// (created if new). Undefined tags are defined as manual tags of the column's type.
    /// Output: counts.
    SetTags {
        /// The identifier kind of `users`.
        kind: String,
        /// Identifier values, one per row.
        users: Vec<String>,
        /// The tag columns.
        tags: Vec<TagColumnInput>,
        /// The time rule tags are recomputed at.
        #[serde(default = "wall_clock", with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Recompute every rule tag at `now` (relative dates move on). Output: counts.
    RefreshTags {
        /// The time relative dates in rules refer to (RFC 3339; default: the wall clock when the
        /// command is built). Time never moves back: a `now` before the latest recomputation of
        /// rules counts as that time.
        #[serde(default = "wall_clock", with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Tag definitions with their user counts and index memory. Output: list.
    Tags {},
    /// Evaluate an expression. Output: [`AudienceResult`].
    Audience {
        /// The audience expression ([`expr`] syntax).
        expression: String,
        /// The time relative dates refer to.
        #[serde(default = "wall_clock", with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Evaluate and save (or re-define) an audience. Output: [`AudienceInfo`].
    SaveAudience {
        /// The audience's name (letters, digits, `_`); saving under it again re-defines it.
        name: String,
        /// The audience expression ([`expr`] syntax), saved in canonical form.
        expression: String,
        /// The evaluation time (recorded in the size history).
        #[serde(default = "wall_clock", with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Re-evaluate a saved audience, appending to its size history. Output: [`AudienceInfo`].
    RefreshAudience {
        /// The saved audience's name.
        name: String,
        /// The evaluation time.
        #[serde(default = "wall_clock", with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Save an audience combining saved audiences. Output: [`AudienceInfo`].
    CombineAudiences {
        /// The new audience's name.
        name: String,
        /// How members combine: union, intersection, or the first minus the others.
        op: SetOp,
        /// At least two saved audiences.
        audiences: Vec<String>,
        /// The evaluation time.
        #[serde(default = "wall_clock", with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Delete a saved audience. Output: its info. Refused (`InvalidArgument` at `name`) while
    /// an automation rule selects users by it, or a rule tag or another saved audience uses it
    /// (`in_audience("name")`): a rule would silently never fire, a rule tag silently stop
    /// refreshing. Saved audiences that use it can be deleted first; rule tags cannot be
    /// deleted, so an audience a rule tag uses stays.
    DeleteAudience {
        /// The saved audience's name.
        name: String,
    },
    /// Saved audiences without members. Output: list of [`AudienceInfo`].
    Audiences {},
    /// Members of a saved audience. Output: [`AudienceResult`].
    AudienceMembers {
        /// The saved audience's name.
        name: String,
    },
    /// Export a saved audience: OneIDs, or identifiers of one kind (e.g. phones for SMS).
    /// Output: [`Export`].
    ExportAudience {
        /// The saved audience's name.
        name: String,
        /// An identifier kind, or none for OneIDs.
        #[serde(default)]
        kind: Option<String>,
    },
    /// Identifiers of one kind for a list of OneIDs. Output: [`Export`].
    ExportOneids {
        /// The OneIDs to look up (an unknown one, or one without an identifier of `kind`, is
        /// listed in `missing`).
        oneids: Vec<OneId>,
        /// An identifier kind.
        kind: String,
    },
}

fn default_bool() -> ValueType {
    ValueType::Bool
}

/// The result of evaluating an audience.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudienceResult {
    /// The expression in canonical form (or the saved audience's).
    pub expression: String,
    /// Number of members.
    pub size: u64,
    /// The members' OneIDs (`size` of them).
    pub oneids: Vec<OneId>,
    /// The evaluation time.
    #[serde(with = "crate::event::rfc3339")]
    pub now: DateTime<Utc>,
}

/// A saved audience without its members.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudienceInfo {
    /// The audience's name.
    pub name: String,
    /// Its expression (canonical form).
    pub expression: String,
    /// Members now.
    pub size: u64,
    /// Size history.
    pub history: Vec<SizePoint>,
}

/// One exported identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportRow {
    /// The member the identifier belongs to.
    pub oneid: OneId,
    /// The identifier value (normalized).
    pub value: String,
}

/// A saved audience or a OneID list, as identifiers of one kind (or as OneIDs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Export {
    /// The kind exported (none: OneIDs).
    pub kind: Option<String>,
    /// One row per identifier (or per OneID when `kind` is none).
    pub rows: Vec<ExportRow>,
    /// Members without an identifier of that kind.
    pub missing: Vec<OneId>,
}

/// A tag with statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagInfo {
    /// The tag's definition (its fields inline on the wire).
    #[serde(flatten)]
    pub def: TagDef,
    /// Users holding a value.
    pub users: u64,
    /// Bytes of the index.
    pub memory_bytes: u64,
}

/// What the tags commands return.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum TagsOutput {
    /// What `define_tag` returns: the definition.
    Def(TagDef),
    /// A user touched.
    User {
        /// Their OneID (new when `set_tag` named an unknown identifier).
        oneid: OneId,
    },
    /// Counts of a batch.
    Counts {
        /// Rows (users) processed.
        rows: u64,
        /// Users created.
        created: u64,
        /// Tags written.
        tags: Vec<String>,
        /// Rule tags recomputed.
        rules: Vec<String>,
    },
    /// Tag list.
    Tags(Vec<TagInfo>),
    /// What `audience` and `audience_members` return.
    Audience(AudienceResult),
    /// A saved audience.
    Info(AudienceInfo),
    /// Saved audiences.
    Infos(Vec<AudienceInfo>),
    /// What `export_audience` and `export_oneids` return.
    Export(Export),
}

pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !expr::KEYWORDS.iter().any(|k| name.eq_ignore_ascii_case(k));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_argument(
            "name",
            format!("{name:?} is not a tag name: letters, digits and _, not starting with a digit, not a keyword"),
        ))
    }
}

/// Convert a JSON value to a column value of type `t`.
pub(crate) fn value_of(
    t: ValueType,
    v: &serde_json::Value,
    tz: chrono::FixedOffset,
) -> Result<Option<Value>, String> {
    use serde_json::Value as J;
    Ok(Some(match (t, v) {
        (_, J::Null) => return Ok(None),
        (ValueType::Bool, J::Bool(b)) => Value::Bool(*b),
        (ValueType::Enum, J::String(s)) => {
            if s.is_empty() {
                return Err("an enum value is a non-empty string".into());
            }
            Value::Text(s.clone())
        }
        (ValueType::Number, J::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() => Value::Number(x),
            _ => return Err(format!("{n} is not a finite number")),
        },
        // JSON has no infinities or NaN: the bindings hand them over as text ("inf", "-inf",
        // "nan"), so that they are refused by name rather than dropped as missing.
        (ValueType::Number, J::String(s)) if s.parse::<f64>().is_ok_and(|x| !x.is_finite()) => {
            return Err(format!(
                "{s} is not a finite number: number tags hold finite values (null removes one)"
            ))
        }
        (ValueType::Date, J::String(s)) => Value::Date(
            eval::parse_date(s, tz)
                .ok_or_else(|| format!("{s:?} is not a date (YYYY-MM-DD or RFC 3339)"))?,
        ),
        (t, other) => return Err(format!("expected a {} value, got {other}", t.name())),
    }))
}

impl TagState {
    pub(crate) fn def(&self, name: &str) -> Option<&TagDef> {
        self.defs.iter().find(|d| d.name == name)
    }

    /// What depends on the saved audience `name`: rule tags and other saved audiences whose
    /// expression says `in_audience("name")` (`rule tag "x"`, `saved audience "y"`).
    pub(crate) fn audience_users(&self, name: &str) -> Vec<String> {
        let uses = |expression: &str| {
            expr::parse(expression).is_ok_and(|e| {
                let (mut fields, mut audiences) = (Vec::new(), Vec::new());
                e.names(&mut fields, &mut audiences);
                audiences.iter().any(|a| a == name)
            })
        };
        let rules = self.defs.iter().filter_map(|d| match &d.kind {
            TagKind::Rule { expression } if uses(expression) => {
                Some(format!("rule tag {:?}", d.name))
            }
            _ => None,
        });
        let saved = self
            .audiences
            .values()
            .filter(|a| a.name != name && uses(&a.expression))
            .map(|a| format!("saved audience {:?}", a.name));
        rules.chain(saved).collect()
    }

    /// Ensure an index column exists for an attribute or aggregate.
    pub(crate) fn ensure_column(&mut self, name: &str, t: ValueType) {
        self.columns
            .0
            .entry(name.to_owned())
            .or_insert_with(|| Column::new(t));
    }

    /// Write one user's values of a column (created with type `t` if missing).
    pub(crate) fn write(&mut self, name: &str, t: ValueType, user: u32, values: &[Value]) {
        let col = self
            .columns
            .0
            .entry(name.to_owned())
            .or_insert_with(|| Column::new(t));
        col.set(user, values);
    }

    /// The values of every column for one user.
    pub(crate) fn values_of(&self, user: u32) -> BTreeMap<String, Vec<Value>> {
        self.columns
            .0
            .iter()
            .filter(|(k, _)| self.def(k).is_some())
            .map(|(k, c)| (k.clone(), c.get(user)))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }
}

impl Engine {
    /// The tag definitions, in definition order.
    pub fn tag_defs(&self) -> &[TagDef] {
        &self.state.tags.defs
    }

    /// One person's values of every defined tag, by tag (a multi-valued tag gives one entry
    /// per value). Empty for an unknown or absorbed person.
    pub fn tags_of(&self, oneid: OneId) -> Vec<(String, Value)> {
        let users = &self.state.users;
        match users.dense(oneid).filter(|d| users.live().contains(*d)) {
            Some(d) => self
                .state
                .tags
                .values_of(d)
                .into_iter()
                .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Every live person's values of every defined tag, by person (dense order) then tag: what
    /// the durable store materializes as its `tags` table.
    pub fn tag_rows(&self) -> Vec<(OneId, String, Value)> {
        let users = &self.state.users;
        users
            .live()
            .iter()
            .filter_map(|d| users.oneid(d))
            .flat_map(|o| self.tags_of(o).into_iter().map(move |(k, v)| (o, k, v)))
            .collect()
    }
}

impl Engine {
    fn ctx(&self, now: DateTime<Utc>) -> eval::Ctx<'_> {
        eval::Ctx {
            columns: &self.state.tags.columns.0,
            audiences: &self.state.tags.audiences,
            universe: self.state.users.live(),
            users: self.state.users.len() as u64,
            now,
            tz: self.config.business_tz(),
        }
    }

    /// Parse and evaluate an expression at `now`: the canonical text and the members.
    pub(crate) fn evaluate(
        &self,
        expression: &str,
        now: DateTime<Utc>,
    ) -> Result<(Expr, RoaringBitmap), Error> {
        let e = expr::parse(expression)?;
        let members = self.ctx(now).eval(&e)?;
        Ok((e, members))
    }

    /// Evaluate an audience expression (read-only).
    ///
    /// ```
    /// use userops::{Engine, tags::TagsCommand};
    /// let mut e = Engine::default();
    /// e.call_json("set_tags", r#"{"kind": "member_no", "users": ["M1", "M2"],
    ///     "tags": [{"name": "age", "type": "number", "values": [45, 30]}]}"#)?;
    /// let a = e.audience("age BETWEEN 40 AND 60")?;
    /// assert_eq!(a.size, 1);
    /// assert!(e.audience("agee > 3").is_err());
    /// # Ok::<(), userops::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `audience_syntax` when the expression does not parse or does not fit what it names (an
    /// unknown tag, attribute or saved audience, a value of another type); the error carries the
    /// position of the mistake.
    pub fn audience(&self, expression: &str) -> Result<AudienceResult, Error> {
        self.audience_at(expression, wall_clock())
    }

    /// [`Engine::audience`] with relative dates referring to `now`.
    ///
    /// # Errors
    ///
    /// As [`Engine::audience`].
    pub fn audience_at(
        &self,
        expression: &str,
        now: DateTime<Utc>,
    ) -> Result<AudienceResult, Error> {
        let (e, members) = self.evaluate(expression, now)?;
        Ok(AudienceResult {
            expression: e.to_string(),
            size: members.len(),
            oneids: self.state.users.oneids(&members),
            now,
        })
    }

    /// Segments to break an analysis down by, as OneID lists: the explicit `segments`, plus
    /// one segment per value of the enum or bool tag `by_tag` (named `tag=value`), plus one
    /// per named audience expression in `audiences`. Expressions are evaluated at the latest
    /// time the index has seen. `None` when nothing was asked.
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `segments` for a segment name given twice (explicit, `tag=value` or
    /// an audience's), at `by_tag` for a name that is no tag or attribute, or one that is neither
    /// enum nor bool; `audience_syntax` for an expression in `audiences` (as [`Engine::audience`]).
    pub fn breakdown_segments(
        &self,
        segments: Option<BTreeMap<String, Vec<OneId>>>,
        by_tag: Option<&str>,
        audiences: Option<&BTreeMap<String, String>>,
    ) -> Result<Option<BTreeMap<String, Vec<OneId>>>, Error> {
        if segments.is_none() && by_tag.is_none() && audiences.is_none() {
            return Ok(None);
        }
        let now = self.state.tags.clock.unwrap_or_else(wall_clock);
        let mut out = segments.unwrap_or_default();
        let mut add = |name: String, members: &RoaringBitmap| -> Result<(), Error> {
            if out.contains_key(&name) {
                return Err(Error::invalid_argument(
                    "segments",
                    format!("segment {name:?} given twice"),
                ));
            }
            let live = members & self.state.users.live();
            out.insert(name, self.state.users.oneids(&live));
            Ok(())
        };
        if let Some(tag) = by_tag {
            let col = self.state.tags.columns.0.get(tag).ok_or_else(|| {
                let known = self.state.tags.columns.0.keys().map(String::as_str);
                Error::invalid_argument(
                    "by_tag",
                    format!(
                        "unknown tag {tag:?}{}",
                        expr::nearest(tag, known)
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default()
                    ),
                )
            })?;
            match col {
                Column::Enum { values } => {
                    for (v, b) in values {
                        add(format!("{tag}={v}"), b)?;
                    }
                }
                Column::Bool { yes, no } => {
                    add(format!("{tag}=true"), yes)?;
                    add(format!("{tag}=false"), no)?;
                }
                _ => {
                    return Err(Error::invalid_argument(
                        "by_tag",
                        format!(
                        "{tag:?} is a {} tag: group by an enum or bool tag, or give `audiences`",
                        col.value_type().name()
                    ),
                    ))
                }
            }
        }
        for (name, e) in audiences.into_iter().flatten() {
            let (_, members) = self.evaluate(e, now)?;
            add(name.clone(), &members)?;
        }
        Ok(Some(out))
    }

    /// Write a model tag (RFM, churn, lifecycle, preference modules): defines it as a model tag
    /// of `value_type` if needed, then sets each listed user's value (`None` removes it).
    ///
    /// # Errors
    ///
    /// As [`Engine::write_model_values`].
    pub fn write_model_tag(
        &mut self,
        model: &str,
        tag: &str,
        value_type: ValueType,
        rows: &[(OneId, Option<Value>)],
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let rows: Vec<(OneId, Vec<Value>)> = rows
            .iter()
            .map(|(o, v)| (*o, v.iter().cloned().collect()))
            .collect();
        self.write_model_values(model, tag, value_type, &rows, false, now)
    }

    /// Write a model tag with any number of values per user (a multi-valued enum, e.g. the
    /// top-k preferences). With `replace`, the model's answer is the whole truth: users not
    /// listed lose their value. Users that are no longer live (merged, erased) are refused.
    ///
    /// # Errors
    ///
    /// `invalid_argument`, and nothing changes: at `tag` for a tag name that is not one (letters,
    /// digits and `_`, not starting with a digit, not a keyword); at `tag` when the tag exists and
    /// is not a model tag of `value_type`, or is an attribute; at `rows[i]` for a OneID that is not
    /// live (unknown, merged or erased) or is listed twice, a value of another type, or several
    /// values for a tag that is not an enum.
    pub fn write_model_values(
        &mut self,
        model: &str,
        tag: &str,
        value_type: ValueType,
        rows: &[(OneId, Vec<Value>)],
        replace: bool,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        // The caller passed the name as `tag`: the error names that, not `check_name`'s `name`.
        check_name(tag).map_err(|e| match e {
            Error::InvalidArgument { reason, .. } => Error::invalid_argument("tag", reason),
            other => other,
        })?;
        match self.state.tags.def(tag) {
            Some(d) if d.value_type != value_type || !matches!(d.kind, TagKind::Model { .. }) => {
                return Err(Error::invalid_argument(
                    "tag",
                    format!(
                        "{tag:?} exists and is not a {} model tag",
                        value_type.name()
                    ),
                ))
            }
            None if self.state.tags.columns.0.contains_key(tag) => {
                return Err(Error::invalid_argument(
                    "tag",
                    format!("{tag:?} is an attribute"),
                ))
            }
            _ => {}
        }
        let mut seen = BTreeSet::new();
        for (i, (o, vs)) in rows.iter().enumerate() {
            if self.state.identity.canonical(*o) != Some(*o) {
                return Err(Error::invalid_argument(
                    format!("rows[{i}]"),
                    format!("{o} is not a live OneID"),
                ));
            }
            if !seen.insert(*o) {
                return Err(Error::invalid_argument(
                    format!("rows[{i}]"),
                    format!("{o} listed twice"),
                ));
            }
            if vs.iter().any(|v| v.value_type() != value_type) {
                return Err(Error::invalid_argument(
                    format!("rows[{i}]"),
                    "value of another type",
                ));
            }
            if vs.len() > 1 && value_type != ValueType::Enum {
                return Err(Error::invalid_argument(
                    format!("rows[{i}]"),
                    "several values need an enum tag",
                ));
            }
        }
        // From here on nothing fails.
        if self.state.tags.def(tag).is_none() {
            self.state.tags.defs.push(TagDef {
                name: tag.to_owned(),
                value_type,
                kind: TagKind::Model {
                    model: model.to_owned(),
                },
                description: String::new(),
            });
        }
        self.state.tags.ensure_column(tag, value_type);
        let mut dense: Vec<(u32, Vec<Value>)> = rows
            .iter()
            .map(|(o, v)| (self.state.users.dense_or_insert(*o), v.clone()))
            .collect();
        let mut touched: RoaringBitmap = dense.iter().map(|r| r.0).collect();
        if replace {
            let gone = self
                .state
                .tags
                .columns
                .0
                .get(tag)
                .map(|c| c.present() - &touched)
                .unwrap_or_default();
            dense.extend(gone.iter().map(|u| (u, vec![])));
            touched |= gone;
        }
        if let Some(c) = self.state.tags.columns.0.get_mut(tag) {
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
        self.refresh_rules_for(&[tag.to_owned()], &Dirty::Users(touched), now);
        Ok(())
    }

    /// Recompute the rule tags that read any of `changed` (and, transitively, rules reading
    /// those), for every user (`changed` holding `"*"`: every column) or only for the users
    /// in `users` whose inputs changed. A saved audience is named `@name`. Returns the rule
    /// tags recomputed. Never fails: rules were checked when defined.
    pub(crate) fn refresh_rules(&mut self, changed: &[String], now: DateTime<Utc>) -> Vec<String> {
        self.refresh_rules_for(changed, &Dirty::All, now)
    }

    /// [`Engine::refresh_rules`] for the users of `users` only.
    ///
    /// A rule's answer for a user depends only on that user's values (and saved audiences),
    /// so recomputing it for the users whose inputs changed, keeping everyone else's, gives
    /// the same column as recomputing it for all (the property test in `tags/tests.rs` checks
    /// this on random command sequences). The exception is a rule with relative dates: when
    /// time has moved since it was last computed for everyone, it is recomputed for everyone.
    pub(crate) fn refresh_rules_for(
        &mut self,
        changed: &[String],
        users: &Dirty,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        // Time only moves forward: an event older than one already seen does not turn back
        // the clock that relative dates in rules refer to.
        let now = self.state.tags.clock.map_or(now, |c| c.max(now));
        self.state.tags.clock = Some(now);
        let mut every = changed.iter().any(|c| c == "*").then(|| users.clone());
        let numbered = self.state.users.len() as u32;
        if numbered > self.state.tags.rule_users {
            let fresh = Dirty::Users((self.state.tags.rule_users..numbered).collect());
            every = Dirty::merge(every, &fresh);
        }
        self.state.tags.rule_users = numbered;
        let mut dirty: BTreeMap<String, Dirty> = changed
            .iter()
            .filter(|c| *c != "*")
            .map(|c| (c.clone(), users.clone()))
            .collect();
        let mut done = Vec::new();
        let rules: Vec<(String, String)> = self
            .state
            .tags
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
            if e.uses_now() && self.state.tags.rule_clocks.get(&name) != Some(&now) {
                need = Dirty::All;
            }
            let yes = match &need {
                Dirty::All => match self.ctx(now).eval(&e) {
                    Ok(m) => m,
                    // A saved audience the rule reads was deleted: the rule keeps its members.
                    Err(_) => continue,
                },
                Dirty::Users(u) => {
                    let part = match self.ctx(now).eval_for(&e, u) {
                        Ok(m) => m,
                        Err(_) => continue,
                    };
                    let mut yes = match self.state.tags.columns.0.get(&name) {
                        Some(Column::Bool { yes, .. }) => yes - u,
                        _ => RoaringBitmap::new(),
                    };
                    yes |= part;
                    yes
                }
            };
            if matches!(need, Dirty::All) && e.uses_now() {
                self.state.tags.rule_clocks.insert(name.clone(), now);
            }
            self.state.tags.columns.0.insert(
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

    fn info(a: &SavedAudience) -> AudienceInfo {
        AudienceInfo {
            name: a.name.clone(),
            expression: a.expression.clone(),
            size: a.members.len(),
            history: a.history.clone(),
        }
    }

    fn saved(&self, name: &str) -> Result<&SavedAudience, Error> {
        self.state.tags.audiences.get(name).ok_or(Error::NotFound {
            what: "audience",
            id: name.to_owned(),
        })
    }

    fn save(
        &mut self,
        name: &str,
        e: &Expr,
        members: RoaringBitmap,
        now: DateTime<Utc>,
    ) -> AudienceInfo {
        let size = members.len();
        let a = self
            .state
            .tags
            .audiences
            .entry(name.to_owned())
            .or_insert_with(|| SavedAudience {
                name: name.to_owned(),
                expression: String::new(),
                members: RoaringBitmap::new(),
                history: Vec::new(),
            });
        a.expression = e.to_string();
        a.members = members;
        a.history.push(SizePoint { at: now, size });
        let info = Self::info(a);
        // Rules reading this audience follow its new members.
        self.refresh_rules(&[format!("@{name}")], now);
        info
    }

    fn export(&self, oneids: &[OneId], kind: Option<&str>) -> Result<Export, Error> {
        let Some(kind) = kind else {
            return Ok(Export {
                kind: None,
                rows: oneids
                    .iter()
                    .map(|o| ExportRow {
                        oneid: *o,
                        value: o.to_string(),
                    })
                    .collect(),
                missing: vec![],
            });
        };
        let k: crate::ids::IdKind = kind.parse().map_err(|e: crate::ids::InvalidIdentifier| {
            Error::invalid_argument("kind", e.reason)
        })?;
        let (mut rows, mut missing) = (Vec::new(), Vec::new());
        for o in oneids {
            let ids: Vec<Identifier> = self
                .state
                .identity
                .identifiers(*o)
                .map(|s| s.into_iter().filter(|i| *i.kind() == k).collect())
                .unwrap_or_default();
            if ids.is_empty() {
                missing.push(*o);
            }
            rows.extend(ids.into_iter().map(|i| ExportRow {
                oneid: *o,
                value: i.value().to_owned(),
            }));
        }
        Ok(Export {
            kind: Some(kind.to_owned()),
            rows,
            missing,
        })
    }

    pub(crate) fn execute_tags(&mut self, c: TagsCommand) -> Result<TagsOutput, Error> {
        let tz = self.config.business_tz();
        match c {
            TagsCommand::DefineTag {
                name,
                value_type,
                rule,
                model,
                description,
                now,
            } => self.define_tag(name, value_type, rule, model, description, now),
            TagsCommand::SetTag {
                user,
                tag,
                value,
                now,
            } => self.set_tag(user, tag, value, now, tz),
            TagsCommand::SetTags {
                kind,
                users,
                tags,
                now,
            } => self.set_tags(&kind, &users, &tags, now),
            TagsCommand::RefreshTags { now } => {
                let rules = self.refresh_rules(&["*".to_owned()], now);
                Ok(TagsOutput::Counts {
                    rows: 0,
                    created: 0,
                    tags: vec![],
                    rules,
                })
            }
            q @ (TagsCommand::Tags {}
            | TagsCommand::Audience { .. }
            | TagsCommand::Audiences {}
            | TagsCommand::AudienceMembers { .. }
            | TagsCommand::ExportAudience { .. }
            | TagsCommand::ExportOneids { .. }) => self.query_tags(q),
            TagsCommand::SaveAudience {
                name,
                expression,
                now,
            } => {
                check_name(&name)?;
                let (e, members) = self.evaluate(&expression, now)?;
                Ok(TagsOutput::Info(self.save(&name, &e, members, now)))
            }
            TagsCommand::RefreshAudience { name, now } => {
                let expression = self.saved(&name)?.expression.clone();
                let (e, members) = self.evaluate(&expression, now)?;
                Ok(TagsOutput::Info(self.save(&name, &e, members, now)))
            }
            TagsCommand::CombineAudiences {
                name,
                op,
                audiences,
                now,
            } => self.combine_audiences(name, op, audiences, now),
            TagsCommand::DeleteAudience { name } => self.delete_audience(name),
        }
    }

    /// Define a manual, rule or model tag; a rule tag is evaluated at once.
    fn define_tag(
        &mut self,
        name: String,
        value_type: ValueType,
        rule: Option<String>,
        model: Option<String>,
        description: String,
        now: DateTime<Utc>,
    ) -> Result<TagsOutput, Error> {
        check_name(&name)?;
        if self.state.tags.columns.0.contains_key(&name) || self.state.tags.def(&name).is_some() {
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
            (Some(r), None) => {
                if value_type != ValueType::Bool {
                    return Err(Error::invalid_argument("type", "a rule tag is a bool tag"));
                }
                let (e, _) = self.evaluate(&r, now)?;
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
        self.state.tags.defs.push(def.clone());
        self.state.tags.ensure_column(&name, value_type);
        self.refresh_rules(&[name], now);
        Ok(TagsOutput::Def(def))
    }

    /// Set one manual tag of one person (created when new).
    fn set_tag(
        &mut self,
        user: UserRef,
        tag: String,
        value: serde_json::Value,
        now: DateTime<Utc>,
        tz: chrono::FixedOffset,
    ) -> Result<TagsOutput, Error> {
        let def = self.state.tags.def(&tag).ok_or_else(|| {
            let known: Vec<&str> = self
                .state
                .tags
                .defs
                .iter()
                .map(|d| d.name.as_str())
                .collect();
            Error::invalid_argument(
                "tag",
                format!(
                    "unknown tag {tag:?}{}",
                    expr::nearest(&tag, known)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default()
                ),
            )
        })?;
        if matches!(def.kind, TagKind::Rule { .. }) {
            return Err(Error::invalid_argument(
                "tag",
                format!("{tag:?} is a rule tag: it is computed"),
            ));
        }
        let t = def.value_type;
        let v = value_of(t, &value, tz).map_err(|r| Error::invalid_argument("value", r))?;
        if let UserRef::Id(id) = &user {
            if !self.config.accepts_kind(id.kind()) {
                return Err(Error::invalid_argument(
                    "user",
                    "custom identifier kind not registered in the config",
                ));
            }
        }
        self.check_user(&user)
            .map_err(|e| Error::invalid_argument("user", e.to_string()))?;
        let oneid = self.resolve_or_create_user(&user);
        let d = self.state.users.dense_or_insert(oneid);
        self.state.tags.write(&tag, t, d, v.as_slice());
        self.refresh_rules_for(&[tag], &Dirty::user(d), now);
        Ok(TagsOutput::User { oneid })
    }

    /// Save the union, intersection or difference of saved audiences as an audience.
    fn combine_audiences(
        &mut self,
        name: String,
        op: SetOp,
        audiences: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<TagsOutput, Error> {
        check_name(&name)?;
        if audiences.len() < 2 {
            return Err(Error::invalid_argument(
                "audiences",
                "combine at least two audiences",
            ));
        }
        let refs: Vec<String> = audiences
            .iter()
            .map(|a| format!("in_audience({})", expr::Literal::Str(a.clone())))
            .collect();
        let text = match op {
            SetOp::Union => refs.join(" OR "),
            SetOp::Intersection => refs.join(" AND "),
            SetOp::Difference => {
                format!("{} AND NOT ({})", refs[0], refs[1..].join(" OR "))
            }
        };
        let (e, members) = self.evaluate(&text, now)?;
        Ok(TagsOutput::Info(self.save(&name, &e, members, now)))
    }

    /// Delete a saved audience that no rule or other audience uses.
    fn delete_audience(&mut self, name: String) -> Result<TagsOutput, Error> {
        let info = Self::info(self.saved(&name)?);
        // A journal of an older build may hold such a delete (see `Engine::replay`).
        if !self.replaying {
            // A rule reads the saved audience at every run: deleting it would leave a
            // rule that silently never fires.
            if let Some(rule) = self.state.campaigns.rule_using_audience(&name) {
                return Err(Error::invalid_argument(
                    "name",
                    format!(
                        "automation rule {rule:?} selects users by {name:?}: replace \
                         the rule first"
                    ),
                ));
            }
            let users = self.state.tags.audience_users(&name);
            if !users.is_empty() {
                return Err(Error::invalid_argument(
                    "name",
                    format!(
                        "audience {name:?} is used by {}: it cannot be deleted while \
                         they use it (delete those saved audiences first; rule tags \
                         are permanent)",
                        users.join(", ")
                    ),
                ));
            }
        }
        self.state.tags.audiences.remove(&name);
        Ok(TagsOutput::Info(info))
    }

    /// The tags commands that change nothing, on a shared engine ([`Engine::query`]).
    pub(crate) fn query_tags(&self, c: TagsCommand) -> Result<TagsOutput, Error> {
        match c {
            TagsCommand::Tags {} => Ok(TagsOutput::Tags(
                self.state
                    .tags
                    .defs
                    .iter()
                    .map(|d| {
                        let col = self.state.tags.columns.0.get(&d.name);
                        TagInfo {
                            def: d.clone(),
                            users: col
                                .map(|c| (c.present() & self.state.users.live()).len())
                                .unwrap_or(0),
                            memory_bytes: col.map(|c| c.memory() as u64).unwrap_or(0),
                        }
                    })
                    .collect(),
            )),
            TagsCommand::Audience { expression, now } => {
                Ok(TagsOutput::Audience(self.audience_at(&expression, now)?))
            }
            TagsCommand::Audiences {} => Ok(TagsOutput::Infos(
                self.state.tags.audiences.values().map(Self::info).collect(),
            )),
            TagsCommand::AudienceMembers { name } => {
                let a = self.saved(&name)?;
                let live = &a.members & self.state.users.live();
                Ok(TagsOutput::Audience(AudienceResult {
                    expression: a.expression.clone(),
                    size: live.len(),
                    oneids: self.state.users.oneids(&live),
                    now: a.history.last().map(|h| h.at).unwrap_or_default(),
                }))
            }
            TagsCommand::ExportAudience { name, kind } => {
                let a = self.saved(&name)?;
                let oneids = self
                    .state
                    .users
                    .oneids(&(&a.members & self.state.users.live()));
                Ok(TagsOutput::Export(self.export(&oneids, kind.as_deref())?))
            }
            TagsCommand::ExportOneids { oneids, kind } => {
                Ok(TagsOutput::Export(self.export(&oneids, Some(&kind))?))
            }
            other => Err(Error::not_a_query(&other)),
        }
    }

    fn resolve_or_create_user(&mut self, user: &UserRef) -> OneId {
        self.ensure_user(user, "set_tag", "operator")
    }

    fn set_tags(
        &mut self,
        kind: &str,
        users: &[String],
        tags: &[TagColumnInput],
        now: DateTime<Utc>,
    ) -> Result<TagsOutput, Error> {
        let tz = self.config.business_tz();
        let k: crate::ids::IdKind = kind.parse().map_err(|e: crate::ids::InvalidIdentifier| {
            Error::invalid_argument("kind", e.reason)
        })?;
        if !self.config.accepts_kind(&k) {
            return Err(Error::invalid_argument(
                "kind",
                "custom identifier kind not registered in the config",
            ));
        }
        // Check everything first.
        let ids: Vec<Identifier> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let id = Identifier::new(k.clone(), u)
                    .map_err(|e| Error::invalid_argument(format!("users[{i}]"), e.to_string()))?;
                match self.state.identity.blocked(&id) {
                    Some(why) => Err(Error::invalid_argument(format!("users[{i}]"), why)),
                    None => Ok(id),
                }
            })
            .collect::<Result<_, _>>()?;
        let mut seen_tags = BTreeSet::new();
        let mut typed: Vec<(String, ValueType, bool, Vec<Option<Value>>)> = Vec::new();
        for (j, col) in tags.iter().enumerate() {
            let field = |s: &str| format!("tags[{j}].{s}");
            check_name(&col.name)
                .map_err(|e| Error::invalid_argument(field("name"), e.to_string()))?;
            if !seen_tags.insert(col.name.clone()) {
                return Err(Error::invalid_argument(
                    field("name"),
                    format!("{:?} given twice", col.name),
                ));
            }
            if col.values.len() != users.len() {
                return Err(Error::invalid_argument(
                    field("values"),
                    format!("{} values for {} users", col.values.len(), users.len()),
                ));
            }
            let (t, define) = match (self.state.tags.def(&col.name), col.value_type) {
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
                (None, _) if self.state.tags.columns.0.contains_key(&col.name) => {
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
            };
            let vals = col
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    value_of(t, v, tz)
                        .map_err(|r| Error::invalid_argument(format!("tags[{j}].values[{i}]"), r))
                })
                .collect::<Result<Vec<_>, _>>()?;
            typed.push((col.name.clone(), t, define, vals));
        }
        // From here on nothing fails.
        let before = self.state.identity.person_count();
        let dense: Vec<u32> = ids
            .iter()
            .map(|id| {
                let o = self.ensure_user(&UserRef::Id(id.clone()), "set_tags", "operator");
                self.state.users.dense_or_insert(o)
            })
            .collect();
        let created = self.state.identity.person_count().saturating_sub(before) as u64;
        let mut names = Vec::new();
        for (name, t, define, vals) in typed {
            if define {
                self.state.tags.defs.push(TagDef {
                    name: name.clone(),
                    value_type: t,
                    kind: TagKind::Manual,
                    description: String::new(),
                });
            }
            self.state.tags.ensure_column(&name, t);
            let rows: Vec<(u32, Option<Value>)> = dense.iter().copied().zip(vals).collect();
            if let Some(c) = self.state.tags.columns.0.get_mut(&name) {
                c.set_many(&rows);
            }
            names.push(name);
        }
        let rules =
            self.refresh_rules_for(&names, &Dirty::Users(dense.iter().copied().collect()), now);
        Ok(TagsOutput::Counts {
            rows: users.len() as u64,
            created,
            tags: names,
            rules,
        })
    }
}

#[cfg(test)]
mod tests;
