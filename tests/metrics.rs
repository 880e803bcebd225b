//! Metrics and health end to end: the controller process serves cert-manager's metric names and
//! labels on `--metrics-listen-address` and `/healthz`, `/readyz` on
//! `--internal-healthz-listen-address`; scraped while it issues a certificate through Pebble.

mod common;

use std::time::{Duration, Instant};

use certsmith::api::certificate::Certificate;
use certsmith::api::issuer::ClusterIssuer;
use certsmith_e2e::http::HttpClient;
use certsmith_e2e::stack::Stack;
use common::*;
use kube::api::{Api, DeleteParams};
use serde_json::json;

fn stack() -> &'static Stack {
    Stack::shared(env!("CARGO_BIN_EXE_certsmith"))
}

/// The value of the one series `name{...}` whose labels include every pair of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let prefix = format!("{name}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix) || (labels.is_empty() && l.starts_with(name)))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .find_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
}

async fn scrape(http: &HttpClient) -> String {
    let response = http.get(&stack().metrics_url()).await.unwrap();
    response.success().unwrap();
    String::from_utf8(response.body.to_vec()).unwrap()
}

/// Scrapes until `done` holds, or panics with the last scrape.
async fn scrape_until(http: &HttpClient, what: &str, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = scrape(http).await;
        if done(&text) {
            return text;
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!("timed out waiting for {what}; last scrape:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn metrics_and_health_during_an_issuance() {
    let cp = stack().control_plane();
    let http = HttpClient::new(cp.pebble().ca_pem(), None).unwrap();

    // Health: alive at once, ready once the controllers run.
    let start = Instant::now();
    loop {
        let ready = http
            .get(&format!("{}/readyz", stack().healthz_url()))
            .await
            .map(|r| r.status.as_u16());
        if ready.as_ref().is_ok_and(|s| *s == 200) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "/readyz never answered 200: {ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let healthz = http
        .get(&format!("{}/healthz", stack().healthz_url()))
        .await
        .unwrap();
    assert_eq!(healthz.status.as_u16(), 200);

    // An issuance through a ClusterIssuer.
    let client = cp.client().await.unwrap();
    let issuers: Api<ClusterIssuer> = Api::all(client.clone());
    if issuers.get_opt("metrics").await.unwrap().is_none() {
        let spec = acme_spec(
            &cp.pebble().directory_url(),
            cp.pebble().ca_pem(),
            "metrics-account",
        );
        create(
            &issuers,
            json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
                   "metadata": {"name": "metrics"}, "spec": spec}),
        )
        .await;
    }
    let ns = cp.create_namespace("metrics").await.unwrap();
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    create(
        &certs,
        json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": {"name": "scraped"},
            "spec": {
                "secretName": "scraped-tls",
                "dnsNames": ["scraped.metrics.certsmith.test"],
                "privateKey": {"algorithm": "ECDSA", "size": 256},
                "issuerRef": {"name": "metrics", "kind": "ClusterIssuer", "group": "cert-manager.io"},
            }
        }),
    )
    .await;
    let cert = wait_for(&certs, "scraped", ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
    let status = cert.status.clone().unwrap();
    let not_after = status.not_after.unwrap().0.as_second() as f64;
    let not_before = status.not_before.unwrap().0.as_second() as f64;
    let renewal = status.renewal_time.unwrap().0.as_second() as f64;

    let labels = [
        ("name", "scraped"),
        ("namespace", ns.as_str()),
        ("issuer_name", "metrics"),
        ("issuer_kind", "ClusterIssuer"),
        ("issuer_group", "cert-manager.io"),
    ];
    let ready_true = [labels.as_slice(), &[("condition", "True")]].concat();
    let text = scrape_until(&http, "the issued certificate's series", |text| {
        sample(
            text,
            "certmanager_certificate_expiration_timestamp_seconds",
            &labels,
        ) == Some(not_after)
            && sample(text, "certmanager_certificate_ready_status", &ready_true) == Some(1.0)
    })
    .await;

    for (metric, want) in [
        (
            "certmanager_certificate_not_after_timestamp_seconds",
            not_after,
        ),
        (
            "certmanager_certificate_not_before_timestamp_seconds",
            not_before,
        ),
        ("certmanager_certificate_renewal_timestamp_seconds", renewal),
    ] {
        assert_eq!(
            sample(&text, metric, &labels),
            Some(want),
            "{metric}\n{text}"
        );
    }
    for (condition, want) in [("False", 0.0), ("Unknown", 0.0)] {
        let l = [labels.as_slice(), &[("condition", condition)]].concat();
        assert_eq!(
            sample(&text, "certmanager_certificate_ready_status", &l),
            Some(want),
            "Ready={condition}\n{text}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "certmanager_clusterissuer_ready_status",
            &[("name", "metrics"), ("condition", "True")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("# TYPE certmanager_issuer_ready_status gauge"));
    for controller in [
        "certificates",
        "certificaterequests",
        "orders",
        "challenges",
    ] {
        let calls = sample(
            &text,
            "certmanager_controller_sync_call_count",
            &[("controller", controller)],
        );
        assert!(calls.is_some_and(|n| n >= 1.0), "{controller}: {calls:?}");
    }
    // (`certmanager_controller_sync_error_count` has series only once a sync failed, as in
    // cert-manager; the unit tests check its name and type.)
    assert!(text.contains("# TYPE certmanager_http_acme_client_request_count counter"));
    let host = cp
        .pebble()
        .directory_url()
        .split('/')
        .nth(2)
        .unwrap()
        .to_owned();
    let new_orders = sample(
        &text,
        "certmanager_http_acme_client_request_count",
        &[("host", host.as_str()), ("action", "new_order")],
    );
    assert!(
        new_orders.is_some_and(|n| n >= 1.0),
        "{new_orders:?}\n{text}"
    );
    assert!(
        !text.contains("_total"),
        "cert-manager's names have no _total:\n{text}"
    );
    let clock = sample(&text, "certmanager_clock_time_seconds_gauge", &[]).unwrap();
    let now = jiff::Timestamp::now().as_second() as f64;
    assert!((clock - now).abs() < 120.0, "clock {clock}, now {now}");

    assert_no_secrets_in_logs_and_events(&client, &ns).await;

    // A deleted Certificate's series disappear.
    certs
        .delete("scraped", &DeleteParams::default())
        .await
        .unwrap();
    scrape_until(&http, "the deleted certificate's series to go", |text| {
        sample(
            text,
            "certmanager_certificate_expiration_timestamp_seconds",
            &labels,
        )
        .is_none()
    })
    .await;
}

/// Issue item 5: the controller's logs and the cluster's Events hold no private key: neither
/// the Certificate's key nor the ACME account key, as PEM, PEM lines or Secret data (base64).
async fn assert_no_secrets_in_logs_and_events(client: &kube::Client, ns: &str) {
    use k8s_openapi::api::core::v1::{Event, Secret};
    let mut needles: Vec<String> = vec!["PRIVATE KEY".into()];
    for (namespace, name) in [(ns, "scraped-tls"), ("kube-system", "metrics-account")] {
        let secret = Api::<Secret>::namespaced(client.clone(), namespace)
            .get(name)
            .await
            .unwrap();
        let pem = secret_text(&secret, "tls.key");
        assert!(
            pem.contains("PRIVATE KEY"),
            "{namespace}/{name} holds a key"
        );
        needles.push(b64(&pem));
        needles.extend(
            pem.lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                .map(String::from),
        );
    }
    let log = stack().controller_log();
    assert!(!log.is_empty(), "the controller logged");
    let events = Api::<Event>::all(client.clone())
        .list(&Default::default())
        .await
        .unwrap();
    assert!(!events.items.is_empty(), "events were recorded");
    let events = serde_json::to_string(&events.items).unwrap();
    for needle in &needles {
        assert!(
            !log.contains(needle.as_str()),
            "the controller log contains key material {needle:?}"
        );
        assert!(
            !events.contains(needle.as_str()),
            "an Event contains key material {needle:?}"
        );
    }
}
