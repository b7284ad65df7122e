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
    let mut operator = operator;
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
                // The applicant takes a ticket (the same one again that day), then is served in its turn.
                let served = match operator.take_ticket(&id).await {
                    Ok(_) => operator.issue(&id).await.map(|_| ()),
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
