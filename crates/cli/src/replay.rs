//! `egov replay`: fixture scenarios against an in-process stack or a running one.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use egov_cli::stack::{Role, Stack, StackConfig};
use egov_client::Patience;
use egov_replay::{Options, Target};
use egov_runtime::{KeyDir, Topology, ids};
use egov_workstation::Operators;

use crate::Addresses;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Scenario files, or folders searched for *.json.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Where individuals.json, powers_of_attorney.json and operators.json are.
    #[arg(long, default_value = "fixtures")]
    fixtures: PathBuf,
    /// Scenarios replayed at once; verdicts do not depend on it.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Also write a machine-readable report: `--report json FILE` or `--report junit FILE`.
    #[arg(long, num_args = 2, value_names = ["FORMAT", "FILE"])]
    report: Vec<String>,
    /// Replay against a running stack (started with `egov serve --simulated-time`) at these
    /// addresses: a topology TOML file, or a host with the default ports; the address flags override.
    #[arg(long)]
    target: Option<String>,
    /// With --target: the stack's key directory (the operators' and staff's keys).
    #[arg(long, default_value = "keys")]
    keys: PathBuf,
    /// The process definition (default: the embedded one).
    #[arg(long)]
    regulation: Option<PathBuf>,
    /// Seconds to wait for one asynchronous step.
    #[arg(long, default_value_t = 60)]
    patience: u64,
    /// Keep the in-process stack's stores and keys in DIR (DIR/data, DIR/keys) for
    /// `egov audit verify` and `egov sla report` afterwards; default: a temporary folder.
    #[arg(long, conflicts_with = "target")]
    keep: Option<PathBuf>,
    /// Keep the in-process stack's state in this PostgreSQL database (`postgres://...`,
    /// as `egov serve --store`) instead of embedded stores.
    #[arg(long, conflicts_with = "target")]
    store: Option<String>,
    /// Inject faults into the in-process stack (as `egov serve --fault`), e.g.
    /// `individuals:unavailable=0.3`, `regional:down=0.5s+2s` (repeat).
    #[arg(long = "fault", value_parser = Role::parse_fault)]
    faults: Vec<(Role, egov_runtime::fault::Faults)>,
    #[arg(long, default_value_t = 1)]
    fault_seed: u64,
}

fn target_topology(target: &str, addresses: &Addresses) -> anyhow::Result<Topology> {
    let path = PathBuf::from(target);
    let mut addresses = addresses.clone();
    if path.is_file() {
        addresses.topology = Some(path);
        return crate::commands::topology(&addresses);
    }
    let base = Topology::default();
    let port = |address: &str| address.rsplit_once(':').map(|(_, port)| port.to_owned()).unwrap_or_default();
    let on_host = |address: &String| format!("{target}:{}", port(address));
    let mut topology = Topology {
        workstation: on_host(&base.workstation),
        gateway: on_host(&base.gateway),
        individuals: on_host(&base.individuals),
        notary: on_host(&base.notary),
        regional: on_host(&base.regional),
    };
    for (value, slot) in [
        (&addresses.workstation, &mut topology.workstation),
        (&addresses.gateway, &mut topology.gateway),
        (&addresses.individuals, &mut topology.individuals),
        (&addresses.notary, &mut topology.notary),
        (&addresses.regional, &mut topology.regional),
    ] {
        if let Some(value) = value {
            value.clone_into(slot);
        }
    }
    Ok(topology)
}

pub async fn replay(
    args: ReplayArgs,
    addresses: &Addresses,
    tls: &crate::Tls,
    persistence: egov_client::Persistence,
) -> anyhow::Result<ExitCode> {
    let report = match args.report.as_slice() {
        [] => None,
        [format, file] => Some((
            match format.as_str() {
                "json" => egov_replay::Format::Json,
                "junit" => egov_replay::Format::Junit,
                other => bail!("--report takes json or junit, not {other:?}"),
            },
            PathBuf::from(file),
        )),
        _ => bail!("--report takes a format and a file"),
    };
    let (verdicts, counters) = run(&args, addresses, tls, persistence).await?;
    print!("{}", egov_replay::table(&verdicts));
    for verdict in verdicts.iter().filter(|v| !v.passed()) {
        println!("\n{} ({}):", verdict.scenario, verdict.actual.application_id);
        for difference in &verdict.differences {
            println!("  - {difference}");
        }
    }
    if let Some((format, file)) = report {
        let text = match format {
            egov_replay::Format::Json => egov_replay::json(&verdicts, &counters),
            egov_replay::Format::Junit => egov_replay::junit(&verdicts),
        };
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    let retries: Vec<String> = counters
        .iter()
        .filter(|(name, value)| {
            **value > 0 && (name.contains("retries") || name.contains("incidents") || name.contains("fault"))
        })
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    println!("retries and faults: {}", if retries.is_empty() { "none".to_owned() } else { retries.join(", ") });
    println!("{}", egov_replay::summary_line(&verdicts));
    Ok(if verdicts.iter().all(egov_replay::Verdict::passed) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Every participant's counters, as `participant.counter` (over TLS, each asked as itself).
async fn counters(topology: &Topology, tls: Option<&egov_runtime::tls::TlsDir>) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for (name, address, member) in [
        ("gateway", &topology.gateway, ids::GATEWAY),
        ("regional", &topology.regional, ids::REGIONAL),
        ("workstation", &topology.workstation, ids::SC_WORKSTATION),
    ] {
        let Ok(channel) = egov_runtime::tls::connect(address, tls, member) else { continue };
        let mut client = egov_proto::admin_service_client::AdminServiceClient::new(channel);
        if let Ok(response) = client.get_counters(egov_proto::GetCountersRequest {}).await {
            for (counter, value) in response.into_inner().counters {
                all.insert(format!("{name}.{counter}"), value);
            }
        }
    }
    all
}

/// Loads the scenarios and replays them against the target or a fresh in-process stack.
async fn run(
    args: &ReplayArgs,
    addresses: &Addresses,
    tls: &crate::Tls,
    persistence: egov_client::Persistence,
) -> anyhow::Result<(Vec<egov_replay::Verdict>, BTreeMap<String, u64>)> {
    let scenarios = egov_replay::load(&args.paths)?;
    let definition = crate::commands::definition(args.regulation.as_ref())?;
    let operators_path = args.fixtures.join("operators.json");
    let operators_text = std::fs::read_to_string(&operators_path)
        .with_context(|| format!("cannot read {}", operators_path.display()))?;
    let operators =
        Operators::from_json(&operators_text).with_context(|| format!("in {}", operators_path.display()))?;

    // The stack: the one at --target, or a fresh one on simulated time in a temporary directory.
    let temp = tempfile::tempdir().context("cannot make a temporary directory")?;
    let base = args.keep.clone().unwrap_or_else(|| temp.path().to_owned());
    let (keys, stack, topology, certificates) = match &args.target {
        Some(target) => (KeyDir::new(&args.keys), None, target_topology(target, addresses)?, tls.dir(&args.keys)),
        None => {
            let keys = KeyDir::new(base.join("keys"));
            if !keys.exists() {
                // As `egov keys init` makes them: scenarios may be dated in the past.
                keys.init(ids::DEFAULT_MEMBERS, egov_runtime::keys::default_valid_from())?;
            }
            let certificates = tls.dir(keys.path());
            if let Some(certificates) = &certificates
                && !certificates.ca_path().exists()
            {
                // TLS checks the certificates on the real clock: valid from a day back, for a year.
                let now = egov_runtime::Clock::now_ms(&egov_runtime::SystemClock);
                let members: Vec<&str> = ids::DEFAULT_MEMBERS.iter().map(|(id, ..)| *id).collect();
                certificates.init(&members, &[], now - 86_400_000, now + 365 * 86_400_000)?;
            }
            let mut config = StackConfig::local(base.join("data"), keys.clone(), args.fixtures.clone());
            config.tls = certificates.clone();
            config.definition = Arc::clone(&definition);
            config.simulated_time = true;
            config.faults = args.faults.iter().cloned().collect();
            config.fault_seed = args.fault_seed;
            config.database = args.store.clone();
            let stack = Stack::start(config).await?;
            let topology = stack.topology().clone();
            (keys, Some(stack), topology, certificates)
        }
    };
    let trust = keys.trust()?;
    let mut operator_keys = HashMap::new();
    let mut credentials = HashMap::new();
    for account in operators.accounts() {
        if let Ok(signer) = keys.signer_in(&trust, &account.operator_id) {
            operator_keys.insert(account.operator_id.clone(), signer);
        }
        credentials.insert(account.operator_id.clone(), (account.login.clone(), account.password.clone()));
    }
    let target = Target {
        topology,
        definition: Arc::clone(&definition),
        operators: credentials,
        operator_keys,
        staff_keys: egov_client::staff_keys(&keys, &trust)?,
        tls: certificates,
    };
    let options = Options {
        concurrency: args.concurrency,
        run_id: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
        patience: Patience { timeout: std::time::Duration::from_secs(args.patience) },
        persistence,
        progress: scenarios.len() > 36,
    };
    let started = std::time::Instant::now();
    let count = scenarios.len();
    let verdicts = egov_replay::replay(&target, scenarios, &options).await;
    let counters = counters(&target.topology, target.tls.as_ref()).await;
    eprintln!("replayed {count} scenarios in {:.2} s", started.elapsed().as_secs_f64());
    if let Some(stack) = stack {
        stack.stop().await;
    }
    Ok((verdicts, counters))
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// The scenario to drive.
    #[arg(long, default_value = "fixtures/applications/approval-in-person.json")]
    scenario: PathBuf,
    /// Where individuals.json, powers_of_attorney.json and operators.json are.
    #[arg(long, default_value = "fixtures")]
    fixtures: PathBuf,
}

/// One scenario on a fresh in-process stack, with its path printed.
pub async fn demo(args: DemoArgs, addresses: &Addresses, tls: &crate::Tls) -> anyhow::Result<ExitCode> {
    let replay_args = ReplayArgs {
        paths: vec![args.scenario],
        fixtures: args.fixtures,
        concurrency: 1,
        report: Vec::new(),
        target: None,
        keys: PathBuf::from("keys"),
        regulation: None,
        patience: 60,
        keep: None,
        store: None,
        faults: Vec::new(),
        fault_seed: 1,
    };
    let (verdicts, _) = run(&replay_args, addresses, tls, egov_client::Persistence::default()).await?;
    for verdict in &verdicts {
        println!("scenario {}: {}", verdict.scenario, verdict.description);
        if let Some(application) = &verdict.application {
            let last = application.path.iter().map(|step| step.ended_time_ms).max().unwrap_or(0);
            print!("{}", crate::print::application_at(application, last));
        }
        if verdict.passed() {
            println!("verdict: as expected ({})", verdict.expected.outcome);
        } else {
            println!("verdict: DIFFERENT: {}", verdict.differences.join("; "));
        }
    }
    Ok(if verdicts.iter().all(egov_replay::Verdict::passed) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
