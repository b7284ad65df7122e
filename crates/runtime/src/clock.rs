//! Time is injected: the only place the system clock is read.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time, in milliseconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl SystemClock {
    /// The machine's time in microseconds since the Unix epoch (the
    /// operational monitoring records' timestamps).
    pub fn now_us() -> i64 {
        SystemClock::since_epoch().map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)).unwrap_or(0)
    }

    #[allow(clippy::disallowed_methods)] // the one place the system clock is read
    fn since_epoch() -> Option<std::time::Duration> {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemClock::since_epoch().map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
    }
}

/// A simulated clock that moves only when told to.
#[derive(Debug, Default)]
pub struct SimClock {
    now_ms: AtomicI64,
}

impl SimClock {
    pub fn starting_at(now_ms: i64) -> SimClock {
        SimClock { now_ms: AtomicI64::new(now_ms) }
    }

    pub fn set(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, by_ms: i64) {
        self.now_ms.fetch_add(by_ms, Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}
