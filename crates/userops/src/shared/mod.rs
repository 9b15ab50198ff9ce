//! One engine, many threads: reads never wait for writes, long jobs never hold the online path.
//!
//! [`SharedEngine`] is what a service holds (the Python and C bindings hold one too). Every
//! command is deterministic and changes nothing when it fails, so copies of the engine kept in
//! step by applying the same commands in the same order stay identical byte for byte (the
//! store's replay relies on the same property). With [`Concurrency::Replicas`] (the default)
//! there are three copies:
//!
//! - **The two online copies** (left-right). Readers take the *published* copy (an atomic
//!   pointer load, no lock) and run their query on it. The one writer at a time applies its
//!   command to the *spare* copy, publishes it by swapping the two, and leaves the command
//!   for the old copy, which it applies at the start of the next write, once the readers still
//!   on that copy are gone (readers are short: a lookup, a quote). A reader never waits for a
//!   writer and never sees half a command.
//! - **The analysis copy**. Long calls ([`Route::Analysis`]: analyses, models, lifecycle
//!   reports, exports, snapshots) would keep the writer waiting for them to leave an online
//!   copy, so they run on a third copy that a background thread keeps caught up from the list
//!   of published commands whenever no long job holds it. Long jobs share it.
//!
//! The price: three copies of the state in memory and every write applied three times (once
//! while the writer holds the write lock, once at the next write, once on the background
//! thread). [`Concurrency::Lock`] keeps one copy behind a readers-writer lock instead: reads
//! run in parallel with each other but wait for a write, and a long job holds up writers.
//!
//! ## Guarantees
//! - Writes are applied one at a time, in the order they take the write lock; that order is
//!   the journal's.
//! - A write is visible to every read that starts after [`SharedEngine::execute`] returned it
//!   (read your writes, across threads too); a read never sees part of a write.
//! - A read sees the state after some prefix of the writes (its [`ReadView::version`] says
//!   which): online reads the newest published one, long jobs ([`SharedEngine::analysis`]) one
//!   that holds at least every write that returned before the job started, and the job keeps
//!   that state to its end whatever is written meanwhile.
//! - `run_automation` ([`SharedEngine::run_automation`]) is planned on a consistent state off
//!   the write lock and committed in chunks of [`AUTOMATION_CHUNK_USERS`] users, each one
//!   short write: reads and other writes go on between chunks, and a reader may see the run
//!   applied to the first chunks only. See [`SharedEngine::plan_automation`] for what is
//!   judged on the planned state and what again at commit.
//! - Another long *write* (a large `ingest_batch`) holds up the writes after it; with replicas
//!   twice its time (the spare copy replays it at the next write). Reads never wait for it.
//!
//! ```
//! use std::sync::Arc;
//! use userops::shared::SharedEngine;
//! use userops::{Command, Engine};
//! let shared = Arc::new(SharedEngine::new(Engine::default()));
//! let writer = {
//!     let shared = shared.clone();
//!     std::thread::spawn(move || {
//!         for i in 0..20 {
//!             let event = format!(r#"{{"event": {{"kind": "register", "key": "r{i}",
//!                 "time": "2026-01-01T00:00:00Z", "source": {{"platform": "app", "program": "b"}},
//!                 "user": {{"kind": "member_no", "value": "M{i}"}}}}}}"#);
//!             shared.call_json("ingest", &event).unwrap();
//!         }
//!     })
//! };
//! // Meanwhile reads go on, each on a whole state.
//! let view = shared.read();
//! assert_eq!(view.stats().events, view.version());
//! drop(view);
//! writer.join().unwrap();
//! assert_eq!(shared.read().stats().events, 20);
//! assert_eq!(shared.analysis()?.stats().events, 20);
//! # Ok::<(), userops::Error>(())
//! ```

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::campaigns::{CampaignsCommand, CampaignsOutput};
use crate::command::{Command, Output};
use crate::engine::Engine;
use crate::error::Error;

/// Users per chunk of an automation run on a shared engine
/// ([`SharedEngine::run_automation`]): each chunk is one short write.
pub const AUTOMATION_CHUNK_USERS: usize = 250;

/// How a [`SharedEngine`] lets threads in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Concurrency {
    /// Three copies (two online, one for long jobs): reads never wait for writes, long jobs
    /// never hold writers or readers. Three times the state's memory; writes cost three
    /// applications.
    #[default]
    Replicas,
    /// One copy behind a readers-writer lock: reads run together but wait for a write, and a
    /// long job holds up writes. One copy of the state.
    Lock,
}

impl std::str::FromStr for Concurrency {
    type Err = Error;

    /// `"replicas"` or `"lock"`.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "replicas" => Ok(Concurrency::Replicas),
            "lock" => Ok(Concurrency::Lock),
            other => Err(Error::invalid_argument(
                "concurrency",
                format!("{other:?} is not \"replicas\" or \"lock\""),
            )),
        }
    }
}

/// Where a command runs on a [`SharedEngine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// It changes state: one writer at a time, journaled.
    Write,
    /// A short read (a lookup, a profile, a balance, a quote, consent, an audience): on the
    /// published online copy.
    Online,
    /// A read that visits every user or event (analyses, models, lifecycle reports, exports,
    /// logs): on the analysis copy, so that it keeps no writer waiting.
    Analysis,
}

impl Route {
    /// The route of a command.
    ///
    /// ```
    /// use userops::shared::Route;
    /// use userops::Command;
    /// let route = |m: &str, a: &str| Route::of(&Command::from_call(m, a).unwrap());
    /// assert_eq!(route("resolve", r#"{"user": {"oneid": 1}}"#), Route::Online);
    /// assert_eq!(route("rfm", r#"{"as_of": "2026-01-01T00:00:00Z"}"#), Route::Analysis);
    /// assert_eq!(route("create_program", r#"{"program": {"id": "p"}}"#), Route::Write);
    /// ```
    pub fn of(command: &Command) -> Route {
        use crate::campaigns::CampaignsCommand as Ca;
        use crate::identity::IdentityCommand as I;
        use crate::privacy::PrivacyCommand as P;
        use crate::tags::TagsCommand as T;
        if command.mutates() {
            return Route::Write;
        }
        // Per user or bounded by the size of one definition: online. Everything that scans
        // the pool or returns a log: analysis. A short read sent to the analysis copy only
        // waits behind long jobs, a long one sent online holds up the writer: when in doubt,
        // online.
        let long = match command {
            Command::Analytics(_) | Command::Models(_) | Command::Lifecycle(_) => true,
            Command::Tags(t) => matches!(t, T::ExportAudience { .. } | T::AudienceMembers { .. }),
            Command::Campaigns(c) => {
                matches!(c, Ca::CouponCounts { .. } | Ca::ChannelEffectiveness { .. })
            }
            Command::Identity(i) => matches!(
                i,
                I::Conflicts { .. } | I::MergeHistory { .. } | I::IdentityAudit {}
            ),
            Command::Privacy(p) => matches!(p, P::AuditLog {}),
            _ => false,
        };
        if long {
            Route::Analysis
        } else {
            Route::Online
        }
    }
}

/// One copy of the engine and how many published writes it holds.
#[derive(Debug)]
struct Copy {
    engine: Engine,
    version: u64,
}

impl Copy {
    /// Apply a command another copy already applied with success: the same result is certain
    /// (commands are deterministic), so a refusal here means the copies differ.
    fn replay(&mut self, command: Command) -> Result<(), Error> {
        let method = command.method();
        self.engine.execute_prepared(command).map_err(|e| {
            Error::Internal(format!(
                "a replica refused {method} that another copy accepted: {e}"
            ))
        })?;
        self.version += 1;
        Ok(())
    }
}

/// The engine shared by threads: see the [module docs](self) for the design and its
/// guarantees. `Send + Sync`: put it in an `Arc` and call it from any thread.
pub struct SharedEngine {
    inner: Inner,
}

#[expect(
    clippy::large_enum_variant,
    reason = "one per shared engine, made once: boxing the larger variant would save nothing"
)]
enum Inner {
    Replicas(Replicas),
    Lock(Locked),
}

impl std::fmt::Debug for SharedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedEngine")
            .field("concurrency", &self.concurrency())
            .field("version", &self.read().version())
            .finish()
    }
}

struct Locked {
    copy: RwLock<Copy>,
    poisoned: Mutex<Option<String>>,
}

struct Replicas {
    published: ArcSwap<Copy>,
    /// Not std's mutex: a writer that lets go and takes it again at once (an automation run
    /// committing chunk after chunk) would win it over writers already waiting, again and
    /// again, for hundreds of milliseconds. parking_lot's hands it to the longest waiter at
    /// least every millisecond or so (eventual fairness).
    writer: parking_lot::Mutex<WriteSide>,
    analysis: Arc<Analysis>,
    applier: Option<JoinHandle<()>>,
}

/// What the writer owns: the copy readers do not see, and what it still lacks.
struct WriteSide {
    spare: Arc<Copy>,
    /// Published commands the spare has not applied yet (the last write's).
    behind: Vec<Arc<Command>>,
    poisoned: Option<String>,
}

impl WriteSide {
    /// Bring the spare copy up to the published one: wait for its last readers to leave, then
    /// apply the commands it lacks. Stops writes if it refuses one.
    fn catch_up(&mut self) -> Result<(), Error> {
        let behind = std::mem::take(&mut self.behind);
        if behind.is_empty() {
            return Ok(());
        }
        let spare = exclusive(&mut self.spare);
        for command in behind {
            let command = Arc::try_unwrap(command).unwrap_or_else(|c| (*c).clone());
            if let Err(e) = spare.replay(command) {
                self.poisoned = Some(e.to_string());
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The analysis copy and the published commands it has not applied yet.
struct Analysis {
    log: Mutex<Log>,
    /// Signalled (with `log`) when commands are published or the engine is dropped.
    wake: Condvar,
    replica: Mutex<AnalysisCopy>,
    /// Signalled (with `replica`) when a long job lets go of the copy.
    released: Condvar,
}

struct Log {
    /// Published commands the analysis copy lacks, oldest first.
    entries: VecDeque<Arc<Command>>,
    /// The version after the newest entry (the published version).
    end: u64,
    stop: bool,
}

struct AnalysisCopy {
    copy: Arc<Copy>,
    broken: Option<String>,
}

/// Published commands [`SharedEngine::analysis_if_free`] applies to the analysis copy on the
/// caller's thread (the background thread's batch); further behind, it leaves the copy to
/// that thread.
const CATCH_UP_INLINE: usize = 32;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below leaves its data consistent before anything can panic (a
    // panic inside a command is caught by poisoning the writer instead), so a poisoned mutex
    // is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wait for the readers still on `copy` to leave it. Online readers are short, so spin
/// briefly, then yield, then sleep in short steps.
fn exclusive(copy: &mut Arc<Copy>) -> &mut Copy {
    let mut tries = 0u32;
    while Arc::get_mut(copy).is_none() {
        tries += 1;
        if tries < 64 {
            std::hint::spin_loop();
        } else if tries < 256 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    Arc::get_mut(copy).expect("the loop above ends only once no reader holds the copy")
}

impl SharedEngine {
    /// Share `engine` with [`Concurrency::Replicas`] (the default).
    pub fn new(engine: Engine) -> SharedEngine {
        SharedEngine::with_concurrency(engine, Concurrency::Replicas)
    }

    /// Share `engine` as `concurrency` says. With replicas, the engine is cloned twice and a
    /// background thread (`userops-analysis`) keeps the analysis copy caught up; it stops when
    /// the shared engine is dropped.
    pub fn with_concurrency(engine: Engine, concurrency: Concurrency) -> SharedEngine {
        let inner = match concurrency {
            Concurrency::Lock => Inner::Lock(Locked {
                copy: RwLock::new(Copy { engine, version: 0 }),
                poisoned: Mutex::new(None),
            }),
            Concurrency::Replicas => {
                let spare = Arc::new(Copy {
                    engine: engine.clone(),
                    version: 0,
                });
                let analysis = Arc::new(Analysis {
                    log: Mutex::new(Log {
                        entries: VecDeque::new(),
                        end: 0,
                        stop: false,
                    }),
                    wake: Condvar::new(),
                    replica: Mutex::new(AnalysisCopy {
                        copy: Arc::new(Copy {
                            engine: engine.clone(),
                            version: 0,
                        }),
                        broken: None,
                    }),
                    released: Condvar::new(),
                });
                let applier = {
                    let analysis = analysis.clone();
                    std::thread::Builder::new()
                        .name("userops-analysis".into())
                        .spawn(move || analysis.apply_in_background())
                        // Without the thread the analysis copy is still caught up, by the
                        // next long job (`SharedEngine::analysis`).
                        .ok()
                };
                Inner::Replicas(Replicas {
                    published: ArcSwap::from_pointee(Copy { engine, version: 0 }),
                    writer: parking_lot::Mutex::new(WriteSide {
                        spare,
                        behind: Vec::new(),
                        poisoned: None,
                    }),
                    analysis,
                    applier,
                })
            }
        };
        SharedEngine { inner }
    }

    /// How threads are let in.
    pub fn concurrency(&self) -> Concurrency {
        match &self.inner {
            Inner::Replicas(_) => Concurrency::Replicas,
            Inner::Lock(_) => Concurrency::Lock,
        }
    }

    /// The newest published state, for short reads. Never waits for a writer with replicas
    /// (with [`Concurrency::Lock`] it waits for a write in progress). Let go of it soon: the
    /// writer waits for readers to leave a copy before reusing it.
    pub fn read(&self) -> ReadView<'_> {
        let held = self.id();
        HELD.with(|h| h.borrow_mut().push(held));
        match &self.inner {
            Inner::Replicas(r) => ReadView {
                inner: View::Online(r.published.load_full()),
                held,
            },
            Inner::Lock(l) => ReadView {
                inner: View::Locked(l.copy.read().unwrap_or_else(|e| e.into_inner())),
                held,
            },
        }
    }

    /// This engine, for [`HELD`] (stable while a view borrows it).
    fn id(&self) -> usize {
        self as *const SharedEngine as usize
    }

    /// A state for a long job: it holds every write that returned before this call, and stays
    /// as it is while the job runs, whatever is written meanwhile. With replicas it is the
    /// analysis copy (shared by the long jobs running at once; this call waits for running
    /// jobs to finish only when writes came since they started); with a lock, the read lock.
    ///
    /// # Errors
    ///
    /// `internal` when the analysis copy stopped (it refused a command the writer's copy
    /// accepted, so the copies differ).
    pub fn analysis(&self) -> Result<ReadView<'_>, Error> {
        match &self.inner {
            Inner::Replicas(r) => r.analysis.view().map(|copy| ReadView {
                inner: View::Analysis(AnalysisView {
                    copy: Some(copy),
                    analysis: r.analysis.clone(),
                }),
                // The writer never waits for the analysis copy.
                held: 0,
            }),
            Inner::Lock(_) => Ok(self.read()),
        }
    }

    /// The analysis copy caught up to the newest published write, unless a long job holds it
    /// or it lags more than a few commands behind (`None`): never waits for a job nor for a
    /// long catch-up (after a long job lets go of the copy, the background thread applies
    /// what was published meanwhile, seconds of work after an automation run over a million
    /// users; a caller holding the writer would hold every write that long). With a writer
    /// held, the view is exactly at the writer's last publish: the store takes its snapshots
    /// this way and writes them on another thread. `None` with [`Concurrency::Lock`].
    ///
    /// # Errors
    ///
    /// As [`SharedEngine::analysis`].
    pub fn analysis_if_free(&self) -> Result<Option<AnalysisView>, Error> {
        match &self.inner {
            Inner::Replicas(r) => {
                if lock(&r.analysis.log).entries.len() > CATCH_UP_INLINE {
                    return Ok(None);
                }
                let mut slot = lock(&r.analysis.replica);
                if !r.analysis.catch_up(&mut slot)? {
                    return Ok(None);
                }
                Ok(Some(AnalysisView {
                    copy: Some(slot.copy.clone()),
                    analysis: r.analysis.clone(),
                }))
            }
            Inner::Lock(_) => Ok(None),
        }
    }

    /// The engine, when no other thread can be using it: with [`Concurrency::Lock`] (the one
    /// copy); `None` with replicas, whose copies only change together, by commands.
    pub fn get_mut(&mut self) -> Option<&mut Engine> {
        match &mut self.inner {
            Inner::Lock(l) => Some(&mut l.copy.get_mut().unwrap_or_else(|e| e.into_inner()).engine),
            Inner::Replicas(_) => None,
        }
    }

    /// The write lock: one writer at a time, in journal order. Waits for the previous writer;
    /// with replicas, also for the last readers of the copy it is about to change. An error
    /// once a write failed half-way (a panic inside a command, or a journal that could not
    /// be written): the writer copy may differ from what readers see, so no write is taken
    /// until the engine is rebuilt (reads go on).
    ///
    /// # Errors
    ///
    /// `invalid_argument` when this thread holds a read view of this engine (the write would wait
    /// for it forever); `internal` once writes stopped after a write failed half-way.
    pub fn write(&self) -> Result<Writer<'_>, Error> {
        if HELD.with(|h| h.borrow().contains(&self.id())) {
            return Err(Error::invalid_argument(
                "",
                "this thread holds a read view of the engine: let go of it before writing (the \
                 write would wait for it forever)",
            ));
        }
        match &self.inner {
            Inner::Replicas(r) => {
                let mut side = r.writer.lock();
                if let Some(why) = &side.poisoned {
                    return Err(Error::Internal(format!("writes stopped: {why}")));
                }
                side.catch_up()?;
                Ok(Writer {
                    inner: WriterInner::Replicas(side, r),
                    applied: Vec::new(),
                    applying: false,
                    last: None,
                })
            }
            Inner::Lock(l) => {
                if let Some(why) = &*lock(&l.poisoned) {
                    return Err(Error::Internal(format!("writes stopped: {why}")));
                }
                Ok(Writer {
                    inner: WriterInner::Lock(
                        l.copy.write().unwrap_or_else(|e| e.into_inner()),
                        &l.poisoned,
                    ),
                    applied: Vec::new(),
                    applying: false,
                    last: None,
                })
            }
        }
    }

    /// Execute a command by its [`Route`]: a write under the write lock, published before this
    /// returns; a read on the published copy or the analysis copy.
    ///
    /// # Errors
    ///
    /// As [`SharedEngine::write`] or [`SharedEngine::analysis`] for the route, then the command's
    /// own refusal (see [`Engine::execute`]).
    pub fn execute(&self, command: Command) -> Result<Output, Error> {
        match Route::of(&command) {
            Route::Write => {
                if let Command::Campaigns(CampaignsCommand::RunAutomation { now }) = command {
                    return self.run_automation(now);
                }
                let command = self.read().prepare(command)?;
                let mut writer = self.write()?;
                let out = writer.apply(command)?;
                writer.publish();
                Ok(out)
            }
            Route::Online => self.read().query(command),
            Route::Analysis => self.analysis()?.query(command),
        }
    }

    /// `run_automation` at `now` without holding the writer for the run: the firings are
    /// chosen on the analysis copy (a state holding every write that returned before this
    /// call, [`SharedEngine::analysis`]), chunk by chunk of [`AUTOMATION_CHUNK_USERS`] users,
    /// and each chunk is committed as one short write, an `apply_automation_plan` command
    /// carrying its firings, which re-checks each firing on the state it is applied to (see
    /// [`SharedEngine::plan_automation`] for the guarantee). [`SharedEngine::execute`] runs a
    /// `run_automation` command this way. The rows of every chunk, in order.
    ///
    /// # Errors
    ///
    /// As [`SharedEngine::analysis`] and [`SharedEngine::write`]; the chunks committed
    /// before an error stay committed.
    pub fn run_automation(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Output, Error> {
        let mut rows = Vec::new();
        self.plan_automation(now, AUTOMATION_CHUNK_USERS, |command| {
            match self.execute(command)? {
                Output::Campaigns(CampaignsOutput::Plan(p)) => rows.extend(p),
                other => {
                    return Err(Error::Internal(format!(
                        "apply_automation_plan returned {other:?}"
                    )))
                }
            }
            Ok(())
        })?;
        Ok(Output::Campaigns(CampaignsOutput::Plan(rows)))
    }

    /// Plan an automation run at `now` off the write lock and hand each chunk's
    /// `apply_automation_plan` command (about `chunk_users` users) to `commit`, which
    /// executes it as a write (journaled, for a store). With replicas the plan is made on the
    /// analysis copy, held until the last chunk is handed over (long jobs that start
    /// meanwhile wait for the run when writes came since), so readers and other writers go
    /// on while it is planned; with [`Concurrency::Lock`] every chunk is planned under the
    /// read lock first, then committed.
    ///
    /// The guarantee: who fires is judged on the planned state (triggers, audience members,
    /// birthdays, inactivity: every write that returned before the call); whether and how a
    /// firing goes is judged on the state its chunk is committed to — a firing already done
    /// (another run, a OneID merged since) is skipped, consent, frequency caps and coupon stock
    /// are checked then, and a rule removed since fires no more. A user who becomes eligible
    /// after the plan's state is left for the next run. Each chunk becomes visible to reads
    /// at once when it is committed, so a reader may see the run applied to some chunks
    /// (users in OneID order) and not yet to the rest. The journal holds the chunks'
    /// commands, so replay reproduces the same state whatever ran in between.
    ///
    /// # Errors
    ///
    /// As [`SharedEngine::analysis`], then the first error of `commit` (planning stops
    /// there; the chunks committed before stay).
    pub fn plan_automation<E: From<Error>>(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        chunk_users: usize,
        mut commit: impl FnMut(Command) -> Result<(), E>,
    ) -> Result<(), E> {
        match &self.inner {
            Inner::Replicas(_) => {
                let view = self.analysis()?;
                for command in view.plan_automation(now, chunk_users) {
                    commit(command)?;
                }
                Ok(())
            }
            Inner::Lock(_) => {
                let commands: Vec<Command> =
                    self.read().plan_automation(now, chunk_users).collect();
                commands.into_iter().try_for_each(commit)
            }
        }
    }

    /// [`Engine::call_json`] on the shared engine: a method name and JSON arguments, the
    /// output as JSON.
    ///
    /// # Errors
    ///
    /// As [`Engine::call_json`], through [`SharedEngine::execute`].
    pub fn call_json(&self, method: &str, args_json: &str) -> Result<String, Error> {
        let command = Command::from_call(method, args_json)?;
        let output = self.execute(command)?;
        serde_json::to_string(&output).map_err(|e| Error::Internal(e.to_string()))
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        lock(&self.analysis.log).stop = true;
        self.analysis.wake.notify_all();
        if let Some(h) = self.applier.take() {
            let _ = h.join();
        }
    }
}

impl Analysis {
    /// Apply every published command the copy lacks; `false` when a long job holds the copy.
    fn catch_up(&self, slot: &mut AnalysisCopy) -> Result<bool, Error> {
        if let Some(why) = &slot.broken {
            return Err(Error::Internal(format!("the analysis copy stopped: {why}")));
        }
        let Some(copy) = Arc::get_mut(&mut slot.copy) else {
            return Ok(false);
        };
        loop {
            // Take a batch and let go of the log, so that writers never wait for this.
            let batch: Vec<Arc<Command>> = {
                let mut log = lock(&self.log);
                let n = log.entries.len().min(CATCH_UP_INLINE);
                log.entries.drain(..n).collect()
            };
            if batch.is_empty() {
                return Ok(true);
            }
            for command in batch {
                let command = Arc::try_unwrap(command).unwrap_or_else(|c| (*c).clone());
                if let Err(e) = copy.replay(command) {
                    slot.broken = Some(e.to_string());
                    return Err(e);
                }
            }
        }
    }

    /// A view of the copy holding at least every command published before this call.
    fn view(&self) -> Result<Arc<Copy>, Error> {
        let target = lock(&self.log).end;
        let mut slot = lock(&self.replica);
        loop {
            if slot.broken.is_none() && slot.copy.version >= target {
                return Ok(slot.copy.clone());
            }
            if !self.catch_up(&mut slot)? {
                slot = self.released.wait(slot).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    /// Let go of a view (under the lock, so that a waiting caller cannot miss it).
    fn release(&self, copy: Arc<Copy>) {
        let slot = lock(&self.replica);
        drop(copy);
        drop(slot);
        self.released.notify_all();
    }

    /// The background thread: catch up whenever commands were published and no long job
    /// holds the copy.
    fn apply_in_background(&self) {
        loop {
            {
                let mut log = lock(&self.log);
                while log.entries.is_empty() && !log.stop {
                    log = self.wake.wait(log).unwrap_or_else(|e| e.into_inner());
                }
                if log.stop {
                    return;
                }
            }
            let mut slot = lock(&self.replica);
            match self.catch_up(&mut slot) {
                Ok(true) => {}
                // A long job holds the copy: wait for it to let go (or for a while, to notice
                // a stop).
                Ok(false) => {
                    let _ = self
                        .released
                        .wait_timeout(slot, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner());
                }
                // The copy is broken (reported to every long job from now on): stop.
                Err(_) => return,
            }
        }
    }
}

/// A consistent state to read: dereferences to the [`Engine`]. Obtained from
/// [`SharedEngine::read`] or [`SharedEngine::analysis`].
pub struct ReadView<'a> {
    inner: View<'a>,
    /// The engine in this thread's [`HELD`] list for this view (0: not listed).
    held: usize,
}

thread_local! {
    /// The shared engines this thread holds online views of (one entry per view): a write
    /// from such a thread would wait for its own view forever, so it is refused instead.
    static HELD: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Drop for ReadView<'_> {
    fn drop(&mut self) {
        if self.held != 0 {
            let _ = HELD.try_with(|h| {
                let mut h = h.borrow_mut();
                if let Some(i) = h.iter().rposition(|x| *x == self.held) {
                    h.swap_remove(i);
                }
            });
        }
    }
}

enum View<'a> {
    Online(Arc<Copy>),
    Analysis(AnalysisView),
    Locked(RwLockReadGuard<'a, Copy>),
}

/// The analysis copy held by a long job ([`SharedEngine::analysis_if_free`]): owned, so it
/// can be handed to another thread. Dereferences to the [`Engine`].
pub struct AnalysisView {
    /// Always `Some` until dropped (taken out to release it under the analysis lock).
    copy: Option<Arc<Copy>>,
    analysis: Arc<Analysis>,
}

impl AnalysisView {
    /// How many writes this state holds (as [`ReadView::version`]).
    pub fn version(&self) -> u64 {
        self.copy().version
    }

    fn copy(&self) -> &Copy {
        self.copy
            .as_ref()
            .expect("an analysis view holds its copy until it is dropped")
    }
}

impl Deref for AnalysisView {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.copy().engine
    }
}

impl Drop for AnalysisView {
    fn drop(&mut self) {
        if let Some(copy) = self.copy.take() {
            self.analysis.release(copy);
        }
    }
}

impl std::fmt::Debug for AnalysisView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalysisView")
            .field("version", &self.version())
            .finish()
    }
}

impl ReadView<'_> {
    /// How many writes this state holds: it is the state after the first `version()` writes
    /// published by this shared engine.
    pub fn version(&self) -> u64 {
        self.copy().version
    }

    fn copy(&self) -> &Copy {
        match &self.inner {
            View::Online(c) => c,
            View::Analysis(a) => a.copy(),
            View::Locked(g) => g,
        }
    }
}

impl Deref for ReadView<'_> {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.copy().engine
    }
}

impl std::fmt::Debug for ReadView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadView")
            .field("version", &self.version())
            .finish()
    }
}

/// The write lock of a [`SharedEngine`] ([`SharedEngine::write`]): apply commands to the
/// writer's copy, then [`Writer::publish`] them to readers. Dropping a writer that applied
/// commands without publishing them (a failed journal write, a panic) stops further writes:
/// readers keep the published state.
pub struct Writer<'a> {
    inner: WriterInner<'a>,
    /// Applied since the last publish.
    applied: Vec<Arc<Command>>,
    /// A command is being applied (still true after a panic inside it).
    applying: bool,
    /// With replicas, after a publish: the copy just published, which is the writer's state
    /// until the next apply brings the spare up to it.
    last: Option<Arc<Copy>>,
}

enum WriterInner<'a> {
    Replicas(parking_lot::MutexGuard<'a, WriteSide>, &'a Replicas),
    Lock(RwLockWriteGuard<'a, Copy>, &'a Mutex<Option<String>>),
}

impl Writer<'_> {
    /// The writer's state: the published state and the commands applied since.
    pub fn engine(&self) -> &Engine {
        if let Some(last) = &self.last {
            return &last.engine;
        }
        match &self.inner {
            WriterInner::Replicas(side, _) => &side.spare.engine,
            WriterInner::Lock(copy, _) => &copy.engine,
        }
    }

    /// Apply a command (already through [`Engine::prepare`]) to the writer's copy; readers
    /// see it after [`Writer::publish`]. A command that fails changes nothing.
    ///
    /// # Errors
    ///
    /// The command's refusal, as [`Engine::execute_prepared`]; nothing changes.
    pub fn apply(&mut self, command: Command) -> Result<Output, Error> {
        // With replicas the other copies get the command too.
        let keep = matches!(self.inner, WriterInner::Replicas(..)).then(|| command.clone());
        let copy: &mut Copy = match &mut self.inner {
            WriterInner::Replicas(side, _) => {
                // After a publish the spare is the copy readers had: it first gets the
                // commands published (a writer that publishes part way, as a batch does).
                self.last = None;
                side.catch_up()?;
                Arc::get_mut(&mut side.spare)
                    .expect("the spare copy is exclusive from its catch-up to the next swap")
            }
            WriterInner::Lock(copy, _) => copy,
        };
        self.applying = true;
        let out = copy.engine.execute_prepared(command);
        self.applying = false;
        // A replayed idempotency key changed nothing: no version, nothing for the other
        // copies (the store does not journal it either, so versions count journal records).
        let no_op = matches!(&out, Ok(Output::Receipt(r)) if r.duplicate);
        if out.is_ok() && !no_op {
            copy.version += 1;
            if let Some(c) = keep {
                self.applied.push(Arc::new(c));
            }
        }
        out
    }

    /// Make every command applied so far visible to reads that start from now on; the new
    /// version.
    pub fn publish(&mut self) -> u64 {
        match &mut self.inner {
            WriterInner::Lock(copy, _) => copy.version,
            WriterInner::Replicas(side, r) => {
                if self.applied.is_empty() {
                    return side.spare.version;
                }
                let new = side.spare.clone();
                self.last = Some(new.clone());
                let version = new.version;
                let old = r.published.swap(new);
                // `old` becomes the spare: it gets these commands at the next write, once its
                // last readers are gone.
                side.spare = old;
                side.behind = self.applied.clone();
                {
                    let mut log = lock(&r.analysis.log);
                    log.entries.extend(self.applied.drain(..));
                    log.end = version;
                }
                r.analysis.wake.notify_all();
                version
            }
        }
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        let lost = self.applying || !self.applied.is_empty();
        if !lost {
            return;
        }
        let why = if self.applying {
            "a command panicked half-way".to_owned()
        } else {
            format!(
                "{} applied command(s) were never published",
                self.applied.len()
            )
        };
        match &mut self.inner {
            WriterInner::Replicas(side, _) => side.poisoned = Some(why),
            WriterInner::Lock(_, poisoned) => *lock(poisoned) = Some(why),
        }
    }
}

#[cfg(test)]
mod tests;
