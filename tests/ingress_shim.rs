//! The Ingress and Gateway shims end to end: the certsmith controller binary runs as a process
//! against the local control plane (with the Gateway API CRDs and `--enable-gateway-api`);
//! Ingresses and Gateways annotated as for cert-manager get Certificates, and Pebble validates
//! HTTP-01 through the stand-in ingress controller (Ingresses and HTTPRoutes).

mod common;

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use certsmith::api::certificate::Certificate;
use certsmith::api::challenge::Challenge;
use certsmith::api::issuer::ClusterIssuer;
use certsmith::controllers::shim::gateway::Gateway;
use certsmith::pki::{keys, x509};
use certsmith::solvers::http01::httproute::HTTPRoute;
use certsmith_e2e::ControlPlane;
use certsmith_e2e::stack::{ControllerOptions, Stack};
use common::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

/// The ClusterIssuer the tests' Ingresses name, and the controller's default issuer.
const ISSUER: &str = "pebble-shim";

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let options = ControllerOptions {
            extra_args: vec![
                format!("--default-issuer-name={ISSUER}"),
                "--default-issuer-kind=ClusterIssuer".into(),
                "--enable-gateway-api".into(),
            ],
            ..ControllerOptions::default()
        };
        Stack::start(
            ControlPlane::shared(),
            Path::new(env!("CARGO_BIN_EXE_certsmith")),
            options,
        )
        .unwrap_or_else(|e| panic!("the stack failed to start: {e:#}"))
    })
}

async fn setup(prefix: &str) -> (Client, String) {
    // The Gateway API CRDs, before the controller starts (idempotent).
    let cp = ControlPlane::shared();
    cp.install_crds(&cp.bin_dir().join("gateway-api-crds"))
        .await
        .unwrap();
    let cp = stack().control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(prefix).await.unwrap();
    let api: Api<ClusterIssuer> = Api::all(client.clone());
    if api.get_opt(ISSUER).await.unwrap().is_none() {
        let spec = acme_spec(
            &cp.pebble().directory_url(),
            cp.pebble().ca_pem(),
            &format!("{ISSUER}-account"),
        );
        let issuer = json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
                            "metadata": {"name": ISSUER}, "spec": spec});
        // Several tests may race to create it.
        let _ = api
            .create(
                &Default::default(),
                &serde_json::from_value(issuer).unwrap(),
            )
            .await;
    }
    (client, ns)
}

/// An Ingress named `web` routing `hosts` to a Service `web`, with one TLS entry `web-tls`.
fn ingress(annotations: Value, hosts: &[&str]) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "annotations": annotations, "labels": {"app": "web"}},
        "spec": {
            "ingressClassName": "stand-in",
            "rules": hosts.iter().map(|h| json!({"host": h, "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}
            }]}})).collect::<Vec<_>>(),
            "tls": [{"hosts": hosts, "secretName": "web-tls"}]
        }
    })
}

fn host(ns: &str, label: &str) -> String {
    format!("{label}.{ns}.certsmith.test")
}

async fn patch_annotations(ingresses: &Api<Ingress>, annotations: Value) {
    ingresses
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
        )
        .await
        .unwrap();
}

async fn events(client: &Client, ns: &str, name: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}

/// Checks the Secret holds a Pebble certificate for exactly `dns_names` whose key is `tls.key`.
async fn assert_valid_secret(secrets: &Api<Secret>, name: &str, dns_names: &[&str]) {
    let secret = secrets.get(name).await.unwrap();
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
}

#[tokio::test]
async fn annotated_ingress_gets_a_valid_certificate() {
    let (client, ns) = setup("shim-issue").await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let (a, b) = (host(&ns, "a"), host(&ns, "b"));
    let created = create(
        &ingresses,
        ingress(
            json!({"cert-manager.io/cluster-issuer": ISSUER,
                   "cert-manager.io/private-key-algorithm": "ECDSA"}),
            &[&a, &b],
        ),
    )
    .await;
    let cert = wait_for(&certs, "web-tls", ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
    let owner = cert.owner_references().first().cloned().expect("owner");
    assert_eq!(owner.uid, created.uid().unwrap());
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Ingress", Some(true))
    );
    assert_eq!(cert.spec.secret_name, "web-tls");
    assert_eq!(cert.spec.issuer_ref.name, ISSUER);
    assert_eq!(cert.spec.issuer_ref.kind.as_deref(), Some("ClusterIssuer"));
    assert_eq!(cert.labels().get("app").map(String::as_str), Some("web"));
    assert_valid_secret(&Api::namespaced(client.clone(), &ns), "web-tls", &[&a, &b]).await;
    let reasons: Vec<String> = events(&client, &ns, "web")
        .await
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        reasons.contains(&"CreateCertificate".to_owned()),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn edit_in_place_ingress_solves_through_itself() {
    let (client, ns) = setup("shim-inplace").await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let challenges: Api<Challenge> = Api::namespaced(client.clone(), &ns);
    let a = host(&ns, "inplace");
    create(
        &ingresses,
        ingress(
            json!({"cert-manager.io/cluster-issuer": ISSUER,
                   "acme.cert-manager.io/http01-edit-in-place": "true"}),
            &[&a],
        ),
    )
    .await;
    let cert = wait_for(
        &certs,
        "web-tls",
        Duration::from_secs(30),
        "created",
        |_| true,
    )
    .await;
    assert_eq!(
        cert.annotations()
            .get("acme.cert-manager.io/http01-override-ingress-name")
            .map(String::as_str),
        Some("web")
    );
    assert_eq!(
        cert.annotations()
            .get("cert-manager.io/issue-temporary-certificate")
            .map(String::as_str),
        Some("true")
    );
    // While it is solved, the Challenge names the Ingress, and no solver Ingress is created.
    let start = Instant::now();
    let mut saw_in_place = false;
    loop {
        for c in challenges.list(&ListParams::default()).await.unwrap() {
            let name = c
                .spec
                .solver
                .http01
                .as_ref()
                .and_then(|h| h.ingress.as_ref())
                .and_then(|i| i.name.clone());
            assert_eq!(name.as_deref(), Some("web"), "challenge solver");
            saw_in_place = true;
        }
        let solver_ingresses = ingresses
            .list(&ListParams::default().labels("acme.cert-manager.io/http01-solver=true"))
            .await
            .unwrap();
        assert!(
            solver_ingresses.items.is_empty(),
            "a solver Ingress was created"
        );
        if let Some(cert) = certs.get_opt("web-tls").await.unwrap()
            && is_ready(&cert)
        {
            break;
        }
        assert!(
            start.elapsed() < ISSUANCE_TIMEOUT,
            "not Ready in time: {:#?}",
            certs.get("web-tls").await.unwrap().status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(saw_in_place, "never saw the Challenge");
    assert_valid_secret(&Api::namespaced(client.clone(), &ns), "web-tls", &[&a]).await;
    // The challenge path is gone from the Ingress again.
    let web = ingresses.get("web").await.unwrap();
    let paths: Vec<String> = web
        .spec
        .unwrap()
        .rules
        .unwrap()
        .iter()
        .flat_map(|r| r.http.iter().flat_map(|h| h.paths.iter()))
        .filter_map(|p| p.path.clone())
        .collect();
    assert_eq!(paths, ["/"]);
}

#[tokio::test]
async fn annotation_edits_reach_the_certificate_and_removal_leaves_it() {
    let (client, ns) = setup("shim-edit").await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let a = host(&ns, "edit");
    // tls-acme with the default issuer flags.
    create(
        &ingresses,
        ingress(json!({"kubernetes.io/tls-acme": "true"}), &[&a]),
    )
    .await;
    let cert = wait_for(
        &certs,
        "web-tls",
        Duration::from_secs(30),
        "created",
        |_| true,
    )
    .await;
    assert_eq!(cert.spec.issuer_ref.name, ISSUER);
    assert_eq!(cert.spec.issuer_ref.kind.as_deref(), Some("ClusterIssuer"));
    assert_eq!(
        cert.spec.dns_names.as_deref(),
        Some(std::slice::from_ref(&a))
    );

    patch_annotations(
        &ingresses,
        json!({"cert-manager.io/duration": "720h", "cert-manager.io/alt-names": "extra.certsmith.test",
               "cert-manager.io/private-key-rotation-policy": "Never",
               "acme.cert-manager.io/http01-ingress-class": "stand-in"}),
    )
    .await;
    let cert = wait_for(
        &certs,
        "web-tls",
        Duration::from_secs(30),
        "annotation edits applied",
        |c| c.spec.duration.as_deref() == Some("720h0m0s"),
    )
    .await;
    assert_eq!(
        cert.spec.dns_names.clone().unwrap(),
        [a.clone(), "extra.certsmith.test".into()]
    );
    assert_eq!(
        cert.annotations()
            .get("acme.cert-manager.io/http01-override-ingress-class")
            .map(String::as_str),
        Some("stand-in")
    );

    // Removing an annotation removes what it set.
    patch_annotations(&ingresses, json!({"cert-manager.io/duration": null})).await;
    wait_for(
        &certs,
        "web-tls",
        Duration::from_secs(30),
        "duration removed",
        |c| c.spec.duration.is_none(),
    )
    .await;

    // Removing the trigger annotation leaves the Certificate as it is (as cert-manager does),
    // and later edits no longer reach it.
    patch_annotations(
        &ingresses,
        json!({"kubernetes.io/tls-acme": null, "cert-manager.io/duration": "48h"}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cert = certs.get("web-tls").await.unwrap();
    assert_eq!(cert.spec.duration, None);
    assert_eq!(cert.spec.issuer_ref.name, ISSUER);
}

#[tokio::test]
async fn invalid_annotation_gives_a_warning_and_no_churn() {
    let (client, ns) = setup("shim-invalid").await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let a = host(&ns, "invalid");
    create(
        &ingresses,
        ingress(
            json!({"cert-manager.io/cluster-issuer": ISSUER, "cert-manager.io/duration": "48h"}),
            &[&a],
        ),
    )
    .await;
    let before = wait_for(
        &certs,
        "web-tls",
        Duration::from_secs(30),
        "created",
        |_| true,
    )
    .await;

    // Too short a duration, and two issuers at once.
    patch_annotations(
        &ingresses,
        json!({"cert-manager.io/duration": "10m", "cert-manager.io/issuer": "other"}),
    )
    .await;
    let start = Instant::now();
    let warning = loop {
        let found = events(&client, &ns, "web").await.into_iter().find(|e| {
            e.reason.as_deref() == Some("BadConfig") && e.type_.as_deref() == Some("Warning")
        });
        if let Some(e) = found {
            break e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no BadConfig event"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let note = warning.note.unwrap_or_default();
    assert!(note.contains("cert-manager.io/duration"), "{note}");
    assert!(note.contains("may not be set"), "{note}");
    // Give the shim time to (wrongly) write, then check nothing changed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = certs.get("web-tls").await.unwrap();
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.spec, before.spec);
    assert_eq!(after.spec.duration.as_deref(), Some("48h0m0s"));

    // Fixed: the edit goes through.
    patch_annotations(
        &ingresses,
        json!({"cert-manager.io/duration": "72h", "cert-manager.io/issuer": null}),
    )
    .await;
    wait_for(
        &certs,
        "web-tls",
        Duration::from_secs(30),
        "fixed annotation applied",
        |c| c.spec.duration.as_deref() == Some("72h0m0s"),
    )
    .await;
}

#[tokio::test]
async fn certificates_of_others_are_left_alone() {
    let (client, ns) = setup("shim-foreign").await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let foreign = create(
        &certs,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "web-tls"},
               "spec": {"secretName": "web-tls", "dnsNames": ["mine.certsmith.test"],
                        "issuerRef": {"name": "nobody"}}}),
    )
    .await;
    create(
        &ingresses,
        ingress(
            json!({"cert-manager.io/cluster-issuer": ISSUER}),
            &[&host(&ns, "foreign")],
        ),
    )
    .await;
    let start = Instant::now();
    while !events(&client, &ns, "web")
        .await
        .iter()
        .any(|e| e.reason.as_deref() == Some("BadConfig"))
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no warning");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = certs.get("web-tls").await.unwrap();
    assert_eq!(after.spec, foreign.spec);
    assert!(after.owner_references().is_empty());
}

#[tokio::test]
async fn annotated_gateway_gets_a_certificate_through_an_httproute() {
    let (client, ns) = setup("shim-gateway").await;
    let cp = stack().control_plane();
    let issuers: Api<ClusterIssuer> = Api::all(client.clone());
    let gw_issuer = "pebble-shim-gw";
    if issuers.get_opt(gw_issuer).await.unwrap().is_none() {
        let mut spec = acme_spec(
            &cp.pebble().directory_url(),
            cp.pebble().ca_pem(),
            &format!("{gw_issuer}-account"),
        );
        // parentRefs come from the Gateway the Certificate was made for.
        spec["acme"]["solvers"] = json!([{"http01": {"gatewayHTTPRoute": {
            "serviceType": "ClusterIP", "parentRefs": [{"name": "placeholder"}]}}}]);
        create(
            &issuers,
            json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
                   "metadata": {"name": gw_issuer}, "spec": spec}),
        )
        .await;
    }
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), &ns);
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let challenges: Api<Challenge> = Api::namespaced(client.clone(), &ns);
    let routes: Api<HTTPRoute> = Api::namespaced(client.clone(), &ns);
    let a = host(&ns, "gw");
    let gateway = create(
        &gateways,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "annotations": {"cert-manager.io/cluster-issuer": gw_issuer}},
            "spec": {"gatewayClassName": "stand-in", "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "hostname": a},
                {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": a,
                 "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "gw-tls"}]}}
            ]}
        }),
    )
    .await;
    let cert = wait_for(&certs, "gw-tls", Duration::from_secs(30), "created", |_| {
        true
    })
    .await;
    assert_eq!(cert.owner_references()[0].uid, gateway.uid().unwrap());
    assert_eq!(
        cert.spec.dns_names.as_deref(),
        Some(std::slice::from_ref(&a))
    );
    assert_eq!(
        cert.annotations()
            .get("acme.cert-manager.io/http01-parentrefname")
            .map(String::as_str),
        Some("gw")
    );
    let start = Instant::now();
    let (mut saw_challenge, mut saw_route) = (false, false);
    loop {
        for c in challenges.list(&ListParams::default()).await.unwrap() {
            let parents = c
                .spec
                .solver
                .http01
                .as_ref()
                .and_then(|h| h.gateway_http_route.as_ref())
                .and_then(|r| r.parent_refs.clone())
                .unwrap_or_default();
            assert_eq!(parents.len(), 1, "{parents:?}");
            assert_eq!(
                (parents[0].name.as_str(), parents[0].kind.as_deref()),
                ("gw", Some("Gateway"))
            );
            saw_challenge = true;
        }
        for r in routes.list(&ListParams::default()).await.unwrap() {
            assert_eq!(r.spec.hostnames.as_deref(), Some(std::slice::from_ref(&a)));
            saw_route = true;
        }
        if let Some(cert) = certs.get_opt("gw-tls").await.unwrap()
            && is_ready(&cert)
        {
            break;
        }
        assert!(
            start.elapsed() < ISSUANCE_TIMEOUT,
            "not Ready in time: {:#?}",
            certs.get("gw-tls").await.unwrap().status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        saw_challenge && saw_route,
        "challenge {saw_challenge}, route {saw_route}"
    );
    assert_valid_secret(&Api::namespaced(client.clone(), &ns), "gw-tls", &[&a]).await;
    // The solver HTTPRoute is cleaned up.
    let start = Instant::now();
    while !routes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "HTTPRoute not cleaned up"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
