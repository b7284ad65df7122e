//! `egov fixtures generate`: the same seed gives byte-identical files, another
//! seed others; every IIN is valid; a non-empty folder is refused without
//! --force; and the generated population replays to its expectations.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");
const FILES: [&str; 4] =
    ["individuals.json", "powers_of_attorney.json", "operators.json", "applications/population.json"];

fn egov(args: &[&str]) -> Output {
    Command::new(EGOV).args(args).env_remove("RUST_LOG").output().unwrap()
}

fn generate(out: &Path, seed: &str, extra: &[&str]) -> Output {
    let mut args = vec!["fixtures", "generate", "--count", "300", "--seed", seed, out.to_str().unwrap()];
    args.extend_from_slice(extra);
    egov(&args)
}

fn said(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn read(out: &Path, file: &str) -> Vec<u8> {
    std::fs::read(out.join(file)).unwrap()
}

fn json(out: &Path, file: &str) -> serde_json::Value {
    serde_json::from_slice(&read(out, file)).unwrap()
}

#[test]
fn a_generated_population_is_reproducible_valid_and_replays_as_expected() {
    let temp = tempfile::tempdir().unwrap();
    let (first, second, other) = (temp.path().join("first"), temp.path().join("second"), temp.path().join("other"));

    // The same seed, byte for byte; another seed, other records and scenarios.
    for out in [&first, &second] {
        let output = generate(out, "7", &[]);
        assert!(output.status.success(), "{}", said(&output));
    }
    assert!(generate(&other, "8", &[]).status.success());
    for file in FILES {
        assert_eq!(read(&first, file), read(&second, file), "{file} differs for the same seed");
    }
    assert_ne!(read(&first, "individuals.json"), read(&other, "individuals.json"));
    assert_ne!(read(&first, "applications/population.json"), read(&other, "applications/population.json"));
    assert_eq!(read(&first, "operators.json"), read(&other, "operators.json"));

    // Every IIN is valid, with the birth date and sex of the record.
    let persons = json(&first, "individuals.json")["persons"].as_array().unwrap().clone();
    assert!(persons.len() >= 300, "{} persons", persons.len());
    let mut iins = BTreeSet::new();
    for person in &persons {
        let text = person["iin"].as_str().unwrap();
        let iin = egov_regulation::Iin::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(iin.birth_date().to_string(), person["birth_date"].as_str().unwrap(), "{text}");
        let female = person["gender"]["code"] == "2";
        assert_eq!(iin.sex() == egov_regulation::iin::Sex::Female, female, "{text}");
        assert!(iins.insert(text.to_owned()), "{text} twice");
    }
    let deceased = persons.iter().filter(|p| p["life_status"]["code"] == "3").count();
    assert!(deceased >= 1 && deceased < persons.len() / 10, "{deceased} deceased");
    for power in json(&first, "powers_of_attorney.json")["powers_of_attorney"].as_array().unwrap() {
        for field in ["principal_iin", "attorney_iin"] {
            assert!(iins.contains(power[field].as_str().unwrap()), "{power}");
        }
    }

    // Every route is there, with its full expectation.
    let scenarios = json(&first, "applications/population.json")["scenarios"].as_array().unwrap().clone();
    assert_eq!(scenarios.len(), 300);
    let seen = |field: &str| -> BTreeSet<String> {
        scenarios.iter().filter_map(|s| s["expect"][field].as_str().map(str::to_owned)).collect()
    };
    assert_eq!(
        seen("outcome"),
        BTreeSet::from(["data-unavailable", "permitted", "refused", "rejected"].map(String::from))
    );
    assert_eq!(seen("reason"), BTreeSet::from(["iin.check_digit", "workstation.incomplete_package"].map(String::from)));
    // The four process-4 notices and the counter's signed notice of an incomplete package.
    assert_eq!(seen("notice").len(), 5, "{:?}", seen("notice"));
    let grounds: BTreeSet<String> =
        egov_regulation::Definition::default_definition().refusal_grounds.iter().map(|g| g.code.clone()).collect();
    assert_eq!(seen("refusal_ground"), grounds);
    assert!(scenarios.iter().any(|s| s["expect"]["missed"] == serde_json::json!(["action-2", "service-term"])));
    for scenario in &scenarios {
        let expect = &scenario["expect"];
        let registered = matches!(expect["outcome"].as_str(), Some("permitted" | "refused"));
        assert_eq!(expect["due"].is_string(), registered, "{scenario}");
        assert!(expect["path"].is_array() || expect["reason"] == "iin.check_digit", "{scenario}");
    }

    // Not into a folder that is not empty, unless --force.
    let output = generate(&first, "7", &[]);
    assert!(!output.status.success());
    assert!(said(&output).contains("is not empty"), "{}", said(&output));
    let output = generate(&first, "7", &["--force"]);
    assert!(output.status.success(), "{}", said(&output));
    assert_eq!(read(&first, "applications/population.json"), read(&second, "applications/population.json"));

    // The population replays against an in-process stack to its expectations.
    let applications = first.join("applications");
    let output =
        egov(&["replay", applications.to_str().unwrap(), "--fixtures", first.to_str().unwrap(), "--concurrency", "16"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.lines().any(|line| line == "300 passed, 0 failed"), "{printed}");
}
