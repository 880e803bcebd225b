//! The API surface on a real kube-apiserver: the CRDs install, manifests written for cert-manager
//! are accepted unchanged and read back without losing a field, invalid ones are rejected with a
//! message a person understands, and `kubectl get` shows cert-manager's columns.

use std::path::PathBuf;

use certsmith_e2e::ControlPlane;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

fn manifest(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifests")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn api_for(client: &kube::Client, obj: &Value, namespace: &str) -> Api<DynamicObject> {
    let (group, version) = obj["apiVersion"].as_str().unwrap().split_once('/').unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    if kind == "ClusterIssuer" {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, &resource)
    }
}

/// Creates the object as written and returns the server's answer, or the API error.
async fn create(client: &kube::Client, namespace: &str, obj: &Value) -> Result<Value, kube::Error> {
    let api = api_for(client, obj, namespace);
    let mut obj = obj.clone();
    if obj["kind"] == "ClusterIssuer" {
        // ClusterIssuers are cluster-wide; keep tests in parallel namespaces from colliding.
        let name = format!("{}-{namespace}", obj["metadata"]["name"].as_str().unwrap());
        obj["metadata"]["name"] = Value::from(name);
    }
    let dynamic: DynamicObject = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &dynamic)
        .await
        .map(|o| serde_json::to_value(o).unwrap())
}

/// Every value in `sent` is present, unchanged, in `stored`.
fn assert_preserved(path: &str, sent: &Value, stored: &Value) {
    match (sent, stored) {
        (Value::Object(s), Value::Object(t)) => {
            for (k, v) in s {
                let child = format!("{path}.{k}");
                let got = t
                    .get(k)
                    .unwrap_or_else(|| panic!("{child} was dropped by the server"));
                assert_preserved(&child, v, got);
            }
        }
        (Value::Array(s), Value::Array(t)) => {
            assert_eq!(s.len(), t.len(), "{path}: list length changed");
            for (i, (a, b)) in s.iter().zip(t).enumerate() {
                assert_preserved(&format!("{path}[{i}]"), a, b);
            }
        }
        _ => assert_eq!(sent, stored, "{path} changed"),
    }
}

#[tokio::test]
async fn all_six_crds_are_established() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client);
    for name in [
        "certificates.cert-manager.io",
        "certificaterequests.cert-manager.io",
        "issuers.cert-manager.io",
        "clusterissuers.cert-manager.io",
        "orders.acme.cert-manager.io",
        "challenges.acme.cert-manager.io",
    ] {
        let crd = crds
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        assert!(established, "{name} is not Established");
    }
}

#[tokio::test]
async fn cert_manager_manifests_are_accepted_and_read_back_unchanged() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("surface").await.unwrap();
    for file in [
        "clusterissuer-letsencrypt.yaml",
        "issuer-ca.yaml",
        "issuer-selfsigned.yaml",
        "issuer-gateway-http01.yaml",
        "issuer-vault.yaml",
        "certificate-full.yaml",
        "certificate-ca-nameconstraints.yaml",
        "certificate-literal-subject.yaml",
    ] {
        let sent = manifest(file);
        let stored = create(&client, &ns, &sent)
            .await
            .unwrap_or_else(|e| panic!("{file} was rejected: {e}"));
        assert_preserved(file, &sent["spec"], &stored["spec"]);
    }
}

/// One object of each kind that `kubectl get` lists per namespace.
fn one_of_each_kind() -> Vec<Value> {
    use serde_json::json;
    let csr = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KLS0tLS1FTkQgQ0VSVElGSUNBVEUgUkVRVUVTVC0tLS0tCg==";
    let issuer_ref =
        json!({"name": "letsencrypt-prod", "kind": "ClusterIssuer", "group": "cert-manager.io"});
    vec![
        manifest("certificate-full.yaml"),
        manifest("issuer-ca.yaml"),
        json!({"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
               "metadata": {"name": "full-1"},
               "spec": {"request": csr, "issuerRef": issuer_ref}}),
        json!({"apiVersion": "acme.cert-manager.io/v1", "kind": "Order",
               "metadata": {"name": "full-1-123"},
               "spec": {"request": csr, "issuerRef": issuer_ref, "dnsNames": ["web.example.com"]}}),
        json!({"apiVersion": "acme.cert-manager.io/v1", "kind": "Challenge",
               "metadata": {"name": "full-1-123-456"},
               "spec": {"url": "https://acme.example/chall/1", "authorizationURL": "https://acme.example/authz/1",
                        "dnsName": "web.example.com", "type": "HTTP-01", "token": "tok", "key": "tok.thumb",
                        "solver": {"http01": {"ingress": {"ingressClassName": "nginx"}}}, "issuerRef": issuer_ref}}),
    ]
}

#[tokio::test]
async fn kubectl_get_shows_cert_manager_columns() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("columns").await.unwrap();
    for obj in one_of_each_kind() {
        create(&client, &ns, &obj)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", obj["kind"]));
    }
    // cert-manager v1.21.1's columns: priority-0 ones by default, all with `-o wide`.
    let expected = [
        (
            "certificates",
            "NAME READY SECRET AGE",
            "NAME READY SECRET ISSUER STATUS AGE",
        ),
        (
            "certificaterequests",
            "NAME APPROVED DENIED READY ISSUER REQUESTER AGE",
            "NAME APPROVED DENIED READY ISSUER REQUESTER STATUS AGE",
        ),
        ("issuers", "NAME READY AGE", "NAME READY STATUS AGE"),
        ("orders", "NAME STATE AGE", "NAME STATE ISSUER REASON AGE"),
        (
            "challenges",
            "NAME STATE DOMAIN AGE",
            "NAME STATE DOMAIN REASON AGE",
        ),
    ];
    for (resource, plain, wide) in expected {
        for (args, want) in [(vec![], plain), (vec!["-o", "wide"], wide)] {
            let out = cp
                .kubectl()
                .args(["get", resource, "-n", &ns])
                .args(&args)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "kubectl get {resource}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let header = stdout
                .lines()
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            assert_eq!(header, want, "kubectl get {resource} {args:?}");
        }
    }
    // The short names and the category work as with cert-manager.
    for name in [
        "cert",
        "certs",
        "cr",
        "crs",
        "iss",
        "cert-manager",
        "cert-manager-acme",
    ] {
        let out = cp
            .kubectl()
            .args(["get", name, "-n", &ns])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl get {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cp.kubectl().args(["get", "ciss"]).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl get ciss: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Applies an RFC 7386 merge patch to a JSON value.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// (manifest, merge patch, text the API server's rejection must contain)
fn invalid_cases() -> Vec<(&'static str, Value, &'static str)> {
    use serde_json::json;
    let cert = "certificate-literal-subject.yaml";
    let full = "certificate-full.yaml";
    let le = "clusterissuer-letsencrypt.yaml";
    vec![
        (cert, json!({"spec": {"secretName": null}}), "secretName"),
        (
            cert,
            json!({"spec": {"literalSubject": null}}),
            "at least one of",
        ),
        (full, json!({"spec": {"duration": "30m"}}), "at least 1h"),
        (
            full,
            json!({"spec": {"duration": "ninety days"}}),
            "duration",
        ),
        (full, json!({"spec": {"renewBefore": "1m"}}), "at least 5m"),
        (
            full,
            json!({"spec": {"renewBefore": "3000h"}}),
            "shorter than",
        ),
        (
            full,
            json!({"spec": {"renewBeforePercentage": 10}}),
            "renewBeforePercentage",
        ),
        (
            cert,
            json!({"spec": {"commonName": "app"}}),
            "literalSubject",
        ),
        (
            full,
            json!({"spec": {"revisionHistoryLimit": 0}}),
            "revisionHistoryLimit",
        ),
        (
            full,
            json!({"spec": {"nameConstraints": {"permitted": {"dnsDomains": ["example.com"]}}}}),
            "isCA",
        ),
        (
            full,
            json!({"spec": {"keystores": {"pkcs12": {"passwordSecretRef": {"name": "p", "key": "k"}}}}}),
            "password",
        ),
        (
            full,
            json!({"spec": {"keystores": {"jks": {"passwordSecretRef": null}}}}),
            "password",
        ),
        (
            full,
            json!({"spec": {"usages": ["server auth", "world domination"]}}),
            "world domination",
        ),
        (
            full,
            json!({"spec": {"privateKey": {"algorithm": "ECDSA", "size": 512}}}),
            "256, 384 or 521",
        ),
        (
            full,
            json!({"spec": {"privateKey": {"algorithm": "RSA", "size": 1024}}}),
            "between 2048 and 8192",
        ),
        (
            full,
            json!({"spec": {"privateKey": {"algorithm": "DSA"}}}),
            "DSA",
        ),
        (
            full,
            json!({"spec": {"issuerRef": {"name": ""}}}),
            "issuerRef.name",
        ),
        (
            "issuer-ca.yaml",
            json!({"spec": {"selfSigned": {}}}),
            "exactly one of acme, ca, selfSigned, vault or venafi",
        ),
        (
            "issuer-ca.yaml",
            json!({"spec": {"ca": null}}),
            "exactly one of acme, ca, selfSigned, vault or venafi",
        ),
        (
            le,
            json!({"spec": {"acme": {"solvers": [{"http01": {"ingress": {}}, "dns01": {"cloudflare": {"apiTokenSecretRef": {"name": "t", "key": "k"}}}}]}}}),
            "http01 or dns01",
        ),
        (
            le,
            json!({"spec": {"acme": {"solvers": [{"dns01": {}}]}}}),
            "provider",
        ),
        (
            le,
            json!({"spec": {"acme": {"solvers": [{"http01": {"ingress": {"class": "nginx", "ingressClassName": "nginx"}}}]}}}),
            "class",
        ),
        (
            le,
            json!({"spec": {"acme": {"privateKeySecretRef": null}}}),
            "privateKeySecretRef",
        ),
        (
            le,
            json!({"spec": {"acme": {"externalAccountBinding": {"keyID": null}}}}),
            "keyID",
        ),
    ]
}

#[tokio::test]
async fn invalid_manifests_are_rejected_with_a_clear_message() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("invalid").await.unwrap();
    let mut failures = Vec::new();
    for (i, (file, patch, expected)) in invalid_cases().into_iter().enumerate() {
        let mut obj = manifest(file);
        merge(&mut obj, &patch);
        let name = format!("invalid-{i}");
        obj["metadata"]["name"] = Value::from(name);
        match create(&client, &ns, &obj).await {
            Ok(_) => failures.push(format!(
                "{file} + {patch}: accepted, expected a rejection mentioning {expected:?}"
            )),
            Err(kube::Error::Api(status)) => {
                let message = status.message.clone();
                if status.code != 422 || !message.contains(expected) {
                    failures.push(format!(
                        "{file} + {patch}: HTTP {} {message:?} does not mention {expected:?}",
                        status.code
                    ));
                } else {
                    eprintln!("rejected as expected: {message}");
                }
            }
            Err(other) => failures.push(format!("{file} + {patch}: {other}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn certificate_request_spec_is_immutable_and_approval_is_one_way() {
    use serde_json::json;
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("crimmutable").await.unwrap();
    let cr = json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "CertificateRequest",
        "metadata": {"name": "req"},
        "spec": {
            "request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KLS0tLS1FTkQgQ0VSVElGSUNBVEUgUkVRVUVTVC0tLS0tCg==",
            "issuerRef": {"name": "ca-issuer"},
            "usages": ["digital signature", "key encipherment"]
        }
    });
    create(&client, &ns, &cr)
        .await
        .expect("a CertificateRequest is accepted");
    let api = api_for(&client, &cr, &ns);
    let patch = |v: Value| kube::api::Patch::Merge(v);
    let pp = kube::api::PatchParams::default();
    let err = api
        .patch(
            "req",
            &pp,
            &patch(json!({"spec": {"issuerRef": {"name": "other"}}})),
        )
        .await
        .expect_err("changing the spec is rejected");
    assert!(err.to_string().contains("immutable"), "{err}");

    let condition = |type_: &str, status: &str| {
        json!({"type": type_, "status": status, "reason": "test", "message": "test",
               "lastTransitionTime": "2026-01-01T00:00:00Z"})
    };
    let err = api
        .patch_status(
            "req",
            &pp,
            &patch(json!({"status": {"conditions": [condition("Approved", "False")]}})),
        )
        .await
        .expect_err("Approved=False is rejected");
    assert!(err.to_string().contains("Approved"), "{err}");
    api.patch_status(
        "req",
        &pp,
        &patch(json!({"status": {"conditions": [condition("Approved", "True")]}})),
    )
    .await
    .expect("Approved=True is accepted");
    let err = api
        .patch_status(
            "req",
            &pp,
            &patch(json!({"status": {"conditions": [condition("Approved", "True"), condition("Denied", "True")]}})),
        )
        .await
        .expect_err("Approved and Denied together are rejected");
    assert!(err.to_string().contains("Denied"), "{err}");
    let err = api
        .patch_status("req", &pp, &patch(json!({"status": {"conditions": []}})))
        .await
        .expect_err("removing Approved is rejected");
    assert!(err.to_string().contains("Approved"), "{err}");
}
