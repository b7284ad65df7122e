//! A driver of applications that survives its participants dying: it reads an
//! application's state, does the next step, and on any failure looks again
//! (the crash and replica kill tests).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use egov_client::{OperatorClient, StaffClient};
use egov_envelope::Signer;
use egov_runtime::reason_of;

/// splitmix64: a small seeded generator, so a failing run can be replayed.
pub struct Random(pub u64);

impl Random {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Drives one application to its end through any number of crashes: it
/// reads the state, does the next step, and on any failure looks again.
pub async fn drive(
    id: String,
    approve: bool,
    operator: OperatorClient,
    staff: StaffClient,
    staff_keys: Arc<HashMap<String, Signer>>,
    acknowledged: Arc<AtomicUsize>,
) -> String {
    let service = egov_regulation::Definition::default_definition().service.code.clone();
    let documents: Vec<_> = super::documents(&["application-form", "identity-document"])
        .iter()
        .map(egov_client::DocumentPlan::to_proto)
        .collect();
    // Its applicant takes the ticket at a centre of its own: drivers running at once never hold each
    // other's tickets.
    let mut operator = operator.with_centre(id.clone());
    let started = Instant::now();
    let mut submitted = false;
    // Where it was last seen, and the last refusal, for a test that does not finish.
    let mut seen = String::new();
    let mut last_error = String::new();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "application {id} did not finish: last seen {seen}; last refusal {last_error}"
        );
        let pause = || tokio::time::sleep(Duration::from_millis(20));
        let application = match operator.application(&id).await {
            Ok(application) => Some(application),
            Err(status) if status.code() == tonic::Code::NotFound => None,
            Err(_) => {
                pause().await;
                continue;
            }
        };
        let Some(application) = application else {
            if let Err(status) = operator.open_form(&id, &service, "850715300122", None).await {
                if reason_of(&status) == Some("workstation.bad_session") {
                    let _ = operator.login("operator-1", "operator-1-password").await;
                }
                pause().await;
            }
            continue;
        };
        if !application.outcome.is_empty() {
            return application.outcome;
        }
        seen = format!("at {} (registration {:?})", application.current_step, application.registration_id);
        match application.current_step.as_str() {
            "process-5" => match operator.submit(&id, documents.clone()).await {
                Ok(_) => {
                    if !submitted {
                        submitted = true;
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Err(status) => {
                    if reason_of(&status) == Some("workstation.bad_session") {
                        let _ = operator.login("operator-1", "operator-1-password").await;
                    }
                    pause().await;
                }
            },
            "process-9" => {
                // The applicant takes a ticket (the same one again that day), the operator calls the next
                // ticket (the one called to them before again, until served), then serves it.
                let served = match operator.take_ticket(&id).await {
                    Ok(_) => operator.call_next().await.map(|_| ()),
                    Err(status) => Err(status),
                };
                let served = match served {
                    Ok(()) => operator.issue(&id).await.map(|_| ()),
                    Err(status) => Err(status),
                };
                if let Err(status) = served {
                    last_error = status.to_string();
                    // A login session is not flushed: one lost in a crash means logging in again.
                    if reason_of(&status) == Some("workstation.bad_session") {
                        let _ = operator.login("operator-1", "operator-1-password").await;
                    }
                    pause().await;
                }
            }
            _ if !application.registration_id.is_empty() => {
                let Ok(registration) = staff.registration(&application.registration_id).await else {
                    pause().await;
                    continue;
                };
                let Some(signer) = staff_keys.get(&registration.next_actor) else {
                    pause().await; // the result is on its way to the State Corporation
                    continue;
                };
                let step = registration.application.as_ref().unwrap().current_step.clone();
                let outcome = match step.as_str() {
                    // Action 3 begins with the executor's hand-over, then the head signs.
                    "action-3" if registration.next_actor == "provider-head" => staff.sign(signer, &registration).await,
                    // Process 8: the specialist who decided condition 2 signs the refusal the ARM formed.
                    "process-8" => staff.sign(signer, &registration).await,
                    "condition-2" | "action-2" if approve => {
                        staff.act(signer, &registration, &step, egov_proto::Decision::Yes, "").await
                    }
                    "condition-2" => {
                        staff.act(signer, &registration, &step, egov_proto::Decision::No, "incomplete-package").await
                    }
                    _ => staff.act(signer, &registration, &step, egov_proto::Decision::Unspecified, "").await,
                };
                if let Err(status) = outcome {
                    last_error = status.to_string();
                    pause().await;
                }
            }
            _ => pause().await,
        }
    }
}

/// The seed of a test's random moments: `EGOV_CRASH_SEED`, else the time; printed, so a run can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("EGOV_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::UNIX_EPOCH.elapsed().map(|d| d.as_nanos() as u64).unwrap_or(1));
    eprintln!("{test} seed: {seed} (EGOV_CRASH_SEED={seed} replays it)");
    seed
}

/// Applications being driven, each with the outcome it must reach.
pub struct Drivers {
    pub expected: HashMap<String, &'static str>,
    pub acknowledged: Arc<AtomicUsize>,
    drivers: tokio::task::JoinSet<(String, String)>,
}

impl Drivers {
    /// Starts `count` applications named `PREFIX-N`, three in four approved, on the same clients.
    pub fn start(
        prefix: &str,
        count: usize,
        random: &mut Random,
        operator: &OperatorClient,
        staff: &StaffClient,
        staff_keys: &Arc<HashMap<String, Signer>>,
    ) -> Drivers {
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let mut expected = HashMap::new();
        let mut drivers = tokio::task::JoinSet::new();
        for n in 0..count {
            let id = format!("{prefix}-{n}");
            let approve = random.below(4) != 0;
            expected.insert(id.clone(), if approve { "permitted" } else { "refused" });
            let (operator, staff, staff_keys, acknowledged) =
                (operator.clone(), staff.clone(), Arc::clone(staff_keys), Arc::clone(&acknowledged));
            drivers.spawn(async move {
                let outcome = drive(id.clone(), approve, operator, staff, staff_keys, acknowledged).await;
                (id, outcome)
            });
        }
        Drivers { expected, acknowledged, drivers }
    }

    /// Waits for every application to end, and checks that each ended as expected.
    pub async fn finish(mut self, seed: u64) -> HashMap<String, &'static str> {
        while let Some(result) = self.drivers.join_next().await {
            let (id, outcome) = result.unwrap_or_else(|e| panic!("seed {seed}: a driver failed: {e}"));
            assert_eq!(outcome, self.expected[&id], "seed {seed}: {id}");
        }
        self.expected
    }
}

/// Each application registered once at the regional ARM (its store is `regional`).
pub fn assert_registered_once(regional: &egov_store::Store, expected: &HashMap<String, &'static str>, seed: u64) {
    #[derive(serde::Deserialize)]
    struct Registered {
        application_id: String,
    }
    let mut registrations: HashMap<String, usize> = HashMap::new();
    for (_, record) in regional.scan::<Registered>("registration/").unwrap() {
        *registrations.entry(record.value.application_id).or_default() += 1;
    }
    for id in expected.keys() {
        assert_eq!(registrations.get(id), Some(&1), "seed {seed}: {id} registered {:?} times", registrations.get(id));
    }
}

/// Each application handed out once at the workstation (its store is `workstation`).
pub fn assert_handed_out_once(workstation: &egov_store::Store, seed: u64) {
    #[derive(serde::Deserialize)]
    struct Application {
        instance: egov_regulation::Instance,
    }
    for (key, record) in workstation.scan::<Application>("application/").unwrap() {
        let issued = record.value.instance.path.iter().filter(|step| step.step_id == "process-9").count();
        assert_eq!(issued, 1, "seed {seed}: {key} handed out {issued} times");
    }
}
