//! Certificate → next private key + CertificateRequest → Secret, status, renewal.
//!
//! One reconciler plays cert-manager's certificates-trigger, -key-manager, -request-manager,
//! -issuing, -readiness and -revision-manager controllers: it gathers the target Secret, the
//! owned CertificateRequests and next-private-key Secrets, turns them into facts, lets the pure
//! [`plan`] decide, then applies the plan's steps, writes the status and publishes events.
//!
//! Watches: Certificates; owned CertificateRequests; and Secrets labelled
//! `controller.cert-manager.io/fao=true` *as metadata only* (the Secrets certsmith writes carry
//! that label), mapped to Certificates by the `cert-manager.io/certificate-name` annotation, an
//! owner reference, or `spec.secretName`. The Secrets a reconcile needs are read directly, not
//! cached. An idle Certificate sleeps until its renewal time.
//!
//! Writes: the target Secret with server-side apply (field manager `certsmith`, forced); the
//! status with a JSON merge patch that carries the observed `resourceVersion`, so a status
//! computed from a stale cache is rejected (409) instead of overwriting a newer one.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::{Value, json};

use super::backoff::{Backoff, fingerprint};
use super::stale::WrittenVersions;
use super::{Context, FIELD_MANAGER, KubeError, Shutdown, is_status, kube_error};
use crate::api::Certificate;
use crate::api::certificate::{CertificateCondition, CertificateStatus};
use crate::api::certificate_request::CertificateRequest;
use crate::api::meta::ConditionStatus;
use crate::controllers::conditions::{self, Condition};
use crate::pki::keys::{self, KeyEncoding, KeySpec};
use crate::pki::{csr, x509};

pub mod plan;
pub mod request;
pub mod secret;

use plan::{CertState, KeyState, NextKeyFacts, Plan, SecretFacts, Step};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("{0}")]
    Internal(String),
}

/// The state the Certificate reconciles share.
pub struct CertificateController {
    ctx: Arc<Context>,
    /// Every Certificate, from the controller's own watch (to find which of several
    /// Certificates naming one Secret owns it).
    store: Store<Certificate>,
    /// Backoff of reconciles that failed on the API server.
    errors: Backoff,
    /// The resourceVersion each Certificate had before its last status write: a reconcile that
    /// still sees it works on a stale cache and waits for the watch to catch up.
    superseded: WrittenVersions,
}

/// Runs the Certificate controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let certificates: Api<Certificate> = ctx.scoped_api();
    let requests: Api<CertificateRequest> = ctx.scoped_api();
    let secrets: Api<PartialObjectMeta<Secret>> = ctx.scoped_api();
    let controller = Controller::new(certificates, watcher::Config::default());
    let store = controller.store();
    crate::runtime::metrics::watch_certificates(store.clone());
    let state = Arc::new(CertificateController {
        ctx,
        store: store.clone(),
        errors: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        superseded: WrittenVersions::default(),
    });
    controller
        .owns(requests, watcher::Config::default())
        .watches(
            secrets,
            watcher::Config::default().labels(&format!("{}=true", secret::FAO_LABEL)),
            move |s| certificates_for_secret(&store, &s),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, state)
        .for_each(|result| async move {
            crate::runtime::metrics::record_sync("certificates", result.is_ok());
            if let Err(error) = result {
                tracing::debug!(%error, "certificate reconcile");
            }
        })
        .await;
}

/// The Certificates a (metadata-only) Secret event concerns.
fn certificates_for_secret(
    store: &Store<Certificate>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<Certificate>> {
    let namespace = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let mut names: BTreeSet<String> = BTreeSet::new();
    if let Some(n) = secret
        .annotations()
        .get(secret::annotation::CERTIFICATE_NAME)
    {
        names.insert(n.clone());
    }
    for owner in secret.owner_references() {
        if owner.kind == "Certificate" && owner.api_version.starts_with("cert-manager.io/") {
            names.insert(owner.name.clone());
        }
    }
    for certificate in store.state() {
        if certificate.namespace().as_deref() == Some(namespace.as_str())
            && certificate.spec.secret_name == name
        {
            names.insert(certificate.name_any());
        }
    }
    names
        .into_iter()
        .map(|n| ObjectRef::new(&n).within(&namespace))
        .collect()
}

fn error_policy(
    certificate: Arc<Certificate>,
    error: &Error,
    state: Arc<CertificateController>,
) -> Action {
    let key = object_key(&certificate);
    let conflict = matches!(error, Error::Kube(KubeError { source, .. }) if is_status(source, 409));
    let delay = if conflict {
        // Someone (or the watch we are waiting for) changed the object: look again soon.
        Duration::from_millis(500)
    } else {
        state
            .errors
            .record(&key, fingerprint(certificate.metadata.generation), None)
    };
    tracing::warn!(certificate = %key, %error, retry_in = ?delay, "certificate reconcile failed");
    Action::requeue(delay)
}

fn object_key(certificate: &Certificate) -> String {
    format!(
        "{}/{}",
        certificate.namespace().unwrap_or_default(),
        certificate.name_any()
    )
}

async fn reconcile(
    certificate: Arc<Certificate>,
    state: Arc<CertificateController>,
) -> Result<Action, Error> {
    let key = object_key(&certificate);
    if certificate.metadata.deletion_timestamp.is_some() {
        state.errors.reset(&key);
        return Ok(Action::await_change());
    }
    if state
        .superseded
        .is_stale(&key, certificate.metadata.resource_version.as_ref())
    {
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    let action = reconcile_certificate(&certificate, &state).await?;
    state.errors.reset(&key);
    Ok(action)
}

// ---------------------------------------------------------------------------------------------
// Gathering facts.
// ---------------------------------------------------------------------------------------------

fn owned_by(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|o| o.uid == uid)
}

fn secret_string(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .filter(|b| !b.0.is_empty())
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

/// A private key from a Secret's `tls.key`, parsed; the KeyPair stays with the caller.
fn read_key(pem: Option<String>) -> (KeyState, Option<rcgen::KeyPair>) {
    let Some(pem) = pem else {
        return (KeyState::Missing, None);
    };
    match keys::parse_pem(&pem) {
        Ok(key) => (
            KeyState::Valid {
                public_key_der: keys::public_key_der(&key),
                spec: KeySpec::of(&key),
            },
            Some(key),
        ),
        Err(e) => (KeyState::Invalid(e.to_string()), None),
    }
}

/// The target Secret's facts, and its key (to copy it for rotation policy `Never` or to
/// re-apply the Secret).
fn secret_facts(
    certificate: &Certificate,
    secret: &Secret,
) -> (SecretFacts, Option<rcgen::KeyPair>) {
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    let (key_state, key) = read_key(secret_string(secret, secret::TLS_KEY_KEY));
    let chain = secret_string(secret, secret::TLS_CERT_KEY);
    let cert_state = match &chain {
        None => CertState::Missing,
        Some(pem) => match x509::parse_leaf_pem(pem) {
            Ok(info) => CertState::Valid(Box::new(info)),
            Err(e) => CertState::Invalid(e.to_string()),
        },
    };
    let drift = match (&key, &cert_state, &chain) {
        (Some(key), CertState::Valid(leaf), Some(chain)) => {
            let existing = secret_string(secret, secret::TLS_KEY_KEY);
            secret::key_pem_for_spec(certificate, key, existing.as_deref())
                .ok()
                .and_then(|key_pem| {
                    let ca = secret_string(secret, secret::CA_KEY);
                    let desired =
                        secret::desired_secret(certificate, leaf, chain, ca.as_deref(), &key_pem);
                    secret::drift(secret, &desired)
                })
        }
        _ => None,
    };
    let facts = SecretFacts {
        has_data: secret.data.as_ref().is_some_and(|d| !d.is_empty()),
        key: key_state,
        cert: cert_state,
        issuer_name: annotations.get(secret::annotation::ISSUER_NAME).cloned(),
        issuer_kind: annotations.get(secret::annotation::ISSUER_KIND).cloned(),
        issuer_group: annotations.get(secret::annotation::ISSUER_GROUP).cloned(),
        certificate_name: annotations
            .get(secret::annotation::CERTIFICATE_NAME)
            .cloned(),
        drift,
    };
    (facts, key)
}

/// Whether this Certificate is the oldest (then first by name) of those naming its Secret.
fn owns_secret(store: &Store<Certificate>, certificate: &Certificate) -> bool {
    let namespace = certificate.namespace();
    let rank = |c: &Certificate| {
        (
            c.metadata.creation_timestamp.as_ref().map(|t| t.0),
            c.name_any(),
        )
    };
    let mine = rank(certificate);
    !store.state().iter().any(|other| {
        other.namespace() == namespace
            && other.spec.secret_name == certificate.spec.secret_name
            && other.metadata.uid != certificate.metadata.uid
            && other.metadata.deletion_timestamp.is_none()
            && rank(other) < mine
    })
}

struct Observed {
    secret: Option<Secret>,
    secret_facts: Option<SecretFacts>,
    secret_key: Option<rcgen::KeyPair>,
    requests: Vec<CertificateRequest>,
    next_keys: Vec<(NextKeyFacts, Option<rcgen::KeyPair>)>,
}

async fn observe(ctx: &Context, certificate: &Certificate) -> Result<Observed, Error> {
    let namespace = certificate.namespace().unwrap_or_default();
    let uid = certificate.metadata.uid.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let requests_api: Api<CertificateRequest> = Api::namespaced(ctx.client.clone(), &namespace);

    let secret = secrets
        .get_opt(&certificate.spec.secret_name)
        .await
        .map_err(kube_error(format!(
            "reading Secret {namespace}/{}",
            certificate.spec.secret_name
        )))?;
    let (secret_facts, secret_key) = match &secret {
        Some(s) => {
            let (facts, key) = secret_facts(certificate, s);
            (Some(facts), key)
        }
        None => (None, None),
    };
    let requests: Vec<CertificateRequest> = requests_api
        .list(&ListParams::default())
        .await
        .map_err(kube_error(format!(
            "listing CertificateRequests in {namespace}"
        )))?
        .items
        .into_iter()
        .filter(|r| owned_by(&r.metadata, &uid))
        .collect();
    let next_keys = secrets
        .list(&ListParams::default().labels(&format!("{}=true", secret::NEXT_PRIVATE_KEY_LABEL)))
        .await
        .map_err(kube_error(format!(
            "listing next private keys in {namespace}"
        )))?
        .items
        .into_iter()
        .filter(|s| owned_by(&s.metadata, &uid) && s.metadata.deletion_timestamp.is_none())
        .map(|s| {
            let (key_state, key) = read_key(secret_string(&s, secret::TLS_KEY_KEY));
            (
                NextKeyFacts {
                    name: s.name_any(),
                    key: key_state,
                },
                key,
            )
        })
        .collect();
    Ok(Observed {
        secret,
        secret_facts,
        secret_key,
        requests,
        next_keys,
    })
}

// ---------------------------------------------------------------------------------------------
// Applying the plan.
// ---------------------------------------------------------------------------------------------

async fn reconcile_certificate(
    certificate: &Certificate,
    state: &CertificateController,
) -> Result<Action, Error> {
    let ctx = &state.ctx;
    let namespace = certificate.namespace().unwrap_or_default();
    let name = certificate.name_any();
    let observed = observe(ctx, certificate).await?;
    let now = Timestamp::now();
    let request_facts: Vec<_> = observed
        .requests
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .map(|r| request::request_facts(r, &certificate.spec))
        .collect();
    let next_key_facts: Vec<NextKeyFacts> =
        observed.next_keys.iter().map(|(f, _)| f.clone()).collect();
    let mut plan = plan::plan(&plan::Inputs {
        certificate,
        secret: observed.secret_facts.as_ref(),
        requests: &request_facts,
        next_keys: &next_key_facts,
        owns_secret: owns_secret(&state.store, certificate),
        now,
        backoff_min: ctx.config.issuance_backoff_min,
        backoff_max: ctx.config.issuance_backoff_max,
    });

    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let requests_api: Api<CertificateRequest> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut events: Vec<(EventType, &'static str, String)> = Vec::new();

    for step in plan.steps.clone() {
        match step {
            Step::DeleteKeySecrets(names) => {
                for n in names {
                    delete_ignoring_missing(&secrets, &n, "next private key Secret").await?;
                }
            }
            Step::CreateNextKey { reuse_existing } => {
                let created = create_next_key(
                    certificate,
                    &secrets,
                    if reuse_existing {
                        observed.secret_key.as_ref()
                    } else {
                        None
                    },
                )
                .await;
                match created {
                    Ok(created) => {
                        events.push((
                            EventType::Normal,
                            if reuse_existing { "Reused" } else { "Generated" },
                            if reuse_existing {
                                format!(
                                    "Reusing private key stored in existing Secret resource \"{}\"",
                                    certificate.spec.secret_name
                                )
                            } else {
                                format!("Stored new private key in temporary Secret resource \"{created}\"")
                            },
                        ));
                        plan.status.next_private_key_secret_name = Some(created);
                    }
                    Err(StepError::Kube(e)) => return Err(e),
                    Err(StepError::Invalid(message)) => {
                        fail_issuance(&mut plan, certificate, now, &message, &mut events);
                        break;
                    }
                }
            }
            Step::CreateRequest {
                name: request_name,
                revision,
                key_secret,
            } => {
                let key = observed
                    .next_keys
                    .iter()
                    .find(|(f, _)| f.name == key_secret)
                    .and_then(|(_, k)| k.as_ref());
                let Some(key) = key else {
                    return Err(Error::Internal(format!(
                        "next private key {key_secret} vanished"
                    )));
                };
                match csr::build_csr_pem(&certificate.spec, key) {
                    Ok(csr_pem) => {
                        let cr = request::build_request(
                            certificate,
                            &request_name,
                            revision,
                            &key_secret,
                            &csr_pem,
                        );
                        match requests_api.create(&PostParams::default(), &cr).await {
                            Ok(_) => events.push((
                                EventType::Normal,
                                "Requested",
                                format!(
                                    "Created new CertificateRequest resource \"{request_name}\""
                                ),
                            )),
                            Err(e) if is_status(&e, 409) => {
                                // Created by an earlier pass whose list we did not see yet.
                            }
                            Err(e) => {
                                events.push((
                                    EventType::Warning,
                                    "RequestFailed",
                                    format!("Failed to create CertificateRequest: {e}"),
                                ));
                                publish(ctx, certificate, &events).await;
                                return Err(kube_error(format!(
                                    "creating CertificateRequest {request_name}"
                                ))(e)
                                .into());
                            }
                        }
                    }
                    Err(e) => {
                        fail_issuance(
                            &mut plan,
                            certificate,
                            now,
                            &format!("the certificate signing request could not be built: {e}"),
                            &mut events,
                        );
                        break;
                    }
                }
            }
            Step::DeleteRequests(names) => {
                for n in names {
                    match requests_api.delete(&n, &DeleteParams::default()).await {
                        Ok(_) => {}
                        Err(e) if is_status(&e, 404) => {}
                        Err(e) => {
                            return Err(
                                kube_error(format!("deleting CertificateRequest {n}"))(e).into()
                            );
                        }
                    }
                }
            }
            Step::WriteSecret {
                request: request_name,
                key_secret,
            } => {
                let request = observed
                    .requests
                    .iter()
                    .find(|r| r.metadata.name.as_deref() == Some(request_name.as_str()))
                    .ok_or_else(|| Error::Internal(format!("request {request_name} vanished")))?;
                let key = observed
                    .next_keys
                    .iter()
                    .find(|(f, _)| f.name == key_secret)
                    .and_then(|(_, k)| k.as_ref())
                    .ok_or_else(|| {
                        Error::Internal(format!("next private key {key_secret} vanished"))
                    })?;
                let status = request.status.clone().unwrap_or_default();
                let chain = status
                    .certificate
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .unwrap_or_default();
                let ca = status
                    .ca
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned());
                write_secret(
                    certificate,
                    &secrets,
                    observed.secret.as_ref(),
                    &chain,
                    ca.as_deref(),
                    key,
                    None,
                )
                .await?;
            }
            Step::RewriteSecret => {
                let (Some(existing), Some(key)) =
                    (observed.secret.as_ref(), observed.secret_key.as_ref())
                else {
                    continue;
                };
                let chain = secret_string(existing, secret::TLS_CERT_KEY).unwrap_or_default();
                let ca = secret_string(existing, secret::CA_KEY);
                let key_pem = secret_string(existing, secret::TLS_KEY_KEY);
                write_secret(
                    certificate,
                    &secrets,
                    Some(existing),
                    &chain,
                    ca.as_deref(),
                    key,
                    key_pem.as_deref(),
                )
                .await?;
                tracing::info!(
                    namespace = %namespace, certificate = %name,
                    "updated the metadata of Secret {}", certificate.spec.secret_name
                );
            }
        }
    }

    for event in &plan.events {
        events.push((
            if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            event.reason,
            event.message.clone(),
        ));
    }
    write_status(state, certificate, &plan.status).await?;
    if let Some(audit) = &plan.audit {
        log_audit(certificate, audit);
    }
    publish(ctx, certificate, &events).await;
    Ok(match plan.requeue_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// A step that could not be carried out: an API error (retried), or an input certsmith cannot
/// honour (an issuance failure, backed off like one).
enum StepError {
    Kube(Error),
    Invalid(String),
}

/// Records an issuance failure that happened while applying the plan (the key or CSR could not
/// be made): `Issuing=False`, one more failed attempt, a Warning Event, an audit record.
fn fail_issuance(
    plan: &mut Plan,
    certificate: &Certificate,
    now: Timestamp,
    problem: &str,
    events: &mut Vec<(EventType, &'static str, String)>,
) {
    let message = format!("{}{problem}", plan::FAILED_PREFIX);
    let status = &mut plan.status;
    status.last_failure_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
    status.failed_issuance_attempts = Some(status.failed_issuance_attempts.unwrap_or(0) + 1);
    let mut conds = status.conditions.take().unwrap_or_default();
    conditions::set(
        &mut conds,
        CertificateCondition::new(
            CertificateCondition::ISSUING,
            ConditionStatus::False,
            "Failed",
            &message,
            certificate.metadata.generation,
        ),
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
    );
    status.conditions = Some(conds);
    events.push((EventType::Warning, "Failed", message.clone()));
    plan.audit = Some(plan::Audit {
        event: "failed",
        revision: status.revision.unwrap_or(0) + 1,
        serial: None,
        not_after: None,
        dns_names: certificate.spec.dns_names.clone().unwrap_or_default(),
        reason: Some("Failed".into()),
        message: Some(message),
    });
}

async fn delete_ignoring_missing(api: &Api<Secret>, name: &str, what: &str) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(kube_error(format!("deleting {what} {name}"))(e).into()),
    }
}

/// Creates the next-private-key Secret with `reuse` (rotation policy `Never`) or a new key;
/// returns its name.
async fn create_next_key(
    certificate: &Certificate,
    secrets: &Api<Secret>,
    reuse: Option<&rcgen::KeyPair>,
) -> Result<String, StepError> {
    let encoding = KeyEncoding::for_certificate(&certificate.spec);
    let key_pem = match reuse {
        Some(key) => {
            keys::encode_pem(key, encoding).map_err(|e| StepError::Invalid(e.to_string()))?
        }
        None => {
            let spec = KeySpec::for_certificate(&certificate.spec)
                .map_err(|e| StepError::Invalid(e.to_string()))?;
            // RSA generation can take a while: keep it off the async workers.
            let generated = tokio::task::spawn_blocking(move || spec.generate())
                .await
                .map_err(|e| StepError::Kube(Error::Internal(e.to_string())))?
                .map_err(|e| StepError::Invalid(e.to_string()))?;
            keys::encode_pem(&generated, encoding).map_err(|e| StepError::Invalid(e.to_string()))?
        }
    };
    let created = secrets
        .create(
            &PostParams::default(),
            &secret::next_key_secret(certificate, &key_pem),
        )
        .await
        .map_err(|e| {
            StepError::Kube(kube_error("creating the next private key Secret")(e).into())
        })?;
    Ok(created.name_any())
}

/// Applies the target Secret. Refuses a chain whose leaf does not match the key: a Secret never
/// holds a `tls.key` that does not match its `tls.crt`.
async fn write_secret(
    certificate: &Certificate,
    secrets: &Api<Secret>,
    existing: Option<&Secret>,
    chain: &str,
    ca: Option<&str>,
    key: &rcgen::KeyPair,
    existing_key_pem: Option<&str>,
) -> Result<(), Error> {
    csr::certificate_matches_key(chain, key).map_err(Error::Internal)?;
    let leaf = x509::parse_leaf_pem(chain).map_err(|e| Error::Internal(e.to_string()))?;
    let key_pem = secret::key_pem_for_spec(certificate, key, existing_key_pem)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let desired = secret::desired_secret(certificate, &leaf, chain, ca, &key_pem);
    let existing_type = existing.and_then(|s| s.type_.as_deref());
    let body = secret::apply_body(certificate, &desired, existing_type);
    secrets
        .patch(
            &certificate.spec.secret_name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(kube_error(format!(
            "applying Secret {}",
            certificate.spec.secret_name
        )))?;
    Ok(())
}

/// Writes the status when it changed: a merge patch of the whole status (fields that went away
/// are nulled), conditional on the observed resourceVersion.
async fn write_status(
    state: &CertificateController,
    certificate: &Certificate,
    status: &CertificateStatus,
) -> Result<(), Error> {
    let old = serde_json::to_value(certificate.status.clone().unwrap_or_default())
        .map_err(|e| Error::Internal(e.to_string()))?;
    let new = serde_json::to_value(status).map_err(|e| Error::Internal(e.to_string()))?;
    if old == new {
        return Ok(());
    }
    let mut body = new.as_object().cloned().unwrap_or_default();
    if let Value::Object(old) = &old {
        for key in old.keys() {
            body.entry(key.clone()).or_insert(Value::Null);
        }
    }
    let patch = json!({
        "metadata": {"resourceVersion": certificate.metadata.resource_version},
        "status": body,
    });
    let api: Api<Certificate> = Api::namespaced(
        state.ctx.client.clone(),
        &certificate.namespace().unwrap_or_default(),
    );
    api.patch_status(
        &certificate.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(kube_error("writing the Certificate status"))?;
    state.superseded.record(
        object_key(certificate),
        certificate.metadata.resource_version.as_ref(),
    );
    Ok(())
}

async fn publish(
    ctx: &Context,
    certificate: &Certificate,
    events: &[(EventType, &'static str, String)],
) {
    for (type_, reason, message) in events {
        ctx.event(certificate, *type_, reason, message.clone())
            .await;
    }
}

/// The one structured log record of an issuance, renewal or failure.
fn log_audit(certificate: &Certificate, audit: &plan::Audit) {
    let namespace = certificate.namespace().unwrap_or_default();
    let name = certificate.name_any();
    let issuer = &certificate.spec.issuer_ref;
    let dns_names = audit.dns_names.join(",");
    match audit.event {
        "failed" => tracing::warn!(
            event = audit.event,
            namespace = %namespace,
            certificate = %name,
            dns_names = %dns_names,
            issuer_kind = issuer.kind_or_default(),
            issuer_name = %issuer.name,
            revision = audit.revision,
            reason = audit.reason.as_deref().unwrap_or_default(),
            message = audit.message.as_deref().unwrap_or_default(),
            "certificate issuance failed"
        ),
        _ => tracing::info!(
            event = audit.event,
            namespace = %namespace,
            certificate = %name,
            dns_names = %dns_names,
            serial = audit.serial.as_deref().unwrap_or_default(),
            not_after = %audit.not_after.map(|t| t.to_string()).unwrap_or_default(),
            issuer_kind = issuer.kind_or_default(),
            issuer_name = %issuer.name,
            revision = audit.revision,
            "certificate {}", audit.event
        ),
    }
}

/// The ObjectRef of a Certificate (used by the tests and other controllers).
pub fn object_ref(certificate: &Certificate) -> ObjectRef<Certificate> {
    ObjectRef::from_obj(certificate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::certificate::CertificateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
    use kube::runtime::reflector;

    fn certificate(name: &str, secret: &str, created: &str) -> Certificate {
        let mut c = Certificate::new(
            name,
            CertificateSpec {
                secret_name: secret.into(),
                ..Default::default()
            },
        );
        c.metadata.namespace = Some("apps".into());
        c.metadata.uid = Some(format!("uid-{name}"));
        c.metadata.creation_timestamp = Some(Time(created.parse().unwrap()));
        c
    }

    fn store_of(certificates: &[Certificate]) -> Store<Certificate> {
        let (store, mut writer) = reflector::store();
        for c in certificates {
            writer.apply_watcher_event(&watcher::Event::Apply(c.clone()));
        }
        store
    }

    fn secret_meta(
        name: &str,
        annotations: &[(&str, &str)],
        owner: Option<&str>,
    ) -> PartialObjectMeta<Secret> {
        PartialObjectMeta::<Secret> {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("apps".into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                owner_references: owner.map(|o| {
                    vec![OwnerReference {
                        api_version: "cert-manager.io/v1".into(),
                        kind: "Certificate".into(),
                        name: o.into(),
                        uid: format!("uid-{o}"),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn secrets_map_to_their_certificates() {
        let store = store_of(&[
            certificate("web", "web-tls", "2026-01-01T00:00:00Z"),
            certificate("api", "api-tls", "2026-01-01T00:00:00Z"),
        ]);
        let names = |refs: Vec<ObjectRef<Certificate>>| {
            refs.into_iter()
                .map(|r| (r.name, r.namespace.unwrap_or_default()))
                .collect::<Vec<_>>()
        };
        // By spec.secretName.
        assert_eq!(
            names(certificates_for_secret(
                &store,
                &secret_meta("web-tls", &[], None)
            )),
            [("web".to_string(), "apps".to_string())]
        );
        // By the certificate-name annotation (a Secret whose Certificate moved on).
        assert_eq!(
            names(certificates_for_secret(
                &store,
                &secret_meta(
                    "old-tls",
                    &[(secret::annotation::CERTIFICATE_NAME, "api")],
                    None
                )
            )),
            [("api".to_string(), "apps".to_string())]
        );
        // A next private key, by its owner.
        assert_eq!(
            names(certificates_for_secret(
                &store,
                &secret_meta("web-x7k2p", &[], Some("web"))
            )),
            [("web".to_string(), "apps".to_string())]
        );
        assert!(certificates_for_secret(&store, &secret_meta("other", &[], None)).is_empty());
    }

    #[test]
    fn the_oldest_certificate_owns_a_shared_secret() {
        let older = certificate("b-older", "shared-tls", "2026-01-01T00:00:00Z");
        let newer = certificate("a-newer", "shared-tls", "2026-02-01T00:00:00Z");
        let alone = certificate("alone", "alone-tls", "2026-03-01T00:00:00Z");
        let store = store_of(&[older.clone(), newer.clone(), alone.clone()]);
        assert!(owns_secret(&store, &older));
        assert!(!owns_secret(&store, &newer));
        assert!(owns_secret(&store, &alone));
        // Same age: the first by name wins.
        let twin = certificate("a-twin", "shared-tls", "2026-01-01T00:00:00Z");
        let store = store_of(&[older.clone(), twin.clone()]);
        assert!(owns_secret(&store, &twin));
        assert!(!owns_secret(&store, &older));
    }
}
