//! `egov bench`: what the exchange costs on this machine, each figure next to a
//! baseline measured in the same run. One JSON object a figure on stdout, as it
//! is measured; a table of them all on stderr at the end (`docs/performance.md`).
//!
//! With the applications, the bench also computes a *floor*: before the replay it
//! times one signature, one verification and one flushed commit of a fresh store on
//! this machine (medians of many repetitions), takes a bare round trip from the echo
//! baseline at c=1, and from the counts the replay measured (RPCs and flushed commits
//! per application, commits per group) the most applications/s the machine could do
//! (`floor`; the `applications` figure gives its `share_of_floor`).
//!
//! At the end come the *target lines*: for each target whose figure was measured
//! (applications/s, flushed commits and store bytes per application, start-up, peak
//! memory, look-up via gateway / direct at c=64), one line on stderr and one
//! `"figure": "target"` object on stdout saying whether it was met. Missing a target
//! does not change the exit code.
#![forbid(unsafe_code)]

mod shep_apps;

/// Allocation counts, where the binary keeps them: `egov` built with
/// `--features alloc-counting` installs a counting global allocator and hands
/// the bench its counter (bytes allocated, allocations) here.
pub mod allocations {
    use std::sync::OnceLock;

    static COUNTER: OnceLock<fn() -> (u64, u64)> = OnceLock::new();

    /// Makes `counter` the bench's source of allocation counts.
    pub fn count_with(counter: fn() -> (u64, u64)) {
        let _ = COUNTER.set(counter);
    }

    /// Bytes allocated and allocations so far; `None` in a build that does not count them.
    pub(crate) fn now() -> Option<(u64, u64)> {
        COUNTER.get().map(|counter| counter())
    }
}

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use egov_client::Patience;
use egov_envelope::{Signer, countersign, services};
use egov_proto::echo_service_client::EchoServiceClient;
use egov_proto::echo_service_server::{EchoService, EchoServiceServer};
use egov_proto::gateway_service_client::GatewayServiceClient;
use egov_proto::individuals_service_client::IndividualsServiceClient;
use egov_proto::{
    EchoRequest, EchoResponse, Envelope, EnvelopeHeader, LookupPersonRequest, MessageType, PersonAnswer, PersonQuery,
    SendSyncRequest,
};
use egov_runtime::{Clock as _, KeyDir, SystemClock, Topology, ids};
use egov_stack::{Role, RoutesHook, Stack, StackConfig};
use egov_store::{Batch, Store};
use egov_workstation::Operators;
use prost::Message as _;
use serde_json::{Value, json};
use tonic::codegen::http;
use tonic::service::{AxumBody, AxumRouter, Routes as GrpcRoutes};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The parts of the bench; the echo baseline always runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Bare gRPC: a tonic unary echo.
    Echo,
    /// A person look-up, directly and through the gateway.
    Lookup,
    /// Generated applications replayed end to end (also memory and store size).
    Applications,
    /// Start-up with many stored applications (replays the applications first).
    Startup,
    /// The cost of the metrics, of the operational monitoring and of the traces:
    /// the same applications replayed with each on and off, alternating, in one run
    Observe,
    /// The same applications on the embedded store and on PostgreSQL (`--store`), with
    /// one and with two replicas of each stateful participant
    Store,
    /// Whole applications with the State Corporation side and the ARM side on SOAP, external
    /// systems in the bench's process (runs the all-gRPC applications first, its baseline)
    Shep,
    /// The verifiable log: an inclusion and a consistency proof at 10⁶ entries (bytes, time to
    /// verify), and applications/s with checkpoints published and witnessed against only at the stop
    Log,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Small counts and short runs, under a minute: what the test runs to keep the bench from rotting.
    #[arg(long)]
    quick: bool,
    /// Bytes of the echo payload.
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// Seconds each request-rate measurement lasts, after a warm-up of a fifth of it [default: 3; --quick 0.3].
    #[arg(long)]
    seconds: Option<f64>,
    /// Concurrencies of the echo and look-up measurements.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    concurrency: Vec<usize>,
    /// Generated applications replayed end to end [default: 10000; --quick 40].
    #[arg(long)]
    applications: Option<usize>,
    /// Applications replayed at once [default: 64; --quick 16].
    #[arg(long)]
    app_concurrency: Option<usize>,
    /// Stored applications for the start-up figure [default: 100000; --quick 400].
    #[arg(long)]
    stored: Option<usize>,
    /// The generated population's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the keys, fixtures and stores go (kept); default: a temporary directory, removed at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Only these parts (comma-separated); the echo baseline always runs.
    #[arg(long, value_delimiter = ',')]
    only: Vec<Part>,
    /// A PostgreSQL database for the `store` part (`postgres://...`; its schemas
    /// `gateway`, `regional`, `workstation` are emptied between runs); the part runs when given.
    #[arg(long)]
    store: Option<String>,
}

/// What to measure, with the defaults and `--quick` resolved.
#[derive(Debug, Clone)]
struct Plan {
    payload: usize,
    warmup: Duration,
    measure: Duration,
    concurrency: Vec<usize>,
    applications: usize,
    app_concurrency: usize,
    stored: usize,
    seed: u64,
    parts: Vec<Part>,
    /// Repetitions of each per-operation cost of the floor.
    repetitions: usize,
    /// The database of the store part.
    store: Option<String>,
}

impl Plan {
    fn new(args: &BenchArgs) -> anyhow::Result<Plan> {
        let seconds = args.seconds.unwrap_or(if args.quick { 0.3 } else { 3.0 });
        if !(seconds > 0.0 && seconds < 3600.0) {
            bail!("--seconds must be above 0 and below 3600");
        }
        let mut concurrency = args.concurrency.clone();
        concurrency.sort_unstable();
        concurrency.dedup();
        if concurrency.is_empty() || concurrency.contains(&0) {
            bail!("--concurrency takes numbers above 0");
        }
        let applications = args.applications.unwrap_or(if args.quick { 40 } else { 10_000 });
        let app_concurrency = args.app_concurrency.unwrap_or(if args.quick { 16 } else { 64 });
        let stored = args.stored.unwrap_or(if args.quick { 400 } else { 100_000 });
        if applications == 0 || app_concurrency == 0 || stored == 0 {
            bail!("--applications, --app-concurrency and --stored must be above 0");
        }
        let parts = if args.only.is_empty() {
            let mut parts =
                vec![Part::Echo, Part::Lookup, Part::Applications, Part::Shep, Part::Startup, Part::Observe, Part::Log];
            if args.store.is_some() {
                parts.push(Part::Store);
            }
            parts
        } else {
            args.only.clone()
        };
        if parts.contains(&Part::Store) && args.store.is_none() {
            bail!("the store part needs a PostgreSQL database: --store postgres://user@host:port/db");
        }
        Ok(Plan {
            payload: args.payload,
            warmup: Duration::from_secs_f64(seconds / 5.0),
            measure: Duration::from_secs_f64(seconds),
            concurrency,
            applications,
            app_concurrency,
            stored,
            seed: args.seed,
            parts,
            repetitions: if args.quick { 300 } else { 3000 },
            store: args.store.clone(),
        })
    }

    fn runs(&self, part: Part) -> bool {
        self.parts.contains(&part)
            || (part == Part::Applications && (self.parts.contains(&Part::Startup) || self.parts.contains(&Part::Shep)))
    }
}

/// Runs the parts `args` asks for and prints their figures: `egov bench`.
pub async fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::new(&args)?;
    let temp = tempfile::tempdir().context("cannot make a temporary directory")?;
    let root = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => temp.path().to_owned(),
    };
    let mut report = Report::default();
    let machine = machine();
    eprintln!("bench: {machine}; {}", if args.quick { "quick" } else { "full" });

    // What every stack shares: keys valid from 2020 (the scenarios are dated 2026) and the population.
    let keys = KeyDir::new(root.join("keys"));
    let valid_from = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z").map(|t| t.to_utc())?;
    keys.init(ids::DEFAULT_MEMBERS, valid_from)?;
    let fixtures = root.join("population");
    // Written, then dropped: the stacks and the replay read the files.
    for (path, text) in
        egov_replay::generate(plan.applications, plan.seed).context("cannot generate the population")?.files()
    {
        let file = fixtures.join(path);
        if let Some(folder) = file.parent() {
            std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
        }
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }

    let mut echo_levels = plan.concurrency.clone();
    if plan.runs(Part::Applications) {
        // The application concurrency for the comparison, c=1 for the floor's round trip.
        for level in [plan.app_concurrency, 1] {
            if !echo_levels.contains(&level) {
                echo_levels.push(level);
            }
        }
        echo_levels.sort_unstable();
    }
    // The applications first, so their peak memory is not mixed with what the other parts left
    // (freed memory the allocator keeps); their figures follow the echo baseline they are compared with.
    // The floor's per-operation costs just before them, on the same quiet machine.
    let data = root.join("applications-data");
    let replayed = match plan.runs(Part::Applications) {
        true => {
            let costs = costs(&plan, &keys, &root).await?;
            Some((costs, replay_population(&plan, &keys, &fixtures, &data).await?))
        }
        false => None,
    };
    let echo = echo(&plan, &echo_levels, &mut report).await?;
    let mut failures = Vec::new();
    let mut all_grpc = None;
    if let Some((costs, mut replayed)) = replayed {
        failures = std::mem::take(&mut replayed.failures);
        let failed = failures.len();
        all_grpc = Some(replayed.count as f64 / replayed.seconds);
        emit_applications(&plan, replayed, failed, &echo, &costs, &mut report);
    }
    if let (true, Some(baseline)) = (plan.runs(Part::Shep), all_grpc) {
        let count = if args.quick { plan.applications } else { plan.applications.min(SHEP_APPLICATIONS) };
        let iins = population_iins(&fixtures)?;
        let run = shep_apps::run(&keys, &fixtures, &root.join("shep-data"), &iins, count, plan.app_concurrency).await?;
        emit_shep_applications(&plan, &run, baseline, &mut report);
    }
    if plan.runs(Part::Lookup) {
        lookups(&plan, &keys, &fixtures, &echo, &mut report).await?;
    }
    if plan.runs(Part::Startup) {
        startup(&plan, &keys, &fixtures, &data, &root.join("startup-empty"), &mut report).await?;
    }
    if plan.runs(Part::Observe) {
        observability(&plan, &keys, &fixtures, &root.join("observe"), &mut report).await?;
    }
    if plan.runs(Part::Log) {
        verifiable_log(&plan, &keys, &fixtures, &root.join("log"), &mut report).await?;
    }
    if let (true, Some(url)) = (plan.runs(Part::Store), &plan.store) {
        backends(&plan, url, &keys, &fixtures, &root.join("backends"), &mut report).await?;
    }
    eprintln!("\n{}", report.table(&machine));
    report.print_targets();
    let _ = std::io::stdout().flush();
    if !failures.is_empty() {
        eprintln!("warning: {} scenarios did not end as expected:", failures.len());
        for failure in failures.iter().take(10) {
            eprintln!("  - {failure}");
        }
    }
    if args.dir.is_some() {
        eprintln!("kept {}", root.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The CPU model and the number of cores.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cpus} cores, {model}")
}

// ---------------------------------------------------------------- the report

/// One line of the table.
struct Row {
    figure: String,
    value: String,
    latency: String,
    baseline: String,
    ratio: String,
}

/// A target a figure is held to: one line at the end of the run.
struct Target {
    /// One of [`TARGETS`].
    name: &'static str,
    value: f64,
    unit: &'static str,
    /// The value must be at least (`true`) or at most `target`.
    at_least: bool,
    target: f64,
    /// What it should rather reach, in words, and whether it does.
    aim: Option<(String, bool)>,
}

/// The targets, in the order their lines are printed.
const TARGETS: [&str; 12] = [
    "applications",
    "commits_per_application",
    "verifications_per_application",
    "store_bytes_per_application",
    "startup",
    "peak_memory",
    "lookup_via_gateway_c64",
    "lookup_via_shep_c64",
    "monitoring_cost",
    "inclusion_proof_bytes",
    "inclusion_proof_verify",
    "checkpoints_on_against_off",
];

impl Target {
    fn met(&self) -> bool {
        if self.at_least { self.value >= self.target } else { self.value <= self.target }
    }

    fn must(&self) -> String {
        format!("{} {}", if self.at_least { "≥" } else { "≤" }, number(self.target))
    }
}

/// A number as short as it reads: 300, 0.4, 75.2.
fn number(value: f64) -> String {
    format!("{}", round(value, 3))
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    targets: Vec<Target>,
}

impl Report {
    /// Keeps a target for the lines at the end.
    fn target(&mut self, target: Target) {
        self.targets.push(target);
    }

    /// One line a target on stderr and one `"figure": "target"` object on stdout,
    /// for the targets whose figure was measured; whether met or not, the exit code stays 0.
    fn print_targets(&mut self) {
        self.targets.sort_by_key(|t| TARGETS.iter().position(|name| *name == t.name).unwrap_or(TARGETS.len()));
        let mut stdout = std::io::stdout().lock();
        for target in &self.targets {
            let (aim, aim_met) =
                target.aim.as_ref().map_or((None, None), |(aim, met)| (Some(aim.as_str()), Some(*met)));
            let figure = json!({
                "figure": "target", "name": target.name, "unit": target.unit, "value": round(target.value, 4),
                "target": target.target, "must": if target.at_least { "at least" } else { "at most" },
                "aim": aim, "aim_met": aim_met, "met": target.met(),
                "baseline": "the target", "baseline_value": target.target,
                "ratio": ratio(target.value, target.target),
            });
            let _ = writeln!(stdout, "{figure}");
            let aim = aim.map_or_else(String::new, |aim| format!(", aim {aim}"));
            eprintln!(
                "target  {}: {} {} (must reach {}{aim}): {}",
                target.name,
                number(target.value),
                target.unit,
                target.must(),
                if target.met() { "met" } else { "missed" },
            );
        }
        let _ = stdout.flush();
    }

    /// Prints the figure's JSON line now (so a long run shows progress) and keeps its row for the table.
    fn emit(&mut self, figure: Value, row: Row) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{figure}");
        let _ = stdout.flush();
        self.rows.push(row);
    }

    fn table(&self, machine: &str) -> String {
        let header = Row {
            figure: "figure".to_owned(),
            value: "value".to_owned(),
            latency: "p50 / p99 ms".to_owned(),
            baseline: "baseline (same run)".to_owned(),
            ratio: "ratio".to_owned(),
        };
        let rows: Vec<&Row> = std::iter::once(&header).chain(&self.rows).collect();
        let width = |get: fn(&Row) -> &str| rows.iter().map(|row| get(row).chars().count()).max().unwrap_or(0);
        let widths = [
            width(|r| &r.figure),
            width(|r| &r.value),
            width(|r| &r.latency),
            width(|r| &r.baseline),
            width(|r| &r.ratio),
        ];
        let mut out = format!("egov bench on {machine}\n");
        for (index, row) in rows.iter().enumerate() {
            let cells = [&row.figure, &row.value, &row.latency, &row.baseline, &row.ratio];
            let line: Vec<String> = cells.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
            if index == 0 {
                out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
                out.push('\n');
            }
        }
        out
    }
}

fn ratio(value: f64, baseline: f64) -> f64 {
    if baseline > 0.0 { round(value / baseline, 4) } else { 0.0 }
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

fn ms(duration: Duration) -> f64 {
    round(duration.as_secs_f64() * 1000.0, 3)
}

/// Nearest-rank percentile of sorted values.
fn percentile<T: Copy + Default>(sorted: &[T], quantile: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------- calls timed at the server

/// Every call a server answered, by method path: the time until its response
/// headers (for a unary tonic method, the handler's whole work) and whether it failed.
#[derive(Default)]
struct Calls {
    by_path: Mutex<HashMap<String, PathCalls>>,
}

#[derive(Default)]
struct PathCalls {
    errors: u64,
    micros: Vec<u32>,
    /// Failed calls by reason code (the status message up to its first ':').
    reasons: BTreeMap<String, u64>,
}

impl Calls {
    fn record(&self, path: &str, elapsed: Duration, failure: Option<String>) {
        if let Ok(mut by_path) = self.by_path.lock() {
            let entry = match by_path.get_mut(path) {
                Some(entry) => entry,
                None => by_path.entry(path.to_owned()).or_default(),
            };
            entry.micros.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
            if let Some(reason) = failure {
                entry.errors += 1;
                *entry.reasons.entry(reason).or_default() += 1;
            }
        }
    }

    fn take(&self) -> HashMap<String, PathCalls> {
        self.by_path.lock().map(|mut by_path| std::mem::take(&mut *by_path)).unwrap_or_default()
    }
}

/// A participant's (or the echo's) services behind a timer.
#[derive(Clone)]
struct Timed {
    inner: GrpcRoutes,
    calls: Arc<Calls>,
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tonic::codegen::Service<http::Request<AxumBody>> for Timed {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Boxed<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, context: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        tonic::codegen::Service::<http::Request<AxumBody>>::poll_ready(&mut self.inner, context)
    }

    fn call(&mut self, request: http::Request<AxumBody>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let calls = Arc::clone(&self.calls);
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            // A failed unary call is answered "trailers only": its status is in the headers.
            let headers = response.headers();
            let failure = headers.get("grpc-status").filter(|status| status.as_bytes() != b"0").map(|status| {
                let message = headers.get("grpc-message").and_then(|m| m.to_str().ok()).unwrap_or_default();
                let reason = message.split(['%', ':']).next().filter(|r| !r.is_empty());
                reason.map_or_else(|| format!("status {}", status.to_str().unwrap_or("?")), str::to_owned)
            });
            calls.record(&path, started.elapsed(), failure);
            Ok(response)
        })
    }
}

/// `routes` with every call timed into `calls`; services added afterwards (health, reflection) are not timed.
fn timed(routes: GrpcRoutes, calls: Arc<Calls>) -> GrpcRoutes {
    let timed = Timed { inner: routes.prepare(), calls };
    GrpcRoutes::from(AxumRouter::new().fallback_service(timed))
}

// ---------------------------------------------------------------- closed-loop load

/// What a closed-loop run measured: every request that started after the warm-up.
struct LoadRun {
    concurrency: usize,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    seconds: f64,
    /// Client-side round trips of the successful requests, sorted.
    latencies: Vec<Duration>,
}

impl LoadRun {
    fn rate(&self) -> f64 {
        if self.seconds > 0.0 { self.ok as f64 / self.seconds } else { 0.0 }
    }

    fn p50(&self) -> Duration {
        percentile(&self.latencies, 0.50)
    }

    fn p99(&self) -> Duration {
        percentile(&self.latencies, 0.99)
    }

    fn check(&self, what: &str) -> anyhow::Result<()> {
        if self.ok == 0 {
            bail!("{what}: no request succeeded ({})", self.first_error.as_deref().unwrap_or("none finished in time"));
        }
        Ok(())
    }
}

/// How long after the run a worker that has measured nothing yet may still start a request.
const LATE_MEASUREMENT: Duration = Duration::from_secs(30);

/// `concurrency` workers, each sending one request after the other for the warm-up, then `measure`
/// (and, for a worker that measured nothing in it, until its first request after the warm-up ends).
/// `prepare(n)` builds request `n` (signing it, outside the timed round trip) and returns the call.
async fn closed_loop<F, Fut>(concurrency: usize, warmup: Duration, measure: Duration, prepare: F) -> LoadRun
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let prepare = Arc::new(prepare);
    let counter = Arc::new(AtomicU64::new(0));
    let from = Instant::now() + warmup;
    let until = from + measure;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let prepare = Arc::clone(&prepare);
        let counter = Arc::clone(&counter);
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut errors, mut first_error, mut last) = (Vec::new(), 0u64, None, from);
            // Each worker measures at least one request that started after the warm-up: on a loaded machine
            // (a round trip longer than the run, as with --quick at c=64) the run would otherwise count none.
            let measured = |latencies: &Vec<Duration>, errors: u64| !latencies.is_empty() || errors > 0;
            while Instant::now() < until || (!measured(&latencies, errors) && Instant::now() < until + LATE_MEASUREMENT)
            {
                let call = prepare(counter.fetch_add(1, Ordering::Relaxed));
                let started = Instant::now();
                let result = call.await;
                let ended = Instant::now();
                if started < from {
                    continue;
                }
                last = last.max(ended);
                match result {
                    Ok(()) => latencies.push(ended - started),
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert(error);
                    }
                }
            }
            (latencies, errors, first_error, last)
        }));
    }
    let mut run = LoadRun { concurrency, ok: 0, errors: 0, first_error: None, seconds: 0.0, latencies: Vec::new() };
    let mut last = from;
    for worker in workers {
        match worker.await {
            Ok((latencies, errors, first_error, worker_last)) => {
                run.latencies.extend(latencies);
                run.errors += errors;
                if run.first_error.is_none() {
                    run.first_error = first_error;
                }
                last = last.max(worker_last);
            }
            Err(error) => {
                run.errors += 1;
                run.first_error.get_or_insert(format!("worker failed: {error}"));
            }
        }
    }
    run.latencies.sort_unstable();
    run.ok = run.latencies.len() as u64;
    run.seconds = (last - from).as_secs_f64();
    run
}

// ---------------------------------------------------------------- 1. bare gRPC

#[derive(Debug, Default)]
struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: tonic::Request<EchoRequest>) -> Result<tonic::Response<EchoResponse>, tonic::Status> {
        Ok(tonic::Response::new(EchoResponse { payload: request.into_inner().payload }))
    }
}

/// The echo baseline at each concurrency: client round trips, and the server's own time per call.
struct EchoRun {
    run: LoadRun,
    server_p50: Duration,
    server_p99: Duration,
}

struct EchoBaseline {
    levels: BTreeMap<usize, EchoRun>,
}

impl EchoBaseline {
    /// The run at `concurrency`, or the nearest one measured.
    fn at(&self, concurrency: usize) -> Option<&EchoRun> {
        self.levels.iter().min_by_key(|(level, _)| level.abs_diff(concurrency)).map(|(_, run)| run)
    }
}

async fn echo(plan: &Plan, levels: &[usize], report: &mut Report) -> anyhow::Result<EchoBaseline> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("the echo server cannot listen")?;
    let address = listener.local_addr()?.to_string();
    let calls = Arc::new(Calls::default());
    let routes = timed(GrpcRoutes::new(EchoServiceServer::new(Echo)), Arc::clone(&calls));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tonic::transport::Server::builder().add_routes(routes).serve_with_incoming_shutdown(
        // TCP_NODELAY on accepted connections, as tonic's own `serve` sets it by default.
        tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        async move {
            let _ = stopped.await;
        },
    ));
    // The client as the participants make theirs: one HTTP/2 connection, TCP_NODELAY.
    let client = EchoServiceClient::new(Topology::channel(&address)?);
    let payload = vec![0x5a_u8; plan.payload];
    let mut baseline = EchoBaseline { levels: BTreeMap::new() };
    for &concurrency in levels {
        eprintln!("bench: echo, concurrency {concurrency}");
        let (client, payload) = (client.clone(), payload.clone());
        let run = closed_loop(concurrency, plan.warmup, plan.measure, move |_| {
            let (mut client, payload) = (client.clone(), payload.clone());
            async move {
                let expected = payload.len();
                let answer = client.echo(EchoRequest { payload }).await.map_err(|s| s.to_string())?;
                if answer.get_ref().payload.len() != expected {
                    return Err("the echo answered other bytes".to_owned());
                }
                Ok(())
            }
        })
        .await;
        run.check("echo")?;
        let mut server: Vec<u32> = calls.take().into_values().flat_map(|path| path.micros).collect();
        server.sort_unstable();
        let server_p50 = Duration::from_micros(u64::from(percentile(&server, 0.50)));
        let server_p99 = Duration::from_micros(u64::from(percentile(&server, 0.99)));
        baseline.levels.insert(concurrency, EchoRun { run, server_p50, server_p99 });
    }
    let _ = stop.send(());
    let _ = server.await;
    let first = baseline.levels.values().next().map_or(0.0, |r| r.run.rate());
    let first_level = baseline.levels.keys().next().copied().unwrap_or(1);
    for (concurrency, echo) in &baseline.levels {
        let run = &echo.run;
        report.emit(
            json!({
                "figure": "echo", "unit": "requests/s", "value": round(run.rate(), 1),
                "concurrency": concurrency, "payload_bytes": plan.payload,
                "requests": run.ok, "errors": run.errors, "seconds": round(run.seconds, 3),
                "p50_ms": ms(run.p50()), "p99_ms": ms(run.p99()),
                "server_p50_ms": ms(echo.server_p50), "server_p99_ms": ms(echo.server_p99),
                "baseline": format!("echo concurrency {first_level}"), "baseline_value": round(first, 1),
                "ratio": ratio(run.rate(), first),
            }),
            Row {
                figure: format!("echo {} B, c={concurrency}", plan.payload),
                value: format!("{:.0} req/s", run.rate()),
                latency: format!("{:.3} / {:.3}", ms(run.p50()), ms(run.p99())),
                baseline: format!("echo c={first_level}: {first:.0} req/s"),
                ratio: format!("{:.2}", ratio(run.rate(), first)),
            },
        );
    }
    Ok(baseline)
}

// ---------------------------------------------------------------- 2. the gateway's cost

/// A fresh person look-up from the workstation: a new message id, a new signature.
fn lookup_envelope(signer: &Signer, n: u64, iin: &str) -> Envelope {
    let header = signer.header(
        uuid::Uuid::new_v4().to_string(),
        format!("bench-{n}"),
        services::PERSON_LOOKUP,
        ids::INDIVIDUALS,
        SystemClock.now_ms(),
        MessageType::Request,
    );
    signer.seal(&header, &PersonQuery { iin: iin.to_owned() })
}

fn found(answer: Option<Envelope>) -> Result<(), String> {
    let answer = answer.ok_or("an answer without an envelope")?;
    match PersonAnswer::decode(&answer.body[..]) {
        Ok(person) if person.found => Ok(()),
        Ok(_) => Err("the person was not found".to_owned()),
        Err(error) => Err(format!("the answer does not decode: {error}")),
    }
}

async fn lookups(
    plan: &Plan,
    keys: &KeyDir,
    fixtures: &Path,
    echo: &EchoBaseline,
    report: &mut Report,
) -> anyhow::Result<()> {
    let iins = Arc::new(population_iins(fixtures)?);
    // A stack on real time, as `egov serve` runs: the gateway checks freshness and logs durably;
    // with the SHEP face, for a sender that is the workstation (docs/shep.md).
    let temp = tempfile::tempdir()?;
    if egov_shep::senders::Senders::load(keys.path())?.get(SHEP_SENDER).is_none() {
        egov_shep::senders::add_sender(keys.path(), SHEP_SENDER, ids::SC_WORKSTATION, Some(SHEP_SENDER), &[], None)?;
    }
    let mut config = StackConfig::local(temp.path().join("data"), keys.clone(), fixtures.to_owned());
    config.shep = Some(egov_shep::EdgeSettings {
        address: "127.0.0.1:0".to_owned(),
        grpc_address: "127.0.0.1:0".to_owned(),
        ..egov_shep::EdgeSettings::default()
    });
    let stack = Stack::start(config).await?;
    let shep_url = format!("http://{}/bip-sync-wss-gost/", stack.shep_address().unwrap_or_default());
    let http = egov_shep::push::client();
    let topology = stack.topology().clone();
    let trust = keys.trust()?;
    let workstation = keys.signer_in(&trust, ids::SC_WORKSTATION)?;
    let gateway_key = keys.signer_in(&trust, ids::GATEWAY)?;
    let registry = IndividualsServiceClient::new(Topology::channel(&topology.individuals)?);
    let gateway = GatewayServiceClient::new(Topology::channel(&topology.gateway)?);
    let sample = lookup_envelope(&workstation, 0, &iins[0]).encoded_len();
    let result = async {
        for &concurrency in &plan.concurrency {
            eprintln!("bench: look-up direct and through the gateway, concurrency {concurrency}");
            let direct = {
                let (signer, gateway_key, registry, iins) =
                    (workstation.clone(), gateway_key.clone(), registry.clone(), Arc::clone(&iins));
                closed_loop(concurrency, plan.warmup, plan.measure, move |n| {
                    // The gateway's countersignature, made here with its key: the registry verifies both.
                    let mut envelope = lookup_envelope(&signer, n, &iins[n as usize % iins.len()]);
                    let countersigned = countersign(&mut envelope, &gateway_key).map_err(|e| e.to_string());
                    let mut registry = registry.clone();
                    async move {
                        countersigned?;
                        let answer = registry
                            .lookup_person(LookupPersonRequest { envelope: Some(envelope) })
                            .await
                            .map_err(|s| s.to_string())?;
                        found(answer.into_inner().envelope)
                    }
                })
                .await
            };
            direct.check("look-up direct")?;
            let routed = {
                let (signer, gateway, iins) = (workstation.clone(), gateway.clone(), Arc::clone(&iins));
                closed_loop(concurrency, plan.warmup, plan.measure, move |n| {
                    let envelope = lookup_envelope(&signer, n, &iins[n as usize % iins.len()]);
                    let mut gateway = gateway.clone();
                    async move {
                        let answer = gateway
                            .send_sync(SendSyncRequest { envelope: Some(envelope) })
                            .await
                            .map_err(|s| s.to_string())?;
                        found(answer.into_inner().envelope)
                    }
                })
                .await
            };
            routed.check("look-up through the gateway")?;
            emit_lookups(report, echo, &direct, &routed, sample);
            let soap = {
                let (http, url, iins) = (http.clone(), shep_url.clone(), Arc::clone(&iins));
                closed_loop(concurrency, plan.warmup, plan.measure, move |n| {
                    let request = soap_lookup(&iins[n as usize % iins.len()]);
                    let (http, url) = (http.clone(), url.clone());
                    async move {
                        let (status, answer) = egov_shep::push::exchange(&http, &url, request).await?;
                        let answer = String::from_utf8_lossy(&answer);
                        if status.is_success()
                            && answer.contains("<code>SCSS001</code>")
                            && answer.contains("<found>true</found>")
                        {
                            Ok(())
                        } else {
                            Err(format!("HTTP {status}: {}", answer.chars().take(300).collect::<String>()))
                        }
                    }
                })
                .await
            };
            soap.check("SOAP look-up through the SHEP face")?;
            emit_soap_lookups(report, &routed, &soap, soap_lookup(&iins[0]).len());
        }
        anyhow::Ok(())
    }
    .await;
    stack.stop().await;
    result
}

/// At most this many applications over SOAP in a full run (they take longer than the gRPC ones).
const SHEP_APPLICATIONS: usize = 2000;

/// The IINs of the population's persons.
fn population_iins(fixtures: &Path) -> anyhow::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Persons {
        persons: Vec<Person>,
    }
    #[derive(serde::Deserialize)]
    struct Person {
        iin: String,
    }
    let individuals = std::fs::read_to_string(fixtures.join("individuals.json"))?;
    let iins: Vec<String> = serde_json::from_str::<Persons>(&individuals)?.persons.into_iter().map(|p| p.iin).collect();
    if iins.is_empty() {
        bail!("the population has no persons");
    }
    Ok(iins)
}

/// Whole applications over SOAP, against the all-gRPC applications of the same run.
fn emit_shep_applications(plan: &Plan, run: &shep_apps::ShepApplications, all_grpc: f64, report: &mut Report) {
    let rate = run.passed as f64 / run.seconds;
    let share = ratio(rate, all_grpc);
    report.emit(
        json!({
            "figure": "applications_via_shep", "unit": "applications/s", "value": round(rate, 1),
            "applications": run.count, "passed": run.passed, "failed": run.count - run.passed,
            "first_error": run.first_error, "concurrency": plan.app_concurrency, "seconds": round(run.seconds, 3),
            "soap_requests": run.requests, "pushes": run.pushes,
            "soap_requests_per_application": round(run.requests as f64 / run.count as f64, 2),
            "baseline": format!("applications (all gRPC) concurrency {}", plan.app_concurrency),
            "baseline_value": round(all_grpc, 1), "ratio": share,
        }),
        Row {
            figure: format!("applications over SOAP ({}, c={})", run.count, plan.app_concurrency),
            value: format!(
                "{rate:.1} app/s ({:.1} SOAP requests each; {} of {} ended)",
                run.requests as f64 / run.count as f64,
                run.passed,
                run.count
            ),
            latency: String::new(),
            baseline: format!("all gRPC: {all_grpc:.1} app/s"),
            ratio: format!("{share:.3}"),
        },
    );
}

/// The SHEP sender the bench's SOAP look-ups come from (its password is its id).
const SHEP_SENDER: &str = "bench-sc";

/// A sync `SendMessage` of a person look-up, as a SOAP client sends it: a new message id each.
fn soap_lookup(iin: &str) -> String {
    format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>\
         <t:SendMessage xmlns:t=\"http://bip.bee.kz/SyncChannel/v10/Types\"><request><requestInfo>\
         <messageId>{}</messageId><serviceId>GBDFL_PERSON_BY_IIN</serviceId>\
         <messageDate>{}</messageDate><sender><senderId>{SHEP_SENDER}</senderId><password>{SHEP_SENDER}</password></sender>\
         </requestInfo><requestData><data><PersonQuery><iin>{iin}</iin></PersonQuery></data></requestData>\
         </request></t:SendMessage></soapenv:Body></soapenv:Envelope>",
        uuid::Uuid::new_v4(),
        chrono::DateTime::from_timestamp_millis(SystemClock.now_ms()).unwrap_or_default().to_rfc3339(),
    )
}

/// The SOAP look-up through the SHEP face, against the gRPC look-up through the gateway at the same concurrency.
fn emit_soap_lookups(report: &mut Report, routed: &LoadRun, soap: &LoadRun, request_bytes: usize) {
    let concurrency = soap.concurrency;
    let share = ratio(soap.rate(), routed.rate());
    let figure = json!({
        "figure": "lookup_via_shep", "unit": "requests/s", "value": round(soap.rate(), 1), "concurrency": concurrency,
        "request_bytes": request_bytes, "requests": soap.ok, "errors": soap.errors,
        "first_error": soap.first_error, "seconds": round(soap.seconds, 3),
        "p50_ms": ms(soap.p50()), "p99_ms": ms(soap.p99()),
        "baseline": format!("lookup_via_gateway concurrency {concurrency}"),
        "baseline_value": round(routed.rate(), 1), "ratio": share,
    });
    report.emit(
        figure,
        Row {
            figure: format!("SOAP look-up via SHEP, c={concurrency}"),
            value: format!("{:.0} req/s", soap.rate()),
            latency: format!("{:.3} / {:.3}", ms(soap.p50()), ms(soap.p99())),
            baseline: format!("gRPC via gateway c={concurrency}: {:.0} req/s", routed.rate()),
            ratio: format!("{share:.3}"),
        },
    );
    if concurrency == 64 {
        report.target(Target {
            name: "lookup_via_shep_c64",
            value: share,
            unit: "of gRPC via the gateway",
            at_least: true,
            target: 0.5,
            aim: None,
        });
    }
}

fn emit_lookups(report: &mut Report, echo: &EchoBaseline, direct: &LoadRun, routed: &LoadRun, request_bytes: usize) {
    let concurrency = direct.concurrency;
    let (echo_rate, echo_level) = echo.at(concurrency).map_or((0.0, 0), |e| (e.run.rate(), e.run.concurrency));
    let common = |run: &LoadRun| {
        json!({
            "unit": "requests/s", "value": round(run.rate(), 1), "concurrency": concurrency,
            "request_bytes": request_bytes, "requests": run.ok, "errors": run.errors,
            "first_error": run.first_error, "seconds": round(run.seconds, 3),
            "p50_ms": ms(run.p50()), "p99_ms": ms(run.p99()),
            "ratio_to_echo": ratio(run.rate(), echo_rate),
        })
    };
    let mut figure = common(direct);
    if let Some(object) = figure.as_object_mut() {
        object.insert("figure".to_owned(), json!("lookup_direct"));
        object.insert("baseline".to_owned(), json!(format!("echo concurrency {echo_level}")));
        object.insert("baseline_value".to_owned(), json!(round(echo_rate, 1)));
        object.insert("ratio".to_owned(), json!(ratio(direct.rate(), echo_rate)));
    }
    report.emit(
        figure,
        Row {
            figure: format!("look-up direct, c={concurrency}"),
            value: format!("{:.0} req/s", direct.rate()),
            latency: format!("{:.3} / {:.3}", ms(direct.p50()), ms(direct.p99())),
            baseline: format!("echo c={echo_level}: {echo_rate:.0} req/s"),
            ratio: format!("{:.3}", ratio(direct.rate(), echo_rate)),
        },
    );
    let mut figure = common(routed);
    if let Some(object) = figure.as_object_mut() {
        object.insert("figure".to_owned(), json!("lookup_via_gateway"));
        object.insert("baseline".to_owned(), json!(format!("lookup_direct concurrency {concurrency}")));
        object.insert("baseline_value".to_owned(), json!(round(direct.rate(), 1)));
        object.insert("ratio".to_owned(), json!(ratio(routed.rate(), direct.rate())));
        object.insert("p50_ratio".to_owned(), json!(ratio(ms(routed.p50()), ms(direct.p50()))));
        object.insert("p99_ratio".to_owned(), json!(ratio(ms(routed.p99()), ms(direct.p99()))));
    }
    report.emit(
        figure,
        Row {
            figure: format!("look-up via gateway, c={concurrency}"),
            value: format!("{:.0} req/s", routed.rate()),
            latency: format!("{:.3} / {:.3}", ms(routed.p50()), ms(routed.p99())),
            baseline: format!("direct c={concurrency}: {:.0} req/s", direct.rate()),
            ratio: format!("{:.3}", ratio(routed.rate(), direct.rate())),
        },
    );
    if concurrency == 64 {
        let share = ratio(routed.rate(), direct.rate());
        report.target(Target {
            name: "lookup_via_gateway_c64",
            value: share,
            unit: "of direct",
            at_least: true,
            target: 0.40,
            aim: Some(("≥ 0.5".to_owned(), share >= 0.5)),
        });
    }
}

// ---------------------------------------------------------------- the floor's per-operation costs

/// What one operation costs on this machine, each the median of `repetitions` timed one at a time.
struct Costs {
    repetitions: usize,
    /// The signed envelope: a person look-up, as the look-up figures send it.
    envelope_bytes: usize,
    /// `Signer::seal` of that look-up (encoding and one ed25519 signature).
    sign: Duration,
    /// `egov_envelope::open` of it (decoding the header, the trust look-up, one ed25519 verification).
    verify: Duration,
    /// One `Store::commit` (flushed) of a small record and a 1 KiB log entry, one after the other.
    commit: Duration,
    commit_p99: Duration,
}

/// Median of durations, sorting them.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    percentile(&times, 0.50)
}

/// Times signing, verifying and a flushed commit of a fresh store in `root`, before the applications.
async fn costs(plan: &Plan, keys: &KeyDir, root: &Path) -> anyhow::Result<Costs> {
    let repetitions = plan.repetitions;
    let warmup = (repetitions / 10).max(10);
    eprintln!("bench: the floor's costs, {repetitions} signatures, verifications and flushed commits");
    let trust = keys.trust()?;
    let signer = keys.signer_in(&trust, ids::SC_WORKSTATION)?;
    let header = signer.header(
        uuid::Uuid::new_v4().to_string(),
        "bench-floor",
        services::PERSON_LOOKUP,
        ids::INDIVIDUALS,
        SystemClock.now_ms(),
        MessageType::Request,
    );
    let query = PersonQuery { iin: "900101300125".to_owned() };
    let checks = egov_envelope::Checks { freshness_window_ms: None, ..egov_envelope::Checks::default() };
    let envelope = signer.seal(&header, &query);
    egov_envelope::open(&envelope, &trust, SystemClock.now_ms(), &checks)
        .map_err(|e| anyhow::anyhow!("the floor's envelope does not verify: {e}"))?;
    let (mut sign, mut verify) = (Vec::with_capacity(repetitions), Vec::with_capacity(repetitions));
    for n in 0..warmup + repetitions {
        // A new message each time: a signature verified before would be answered from memory.
        let header = EnvelopeHeader { message_id: uuid::Uuid::new_v4().to_string(), ..header.clone() };
        let started = Instant::now();
        let sealed = std::hint::black_box(signer.seal(std::hint::black_box(&header), &query));
        let signed = started.elapsed();
        let started = Instant::now();
        let opened = std::hint::black_box(egov_envelope::open(&sealed, &trust, header.message_time_ms, &checks));
        let verified = started.elapsed();
        if opened.is_err() {
            bail!("the floor's envelope does not verify");
        }
        if n >= warmup {
            sign.push(signed);
            verify.push(verified);
        }
    }

    let dir = tempfile::tempdir_in(root).context("cannot make the floor's store directory")?;
    let store = Store::open(&dir.path().join("store"), CACHE_BYTES).context("cannot open the floor's store")?;
    let logged = vec![0x5a_u8; 1024];
    let mut commits = Vec::with_capacity(repetitions);
    for n in 0..warmup + repetitions {
        let mut batch = Batch::new();
        batch.put(format!("floor/{n}"), 0, &json!({ "n": n, "state": "submitted", "operator": "bench" }))?;
        batch.log(SystemClock.now_ms(), "received", logged.clone(), "bench floor", Vec::new());
        let started = Instant::now();
        store.commit(batch).await.context("the floor's commit")?;
        if n >= warmup {
            commits.push(started.elapsed());
        }
    }
    drop(store);
    commits.sort_unstable();
    let commit_p99 = percentile(&commits, 0.99);
    Ok(Costs {
        repetitions,
        envelope_bytes: envelope.encoded_len(),
        sign: median(sign),
        verify: median(verify),
        commit: median(commits),
        commit_p99,
    })
}

// ---------------------------------------------------------------- 3. whole applications

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak resident memory to the current one (Linux ≥ 4.0); false if it could not.
fn reset_peak_memory() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Bytes of the files under `path` (their length), recursively.
fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_bytes(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

const STATEFUL: [Role; 3] = [Role::Gateway, Role::Regional, Role::Workstation];

/// sled's page cache per store, as `StackConfig::local` gives it.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Opens a stopped participant's store, waiting a little for the stack to let go of it.
async fn open_stopped(path: &Path) -> anyhow::Result<Store> {
    let mut tries = 0;
    loop {
        match Store::open(path, CACHE_BYTES) {
            Ok(store) => return Ok(store),
            Err(error) if tries < 100 => {
                tries += 1;
                tracing::debug!(%error, "store still held; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error).with_context(|| format!("cannot open {}", path.display())),
        }
    }
}

/// What replaying the population measured.
struct Replayed {
    count: usize,
    passed: usize,
    /// The scenarios that did not end as expected, with their differences.
    failures: Vec<String>,
    seconds: f64,
    by_path: HashMap<String, PathCalls>,
    rss_before_kib: u64,
    peak_kib: u64,
    peak_reset: bool,
    empty_bytes: u64,
    store_bytes: u64,
    envelope_bytes: u64,
    log_entries: u64,
    /// What the stores wrote during the replay (every store of the process).
    stats: egov_store::stats::Stats,
    /// ed25519 signatures verified, and checks answered from the signatures verified before.
    verifications: (u64, u64),
    /// Bytes allocated and allocations during the replay, where the build counts them.
    allocated: Option<(u64, u64)>,
}

/// Replays the population through a fresh stack in `data`, with every call timed.
async fn replay_population(plan: &Plan, keys: &KeyDir, fixtures: &Path, data: &Path) -> anyhow::Result<Replayed> {
    eprintln!("bench: {} applications end to end, {} at once", plan.applications, plan.app_concurrency);
    let scenarios = egov_replay::load(&[fixtures.join("applications")])?;
    let operators = Operators::from_json(&std::fs::read_to_string(fixtures.join("operators.json"))?)?;
    let calls = Arc::new(Calls::default());
    let mut config = StackConfig::local(data.to_owned(), keys.clone(), fixtures.to_owned());
    config.simulated_time = true;
    let hook_calls = Arc::clone(&calls);
    config.routes_hook = Some(RoutesHook(Arc::new(move |_, routes| timed(routes, Arc::clone(&hook_calls)))));
    let definition = Arc::clone(&config.definition);

    let rss_before = status_kib("VmRSS").unwrap_or(0);
    let peak_reset = reset_peak_memory();
    let stack = Stack::start(config).await?;
    let empty_bytes = dir_bytes(data);
    let target = replay_target(&stack, definition, keys, &operators)?;
    let options = replay_options(plan, "bench");
    // In chunks, so the verdicts (with each application's path) do not count in the stack's memory.
    let chunk = (plan.app_concurrency * 32).max(2000);
    let count = scenarios.len();
    let (mut passed, mut failures) = (0usize, Vec::new());
    let stats_before = egov_store::stats::stats();
    let verified_before = (egov_envelope::verifications(), egov_envelope::verifications_remembered());
    let allocated_before = allocations::now();
    let started = Instant::now();
    let mut scenarios = scenarios.into_iter().peekable();
    while scenarios.peek().is_some() {
        let part: Vec<_> = scenarios.by_ref().take(chunk).collect();
        for verdict in egov_replay::replay(&target, part, &options).await {
            if verdict.passed() {
                passed += 1;
            } else {
                failures.push(format!("{}: {}", verdict.scenario, verdict.differences.join("; ")));
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats = egov_store::stats::stats().since(&stats_before);
    let verifications = (
        egov_envelope::verifications() - verified_before.0,
        egov_envelope::verifications_remembered() - verified_before.1,
    );
    let allocated = allocations::now()
        .zip(allocated_before)
        .map(|(after, before)| (after.0.saturating_sub(before.0), after.1.saturating_sub(before.1)));
    let peak_kib = status_kib("VmHWM").unwrap_or(0);
    stack.stop().await;
    let by_path = calls.take();
    let store_bytes = dir_bytes(data);

    // What the stores hold: the envelopes they logged, against the bytes on disk.
    let mut envelope_bytes = 0u64;
    let mut log_entries = 0u64;
    for role in STATEFUL {
        let store = open_stopped(&data.join(role.name())).await?;
        for entry in store.log_entries() {
            envelope_bytes += entry?.envelope.len() as u64;
            log_entries += 1;
        }
    }

    Ok(Replayed {
        count,
        passed,
        failures,
        seconds,
        by_path,
        rss_before_kib: rss_before,
        peak_kib,
        peak_reset,
        empty_bytes,
        store_bytes,
        envelope_bytes,
        log_entries,
        stats,
        verifications,
        allocated,
    })
}

/// What the replay drives: `stack`'s participants, with the population's operators and the staff's keys.
fn replay_target(
    stack: &Stack,
    definition: Arc<egov_regulation::Definition>,
    keys: &KeyDir,
    operators: &Operators,
) -> anyhow::Result<egov_replay::Target> {
    let trust = keys.trust()?;
    let mut operator_keys = HashMap::new();
    let mut credentials = HashMap::new();
    for account in operators.accounts() {
        operator_keys.insert(account.operator_id.clone(), keys.signer_in(&trust, &account.operator_id)?);
        credentials.insert(account.operator_id.clone(), (account.login.clone(), account.password.clone()));
    }
    Ok(egov_replay::Target {
        topology: stack.topology().clone(),
        definition,
        operators: credentials,
        operator_keys,
        staff_keys: egov_client::staff_keys(keys, &trust)?,
        tls: None,
    })
}

fn replay_options(plan: &Plan, run_id: &str) -> egov_replay::Options {
    egov_replay::Options {
        concurrency: plan.app_concurrency,
        run_id: run_id.to_owned(),
        patience: Patience { timeout: Duration::from_secs(60) },
        persistence: egov_client::Persistence::default(),
        progress: false,
    }
}

/// What the observability part compares: a name, metrics on, monitoring on, traces exported.
const OBSERVED: [(&str, bool, bool, bool); 5] = [
    ("off", false, false, false),
    ("metrics", true, false, false),
    ("monitoring", false, true, false),
    ("metrics-and-monitoring", true, true, false),
    ("tracing", false, false, true),
];

/// The same applications replayed on a fresh stack with the metrics, the
/// monitoring and the traces each on and off. The settings alternate, in a
/// rotated order each round, and each keeps its best round, so that the
/// machine's drift (other jobs, the page cache) falls on all of them alike.
/// Traces go over OTLP to a collector in this process, as they would to one
/// beside the participants.
async fn observability(
    plan: &Plan,
    keys: &KeyDir,
    fixtures: &Path,
    root: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let count = plan.applications.min(2000);
    let rounds = if plan.applications <= 100 { 1 } else { 3 };
    eprintln!("bench: observability, {count} applications per setting, {rounds} rounds of {}", OBSERVED.len());
    let scenarios: Vec<_> = egov_replay::load(&[fixtures.join("applications")])?.into_iter().take(count).collect();
    let operators = Operators::from_json(&std::fs::read_to_string(fixtures.join("operators.json"))?)?;
    let collector = egov_runtime::trace::Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    collector.serve(listener);
    let names: Vec<&str> = OBSERVED.iter().map(|(name, ..)| *name).collect();
    let best = best_of_alternating(
        plan,
        &names,
        rounds,
        root,
        |index, config| {
            let (_, metrics, monitoring, tracing) = OBSERVED[index];
            config.metrics = metrics.then(|| Arc::new(egov_runtime::metrics::Metrics::new()));
            config.monitor.keep = if monitoring { egov_runtime::monitor::MonitorConfig::default().keep } else { 0 };
            tracing
        },
        (keys, fixtures, &operators, &scenarios),
        &endpoint,
    )
    .await?;
    let spans = collector.len();
    let off = best[0];
    for (index, (name, metrics, monitoring, tracing)) in OBSERVED.iter().enumerate() {
        let rate = best[index];
        let cost = if off > 0.0 { round((1.0 - rate / off) * 100.0, 1) } else { 0.0 };
        let traced = if *tracing {
            format!(", {:.1} spans an application", spans as f64 / (count * rounds) as f64)
        } else {
            String::new()
        };
        report.emit(
            json!({
                "figure": "observability", "setting": name, "metrics": metrics, "monitoring": monitoring,
                "tracing": tracing, "spans_exported": if *tracing { spans } else { 0 },
                "unit": "applications/s", "value": round(rate, 1), "applications": count, "rounds": rounds,
                "concurrency": plan.app_concurrency, "cost_percent": cost,
                "baseline": "metrics, monitoring and tracing off", "baseline_value": round(off, 1), "ratio": ratio(rate, off),
            }),
            Row {
                figure: format!("applications, {name} ({count}, best of {rounds})"),
                value: format!("{rate:.1} app/s ({cost:+.1} % cost{traced})"),
                latency: String::new(),
                baseline: format!("all off: {off:.1} app/s"),
                ratio: format!("{:.3}", ratio(rate, off)),
            },
        );
    }
    let monitoring_cost = if off > 0.0 { (1.0 - best[2] / off) * 100.0 } else { 0.0 };
    report.target(Target {
        name: "monitoring_cost",
        value: round(monitoring_cost, 1),
        unit: "% of applications/s",
        at_least: false,
        target: 10.0,
        aim: None,
    });
    Ok(())
}

/// The verifiable log (`docs/storage.md`). The proofs: a log of 10⁶ entries (10⁴ with `--quick`) built in
/// memory, an inclusion proof of entries across it and a consistency proof, their bytes and the median time to
/// verify one (each verified 1,000 times). And what the log's checkpoints cost: the same applications replayed with
/// checkpoints published (and cosigned by the witnesses) on the defaults, against only at the stop, alternating,
/// best of 3 rounds. The integration itself cannot be turned off on the embedded store (the committer folds each
/// entry into the tree in the commit that logs it), so it is in both.
async fn verifiable_log(
    plan: &Plan,
    keys: &KeyDir,
    fixtures: &Path,
    root: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    use egov_tlog::{
        MemoryTree, consistency_proof, inclusion_proof, leaf_hash, root_at, verify_consistency, verify_inclusion,
    };

    let entries: u64 = if plan.applications <= 100 { 10_000 } else { 1_000_000 };
    eprintln!("bench: the verifiable log, proofs at {entries} entries");
    let leaf = |index: u64| leaf_hash(format!("entry {index}").as_bytes());
    let started = Instant::now();
    let mut tree = MemoryTree::new();
    for index in 0..entries {
        tree.append(leaf(index));
    }
    let build_us = started.elapsed().as_secs_f64() * 1e6 / entries as f64;
    let tree_root = tree.root();
    let (mut proof_bytes, mut verify_us) = (0usize, Vec::new());
    for index in [0, entries / 3, entries / 2 + 1, entries - 2, entries - 1] {
        let proof = inclusion_proof(index, entries, &tree)?;
        proof_bytes = proof_bytes.max(proof.len() * 32);
        let hash = leaf(index);
        let started = Instant::now();
        for _ in 0..1000 {
            verify_inclusion(&hash, index, entries, &proof, &tree_root)?;
        }
        verify_us.push(started.elapsed().as_secs_f64() * 1e3);
    }
    verify_us.sort_by(f64::total_cmp);
    let inclusion_us = verify_us[verify_us.len() / 2];
    let first = entries - entries / 10;
    let consistency = consistency_proof(first, entries, &tree)?;
    let first_root = root_at(first, &tree).map_err(|error| anyhow::anyhow!("{error}"))?;
    let started = Instant::now();
    for _ in 0..1000 {
        verify_consistency(first, entries, &first_root, &tree_root, &consistency)?;
    }
    let consistency_us = started.elapsed().as_secs_f64() * 1e3;
    drop(tree);
    report.emit(
        json!({
            "figure": "inclusion_proof", "unit": "bytes", "value": proof_bytes, "entries": entries,
            "verify_us": round(inclusion_us, 2), "consistency_proof_bytes": consistency.len() * 32,
            "consistency_verify_us": round(consistency_us, 2), "append_us_per_entry": round(build_us, 2),
            "baseline": "the target: 1024 bytes, verified in 1 ms", "baseline_value": 1024,
            "ratio": ratio(proof_bytes as f64, 1024.0),
        }),
        Row {
            figure: format!("inclusion proof at {entries} entries"),
            value: format!("{proof_bytes} B, verified in {inclusion_us:.1} µs"),
            latency: format!("consistency: {} B, {consistency_us:.1} µs", consistency.len() * 32),
            baseline: format!("append: {build_us:.2} µs an entry"),
            ratio: format!("{:.3}", ratio(proof_bytes as f64, 1024.0)),
        },
    );
    report.target(Target {
        name: "inclusion_proof_bytes",
        value: proof_bytes as f64,
        unit: "bytes",
        at_least: false,
        target: 1024.0,
        aim: None,
    });
    report.target(Target {
        name: "inclusion_proof_verify",
        value: round(inclusion_us / 1000.0, 4),
        unit: "ms",
        at_least: false,
        target: 1.0,
        aim: None,
    });

    // Checkpoints (and the witnesses' cosignatures, which follow them) on, against only at the stop.
    let count = plan.applications.min(2000);
    let rounds = if plan.applications <= 100 { 1 } else { 3 };
    eprintln!("bench: checkpoints on and off, {count} applications each, {rounds} rounds");
    let scenarios: Vec<_> = egov_replay::load(&[fixtures.join("applications")])?.into_iter().take(count).collect();
    let operators = Operators::from_json(&std::fs::read_to_string(fixtures.join("operators.json"))?)?;
    let settings = [
        ("checkpoints-on", egov_stack::CheckpointSettings::default()),
        ("checkpoints-off", egov_stack::CheckpointSettings { every_entries: u64::MAX, every_ms: 0 }),
    ];
    let names: Vec<&str> = settings.iter().map(|(name, _)| *name).collect();
    let best = best_of_alternating(
        plan,
        &names,
        rounds,
        root,
        |index, config| {
            config.checkpoints = settings[index].1;
            false
        },
        (keys, fixtures, &operators, &scenarios),
        "",
    )
    .await?;
    let (on, off) = (best[0], best[1]);
    report.emit(
        json!({
            "figure": "checkpoints", "unit": "applications/s", "value": round(on, 1), "applications": count,
            "rounds": rounds, "concurrency": plan.app_concurrency,
            "baseline": "checkpoints only at the stop", "baseline_value": round(off, 1), "ratio": ratio(on, off),
        }),
        Row {
            figure: format!("applications, checkpoints on ({count}, best of {rounds})"),
            value: format!("{on:.1} app/s"),
            latency: String::new(),
            baseline: format!("checkpoints off: {off:.1} app/s"),
            ratio: format!("{:.3}", ratio(on, off)),
        },
    );
    report.target(Target {
        name: "checkpoints_on_against_off",
        value: round(ratio(on, off), 3),
        unit: "× applications/s",
        at_least: true,
        target: 0.95,
        aim: None,
    });
    Ok(())
}

/// The same `scenarios` replayed on a fresh stack for each of `names` (`configure` sets setting `index` up on the
/// stack's config and says whether its spans are exported, over OTLP to `endpoint`), the settings in a rotated order each of
/// `rounds` rounds so that none always runs first, each keeping its best applications/s.
async fn best_of_alternating(
    plan: &Plan,
    names: &[&str],
    rounds: usize,
    root: &Path,
    configure: impl Fn(usize, &mut StackConfig) -> bool,
    (keys, fixtures, operators, scenarios): (&KeyDir, &Path, &Operators, &[egov_replay::Scenario]),
    endpoint: &str,
) -> anyhow::Result<Vec<f64>> {
    let mut best = vec![0f64; names.len()];
    let mut run = 0;
    for round in 0..rounds {
        for offset in 0..names.len() {
            let index = (round + offset) % names.len();
            run += 1;
            let data = root.join(format!("run-{run}"));
            let mut config = StackConfig::local(data.clone(), keys.clone(), fixtures.to_owned());
            config.simulated_time = true;
            let traced = configure(index, &mut config);
            let replayed = ObservedRound {
                config,
                keys: keys.clone(),
                operators: operators.clone(),
                scenarios: scenarios.to_vec(),
                options: replay_options(plan, names[index]),
            };
            let (seconds, verdicts) = if traced { replayed.traced(endpoint).await? } else { replayed.run().await? };
            let _ = std::fs::remove_dir_all(&data);
            let failed: Vec<_> = verdicts.iter().filter(|verdict| !verdict.passed()).collect();
            if let Some(first) = failed.first() {
                bail!(
                    "{}: {} of {} scenarios did not end as expected; the first, {}: {}",
                    names[index],
                    failed.len(),
                    scenarios.len(),
                    first.scenario,
                    first.differences.join("; ")
                );
            }
            best[index] = best[index].max(scenarios.len() as f64 / seconds);
        }
    }
    Ok(best)
}

/// One round of [`observability`]: a fresh stack, the applications replayed on it.
struct ObservedRound {
    config: StackConfig,
    keys: KeyDir,
    operators: Operators,
    scenarios: Vec<egov_replay::Scenario>,
    options: egov_replay::Options,
}

impl ObservedRound {
    /// The seconds the replay took, and its verdicts.
    async fn run(self) -> anyhow::Result<(f64, Vec<egov_replay::Verdict>)> {
        let definition = Arc::clone(&self.config.definition);
        let stack = Stack::start(self.config).await?;
        let target = replay_target(&stack, definition, &self.keys, &self.operators)?;
        let started = Instant::now();
        let verdicts = egov_replay::replay(&target, self.scenarios, &self.options).await;
        let seconds = started.elapsed().as_secs_f64();
        stack.stop().await;
        Ok((seconds, verdicts))
    }

    /// [`ObservedRound::run`] with every span exported over OTLP to `endpoint`. This
    /// process's subscriber (its log) is set once, so the round runs on a runtime of
    /// its own whose threads each send their spans to the exporter's layer.
    async fn traced(self, endpoint: &str) -> anyhow::Result<(f64, Vec<egov_replay::Verdict>)> {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let exporter = egov_runtime::trace::Exporter::start(endpoint, "egov-bench")?;
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry()
                .with(exporter.layer().with_filter(tracing_subscriber::filter::LevelFilter::INFO)),
        );
        let ran = tokio::task::spawn_blocking(move || {
            let _default = tracing::dispatcher::set_default(&dispatch);
            let on_workers = dispatch.clone();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .on_thread_start(move || {
                    // Held until the worker ends with the runtime.
                    std::mem::forget(tracing::dispatcher::set_default(&on_workers));
                })
                .build()?;
            let ran = runtime.block_on(self.run());
            runtime.shutdown_timeout(Duration::from_secs(10));
            ran
        })
        .await?;
        // Sends what it still holds, so that the next round starts clean.
        tokio::task::spawn_blocking(move || exporter.shutdown()).await?;
        ran
    }
}

/// The same applications replayed on the embedded store, on PostgreSQL with one
/// replica of each stateful participant, and with two (two stacks in this process
/// on one database, the clients balancing over both): applications/s and commits
/// per application on each. The schemas are emptied before each PostgreSQL run.
async fn backends(
    plan: &Plan,
    url: &str,
    keys: &KeyDir,
    fixtures: &Path,
    root: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let count = plan.applications.min(1000);
    eprintln!("bench: backends, {count} applications on sled, PostgreSQL, PostgreSQL with two replicas");
    egov_stack::check_store_url(url)?;
    let scenarios: Vec<_> = egov_replay::load(&[fixtures.join("applications")])?.into_iter().take(count).collect();
    let operators = Operators::from_json(&std::fs::read_to_string(fixtures.join("operators.json"))?)?;
    let mut rates = Vec::new();
    for (name, database, replicas) in
        [("sled", None, 1), ("postgres", Some(url), 1), ("postgres, 2 replicas", Some(url), 2)]
    {
        if let Some(url) = database {
            empty_schemas(url)?;
        }
        let data = root.join(name.replace([',', ' '], "-"));
        let mut config = StackConfig::local(data.join("a"), keys.clone(), fixtures.to_owned());
        config.simulated_time = true;
        config.database = database.map(str::to_owned);
        let definition = Arc::clone(&config.definition);
        let mut stacks = Vec::new();
        let topology = if replicas == 1 {
            let stack = Stack::start(config).await?;
            let topology = stack.topology().clone();
            stacks.push(stack);
            topology
        } else {
            // Ports chosen first, so each stack's lists can name the other's replicas.
            let port =
                || std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.to_string());
            let (w, g, r) = ([port()?, port()?], [port()?, port()?], [port()?, port()?]);
            let list = |pair: &[String; 2], first: usize| format!("{},{}", pair[first], pair[1 - first]);
            let mut second = config.clone();
            config.topology.workstation = list(&w, 0);
            config.topology.gateway = list(&g, 0);
            config.topology.regional = list(&r, 0);
            let first = Stack::start(config).await?;
            second.data_dir = data.join("b");
            second.topology = first.topology().clone();
            second.topology.workstation = list(&w, 1);
            second.topology.gateway = list(&g, 1);
            second.topology.regional = list(&r, 1);
            second.roles = [egov_stack::Role::Gateway, egov_stack::Role::Regional, egov_stack::Role::Workstation]
                .into_iter()
                .collect();
            let topology = first.topology().clone();
            stacks.push(first);
            stacks.push(Stack::start(second).await?);
            topology
        };
        let mut target = replay_target(&stacks[0], definition, keys, &operators)?;
        target.topology = topology;
        let server_before = match database {
            Some(url) => Some(server_transactions(url)?),
            None => None,
        };
        let before = egov_store::stats::stats();
        let started = Instant::now();
        let verdicts = egov_replay::replay(&target, scenarios.clone(), &replay_options(plan, "backends")).await;
        let seconds = started.elapsed().as_secs_f64();
        let stats = egov_store::stats::stats().since(&before);
        for stack in stacks {
            stack.stop().await;
        }
        // The server's count, once the stacks' connections are closed (a server process
        // reports its counts when its connection ends, or within a second).
        let server = match (database, server_before) {
            (Some(url), Some(before)) => {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                Some(server_transactions(url)? - before)
            }
            _ => None,
        };
        let _ = std::fs::remove_dir_all(&data);
        let failed: Vec<_> = verdicts.iter().filter(|verdict| !verdict.passed()).collect();
        if let Some(first) = failed.first() {
            bail!(
                "backends ({name}): {} of {count} scenarios did not end as expected; the first, {}: {}",
                failed.len(),
                first.scenario,
                first.differences.join("; ")
            );
        }
        let commits = (stats.flushed_commits + stats.unflushed_commits) as f64;
        let postgres = server.map(|server_transactions| RoundTrips::new(&stats, server_transactions));
        rates.push((name, count as f64 / seconds, commits / seconds, commits / count as f64, postgres));
    }
    let sled = rates[0].1;
    let one_replica = rates.get(1).map_or(0.0, |rate| rate.1);
    for (name, rate, commits_per_second, commits_per_application, postgres) in rates {
        let mut figures = json!({
            "figure": "backend", "setting": name, "unit": "applications/s", "value": round(rate, 1),
            "commits_per_second": round(commits_per_second, 0), "commits_per_application": round(commits_per_application, 1),
            "applications": count, "concurrency": plan.app_concurrency,
            "baseline": "sled", "baseline_value": round(sled, 1), "ratio": ratio(rate, sled),
        });
        let mut value =
            format!("{rate:.1} app/s, {commits_per_second:.0} commits/s ({commits_per_application:.1} an application)");
        if let Some(trips) = &postgres {
            trips.add_to(&mut figures);
            value = format!(
                "{value}; {:.2} round trips a commit; server: {:.2} transactions a commit, {:.2} besides reads",
                trips.per_commit(),
                trips.server_per_commit(),
                trips.server_per_commit_besides_reads()
            );
            if name.contains("2 replicas") {
                figures["against_one_replica"] = json!(ratio(rate, one_replica));
            }
        }
        report.emit(
            figures,
            Row {
                figure: format!("applications, {name} ({count})"),
                value,
                latency: String::new(),
                baseline: format!("sled: {sled:.1} app/s"),
                ratio: format!("{:.3}", ratio(rate, sled)),
            },
        );
    }
    Ok(())
}

/// What a run on PostgreSQL cost in round trips, by the backend's counters
/// (`egov_store::stats`), and the server's own count of transactions to check them against.
struct RoundTrips {
    /// Commits PostgreSQL acknowledged.
    commits: u64,
    /// Round trips made for them (their pipelines, and the statements prepared and outbox
    /// ids reserved on the way).
    commit_round_trips: u64,
    /// Every round trip, reads included.
    round_trips: u64,
    /// Transactions the server committed meanwhile (`pg_stat_database.xact_commit`): each
    /// commit is one, each read outside a commit one more.
    server_transactions: u64,
}

impl RoundTrips {
    fn new(stats: &egov_store::stats::Stats, server_transactions: u64) -> RoundTrips {
        RoundTrips {
            commits: stats.postgres_commits,
            commit_round_trips: stats.postgres_commit_round_trips,
            round_trips: stats.postgres_round_trips,
            server_transactions,
        }
    }

    fn per_commit(&self) -> f64 {
        ratio(self.commit_round_trips as f64, self.commits as f64)
    }

    fn server_per_commit(&self) -> f64 {
        ratio(self.server_transactions as f64, self.commits as f64)
    }

    /// The server's transactions per commit, less one per read (a read outside a commit is a
    /// round trip and a transaction of its own): about 1 when each commit is one transaction
    /// (more for the transactions of the ids reserved and statements prepared on the way;
    /// an integration is several round trips in one transaction, which makes it a little less).
    fn server_per_commit_besides_reads(&self) -> f64 {
        let reads = self.round_trips.saturating_sub(self.commit_round_trips);
        ratio(self.server_transactions.saturating_sub(reads) as f64, self.commits as f64)
    }

    fn add_to(&self, figures: &mut serde_json::Value) {
        figures["postgres_commits"] = json!(self.commits);
        figures["postgres_round_trips_per_commit"] = json!(round(self.per_commit(), 2));
        figures["postgres_round_trips"] = json!(self.round_trips);
        figures["server_xact_commit"] = json!(self.server_transactions);
        figures["server_transactions_per_commit"] = json!(round(self.server_per_commit(), 2));
        figures["server_transactions_per_commit_besides_reads"] =
            json!(round(self.server_per_commit_besides_reads(), 2));
        figures["round_trips_measured"] = json!(
            "egov_store::stats (each wait for PostgreSQL's answers); server: pg_stat_database.xact_commit of the database"
        );
    }
}

/// The transactions the database's server committed so far (`pg_stat_database`, no extension).
fn server_transactions(url: &str) -> anyhow::Result<u64> {
    let url = url.to_owned();
    std::thread::spawn(move || -> anyhow::Result<u64> {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
        let row =
            client.query_one("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()", &[])?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("reading the server's counters panicked"))?
    .with_context(|| "cannot read the server's counters")
}

/// Drops the participants' schemas, so that a run starts on an empty database.
fn empty_schemas(url: &str) -> anyhow::Result<()> {
    let url = url.to_owned();
    std::thread::spawn(move || -> anyhow::Result<()> {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)?;
        client.batch_execute(
            "DROP SCHEMA IF EXISTS gateway CASCADE; DROP SCHEMA IF EXISTS regional CASCADE; DROP SCHEMA IF EXISTS workstation CASCADE;",
        )?;
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("emptying the database panicked"))?
    .with_context(|| "cannot empty the bench's database")
}

/// The figures of the replay: throughput, commits, the floor, each kind of call, memory, store size.
fn emit_applications(
    plan: &Plan,
    replayed: Replayed,
    failed: usize,
    echo: &EchoBaseline,
    costs: &Costs,
    report: &mut Report,
) {
    let Replayed {
        count,
        passed,
        failures: _,
        seconds,
        by_path,
        rss_before_kib: rss_before,
        peak_kib,
        peak_reset,
        empty_bytes,
        store_bytes,
        envelope_bytes,
        log_entries,
        stats,
        verifications,
        allocated,
    } = replayed;
    let rate = count as f64 / seconds;
    let rpcs: u64 = by_path.values().map(|p| p.micros.len() as u64).sum();
    let rpc_errors: u64 = by_path.values().map(|p| p.errors).sum();
    let zero = (Duration::ZERO, Duration::ZERO);
    let (echo_rate, echo_level, echo_trip, echo_server) =
        echo.at(plan.app_concurrency).map_or((0.0, 0, zero, zero), |e| {
            (e.run.rate(), e.run.concurrency, (e.run.p50(), e.run.p99()), (e.server_p50, e.server_p99))
        });
    let per_app = |n: u64| round(n as f64 / count as f64, 2);
    let floor = Floor::new(costs, echo, rpcs as f64 / count as f64, &stats, count);
    report.emit(
        json!({
            "figure": "applications", "unit": "applications/s", "value": round(rate, 1),
            "applications": count, "passed": passed, "failed": failed,
            "concurrency": plan.app_concurrency, "seconds": round(seconds, 3),
            "rpcs": rpcs, "rpc_errors": rpc_errors, "rpcs_per_application": per_app(rpcs),
            "rpcs_per_second": round(rpcs as f64 / seconds, 1),
            "rpc_ratio_to_echo": ratio(rpcs as f64 / seconds, echo_rate),
            "share_of_floor": ratio(rate, floor.value),
            "target": 300,
            "baseline": format!("echo concurrency {echo_level}"), "baseline_value": round(echo_rate, 1),
            "ratio": ratio(rate, echo_rate),
        }),
        Row {
            figure: format!("applications ({count}, c={})", plan.app_concurrency),
            value: format!(
                "{rate:.1} app/s ({:.1} RPC each; {:.2} of the floor)",
                rpcs as f64 / count as f64,
                ratio(rate, floor.value)
            ),
            latency: String::new(),
            baseline: format!("echo c={echo_level}: {echo_rate:.0} req/s"),
            ratio: format!("{:.4} (RPC/s {:.3})", ratio(rate, echo_rate), ratio(rpcs as f64 / seconds, echo_rate)),
        },
    );
    let aim = 1000f64.min(0.7 * floor.value);
    report.target(Target {
        name: "applications",
        value: round(rate, 1),
        unit: "applications/s",
        at_least: true,
        target: 300.0,
        aim: Some((format!("≥ 1000 or ≥ 0.7 of the floor ({:.1})", 0.7 * floor.value), rate >= aim)),
    });
    emit_commits(&floor, &stats, count, report);
    emit_verifications(verifications, allocated, envelope_bytes as f64 / count as f64, &floor, count, report);
    emit_floor(&floor, costs, rate, report);
    let mut paths: Vec<(String, PathCalls)> = by_path.into_iter().collect();
    paths.sort_by(|a, b| b.1.micros.len().cmp(&a.1.micros.len()).then_with(|| a.0.cmp(&b.0)));
    for (path, mut calls) in paths {
        calls.micros.sort_unstable();
        let p50 = Duration::from_micros(u64::from(percentile(&calls.micros, 0.50)));
        let p99 = Duration::from_micros(u64::from(percentile(&calls.micros, 0.99)));
        let n = calls.micros.len() as u64;
        report.emit(
            json!({
                "figure": "rpc", "kind": path, "unit": "ms", "value": ms(p50),
                "p50_ms": ms(p50), "p99_ms": ms(p99), "calls": n, "errors": calls.errors, "error_reasons": calls.reasons,
                "per_application": per_app(n),
                // The handler's time at the server, against a whole bare round trip at the client.
                "measured_at": "server",
                "baseline": format!("echo round trip p50, concurrency {echo_level}"),
                "baseline_value": ms(echo_trip.0), "baseline_p99_ms": ms(echo_trip.1),
                "echo_server_p50_ms": ms(echo_server.0), "echo_server_p99_ms": ms(echo_server.1),
                "ratio": ratio(ms(p50), ms(echo_trip.0)),
            }),
            Row {
                figure: format!("  {}", path.trim_start_matches("/egov.v1.")),
                value: format!("{:.2}/app ({n})", n as f64 / count as f64),
                latency: format!("{:.3} / {:.3}", ms(p50), ms(p99)),
                baseline: format!("echo trip c={echo_level}: {:.3} / {:.3}", ms(echo_trip.0), ms(echo_trip.1)),
                ratio: format!("{:.1}", ratio(ms(p50), ms(echo_trip.0))),
            },
        );
    }
    let mib = |kib: u64| round(kib as f64 / 1024.0, 1);
    report.emit(
        json!({
            "figure": "peak_memory", "unit": "MiB", "value": mib(peak_kib), "applications": count,
            "measured": if peak_reset { "VmHWM since just before the stack started" } else { "VmHWM since the process started" },
            "target": 160,
            "baseline": "VmRSS before the stack started", "baseline_value": mib(rss_before),
            "ratio": ratio(peak_kib as f64, rss_before as f64),
        }),
        Row {
            figure: format!("peak memory ({count} applications)"),
            value: format!("{:.1} MiB", mib(peak_kib)),
            latency: String::new(),
            baseline: format!("RSS before the stack: {:.1} MiB", mib(rss_before)),
            ratio: format!("{:.2}", ratio(peak_kib as f64, rss_before as f64)),
        },
    );
    report.target(Target {
        name: "peak_memory",
        value: mib(peak_kib),
        unit: "MiB",
        at_least: false,
        target: 160.0,
        aim: None,
    });
    let grown = store_bytes.saturating_sub(empty_bytes);
    report.emit(
        json!({
            "figure": "store_bytes_per_application", "unit": "bytes", "value": grown / count as u64,
            "store_bytes": store_bytes, "empty_store_bytes": empty_bytes, "log_entries_per_application": per_app(log_entries),
            "baseline": "envelope bytes logged per application", "baseline_value": envelope_bytes / count as u64,
            "ratio": ratio(grown as f64, envelope_bytes as f64),
        }),
        Row {
            figure: "store bytes per application".to_owned(),
            value: format!("{} B", grown / count as u64),
            latency: String::new(),
            baseline: format!("envelopes logged: {} B", envelope_bytes / count as u64),
            ratio: format!("{:.2}", ratio(grown as f64, envelope_bytes as f64)),
        },
    );
    let (per_application, logged) = (grown / count as u64, envelope_bytes / count as u64);
    report.target(Target {
        name: "store_bytes_per_application",
        value: per_application as f64,
        unit: "bytes",
        at_least: false,
        target: 65_536.0,
        aim: Some((
            format!("≤ 1.5 × the envelopes logged ({} bytes)", logged * 3 / 2),
            per_application as f64 <= 1.5 * logged as f64,
        )),
    });
}

/// The most applications/s this machine could do, from the per-operation costs and
/// the counts of the replay.
struct Floor {
    /// The ceiling: the lower of the CPU's and the commits'.
    value: f64,
    cores: usize,
    rpcs: f64,
    /// Not counted anywhere: taken as 2 × the RPCs (see `ASSUMPTION`).
    signs: f64,
    verifies: f64,
    flushed_commits: f64,
    /// Commits (flushed or not) per group the committer wrote.
    commits_per_group: f64,
    /// The bare round trip: echo p50 at the concurrency nearest 1.
    rpc: Duration,
    rpc_concurrency: usize,
    cpu_seconds: f64,
    cpu_bound: Option<f64>,
    commit_bound: Option<f64>,
}

impl Floor {
    const ASSUMPTION: &str = "signs = verifies = 2 × RPCs per application (not counted: each RPC's request and \
        answer taken as one signed envelope each, each signed once and verified once); an RPC's CPU is a bare \
        echo round trip at c=1 (p50); a flushed commit costs one sequential commit of a fresh store, and one \
        sync covers commits_per_group commits";

    fn new(costs: &Costs, echo: &EchoBaseline, rpcs: f64, stats: &egov_store::stats::Stats, count: usize) -> Floor {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let (rpc, rpc_concurrency) = echo.at(1).map_or((Duration::ZERO, 0), |e| (e.run.p50(), e.run.concurrency));
        let (signs, verifies) = (2.0 * rpcs, 2.0 * rpcs);
        let flushed_commits = stats.flushed_commits as f64 / count as f64;
        let commits = (stats.flushed_commits + stats.unflushed_commits) as f64;
        let commits_per_group = if stats.groups > 0 { commits / stats.groups as f64 } else { 0.0 };
        let cpu_seconds =
            signs * costs.sign.as_secs_f64() + verifies * costs.verify.as_secs_f64() + rpcs * rpc.as_secs_f64();
        let cpu_bound = (cpu_seconds > 0.0).then(|| cores as f64 / cpu_seconds);
        let commit_seconds = flushed_commits * costs.commit.as_secs_f64();
        let commit_bound =
            (commit_seconds > 0.0 && commits_per_group > 0.0).then(|| commits_per_group / commit_seconds);
        let value = match (cpu_bound, commit_bound) {
            (Some(cpu), Some(commit)) => cpu.min(commit),
            (Some(bound), None) | (None, Some(bound)) => bound,
            (None, None) => 0.0,
        };
        Floor {
            value,
            cores,
            rpcs,
            signs,
            verifies,
            flushed_commits,
            commits_per_group,
            rpc,
            rpc_concurrency,
            cpu_seconds,
            cpu_bound,
            commit_bound,
        }
    }

    fn bound_by(&self) -> &'static str {
        match (self.cpu_bound, self.commit_bound) {
            (Some(cpu), Some(commit)) if commit < cpu => "commits",
            (None, Some(_)) => "commits",
            _ => "cpu",
        }
    }
}

/// ed25519 verifications and allocations per application, against the signatures the floor assumes.
fn emit_verifications(
    (verified, remembered): (u64, u64),
    allocated: Option<(u64, u64)>,
    envelope_bytes: f64,
    floor: &Floor,
    count: usize,
    report: &mut Report,
) {
    let per_app = |n: u64| round(n as f64 / count as f64, 2);
    let signatures = 2.0 * floor.rpcs;
    report.emit(
        json!({
            "figure": "verifications_per_application", "unit": "verifications", "value": per_app(verified),
            "verified": verified, "remembered": remembered,
            "remembered_per_application": per_app(remembered),
            "measured": "egov_envelope::verifications: every verify_strict of the process (the stack, the replay's clients), from the replay's start to its end; checks answered from the signatures verified before are not verifications",
            "baseline": "signatures the floor assumes per application (2 × RPCs)",
            "baseline_value": round(signatures, 2),
            "ratio": ratio(verified as f64 / count as f64, signatures),
        }),
        Row {
            figure: "ed25519 verifications per application".to_owned(),
            value: format!("{:.2} (+{:.2} checks of a signature verified before)", per_app(verified), per_app(remembered)),
            latency: String::new(),
            baseline: format!("signatures assumed: {signatures:.2}"),
            ratio: format!("{:.2}", ratio(verified as f64 / count as f64, signatures)),
        },
    );
    report.target(Target {
        name: "verifications_per_application",
        value: per_app(verified),
        unit: "verifications",
        at_least: false,
        target: 36.0,
        aim: None,
    });
    let (bytes, allocations) = allocated.unwrap_or_default();
    report.emit(
        json!({
            "figure": "allocated_bytes_per_application", "unit": "bytes",
            "value": per_app(bytes), "allocations_per_application": per_app(allocations),
            "counted": allocated.is_some(),
            "measured": if allocated.is_some() {
                "a counting global allocator (egov built with --features alloc-counting), the whole process, from the replay's start to its end"
            } else {
                "not counted: this build has no counting allocator (build egov with --features alloc-counting); the value is 0"
            },
            "baseline": "bytes of the envelopes the three logs hold per application",
            "baseline_value": round(envelope_bytes, 0),
            "ratio": ratio(bytes as f64 / count as f64, envelope_bytes),
        }),
        Row {
            figure: "allocated bytes per application".to_owned(),
            value: match allocated {
                Some(_) => format!("{:.0} B in {:.0} allocations", per_app(bytes), per_app(allocations)),
                None => "not counted (--features alloc-counting)".to_owned(),
            },
            latency: String::new(),
            baseline: format!("envelopes logged: {:.0} B", envelope_bytes),
            ratio: format!("{:.1}", ratio(bytes as f64 / count as f64, envelope_bytes)),
        },
    );
}

/// Flushed commits per application, against the RPCs per application.
fn emit_commits(floor: &Floor, stats: &egov_store::stats::Stats, count: usize, report: &mut Report) {
    let per_app = |n: u64| round(n as f64 / count as f64, 2);
    let flushed = floor.flushed_commits;
    report.emit(
        json!({
            "figure": "commits_per_application", "unit": "commits", "value": round(flushed, 2),
            "flushed_commits": stats.flushed_commits, "unflushed_commits": stats.unflushed_commits,
            "unflushed_per_application": per_app(stats.unflushed_commits),
            "syncs": stats.syncs, "syncs_per_application": per_app(stats.syncs),
            "groups": stats.groups, "commits_per_group": round(floor.commits_per_group, 2),
            "log_bytes_per_application": per_app(stats.log_bytes),
            "measured": "egov_store::stats, every store of the process, from the replay's start to its end",
            "baseline": "RPCs per application (the bench does not know how many of them change state)",
            "baseline_value": round(floor.rpcs, 2),
            "ratio": ratio(flushed, floor.rpcs),
        }),
        Row {
            figure: "flushed commits per application".to_owned(),
            value: format!(
                "{flushed:.2} (+{:.2} unflushed; {:.2} syncs; {:.1} commits/group)",
                per_app(stats.unflushed_commits),
                per_app(stats.syncs),
                floor.commits_per_group
            ),
            latency: String::new(),
            baseline: format!("RPCs per application: {:.2}", floor.rpcs),
            ratio: format!("{:.2}", ratio(flushed, floor.rpcs)),
        },
    );
    report.target(Target {
        name: "commits_per_application",
        value: flushed,
        unit: "commits",
        at_least: false,
        target: 12.0,
        aim: None,
    });
}

/// The floor: the per-operation costs and the ceiling they give, against the applications/s measured.
fn emit_floor(floor: &Floor, costs: &Costs, rate: f64, report: &mut Report) {
    let us = |duration: Duration| round(duration.as_secs_f64() * 1e6, 1);
    let bound = |bound: Option<f64>| bound.map(|b| round(b, 1));
    report.emit(
        json!({
            "figure": "floor", "unit": "applications/s", "value": round(floor.value, 1),
            "bound_by": floor.bound_by(), "cpu_bound": bound(floor.cpu_bound), "commit_bound": bound(floor.commit_bound),
            "cores": floor.cores, "cpu_seconds_per_application": round(floor.cpu_seconds, 6),
            "sign_us": us(costs.sign), "verify_us": us(costs.verify), "envelope_bytes": costs.envelope_bytes,
            "rpc_p50_ms": ms(floor.rpc), "rpc_concurrency": floor.rpc_concurrency,
            "commit_ms": ms(costs.commit), "commit_p99_ms": ms(costs.commit_p99),
            "commit_batch": "one put of a small record and one log entry of a 1 KiB envelope, flushed, one at a time",
            "repetitions": costs.repetitions,
            "signs_per_application": round(floor.signs, 2), "verifies_per_application": round(floor.verifies, 2),
            "rpcs_per_application": round(floor.rpcs, 2),
            "flushed_commits_per_application": round(floor.flushed_commits, 2),
            "commits_per_group": round(floor.commits_per_group, 2),
            "assumption": Floor::ASSUMPTION,
            "baseline": "applications/s measured in this run", "baseline_value": round(rate, 1),
            "ratio": ratio(floor.value, rate),
        }),
        Row {
            figure: "floor (computed)".to_owned(),
            value: format!(
                "{:.1} app/s, {} bound (sign {:.1} µs, verify {:.1} µs, RPC {:.3} ms, commit {:.3} ms)",
                floor.value,
                floor.bound_by(),
                us(costs.sign),
                us(costs.verify),
                ms(floor.rpc),
                ms(costs.commit)
            ),
            latency: String::new(),
            baseline: format!("measured: {rate:.1} app/s"),
            ratio: format!("{:.2}", ratio(floor.value, rate)),
        },
    );
}

// ---------------------------------------------------------------- 4. start-up

/// Starts a stack on `data` and waits until every participant answers a health check.
/// Returns the stack, the seconds `Stack::start` took and the seconds until all were healthy.
async fn start_healthy(config: StackConfig) -> anyhow::Result<(Stack, f64, f64)> {
    let started = Instant::now();
    let stack = Stack::start(config).await?;
    let start_seconds = started.elapsed().as_secs_f64();
    let deadline = started + Duration::from_secs(120);
    for (name, address) in stack.topology().entries() {
        let mut health = HealthClient::new(Topology::channel(address)?);
        loop {
            let answer = health.check(HealthCheckRequest { service: String::new() }).await;
            match answer {
                Ok(answer) if answer.get_ref().status == ServingStatus::Serving as i32 => break,
                _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(1)).await,
                Ok(answer) => bail!("{name} is not serving: status {}", answer.get_ref().status),
                Err(status) => bail!("{name} does not answer health checks: {status}"),
            }
        }
    }
    Ok((stack, start_seconds, started.elapsed().as_secs_f64()))
}

/// A stored record's value as the store's codec reads it, byte strings included (which
/// `serde_json::Value` cannot hold), written back the same way: the copies need no record type.
enum Raw {
    Unit,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Bytes(Vec<u8>),
    Seq(Vec<Raw>),
    Map(Vec<(Raw, Raw)>),
}

impl serde::Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap as _, SerializeSeq as _};
        match self {
            Raw::Unit => serializer.serialize_unit(),
            Raw::Bool(value) => serializer.serialize_bool(*value),
            Raw::I64(value) => serializer.serialize_i64(*value),
            Raw::U64(value) => serializer.serialize_u64(*value),
            Raw::F64(value) => serializer.serialize_f64(*value),
            Raw::Str(value) => serializer.serialize_str(value),
            Raw::Bytes(value) => serializer.serialize_bytes(value),
            Raw::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Raw::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Raw {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Raw, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Raw;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("any value")
            }
            fn visit_bool<E>(self, value: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(value))
            }
            fn visit_i64<E>(self, value: i64) -> Result<Raw, E> {
                Ok(Raw::I64(value))
            }
            fn visit_u64<E>(self, value: u64) -> Result<Raw, E> {
                Ok(Raw::U64(value))
            }
            fn visit_f64<E>(self, value: f64) -> Result<Raw, E> {
                Ok(Raw::F64(value))
            }
            fn visit_str<E>(self, value: &str) -> Result<Raw, E> {
                Ok(Raw::Str(value.to_owned()))
            }
            fn visit_string<E>(self, value: String) -> Result<Raw, E> {
                Ok(Raw::Str(value))
            }
            fn visit_bytes<E>(self, value: &[u8]) -> Result<Raw, E> {
                Ok(Raw::Bytes(value.to_owned()))
            }
            fn visit_byte_buf<E>(self, value: Vec<u8>) -> Result<Raw, E> {
                Ok(Raw::Bytes(value))
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Unit)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Unit)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
                serde::Deserialize::deserialize(deserializer)
            }
            fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
                serde::Deserialize::deserialize(deserializer)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Raw::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Raw::Map(entries))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Copies everything a stopped participant stored `copies` times: records (keyed
/// `~cN/KEY`), remembered messages (for a sender `~cN~SENDER`) and log entries
/// (appended to the log and integrated into its Merkle tree), through `Store::commit` like any write. Up to four commits
/// of a store are in flight at once, so the committer always has the next batch.
async fn duplicate(store: Store, copies: usize) -> anyhow::Result<()> {
    /// Bytes written per commit.
    const BATCH_BYTES: usize = 2 << 20;
    struct Writer {
        store: Store,
        batch: Batch,
        bytes: usize,
        in_flight: tokio::task::JoinSet<Result<Vec<u64>, egov_store::StoreError>>,
    }
    impl Writer {
        async fn added(&mut self, bytes: usize) -> anyhow::Result<()> {
            self.bytes += bytes;
            if self.bytes >= BATCH_BYTES {
                self.send().await?;
            }
            Ok(())
        }
        async fn send(&mut self) -> anyhow::Result<()> {
            // The entries are sequenced and integrated at commit, in whatever order the batches arrive.
            let (store, batch) = (self.store.clone(), std::mem::take(&mut self.batch));
            self.in_flight.spawn(async move { store.commit(batch).await });
            self.bytes = 0;
            while self.in_flight.len() > 4 {
                if let Some(done) = self.in_flight.join_next().await {
                    done??;
                }
            }
            Ok(())
        }
    }
    let keys = store.keys("")?;
    let log_count = store.log_entries().count();
    let mut writer =
        Writer { store: store.clone(), batch: Batch::new(), bytes: 0, in_flight: tokio::task::JoinSet::new() };
    for copy in 1..=copies {
        for (key, index) in &keys {
            if *index {
                writer.batch.index(format!("~c{copy}/{key}"), true);
                writer.added(key.len() + 64).await?;
            } else if let Some(record) = store.get::<Raw>(key)? {
                writer.batch.put(format!("~c{copy}/{key}"), 0, &record.value)?;
                writer.added(2048).await?;
            }
        }
        // The log's original entries (the copies are appended after them), and what was
        // remembered of every message received (its sender and id are in the logged header).
        for entry in store.log_entries().take(log_count) {
            let entry = entry?;
            if entry.direction == "received"
                && let Some(header) = egov_envelope::header_of_stored(&entry.envelope)
                && let Some(remembered) = store.remembered(&header.sender_id, &header.message_id)?
            {
                let bytes = remembered.response.len() * 2 + 128;
                let sender = format!("~c{copy}~{}", header.sender_id);
                writer.batch.remember(
                    &sender,
                    &header.message_id,
                    remembered.digest,
                    egov_store::Answer::Bytes(remembered.response),
                );
                writer.added(bytes).await?;
            }
            let bytes = entry.envelope.len() * 2 + 256;
            writer.batch.log(entry.time_ms, &entry.direction, entry.envelope, entry.note, Vec::new());
            writer.added(bytes).await?;
        }
    }
    writer.send().await?;
    while let Some(done) = writer.in_flight.join_next().await {
        done??;
    }
    Ok(())
}

async fn startup(
    plan: &Plan,
    keys: &KeyDir,
    fixtures: &Path,
    data: &Path,
    empty: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let base = plan.applications;
    let copies = plan.stored.div_ceil(base).saturating_sub(1);
    let stored = base * (copies + 1);
    eprintln!("bench: start-up, empty and with {stored} stored applications ({base} replayed, copied {copies} times)");
    let config = |data: &Path| {
        let mut config = StackConfig::local(data.to_owned(), keys.clone(), fixtures.to_owned());
        config.simulated_time = true;
        config
    };
    let (stack, _, empty_seconds) = start_healthy(config(empty)).await?;
    stack.stop().await;

    let copying = Instant::now();
    let [gateway, regional, workstation] = STATEFUL.map(|role| data.join(role.name()));
    let (gateway, regional, workstation) =
        (open_stopped(&gateway).await?, open_stopped(&regional).await?, open_stopped(&workstation).await?);
    // On this task (the stores' iterators stay here); the committer takes their batches in turn.
    let (gateway, regional, workstation) =
        tokio::join!(duplicate(gateway, copies), duplicate(regional, copies), duplicate(workstation, copies));
    gateway.context("copying the gateway's store")?;
    regional.context("copying the regional gateway ARM's store")?;
    workstation.context("copying the workstation's store")?;
    let copy_seconds = copying.elapsed().as_secs_f64();
    let store_bytes = dir_bytes(data);
    // Let go of the copies' handles before the stack opens the stores.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // sled takes its snapshot when it opens a store: the first start reads everything written
    // since the last one (here, all the copies), the second one only the snapshot.
    let (stack, start_seconds, seconds) = start_healthy(config(data)).await?;
    stack.stop().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (stack, _, again_seconds) = start_healthy(config(data)).await?;
    stack.stop().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // `egov serve --verify-all`: every frame, the whole chain, every signature, the index against the log.
    let mut verifying = config(data);
    verifying.verify_all = true;
    let (stack, _, verify_all_seconds) = start_healthy(verifying).await?;
    stack.stop().await;
    report.emit(
        json!({
            "figure": "startup_verify_all", "unit": "s", "value": round(verify_all_seconds, 3),
            "stored_applications": stored, "store_bytes": store_bytes,
            "baseline": "startup with the default check", "baseline_value": round(again_seconds, 3),
            "ratio": ratio(verify_all_seconds, again_seconds),
        }),
        Row {
            figure: format!("start-up --verify-all, {stored} stored applications"),
            value: format!("{verify_all_seconds:.3} s"),
            latency: String::new(),
            baseline: format!("default check: {again_seconds:.3} s"),
            ratio: format!("{:.1}", ratio(verify_all_seconds, again_seconds)),
        },
    );
    report.emit(
        json!({
            "figure": "startup", "unit": "s", "value": round(seconds, 3),
            "stored_applications": stored, "store_bytes": store_bytes,
            "stack_start_seconds": round(start_seconds, 3), "copy_seconds": round(copy_seconds, 1),
            "second_start_seconds": round(again_seconds, 3),
            "target": 1,
            "baseline": "startup with empty stores", "baseline_value": round(empty_seconds, 3),
            "ratio": ratio(seconds, empty_seconds),
        }),
        Row {
            figure: format!("start-up, {stored} stored applications"),
            value: format!("{seconds:.3} s (again: {again_seconds:.3} s)"),
            latency: String::new(),
            baseline: format!("empty: {empty_seconds:.3} s"),
            ratio: format!("{:.1}", ratio(seconds, empty_seconds)),
        },
    );
    report.target(Target {
        name: "startup",
        value: round(seconds, 3),
        unit: "s",
        at_least: false,
        target: 1.0,
        aim: Some(("≤ 0.3".to_owned(), seconds <= 0.3)),
    });
    Ok(())
}
