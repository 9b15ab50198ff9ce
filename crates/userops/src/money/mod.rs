//! Money: exact decimals with a precision and a bound.
//!
//! Amounts travel as plain decimal strings (`"399.00"`): digits with at most one decimal point,
//! a leading `-` only to be refused where amounts must be ≥ 0; no exponent (`"1e5"`), no digit
//! separators, no spaces. Every amount accepted at intake (order and refund amounts, line
//! prices and refund line amounts) and in carts (line prices, line values `price × qty`, the
//! subtotal):
//!
//! - has at most the currency's minor-unit digits
//!   ([`Config::currency_minor_units`](crate::Config::currency_minor_units), default 2);
//!   trailing zeros do not count (`"10.000"` is 10);
//! - is at most [`MAX_AMOUNT`], 10¹² currency units.
//!
//! Anything else is [`Error::OutOfRange`] naming the field, and changes nothing. The bound is
//! what keeps every later sum exact: 10¹² is 10¹⁴ cents, so a cart fits the promotion engine's
//! `i64` cents with room for 90,000 of them, and a pool's GMV fits `Decimal` (≈ 7.9 × 10²⁸)
//! for more than 10¹⁶ orders at the maximum each; no module needs to saturate.
//!
//! ```
//! use userops::money;
//! use userops::Decimal;
//! let price: Decimal = money::parse("99.50").unwrap();
//! assert!(money::check("price", price, 2).is_ok());
//! assert!(money::parse("1e5").is_err());
//! let err = money::check("price", money::parse("0.125").unwrap(), 2).unwrap_err();
//! assert_eq!((err.code().name(), err.field()), ("out_of_range", Some("price")));
//! let err = money::check("amount", money::parse("1000000000000.01").unwrap(), 2).unwrap_err();
//! assert!(err.to_string().contains("1000000000000"), "{err}");
//! ```

use rust_decimal::Decimal;

use crate::error::Error;

/// The largest amount accepted anywhere: 10¹² currency units (1,000,000,000,000.00).
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);

/// The most decimal places a currency's minor unit may have (the promotion engine computes in
/// integer cents).
pub const MAX_MINOR_UNITS: u32 = 2;

/// The default minor-unit digits (cents).
pub(crate) fn default_minor_units() -> u32 {
    2
}

pub(crate) fn is_default_minor_units(d: &u32) -> bool {
    *d == default_minor_units()
}

/// The decimal places `d` needs (trailing zeros do not count).
pub fn decimal_places(d: Decimal) -> u32 {
    d.normalize().scale()
}

/// Check an accepted amount: ≥ 0, at most `minor_units` decimal places, at most
/// [`MAX_AMOUNT`]. `field` names it in the error ([`Error::OutOfRange`]).
///
/// # Errors
///
/// `out_of_range` at `field` for a negative amount, one above [`MAX_AMOUNT`], or one with
/// more than `minor_units` decimal places.
pub fn check(field: &str, d: Decimal, minor_units: u32) -> Result<(), Error> {
    let bad = |reason: String| {
        Err(Error::OutOfRange {
            field: field.to_owned(),
            reason,
        })
    };
    if d.is_sign_negative() && !d.is_zero() {
        return bad(format!("{d} is negative; amounts are ≥ 0"));
    }
    if d > MAX_AMOUNT {
        return bad(format!(
            "{d} is above the largest amount accepted, {MAX_AMOUNT} (10^12)"
        ));
    }
    // Almost every amount is written with at most its places: no need to normalize.
    let places = if d.scale() <= minor_units {
        d.scale()
    } else {
        decimal_places(d)
    };
    if places > minor_units {
        return bad(format!(
            "{d} has {places} decimal places; amounts have at most {minor_units} (the currency's \
             minor unit)"
        ));
    }
    Ok(())
}

/// A line's value `price × qty`, refused above [`MAX_AMOUNT`] (`Err` says why; the caller names
/// the line). Within the bounds the product always fits a `Decimal`.
///
/// # Errors
///
/// Why, for a product above [`MAX_AMOUNT`].
pub fn line_value(price: Decimal, qty: Decimal) -> Result<Decimal, String> {
    let value = price.checked_mul(qty).unwrap_or(Decimal::MAX);
    if value > MAX_AMOUNT {
        return Err(format!(
            "price × qty is {value}, above the largest amount accepted, {MAX_AMOUNT}"
        ));
    }
    Ok(value)
}

/// Parse a plain decimal string: an optional leading `-`, digits, and optionally a `.`
/// followed by digits. Refused: exponents, signs other than a leading `-`, separators, spaces,
/// more digits than a `Decimal` holds (29, of which 28 after the point).
///
/// # Errors
///
/// Why, for text that is not a plain decimal as above.
pub fn parse(s: &str) -> Result<Decimal, String> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    // A `Decimal` holds 29 digits, 28 after the point: what it prints always parses back.
    let all_digits = |p: &str, most: usize| {
        !p.is_empty() && p.len() <= most && p.bytes().all(|b| b.is_ascii_digit())
    };
    if !all_digits(int, 29) || !frac.is_none_or(|f| all_digits(f, 28)) {
        return Err(format!(
            "{s:?} is not a plain decimal amount (digits, at most one `.`, no exponent), e.g. \"399.00\""
        ));
    }
    s.parse::<Decimal>()
        .map_err(|e| format!("{s:?} is not a decimal amount: {e}"))
}

/// Serde for amounts as plain decimal strings ([`parse`]); written as `rust_decimal` writes
/// them (plain, with the value's scale).
pub mod plain {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write as a decimal string.
    ///
    /// # Errors
    ///
    /// The serializer's own.
    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::str::serialize(d, s)
    }

    /// Read a plain decimal string (a number is refused: money never travels as a float).
    ///
    /// # Errors
    ///
    /// The deserializer's (a JSON number is no string), or [`parse`](super::parse)'s reason for
    /// a string that is not a plain decimal.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        super::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// [`plain`] for optional amounts (`null` or absent: `None`).
pub mod plain_option {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write as a decimal string, or `null`.
    ///
    /// # Errors
    ///
    /// The serializer's own.
    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::str_option::serialize(d, s)
    }

    /// Read a plain decimal string, or `null`.
    ///
    /// # Errors
    ///
    /// As [`plain::deserialize`](super::plain::deserialize).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Option::<std::borrow::Cow<'_, str>>::deserialize(d)?
            .map(|s| super::parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod largest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_ten_to_the_twelfth() {
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000u64));
        assert!(check("a", MAX_AMOUNT, 2).is_ok());
        assert!(check("a", MAX_AMOUNT + Decimal::new(1, 2), 2).is_err());
    }

    #[test]
    fn plain_decimals_only() {
        for ok in ["0", "10", "10.5", "10.50", "10.000", "-3.25", "007.10"] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "1e5", "1E5", "+1", " 1", "1 ", "1,000", "1_000", ".5", "5.", "1.2.3", "NaN",
            "inf", "--1", "0x10", "１",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // Whatever a Decimal prints parses back (older journals hold such amounts).
        for d in [
            Decimal::MAX,
            Decimal::MIN,
            Decimal::new(1, 28),
            Decimal::from_i128_with_scale(i128::from(u64::MAX), 28),
        ] {
            assert_eq!(parse(&d.to_string()), Ok(d), "{d}");
        }
        assert!(parse(&"1".repeat(30)).is_err());
        assert!(parse(&format!("0.{}", "1".repeat(29))).is_err());
    }

    #[test]
    fn precision_and_sign() {
        let d = |s: &str| parse(s).unwrap();
        assert!(check("p", d("10.000"), 2).is_ok());
        assert!(check("p", d("10.001"), 2).is_err());
        assert!(check("p", d("10.1"), 0).is_err());
        assert!(check("p", d("10.0"), 0).is_ok());
        assert!(check("p", d("-0.00"), 2).is_ok());
        let e = check("lines[0].price", d("-1"), 2).unwrap_err();
        assert_eq!(e.field(), Some("lines[0].price"));
        let e = check("amount", d("1.234"), 2).unwrap_err();
        assert!(e.to_string().contains("3 decimal places"), "{e}");
    }
}
