//! `egov`: the simulator's command line.
#![forbid(unsafe_code)]

mod commands;
mod print;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "egov",
    version,
    about = "A simulator of the exchange between Kazakhstan's State Corporation and a regional e-government gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    addresses: Addresses,
}

/// Where the running participants listen (defaults: 127.0.0.1:50051 to 50055).
#[derive(clap::Args, Clone, Debug)]
pub struct Addresses {
    /// A TOML file with the five addresses (workstation, gateway, individuals, notary, regional).
    #[arg(long, global = true)]
    pub topology: Option<PathBuf>,
    #[arg(long, global = true)]
    pub workstation: Option<String>,
    #[arg(long, global = true)]
    pub gateway: Option<String>,
    #[arg(long, global = true)]
    pub individuals: Option<String>,
    #[arg(long, global = true)]
    pub notary: Option<String>,
    #[arg(long, global = true)]
    pub regional: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the participants (all five by default), each on its own port.
    Serve(commands::ServeArgs),
    /// Drive one application through the whole route on a fresh in-process stack and print its path.
    Demo(commands::DemoArgs),
    /// Key directory: `egov keys init` creates a key for every member.
    #[command(subcommand)]
    Keys(commands::KeysCommand),
    /// The State Corporation operator's client.
    #[command(subcommand)]
    Operator(commands::OperatorCommand),
    /// The provider staff's client at the regional gateway ARM.
    #[command(subcommand)]
    Staff(commands::StaffCommand),
    /// An application's state and path, as the State Corporation workstation sees it.
    Status(commands::StatusArgs),
}

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve(args, &cli.addresses).await,
            Command::Demo(args) => commands::demo(args).await,
            Command::Keys(command) => commands::keys(command),
            Command::Operator(command) => commands::operator(command, &cli.addresses).await,
            Command::Staff(command) => commands::staff(command, &cli.addresses).await,
            Command::Status(args) => commands::status(args, &cli.addresses).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
