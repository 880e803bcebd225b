//! Certificates on SelfSigned and CA issuers, end to end on the local control plane, with the
//! issuer, Certificate and CertificateRequest controllers running in this process (each test
//! watches only its own namespace).

mod common;

use std::time::Duration;

use certsmith::api::certificate::Certificate;
use certsmith::api::certificate_request::CertificateRequest;
use certsmith::api::issuer::Issuer;
use certsmith::api::meta::ConditionStatus;
use certsmith::controllers::{self, Config, Context};
use certsmith::pki::{keys, x509};
use certsmith::solvers::http01::Http01Settings;
use certsmith_e2e::ControlPlane;
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use tokio::sync::oneshot;

const TIMEOUT: Duration = Duration::from_secs(60);

/// The controllers of one test, stopped when dropped.
struct Controllers {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Controllers {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn start_controllers(
    client: kube::Client,
    namespace: &str,
    auto_approve: bool,
) -> Controllers {
    let config = Config {
        cluster_resource_namespace: "kube-system".into(),
        namespace: Some(namespace.to_owned()),
        issuance_backoff_min: Duration::from_secs(2),
        issuance_backoff_max: Duration::from_secs(10),
        auto_approve,
        http01: Http01Settings::new("certsmith:test"),
        self_check_retry: Duration::from_secs(1),
        dns01: Default::default(),
        shim: Default::default(),
    };
    let ctx = Context::new(client, config);
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = controllers::shutdown_on(async move {
        let _ = stopped.await;
    });
    let task = tokio::spawn(async move {
        futures::join!(
            controllers::issuer::run(ctx.clone(), shutdown.clone()),
            controllers::certificate::run(ctx.clone(), shutdown.clone()),
            controllers::certificate_request::run(ctx.clone(), shutdown.clone()),
        );
    });
    Controllers {
        stop: Some(stop),
        task: Some(task),
    }
}

struct Setup {
    client: kube::Client,
    namespace: String,
    _controllers: Controllers,
}

async fn setup(prefix: &str) -> Setup {
    setup_with(prefix, true).await
}

async fn setup_with(prefix: &str, auto_approve: bool) -> Setup {
    // RUST_LOG=certsmith=debug shows what the controllers do.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let namespace = cp.create_namespace(prefix).await.unwrap();
    let controllers = start_controllers(client.clone(), &namespace, auto_approve).await;
    Setup {
        client,
        namespace,
        _controllers: controllers,
    }
}

impl Setup {
    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

async fn issuer(setup: &Setup, name: &str, spec: serde_json::Value) -> Issuer {
    let issuers: Api<Issuer> = setup.api();
    create(
        &issuers,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
               "metadata": {"name": name}, "spec": spec}),
    )
    .await;
    wait_for(
        &issuers,
        name,
        TIMEOUT,
        "Issuer Ready=True",
        |i: &Issuer| i.status.as_ref().is_some_and(|s| s.is_ready()),
    )
    .await
}

async fn certificate(setup: &Setup, name: &str, spec: serde_json::Value) {
    create(
        &setup.api::<Certificate>(),
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": name, "annotations": {"example.com/owner": "team-a"}},
               "spec": spec}),
    )
    .await;
}

async fn wait_revision(setup: &Setup, name: &str, revision_wanted: i64) -> Certificate {
    wait_for(
        &setup.api::<Certificate>(),
        name,
        TIMEOUT,
        &format!("Ready=True at revision {revision_wanted}"),
        |c: &Certificate| is_ready(c) && revision(c) == revision_wanted,
    )
    .await
}

/// The Secret's certificate, checked against its key.
fn matching_pair(secret: &Secret) -> x509::CertInfo {
    let info = x509::parse_leaf_pem(&secret_text(secret, "tls.crt")).unwrap();
    let key = keys::parse_pem(&secret_text(secret, "tls.key")).unwrap();
    assert!(
        info.has_public_key(&keys::public_key_der(&key)),
        "tls.key does not match tls.crt"
    );
    info
}

async fn requests_of(setup: &Setup) -> Vec<CertificateRequest> {
    setup
        .api::<CertificateRequest>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

/// Asserts that an object's resourceVersion stays put for a while: nothing rewrites it in a loop.
async fn assert_quiet<K>(api: &Api<K>, name: &str, for_how_long: Duration)
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug + kube::Resource,
{
    let before = api.get(name).await.unwrap().meta().resource_version.clone();
    tokio::time::sleep(for_how_long).await;
    let after = api.get(name).await.unwrap().meta().resource_version.clone();
    assert_eq!(before, after, "{name} was rewritten while nothing changed");
}

#[tokio::test]
async fn self_signed_certificate_is_issued_reissued_and_updated() {
    let setup = setup("selfsigned").await;
    issuer(&setup, "selfsigned", json!({"selfSigned": {}})).await;
    certificate(
        &setup,
        "web",
        json!({
            "secretName": "web-tls",
            "commonName": "web.certsmith.test",
            "dnsNames": ["web.certsmith.test", "www.web.certsmith.test"],
            "ipAddresses": ["192.0.2.10"],
            "duration": "24h",
            "privateKey": {"algorithm": "ECDSA", "size": 256},
            "secretTemplate": {"labels": {"app": "web"}, "annotations": {"team": "a"}},
            "issuerRef": {"name": "selfsigned"},
        }),
    )
    .await;

    // Issued: revision 1, a matching key pair, cert-manager's annotations.
    let cert = wait_revision(&setup, "web", 1).await;
    let status = cert.status.clone().unwrap();
    let ready = condition(&cert, "Ready").unwrap();
    assert_eq!(ready.reason.as_deref(), Some("Ready"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Certificate is up to date and has not expired")
    );
    assert!(
        condition(&cert, "Issuing").is_none(),
        "Issuing is removed on success"
    );
    assert_eq!(status.next_private_key_secret_name, None);
    assert_eq!(status.failed_issuance_attempts, None);
    let (not_before, not_after) = (status.not_before.unwrap().0, status.not_after.unwrap().0);
    assert_eq!(not_after.as_second() - not_before.as_second(), 24 * 3600);
    assert_eq!(
        status.renewal_time.unwrap().0.as_second(),
        not_before.as_second() + 16 * 3600,
        "renewal at 2/3 of the lifetime"
    );

    let secrets: Api<Secret> = setup.api();
    let secret = secrets.get("web-tls").await.unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let info = matching_pair(&secret);
    assert_eq!(info.not_after, not_after);
    let mut dns = info.dns_names.clone();
    dns.sort();
    assert_eq!(dns, ["web.certsmith.test", "www.web.certsmith.test"]);
    assert_eq!(
        secret_text(&secret, "ca.crt"),
        secret_text(&secret, "tls.crt"),
        "a self-signed certificate is its own CA"
    );
    let annotations = secret.metadata.annotations.clone().unwrap();
    let labels = secret.metadata.labels.clone().unwrap();
    assert_eq!(labels["controller.cert-manager.io/fao"], "true");
    assert_eq!(labels["app"], "web");
    assert_eq!(annotations["team"], "a");
    assert_eq!(annotations["cert-manager.io/certificate-name"], "web");
    assert_eq!(
        annotations["cert-manager.io/common-name"],
        "web.certsmith.test"
    );
    assert_eq!(
        annotations["cert-manager.io/alt-names"],
        "web.certsmith.test,www.web.certsmith.test"
    );
    assert_eq!(annotations["cert-manager.io/ip-sans"], "192.0.2.10");
    assert_eq!(annotations["cert-manager.io/uri-sans"], "");
    assert_eq!(annotations["cert-manager.io/issuer-name"], "selfsigned");
    assert_eq!(annotations["cert-manager.io/issuer-kind"], "Issuer");
    assert_eq!(annotations["cert-manager.io/issuer-group"], "");

    // The request: revision and key annotations, the Certificate's own annotations, approved.
    let requests = requests_of(&setup).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.metadata.name.as_deref(), Some("web-1"));
    let request_annotations = request.metadata.annotations.clone().unwrap();
    assert_eq!(
        request_annotations["cert-manager.io/certificate-revision"],
        "1"
    );
    assert_eq!(
        request_annotations["cert-manager.io/certificate-name"],
        "web"
    );
    assert_eq!(request_annotations["example.com/owner"], "team-a");
    assert!(request_annotations.contains_key("cert-manager.io/private-key-secret-name"));
    assert!(request.is_approved());
    assert!(request.is_ready());
    let approved = request.condition("Approved").unwrap();
    assert_eq!(approved.reason.as_deref(), Some("cert-manager.io"));

    // The temporary next-private-key Secret is gone.
    let next_keys = secrets
        .list(&ListParams::default().labels("cert-manager.io/next-private-key=true"))
        .await
        .unwrap();
    assert!(
        next_keys.items.is_empty(),
        "next private key Secrets left behind"
    );

    // Steady state: nothing is rewritten.
    assert_quiet(&setup.api::<Certificate>(), "web", Duration::from_secs(3)).await;
    assert_quiet(&secrets, "web-tls", Duration::from_secs(1)).await;

    // Deleting the Secret re-issues (revision 2) with a new key (rotation policy Always).
    secrets
        .delete("web-tls", &DeleteParams::default())
        .await
        .unwrap();
    wait_revision(&setup, "web", 2).await;
    let reissued = secrets.get("web-tls").await.unwrap();
    let reissued_info = matching_pair(&reissued);
    assert_ne!(
        reissued_info.public_key_der, info.public_key_der,
        "a new key"
    );

    // Changing the DNS names re-issues (revision 3) for the new names.
    setup
        .api::<Certificate>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"dnsNames": ["web.certsmith.test", "api.web.certsmith.test"]}}),
            ),
        )
        .await
        .unwrap();
    wait_revision(&setup, "web", 3).await;
    let updated = matching_pair(&secrets.get("web-tls").await.unwrap());
    let mut dns = updated.dns_names.clone();
    dns.sort();
    assert_eq!(dns, ["api.web.certsmith.test", "web.certsmith.test"]);

    // Revision history limit 1: only the current request is kept.
    let start = std::time::Instant::now();
    loop {
        let names: Vec<String> = requests_of(&setup)
            .await
            .into_iter()
            .filter_map(|r| r.metadata.name)
            .collect();
        if names == ["web-3"] {
            break;
        }
        assert!(start.elapsed() < TIMEOUT, "requests not pruned: {names:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn ca_issuer_signs_leaf_certificates_with_ca_crt() {
    let setup = setup("ca").await;
    issuer(&setup, "selfsigned", json!({"selfSigned": {}})).await;
    certificate(
        &setup,
        "root",
        json!({
            "secretName": "root-ca",
            "isCA": true,
            "commonName": "certsmith test CA",
            "subject": {"organizations": ["certsmith"]},
            "privateKey": {"algorithm": "ECDSA", "size": 384},
            "issuerRef": {"name": "selfsigned"},
        }),
    )
    .await;
    wait_revision(&setup, "root", 1).await;
    let secrets: Api<Secret> = setup.api();
    let ca_secret = secrets.get("root-ca").await.unwrap();
    let ca_info = matching_pair(&ca_secret);
    assert!(ca_info.is_ca);
    assert_eq!(
        ca_secret.metadata.annotations.as_ref().unwrap()["cert-manager.io/subject-organizations"],
        "certsmith"
    );

    issuer(&setup, "ca", json!({"ca": {"secretName": "root-ca"}})).await;
    certificate(
        &setup,
        "leaf",
        json!({
            "secretName": "leaf-tls",
            "dnsNames": ["leaf.certsmith.test"],
            "usages": ["digital signature", "key encipherment", "server auth"],
            "privateKey": {"encoding": "PKCS8"},
            "issuerRef": {"name": "ca", "kind": "Issuer", "group": "cert-manager.io"},
        }),
    )
    .await;
    wait_revision(&setup, "leaf", 1).await;
    let leaf_secret = secrets.get("leaf-tls").await.unwrap();
    let leaf = matching_pair(&leaf_secret);
    assert_eq!(leaf.issuer_raw, ca_info.subject_raw, "signed by the CA");
    assert!(!leaf.is_ca);
    assert_eq!(
        secret_text(&leaf_secret, "ca.crt"),
        secret_text(&ca_secret, "tls.crt"),
        "ca.crt is the CA certificate"
    );
    assert_eq!(
        x509::pem_chain_to_der(&secret_text(&leaf_secret, "tls.crt"))
            .unwrap()
            .len(),
        1,
        "the root is not repeated in tls.crt"
    );
    assert!(secret_text(&leaf_secret, "tls.key").starts_with("-----BEGIN PRIVATE KEY-----"));
    let annotations = leaf_secret.metadata.annotations.unwrap();
    assert_eq!(annotations["cert-manager.io/issuer-name"], "ca");
    assert_eq!(
        annotations["cert-manager.io/issuer-group"],
        "cert-manager.io"
    );
    assert_eq!(annotations["cert-manager.io/common-name"], "");
}

#[tokio::test]
async fn missing_issuer_leaves_the_request_pending_without_a_hot_loop() {
    let setup = setup("noissuer").await;
    certificate(
        &setup,
        "orphan",
        json!({
            "secretName": "orphan-tls",
            "dnsNames": ["orphan.certsmith.test"],
            "privateKey": {"algorithm": "ECDSA"},
            "issuerRef": {"name": "does-not-exist"},
        }),
    )
    .await;
    let requests: Api<CertificateRequest> = setup.api();
    let message =
        "Referenced \"Issuer\" not found: issuer.cert-manager.io \"does-not-exist\" not found";
    let request = wait_for(
        &requests,
        "orphan-1",
        TIMEOUT,
        "Ready=False Pending",
        |r: &CertificateRequest| {
            r.condition("Ready").is_some_and(|c| {
                c.status == ConditionStatus::False
                    && c.reason.as_deref() == Some("Pending")
                    && c.message.as_deref() == Some(message)
            })
        },
    )
    .await;
    assert!(request.is_approved());
    let certificates: Api<Certificate> = setup.api();
    let cert = certificates.get("orphan").await.unwrap();
    let ready = condition(&cert, "Ready").unwrap();
    assert_eq!(ready.status, ConditionStatus::False);
    assert_eq!(ready.reason.as_deref(), Some("DoesNotExist"));
    let issuing = condition(&cert, "Issuing").unwrap();
    assert_eq!(issuing.status, ConditionStatus::True);
    assert_eq!(issuing.reason.as_deref(), Some("DoesNotExist"));

    // No hot loop: neither object is rewritten while nothing changes.
    assert_quiet(&requests, "orphan-1", Duration::from_secs(4)).await;
    assert_quiet(&certificates, "orphan", Duration::from_secs(1)).await;

    // The issuer appears: the pending request is picked up.
    issuer(&setup, "does-not-exist", json!({"selfSigned": {}})).await;
    wait_revision(&setup, "orphan", 1).await;
    matching_pair(&setup.api::<Secret>().get("orphan-tls").await.unwrap());
}

/// Sets the request's conditions as an approver would.
async fn decide(
    requests: &Api<CertificateRequest>,
    name: &str,
    type_: &str,
    reason: &str,
    message: &str,
) {
    let request = requests.get(name).await.unwrap();
    let mut conditions = request
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    conditions.push(
        serde_json::from_value(json!({
            "type": type_, "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }))
        .unwrap(),
    );
    requests
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": conditions}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_denied_request_fails_the_issuance_which_is_retried_after_the_backoff() {
    let setup = setup_with("denied", false).await;
    issuer(&setup, "selfsigned", json!({"selfSigned": {}})).await;
    certificate(
        &setup,
        "gated",
        json!({
            "secretName": "gated-tls",
            "dnsNames": ["gated.certsmith.test"],
            "privateKey": {"algorithm": "ECDSA"},
            "issuerRef": {"name": "selfsigned"},
        }),
    )
    .await;
    let requests: Api<CertificateRequest> = setup.api();
    let first = wait_for(
        &requests,
        "gated-1",
        TIMEOUT,
        "created",
        |_: &CertificateRequest| true,
    )
    .await;
    // Without auto-approval nothing happens to it.
    assert_quiet(&requests, "gated-1", Duration::from_secs(2)).await;
    decide(
        &requests,
        "gated-1",
        "Denied",
        "policy.certsmith.test",
        "not on the list",
    )
    .await;

    // The denial is recorded on the request, and fails the issuance with the denial's reason.
    wait_for(
        &requests,
        "gated-1",
        TIMEOUT,
        "Ready=False Denied",
        |r: &CertificateRequest| {
            r.ready_reason() == Some("Denied")
                && r.status.as_ref().is_some_and(|s| s.failure_time.is_some())
        },
    )
    .await;
    let certificates: Api<Certificate> = setup.api();
    let failed = wait_for(
        &certificates,
        "gated",
        TIMEOUT,
        "Issuing=False",
        |c: &Certificate| {
            condition(c, "Issuing").is_some_and(|i| i.status == ConditionStatus::False)
        },
    )
    .await;
    let issuing = condition(&failed, "Issuing").unwrap();
    assert_eq!(issuing.reason.as_deref(), Some("policy.certsmith.test"));
    assert_eq!(
        issuing.message.as_deref(),
        Some("The certificate request has failed to complete and will be retried: not on the list")
    );
    let status = failed.status.clone().unwrap();
    assert_eq!(status.failed_issuance_attempts, Some(1));
    assert!(status.last_failure_time.is_some());

    // After the backoff (2 s in this test) a new request of the same revision is made...
    let second = wait_for(
        &requests,
        "gated-1",
        TIMEOUT,
        "a new request",
        |r: &CertificateRequest| r.metadata.uid != first.metadata.uid && !r.is_denied(),
    )
    .await;
    assert!(
        second
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_none_or(|c| c.is_empty())
    );
    // ... and once approved, issued; the failure record is cleared.
    decide(
        &requests,
        "gated-1",
        "Approved",
        "policy.certsmith.test",
        "fine now",
    )
    .await;
    let issued = wait_revision(&setup, "gated", 1).await;
    let status = issued.status.unwrap();
    assert_eq!(status.failed_issuance_attempts, None);
    assert_eq!(status.last_failure_time, None);
    matching_pair(&setup.api::<Secret>().get("gated-tls").await.unwrap());
}
