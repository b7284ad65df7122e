//! The one way the clients send a call: again, unchanged, while it fails on
//! the way to the participant (the participant restarting, a connection
//! refused, reset or told to go away, no answer in time), within a bound.
//!
//! A signed call is sent again as the very same envelope (the same message id
//! and bytes): a participant that took it the first time answers the resend
//! with the answer it remembered (`docs/envelope.md`, idempotency), so a step
//! is done once however often it is sent. A refusal with a reason code is the
//! participant's answer and is never sent again, unless its code says the
//! failure may pass (`egov_runtime::status::is_retryable`).

use std::future::Future;
use std::time::Duration;

use tonic::Status;

/// How patiently a client sends one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persistence {
    /// How long after the first send the call may still be sent again; past
    /// it, the last failure is the answer. Zero: sent once.
    pub within: Duration,
    /// How long one send waits for its answer before it counts as failed on
    /// the way (an open form waits for the look-ups, which the gateway retries).
    pub per_send: Duration,
}

impl Persistence {
    /// 30 s: a participant's restart (a graceful stop drains within its
    /// `--drain-seconds`, 10 by default, and a start takes well under a second).
    pub const DEFAULT_WITHIN: Duration = Duration::from_secs(30);

    /// Resends for `within` after the first send.
    pub fn within(within: Duration) -> Persistence {
        Persistence { within, ..Persistence::default() }
    }
}

impl Default for Persistence {
    fn default() -> Persistence {
        Persistence { within: Persistence::DEFAULT_WITHIN, per_send: Duration::from_secs(60) }
    }
}

/// The first pause between two sends, doubled after each, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Sends `call` (each time a fresh future over the same request) until it is
/// answered, refused for good, or `persistence.within` has passed since the
/// first send. The failure given up on says, after its own message (the
/// reason code stays first), how often and for how long it was sent.
pub async fn send<A, F, Fut>(persistence: Persistence, mut call: F) -> Result<A, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<A>, Status>>,
{
    let started = tokio::time::Instant::now();
    let deadline = started + persistence.within;
    let mut pause = FIRST_PAUSE;
    let mut sends = 0u32;
    loop {
        sends += 1;
        let status = match tokio::time::timeout(persistence.per_send, call()).await {
            Ok(Ok(answer)) => return Ok(answer.into_inner()),
            Ok(Err(status)) => status,
            Err(_) => Status::deadline_exceeded(format!("no answer within {:?}", persistence.per_send)),
        };
        if !egov_runtime::status::is_retryable(&status) {
            return Err(status);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(given_up(status, sends, now - started));
        }
        // The last send at the bound.
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// `status`, with how often and for how long the call was sent when it was
/// sent more than once; its code and metadata (the reason) unchanged, its
/// causes (a transport error's) in its message.
fn given_up(status: Status, sends: u32, during: Duration) -> Status {
    if sends == 1 {
        return status;
    }
    let mut message = status.message().to_owned();
    let mut cause = std::error::Error::source(&status);
    while let Some(error) = cause {
        let text = error.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        cause = error.source();
    }
    message.push_str(&format!(" (sent {sends} times over {:.1} s, in vain)", during.as_secs_f64()));
    Status::with_metadata(status.code(), message, status.metadata().clone())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn refused(reason: &'static str, code: tonic::Code) -> Status {
        egov_runtime::Refusal::new(code, reason, "no").into_status()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_on_the_way_is_sent_again_until_it_passes() {
        let sends = AtomicU32::new(0);
        let answer =
            send(Persistence::default(), || {
                let n = sends.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 { Err(Status::unavailable("tcp connect error")) } else { Ok(tonic::Response::new(n)) }
                }
            })
            .await;
        assert_eq!(answer.unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_participants_refusal_is_sent_once_and_a_passing_one_again() {
        let sends = AtomicU32::new(0);
        let answer: Result<(), Status> = send(Persistence::default(), || {
            sends.fetch_add(1, Ordering::SeqCst);
            async { Err(refused("workstation.application_exists", tonic::Code::AlreadyExists)) }
        })
        .await;
        assert_eq!(egov_runtime::reason_of(&answer.unwrap_err()), Some("workstation.application_exists"));
        assert_eq!(sends.load(Ordering::SeqCst), 1);
        let sends = AtomicU32::new(0);
        let answer = send(Persistence::default(), || {
            let n = sends.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(refused("store.unavailable", tonic::Code::Unavailable))
                } else {
                    Ok(tonic::Response::new(()))
                }
            }
        })
        .await;
        assert!(answer.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_bound_the_last_failure_is_the_answer_and_says_so() {
        let started = tokio::time::Instant::now();
        let sends = AtomicU32::new(0);
        let answer: Result<(), Status> = send(Persistence::within(Duration::from_secs(5)), || {
            sends.fetch_add(1, Ordering::SeqCst);
            async { Err(refused("store.unavailable", tonic::Code::Unavailable)) }
        })
        .await;
        let status = answer.unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(elapsed, Duration::from_secs(5), "the last send at the bound");
        assert_eq!(egov_runtime::reason_of(&status), Some("store.unavailable"), "the reason stays");
        assert!(status.message().starts_with("store.unavailable: no"), "{}", status.message());
        let n = sends.load(Ordering::SeqCst);
        assert!(status.message().contains(&format!("sent {n} times")), "{}", status.message());
        let once: Result<(), Status> = send(Persistence::within(Duration::ZERO), || {
            sends.fetch_add(1, Ordering::SeqCst);
            async { Err(Status::unavailable("connection refused")) }
        })
        .await;
        assert_eq!(once.unwrap_err().message(), "connection refused", "sent once: as it came");
    }
}
