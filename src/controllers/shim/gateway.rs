//! Gateway → Certificates (cert-manager's `gateway-shim`, behind `--enable-gateway-api`).
//!
//! For a Gateway API Gateway with a shim annotation, one Certificate per Secret named in a
//! listener's `tls.certificateRefs`, with the hostnames of the listeners that name it, and the
//! Certificate annotations `acme.cert-manager.io/http01-parentrefkind: Gateway` and
//! `…-parentrefname: <gateway>` (for a `gatewayHTTPRoute` solver). Everything else (issuer and
//! spec annotations, ownership, no churn, removal) is as for Ingresses: see [`super::ingress`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{CustomResource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ingress::{Error, sync};
use super::plan::{TlsBlock, override_annotation};
use crate::api::Certificate;
use crate::controllers::{Context, Shutdown};

/// The part of a `gateway.networking.k8s.io/v1` Gateway the shim reads (other fields are
/// ignored when read, and never written).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "Gateway",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default)]
    pub gateway_class_name: String,
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default)]
    pub port: i32,
    #[serde(default)]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// `Terminate` (the default) or `Passthrough`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_refs: Option<Vec<SecretObjectReference>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretObjectReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The TLS entries of a Gateway's listeners: each Secret of a terminating listener's
/// `certificateRefs` with the listener's hostname. Listeners without TLS, and `Passthrough`
/// listeners, need no Certificate. A TLS listener without a hostname, or a reference to
/// anything but a Secret of the Gateway's own namespace, is an error (`BadConfig`).
pub fn listener_blocks(listeners: &[Listener], namespace: &str) -> Result<Vec<TlsBlock>, String> {
    let mut blocks: Vec<TlsBlock> = Vec::new();
    let mut errors = Vec::new();
    for (i, listener) in listeners.iter().enumerate() {
        let Some(tls) = &listener.tls else { continue };
        if tls.mode.as_deref().is_some_and(|m| m != "Terminate") {
            continue;
        }
        let path = format!("spec.listeners[{i}]");
        let Some(hostname) = listener.hostname.clone().filter(|h| !h.is_empty()) else {
            errors.push(format!("{path}.hostname: the hostname cannot be empty"));
            continue;
        };
        let refs = tls.certificate_refs.as_deref().unwrap_or_default();
        if refs.is_empty() {
            errors.push(format!(
                "{path}.tls.certificateRefs: listener has no certificateRefs"
            ));
        }
        for (j, r) in refs.iter().enumerate() {
            let group_ok = matches!(r.group.as_deref(), None | Some("") | Some("core"));
            let kind_ok = matches!(r.kind.as_deref(), None | Some("Secret"));
            let namespace_ok = r.namespace.as_deref().is_none_or(|n| n == namespace);
            if !(group_ok && kind_ok) {
                errors.push(format!(
                    "{path}.tls.certificateRefs[{j}]: only Secrets of the core group are supported"
                ));
            } else if !namespace_ok {
                errors.push(format!(
                    "{path}.tls.certificateRefs[{j}].namespace: cross-namespace secret references \
                     are not allowed"
                ));
            } else {
                match blocks.iter_mut().find(|b| b.secret_name == r.name) {
                    Some(b) if !b.hosts.contains(&hostname) => b.hosts.push(hostname.clone()),
                    Some(_) => {}
                    None => blocks.push(TlsBlock {
                        hosts: vec![hostname.clone()],
                        secret_name: r.name.clone(),
                    }),
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(blocks)
    } else {
        Err(errors.join("; "))
    }
}

/// The annotations every Certificate of Gateway `name` carries.
pub fn parent_ref_annotations(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            override_annotation::PARENT_REF_KIND.to_owned(),
            "Gateway".to_owned(),
        ),
        (
            override_annotation::PARENT_REF_NAME.to_owned(),
            name.to_owned(),
        ),
    ])
}

/// Runs the Gateway shim until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let client = ctx.client.clone();
    let (gateways, certificates): (Api<Gateway>, Api<Certificate>) = match &ctx.config.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    Controller::new(gateways, watcher::Config::default())
        .owns(certificates, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            crate::runtime::metrics::record_sync("gateway-shim", result.is_ok());
            if let Err(error) = result {
                tracing::debug!(%error, "gateway-shim reconcile");
            }
        })
        .await;
}

fn error_policy(gateway: Arc<Gateway>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(
        gateway = %format!("{}/{}", gateway.namespace().unwrap_or_default(), gateway.name_any()),
        %error,
        "gateway-shim reconcile failed"
    );
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(gateway: Arc<Gateway>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !super::plan::has_shim_annotation(gateway.annotations(), &ctx.config.shim, false) {
        return Ok(Action::await_change());
    }
    let namespace = gateway.namespace().unwrap_or_default();
    let tls = match listener_blocks(&gateway.spec.listeners, &namespace) {
        Ok(tls) => tls,
        Err(message) => {
            ctx.event(
                gateway.as_ref(),
                kube::runtime::events::EventType::Warning,
                "BadConfig",
                message,
            )
            .await;
            return Ok(Action::await_change());
        }
    };
    let extra = parent_ref_annotations(&gateway.name_any());
    sync(&ctx, gateway.as_ref(), &tls, &extra, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(hostname: Option<&str>, tls: Option<serde_json::Value>) -> Listener {
        Listener {
            name: "l".into(),
            hostname: hostname.map(String::from),
            port: 443,
            protocol: "HTTPS".into(),
            tls: tls.map(|t| serde_json::from_value(t).unwrap()),
        }
    }

    #[test]
    fn terminating_listeners_become_tls_entries() {
        let listeners = vec![
            listener(Some("plain.example.com"), None),
            listener(
                Some("a.example.com"),
                Some(serde_json::json!({"certificateRefs": [{"name": "a-tls"}]})),
            ),
            listener(
                Some("b.example.com"),
                Some(serde_json::json!({"mode": "Terminate",
                    "certificateRefs": [{"name": "a-tls", "kind": "Secret", "group": ""}]})),
            ),
            listener(
                None,
                Some(
                    serde_json::json!({"mode": "Passthrough", "certificateRefs": [{"name": "p"}]}),
                ),
            ),
        ];
        assert_eq!(
            listener_blocks(&listeners, "apps").unwrap(),
            vec![TlsBlock {
                hosts: vec!["a.example.com".into(), "b.example.com".into()],
                secret_name: "a-tls".into()
            }]
        );
    }

    #[test]
    fn invalid_listeners_are_errors() {
        let cases = [
            (
                listener(
                    None,
                    Some(serde_json::json!({"certificateRefs": [{"name": "x"}]})),
                ),
                "hostname",
            ),
            (
                listener(Some("a"), Some(serde_json::json!({}))),
                "no certificateRefs",
            ),
            (
                listener(
                    Some("a"),
                    Some(
                        serde_json::json!({"certificateRefs": [{"name": "x", "kind": "ConfigMap"}]}),
                    ),
                ),
                "only Secrets",
            ),
            (
                listener(
                    Some("a"),
                    Some(
                        serde_json::json!({"certificateRefs": [{"name": "x", "namespace": "other"}]}),
                    ),
                ),
                "cross-namespace",
            ),
        ];
        for (l, want) in cases {
            let e = listener_blocks(&[l], "apps").unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        // The same namespace, spelt out, is fine.
        let ok = listener(
            Some("a"),
            Some(serde_json::json!({"certificateRefs": [{"name": "x", "namespace": "apps"}]})),
        );
        assert_eq!(listener_blocks(&[ok], "apps").unwrap().len(), 1);
    }

    #[test]
    fn gateway_certificates_name_their_parent() {
        let a = parent_ref_annotations("gw");
        assert_eq!(a["acme.cert-manager.io/http01-parentrefkind"], "Gateway");
        assert_eq!(a["acme.cert-manager.io/http01-parentrefname"], "gw");
    }

    #[test]
    fn real_gateways_deserialize() {
        let gw: Gateway = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "apps"},
            "spec": {"gatewayClassName": "c", "listeners": [{"name": "https", "port": 443,
                "protocol": "HTTPS", "hostname": "a.example.com",
                "allowedRoutes": {"namespaces": {"from": "Same"}},
                "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "a"}]}}]},
            "status": {"conditions": []}
        }))
        .unwrap();
        assert_eq!(
            listener_blocks(&gw.spec.listeners, "apps").unwrap()[0].secret_name,
            "a"
        );
    }
}
