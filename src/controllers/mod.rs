//! One module per reconciler. Each splits a pure `plan` (what should happen, given the observed
//! objects) from the I/O that applies it.
//!
//! | controller | owns the transition |
//! |---|---|
//! | [`issuer`] | Issuer/ClusterIssuer → ACME account registered, `Ready` |
//! | [`certificate`] | Certificate → next private key + CertificateRequest → Secret, status, renewal |
//! | [`certificate_request`] | CertificateRequest → approved → Order (ACME) → `status.certificate` |
//! | [`order`] | Order → ACME order, one Challenge per authorization → finalize → chain |
//! | [`challenge`] | Challenge → solver presented, self-checked, accepted, cleaned up |
//! | [`shim`] | annotated Ingress → one Certificate per TLS secretName |

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::Shared;

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

pub mod backoff;
pub mod certificate;
pub mod certificate_request;
pub mod challenge;
pub mod conditions;
pub mod issuer;
pub mod order;
pub mod shim;
pub mod stale;

/// Field manager of every server-side apply certsmith makes.
pub const FIELD_MANAGER: &str = "certsmith";

/// Settings every controller reads; filled from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespace in which ClusterIssuer Secrets are read (cert-manager's
    /// `--cluster-resource-namespace`).
    pub cluster_resource_namespace: String,
    /// Watch only this namespace; `None` watches all.
    pub namespace: Option<String>,
    /// Backoff after a failed issuance: `min * 2^(n-1)`, capped at `max` (cert-manager: 1h, 32h).
    pub issuance_backoff_min: Duration,
    pub issuance_backoff_max: Duration,
    /// Approve CertificateRequests for certsmith's own issuers (cert-manager's built-in approver).
    pub auto_approve: bool,
    /// HTTP-01 solver pods, services and ingresses, and the self-check.
    pub http01: crate::solvers::http01::Http01Settings,
    /// How often a challenge that has not passed its self-check is checked again.
    pub self_check_retry: Duration,
    /// DNS-01: recursive nameservers, authoritative or recursive propagation check, retry period.
    pub dns01: crate::solvers::dns01::Dns01Settings,
    /// Ingress shim: default issuer and auto-certificate annotations.
    pub shim: shim::ShimSettings,
}

/// Shared by every reconciler.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub recorder: Recorder,
    pub accounts: crate::acme::AccountCache,
}

impl Context {
    pub fn new(client: Client, config: Config) -> Arc<Self> {
        let reporter = Reporter {
            controller: "certsmith".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Arc::new(Self {
            recorder: Recorder::new(client.clone(), reporter),
            accounts: crate::acme::AccountCache::default(),
            client,
            config,
        })
    }

    /// Publishes a Kubernetes Event on `obj`. Event failures are logged, never fatal: an
    /// unrecorded event must not stop an issuance.
    pub async fn event<K>(&self, obj: &K, type_: EventType, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            tracing::warn!(%error, reason, "could not publish event");
        }
    }
}

impl Context {
    /// An API for a namespaced kind, limited to `--namespace` when one is set.
    pub fn scoped_api<K>(&self) -> kube::Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match self.config.namespace.as_deref() {
            Some(ns) => kube::Api::namespaced(self.client.clone(), ns),
            None => kube::Api::all(self.client.clone()),
        }
    }
}

/// A failed Kubernetes API call and what it was for; every reconciler's error wraps it.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {source}")]
pub struct KubeError {
    pub action: String,
    #[source]
    pub source: kube::Error,
}

/// `.map_err(kube_error("writing the status"))?` names the call that failed.
pub fn kube_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
    let action = action.into();
    move |source| KubeError { action, source }
}

/// Whether an API error carries this HTTP status code.
pub fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// The future every controller receives to stop gracefully (kube-runtime's
/// `graceful_shutdown_on` needs it `Send + Sync + Clone`).
pub type Shutdown = Shared<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>;

pub fn shutdown_on(signal: impl Future<Output = ()> + Send + Sync + 'static) -> Shutdown {
    let boxed: Pin<Box<dyn Future<Output = ()> + Send + Sync>> = Box::pin(signal);
    boxed.shared()
}

/// Runs every controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    futures::join!(
        issuer::run(ctx.clone(), shutdown.clone()),
        certificate::run(ctx.clone(), shutdown.clone()),
        certificate_request::run(ctx.clone(), shutdown.clone()),
        order::run(ctx.clone(), shutdown.clone()),
        challenge::run(ctx.clone(), shutdown.clone()),
        shim::run(ctx.clone(), shutdown.clone()),
    );
}
