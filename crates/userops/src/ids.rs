//! Identifiers: kinds, per-kind normalization, and the stable person number [`OneId`].
//!
//! An identifier is a `(kind, normalized value)` pair. Normalization happens once, at the door,
//! so that every later comparison is a plain string equality: `" Alice@Example.COM "` and
//! `"alice@example.com"` are the same email. Values that cannot be normalized are rejected with
//! an [`InvalidIdentifier`] that says why.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The stable number of one person across every platform.
///
/// OneIDs are never reused. When two persons merge, the survivor keeps its number and the absorbed
/// number maps to it (see the identity module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OneId(pub u64);

/// Pseudonyms start here (erasure is the privacy module's): an erased person's data that must stay (ledger postings, so that
/// balances still sum to zero) is re-keyed to `OneId(PSEUDONYM_BASE + n)` for the n-th erasure,
/// a number no person is ever given and no call accepts.
pub const PSEUDONYM_BASE: u64 = 1 << 62;

/// Whether `oneid` is an erasure pseudonym (see [`PSEUDONYM_BASE`]).
pub fn is_pseudonym(oneid: OneId) -> bool {
    oneid.0 >= PSEUDONYM_BASE
}

impl fmt::Display for OneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The kind of an identifier.
///
/// Serialized as a lower-case string (`"phone"`, `"device_id"`, ...). Any other name made of
/// lower-case ASCII letters, digits and `_` is a [`IdKind::Custom`] kind; whether a custom kind is
/// accepted is decided by the engine's [`Config`](crate::Config).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum IdKind {
    /// A phone number, normalized to `+<country code><digits>`.
    Phone,
    /// An email address, trimmed and lower-cased.
    Email,
    /// A device identifier (IDFA, OAID, Android id, ...).
    DeviceId,
    /// A WeChat openid (one per official account or mini program).
    OpenId,
    /// A WeChat unionid (one per WeChat user across a brand's apps).
    UnionId,
    /// A membership number issued by the brand.
    MemberNo,
    /// A user id on an order platform (taobao nick, jd pin, ...).
    PlatformUserId,
    /// A kind defined by the host, registered in the config.
    Custom(String),
}

impl IdKind {
    /// The kinds every engine knows, in their canonical order.
    pub const BUILT_IN: [IdKind; 7] = [
        IdKind::Phone,
        IdKind::Email,
        IdKind::DeviceId,
        IdKind::OpenId,
        IdKind::UnionId,
        IdKind::MemberNo,
        IdKind::PlatformUserId,
    ];

    /// The wire name of the kind.
    pub fn as_str(&self) -> &str {
        match self {
            IdKind::Phone => "phone",
            IdKind::Email => "email",
            IdKind::DeviceId => "device_id",
            IdKind::OpenId => "openid",
            IdKind::UnionId => "unionid",
            IdKind::MemberNo => "member_no",
            IdKind::PlatformUserId => "platform_user_id",
            IdKind::Custom(name) => name,
        }
    }
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdKind {
    type Err = InvalidIdentifier;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "phone" => IdKind::Phone,
            "email" => IdKind::Email,
            "device_id" => IdKind::DeviceId,
            "openid" => IdKind::OpenId,
            "unionid" => IdKind::UnionId,
            "member_no" => IdKind::MemberNo,
            "platform_user_id" => IdKind::PlatformUserId,
            other => {
                let well_formed = !other.is_empty()
                    && other.len() <= 64
                    && other.starts_with(|c: char| c.is_ascii_lowercase())
                    && other
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !well_formed {
                    return Err(InvalidIdentifier::new(
                        other,
                        "",
                        "unknown identifier kind (a custom kind is lower-case letters, digits and _)",
                    ));
                }
                IdKind::Custom(other.to_owned())
            }
        })
    }
}

impl Serialize for IdKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for IdKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A value that is not a valid identifier of its kind, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidIdentifier {
    /// The kind the value was given as.
    pub kind: String,
    /// The raw value as given.
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

impl InvalidIdentifier {
    fn new(kind: impl Into<String>, value: impl Into<String>, reason: impl Into<String>) -> Self {
        InvalidIdentifier {
            kind: kind.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// An identifier: a kind and a normalized value.
///
/// Construct with [`Identifier::new`], which normalizes; the fields are read-only so a value that
/// was never normalized cannot exist.
///
/// ```
/// use userops::{Identifier, IdKind};
/// let a = Identifier::new(IdKind::Email, "  Alice@Example.COM ").unwrap();
/// assert_eq!(a.value(), "alice@example.com");
/// let p = Identifier::new(IdKind::Phone, "138-0013-8000").unwrap();
/// assert_eq!(p.value(), "+8613800138000");
/// assert!(Identifier::new(IdKind::Email, "not-an-email").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Identifier {
    kind: IdKind,
    value: String,
}

/// The country calling code assumed for phone numbers written without one (China).
pub const DEFAULT_COUNTRY_CODE: &str = "86";

impl Identifier {
    /// Normalize `raw` as a value of `kind`.
    ///
    /// Rules: phone — separators (space, `-`, `.`, parentheses) removed, `+`/`00` international
    /// prefix honoured, an 11-digit number starting with `1` is a Chinese mobile (`+86`); the
    /// result is `+` and 7 to 15 digits (E.164). Email — trimmed and lower-cased, exactly one
    /// `@`, a non-empty local part and a dotted domain, no white space. Every other kind —
    /// trimmed, non-empty, at most 256 bytes, no control characters or inner white space.
    ///
    /// A value that is already a salted hash (`sha256:` and 64 lower-case hex digits, see
    /// [`Identifier::is_hashed`]) is accepted as is for every kind: hashed identifiers stay
    /// valid through snapshots and journals, and a host may hash before sending.
    ///
    /// # Errors
    ///
    /// [`InvalidIdentifier`] with the reason when `raw` breaks the kind's rules above.
    pub fn new(kind: IdKind, raw: &str) -> Result<Self, InvalidIdentifier> {
        let mut value = String::new();
        normalize_into(&kind, raw, &mut value)
            .map_err(|reason| InvalidIdentifier::new(kind.as_str(), raw, reason))?;
        Ok(Identifier { kind, value })
    }

    /// An identifier from a value that is already normalized (read back from the identity
    /// graph's own storage, which only ever holds normalized values).
    pub(crate) fn from_normalized(kind: IdKind, value: String) -> Identifier {
        Identifier { kind, value }
    }

    /// Parse the kind by name, then normalize.
    ///
    /// # Errors
    ///
    /// [`InvalidIdentifier`] for an unknown kind, or as [`Identifier::new`].
    pub fn parse(kind: &str, raw: &str) -> Result<Self, InvalidIdentifier> {
        let kind: IdKind = kind
            .parse()
            .map_err(|_| InvalidIdentifier::new(kind, raw, "unknown identifier kind"))?;
        Identifier::new(kind, raw)
    }

    /// The identifier's kind (`phone`, `email`, a custom kind, ...).
    pub fn kind(&self) -> &IdKind {
        &self.kind
    }

    /// The normalized value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the value is a salted hash (`sha256:<64 hex>`) rather than the plain value.
    pub fn is_hashed(&self) -> bool {
        is_hash(&self.value)
    }

    /// This identifier with its value replaced by `sha256:hex(sha256(salt, kind, value))`.
    /// Already hashed identifiers are returned unchanged, so hashing twice is hashing once.
    pub fn hashed(&self, salt: &str) -> Identifier {
        use sha2::{Digest, Sha256};
        if self.is_hashed() {
            return self.clone();
        }
        let mut h = Sha256::new();
        // Length-prefixed parts: no two (salt, kind, value) triples feed the same bytes.
        for part in [salt, self.kind.as_str(), &self.value] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let digest = h.finalize();
        let mut value = String::with_capacity(HASH_PREFIX.len() + 64);
        value.push_str(HASH_PREFIX);
        for b in digest {
            value.push_str(&format!("{b:02x}"));
        }
        Identifier {
            kind: self.kind.clone(),
            value,
        }
    }
}

const HASH_PREFIX: &str = "sha256:";

fn is_hash(v: &str) -> bool {
    v.strip_prefix(HASH_PREFIX).is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

impl<'de> Deserialize<'de> for Identifier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            kind: String,
            value: String,
        }
        let raw = Raw::deserialize(d)?;
        Identifier::parse(&raw.kind, &raw.value).map_err(serde::de::Error::custom)
    }
}

/// Normalize `raw` as a value of `kind` into `out` (cleared first), without allocating when
/// `out` has room: the batch path of the identity graph normalizes millions of values through
/// one buffer. [`Identifier::new`] is this plus the kind.
pub(crate) fn normalize_into(
    kind: &IdKind,
    raw: &str,
    out: &mut String,
) -> Result<(), &'static str> {
    out.clear();
    let t = raw.trim();
    if is_hash(t) {
        out.push_str(t);
        return Ok(());
    }
    match kind {
        IdKind::Phone => normalize_phone(t, out),
        IdKind::Email => normalize_email(t, out),
        _ => normalize_token(t, out),
    }
}

fn normalize_phone(t: &str, out: &mut String) -> Result<(), &'static str> {
    if t.is_empty() {
        return Err("empty value");
    }
    out.push('+');
    let mut international = false;
    for c in t.chars() {
        match c {
            '0'..='9' => out.push(c),
            '+' if out.len() == 1 && !international => international = true,
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => {
                return Err("a phone number holds only digits, '+', spaces, '-', '.', '(' and ')'")
            }
        }
    }
    if !international && out[1..].starts_with("00") {
        international = true;
        out.replace_range(1..3, "");
    }
    let digits = &out[1..];
    if !international {
        if digits.len() == 11 && digits.starts_with('1') {
            out.insert_str(1, DEFAULT_COUNTRY_CODE);
        } else if !(digits.len() == 13 && digits.starts_with("861")) {
            return Err("a phone number needs a country code (+CC) unless it is an 11-digit mobile starting with 1");
        }
    }
    let e164 = &out[1..];
    if !(7..=15).contains(&e164.len()) {
        return Err("a phone number has 7 to 15 digits including the country code");
    }
    if e164.starts_with('0') {
        return Err("a country code never starts with 0");
    }
    Ok(())
}

fn normalize_email(t: &str, out: &mut String) -> Result<(), &'static str> {
    if t.is_ascii() {
        out.extend(t.bytes().map(|b| char::from(b.to_ascii_lowercase())));
    } else {
        out.push_str(&t.to_lowercase());
    }
    let t = out.as_str();
    if t.is_empty() {
        return Err("empty value");
    }
    if t.len() > 254 {
        return Err("an email address is at most 254 characters");
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("an email address holds no white space");
    }
    let mut parts = t.split('@');
    let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
        (Some(l), Some(d), None) => (l, d),
        _ => return Err("an email address has exactly one '@'"),
    };
    if local.is_empty() {
        return Err("the part before '@' is empty");
    }
    let labels_ok = domain.contains('.')
        && domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    if !labels_ok {
        return Err("the domain must be dotted labels such as example.com");
    }
    Ok(())
}

fn normalize_token(t: &str, out: &mut String) -> Result<(), &'static str> {
    if t.is_empty() {
        return Err("empty value");
    }
    if t.len() > 256 {
        return Err("an identifier is at most 256 bytes");
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("an identifier holds no white space or control characters");
    }
    out.push_str(t);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalize_to_e164() {
        for raw in [
            "13800138000",
            "+86 138 0013 8000",
            "008613800138000",
            "(+86)138-0013-8000",
            "8613800138000",
        ] {
            let p = Identifier::new(IdKind::Phone, raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(p.value(), "+8613800138000", "{raw}");
        }
        assert_eq!(
            Identifier::new(IdKind::Phone, "+1 (415) 555-0100")
                .unwrap()
                .value(),
            "+14155550100"
        );
    }

    #[test]
    fn bad_phones_say_why() {
        for raw in [
            "",
            "   ",
            "abc",
            "12345",
            "0211234567",
            "+0086123",
            "1380013800a",
        ] {
            let e = Identifier::new(IdKind::Phone, raw).unwrap_err();
            assert_eq!(e.kind, "phone");
            assert!(!e.reason.is_empty());
        }
    }

    #[test]
    fn emails() {
        let e = Identifier::new(IdKind::Email, " Bob.Smith@Mail.Example.com ").unwrap();
        assert_eq!(e.value(), "bob.smith@mail.example.com");
        for raw in [
            "",
            "a@b",
            "@x.com",
            "a@@x.com",
            "a b@x.com",
            "a@x..com",
            "a@-x.com",
        ] {
            assert!(Identifier::new(IdKind::Email, raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn kinds_round_trip() {
        for k in IdKind::BUILT_IN {
            assert_eq!(k.as_str().parse::<IdKind>().unwrap(), k);
        }
        assert_eq!(
            "loyalty_card".parse::<IdKind>().unwrap(),
            IdKind::Custom("loyalty_card".into())
        );
        assert!("Bad Kind".parse::<IdKind>().is_err());
        assert!("".parse::<IdKind>().is_err());
    }

    #[test]
    fn hashing_is_salted_stable_and_idempotent() {
        let p = Identifier::new(IdKind::Phone, "13800138000").unwrap();
        let h = p.hashed("s1");
        assert!(h.is_hashed() && !p.is_hashed());
        assert_eq!(h.kind(), &IdKind::Phone);
        assert_eq!(h.hashed("s1"), h, "hashing twice is hashing once");
        assert_eq!(p.hashed("s1"), h, "stable");
        assert_ne!(p.hashed("s2"), h, "salted");
        let e = Identifier::new(IdKind::Email, "a@x.com").unwrap();
        assert_ne!(e.hashed("s1").value(), h.value());
        // the hashed form survives the wire (snapshots, journals)
        let back: Identifier = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert!(Identifier::new(IdKind::Phone, "sha256:abc").is_err());
    }

    #[test]
    fn deserialize_normalizes() {
        let id: Identifier = serde_json::from_str(r#"{"kind":"email","value":"X@Y.COM"}"#).unwrap();
        assert_eq!(id.value(), "x@y.com");
        assert!(serde_json::from_str::<Identifier>(r#"{"kind":"email","value":"nope"}"#).is_err());
    }
}
