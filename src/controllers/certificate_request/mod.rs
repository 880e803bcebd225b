//! CertificateRequest → approved → signed (SelfSigned, CA) or ordered (ACME) →
//! `status.certificate`.
//!
//! * Approver (`--auto-approve`): a request for certsmith's own issuers (group
//!   `cert-manager.io`) that nobody approved or denied gets `Approved=True` (reason
//!   `cert-manager.io`). A request another approver decided is never touched; a denied one gets
//!   `Ready=False` reason `Denied` and a `failureTime`.
//! * Issuer lookup: a missing issuer or one that is not ready leaves the request `Pending` with
//!   cert-manager's wording, looked at again with a backoff that grows with the request's age and
//!   at once when an Issuer or ClusterIssuer changes (both are watched, as metadata).
//! * SelfSigned and CA issuers sign in-process ([`crate::pki::sign`]).
//! * ACME issuers: the request owns one Order (cert-manager's name and spec); its state becomes
//!   the request's `Ready` condition, its chain the request's certificate.
//! * Other issuer types stay `Pending` ("not implemented yet"), not `Failed`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::backoff::{Backoff, fingerprint};
use super::stale::WrittenVersions;
use super::{Context, KubeError, Shutdown, is_status, kube_error};
use crate::api::certificate_request::{CertificateRequest, CertificateRequestStatus};
use crate::api::issuer::{IssuerConfig, IssuerSpec, IssuerStatus};
use crate::api::{ClusterIssuer, Issuer, Order};
use crate::controllers::certificate::request::PRIVATE_KEY_ANNOTATION;
use crate::controllers::certificate::secret::{TLS_CERT_KEY, TLS_KEY_KEY};
use crate::pki::renewal::parse_go_duration;
use crate::pki::sign::{self, SignError, SigningOptions};
use crate::pki::{csr, keys};

pub mod plan;

use plan::{Approval, IssuerFacts, OrderFacts, OrderOutcome};

/// cert-manager's default `duration` (90 days).
const DEFAULT_DURATION: SignedDuration = SignedDuration::from_hours(2160);
/// How long a request waiting on an issuer type certsmith does not implement sleeps.
const UNSUPPORTED_RECHECK: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("{0}")]
    Internal(String),
}

/// The state the CertificateRequest reconciles share.
pub struct RequestController {
    ctx: Arc<Context>,
    errors: Backoff,
    /// The resourceVersion each request had before its last status write (see the Certificate
    /// controller).
    superseded: WrittenVersions,
}

/// Runs the CertificateRequest controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let client = ctx.client.clone();
    let requests: Api<CertificateRequest> = ctx.scoped_api();
    let orders: Api<Order> = ctx.scoped_api();
    let issuers: Api<PartialObjectMeta<Issuer>> = ctx.scoped_api();
    let cluster_issuers: Api<PartialObjectMeta<ClusterIssuer>> = Api::all(client.clone());
    let controller = Controller::new(requests, watcher::Config::default());
    let by_issuer = controller.store();
    let by_cluster_issuer = controller.store();
    let state = Arc::new(RequestController {
        ctx,
        errors: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        superseded: WrittenVersions::default(),
    });
    controller
        .owns(orders, watcher::Config::default())
        .watches(issuers, watcher::Config::default(), move |issuer| {
            requests_for_issuer(&by_issuer, "Issuer", issuer.namespace(), &issuer.name_any())
        })
        .watches(cluster_issuers, watcher::Config::default(), move |issuer| {
            requests_for_issuer(
                &by_cluster_issuer,
                "ClusterIssuer",
                None,
                &issuer.name_any(),
            )
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, state)
        .for_each(|result| async move {
            crate::runtime::metrics::record_sync("certificaterequests", result.is_ok());
            if let Err(error) = result {
                tracing::debug!(%error, "certificaterequest reconcile");
            }
        })
        .await;
}

/// The unfinished requests that reference an issuer.
fn requests_for_issuer(
    store: &Store<CertificateRequest>,
    kind: &str,
    namespace: Option<String>,
    name: &str,
) -> Vec<ObjectRef<CertificateRequest>> {
    store
        .state()
        .iter()
        .filter(|r| {
            let reference = &r.spec.issuer_ref;
            reference.name == name
                && reference.kind_or_default() == kind
                && reference.group_or_default() == crate::api::meta::CERT_MANAGER_GROUP
                && (namespace.is_none() || r.namespace() == namespace)
                && !r.is_finished()
        })
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

fn object_key(request: &CertificateRequest) -> String {
    format!(
        "{}/{}",
        request.namespace().unwrap_or_default(),
        request.name_any()
    )
}

fn error_policy(
    request: Arc<CertificateRequest>,
    error: &Error,
    state: Arc<RequestController>,
) -> Action {
    let key = object_key(&request);
    let conflict = matches!(error, Error::Kube(KubeError { source, .. }) if is_status(source, 409));
    let delay = if conflict {
        Duration::from_millis(500)
    } else {
        state
            .errors
            .record(&key, fingerprint(&request.metadata.resource_version), None)
    };
    tracing::warn!(request = %key, %error, retry_in = ?delay, "certificaterequest reconcile failed");
    Action::requeue(delay)
}

async fn reconcile(
    request: Arc<CertificateRequest>,
    state: Arc<RequestController>,
) -> Result<Action, Error> {
    let key = object_key(&request);
    if request.metadata.deletion_timestamp.is_some() {
        state.errors.reset(&key);
        return Ok(Action::await_change());
    }
    if state
        .superseded
        .is_stale(&key, request.metadata.resource_version.as_ref())
    {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let action = reconcile_request(&request, &state).await?;
    state.errors.reset(&key);
    Ok(action)
}

/// What one reconcile decided: the status to write, events, when to look again.
struct Outcome {
    status: CertificateRequestStatus,
    events: Vec<(EventType, &'static str, String)>,
    requeue: Option<Duration>,
}

async fn reconcile_request(
    request: &CertificateRequest,
    state: &RequestController,
) -> Result<Action, Error> {
    let ctx = &state.ctx;
    let now = Timestamp::now();
    let mut outcome = Outcome {
        status: request.status.clone().unwrap_or_default(),
        events: vec![],
        requeue: None,
    };
    match plan::approval(request, ctx.config.auto_approve) {
        Approval::Finished | Approval::External | Approval::AwaitApproval => {
            return Ok(Action::await_change());
        }
        Approval::RecordDenial => {
            plan::record_denial(&mut outcome.status, now);
        }
        Approval::Approve => {
            plan::approve(&mut outcome.status, now);
            outcome.events.push((
                EventType::Normal,
                "cert-manager.io",
                plan::APPROVED_MESSAGE.into(),
            ));
        }
        Approval::Proceed => issue(request, ctx, now, &mut outcome).await?,
    }
    write_status(state, request, &outcome.status).await?;
    for (type_, reason, message) in &outcome.events {
        ctx.event(request, *type_, reason, message.clone()).await;
    }
    Ok(match outcome.requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// The issuer a request names, as [`IssuerFacts`], with its spec when it is usable.
async fn lookup_issuer(
    ctx: &Context,
    request: &CertificateRequest,
) -> Result<(IssuerFacts, Option<(IssuerSpec, String)>), Error> {
    let reference = &request.spec.issuer_ref;
    let namespace = request.namespace().unwrap_or_default();
    let found: Option<(IssuerSpec, Option<IssuerStatus>, String)> =
        match reference.kind_or_default() {
            "ClusterIssuer" => Api::<ClusterIssuer>::all(ctx.client.clone())
                .get_opt(&reference.name)
                .await
                .map_err(kube_error(format!(
                    "reading ClusterIssuer {}",
                    reference.name
                )))?
                .map(|i| {
                    (
                        i.spec.0,
                        i.status,
                        ctx.config.cluster_resource_namespace.clone(),
                    )
                }),
            _ => Api::<Issuer>::namespaced(ctx.client.clone(), &namespace)
                .get_opt(&reference.name)
                .await
                .map_err(kube_error(format!(
                    "reading Issuer {namespace}/{}",
                    reference.name
                )))?
                .map(|i| (i.spec, i.status, namespace.clone())),
        };
    let Some((spec, status, secret_namespace)) = found else {
        return Ok((IssuerFacts::NotFound, None));
    };
    if !status.as_ref().is_some_and(IssuerStatus::is_ready) {
        return Ok((IssuerFacts::NotReady, None));
    }
    let facts = match spec.config() {
        Some(IssuerConfig::Acme(acme)) => IssuerFacts::Acme {
            profile: acme.profile.clone(),
            enable_duration_feature: acme.enable_duration_feature.unwrap_or(false),
        },
        Some(IssuerConfig::Ca(_)) => IssuerFacts::Ca,
        Some(IssuerConfig::SelfSigned(_)) => IssuerFacts::SelfSigned,
        Some(other) => IssuerFacts::Unsupported(other.type_name().into()),
        None => IssuerFacts::Unsupported("(unconfigured)".into()),
    };
    Ok((facts, Some((spec, secret_namespace))))
}

async fn issue(
    request: &CertificateRequest,
    ctx: &Context,
    now: Timestamp,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let created = request.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let recheck = plan::pending_recheck(created, now);
    let (facts, spec) = lookup_issuer(ctx, request).await?;
    match (facts, spec) {
        (IssuerFacts::NotFound, _) => {
            plan::set_pending(
                &mut outcome.status,
                &plan::issuer_not_found_message(&request.spec.issuer_ref),
                now,
            );
            outcome.requeue = Some(recheck);
        }
        (IssuerFacts::NotReady, _) => {
            plan::set_pending(&mut outcome.status, plan::ISSUER_NOT_READY_MESSAGE, now);
            outcome.requeue = Some(recheck);
        }
        (IssuerFacts::Unsupported(type_name), _) => {
            plan::set_pending(
                &mut outcome.status,
                &plan::unsupported_issuer_message(&type_name),
                now,
            );
            outcome.requeue = Some(UNSUPPORTED_RECHECK);
        }
        (
            IssuerFacts::Acme {
                profile,
                enable_duration_feature,
            },
            _,
        ) => {
            issue_acme(
                request,
                ctx,
                now,
                outcome,
                profile.as_deref(),
                enable_duration_feature,
            )
            .await?;
        }
        (IssuerFacts::SelfSigned, Some((spec, _))) => {
            let signed = sign_self_signed(request, ctx, &spec, now).await?;
            record_signing(request, now, outcome, signed, recheck);
        }
        (IssuerFacts::Ca, Some((spec, secret_namespace))) => {
            let signed = sign_ca(request, ctx, &spec, &secret_namespace, now).await?;
            record_signing(request, now, outcome, signed, recheck);
        }
        (IssuerFacts::SelfSigned | IssuerFacts::Ca, None) => {
            return Err(Error::Internal("issuer spec missing".into()));
        }
    }
    Ok(())
}

/// The result of in-process signing: a certificate, or a condition to record.
enum Signing {
    Signed(sign::Signed),
    /// Fixable from outside (a missing Secret): `Pending`, looked at again.
    Pending(String),
    /// Will not get better: `Failed`.
    Failed(String),
}

fn record_signing(
    request: &CertificateRequest,
    now: Timestamp,
    outcome: &mut Outcome,
    signing: Signing,
    recheck: Duration,
) {
    match signing {
        Signing::Signed(signed) => {
            plan::set_issued(
                &mut outcome.status,
                &signed.certificate_pem,
                Some(&signed.ca_pem),
                now,
            );
            outcome.events.push((
                EventType::Normal,
                "CertificateIssued",
                plan::ISSUED_MESSAGE.into(),
            ));
        }
        Signing::Pending(message) => {
            plan::set_pending(&mut outcome.status, &message, now);
            outcome.requeue = Some(recheck);
        }
        Signing::Failed(message) => {
            plan::set_failed(&mut outcome.status, &message, now);
            outcome
                .events
                .push((EventType::Warning, "Failed", message.clone()));
            tracing::warn!(request = %object_key(request), %message, "certificate request failed");
        }
    }
}

fn signing_options(request: &CertificateRequest, now: Timestamp) -> SigningOptions {
    let duration = request
        .spec
        .duration
        .as_deref()
        .and_then(|d| parse_go_duration(d).ok())
        .filter(|d| d.is_positive())
        .unwrap_or(DEFAULT_DURATION);
    let mut options = SigningOptions::new(now, duration);
    options.is_ca = request.spec.is_ca.unwrap_or(false);
    options.usages = request.spec.usages.clone().unwrap_or_default();
    options
}

fn map_sign_error(error: SignError) -> Signing {
    match error {
        SignError::Ca(message) => Signing::Pending(message),
        other => Signing::Failed(other.to_string()),
    }
}

fn secret_text(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .filter(|b| !b.0.is_empty())
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

async fn sign_self_signed(
    request: &CertificateRequest,
    ctx: &Context,
    issuer: &IssuerSpec,
    now: Timestamp,
) -> Result<Signing, Error> {
    let namespace = request.namespace().unwrap_or_default();
    let Some(secret_name) = request
        .annotations()
        .get(PRIVATE_KEY_ANNOTATION)
        .filter(|n| !n.is_empty())
    else {
        return Ok(Signing::Failed(format!(
            "Annotation \"{PRIVATE_KEY_ANNOTATION}\" missing or reference empty"
        )));
    };
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(secret_name)
        .await
        .map_err(kube_error(format!(
            "reading Secret {namespace}/{secret_name}"
        )))?;
    let Some(secret) = secret else {
        return Ok(Signing::Pending(format!(
            "Referenced secret {namespace}/{secret_name} not found"
        )));
    };
    let Some(key) = secret_text(&secret, TLS_KEY_KEY).and_then(|pem| keys::parse_pem(&pem).ok())
    else {
        return Ok(Signing::Pending(format!(
            "Failed to get key \"{secret_name}\" referenced in annotation \"{PRIVATE_KEY_ANNOTATION}\""
        )));
    };
    let mut options = signing_options(request, now);
    if let Some(self_signed) = &issuer.self_signed {
        options.crl_distribution_points = self_signed
            .crl_distribution_points
            .clone()
            .unwrap_or_default();
    }
    Ok(
        match sign::self_sign(&request.spec.request.0, &key, &options) {
            Ok(signed) => Signing::Signed(signed),
            Err(e) => map_sign_error(e),
        },
    )
}

async fn sign_ca(
    request: &CertificateRequest,
    ctx: &Context,
    issuer: &IssuerSpec,
    secret_namespace: &str,
    now: Timestamp,
) -> Result<Signing, Error> {
    let Some(ca) = &issuer.ca else {
        return Err(Error::Internal("not a CA issuer".into()));
    };
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), secret_namespace)
        .get_opt(&ca.secret_name)
        .await
        .map_err(kube_error(format!(
            "reading Secret {secret_namespace}/{}",
            ca.secret_name
        )))?;
    let Some(secret) = secret else {
        return Ok(Signing::Pending(format!(
            "Referenced secret {secret_namespace}/{} not found",
            ca.secret_name
        )));
    };
    let chain = secret_text(&secret, TLS_CERT_KEY);
    let key = secret_text(&secret, TLS_KEY_KEY).and_then(|pem| keys::parse_pem(&pem).ok());
    let (Some(chain), Some(key)) = (chain, key) else {
        return Ok(Signing::Pending(format!(
            "Failed to parse signing CA keypair from secret {secret_namespace}/{}",
            ca.secret_name
        )));
    };
    let mut options = signing_options(request, now);
    options.crl_distribution_points = ca.crl_distribution_points.clone().unwrap_or_default();
    options.ocsp_servers = ca.ocsp_servers.clone().unwrap_or_default();
    options.issuing_certificate_urls = ca.issuing_certificate_urls.clone().unwrap_or_default();
    Ok(
        match sign::sign_with_ca(&request.spec.request.0, &chain, &key, &options) {
            Ok(signed) => Signing::Signed(signed),
            Err(e) => map_sign_error(e),
        },
    )
}

async fn issue_acme(
    request: &CertificateRequest,
    ctx: &Context,
    now: Timestamp,
    outcome: &mut Outcome,
    profile: Option<&str>,
    enable_duration_feature: bool,
) -> Result<(), Error> {
    let namespace = request.namespace().unwrap_or_default();
    let parsed = match csr::parse_csr(&request.spec.request.0) {
        Ok(parsed) => parsed,
        Err(e) => {
            let message = format!("Failed to decode CSR in spec.request: {e}");
            plan::set_failed(&mut outcome.status, &message, now);
            outcome.events.push((EventType::Warning, "Failed", message));
            return Ok(());
        }
    };
    let spec = plan::order_spec(request, &parsed, profile, enable_duration_feature);
    let name = plan::order_name(&request.name_any(), &spec);
    let orders: Api<Order> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = orders
        .get_opt(&name)
        .await
        .map_err(kube_error(format!("reading Order {namespace}/{name}")))?;
    let uid = request.metadata.uid.clone().unwrap_or_default();
    let facts = match &existing {
        None => OrderFacts::Missing,
        Some(order)
            if !order.owner_references().iter().any(|o| o.uid == uid)
                || order.spec.request != request.spec.request =>
        {
            OrderFacts::Foreign
        }
        Some(order) => {
            let status = order.status.clone().unwrap_or_default();
            OrderFacts::Found {
                state: status.state,
                reason: status.reason,
                certificate: status
                    .certificate
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned()),
            }
        }
    };
    match facts {
        OrderFacts::Foreign => {
            // An Order of an earlier request of the same name: replace it.
            match orders.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => {
                    return Err(kube_error(format!("deleting Order {namespace}/{name}"))(e).into());
                }
            }
            outcome.requeue = Some(Duration::from_secs(1));
            return Ok(());
        }
        OrderFacts::Missing => {
            let order = Order {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    labels: request.metadata.labels.clone(),
                    annotations: request.metadata.annotations.clone(),
                    owner_references: request.controller_owner_ref(&()).map(|r| vec![r]),
                    ..Default::default()
                },
                spec,
                status: None,
            };
            match orders.create(&PostParams::default(), &order).await {
                Ok(_) => outcome.events.push((
                    EventType::Normal,
                    "OrderCreated",
                    format!("Created Order resource {namespace}/{name}"),
                )),
                Err(e) if is_status(&e, 409) => {}
                Err(e) => {
                    return Err(kube_error(format!("creating Order {namespace}/{name}"))(e).into());
                }
            }
            let pending = plan::order_outcome(&namespace, &name, &OrderFacts::Missing);
            if let OrderOutcome::Pending(message) = pending {
                plan::set_pending(&mut outcome.status, &message, now);
            }
        }
        found @ OrderFacts::Found { .. } => match plan::order_outcome(&namespace, &name, &found) {
            OrderOutcome::Issued(chain) => {
                plan::set_issued(&mut outcome.status, &chain, None, now);
                outcome.events.push((
                    EventType::Normal,
                    "CertificateIssued",
                    plan::ISSUED_MESSAGE.into(),
                ));
            }
            OrderOutcome::Failed(message) => {
                plan::set_failed(&mut outcome.status, &message, now);
                outcome
                    .events
                    .push((EventType::Warning, "OrderFailed", message));
            }
            OrderOutcome::Pending(message) => {
                plan::set_pending(&mut outcome.status, &message, now);
            }
        },
    }
    Ok(())
}

/// The merge patch that turns `old` into `new` for a whole `status` (fields that went away are
/// nulled), with the observed resourceVersion as precondition; `None` when nothing changed.
pub(crate) fn status_patch(
    old: &Value,
    new: &Value,
    resource_version: Option<&String>,
) -> Option<Value> {
    if old == new {
        return None;
    }
    let mut body = new.as_object().cloned().unwrap_or_default();
    if let Value::Object(old) = old {
        for key in old.keys() {
            body.entry(key.clone()).or_insert(Value::Null);
        }
    }
    Some(json!({
        "metadata": {"resourceVersion": resource_version},
        "status": body,
    }))
}

async fn write_status(
    state: &RequestController,
    request: &CertificateRequest,
    status: &CertificateRequestStatus,
) -> Result<(), Error> {
    let old = serde_json::to_value(request.status.clone().unwrap_or_default())
        .map_err(|e| Error::Internal(e.to_string()))?;
    let new = serde_json::to_value(status).map_err(|e| Error::Internal(e.to_string()))?;
    let Some(patch) = status_patch(&old, &new, request.metadata.resource_version.as_ref()) else {
        return Ok(());
    };
    let api: Api<CertificateRequest> = Api::namespaced(
        state.ctx.client.clone(),
        &request.namespace().unwrap_or_default(),
    );
    api.patch_status(
        &request.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(kube_error("writing the CertificateRequest status"))?;
    state.superseded.record(
        object_key(request),
        request.metadata.resource_version.as_ref(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_patches_null_what_went_away_and_carry_the_resource_version() {
        let old = json!({"conditions": [1], "failureTime": "t"});
        let new = json!({"conditions": [1, 2]});
        let rv = "42".to_string();
        let patch = status_patch(&old, &new, Some(&rv)).unwrap();
        assert_eq!(
            patch,
            json!({
                "metadata": {"resourceVersion": "42"},
                "status": {"conditions": [1, 2], "failureTime": null},
            })
        );
        assert_eq!(status_patch(&new, &new, Some(&rv)), None);
    }
}
