//! [`IdentityRules`]: which identifiers may link, how many of a kind one person may hold, and
//! which values are junk.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{IdKind, Identifier};

/// A blocklist pattern over normalized values. Plain glob matching (no regex engine): `*` is any
/// run of characters, `?` one character.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockPattern {
    /// The kind the pattern applies to; `None` for every kind.
    #[serde(default)]
    pub kind: Option<IdKind>,
    /// The glob, matched against the normalized value.
    pub glob: String,
}

/// Rules of identity resolution. Serialized as JSON with these fields (all optional; missing
/// fields take the defaults of [`IdentityRules::default`]):
///
/// ```
/// use userops::identity::IdentityRules;
/// let rules = IdentityRules::from_json(r#"{
///     "non_linking_kinds": ["member_no"],
///     "caps": {"phone": 1, "email": 1, "unionid": 1, "device_id": 3, "openid": 1},
///     "per_source_caps": ["openid"],
///     "blocklist": [{"kind": "phone", "value": "13800000000"}],
///     "block_patterns": [{"kind": "email", "glob": "test*@*"}],
///     "junk_threshold": 20,
///     "priority": ["unionid", "member_no", "phone", "email", "openid", "device_id"]
/// }"#).unwrap();
/// assert_eq!(rules.cap(&userops::IdKind::DeviceId), Some(3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityRules {
    /// Kinds that never link to other identifiers: each value is a person of its own (or joins
    /// nothing beyond the person it already has).
    pub non_linking_kinds: BTreeSet<IdKind>,
    /// At most this many identifiers of a kind per person. Kinds absent here are uncapped.
    pub caps: BTreeMap<IdKind, u32>,
    /// Kinds whose cap counts per source (an openid is per app: "openid per app 1").
    pub per_source_caps: BTreeSet<IdKind>,
    /// Exact junk values (normalized on load): never linked, rows holding them are rejected.
    pub blocklist: BTreeSet<Identifier>,
    /// Junk value patterns.
    pub block_patterns: Vec<BlockPattern>,
    /// A value that has appeared with more than this many other persons is junk (a shared store
    /// tablet): from then on it no longer links. `None` turns the check off.
    pub junk_threshold: Option<u32>,
    /// Kind priority, highest first: within a record, identifiers link in this order, so when a
    /// cap refuses a link the higher-priority identifiers keep their person. Kinds not listed
    /// come after, in the order of [`IdKind`].
    pub priority: Vec<IdKind>,
}

impl Default for IdentityRules {
    fn default() -> Self {
        let caps = [
            (IdKind::Phone, 1),
            (IdKind::Email, 1),
            (IdKind::UnionId, 1),
            (IdKind::DeviceId, 5),
            (IdKind::OpenId, 1),
        ]
        .into_iter()
        .collect();
        IdentityRules {
            non_linking_kinds: BTreeSet::new(),
            caps,
            per_source_caps: [IdKind::OpenId].into_iter().collect(),
            blocklist: BTreeSet::new(),
            // The all-zero advertising id that iOS reports when tracking is off.
            block_patterns: vec![BlockPattern {
                kind: Some(IdKind::DeviceId),
                glob: "00000000-0000-0000-0000-000000000000".into(),
            }],
            junk_threshold: Some(50),
            priority: vec![
                IdKind::UnionId,
                IdKind::MemberNo,
                IdKind::Phone,
                IdKind::Email,
                IdKind::PlatformUserId,
                IdKind::OpenId,
                IdKind::DeviceId,
            ],
        }
    }
}

impl IdentityRules {
    /// Parse rules from JSON, validating them.
    ///
    /// # Errors
    ///
    /// `invalid_argument` for JSON that does not fit the rules (the field's path named), then as
    /// [`IdentityRules::validate`].
    pub fn from_json(json: &str) -> Result<IdentityRules, Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let rules: IdentityRules = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| Error::invalid_argument(e.path().to_string(), e.inner().to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    /// Check the rules are usable: caps at least 1, globs non-empty, no kind twice in priority.
    ///
    /// # Errors
    ///
    /// `invalid_argument` naming the setting: a cap of 0, an empty block pattern, a kind listed
    /// twice in `priority`, a `junk_threshold` of 0.
    pub fn validate(&self) -> Result<(), Error> {
        for (k, c) in &self.caps {
            if *c == 0 {
                return Err(Error::invalid_argument(
                    format!("caps.{k}"),
                    "a cap is at least 1 (use non_linking_kinds to stop a kind linking)",
                ));
            }
        }
        for (i, p) in self.block_patterns.iter().enumerate() {
            if p.glob.is_empty() {
                return Err(Error::invalid_argument(
                    format!("block_patterns[{i}].glob"),
                    "empty pattern",
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for k in &self.priority {
            if !seen.insert(k) {
                return Err(Error::invalid_argument(
                    "priority",
                    format!("kind {k} listed twice"),
                ));
            }
        }
        if self.junk_threshold == Some(0) {
            return Err(Error::invalid_argument(
                "junk_threshold",
                "at least 1 (or null to turn the check off)",
            ));
        }
        Ok(())
    }

    /// The cap of a kind, if capped.
    pub fn cap(&self, kind: &IdKind) -> Option<u32> {
        self.caps.get(kind).copied()
    }

    /// Whether identifiers of `kind` link to others.
    pub fn links(&self, kind: &IdKind) -> bool {
        !self.non_linking_kinds.contains(kind)
    }

    /// The rank of a kind in the priority order (lower links first).
    pub fn rank(&self, kind: &IdKind) -> usize {
        self.priority
            .iter()
            .position(|k| k == kind)
            .unwrap_or(self.priority.len())
    }

    /// Why `id` is junk, if it is on the blocklist or matches a pattern.
    pub fn blocked(&self, id: &Identifier) -> Option<String> {
        self.blocked_parts(id.kind(), id.value())
    }

    /// [`IdentityRules::blocked`] for a normalized value given by parts (no `Identifier` is
    /// built unless the exact blocklist has entries).
    pub(crate) fn blocked_parts(&self, kind: &IdKind, value: &str) -> Option<String> {
        if !self.blocklist.is_empty() {
            let id = Identifier::from_normalized(kind.clone(), value.to_owned());
            if self.blocklist.contains(&id) {
                return Some(format!("{id} is on the blocklist"));
            }
        }
        self.block_patterns
            .iter()
            .find(|p| p.kind.as_ref().is_none_or(|k| k == kind) && glob(&p.glob, value))
            .map(|p| format!("{kind}:{value} matches blocklist pattern {:?}", p.glob))
    }
}

/// Glob match with `*` and `?`, iterative with one backtrack point (linear for typical globs).
/// Walks byte offsets of whole characters, so it allocates nothing (it runs on every device id).
fn glob(pattern: &str, text: &str) -> bool {
    let at = |s: &str, i: usize| s[i..].chars().next();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(tc) = at(text, ti) {
        match at(pattern, pi) {
            Some(pc) if pc == '?' || pc == tc => {
                pi += pc.len_utf8();
                ti += tc.len_utf8();
                continue;
            }
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                let skipped = at(text, st).map_or(1, char::len_utf8);
                pi = sp + 1;
                ti = st + skipped;
                star = Some((sp, st + skipped));
            }
            None => return false,
        }
    }
    pattern[pi..].chars().all(|c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("test*@*", "test12@x.com"));
        assert!(!glob("test*@*", "atest@x.com"));
        assert!(glob("+86138????0000", "+8613812340000"));
        assert!(glob("*", ""));
        assert!(!glob("a?", "a"));
        assert!(glob("é*ß", "éaßxß"));
        assert!(glob("?b", "éb"));
        assert!(!glob("*x", "ééé"));
    }

    #[test]
    fn bad_rules_are_rejected() {
        assert!(IdentityRules::from_json(r#"{"caps": {"phone": 0}}"#).is_err());
        assert!(IdentityRules::from_json(r#"{"priority": ["phone", "phone"]}"#).is_err());
        assert!(IdentityRules::from_json(r#"{"nope": 1}"#).is_err());
        assert!(
            IdentityRules::from_json(r#"{"blocklist": [{"kind": "email", "value": "x"}]}"#)
                .is_err()
        );
        let r =
            IdentityRules::from_json(r#"{"blocklist": [{"kind": "email", "value": "X@Y.com"}]}"#)
                .unwrap();
        assert!(r
            .blocked(&Identifier::new(IdKind::Email, "x@y.com").unwrap())
            .is_some());
        assert_eq!(
            r.cap(&IdKind::Phone),
            Some(1),
            "defaults fill missing fields"
        );
    }
}
