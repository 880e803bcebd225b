//! Issuer and ClusterIssuer: whether each can issue, as the `Ready` condition.
//!
//! * ACME: the account is registered (or found again) with the server and kept in
//!   [`crate::acme::AccountCache`] for the order and challenge controllers; `status.acme`
//!   records it. It is registered again when the server, the key or the email changes. Failures
//!   give `Ready=False` (`ErrRegisterACMEAccount`) and a Warning Event, and are retried with
//!   per-issuer exponential backoff: the reconciles that status writes trigger do not retry early;
//!   a change of the spec or of a referenced Secret does.
//! * CA: the Secret holds a CA certificate and its key (`KeyPairVerified`).
//! * SelfSigned: always ready. Vault, Venafi: `NotImplemented`.
//!
//! Secrets of a ClusterIssuer are read in the cluster resource namespace. Referenced Secrets are
//! watched as metadata only, to react to their changes without caching their contents.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::backoff::{Backoff, fingerprint};
use super::{Context, FIELD_MANAGER, KubeError, Shutdown, kube_error};
use crate::acme::{AccountConfig, AccountSecrets, IssuerKey, RegistrationAction};
use crate::api::issuer::{GenericIssuer, IssuerConfig, IssuerSpec};
use crate::api::{ClusterIssuer, Issuer};

pub mod plan;

/// How long a ready issuer waits before it is looked at again (cheap: no ACME request unless
/// something changed).
const READY_RESYNC: Duration = Duration::from_secs(3600);
/// How long an issuer that is not ready waits at most before it is looked at again.
const NOT_READY_RESYNC: Duration = Duration::from_secs(300);

static RECONCILES: AtomicU64 = AtomicU64::new(0);

/// How many issuer reconciles this process has run (for tests and diagnostics).
pub fn reconcile_count() -> u64 {
    RECONCILES.load(Ordering::Relaxed)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] KubeError),
}

/// The state the issuer reconcilers share.
pub struct IssuerController {
    ctx: Arc<Context>,
    /// Backoff of failed ACME registrations, by issuer.
    registrations: Backoff,
    /// Backoff of reconciles that failed on the API server.
    errors: Backoff,
}

impl IssuerController {
    pub fn new(ctx: Arc<Context>) -> Arc<IssuerController> {
        Arc::new(IssuerController {
            ctx,
            registrations: Backoff::new(Duration::from_secs(2), Duration::from_secs(300)),
            errors: Backoff::new(Duration::from_secs(1), Duration::from_secs(120)),
        })
    }
}

/// What differs between Issuer and ClusterIssuer.
pub trait IssuerResource:
    GenericIssuer + Clone + Serialize + DeserializeOwned + Debug + Send + Sync + 'static
{
    const CLUSTER: bool;

    /// The Api to watch.
    fn watch_api(client: Client, namespace: Option<&str>) -> Api<Self>;

    /// The Api to write this object's status.
    fn object_api(&self, client: Client) -> Api<Self>;

    /// The account cache key.
    fn issuer_key(&self) -> IssuerKey;
}

impl IssuerResource for Issuer {
    const CLUSTER: bool = false;

    fn watch_api(client: Client, namespace: Option<&str>) -> Api<Self> {
        match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        }
    }

    fn object_api(&self, client: Client) -> Api<Self> {
        Api::namespaced(client, &self.namespace().unwrap_or_default())
    }

    fn issuer_key(&self) -> IssuerKey {
        IssuerKey::issuer(self.namespace().unwrap_or_default(), self.name_any())
    }
}

impl IssuerResource for ClusterIssuer {
    const CLUSTER: bool = true;

    fn watch_api(client: Client, _namespace: Option<&str>) -> Api<Self> {
        Api::all(client)
    }

    fn object_api(&self, client: Client) -> Api<Self> {
        Api::all(client)
    }

    fn issuer_key(&self) -> IssuerKey {
        IssuerKey::cluster_issuer(self.name_any())
    }
}

/// The namespace of the Secrets an issuer refers to.
pub fn secret_namespace<K: IssuerResource>(issuer: &K, cluster_resource_namespace: &str) -> String {
    if K::CLUSTER {
        cluster_resource_namespace.to_owned()
    } else {
        issuer.namespace().unwrap_or_default()
    }
}

/// The names of the Secrets an issuer spec refers to.
pub fn referenced_secrets(spec: &IssuerSpec) -> Vec<&str> {
    let mut names = Vec::new();
    if let Some(acme) = &spec.acme {
        names.push(acme.private_key_secret_ref.name.as_str());
        if let Some(eab) = &acme.external_account_binding {
            names.push(eab.key_secret_ref.name.as_str());
        }
    }
    if let Some(ca) = &spec.ca {
        names.push(ca.secret_name.as_str());
    }
    names
}

/// Runs the Issuer and ClusterIssuer controllers until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let controller = IssuerController::new(ctx);
    futures::join!(
        run_kind::<Issuer>(controller.clone(), shutdown.clone()),
        run_kind::<ClusterIssuer>(controller, shutdown),
    );
}

async fn run_kind<K: IssuerResource>(controller: Arc<IssuerController>, shutdown: Shutdown) {
    let ctx = &controller.ctx;
    let client = ctx.client.clone();
    let namespace = ctx.config.namespace.as_deref();
    let issuers = Controller::new(
        K::watch_api(client.clone(), namespace),
        watcher::Config::default().any_semantic(),
    );
    let store = issuers.store();
    crate::runtime::metrics::watch_issuers(K::CLUSTER, store.clone());
    let secrets: Api<PartialObjectMeta<Secret>> = match (K::CLUSTER, namespace) {
        (true, _) => Api::namespaced(client.clone(), &ctx.config.cluster_resource_namespace),
        (false, Some(ns)) => Api::namespaced(client.clone(), ns),
        (false, None) => Api::all(client.clone()),
    };
    let cluster_resource_namespace = ctx.config.cluster_resource_namespace.clone();
    issuers
        .watches(
            secrets,
            watcher::Config::default().any_semantic(),
            move |secret| {
                let namespace = secret.namespace().unwrap_or_default();
                let name = secret.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|issuer| {
                        secret_namespace(issuer.as_ref(), &cluster_resource_namespace) == namespace
                            && referenced_secrets(issuer.issuer_spec()).contains(&name.as_str())
                    })
                    .map(|issuer| ObjectRef::from_obj(issuer.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .with_config(controller::Config::default().concurrency(4))
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, controller.clone())
        .for_each(|result| async move {
            let controller = if K::CLUSTER {
                "clusterissuers"
            } else {
                "issuers"
            };
            crate::runtime::metrics::record_sync(controller, result.is_ok());
            match result {
                Ok((object, _)) => tracing::trace!(%object, "reconciled"),
                Err(controller::Error::ReconcilerFailed(_, _)) => {} // logged by error_policy
                Err(error) => tracing::debug!(%error, kind = %K::kind(&()), "issuer controller"),
            }
        })
        .await;
}

fn error_policy<K: IssuerResource>(
    issuer: Arc<K>,
    error: &Error,
    controller: Arc<IssuerController>,
) -> Action {
    let key = issuer.issuer_key().to_string();
    let delay = controller.errors.record(&key, 0, None);
    tracing::warn!(issuer = %key, %error, retry_in_ms = delay.as_millis() as u64, "issuer reconcile failed");
    Action::requeue(delay)
}

async fn get_secret(client: &Client, namespace: &str, name: &str) -> Result<Option<Secret>, Error> {
    if name.is_empty() {
        return Ok(None);
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(|e| kube_error(format!("reading Secret {namespace}/{name}"))(e).into())
}

fn entry(secret: Option<&Secret>, key: &str) -> Option<Vec<u8>> {
    secret?
        .data
        .as_ref()?
        .get(key)
        .map(|v| v.0.clone())
        .filter(|v| !v.is_empty())
}

/// Reads the account key and EAB Secrets; returns them with their resource versions.
async fn read_account_secrets(
    client: &Client,
    config: &AccountConfig,
) -> Result<(AccountSecrets, Vec<String>), Error> {
    let key_secret = get_secret(
        client,
        &config.private_key.namespace,
        &config.private_key.name,
    )
    .await?;
    let mut versions = vec![
        key_secret
            .as_ref()
            .and_then(|s| s.resource_version())
            .unwrap_or_default(),
    ];
    let mut secrets = AccountSecrets {
        private_key_secret_exists: key_secret.is_some(),
        private_key: entry(key_secret.as_ref(), &config.private_key.key),
        ..AccountSecrets::default()
    };
    if let Some(eab) = &config.eab {
        let eab_secret = get_secret(client, &eab.secret.namespace, &eab.secret.name).await?;
        versions.push(
            eab_secret
                .as_ref()
                .and_then(|s| s.resource_version())
                .unwrap_or_default(),
        );
        secrets.eab_secret_exists = eab_secret.is_some();
        secrets.eab_key = entry(eab_secret.as_ref(), &eab.secret.key);
    }
    Ok((secrets, versions))
}

async fn reconcile<K: IssuerResource>(
    issuer: Arc<K>,
    controller: Arc<IssuerController>,
) -> Result<Action, Error> {
    RECONCILES.fetch_add(1, Ordering::Relaxed);
    let ctx = &controller.ctx;
    let key = issuer.issuer_key();
    let object_key = key.to_string();
    if issuer.meta().deletion_timestamp.is_some() {
        ctx.accounts.forget(&key);
        controller.registrations.reset(&object_key);
        return Ok(Action::await_change());
    }
    let generation = issuer.meta().generation;
    let secret_ns = secret_namespace(issuer.as_ref(), &ctx.config.cluster_resource_namespace);
    let current = issuer.issuer_status();
    let config = issuer.issuer_spec().config();
    if !matches!(config, Some(IssuerConfig::Acme(_))) {
        ctx.accounts.forget(&key);
    }

    let (ready, acme, action, attempted) = if let Some(ready) = plan::static_ready(config) {
        (ready, None, Action::await_change(), false)
    } else {
        match config {
            Some(IssuerConfig::Ca(ca)) => {
                let secret = get_secret(&ctx.client, &secret_ns, &ca.secret_name).await?;
                let ready = plan::ca_ready(
                    &ca.secret_name,
                    secret.as_ref().and_then(|s| s.data.as_ref()),
                );
                let action = if ready.is_ready() {
                    Action::await_change()
                } else {
                    Action::requeue(NOT_READY_RESYNC)
                };
                (ready, None, action, false)
            }
            Some(IssuerConfig::Acme(acme)) => {
                let account = AccountConfig::from_issuer(acme, &secret_ns);
                let (secrets, versions) = read_account_secrets(&ctx.client, &account).await?;
                let inputs = fingerprint((generation, &versions));
                if let Some(wait) = controller.registrations.pending(&object_key, inputs) {
                    tracing::debug!(issuer = %object_key, wait_ms = wait.as_millis() as u64, "ACME registration in backoff");
                    controller.errors.reset(&object_key);
                    return Ok(Action::requeue(wait));
                }
                let result = ctx
                    .accounts
                    .ensure(
                        &ctx.client,
                        &key,
                        &account,
                        &secrets,
                        current.and_then(|s| s.acme.as_ref()),
                    )
                    .await;
                let action = match &result {
                    Ok(registration) => {
                        controller.registrations.reset(&object_key);
                        if registration.action != RegistrationAction::Cached {
                            tracing::info!(
                                issuer = %object_key, server = %account.server, account = %registration.uri,
                                action = ?registration.action, "ACME account ready"
                            );
                        }
                        Action::requeue(READY_RESYNC)
                    }
                    Err(error) => {
                        let delay = controller.registrations.record(
                            &object_key,
                            inputs,
                            error.retry_after(),
                        );
                        tracing::warn!(
                            issuer = %object_key, server = %account.server, %error,
                            retry_in_ms = delay.as_millis() as u64, "could not register the ACME account"
                        );
                        Action::requeue(delay)
                    }
                };
                let result = result.map_err(|e| e.to_string());
                let ready = plan::acme_ready(&result);
                let acme = plan::acme_status(&result, current.and_then(|s| s.acme.as_ref()));
                (ready, acme, action, result.is_err())
            }
            _ => unreachable!("static_ready covers every other issuer type"),
        }
    };

    if attempted || (!ready.is_ready() && plan::ready_changed(current, &ready)) {
        ctx.event(
            issuer.as_ref(),
            EventType::Warning,
            &ready.reason,
            ready.message.clone(),
        )
        .await;
    }
    let now = Time(jiff::Timestamp::now());
    let desired = plan::desired_status(current, &ready, acme, generation, now);
    if current != Some(&desired) {
        let body = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": desired,
        });
        issuer
            .object_api(ctx.client.clone())
            .patch_status(
                &issuer.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(kube_error(format!("writing the status of {object_key}")))?;
    }
    controller.errors.reset(&object_key);
    Ok(action)
}

// ---------------------------------------------------------------------------------------------
// For the order and challenge controllers: the ACME issuer an object refers to, and its account.
// ---------------------------------------------------------------------------------------------

/// An ACME issuer and its registered account.
pub struct AcmeIssuerRef {
    pub key: IssuerKey,
    pub acme: crate::api::acme::AcmeIssuer,
    pub account: crate::acme::AcmeAccount,
}

/// Why the ACME issuer of an object cannot be used (yet).
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("reading {what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} is not an ACME issuer")]
    NotAcme(String),
    #[error("unknown issuer kind {0:?}")]
    UnknownKind(String),
    #[error("the ACME account of {issuer}: {source}")]
    Account {
        issuer: String,
        #[source]
        source: crate::acme::AccountError,
    },
}

impl LookupError {
    /// How long the ACME server asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LookupError::Account { source, .. } => source.retry_after(),
            _ => None,
        }
    }
}

/// The ACME issuer that `reference` (in `namespace`) names, with its account from the account
/// cache (loaded from the issuer's status after a restart; never registered here). `None` for
/// issuers of another group (external issuers).
pub async fn acme_issuer(
    ctx: &Context,
    namespace: &str,
    reference: &crate::api::meta::IssuerReference,
) -> Result<Option<AcmeIssuerRef>, LookupError> {
    if reference.group_or_default() != crate::api::meta::CERT_MANAGER_GROUP {
        return Ok(None);
    }
    let name = reference.name.as_str();
    let (key, spec, status, secret_ns) = match reference.kind_or_default() {
        "Issuer" => {
            let api: Api<Issuer> = Api::namespaced(ctx.client.clone(), namespace);
            let what = format!("Issuer {namespace}/{name}");
            let issuer = api
                .get_opt(name)
                .await
                .map_err(|source| LookupError::Kube {
                    what: what.clone(),
                    source,
                })?
                .ok_or(LookupError::NotFound(what))?;
            (
                IssuerKey::issuer(namespace, name),
                issuer.spec,
                issuer.status,
                namespace.to_owned(),
            )
        }
        "ClusterIssuer" => {
            let api: Api<ClusterIssuer> = Api::all(ctx.client.clone());
            let what = format!("ClusterIssuer {name}");
            let issuer = api
                .get_opt(name)
                .await
                .map_err(|source| LookupError::Kube {
                    what: what.clone(),
                    source,
                })?
                .ok_or(LookupError::NotFound(what))?;
            (
                IssuerKey::cluster_issuer(name),
                issuer.spec.0,
                issuer.status,
                ctx.config.cluster_resource_namespace.clone(),
            )
        }
        other => return Err(LookupError::UnknownKind(other.to_owned())),
    };
    let Some(acme) = spec.acme else {
        return Err(LookupError::NotAcme(key.to_string()));
    };
    let config = AccountConfig::from_issuer(&acme, &secret_ns);
    let account = ctx
        .accounts
        .get(
            &ctx.client,
            &key,
            &config,
            status.as_ref().and_then(|s| s.acme.as_ref()),
        )
        .await
        .map_err(|source| LookupError::Account {
            issuer: key.to_string(),
            source,
        })?;
    Ok(Some(AcmeIssuerRef { key, acme, account }))
}
