//! The loyalty module's error type, public as [`crate::loyalty::LoyaltyError`]. It lives here,
//! beside [`Error`](super::Error) that wraps it, so that the error module depends on no domain
//! module (the domain modules depend on it).

use chrono::{DateTime, Utc};

use super::ErrorCode;

/// Everything that can go wrong in the loyalty module. A call that returns one changed nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LoyaltyError {
    /// A spend (or conversion) above what the member holds (plus any overdraft).
    #[error("insufficient points: {available} available, {requested} requested")]
    InsufficientPoints {
        /// What could be spent.
        available: i64,
        /// What was asked.
        requested: i64,
    },
    /// An idempotency key reused for a different ledger write.
    #[error("idempotency key {key:?} was already used for a different loyalty operation")]
    DuplicateKey {
        /// The idempotency key, as given.
        key: String,
    },
    /// No points account for this member in this program.
    #[error("no points account for {user} in program {program:?}")]
    UnknownAccount {
        /// The program's id.
        program: String,
        /// The member as given (`OneID 7`, or the identifier when it names no one).
        user: String,
    },
    /// A zero, negative or overflowing amount.
    #[error("invalid amount at `{field}`: {reason}")]
    InvalidAmount {
        /// The argument's name.
        field: &'static str,
        /// What is wrong, for a person to read; not stable text (match on the variant, or its code).
        reason: String,
    },
    /// An expiry at or before the time of the earn.
    #[error("expiry {expires} is not after the posting time {time}")]
    ExpiryInPast {
        /// The expiry asked for.
        expires: DateTime<Utc>,
        /// The posting time.
        time: DateTime<Utc>,
    },
    /// Posting or voiding something that is not an open pending earn; refunding an order with
    /// nothing left to refund.
    #[error("{key:?}: {state}")]
    NotPending {
        /// The key or order.
        key: String,
        /// What it is instead.
        state: &'static str,
    },
    /// A benefit claimed or a task completed more often than allowed.
    #[error("{what} {id:?}: limit of {limit} reached")]
    LimitReached {
        /// `"benefit"` or `"task"`.
        what: &'static str,
        /// The benefit or task id.
        id: String,
        /// The limit reached (uses or completions allowed).
        limit: u32,
    },
    /// A benefit the member's tier does not grant.
    #[error("{what} {id:?} is not available: {reason}")]
    NotEligible {
        /// `"benefit"`.
        what: &'static str,
        /// The benefit id.
        id: String,
        /// What is wrong, for a person to read; not stable text (match on the variant, or its code).
        reason: String,
    },
    /// A line refund that names no line of the order, or more units or money than are left
    /// to refund.
    #[error("invalid refund at `{field}`: {reason}")]
    InvalidRefund {
        /// The offending field, e.g. `lines[0].qty`.
        field: String,
        /// What is wrong, for a person to read; not stable text (match on the variant, or its code).
        reason: String,
    },
    /// A program id that does not exist.
    #[error("program not found: {0}")]
    UnknownProgram(String),
    /// A program definition that is not valid.
    #[error("invalid program definition at `{field}`: {reason}")]
    InvalidProgram {
        /// The offending field.
        field: String,
        /// What is wrong, for a person to read; not stable text (match on the variant, or its code).
        reason: String,
    },
    /// A malformed argument that is not an amount (an empty idempotency key).
    #[error("invalid argument at `{field}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        field: &'static str,
        /// What is wrong, for a person to read; not stable text (match on the variant, or its code).
        reason: String,
    },
}

impl LoyaltyError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            LoyaltyError::InsufficientPoints { .. } => ErrorCode::InsufficientPoints,
            LoyaltyError::DuplicateKey { .. } => ErrorCode::LedgerDuplicateKey,
            LoyaltyError::UnknownAccount { .. } => ErrorCode::UnknownAccount,
            LoyaltyError::InvalidAmount { .. } | LoyaltyError::InvalidRefund { .. } => {
                ErrorCode::InvalidAmount
            }
            LoyaltyError::ExpiryInPast { .. } => ErrorCode::ExpiryInPast,
            LoyaltyError::NotPending { .. } => ErrorCode::NotPending,
            LoyaltyError::LimitReached { .. } => ErrorCode::LimitReached,
            LoyaltyError::NotEligible { .. } => ErrorCode::NotEligible,
            LoyaltyError::UnknownProgram(_) => ErrorCode::NotFound,
            LoyaltyError::InvalidProgram { .. } | LoyaltyError::InvalidArgument { .. } => {
                ErrorCode::InvalidArgument
            }
        }
    }

    /// The offending field, where there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            LoyaltyError::InvalidAmount { field, .. } => Some(field),
            LoyaltyError::InvalidProgram { field, .. } => Some(field),
            LoyaltyError::InvalidRefund { field, .. } => Some(field),
            LoyaltyError::InvalidArgument { field, .. } => Some(field),
            LoyaltyError::ExpiryInPast { .. } => Some("expires"),
            LoyaltyError::UnknownProgram(_) => Some("program"),
            _ => None,
        }
    }
}
