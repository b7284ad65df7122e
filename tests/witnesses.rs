//! Witnesses across processes (`docs/storage.md`, "Witnesses"): the gateway, the regional
//! gateway ARM and the State Corporation workstation, each an `egov serve` of its own on a data
//! directory of its own, cosign each other's checkpoints over `egov.v1.WitnessService`; the
//! cosignatures travel in `egov audit prove` bundles, and a split view shown to a witness over
//! the call is refused, kept and reported by `egov audit verify`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use common::in_person;
use egov_client::{OperatorClient, Patience, StaffClient};
use egov_proto::AddCheckpointRequest;
use egov_proto::witness_service_client::WitnessServiceClient;
use egov_runtime::tls::{TlsDir, connect};
use egov_runtime::{KeyDir, SystemClock, Topology};

const EGOV: &str = env!("CARGO_BIN_EXE_egov");

/// Where `role` keeps its data: a directory of its own (its store in `ROLE/` under it).
fn data_of(temp: &Path, role: &str) -> PathBuf {
    temp.join(format!("data-{role}"))
}

/// `egov`, over mTLS (`--tls`, the certificates in `keys/tls`) or not.
fn egov(tls: bool) -> Command {
    let mut command = Command::new(EGOV);
    command.env_remove("EGOV_TLS").env_remove("EGOV_CONFIG");
    if tls {
        command.arg("--tls");
    }
    command
}

/// Starts `egov serve` for one role on its own data directory, checkpoints every 200 ms, and
/// waits for it to say it is ready.
fn serve(role: &str, topology: &Topology, temp: &Path, tls: bool) -> common::Served {
    let mut command = egov(tls);
    command
        .args(["serve", "--roles", role, "--checkpoint-ms", "200", "--console", "off"])
        .arg("--data")
        .arg(data_of(temp, role))
        .arg("--keys")
        .arg(temp.join("keys"))
        .arg("--fixtures")
        .arg(common::fixtures_dir())
        .args(["--workstation", &topology.workstation, "--gateway", &topology.gateway])
        .args(["--individuals", &topology.individuals, "--notary", &topology.notary, "--regional", &topology.regional])
        .stderr(Stdio::null());
    let served = common::Served::start(command);
    let listening = served.said.iter().find(|line| line.starts_with(&format!("listening {role} "))).unwrap();
    assert_eq!(listening.ends_with("(mTLS)"), tls, "{:?}", served.said);
    served
}

/// The member ids whose cosignatures verify on `role`'s latest checkpoint as its own store
/// keeps it (the cosignatures its witnesses handed back over the call), and the checkpoint's size.
fn cosigners_of_latest(
    temp: &Path,
    role: &str,
    member: &str,
    trust: &egov_envelope::TrustRegistry,
) -> (u64, Vec<String>) {
    let (store, _) = egov_store::Store::open_read_only(&data_of(temp, role).join(role)).unwrap();
    let Some((size, _)) = store.latest_checkpoint().unwrap() else { return (0, Vec::new()) };
    let Some(note) = store.cosigned_checkpoint(size).unwrap() else { return (size, Vec::new()) };
    let witnesses: Vec<_> = trust.members().iter().flat_map(|m| trust.cosigner_keys(&m.id)).collect();
    let origin = egov_envelope::log_origin(member);
    let opened = trust
        .log_keys(member)
        .into_iter()
        .find_map(|(_, key)| egov_tlog::open_checkpoint(note.as_bytes(), &origin, &key, &witnesses).ok())
        .unwrap();
    (size, opened.cosignatures().iter().map(|c| c.name.trim_start_matches("egov/").to_owned()).collect())
}

fn printed(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_in_separate_processes_witness_each_other_and_refuse_a_split_view() {
    witnessed_across_processes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_in_separate_processes_witness_each_other_over_mtls() {
    witnessed_across_processes(true).await;
}

/// The gateway, the ARM and the workstation (and the registries) each in a process and a data
/// directory of its own, calling each other over mTLS or not.
async fn witnessed_across_processes(tls: bool) {
    let temp = tempfile::tempdir().unwrap();
    let init = egov(tls).args(["keys", "init", "--dir"]).arg(temp.path().join("keys")).output().unwrap();
    assert!(init.status.success(), "{}", printed(&init));
    let topology = common::free_topology();
    // Each killed when the test ends, however it ends.
    let mut children = Vec::new();
    for role in ["individuals", "notary", "gateway", "regional", "workstation"] {
        children.push(serve(role, &topology, temp.path(), tls));
    }
    let keys = KeyDir::new(temp.path().join("keys"));
    let trust = keys.trust().unwrap();
    let certificates = tls.then(|| TlsDir::of(&keys));
    let channel = |address: &str, member: &str| connect(address, certificates.as_ref(), member).unwrap();
    let clock = Arc::new(SystemClock);
    let mut operator = OperatorClient::new(
        channel(&topology.workstation, "operator-1"),
        keys.signer_in(&trust, "operator-1").unwrap(),
        clock.clone(),
    );
    operator.login("operator-1", "operator-1-password").await.unwrap();
    let staff = StaffClient::connect(&topology.regional, certificates.as_ref(), "rshep-astana", clock).unwrap();
    let staff_keys = egov_client::staff_keys(&keys, &trust).unwrap();
    let route = egov_client::Route {
        definition: egov_regulation::Definition::default_definition(),
        operator: &operator,
        staff: &staff,
        staff_keys: &staff_keys,
        patience: Patience::default(),
        pacer: &egov_client::RealTime,
    };
    let driven = egov_client::drive(&route, "witnessed-1", &in_person("850715300122")).await.unwrap();
    assert_eq!(driven.application.outcome, "permitted");

    // Each log's latest checkpoint, as its own store keeps it, carries its witnesses' cosignatures,
    // made in the other processes and handed back over the call.
    let (gateway, regional, workstation) = ("egov-gateway", "rshep-astana", "sc-workstation");
    let expected = [
        ("gateway", gateway, vec![regional, workstation]),
        ("regional", regional, vec![gateway]),
        ("workstation", workstation, vec![gateway]),
    ];
    // Every log cosigned at once, and no new checkpoint for a while (the application's last
    // deliveries are logged): what is killed below is what the bundles show.
    let all_cosigned = || -> Option<Vec<u64>> {
        let mut sizes = Vec::new();
        for (role, member, witnesses) in &expected {
            let (size, cosigners) = cosigners_of_latest(temp.path(), role, member, &trust);
            if size == 0 || !witnesses.iter().all(|w| cosigners.iter().any(|c| c == w)) {
                return None;
            }
            sizes.push(size);
        }
        Some(sizes)
    };
    let sizes = common::eventually("every log's latest checkpoint cosigned by its witnesses, for 600 ms", async || {
        let before = all_cosigned()?;
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        (all_cosigned()? == before).then_some(before)
    })
    .await;

    // Over the call, as a log would: a stale old size gets the witness's size back.
    let note_signer = keys.signer_in(&trust, gateway).unwrap().note_signer();
    let mut witness = WitnessServiceClient::new(channel(&topology.workstation, gateway));
    let probe = egov_tlog::Checkpoint::new(&egov_envelope::log_origin(gateway), 1, [7; 32]).sign(&note_signer).unwrap();
    let request = |old_size: u64, note: &egov_tlog::SignedNote| AddCheckpointRequest {
        old_size,
        consistency_proof: Vec::new(),
        checkpoint: note.to_string().into_bytes(),
    };
    let stale = witness.add_checkpoint(request(0, &probe)).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&stale), Some("witness.conflict"), "{stale:?}");
    let known: u64 = egov_runtime::status::text_of(&stale, egov_runtime::witness::WITNESS_SIZE_KEY)
        .expect("the witness's size")
        .parse()
        .unwrap();
    assert!(known > 0 && stale.message().contains(&known.to_string()), "{stale:?}");
    // A split view: another root at the size the workstation cosigned, signed with the gateway's
    // real key. Refused with its code, the evidence kept.
    let forged =
        egov_tlog::Checkpoint::new(&egov_envelope::log_origin(gateway), known, [9; 32]).sign(&note_signer).unwrap();
    let split = witness.add_checkpoint(request(known, &forged)).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&split), Some("witness.split_view"), "{split:?}");
    // A note signed by no key of the log's, and one of a log the workstation does not follow.
    let stranger = egov_tlog::NoteSigner::ed25519(
        &egov_envelope::log_origin(gateway),
        ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
    )
    .unwrap();
    let unsigned =
        egov_tlog::Checkpoint::new(&egov_envelope::log_origin(gateway), known, [9; 32]).sign(&stranger).unwrap();
    let refused = witness.add_checkpoint(request(known, &unsigned)).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&refused), Some("witness.bad_signature"), "{refused:?}");
    let regional_signer = keys.signer_in(&trust, regional).unwrap().note_signer();
    let other_log =
        egov_tlog::Checkpoint::new(&egov_envelope::log_origin(regional), 1, [9; 32]).sign(&regional_signer).unwrap();
    let refused = witness.add_checkpoint(request(0, &other_log)).await.unwrap_err();
    assert_eq!(egov_runtime::reason_of(&refused), Some("witness.unknown_log"), "{refused:?}");

    // The processes end (killed: nothing more is published); the stores are read as they are.
    for served in &mut children {
        served.child.kill().unwrap();
        served.child.wait().unwrap();
    }

    // A bundle of each participant's own store: its checkpoint carries the cosignatures of the
    // witnesses in the other processes, and `verify-bundle` checks them with the trust registry.
    let trust_file = temp.path().join("keys/trust.toml");
    let prove_and_verify = |data: &Path, name: &str| -> String {
        let bundle = temp.path().join(format!("{name}.json"));
        let output = egov(false)
            .args(["audit", "prove", "witnessed-1", "--out"])
            .arg(&bundle)
            .arg("--data")
            .arg(data)
            .arg("--keys")
            .arg(temp.path().join("keys"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", printed(&output));
        let output =
            egov(false).args(["audit", "verify-bundle"]).arg(&bundle).arg("--trust").arg(&trust_file).output().unwrap();
        let said = printed(&output);
        assert!(output.status.success() && said.contains("verify-bundle: ok"), "{said}");
        said
    };
    for (role, _, witnesses) in &expected {
        let said = prove_and_verify(&data_of(temp.path(), role), role);
        for witness in witnesses {
            assert!(said.contains(&format!("cosigned by the witness egov/{witness}")), "{role}: {said}");
        }
    }
    // All three logs in one bundle.
    let all = temp.path().join("all");
    std::fs::create_dir(&all).unwrap();
    for role in ["gateway", "regional", "workstation"] {
        std::os::unix::fs::symlink(data_of(temp.path(), role).join(role), all.join(role)).unwrap();
    }
    let said = prove_and_verify(&all, "all");
    assert!(said.contains("gateway (") && said.contains("regional (") && said.contains("workstation ("), "{said}");

    // The evidence of the split view, in the workstation's store, is reported for the gateway.
    let output = egov(false)
        .args(["audit", "verify", "--data"])
        .arg(&all)
        .arg("--keys")
        .arg(temp.path().join("keys"))
        .output()
        .unwrap();
    let said = printed(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("gateway: BROKEN: split view: the log showed the workstation a checkpoint"), "{said}");
    let (workstation_store, _) =
        egov_store::Store::open_read_only(&data_of(temp.path(), "workstation").join("workstation")).unwrap();
    let evidence: Vec<(String, egov_store::Versioned<Vec<String>>)> =
        workstation_store.scan(egov_store::SPLIT_PREFIX).unwrap();
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    let log_key = trust.log_keys(gateway).pop().unwrap().1;
    let view = egov_tlog::SplitView {
        origin: egov_envelope::log_origin(gateway),
        size: known,
        notes: [evidence[0].1.value[0].clone(), evidence[0].1.value[1].clone()],
    };
    view.verify(&log_key).unwrap();
    println!("sizes: {sizes:?}; the workstation had cosigned size {known} of the gateway's log");
}
