//! Operational monitoring, as X-Road's security servers keep it: a record of
//! every message exchange at each participant, with its four timestamps
//! (request in, request out, response in, response out, where they apply),
//! the client and service, the message and correlation ids, the sizes, and
//! how it ended. The records are kept in memory for a configured count and
//! time, answered by `AdminService.QueryMonitoring` (`egov monitor`), and
//! exported as JSON lines when a file is given.
//!
//! A call a participant answers is written down by the server's
//! [`crate::observe::ObserveLayer`]; what the receive pipeline learns of the
//! call (the envelope's ids, the sizes, a call onward) it notes with the
//! `note_*` functions here, in the call's task. A call a participant makes (an
//! outbox delivery, a look-up through the gateway) is written by
//! [`Monitor::sent`] at its call site.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use egov_proto::{Envelope, EnvelopeHeader, MonitoringRecord, QueryMonitoringRequest};
use prost::Message as _;

/// How many records are kept, for how long, and where they are exported.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Records kept per participant, the oldest dropped first; 0: monitoring is off.
    pub keep: usize,
    /// Records older than this are dropped.
    pub keep_for: Duration,
    /// A file each record is appended to as a JSON line.
    pub export: Option<PathBuf>,
}

impl Default for MonitorConfig {
    fn default() -> MonitorConfig {
        MonitorConfig { keep: 10_000, keep_for: Duration::from_secs(24 * 3600), export: None }
    }
}

/// The microseconds since the Unix epoch now (the operational clock of the records).
pub fn now_us() -> i64 {
    crate::SystemClock::now_us()
}

/// The records of every participant of one process, and their export.
#[derive(Debug)]
pub struct Monitoring {
    config: MonitorConfig,
    /// The export's channel and the thread that writes what it carries; none
    /// without an export file, or once [`Monitoring::finish`] has ended it.
    export: Mutex<Option<Export>>,
}

type Export = (std::sync::mpsc::Sender<MonitoringRecord>, std::thread::JoinHandle<()>);

impl Monitoring {
    /// Starts monitoring; with an export file, opens it for appending (its
    /// folder is made if missing; an error names the file) and starts the
    /// thread that writes to it.
    pub fn start(config: MonitorConfig) -> anyhow::Result<Arc<Monitoring>> {
        let export = match &config.export {
            None => None,
            Some(path) => {
                if let Some(folder) = path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
                    std::fs::create_dir_all(folder).map_err(|error| {
                        anyhow::anyhow!("cannot make the folder of the monitoring export {}: {error}", path.display())
                    })?;
                }
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|error| {
                    anyhow::anyhow!("cannot open the monitoring export {}: {error}", path.display())
                })?;
                let (sender, receiver) = std::sync::mpsc::channel::<MonitoringRecord>();
                let writer = std::thread::Builder::new()
                    .name("monitor-export".into())
                    .spawn(move || export_lines(file, receiver))?;
                Some((sender, writer))
            }
        };
        Ok(Arc::new(Monitoring { config, export: Mutex::new(export) }))
    }

    /// The handle `participant` (a member id) keeps its records with.
    pub fn participant(self: &Arc<Self>, participant: &str) -> Monitor {
        if self.config.keep == 0 {
            return Monitor::off();
        }
        Monitor {
            inner: Some(Arc::new(Records {
                participant: participant.to_owned(),
                ring: Mutex::new(VecDeque::new()),
                monitoring: Arc::clone(self),
            })),
        }
    }

    /// Ends the export: every record pushed so far is written and the file flushed.
    pub fn finish(&self) {
        let export = self.export.lock().ok().and_then(|mut export| export.take());
        if let Some((sender, writer)) = export {
            // The closed channel ends the writer once it has written what it holds.
            drop(sender);
            let _ = writer.join();
        }
    }

    fn export(&self, record: &MonitoringRecord) {
        if let Ok(export) = self.export.lock()
            && let Some((sender, _)) = export.as_ref()
        {
            let _ = sender.send(record.clone());
        }
    }
}

/// Writes each record as a line, flushing whenever none waits.
fn export_lines(file: std::fs::File, receiver: std::sync::mpsc::Receiver<MonitoringRecord>) {
    let mut out = std::io::BufWriter::new(file);
    let write = |out: &mut std::io::BufWriter<std::fs::File>, record: MonitoringRecord| {
        let written = serde_json::to_writer(&mut *out, &record)
            .map_err(std::io::Error::other)
            .and_then(|()| out.write_all(b"\n"));
        if let Err(error) = written {
            tracing::error!(%error, "cannot export a monitoring record");
        }
    };
    while let Ok(record) = receiver.recv() {
        write(&mut out, record);
        while let Ok(record) = receiver.try_recv() {
            write(&mut out, record);
        }
        if let Err(error) = out.flush() {
            tracing::error!(%error, "cannot flush the monitoring export");
        }
    }
    let _ = out.flush();
}

#[derive(Debug)]
struct Records {
    participant: String,
    ring: Mutex<VecDeque<MonitoringRecord>>,
    monitoring: Arc<Monitoring>,
}

/// One participant's monitoring records; [`Monitor::off`] keeps none.
#[derive(Debug, Clone, Default)]
pub struct Monitor {
    inner: Option<Arc<Records>>,
}

/// The first timestamp of a record: when it began at this participant (what
/// queries filter and `egov monitor` orders by).
pub fn first_time(record: &MonitoringRecord) -> i64 {
    if record.request_in_time_us != 0 { record.request_in_time_us } else { record.request_out_time_us }
}

impl Monitor {
    /// Keeps nothing.
    pub fn off() -> Monitor {
        Monitor { inner: None }
    }

    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Keeps `record` as this participant's, dropping what is past the count or the time kept.
    pub fn push(&self, mut record: MonitoringRecord) {
        let Some(records) = &self.inner else { return };
        record.participant.clone_from(&records.participant);
        let config = &records.monitoring.config;
        let oldest = first_time(&record) - config.keep_for.as_micros() as i64;
        records.monitoring.export(&record);
        let Ok(mut ring) = records.ring.lock() else { return };
        ring.push_back(record);
        while ring.len() > config.keep || ring.front().is_some_and(|first| first_time(first) < oldest) {
            ring.pop_front();
        }
    }

    /// A call this participant made: `envelope` sent by `rpc` to `peer_id`,
    /// from `request_out_us` until now, answered with `answer_size` bytes or refused.
    pub fn sent(
        &self,
        rpc: &str,
        peer_id: &str,
        envelope: &Envelope,
        request_out_us: i64,
        answer: Result<usize, &tonic::Status>,
    ) {
        if !self.is_on() {
            return;
        }
        let header = egov_envelope::decode_header(&envelope.header).unwrap_or_default();
        let (succeeded, status_code, reason, response_size) = match answer {
            Ok(size) => (true, "Ok".to_owned(), String::new(), size as u64),
            Err(status) => {
                (false, format!("{:?}", status.code()), crate::status::reason_of(status).unwrap_or("").to_owned(), 0)
            }
        };
        self.push(MonitoringRecord {
            participant: String::new(),
            kind: "client".to_owned(),
            rpc: rpc.to_owned(),
            client_id: header.sender_id,
            service_id: header.service_id,
            message_id: header.message_id,
            correlation_id: header.correlation_id,
            peer_id: peer_id.to_owned(),
            request_in_time_us: 0,
            request_out_time_us: request_out_us,
            response_in_time_us: now_us(),
            response_out_time_us: 0,
            request_size: envelope.encoded_len() as u64,
            response_size,
            succeeded,
            status_code,
            reason,
        });
    }

    /// The records that match `query`, oldest first.
    pub fn query(&self, query: &QueryMonitoringRequest) -> Vec<MonitoringRecord> {
        let Some(records) = &self.inner else { return Vec::new() };
        let Ok(ring) = records.ring.lock() else { return Vec::new() };
        let matches = |record: &&MonitoringRecord| {
            let time = first_time(record);
            (query.from_time_us == 0 || time >= query.from_time_us)
                && (query.to_time_us == 0 || time < query.to_time_us)
                && (query.service_id.is_empty() || record.service_id == query.service_id)
                && (query.correlation_id.is_empty() || record.correlation_id == query.correlation_id)
        };
        let found: Vec<MonitoringRecord> = match query.limit {
            0 => ring.iter().rev().filter(matches).cloned().collect(),
            limit => ring.iter().rev().filter(matches).take(limit as usize).cloned().collect(),
        };
        found.into_iter().rev().collect()
    }
}

/// What the pipeline learns of the call being answered, for its record and its metrics.
#[derive(Debug, Default, Clone)]
pub(crate) struct Note {
    pub header: Option<EnvelopeHeader>,
    pub request_size: u64,
    pub response_size: u64,
    pub request_out_us: i64,
    pub response_in_us: i64,
}

tokio::task_local! {
    pub(crate) static NOTE: std::cell::RefCell<Note>;
}

/// The call carries `envelope`, whose header is `header` (the pipeline, once it has verified it).
pub fn note_envelope(header: &EnvelopeHeader, envelope: &Envelope) {
    let _ = NOTE.try_with(|note| {
        let mut note = note.borrow_mut();
        note.header = Some(header.clone());
        note.request_size = envelope.encoded_len() as u64;
    });
}

/// The call's answer is `size` bytes.
pub fn note_answer(size: usize) {
    let _ = NOTE.try_with(|note| note.borrow_mut().response_size = size as u64);
}

/// The answer needed a call onward, from `request_out_us` until now (the gateway's synchronous route).
pub fn note_onward(request_out_us: i64) {
    let now = now_us();
    let _ = NOTE.try_with(|note| {
        let mut note = note.borrow_mut();
        note.request_out_us = request_out_us;
        note.response_in_us = now;
    });
}
