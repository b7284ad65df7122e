//! Fault injection: a tower layer that delays calls, answers some with
//! `UNAVAILABLE`, lets some hang past the caller's deadline, or takes the
//! participant down for a while. Set with `egov serve --fault` or `egov replay --fault`.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::around::{Around, BoxFuture, Inner, Response, Wrapped};

use crate::counters::Counters;

/// What goes wrong, and how often.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Added to every call.
    pub latency: Duration,
    /// The share of calls answered `UNAVAILABLE` (0 to 1).
    pub unavailable: f64,
    /// The share of calls that hang for a minute, so the caller's deadline passes.
    pub timeout: f64,
    /// Down (every call `UNAVAILABLE`) from this long after start, for this long.
    pub down: Option<(Duration, Duration)>,
}

fn duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    text.strip_suffix('s').and_then(|s| s.trim().parse::<f64>().ok()).filter(|s| *s >= 0.0).map(Duration::from_secs_f64)
}

impl FromStr for Faults {
    type Err = String;

    /// `latency=50ms,unavailable=0.2,timeout=0.01,down=1s+3s`
    fn from_str(text: &str) -> Result<Faults, String> {
        let mut faults = Faults::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| format!("fault {part:?} is not NAME=VALUE"))?;
            let share = |value: &str| {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (0.0..=1.0).contains(s))
                    .ok_or_else(|| format!("{name}={value}: a share from 0 to 1"))
            };
            match name {
                "latency" => {
                    faults.latency =
                        duration(value).ok_or_else(|| format!("latency={value}: a duration like 50ms or 2s"))?
                }
                "unavailable" => faults.unavailable = share(value)?,
                "timeout" => faults.timeout = share(value)?,
                "down" => {
                    let (from, length) =
                        value.split_once('+').ok_or_else(|| format!("down={value}: START+LENGTH, like 1s+3s"))?;
                    let from = duration(from).ok_or_else(|| format!("down={value}: START+LENGTH, like 1s+3s"))?;
                    let length = duration(length).ok_or_else(|| format!("down={value}: START+LENGTH, like 1s+3s"))?;
                    faults.down = Some((from, length));
                }
                other => return Err(format!("unknown fault {other:?}: latency, unavailable, timeout or down")),
            }
        }
        Ok(faults)
    }
}

/// The layer; calls whose path starts with one of `paths` are subject to the faults.
#[derive(Debug, Clone)]
pub struct FaultLayer {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    faults: Faults,
    paths: Vec<String>,
    started: Instant,
    random: Mutex<u64>,
    counters: Arc<Counters>,
}

impl FaultLayer {
    pub fn new(faults: Faults, paths: Vec<String>, seed: u64, counters: Arc<Counters>) -> FaultLayer {
        FaultLayer {
            inner: Arc::new(Shared { faults, paths, started: Instant::now(), random: Mutex::new(seed), counters }),
        }
    }
}

enum Decision {
    Pass,
    Unavailable(&'static str),
    Hang,
}

impl Shared {
    /// A number in [0, 1) from a seeded splitmix64.
    fn draw(&self) -> f64 {
        let Ok(mut state) = self.random.lock() else { return 1.0 };
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn decide(&self, path: &str) -> Decision {
        if !self.paths.iter().any(|prefix| path.starts_with(prefix.as_str())) {
            return Decision::Pass;
        }
        let decision = if let Some((from, length)) = self.faults.down
            && (from..from + length).contains(&self.started.elapsed())
        {
            Decision::Unavailable("down for a while")
        } else if self.draw() < self.faults.unavailable {
            Decision::Unavailable("unavailable")
        } else if self.draw() < self.faults.timeout {
            Decision::Hang
        } else {
            Decision::Pass
        };
        if !matches!(decision, Decision::Pass) {
            self.counters.add("fault.injected", 1);
        }
        decision
    }
}

impl<S> tower_layer::Layer<S> for FaultLayer {
    type Service = Wrapped<FaultLayer, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Wrapped::new(self.clone(), inner)
    }
}

impl Around for FaultLayer {
    fn around<S, B>(&self, request: http::Request<B>, mut inner: S) -> BoxFuture<Result<Response, S::Error>>
    where
        S: Inner<B>,
        B: Send + 'static,
    {
        let decision = self.inner.decide(request.uri().path());
        let latency = self.inner.faults.latency;
        Box::pin(async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            match decision {
                Decision::Pass => inner.call(request).await,
                Decision::Unavailable(why) => {
                    Ok(crate::Refusal::new(tonic::Code::Unavailable, "fault.injected", why).into_status().into_http())
                }
                Decision::Hang => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(crate::Refusal::new(tonic::Code::Unavailable, "fault.injected", "hung")
                        .into_status()
                        .into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specifications_parse_or_say_why_not() {
        let faults: Faults = "latency=50ms,unavailable=0.2,timeout=0.01,down=1s+2.5s".parse().unwrap();
        assert_eq!(faults.latency, Duration::from_millis(50));
        assert_eq!(faults.down, Some((Duration::from_secs(1), Duration::from_millis(2500))));
        for (bad, said) in [
            ("unavailable=2", "from 0 to 1"),
            ("latency=fast", "duration"),
            ("down=3s", "START+LENGTH"),
            ("boom=1", "unknown fault"),
        ] {
            let error = bad.parse::<Faults>().unwrap_err();
            assert!(error.contains(said), "{bad}: {error}");
        }
    }
}
