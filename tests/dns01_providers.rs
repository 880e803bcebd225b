//! DNS-01 through providers' cloud APIs (Cloudflare, Route53), and an Issuer whose solvers are chosen per name by
//! their selectors.
//!
//! Cloudflare cannot be reached from here, so the tests run a LOCAL server that implements the
//! part of Cloudflare's real REST API v4 wire protocol the provider uses — the same request paths,
//! methods, query parameters, auth headers (`Authorization: Bearer`, or `X-Auth-Email` +
//! `X-Auth-Key`) and JSON bodies (`{success, errors, result}`) — and that, like Cloudflare's
//! authoritative DNS, serves the records it holds: it writes them into a real BIND9 (RFC 2136),
//! which is the DNS server of this test's Pebble, so Pebble really reads the TXT records. The
//! controller finds the mock through `CERTSMITH_CLOUDFLARE_API_URL`, a test-only override of
//! the API's base URL
//! (`CERTSMITH_ROUTE53_API_URL` for Route53, whose mock is described below).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certsmith::api::acme::AcmeIssuerDns01ProviderRfc2136;
use certsmith::api::certificate::Certificate;
use certsmith::api::challenge::{Challenge, ChallengeType};
use certsmith::api::issuer::Issuer;
use certsmith::solvers::dns01::cloudflare::{Auth, Cloudflare};
use certsmith::solvers::dns01::rfc2136::Rfc2136;
use certsmith::solvers::dns01::route53::{AwsCredentials, Route53};
use certsmith::solvers::dns01::{Dns01Error, Dns01Provider};
use certsmith_e2e::stack::{ControllerOptions, Stack};
use certsmith_e2e::{Bind9, ControlPlane, Pebble, PebbleOptions, TsigKey};
use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// Zones of the mock Cloudflare account, served by BIND9.
const CF_ZONE: &str = "cloudflare.certsmith.test";
const HTTP_ZONE: &str = "web.certsmith.test";
const KEY_NAME: &str = "certsmith-key.";
const KEY_SECRET: &str = "c2VjcmV0LWtleS1mb3ItY2VydHNtaXRoLXRlc3RzLTA=";
/// The API token the mock accepts, and a global API key with its email.
const TOKEN: &str = "cf-test-token";
const EMAIL: &str = "ops@certsmith.test";
const API_KEY: &str = "cf-test-global-key";

/// A TXT record held by the mock.
#[derive(Clone, Debug)]
struct MockRecord {
    zone_id: String,
    name: String,
    content: String,
}

#[derive(Default)]
struct MockState {
    records: BTreeMap<String, MockRecord>,
    next_id: u64,
    /// `METHOD path?query` of every authenticated request.
    requests: Vec<String>,
}

/// The local Cloudflare API v4 server.
struct MockCloudflare {
    url: String,
    state: Arc<Mutex<MockState>>,
}

impl MockCloudflare {
    fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn zone_id(zone: &str) -> String {
    format!("zone-{}", zone.replace('.', "-"))
}

fn envelope(result: Value) -> Value {
    json!({"success": true, "errors": [], "messages": [], "result": result})
}

fn failure(code: u16, error_code: i64, message: &str) -> (u16, Value) {
    (
        code,
        json!({"success": false, "messages": [], "result": null,
               "errors": [{"code": error_code, "message": message}]}),
    )
}

fn query_params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let mut out = Vec::new();
            let bytes = v.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' && i + 2 < bytes.len() {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            (k.to_owned(), String::from_utf8(out).unwrap())
        })
        .collect()
}

/// One request to the mock: checks the credentials, then Cloudflare's semantics.
async fn handle(
    state: &Mutex<MockState>,
    bind: SocketAddr,
    method: &hyper::Method,
    path: &str,
    query: &str,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> (u16, Value) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorized = header("authorization") == Some(&format!("Bearer {TOKEN}"))
        || (header("x-auth-email") == Some(EMAIL) && header("x-auth-key") == Some(API_KEY));
    if !authorized {
        return failure(403, 10000, "Authentication error");
    }
    state
        .lock()
        .unwrap()
        .requests
        .push(format!("{method} {path}?{query}"));
    let params = query_params(query);
    let zones = [CF_ZONE, HTTP_ZONE];
    let segments: Vec<&str> = path
        .strip_prefix("/client/v4/")
        .unwrap_or("")
        .split('/')
        .collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["zones"]) => {
            let name = params.get("name").cloned().unwrap_or_default();
            let result: Vec<Value> = zones
                .iter()
                .filter(|z| **z == name)
                .map(|z| json!({"id": zone_id(z), "name": z, "status": "active"}))
                .collect();
            (200, envelope(json!(result)))
        }
        (_, ["zones", id, "dns_records", ..]) if !zones.iter().any(|z| zone_id(z) == *id) => {
            failure(
                404,
                7003,
                "Could not route to /zones/…, perhaps your object identifier is invalid?",
            )
        }
        ("GET", ["zones", id, "dns_records"]) => {
            let state = state.lock().unwrap();
            let result: Vec<Value> = state
                .records
                .iter()
                .filter(|(_, r)| r.zone_id == *id)
                .filter(|_| params.get("type").is_none_or(|t| t == "TXT"))
                .filter(|(_, r)| params.get("name").is_none_or(|n| *n == r.name))
                .filter(|(_, r)| params.get("content").is_none_or(|c| *c == r.content))
                .map(|(rid, r)| {
                    json!({"id": rid, "type": "TXT", "name": r.name, "content": r.content,
                           "ttl": 120, "zone_id": r.zone_id})
                })
                .collect();
            (200, envelope(json!(result)))
        }
        ("POST", ["zones", id, "dns_records"]) => {
            let Ok(record) = serde_json::from_slice::<Value>(body) else {
                return failure(400, 9207, "Request body is invalid.");
            };
            let zone = zones.iter().find(|z| zone_id(z) == *id).unwrap();
            let (Some("TXT"), Some(name), Some(content), Some(ttl)) = (
                record["type"].as_str(),
                record["name"].as_str(),
                record["content"].as_str(),
                record["ttl"].as_u64(),
            ) else {
                return failure(
                    400,
                    9000,
                    "DNS record type, name, content and ttl are required",
                );
            };
            if ttl != 1 && !(60..=86400).contains(&ttl) {
                return failure(400, 9021, "Invalid TTL");
            }
            if !(name == *zone || name.ends_with(&format!(".{zone}"))) || name.ends_with('.') {
                return failure(
                    400,
                    9005,
                    "Content for TXT record is invalid: name not in zone",
                );
            }
            // Cloudflare's DNS serves it: into BIND9.
            if let Err(e) = bind_provider(bind)
                .await
                .present(&format!("{name}."), &format!("{zone}."), content)
                .await
            {
                return failure(500, 1000, &format!("mock DNS: {e}"));
            }
            let mut state = state.lock().unwrap();
            state.next_id += 1;
            let rid = format!("{:032x}", state.next_id);
            state.records.insert(
                rid.clone(),
                MockRecord {
                    zone_id: id.to_string(),
                    name: name.to_owned(),
                    content: content.to_owned(),
                },
            );
            (
                200,
                envelope(
                    json!({"id": rid, "type": "TXT", "name": name, "content": content,
                                "ttl": ttl, "zone_id": id}),
                ),
            )
        }
        ("DELETE", ["zones", id, "dns_records", rid]) => {
            let record = state.lock().unwrap().records.remove(*rid);
            let Some(record) = record.filter(|r| r.zone_id == *id) else {
                return failure(404, 81044, "Record does not exist.");
            };
            let zone = zones.iter().find(|z| zone_id(z) == *id).unwrap();
            if let Err(e) = bind_provider(bind)
                .await
                .cleanup(
                    &format!("{}.", record.name),
                    &format!("{zone}."),
                    &record.content,
                )
                .await
            {
                return failure(500, 1000, &format!("mock DNS: {e}"));
            }
            (200, envelope(json!({"id": rid})))
        }
        _ => failure(404, 7000, "No route for that URI"),
    }
}

async fn bind_provider(bind: SocketAddr) -> Rfc2136 {
    let config = AcmeIssuerDns01ProviderRfc2136 {
        nameserver: bind.to_string(),
        tsig_key_name: Some(KEY_NAME.to_owned()),
        tsig_algorithm: Some("HMACSHA256".to_owned()),
        tsig_secret_secret_ref: None,
        protocol: None,
    };
    Rfc2136::new(&config, Some(KEY_SECRET)).await.unwrap()
}

type Handler = Arc<
    dyn Fn(
            hyper::Method,
            String,
            String,
            hyper::HeaderMap,
            bytes::Bytes,
        ) -> futures::future::BoxFuture<'static, (u16, &'static str, String)>
        + Send
        + Sync,
>;

/// Serves `handler` on 127.0.0.1, on a thread and runtime of its own (the tests' runtimes come
/// and go); returns the port.
fn serve(handler: Handler) -> u16 {
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let handler = handler.clone();
                        async move {
                            let method = req.method().clone();
                            let path = req.uri().path().to_owned();
                            let query = req.uri().query().unwrap_or("").to_owned();
                            let headers = req.headers().clone();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let (code, content_type, text) =
                                handler(method, path, query, headers, body).await;
                            hyper::Response::builder()
                                .status(code)
                                .header("content-type", content_type)
                                .body(Full::new(bytes::Bytes::from(text)))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    port
}

fn start_mock(bind: SocketAddr) -> MockCloudflare {
    let state = Arc::new(Mutex::new(MockState::default()));
    let shared = state.clone();
    let port = serve(Arc::new(move |method, path, query, headers, body| {
        let state = shared.clone();
        Box::pin(async move {
            let (code, value) = handle(&state, bind, &method, &path, &query, &headers, &body).await;
            (code, "application/json", value.to_string())
        })
    }));
    MockCloudflare {
        url: format!("http://127.0.0.1:{port}/client/v4"),
        state,
    }
}

struct Env {
    bind: Bind9,
    pebble: Pebble,
    mock: MockCloudflare,
    route53: MockRoute53,
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
            .start_bind9(&[CF_ZONE, HTTP_ZONE, R53_ZONE], &[], &key)
            .await
            .expect("BIND9 starts");
        let pebble = cp
            .start_pebble(PebbleOptions {
                dns_server: Some(bind.addr()),
                ..PebbleOptions::default()
            })
            .await
            .expect("Pebble with BIND9 as its DNS server starts");
        let mock = start_mock(bind.addr());
        let route53 = start_route53_mock(bind.addr());
        let stack = Stack::start(
            cp,
            std::path::Path::new(env!("CARGO_BIN_EXE_certsmith")),
            ControllerOptions {
                extra_args: vec![
                    format!("--dns01-recursive-nameservers={}", bind.addr()),
                    "--dns01-recursive-nameservers-only".to_owned(),
                    "--dns01-check-retry-period=500ms".to_owned(),
                ],
                extra_env: vec![
                    (
                        certsmith::solvers::dns01::cloudflare::API_URL_ENV.to_owned(),
                        mock.url.clone(),
                    ),
                    (
                        certsmith::solvers::dns01::route53::API_URL_ENV.to_owned(),
                        route53.url.clone(),
                    ),
                ],
                ..ControllerOptions::default()
            },
        )
        .expect("the stack starts");
        Env {
            bind,
            pebble,
            mock,
            route53,
            stack,
        }
    })
    .await
}

#[tokio::test]
async fn cloudflare_provider_adds_and_removes_only_its_own_value() {
    let env = env().await;
    let fqdn = format!("_acme-challenge.provider.{CF_ZONE}.");
    let zone = format!("{CF_ZONE}.");
    let token = Cloudflare::new(&env.mock.url, Auth::Token(TOKEN.to_owned())).unwrap();
    let key = Cloudflare::new(
        &env.mock.url,
        Auth::Key {
            email: EMAIL.to_owned(),
            key: API_KEY.to_owned(),
        },
    )
    .unwrap();
    token.present(&fqdn, &zone, "value-one").await.unwrap();
    key.present(&fqdn, &zone, "value-two").await.unwrap();
    // Presenting again does not add a second record.
    token.present(&fqdn, &zone, "value-one").await.unwrap();
    let mut values = env.bind.lookup_txt(&fqdn).unwrap();
    values.sort();
    assert_eq!(values, ["value-one", "value-two"]);
    let posts = env
        .mock
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST ") && r.contains("/dns_records"))
        .count();
    assert!(posts >= 2);

    // Cleanup removes its value only.
    token.cleanup(&fqdn, &zone, "value-one").await.unwrap();
    assert_eq!(env.bind.lookup_txt(&fqdn).unwrap(), ["value-two"]);
    key.cleanup(&fqdn, &zone, "value-two").await.unwrap();
    assert!(env.bind.lookup_txt(&fqdn).unwrap().is_empty());
    // Cleaning up a value that is gone is fine.
    key.cleanup(&fqdn, &zone, "value-two").await.unwrap();

    // A wrong token is refused, with Cloudflare's message.
    let wrong = Cloudflare::new(&env.mock.url, Auth::Token("wrong".to_owned())).unwrap();
    let error = wrong.present(&fqdn, &zone, "x").await.unwrap_err();
    assert!(matches!(error, Dns01Error::Rejected(_)), "{error:?}");
    assert!(
        error.to_string().contains("Authentication error"),
        "{error}"
    );
    assert!(!error.to_string().contains("wrong"), "{error}");
    // A zone the account does not hold.
    let error = token
        .present("_acme-challenge.other.test.", "other.test.", "x")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("found no zone"), "{error}");
}

async fn cloudflare_issuer(client: &kube::Client, ns: &str, name: &str, solvers: Value) {
    let env = env().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    create(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "cloudflare-token"},
               "stringData": {"api-token": TOKEN}}),
    )
    .await;
    let mut spec = acme_spec(
        &env.pebble.directory_url(),
        env.pebble.ca_pem(),
        &format!("{name}-account"),
    );
    spec["acme"]["solvers"] = solvers;
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), ns);
    create(
        &issuers,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
               "metadata": {"name": name}, "spec": spec}),
    )
    .await;
}

fn cloudflare_solver() -> Value {
    json!({"cloudflare": {"apiTokenSecretRef": {"name": "cloudflare-token", "key": "api-token"}}})
}

/// Waits until no TXT value is left at `fqdn`.
async fn wait_txt_gone(bind: &Bind9, fqdn: &str) {
    let start = Instant::now();
    loop {
        let values = bind.lookup_txt(fqdn).unwrap();
        if values.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "TXT records left behind at {fqdn}: {values:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn wildcard_certificate_through_cloudflare() {
    let env = env().await;
    let cp = env.stack.control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("cloudflare").await.unwrap();
    cloudflare_issuer(
        &client,
        &ns,
        "cloudflare",
        json!([{"dns01": cloudflare_solver()}]),
    )
    .await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let wildcard = format!("*.{CF_ZONE}");
    let names = [wildcard.as_str(), CF_ZONE];
    let started = Instant::now();
    create(
        &certs,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "wildcard"},
               "spec": {"secretName": "wildcard-tls", "dnsNames": names,
                        "issuerRef": {"name": "cloudflare", "kind": "Issuer"}}}),
    )
    .await;
    wait_for(&certs, "wildcard", ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
    eprintln!(
        "DNS-01 (cloudflare) certificate: Certificate created → Ready in {:?}",
        started.elapsed()
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

    // The controller spoke Cloudflare's API: zone lookup, record creation and deletion.
    let requests = env.mock.requests();
    let record = format!("_acme-challenge.{CF_ZONE}");
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /client/v4/zones?")
                && r.contains(&format!("name={CF_ZONE}"))),
        "{requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("POST /client/v4/zones/") && r.contains("/dns_records")),
        "{requests:#?}"
    );
    wait_txt_gone(&env.bind, &format!("{record}.")).await;
    assert!(
        env.mock
            .requests()
            .iter()
            .any(|r| r.starts_with("DELETE /client/v4/zones/")),
        "{requests:#?}"
    );
}

#[tokio::test]
async fn selectors_choose_http01_or_dns01_per_name() {
    let env = env().await;
    let cp = env.stack.control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("selection").await.unwrap();
    let by_name = format!("exact.{HTTP_ZONE}");
    let by_zone = format!("www.{CF_ZONE}");
    let by_default = format!("www.{HTTP_ZONE}");
    cloudflare_issuer(
        &client,
        &ns,
        "mixed",
        json!([
            {"http01": {"ingress": {"ingressClassName": "stand-in"}}},
            {"dns01": cloudflare_solver(), "selector": {"dnsNames": [by_name]}},
            {"dns01": cloudflare_solver(), "selector": {"dnsZones": [CF_ZONE]}},
        ]),
    )
    .await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    create(
        &certs,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "mixed"},
               "spec": {"secretName": "mixed-tls",
                        "dnsNames": [&by_name, &by_zone, &by_default],
                        "issuerRef": {"name": "mixed", "kind": "Issuer"}}}),
    )
    .await;

    // Record the type of each name's Challenge while the certificate is issued.
    let challenges: Api<Challenge> = Api::namespaced(client.clone(), &ns);
    let mut seen: HashMap<String, ChallengeType> = HashMap::new();
    let start = Instant::now();
    loop {
        for c in challenges.list(&ListParams::default()).await.unwrap().items {
            seen.insert(c.spec.dns_name.clone(), c.spec.type_);
        }
        if is_ready(&certs.get("mixed").await.unwrap()) {
            break;
        }
        assert!(
            start.elapsed() < ISSUANCE_TIMEOUT,
            "the certificate did not become Ready; challenges seen: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen.get(&by_name), Some(&ChallengeType::Dns01), "{seen:?}");
    assert_eq!(seen.get(&by_zone), Some(&ChallengeType::Dns01), "{seen:?}");
    assert_eq!(
        seen.get(&by_default),
        Some(&ChallengeType::Http01),
        "{seen:?}"
    );
    wait_txt_gone(&env.bind, &format!("_acme-challenge.{by_name}.")).await;
    wait_txt_gone(&env.bind, &format!("_acme-challenge.{by_zone}.")).await;
}

// ---- Route53 ----------------------------------------------------------------------------------
//
// A LOCAL server implementing the part of Route53's real REST API (2013-04-01) the provider
// uses: ListHostedZonesByName, ListResourceRecordSets and ChangeResourceRecordSets (UPSERT /
// DELETE with Route53's rule that a DELETE must match the record set exactly), with XML bodies,
// and every request's AWS Signature Version 4 verified by computing it again with the
// `aws-sigv4` crate from the received method, URL, signed headers and body. Like Route53's
// authoritative DNS, it serves the record sets it holds, through BIND9.

const R53_ZONE: &str = "route53.certsmith.test";
const R53_ZONE_ID: &str = "Z0CERTSMITHTEST";
const ACCESS_KEY_ID: &str = "AKIACERTSMITHTEST";
const SECRET_ACCESS_KEY: &str = "certsmith/test/secret/access/key";

#[derive(Default)]
struct R53State {
    /// TXT record sets by name (with a trailing dot): TTL and texts.
    sets: BTreeMap<String, (u32, Vec<String>)>,
    /// `METHOD path?query` of every request with a valid signature.
    requests: Vec<String>,
}

struct MockRoute53 {
    url: String,
    state: Arc<Mutex<R53State>>,
}

impl MockRoute53 {
    fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn r53_error(code: u16, error_code: &str, message: &str) -> (u16, String) {
    (
        code,
        format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
             <Error><Type>Sender</Type><Code>{error_code}</Code><Message>{message}</Message></Error>\
             <RequestId>mock</RequestId></ErrorResponse>"
        ),
    )
}

/// Verifies the request's SigV4 `Authorization` by signing it again with the same crate.
fn verify_sigv4(
    method: &hyper::Method,
    path: &str,
    query: &str,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth = header("authorization").ok_or("no Authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let mut fields = HashMap::new();
    for part in rest.split(", ") {
        let (k, v) = part.split_once('=').ok_or("malformed Authorization")?;
        fields.insert(k, v);
    }
    let date = header("x-amz-date").ok_or("no X-Amz-Date")?;
    let day = &date[..8];
    let want_scope = format!("{ACCESS_KEY_ID}/{day}/us-east-1/route53/aws4_request");
    if fields.get("Credential") != Some(&want_scope.as_str()) {
        return Err(format!("credential scope {:?}", fields.get("Credential")));
    }
    let signed: Vec<&str> = fields
        .get("SignedHeaders")
        .ok_or("no SignedHeaders")?
        .split(';')
        .collect();
    if !signed.contains(&"host") || !signed.contains(&"x-amz-date") {
        return Err("host and x-amz-date must be signed".to_owned());
    }
    let time: std::time::SystemTime = jiff::fmt::strtime::parse("%Y%m%dT%H%M%SZ", date)
        .and_then(|t| t.to_datetime())
        .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC))
        .map_err(|e| e.to_string())?
        .timestamp()
        .into();
    let host = header("host").ok_or("no Host")?;
    let uri = if query.is_empty() {
        format!("http://{host}{path}")
    } else {
        format!("http://{host}{path}?{query}")
    };
    let resign: Vec<(&str, &str)> = signed
        .iter()
        .filter(|h| **h != "x-amz-date")
        .filter_map(|h| Some((*h, header(h)?)))
        .collect();
    let credentials = aws_credential_types::Credentials::new(
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        None,
        None,
        "mock",
    );
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("route53")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        method.as_str(),
        uri.as_str(),
        resign.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (_, signature) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    if fields.get("Signature") != Some(&signature.as_str()) {
        return Err(
            "The request signature we calculated does not match the signature you provided."
                .to_owned(),
        );
    }
    Ok(())
}

async fn handle_route53(
    state: &Mutex<R53State>,
    bind: SocketAddr,
    method: &hyper::Method,
    path: &str,
    query: &str,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> (u16, String) {
    use certsmith::solvers::dns01::route53::{element, elements, txt_text, unescape};
    if let Err(e) = verify_sigv4(method, path, query, headers, body) {
        return r53_error(403, "SignatureDoesNotMatch", &e);
    }
    state
        .lock()
        .unwrap()
        .requests
        .push(format!("{method} {path}?{query}"));
    let params = query_params(query);
    let zone_path = format!("/2013-04-01/hostedzone/{R53_ZONE_ID}/rrset");
    match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "/2013-04-01/hostedzonesbyname") => {
            // Zones in order from `dnsname`: ours when asked for, and the next one in any case.
            let name = params.get("dnsname").cloned().unwrap_or_default();
            let mut zones = String::new();
            if name.trim_end_matches('.') == R53_ZONE {
                zones.push_str(&format!(
                    "<HostedZone><Id>/hostedzone/{R53_ZONE_ID}</Id><Name>{R53_ZONE}.</Name>\
                     <CallerReference>mock</CallerReference><Config><PrivateZone>false</PrivateZone></Config>\
                     <ResourceRecordSetCount>3</ResourceRecordSetCount></HostedZone>"
                ));
            }
            zones.push_str(
                "<HostedZone><Id>/hostedzone/ZOTHER</Id><Name>zzz.other.test.</Name>\
                 <CallerReference>other</CallerReference><Config><PrivateZone>false</PrivateZone></Config>\
                 <ResourceRecordSetCount>2</ResourceRecordSetCount></HostedZone>",
            );
            (
                200,
                format!(
                    "<?xml version=\"1.0\"?>\n<ListHostedZonesByNameResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
                     <HostedZones>{zones}</HostedZones><DNSName>{name}</DNSName><IsTruncated>false</IsTruncated>\
                     <MaxItems>100</MaxItems></ListHostedZonesByNameResponse>"
                ),
            )
        }
        ("GET", p) if p == zone_path => {
            let name = params.get("name").cloned().unwrap_or_default();
            let name = format!("{}.", name.trim_end_matches('.'));
            let state = state.lock().unwrap();
            // Route53 lists the record sets from `name` on: the next one may be another name's.
            let sets: String = state
                .sets
                .range(name..)
                .take(1)
                .map(|(n, (ttl, values))| {
                    let records: String = values
                        .iter()
                        .map(|v| {
                            format!(
                                "<ResourceRecord><Value>&quot;{v}&quot;</Value></ResourceRecord>"
                            )
                        })
                        .collect();
                    format!(
                        "<ResourceRecordSet><Name>{n}</Name><Type>TXT</Type><TTL>{ttl}</TTL>\
                         <ResourceRecords>{records}</ResourceRecords></ResourceRecordSet>"
                    )
                })
                .collect();
            (
                200,
                format!(
                    "<?xml version=\"1.0\"?>\n<ListResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
                     <ResourceRecordSets>{sets}</ResourceRecordSets><IsTruncated>false</IsTruncated>\
                     <MaxItems>1</MaxItems></ListResourceRecordSetsResponse>"
                ),
            )
        }
        ("POST", p) if p == zone_path => {
            let xml = String::from_utf8_lossy(body).into_owned();
            if !xml.contains("<ChangeResourceRecordSetsRequest") {
                return r53_error(400, "InvalidInput", "not a ChangeResourceRecordSetsRequest");
            }
            let changes = elements(&xml, "Change");
            if changes.len() != 1 {
                return r53_error(400, "InvalidChangeBatch", "the mock expects one change");
            }
            let change = changes[0];
            let (Some(action), Some(name), Some(kind), Some(ttl)) = (
                element(change, "Action"),
                element(change, "Name"),
                element(change, "Type"),
                element(change, "TTL").and_then(|t| t.parse::<u32>().ok()),
            ) else {
                return r53_error(
                    400,
                    "InvalidInput",
                    "Action, Name, Type and TTL are required",
                );
            };
            let name = format!("{}.", name.trim_end_matches('.'));
            if kind != "TXT" || !name.ends_with(&format!(".{R53_ZONE}.")) {
                return r53_error(
                    400,
                    "InvalidChangeBatch",
                    "RRSet is not a TXT record in the zone",
                );
            }
            let values: Vec<String> = elements(change, "Value")
                .into_iter()
                .map(|v| txt_text(&unescape(v)))
                .collect();
            let old = state.lock().unwrap().sets.get(&name).cloned();
            let old_values = old.as_ref().map(|(_, v)| v.clone()).unwrap_or_default();
            let new_values = match action.as_str() {
                "UPSERT" if !values.is_empty() => values.clone(),
                "DELETE" if old.as_ref().is_some_and(|(t, v)| *t == ttl && *v == values) => vec![],
                "DELETE" => {
                    return r53_error(
                        400,
                        "InvalidChangeBatch",
                        &format!(
                            "Tried to delete resource record set [name='{name}', type='TXT'] but the values provided do not match the current values"
                        ),
                    );
                }
                _ => return r53_error(400, "InvalidInput", "unsupported action"),
            };
            let rfc2136 = bind_provider(bind).await;
            for v in new_values.iter().filter(|v| !old_values.contains(v)) {
                if let Err(e) = rfc2136.present(&name, &format!("{R53_ZONE}."), v).await {
                    return r53_error(500, "InternalFailure", &e.to_string());
                }
            }
            for v in old_values.iter().filter(|v| !new_values.contains(v)) {
                if let Err(e) = rfc2136.cleanup(&name, &format!("{R53_ZONE}."), v).await {
                    return r53_error(500, "InternalFailure", &e.to_string());
                }
            }
            let mut state = state.lock().unwrap();
            if new_values.is_empty() {
                state.sets.remove(&name);
            } else {
                state.sets.insert(name, (ttl, new_values));
            }
            (
                200,
                "<?xml version=\"1.0\"?>\n<ChangeResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
                 <ChangeInfo><Id>/change/C0MOCK</Id><Status>PENDING</Status>\
                 <SubmittedAt>2026-01-01T00:00:00Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>"
                    .to_owned(),
            )
        }
        _ => r53_error(404, "NoSuchHostedZone", "No hosted zone found"),
    }
}

fn start_route53_mock(bind: SocketAddr) -> MockRoute53 {
    let state = Arc::new(Mutex::new(R53State::default()));
    let shared = state.clone();
    let port = serve(Arc::new(move |method, path, query, headers, body| {
        let state = shared.clone();
        Box::pin(async move {
            let (code, text) =
                handle_route53(&state, bind, &method, &path, &query, &headers, &body).await;
            (code, "text/xml", text)
        })
    }));
    MockRoute53 {
        url: format!("http://127.0.0.1:{port}"),
        state,
    }
}

fn aws_credentials(secret: &str) -> AwsCredentials {
    AwsCredentials {
        access_key_id: ACCESS_KEY_ID.to_owned(),
        secret_access_key: secret.to_owned(),
        session_token: None,
    }
}

#[tokio::test]
async fn route53_provider_keeps_other_values_of_the_record_set() {
    let env = env().await;
    let fqdn = format!("_acme-challenge.provider.{R53_ZONE}.");
    let zone = format!("{R53_ZONE}.");
    // Zone found by name (ListHostedZonesByName), and given by id.
    let by_name = Route53::new(&env.route53.url, aws_credentials(SECRET_ACCESS_KEY), None).unwrap();
    let by_id = Route53::new(
        &env.route53.url,
        aws_credentials(SECRET_ACCESS_KEY),
        Some(format!("/hostedzone/{R53_ZONE_ID}")),
    )
    .unwrap();
    by_name.present(&fqdn, &zone, "value-one").await.unwrap();
    by_id.present(&fqdn, &zone, "value-two").await.unwrap();
    by_id.present(&fqdn, &zone, "value-two").await.unwrap();
    let mut values = env.bind.lookup_txt(&fqdn).unwrap();
    values.sort();
    assert_eq!(values, ["value-one", "value-two"]);
    // Removing one value keeps the other (an UPSERT of the rest), the last one is a DELETE
    // matching the record set exactly.
    by_name.cleanup(&fqdn, &zone, "value-one").await.unwrap();
    assert_eq!(env.bind.lookup_txt(&fqdn).unwrap(), ["value-two"]);
    by_id.cleanup(&fqdn, &zone, "value-two").await.unwrap();
    assert!(env.bind.lookup_txt(&fqdn).unwrap().is_empty());
    by_id.cleanup(&fqdn, &zone, "value-two").await.unwrap();
    let requests = env.route53.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /2013-04-01/hostedzonesbyname?dnsname=")),
        "{requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("POST /2013-04-01/hostedzone/{R53_ZONE_ID}/rrset"))),
        "{requests:#?}"
    );

    // A wrong secret key: the signature does not match.
    let wrong = Route53::new(&env.route53.url, aws_credentials("wrong-secret"), None).unwrap();
    let error = wrong.present(&fqdn, &zone, "x").await.unwrap_err();
    assert!(matches!(error, Dns01Error::Rejected(_)), "{error:?}");
    assert!(
        error.to_string().contains("SignatureDoesNotMatch"),
        "{error}"
    );
    // A zone the account does not have.
    let error = by_name
        .present("_acme-challenge.other.test.", "other.test.", "x")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("found no public hosted zone"),
        "{error}"
    );
}

#[tokio::test]
async fn certificate_through_route53() {
    let env = env().await;
    let cp = env.stack.control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("route53").await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    create(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "route53"},
               "stringData": {"secret-access-key": SECRET_ACCESS_KEY}}),
    )
    .await;
    let mut spec = acme_spec(
        &env.pebble.directory_url(),
        env.pebble.ca_pem(),
        "r53-account",
    );
    spec["acme"]["solvers"] = json!([{"dns01": {"route53": {
        "region": "eu-west-1",
        "accessKeyID": ACCESS_KEY_ID,
        "secretAccessKeySecretRef": {"name": "route53", "key": "secret-access-key"},
    }}}]);
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), &ns);
    create(
        &issuers,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
               "metadata": {"name": "route53"}, "spec": spec}),
    )
    .await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    let names = [format!("*.{R53_ZONE}"), format!("www.{R53_ZONE}")];
    create(
        &certs,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "r53"},
               "spec": {"secretName": "r53-tls", "dnsNames": names,
                        "issuerRef": {"name": "route53", "kind": "Issuer"}}}),
    )
    .await;
    wait_for(&certs, "r53", ISSUANCE_TIMEOUT, "Ready=True", is_ready).await;
    wait_txt_gone(&env.bind, &format!("_acme-challenge.{R53_ZONE}.")).await;
    wait_txt_gone(&env.bind, &format!("_acme-challenge.www.{R53_ZONE}.")).await;
    let requests = env.route53.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("POST /2013-04-01/hostedzone/{R53_ZONE_ID}/rrset"))),
        "{requests:#?}"
    );
}
