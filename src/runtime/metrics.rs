//! The controller's Prometheus metrics, named and labelled as cert-manager's (namespace
//! `certmanager`) so existing dashboards and alerts keep working.
//!
//! * Certificate, Issuer and ClusterIssuer gauges are computed at scrape time from the
//!   controllers' reflector stores ([`watch_certificates`], [`watch_issuers`]): a deleted object's
//!   series disappear with it.
//! * `certmanager_controller_sync_call_count` / `..._sync_error_count` are counted by the
//!   controllers' run loops ([`record_sync`]).
//! * `certmanager_http_acme_client_request_count` comes from [`crate::acme::metrics`].
//!
//! cert-manager's counters have no `_total` suffix. prometheus-client always appends one to a
//! counter, so counters are registered as untyped [`PlainCounter`]s and [`encode`] rewrites their
//! `# TYPE` line to `counter`; the result is the Prometheus text format (0.0.4) cert-manager
//! serves, byte-compatible with its series names.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::api::certificate::Certificate;
use crate::api::issuer::GenericIssuer;
use crate::api::meta::ConditionStatus;

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Names (without the `certmanager_` prefix) of the counters served without `_total`.
const PLAIN_COUNTERS: &[&str] = &[
    "http_acme_client_request_count",
    "controller_sync_call_count",
    "controller_sync_error_count",
];

/// A monotonically increasing counter that prometheus-client encodes without the `_total`
/// suffix (as untyped; [`encode`] declares it a counter).
#[derive(Clone, Debug, Default)]
pub struct PlainCounter(Arc<AtomicU64>);

impl PlainCounter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl TypedMetric for PlainCounter {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for PlainCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Unknown
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    name: String,
    namespace: String,
    issuer_name: String,
    issuer_kind: String,
    issuer_group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateReadyLabels {
    name: String,
    namespace: String,
    condition: String,
    issuer_name: String,
    issuer_kind: String,
    issuer_group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabels {
    name: String,
    namespace: String,
    condition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterIssuerLabels {
    name: String,
    condition: String,
}

/// One issuer as the ready-status gauges see it: namespace, name, Ready condition status.
type IssuerSample = (String, String, Option<ConditionStatus>);
type IssuerSource = Box<dyn Fn() -> Vec<IssuerSample> + Send + Sync>;

#[derive(Default)]
struct Sources {
    certificates: RwLock<Option<Store<Certificate>>>,
    issuers: RwLock<Option<IssuerSource>>,
    cluster_issuers: RwLock<Option<IssuerSource>>,
}

struct Syncs {
    calls: Family<ControllerLabels, PlainCounter>,
    errors: Family<ControllerLabels, PlainCounter>,
}

static SOURCES: LazyLock<Sources> = LazyLock::new(Sources::default);
static SYNCS: LazyLock<Syncs> = LazyLock::new(|| Syncs {
    calls: Family::default(),
    errors: Family::default(),
});
static READY: AtomicBool = AtomicBool::new(false);

/// The Certificate controller's store, read at every scrape.
pub fn watch_certificates(store: Store<Certificate>) {
    *SOURCES
        .certificates
        .write()
        .unwrap_or_else(|e| e.into_inner()) = Some(store);
}

/// An Issuer (`cluster == false`) or ClusterIssuer controller's store, read at every scrape.
pub fn watch_issuers<K>(cluster: bool, store: Store<K>)
where
    K: GenericIssuer + kube::runtime::reflector::Lookup<DynamicType = ()> + Clone + 'static,
    K: Send + Sync,
{
    let source: IssuerSource = Box::new(move || {
        store
            .state()
            .iter()
            .map(|issuer| {
                let ready = issuer
                    .issuer_status()
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                    .map(|c| c.status);
                (
                    ResourceExt::namespace(issuer.as_ref()).unwrap_or_default(),
                    ResourceExt::name_any(issuer.as_ref()),
                    ready,
                )
            })
            .collect()
    });
    let slot = if cluster {
        &SOURCES.cluster_issuers
    } else {
        &SOURCES.issuers
    };
    *slot.write().unwrap_or_else(|e| e.into_inner()) = Some(source);
}

/// Counts one item of a controller's run stream: every item is a sync call; failed ones are
/// also errors.
pub fn record_sync(controller: &str, ok: bool) {
    let labels = ControllerLabels {
        controller: controller.to_owned(),
    };
    SYNCS.calls.get_or_create(&labels).inc();
    if !ok {
        SYNCS.errors.get_or_create(&labels).inc();
    }
}

/// Marks the process ready (`/readyz`): the API server answered and the controllers started.
pub fn set_ready(ready: bool) {
    READY.store(ready, Ordering::Relaxed);
}

pub fn is_ready() -> bool {
    READY.load(Ordering::Relaxed)
}

/// The registry with every metric certsmith serves.
pub fn registry() -> Registry {
    let mut registry = Registry::with_prefix("certmanager");
    crate::acme::metrics::register(&mut registry);
    registry.register(
        "controller_sync_call_count",
        "The number of sync() calls made by a controller.",
        SYNCS.calls.clone(),
    );
    registry.register(
        "controller_sync_error_count",
        "The number of errors encountered during controller sync().",
        SYNCS.errors.clone(),
    );
    registry.register_collector(Box::new(ObjectCollector));
    registry
}

/// The registry's metrics in the Prometheus text format, counters without `_total`.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode_registry(&mut text, registry)
        .expect("writing to a String cannot fail");
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        }
        let plain = line
            .strip_prefix("# TYPE certmanager_")
            .and_then(|rest| rest.strip_suffix(" unknown"))
            .filter(|name| PLAIN_COUNTERS.contains(name));
        match plain {
            Some(name) => {
                out.push_str("# TYPE certmanager_");
                out.push_str(name);
                out.push_str(" counter");
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn seconds(time: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> f64 {
    time.map_or(0.0, |t| t.0.as_millisecond() as f64 / 1000.0)
}

fn status_name(status: ConditionStatus) -> &'static str {
    match status {
        ConditionStatus::True => "True",
        ConditionStatus::False => "False",
        ConditionStatus::Unknown => "Unknown",
    }
}

const CONDITIONS: [ConditionStatus; 3] = [
    ConditionStatus::True,
    ConditionStatus::False,
    ConditionStatus::Unknown,
];

/// Computes the object gauges and the clock at scrape time.
#[derive(Debug)]
struct ObjectCollector;

fn encode_family<L, M>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    family: &Family<L, M>,
) -> Result<(), std::fmt::Error>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug,
    M: EncodeMetric + TypedMetric,
{
    let metric = encoder.encode_descriptor(name, help, None, M::TYPE)?;
    family.encode(metric)
}

impl Collector for ObjectCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        type G = Gauge<f64, AtomicU64>;
        let expiration = Family::<CertificateLabels, G>::default();
        let not_after = Family::<CertificateLabels, G>::default();
        let not_before = Family::<CertificateLabels, G>::default();
        let renewal = Family::<CertificateLabels, G>::default();
        let certificate_ready = Family::<CertificateReadyLabels, G>::default();
        let certificates = SOURCES
            .certificates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.state())
            .unwrap_or_default();
        for certificate in certificates {
            let issuer = &certificate.spec.issuer_ref;
            let labels = CertificateLabels {
                name: certificate.name_any(),
                namespace: certificate.namespace().unwrap_or_default(),
                issuer_name: issuer.name.clone(),
                issuer_kind: issuer.kind.clone().unwrap_or_default(),
                issuer_group: issuer.group.clone().unwrap_or_default(),
            };
            let status = certificate.status.as_ref();
            let after = seconds(status.and_then(|s| s.not_after.as_ref()));
            expiration.get_or_create(&labels).set(after);
            not_after.get_or_create(&labels).set(after);
            not_before
                .get_or_create(&labels)
                .set(seconds(status.and_then(|s| s.not_before.as_ref())));
            renewal
                .get_or_create(&labels)
                .set(seconds(status.and_then(|s| s.renewal_time.as_ref())));
            let ready = status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .map_or(ConditionStatus::Unknown, |c| c.status);
            for condition in CONDITIONS {
                let value = if condition == ready { 1.0 } else { 0.0 };
                certificate_ready
                    .get_or_create(&CertificateReadyLabels {
                        name: labels.name.clone(),
                        namespace: labels.namespace.clone(),
                        condition: status_name(condition).into(),
                        issuer_name: labels.issuer_name.clone(),
                        issuer_kind: labels.issuer_kind.clone(),
                        issuer_group: labels.issuer_group.clone(),
                    })
                    .set(value);
            }
        }
        encode_family(
            &mut encoder,
            "certificate_expiration_timestamp_seconds",
            "The timestamp after which the certificate expires, expressed in Unix Epoch Time.",
            &expiration,
        )?;
        encode_family(
            &mut encoder,
            "certificate_not_after_timestamp_seconds",
            "The timestamp after which the certificate is invalid, expressed as a Unix Epoch Time.",
            &not_after,
        )?;
        encode_family(
            &mut encoder,
            "certificate_not_before_timestamp_seconds",
            "The timestamp before which the certificate is invalid, expressed as a Unix Epoch Time.",
            &not_before,
        )?;
        encode_family(
            &mut encoder,
            "certificate_renewal_timestamp_seconds",
            "The number of seconds before expiration time the certificate should renew.",
            &renewal,
        )?;
        encode_family(
            &mut encoder,
            "certificate_ready_status",
            "The ready status of the certificate.",
            &certificate_ready,
        )?;

        let issuers = Family::<IssuerLabels, G>::default();
        if let Some(source) = SOURCES
            .issuers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            for (namespace, name, ready) in source() {
                let ready = ready.unwrap_or(ConditionStatus::Unknown);
                for condition in CONDITIONS {
                    issuers
                        .get_or_create(&IssuerLabels {
                            name: name.clone(),
                            namespace: namespace.clone(),
                            condition: status_name(condition).into(),
                        })
                        .set(if condition == ready { 1.0 } else { 0.0 });
                }
            }
        }
        encode_family(
            &mut encoder,
            "issuer_ready_status",
            "The ready status of the issuer.",
            &issuers,
        )?;

        let cluster_issuers = Family::<ClusterIssuerLabels, G>::default();
        if let Some(source) = SOURCES
            .cluster_issuers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            for (_, name, ready) in source() {
                let ready = ready.unwrap_or(ConditionStatus::Unknown);
                for condition in CONDITIONS {
                    cluster_issuers
                        .get_or_create(&ClusterIssuerLabels {
                            name: name.clone(),
                            condition: status_name(condition).into(),
                        })
                        .set(if condition == ready { 1.0 } else { 0.0 });
                }
            }
        }
        encode_family(
            &mut encoder,
            "clusterissuer_ready_status",
            "The ready status of the cluster issuer.",
            &cluster_issuers,
        )?;

        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        let clock = G::default();
        clock.set(now);
        let metric = encoder.encode_descriptor(
            "clock_time_seconds_gauge",
            "The clock time given in seconds (from 1970/01/01 UTC).",
            None,
            MetricType::Gauge,
        )?;
        clock.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_have_cert_managers_names() {
        record_sync("unit-test", true);
        record_sync("unit-test", false);
        let text = encode(&registry());
        assert!(
            text.contains("# TYPE certmanager_controller_sync_call_count counter\n"),
            "{text}"
        );
        assert!(
            text.contains("certmanager_controller_sync_call_count{controller=\"unit-test\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("certmanager_controller_sync_error_count{controller=\"unit-test\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE certmanager_http_acme_client_request_count counter\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE certmanager_clock_time_seconds_gauge gauge\n"));
        assert!(text.contains("# TYPE certmanager_certificate_ready_status gauge\n"));
        assert!(!text.contains("_total"), "{text}");
        assert!(!text.contains("unknown"), "{text}");
    }
}
