//! `egov incidents`: deliveries that failed every attempt, and their retry.

use std::process::ExitCode;

use anyhow::bail;
use egov_proto::admin_service_client::AdminServiceClient;
use egov_proto::{ListOutboxRequest, RetryOutboxRequest};
use egov_runtime::{Topology, ids};

use crate::Addresses;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct IncidentsArgs {
    #[command(subcommand)]
    command: Option<IncidentsCommand>,
    /// List every pending delivery, not only the incidents.
    #[arg(long)]
    all: bool,
}

#[derive(clap::Subcommand)]
enum IncidentsCommand {
    /// Retry an incident (or a pending delivery) now, its attempts counted afresh.
    Retry {
        id: u64,
        /// Whose outbox: gateway, regional or workstation.
        #[arg(long, default_value = "gateway")]
        participant: String,
    },
}

/// (name, address, member id).
fn participants(topology: &Topology) -> [(&'static str, &str, &'static str); 3] {
    [
        ("gateway", &topology.gateway, ids::GATEWAY),
        ("regional", &topology.regional, ids::REGIONAL),
        ("workstation", &topology.workstation, ids::SC_WORKSTATION),
    ]
}

pub async fn incidents(args: IncidentsArgs, addresses: &Addresses, tls: &crate::Tls) -> anyhow::Result<ExitCode> {
    let topology = crate::commands::topology(addresses)?;
    let certificates = tls.dir(std::path::Path::new("keys"));
    // Over TLS an administrator presents the participant's own certificate (or --tls-as).
    let connect =
        |address: &str, member: &str| egov_runtime::tls::connect(address, certificates.as_ref(), tls.reader(member));
    match args.command {
        None => {
            println!(
                "{:<12} {:>20}  {:<14} {:<28} {:<36} {:>8}  last error",
                "participant", "id", "to", "service", "application", "attempts"
            );
            let mut count = 0;
            for (name, address, member) in participants(&topology) {
                let mut client = AdminServiceClient::new(connect(address, member)?);
                let entries = match client.list_outbox(ListOutboxRequest { incidents_only: !args.all }).await {
                    Ok(response) => response.into_inner().entries,
                    Err(status) => {
                        eprintln!("{name} at {address}: not reachable ({})", status.message());
                        continue;
                    }
                };
                for entry in entries {
                    count += 1;
                    println!(
                        "{:<12} {:>20}  {:<14} {:<28} {:<36} {:>8}  {}{}",
                        name,
                        entry.id,
                        entry.target,
                        entry.service_id,
                        entry.correlation_id,
                        entry.attempts,
                        if entry.incident { "[incident] " } else { "" },
                        entry.last_error
                    );
                }
            }
            println!("{count} {}", if args.all { "pending deliveries" } else { "incidents" });
            Ok(ExitCode::SUCCESS)
        }
        Some(IncidentsCommand::Retry { id, participant }) => {
            let Some((_, address, member)) =
                participants(&topology).into_iter().find(|(name, ..)| *name == participant)
            else {
                bail!("--participant is gateway, regional or workstation, not {participant:?}");
            };
            let mut client = AdminServiceClient::new(connect(address, member)?);
            let entry = client.retry_outbox(RetryOutboxRequest { id }).await?.into_inner().entry.unwrap_or_default();
            println!("retrying {} to {} ({}) now", entry.id, entry.target, entry.service_id);
            Ok(ExitCode::SUCCESS)
        }
    }
}
