//! Durability for [`userops::Engine`]: an embedded SQLite database (WAL mode) holding an
//! append-only journal of accepted commands, periodic snapshots of the engine's state, and
//! materialized tables for operators.
//!
//! - **Recovery** is the last snapshot plus a replay of the journal after it. Replay is
//!   deterministic: it gives the same state, byte for byte (`userops check` verifies it).
//! - **Commit modes** ([`Durability`]): every command is committed before [`Store::execute`]
//!   returns, or commands are committed in groups of N or within T ms (a background flusher
//!   thread commits a group whose oldest command is T ms old even when no further call comes;
//!   it is stopped and joined when the store is dropped). [`Store::submit`] tells the caller
//!   the command's sequence number and whether it is durable yet, [`Store::durable_seq`] how far
//!   durability reaches, [`Store::wait_durable`] waits for it. [`Store::ingest_batch`] runs one
//!   transaction per chunk.
//! - **Snapshots** are stored in chunks (`snapshot` holds each one's sequence number, length,
//!   chunk count and checksum; `snapshot_chunk` its bytes, at most 64 MiB a row), so a state
//!   larger than SQLite's 1 GB blob limit is stored and read back like any other. A snapshot
//!   is serialized once, through a chunk-sized buffer; it is read back through incremental
//!   blob I/O. The two newest are kept.
//! - **Replay** reads each journal record once, verifies its checksum, decodes it in one pass
//!   ([`Command::from_json`]) and executes it without a second identifier-hashing pass and
//!   without judging it again by admission rules newer than the journal ([`Engine::replay`]):
//!   a journal written by an older build replays as it was accepted.
//! - **Corruption**: a record that fails its checksum (or does not decode) at the very end of
//!   the journal is a torn write: it is dropped and reported in [`Store::warnings`]. Anywhere
//!   else it is [`StoreError::Corrupt`] with its sequence number; nothing is skipped silently.
//! - **Checkpoints**: the WAL is folded into the main file by a thread of the store's own
//!   (`userops-store-checkpoint`) once it holds 64 MiB, never inside a commit: a write (and
//!   under [`Concurrency::Lock`] a read) does not wait for a fold.
//! - **Schema** versions are kept in `PRAGMA user_version` and migrated on open
//!   ([`SCHEMA_VERSION`]); a newer schema, a directory, a read-only file, a file that is not a
//!   userops store are typed errors and leave the file untouched.
//! - **Privacy**: commands are journaled after [`Engine::prepare`] (so with identifier hashing
//!   on, plain identifiers never reach the file); an `erase` also redacts every earlier journal
//!   record that names the erased person (an identifier value anywhere in its text — a phone
//!   also as written without its country code —, or one of the person's OneIDs) and replaces
//!   the snapshots, in the same transaction, then folds the WAL into the main file
//!   (`secure_delete` zeroes what was removed). In the engine the person's ledger postings stay,
//!   re-keyed to a pseudonym with keys and free text cleared, so balances still sum to zero.
//! - **Audit**: operator commands (`set_consent`, `erase`, ...) are in the engine's audit log
//!   (journaled; table `audit`); what the store itself does — open and recover, truncate a torn
//!   record, migrate, snapshot, redact for an erasure, rewrite its tables — goes to
//!   `store_audit`. Both refuse `UPDATE` and `DELETE` by triggers.
//! - **Materialized tables** ([`project`]): `identities`, `persons`, `consent`, `audit`,
//!   `postings`, `tags` (columns in the [`project`] docs), written in the journal's
//!   transaction and rewritten after a migration, a repaired torn record or an interrupted
//!   projection; `userops check` compares them with the replayed state.
//!
//! A store is one writer: open a file from one process at a time (a second writer's records
//! collide on sequence numbers and it stops with an error rather than interleaving).
//!
//! ```
//! use userops_store::Store;
//! use userops::{Command, Event};
//! let dir = std::env::temp_dir().join(format!("userops-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("pool.db");
//! # let _ = std::fs::remove_file(&path);
//! let event = Event::from_json(r#"{"kind": "register", "key": "r1", "time": "2026-01-01T00:00:00Z",
//!     "source": {"platform": "app", "program": "brand-a"}, "user": {"kind": "member_no", "value": "M1"}}"#).unwrap();
//! {
//!     let mut store = Store::open(&path).unwrap();
//!     store.execute(Command::ingest(event)).unwrap();
//! }
//! let store = Store::open(&path).unwrap();
//! assert_eq!(store.engine().stats().events, 1);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
mod check;
mod checkpoint;
mod handle;
pub mod history;
mod journal;
pub mod project;
mod schema;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use checkpoint::Checkpointer;
use rusqlite::{params, Connection};
use userops::campaigns::{CampaignsCommand, CampaignsOutput};
use userops::privacy::{PrivacyCommand, PrivacyOutput};
use userops::shared::{
    AnalysisView, Concurrency, ReadView, SharedEngine, Writer, AUTOMATION_CHUNK_USERS,
};
use userops::{Command, Config, Engine, Event, Output, Receipt};

pub use check::{check, CheckReport};
pub use handle::EngineHandle;
pub use journal::REDACTED;
pub use project::Projection;
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

/// `Engine::open(path)`: the Rust front door to a durable engine, the same as
/// [`Store::open`].
///
/// ```
/// use userops::Engine;
/// use userops_store::OpenEngine;
/// let dir = std::env::temp_dir().join(format!("userops-open-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let store = Engine::open(dir.join("pool.db")).unwrap();
/// assert_eq!(store.engine().stats().events, 0);
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub trait OpenEngine {
    /// Open (or create) the durable engine at `path`; see [`Store::open`].
    ///
    /// # Errors
    ///
    /// See [`Store::open`].
    fn open(path: impl AsRef<Path>) -> Result<Store, StoreError>;
}

impl OpenEngine for Engine {
    fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open(path)
    }
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The engine refused the command; nothing was written.
    #[error(transparent)]
    Engine(#[from] userops::Error),
    /// SQLite failed (I/O, a locked database, ...).
    #[error("storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A journal record or snapshot that cannot be used, by sequence number. Never skipped.
    #[error("record {seq} is corrupt: {reason}")]
    Corrupt {
        /// Its sequence number.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
    /// The path cannot hold a database (a directory, for instance).
    #[error("cannot open {path}: {reason}")]
    BadPath {
        /// The path, as given.
        path: String,
        /// What is wrong with it (a directory, no such file, or the system's or SQLite's message).
        reason: String,
    },
    /// The file is read-only; a store must be able to write its journal.
    #[error("{path} is read-only")]
    ReadOnly {
        /// The path, as given.
        path: String,
    },
    /// The file is not a userops store (not SQLite, or another application's database).
    #[error("{path} is not a userops store: {reason}")]
    NotAStore {
        /// The path, as given.
        path: String,
        /// Why it is not one, for a person to read.
        reason: String,
    },
    /// The file was written by a newer userops with a schema this build does not know.
    #[error("the store has schema version {found}; this build supports up to {supported}")]
    NewerSchema {
        /// The file's schema version.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// The file was written by an older userops; opening it with [`Store::open`] migrates it.
    /// Returned by readers that never write ([`history`]).
    #[error("the store has schema version {found}; open it once with this build to migrate it to {current}")]
    OldSchema {
        /// The file's schema version.
        found: i64,
        /// [`SCHEMA_VERSION`].
        current: i64,
    },
    /// An earlier write failed after the engine had applied a command, so memory and disk may
    /// differ. Reopen the store: recovery restores the durable state.
    #[error("the store stopped after a failed write ({0}); reopen it to recover")]
    Poisoned(String),
}

impl From<StoreError> for userops::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Engine(e) => e,
            StoreError::Corrupt { seq, reason } => userops::Error::Corrupt { seq, reason },
            other => userops::Error::Storage(other.to_string()),
        }
    }
}

/// When an accepted command is committed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Each command is committed (and fsynced) before `execute` returns.
    EveryCommand,
    /// Commands are committed together once `max_commands` are pending or the oldest pending
    /// one waited `max_delay` (a background thread commits on time even when no further call
    /// comes; [`Store::flush`] commits at once, and dropping the store flushes). Much faster; a
    /// crash loses the pending commands, which were reported as not yet durable.
    Group {
        /// Commit when this many commands are pending (at least 1).
        max_commands: usize,
        /// Commit when the oldest pending command is this old.
        max_delay: Duration,
    },
}

impl Durability {
    /// Group commit of 1,000 commands or 10 ms.
    pub fn group() -> Durability {
        Durability::Group {
            max_commands: 1000,
            max_delay: Duration::from_millis(10),
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = userops::Error;

    /// `"every"` ([`Durability::EveryCommand`]) or `"group"` ([`Durability::group`]), as the
    /// bindings and the service name them.
    fn from_str(s: &str) -> Result<Self, userops::Error> {
        match s {
            "every" => Ok(Durability::EveryCommand),
            "group" => Ok(Durability::group()),
            other => Err(userops::Error::invalid_argument(
                "durability",
                format!("{other:?} is not \"every\" or \"group\""),
            )),
        }
    }
}

/// A non-fatal finding of recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// The last journal record was torn (an interrupted write) and was removed.
    TornTail {
        /// Its sequence number.
        seq: i64,
        /// What was wrong with it.
        reason: String,
    },
    /// The newest snapshot was written in an older format; the state was rebuilt by replaying
    /// the whole journal instead, and a snapshot in the current format was written at open.
    OldSnapshot {
        /// The snapshot's sequence number.
        seq: i64,
    },
    /// The newest snapshot was written in an older format and an erasure redacted part of the
    /// journal, so the journal could not replace it: it was read as it is
    /// ([`Engine::upgrade_snapshot`]: the order book does not know the orders before it), and
    /// a snapshot in the current format was written at open.
    UpgradedSnapshot {
        /// The snapshot's sequence number.
        seq: i64,
        /// The snapshot's format number.
        format: u32,
    },
    /// The newest snapshot was written in an older encoding of the current state
    /// ([`userops::SNAPSHOT_FORMAT_JSON`], JSON text): it was read as it is, and a snapshot in
    /// the current format was written at open.
    ConvertedSnapshot {
        /// The snapshot's sequence number.
        seq: i64,
        /// The snapshot's format number.
        format: u32,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::TornTail { seq, reason } => {
                write!(f, "torn last journal record {seq} removed ({reason})")
            }
            Warning::OldSnapshot { seq } => write!(
                f,
                "snapshot {seq} is in an older format: replayed the whole journal instead"
            ),
            Warning::UpgradedSnapshot { seq, format } => write!(
                f,
                "snapshot {seq} is in format {format} and the journal before it was redacted: \
                 read it as it is (orders before it are unknown to the order book)"
            ),
            Warning::ConvertedSnapshot { seq, format } => write!(
                f,
                "snapshot {seq} is in format {format}: read it as it is and rewrote it in \
                 format {}",
                userops::SNAPSHOT_FORMAT
            ),
        }
    }
}

/// What [`Store::submit`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// The command's output.
    pub output: Output,
    /// The journal sequence number, for a command that changed state (`None` for queries and
    /// replayed idempotency keys).
    pub seq: Option<i64>,
    /// Whether the command is on disk: always for [`Durability::EveryCommand`]; under group
    /// commit, once [`Store::durable_seq`] reaches `seq`.
    pub durable: bool,
}

/// Options for [`Store::open_with_options`], built with [`StoreOptions::new`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    config: Config,
    durability: Durability,
    snapshot_every: u64,
    page_cache_mib: u32,
    concurrency: Concurrency,
    /// WAL pages after which the checkpoint thread folds it (small in tests).
    fold_wal_after: i32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            config: Config::default(),
            durability: Durability::EveryCommand,
            snapshot_every: 10_000,
            page_cache_mib: 64,
            concurrency: Concurrency::Lock,
            fold_wal_after: checkpoint::FOLD_AFTER_PAGES,
        }
    }
}

impl StoreOptions {
    /// Defaults: default config, every command durable, a snapshot every 10,000 commands, a
    /// 64 MiB page cache.
    pub fn new() -> StoreOptions {
        StoreOptions::default()
    }

    /// The engine config for a new store (an existing store keeps the config it was created
    /// with: it is part of the snapshots and the replayed state).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The commit mode.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = match durability {
            Durability::Group {
                max_commands,
                max_delay,
            } => Durability::Group {
                max_commands: max_commands.max(1),
                max_delay,
            },
            d => d,
        };
        self
    }

    /// Write a snapshot after this many journaled commands (at least 1).
    pub fn snapshot_every(mut self, commands: u64) -> Self {
        self.snapshot_every = commands.max(1);
        self
    }

    /// SQLite's page cache for the store's connection, in MiB (at least 1). The materialized
    /// tables are updated at random keys, so a commit touches pages all over the file; with
    /// SQLite's default 2 MiB they are read back from the OS on every batch (figures for the
    /// default 64 MiB: benches/README.md, "`userops demo` end to end").
    pub fn page_cache_mib(mut self, mib: u32) -> Self {
        self.page_cache_mib = mib.max(1);
        self
    }

    /// How threads share the store's engine (default [`Concurrency::Lock`]: one copy, reads
    /// wait for writes and their commit, snapshots are written inside the write that makes
    /// them due). [`Concurrency::Replicas`] is for online services: reads never wait for a
    /// write or its commit, and snapshots are written from the analysis copy on a background
    /// thread (`userops-store-snapshot`) without holding writers or readers; three copies of
    /// the state in memory. See [`userops::shared`].
    pub fn concurrency(mut self, concurrency: Concurrency) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Open the store with these options.
    ///
    /// # Errors
    ///
    /// See [`Store::open`].
    pub fn open(self, path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with_options(path, self)
    }
}

/// An engine backed by a SQLite file. `Send + Sync`: a service shares one store (in an
/// `Arc`) between its threads; every method takes `&self`.
///
/// Writes are one at a time, journaled in the order they are applied. Reads
/// ([`Command::mutates`] false) run on a [`ReadView`] of the engine, never through the
/// journal; with [`Concurrency::Replicas`] they never wait for a write or its commit (see
/// [`StoreOptions::concurrency`] and [`userops::shared`] for what a read may see). A write is
/// visible to reads once it is journaled: under [`Durability::EveryCommand`] once committed
/// (when [`Store::execute`] returns), under group commit as soon as it is applied, before
/// it is durable (a crash then loses it together with every later command).
///
/// Under group commit a background thread (the flusher) commits a group once its oldest
/// command has waited `max_delay`, even when no further call comes; it stops when the store is
/// dropped, after a last commit.
#[derive(Debug)]
pub struct Store {
    engine: SharedEngine,
    /// The journal sequence number of the state the shared engine started from: its
    /// [`ReadView::version`] counts journal records from there.
    base_seq: i64,
    path: PathBuf,
    options: StoreOptions,
    projections: Vec<Box<dyn Projection>>,
    shared: Arc<Shared>,
    flusher: Option<std::thread::JoinHandle<()>>,
    /// Folds the WAL into the main file (see [`checkpoint`]).
    checkpoint_thread: Option<std::thread::JoinHandle<()>>,
    /// The background snapshot in progress (replicas only).
    snapshotter: Mutex<Option<std::thread::JoinHandle<()>>>,
    warnings: Vec<Warning>,
}

/// What the caller's thread, the flusher and the snapshot thread share.
#[derive(Debug)]
struct Shared {
    db: Mutex<Db>,
    /// Signalled when a group starts (the flusher then waits for its deadline) and on drop.
    wake: Condvar,
    /// Signalled after every commit ([`Store::wait_durable`] waits on it).
    committed: Condvar,
    /// Set to make a background snapshot give up (a poisoned store is dropped).
    abort_snapshot: AtomicBool,
    /// Why the last background snapshot failed, if it did (not fatal: recovery replays more).
    snapshot_error: Mutex<Option<String>>,
    /// Held while a snapshot is written beside the live journal: a periodic and a requested
    /// snapshot of the same analysis copy are at the same seq, and their chunks would collide;
    /// the second one then finds the first one's header and has nothing to do.
    snapshot_writer: Mutex<()>,
}

/// The connection and the commit state, behind one lock: a command is staged (executed,
/// journaled, projected) and a group committed under it, so the flusher never commits half a
/// command.
#[derive(Debug)]
struct Db {
    conn: Connection,
    /// Last journaled sequence number (committed or pending).
    last_seq: i64,
    /// Last committed sequence number.
    durable_seq: i64,
    /// Journaled commands not yet committed, and when the first of them was.
    pending: usize,
    pending_since: Option<Instant>,
    poisoned: Option<String>,
    stop: bool,
    /// Commands journaled since the last snapshot.
    since_snapshot: u64,
    /// Told the WAL's size after each commit: the journal's connection never checkpoints.
    checkpointer: Arc<Checkpointer>,
}

fn lock(m: &Mutex<Db>) -> MutexGuard<'_, Db> {
    // A panic while holding the lock leaves a connection SQLite itself keeps consistent (an
    // open transaction is rolled back or committed whole), so the state is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Db {
    fn check_poisoned(&self) -> Result<(), StoreError> {
        match &self.poisoned {
            Some(why) => Err(StoreError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// A write failed after the engine changed: refuse everything until reopened.
    fn poison(&mut self, e: impl std::fmt::Display) -> StoreError {
        let why = e.to_string();
        let _ = self.conn.execute_batch("ROLLBACK");
        self.pending = 0;
        self.pending_since = None;
        self.poisoned = Some(why.clone());
        StoreError::Poisoned(why)
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        if self.conn.is_autocommit() {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        let stamp = self.last_seq.to_string();
        let result = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('projected_seq', ?1)")
            .and_then(|mut s| s.execute([stamp]))
            .and_then(|_| self.conn.execute_batch("COMMIT"));
        if let Err(e) = result {
            return Err(self.poison(e));
        }
        self.durable_seq = self.last_seq;
        self.pending = 0;
        self.pending_since = None;
        self.checkpointer
            .nudge(checkpoint::wal_pages_after_commit());
        Ok(())
    }

    /// Append to `store_audit` (inside the open transaction, if any).
    fn audit(&self, action: &str, target: &str, detail: &str) -> rusqlite::Result<()> {
        schema::store_audit(&self.conn, action, target, detail)
    }

    /// Record in the audit log what recovery warned of; returns whether a torn tail was cut.
    fn audit_warnings(&self, warnings: &[Warning]) -> rusqlite::Result<bool> {
        let mut torn = false;
        for w in warnings {
            match w {
                Warning::TornTail { seq, reason } => {
                    torn = true;
                    self.audit(
                        "truncate_torn_tail",
                        &format!("journal:{seq}"),
                        &format!("torn last record removed at open ({reason})"),
                    )?;
                }
                Warning::OldSnapshot { seq } => self.audit(
                    "replay_old_snapshot",
                    &format!("snapshot:{seq}"),
                    "snapshot in an older format; the whole journal was replayed",
                )?,
                Warning::UpgradedSnapshot { seq, format } => self.audit(
                    "upgrade_old_snapshot",
                    &format!("snapshot:{seq}"),
                    &format!(
                        "snapshot in format {format}, journal redacted before it: read \
                             as it is"
                    ),
                )?,
                Warning::ConvertedSnapshot { seq, format } => self.audit(
                    "convert_old_snapshot",
                    &format!("snapshot:{seq}"),
                    &format!(
                        "snapshot in format {format}, the same state in an older encoding: \
                         read as it is"
                    ),
                )?,
            }
        }
        Ok(torn)
    }
}

/// The flusher: commits a group once its oldest command is `max_delay` old.
fn flusher(shared: Arc<Shared>, max_delay: Duration) {
    let mut db = lock(&shared.db);
    loop {
        if db.stop {
            return;
        }
        match db.pending_since {
            None => db = shared.wake.wait(db).unwrap_or_else(|e| e.into_inner()),
            Some(since) => {
                let now = Instant::now();
                let due = since + max_delay;
                if now >= due {
                    // A failure poisons the store; the owner learns it at its next call.
                    let _ = db.commit();
                    shared.committed.notify_all();
                } else {
                    db = shared
                        .wake
                        .wait_timeout(db, due - now)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
            }
        }
    }
}

/// SQLite's own busy wait (`busy_timeout`) sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and
/// then 100 ms between tries: a journal commit that meets a background snapshot's chunk
/// transaction (a few milliseconds) would go on sleeping up to 100 ms after the lock was
/// free. Both the journal's and the snapshot's connections retry every 250 µs instead, for
/// `TRIES` tries (20,000: at least 5 s; 120,000: at least 30 s).
fn retry_busy<const TRIES: i32>(tries: i32) -> bool {
    if tries >= TRIES {
        return false;
    }
    std::thread::sleep(Duration::from_micros(250));
    true
}

/// Open the SQLite file with the store's settings.
fn open_connection(path: &Path, options: &StoreOptions) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_handler(Some(retry_busy::<20_000>))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk (WAL fsynced) when it returns; that is what makes an
    // acknowledgement a promise.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Deleted and rewritten content is zeroed, not left in free pages: erasure must not
    // leave the erased values readable in the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Negative: a size in KiB rather than in pages.
    conn.pragma_update(
        None,
        "cache_size",
        -(i64::from(options.page_cache_mib) * 1024),
    )?;
    // The WAL is folded by the store's checkpoint thread, never inside a commit made under
    // the store's lock.
    checkpoint::hand_off(&conn)?;
    Ok(conn)
}

impl Store {
    /// Open (or create) the store at `path` with the default options, recovering its state.
    ///
    /// # Errors
    ///
    /// - [`StoreError::BadPath`]: the path is a directory, not a regular file, or cannot be opened.
    /// - [`StoreError::ReadOnly`]: the file cannot be written.
    /// - [`StoreError::NotAStore`]: not a SQLite database, or another application's.
    /// - [`StoreError::NewerSchema`]: written by a newer build.
    /// - [`StoreError::Corrupt`]: a journal record (other than a torn last one, which is removed
    ///   and reported as a [`Warning`]) or the snapshot recovery needs does not check out, or
    ///   the engine refuses a journaled command on replay; the record's sequence number is
    ///   named, and nothing is skipped.
    /// - [`StoreError::Sqlite`]: SQLite failed (I/O, a database locked past the 5 s busy timeout).
    ///
    /// Through [`userops::Error`] these are `storage`, except `corrupt` and the engine's own codes.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with_options(path, StoreOptions::default())
    }

    /// Open (or create) with a config for a new store.
    ///
    /// # Errors
    ///
    /// See [`Store::open`].
    pub fn open_with(path: impl AsRef<Path>, config: Config) -> Result<Store, StoreError> {
        Store::open_with_options(path, StoreOptions::new().config(config))
    }

    /// Open (or create) with options.
    ///
    /// # Errors
    ///
    /// See [`Store::open`].
    pub fn open_with_options(
        path: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let path = path.as_ref();
        let found = schema::preflight(path, true)?;
        let mut conn = open_connection(path, &options)?;
        let migrated = schema::migrate(&mut conn, found.version)?;
        // The config a store was created with is part of its history: replay needs it.
        let config = schema::creation_config(&conn, &options.config)?;
        let projections = project::default_projections();
        conn.execute_batch(schema::STORE_AUDIT)?;
        for p in &projections {
            conn.execute_batch(p.schema())?;
        }
        let recovered = recover(&conn, config)?;
        // An erasure folds the WAL into the main file right after its commit; a crash in
        // between leaves the old pages in the WAL, so fold it now, before anything else.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let last_seq = recovered.last_seq;
        let checkpointer = Checkpointer::new(options.fold_wal_after);
        let db = Db {
            conn,
            last_seq,
            durable_seq: last_seq,
            pending: 0,
            pending_since: None,
            poisoned: None,
            stop: false,
            since_snapshot: 0,
            checkpointer: checkpointer.clone(),
        };
        let shared = Arc::new(Shared {
            db: Mutex::new(db),
            wake: Condvar::new(),
            committed: Condvar::new(),
            abort_snapshot: AtomicBool::new(false),
            snapshot_error: Mutex::new(None),
            snapshot_writer: Mutex::new(()),
        });
        let checkpoint_thread = checkpointer.spawn(path, shared.clone())?;
        let engine = recovered.engine;
        let mut store = Store {
            engine: SharedEngine::with_concurrency(Engine::default(), Concurrency::Lock),
            base_seq: last_seq,
            path: path.to_owned(),
            options,
            projections,
            shared,
            flusher: None,
            checkpoint_thread: Some(checkpoint_thread),
            snapshotter: Mutex::new(None),
            warnings: recovered.warnings,
        };
        let stamp = store.meta("projected_seq")?;
        {
            let shared = store.shared.clone();
            let mut db = lock(&shared.db);
            db.begin()?;
            let opened = (|| -> rusqlite::Result<usize> {
                // Chunks without a header: a background snapshot cut short by a crash.
                let orphans = db.conn.execute(
                    "DELETE FROM snapshot_chunk WHERE seq NOT IN (SELECT seq FROM snapshot)",
                    [],
                )?;
                if found.version != 0 && migrated {
                    db.audit(
                        "migrate",
                        "schema",
                        &format!("version {} to {}", found.version, SCHEMA_VERSION),
                    )?;
                }
                let torn = db.audit_warnings(&store.warnings)?;
                if (migrated && found.version != 0)
                    || torn
                    || stamp.as_deref().unwrap_or("0") != last_seq.to_string()
                {
                    for p in &store.projections {
                        p.rebuild(&db.conn, &engine)?;
                    }
                    db.audit("rebuild_tables", "tables", "materialized tables rewritten")?;
                }
                db.audit(
                    "open",
                    &format!("seq:{last_seq}"),
                    &format!(
                        "recovered from {} and {} journal record(s)",
                        match recovered.base {
                            0 => "the empty engine".to_owned(),
                            s => format!("snapshot {s}"),
                        },
                        recovered.replayed
                    ),
                )?;
                Ok(orphans)
            })();
            let orphans = match opened {
                Ok(n) => n,
                Err(e) => {
                    let _ = db.conn.execute_batch("ROLLBACK");
                    return Err(e.into());
                }
            };
            db.commit()?;
            // Deleted chunks were zeroed in the WAL only; the main file still holds them until
            // a checkpoint, and a snapshot cut short may have held a person erased since.
            if orphans > 0 {
                db.conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            }
            // A snapshot in an older format is replaced now, so that the next open reads the
            // current format and `check` finds a snapshot to compare its replay with.
            let upgraded = store.warnings.iter().any(|w| {
                matches!(
                    w,
                    Warning::OldSnapshot { .. }
                        | Warning::UpgradedSnapshot { .. }
                        | Warning::ConvertedSnapshot { .. }
                )
            });
            if upgraded {
                db.begin()?;
                if let Err(e) = store.write_snapshot(&mut db, &engine, "format upgrade") {
                    return Err(db.poison(e));
                }
                db.commit()?;
            }
        }
        store.engine = SharedEngine::with_concurrency(engine, store.options.concurrency);
        if let Durability::Group { max_delay, .. } = store.options.durability {
            let shared = store.shared.clone();
            store.flusher = Some(
                std::thread::Builder::new()
                    .name("userops-store-flusher".into())
                    .spawn(move || flusher(shared, max_delay))
                    .map_err(|e| StoreError::Engine(userops::Error::Internal(e.to_string())))?,
            );
        }
        Ok(store)
    }

    /// Options builder (same as [`StoreOptions::new`]).
    pub fn options() -> StoreOptions {
        StoreOptions::new()
    }

    /// The engine as of the newest published write, to read (changes go through
    /// [`Store::execute`]). Let go of it soon (the writer reuses the copy), and never hold it
    /// while writing from the same thread.
    pub fn engine(&self) -> ReadView<'_> {
        self.engine.read()
    }

    /// The shared engine: [`SharedEngine::analysis`] for long jobs on a state of their own.
    pub fn shared(&self) -> &SharedEngine {
        &self.engine
    }

    /// The journal sequence number of the state a view holds.
    pub fn seq_of(&self, view: &ReadView<'_>) -> i64 {
        self.base_seq + view.version() as i64
    }

    /// Why the last background snapshot failed, if it did (it is not fatal: recovery replays
    /// the journal from the snapshot before it; the next one is tried after `snapshot_every`
    /// more commands).
    pub fn snapshot_error(&self) -> Option<String> {
        lock_any(&self.shared.snapshot_error).clone()
    }

    /// The path of the store's database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What recovery found and repaired when the store was opened.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The sequence number of the last journaled command (committed or pending).
    pub fn last_seq(&self) -> i64 {
        lock(&self.shared.db).last_seq
    }

    /// Every command up to this sequence number is on disk. Under group commit it grows on its
    /// own as the flusher commits.
    pub fn durable_seq(&self) -> i64 {
        lock(&self.shared.db).durable_seq
    }

    /// Wait until the command journaled at `seq` is durable, at most `timeout`; whether it is.
    /// Under group commit the flusher makes it durable within `max_delay` of the first command
    /// of its group.
    pub fn wait_durable(&self, seq: i64, timeout: Duration) -> bool {
        self.shared.wait_durable(seq, timeout)
    }

    /// The commit mode.
    pub fn durability(&self) -> Durability {
        self.options.durability
    }
}

impl Shared {
    fn wait_durable(&self, seq: i64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut db = lock(&self.db);
        loop {
            if db.durable_seq >= seq {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || db.poisoned.is_some() {
                return false;
            }
            if db.pending_since.is_none() && db.last_seq < seq {
                // Nothing pending can reach `seq`: it was never journaled.
                return false;
            }
            db = self
                .committed
                .wait_timeout(db, (deadline - now).min(Duration::from_millis(50)))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

impl Store {
    /// Execute a command; the output. Under [`Durability::EveryCommand`] a command that changed
    /// state is durable when this returns; under group commit use [`Store::submit`] to learn
    /// when.
    ///
    /// # Errors
    ///
    /// [`StoreError::Engine`] when the engine refuses the command: nothing is journaled or
    /// changed (see [`Engine::execute`](userops::Engine::execute)). [`StoreError::Poisoned`]
    /// when writing the journal fails, and from every write after it until the store is
    /// reopened (recovery restores the durable state). [`StoreError::Sqlite`] when a
    /// transaction cannot begin.
    pub fn execute(&self, command: Command) -> Result<Output, StoreError> {
        self.submit(command).map(|a| a.output)
    }

    /// The write lock of the shared engine, or why the store takes no writes.
    fn writer(&self) -> Result<Writer<'_>, StoreError> {
        self.engine
            .write()
            .map_err(|e| match lock(&self.shared.db).check_poisoned() {
                Err(poisoned) => poisoned,
                Ok(()) => e.into(),
            })
    }

    /// Execute a command and say where it stands: its journal sequence number and whether it
    /// is durable yet. A read runs on a view of the engine (see [`userops::shared::Route`])
    /// and touches no lock of the journal.
    ///
    /// # Errors
    ///
    /// As [`Store::execute`].
    pub fn submit(&self, command: Command) -> Result<Ack, StoreError> {
        if let Command::Campaigns(CampaignsCommand::RunAutomation { now }) = command {
            return self.run_automation(now);
        }
        if !command.mutates() {
            return Ok(Ack {
                output: self.engine.execute(command)?,
                seq: None,
                durable: true,
            });
        }
        let mut writer = self.writer()?;
        let shared = self.shared.clone();
        let mut db = lock(&shared.db);
        db.check_poisoned()?;
        self.commit_if_due(&mut db)?;
        let was_idle = db.pending == 0;
        let staged = self.stage(&mut db, &mut writer, command)?;
        if staged.force_commit {
            db.commit()?;
            // The WAL still holds the pages as they were before the redaction: fold it into the
            // main file and truncate it.
            if let Err(e) = db
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            {
                return Err(db.poison(e));
            }
        } else if db.pending > 0
            && match self.options.durability {
                Durability::EveryCommand => true,
                Durability::Group { max_commands, .. } => db.pending >= max_commands,
            }
        {
            db.commit()?;
        } else if was_idle && db.pending > 0 {
            // A group started: the flusher now waits for its deadline.
            shared.wake.notify_all();
        }
        // Under EveryCommand the command is committed by now: readers see only what is
        // durable. Under group commit they see it before it is.
        writer.publish();
        let durable = staged.seq.is_none_or(|s| s <= db.durable_seq);
        let due = db.since_snapshot >= self.options.snapshot_every;
        drop(db);
        if due {
            self.snapshot_in_background(&writer);
        }
        Ok(Ack {
            durable,
            output: staged.output,
            seq: staged.seq,
        })
    }

    /// `run_automation` planned off the write lock and journaled chunk by chunk, each chunk an
    /// `apply_automation_plan` command committed like any write (see
    /// [`SharedEngine::plan_automation`] for what a reader sees and the guarantee). The ack
    /// carries the rows of every chunk and the last chunk's sequence number (`None` when
    /// nothing fired: nothing is journaled).
    fn run_automation(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Ack, StoreError> {
        let mut rows = Vec::new();
        let (mut seq, mut durable) = (None, true);
        self.engine
            .plan_automation(now, AUTOMATION_CHUNK_USERS, |command| {
                let ack = self.submit(command)?;
                match ack.output {
                    Output::Campaigns(CampaignsOutput::Plan(p)) => rows.extend(p),
                    other => {
                        return Err(StoreError::Engine(userops::Error::Internal(format!(
                            "apply_automation_plan returned {other:?}"
                        ))))
                    }
                }
                seq = ack.seq.or(seq);
                durable &= ack.durable;
                Ok(())
            })?;
        Ok(Ack {
            output: Output::Campaigns(CampaignsOutput::Plan(rows)),
            seq,
            durable,
        })
    }

    /// Ingest one event (durability as for [`Store::execute`]).
    ///
    /// # Errors
    ///
    /// As [`Store::execute`] (the engine's refusals: [`Engine::ingest`](userops::Engine::ingest)).
    pub fn ingest(&self, event: Event) -> Result<Receipt, StoreError> {
        match self.execute(Command::ingest(event))? {
            Output::Receipt(r) => Ok(r),
            other => Err(userops::Error::Internal(format!("ingest returned {other:?}")).into()),
        }
    }

    /// Ingest many events, one transaction per `chunk` events (each chunk is durable before
    /// the next starts, whatever the commit mode). One result per event: a refused event is
    /// not journaled and does not stop the others. Storage errors stop the batch.
    ///
    /// # Errors
    ///
    /// A refused event is no error of the batch: its own result says why. The batch stops at a
    /// storage error: [`StoreError::Poisoned`] when a commit fails, or after an earlier failed
    /// write (chunks committed before it stay durable); [`StoreError::Sqlite`] when a transaction
    /// cannot begin. Before any event, [`StoreError::Engine`] when the engine cannot be written
    /// from this thread (see [`SharedEngine::write`]).
    pub fn ingest_batch(
        &self,
        events: impl IntoIterator<Item = Event>,
        chunk: usize,
    ) -> Result<Vec<Result<Receipt, userops::Error>>, StoreError> {
        let mut writer = self.writer()?;
        let shared = self.shared.clone();
        // Held for the whole batch: the flusher must not commit part of a chunk.
        let mut db = lock(&shared.db);
        db.check_poisoned()?;
        db.commit()?;
        let chunk = chunk.max(1);
        let mut out = Vec::new();
        let mut in_chunk = 0;
        for event in events {
            match self.stage(&mut db, &mut writer, Command::ingest(event)) {
                Ok(s) => match s.output {
                    Output::Receipt(r) => out.push(Ok(r)),
                    other => out.push(Err(userops::Error::Internal(format!("{other:?}")))),
                },
                Err(StoreError::Engine(e)) => out.push(Err(e)),
                Err(e) => return Err(e),
            }
            in_chunk += 1;
            if in_chunk == chunk {
                db.commit()?;
                writer.publish();
                in_chunk = 0;
            }
        }
        db.commit()?;
        writer.publish();
        let due = db.since_snapshot >= self.options.snapshot_every;
        drop(db);
        if due {
            self.snapshot_in_background(&writer);
        }
        Ok(out)
    }

    /// Commit pending commands now.
    ///
    /// # Errors
    ///
    /// [`StoreError::Poisoned`] when the commit fails, or after an earlier failed write.
    pub fn flush(&self) -> Result<(), StoreError> {
        let mut db = lock(&self.shared.db);
        db.check_poisoned()?;
        db.commit()
    }

    /// Write a snapshot of the current state (committing pending commands with it), so that
    /// recovery replays only what follows. With [`Concurrency::Replicas`] it is written from
    /// the analysis copy, without holding writers or readers (this call returns when it is
    /// stored); with a lock, inside the write lock.
    ///
    /// # Errors
    ///
    /// [`StoreError::Poisoned`] when writing the snapshot fails, or after an earlier failed
    /// write; [`StoreError::Sqlite`] when its transaction cannot begin.
    pub fn snapshot(&self) -> Result<(), StoreError> {
        let writer = self.writer()?;
        if self.engine.concurrency() == Concurrency::Replicas {
            self.flush()?;
            let pinned = self.engine.analysis_if_free()?;
            drop(writer);
            return match pinned {
                Some(view) => {
                    let seq = self.base_seq + view.version() as i64;
                    background_snapshot(&self.shared, &self.path, &view, seq, "requested")
                }
                // Long jobs hold the analysis copy: wait for it as a long job would.
                None => {
                    let view = self.engine.analysis()?;
                    let seq = self.seq_of(&view);
                    background_snapshot(&self.shared, &self.path, &view, seq, "requested")
                }
            };
        }
        let shared = self.shared.clone();
        let mut db = lock(&shared.db);
        db.check_poisoned()?;
        db.begin()?;
        if let Err(e) = self.write_snapshot(&mut db, writer.engine(), "requested") {
            return Err(db.poison(e));
        }
        db.commit()
    }

    /// With replicas: start writing a snapshot of the analysis copy as it is at `writer`'s
    /// last publish, on a background thread, unless one is still being written or a long job
    /// holds the copy (then the next write tries again).
    fn snapshot_in_background(&self, writer: &Writer<'_>) {
        let _ = writer;
        let mut running = lock_any(&self.snapshotter);
        if running.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        if let Some(h) = running.take() {
            let _ = h.join();
        }
        let view: AnalysisView = match self.engine.analysis_if_free() {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(e) => {
                *lock_any(&self.shared.snapshot_error) = Some(e.to_string());
                return;
            }
        };
        let seq = self.base_seq + view.version() as i64;
        lock(&self.shared.db).since_snapshot = 0;
        let (shared, path) = (self.shared.clone(), self.path.clone());
        let spawned = std::thread::Builder::new()
            .name("userops-store-snapshot".into())
            .spawn(move || {
                let _ = background_snapshot(&shared, &path, &view, seq, "periodic");
            });
        match spawned {
            Ok(h) => *running = Some(h),
            Err(e) => *lock_any(&self.shared.snapshot_error) = Some(e.to_string()),
        }
    }

    /// Call a method by name with JSON arguments; the output as JSON (the bindings' path).
    ///
    /// # Errors
    ///
    /// As [`Engine::call_json`](userops::Engine::call_json), then as [`Store::execute`].
    pub fn call_json(&self, method: &str, args_json: &str) -> Result<String, StoreError> {
        let command = Command::from_call(method, args_json)?;
        let output = self.execute(command)?;
        serde_json::to_string(&output)
            .map_err(|e| StoreError::Engine(userops::Error::Internal(e.to_string())))
    }

    fn commit_if_due(&self, db: &mut Db) -> Result<(), StoreError> {
        if let (Durability::Group { max_delay, .. }, Some(since)) =
            (self.options.durability, db.pending_since)
        {
            if since.elapsed() >= max_delay {
                db.commit()?;
            }
        }
        Ok(())
    }

    /// Execute and journal a command inside the open transaction (opened if needed), without
    /// committing or publishing it.
    fn stage(
        &self,
        db: &mut Db,
        writer: &mut Writer<'_>,
        command: Command,
    ) -> Result<Staged, StoreError> {
        if !command.mutates() {
            return Ok(Staged {
                output: writer.engine().query(command)?,
                seq: None,
                force_commit: false,
            });
        }
        let command = writer.engine().prepare(command)?;
        let text = serde_json::to_string(&command)
            .map_err(|e| StoreError::Engine(userops::Error::Internal(e.to_string())))?;
        let method = journal::method_of_text(&text).unwrap_or_else(|| command.method());
        let key = journal::idem_key(&command);
        // An erasure needs what names the person, to redact the records that hold it: the
        // identifiers and every OneID merged into the person; the same of each person its
        // events claimed, in case the erasure takes them along (its output says).
        let erased: Vec<(
            userops::OneId,
            Vec<userops::Identifier>,
            Vec<userops::OneId>,
        )> = match &command {
            Command::Privacy(PrivacyCommand::Erase { oneid, .. }) => {
                let e = writer.engine();
                let g = e.identity();
                g.canonical(*oneid)
                    .map(|o| {
                        let oneids = e.oneids_of(o);
                        let claimed = g.claimed_by(|x| oneids.binary_search(&x).is_ok());
                        std::iter::once(o)
                            .chain(claimed)
                            .map(|p| (p, g.identifiers(p).unwrap_or_default(), e.oneids_of(p)))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        };
        db.begin()?;
        let output = match writer.apply(command.clone()) {
            Ok(o) => o,
            Err(e) => {
                if db.pending == 0 {
                    let _ = db.conn.execute_batch("ROLLBACK");
                }
                return Err(e.into());
            }
        };
        if matches!(&output, Output::Receipt(r) if r.duplicate) {
            // A replayed idempotency key changed nothing: nothing to journal.
            if db.pending == 0 {
                let _ = db.conn.execute_batch("ROLLBACK");
            }
            return Ok(Staged {
                output,
                seq: None,
                force_commit: false,
            });
        }
        let seq = db.last_seq + 1;
        let write = || -> rusqlite::Result<()> {
            db.conn
                .prepare_cached(
                    "INSERT INTO journal (seq, method, idem_key, command, checksum) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![seq, method, key, text, journal::checksum(seq, &text)])?;
            for p in &self.projections {
                p.apply(&db.conn, writer.engine(), &command, &output)?;
            }
            Ok(())
        };
        if let Err(e) = write() {
            return Err(db.poison(e));
        }
        db.last_seq = seq;
        db.pending += 1;
        db.pending_since.get_or_insert_with(Instant::now);
        db.since_snapshot += 1;
        let mut force_commit = false;
        if let Output::Privacy(PrivacyOutput::Erased(out)) = &output {
            let (mut ids, mut oneids) = (Vec::new(), Vec::new());
            for (p, i, o) in erased {
                if p == out.oneid || out.also_erased.contains(&p) {
                    ids.extend(i);
                    oneids.extend(o);
                }
            }
            if let Err(e) = self.redact(db, writer.engine(), seq, &ids, &oneids) {
                return Err(db.poison(e));
            }
            force_commit = true;
        } else if db.since_snapshot >= self.options.snapshot_every
            && self.engine.concurrency() == Concurrency::Lock
        {
            if let Err(e) = self.write_snapshot(db, writer.engine(), "periodic") {
                return Err(db.poison(e));
            }
        }
        Ok(Staged {
            output,
            seq: Some(seq),
            force_commit,
        })
    }

    /// Write a snapshot at the last sequence number (in chunks, streaming: see `snapshot.rs`)
    /// and drop all but the two newest.
    fn write_snapshot(&self, db: &mut Db, engine: &Engine, why: &str) -> rusqlite::Result<()> {
        let state_len = snapshot::write(&db.conn, db.last_seq, engine)?;
        // Keep the two newest: the older one is what `check` compares a replay against.
        snapshot::keep_newest(&db.conn, 2)?;
        db.audit(
            "snapshot",
            &format!("seq:{}", db.last_seq),
            &format!("{why}, {state_len} bytes"),
        )?;
        db.since_snapshot = 0;
        Ok(())
    }

    /// After the erasure journaled at `seq`: earlier records that name the erased person (an
    /// identifier's value, wherever it appears in the text, or one of the person's OneIDs) are
    /// replaced by a redaction marker, and the snapshots (which hold them too) by one taken
    /// now, so that recovery starts after every redacted record.
    fn redact(
        &self,
        db: &mut Db,
        engine: &Engine,
        seq: i64,
        ids: &[userops::Identifier],
        oneids: &[userops::OneId],
    ) -> rusqlite::Result<()> {
        let marker = format!(r#"{{"method":"{REDACTED}","erased_by":{seq}}}"#);
        let mut hits = std::collections::BTreeSet::new();
        let mut find = |needle: &str, names: &dyn Fn(&str) -> bool| -> rusqlite::Result<()> {
            let mut q = db.conn.prepare_cached(
                "SELECT seq, command FROM journal WHERE seq < ?1 AND method <> ?2 AND instr(command, ?3) > 0",
            )?;
            let mut rows = q.query(params![seq, REDACTED, needle])?;
            while let Some(r) = rows.next()? {
                let text: String = r.get(1)?;
                if names(&text) {
                    hits.insert(r.get::<_, i64>(0)?);
                }
            }
            Ok(())
        };
        for id in ids {
            // As JSON writes it (escapes included), standing alone: not part of a longer word,
            // so that erasing member "M1" leaves member "M10" alone.
            let value = serde_json::Value::from(id.value()).to_string();
            let value = value.trim_matches('"').to_owned();
            // A phone is stored as +<country><number>; keys and free text tend to hold the
            // number as people write it, without the country code.
            let mut forms = vec![value.clone()];
            if id.kind() == &userops::IdKind::Phone {
                let digits = value.trim_start_matches('+');
                forms.push(digits.to_owned());
                if let Some(national) = digits.strip_prefix("86") {
                    forms.push(national.to_owned());
                }
            }
            for form in forms {
                find(&form, &|text| journal::mentions(text, &form))?;
            }
        }
        for o in oneids {
            // A user reference (`{"oneid": N}`), or a quote's customer (`"user": N`).
            for needle in [format!(r#""oneid":{}"#, o.0), format!(r#""user":{}"#, o.0)] {
                find(&needle, &|text| journal::mentions(text, &needle))?;
            }
        }
        for s in &hits {
            db.conn.execute(
                "UPDATE journal SET method = ?2, idem_key = NULL, command = ?3, checksum = ?4 WHERE seq = ?1",
                params![s, REDACTED, marker, journal::checksum(*s, &marker)],
            )?;
        }
        snapshot::delete_all(&db.conn)?;
        db.audit(
            "redact",
            &format!("journal:{seq}"),
            &format!(
                "erasure: {} earlier journal record(s) redacted, snapshots replaced",
                hits.len()
            ),
        )?;
        self.write_snapshot(db, engine, "after erasure")
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        let db = lock(&self.shared.db);
        Ok(db
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // A snapshot being written is finished first (a poisoned store's is abandoned: its
        // journal may lack what the snapshot holds).
        if lock(&self.shared.db).poisoned.is_some() {
            self.shared.abort_snapshot.store(true, Ordering::SeqCst);
        }
        if let Some(h) = lock_any(&self.snapshotter).take() {
            let _ = h.join();
        }
        {
            let mut db = lock(&self.shared.db);
            db.stop = true;
        }
        self.shared.wake.notify_all();
        if let Some(h) = self.flusher.take() {
            let _ = h.join();
        }
        let mut db = lock(&self.shared.db);
        if db.poisoned.is_none() {
            let _ = db.commit();
        }
        db.checkpointer.stop();
        drop(db);
        if let Some(h) = self.checkpoint_thread.take() {
            let _ = h.join();
        }
    }
}

fn lock_any<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Write a snapshot of `view` (at journal sequence number `seq`) beside the live journal:
/// on a connection of its own, in transactions of one chunk each, once the journal is durable
/// up to `seq`. It is dropped if an erasure was journaled after `seq` (it would still hold
/// the erased person) or a newer snapshot exists.
fn background_snapshot(
    shared: &Shared,
    path: &Path,
    view: &Engine,
    seq: i64,
    why: &str,
) -> Result<(), StoreError> {
    let run = || -> Result<(), StoreError> {
        // A snapshot ahead of the durable journal would make recovery refuse the store.
        while !shared.wait_durable(seq, Duration::from_millis(200)) {
            if shared.abort_snapshot.load(Ordering::SeqCst) {
                return Ok(());
            }
            lock(&shared.db).check_poisoned()?;
        }
        let _writing = lock_any(&shared.snapshot_writer);
        let conn = Connection::open(path)?;
        conn.busy_handler(Some(retry_busy::<120_000>))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        // This thread holds no lock of the store's while it commits a chunk: it may fold the
        // WAL itself.
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::FOLD_AFTER_PAGES)?;
        let wanted = |conn: &Connection| -> rusqlite::Result<bool> {
            let newer: i64 = conn.query_row(
                "SELECT count(*) FROM snapshot WHERE seq >= ?1",
                [seq],
                |r| r.get(0),
            )?;
            let erased: i64 = conn.query_row(
                "SELECT count(*) FROM journal WHERE seq > ?1 AND method = 'erase'",
                [seq],
                |r| r.get(0),
            )?;
            Ok(newer == 0 && erased == 0)
        };
        let audit = |conn: &Connection, len: u64| {
            schema::store_audit(
                conn,
                "snapshot",
                &format!("seq:{seq}"),
                &format!("{why}, {len} bytes, beside the live journal"),
            )
        };
        snapshot::write_in_steps(
            &conn,
            seq,
            view,
            snapshot::STEP_CHUNK,
            &shared.abort_snapshot,
            wanted,
            audit,
        )?;
        Ok(())
    };
    let result = run();
    *lock_any(&shared.snapshot_error) = result.as_ref().err().map(|e| e.to_string());
    result
}

struct Staged {
    output: Output,
    seq: Option<i64>,
    force_commit: bool,
}

/// What recovery rebuilt.
struct Recovered {
    engine: Engine,
    /// The snapshot it started from (0: the empty engine).
    base: i64,
    /// Journal records replayed after it.
    replayed: u64,
    last_seq: i64,
    warnings: Vec<Warning>,
}

/// Recovery: the newest snapshot, then the journal after it. A bad last record is a torn
/// write and is removed (with a warning); any other bad record or snapshot is an error.
/// Each record is read, checksummed and decoded once, and executed without a second
/// identifier-hashing pass (the journal holds prepared commands).
fn recover(conn: &Connection, config: Config) -> Result<Recovered, StoreError> {
    let mut warnings = Vec::new();
    let (mut engine, base) = match snapshot::newest(conn)? {
        None => (Engine::new(config), 0),
        Some(h) => match snapshot::restore(conn, &h)? {
            snapshot::Restored::Engine(engine, format) => {
                if format < userops::SNAPSHOT_FORMAT {
                    warnings.push(Warning::ConvertedSnapshot { seq: h.seq, format });
                }
                (*engine, h.seq)
            }
            // Written by an older build in a format this one no longer reads: the journal
            // holds the whole history (unless an erasure redacted part of it), so replay all.
            snapshot::Restored::OldFormat(format) => {
                let redacted: i64 = conn.query_row(
                    "SELECT count(*) FROM journal WHERE method = ?1",
                    [REDACTED],
                    |r| r.get(0),
                )?;
                if redacted > 0 && format >= userops::SNAPSHOT_FORMAT_UPGRADABLE {
                    // The journal cannot replace it: read it as it is (what the newer format
                    // adds starts from here; see `Engine::upgrade_snapshot`).
                    match snapshot::restore_upgrading(conn, &h)? {
                        snapshot::Restored::Engine(engine, _) => {
                            warnings.push(Warning::UpgradedSnapshot { seq: h.seq, format });
                            (*engine, h.seq)
                        }
                        snapshot::Restored::OldFormat(_) => {
                            return Err(StoreError::Corrupt {
                                seq: h.seq,
                                reason: format!("snapshot format {format} did not upgrade"),
                            })
                        }
                    }
                } else if redacted > 0 {
                    return Err(StoreError::Corrupt {
                        seq: h.seq,
                        reason: format!(
                            "snapshot format {format} is older than {} and {redacted} journal \
                             record(s) were redacted by an erasure, so the journal cannot replace it",
                            userops::SNAPSHOT_FORMAT
                        ),
                    });
                } else {
                    warnings.push(Warning::OldSnapshot { seq: h.seq });
                    (Engine::new(config), 0)
                }
            }
        },
    };
    let max: i64 = conn.query_row("SELECT coalesce(max(seq), 0) FROM journal", [], |r| {
        r.get(0)
    })?;
    if max < base {
        return Err(StoreError::Corrupt {
            seq: base,
            reason: format!("snapshot {base} is ahead of the journal, which ends at {max}"),
        });
    }
    let mut last = base;
    let mut replayed = 0;
    let mut torn = None;
    journal::for_each_after(conn, base, |raw| {
        let seq = raw.seq;
        match raw.decode() {
            Ok(command) => {
                engine.replay(command).map_err(|e| StoreError::Corrupt {
                    seq,
                    reason: format!("replay refused: {e}"),
                })?;
                last = seq;
                replayed += 1;
                Ok(())
            }
            Err(reason) if seq == max && raw.method != REDACTED => {
                torn = Some((seq, reason));
                Ok(())
            }
            Err(reason) => Err(StoreError::Corrupt { seq, reason }),
        }
    })?;
    if let Some((seq, reason)) = torn {
        conn.execute("DELETE FROM journal WHERE seq = ?1", [seq])?;
        warnings.push(Warning::TornTail { seq, reason });
    }
    Ok(Recovered {
        engine,
        base,
        replayed,
        last_seq: last,
        warnings,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod shared_tests;
