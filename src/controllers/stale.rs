//! Guarding against a stale watch cache after a status write.
//!
//! After a controller writes an object's status, the next reconcile may still be handed the
//! object as it was before the write (the watch has not caught up). Acting on that old status
//! would redo work, so the controller remembers the resourceVersion its write replaced and waits
//! while the cache still shows it.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct WrittenVersions(Mutex<HashMap<String, String>>);

impl WrittenVersions {
    /// Records that a status write replaced `old_version` of the object `key`.
    pub fn record(&self, key: String, old_version: Option<&String>) {
        if let Some(version) = old_version {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, version.clone());
        }
    }

    /// Whether `current` is still the version a status write replaced (the cache is stale).
    /// Once a newer version is seen, the record is dropped.
    pub fn is_stale(&self, key: &str, current: Option<&String>) -> bool {
        let mut written = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match written.get(key) {
            Some(old) if Some(old) == current => true,
            Some(_) => {
                written.remove(key);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_until_a_newer_version_is_seen() {
        let versions = WrittenVersions::default();
        let (v1, v2) = ("1".to_owned(), "2".to_owned());
        assert!(!versions.is_stale("ns/a", Some(&v1)));
        versions.record("ns/a".into(), Some(&v1));
        assert!(versions.is_stale("ns/a", Some(&v1)));
        assert!(!versions.is_stale("ns/a", Some(&v2)));
        assert!(
            !versions.is_stale("ns/a", Some(&v1)),
            "the record is gone once a newer version was seen"
        );
    }
}
