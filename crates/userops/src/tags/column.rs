//! One indexed column (a tag or an indexed profile attribute) on roaring bitmaps over dense user
//! indexes.
//!
//! * bool: two bitmaps (`true`, `false`);
//! * enum: one bitmap per value; a user may hold several values (list attributes);
//! * number and date: a **bit-sliced index over ranks**. The distinct values are kept sorted in a
//!   dictionary; a user's value is stored as its rank (code), one bitmap per bit of the code.
//!   A range predicate becomes a comparison of codes, evaluated with O'Neil's algorithm in
//!   about two bitmap operations per slice, so its cost depends on `log2(distinct values)` and
//!   not on how many users match (see `benches/README.md` for why this beat a sorted index).

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

/// The type of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ValueType {
    /// true / false.
    Bool,
    /// A string from a set of values (several at once for list attributes).
    Enum,
    /// A number (f64; NaN and infinities are refused).
    Number,
    /// A point in time (UTC, second resolution).
    Date,
}

impl ValueType {
    /// The name used in expressions and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Bool => "bool",
            ValueType::Enum => "enum",
            ValueType::Number => "number",
            ValueType::Date => "date",
        }
    }
}

/// One value of a column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Value {
    /// A bool tag's value.
    Bool(bool),
    /// An enum value.
    Text(String),
    /// A number (finite: the index refuses NaN and infinities).
    Number(f64),
    /// An instant, in UTC.
    #[serde(with = "crate::event::rfc3339")]
    Date(DateTime<Utc>),
}

impl Value {
    /// The type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Bool(_) => ValueType::Bool,
            Value::Text(_) => ValueType::Enum,
            Value::Number(_) => ValueType::Number,
            Value::Date(_) => ValueType::Date,
        }
    }
}

/// Order-preserving key of a number: the IEEE bits with the sign handled (NaN never stored).
pub(crate) fn number_key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

fn number_of_key(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

/// Order-preserving key of a date (seconds since the epoch, sign bit flipped).
pub(crate) fn date_key(t: DateTime<Utc>) -> u64 {
    (t.timestamp() as u64) ^ (1 << 63)
}

/// A date as a date column holds it: whole seconds (what a read of the column gives back).
pub(crate) fn date_as_indexed(t: DateTime<Utc>) -> DateTime<Utc> {
    date_of_key(date_key(t))
}

fn date_of_key(k: u64) -> DateTime<Utc> {
    DateTime::from_timestamp((k ^ (1 << 63)) as i64, 0).unwrap_or_default()
}

/// The union of pairwise disjoint bitmaps (the pieces a bit-sliced walk peels off, one per
/// slice). Sparse pieces (roaring array containers) are merged in one pass over their values:
/// folding them one by one with `|=` re-merges the growing result once per slice, which made a
/// range over a narrowed candidate set cost a multiple of the candidates. Dense pieces (bitmap
/// containers) are OR-ed word by word, which is cheaper than touching every value.
pub(crate) fn union_disjoint(mut pieces: Vec<RoaringBitmap>) -> RoaringBitmap {
    pieces.retain(|b| !b.is_empty());
    if pieces.len() <= 1 {
        return pieces.pop().unwrap_or_default();
    }
    let total: u64 = pieces.iter().map(RoaringBitmap::len).sum();
    let lo = pieces
        .iter()
        .filter_map(RoaringBitmap::min)
        .min()
        .unwrap_or(0);
    let hi = pieces
        .iter()
        .filter_map(RoaringBitmap::max)
        .max()
        .unwrap_or(0);
    let span = u64::from(hi - lo) + 1;
    // Roaring keeps a 2^16-wide chunk as a sorted array below 4,096 values (1/16 density).
    if total * 16 >= span {
        return roaring::MultiOps::union(pieces);
    }
    let mut all: Vec<u32> = Vec::with_capacity(total as usize);
    for p in &pieces {
        all.extend(p.iter());
    }
    // The concatenation is a few sorted runs: the stable sort merges runs in O(n log runs).
    all.sort();
    RoaringBitmap::from_sorted_iter(all).unwrap_or_default()
}

/// Fresh keys between two tries of [`Bsi::fold_partly`].
const PARTIAL_FOLD_EVERY: usize = 1024;

/// A bit-sliced index over dictionary ranks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bsi {
    /// Sorted distinct keys; a code is an index into it. May hold keys no user has any more.
    dict: Vec<u64>,
    /// Bit `i` of every coded user's code.
    slices: Vec<RoaringBitmap>,
    /// Users holding a value (coded or fresh).
    present: RoaringBitmap,
    /// Users whose key was not in `dict` when it was set, with that key, kept out of the
    /// slices. A new key's rank shifts every higher code (a ripple carry over all users), and
    /// a near-unique column such as `gmv` gets a new key at almost every write; so new keys
    /// wait here and are folded in by one rebuild once there are [`Bsi::fold_at`] of them.
    /// Every read adds them back.
    fresh: BTreeMap<u32, u64>,
    /// The users of `fresh`.
    fresh_users: RoaringBitmap,
}

impl Bsi {
    fn bits_for(n: usize) -> usize {
        (usize::BITS - n.saturating_sub(1).leading_zeros()) as usize
    }

    fn code_of(&self, user: u32) -> Option<usize> {
        if !self.present.contains(user) {
            return None;
        }
        Some(
            self.slices
                .iter()
                .enumerate()
                .filter(|(_, s)| s.contains(user))
                .map(|(i, _)| 1usize << i)
                .sum(),
        )
    }

    fn get(&self, user: u32) -> Option<u64> {
        if let Some(k) = self.fresh.get(&user) {
            return Some(*k);
        }
        self.code_of(user).and_then(|c| self.dict.get(c).copied())
    }

    fn remove(&mut self, user: u32) {
        self.present.remove(user);
        for s in &mut self.slices {
            s.remove(user);
        }
        if self.fresh_users.remove(user) {
            self.fresh.remove(&user);
        }
    }

    /// How many fresh keys wait before a rebuild: a rebuild costs about one pass over the
    /// users, so waiting for a share of them keeps each write's part of it small, while a
    /// read's extra scan of the fresh keys stays a fraction of a pass.
    fn fold_at(&self) -> usize {
        (self.present.len() as usize / 32).max(4096)
    }

    fn set(&mut self, user: u32, key: u64) {
        self.present.insert(user);
        let code = match self.dict.binary_search(&key) {
            Ok(code) => code,
            // A key above every coded one (a balance that grew, a later date: the common
            // case) takes the next code, which moves no other user's: no fold needed.
            Err(code) if code == self.dict.len() => {
                self.dict.push(key);
                self.slices
                    .resize_with(Self::bits_for(self.dict.len()), RoaringBitmap::new);
                code
            }
            Err(_) => {
                for s in &mut self.slices {
                    s.remove(user);
                }
                self.fresh.insert(user, key);
                self.fresh_users.insert(user);
                let partly = self.fresh.len() % PARTIAL_FOLD_EVERY == 0 && self.fold_partly();
                if !partly && self.fresh.len() > self.fold_at() {
                    *self = Bsi::build(&self.pairs());
                }
                return;
            }
        };
        if self.fresh_users.remove(user) {
            self.fresh.remove(&user);
        }
        self.put_code(user, code);
    }

    fn put_code(&mut self, user: u32, code: usize) {
        for (i, s) in self.slices.iter_mut().enumerate() {
            if code >> i & 1 == 1 {
                s.insert(user);
            } else {
                s.remove(user);
            }
        }
    }

    /// Fold the fresh keys in by recoding only the users whose code changes, when they are
    /// few: a key just below the top (a balance grown past most but not all others) moves the
    /// codes of the users above it only. A whole rebuild costs a pass over every user (130 ms
    /// at a million), paid inside one write; this costs a pass over the fresh users and those
    /// above the lowest fresh key. Whether it was done.
    fn fold_partly(&mut self) -> bool {
        let mut new: Vec<u64> = self
            .fresh
            .values()
            .copied()
            .filter(|k| self.dict.binary_search(k).is_err())
            .collect();
        new.sort_unstable();
        new.dedup();
        let r0 = new
            .first()
            .map_or(self.dict.len(), |k| self.dict.partition_point(|x| x < k));
        let above = &self.start(None) - &self.lt(r0, None);
        let limit = (self.present.len() / 64).max(PARTIAL_FOLD_EVERY as u64);
        if above.len() > limit {
            return false;
        }
        let mut moved: Vec<(u32, u64)> = above
            .iter()
            .filter_map(|u| Some((u, *self.dict.get(self.code_of(u)?)?)))
            .collect();
        moved.extend(std::mem::take(&mut self.fresh));
        self.fresh_users.clear();
        // Both sorted and disjoint: their union sorted is the new dictionary.
        self.dict.extend(new);
        self.dict.sort_unstable();
        self.slices
            .resize_with(Self::bits_for(self.dict.len()), RoaringBitmap::new);
        for (u, k) in moved {
            let code = self.dict.partition_point(|x| *x < k);
            self.put_code(u, code);
        }
        true
    }

    /// The users a walk starts from: those with a value, within `within` when given. Starting
    /// from the candidates an enclosing AND left keeps every later operation small.
    fn start(&self, within: Option<&RoaringBitmap>) -> RoaringBitmap {
        let mut start = match within {
            Some(w) => &self.present & w,
            None => self.present.clone(),
        };
        if !self.fresh_users.is_empty() {
            start -= &self.fresh_users;
        }
        start
    }

    /// Add the fresh users (within `within`) whose key passes `keep` to `coded`, the answer
    /// over the coded users.
    fn with_fresh(
        &self,
        mut coded: RoaringBitmap,
        within: Option<&RoaringBitmap>,
        keep: impl Fn(u64) -> bool,
    ) -> RoaringBitmap {
        for (u, k) in &self.fresh {
            if keep(*k) && within.is_none_or(|w| w.contains(*u)) {
                coded.insert(*u);
            }
        }
        coded
    }

    /// Users (within `within`) whose code is < `p`.
    fn lt(&self, p: usize, within: Option<&RoaringBitmap>) -> RoaringBitmap {
        if p == 0 {
            return RoaringBitmap::new();
        }
        if p >= 1usize << self.slices.len() {
            return self.start(within);
        }
        let mut lt = Vec::new();
        let mut eq = self.start(within);
        for i in (0..self.slices.len()).rev() {
            if eq.is_empty() {
                break;
            }
            if p >> i & 1 == 1 {
                lt.push(&eq - &self.slices[i]);
                eq &= &self.slices[i];
            } else {
                eq -= &self.slices[i];
            }
        }
        union_disjoint(lt)
    }

    /// Users whose code is exactly `c`.
    fn eq_code(&self, c: usize, within: Option<&RoaringBitmap>) -> RoaringBitmap {
        if c >= 1usize << self.slices.len() {
            return RoaringBitmap::new();
        }
        let mut eq = self.start(within);
        for (i, s) in self.slices.iter().enumerate().rev() {
            if c >> i & 1 == 1 {
                eq &= s;
            } else {
                eq -= s;
            }
        }
        eq
    }

    /// Users (within `within`) whose key lies in `[lo, hi]` (bounds inclusive or exclusive).
    pub(crate) fn range(
        &self,
        lo: Option<(u64, bool)>,
        hi: Option<(u64, bool)>,
        within: Option<&RoaringBitmap>,
    ) -> RoaringBitmap {
        let coded = self.range_coded(lo, hi, within);
        if self.fresh.is_empty() {
            return coded;
        }
        self.with_fresh(coded, within, |k| {
            lo.is_none_or(|(l, inc)| k > l || (inc && k == l))
                && hi.is_none_or(|(h, inc)| k < h || (inc && k == h))
        })
    }

    fn range_coded(
        &self,
        lo: Option<(u64, bool)>,
        hi: Option<(u64, bool)>,
        within: Option<&RoaringBitmap>,
    ) -> RoaringBitmap {
        // Key bounds → code bounds [a, b).
        let a = match lo {
            None => 0,
            Some((k, true)) => self.dict.partition_point(|x| *x < k),
            Some((k, false)) => self.dict.partition_point(|x| *x <= k),
        };
        let b = match hi {
            None => self.dict.len(),
            Some((k, true)) => self.dict.partition_point(|x| *x <= k),
            Some((k, false)) => self.dict.partition_point(|x| *x < k),
        };
        if a >= b {
            return RoaringBitmap::new();
        }
        if a == 0 {
            return self.lt(b, within);
        }
        self.between_codes(a, b - 1, within)
    }

    /// Users with `a <= code <= hi` (`a <= hi < 2^slices`), in one walk from the top bit: while
    /// the bounds share their high bits the candidates narrow with one operation per slice; at
    /// the first differing bit the candidates split into a "≥ a" and a "≤ hi" walk, each over
    /// half of them. A narrow range thus costs far less than two full comparisons.
    fn between_codes(&self, a: usize, hi: usize, within: Option<&RoaringBitmap>) -> RoaringBitmap {
        let mut eq = self.start(within);
        let mut top = self.slices.len();
        while top > 0 {
            let bit = top - 1;
            let (x, y) = (a >> bit & 1, hi >> bit & 1);
            if x != y {
                break;
            }
            if x == 1 {
                eq &= &self.slices[bit];
            } else {
                eq -= &self.slices[bit];
            }
            top = bit;
            if eq.is_empty() {
                return eq;
            }
        }
        if top == 0 {
            return eq;
        }
        let bit = top - 1;
        // Here a has 0 and hi has 1 at `bit`.
        let high = &eq & &self.slices[bit];
        eq -= &self.slices[bit];
        let mut pieces = Vec::new();
        self.ge_within(eq, a, bit, &mut pieces);
        self.le_within(high, hi, bit, &mut pieces);
        union_disjoint(pieces)
    }

    /// Those of `eq` whose bits below `top` are ≥ those of `p`, as disjoint pieces.
    fn ge_within(&self, mut eq: RoaringBitmap, p: usize, top: usize, out: &mut Vec<RoaringBitmap>) {
        for bit in (0..top).rev() {
            if eq.is_empty() {
                return;
            }
            if p >> bit & 1 == 0 {
                out.push(&eq & &self.slices[bit]);
                eq -= &self.slices[bit];
            } else {
                eq &= &self.slices[bit];
            }
        }
        out.push(eq);
    }

    /// Those of `eq` whose bits below `top` are ≤ those of `p`, as disjoint pieces.
    fn le_within(&self, mut eq: RoaringBitmap, p: usize, top: usize, out: &mut Vec<RoaringBitmap>) {
        for bit in (0..top).rev() {
            if eq.is_empty() {
                return;
            }
            if p >> bit & 1 == 1 {
                out.push(&eq - &self.slices[bit]);
                eq &= &self.slices[bit];
            } else {
                eq -= &self.slices[bit];
            }
        }
        out.push(eq);
    }

    fn eq_key(&self, k: u64, within: Option<&RoaringBitmap>) -> RoaringBitmap {
        let coded = match self.dict.binary_search(&k) {
            Ok(c) => self.eq_code(c, within),
            Err(_) => RoaringBitmap::new(),
        };
        self.with_fresh(coded, within, |x| x == k)
    }

    /// Build from `(user, key)` pairs sorted by user, one per user.
    pub(crate) fn build(pairs: &[(u32, u64)]) -> Bsi {
        let mut dict: Vec<u64> = pairs.iter().map(|p| p.1).collect();
        dict.sort_unstable();
        dict.dedup();
        let bits = Self::bits_for(dict.len());
        let mut cols: Vec<Vec<u32>> = vec![Vec::new(); bits];
        for (u, k) in pairs {
            let code = dict.partition_point(|x| x < k);
            for (i, col) in cols.iter_mut().enumerate() {
                if code >> i & 1 == 1 {
                    col.push(*u);
                }
            }
        }
        let from = |v: Vec<u32>| RoaringBitmap::from_sorted_iter(v).unwrap_or_default();
        Bsi {
            slices: cols.into_iter().map(from).collect(),
            present: from(pairs.iter().map(|p| p.0).collect()),
            dict,
            fresh: BTreeMap::new(),
            fresh_users: RoaringBitmap::new(),
        }
    }

    fn pairs(&self) -> Vec<(u32, u64)> {
        self.present
            .iter()
            .filter_map(|u| self.get(u).map(|k| (u, k)))
            .collect()
    }

    fn memory(&self) -> usize {
        self.dict.len() * 8
            + self.fresh.len() * 24
            + self.fresh_users.serialized_size()
            + self.present.serialized_size()
            + self
                .slices
                .iter()
                .map(|s| s.serialized_size())
                .sum::<usize>()
    }
}

/// The storage of one column, by type.
#[derive(Debug, Clone)]
pub(crate) enum Column {
    Bool {
        yes: RoaringBitmap,
        no: RoaringBitmap,
    },
    Enum {
        values: std::collections::BTreeMap<String, RoaringBitmap>,
    },
    Number(Bsi),
    Date(Bsi),
}

/// A comparison a column can answer with bitmaps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Bound<'a> {
    Num(f64),
    Date(DateTime<Utc>),
    Text(&'a str),
    Bool(bool),
}

impl Column {
    pub(crate) fn new(t: ValueType) -> Column {
        match t {
            ValueType::Bool => Column::Bool {
                yes: RoaringBitmap::new(),
                no: RoaringBitmap::new(),
            },
            ValueType::Enum => Column::Enum {
                values: Default::default(),
            },
            ValueType::Number => Column::Number(Bsi::default()),
            ValueType::Date => Column::Date(Bsi::default()),
        }
    }

    pub(crate) fn value_type(&self) -> ValueType {
        match self {
            Column::Bool { .. } => ValueType::Bool,
            Column::Enum { .. } => ValueType::Enum,
            Column::Number(_) => ValueType::Number,
            Column::Date(_) => ValueType::Date,
        }
    }

    /// Users holding any value.
    pub(crate) fn present(&self) -> RoaringBitmap {
        match self {
            Column::Bool { yes, no } => yes | no,
            Column::Enum { values } => values.values().fold(RoaringBitmap::new(), |a, b| a | b),
            Column::Number(b) | Column::Date(b) => b.present.clone(),
        }
    }

    /// The values of one user (several only for a multi-valued enum).
    pub(crate) fn get(&self, user: u32) -> Vec<Value> {
        match self {
            Column::Bool { yes, no } => {
                if yes.contains(user) {
                    vec![Value::Bool(true)]
                } else if no.contains(user) {
                    vec![Value::Bool(false)]
                } else {
                    vec![]
                }
            }
            Column::Enum { values } => values
                .iter()
                .filter(|(_, b)| b.contains(user))
                .map(|(v, _)| Value::Text(v.clone()))
                .collect(),
            Column::Number(b) => b
                .get(user)
                .map(|k| Value::Number(number_of_key(k)))
                .into_iter()
                .collect(),
            Column::Date(b) => b
                .get(user)
                .map(|k| Value::Date(date_of_key(k)))
                .into_iter()
                .collect(),
        }
    }

    /// Remove every value of `user`.
    pub(crate) fn clear(&mut self, user: u32) {
        match self {
            Column::Bool { yes, no } => {
                yes.remove(user);
                no.remove(user);
            }
            Column::Enum { values } => {
                values.retain(|_, b| {
                    b.remove(user);
                    !b.is_empty()
                });
            }
            Column::Number(b) | Column::Date(b) => b.remove(user),
        }
    }

    /// Replace the value(s) of `user`. The caller has checked the type (an invariant here).
    pub(crate) fn set(&mut self, user: u32, values: &[Value]) {
        self.clear(user);
        for v in values {
            match (&mut *self, v) {
                (Column::Bool { yes, .. }, Value::Bool(true)) => {
                    yes.insert(user);
                }
                (Column::Bool { no, .. }, Value::Bool(false)) => {
                    no.insert(user);
                }
                (Column::Enum { values }, Value::Text(t)) => {
                    values.entry(t.clone()).or_default().insert(user);
                }
                (Column::Number(b), Value::Number(x)) => b.set(user, number_key(*x)),
                (Column::Date(b), Value::Date(t)) => b.set(user, date_key(*t)),
                _ => debug_assert!(false, "value type checked before Column::set"),
            }
        }
    }

    /// Replace the values of many users at once; a number/date column is rebuilt in one pass.
    pub(crate) fn set_many(&mut self, rows: &[(u32, Option<Value>)]) {
        match self {
            Column::Number(_) | Column::Date(_) => {
                let date = matches!(self, Column::Date(_));
                let (Column::Number(b) | Column::Date(b)) = self else {
                    return;
                };
                let mut next: std::collections::BTreeMap<u32, u64> =
                    b.pairs().into_iter().collect();
                for (u, v) in rows {
                    match v {
                        None => {
                            next.remove(u);
                        }
                        Some(Value::Number(x)) if !date => {
                            next.insert(*u, number_key(*x));
                        }
                        Some(Value::Date(t)) if date => {
                            next.insert(*u, date_key(*t));
                        }
                        Some(_) => debug_assert!(false, "value type checked before set_many"),
                    }
                }
                let pairs: Vec<(u32, u64)> = next.into_iter().collect();
                *b = Bsi::build(&pairs);
            }
            _ => {
                for (u, v) in rows {
                    match v {
                        Some(v) => self.set(*u, std::slice::from_ref(v)),
                        None => self.clear(*u),
                    }
                }
            }
        }
    }

    /// Users whose value compares to `bound` by `op` (`<`, `<=`, `=`, `>=`, `>`). Type-checked
    /// by the caller; a mismatched bound matches nobody.
    ///
    /// The answer is exact within `within` (when given); outside it, it may hold extra users.
    /// That lets bool and enum equality lend their stored bitmap without copying it, and lets a
    /// range walk start from the candidates an enclosing AND already narrowed down to.
    pub(crate) fn compare<'a>(
        &'a self,
        op: std::cmp::Ordering,
        inclusive: bool,
        bound: Bound<'_>,
        within: Option<&RoaringBitmap>,
    ) -> Cow<'a, RoaringBitmap> {
        use std::cmp::Ordering::*;
        match (self, bound) {
            (Column::Bool { yes, no }, Bound::Bool(v)) if op == Equal => {
                Cow::Borrowed(if v { yes } else { no })
            }
            (Column::Enum { values }, Bound::Text(t)) if op == Equal => match values.get(t) {
                Some(b) => Cow::Borrowed(b),
                None => Cow::Owned(RoaringBitmap::new()),
            },
            (Column::Number(b), Bound::Num(x)) => {
                Cow::Owned(Self::bsi_compare(b, op, inclusive, number_key(x), within))
            }
            (Column::Date(b), Bound::Date(t)) => {
                Cow::Owned(Self::bsi_compare(b, op, inclusive, date_key(t), within))
            }
            _ => Cow::Owned(RoaringBitmap::new()),
        }
    }

    /// Whether [`Column::compare`] lends a stored bitmap (no work at all) for this operator.
    pub(crate) fn lends_equality(&self) -> bool {
        matches!(self, Column::Bool { .. } | Column::Enum { .. })
    }

    fn bsi_compare(
        b: &Bsi,
        op: std::cmp::Ordering,
        inclusive: bool,
        k: u64,
        within: Option<&RoaringBitmap>,
    ) -> RoaringBitmap {
        use std::cmp::Ordering::*;
        match op {
            Equal => b.eq_key(k, within),
            Less => b.range(None, Some((k, inclusive)), within),
            Greater => b.range(Some((k, inclusive)), None, within),
        }
    }

    /// Users whose value lies in `[lo, hi]` (inclusive); exact within `within`.
    pub(crate) fn between(
        &self,
        lo: Bound<'_>,
        hi: Bound<'_>,
        within: Option<&RoaringBitmap>,
    ) -> RoaringBitmap {
        match (self, lo, hi) {
            (Column::Number(b), Bound::Num(l), Bound::Num(h)) => b.range(
                Some((number_key(l), true)),
                Some((number_key(h), true)),
                within,
            ),
            (Column::Date(b), Bound::Date(l), Bound::Date(h)) => {
                b.range(Some((date_key(l), true)), Some((date_key(h), true)), within)
            }
            _ => RoaringBitmap::new(),
        }
    }

    /// Users holding any value; exact within `within`, borrowed where the column keeps it.
    pub(crate) fn present_within(&self, within: Option<&RoaringBitmap>) -> Cow<'_, RoaringBitmap> {
        match (self, within) {
            (Column::Number(b) | Column::Date(b), _) => Cow::Borrowed(&b.present),
            (_, None) => Cow::Owned(self.present()),
            (Column::Bool { yes, no }, Some(w)) => Cow::Owned(&(yes & w) | &(no & w)),
            (Column::Enum { values }, Some(w)) => {
                Cow::Owned(values.values().fold(RoaringBitmap::new(), |mut a, b| {
                    a |= b & w;
                    a
                }))
            }
        }
    }

    /// Bytes the index takes (serialized roaring sizes plus dictionaries).
    pub(crate) fn memory(&self) -> usize {
        match self {
            Column::Bool { yes, no } => yes.serialized_size() + no.serialized_size(),
            Column::Enum { values } => values
                .iter()
                .map(|(k, b)| k.len() + b.serialized_size())
                .sum(),
            Column::Number(b) | Column::Date(b) => b.memory(),
        }
    }

    /// Every `(user, value)` pair, by user then value: the canonical (serialized) form.
    pub(crate) fn entries(&self) -> Vec<(u32, Value)> {
        let mut out: Vec<(u32, Value)> = match self {
            Column::Bool { yes, no } => yes
                .iter()
                .map(|u| (u, Value::Bool(true)))
                .chain(no.iter().map(|u| (u, Value::Bool(false))))
                .collect(),
            Column::Enum { values } => values
                .iter()
                .flat_map(|(v, b)| b.iter().map(move |u| (u, Value::Text(v.clone()))))
                .collect(),
            Column::Number(b) => b
                .pairs()
                .into_iter()
                .map(|(u, k)| (u, Value::Number(number_of_key(k))))
                .collect(),
            Column::Date(b) => b
                .pairs()
                .into_iter()
                .map(|(u, k)| (u, Value::Date(date_of_key(k))))
                .collect(),
        };
        // Stable sort keeps enum values in their (sorted) map order within a user.
        out.sort_by_key(|e| e.0);
        out
    }

    /// Rebuild from [`Column::entries`].
    pub(crate) fn from_entries(t: ValueType, entries: &[(u32, Value)]) -> Column {
        let mut c = Column::new(t);
        match &mut c {
            Column::Number(_) | Column::Date(_) => {
                let rows: Vec<(u32, Option<Value>)> =
                    entries.iter().map(|(u, v)| (*u, Some(v.clone()))).collect();
                c.set_many(&rows);
            }
            Column::Enum { values } => {
                for (u, v) in entries {
                    if let Value::Text(t) = v {
                        values.entry(t.clone()).or_default().insert(*u);
                    }
                }
            }
            Column::Bool { .. } => {
                for (u, v) in entries {
                    c.set(*u, std::slice::from_ref(v));
                }
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a range query should answer: the users of `pairs` whose key passes `keep`, within
    /// `w` when given.
    fn users_where(
        pairs: &[(u32, u64)],
        w: Option<&RoaringBitmap>,
        keep: impl Fn(u64) -> bool,
    ) -> RoaringBitmap {
        pairs
            .iter()
            .filter(|p| keep(p.1) && w.is_none_or(|w| w.contains(p.0)))
            .map(|p| p.0)
            .collect()
    }

    #[test]
    fn keys_preserve_order() {
        let xs = [-1e300, -3.5, -0.0, 0.0, 1e-9, 2.0, 40.0, 1e300];
        for w in xs.windows(2) {
            assert!(number_key(w[0]) <= number_key(w[1]), "{w:?}");
            assert_eq!(number_of_key(number_key(w[0])), w[0]);
        }
    }

    /// Writes that bring new keys (held aside as fresh, folded in by a rebuild past
    /// `fold_at`), writes of known keys, removals: every read agrees with a plain map after
    /// each step's batch, before and after the folds.
    #[test]
    fn bsi_fresh_keys_read_like_coded_ones_through_folds() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut bsi = Bsi::default();
        let mut model: BTreeMap<u32, u64> = BTreeMap::new();
        // Above every key set so far: such a key takes the next code at once (no fresh).
        let mut top = 1_000_000u64;
        for step in 0..24_000u32 {
            let user = (next() % 9_000) as u32;
            match next() % 10 {
                0 => {
                    bsi.remove(user);
                    model.remove(&user);
                }
                4 => {
                    top += 1 + next() % 100;
                    let fresh = bsi.fresh.len();
                    bsi.set(user, top);
                    model.insert(user, top);
                    assert!(bsi.fresh.len() <= fresh, "a growing key went to fresh");
                    assert_eq!(bsi.dict.last(), Some(&top));
                }
                // A key seen before (coded unless it is itself still fresh).
                1..=3 if !model.is_empty() => {
                    let k = *model
                        .values()
                        .nth((next() % model.len() as u64) as usize)
                        .unwrap();
                    bsi.set(user, k);
                    model.insert(user, k);
                }
                _ => {
                    let k = next() % 1_000_000;
                    bsi.set(user, k);
                    model.insert(user, k);
                }
            }
            if step % 1_500 == 1_499 {
                let pairs: Vec<(u32, u64)> = model.iter().map(|(u, k)| (*u, *k)).collect();
                assert_eq!(bsi.pairs(), pairs, "step {step}");
                assert_eq!(bsi.present.len() as usize, model.len());
                let within: RoaringBitmap = model.keys().copied().filter(|u| u % 3 == 0).collect();
                for (lo, hi) in [
                    (0, 999_999),
                    (500_000, 1_100_000),
                    (1_000_000, 1_050_000),
                    (250_000, 260_000),
                    (0, 10),
                    (999_000, 999_999),
                ] {
                    for w in [None, Some(&within)] {
                        let want: RoaringBitmap = users_where(&pairs, w, |k| k >= lo && k <= hi);
                        assert_eq!(bsi.range(Some((lo, true)), Some((hi, true)), w), want);
                        let want_open: RoaringBitmap = users_where(&pairs, w, |k| k > lo && k < hi);
                        assert_eq!(
                            bsi.range(Some((lo, false)), Some((hi, false)), w),
                            want_open
                        );
                    }
                }
                let (u, k) = pairs[pairs.len() / 2];
                assert!(bsi.eq_key(k, None).contains(u));
                assert_eq!(bsi.get(u), Some(k));
            }
        }
        // Keys enter the dictionary by a fold, or in order when above every other.
        assert!(
            bsi.dict.len() > 4_096,
            "folded: {} coded keys",
            bsi.dict.len()
        );
        assert!(!bsi.fresh.is_empty(), "and some wait as fresh at the end");
    }

    /// A key just below the top (balances grown past most others): the fresh keys are folded
    /// in every `PARTIAL_FOLD_EVERY` writes by recoding only the users above, never by a whole
    /// rebuild; with many users above, they wait for the whole rebuild as before.
    #[test]
    fn bsi_keys_below_few_users_fold_in_partly() {
        for (above, partly) in [(100u32, true), (8_000, false)] {
            let mut bsi = Bsi::default();
            let mut model: BTreeMap<u32, u64> = BTreeMap::new();
            for u in 0..20_000u32 {
                // Ascending: each key above every other takes the next code at once.
                let k = if u < 20_000 - above {
                    100
                } else {
                    500 + u64::from(u)
                };
                bsi.set(u, k);
                model.insert(u, k);
            }
            for u in 0..3_000u32 {
                let k = 110 + u64::from(u % 3);
                bsi.set(u * 3, k);
                model.insert(u * 3, k);
            }
            if partly {
                assert!(
                    bsi.fresh.len() < PARTIAL_FOLD_EVERY,
                    "{} fresh",
                    bsi.fresh.len()
                );
                assert!(bsi.dict.contains(&111));
            } else {
                assert_eq!(bsi.fresh.len(), 3_000);
            }
            let pairs: Vec<(u32, u64)> = model.iter().map(|(u, k)| (*u, *k)).collect();
            assert_eq!(bsi.pairs(), pairs);
            for (lo, hi) in [
                (100, 100),
                (105, 111),
                (111, 20_450),
                (0, 30_000),
                (112, 112),
            ] {
                let want = users_where(&pairs, None, |k| k >= lo && k <= hi);
                assert_eq!(bsi.range(Some((lo, true)), Some((hi, true)), None), want);
            }
        }
    }

    #[test]
    fn bsi_incremental_matches_build() {
        let vals = [5u64, 3, 9, 3, 1, 7, 7, 2, 100, 0, 50];
        let mut inc = Bsi::default();
        for (u, v) in vals.iter().enumerate() {
            inc.set(u as u32 * 3, *v);
        }
        let pairs: Vec<(u32, u64)> = vals
            .iter()
            .enumerate()
            .map(|(u, v)| (u as u32 * 3, *v))
            .collect();
        let built = Bsi::build(&pairs);
        assert_eq!(inc.pairs(), pairs);
        assert_eq!(built.pairs(), pairs);
        for lo in 0..=101 {
            for hi in [lo, lo + 3, 200] {
                let want: Vec<u32> = pairs
                    .iter()
                    .filter(|p| p.1 >= lo && p.1 <= hi)
                    .map(|p| p.0)
                    .collect();
                let got: Vec<u32> = inc
                    .range(Some((lo, true)), Some((hi, true)), None)
                    .iter()
                    .collect();
                assert_eq!(got, want, "[{lo},{hi}]");
                let got: Vec<u32> = built
                    .range(Some((lo, true)), Some((hi, true)), None)
                    .iter()
                    .collect();
                assert_eq!(got, want);
            }
        }
    }

    /// Ranges over users spread thinly across a wide id space (the sparse merge of
    /// `union_disjoint`) and densely (the word-wise union), with and without candidates,
    /// against a plain filter of the pairs.
    #[test]
    fn bsi_ranges_sparse_and_dense_match_a_filter() {
        let mix = |x: u64| x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17;
        for (stride, n) in [(997u32, 3_000u32), (1, 70_000)] {
            let pairs: Vec<(u32, u64)> = (0..n)
                .map(|i| (i * stride, mix(u64::from(i)) % 5_000))
                .collect();
            let bsi = Bsi::build(&pairs);
            let within: RoaringBitmap = pairs
                .iter()
                .map(|p| p.0)
                .filter(|u| mix(u64::from(*u) + 7) % 3 == 0)
                .collect();
            for (lo, hi) in [
                (0, 4_999),
                (1_000, 3_000),
                (17, 18),
                (2_048, 4_095),
                (0, 0),
                (4_000, 9_000),
            ] {
                for w in [None, Some(&within)] {
                    let want: RoaringBitmap = users_where(&pairs, w, |k| k >= lo && k <= hi);
                    let got = bsi.range(Some((lo, true)), Some((hi, true)), w);
                    assert_eq!(
                        got,
                        want,
                        "stride {stride}, [{lo},{hi}], within {}",
                        w.is_some()
                    );
                    let below: RoaringBitmap = users_where(&pairs, w, |k| k < hi);
                    assert_eq!(bsi.range(None, Some((hi, false)), w), below);
                }
            }
        }
    }

    #[test]
    fn union_disjoint_equals_folded_union() {
        for (stride, parts) in [(1_000u32, 7u32), (1, 5)] {
            let pieces: Vec<RoaringBitmap> = (0..parts)
                .map(|k| {
                    (0..20_000u32)
                        .filter(|i| i % parts == k)
                        .map(|i| i * stride)
                        .collect()
                })
                .collect();
            let folded = pieces.iter().fold(RoaringBitmap::new(), |a, b| a | b);
            assert_eq!(union_disjoint(pieces), folded);
        }
        assert!(union_disjoint(vec![]).is_empty());
        assert_eq!(
            union_disjoint(vec![RoaringBitmap::new(), [3u32].into_iter().collect()]).len(),
            1
        );
    }
}
