//! # userops
//!
//! The core of a customer data platform and user-operations system: brands pour users in from
//! many channels; userops unifies them into one person ([`OneId`]), and (as the modules grow)
//! tags, segments, loyalty, lifecycle, models, campaigns and analyses.
//!
//! The core knows nothing of Python, C or disks: the bindings and the store wrap it. Everything
//! that changes state goes through one closed set of [`Command`]s executed by [`Engine`].
//!
//! ```
//! use userops::{Engine, Event};
//! let mut engine = Engine::default();
//! let receipt = engine.ingest(Event::from_json(r#"{"kind": "activity", "key": "a1",
//!     "time": "2026-03-01T09:30:00+08:00", "source": {"platform": "app", "program": "brand-a"},
//!     "user": {"kind": "member_no", "value": "M1"}, "type": "login"}"#)?)?;
//! assert_eq!(receipt.oneid.map(|o| o.0), Some(1));
//! # Ok::<(), userops::Error>(())
//! ```
pub mod analytics;
pub mod campaigns;
pub mod command;
pub mod config;
mod engine;
pub mod error;
pub mod event;
pub mod identity;
pub mod ids;
pub mod lifecycle;
pub mod loyalty;
pub mod models;
pub mod money;
pub mod orders;
mod person;
pub mod privacy;
pub mod profile;
pub mod progress;
mod receipts;
mod sharded;
pub mod shared;
pub mod tags;
pub mod users;
pub mod util;

#[cfg(test)]
mod ingest_order_tests;
#[cfg(test)]
mod module_graph_tests;

pub use command::{
    BatchReceipts, BatchResult, Command, CoreCommand, OnError, Output, Receipt, Resolved, Stats,
};
pub use config::{Config, ConfigBuilder, Period};
pub use engine::{Engine, SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_JSON, SNAPSHOT_FORMAT_UPGRADABLE};
pub use error::{Error, ErrorCode, ErrorReport};
pub use event::{Event, EventBody, Source, UserRef};
pub use ids::{IdKind, Identifier, InvalidIdentifier, OneId};
pub use profile::{MergeReport, ProfileView};
pub use progress::{NoProgress, Progress};
pub use tags::{AudienceResult, ExprError};

/// Money: an exact decimal (re-exported from `rust_decimal`).
pub use rust_decimal::Decimal;

/// The README's Rust example, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
