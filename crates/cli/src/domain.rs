//! The domain questions the simulator answers offline: the working-day
//! calendar, the IIN, and the process definition (drawn or checked).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use chrono::NaiveDate;
use egov_regulation::{Calendar, Definition, Iin, render};

/// `egov calendar`: the Kazakhstan working-day calendar.
#[derive(clap::Subcommand)]
pub enum CalendarCommand {
    /// The N-th working day after DATE (DATE itself not counted), as YYYY-MM-DD.
    AddWorkingDays {
        /// The date to count from, YYYY-MM-DD.
        date: NaiveDate,
        /// How many working days to add.
        days: u32,
    },
    /// Whether DATE is a working day: prints yes or no.
    IsWorkingDay {
        /// The date, YYYY-MM-DD.
        date: NaiveDate,
    },
    /// The days off of YEAR (and the weekend days made working days), one a line: date, kind, reason.
    List {
        /// The year, e.g. 2026.
        year: i32,
    },
}

/// `egov iin`: the individual identification number.
#[derive(clap::Subcommand)]
pub enum IinCommand {
    /// Checks an IIN: prints its birth date and sex, or why it is invalid (exit code 1).
    Check {
        /// The 12 digits.
        iin: String,
        /// The day of the check (YYYY-MM-DD): the person must be born by then; default: today in Astana.
        #[arg(long)]
        on: Option<NaiveDate>,
    },
}

/// How `egov regulation show` draws the definition.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RegulationFormat {
    /// A Mermaid flowchart (the block diagram of Annex 1).
    Mermaid,
    /// A Graphviz graph (`dot -Tsvg`).
    Dot,
    /// An SVG picture.
    Svg,
    /// A plain-text table of the steps.
    Table,
}

/// `egov regulation`: the process definition.
#[derive(clap::Subcommand)]
pub enum RegulationCommand {
    /// Draws the process definition (the embedded one unless --regulation is given).
    Show {
        #[arg(long, value_enum, default_value = "table")]
        format: RegulationFormat,
        /// The annex to draw: 1, the block diagram; 2, the handbook of business
        /// processes (a swimlane diagram of the steps between the actors).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
        annex: u8,
        /// A process definition file to draw instead of the embedded one.
        #[arg(long)]
        regulation: Option<PathBuf>,
    },
    /// Loads a process definition file and reports whether it is valid (exit code 1 if not).
    Check {
        /// The process definition file (TOML).
        file: PathBuf,
    },
}

pub fn calendar(command: CalendarCommand) -> anyhow::Result<ExitCode> {
    let kazakhstan = Calendar::kazakhstan();
    let with_code = |error: egov_regulation::calendar::CalendarError| anyhow!("{}: {error}", error.code());
    match command {
        CalendarCommand::AddWorkingDays { date, days } => {
            let result = kazakhstan.add_working_days(date, days).map_err(with_code)?;
            println!("{result}");
        }
        CalendarCommand::IsWorkingDay { date } => {
            let working = kazakhstan.is_working_day(date).map_err(with_code)?;
            println!("{}", if working { "yes" } else { "no" });
        }
        CalendarCommand::List { year } => {
            let days_off = kazakhstan.days_off(year).map_err(with_code)?;
            let kind_width = days_off.iter().map(|day| day.kind.as_str().len()).max().unwrap_or(0);
            for day in days_off {
                println!("{}  {:<kind_width$}  {}", day.date, day.kind.as_str(), day.reason);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn today_in_astana() -> anyhow::Result<NaiveDate> {
    use egov_runtime::Clock as _;
    let now = egov_regulation::instance::to_local(Calendar::kazakhstan(), egov_runtime::SystemClock.now_ms())
        .context("the clock is outside the calendar's range")?;
    Ok(now.date_naive())
}

pub fn iin(command: IinCommand) -> anyhow::Result<ExitCode> {
    match command {
        IinCommand::Check { iin, on } => match Iin::parse_on(&iin, on.map_or_else(today_in_astana, Ok)?) {
            Ok(valid) => {
                println!("valid: born {}, {}", valid.birth_date(), valid.sex());
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                println!("invalid: {}: {error}", error.code());
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

pub fn regulation(command: RegulationCommand) -> anyhow::Result<ExitCode> {
    match command {
        RegulationCommand::Show { format, annex, regulation } => {
            let loaded;
            let definition = match &regulation {
                None => Definition::default_definition(),
                Some(path) => {
                    let text = read_definition_text(path)?;
                    loaded = Definition::from_toml(&text)
                        .map_err(|error| anyhow!("{}: {}: {error}", error.code(), path.display()))?;
                    &loaded
                }
            };
            let rendering = match (annex, format) {
                (2, RegulationFormat::Mermaid) => egov_regulation::swimlane::mermaid(definition),
                (2, RegulationFormat::Dot) => egov_regulation::swimlane::dot(definition),
                (2, RegulationFormat::Svg) => egov_regulation::swimlane::svg(definition),
                (2, RegulationFormat::Table) => bail!("--annex 2 is drawn as mermaid, dot or svg, not as a table"),
                (_, RegulationFormat::Mermaid) => render::mermaid(definition),
                (_, RegulationFormat::Dot) => render::dot(definition),
                (_, RegulationFormat::Svg) => render::svg(definition, &[], None, "en"),
                (_, RegulationFormat::Table) => {
                    format!("{}\n{}", render::summary(definition), render::table(definition))
                }
            };
            print!("{rendering}");
            Ok(ExitCode::SUCCESS)
        }
        RegulationCommand::Check { file } => {
            let text = read_definition_text(&file)?;
            // Loaded, then bound by every participant that runs it, as `egov serve` would.
            let checked = Definition::from_toml(&text)
                .and_then(|definition| egov_stack::check_definition(&definition).map(|()| definition));
            match checked {
                Ok(definition) => {
                    println!("ok: {} steps", definition.steps().len());
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    println!("invalid: {}: {}: {error}", error.code(), file.display());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn read_definition_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
