//! ACME issuance end to end: the certsmith controller binary runs as a process against the local
//! control plane; Pebble performs real HTTP-01 validation, reaching the solver Pods through the
//! stand-in kubelet and ingress controller.

mod common;

use std::time::Duration;

use certsmith::api::certificate::Certificate;
use certsmith::api::certificate_request::CertificateRequest;
use certsmith::api::issuer::{ClusterIssuer, Issuer};
use certsmith::api::order::Order;
use certsmith::pki::{keys, x509};
use certsmith_e2e::stack::Stack;
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

fn stack() -> &'static Stack {
    Stack::shared(env!("CARGO_BIN_EXE_certsmith"))
}

async fn cluster_issuer(client: &kube::Client, name: &str) {
    let cp = stack().control_plane();
    let api: Api<ClusterIssuer> = Api::all(client.clone());
    if api.get_opt(name).await.unwrap().is_none() {
        let spec = acme_spec(
            &cp.pebble().directory_url(),
            cp.pebble().ca_pem(),
            &format!("{name}-account"),
        );
        create(
            &api,
            json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
                            "metadata": {"name": name}, "spec": spec}),
        )
        .await;
    }
}

fn certificate(name: &str, dns_names: &[&str], issuer: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": name},
        "spec": {
            "secretName": format!("{name}-tls"),
            "dnsNames": dns_names,
            "privateKey": {"algorithm": "ECDSA", "size": 256},
            "issuerRef": issuer,
        }
    })
}

/// Checks the Secret holds a certificate for exactly `dns_names` whose key is `tls.key`.
async fn assert_valid_secret(
    secrets: &Api<Secret>,
    name: &str,
    dns_names: &[&str],
) -> x509::CertInfo {
    let secret = secrets.get(name).await.unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let info = x509::parse_leaf_pem(&secret_text(&secret, "tls.crt")).unwrap();
    let mut got = info.dns_names.clone();
    got.sort();
    let mut want: Vec<String> = dns_names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "SANs of the issued certificate");
    let key = keys::parse_pem(&secret_text(&secret, "tls.key")).unwrap();
    assert!(
        info.has_public_key(&keys::public_key_der(&key)),
        "tls.key does not match tls.crt"
    );
    assert!(
        info.issuer.contains("Pebble"),
        "issued by Pebble, got {}",
        info.issuer
    );
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    let mut alt_names: Vec<String> = annotations["cert-manager.io/alt-names"]
        .split(',')
        .map(String::from)
        .collect();
    alt_names.sort();
    assert_eq!(alt_names, want, "cert-manager.io/alt-names annotation");
    info
}

#[tokio::test]
async fn cluster_issuer_issues_a_multi_name_certificate() {
    let cp = stack().control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("multi").await.unwrap();
    cluster_issuer(&client, "pebble").await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let names = [
        "multi.certsmith.test",
        "www.multi.certsmith.test",
        "api.multi.certsmith.test",
    ];
    create(
        &certs,
        certificate(
            "multi",
            &names,
            json!({"name": "pebble", "kind": "ClusterIssuer"}),
        ),
    )
    .await;
    let cert = wait_for(&certs, "multi", ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
    assert_eq!(revision(&cert), 1);
    let status = cert.status.unwrap();
    assert!(
        status.not_after.is_some() && status.renewal_time.is_some() && status.not_before.is_some()
    );
    let info =
        assert_valid_secret(&Api::namespaced(client.clone(), &ns), "multi-tls", &names).await;
    assert_eq!(
        status.not_after.unwrap().0.as_second(),
        info.not_after.as_second()
    );
    let annotations = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("multi-tls")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap();
    assert_eq!(annotations["cert-manager.io/certificate-name"], "multi");
    assert_eq!(annotations["cert-manager.io/issuer-name"], "pebble");
    assert_eq!(annotations["cert-manager.io/issuer-kind"], "ClusterIssuer");
    // The audit trail: one structured log record naming the Certificate, its DNS names, serial,
    // notAfter and issuer, and an Event on the Certificate.
    let records: Vec<serde_json::Value> = stack()
        .controller_log()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|r: &serde_json::Value| {
            r["event"] == "issued" && r["certificate"] == "multi" && r["namespace"] == ns.as_str()
        })
        .collect();
    assert_eq!(
        records.len(),
        1,
        "one audit record for the issuance: {records:#?}"
    );
    let record = &records[0];
    assert_eq!(
        record["serial"].as_str().map(str::to_lowercase),
        Some(info.serial_hex.clone())
    );
    assert!(record["not_after"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(record["issuer_name"], "pebble");
    for name in names {
        assert!(
            record["dns_names"]
                .as_str()
                .unwrap_or_default()
                .contains(name),
            "{record}"
        );
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    let issued = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .any(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("multi")
                && e.reason.as_deref() == Some("Issuing")
        });
    assert!(issued, "an Issuing event on the Certificate");
    // The solver objects are gone once the challenge is done.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), &ns);
    let solver = ListParams::default().labels("acme.cert-manager.io/http01-solver=true");
    let start = std::time::Instant::now();
    while !pods.list(&solver).await.unwrap().items.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "solver pods were not cleaned up"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn namespaced_issuer_issues_and_reissues_on_secret_deletion_and_spec_change() {
    let cp = stack().control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("issuer").await.unwrap();
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), &ns);
    let spec = acme_spec(
        &cp.pebble().directory_url(),
        cp.pebble().ca_pem(),
        "account",
    );
    create(&issuers, json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "pebble"}, "spec": spec})).await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    create(
        &certs,
        certificate("site", &["site.certsmith.test"], json!({"name": "pebble"})),
    )
    .await;
    wait_for(&certs, "site", ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
    assert_valid_secret(&secrets, "site-tls", &["site.certsmith.test"]).await;

    // The Secret is deleted: certsmith issues again.
    secrets
        .delete("site-tls", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        &certs,
        "site",
        ISSUANCE_TIMEOUT,
        "re-issued after Secret deletion",
        |c| revision(c) == 2 && is_ready(c),
    )
    .await;
    assert_valid_secret(&secrets, "site-tls", &["site.certsmith.test"]).await;

    // The spec changes: certsmith issues a certificate with the new names.
    certs
        .patch(
            "site",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"dnsNames": ["site.certsmith.test", "new.certsmith.test"]}}),
            ),
        )
        .await
        .unwrap();
    wait_for(
        &certs,
        "site",
        ISSUANCE_TIMEOUT,
        "re-issued after a spec change",
        |c| revision(c) == 3 && is_ready(c),
    )
    .await;
    assert_valid_secret(
        &secrets,
        "site-tls",
        &["site.certsmith.test", "new.certsmith.test"],
    )
    .await;

    // Old CertificateRequests are pruned to revisionHistoryLimit (default 1).
    let requests: Api<CertificateRequest> = Api::namespaced(client.clone(), &ns);
    let start = std::time::Instant::now();
    loop {
        let names: Vec<String> = requests
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|r| r.metadata.name)
            .collect();
        if names == ["site-3"] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "CertificateRequests not pruned: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn renewal_rotates_the_key_per_policy() {
    let cp = stack().control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("renew").await.unwrap();
    cluster_issuer(&client, "pebble").await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    // 90-day certificates renewed 5 minutes after issuance would take too long; renew through
    // `Issuing=True` set by hand (what `cmctl renew` does) and through a renewBefore close to the
    // lifetime of Pebble's ten-minute profile is covered in `short_lived_certificate_renews_itself`.
    for (name, policy, rotated) in [("always", "Always", true), ("never", "Never", false)] {
        let mut cert = certificate(
            name,
            &[&format!("{name}.renew.certsmith.test")],
            json!({"name": "pebble", "kind": "ClusterIssuer"}),
        );
        cert["spec"]["privateKey"]["rotationPolicy"] = json!(policy);
        create(&certs, cert).await;
        wait_for(&certs, name, ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
        let key_before = secret_text(
            &secrets.get(&format!("{name}-tls")).await.unwrap(),
            "tls.key",
        );
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        certs
            .patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": [
                {"type": "Issuing", "status": "True", "reason": "ManuallyTriggered", "message": "Certificate re-issuance manually triggered", "lastTransitionTime": now}
            ]}})))
            .await
            .unwrap();
        wait_for(&certs, name, ISSUANCE_TIMEOUT, "renewed", |c| {
            revision(c) == 2 && is_ready(c)
        })
        .await;
        let key_after = secret_text(
            &secrets.get(&format!("{name}-tls")).await.unwrap(),
            "tls.key",
        );
        assert_eq!(key_before != key_after, rotated, "rotationPolicy {policy}");
    }
}

#[tokio::test]
async fn short_lived_certificate_renews_itself() {
    let cp = stack().control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("shortlived").await.unwrap();
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), &ns);
    let mut spec = acme_spec(
        &cp.pebble().directory_url(),
        cp.pebble().ca_pem(),
        "account",
    );
    spec["acme"]["profile"] = json!("tenminutes");
    create(&issuers, json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "ten"}, "spec": spec})).await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let mut cert = certificate("short", &["short.certsmith.test"], json!({"name": "ten"}));
    // Ten-minute certificate, renewed 9m50s before expiry: ten seconds after issuance.
    cert["spec"]["renewBefore"] = json!("9m50s");
    create(&certs, cert).await;
    let first = wait_for(&certs, "short", ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
    let status = first.status.unwrap();
    let lifetime = status
        .not_after
        .clone()
        .unwrap()
        .0
        .duration_since(status.not_before.unwrap().0);
    assert!(
        lifetime.as_secs() <= 600 + 60,
        "Pebble's tenminutes profile, got {lifetime:?}"
    );
    let renewal = status.renewal_time.unwrap().0;
    assert_eq!(
        status
            .not_after
            .unwrap()
            .0
            .duration_since(renewal)
            .as_secs(),
        590
    );
    wait_for(
        &certs,
        "short",
        ISSUANCE_TIMEOUT,
        "renewed at renewalTime",
        |c| revision(c) >= 2 && is_ready(c),
    )
    .await;
}

#[tokio::test]
async fn certificate_with_a_missing_issuer_reports_it_without_a_hot_loop() {
    let cp = stack().control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("noissuer").await.unwrap();
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    create(
        &certs,
        certificate(
            "orphan",
            &["orphan.certsmith.test"],
            json!({"name": "does-not-exist"}),
        ),
    )
    .await;
    let requests: Api<CertificateRequest> = Api::namespaced(client.clone(), &ns);
    let cr = wait_for(
        &requests,
        "orphan-1",
        Duration::from_secs(30),
        "Pending because the issuer is missing",
        |r| {
            r.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.type_ == "Ready"
                            && c.reason.as_deref() == Some("Pending")
                            && c.message.as_deref().unwrap_or("").contains("not found")
                    })
                })
        },
    )
    .await;
    let cert = wait_for(
        &certs,
        "orphan",
        Duration::from_secs(30),
        "Ready=False",
        |c| {
            condition(c, "Ready")
                .is_some_and(|r| r.status == certsmith::api::meta::ConditionStatus::False)
        },
    )
    .await;
    // No hot loop: neither object keeps changing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cr_later = requests.get("orphan-1").await.unwrap();
    let cert_later = certs.get("orphan").await.unwrap();
    assert_eq!(
        cr.metadata.resource_version, cr_later.metadata.resource_version,
        "CertificateRequest churns"
    );
    assert_eq!(
        cert.metadata.resource_version, cert_later.metadata.resource_version,
        "Certificate churns"
    );
    let orders: Api<Order> = Api::namespaced(client, &ns);
    assert!(
        orders
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn external_account_binding_required_by_the_ca() {
    let cp = stack().control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("eab").await.unwrap();
    // An HMAC key as a CA hands it out: base64url without padding.
    let hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let pebble = cp
        .start_pebble(certsmith_e2e::PebbleOptions::with_eab([(
            "kid-certsmith".to_owned(),
            hmac.to_owned(),
        )]))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    create(&secrets, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "eab"},
                            "stringData": {"secret": hmac, "wrong": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}})).await;
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), &ns);
    for (name, key) in [("eab-ok", "secret"), ("eab-wrong", "wrong")] {
        let mut spec = acme_spec(
            &pebble.directory_url(),
            pebble.ca_pem(),
            &format!("{name}-account"),
        );
        spec["acme"]["externalAccountBinding"] =
            json!({"keyID": "kid-certsmith", "keySecretRef": {"name": "eab", "key": key}});
        create(&issuers, json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": name}, "spec": spec})).await;
    }
    let issuer_ready = |status: &'static str| {
        move |i: &Issuer| {
            i.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Ready" && format!("{:?}", c.status) == status)
                })
        }
    };
    let ok = wait_for(
        &issuers,
        "eab-ok",
        Duration::from_secs(60),
        "Ready=True",
        issuer_ready("True"),
    )
    .await;
    assert!(
        ok.status
            .unwrap()
            .acme
            .unwrap()
            .uri
            .unwrap()
            .starts_with("https://")
    );
    let wrong = wait_for(
        &issuers,
        "eab-wrong",
        Duration::from_secs(60),
        "Ready=False",
        issuer_ready("False"),
    )
    .await;
    let condition = wrong
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(condition.reason.as_deref(), Some("ErrRegisterACMEAccount"));
    let message = condition.message.unwrap_or_default();
    assert!(
        !message.contains("AAAAAAAA") && !message.contains(hmac),
        "the EAB key leaked into the condition: {message}"
    );

    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    create(
        &certs,
        certificate("eab", &["eab.certsmith.test"], json!({"name": "eab-ok"})),
    )
    .await;
    wait_for(&certs, "eab", ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
}

#[tokio::test]
async fn failed_validation_backs_off_and_recovers_once_fixed() {
    let cp = stack().control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("failing").await.unwrap();
    let host = format!("broken.{ns}.certsmith.test");
    // The name points at an address where nothing listens, so Pebble's HTTP-01 request fails.
    // `waitInsteadOfSelfCheck` tells certsmith to accept the challenge without its self-check
    // (which would otherwise, correctly, never pass).
    cp.challtestsrv()
        .add_a(&format!("{host}."), &["127.0.0.3"])
        .await
        .unwrap();
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), &ns);
    let mut spec = acme_spec(
        &cp.pebble().directory_url(),
        cp.pebble().ca_pem(),
        "account",
    );
    spec["acme"]["solvers"][0]["waitInsteadOfSelfCheck"] = json!("1s");
    create(&issuers, json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "pebble"}, "spec": spec})).await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    create(
        &certs,
        certificate("broken", &[&host], json!({"name": "pebble"})),
    )
    .await;

    let failed = wait_for(
        &certs,
        "broken",
        ISSUANCE_TIMEOUT,
        "a failed issuance",
        |c| {
            c.status
                .as_ref()
                .and_then(|s| s.failed_issuance_attempts)
                .unwrap_or(0)
                >= 1
        },
    )
    .await;
    let status = failed.status.clone().unwrap();
    assert!(
        status.last_failure_time.is_some(),
        "lastFailureTime is recorded"
    );
    let ready = condition(&failed, "Ready").expect("Ready condition");
    assert_eq!(format!("{:?}", ready.status), "False");
    let issuing = condition(&failed, "Issuing").expect("Issuing condition");
    assert_eq!(format!("{:?}", issuing.status), "False");
    assert_eq!(issuing.reason.as_deref(), Some("Failed"));
    let orders: Api<Order> = Api::namespaced(client.clone(), &ns);
    let states: Vec<String> = orders
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|o| {
            o.status
                .as_ref()?
                .state
                .as_ref()
                .map(|s| format!("{s:?}").to_lowercase())
        })
        .collect();
    assert!(
        states.iter().any(|s| s == "invalid"),
        "the Order is invalid: {states:?}"
    );

    // Fixed: the name now resolves to the ingress. The next attempt, after the backoff, succeeds.
    cp.challtestsrv()
        .post("/clear-a", json!({"host": format!("{host}.")}))
        .await
        .unwrap();
    let fixed = wait_for(
        &certs,
        "broken",
        ISSUANCE_TIMEOUT,
        "Ready=True after the fix",
        is_ready,
    )
    .await;
    assert_eq!(
        fixed.status.unwrap().failed_issuance_attempts.unwrap_or(0),
        0
    );
}
