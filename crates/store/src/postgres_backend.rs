//! The PostgreSQL backend: a participant's state in one schema of a database
//! that several replicas of it share (`egov serve --store postgres://...`,
//! `docs/scale-out.md`).
//!
//! The same guarantees as the embedded backend, from the database:
//!
//! - a commit is one transaction, acknowledged once PostgreSQL has committed
//!   it (`synchronous_commit`; [`Durability::Unflushed`] turns it off for that
//!   transaction only);
//! - a commit is sent as one pipeline: BEGIN, the batch's statements, the
//!   sequencing statement and COMMIT written together, their answers read
//!   after (one round trip; two when a message waiting in its slot is read
//!   first), and acknowledged only when every answer is a success;
//! - a record is written only at the version its writer read (`put_record`,
//!   which raises [`CONFLICT_STATE`] inside the transaction otherwise, so the
//!   pipelined COMMIT commits nothing), else the whole batch is refused
//!   `store.conflict`;
//! - what a receiver remembers is unique on (sender, message id): two replicas
//!   that take the same message at once cannot both commit it;
//! - the message log is sequenced, then integrated: a commit inserts its
//!   entries with provisional numbers, and its last statement before COMMIT
//!   takes their sequence numbers from the counter row (`log_head`) and
//!   renumbers them and what refers to them, so the counter's row lock is held
//!   only for the COMMIT's round trip; no gaps (a rolled-back commit returns
//!   its numbers); each entry carries its leaf hash, computed by the committer;
//! - an integrator ([`Backend::integrate`], one replica at a time by a
//!   PostgreSQL advisory lock, which dies with its holder's connection or
//!   transaction) folds the committed entries in order into the Merkle tree
//!   (`tlog_nodes`, `tlog_size`), and refuses an entry whose content no longer
//!   gives the leaf hash it was committed with;
//! - an outbox item is claimed by one replica at a time
//!   (`FOR UPDATE SKIP LOCKED`, with a lease on the database's clock): a dead
//!   replica's claims return when their lease runs out.
//!
//! The [`Backend`] trait reads synchronously, as sled does, so the calls run
//! on a few threads of this backend, each with its own `tokio-postgres`
//! connection driven by the thread's own current-thread runtime, which
//! reconnect by themselves after the database comes back. A call while the
//! database is down fails `store.unavailable` and changes nothing.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::Poll;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use crate::codec::{StoredRemembered, upper_bound};
use crate::postgres_connect::{PostgresSettings, RustlsStream, redact, target};
use crate::{Backend, Batch, CommitFuture, Durability, LogEntry, OutboxItem, Remembered, StoreError, batch};
use egov_tlog::{Hash, NodeId, Tree};

/// The schema's migrations, in order: a database at version N has had the first N.
const MIGRATIONS: [&str; 4] = [
    r#"
CREATE TABLE records (
    key bytea PRIMARY KEY,
    version bigint NOT NULL,
    value bytea NOT NULL
);
CREATE TABLE log (
    sequence bigint PRIMARY KEY,
    time_ms bigint NOT NULL,
    direction text NOT NULL,
    envelope bytea NOT NULL,
    note bytea NOT NULL,
    previous_hash bytea NOT NULL,
    hash bytea NOT NULL
);
CREATE TABLE log_index (
    key bytea NOT NULL,
    sequence bigint NOT NULL,
    PRIMARY KEY (key, sequence)
);
CREATE TABLE log_head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    sequence bigint NOT NULL,
    hash bytea NOT NULL
);
INSERT INTO log_head (sequence, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE remembered (
    sender_id bytea NOT NULL,
    message_id bytea NOT NULL,
    digest bytea NOT NULL,
    response bytea NOT NULL,
    PRIMARY KEY (sender_id, message_id)
);
CREATE TABLE outbox (
    id bigint PRIMARY KEY,
    target text NOT NULL,
    envelope bytea NOT NULL,
    entry bigint NOT NULL,
    slot bytea NOT NULL,
    attempts integer NOT NULL,
    next_attempt_ms bigint NOT NULL,
    last_error text NOT NULL,
    enqueued_ms bigint NOT NULL,
    leased_by text,
    lease_until timestamptz
);
CREATE UNIQUE INDEX outbox_slot ON outbox (slot) WHERE slot <> '\x';
CREATE SEQUENCE ids;
"#,
    r#"
ALTER TABLE remembered ADD COLUMN entry bigint NOT NULL DEFAULT 0, ADD COLUMN suffix bytea NOT NULL DEFAULT '\x';
"#,
    // The hash chain goes; the Merkle tree is the tamper evidence. Entries logged before are
    // integrated from the first one on (their leaf hashes computed again by the integrator).
    r#"
ALTER TABLE log DROP COLUMN previous_hash, DROP COLUMN hash, ADD COLUMN leaf bytea;
ALTER TABLE log_head DROP COLUMN hash;
CREATE SEQUENCE log_pending;
CREATE TABLE tlog_nodes (
    level smallint NOT NULL,
    idx bigint NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE tlog_size (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    size bigint NOT NULL
);
INSERT INTO tlog_size (size) VALUES (0);
"#,
    // A record written at the version its writer read, else an error that aborts the commit's
    // transaction: a commit is sent as one pipeline, COMMIT included, so a write that matched
    // no row must fail in the database, not be found wanting by the client afterwards. The
    // version found is the error's detail.
    r#"
CREATE FUNCTION put_record(k bytea, expected bigint, v bytea) RETURNS void LANGUAGE plpgsql AS $put$
DECLARE
    stored bigint;
BEGIN
    IF expected = 0 THEN
        INSERT INTO records (key, version, value) VALUES (k, 1, v) ON CONFLICT (key) DO NOTHING;
    ELSE
        UPDATE records SET version = expected + 1, value = v WHERE key = k AND version = expected;
    END IF;
    IF NOT FOUND THEN
        SELECT version INTO stored FROM records WHERE key = k;
        RAISE EXCEPTION 'record %: expected version %, found %', encode(k, 'escape'), expected, coalesce(stored, 0)
            USING ERRCODE = 'EGV01', DETAIL = coalesce(stored, 0)::text;
    END IF;
END
$put$;
"#,
];

/// The provisional sequence base of every commit's entries (entry `n` of the batch is
/// `PROVISIONAL + n`), above every real sequence, renumbered by the commit's last statement.
/// One constant for every commit is safe: the last statement renumbers only rows this
/// transaction wrote, picked by their outbox ids (this connection's, reserved for it alone) and
/// by their (sender, message id) (unique, and locked by this transaction's insert), and the
/// renumbering precedes COMMIT in the same transaction, so no other transaction ever sees a
/// provisional number.
const PROVISIONAL: i64 = 1 << 62;

/// How many outbox ids a connection reserves at once (one round trip, outside any commit's
/// transaction). Outbox ids are then ordered per connection only: see [`Backend::due`].
const ID_BLOCK: i64 = 64;

/// The custom SQLSTATE `put_record` raises when a record is not at the version its writer read.
const CONFLICT_STATE: &str = "EGV01";

/// How many entries the integrator folds in one transaction.
const INTEGRATE_BATCH: i64 = 4096;

/// How many connections (and threads) one participant's backend keeps by default.
#[cfg(test)]
const CONNECTIONS: usize = PostgresSettings::DEFAULT_POOL;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A live connection: its client, its prepared statements, and the outbox ids it reserved.
struct Session {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    ids: VecDeque<u64>,
    /// Left in a state it must not be used in (a transaction that could not be rolled back).
    broken: bool,
}

/// One connection of the pool, on its thread's own current-thread runtime: the runtime drives
/// the connection only while the thread waits for answers, which is all it does with it.
struct Connection {
    url: String,
    schema: String,
    /// What sets a new connection up after its search path (the settings' timeouts).
    session: String,
    runtime: tokio::runtime::Runtime,
    live: Option<Session>,
    /// The backend's count of round trips.
    trips: Arc<AtomicU64>,
}

/// Waits for a connection's answers, counting each wait as one round trip.
struct Waiter<'a> {
    runtime: &'a tokio::runtime::Runtime,
    trips: &'a AtomicU64,
    /// Whether the waits are made for a commit.
    commit: bool,
}

impl Waiter<'_> {
    /// Sends what `future` sends, and waits for its answers: one round trip.
    fn wait<F: Future>(&self, future: F) -> F::Output {
        self.trips.fetch_add(1, Ordering::Relaxed);
        crate::stats::round_trip(self.commit);
        self.runtime.block_on(future)
    }
}

/// What a call works with: a live connection, and its waiter.
struct Wire<'a> {
    waiter: Waiter<'a>,
    session: &'a mut Session,
}

impl Wire<'_> {
    /// Prepares, together, those of `sqls` this connection has not prepared yet: one round trip, or none.
    fn prepare(&mut self, sqls: &[&'static str]) -> Result<(), StoreError> {
        let mut missing: Vec<&'static str> =
            sqls.iter().copied().filter(|sql| !self.session.statements.contains_key(sql)).collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let client = &self.session.client;
        let prepared = self.waiter.wait(all(missing.iter().map(|sql| boxed(client.prepare(sql))).collect()));
        for (sql, statement) in missing.into_iter().zip(prepared) {
            self.session.statements.insert(sql, statement.map_err(unavailable)?);
        }
        Ok(())
    }

    /// The rows of one statement, prepared once per connection.
    fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        self.prepare(&[sql])?;
        let statement = self.statement(sql)?;
        self.waiter.wait(self.session.client.query(&statement, params)).map_err(unavailable)
    }

    fn statement(&self, sql: &'static str) -> Result<Statement, StoreError> {
        self.session.statements.get(sql).cloned().ok_or_else(|| unavailable_text("a statement was not prepared"))
    }

    /// Sends `steps` as one pipeline (the statements' requests written together, their answers
    /// read after: one round trip once they are prepared), and checks every answer: the rows of
    /// each, or the error of the first that failed (those after it failed because of it: the
    /// transaction is aborted, or the connection gone).
    fn pipeline(&mut self, steps: &[Step]) -> Result<Vec<Vec<Row>>, StoreError> {
        let sqls = prepared_statements(steps);
        self.prepare(&sqls)?;
        let mut requests = Vec::with_capacity(steps.len());
        for step in steps {
            let client = &self.session.client;
            requests.push(match step {
                Step::Simple(sql) => boxed(async move { client.batch_execute(sql).await.map(|()| Vec::new()) }),
                Step::Prepared { sql, params, .. } => {
                    let statement = self.statement(sql)?;
                    boxed(async move {
                        let params: Vec<&(dyn ToSql + Sync)> =
                            params.iter().map(|param| param.as_ref() as &(dyn ToSql + Sync)).collect();
                        client.query(&statement, &params).await
                    })
                }
            });
        }
        let answers = self.waiter.wait(all(requests));
        let mut rows = Vec::with_capacity(answers.len());
        for (step, answer) in steps.iter().zip(answers) {
            match answer {
                Ok(answer) => rows.push(answer),
                Err(error) => return Err(step.error(error)),
            }
        }
        Ok(rows)
    }
}

type Request<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

fn boxed<'a, T>(future: impl Future<Output = T> + 'a) -> Request<'a, T> {
    Box::pin(future)
}

/// `requests` polled together, in their order (each writes its request on its first poll, so
/// they leave in that order and tokio-postgres pipelines them on the connection); their answers.
async fn all<T>(mut requests: Vec<Request<'_, T>>) -> Vec<T> {
    let mut answers: Vec<Option<T>> = requests.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (request, answer) in requests.iter_mut().zip(answers.iter_mut()) {
            if answer.is_none() {
                match request.as_mut().poll(cx) {
                    Poll::Ready(value) => *answer = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    answers.into_iter().flatten().collect()
}

/// A statement of a commit's pipeline.
enum Step {
    /// Sent as a simple query (BEGIN, COMMIT).
    Simple(&'static str),
    /// A prepared statement and its parameters; `key` is what a conflict it raises is on.
    Prepared { sql: &'static str, params: Vec<Param>, key: String, expected: u64 },
}

type Param = Box<dyn ToSql + Sync + Send>;

impl Step {
    fn prepared(sql: &'static str, key: impl Into<String>, params: Vec<Param>) -> Step {
        Step::Prepared { sql, params, key: key.into(), expected: 0 }
    }

    /// The store's error for this statement's failure.
    fn error(&self, error: tokio_postgres::Error) -> StoreError {
        let (key, expected) = match self {
            Step::Prepared { key, expected, .. } => (key.as_str(), *expected),
            Step::Simple(sql) => (*sql, 0),
        };
        match error.as_db_error() {
            // `put_record`: the version it found is the error's detail.
            Some(db) if db.code().code() == CONFLICT_STATE => StoreError::Conflict {
                key: key.to_owned(),
                expected,
                found: db.detail().and_then(|found| found.parse().ok()).unwrap_or(0),
            },
            _ => database(key, error),
        }
    }
}

impl Connection {
    /// `work` on this connection, made first if there is none. When `work` fails
    /// for the database's sake and the connection is found broken, it is dropped,
    /// so that the next call makes a new one.
    fn attempt<R>(
        &mut self,
        commit: bool,
        work: impl FnOnce(&mut Wire<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        if self.live.as_ref().is_none_or(|live| live.client.is_closed()) {
            self.live = None;
            let setup = format!(
                // The process in the server's own views (`pg_stat_activity`, `pg_locks`): who holds what.
                "SET search_path TO {schema}; SET application_name TO 'egov {schema} pid {pid}'; {session}",
                schema = self.schema,
                pid = std::process::id(),
                session = self.session
            );
            let url = self.url.clone();
            let client = self.runtime.block_on(async move {
                let (client, connection) = connect_async(&url).await?;
                // Driven by this thread's runtime whenever the thread waits for answers.
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "a database connection ended");
                    }
                });
                client.batch_execute(&setup).await.map_err(unavailable)?;
                Ok::<_, StoreError>(client)
            })?;
            self.live = Some(Session { client, statements: HashMap::new(), ids: VecDeque::new(), broken: false });
        }
        let Some(session) = self.live.as_mut() else { return Err(unavailable_text("no connection")) };
        let waiter = Waiter { runtime: &self.runtime, trips: &self.trips, commit };
        let mut wire = Wire { waiter, session };
        let result = work(&mut wire);
        if wire.session.broken {
            self.live = None;
        } else if matches!(result, Err(StoreError::Unavailable { .. })) {
            let client = &wire.session.client;
            let alive = !client.is_closed()
                && self
                    .runtime
                    .block_on(async {
                        tokio::time::timeout(std::time::Duration::from_secs(1), client.simple_query("")).await
                    })
                    .is_ok_and(|answer| answer.is_ok());
            if !alive {
                self.live = None;
            }
        }
        result
    }
}

/// A participant's state in schema `schema` of the database at `url`.
#[derive(Clone)]
pub struct PostgresBackend {
    inner: Arc<Inner>,
}

struct Inner {
    /// The threads' queue: they end when it closes, with the last clone of the backend.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    /// Who claims outbox items: this replica (its settings' identity), else this process and this backend.
    replica: String,
    url: String,
    schema: String,
    settings: PostgresSettings,
    /// Round trips this backend's connections made.
    trips: Arc<AtomicU64>,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend").field("schema", &self.inner.schema).finish_non_exhaustive()
    }
}

fn unavailable(error: tokio_postgres::Error) -> StoreError {
    let reason = match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        // "error connecting to server", and why: the cause is in the chain.
        None => {
            let mut reason = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                reason = format!("{reason}: {cause}");
                source = cause.source();
            }
            reason
        }
    };
    StoreError::Unavailable { reason }
}

/// A connection error as the store's, without the password.
fn connect_error(url: &str, error: tokio_postgres::Error) -> StoreError {
    match unavailable(error) {
        StoreError::Unavailable { reason } => StoreError::Unavailable { reason: reason.replace(url, &redact(url)) },
        other => other,
    }
}

/// A blocking connection to `url` (migrations, checks), over TLS as its `sslmode` says
/// (`postgres_connect`), given up after 5 seconds unless it says otherwise (a database that is
/// down must not hold a participant's calls for long). No error shows the password.
fn connect(url: &str) -> Result<postgres::Client, StoreError> {
    target(url)?.connect().map_err(|error| connect_error(url, error))
}

/// [`connect`], for the pool's runtimes.
async fn connect_async(
    url: &str,
) -> Result<
    (Client, tokio_postgres::Connection<tokio_postgres::Socket, RustlsStream<tokio_postgres::Socket>>),
    StoreError,
> {
    target(url)?.connect_async().await.map_err(|error| connect_error(url, error))
}

fn unavailable_text(reason: &str) -> StoreError {
    StoreError::Unavailable { reason: reason.to_owned() }
}

/// A database error as the store's: a lost race (a unique key taken by another
/// writer, a serialization failure) is a conflict; the rest, the database failing.
fn database(key: &str, error: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    match error.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::T_R_SERIALIZATION_FAILURE => {
            StoreError::Conflict { key: key.to_owned(), expected: 0, found: 0 }
        }
        _ => unavailable(error),
    }
}

/// Whether `name` may be a schema's name as it is written into SQL.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

impl PostgresBackend {
    /// Opens (creating or migrating it) schema `schema` of the database at `url`
    /// (`postgres://user@host:port/db`). A schema newer than this build knows is
    /// refused, and so is a database that cannot be reached.
    pub fn open(url: &str, schema: &str) -> Result<PostgresBackend, StoreError> {
        PostgresBackend::open_with(url, schema, &PostgresSettings::default())
    }

    /// [`PostgresBackend::open`], with `settings`' pool, lease, timeouts and replica identity.
    pub fn open_with(url: &str, schema: &str, settings: &PostgresSettings) -> Result<PostgresBackend, StoreError> {
        if !plain_name(schema) {
            return Err(StoreError::Format {
                path: schema.to_owned(),
                found: "a schema name".to_owned(),
                what_to_do: "name it with lowercase letters, digits and _".to_owned(),
            });
        }
        if settings.migrate {
            off_runtime(|| migrate(url, schema))?;
        } else {
            off_runtime(|| read_version(url, schema))?;
        }
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let trips = Arc::new(AtomicU64::new(0));
        for index in 0..settings.pool.max(1) {
            let receiver = Arc::clone(&receiver);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| unavailable_text(&format!("cannot start a database thread's runtime: {error}")))?;
            let trips = Arc::clone(&trips);
            std::thread::Builder::new()
                .name(format!("egov-pg-{schema}-{index}"))
                .spawn(move || {
                    let mut connection = Connection {
                        url: String::new(),
                        schema: String::new(),
                        session: String::new(),
                        runtime,
                        live: None,
                        trips,
                    };
                    loop {
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // The job connects, or reconnects, through `connection`.
                        job(&mut connection);
                    }
                })
                .map_err(|error| unavailable_text(&format!("cannot start a database thread: {error}")))?;
        }
        Ok(PostgresBackend {
            inner: Arc::new(Inner {
                jobs: Mutex::new(Some(sender)),
                replica: settings.replica.clone().unwrap_or_else(replica_name),
                url: url.to_owned(),
                schema: schema.to_owned(),
                settings: settings.clone(),
                trips,
            }),
        })
    }

    /// Round trips this backend's connections made since it was opened: each wait for
    /// answers (a commit's pipeline is one), as [`crate::stats`] counts them for the process.
    pub fn round_trips(&self) -> u64 {
        self.inner.trips.load(Ordering::Relaxed)
    }

    /// Runs the read `work` on a connection of the pool, waiting for its answer. A
    /// connection that broke (the database restarted since it was made) is made again
    /// and the read tried once more: a read changes nothing.
    fn run<R: Send + 'static>(
        &self,
        work: impl Fn(&mut Wire<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(
            move |connection| match connection.attempt(false, &work) {
                Err(StoreError::Unavailable { .. }) if connection.live.is_none() => connection.attempt(false, &work),
                done => done,
            },
            move |result| {
                let _ = reply.send(result);
            },
        )?;
        answer.recv().map_err(|_| StoreError::Stopped)?
    }

    /// Hands `work` to a thread of the pool, with its connection made if need be;
    /// `reply` gets what it came to.
    fn submit<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
        reply: impl FnOnce(Result<R, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        let (url, schema) = (self.inner.url.clone(), self.inner.schema.clone());
        let session = self.inner.settings.session_sql();
        let job: Job = Box::new(move |connection: &mut Connection| {
            connection.url = url;
            connection.schema = schema;
            connection.session = session;
            reply(work(connection));
        });
        let jobs = self.inner.jobs.lock().map_err(|_| StoreError::Stopped)?;
        jobs.as_ref().ok_or(StoreError::Stopped)?.send(job).map_err(|_| StoreError::Stopped)
    }

    /// The rows of a read, as `f` turns each into a value.
    fn query<R: Send + 'static>(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn ToSql + Sync + Send>>,
        f: impl Fn(&Row) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<Vec<R>, StoreError> {
        self.run(move |wire| {
            let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
            let rows = wire.query(sql, &params)?;
            rows.iter().map(&f).collect()
        })
    }

    /// Brings schema `schema` of the database at `url` to this build's version
    /// (`egov store migrate`), creating it if need be: the version it was at and
    /// the one it is at. A schema newer than this build knows is refused, unchanged.
    pub fn migrate(url: &str, schema: &str) -> Result<(i64, i64), StoreError> {
        if !plain_name(schema) {
            return Err(StoreError::Format {
                path: schema.to_owned(),
                found: "a schema name".to_owned(),
                what_to_do: "name it with lowercase letters, digits and _".to_owned(),
            });
        }
        off_runtime(|| migrate(url, schema))
    }

    /// The schema versions this build knows: a database at a later one is refused.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Whether the database at `url` has schema `schema` (made by [`PostgresBackend::open`]).
    pub fn exists(url: &str, schema: &str) -> Result<bool, StoreError> {
        off_runtime(|| {
            let mut client = connect(url)?;
            let found = client
                .query_opt(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'schema_version'",
                    &[&schema],
                )
                .map_err(unavailable)?;
            Ok(found.is_some())
        })
    }
}

/// Runs `work` on a thread of its own: the `postgres` client runs a runtime of
/// its own, which it cannot do on a thread that drives the process's.
pub(crate) fn off_runtime<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A name for this backend's claims on outbox items, unique across processes and restarts.
fn replica_name() -> String {
    use std::hash::BuildHasher as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    static OPENED: AtomicU64 = AtomicU64::new(0);
    // Randomly keyed by the standard library, so a restarted process's pid does not reuse a name.
    let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    format!("{}-{random:016x}-{}", std::process::id(), OPENED.fetch_add(1, Ordering::Relaxed))
}

/// Checks, changing nothing, that schema `schema` is at this build's version.
fn read_version(url: &str, schema: &str) -> Result<(), StoreError> {
    let mut client = connect(url)?;
    let table = client
        .query_opt(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'schema_version'",
            &[&schema],
        )
        .map_err(unavailable)?;
    let found: i32 = match table {
        None => 0,
        Some(_) => client
            .query_opt(&format!("SELECT version FROM {schema}.schema_version"), &[])
            .map_err(unavailable)?
            .map_or(0, |row| row.get(0)),
    };
    let known = MIGRATIONS.len() as i32;
    let (schema, found64, known64) = (schema.to_owned(), i64::from(found), i64::from(known));
    match found.cmp(&known) {
        std::cmp::Ordering::Greater => Err(StoreError::Schema { schema, found: found64, known: known64 }),
        std::cmp::Ordering::Less => Err(StoreError::Unmigrated { schema, found: found64, known: known64 }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Creates the schema or brings it to this build's version, one replica at a time:
/// the version it was at, and the version it is at.
fn migrate(url: &str, schema: &str) -> Result<(i64, i64), StoreError> {
    let mut client = connect(url)?;
    let mut transaction = client.transaction().map_err(unavailable)?;
    // Replicas starting together: one migrates, the others wait and find it done.
    transaction.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema]).map_err(unavailable)?;
    transaction
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_version (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), version integer NOT NULL);"
        ))
        .map_err(unavailable)?;
    let found: i32 = transaction
        .query_opt(&format!("SELECT version FROM {schema}.schema_version"), &[])
        .map_err(unavailable)?
        .map_or(0, |row| row.get(0));
    let known = MIGRATIONS.len() as i32;
    if found > known {
        return Err(StoreError::Schema { schema: schema.to_owned(), found: found.into(), known: known.into() });
    }
    transaction.batch_execute(&format!("SET LOCAL search_path TO {schema}")).map_err(unavailable)?;
    for migration in &MIGRATIONS[found as usize..] {
        transaction.batch_execute(migration).map_err(unavailable)?;
    }
    if found < known {
        transaction
            .execute(
                "INSERT INTO schema_version (version) VALUES ($1) ON CONFLICT (only_row) DO UPDATE SET version = $1",
                &[&known],
            )
            .map_err(unavailable)?;
    }
    transaction.commit().map_err(unavailable)?;
    Ok((found.into(), known.into()))
}

/// Keys, slots and notes are stored as bytes: PostgreSQL's text cannot hold the NUL
/// that some keys hold, and a note must come back exactly as it was hashed.
fn string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// Free text (an error) as PostgreSQL's text takes it.
fn text(value: &str) -> String {
    value.replace('\0', "\u{fffd}")
}

fn u64_of(value: i64) -> u64 {
    value.max(0) as u64
}

fn entry_of(row: &Row) -> LogEntry {
    LogEntry {
        sequence: u64_of(row.get(0)),
        time_ms: row.get(1),
        direction: row.get(2),
        envelope: row.get(3),
        note: string(row.get(4)),
    }
}

/// The statements of `steps` that are prepared (each once per connection).
fn prepared_statements(steps: &[Step]) -> Vec<&'static str> {
    steps
        .iter()
        .filter_map(|step| match step {
            Step::Prepared { sql, .. } => Some(*sql),
            Step::Simple(_) => None,
        })
        .collect()
}

fn item_of(row: &Row) -> OutboxItem {
    OutboxItem {
        id: u64_of(row.get(0)),
        target: row.get(1),
        envelope: row.get(2),
        entry: u64_of(row.get(3)),
        slot: string(row.get(4)),
        attempts: row.get::<_, i32>(5).max(0) as u32,
        next_attempt_ms: row.get(6),
        last_error: row.get(7),
        enqueued_ms: row.get(8),
    }
}

/// Folds at most [`INTEGRATE_BATCH`] committed entries into the Merkle tree, in one transaction,
/// if no other replica is integrating (a transaction-level advisory lock: it ends with the
/// transaction, or with the connection of a replica that died). The tree's size then, and
/// whether more entries may be waiting.
fn integrate_once(wire: &mut Wire<'_>, schema: &str) -> Result<(u64, bool), StoreError> {
    let Wire { waiter, session } = wire;
    let tx = waiter.wait(session.client.transaction()).map_err(unavailable)?;
    // Ended here either way: a transaction dropped open would keep the advisory lock until
    // this connection's next call.
    match integrate_in(waiter, &tx, schema) {
        Ok(done) => {
            waiter.wait(tx.commit()).map_err(unavailable)?;
            Ok(done)
        }
        Err(error) => {
            let _ = waiter.wait(tx.rollback());
            Err(error)
        }
    }
}

/// [`integrate_once`], in its transaction `tx`.
fn integrate_in(
    waiter: &Waiter<'_>,
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
) -> Result<(u64, bool), StoreError> {
    let lock = format!("{schema}/tlog");
    let held: bool = waiter
        .wait(tx.query_one("SELECT pg_try_advisory_xact_lock(hashtext($1))", &[&lock]))
        .map_err(unavailable)?
        .get(0);
    let size = u64_of(waiter.wait(tx.query_one("SELECT size FROM tlog_size", &[])).map_err(unavailable)?.get(0));
    if !held {
        // Another replica integrates now.
        return Ok((size, false));
    }
    let edge_ids = Tree::edge_nodes(size);
    let levels: Vec<i16> = edge_ids.iter().map(|id| i16::from(id.level)).collect();
    let indexes: Vec<i64> = edge_ids.iter().map(|id| id.index as i64).collect();
    let rows = waiter
        .wait(tx.query(
            "SELECT n.hash FROM unnest($1::smallint[], $2::bigint[]) WITH ORDINALITY AS w(level, idx, o)
             JOIN tlog_nodes n ON n.level = w.level AND n.idx = w.idx ORDER BY w.o",
            &[&levels, &indexes],
        ))
        .map_err(unavailable)?;
    let edge: Vec<Hash> =
        rows.iter().filter_map(|row| Hash::try_from(row.get::<_, Vec<u8>>(0).as_slice()).ok()).collect();
    let mut tree = Tree::from_parts(size, edge).ok_or_else(|| StoreError::Corrupt {
        key: "tlog".to_owned(),
        reason: format!("the Merkle tree's right edge at size {size} is incomplete"),
    })?;
    let entries = waiter
        .wait(tx.query(
            "SELECT sequence, time_ms, direction, envelope, note, leaf FROM log WHERE sequence > $1 ORDER BY sequence LIMIT $2",
            &[&(size as i64), &INTEGRATE_BATCH],
        ))
        .map_err(unavailable)?;
    if entries.is_empty() {
        return Ok((size, false));
    }
    let (mut levels, mut indexes, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for row in &entries {
        let entry = entry_of(row);
        if entry.sequence != tree.size() + 1 {
            return Err(StoreError::Corrupt {
                key: format!("log/{}", tree.size() + 1),
                reason: format!(
                    "the integrator finds entry {} after entry {}: the log lost entries",
                    entry.sequence,
                    tree.size()
                ),
            });
        }
        let leaf = entry.leaf_hash();
        let committed: Option<Vec<u8>> = row.get(5);
        // Entries of an earlier schema have no leaf hash of their commit.
        if committed.as_ref().is_some_and(|committed| committed.as_slice() != leaf.as_slice()) {
            return Err(StoreError::Corrupt {
                key: format!("log/{}", entry.sequence),
                reason: "its content does not give the leaf hash it was committed with: it changed between its \
                         commit and its integration; the integrator stops here"
                    .to_owned(),
            });
        }
        for (id, hash) in tree.append(leaf) {
            levels.push(i16::from(id.level));
            indexes.push(id.index as i64);
            hashes.push(hash.to_vec());
        }
    }
    let size_now = tree.size() as i64;
    waiter
        .wait(tx.execute(
            "INSERT INTO tlog_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])",
            &[&levels, &indexes, &hashes],
        ))
        .map_err(unavailable)?;
    waiter.wait(tx.execute("UPDATE tlog_size SET size = $1", &[&size_now])).map_err(unavailable)?;
    Ok((tree.size(), entries.len() as i64 == INTEGRATE_BATCH))
}

/// Applies `batch` in one transaction, all of it or none, by the rules every backend applies
/// ([`crate::batch::apply`]), sent as one pipeline: BEGIN, every statement of the batch, the
/// sequencing statement and COMMIT, written together and their answers read after (one round
/// trip; two when the batch replaces a message waiting in its slot, which is read first).
/// Acknowledged only when every answer is a success: a statement that fails aborts the
/// transaction, and PostgreSQL then answers the pipelined COMMIT by rolling back.
fn apply(wire: &mut Wire<'_>, batch: Batch, durability: Durability) -> Result<Vec<u64>, StoreError> {
    let mut apply = PostgresApply {
        wire,
        durability,
        steps: Vec::new(),
        open: false,
        pending: false,
        entries: Vec::new(),
        keys: Vec::new(),
        items: Vec::new(),
        answers: Vec::new(),
    };
    let result = batch::apply(batch, &mut apply).and_then(|ids| apply.commit().map(|()| ids));
    if result.is_err() && apply.open {
        // A slot was read, then the batch failed before its COMMIT was sent: the transaction
        // is still open on the connection. A connection that cannot roll it back is dropped.
        let client = &apply.wire.session.client;
        if apply.wire.waiter.wait(client.batch_execute("ROLLBACK")).is_err() {
            apply.wire.session.broken = true;
        }
    }
    let ids = result?;
    crate::stats::committed(durability == Durability::Flushed);
    crate::stats::postgres_committed();
    Ok(ids)
}

/// An entry a commit writes in its last statement: time, direction, envelope, note, leaf hash.
type PendingEntry = (i64, String, Vec<u8>, Vec<u8>, Vec<u8>);

/// The PostgreSQL backend's primitives, deferred: each appends its statement to the commit's
/// pipeline, sent by [`PostgresApply::commit`] (or earlier by [`batch::Apply::in_slot`], which
/// needs an answer before the batch goes on).
struct PostgresApply<'w, 'a> {
    wire: &'w mut Wire<'a>,
    durability: Durability,
    /// Statements not sent yet.
    steps: Vec<Step>,
    /// Whether BEGIN was sent, and COMMIT not yet.
    open: bool,
    /// Whether the batch logs entries (numbered from [`PROVISIONAL`]).
    pending: bool,
    /// The entries, written by the sequencing statement: time, direction, envelope, note, leaf hash.
    entries: Vec<PendingEntry>,
    /// Index keys: key, and the entry's place in the batch (1 for the first).
    keys: Vec<(Vec<u8>, i64)>,
    /// Outbox items that refer to an entry of the batch.
    items: Vec<i64>,
    /// Remembered answers that refer to an entry of the batch: sender and message id.
    answers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl PostgresApply<'_, '_> {
    fn push(&mut self, sql: &'static str, key: impl Into<String>, params: Vec<Param>) {
        self.steps.push(Step::prepared(sql, key, params));
    }

    /// Sends what is queued, after BEGIN if the transaction is not open yet, and with `last`
    /// after it (`ends`: COMMIT): the answers of the queued statements and of `last`.
    fn send(&mut self, last: Option<Step>, ends: bool) -> Result<Vec<Vec<Row>>, StoreError> {
        let mut steps = Vec::with_capacity(self.steps.len() + 3);
        if !self.open {
            steps.push(Step::Simple(match self.durability {
                Durability::Flushed => "BEGIN",
                // Not waiting for the disk, for this transaction only.
                Durability::Unflushed => "BEGIN; SET LOCAL synchronous_commit TO off",
            }));
        }
        steps.append(&mut self.steps);
        steps.extend(last);
        // Prepared first (a round trip on the connection's first use of a statement): when
        // that fails, nothing of the pipeline was sent.
        let sqls = prepared_statements(&steps);
        self.wire.prepare(&sqls)?;
        // Once sent with its COMMIT, the transaction ends with it (committed, or rolled back
        // after a statement failed), or with the connection; else it stays open.
        self.open = !ends;
        self.wire.pipeline(&steps)
    }

    /// The sequencing statement, and COMMIT, sent with every statement still queued.
    fn commit(&mut self) -> Result<(), StoreError> {
        self.sequence();
        let sent = self.send(Some(Step::Simple("COMMIT")), true);
        // Every answer was a success (`Wire::pipeline` checks each), so the transaction was not
        // aborted, and its COMMIT committed it (tokio-postgres does not show the COMMIT's tag; a
        // COMMIT answered ROLLBACK follows a failed statement, whose error is found first).
        let answers = sent?;
        if answers.len() < 2 {
            return Err(unavailable_text("the commit's pipeline was not answered"));
        }
        Ok(())
    }

    /// Queues the commit's last statement before COMMIT: takes the entries' sequence numbers
    /// from the counter row, writes the entries and their index under them, and renumbers the
    /// outbox items and remembered answers that refer to them. The counter's row lock is held
    /// from here to COMMIT, which leave in the same pipeline.
    fn sequence(&mut self) {
        if !self.pending {
            return;
        }
        let count = self.entries.len() as i64;
        let (mut times, mut directions, mut envelopes, mut notes, mut leaves) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (time_ms, direction, envelope, note, leaf) in std::mem::take(&mut self.entries) {
            times.push(time_ms);
            directions.push(direction);
            envelopes.push(envelope);
            notes.push(note);
            leaves.push(leaf);
        }
        let (index_keys, index_at): (Vec<Vec<u8>>, Vec<i64>) = std::mem::take(&mut self.keys).into_iter().unzip();
        let (senders, messages): (Vec<Vec<u8>>, Vec<Vec<u8>>) = std::mem::take(&mut self.answers).into_iter().unzip();
        let items = std::mem::take(&mut self.items);
        self.push(
            "WITH c AS (UPDATE log_head SET sequence = sequence + $1 RETURNING sequence - $1 AS base),
             l AS (INSERT INTO log (sequence, time_ms, direction, envelope, note, leaf)
                   SELECT c.base + t.n, t.time_ms, t.direction, t.envelope, t.note, t.leaf
                   FROM c, unnest($2::bigint[], $3::text[], $4::bytea[], $5::bytea[], $6::bytea[])
                        WITH ORDINALITY AS t(time_ms, direction, envelope, note, leaf, n)),
             i AS (INSERT INTO log_index (key, sequence)
                   SELECT k.key, c.base + k.n FROM c, unnest($7::bytea[], $8::bigint[]) AS k(key, n)),
             o AS (UPDATE outbox SET entry = c.base + (outbox.entry - $9) FROM c
                   WHERE outbox.id = ANY($10::bigint[]) AND outbox.entry > $9),
             r AS (UPDATE remembered SET entry = c.base + (remembered.entry - $9)
                   FROM c, unnest($11::bytea[], $12::bytea[]) AS m(sender_id, message_id)
                   WHERE remembered.sender_id = m.sender_id AND remembered.message_id = m.message_id
                     AND remembered.entry > $9)
             SELECT base FROM c",
            "log",
            vec![
                Box::new(count),
                Box::new(times),
                Box::new(directions),
                Box::new(envelopes),
                Box::new(notes),
                Box::new(leaves),
                Box::new(index_keys),
                Box::new(index_at),
                Box::new(PROVISIONAL),
                Box::new(items),
                Box::new(senders),
                Box::new(messages),
            ],
        );
    }
}

impl batch::Apply for PostgresApply<'_, '_> {
    fn put(&mut self, key: String, expected_version: u64, value: Vec<u8>) -> Result<(), StoreError> {
        // Raises `CONFLICT_STATE` in the database when the version is not the one read, which
        // aborts the transaction: the pipelined COMMIT then commits nothing.
        let params: Vec<Param> =
            vec![Box::new(key.as_bytes().to_vec()), Box::new(expected_version as i64), Box::new(value)];
        self.steps.push(Step::Prepared {
            sql: "SELECT put_record($1, $2, $3)",
            params,
            key,
            expected: expected_version,
        });
        Ok(())
    }

    fn index(&mut self, key: String, present: bool) -> Result<(), StoreError> {
        let sql = if present {
            "INSERT INTO records (key, version, value) VALUES ($1, 0, '') ON CONFLICT (key) DO UPDATE SET value = ''"
        } else {
            "DELETE FROM records WHERE key = $1"
        };
        let stored = key.as_bytes().to_vec();
        self.push(sql, key, vec![Box::new(stored)]);
        Ok(())
    }

    fn head(&mut self) -> Result<u64, StoreError> {
        // Provisional numbers, known without asking (see `PROVISIONAL`): the real ones are
        // taken by the sequencing statement, just before COMMIT.
        self.pending = true;
        Ok(PROVISIONAL as u64)
    }

    fn append(&mut self, entry: &LogEntry, keys: &[String]) -> Result<(), StoreError> {
        // Written by the sequencing statement, under its sequence number.
        let n = self.entries.len() as i64 + 1;
        self.entries.push((
            entry.time_ms,
            entry.direction.clone(),
            entry.envelope.clone(),
            entry.note.as_bytes().to_vec(),
            entry.leaf_hash().to_vec(),
        ));
        for key in keys {
            self.keys.push((key.as_bytes().to_vec(), n));
        }
        Ok(())
    }

    fn set_head(&mut self, _sequence: u64) -> Result<(), StoreError> {
        // The counter is touched once, by the sequencing statement ([`PostgresApply::sequence`]).
        Ok(())
    }

    fn in_slot(&mut self, slot: &str) -> Result<Option<batch::Waiting>, StoreError> {
        // The batch needs the answer: what is queued is sent, with the read (locking the row
        // for this transaction), and the rest of the batch follows with COMMIT.
        let read = Step::prepared(
            "SELECT id, next_attempt_ms FROM outbox WHERE slot = $1 FOR UPDATE",
            format!("outbox slot {slot}"),
            vec![Box::new(slot.as_bytes().to_vec())],
        );
        let answers = self.send(Some(read), false)?;
        let row = answers.last().and_then(|rows| rows.first());
        Ok(row.map(|row| (u64_of(row.get(0)), row.get(1))))
    }

    fn new_id(&mut self) -> Result<u64, StoreError> {
        if self.wire.session.ids.is_empty() {
            // A block of ids for this connection, outside the transaction (a sequence is not
            // transactional): one round trip every `ID_BLOCK` ids.
            let rows = self.wire.query("SELECT nextval('ids') FROM generate_series(1, $1::bigint)", &[&ID_BLOCK])?;
            self.wire.session.ids.extend(rows.iter().map(|row| u64_of(row.get(0))));
        }
        self.wire.session.ids.pop_front().ok_or_else(|| unavailable_text("nextval returned nothing"))
    }

    fn put_item(&mut self, item: &OutboxItem, replaces: bool) -> Result<(), StoreError> {
        let id = item.id as i64;
        if item.entry as i64 > PROVISIONAL {
            self.items.push(id);
        }
        // An item that refers to its log entry does not hold the envelope again.
        let envelope: Vec<u8> = if item.entry == 0 { item.envelope.clone() } else { Vec::new() };
        if replaces {
            // In place of the message of its slot still waiting: its id, the earlier due time.
            self.push(
                "UPDATE outbox SET target = $2, envelope = $3, entry = $4, next_attempt_ms = $5 WHERE id = $1",
                format!("outbox/{id}"),
                vec![
                    Box::new(id),
                    Box::new(item.target.clone()),
                    Box::new(envelope),
                    Box::new(item.entry as i64),
                    Box::new(item.next_attempt_ms),
                ],
            );
        } else {
            self.push(
                "INSERT INTO outbox (id, target, envelope, entry, slot, attempts, next_attempt_ms, last_error, enqueued_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                format!("outbox slot {}", item.slot),
                vec![
                    Box::new(id),
                    Box::new(item.target.clone()),
                    Box::new(envelope),
                    Box::new(item.entry as i64),
                    Box::new(item.slot.as_bytes().to_vec()),
                    Box::new(item.attempts as i32),
                    Box::new(item.next_attempt_ms),
                    Box::new(text(&item.last_error)),
                    Box::new(item.enqueued_ms),
                ],
            );
        }
        Ok(())
    }

    fn update_item(&mut self, item: &OutboxItem) -> Result<(), StoreError> {
        // Gone, or replaced by a later envelope of its slot: the update was for what is no longer there.
        self.push(
            "UPDATE outbox SET attempts = $3, next_attempt_ms = $4, last_error = $5, leased_by = NULL, lease_until = NULL
             WHERE id = $1 AND entry = $2",
            format!("outbox/{}", item.id),
            vec![
                Box::new(item.id as i64),
                Box::new(item.entry as i64),
                Box::new(item.attempts as i32),
                Box::new(item.next_attempt_ms),
                Box::new(text(&item.last_error)),
            ],
        );
        Ok(())
    }

    fn remove_item(&mut self, id: u64, entry: u64) -> Result<(), StoreError> {
        // Replaced meanwhile by a later envelope of its slot: that one is still to send.
        self.push(
            "DELETE FROM outbox WHERE id = $1 AND entry = $2",
            format!("outbox/{id}"),
            vec![Box::new(id as i64), Box::new(entry as i64)],
        );
        Ok(())
    }

    fn remember(&mut self, key: &str, stored: StoredRemembered, replace: bool) -> Result<(), StoreError> {
        let (sender_id, message_id) = key.split_once('\u{0}').unwrap_or((key, ""));
        let StoredRemembered { digest, prefix, entry, suffix } = stored;
        if entry as i64 > PROVISIONAL {
            self.answers.push((sender_id.as_bytes().to_vec(), message_id.as_bytes().to_vec()));
        }
        // Unique on (sender, message id): a replica that took the same message meanwhile wins,
        // and a first answer's batch is refused as a conflict, so the message is processed once.
        let sql = if replace {
            "INSERT INTO remembered (sender_id, message_id, digest, response, entry, suffix) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (sender_id, message_id) DO UPDATE SET digest = $3, response = $4, entry = $5, suffix = $6"
        } else {
            "INSERT INTO remembered (sender_id, message_id, digest, response, entry, suffix) VALUES ($1, $2, $3, $4, $5, $6)"
        };
        self.push(
            sql,
            format!("seen/{sender_id}/{message_id}"),
            vec![
                Box::new(sender_id.as_bytes().to_vec()),
                Box::new(message_id.as_bytes().to_vec()),
                Box::new(digest),
                Box::new(prefix),
                Box::new(entry as i64),
                Box::new(suffix),
            ],
        );
        Ok(())
    }
}

impl Backend for PostgresBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        Ok(self
            .query("SELECT value FROM records WHERE key = $1", vec![Box::new(key.into_bytes())], |row| {
                Ok(row.get::<_, Vec<u8>>(0))
            })?
            .pop())
    }

    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        // The keys from the prefix up to the first that no longer starts with it, in byte order.
        let from = prefix.as_bytes().to_vec();
        let rows = |row: &Row| Ok((string(row.get(0)), row.get(1)));
        match upper_bound(&from) {
            Some(to) => self.query(
                "SELECT key, value FROM records WHERE key >= $1 AND key < $2 ORDER BY key",
                vec![Box::new(from), Box::new(to)],
                rows,
            ),
            None => {
                self.query("SELECT key, value FROM records WHERE key >= $1 ORDER BY key", vec![Box::new(from)], rows)
            }
        }
    }

    fn keys_after(&self, prefix: &str, from: &str, limit: usize, descending: bool) -> Result<Vec<String>, StoreError> {
        // [low, high) in byte order: ascending after `from` starts at its successor, `from` + 0x00.
        let start = prefix.as_bytes().to_vec();
        let end = upper_bound(&start);
        let (low, high) = match (from.is_empty(), descending) {
            (true, _) => (start, end),
            (false, false) => ([from.as_bytes(), &[0]].concat(), end),
            (false, true) => (start, Some(from.as_bytes().to_vec())),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let key = |row: &Row| Ok(string(row.get(0)));
        match (high, descending) {
            (Some(high), false) => self.query(
                "SELECT key FROM records WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3",
                vec![Box::new(low), Box::new(high), Box::new(limit)],
                key,
            ),
            (Some(high), true) => self.query(
                "SELECT key FROM records WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT $3",
                vec![Box::new(low), Box::new(high), Box::new(limit)],
                key,
            ),
            (None, false) => self.query(
                "SELECT key FROM records WHERE key >= $1 ORDER BY key LIMIT $2",
                vec![Box::new(low), Box::new(limit)],
                key,
            ),
            (None, true) => self.query(
                "SELECT key FROM records WHERE key >= $1 ORDER BY key DESC LIMIT $2",
                vec![Box::new(low), Box::new(limit)],
                key,
            ),
        }
    }

    fn remembered(&self, sender_id: &str, message_id: &str) -> Result<Option<Remembered>, StoreError> {
        Ok(self
            .query(
                // An answer that carries a logged envelope: the bytes around it, and the entry.
                "SELECT r.digest, r.response, r.entry, r.suffix, l.envelope FROM remembered r
                 LEFT JOIN log l ON r.entry <> 0 AND l.sequence = r.entry
                 WHERE r.sender_id = $1 AND r.message_id = $2",
                vec![Box::new(sender_id.as_bytes().to_vec()), Box::new(message_id.as_bytes().to_vec())],
                |row| {
                    let stored = StoredRemembered {
                        digest: row.get(0),
                        prefix: row.get(1),
                        entry: u64_of(row.get(2)),
                        suffix: row.get(3),
                    };
                    let envelope: Option<Vec<u8>> = row.get(4);
                    if stored.entry != 0 && envelope.is_none() {
                        return Err(StoreError::Corrupt {
                            key: "remembered".to_owned(),
                            reason: format!("it refers to log entry {}, which is not there", stored.entry),
                        });
                    }
                    Ok(stored.into_remembered(&envelope.unwrap_or_default()))
                },
            )?
            .pop())
    }

    fn log_entries(&self) -> Box<dyn Iterator<Item = Result<LogEntry, StoreError>> + '_> {
        // In pages, oldest first.
        let mut after = 0i64;
        let mut page: std::vec::IntoIter<LogEntry> = Vec::new().into_iter();
        let mut failed = false;
        Box::new(std::iter::from_fn(move || {
            if failed {
                return None;
            }
            if let Some(entry) = page.next() {
                return Some(Ok(entry));
            }
            let rows = self.query(
                "SELECT sequence, time_ms, direction, envelope, note FROM log WHERE sequence > $1 ORDER BY sequence LIMIT 1000",
                vec![Box::new(after)],
                |row| Ok(entry_of(row)),
            );
            match rows {
                Err(error) => {
                    failed = true;
                    Some(Err(error))
                }
                Ok(rows) => {
                    after = rows.last().map_or(after, |entry| entry.sequence as i64);
                    page = rows.into_iter();
                    page.next().map(Ok)
                }
            }
        }))
    }

    fn log_entry(&self, sequence: u64) -> Result<Option<LogEntry>, StoreError> {
        Ok(self
            .query(
                "SELECT sequence, time_ms, direction, envelope, note FROM log WHERE sequence = $1",
                vec![Box::new(sequence as i64)],
                |row| Ok(entry_of(row)),
            )?
            .pop())
    }

    fn indexed_log(&self, key: &str, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        self.query(
            "SELECT l.sequence, l.time_ms, l.direction, l.envelope, l.note
             FROM log_index i JOIN log l ON l.sequence = i.sequence WHERE i.key = $1 ORDER BY i.sequence LIMIT $2",
            vec![Box::new(key.as_bytes().to_vec()), Box::new(limit.min(i64::MAX as usize) as i64)],
            |row| Ok(entry_of(row)),
        )
    }

    fn log_tail(&self, count: usize) -> Result<Vec<LogEntry>, StoreError> {
        let mut entries = self.query(
            "SELECT sequence, time_ms, direction, envelope, note FROM log ORDER BY sequence DESC LIMIT $1",
            vec![Box::new(count.min(i64::MAX as usize) as i64)],
            |row| Ok(entry_of(row)),
        )?;
        entries.reverse();
        Ok(entries)
    }

    fn log_head(&self) -> Result<u64, StoreError> {
        let head = self.query("SELECT sequence FROM log_head", Vec::new(), |row| Ok(u64_of(row.get(0))))?;
        Ok(head.into_iter().next().unwrap_or(0))
    }

    fn tlog_size(&self) -> Result<u64, StoreError> {
        let size = self.query("SELECT size FROM tlog_size", Vec::new(), |row| Ok(u64_of(row.get(0))))?;
        Ok(size.into_iter().next().unwrap_or(0))
    }

    fn tlog_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        let levels: Vec<i16> = ids.iter().map(|id| i16::from(id.level)).collect();
        let indexes: Vec<i64> = ids.iter().map(|id| id.index as i64).collect();
        let found = self.query(
            "SELECT n.level, n.idx, n.hash FROM tlog_nodes n
             JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx",
            vec![Box::new(levels), Box::new(indexes)],
            |row| Ok(((row.get::<_, i16>(0), row.get::<_, i64>(1)), row.get::<_, Vec<u8>>(2))),
        )?;
        let found: HashMap<(i16, i64), Vec<u8>> = found.into_iter().collect();
        ids.iter()
            .map(|id| {
                found
                    .get(&(i16::from(id.level), id.index as i64))
                    .and_then(|hash| Hash::try_from(hash.as_slice()).ok())
                    .ok_or_else(|| StoreError::Corrupt {
                        key: format!("tlog/{}/{}", id.level, id.index),
                        reason: "the Merkle tree's node is missing or not 32 bytes".to_owned(),
                    })
            })
            .collect()
    }

    fn integrate(&self) -> Result<u64, StoreError> {
        let schema = self.inner.schema.clone();
        let mut size = self.tlog_size()?;
        loop {
            let schema = schema.clone();
            let (now, more) = self.run(move |wire| integrate_once(wire, &schema))?;
            if !more || now == size {
                return Ok(now);
            }
            size = now;
        }
    }

    fn due(&self, now_ms: i64, limit: usize, skip: &dyn Fn(u64) -> bool) -> Result<Vec<OutboxItem>, StoreError> {
        // Claimed for this replica: due, and not claimed by another whose lease still holds.
        let replica = self.inner.replica.clone();
        let claimed = self.query(
            // An item that refers to a log entry has its envelope there. The claim sees the newest
            // version of a row another commit changed since this statement's snapshot (READ
            // COMMITTED re-reads a row it locks), the join on `log` sees the snapshot: a message
            // that took the item's slot in between refers to an entry the join cannot see yet.
            // That item is left out this time (its claim is this replica's, so the next call
            // takes it, with its new envelope), never sent without its envelope.
            "WITH claimed AS (
                 UPDATE outbox SET leased_by = $3, lease_until = now() + make_interval(secs => $4)
                 WHERE id IN (
                     SELECT id FROM outbox
                     WHERE next_attempt_ms <= $1 AND (lease_until IS NULL OR lease_until < now() OR leased_by = $3)
                     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING id, target, envelope, entry, slot, attempts, next_attempt_ms, last_error, enqueued_ms)
             SELECT c.id, c.target, CASE WHEN c.entry = 0 THEN c.envelope ELSE l.envelope END,
                    c.entry, c.slot, c.attempts, c.next_attempt_ms, c.last_error, c.enqueued_ms
             FROM claimed c LEFT JOIN log l ON c.entry <> 0 AND l.sequence = c.entry
             WHERE c.entry = 0 OR l.sequence IS NOT NULL",
            vec![
                Box::new(now_ms),
                Box::new(limit.min(i64::MAX as usize) as i64),
                Box::new(replica),
                Box::new(self.inner.settings.lease.as_secs_f64()),
            ],
            |row| Ok(item_of(row)),
        )?;
        let mut claimed: Vec<OutboxItem> = claimed.into_iter().filter(|item| !skip(item.id)).collect();
        claimed.sort_by_key(|item| item.id);
        Ok(claimed)
    }

    fn schedule(&self) -> Result<Vec<(u64, i64)>, StoreError> {
        let replica = self.inner.replica.clone();
        self.query(
            "SELECT id, next_attempt_ms FROM outbox WHERE lease_until IS NULL OR lease_until < now() OR leased_by = $1 ORDER BY id",
            vec![Box::new(replica)],
            |row| Ok((u64_of(row.get(0)), row.get(1))),
        )
    }

    fn in_outbox(&self, id: u64) -> Result<bool, StoreError> {
        Ok(!self.query("SELECT 1 FROM outbox WHERE id = $1", vec![Box::new(id as i64)], |_| Ok(()))?.is_empty())
    }

    fn next_id(&self) -> Result<u64, StoreError> {
        let ids = self.query("SELECT nextval('ids')", Vec::new(), |row| Ok(u64_of(row.get(0))))?;
        ids.into_iter().next().ok_or_else(|| unavailable_text("nextval returned nothing"))
    }

    fn shared(&self) -> bool {
        true
    }

    fn commit(&self, batch: Batch, durability: Durability) -> CommitFuture<'_> {
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            // Not tried again on a broken connection: a commit whose answer was lost may have
            // happened. The caller is told `store.unavailable` and retries as it does any refusal.
            self.submit(
                move |connection| connection.attempt(true, |wire| apply(wire, batch, durability)),
                move |result| {
                    let _ = reply.send(result);
                },
            )?;
            answer.await.map_err(|_| StoreError::Stopped)?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres_server::PostgresServer;
    use crate::{Store, Versioned};

    fn server() -> (PostgresServer, String) {
        let server = PostgresServer::start().unwrap_or_else(|error| panic!("{error}"));
        let url = server.database("replicas").unwrap();
        (server, url)
    }

    fn sql(url: &str, statements: &str) {
        off_runtime(|| {
            let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
            client.batch_execute(statements).unwrap();
        })
    }

    /// A commit of what a call typically writes: a received envelope logged, a record, the
    /// envelope queued for the next participant, the answer remembered.
    fn typical(n: u8) -> Batch {
        let mut batch = Batch::new();
        let entry = batch.log(i64::from(n), "received", vec![n; 64], "", vec![format!("application/a-{n}")]);
        batch.put(format!("application/a-{n}"), 0, &"received").unwrap();
        batch.enqueue("regional", entry, 1);
        batch.remember("egov-workstation", &format!("m-{n}"), vec![n; 32], crate::Answer::Bytes(vec![n]));
        batch
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conflicting_put_in_the_pipeline_aborts_the_commit_and_nothing_is_written() {
        let (_server, url) = server();
        let store = Store::open_postgres(&url, "gateway").unwrap();
        let mut batch = Batch::new();
        batch.put("a", 0, &1u32).unwrap();
        store.commit(batch).await.unwrap();
        // Sent in one pipeline with COMMIT: the statements before the put and after it, all in vain.
        let mut batch = typical(1);
        batch.put("b", 0, &2u32).unwrap();
        batch.put("a", 4, &5u32).unwrap();
        batch.index("index/a", true);
        let error = store.commit(batch).await.unwrap_err();
        match &error {
            StoreError::Conflict { key, expected, found } => {
                assert_eq!((key.as_str(), *expected, *found), ("a", 4, 1), "{error}");
            }
            other => panic!("not a conflict: {other:?}"),
        }
        assert_eq!(store.log_entries().count(), 0, "no log entry");
        assert_eq!(store.log_head().unwrap(), 0, "no sequence number taken");
        assert!(store.outbox().unwrap().is_empty(), "no outbox item");
        assert!(store.remembered("egov-workstation", "m-1").unwrap().is_none(), "no answer remembered");
        assert!(store.get::<u32>("b").unwrap().is_none() && store.get::<String>("application/a-1").unwrap().is_none());
        assert!(store.index_entries("index/").unwrap().is_empty());
        assert_eq!(store.get::<u32>("a").unwrap().unwrap().version, 1);
        // A record that is not there: found 0.
        let mut batch = Batch::new();
        batch.put("c", 3, &1u32).unwrap();
        let error = store.commit(batch).await.unwrap_err();
        assert!(matches!(error, StoreError::Conflict { expected: 3, found: 0, .. }), "{error:?}");
        // The connection is fine afterwards, and the batch goes through at the right version.
        let mut batch = typical(1);
        batch.put("a", 1, &5u32).unwrap();
        store.commit(batch).await.unwrap();
        assert_eq!(store.log_entries().count(), 1);
        assert_eq!(store.outbox().unwrap().len(), 1);
        assert_eq!(store.get::<u32>("a").unwrap().unwrap().value, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_takes_one_round_trip_and_one_that_replaces_a_waiting_message_two() {
        let (_server, url) = server();
        let settings = PostgresSettings { pool: 1, ..PostgresSettings::default() };
        let backend = PostgresBackend::open_with(&url, "workstation", &settings).unwrap();
        let latest = |n: u8| {
            let mut batch = Batch::new();
            let entry = batch.log(i64::from(n), "sent", vec![n], "", Vec::new());
            batch.enqueue_latest("report/a", "gateway", entry, 10);
            batch.put(format!("report/{n}"), 0, &n).unwrap();
            batch
        };
        // The connection's first commits prepare its statements and reserve its outbox ids.
        backend.commit(typical(0), Durability::Flushed).await.unwrap();
        backend.commit(latest(0), Durability::Flushed).await.unwrap();
        backend.commit(latest(1), Durability::Flushed).await.unwrap();
        for n in 1..6u8 {
            let before = backend.round_trips();
            backend.commit(typical(n), Durability::Flushed).await.unwrap();
            assert_eq!(backend.round_trips() - before, 1, "a typical commit is one round trip");
        }
        let before = backend.round_trips();
        backend.commit(typical(6), Durability::Unflushed).await.unwrap();
        assert_eq!(backend.round_trips() - before, 1, "unflushed too");
        for n in 2..5u8 {
            let before = backend.round_trips();
            backend.commit(latest(n), Durability::Flushed).await.unwrap();
            assert_eq!(backend.round_trips() - before, 2, "the slot is read first, then the rest goes with COMMIT");
        }
        // What they wrote: the log sequenced, the items referring to their entries.
        let entries: Vec<LogEntry> = backend.log_entries().collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.iter().map(|entry| entry.sequence).collect::<Vec<_>>(), (1..=12).collect::<Vec<_>>());
        let items = backend.due(i64::MAX, 100, &|_| false).unwrap();
        assert_eq!(items.len(), 8, "7 typical items and one waiting in its slot");
        let waiting = items.iter().find(|item| item.slot == "report/a").unwrap();
        assert_eq!(waiting.envelope, vec![4], "the latest report's envelope, from its log entry");
        assert!(items.iter().all(|item| item.entry >= 1 && item.entry <= 12));
        let remembered = backend.remembered("egov-workstation", "m-3").unwrap().unwrap();
        assert_eq!(remembered.response, vec![3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_cut_in_the_middle_of_a_commit_acknowledges_nothing() {
        let (_server, url) = server();
        let settings = PostgresSettings { pool: 1, ..PostgresSettings::default() };
        let store = Store::open_postgres_with(&url, "gateway", &settings).unwrap();
        let mut batch = Batch::new();
        batch.put("a", 0, &1u32).unwrap();
        store.commit(batch).await.unwrap();
        // Another session holds a lock the commit's remember needs: the pipeline stops there,
        // its first statements done, its sequencing statement and COMMIT still to come.
        let (locked, is_locked) = std::sync::mpsc::channel();
        let (cut, is_cut) = std::sync::mpsc::channel::<()>();
        let holder = {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let mut transaction = client.transaction().unwrap();
                transaction.batch_execute("LOCK TABLE gateway.remembered IN ACCESS EXCLUSIVE MODE").unwrap();
                locked.send(()).unwrap();
                let _ = is_cut.recv();
                transaction.rollback().unwrap();
            })
        };
        is_locked.recv().unwrap();
        let committing = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut batch = typical(1);
                batch.put("a", 1, &2u32).unwrap();
                store.commit(batch).await
            })
        };
        // The connection is cut while the commit waits.
        let terminated = off_runtime(|| {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
            while std::time::Instant::now() < deadline {
                let row = client
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
                        &[],
                    )
                    .unwrap();
                if row.get::<_, i64>(0) > 0 {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            false
        });
        assert!(terminated, "the commit never waited for the lock");
        let error = committing.await.unwrap().unwrap_err();
        assert_eq!(error.code(), "store.unavailable", "{error}");
        cut.send(()).unwrap();
        holder.join().unwrap();
        // Nothing of it was written.
        assert_eq!(store.get::<u32>("a").unwrap().unwrap().version, 1);
        assert!(store.get::<String>("application/a-1").unwrap().is_none());
        assert_eq!(store.log_entries().count(), 0);
        assert_eq!(store.log_head().unwrap(), 0);
        assert!(store.outbox().unwrap().is_empty());
        assert!(store.remembered("egov-workstation", "m-1").unwrap().is_none());
        // A new connection is made, and the caller's retry goes through.
        let mut batch = typical(1);
        batch.put("a", 1, &2u32).unwrap();
        store.commit(batch).await.unwrap();
        assert_eq!(store.log_entries().count(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replicas_claim_each_item_once_and_a_dead_ones_claims_return_when_its_lease_ends() {
        let (_server, url) = server();
        let first = Store::open_postgres(&url, "gateway").unwrap();
        let second = Store::open_postgres(&url, "gateway").unwrap();
        let mut batch = Batch::new();
        for n in 0..6u8 {
            batch.enqueue_unlogged("regional", vec![n], 1);
        }
        first.commit(batch).await.unwrap();
        let mine = first.due(10, 4).unwrap();
        let theirs = second.due(10, 10).unwrap();
        assert_eq!(mine.len(), 4);
        assert_eq!(theirs.len(), 2, "the other replica gets what the first did not claim");
        assert!(mine.iter().all(|a| theirs.iter().all(|b| a.id != b.id)));
        // A replica sees its own claims again (its worker decides what is on its way).
        assert_eq!(first.due(10, 10).unwrap().len(), 4);
        assert!(second.due(10, 10).unwrap().iter().all(|item| theirs.contains(item)));
        // The first replica dies: once its leases run out, the second takes its items.
        drop(first);
        sql(&url, "UPDATE gateway.outbox SET lease_until = now() - interval '1 second' WHERE leased_by IS NOT NULL");
        assert_eq!(second.due(10, 10).unwrap().len(), 6);
        // Delivered and dequeued by the second: gone for both.
        let mut batch = Batch::new();
        for item in second.due(10, 10).unwrap() {
            batch.dequeue(&item);
        }
        second.commit(batch).await.unwrap();
        assert!(second.outbox().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_started_again_with_its_identity_takes_its_claims_back_at_once() {
        let (_server, url) = server();
        let as_replica =
            |name: &str| PostgresSettings { replica: Some(name.to_owned()), ..PostgresSettings::default() };
        let first = Store::open_postgres_with(&url, "gateway", &as_replica("gateway@host-a/127.0.0.1:50052")).unwrap();
        let mut batch = Batch::new();
        for n in 0..3u8 {
            batch.enqueue_unlogged("regional", vec![n], 1);
        }
        first.commit(batch).await.unwrap();
        assert_eq!(first.due(10, 10).unwrap().len(), 3);
        // Killed holding its claims: another replica waits out their lease (30 s).
        drop(first);
        let other = Store::open_postgres_with(&url, "gateway", &as_replica("gateway@host-b/127.0.0.1:50052")).unwrap();
        assert!(other.due(10, 10).unwrap().is_empty(), "the lease holds for another replica");
        // Started again with its identity: its claims are its own, at once.
        let again = Store::open_postgres_with(&url, "gateway", &as_replica("gateway@host-a/127.0.0.1:50052")).unwrap();
        assert_eq!(again.due(10, 10).unwrap().len(), 3, "taken back at once");
        assert_eq!(again.schedule().unwrap().len(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lease_and_the_lock_timeout_are_the_settings() {
        let (_server, url) = server();
        let settings = PostgresSettings {
            pool: 2,
            lease: std::time::Duration::from_millis(500),
            lock_timeout: std::time::Duration::from_millis(300),
            ..PostgresSettings::default()
        };
        let first = Store::open_postgres_with(&url, "workstation", &settings).unwrap();
        let second = Store::open_postgres_with(&url, "workstation", &settings).unwrap();
        let mut batch = Batch::new();
        batch.enqueue_unlogged("gateway", vec![1], 1);
        batch.put("a", 0, &1u32).unwrap();
        first.commit(batch).await.unwrap();
        assert_eq!(first.due(10, 10).unwrap().len(), 1);
        assert!(second.due(10, 10).unwrap().is_empty());
        std::thread::sleep(std::time::Duration::from_millis(700));
        assert_eq!(second.due(10, 10).unwrap().len(), 1, "the claim ran out after the lease of the settings");
        // A lock held elsewhere: the commit waits the lock timeout, then is refused, changing nothing.
        let (locked, is_locked) = std::sync::mpsc::channel();
        let holder = {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let mut transaction = client.transaction().unwrap();
                transaction.batch_execute("LOCK TABLE workstation.records IN ACCESS EXCLUSIVE MODE").unwrap();
                locked.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_secs(3));
                transaction.rollback().unwrap();
            })
        };
        is_locked.recv().unwrap();
        let started = std::time::Instant::now();
        let mut batch = Batch::new();
        batch.put("a", 1, &2u32).unwrap();
        let error = first.commit(batch).await.unwrap_err();
        assert_eq!(error.code(), "store.unavailable", "{error}");
        assert!(error.to_string().contains("lock timeout"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        holder.join().unwrap();
        assert_eq!(first.get::<u32>("a").unwrap().unwrap().value, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_to_the_database_with_sslmode_require_and_verify_full_on_the_ca_file() {
        let server = PostgresServer::start_with_tls().unwrap_or_else(|error| panic!("{error}"));
        let url = server.database("tls").unwrap();
        // The server takes TLS connections only: without TLS, refused.
        let error = Store::open_postgres(&format!("{url}?sslmode=disable"), "gateway").unwrap_err();
        assert_eq!(error.code(), "store.unavailable", "{error}");
        // Encrypted, the certificate not checked.
        let store = Store::open_postgres(&format!("{url}?sslmode=require"), "gateway").unwrap();
        let mut batch = Batch::new();
        batch.put("a", 0, &1u32).unwrap();
        store.commit(batch).await.unwrap();
        // Encrypted, the certificate checked against the CA and the host's name.
        let ca = server.ca_path();
        let verified = format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display());
        let store = Store::open_postgres(&verified, "gateway").unwrap();
        assert_eq!(store.get::<u32>("a").unwrap().unwrap().value, 1);
        // Another CA's file: the server's certificate is refused.
        let other = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(other.path().join("ca.pem"), params.self_signed(&key).unwrap().pem()).unwrap();
        let wrong = format!("{url}?sslmode=verify-full&sslrootcert={}", other.path().join("ca.pem").display());
        let error = Store::open_postgres(&wrong, "gateway").unwrap_err();
        assert_eq!(error.code(), "store.unavailable", "{error}");
        assert!(error.to_string().contains("certificate"), "{error}");
        // verify-full without the CA's file says what it needs.
        let error = Store::open_postgres(&format!("{url}?sslmode=verify-full"), "gateway").unwrap_err();
        assert!(error.to_string().contains("sslrootcert"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_password_is_in_no_error() {
        let (_server, url) = server();
        // A server that is not there, and one that is, with a password it does not take.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let with_password = url.replacen("egov@", "egov:s3cret-pw@", 1);
        for url in [format!("postgres://egov:s3cret-pw@{dead}/egov"), format!("{with_password}?sslmode=require")] {
            let error = Store::open_postgres(&url, "gateway").unwrap_err();
            assert!(!error.to_string().contains("s3cret-pw"), "{error}");
            assert!(!format!("{error:?}").contains("s3cret-pw"), "{error:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_same_message_taken_by_two_replicas_is_committed_once() {
        let (_server, url) = server();
        let first = Store::open_postgres(&url, "regional").unwrap();
        let second = Store::open_postgres(&url, "regional").unwrap();
        let take = || {
            let mut batch = Batch::new();
            batch.log(1, "received", vec![1, 2, 3], "", Vec::new());
            batch.remember("egov-gateway", "m-1", vec![1; 32], crate::Answer::Bytes(vec![9]));
            batch.put("registration/r-1", 0, &"registered").unwrap();
            batch
        };
        let (a, b) = tokio::join!(first.commit(take()), second.commit(take()));
        let refused = [&a, &b].iter().filter(|result| result.is_err()).count();
        assert_eq!(refused, 1, "{a:?} {b:?}");
        let error = if let Err(error) = a { error } else { b.unwrap_err() };
        assert_eq!(error.code(), "store.conflict");
        assert_eq!(first.log_entries().count(), 1, "the refused batch logged nothing");
        assert_eq!(first.verify(None).unwrap(), 1);
        // One chain for the participant, whichever replica writes.
        for store in [&first, &second, &first] {
            let mut batch = Batch::new();
            batch.log(2, "sent", vec![4], "", Vec::new());
            store.commit(batch).await.unwrap();
        }
        assert_eq!(second.verify(None).unwrap(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_finds_a_changed_entry_and_a_lost_tail_in_the_database() {
        let (_server, url) = server();
        let store = Store::open_postgres(&url, "workstation").unwrap();
        for n in 0..5u8 {
            let mut batch = Batch::new();
            batch.log(i64::from(n), "received", vec![n], "", Vec::new());
            store.commit(batch).await.unwrap();
        }
        // Changed after its commit, before its integration: the integrator refuses it.
        sql(&url, "UPDATE workstation.log SET envelope = '\\x63' WHERE sequence = 3");
        let error = store.integrate().unwrap_err();
        assert!(error.to_string().contains("log/3") && error.to_string().contains("between its commit"), "{error}");
        assert_eq!(store.tree_size().unwrap(), 0, "nothing past it is integrated");
        let error = store.verify(None).unwrap_err();
        assert!(error.to_string().contains("log/3") && error.to_string().contains("between its commit"), "{error}");
        // Put back, integrated; changed again afterwards: its leaf in the tree tells.
        sql(&url, "UPDATE workstation.log SET envelope = '\\x02' WHERE sequence = 3");
        assert_eq!(store.integrate().unwrap(), 5);
        assert_eq!(store.verify(None).unwrap(), 5);
        sql(&url, "UPDATE workstation.log SET envelope = '\\x63' WHERE sequence = 3");
        let error = store.verify(None).unwrap_err();
        assert!(error.to_string().contains("log/3") && error.to_string().contains("leaf hash"), "{error}");
        sql(&url, "DELETE FROM workstation.log WHERE sequence >= 3");
        let error = store.verify(Some(10)).unwrap_err();
        assert!(error.to_string().contains("lost entries"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_schema_newer_than_this_build_is_refused_and_left_as_it_is() {
        let (_server, url) = server();
        drop(Store::open_postgres(&url, "gateway").unwrap());
        sql(&url, "UPDATE gateway.schema_version SET version = 99");
        let error = Store::open_postgres(&url, "gateway").unwrap_err();
        assert_eq!(error.code(), "store.format");
        let said = error.to_string();
        assert!(said.contains("schema gateway is at version 99") && said.contains("versions up to 4"), "{said}");
        assert!(said.contains("nothing was changed") && !said.contains("format"), "{said}");
        // A tool that reads (an audit) migrates nothing: an older schema is refused, left as it is.
        let read_only = PostgresSettings::read_only();
        let error = Store::open_postgres_with(&url, "gateway", &read_only).unwrap_err();
        assert!(error.to_string().contains("schema gateway is at version 99"), "{error}");
        drop(Store::open_postgres(&url, "workstation").unwrap());
        sql(&url, "UPDATE workstation.schema_version SET version = 1");
        let error = Store::open_postgres_with(&url, "workstation", &read_only).unwrap_err();
        assert_eq!(error.code(), "store.format");
        assert!(error.to_string().contains("egov store migrate"), "{error}");
        let version = off_runtime(|| {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            client.query_one("SELECT version FROM workstation.schema_version", &[]).unwrap().get::<_, i32>(0)
        });
        assert_eq!(version, 1, "left as it was");
        let error = Store::open_postgres_with(&url, "regional", &read_only).unwrap_err();
        assert!(error.to_string().contains("schema regional is at version 0"), "none yet: {error}");
        let error = Store::open_postgres(&url, "Robert'); DROP TABLE x; --").unwrap_err();
        assert_eq!(error.code(), "store.format");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_the_database_down_nothing_is_acknowledged_and_the_store_recovers_when_it_is_back() {
        let (mut server, url) = server();
        let store = Store::open_postgres(&url, "workstation").unwrap();
        let mut batch = Batch::new();
        batch.put("a", 0, &1u32).unwrap();
        store.commit(batch).await.unwrap();
        server.kill();
        let mut batch = Batch::new();
        batch.put("a", 1, &2u32).unwrap();
        let error = store.commit(batch).await.unwrap_err();
        assert_eq!(error.code(), "store.unavailable", "{error}");
        assert_eq!(store.get::<u32>("a").unwrap_err().code(), "store.unavailable");
        server.restart().unwrap();
        // The connections come back by themselves; what was refused was not written.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let record: Versioned<u32> = loop {
            if let Ok(Some(record)) = store.get("a") {
                break record;
            }
            assert!(std::time::Instant::now() < deadline, "the store did not come back");
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        assert_eq!((record.version, record.value), (1, 1));
        // A connection made before the restart fails once, and is made again: a caller
        // that is refused `store.unavailable` tries again, as the participants' callers do.
        let mut refusals = 0;
        loop {
            let mut batch = Batch::new();
            batch.put("a", 1, &2u32).unwrap();
            match store.commit(batch).await {
                Ok(_) => break,
                Err(error) => {
                    assert_eq!(error.code(), "store.unavailable", "{error}");
                    refusals += 1;
                    assert!(refusals <= CONNECTIONS, "the pool's connections did not come back");
                }
            }
        }
        let record: Versioned<u32> = store.get("a").unwrap().unwrap();
        assert_eq!((record.version, record.value), (2, 2), "written once");
    }
}
