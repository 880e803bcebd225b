//! The Issuer controller against a real kube-apiserver and Pebble, run in-process: ACME
//! accounts are registered once and reused, External Account Binding is enforced, failures
//! become `Ready=False` with a clear message and are retried with backoff (no hot loop), and the
//! CA / SelfSigned / Vault issuers get their conditions.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use certsmith::acme::metrics;
use certsmith::api::Issuer;
use certsmith::api::meta::ConditionStatus;
use certsmith::controllers::{self, Config, Context};
use certsmith::solvers::http01::Http01Settings;
use certsmith_e2e::{ControlPlane, PebbleOptions};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "certsmith=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Runs the issuer controllers for `namespace` in this process until the test ends.
async fn start_controller(client: Client, namespace: &str) -> tokio::task::JoinHandle<()> {
    let config = Config {
        cluster_resource_namespace: namespace.to_owned(),
        namespace: Some(namespace.to_owned()),
        issuance_backoff_min: Duration::from_secs(3600),
        issuance_backoff_max: Duration::from_secs(32 * 3600),
        auto_approve: true,
        http01: Http01Settings::new("certsmith:test"),
        self_check_retry: Duration::from_secs(1),
        dns01: Default::default(),
        shim: Default::default(),
    };
    let ctx: Arc<Context> = Context::new(client, config);
    let shutdown = controllers::shutdown_on(futures::future::pending());
    tokio::spawn(controllers::issuer::run(ctx, shutdown))
}

async fn setup(
    prefix: &str,
) -> (
    Client,
    String,
    Api<Issuer>,
    Api<Secret>,
    tokio::task::JoinHandle<()>,
) {
    init_tracing();
    let cp = ControlPlane::shared();
    let client = cp.client().await.expect("client");
    let ns = cp.create_namespace(prefix).await.expect("namespace");
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let controller = start_controller(client.clone(), &ns).await;
    (client, ns, issuers, secrets, controller)
}

fn acme_issuer(name: &str, server: &str, ca_pem: &str, extra: Value) -> Issuer {
    let mut acme = json!({
        "server": server,
        "email": "ops@certsmith.test",
        "caBundle": STANDARD.encode(ca_pem),
        "privateKeySecretRef": {"name": format!("{name}-account")},
        "solvers": [{"http01": {"ingress": {"ingressClassName": "stand-in"}}}],
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        acme[k] = v;
    }
    serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": name},
        "spec": {"acme": acme},
    }))
    .expect("valid Issuer")
}

fn ready(issuer: &Issuer) -> Option<(ConditionStatus, String, String)> {
    let c = issuer.status.as_ref()?.condition("Ready")?;
    Some((
        c.status,
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

async fn wait_for(
    issuers: &Api<Issuer>,
    name: &str,
    what: &str,
    done: impl Fn(&Issuer) -> bool,
) -> Issuer {
    let start = Instant::now();
    let mut last = None;
    loop {
        if let Ok(Some(issuer)) = issuers.get_opt(name).await {
            if done(&issuer) {
                return issuer;
            }
            last = Some(issuer);
        }
        if start.elapsed() > TIMEOUT {
            panic!(
                "timed out waiting for Issuer {name}: {what}; last seen: {:#?}",
                last.map(|i| i.status)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn is_ready(issuer: &Issuer) -> bool {
    ready(issuer).is_some_and(|(s, _, _)| s == ConditionStatus::True)
        && issuer.status.as_ref().unwrap().conditions.as_ref().unwrap()[0].observed_generation
            == issuer.metadata.generation
}

fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

async fn secret_with(secrets: &Api<Secret>, name: &str, key: &str, value: &[u8]) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {key: STANDARD.encode(value)},
    }))
    .unwrap();
    secrets
        .patch(
            name,
            &PatchParams::apply("issuer-acme-test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("apply Secret");
}

async fn warning_events(client: &Client, ns: &str, name: &str, reason: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.type_.as_deref() == Some("Warning")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_an_account_once_and_follows_email_changes() {
    let (_client, _ns, issuers, secrets, _controller) = setup("issuer-acme").await;
    let pebble = ControlPlane::shared().pebble();
    let host = host_of(&pebble.directory_url());

    let issuer = acme_issuer(
        "pebble",
        &pebble.directory_url(),
        pebble.ca_pem(),
        json!({}),
    );
    issuers
        .create(&PostParams::default(), &issuer)
        .await
        .expect("create Issuer");
    let issuer = wait_for(&issuers, "pebble", "Ready=True", is_ready).await;
    let (_, reason, message) = ready(&issuer).unwrap();
    assert_eq!(reason, "ACMEAccountRegistered");
    assert_eq!(
        message,
        "The ACME account was registered with the ACME server"
    );
    let acme = issuer
        .status
        .as_ref()
        .unwrap()
        .acme
        .clone()
        .expect("status.acme");
    let uri = acme.uri.clone().expect("status.acme.uri");
    assert!(uri.starts_with(&format!("https://{host}/")), "{uri}");
    assert_eq!(
        acme.last_registered_email.as_deref(),
        Some("ops@certsmith.test")
    );

    // The generated key is a P-256 PKCS#8 key in the Secret, labelled for the Secret cache, and
    // the status records its hash.
    let secret = secrets
        .get("pebble-account")
        .await
        .expect("account key Secret");
    assert_eq!(
        secret
            .labels()
            .get("controller.cert-manager.io/fao")
            .map(String::as_str),
        Some("true")
    );
    let pem_text = String::from_utf8(secret.data.as_ref().unwrap()["tls.key"].0.clone()).unwrap();
    let block = pem::parse(&pem_text).expect("PEM");
    assert_eq!(block.tag(), "PRIVATE KEY");
    assert_eq!(
        acme.last_private_key_hash.as_deref(),
        Some(certsmith::acme::account_key_hash(block.contents()).as_str())
    );

    // Nothing changes: no more ACME requests (no registering again on status writes or resyncs).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = metrics::request_count_where(Some(&host), Some("new_account"), None, None);
    let total_before = metrics::request_count_where(Some(&host), None, None, None);
    issuers
        .patch(
            "pebble",
            &PatchParams::apply("issuer-acme-test"),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        metrics::request_count_where(Some(&host), None, None, None),
        total_before,
        "an unrelated change made ACME requests"
    );

    // A new email updates the account's contact, without a new account.
    issuers
        .patch(
            "pebble",
            &PatchParams::apply("issuer-acme-test"),
            &Patch::Merge(json!({"spec": {"acme": {"email": "new@certsmith.test"}}})),
        )
        .await
        .unwrap();
    let issuer = wait_for(&issuers, "pebble", "lastRegisteredEmail updated", |i| {
        is_ready(i)
            && i.status
                .as_ref()
                .and_then(|s| s.acme.as_ref())
                .and_then(|a| a.last_registered_email.as_deref())
                == Some("new@certsmith.test")
    })
    .await;
    assert_eq!(
        issuer.status.unwrap().acme.unwrap().uri.as_deref(),
        Some(uri.as_str()),
        "same account"
    );
    assert_eq!(
        metrics::request_count_where(Some(&host), Some("new_account"), None, None),
        settled,
        "no new registration"
    );
    assert!(
        metrics::request_count_where(Some(&host), Some("update_account"), Some("POST"), None) >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_account_binding_is_required_and_checked() {
    let (client, ns, issuers, secrets, _controller) = setup("issuer-eab").await;
    let cp = ControlPlane::shared();
    let hmac = b"certsmith test HMAC key for pebble EAB";
    let eab_pebble = cp
        .start_pebble(PebbleOptions::with_eab([(
            "kid-1".to_owned(),
            URL_SAFE_NO_PAD.encode(hmac),
        )]))
        .await
        .expect("EAB Pebble");
    let server = eab_pebble.directory_url();

    // No EAB configured: the server's refusal is the message.
    let issuer = acme_issuer("no-eab", &server, eab_pebble.ca_pem(), json!({}));
    issuers
        .create(&PostParams::default(), &issuer)
        .await
        .unwrap();
    let issuer = wait_for(&issuers, "no-eab", "Ready=False", |i| {
        ready(i).is_some_and(|(s, _, _)| s == ConditionStatus::False)
    })
    .await;
    let (_, reason, message) = ready(&issuer).unwrap();
    assert_eq!(reason, "ErrRegisterACMEAccount");
    assert!(
        message.starts_with("Failed to register ACME account: "),
        "{message}"
    );
    assert!(message.contains("externalAccountRequired"), "{message}");

    // A wrong HMAC key: refused, and neither key appears in the message.
    let wrong = b"not the key pebble knows";
    secret_with(
        &secrets,
        "eab",
        "secret",
        URL_SAFE_NO_PAD.encode(wrong).as_bytes(),
    )
    .await;
    let eab = json!({"externalAccountBinding": {"keyID": "kid-1", "keySecretRef": {"name": "eab", "key": "secret"}}});
    let issuer = acme_issuer("with-eab", &server, eab_pebble.ca_pem(), eab);
    issuers
        .create(&PostParams::default(), &issuer)
        .await
        .unwrap();
    let issuer = wait_for(&issuers, "with-eab", "Ready=False", |i| {
        ready(i).is_some_and(|(s, _, _)| s == ConditionStatus::False)
    })
    .await;
    let (_, reason, message) = ready(&issuer).unwrap();
    assert_eq!(reason, "ErrRegisterACMEAccount");
    assert!(
        message.starts_with("Failed to register ACME account: "),
        "{message}"
    );
    for secret in [URL_SAFE_NO_PAD.encode(wrong), URL_SAFE_NO_PAD.encode(hmac)] {
        assert!(
            !message.contains(&secret),
            "key material in the message: {message}"
        );
    }
    assert!(
        secrets
            .get_opt("with-eab-account")
            .await
            .unwrap()
            .is_none_or(|s| s.data.is_none()),
        "no account key is stored for a refused registration"
    );
    let events = warning_events(&client, &ns, "with-eab", "ErrRegisterACMEAccount").await;
    assert!(!events.is_empty(), "a Warning Event is published");

    // The right key (padded base64url is tolerated): the Secret change is picked up at once,
    // not after the backoff.
    let padded = base64::engine::general_purpose::URL_SAFE.encode(hmac);
    secret_with(&secrets, "eab", "secret", padded.as_bytes()).await;
    let issuer = wait_for(&issuers, "with-eab", "Ready=True", is_ready).await;
    assert_eq!(ready(&issuer).unwrap().1, "ACMEAccountRegistered");
    drop(eab_pebble);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_retried_with_backoff() {
    let (client, ns, issuers, _secrets, _controller) = setup("issuer-down").await;
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = format!("https://127.0.0.1:{port}/dir");
    let host = format!("127.0.0.1:{port}");
    let issuer = acme_issuer(
        "down",
        &server,
        ControlPlane::shared().pebble().ca_pem(),
        json!({}),
    );
    issuers
        .create(&PostParams::default(), &issuer)
        .await
        .unwrap();
    let issuer = wait_for(&issuers, "down", "Ready=False", |i| {
        ready(i).is_some_and(|(s, _, _)| s == ConditionStatus::False)
    })
    .await;
    let (_, reason, message) = ready(&issuer).unwrap();
    assert_eq!(reason, "ErrRegisterACMEAccount");
    assert!(message.contains(&host), "{message}");
    assert!(message.to_lowercase().contains("connect"), "{message}");

    // Over 12 s a hot loop would make hundreds of attempts; the backoff (2 s, 4 s, 8 s …) a few.
    let start = metrics::request_count_where(Some(&host), None, None, None);
    tokio::time::sleep(Duration::from_secs(12)).await;
    let attempts = metrics::request_count_where(Some(&host), None, None, None) - start;
    assert!((1..=5).contains(&attempts), "{attempts} attempts in 12 s");
    assert!(
        !warning_events(&client, &ns, "down", "ErrRegisterACMEAccount")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_keys_certsmith_cannot_use_are_explained() {
    let (_client, _ns, issuers, secrets, _controller) = setup("issuer-rsa").await;
    let pebble = ControlPlane::shared().pebble();
    let host = host_of(&pebble.directory_url());
    // cert-manager's account keys are RSA (PKCS#1).
    let rsa = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let pkcs1 =
        certsmith::pki::keys::encode_pem(&rsa, certsmith::pki::keys::KeyEncoding::Pkcs1).unwrap();
    secret_with(&secrets, "rsa-account", "tls.key", pkcs1.as_bytes()).await;
    let before = metrics::request_count_where(Some(&host), Some("new_account"), None, None);
    let issuer = acme_issuer("rsa", &pebble.directory_url(), pebble.ca_pem(), json!({}));
    issuers
        .create(&PostParams::default(), &issuer)
        .await
        .unwrap();
    let issuer = wait_for(&issuers, "rsa", "Ready=False", |i| {
        ready(i).is_some_and(|(s, _, _)| s == ConditionStatus::False)
    })
    .await;
    let message = ready(&issuer).unwrap().2;
    assert!(message.contains("ECDSA P-256"), "{message}");
    assert!(message.contains("delete Secret"), "{message}");
    assert!(!message.contains("BEGIN"), "{message}");
    assert_eq!(
        metrics::request_count_where(Some(&host), Some("new_account"), None, None),
        before
    );
    // The Secret is left alone.
    let stored = secrets.get("rsa-account").await.unwrap();
    assert_eq!(stored.data.unwrap()["tls.key"].0, pkcs1.as_bytes());

    // Generation disabled and no Secret: a clear message, no registration.
    let issuer = acme_issuer(
        "nogen",
        &pebble.directory_url(),
        pebble.ca_pem(),
        json!({"disableAccountKeyGeneration": true}),
    );
    issuers
        .create(&PostParams::default(), &issuer)
        .await
        .unwrap();
    let issuer = wait_for(&issuers, "nogen", "Ready=False", |i| {
        ready(i).is_some_and(|(s, _, _)| s == ConditionStatus::False)
    })
    .await;
    let message = ready(&issuer).unwrap().2;
    assert!(
        message.contains("does not exist and disableAccountKeyGeneration is set"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_ca_and_vault_issuers() {
    let (_client, _ns, issuers, secrets, _controller) = setup("issuer-other").await;
    let create = |name: &str, spec: Value| {
        let issuer: Issuer = serde_json::from_value(json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Issuer",
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        let issuers = issuers.clone();
        async move {
            issuers
                .create(&PostParams::default(), &issuer)
                .await
                .unwrap()
        }
    };
    create("selfsigned", json!({"selfSigned": {}})).await;
    create("ca", json!({"ca": {"secretName": "ca-key-pair"}})).await;
    create("vault", json!({"vault": {"server": "https://vault.example", "path": "pki/sign/x", "auth": {"tokenSecretRef": {"name": "t", "key": "k"}}}})).await;

    let issuer = wait_for(&issuers, "selfsigned", "Ready=True", is_ready).await;
    assert_eq!(ready(&issuer).unwrap().1, "IsReady");
    let issuer = wait_for(&issuers, "vault", "Ready=False", |i| ready(i).is_some()).await;
    assert_eq!(
        ready(&issuer).unwrap(),
        (
            ConditionStatus::False,
            "NotImplemented".to_owned(),
            "certsmith does not implement the vault issuer yet".to_owned()
        )
    );
    let issuer = wait_for(&issuers, "ca", "Ready=False", |i| ready(i).is_some()).await;
    assert_eq!(ready(&issuer).unwrap().1, "ErrGetKeyPair");

    // The CA Secret appears: the Secret watch makes the issuer ready.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ca-key-pair"}, "type": "kubernetes.io/tls",
        "data": {"tls.crt": STANDARD.encode(cert.pem()), "tls.key": STANDARD.encode(key.serialize_pem())},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let issuer = wait_for(&issuers, "ca", "Ready=True", is_ready).await;
    assert_eq!(
        ready(&issuer).unwrap(),
        (
            ConditionStatus::True,
            "KeyPairVerified".to_owned(),
            "Signing CA verified".to_owned()
        )
    );
}
