//! DNS-01 through RFC 2136 against a real BIND9 (`named`, Debian's bind9 package): the provider
//! signs its updates with TSIG, and a Pebble whose validation DNS server is that BIND9 reads the
//! TXT records itself. The certsmith controller binary runs as a process in cert-manager's default
//! mode: zone lookups through the recursive nameserver (`--dns01-recursive-nameservers`, BIND9 on
//! a free port), the propagation check on the zone's authoritative nameserver (port 53 of the NS
//! record's address, a loopback address of this control plane relayed to BIND9). The webhook test
//! sends cert-manager's `ChallengePayload` through the real kube-apiserver's aggregation layer
//! (an APIService and an ExternalName Service) to a webhook server in the test that writes into
//! BIND9.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use certsmith::api::acme::{AcmeIssuerDns01ProviderRfc2136, Rfc2136Protocol};
use certsmith::api::certificate::Certificate;
use certsmith::api::challenge::Challenge;
use certsmith::api::issuer::Issuer;
use certsmith::solvers::dns01::rfc2136::Rfc2136;
use certsmith::solvers::dns01::{Dns01Error, Dns01Provider, Dns01Settings, propagation};
use certsmith_e2e::stack::{ControllerOptions, Stack};
use certsmith_e2e::{Bind9, ControlPlane, Pebble, PebbleOptions, TsigKey};
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde_json::json;
use tokio::sync::OnceCell;

/// The zones BIND9 serves; the second one is for the provider-level tests.
const ZONE: &str = "dns01.certsmith.test";
const PROVIDER_ZONE: &str = "rfc2136.certsmith.test";
const KEY_NAME: &str = "certsmith-key.";
/// `_acme-challenge.alias.<ZONE>` is delegated by a CNAME into the other zone
/// (`cnameStrategy: Follow`).
const CNAME_RECORD: &str = "_acme-challenge.alias.dns01.certsmith.test. 60 IN CNAME _acme-challenge.alias.rfc2136.certsmith.test.";
/// 32 bytes, base64: the test's TSIG key (hmac-sha256).
const KEY_SECRET: &str = "c2VjcmV0LWtleS1mb3ItY2VydHNtaXRoLXRlc3RzLTA=";
const WRONG_SECRET: &str = "d3Jvbmcta2V5LWZvci1jZXJ0c21pdGgtdGVzdHMtMDA=";

struct Env {
    bind: Bind9,
    pebble: Pebble,
    stack: Stack,
}

async fn env() -> &'static Env {
    static ENV: OnceCell<Env> = OnceCell::const_new();
    ENV.get_or_init(|| async {
        let cp = ControlPlane::shared();
        let key = TsigKey {
            name: KEY_NAME.to_owned(),
            algorithm: "hmac-sha256".to_owned(),
            secret: KEY_SECRET.to_owned(),
        };
        let bind = cp
            .start_bind9(&[ZONE, PROVIDER_ZONE], &[CNAME_RECORD], &key)
            .await
            .expect("BIND9 starts");
        let pebble = cp
            .start_pebble(PebbleOptions {
                dns_server: Some(bind.addr()),
                ..PebbleOptions::default()
            })
            .await
            .expect("Pebble with BIND9 as its DNS server starts");
        let stack = Stack::start(
            cp,
            std::path::Path::new(env!("CARGO_BIN_EXE_certsmith")),
            ControllerOptions {
                extra_args: vec![
                    format!("--dns01-recursive-nameservers={}", bind.addr()),
                    "--dns01-check-retry-period=500ms".to_owned(),
                ],
                ..ControllerOptions::default()
            },
        )
        .expect("the stack starts");
        Env {
            bind,
            pebble,
            stack,
        }
    })
    .await
}

fn settings(bind: &Bind9) -> Dns01Settings {
    Dns01Settings {
        recursive_nameservers: vec![bind.addr()],
        recursive_only: true,
        check_retry_period: Duration::from_millis(500),
    }
}

async fn provider(bind: &Bind9, protocol: Rfc2136Protocol, secret: &str) -> Rfc2136 {
    let config = AcmeIssuerDns01ProviderRfc2136 {
        nameserver: bind.addr().to_string(),
        tsig_key_name: Some(KEY_NAME.to_owned()),
        tsig_algorithm: Some("HMACSHA256".to_owned()),
        tsig_secret_secret_ref: None,
        protocol: Some(protocol),
    };
    Rfc2136::new(&config, Some(secret)).await.unwrap()
}

#[tokio::test]
async fn rfc2136_adds_and_removes_only_its_own_value() {
    let env = env().await;
    let bind = &env.bind;
    let fqdn = format!("_acme-challenge.www.{PROVIDER_ZONE}.");
    let zone = propagation::find_zone(&fqdn, &[bind.addr()]).await.unwrap();
    assert_eq!(zone, format!("{PROVIDER_ZONE}."));
    let settings = settings(bind);

    let udp = provider(bind, Rfc2136Protocol::UDP, KEY_SECRET).await;
    let tcp = provider(bind, Rfc2136Protocol::TCP, KEY_SECRET).await;
    udp.present(&fqdn, &zone, "value-one").await.unwrap();
    tcp.present(&fqdn, &zone, "value-two").await.unwrap();
    // Presenting again is harmless.
    udp.present(&fqdn, &zone, "value-one").await.unwrap();
    for value in ["value-one", "value-two"] {
        assert_eq!(
            propagation::check(&fqdn, &zone, value, &settings)
                .await
                .unwrap(),
            Ok(())
        );
    }
    let mut values = bind.lookup_txt(&fqdn).unwrap();
    values.sort();
    assert_eq!(values, ["value-one", "value-two"]);
    // The default check asks the zone's authoritative nameservers: the NS record of the zone
    // (with its glue) found through the recursive nameserver, then port 53 of that address.
    let authoritative = Dns01Settings {
        recursive_only: false,
        ..settings.clone()
    };
    assert_eq!(
        propagation::check(&fqdn, &zone, "value-one", &authoritative)
            .await
            .unwrap(),
        Ok(())
    );
    let not_yet = propagation::check(&fqdn, &zone, "value-three", &authoritative)
        .await
        .unwrap()
        .unwrap_err();
    let ns = bind.ns_address().unwrap();
    assert!(not_yet.contains(&format!("{ns}:53")), "{not_yet}");

    // Cleanup removes its value and leaves the other one alone.
    udp.cleanup(&fqdn, &zone, "value-one").await.unwrap();
    assert_eq!(bind.lookup_txt(&fqdn).unwrap(), ["value-two"]);
    assert!(
        propagation::check(&fqdn, &zone, "value-one", &settings)
            .await
            .unwrap()
            .is_err()
    );
    tcp.cleanup(&fqdn, &zone, "value-two").await.unwrap();
    assert!(bind.lookup_txt(&fqdn).unwrap().is_empty());

    // A wrong key is refused by the server, with a clear error.
    let wrong = provider(bind, Rfc2136Protocol::UDP, WRONG_SECRET).await;
    let error = wrong
        .present(&fqdn, &zone, "value-three")
        .await
        .unwrap_err();
    assert!(matches!(error, Dns01Error::Rejected(_)), "{error:?}");
    assert!(bind.lookup_txt(&fqdn).unwrap().is_empty());
    // A name outside the zone is an error before anything is sent.
    let error = udp
        .present("_acme-challenge.elsewhere.test.", &zone, "value")
        .await
        .unwrap_err();
    assert!(matches!(error, Dns01Error::Config(_)), "{error:?}");
    // So is a zone the server does not serve (NOTAUTH from BIND9).
    let error = udp
        .present("_acme-challenge.other.test.", "other.test.", "value")
        .await
        .unwrap_err();
    assert!(matches!(error, Dns01Error::Rejected(_)), "{error:?}");
}

async fn issuer(client: &kube::Client, ns: &str, name: &str, secret: &str, follow: bool) {
    let env = env().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    create(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": format!("{name}-tsig")},
               "stringData": {"tsig-secret-key": secret}}),
    )
    .await;
    let mut spec = acme_spec(
        &env.pebble.directory_url(),
        env.pebble.ca_pem(),
        &format!("{name}-account"),
    );
    spec["acme"]["solvers"] = json!([{"dns01": {
        "cnameStrategy": if follow { "Follow" } else { "None" },
        "rfc2136": {
        "nameserver": env.bind.addr().to_string(),
        "tsigKeyName": KEY_NAME,
        "tsigAlgorithm": "HMACSHA256",
        "tsigSecretSecretRef": {"name": format!("{name}-tsig"), "key": "tsig-secret-key"},
    }}}]);
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), ns);
    create(
        &issuers,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
               "metadata": {"name": name}, "spec": spec}),
    )
    .await;
}

#[tokio::test]
async fn wildcard_certificate_through_rfc2136_and_bind9() {
    let env = env().await;
    let cp = env.stack.control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("dns01").await.unwrap();
    issuer(&client, &ns, "bind", KEY_SECRET, false).await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let wildcard = format!("*.{ZONE}");
    let names = [wildcard.as_str(), ZONE];
    let started = Instant::now();
    create(
        &certs,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "wildcard"},
               "spec": {"secretName": "wildcard-tls", "dnsNames": names,
                        "privateKey": {"algorithm": "ECDSA", "size": 256},
                        "issuerRef": {"name": "bind", "kind": "Issuer"}}}),
    )
    .await;
    wait_for(&certs, "wildcard", ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
    let elapsed = started.elapsed();
    eprintln!("DNS-01 wildcard certificate: Certificate created → Ready in {elapsed:?}");
    // cert-manager sleeps 60 s after its propagation check alone.
    assert!(
        elapsed < Duration::from_secs(30),
        "issuance took {elapsed:?}"
    );

    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("wildcard-tls")
        .await
        .unwrap();
    let info = certsmith::pki::x509::parse_leaf_pem(&secret_text(&secret, "tls.crt")).unwrap();
    let mut got = info.dns_names.clone();
    got.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want);

    // Both challenges used the same record name; the records are gone afterwards.
    let fqdn = format!("_acme-challenge.{ZONE}.");
    let start = Instant::now();
    loop {
        let values = env.bind.lookup_txt(&fqdn).unwrap();
        if values.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "TXT records left behind: {values:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_wrong_tsig_key_gives_a_clear_challenge_reason() {
    let env = env().await;
    let cp = env.stack.control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("dns01-wrong").await.unwrap();
    issuer(&client, &ns, "wrong", WRONG_SECRET, false).await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let name = format!("wrong.{ZONE}");
    create(
        &certs,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "wrong"},
               "spec": {"secretName": "wrong-tls", "dnsNames": [name],
                        "issuerRef": {"name": "wrong", "kind": "Issuer"}}}),
    )
    .await;
    let challenges: Api<Challenge> = Api::namespaced(client.clone(), &ns);
    let start = Instant::now();
    let reason = loop {
        let list = challenges.list(&ListParams::default()).await.unwrap();
        let reason = list
            .items
            .iter()
            .filter_map(|c| c.status.as_ref()?.reason.clone())
            .find(|r| r.starts_with("Error presenting challenge"));
        if let Some(reason) = reason {
            break reason;
        }
        assert!(
            start.elapsed() < ISSUANCE_TIMEOUT,
            "no presenting error on the challenge: {:?}",
            list.items.iter().map(|c| &c.status).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        reason.contains("NOTAUTH") || reason.to_ascii_lowercase().contains("sig"),
        "{reason}"
    );
    assert!(
        !reason.contains(WRONG_SECRET),
        "the secret leaked: {reason}"
    );
    let cert = certs.get("wrong").await.unwrap();
    assert!(!is_ready(&cert));
}

#[tokio::test]
async fn cname_strategy_follow_publishes_at_the_cname_target() {
    let env = env().await;
    let cp = env.stack.control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("dns01-cname").await.unwrap();
    issuer(&client, &ns, "follow", KEY_SECRET, true).await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let name = format!("alias.{ZONE}");
    create(
        &certs,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "alias"},
               "spec": {"secretName": "alias-tls", "dnsNames": [name],
                        "issuerRef": {"name": "follow", "kind": "Issuer"}}}),
    )
    .await;
    wait_for(&certs, "alias", ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
    // The record went to the CNAME's target, in the other zone, and is gone again.
    let target = format!("_acme-challenge.alias.{PROVIDER_ZONE}.");
    let log = env.stack.controller_log();
    assert!(
        log.contains("presented the DNS-01 TXT record") && log.contains(&target),
        "the controller did not present at {target}"
    );
    let start = Instant::now();
    while !env.bind.lookup_txt(&target).unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "TXT record left behind"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The API group of the test's DNS-01 webhook (an aggregated API, as cert-manager's webhooks).
const WEBHOOK_GROUP: &str = "acme.webhook.certsmith.test";
/// Present and CleanUp calls the test's webhook received.
static WEBHOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A DNS-01 webhook in the shape of cert-manager's: an HTTPS server that answers discovery for
/// `<group>/v1alpha1` and `POST /apis/<group>/v1alpha1/bind` with a `ChallengePayload`, writing
/// the record into BIND9 through RFC 2136. Runs until the test's runtime ends.
async fn start_webhook(ip: std::net::Ipv4Addr) -> u16 {
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::sync::Arc;

    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![ip.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        let path = req.uri().path().to_owned();
                        let method = req.method().clone();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        let reply = |code: u16, value: serde_json::Value| {
                            hyper::Response::builder()
                                .status(code)
                                .header("content-type", "application/json")
                                .body(Full::new(bytes::Bytes::from(value.to_string())))
                        };
                        let group_version = format!("/apis/{WEBHOOK_GROUP}/v1alpha1");
                        if method == hyper::Method::GET && path == group_version {
                            return reply(
                                200,
                                json!({
                            "kind": "APIResourceList", "apiVersion": "v1",
                            "groupVersion": format!("{WEBHOOK_GROUP}/v1alpha1"),
                            "resources": [{"name": "bind", "singularName": "ChallengePayload",
                                           "namespaced": false, "kind": "ChallengePayload",
                                           "verbs": ["create"]}]}),
                            );
                        }
                        if method != hyper::Method::POST || path != format!("{group_version}/bind")
                        {
                            return reply(
                                404,
                                json!({"kind": "Status", "apiVersion": "v1",
                                                 "status": "Failure", "code": 404}),
                            );
                        }
                        let mut payload: serde_json::Value =
                            serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
                        let request = payload["request"].clone();
                        let result = async {
                            let config = AcmeIssuerDns01ProviderRfc2136 {
                                nameserver: request["config"]["nameserver"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_owned(),
                                tsig_key_name: Some(KEY_NAME.to_owned()),
                                tsig_algorithm: Some("HMACSHA256".to_owned()),
                                tsig_secret_secret_ref: None,
                                protocol: None,
                            };
                            if request["config"]["fail"] == true {
                                return Err(Dns01Error::Config(
                                    "the test webhook was told to fail".to_owned(),
                                ));
                            }
                            let rfc2136 = Rfc2136::new(&config, Some(KEY_SECRET)).await?;
                            let (fqdn, zone, key) = (
                                request["resolvedFQDN"].as_str().unwrap_or_default(),
                                request["resolvedZone"].as_str().unwrap_or_default(),
                                request["key"].as_str().unwrap_or_default(),
                            );
                            match request["action"].as_str() {
                                Some("Present") => {
                                    WEBHOOK_CALLS.fetch_add(1, Ordering::Relaxed);
                                    rfc2136.present(fqdn, zone, key).await
                                }
                                Some("CleanUp") => {
                                    WEBHOOK_CALLS.fetch_add(1, Ordering::Relaxed);
                                    rfc2136.cleanup(fqdn, zone, key).await
                                }
                                other => {
                                    Err(Dns01Error::Config(format!("unknown action {other:?}")))
                                }
                            }
                        }
                        .await;
                        payload["response"] = match result {
                            Ok(()) => json!({"success": true}),
                            Err(e) => json!({"success": false,
                                         "status": {"status": "Failure", "message": e.to_string()}}),
                        };
                        reply(200, payload)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn webhook_solver_through_the_aggregation_layer() {
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;

    let env = env().await;
    let cp = env.stack.control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("dns01-webhook").await.unwrap();
    let lease = cp.pod_ips().allocate().expect("a loopback address");
    let port = start_webhook(lease.ip()).await;

    // Registered as cert-manager's webhook chart does, with a Service of type ExternalName that
    // the aggregator resolves to https://<externalName>:<port>.
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    create(
        &services,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "webhook"},
               "spec": {"type": "ExternalName", "externalName": lease.ip().to_string(),
                        "ports": [{"port": port, "protocol": "TCP"}]}}),
    )
    .await;
    let apiservices: Api<APIService> = Api::all(client.clone());
    let name = format!("v1alpha1.{WEBHOOK_GROUP}");
    let _ = apiservices.delete(&name, &Default::default()).await;
    create(
        &apiservices,
        json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
               "metadata": {"name": name},
               "spec": {"group": WEBHOOK_GROUP, "version": "v1alpha1",
                        "service": {"namespace": ns, "name": "webhook", "port": port},
                        "insecureSkipTLSVerify": true,
                        "groupPriorityMinimum": 1000, "versionPriority": 15}}),
    )
    .await;

    let mut spec = acme_spec(
        &env.pebble.directory_url(),
        env.pebble.ca_pem(),
        "webhook-account",
    );
    spec["acme"]["solvers"] = json!([{"dns01": {"webhook": {
        "groupName": WEBHOOK_GROUP, "solverName": "bind",
        "config": {"nameserver": env.bind.addr().to_string()},
    }}}]);
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), &ns);
    create(
        &issuers,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
               "metadata": {"name": "webhook"}, "spec": spec}),
    )
    .await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let wildcard = format!("*.hook.{ZONE}");
    let started = Instant::now();
    create(
        &certs,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "hook"},
               "spec": {"secretName": "hook-tls", "dnsNames": [wildcard],
                        "issuerRef": {"name": "webhook", "kind": "Issuer"}}}),
    )
    .await;
    wait_for(&certs, "hook", ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
    eprintln!(
        "DNS-01 webhook certificate: Certificate created → Ready in {:?}",
        started.elapsed()
    );
    let fqdn = format!("_acme-challenge.hook.{ZONE}.");
    let start = Instant::now();
    while !env.bind.lookup_txt(&fqdn).unwrap().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "TXT record left behind"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both calls went through the API server to the webhook.
    assert!(WEBHOOK_CALLS.load(Ordering::Relaxed) >= 2);

    // A webhook that answers `success: false` gives its message as the Challenge's reason.
    spec["acme"]["solvers"][0]["dns01"]["webhook"]["config"]["fail"] = json!(true);
    spec["acme"]["privateKeySecretRef"]["name"] = json!("webhook-fail-account");
    create(
        &issuers,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
               "metadata": {"name": "webhook-fail"}, "spec": spec}),
    )
    .await;
    create(
        &certs,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "hook-fail"},
               "spec": {"secretName": "hook-fail-tls", "dnsNames": [format!("fail.{ZONE}")],
                        "issuerRef": {"name": "webhook-fail", "kind": "Issuer"}}}),
    )
    .await;
    let challenges: Api<Challenge> = Api::namespaced(client.clone(), &ns);
    let start = Instant::now();
    loop {
        let list = challenges.list(&ListParams::default()).await.unwrap();
        let failed = list.items.iter().any(|c| {
            c.spec.dns_name == format!("fail.{ZONE}")
                && c.status
                    .as_ref()
                    .and_then(|s| s.reason.as_deref())
                    .is_some_and(|r| {
                        r.starts_with("Error presenting challenge")
                            && r.contains("the test webhook was told to fail")
                    })
        });
        if failed {
            break;
        }
        assert!(
            start.elapsed() < ISSUANCE_TIMEOUT,
            "no webhook error on the challenge"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!is_ready(&certs.get("hook-fail").await.unwrap()));
    apiservices
        .delete(&name, &Default::default())
        .await
        .unwrap();
    drop(lease);
}
