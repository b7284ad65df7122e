//! Prometheus metrics of the participants run in one process, served as the
//! text format on `/metrics` (`egov serve --metrics ADDR`). The tower layer
//! in front of every participant's services ([`crate::observe`]) counts and
//! times each call by participant, RPC and service id, with its status code,
//! and counts the refusals by reason code; the store's and the outboxes'
//! figures are read when the endpoint is scraped.

use std::future::Future;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    participant: String,
    rpc: String,
    service: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeLabels {
    participant: String,
    rpc: String,
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    participant: String,
    rpc: String,
    service: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ParticipantLabels {
    participant: String,
}

/// What a scrape reads from one participant with state.
pub trait Gauges: Send + Sync {
    /// (items in the outbox, age in seconds of the oldest, incidents).
    fn outbox(&self) -> (i64, i64, i64);
    /// Bytes of the store on disk.
    fn store_bytes(&self) -> i64;
    /// Deliveries the outbox retried since the participant started.
    fn retries(&self) -> u64;
}

/// Figures a participant reads from its own records at a scrape: each a
/// family (`ReportFamily::Applications` or `ReportFamily::Sla`), its labels and its value.
pub trait Report: Send + Sync {
    fn read(&self) -> Vec<Reading>;
}

/// One figure of a [`Report`]: its family, its labels, its value.
pub type Reading = (ReportFamily, Vec<(String, String)>, i64);

/// The families a [`Report`] fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFamily {
    /// Applications by the step they wait on, or the outcome they ended with.
    Applications,
    /// Steps and terms missed or at risk of their regulatory deadline.
    Sla,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrustLabels {
    result: String,
}

/// The gauges of a participant with a store and an outbox, read at a scrape.
#[derive(Debug, Clone)]
pub struct StoreGauges {
    pub store: egov_store::Store,
    /// The store's directory, whose files are summed.
    pub path: std::path::PathBuf,
    pub clock: Arc<dyn crate::Clock>,
    /// The participant's counters (`outbox.retries`).
    pub counters: Arc<crate::counters::Counters>,
}

impl Gauges for StoreGauges {
    fn retries(&self) -> u64 {
        self.counters.snapshot().get("outbox.retries").copied().unwrap_or(0)
    }

    fn outbox(&self) -> (i64, i64, i64) {
        let Ok(items) = self.store.outbox() else { return (0, 0, 0) };
        let now = self.clock.now_ms();
        let parked = items.iter().filter(|item| item.next_attempt_ms == crate::outbox::PARKED).count();
        let waiting = items.iter().filter(|item| item.next_attempt_ms != crate::outbox::PARKED);
        let oldest = waiting.map(|item| item.enqueued_ms).min().map_or(0, |at| (now - at).max(0) / 1000);
        ((items.len() - parked) as i64, oldest, parked as i64)
    }

    fn store_bytes(&self) -> i64 {
        fn size(path: &std::path::Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(path) else { return 0 };
            entries
                .filter_map(Result::ok)
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => size(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        size(&self.path) as i64
    }
}

/// The metrics of one process.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    durations: Family<TimeLabels, Histogram>,
    outbox_depth: Family<ParticipantLabels, Gauge>,
    outbox_oldest: Family<ParticipantLabels, Gauge>,
    incidents: Family<ParticipantLabels, Gauge>,
    store_bytes: Family<ParticipantLabels, Gauge>,
    retries: Family<ParticipantLabels, Counter>,
    commits: Counter,
    groups: Counter,
    syncs: Counter,
    applications: Family<Vec<(String, String)>, Gauge>,
    sla: Family<Vec<(String, String)>, Gauge>,
    trust_reloads: Family<TrustLabels, Counter>,
    sources: Mutex<Vec<(String, Arc<dyn Gauges>)>>,
    reports: Mutex<Vec<Arc<dyn Report>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("egov");
        let calls = Family::<CallLabels, Counter>::default();
        let refusals = Family::<RefusalLabels, Counter>::default();
        let durations = Family::<TimeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "rpc_requests",
            "Calls answered, by participant, RPC, service id and status code",
            calls.clone(),
        );
        registry.register("rpc_refusals", "Calls refused, by reason code", refusals.clone());
        registry.register("rpc_duration_seconds", "How long a call took to answer", durations.clone());
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<ParticipantLabels, Gauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let outbox_depth = gauge(&mut registry, "outbox_depth", "Items waiting in the participant's outbox");
        let outbox_oldest =
            gauge(&mut registry, "outbox_oldest_age_seconds", "Age of the oldest item waiting in the outbox");
        let incidents = gauge(&mut registry, "incidents", "Deliveries that failed every attempt, parked");
        let store_bytes = gauge(&mut registry, "store_bytes", "Bytes of the participant's store on disk");
        let retries = Family::<ParticipantLabels, Counter>::default();
        registry.register("outbox_retries", "Deliveries the outbox retried after a failed attempt", retries.clone());
        let commits = Counter::default();
        let groups = Counter::default();
        let syncs = Counter::default();
        registry.register("store_commits", "Commits of every store of the process", commits.clone());
        registry.register("store_groups", "Groups the committer wrote (commits are grouped)", groups.clone());
        registry.register("store_syncs", "fdatasync calls of the stores", syncs.clone());
        registry.register(
            "store_group_size_commits",
            "Commits per group the committer wrote to the logs",
            egov_store::stats::group_sizes(),
        );
        registry.register(
            "store_flush_seconds",
            "How long one fdatasync of a log segment took",
            egov_store::stats::flush_seconds(),
        );
        let applications = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register(
            "applications",
            "Applications by participant and state (the step waited on, or the outcome)",
            applications.clone(),
        );
        let sla = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register(
            "sla_items",
            "Steps and terms of the applications missed or at risk of their regulatory deadline, by step or term and standing",
            sla.clone(),
        );
        let trust_reloads = Family::<TrustLabels, Counter>::default();
        registry.register(
            "trust_reloads",
            "Reloads of the trust registry, by result (ok, failed)",
            trust_reloads.clone(),
        );
        Metrics {
            registry,
            calls,
            refusals,
            durations,
            outbox_depth,
            outbox_oldest,
            incidents,
            store_bytes,
            retries,
            commits,
            groups,
            syncs,
            applications,
            sla,
            trust_reloads,
            sources: Mutex::new(Vec::new()),
            reports: Mutex::new(Vec::new()),
        }
    }

    /// Reads `gauges` at each scrape, as `participant`'s.
    pub fn watch(&self, participant: &str, gauges: Arc<dyn Gauges>) {
        if let Ok(mut sources) = self.sources.lock() {
            sources.push((participant.to_owned(), gauges));
        }
    }

    /// Reads `report` at each scrape.
    pub fn report(&self, report: Arc<dyn Report>) {
        if let Ok(mut reports) = self.reports.lock() {
            reports.push(report);
        }
    }

    /// Counts a reload of the trust registry.
    pub fn trust_reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" }.to_owned();
        self.trust_reloads.get_or_create(&TrustLabels { result }).inc();
    }

    /// The text format, with the gauges read now.
    pub fn encode(&self) -> String {
        // A counter kept elsewhere, brought up to its total.
        let catch_up = |counter: &Counter, total: u64| {
            let seen = counter.get();
            if total > seen {
                counter.inc_by(total - seen);
            }
        };
        if let Ok(reports) = self.reports.lock() {
            self.applications.clear();
            self.sla.clear();
            for report in reports.iter() {
                for (family, labels, value) in report.read() {
                    let family = match family {
                        ReportFamily::Applications => &self.applications,
                        ReportFamily::Sla => &self.sla,
                    };
                    family.get_or_create(&labels).inc_by(value);
                }
            }
        }
        if let Ok(sources) = self.sources.lock() {
            for (participant, gauges) in sources.iter() {
                let labels = ParticipantLabels { participant: participant.clone() };
                let (depth, oldest, incidents) = gauges.outbox();
                self.outbox_depth.get_or_create(&labels).set(depth);
                self.outbox_oldest.get_or_create(&labels).set(oldest);
                self.incidents.get_or_create(&labels).set(incidents);
                self.store_bytes.get_or_create(&labels).set(gauges.store_bytes());
                catch_up(&self.retries.get_or_create(&labels), gauges.retries());
            }
        }
        let stats = egov_store::stats::stats();
        catch_up(&self.commits, stats.flushed_commits + stats.unflushed_commits);
        catch_up(&self.groups, stats.groups);
        catch_up(&self.syncs, stats.syncs);
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }

    pub(crate) fn record(
        &self,
        participant: &str,
        rpc: &str,
        service: &str,
        code: &str,
        reason: Option<&str>,
        seconds: f64,
    ) {
        let (participant, rpc, service) = (participant.to_owned(), rpc.to_owned(), service.to_owned());
        self.durations
            .get_or_create(&TimeLabels { participant: participant.clone(), rpc: rpc.clone(), service: service.clone() })
            .observe(seconds);
        if let Some(reason) = reason {
            self.refusals
                .get_or_create(&RefusalLabels {
                    participant: participant.clone(),
                    rpc: rpc.clone(),
                    service: service.clone(),
                    reason: reason.to_owned(),
                })
                .inc();
        }
        self.calls.get_or_create(&CallLabels { participant, rpc, service, code: code.to_owned() }).inc();
    }

    /// Serves `/metrics` on `listener` until `shutdown`.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = Arc::clone(&self);
                async move {
                    (
                        [(http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                        metrics.encode(),
                    )
                }
            }),
        );
        axum::serve(listener, app).with_graceful_shutdown(shutdown).await
    }
}
