//! The Issuer, Order and Challenge controllers, run in-process, against a real kube-apiserver,
//! Pebble and the HTTP-01 stand-ins (the stand-in kubelet runs the real `certsmith solver`
//! binary for solver Pods, the stand-in ingress controller routes Pebble's validation to it).
//!
//! Each test has a Pebble of its own, so the ACME requests it counts are its own.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use certsmith::acme::metrics;
use certsmith::api::acme::AcmeState;
use certsmith::api::{Challenge, Issuer, Order};
use certsmith::controllers::{self, Config, Context};
use certsmith::solvers::http01::Http01Settings;
use certsmith_e2e::{ControlPlane, FakeKubelet, IngressRouter, Pebble, PebbleOptions};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const SOLVER_IMAGE: &str = "certsmith.test/solver:acme-order-test";
const TIMEOUT: Duration = Duration::from_secs(90);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "certsmith=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The stand-ins of this test binary (one router owns the ingress address's port 80).
fn stand_ins() -> &'static (FakeKubelet, IngressRouter) {
    static STAND_INS: OnceLock<(FakeKubelet, IngressRouter)> = OnceLock::new();
    STAND_INS.get_or_init(|| {
        let cp = ControlPlane::shared();
        std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Runtime::new().unwrap().block_on(async {
                    let images = HashMap::from([(
                        SOLVER_IMAGE.to_owned(),
                        PathBuf::from(env!("CARGO_BIN_EXE_certsmith")),
                    )]);
                    let kubelet = FakeKubelet::start(cp, images).await.unwrap();
                    let router = IngressRouter::start(cp, SocketAddr::from((cp.ingress_ip(), 80)))
                        .await
                        .unwrap();
                    (kubelet, router)
                })
            })
            .join()
            .unwrap()
        })
    })
}

/// Runs the issuer, order and challenge controllers for `namespace` until the task is aborted.
fn start_controllers(client: Client, namespace: &str) -> tokio::task::JoinHandle<()> {
    let cp = ControlPlane::shared();
    let mut http01 = Http01Settings::new(SOLVER_IMAGE);
    http01.self_check_nameservers = vec![cp.challtestsrv().dns_addr()];
    let config = Config {
        cluster_resource_namespace: namespace.to_owned(),
        namespace: Some(namespace.to_owned()),
        issuance_backoff_min: Duration::from_secs(3600),
        issuance_backoff_max: Duration::from_secs(32 * 3600),
        auto_approve: true,
        http01,
        self_check_retry: Duration::from_secs(1),
        dns01: Default::default(),
        shim: Default::default(),
    };
    let ctx: Arc<Context> = Context::new(client, config);
    tokio::spawn(async move {
        let shutdown = controllers::shutdown_on(futures::future::pending());
        futures::join!(
            controllers::issuer::run(ctx.clone(), shutdown.clone()),
            controllers::order::run(ctx.clone(), shutdown.clone()),
            controllers::challenge::run(ctx, shutdown),
        );
    })
}

struct Setup {
    client: Client,
    ns: String,
    _pebble: Pebble,
    host: String,
    orders: Api<Order>,
    challenges: Api<Challenge>,
    controllers: tokio::task::JoinHandle<()>,
}

async fn setup(prefix: &str, solvers: serde_json::Value) -> Setup {
    init_tracing();
    stand_ins();
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace(prefix).await.unwrap();
    let pebble = cp
        .start_pebble(PebbleOptions::default())
        .await
        .expect("a Pebble of its own");
    let host = pebble.directory_url().split('/').nth(2).unwrap().to_owned();
    let controllers = start_controllers(client.clone(), &ns);
    let issuer: Issuer = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
        "metadata": {"name": "pebble"},
        "spec": {"acme": {
            "server": pebble.directory_url(),
            "email": "ops@certsmith.test",
            "caBundle": STANDARD.encode(pebble.ca_pem()),
            "privateKeySecretRef": {"name": "pebble-account"},
            "solvers": solvers,
        }},
    }))
    .unwrap();
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), &ns);
    issuers
        .create(&PostParams::default(), &issuer)
        .await
        .unwrap();
    let start = Instant::now();
    while !issuers
        .get("pebble")
        .await
        .unwrap()
        .status
        .is_some_and(|s| s.is_ready())
    {
        assert!(start.elapsed() < TIMEOUT, "the issuer did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Setup {
        orders: Api::namespaced(client.clone(), &ns),
        challenges: Api::namespaced(client.clone(), &ns),
        client,
        ns,
        _pebble: pebble,
        host,
        controllers,
    }
}

fn http01_solvers() -> serde_json::Value {
    json!([{"http01": {"ingress": {"ingressClassName": "stand-in"}}}])
}

/// A CSR for `names` (PEM) and an Order for it.
fn order(name: &str, names: &[String]) -> Order {
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(names.to_vec())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    serde_json::from_value(json!({
        "apiVersion": "acme.cert-manager.io/v1", "kind": "Order",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "request": STANDARD.encode(csr),
            "issuerRef": {"name": "pebble", "kind": "Issuer", "group": "cert-manager.io"},
            "dnsNames": names,
            "profile": "default",
        },
    }))
    .unwrap()
}

async fn wait_order(
    orders: &Api<Order>,
    name: &str,
    what: &str,
    done: impl Fn(&Order) -> bool,
) -> Order {
    let start = Instant::now();
    loop {
        let order = orders.get(name).await.unwrap();
        if done(&order) {
            return order;
        }
        if start.elapsed() > TIMEOUT {
            panic!(
                "timed out waiting for Order {name}: {what}; last seen: {:#?}",
                order.status
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn requests(host: &str) -> BTreeMap<String, u64> {
    let mut by_action = BTreeMap::new();
    for (labels, n) in metrics::snapshot() {
        if labels.host == host {
            *by_action
                .entry(format!("{} {}", labels.method, labels.action))
                .or_default() += n;
        }
    }
    by_action
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_issued_through_http01() {
    let s = setup("order-http01", http01_solvers()).await;
    let names = vec![
        format!("a.{}.certsmith.test", s.ns),
        format!("b.{}.certsmith.test", s.ns),
    ];
    let started = Instant::now();
    s.orders
        .create(&PostParams::default(), &order("web-1", &names))
        .await
        .unwrap();
    let done = wait_order(&s.orders, "web-1", "valid", |o| {
        o.state() == Some(AcmeState::Valid)
    })
    .await;
    let elapsed = started.elapsed();
    let status = done.status.as_ref().unwrap();
    assert!(status.url.as_deref().unwrap().contains(&s.host));
    assert!(status.finalize_url.is_some());
    let authorizations = status.authorizations.as_ref().unwrap();
    assert_eq!(authorizations.len(), 2);
    for a in authorizations {
        assert_eq!(a.initial_state, Some(AcmeState::Pending));
        assert!(
            a.challenges
                .as_ref()
                .unwrap()
                .iter()
                .any(|c| c.type_ == "http-01")
        );
    }
    let chain = String::from_utf8(status.certificate.as_ref().unwrap().0.clone()).unwrap();
    let leaf = certsmith::pki::x509::parse_leaf_pem(&chain).unwrap();
    let mut dns_names = leaf.dns_names.clone();
    dns_names.sort();
    assert_eq!(dns_names, names);
    assert!(status.reason.is_none() && status.failure_time.is_none());

    // The completed Order's Challenges are deleted (after their solvers are cleaned up).
    let start = Instant::now();
    loop {
        let left = s
            .challenges
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        if left.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "Challenges left: {:?}",
            left.iter()
                .map(|c| (c.name_any(), c.state()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reasons: Vec<String> = events(&s.client, &s.ns, "web-1")
        .await
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.iter().any(|r| r == "Created"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "Complete"), "{reasons:?}");

    let requests = requests(&s.host);
    let total: u64 = requests.values().sum();
    eprintln!("issued 2 names in {elapsed:?} with {total} ACME requests: {requests:#?}");
    assert_eq!(requests.get("POST new_order"), Some(&1));
    assert_eq!(requests.get("POST new_account"), Some(&1));
    assert_eq!(requests.get("POST finalize"), Some(&1));
    assert_eq!(requests.get("POST get_certificate"), Some(&1));
    assert_eq!(requests.get("POST accept_challenge"), Some(&2));
    assert!(total <= 30, "{total} ACME requests");
    s.controllers.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_reattaches_to_the_order() {
    let s = setup("order-restart", http01_solvers()).await;
    let names = vec![format!("r.{}.certsmith.test", s.ns)];
    s.orders
        .create(&PostParams::default(), &order("web-2", &names))
        .await
        .unwrap();
    // Stop the controllers as soon as the ACME order exists.
    wait_order(&s.orders, "web-2", "status.url", |o| {
        o.status.as_ref().is_some_and(|st| st.url.is_some())
    })
    .await;
    s.controllers.abort();
    let _ = s.controllers.await;
    // A new process: empty account and order caches.
    let again = start_controllers(s.client.clone(), &s.ns);
    let done = wait_order(&s.orders, "web-2", "valid", |o| {
        o.state() == Some(AcmeState::Valid)
    })
    .await;
    assert!(done.status.unwrap().certificate.is_some());
    let requests = requests(&s.host);
    eprintln!("with a restart: {requests:#?}");
    assert_eq!(
        requests.get("POST new_order"),
        Some(&1),
        "a second ACME order was created"
    );
    assert_eq!(
        requests.get("POST new_account"),
        Some(&1),
        "the account was registered again"
    );
    again.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fitting_solver_the_order_stays_pending() {
    // HTTP-01 only: a wildcard cannot be validated.
    let s = setup("order-nosolver", http01_solvers()).await;
    let names = vec![format!("*.{}.certsmith.test", s.ns)];
    s.orders
        .create(&PostParams::default(), &order("wild", &names))
        .await
        .unwrap();
    let pending = wait_order(&s.orders, "wild", "a reason", |o| {
        o.status
            .as_ref()
            .and_then(|st| st.reason.as_deref())
            .is_some_and(|r| r.contains("solver"))
    })
    .await;
    let status = pending.status.unwrap();
    assert_eq!(status.state, Some(AcmeState::Pending));
    let reason = status.reason.unwrap();
    assert!(
        reason.starts_with("Failed to determine a valid solver configuration"),
        "{reason}"
    );
    assert!(reason.contains(&names[0]), "{reason}");
    assert!(
        s.challenges
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let warnings: Vec<Event> = events(&s.client, &s.ns, "wild")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Solver") && e.type_.as_deref() == Some("Warning"))
        .collect();
    assert!(!warnings.is_empty());
    s.controllers.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_validation_makes_the_order_invalid() {
    // Skip the self-check (it would never pass) and point the name where nothing listens.
    let s = setup(
        "order-invalid",
        json!([{"http01": {"ingress": {"ingressClassName": "stand-in"}}, "waitInsteadOfSelfCheck": "0s"}]),
    )
    .await;
    let name = format!("nowhere.{}.certsmith.test", s.ns);
    ControlPlane::shared()
        .challtestsrv()
        .add_a(&format!("{name}."), &["127.0.0.2"])
        .await
        .unwrap();
    s.orders
        .create(
            &PostParams::default(),
            &order("bad", std::slice::from_ref(&name)),
        )
        .await
        .unwrap();
    let failed = wait_order(&s.orders, "bad", "invalid", |o| {
        o.state().is_some_and(|st| st.is_failure())
    })
    .await;
    let status = failed.status.unwrap();
    assert_eq!(status.state, Some(AcmeState::Invalid));
    assert!(status.failure_time.is_some());
    let reason = status.reason.unwrap();
    assert!(reason.contains("Error accepting authorization"), "{reason}");
    assert!(reason.contains("urn:ietf:params:acme:error:"), "{reason}");
    let challenges = s
        .challenges
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(
        challenges.len(),
        1,
        "the failed Challenge is kept for inspection"
    );
    let challenge = &challenges[0];
    assert_eq!(challenge.state(), Some(AcmeState::Invalid));
    // Its solver is cleaned up.
    let start = Instant::now();
    while challenge_presented(&s.challenges, &challenge.name_any()).await {
        assert!(start.elapsed() < TIMEOUT);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reasons: Vec<String> = events(&s.client, &s.ns, &challenge.name_any())
        .await
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.iter().any(|r| r == "Failed"), "{reasons:?}");
    s.controllers.abort();
}

async fn challenge_presented(challenges: &Api<Challenge>, name: &str) -> bool {
    challenges.get(name).await.unwrap().is_presented()
}
