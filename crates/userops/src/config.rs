//! Engine configuration, built with [`ConfigBuilder`].
//!
//! ```
//! use userops::{Config, Period};
//! let cfg = Config::builder()
//!     .business_utc_offset_hours(8)
//!     .period(Period::Month)
//!     .custom_id_kind("loyalty_card")
//!     .build()
//!     .unwrap();
//! assert_eq!(cfg.business_tz().local_minus_utc(), 8 * 3600);
//! ```

use std::collections::BTreeSet;

use chrono::FixedOffset;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::IdKind;

/// The length of the period that lifecycle stages, active rates and cohorts are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Period {
    /// A calendar day in the business time zone.
    Day,
    /// An ISO week (Monday to Sunday) in the business time zone.
    Week,
    /// A calendar month in the business time zone (the default).
    #[default]
    Month,
}

/// Engine configuration. Immutable once built; serialized with the engine's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    business_utc_offset_seconds: i32,
    period: Period,
    custom_id_kinds: BTreeSet<String>,
    /// When set, identifiers are replaced by salted hashes at intake (SPEC §9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identifier_salt: Option<String>,
    /// Decimal places of the currency's minor unit (written only when not the default 2, so
    /// configurations of older builds keep their bytes).
    #[serde(
        default = "crate::money::default_minor_units",
        skip_serializing_if = "crate::money::is_default_minor_units"
    )]
    currency_minor_units: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            business_utc_offset_seconds: 8 * 3600,
            period: Period::Month,
            custom_id_kinds: BTreeSet::new(),
            identifier_salt: None,
            currency_minor_units: crate::money::default_minor_units(),
        }
    }
}

impl Config {
    /// Start from the defaults: business time zone +08:00, monthly periods, no custom kinds.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
            error: None,
        }
    }

    /// The business time zone, in which periods (days, weeks, months) begin and end.
    pub fn business_tz(&self) -> FixedOffset {
        FixedOffset::east_opt(self.business_utc_offset_seconds)
            .expect("offset validated by the builder")
    }

    /// The lifecycle period.
    pub fn period(&self) -> Period {
        self.period
    }

    /// The salt identifiers are hashed with at intake, when hashing is on
    /// (see [`ConfigBuilder::hash_identifiers`]).
    pub fn identifier_salt(&self) -> Option<&str> {
        self.identifier_salt.as_deref()
    }

    /// Decimal places of the currency's minor unit: every amount at intake and in carts has at
    /// most this many (see [`crate::money`]). Default 2 (cents).
    pub fn currency_minor_units(&self) -> u32 {
        self.currency_minor_units
    }

    /// Whether `kind` is accepted: every built-in kind, and custom kinds registered here.
    pub fn accepts_kind(&self, kind: &IdKind) -> bool {
        match kind {
            IdKind::Custom(name) => self.custom_id_kinds.contains(name),
            _ => true,
        }
    }
}

/// Builder for [`Config`]. Errors are kept and reported by [`ConfigBuilder::build`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
    error: Option<Error>,
}

impl ConfigBuilder {
    /// Business time zone as whole hours east of UTC (-12 to +14).
    pub fn business_utc_offset_hours(self, hours: i32) -> Self {
        self.business_utc_offset_seconds(hours.saturating_mul(3600))
    }

    /// Business time zone as seconds east of UTC.
    pub fn business_utc_offset_seconds(mut self, seconds: i32) -> Self {
        if FixedOffset::east_opt(seconds).is_none() || !(-12 * 3600..=14 * 3600).contains(&seconds)
        {
            self.error.get_or_insert(Error::invalid_argument(
                "business_utc_offset",
                format!("{seconds} s is not a UTC offset between -12:00 and +14:00"),
            ));
        } else {
            self.config.business_utc_offset_seconds = seconds;
        }
        self
    }

    /// The lifecycle period.
    pub fn period(mut self, period: Period) -> Self {
        self.config.period = period;
        self
    }

    /// Accept identifiers of a custom kind (lower-case letters, digits and `_`).
    pub fn custom_id_kind(mut self, name: &str) -> Self {
        match name.parse::<IdKind>() {
            Ok(IdKind::Custom(n)) => {
                self.config.custom_id_kinds.insert(n);
            }
            Ok(_) => {} // a built-in kind is always accepted
            Err(e) => {
                self.error.get_or_insert(e.into());
            }
        }
        self
    }

    /// Store identifiers as salted hashes (`sha256:<hex>`) instead of plain values: every
    /// identifier in a command is hashed at intake, before the command is executed or journaled,
    /// so the plain value never reaches the state, the journal or the snapshots. Lookups hash
    /// the same way, so `resolve` with a plain phone number still finds its person.
    ///
    /// The salt is part of the configuration and so is kept in the store's snapshots: the
    /// hashing protects exports and casual readers of the database, not against someone who
    /// holds the database file itself. The salt must not be empty.
    pub fn hash_identifiers(mut self, salt: &str) -> Self {
        if salt.is_empty() {
            self.error.get_or_insert(Error::invalid_argument(
                "identifier_salt",
                "the salt must not be empty",
            ));
        } else {
            self.config.identifier_salt = Some(salt.to_owned());
        }
        self
    }

    /// Decimal places of the currency's minor unit, 0 to 2 (default 2: cents; 0 for currencies
    /// without a minor unit, such as JPY). An amount with more decimal places is refused at
    /// intake and in carts with [`Error::OutOfRange`]. Currencies
    /// with three (KWD, BHD) are not supported: the promotion engine computes in cents.
    pub fn currency_minor_units(mut self, digits: u32) -> Self {
        if digits > crate::money::MAX_MINOR_UNITS {
            self.error.get_or_insert(Error::invalid_argument(
                "currency_minor_units",
                format!(
                    "{digits} decimal places; at most {} (the promotion engine computes in cents)",
                    crate::money::MAX_MINOR_UNITS
                ),
            ));
        } else {
            self.config.currency_minor_units = digits;
        }
        self
    }

    /// Finish, or report the first invalid setting.
    ///
    /// # Errors
    ///
    /// The first invalid setting given: `invalid_argument` for a UTC offset outside -12:00 to
    /// +14:00, an empty identifier salt or too many currency minor units (naming the setting);
    /// `invalid_identifier` for a custom identifier kind that is not a kind name.
    pub fn build(self) -> Result<Config, Error> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.config),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = Config::default();
        assert_eq!(c.business_tz().local_minus_utc(), 28800);
        assert_eq!(c.period(), Period::Month);
        assert!(!c.accepts_kind(&IdKind::Custom("card".into())));
        assert!(Config::builder()
            .business_utc_offset_hours(20)
            .build()
            .is_err());
        assert!(Config::builder()
            .custom_id_kind("Bad Kind")
            .build()
            .is_err());
        let c = Config::builder().custom_id_kind("card").build().unwrap();
        assert!(c.accepts_kind(&IdKind::Custom("card".into())));
        assert_eq!(Config::default().currency_minor_units(), 2);
        assert!(Config::builder().currency_minor_units(3).build().is_err());
        let yen = Config::builder().currency_minor_units(0).build().unwrap();
        assert_eq!(yen.currency_minor_units(), 0);
        // The default is not written, so a configuration keeps the bytes older builds wrote.
        let text = serde_json::to_string(&Config::default()).unwrap();
        assert!(!text.contains("minor"), "{text}");
        let back: Config = serde_json::from_str(&text).unwrap();
        assert_eq!(back, Config::default());
        let text = serde_json::to_string(&yen).unwrap();
        assert_eq!(serde_json::from_str::<Config>(&text).unwrap(), yen);
    }
}
