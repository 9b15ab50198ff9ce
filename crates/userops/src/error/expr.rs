//! The audience expression error, public as [`crate::tags::ExprError`] (and at the crate
//! root). It lives here, beside [`Error`](super::Error) that wraps it, so that the error module
//! depends on no domain module; its constructors stay with the parser (`tags::expr`).

/// An error in an audience expression, with the 0-based character position of the mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {}{}", position + 1, suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct ExprError {
    /// 0-based character offset into the expression text.
    pub position: usize,
    /// What is wrong.
    pub message: String,
    /// The nearest known name, when the mistake is an unknown name.
    pub suggestion: Option<String>,
}
