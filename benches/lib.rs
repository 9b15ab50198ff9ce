//! Criterion benches live in `benches/` of this crate; this library is empty on purpose.
