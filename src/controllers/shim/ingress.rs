//! Ingress → Certificates (cert-manager's `ingress-shim`).
//!
//! Watches Ingresses and the Certificates they own. For an Ingress with a shim annotation
//! ([`plan::has_shim_annotation`]) it keeps one Certificate per TLS `secretName`, written with
//! server-side apply (field manager `certsmith`) only when it differs from what the annotations
//! ask for. An Ingress without a shim annotation is left alone, and so are its Certificates (as
//! in cert-manager: removing the annotation does not delete them). A Certificate of the same
//! name that the Ingress does not control is never touched. Invalid or conflicting annotations
//! produce a `BadConfig` Warning Event on the Ingress and no write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, api::ObjectMeta};
use serde_json::json;

use super::plan::{self, TlsBlock};
use crate::api::Certificate;
use crate::controllers::{Context, FIELD_MANAGER, KubeError, Shutdown, kube_error};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] KubeError),
}

/// Runs the Ingress shim until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let client = ctx.client.clone();
    let (ingresses, certificates): (Api<Ingress>, Api<Certificate>) = match &ctx.config.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    Controller::new(ingresses, watcher::Config::default())
        .owns(certificates, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            crate::runtime::metrics::record_sync("ingress-shim", result.is_ok());
            if let Err(error) = result {
                tracing::debug!(%error, "ingress-shim reconcile");
            }
        })
        .await;
}

fn error_policy(ingress: Arc<Ingress>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(
        ingress = %format!("{}/{}", ingress.namespace().unwrap_or_default(), ingress.name_any()),
        %error,
        "ingress-shim reconcile failed"
    );
    Action::requeue(Duration::from_secs(5))
}

/// The TLS entries of an Ingress.
pub fn tls_blocks(ingress: &Ingress) -> Vec<TlsBlock> {
    ingress
        .spec
        .as_ref()
        .and_then(|s| s.tls.as_ref())
        .into_iter()
        .flatten()
        .map(|tls| TlsBlock {
            hosts: tls.hosts.clone().unwrap_or_default(),
            secret_name: tls.secret_name.clone().unwrap_or_default(),
        })
        .collect()
}

/// The body of a server-side apply of `cert`.
fn apply_body(cert: &Certificate) -> serde_json::Value {
    let meta = &cert.metadata;
    let mut metadata = json!({
        "name": meta.name,
        "namespace": meta.namespace,
        "ownerReferences": meta.owner_references,
    });
    if let Some(labels) = &meta.labels {
        metadata["labels"] = json!(labels);
    }
    if let Some(annotations) = &meta.annotations {
        metadata["annotations"] = json!(annotations);
    }
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": metadata,
        "spec": cert.spec,
    })
}

async fn reconcile(ingress: Arc<Ingress>, ctx: Arc<Context>) -> Result<Action, Error> {
    let tls = tls_blocks(&ingress);
    sync(&ctx, ingress.as_ref(), &tls, &BTreeMap::new(), true).await
}

/// Brings the Certificates of an Ingress or Gateway `source` to what its annotations and `tls`
/// entries ask for; `extra_annotations` go onto every Certificate. Shared by both shims.
pub(super) async fn sync<K>(
    ctx: &Context,
    source: &K,
    tls: &[TlsBlock],
    extra_annotations: &BTreeMap<String, String>,
    ingress: bool,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
{
    let kind = K::kind(&());
    if source.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let settings = &ctx.config.shim;
    if !plan::has_shim_annotation(source.annotations(), settings, ingress) {
        // cert-manager leaves the Certificates of an object that lost its annotation in place.
        return Ok(Action::await_change());
    }
    let namespace = source.namespace().unwrap_or_default();
    let uid = source.meta().uid.clone().unwrap_or_default();
    let Some(owner) = source.controller_owner_ref(&()) else {
        return Ok(Action::await_change());
    };
    let meta = ObjectMeta {
        name: source.meta().name.clone(),
        namespace: source.meta().namespace.clone(),
        labels: source.meta().labels.clone(),
        annotations: source.meta().annotations.clone(),
        ..ObjectMeta::default()
    };
    let mut desired = match plan::desired_certificates(&meta, owner, tls, settings) {
        Ok(desired) => desired,
        Err(message) => {
            ctx.event(source, EventType::Warning, "BadConfig", message)
                .await;
            return Ok(Action::await_change());
        }
    };
    if !extra_annotations.is_empty() {
        for cert in &mut desired {
            cert.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .extend(extra_annotations.clone());
        }
    }
    let certificates: Api<Certificate> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = certificates
        .list(&ListParams::default())
        .await
        .map_err(kube_error(format!("listing Certificates in {namespace}")))?
        .items;
    for action in plan::actions(&desired, &existing, &uid) {
        match action {
            plan::Action::Create(cert) | plan::Action::Update(cert) => {
                let name = cert.name_any();
                let created = !existing.iter().any(|c| c.name_any() == name);
                certificates
                    .patch(
                        &name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&apply_body(&cert)),
                    )
                    .await
                    .map_err(kube_error(format!(
                        "applying Certificate {namespace}/{name}"
                    )))?;
                let (reason, verb) = if created {
                    ("CreateCertificate", "created")
                } else {
                    ("UpdateCertificate", "updated")
                };
                ctx.event(
                    source,
                    EventType::Normal,
                    reason,
                    format!("Successfully {verb} Certificate \"{name}\""),
                )
                .await;
            }
            plan::Action::NotOwned(name) => {
                ctx.event(
                    source,
                    EventType::Warning,
                    "BadConfig",
                    format!(
                        "Certificate \"{name}\" already exists and is not owned by this {kind}; \
                         leaving it alone"
                    ),
                )
                .await;
            }
            plan::Action::Delete(name) => {
                match certificates.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => {
                        return Err(
                            kube_error(format!("deleting Certificate {namespace}/{name}"))(e)
                                .into(),
                        );
                    }
                }
                ctx.event(
                    source,
                    EventType::Normal,
                    "DeleteCertificate",
                    format!("Successfully deleted unrequired Certificate \"{name}\""),
                )
                .await;
            }
        }
    }
    Ok(Action::await_change())
}
