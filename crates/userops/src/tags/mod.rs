//! Tags, the bitmap index and audiences (SPEC §4).
//!
//! Every tag and every indexed profile attribute or aggregate is a *column* of a roaring-bitmap
//! index over dense user indexes ([`crate::users`]). Tags are manual (set by an operator), rule
//! (a bool tag computed from an audience expression, recomputed when a column it reads changes
//! and on `refresh_tags`), or model (written by other modules' commands: the models' `tag`,
//! `write_lifecycle_tags`; the engine writes them, no command sets one). Audiences are expressions
//! ([`expr`]) evaluated on the index; saved audiences keep their members and a size history
//! and can be exported.
//!
//! Time: commands that depend on "now" carry it (`now`, defaulting to the wall clock when the
//! command is made), so a journaled command replays to the same state.

mod audiences;
pub mod column;
mod eval;
pub mod expr;
mod index;
mod person;
mod rules;
mod write;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

pub(crate) use audiences::export;
pub use column::{Value, ValueType};
pub use expr::{Expr, ExprError};
pub use index::TagIndex;
pub(crate) use rules::Reads;
pub(crate) use write::{IndexWrite, Written};

use crate::error::Error;
use crate::event::UserRef;
use crate::ids::OneId;
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
    members: RoaringBitmap,
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
    defs: Vec<TagDef>,
    columns: Columns,
    audiences: BTreeMap<String, SavedAudience>,
    /// The latest time rules were recomputed at.
    #[serde(default)]
    clock: Option<DateTime<Utc>>,
    /// Per rule reading relative dates: the time it was last computed for every user at. Such
    /// a rule is recomputed for everyone when touched at a later time.
    #[serde(default)]
    rule_clocks: BTreeMap<String, DateTime<Utc>>,
    /// Users numbered when rules were last refreshed: the ones numbered since are new to
    /// every rule (a new user can match `NOT ...` without any input of theirs changing).
    #[serde(default)]
    rule_users: u32,
    /// What merges moved, for a split to give back (see `person.rs`).
    #[serde(default, skip_serializing_if = "crate::person::Stash::is_empty")]
    merged: crate::person::Stash<person::TagsMoved>,
    /// What the command being executed changed (not state).
    #[serde(skip)]
    changes: Changes,
}

/// The users whose values of defined tags the command being executed may have changed, or
/// `all` when it defined a tag (every row of the new tag appears at once): what the durable
/// store's materialized `tags` table rewrites after the command. Not state: never serialized,
/// equal whatever it holds, emptied when a command starts ([`TagState::start_command`]).
#[derive(Debug, Clone, Default)]
struct Changes {
    users: RoaringBitmap,
    all: bool,
}

impl PartialEq for Changes {
    fn eq(&self, _: &Changes) -> bool {
        true
    }
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
pub(crate) struct Columns(BTreeMap<String, Column>);

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

/// `invalid_argument` at `field` for a tag name that is not `known`, with the nearest known
/// name as a suggestion.
fn unknown_tag<'a>(field: &str, tag: &str, known: impl IntoIterator<Item = &'a str>) -> Error {
    Error::invalid_argument(
        field,
        format!(
            "unknown tag {tag:?}{}",
            expr::nearest(tag, known)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default()
        ),
    )
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
    /// The definition of tag `name` (none for an attribute, aggregate or unknown name).
    pub(crate) fn def(&self, name: &str) -> Option<&TagDef> {
        self.defs.iter().find(|d| d.name == name)
    }

    /// The tag definitions, in definition order.
    pub(crate) fn defs(&self) -> &[TagDef] {
        &self.defs
    }

    /// The latest time rules were recomputed at (`None` before the first recomputation).
    pub(crate) fn clock(&self) -> Option<DateTime<Utc>> {
        self.clock
    }

    /// The members (dense user indexes) of the saved audience `name`, as of its last
    /// evaluation; `None` when no audience of that name is saved.
    pub(crate) fn saved_members(&self, name: &str) -> Option<&RoaringBitmap> {
        self.audiences.get(name).map(|a| &a.members)
    }

    /// The names of the saved audiences the dense user `user` belongs to, in name order.
    pub(crate) fn saved_audiences_of(&self, user: u32) -> impl Iterator<Item = &str> {
        self.audiences
            .iter()
            .filter(move |(_, a)| a.members.contains(user))
            .map(|(name, _)| name.as_str())
    }

    /// Whether the index has a column `name`: a tag, an attribute, an aggregate or a loyalty
    /// program's column.
    pub(crate) fn has_column(&self, name: &str) -> bool {
        self.columns.0.contains_key(name)
    }

    /// One user's values of column `name` (`None` when there is no such column).
    pub(crate) fn column_values(&self, name: &str, user: u32) -> Option<Vec<Value>> {
        self.columns.0.get(name).map(|c| c.get(user))
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
        self.changes.users.insert(user);
    }

    /// Forget what the previous command changed: a command starts.
    pub(crate) fn start_command(&mut self) {
        self.changes = Changes::default();
    }

    /// The dense users whose tag values the current command may have changed (a superset:
    /// every user written, whether the value moved or not), or `None` when it defined a tag
    /// and every row may have changed.
    pub(crate) fn changed_users(&self) -> Option<&RoaringBitmap> {
        (!self.changes.all).then_some(&self.changes.users)
    }

    /// Note users whose values change.
    fn note(&mut self, users: &RoaringBitmap) {
        self.changes.users |= users;
    }

    /// Note that a tag was defined.
    fn note_defined(&mut self) {
        self.changes.all = true;
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

#[cfg(test)]
mod tests;
