//! The engine's error type and the stable codes the bindings map it to.
//!
//! Each domain module has its own error enum; [`Error`] wraps them so that a caller of
//! [`Engine::execute`](crate::Engine::execute) matches one type. [`ErrorCode`] is the stable,
//! numbered face of an error: the C ABI returns it as a status, Python picks the exception class
//! from its name. Codes are never renumbered.

use serde::Serialize;

use crate::ids::InvalidIdentifier;

pub(crate) mod expr;
pub(crate) mod loyalty;

/// Everything that can go wrong in a call. A call that returns an error changed nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value that is not a valid identifier of its kind.
    #[error(transparent)]
    InvalidIdentifier(#[from] InvalidIdentifier),
    /// An event that is malformed: bad JSON, unknown kind, missing or bad field.
    #[error("invalid event{}: {reason}", at(field))]
    InvalidEvent {
        /// The path of the offending field (`lines[0].price`), empty when it is the whole event.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A call argument that is malformed.
    #[error("invalid argument{}: {reason}", at(field))]
    InvalidArgument {
        /// The path of the offending argument.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A method name that the engine does not know.
    #[error("unknown method {0:?}")]
    UnknownMethod(String),
    /// An idempotency key reused with different content.
    #[error("idempotency key {key:?} was already used for different content")]
    DuplicateKey {
        /// The idempotency key, as given.
        key: String,
    },
    /// An order id already ingested from the same source program under another idempotency
    /// key (an order is counted once: see [`crate::orders`]).
    #[error(
        "order {order_id:?} of program {program:?} was already ingested under key {first_key:?}"
    )]
    DuplicateOrder {
        /// The source program.
        program: String,
        /// The order id.
        order_id: String,
        /// The idempotency key the order was first ingested under.
        first_key: String,
    },
    /// A reference to something that does not exist.
    #[error("{what} not found: {id}")]
    NotFound {
        /// What was looked for (`"oneid"`, `"program"`, ...).
        what: &'static str,
        /// The id that was not found.
        id: String,
    },
    /// A number out of range: a count or amount that would overflow or must be positive.
    #[error("{field}: {reason}")]
    OutOfRange {
        /// The path of the offending field, e.g. `lines[0].price`.
        field: String,
        /// What is wrong, for a person to read; not stable text (match on the variant, or its code).
        reason: String,
    },
    /// An audience expression that does not parse or does not fit the tags it names.
    #[error("audience expression: {0}")]
    AudienceSyntax(#[from] expr::ExprError),
    /// A loyalty error (ledger, tiers, benefits, tasks).
    #[error(transparent)]
    Loyalty(#[from] loyalty::LoyaltyError),
    /// A model fit (maximum likelihood, IRLS) that did not converge; nothing was fitted.
    #[error("{0}")]
    NotConverged(String),
    /// A promotion's budget cannot cover a commit.
    #[error("budget of {promotion:?} exhausted: {reason}")]
    BudgetExhausted {
        /// The promotion's id.
        promotion: String,
        /// What the budget lacks, for a person to read; not stable text.
        reason: String,
    },
    /// A promotion's usage limit (per user, total) or a coupon template's stock is reached.
    #[error("limit of {promotion:?} reached: {reason}")]
    PromotionLimitReached {
        /// The promotion or coupon template.
        promotion: String,
        /// Which limit and its count, for a person to read; not stable text.
        reason: String,
    },
    /// A coupon that cannot be used (or returned) in its state, window or on this cart.
    #[error("coupon {coupon:?} cannot be used: {reason}")]
    CouponUnusable {
        /// The coupon's instance id.
        coupon: String,
        /// What is wrong, for a person to read; not stable text (match on the variant, or its code).
        reason: String,
    },
    /// The durable store failed: I/O, a locked, read-only or foreign file, a newer schema.
    /// Raised by the store, never by the in-memory engine.
    #[error("storage: {0}")]
    Storage(String),
    /// The durable store holds a corrupt record (journal record or snapshot `seq`).
    #[error("corrupt store at record {seq}: {reason}")]
    Corrupt {
        /// The sequence number of the bad record.
        seq: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// A bug: an invariant the engine relies on did not hold. Never expected; reported rather
    /// than panicking so that no host process is taken down.
    #[error("internal error: {0}")]
    Internal(String),
}

fn at(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!(" at `{field}`")
    }
}

impl Error {
    /// An [`Error::InvalidEvent`].
    pub fn invalid_event(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidEvent {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::InvalidArgument`].
    pub fn invalid_argument(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidIdentifier(_) => ErrorCode::InvalidIdentifier,
            Error::InvalidEvent { .. } => ErrorCode::InvalidEvent,
            Error::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            Error::UnknownMethod(_) => ErrorCode::UnknownMethod,
            Error::DuplicateKey { .. } => ErrorCode::DuplicateKey,
            Error::DuplicateOrder { .. } => ErrorCode::DuplicateOrder,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::OutOfRange { .. } => ErrorCode::OutOfRange,
            Error::AudienceSyntax(_) => ErrorCode::AudienceSyntax,
            Error::Loyalty(e) => e.code(),
            Error::NotConverged(_) => ErrorCode::NotConverged,
            Error::BudgetExhausted { .. } => ErrorCode::BudgetExhausted,
            Error::PromotionLimitReached { .. } => ErrorCode::PromotionLimitReached,
            Error::CouponUnusable { .. } => ErrorCode::CouponUnusable,
            Error::Storage(_) => ErrorCode::Storage,
            Error::Corrupt { .. } => ErrorCode::Corrupt,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The field the error is about, where there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidEvent { field, .. }
            | Error::InvalidArgument { field, .. }
            | Error::OutOfRange { field, .. } => Some(field),
            Error::DuplicateOrder { .. } => Some("order_id"),
            Error::Loyalty(e) => e.field(),
            _ => None,
        }
    }

    /// The error as the JSON object the bindings hand to their callers:
    /// `{"code": "invalid_event", "status": 3, "message": "...", "field": "lines[0].qty"}`.
    pub fn to_report(&self) -> ErrorReport {
        let code = self.code();
        ErrorReport {
            code: code.name(),
            status: code as i32,
            message: self.to_string(),
            field: self.field().map(str::to_owned),
            position: match self {
                Error::AudienceSyntax(e) => Some(e.position),
                _ => None,
            },
        }
    }
}

/// The serializable face of an [`Error`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReport {
    /// The code's name, e.g. `"invalid_identifier"`.
    pub code: &'static str,
    /// The code's number (the C status).
    pub status: i32,
    /// A human-readable message.
    pub message: String,
    /// The offending field, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For an audience expression error: the 0-based character position of the mistake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}

/// Declares [`ErrorCode`] with its number and snake_case name, and [`ErrorCode::ALL`] from the
/// same list: a code cannot be left out of the table the bindings test against.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $code:ident = $n:literal => $name:literal,)*) => {
        /// Stable error codes. `0` is success (used only by the C ABI).
        ///
        /// Not `#[non_exhaustive]` on purpose: the bindings map every code with an exhaustive
        /// `match` (a C status, a Python exception class), so a new code fails their build
        /// instead of falling into a catch-all.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum ErrorCode {
            $($(#[$doc])* $code = $n,)*
        }

        impl ErrorCode {
            /// Every code, for the bindings' tables.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code,)*];

            /// The code's snake_case name.
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => $name,)*
                }
            }
        }
    };
}

error_codes! {
    /// Success: never the code of an [`Error`]; the C ABI returns it when a call succeeds.
    Ok = 0 => "ok",
    /// A malformed call argument.
    InvalidArgument = 1 => "invalid_argument",
    /// An invalid identifier.
    InvalidIdentifier = 2 => "invalid_identifier",
    /// A malformed event.
    InvalidEvent = 3 => "invalid_event",
    /// An unknown method.
    UnknownMethod = 4 => "unknown_method",
    /// An idempotency key reused with other content.
    DuplicateKey = 5 => "duplicate_key",
    /// Something referenced does not exist.
    NotFound = 6 => "not_found",
    /// A number out of range or overflowing.
    OutOfRange = 7 => "out_of_range",
    /// An order id already ingested from its source program under another key.
    DuplicateOrder = 8 => "duplicate_order",
    /// An audience expression error (syntax, unknown tag, type mismatch), with a position.
    AudienceSyntax = 40 => "audience_syntax",
    /// Loyalty: a spend above the balance (and overdraft).
    InsufficientPoints = 50 => "insufficient_points",
    /// Loyalty: an idempotency key reused for a different ledger write.
    LedgerDuplicateKey = 51 => "ledger_duplicate_key",
    /// Loyalty: no points account for the member in the program.
    UnknownAccount = 52 => "unknown_account",
    /// Loyalty: a zero, negative or overflowing amount.
    InvalidAmount = 53 => "invalid_amount",
    /// Loyalty: an expiry at or before the posting time.
    ExpiryInPast = 54 => "expiry_in_past",
    /// Loyalty: not an open pending earn (or nothing left to refund).
    NotPending = 55 => "not_pending",
    /// Loyalty: a benefit or task limit reached.
    LimitReached = 56 => "limit_reached",
    /// Loyalty: a benefit the member's tier does not grant.
    NotEligible = 57 => "not_eligible",
    /// A model fit that did not converge (numbered in the models' block, 70–79).
    NotConverged = 70 => "not_converged",
    /// A promotion budget cannot cover a commit (campaigns).
    BudgetExhausted = 80 => "budget_exhausted",
    /// A promotion limit or coupon stock is reached (campaigns).
    PromotionLimitReached = 81 => "promotion_limit_reached",
    /// A coupon cannot be used in its state, window or on the cart (campaigns).
    CouponUnusable = 82 => "coupon_unusable",
    /// The durable store failed (I/O, locked, read-only or foreign file, newer schema).
    Storage = 90 => "storage",
    /// The durable store holds a corrupt record.
    Corrupt = 91 => "corrupt",
    /// A bug inside the engine (or a panic caught at a boundary).
    Internal = 99 => "internal",
}
