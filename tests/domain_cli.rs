//! `egov calendar`, `egov iin` and `egov regulation`, run as the binary.
//! Expected dates are worked out by hand from a real calendar and the rules of
//! docs/calendar.md, not by calling the calendar.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

const EXAMPLE_REGULATION: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/regulations/example-certificate.toml");

fn egov(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_egov")).args(args).env_remove("RUST_LOG").output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The one place that runs `egov calendar ...`: `expected` is the whole
/// standard output of a success (without the final newline), or
/// `"error: FRAGMENT"` for a failure, whose standard error must contain FRAGMENT.
fn check_calendar(args: &[&str], expected: &str) {
    let mut full_args = vec!["calendar"];
    full_args.extend_from_slice(args);
    let output = egov(&full_args);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    match expected.strip_prefix("error: ") {
        Some(fragment) => {
            assert!(!output.status.success(), "{args:?} succeeded: {stdout}");
            assert!(stderr.contains(fragment), "{args:?}: {stderr:?} lacks {fragment:?}");
        }
        None => {
            assert!(output.status.success(), "{args:?} failed: {stderr}");
            assert_eq!(stdout, format!("{expected}\n"), "{args:?}");
        }
    }
}

#[test]
fn add_working_days_counts_the_kazakhstan_calendar() {
    // Nauryz 2026: Sat 21, Sun 22 and Mon 23 March are holidays, Tue 24 and Wed 25 carried over.
    check_calendar(&["add-working-days", "2026-03-20", "1"], "2026-03-26");
    check_calendar(&["add-working-days", "2026-03-19", "2"], "2026-03-26");
    check_calendar(&["add-working-days", "2026-03-20", "3"], "2026-03-30");
    check_calendar(&["add-working-days", "2026-03-23", "1"], "2026-03-26");
    // 8 March 2026 is a Sunday: Monday 9 March is carried over.
    check_calendar(&["add-working-days", "2026-03-06", "1"], "2026-03-10");
    // New Year 2025-2026: Thu 1 and Fri 2 January are holidays, Wed 7 January (Orthodox Christmas) a day off.
    check_calendar(&["add-working-days", "2025-12-31", "1"], "2026-01-05");
    check_calendar(&["add-working-days", "2025-12-30", "3"], "2026-01-06");
    check_calendar(&["add-working-days", "2025-12-31", "3"], "2026-01-08");
    check_calendar(&["add-working-days", "2025-12-31", "0"], "2025-12-31");
    // 2024 transfer: Saturday 4 May worked, Wednesday 8 May off; 7 and 9 May holidays.
    check_calendar(&["add-working-days", "2024-05-03", "1"], "2024-05-04");
    check_calendar(&["add-working-days", "2024-05-06", "1"], "2024-05-10");
    // Outside the calendar's years, or counting past them.
    check_calendar(&["add-working-days", "2030-01-01", "1"], "error: calendar.out_of_range");
    check_calendar(&["add-working-days", "2027-12-30", "2"], "error: outside the calendar's years 2024 to 2027");
    check_calendar(&["add-working-days", "2026-02-30", "1"], "error: invalid value");
}

#[test]
fn is_working_day_answers_yes_or_no() {
    check_calendar(&["is-working-day", "2026-03-23"], "no");
    check_calendar(&["is-working-day", "2026-03-25"], "no");
    check_calendar(&["is-working-day", "2026-03-26"], "yes");
    check_calendar(&["is-working-day", "2026-03-21"], "no");
    check_calendar(&["is-working-day", "2024-05-04"], "yes");
    check_calendar(&["is-working-day", "2024-05-08"], "no");
    check_calendar(&["is-working-day", "2026-01-07"], "no");
    check_calendar(&["is-working-day", "2023-12-29"], "error: calendar.out_of_range");
}

#[test]
fn list_shows_the_days_off_of_a_year() {
    let output = egov(&["calendar", "list", "2026"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let line_of = |date: &str| -> Vec<String> {
        let line = stdout.lines().find(|line| line.starts_with(date)).unwrap_or_else(|| panic!("{date}:\n{stdout}"));
        line.split("  ").map(str::trim).filter(|part| !part.is_empty()).map(str::to_owned).collect()
    };
    for (date, kind) in [
        ("2026-03-21", "holiday"),
        ("2026-03-22", "holiday"),
        ("2026-03-23", "holiday"),
        ("2026-03-24", "carried-over"),
        ("2026-03-25", "carried-over"),
    ] {
        let columns = line_of(date);
        assert_eq!(columns.len(), 3, "{columns:?}");
        assert_eq!(columns[1], kind, "{columns:?}");
        assert!(columns[2].contains("Nauryz"), "{columns:?}");
    }
    assert_eq!(line_of("2026-05-27")[1], "day-off", "Kurban Ait 2026");
    assert!(!stdout.contains("2026-08-30"), "Constitution Day is no longer 30 August in 2026");
    check_calendar(&["list", "2028"], "error: year 2028 is outside the calendar's years");
}

/// The one place that runs `egov iin check`: the exact line it prints and its exit code.
fn check_iin(iin: &str, expected_line: &str, expected_exit_code: i32) {
    let output = egov(&["iin", "check", iin]);
    let printed = text(&output.stdout);
    // A line that ends with a space gives only its beginning (the rest is the day of the check).
    let matches = if expected_line.ends_with(' ') {
        printed.starts_with(expected_line)
    } else {
        printed == format!("{expected_line}\n")
    };
    assert!(matches, "{iin}: {printed:?}, expected {expected_line:?}; {}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(expected_exit_code), "{iin}");
}

#[test]
fn iin_check_tells_valid_from_invalid() {
    check_iin("850715300122", "valid: born 1985-07-15, male", 0);
    check_iin("900101400122", "valid: born 1990-01-01, female", 0);
    check_iin("050212500123", "valid: born 2005-02-12, male", 0);
    check_iin("880101300111", "valid: born 1988-01-01, male", 0);
    check_iin("850715300123", "invalid: iin.check_digit: iin check digit must be 2, found 3", 1);
    check_iin("85071530012", "invalid: iin.length: iin must have 12 digits, found 11", 1);
    check_iin("85071530012x", "invalid: iin.not_digits: iin must contain only the digits 0-9", 1);
    check_iin("850715700122", "invalid: iin.century: iin digit 7 (century and sex) must be 1 to 6, found 7", 1);
    check_iin("851315300122", "invalid: iin.date: iin digits 1-6 are not a real birth date", 1);
    check_iin("880101300100", "invalid: iin.unusable_prefix: iin first 11 digits admit no check digit", 1);
    // Valid digits, but a birth after the day of the check (today, or `--on`).
    check_iin("300101500123", "invalid: iin.future: iin says born 2030-01-01, after ", 1);
    let output = egov(&["iin", "check", "300101500123", "--on", "2031-06-01"]);
    assert_eq!(text(&output.stdout), "valid: born 2030-01-01, male\n", "{}", text(&output.stderr));
}

/// The one place that runs `egov regulation ...`: the exit code, and
/// fragments the standard output (for exit code 0) or both outputs must contain.
fn check_regulation(args: &[&str], expected_exit_code: i32, fragments: &[&str]) -> String {
    let mut full_args = vec!["regulation"];
    full_args.extend_from_slice(args);
    let output = egov(&full_args);
    let stdout = text(&output.stdout);
    let all = if expected_exit_code == 0 { stdout.clone() } else { format!("{stdout}{}", text(&output.stderr)) };
    assert_eq!(output.status.code(), Some(expected_exit_code), "{args:?}: {all}");
    for fragment in fragments {
        assert!(all.contains(fragment), "{args:?}: lacks {fragment:?}\n{all}");
    }
    stdout
}

#[test]
fn regulation_show_draws_every_step() {
    let definition = egov_regulation::Definition::default_definition();
    let step_ids: Vec<&str> = definition.steps().iter().map(|step| step.id.as_str()).collect();
    for format in ["mermaid", "dot", "table"] {
        let stdout = check_regulation(&["show", "--format", format], 0, &step_ids);
        match format {
            "mermaid" => assert!(stdout.starts_with("flowchart TD\n"), "{stdout}"),
            "dot" => assert!(stdout.starts_with("digraph "), "{stdout}"),
            _ => assert!(stdout.contains("condition  provider-specialist"), "{stdout}"),
        }
    }
    check_regulation(&["show"], 0, &["step  ", "effect", "process-7"]);
    check_regulation(
        &["show", "--format", "mermaid", "--regulation", EXAMPLE_REGULATION],
        0,
        &["flowchart TD", "step-a", "check-1", "notice-1", "step-j", "|\"no: declined\"|"],
    );
    check_regulation(&["show", "--format", "png"], 2, &["invalid value 'png'"]);
    check_regulation(&["show", "--regulation", "/nonexistent/regulation.toml"], 1, &["cannot read"]);
}

/// Annex 2, the handbook of business processes: a swimlane diagram with a lane
/// per actor, in each of the three formats; Annex 1 also as SVG.
#[test]
fn regulation_show_annex_2_draws_the_swimlanes() {
    let definition = egov_regulation::Definition::default_definition();
    let mut expected: Vec<&str> = definition.steps().iter().map(|step| step.id.as_str()).collect();
    let titles: Vec<&str> = [
        "provider-office",
        "provider-specialist",
        "provider-executor",
        "provider-head",
        "sc-operator",
        "gateway",
        "regional-arm",
    ]
    .iter()
    .map(|role| definition.actors[*role].en.as_str())
    .collect();
    expected.extend(&titles);
    for (format, start) in [("mermaid", "flowchart LR\n"), ("dot", "digraph "), ("svg", "<svg ")] {
        let stdout = check_regulation(&["show", "--annex", "2", "--format", format], 0, &expected);
        assert!(stdout.starts_with(start), "{stdout}");
        assert!(stdout.contains("hand-over") && stdout.contains("relay"), "{stdout}");
    }
    let svg = check_regulation(&["show", "--annex", "1", "--format", "svg"], 0, &["<svg "]);
    assert_eq!(svg.matches("<g class=\"step").count(), definition.steps().len());
    check_regulation(&["show", "--annex", "2", "--format", "table"], 1, &["--annex 2 is drawn as mermaid, dot or svg"]);
    check_regulation(&["show", "--annex", "3"], 2, &["3 is not in 1..=2"]);
}

/// Every diagram in the docs is generated: a fenced `mermaid`, `dot` or `svg`
/// block follows a comment naming the `egov` command that prints it, and is
/// exactly what that command prints now.
#[test]
fn every_diagram_in_the_docs_is_what_its_command_prints_now() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut docs: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.push(root.join("README.md"));
    docs.sort();
    let mut checked = 0;
    for doc in &docs {
        let content = std::fs::read_to_string(doc).unwrap();
        let lines: Vec<&str> = content.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            let Some(language) = line.strip_prefix("```").filter(|l| ["mermaid", "dot", "svg"].contains(l)) else {
                continue;
            };
            let name = format!("{}:{}", doc.file_name().unwrap().to_string_lossy(), index + 1);
            let command = index
                .checked_sub(1)
                .and_then(|above| lines[above].strip_prefix("<!-- generated by: egov "))
                .and_then(|rest| rest.strip_suffix(" -->"))
                .unwrap_or_else(|| {
                    panic!("{name}: a {language} block without `<!-- generated by: egov ... -->` above it")
                });
            let end = lines[index + 1..].iter().position(|l| *l == "```").unwrap_or_else(|| panic!("{name}: unclosed"));
            let in_doc: String = lines[index + 1..index + 1 + end].iter().map(|l| format!("{l}\n")).collect();
            let args: Vec<&str> = command.split_whitespace().collect();
            let output = egov(&args);
            assert!(output.status.success(), "{name}: egov {command}: {}", text(&output.stderr));
            let printed = text(&output.stdout);
            if printed != in_doc {
                let at = printed.lines().zip(in_doc.lines()).position(|(a, b)| a != b).unwrap_or(0);
                panic!(
                    "{name}: the diagram is not what `egov {command}` prints now (first difference at its line {}: \
                     {:?} in the doc, {:?} printed); paste the command's output in its place",
                    at + 1,
                    in_doc.lines().nth(at),
                    printed.lines().nth(at)
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 2, "the docs carry Annex 1 and Annex 2; {checked} diagram(s) checked");
}

#[test]
fn regulation_check_loads_a_definition_file() {
    check_regulation(&["check", EXAMPLE_REGULATION], 0, &["ok: 13 steps"]);

    let example = std::fs::read_to_string(EXAMPLE_REGULATION).unwrap();
    let broken = example.replacen("next = \"step-b\"", "next = \"step-z\"", 1);
    // The error names the step's `[[step]]` header, the line just before its id.
    let id_line = broken.lines().position(|line| line == "id = \"step-a\"").unwrap() + 1;
    let step_a_header = id_line - 1;
    let directory = tempfile::tempdir().unwrap();
    let broken_path = directory.path().join("broken.toml");
    std::fs::write(&broken_path, broken).unwrap();
    let broken_path = broken_path.to_str().unwrap();
    check_regulation(
        &["check", broken_path],
        1,
        &[
            "invalid: regulation.invalid_definition: ",
            broken_path,
            &format!("definition line {step_a_header}: step step-a: leads to step-z, which is not defined"),
        ],
    );
    check_regulation(&["show", "--regulation", broken_path], 1, &["leads to step-z"]);
    check_regulation(&["check", "/nonexistent/regulation.toml"], 1, &["cannot read /nonexistent/regulation.toml"]);

    // A definition that loads but lacks a step a participant needs is refused as `egov serve` would refuse it.
    let without_issue = example.replacen("effect = \"issue-result\"\n", "", 1);
    assert_ne!(without_issue, example, "the example has an issue-result step");
    let path = directory.path().join("without-issue.toml");
    std::fs::write(&path, without_issue).unwrap();
    check_regulation(
        &["check", path.to_str().unwrap()],
        1,
        &[
            "invalid: regulation.invalid_definition: ",
            "no step has the effect issue-result, which the State Corporation workstation needs",
        ],
    );
}
