//! The batch path: an activity table (column slices) → the stage of every user in every period.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

use super::period::PeriodClock;
use super::stage::{Stage, StageRules, StageWalker};
use super::LifecycleError;
use crate::progress::{Meter, NoProgress, Progress, CHUNK};

/// Activity rows as columns: `user[i]` was active at `time[i]` (ms since the epoch, UTC).
/// Rows may come in any order.
#[derive(Debug, Clone, Copy)]
pub struct ActivityTable<'a> {
    /// User ids.
    pub user: &'a [u64],
    /// Activity times, ms since the epoch (UTC).
    pub time: &'a [i64],
}

/// Registration times as columns: `user[i]` registered at `time[i]` (ms, UTC). A user may appear
/// more than once only with the same time (the per-row `registered` column of a wide table).
#[derive(Debug, Clone, Copy)]
pub struct Registrations<'a> {
    /// User ids.
    pub user: &'a [u64],
    /// Registration times, ms since the epoch (UTC).
    pub time: &'a [i64],
}

/// What to do with an activity that happened before the user's registration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EarlyActivity {
    /// Refuse the input with [`LifecycleError::ActivityBeforeRegistration`] (the default).
    #[default]
    Error,
    /// Treat the user as registered at their first activity.
    RegisterAtFirstActivity,
}

/// Options of the stage computation, built from a [`PeriodClock`].
#[derive(Debug, Clone, Copy)]
pub struct StageOptions {
    pub(crate) clock: PeriodClock,
    pub(crate) rules: StageRules,
    pub(crate) early: EarlyActivity,
    pub(crate) through: Option<i64>,
}

impl StageOptions {
    /// Default rules (churn after 2 periods), early activity is an error, periods up to the
    /// last one seen in the data.
    pub fn new(clock: PeriodClock) -> StageOptions {
        StageOptions {
            clock,
            rules: StageRules::default(),
            early: EarlyActivity::Error,
            through: None,
        }
    }

    /// The stage thresholds.
    pub fn rules(mut self, rules: StageRules) -> Self {
        self.rules = rules;
        self
    }

    /// The policy for activity before registration.
    pub fn early_activity(mut self, early: EarlyActivity) -> Self {
        self.early = early;
        self
    }

    /// Extend the table through this period index even when no data reaches it (so that the
    /// current month shows the users who went quiet).
    pub fn through(mut self, period: i64) -> Self {
        self.through = Some(period);
        self
    }
}

/// The stage of every user in every period: users (sorted by id) × periods, one byte each.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTable {
    pub(crate) clock: PeriodClock,
    pub(crate) rules: StageRules,
    pub(crate) users: Vec<u64>,
    pub(crate) first: i64,
    pub(crate) periods: usize,
    /// `codes[u * periods + p]` = [`Stage::code`], 0 before registration.
    pub(crate) codes: Vec<u8>,
}

impl StageTable {
    /// The user ids, ascending.
    pub fn users(&self) -> &[u64] {
        &self.users
    }

    /// The first period index.
    pub fn first_period(&self) -> i64 {
        self.first
    }

    /// The number of periods.
    pub fn period_count(&self) -> usize {
        self.periods
    }

    /// The clock that maps times and labels to periods.
    pub fn clock(&self) -> PeriodClock {
        self.clock
    }

    /// The rules used.
    pub fn rules(&self) -> StageRules {
        self.rules
    }

    /// The stage of the `u`-th user (in [`StageTable::users`] order) in period index `period`;
    /// `None` before registration or outside the table.
    pub fn stage(&self, u: usize, period: i64) -> Option<Stage> {
        let p = usize::try_from(period.checked_sub(self.first)?).ok()?;
        if p >= self.periods || u >= self.users.len() {
            return None;
        }
        Stage::from_code(self.codes[u * self.periods + p])
    }

    /// The stage codes of the `u`-th user, one per period.
    pub fn row(&self, u: usize) -> &[u8] {
        &self.codes[u * self.periods..(u + 1) * self.periods]
    }

    /// Every `(user, period index, stage)` from registration on, user-major.
    pub fn rows(&self) -> impl Iterator<Item = (u64, i64, Stage)> + '_ {
        self.users.iter().enumerate().flat_map(move |(u, &id)| {
            self.row(u).iter().enumerate().filter_map(move |(p, &c)| {
                Stage::from_code(c).map(|s| (id, self.first + p as i64, s))
            })
        })
    }

    /// Build from per-user histories: `(user, registration period, sorted active periods)`.
    /// Users must come sorted by id. This is the incremental path's way in; the batch path
    /// fills the same walker from bitmaps.
    pub(crate) fn from_histories<'h, I>(
        clock: PeriodClock,
        rules: StageRules,
        first: i64,
        last: i64,
        histories: I,
    ) -> StageTable
    where
        I: Iterator<Item = (u64, i64, &'h [i64])>,
    {
        let periods = usize::try_from(last - first + 1).unwrap_or(0);
        let mut users = Vec::new();
        let mut codes = Vec::new();
        for (id, reg, active) in histories {
            users.push(id);
            let base = codes.len();
            codes.resize(base + periods, 0);
            let mut w = StageWalker::new(rules, reg);
            let mut next_active = active.iter().peekable();
            for p in reg.max(first)..=last {
                while next_active.next_if(|&&a| a < p).is_some() {}
                let is_active = next_active.next_if(|&&a| a == p).is_some();
                codes[base + (p - first) as usize] = w.step(is_active).code();
            }
        }
        StageTable {
            clock,
            rules,
            users,
            first,
            periods,
            codes,
        }
    }
}

/// Dense slots for user ids: a direct offset when the ids are compact, a hash map otherwise.
enum Slots {
    /// Slot = id − min; which slots are used is read from the data afterwards, which keeps a
    /// store out of the hot loop.
    Direct {
        min: u64,
        len: usize,
    },
    // FxHash: user ids are not attacker-chosen here, and SipHash would triple the cost of the
    // 100M-row pass.
    Hashed(HashMap<u64, u32, FxBuildHasher>, Vec<u64>),
}

impl Slots {
    fn new(min: u64, max: u64, rows: usize) -> Slots {
        let span = max.saturating_sub(min).saturating_add(1);
        let budget = (rows as u64).max(1 << 20);
        if span <= budget {
            Slots::Direct {
                min,
                len: span as usize,
            }
        } else {
            Slots::Hashed(HashMap::default(), Vec::new())
        }
    }

    fn len(&self) -> usize {
        match self {
            Slots::Direct { len, .. } => *len,
            Slots::Hashed(_, ids) => ids.len(),
        }
    }

    #[inline]
    fn slot(&mut self, id: u64) -> usize {
        match self {
            Slots::Direct { min, .. } => (id - *min) as usize,
            Slots::Hashed(map, ids) => *map.entry(id).or_insert_with(|| {
                ids.push(id);
                (ids.len() - 1) as u32
            }) as usize,
        }
    }

    /// `(id, slot)` of every user seen (`used(slot)` for direct slots), sorted by id.
    fn sorted(self, used: impl Fn(usize) -> bool) -> Vec<(u64, usize)> {
        match self {
            Slots::Direct { min, len } => (0..len)
                .filter(|&s| used(s))
                .map(|s| (min + s as u64, s))
                .collect(),
            Slots::Hashed(_, ids) => {
                let mut v: Vec<(u64, usize)> =
                    ids.into_iter().enumerate().map(|(s, id)| (id, s)).collect();
                v.sort_unstable();
                v
            }
        }
    }
}

/// The most user × period cells a stage table holds (one byte each).
pub(crate) const MAX_CELLS: usize = 8 << 30;

/// Period offsets by local day: one division and a table load per row instead of a civil-date
/// conversion (the table covers the data's days; absurd spans fall back to the clock).
struct DayTable {
    clock: PeriodClock,
    first_period: i64,
    first_day: i64,
    table: Vec<u32>,
}

const DAY_MS: i64 = 86_400_000;

impl DayTable {
    fn new(clock: PeriodClock, min_t: i64, max_t: i64, first_period: i64) -> DayTable {
        let off = clock.offset_ms();
        let (d0, d1) = (
            (min_t + off).div_euclid(DAY_MS),
            (max_t + off).div_euclid(DAY_MS),
        );
        let table = if d1 - d0 < 4_000_000 {
            (d0..=d1)
                .map(|d| {
                    (clock.index(d * DAY_MS - off).unwrap_or(first_period) - first_period) as u32
                })
                .collect()
        } else {
            Vec::new()
        };
        DayTable {
            clock,
            first_period,
            first_day: d0,
            table,
        }
    }

    /// The period offset of a time within the range the table was built for.
    #[inline]
    fn period(&self, t: i64) -> usize {
        let d = (t + self.clock.offset_ms()).div_euclid(DAY_MS) - self.first_day;
        match self.table.get(d as usize) {
            Some(&p) => p as usize,
            None => (self.clock.index(t).unwrap_or(self.first_period) - self.first_period) as usize,
        }
    }
}

/// Above this many bytes of bitmaps, random updates miss the cache on every row: the rows are
/// first bucketed by blocks of users whose bitmaps fit in L2, then each block is filled.
/// (Lower under test so that small tables exercise the partitioned path.)
const PARTITION_ABOVE_BYTES: usize = if cfg!(test) { 64 << 10 } else { 4 << 20 };
/// Users per block (32 768 users × 8 bytes = 256 KiB of bitmaps).
const BLOCK_BITS: u32 = 15;

/// No registration time (in the per-slot registration column).
const NONE: i64 = i64::MAX;

/// Set the activity bits through a counting sort by user block: two sequential passes over the
/// rows and one cache-resident pass per block, instead of one cache miss per row.
fn set_bits_partitioned(
    activity: ActivityTable<'_>,
    min: u64,
    len: usize,
    words: usize,
    days: &DayTable,
    masks: &mut [u64],
) {
    let blocks = (len >> BLOCK_BITS) + 1;
    let mut start = vec![0usize; blocks + 1];
    for &u in activity.user {
        start[((u - min) >> BLOCK_BITS) as usize + 1] += 1;
    }
    for b in 0..blocks {
        start[b + 1] += start[b];
    }
    // Each entry: the user's offset in its block (low bits) and the period (high bits).
    let mut packed = vec![0u32; activity.user.len()];
    let mut next = start.clone();
    let low = (1u64 << BLOCK_BITS) - 1;
    for (&u, &t) in activity.user.iter().zip(activity.time) {
        let s = u - min;
        let b = (s >> BLOCK_BITS) as usize;
        packed[next[b]] = (s & low) as u32 | (days.period(t) as u32) << BLOCK_BITS;
        next[b] += 1;
    }
    for b in 0..blocks {
        let base = b << BLOCK_BITS;
        for &x in &packed[start[b]..start[b + 1]] {
            let s = base + (x as u64 & low) as usize;
            let p = (x >> BLOCK_BITS) as usize;
            masks[s * words + p / 64] |= 1u64 << (p % 64);
        }
    }
}

fn check_lengths(what: &'static str, a: usize, b: usize) -> Result<(), LifecycleError> {
    if a != b {
        return Err(LifecycleError::LengthMismatch {
            what,
            users: a,
            times: b,
        });
    }
    Ok(())
}

/// The stage of every user in every period, from an activity table and (optionally)
/// registrations. A user without a registration is registered at their first activity.
/// Registering counts as a qualifying activity of its own period: a user who registers in
/// January and is next active in March is `new` (active) in January, `dormant` in February
/// and `awakened` in March.
///
/// ```
/// use userops::lifecycle::{
///     stage_table, ActivityTable, PeriodClock, Registrations, Stage, StageOptions,
/// };
/// use userops::Period;
/// let clock = PeriodClock::new(Period::Month, 8 * 3600);
/// let jan = 1_767_225_600_000; // 2026-01-01T00:00+08:00
/// let feb = jan + 31 * 86_400_000;
/// let mar = feb + 28 * 86_400_000;
/// let t = stage_table(ActivityTable { user: &[7, 7], time: &[jan, feb] }, None,
///     StageOptions::new(clock)).unwrap();
/// assert_eq!(t.stage(0, t.first_period() + 1), Some(Stage::LastPeriodNew));
/// // User 8 registers in January, is next active in March.
/// let t = stage_table(ActivityTable { user: &[8], time: &[mar] },
///     Some(Registrations { user: &[8], time: &[jan] }), StageOptions::new(clock)).unwrap();
/// let stages: Vec<_> = (0..3).map(|k| t.stage(0, t.first_period() + k)).collect();
/// assert_eq!(stages, [Some(Stage::New), Some(Stage::Dormant), Some(Stage::Awakened)]);
/// ```
///
/// # Errors
///
/// [`LifecycleError::LengthMismatch`] for columns of one table of different lengths;
/// [`LifecycleError::ConflictingRegistration`] for a user registered at two times;
/// [`LifecycleError::ActivityBeforeRegistration`] for activity before registration (with
/// [`EarlyActivity::Error`](super::EarlyActivity::Error));
/// [`LifecycleError::TimeOutOfRange`] for a time outside ±10 000 years;
/// [`LifecycleError::TooManyPeriods`] or [`LifecycleError::TableTooLarge`] for data beyond
/// what a stage table holds.
pub fn stage_table(
    activity: ActivityTable<'_>,
    registrations: Option<Registrations<'_>>,
    options: StageOptions,
) -> Result<StageTable, LifecycleError> {
    stage_table_with_progress(activity, registrations, options, &mut NoProgress)
}

/// [`stage_table`], reporting to `progress` (see [`crate::progress`]) in units of activity
/// rows, counted twice: once while they are read, once (in proportion) while the users'
/// histories are walked; `total` is twice the number of activity rows. Stops with
/// [`LifecycleError::Interrupted`] when the hook says so.
///
/// # Errors
///
/// As [`stage_table`]; [`LifecycleError::Interrupted`] when the hook stops it.
pub fn stage_table_with_progress(
    activity: ActivityTable<'_>,
    registrations: Option<Registrations<'_>>,
    options: StageOptions,
    progress: &mut dyn Progress,
) -> Result<StageTable, LifecycleError> {
    let rows = activity.user.len() as u64;
    let mut meter = Meter::new(progress, 2 * rows);
    check_lengths("activity", activity.user.len(), activity.time.len())?;
    let reg = registrations.unwrap_or(Registrations {
        user: &[],
        time: &[],
    });
    check_lengths("registrations", reg.user.len(), reg.time.len())?;
    let clock = options.clock;

    // Pass 1: the id range and the time range (periods are monotone in time).
    let (mut min_id, mut max_id) = (u64::MAX, 0u64);
    for &u in activity.user.iter().chain(reg.user) {
        min_id = min_id.min(u);
        max_id = max_id.max(u);
    }
    let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
    for &t in activity.time.iter().chain(reg.time) {
        min_t = min_t.min(t);
        max_t = max_t.max(t);
    }
    if min_id > max_id {
        meter.finish()?;
        return Ok(StageTable {
            clock,
            rules: options.rules,
            users: Vec::new(),
            first: options.through.unwrap_or(0),
            periods: 0,
            codes: Vec::new(),
        });
    }
    let bad_time = |t: i64| {
        let row = activity.time.iter().position(|&x| x == t);
        LifecycleError::TimeOutOfRange { row, time_ms: t }
    };
    let first = clock.index(min_t).ok_or_else(|| bad_time(min_t))?;
    let last_seen = clock.index(max_t).ok_or_else(|| bad_time(max_t))?;
    let last = options.through.map_or(last_seen, |t| t.max(last_seen));
    let periods = usize::try_from(last - first + 1)
        .ok()
        .filter(|&p| p <= 100_000)
        .ok_or(LifecycleError::TooManyPeriods(last - first + 1))?;
    let words = periods.div_ceil(64);

    // Pass 2: registrations, then activity bits.
    let mut slots = Slots::new(min_id, max_id, activity.user.len() + reg.user.len());
    let mut reg_ms = registration_times(&reg, &mut slots)?;
    let mut masks: Vec<u64> = vec![0; slots.len() * words];
    let days = DayTable::new(clock, min_t, max_t, first);
    if !reg.user.is_empty() && options.early == EarlyActivity::Error {
        check_early_activity(&activity, &reg_ms, &mut slots)?;
    }
    match &slots {
        Slots::Direct { min, len }
            if *len * words * 8 > PARTITION_ABOVE_BYTES && periods < 1 << 17 =>
        {
            set_bits_partitioned(activity, *min, *len, words, &days, &mut masks);
        }
        _ => {
            let chunks = activity.user.chunks(CHUNK).zip(activity.time.chunks(CHUNK));
            for (i, (users, times)) in chunks.enumerate() {
                for (&u, &t) in users.iter().zip(times) {
                    let s = slots.slot(u);
                    if (s + 1) * words > masks.len() {
                        masks.resize((s + 1) * words, 0);
                    }
                    let p = days.period(t);
                    masks[s * words + p / 64] |= 1u64 << (p % 64);
                }
                meter.at(((i + 1) * CHUNK) as u64)?;
            }
        }
    }
    meter.at(rows)?;

    // Pass 3: walk every user.
    reg_ms.resize(slots.len(), NONE);
    masks.resize(slots.len() * words, 0);
    let order = slots
        .sorted(|s| reg_ms[s] != NONE || masks[s * words..(s + 1) * words].iter().any(|&w| w != 0));
    if order.len().saturating_mul(periods) > MAX_CELLS {
        return Err(LifecycleError::TableTooLarge {
            users: order.len(),
            periods,
        });
    }
    let mut users = Vec::with_capacity(order.len());
    let mut codes = vec![0u8; order.len() * periods];
    let walk_every = (CHUNK / periods.max(1)).max(1);
    for (row, &(id, s)) in order.iter().enumerate() {
        if row % walk_every == 0 && row > 0 {
            meter.at(rows + rows * row as u64 / order.len() as u64)?;
        }
        users.push(id);
        let mask = &masks[s * words..(s + 1) * words];
        let first_bit = mask
            .iter()
            .enumerate()
            .find(|(_, w)| **w != 0)
            .map(|(i, w)| i * 64 + w.trailing_zeros() as usize);
        let reg_p = match (reg_ms.get(s).copied().filter(|&r| r != NONE), first_bit) {
            (Some(r), Some(b)) => {
                let rp = (clock.index(r).unwrap_or(first) - first) as usize;
                rp.min(b) // only below rp under RegisterAtFirstActivity
            }
            (Some(r), None) => (clock.index(r).unwrap_or(first) - first) as usize,
            (None, Some(b)) => b,
            (None, None) => continue, // unreachable: every slot seen has a row
        };
        let out = &mut codes[row * periods..(row + 1) * periods];
        let mut w = StageWalker::new(options.rules, reg_p as i64);
        for (p, c) in out.iter_mut().enumerate().skip(reg_p) {
            let active = mask[p / 64] >> (p % 64) & 1 == 1;
            *c = w.step(active).code();
        }
    }
    meter.finish()?;
    Ok(StageTable {
        clock,
        rules: options.rules,
        users,
        first,
        periods,
        codes,
    })
}

/// Each slot's registration time ([`NONE`]: not registered); a user registered at two
/// different times is an error.
fn registration_times(
    reg: &Registrations<'_>,
    slots: &mut Slots,
) -> Result<Vec<i64>, LifecycleError> {
    let mut reg_ms: Vec<i64> = vec![NONE; slots.len()];
    let grow = |v: &mut Vec<i64>, s: usize| {
        if s >= v.len() {
            v.resize(s + 1, NONE);
        }
    };
    for (i, (&u, &t)) in reg.user.iter().zip(reg.time).enumerate() {
        let s = slots.slot(u);
        grow(&mut reg_ms, s);
        if reg_ms[s] != NONE && reg_ms[s] != t {
            return Err(LifecycleError::ConflictingRegistration { row: i, user: u });
        }
        reg_ms[s] = t;
    }
    Ok(reg_ms)
}

/// Under [`EarlyActivity::Error`]: no activity before its user's registration.
fn check_early_activity(
    activity: &ActivityTable<'_>,
    reg_ms: &[i64],
    slots: &mut Slots,
) -> Result<(), LifecycleError> {
    for (i, (&u, &t)) in activity.user.iter().zip(activity.time).enumerate() {
        let r = reg_ms.get(slots.slot(u)).copied().unwrap_or(NONE);
        if t < r && r != NONE {
            return Err(LifecycleError::ActivityBeforeRegistration {
                row: Some(i),
                user: u,
                time_ms: t,
                registered_ms: r,
            });
        }
    }
    Ok(())
}
