//! Progress of long computations over columns (lifecycle stages, RFM, ...), for hosts that
//! show a progress bar or let a user stop the work.
//!
//! A computation that can take seconds has a `*_with_progress` form taking a
//! `&mut dyn` [`Progress`]: it reports `(done, total)` between chunks of work (`done` never
//! goes back and ends at `total`) and stops, returning its module's `Interrupted` error, when
//! the hook answers [`ControlFlow::Break`]. The hook runs on the computing thread; a binding
//! that must take a lock (Python's GIL) to report takes it only inside the hook.
//!
//! ```
//! use std::ops::ControlFlow;
//! use userops::lifecycle::{stage_table_with_progress, ActivityTable, PeriodClock, StageOptions};
//! use userops::Period;
//! let clock = PeriodClock::new(Period::Month, 0);
//! let mut seen = Vec::new();
//! let mut hook = |done: u64, total: u64| {
//!     seen.push((done, total));
//!     ControlFlow::Continue(())
//! };
//! let t = stage_table_with_progress(ActivityTable { user: &[1, 2], time: &[0, 86_400_000] },
//!     None, StageOptions::new(clock), &mut hook).unwrap();
//! assert_eq!(t.users(), &[1, 2]);
//! assert_eq!(seen.last(), Some(&(4, 4)));
//! ```

use std::ops::ControlFlow;

/// Told how far a long computation got; may ask it to stop.
pub trait Progress {
    /// `done` of `total` units of work are finished. `Break` stops the computation.
    fn report(&mut self, done: u64, total: u64) -> ControlFlow<()>;
}

impl<F: FnMut(u64, u64) -> ControlFlow<()>> Progress for F {
    fn report(&mut self, done: u64, total: u64) -> ControlFlow<()> {
        self(done, total)
    }
}

/// No reporting: what the plain (non-`_with_progress`) forms use.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&mut self, _done: u64, _total: u64) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// The hook stopped the computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interrupted;

/// Rows handled between two reports: small enough for a smooth bar and a prompt stop, large
/// enough that reporting costs nothing next to the work.
pub(crate) const CHUNK: usize = 1 << 16;

/// Reports through a [`Progress`], keeping `done` monotone and within `total`.
pub(crate) struct Meter<'p> {
    progress: &'p mut dyn Progress,
    total: u64,
    done: u64,
}

impl<'p> Meter<'p> {
    pub(crate) fn new(progress: &'p mut dyn Progress, total: u64) -> Self {
        Meter {
            progress,
            total,
            done: 0,
        }
    }

    /// Report `done` units finished (clamped: never back, never past `total`).
    pub(crate) fn at(&mut self, done: u64) -> Result<(), Interrupted> {
        self.done = done.clamp(self.done, self.total);
        match self.progress.report(self.done, self.total) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Interrupted),
        }
    }

    /// Report everything finished.
    pub(crate) fn finish(&mut self) -> Result<(), Interrupted> {
        self.at(self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_is_monotone_clamped_and_stops() {
        let mut seen = Vec::new();
        let mut hook = |d: u64, t: u64| {
            seen.push((d, t));
            if d == 7 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        {
            let mut m = Meter::new(&mut hook, 10);
            m.at(5).unwrap();
            m.at(3).unwrap(); // never back
            m.at(20).unwrap(); // never past the total
            assert_eq!(m.at(7), Ok(())); // clamped to 10, not 7: continues
        }
        assert_eq!(seen, vec![(5, 10), (5, 10), (10, 10), (10, 10)]);
        let mut stop = |d: u64, _t: u64| {
            if d >= 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let mut m = Meter::new(&mut stop, 10);
        assert_eq!(m.at(2), Ok(()));
        assert_eq!(m.at(3), Err(Interrupted));
        assert_eq!(NoProgress.report(1, 2), ControlFlow::Continue(()));
    }
}
