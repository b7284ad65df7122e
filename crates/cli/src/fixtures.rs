//! `egov fixtures`: a generated population for load and soak runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

/// `egov fixtures`: registry records, operators and scenarios.
#[derive(clap::Subcommand)]
pub enum FixturesCommand {
    /// Writes a valid, varied population into OUT: individuals.json, powers_of_attorney.json,
    /// operators.json and applications/population.json with COUNT scenarios over every route,
    /// each with its full expectation. The same COUNT and SEED give byte-identical files.
    Generate {
        /// How many scenarios.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        count: u64,
        /// The seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The folder to write into; created if missing, refused if not empty unless --force.
        out: PathBuf,
        /// Write into a folder that is not empty (the generated files are replaced, others are left).
        #[arg(long)]
        force: bool,
    },
}

pub fn fixtures(command: FixturesCommand) -> anyhow::Result<ExitCode> {
    match command {
        FixturesCommand::Generate { count, seed, out, force } => {
            let count = usize::try_from(count).context("--count is too large")?;
            if !force
                && out.is_dir()
                && std::fs::read_dir(&out).with_context(|| format!("cannot read {}", out.display()))?.next().is_some()
            {
                bail!("{} is not empty: choose an empty folder, or --force to write into it anyway", out.display());
            }
            let population = egov_replay::generate(count, seed).context("cannot generate the population")?;
            for (path, text) in population.files() {
                let file = out.join(path);
                if let Some(folder) = file.parent() {
                    std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
                }
                std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
            }
            println!(
                "wrote {count} scenarios, {} persons and {} powers of attorney to {} (seed {seed}):",
                population.persons,
                population.powers,
                out.display()
            );
            for (route, scenarios) in &population.routes {
                println!("  {scenarios:>7}  {route}");
            }
            println!("replay them: egov replay {} --fixtures {}", out.join("applications").display(), out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
