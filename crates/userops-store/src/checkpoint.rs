//! Folding the WAL into the main file off the write path.
//!
//! SQLite's automatic checkpoint runs inside the `COMMIT` that pushes the WAL past its
//! threshold, on the committing connection. For the journal's connection that is a commit
//! made with the store's lock held (by the caller or the flusher), so every write, and under
//! [`Concurrency::Lock`](userops::shared::Concurrency) every read, waited while 64 MiB of pages
//! were copied and the main file fsynced: 100–300 ms stalls at a million members. The
//! journal's connection therefore never checkpoints; it reports the WAL's size after each
//! commit, and a thread of the store's own (`userops-store-checkpoint`), on a connection of
//! its own, runs `PASSIVE` checkpoints when the WAL has grown past the threshold. A passive
//! checkpoint never waits for readers or writers: commits go on appending to the WAL while it
//! copies, and what it has not copied stays in the WAL, as durable as before.
//!
//! Under a steady stream of commits a passive checkpoint never catches up: frames are appended
//! while it copies, the WAL is never wholly folded, so SQLite never starts it over from its
//! beginning and it grows without bound (gigabytes, and every page lookup slower). So the
//! thread copies in passes without any lock until what is left is small, then takes the
//! store's lock between two commits for a last pass over those few frames: the WAL is then
//! wholly folded and the next write starts it over.

use std::cell::Cell;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::Connection;

use crate::{lock, Shared};

/// Fold the WAL once it holds this many pages (64 MiB of 4 KiB pages) rather than SQLite's
/// default 1,000: a batch of events writes far more than 1,000 pages, so the default folds
/// after every commit and writes each page twice per batch (−14% bytes written in the demo).
pub(crate) const FOLD_AFTER_PAGES: i32 = 16_384;

/// Frames left for the last pass, the one made under the store's lock (4 MiB: a few
/// milliseconds of copying).
const LAST_PASS_FRAMES: i32 = 1_024;

/// Unlocked passes at most (each copies what was appended while the one before ran).
const MAX_PASSES: usize = 4;

/// How long the last pass waits for a moment between two commits (under group commit a
/// transaction is open most of the time) before it gives up until the next nudge.
const LAST_PASS_PATIENCE: Duration = Duration::from_secs(2);

thread_local! {
    /// Pages in the WAL after the last commit on this thread's connection (0 once taken).
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// SQLite's WAL hook takes a plain function: it runs on the committing thread, right after
/// the commit, so a thread-local carries the page count back to the caller of `COMMIT`.
fn note_wal_pages(_: &Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// Make `conn` leave checkpoints to a [`Checkpointer`]: no automatic checkpoint, and each
/// commit notes the WAL's size for [`wal_pages_after_commit`].
pub(crate) fn hand_off(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // Replaces the automatic checkpoint's own hook (SQLite keeps one per connection).
    conn.wal_hook(Some(note_wal_pages));
    Ok(())
}

/// Pages in the WAL after the last commit made on this thread by a connection given to
/// [`hand_off`]; 0 when there was none since the last call.
pub(crate) fn wal_pages_after_commit() -> i32 {
    WAL_PAGES.with(|p| p.replace(0))
}

/// The background checkpoint thread's switch: [`Checkpointer::nudge`] after a commit,
/// [`Checkpointer::stop`] on drop.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    state: Mutex<State>,
    wake: Condvar,
    fold_after: i32,
}

#[derive(Debug, Default)]
struct State {
    due: bool,
    stop: bool,
    /// Checkpoints run (what the store's tests watch).
    runs: u64,
}

impl Checkpointer {
    /// A checkpointer that folds once a commit leaves `fold_after` pages or more in the WAL;
    /// [`Checkpointer::spawn`] starts its thread.
    pub(crate) fn new(fold_after: i32) -> Arc<Checkpointer> {
        Arc::new(Checkpointer {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            fold_after: fold_after.max(1),
        })
    }

    /// Start the thread on a connection of its own to `path`; `shared` is the store whose
    /// lock the last pass takes.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        path: &Path,
        shared: Arc<Shared>,
    ) -> Result<std::thread::JoinHandle<()>, crate::StoreError> {
        let conn = Connection::open(path)?;
        // A checkpoint fsyncs the main file before the WAL may be reused.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let checkpointer = self.clone();
        std::thread::Builder::new()
            .name("userops-store-checkpoint".into())
            .spawn(move || checkpointer.run(&conn, &shared))
            .map_err(|e| crate::StoreError::Engine(userops::Error::Internal(e.to_string())))
    }

    /// A commit left `pages` in the WAL: fold it if that is past the threshold.
    pub(crate) fn nudge(&self, pages: i32) {
        if pages >= self.fold_after {
            self.lock().due = true;
            self.wake.notify_one();
        }
    }

    /// Stop the thread after the checkpoint it is running, if any.
    pub(crate) fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_one();
    }

    /// Checkpoints run so far.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> u64 {
        self.lock().runs
    }

    /// Passes without a lock until little is left, then the last one under the store's lock.
    fn fold(&self, conn: &Connection, shared: &Shared) -> rusqlite::Result<()> {
        let (mut frames, mut settled) = (0, false);
        for _ in 0..MAX_PASSES {
            let log = passive(conn)?;
            let appended = log - frames;
            frames = log;
            if self.lock().stop {
                return Ok(());
            }
            if appended < LAST_PASS_FRAMES {
                settled = true;
                break;
            }
        }
        if !settled {
            // Writes outpace the passes: a last pass under the lock would be a long one. The
            // next commit's nudge tries again.
            return Ok(());
        }
        let deadline = Instant::now() + LAST_PASS_PATIENCE;
        loop {
            {
                let db = lock(&shared.db);
                if db.stop || db.poisoned.is_some() {
                    return Ok(());
                }
                if db.conn.is_autocommit() {
                    passive(conn)?;
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self, conn: &Connection, shared: &Shared) {
        let mut state = self.lock();
        loop {
            if state.stop {
                return;
            }
            if !state.due {
                state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            state.due = false;
            drop(state);
            // A failure (another checkpoint running, an I/O error) leaves the pages in the WAL,
            // where recovery reads them as well; the next nudge tries again, and opening the
            // store folds the WAL in any case.
            let _ = self.fold(conn, shared);
            state = self.lock();
            state.runs += 1;
        }
    }
}

/// One passive checkpoint; the frames in the WAL it saw (all copied unless a reader held some).
fn passive(conn: &Connection) -> rusqlite::Result<i32> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}
