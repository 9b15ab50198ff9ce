//! Events: what the channels tell the engine (SPEC §2).
//!
//! Every event has an idempotency `key`, a `time` (RFC 3339 with a zone; stored as UTC) and a
//! `source` (platform and program). The body is one of the [`EventBody`] kinds, tagged on the wire
//! by `"kind"`. Money travels as decimal strings, never floats.
//!
//! ```
//! use userops::Event;
//! let e: Event = serde_json::from_str(r#"{
//!   "kind": "identify", "key": "jd-7781", "time": "2026-01-05T10:00:00+08:00",
//!   "source": {"platform": "jd", "program": "brand-a"},
//!   "ids": [{"kind": "phone", "value": "13800138000"}, {"kind": "device_id", "value": "a9f3"}]
//! }"#).unwrap();
//! assert_eq!(e.kind_name(), "identify");
//! assert_eq!(e.time.to_rfc3339(), "2026-01-05T02:00:00+00:00");
//! ```

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::ids::{Identifier, OneId};

/// Where an event came from: a platform (taobao, jd, app, pos, wechat, ...) and a program (a node
/// of the org tree: group, brand, dealer or store).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The platform, e.g. `"jd"`.
    pub platform: String,
    /// The program, e.g. `"brand-a"`.
    pub program: String,
}

/// A reference to a user: an identifier (resolved through OneID, created if new) or a OneID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UserRef {
    /// `{"kind": ..., "value": ...}`.
    Id(Identifier),
    /// `{"oneid": N}`: must name a known person.
    OneId(OneId),
}

impl From<Identifier> for UserRef {
    fn from(id: Identifier) -> Self {
        UserRef::Id(id)
    }
}

impl From<OneId> for UserRef {
    fn from(id: OneId) -> Self {
        UserRef::OneId(id)
    }
}

impl Serialize for UserRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct O {
            oneid: OneId,
        }
        match self {
            UserRef::Id(id) => id.serialize(s),
            UserRef::OneId(o) => O { oneid: *o }.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for UserRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A custom shape check instead of `#[serde(untagged)]`, whose only error is "did not match
        // any variant": a user deserves to hear which field is wrong.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            oneid: Option<u64>,
            kind: Option<String>,
            value: Option<String>,
        }
        use serde::de::Error as _;
        let raw = Raw::deserialize(d)?;
        match (raw.oneid, raw.kind, raw.value) {
            (Some(n), None, None) => Ok(UserRef::OneId(OneId(n))),
            (None, Some(k), Some(v)) => Identifier::parse(&k, &v)
                .map(UserRef::Id)
                .map_err(D::Error::custom),
            (None, Some(_), None) => Err(D::Error::missing_field("value")),
            (None, None, Some(_)) => Err(D::Error::missing_field("kind")),
            (None, None, None) => Err(D::Error::custom(
                "a user is {\"kind\": ..., \"value\": ...} or {\"oneid\": N}",
            )),
            (Some(_), _, _) => Err(D::Error::custom(
                "a user is either {\"oneid\": N} or an identifier, not both",
            )),
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// Stock-keeping unit.
    pub sku: String,
    /// Product category.
    #[serde(default)]
    pub category: String,
    /// Unit price (a plain decimal string: see [`crate::money`]).
    #[serde(with = "crate::money::plain")]
    pub price: Decimal,
    /// Quantity, at least 1.
    pub qty: u32,
}

/// One line of a refund: which order line (by `sku`, or by `line` index when skus repeat; both
/// may be given and must agree), how many units came back (`qty`) and how much money was
/// refunded for it (`amount`, decimal string). At least one of `qty` and `amount` is above
/// zero; an `amount` without `qty` is money refunded without returned units (a price
/// adjustment), which loyalty measures against the line's value.
///
/// ```
/// use userops::event::RefundLine;
/// let l: RefundLine = serde_json::from_str(r#"{"sku": "s1", "qty": 1, "amount": "99.50"}"#).unwrap();
/// assert_eq!((l.sku.as_deref(), l.line, l.qty), (Some("s1"), None, 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundLine {
    /// The line's stock-keeping unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// The line's 0-based position in the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Units returned.
    #[serde(default)]
    pub qty: u32,
    /// Money refunded for the line (a plain decimal string, ≥ 0).
    #[serde(
        default,
        with = "crate::money::plain_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub amount: Option<Decimal>,
}

impl RefundLine {
    /// Which of an order's `count` lines this names: by `line` index (which must agree with
    /// `sku` when both are given: `is_sku(index, sku)`), or by `sku` when exactly one line has
    /// it. `Err((field under the line, reason))`.
    ///
    /// # Errors
    ///
    /// `("line", why)` for an index past the order's lines; `("sku", why)` for a sku that is not
    /// the indexed line's, that no line or several lines have, or when neither is given.
    pub fn find(
        &self,
        count: usize,
        is_sku: impl Fn(usize, &str) -> bool,
    ) -> Result<usize, (&'static str, String)> {
        match (self.line, self.sku.as_deref()) {
            (Some(ix), sku) => {
                let ix = ix as usize;
                if ix >= count {
                    return Err((
                        "line",
                        format!("the order has {count} lines (0-based index)"),
                    ));
                }
                match sku {
                    Some(s) if !is_sku(ix, s) => {
                        Err(("sku", format!("line {ix} of the order is not sku {s:?}")))
                    }
                    _ => Ok(ix),
                }
            }
            (None, Some(s)) => {
                let mut found = (0..count).filter(|&ix| is_sku(ix, s));
                match (found.next(), found.next()) {
                    (Some(ix), None) => Ok(ix),
                    (None, _) => Err(("sku", format!("no line of the order has sku {s:?}"))),
                    (Some(_), Some(_)) => Err((
                        "sku",
                        format!("sku {s:?} is on several lines: name the `line` index"),
                    )),
                }
            }
            (None, None) => Err(("sku", "name the line by `sku` or `line`".into())),
        }
    }

    /// Check what can be checked without the order: a line named, something refunded,
    /// no negative amount. `Err((field under the line, reason))`.
    ///
    /// # Errors
    ///
    /// `("sku", why)` when no line is named or the sku is blank; `("amount", why)` for a negative
    /// amount; `("qty", why)` when nothing is refunded (no qty and no amount above 0).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.sku.is_none() && self.line.is_none() {
            return Err(("sku", "name the line by `sku` or by `line` index".into()));
        }
        if self.sku.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(("sku", "must not be empty".into()));
        }
        if let Some(a) = self.amount {
            if a.is_sign_negative() && !a.is_zero() {
                return Err(("amount", format!("must be ≥ 0, got {a}")));
            }
        }
        if self.qty == 0 && self.amount.is_none_or(|a| a.is_zero()) {
            return Err((
                "qty",
                "a refund line returns a qty ≥ 1 or an amount > 0".into(),
            ));
        }
        Ok(())
    }
}

/// What happened in a community (a WeChat group, a forum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CommunityAction {
    /// Joined the community.
    Join,
    /// Posted a message.
    Message,
    /// Left the community.
    Leave,
}

/// The outcome of a touch (a delivery on a channel), in funnel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TouchOutcome {
    /// Handed to the channel.
    Sent,
    /// The channel confirmed delivery.
    Delivered,
    /// The user opened it.
    Opened,
    /// The user clicked through.
    Clicked,
    /// The user converted (ordered) because of it.
    Converted,
}

/// A step in a coupon's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CouponAction {
    /// Issued to the user.
    Issued,
    /// Claimed by the user.
    Claimed,
    /// Used on an order.
    Used,
    /// Expired unused.
    Expired,
}

/// The kind-specific part of an event. On the wire its fields sit beside the envelope's, with
/// the variant's name in `"kind"` (see [`Event`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum EventBody {
    /// Identifiers seen together in one record.
    Identify {
        /// At least one identifier.
        ids: Vec<Identifier>,
    },
    /// A user registered in the source program.
    Register {
        /// The person: an identifier (a new one makes a new person) or the OneID of a known person.
        user: UserRef,
    },
    /// A qualifying activity (login, app open, ...).
    Activity {
        /// The person: an identifier (a new one makes a new person) or the OneID of a known person.
        user: UserRef,
        /// The activity type, e.g. `"login"`.
        #[serde(rename = "type")]
        activity: String,
    },
    /// An order, counted once per source program and order id.
    Order {
        /// The person: an identifier (a new one makes a new person) or the OneID of a known person.
        user: UserRef,
        /// The order's id in its platform.
        order_id: String,
        /// The amount paid (a plain decimal string, ≥ 0: see [`crate::money`]).
        #[serde(with = "crate::money::plain")]
        amount: Decimal,
        /// Sales channel.
        #[serde(default)]
        channel: String,
        /// Sales region, as the source names it (empty: not given).
        #[serde(default)]
        region: String,
        /// Store, for offline orders.
        #[serde(default)]
        store: String,
        /// The order's lines (empty: the source did not give them).
        #[serde(default)]
        lines: Vec<OrderLine>,
    },
    /// A refund of (part of) an order.
    Refund {
        /// The person: an identifier (a new one makes a new person) or the OneID of a known person.
        user: UserRef,
        /// The refunded order.
        order_id: String,
        /// The amount refunded (a plain decimal string, ≥ 0).
        #[serde(with = "crate::money::plain")]
        amount: Decimal,
        /// The order lines refunded, if the channel says which: loyalty then gives back what
        /// those lines earned (see [`RefundLine`]) rather than the `amount`'s share.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lines: Vec<RefundLine>,
    },
    /// A typed behaviour (sign-in, review, share, ...), for growth value and preferences.
    Behavior {
        /// The person: an identifier (a new one makes a new person) or the OneID of a known person.
        user: UserRef,
        /// The behaviour type.
        #[serde(rename = "type")]
        behavior: String,
        /// The category it concerns, if any.
        #[serde(default)]
        category: String,
        /// The channel or touchpoint, if any.
        #[serde(default)]
        channel: String,
    },
    /// Community activity.
    Community {
        /// The person: an identifier (a new one makes a new person) or the OneID of a known person.
        user: UserRef,
        /// Which community.
        community: String,
        /// What happened.
        action: CommunityAction,
        /// For a message that replies to someone: the user replied to.
        #[serde(default)]
        reply_to: Option<UserRef>,
    },
    /// A delivery on a channel and its outcome.
    Touch {
        /// The person: an identifier (a new one makes a new person) or the OneID of a known person.
        user: UserRef,
        /// The channel (push, sms, community, wechat, offline, ...).
        channel: String,
        /// The content id.
        content: String,
        /// The automation rule that planned it, if any.
        #[serde(default)]
        rule: Option<String>,
        /// How far the delivery went: sent, delivered, opened, clicked or converted.
        outcome: TouchOutcome,
    },
    /// A coupon step.
    Coupon {
        /// The person: an identifier (a new one makes a new person) or the OneID of a known person.
        user: UserRef,
        /// The coupon instance id.
        coupon_id: String,
        /// The template it came from.
        #[serde(default)]
        template: String,
        /// What happened.
        action: CouponAction,
    },
}

/// An event: envelope plus body.
///
/// The wire shape is one flat object: `kind`, `key`, `time`, `source` and the body's fields.
/// Serde impls are written by hand (not `#[serde(flatten)]` with an internally tagged enum)
/// because the derived ones buffer the input and lose the path of a bad field; these report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The idempotency key: a replayed key changes nothing.
    pub key: String,
    /// When it happened (UTC; written on the wire as RFC 3339 with any zone).
    pub time: DateTime<Utc>,
    /// Where it came from.
    pub source: Source,
    /// What happened.
    pub body: EventBody,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let body = serde_json::to_value(&self.body).map_err(S::Error::custom)?;
        let mut map = match body {
            serde_json::Value::Object(outer) => outer
                .into_iter()
                .next()
                .and_then(|(_, inner)| match inner {
                    serde_json::Value::Object(m) => Some(m),
                    _ => None,
                })
                .ok_or_else(|| S::Error::custom("event body is not a struct variant"))?,
            _ => return Err(S::Error::custom("event body is not a struct variant")),
        };
        map.insert("kind".into(), self.kind_name().into());
        map.insert("key".into(), self.key.clone().into());
        map.insert(
            "time".into(),
            self.time
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .into(),
        );
        map.insert(
            "source".into(),
            serde_json::to_value(&self.source).map_err(S::Error::custom)?,
        );
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::deserialize(d)?;
        Event::from_map(map).map_err(serde::de::Error::custom)
    }
}

/// The earliest event time accepted: 1970-01-01T00:00:00Z (seconds since the Unix epoch).
pub const EARLIEST_TIME_SECS: i64 = 0;

/// The first event time refused: 2100-01-01T00:00:00Z (seconds since the Unix epoch). Accepted
/// event times lie in `[1970-01-01T00:00:00Z, 2100-01-01T00:00:00Z)`.
pub const END_TIME_SECS: i64 = 4_102_444_800;

impl Event {
    /// Every event kind's wire name ([`Event::kind_name`]). The order is persisted (idempotency
    /// receipts store a kind as its index here), so a new kind goes at the end.
    pub const KINDS: &'static [&'static str] = &[
        "identify",
        "register",
        "activity",
        "order",
        "refund",
        "behavior",
        "community",
        "touch",
        "coupon",
    ];

    /// The wire name of the event's kind.
    pub fn kind_name(&self) -> &'static str {
        match &self.body {
            EventBody::Identify { .. } => "identify",
            EventBody::Register { .. } => "register",
            EventBody::Activity { .. } => "activity",
            EventBody::Order { .. } => "order",
            EventBody::Refund { .. } => "refund",
            EventBody::Behavior { .. } => "behavior",
            EventBody::Community { .. } => "community",
            EventBody::Touch { .. } => "touch",
            EventBody::Coupon { .. } => "coupon",
        }
    }

    /// The user the event is about (none for `identify`).
    pub fn user(&self) -> Option<&UserRef> {
        match &self.body {
            EventBody::Identify { .. } => None,
            EventBody::Register { user }
            | EventBody::Activity { user, .. }
            | EventBody::Order { user, .. }
            | EventBody::Refund { user, .. }
            | EventBody::Behavior { user, .. }
            | EventBody::Community { user, .. }
            | EventBody::Touch { user, .. }
            | EventBody::Coupon { user, .. } => Some(user),
        }
    }

    /// Parse one event from JSON, naming the offending field on error.
    ///
    /// # Errors
    ///
    /// `invalid_event` naming the field: text that is not a JSON object, a missing or
    /// malformed envelope field (`kind`, `key`, `time` without a zone, `source`), a body field of
    /// the wrong type or unknown, or a rule of [`Event::validate`].
    pub fn from_json(json: &str) -> Result<Event, Error> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::invalid_event("", format!("not valid JSON: {e}")))?;
        match value {
            serde_json::Value::Object(map) => Event::from_map(map),
            _ => Err(Error::invalid_event("", "an event is a JSON object")),
        }
    }

    /// Parse one event from a JSON object, naming the offending field on error, and validate it.
    ///
    /// # Errors
    ///
    /// As [`Event::from_json`].
    pub fn from_map(mut map: serde_json::Map<String, serde_json::Value>) -> Result<Event, Error> {
        let kind: String = take(&mut map, "kind")?;
        let key: String = take(&mut map, "key")?;
        let time: String = take(&mut map, "time")?;
        let time = rfc3339::parse(&time).map_err(|e| Error::invalid_event("time", e))?;
        let source: Source = take(&mut map, "source")?;
        // The body as an externally tagged enum: no buffering, so the path survives.
        let tagged = serde_json::Value::Object(
            std::iter::once((kind.clone(), serde_json::Value::Object(map))).collect(),
        );
        let body: EventBody = serde_path_to_error::deserialize(tagged).map_err(|e| {
            let path = e.path().to_string();
            let reason = e.into_inner().to_string();
            let field = path
                .strip_prefix(kind.as_str())
                .map(|p| p.trim_start_matches('.'))
                .unwrap_or("kind");
            Error::invalid_event(field, reason)
        })?;
        let event = Event {
            key,
            time,
            source,
            body,
        };
        event.validate()?;
        Ok(event)
    }

    /// Check the rules serde cannot express: non-empty keys and names, amounts ≥ 0, qty ≥ 1.
    ///
    /// # Errors
    ///
    /// `invalid_event` naming the field that breaks a rule.
    pub fn validate(&self) -> Result<(), Error> {
        fn non_empty(field: &str, v: &str) -> Result<(), Error> {
            if v.trim().is_empty() {
                Err(Error::invalid_event(field, "must not be empty"))
            } else {
                Ok(())
            }
        }
        fn non_negative(field: &str, v: &Decimal) -> Result<(), Error> {
            if v.is_sign_negative() && !v.is_zero() {
                Err(Error::invalid_event(field, format!("must be ≥ 0, got {v}")))
            } else {
                Ok(())
            }
        }
        non_empty("key", &self.key)?;
        non_empty("source.platform", &self.source.platform)?;
        non_empty("source.program", &self.source.program)?;
        match &self.body {
            EventBody::Identify { ids } => {
                if ids.is_empty() {
                    return Err(Error::invalid_event("ids", "needs at least one identifier"));
                }
            }
            EventBody::Activity { activity, .. } => non_empty("type", activity)?,
            EventBody::Behavior { behavior, .. } => non_empty("type", behavior)?,
            EventBody::Order {
                order_id,
                amount,
                lines,
                ..
            } => {
                non_empty("order_id", order_id)?;
                non_negative("amount", amount)?;
                for (i, l) in lines.iter().enumerate() {
                    non_empty(&format!("lines[{i}].sku"), &l.sku)?;
                    non_negative(&format!("lines[{i}].price"), &l.price)?;
                    if l.qty == 0 {
                        return Err(Error::invalid_event(
                            format!("lines[{i}].qty"),
                            "must be ≥ 1",
                        ));
                    }
                }
            }
            EventBody::Refund {
                order_id,
                amount,
                lines,
                ..
            } => {
                non_empty("order_id", order_id)?;
                non_negative("amount", amount)?;
                for (i, l) in lines.iter().enumerate() {
                    l.check()
                        .map_err(|(f, why)| Error::invalid_event(format!("lines[{i}].{f}"), why))?;
                }
            }
            EventBody::Community { community, .. } => non_empty("community", community)?,
            EventBody::Touch {
                channel, content, ..
            } => {
                non_empty("channel", channel)?;
                non_empty("content", content)?;
            }
            EventBody::Coupon { coupon_id, .. } => non_empty("coupon_id", coupon_id)?,
            EventBody::Register { .. } => {}
        }
        Ok(())
    }
}

impl Event {
    /// The bounds of intake (checked by the engine, which knows the currency): the event's
    /// time lies in the window `[1970-01-01, 2100-01-01)` UTC ([`EARLIEST_TIME_SECS`],
    /// [`END_TIME_SECS`]), and every amount — an order's `amount` and line `price`s and line
    /// values (`price × qty`), a refund's `amount` and line `amount`s — passes
    /// [`money::check`](crate::money::check) with the currency's `minor_units`. Out of range is
    /// [`Error::OutOfRange`] naming the field.
    ///
    /// # Errors
    ///
    /// `out_of_range` naming the first field out of its bounds.
    ///
    /// ```
    /// use userops::Event;
    /// let e = Event::from_json(r#"{"kind": "order", "key": "k", "time": "2026-01-05T10:00:00Z",
    ///     "source": {"platform": "app", "program": "b"}, "user": {"oneid": 1},
    ///     "order_id": "o1", "amount": "10.005"}"#).unwrap();
    /// let err = e.check_bounds(2).unwrap_err();
    /// assert_eq!(err.field(), Some("amount"));
    /// ```
    pub fn check_bounds(&self, minor_units: u32) -> Result<(), Error> {
        use crate::money::check;
        let secs = self.time.timestamp();
        if !(EARLIEST_TIME_SECS..END_TIME_SECS).contains(&secs) {
            return Err(Error::OutOfRange {
                field: "time".into(),
                reason: format!(
                    "{} is outside the accepted window [1970-01-01T00:00:00Z, 2100-01-01T00:00:00Z)",
                    self.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
            });
        }
        match &self.body {
            EventBody::Order { amount, lines, .. } => {
                check("amount", *amount, minor_units)?;
                for (i, l) in lines.iter().enumerate() {
                    check(&format!("lines[{i}].price"), l.price, minor_units)?;
                    crate::money::line_value(l.price, Decimal::from(l.qty)).map_err(|reason| {
                        Error::OutOfRange {
                            field: format!("lines[{i}]"),
                            reason,
                        }
                    })?;
                }
            }
            EventBody::Refund { amount, lines, .. } => {
                check("amount", *amount, minor_units)?;
                for (i, l) in lines.iter().enumerate() {
                    if let Some(a) = l.amount {
                        check(&format!("lines[{i}].amount"), a, minor_units)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Event {
    /// The content fingerprint idempotency compares: a key replayed with the same fingerprint
    /// is the same event (the first receipt comes back), with another it is
    /// [`Error::DuplicateKey`]. It is FNV-1a ([`crate::util::fingerprint`]) over the event's
    /// JSON in canonical form, so that what means the same is the same event:
    ///
    /// - amounts are written with the decimal places their value needs, but at least two
    ///   (`"10"`, `"10.0"` and `"10.00"` are all `"10.00"`);
    /// - the identifiers of an `identify` event are in sorted order (identifiers are already
    ///   normalized when parsed, and times are UTC).
    ///
    /// Anything else that differs (another amount, an order's lines in another order, another
    /// time) is other content. An event already in canonical form has the fingerprint older
    /// builds stored (they hashed the JSON as given).
    ///
    /// ```
    /// use userops::Event;
    /// let ev = |amount: &str| Event::from_json(&format!(r#"{{"kind": "order",
    ///     "key": "k", "time": "2026-01-05T10:00:00Z", "source": {{"platform": "app",
    ///     "program": "b"}}, "user": {{"oneid": 1}}, "order_id": "o1", "amount": "{amount}"}}"#)).unwrap();
    /// assert_eq!(ev("10.0").fingerprint(), ev("10.00").fingerprint());
    /// assert_ne!(ev("10.01").fingerprint(), ev("10.00").fingerprint());
    /// ```
    pub fn fingerprint(&self) -> u64 {
        match self.canonical() {
            Some(c) => c.fingerprint_as_given(),
            None => self.fingerprint_as_given(),
        }
    }

    /// The fingerprint of the event's JSON as given (what builds before the canonical form
    /// stored in receipts).
    pub(crate) fn fingerprint_as_given(&self) -> u64 {
        // An event always serializes (every map key is a string).
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        crate::util::fingerprint(&bytes)
    }

    /// The event in canonical form, or `None` when it already is.
    fn canonical(&self) -> Option<Event> {
        fn canon(d: Decimal) -> Decimal {
            let mut n = d.normalize();
            if n.scale() < 2 {
                n.rescale(2);
            }
            n
        }
        // Equal values with equal scales print the same: only the scale needs a look.
        let off = |d: &Decimal| canon(*d).scale() != d.scale();
        let needed = match &self.body {
            EventBody::Identify { ids } => ids.windows(2).any(|w| w[0] > w[1]),
            EventBody::Order { amount, lines, .. } => {
                off(amount) || lines.iter().any(|l| off(&l.price))
            }
            EventBody::Refund { amount, lines, .. } => {
                off(amount) || lines.iter().any(|l| l.amount.as_ref().is_some_and(off))
            }
            _ => false,
        };
        if !needed {
            return None;
        }
        let mut c = self.clone();
        match &mut c.body {
            EventBody::Identify { ids } => ids.sort(),
            EventBody::Order { amount, lines, .. } => {
                *amount = canon(*amount);
                for l in lines {
                    l.price = canon(l.price);
                }
            }
            EventBody::Refund { amount, lines, .. } => {
                *amount = canon(*amount);
                for l in lines {
                    l.amount = l.amount.map(canon);
                }
            }
            _ => {}
        }
        Some(c)
    }
}

fn take<T: serde::de::DeserializeOwned>(
    map: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<T, Error> {
    let value = map
        .remove(name)
        .ok_or_else(|| Error::invalid_event(name, "missing field"))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            name.to_owned()
        } else {
            format!("{name}.{path}")
        };
        Error::invalid_event(field, e.into_inner().to_string())
    })
}

/// Optional RFC 3339 timestamps (`null` or absent is `None`).
pub mod rfc3339_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write as RFC 3339 in UTC, or `null`.
    ///
    /// # Errors
    ///
    /// The serializer's own.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    /// Read RFC 3339 with a zone, or `null`.
    ///
    /// # Errors
    ///
    /// As [`rfc3339::deserialize`](super::rfc3339::deserialize).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::rfc3339::parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// RFC 3339 timestamps that must carry a zone; stored as UTC.
pub mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write as RFC 3339 in UTC.
    ///
    /// # Errors
    ///
    /// The serializer's own.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    /// Read RFC 3339 with a zone (`Z` or `±hh:mm`).
    ///
    /// # Errors
    ///
    /// The deserializer's for a value that is no string; [`parse`]'s reason for one that is not
    /// RFC 3339 with a zone.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    /// Parse RFC 3339 with a zone, explaining a failure.
    ///
    /// # Errors
    ///
    /// Why, for text that is not RFC 3339 with a zone (a naive time has none).
    pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                format!(
                    "timestamp {s:?} is not RFC 3339 with a zone (e.g. 2026-01-05T10:00:00+08:00): {e}"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> Error {
        Event::from_json(json).unwrap_err()
    }

    #[test]
    fn spec_examples_parse() {
        let order = r#"{"kind": "order", "key": "k", "time": "2026-01-05T10:00:00+08:00",
           "source": {"platform": "app", "program": "brand-a"}, "user": {"oneid": 42},
           "order_id": "o-1", "amount": "399.00", "channel": "app", "region": "shanghai", "store": "s-01",
           "lines": [{"sku": "s1", "category": "fruit", "price": "99.50", "qty": 2}]}"#;
        let e = Event::from_json(order).unwrap();
        assert_eq!(e.user(), Some(&UserRef::OneId(OneId(42))));
        match e.body {
            EventBody::Order { amount, lines, .. } => {
                assert_eq!(amount.to_string(), "399.00");
                assert_eq!(lines[0].qty, 2);
            }
            other => panic!("{other:?}"),
        }
        let act = r#"{"kind": "activity", "key": "a", "time": "2026-01-05T10:00:00Z",
           "source": {"platform": "app", "program": "p"},
           "user": {"kind": "member_no", "value": "M1"}, "type": "login"}"#;
        assert_eq!(Event::from_json(act).unwrap().kind_name(), "activity");
    }

    #[test]
    fn errors_name_the_field() {
        let base = r#""key": "k", "time": "2026-01-05T10:00:00+08:00", "source": {"platform": "p", "program": "q"}"#;
        let e = err(&format!(r#"{{"kind": "telepathy", {base}}}"#));
        assert!(e.to_string().contains("telepathy"), "{e}");
        let e = err(&format!(
            r#"{{"kind": "activity", {base}, "type": "login"}}"#
        ));
        assert!(e.to_string().contains("user"), "{e}");
        let e = err(
            r#"{"kind": "activity", "key": "k", "time": "2026-01-05 10:00:00", "source": {"platform": "p", "program": "q"}, "user": {"oneid": 1}, "type": "x"}"#,
        );
        assert!(e.to_string().contains("time"), "{e}");
        let e = err(&format!(
            r#"{{"kind": "identify", {base}, "ids": [{{"kind": "phone", "value": "12"}}]}}"#
        ));
        assert_eq!(e.field(), Some("ids[0]"), "{e}");
        let e = err(&format!(
            r#"{{"kind": "order", {base}, "user": {{"oneid": 1}}, "order_id": "o", "amount": "-1"}}"#
        ));
        assert_eq!(e.field(), Some("amount"));
        let e = err(&format!(
            r#"{{"kind": "order", {base}, "user": {{"oneid": 1}}, "order_id": "o", "amount": 3.5}}"#
        ));
        assert!(e.to_string().contains("amount"), "{e}");
        assert!(matches!(err("{not json"), Error::InvalidEvent { .. }));
    }
}
