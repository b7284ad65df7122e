//! `egov monitor`: the participants' operational monitoring records, as a
//! table or as JSON lines, merged in time order.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use egov_proto::QueryMonitoringRequest;
use egov_proto::admin_service_client::AdminServiceClient;
use egov_runtime::ids;

use crate::Addresses;

#[derive(clap::Args)]
pub struct MonitorArgs {
    /// Whose records, comma-separated: individuals, notary, gateway, regional, workstation.
    #[arg(long, value_delimiter = ',', default_value = "workstation,gateway,individuals,notary,regional")]
    participants: Vec<String>,
    /// Only the records of this correlation id (an application's id).
    #[arg(long)]
    correlation: Option<String>,
    /// Only the records of this service id, e.g. `gbdfl.person.lookup.v1`.
    #[arg(long)]
    service: Option<String>,
    /// Records from this time on (RFC 3339, e.g. 2026-12-02T10:00:00Z).
    #[arg(long)]
    from: Option<String>,
    /// Records before this time (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    /// At most this many records of each participant, the newest.
    #[arg(long, default_value_t = 0)]
    limit: u32,
    /// One JSON object a line (the export's format) instead of a table.
    #[arg(long)]
    json: bool,
}

fn micros(text: &Option<String>, flag: &str) -> anyhow::Result<i64> {
    match text {
        None => Ok(0),
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|time| time.timestamp_micros())
            .with_context(|| format!("--{flag} {text:?} is not an RFC 3339 time such as 2026-12-02T10:00:00Z")),
    }
}

/// A time of a record as `HH:MM:SS.micros` UTC, or `-` where it does not apply.
fn clock(us: i64) -> String {
    if us == 0 {
        return "-".to_owned();
    }
    chrono::DateTime::from_timestamp_micros(us).map_or_else(|| us.to_string(), |t| t.format("%H:%M:%S%.6f").to_string())
}

pub async fn monitor(args: MonitorArgs, addresses: &Addresses, tls: &crate::Tls) -> anyhow::Result<ExitCode> {
    let topology = crate::commands::topology(addresses)?;
    let certificates = tls.dir(std::path::Path::new("keys"));
    let query = QueryMonitoringRequest {
        from_time_us: micros(&args.from, "from")?,
        to_time_us: micros(&args.to, "to")?,
        service_id: args.service.clone().unwrap_or_default(),
        correlation_id: args.correlation.clone().unwrap_or_default(),
        limit: args.limit,
    };
    let mut records = Vec::new();
    let mut unreachable = 0;
    for name in &args.participants {
        let Some((_, address)) = topology.entries().into_iter().find(|(role, _)| role == name) else {
            bail!("unknown participant {name:?}: use individuals, notary, gateway, regional, workstation");
        };
        // Over TLS an administrator presents the participant's own certificate (or --tls-as).
        let member = match name.as_str() {
            "individuals" => ids::INDIVIDUALS,
            "notary" => ids::NOTARY,
            "gateway" => ids::GATEWAY,
            "regional" => ids::REGIONAL,
            _ => ids::SC_WORKSTATION,
        };
        let channel = egov_runtime::tls::connect(address, certificates.as_ref(), tls.reader(member))?;
        let mut client = AdminServiceClient::new(channel);
        match client.query_monitoring(query.clone()).await {
            Ok(response) => records.extend(response.into_inner().records),
            Err(status) => {
                unreachable += 1;
                eprintln!(
                    "{name} at {address}: {} ({})",
                    status.message(),
                    egov_runtime::reason_of(&status).unwrap_or("unreachable")
                );
            }
        }
    }
    records.sort_by_key(egov_runtime::monitor::first_time);
    if args.json {
        for record in &records {
            println!("{}", serde_json::to_string(record)?);
        }
    } else {
        println!(
            "{:<14} {:<6} {:<38} {:<14} {:<28} {:<15} {:<15} {:<15} {:<15} {:>7} {:>7}  result",
            "participant",
            "kind",
            "rpc",
            "client",
            "service",
            "request in",
            "request out",
            "response in",
            "response out",
            "req B",
            "resp B"
        );
        for record in &records {
            println!(
                "{:<14} {:<6} {:<38} {:<14} {:<28} {:<15} {:<15} {:<15} {:<15} {:>7} {:>7}  {}",
                record.participant,
                record.kind,
                record.rpc,
                if record.client_id.is_empty() { "-" } else { &record.client_id },
                if record.service_id.is_empty() { "-" } else { &record.service_id },
                clock(record.request_in_time_us),
                clock(record.request_out_time_us),
                clock(record.response_in_time_us),
                clock(record.response_out_time_us),
                record.request_size,
                record.response_size,
                if record.succeeded { "ok".to_owned() } else { format!("{} {}", record.status_code, record.reason) }
            );
        }
        println!("{} records", records.len());
    }
    Ok(if unreachable == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
