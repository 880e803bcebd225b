//! Counts every HTTP request certsmith makes to ACME servers, by (scheme, host, action, method,
//! status), like cert-manager's `certmanager_http_acme_client_request_count`.
//!
//! The counters are process-global. [`register`] adds them to the Prometheus registry that the
//! metrics endpoint serves; [`request_count`] and [`snapshot`] let tests and reports read them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::runtime::metrics::PlainCounter;

/// The labels of one counted request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RequestLabels {
    /// `https` (or `http` for test servers).
    pub scheme: String,
    /// The ACME server's host (and port, when not the default).
    pub host: String,
    /// What the request was for: `directory`, `nonce`, `new_account`, `new_order`,
    /// `get_order`, `get_authorization`, `accept_challenge`, `finalize`, `get_certificate`, …
    pub action: String,
    /// `GET`, `HEAD` or `POST`.
    pub method: String,
    /// The HTTP status code, or `error` / `timeout` when no response came.
    pub status: String,
}

struct Metrics {
    total: AtomicU64,
    family: Family<RequestLabels, PlainCounter>,
    by_labels: Mutex<BTreeMap<RequestLabels, u64>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    total: AtomicU64::new(0),
    family: Family::default(),
    by_labels: Mutex::new(BTreeMap::new()),
});

/// Adds the ACME client metrics to `registry` (which the caller prefixes with `certmanager`).
/// The counter is a [`PlainCounter`]: served as `<prefix>_http_acme_client_request_count`, with no
/// `_total` suffix, by [`crate::runtime::metrics::encode`].
pub fn register(registry: &mut Registry) {
    registry.register(
        "http_acme_client_request_count",
        "The number of requests made by the ACME client.",
        METRICS.family.clone(),
    );
}

/// Counts one request.
pub(crate) fn record(labels: RequestLabels) {
    METRICS.total.fetch_add(1, Ordering::Relaxed);
    METRICS.family.get_or_create(&labels).inc();
    *METRICS
        .by_labels
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(labels)
        .or_default() += 1;
}

/// How many ACME requests this process has made, in total.
pub fn request_count() -> u64 {
    METRICS.total.load(Ordering::Relaxed)
}

/// How many requests match every given label (`None` matches any value).
pub fn request_count_where(
    host: Option<&str>,
    action: Option<&str>,
    method: Option<&str>,
    status: Option<&str>,
) -> u64 {
    let matches = |want: Option<&str>, have: &str| want.is_none_or(|w| w == have);
    METRICS
        .by_labels
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(l, _)| {
            matches(host, &l.host)
                && matches(action, &l.action)
                && matches(method, &l.method)
                && matches(status, &l.status)
        })
        .map(|(_, n)| n)
        .sum()
}

/// All per-label counts so far.
pub fn snapshot() -> BTreeMap<RequestLabels, u64> {
    METRICS
        .by_labels
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label() {
        let labels = |status: &str| RequestLabels {
            scheme: "https".into(),
            host: "metrics-test.example:14000".into(),
            action: "new_order".into(),
            method: "POST".into(),
            status: status.into(),
        };
        let before = request_count();
        record(labels("201"));
        record(labels("201"));
        record(labels("429"));
        assert!(request_count() >= before + 3);
        let host = Some("metrics-test.example:14000");
        assert_eq!(request_count_where(host, None, None, None), 3);
        assert_eq!(
            request_count_where(host, Some("new_order"), Some("POST"), Some("201")),
            2
        );
        assert_eq!(snapshot()[&labels("429")], 1);

        let mut registry = Registry::with_prefix("certmanager");
        register(&mut registry);
        let text = crate::runtime::metrics::encode(&registry);
        assert!(
            text.contains("certmanager_http_acme_client_request_count{"),
            "{text}"
        );
        assert!(
            text.contains("host=\"metrics-test.example:14000\""),
            "{text}"
        );
    }
}
