//! Per-object exponential backoff, which kube-runtime does not have: a small map from an
//! object's key to how often it failed and when it may be tried again.
//!
//! A controller records a failure with a *fingerprint* of the inputs it failed on (generation,
//! resource versions of referenced Secrets, …). While the same inputs are still in backoff,
//! [`Backoff::pending`] says how long to wait, so the reconciles that a status write or an
//! unrelated watch event triggers do not retry early; changed inputs are tried at once.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Exponential backoff by object key: `base * 2^(n-1)`, capped at `max`.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    fingerprint: u64,
    retry_at: Instant,
}

/// A fingerprint of anything hashable, for [`Backoff::record`] and [`Backoff::pending`].
pub fn fingerprint(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn delay_for(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << exponent).min(self.max)
    }

    /// Records a failure of `key` with inputs `fingerprint`; returns how long to wait before
    /// the next attempt (at least `at_least`, e.g. a server's Retry-After, capped at `max`
    /// unless the server asked for longer).
    pub fn record(&self, key: &str, fingerprint: u64, at_least: Option<Duration>) -> Duration {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let failures = entries.get(key).map_or(0, |e| e.failures).saturating_add(1);
        let delay = self.delay_for(failures).max(at_least.unwrap_or_default());
        entries.insert(
            key.to_owned(),
            Entry {
                failures,
                fingerprint,
                retry_at: Instant::now() + delay,
            },
        );
        delay
    }

    /// How long `key` must still wait, if it failed on the same inputs and is not due yet.
    pub fn pending(&self, key: &str, fingerprint: u64) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(key)?;
        if entry.fingerprint != fingerprint {
            return None;
        }
        let now = Instant::now();
        (entry.retry_at > now).then(|| entry.retry_at - now)
    }

    /// The number of consecutive failures of `key`.
    pub fn failures(&self, key: &str) -> u32 {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .map_or(0, |e| e.failures)
    }

    /// Forgets the failures of `key` (it succeeded, or was deleted).
    pub fn reset(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_gates_only_the_same_inputs() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        assert_eq!(b.pending("a", 1), None);
        assert_eq!(b.record("a", 1, None), Duration::from_secs(1));
        assert_eq!(b.record("a", 1, None), Duration::from_secs(2));
        assert_eq!(b.record("a", 1, None), Duration::from_secs(4));
        assert_eq!(b.record("a", 1, None), Duration::from_secs(5));
        assert_eq!(b.failures("a"), 4);
        let wait = b.pending("a", 1).unwrap();
        assert!(wait > Duration::from_secs(4) && wait <= Duration::from_secs(5));
        assert_eq!(b.pending("a", 2), None, "changed inputs are tried at once");
        assert_eq!(b.pending("b", 1), None);
        assert_eq!(
            b.record("a", 1, Some(Duration::from_secs(60))),
            Duration::from_secs(60),
            "a server's Retry-After wins"
        );
        b.reset("a");
        assert_eq!(b.failures("a"), 0);
        assert_eq!(b.record("a", 1, None), Duration::from_secs(1));
        assert_ne!(fingerprint(("x", 1)), fingerprint(("x", 2)));
    }
}
