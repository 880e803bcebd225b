//! The HTTP-01 solver against a real API server: the solver Pod (the real `certsmith solver`
//! binary, run by the stand-in kubelet) is admitted under the "restricted" Pod Security
//! Standard, the stand-in ingress controller routes the challenge URL to it through the
//! objects present() makes, the self-check passes through the mock DNS, and cleanup() removes
//! everything again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use certsmith::api::Challenge;
use certsmith::solvers::http01::objects::label_selector;
use certsmith::solvers::http01::{self, Http01Settings, SelfCheck};
use certsmith_e2e::{ControlPlane, FakeKubelet, IngressRouter};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const SOLVER_IMAGE: &str = "certsmith.test/solver:http01-test";

/// The stand-ins of this test binary: one router can own the ingress address's port 80.
fn stand_ins() -> &'static (FakeKubelet, IngressRouter) {
    static STAND_INS: OnceLock<(FakeKubelet, IngressRouter)> = OnceLock::new();
    STAND_INS.get_or_init(|| {
        let cp = ControlPlane::shared();
        // They run on threads of their own; this runtime only waits for them to start.
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

fn settings(cp: &ControlPlane) -> Http01Settings {
    let mut settings = Http01Settings::new(SOLVER_IMAGE);
    settings.self_check_nameservers = vec![cp.challtestsrv().dns_addr()];
    settings
}

/// A namespace where only Pods that meet the "restricted" Pod Security Standard are admitted.
async fn restricted_namespace(cp: &ControlPlane, client: &Client, prefix: &str) -> String {
    let ns = cp.create_namespace(prefix).await.unwrap();
    let patch =
        json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}});
    Api::<Namespace>::all(client.clone())
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    ns
}

async fn create_challenge(
    client: &Client,
    ns: &str,
    dns_name: &str,
    http01: serde_json::Value,
) -> Challenge {
    let token = format!("token-{ns}");
    let challenge: Challenge = serde_json::from_value(json!({
        "apiVersion": "acme.cert-manager.io/v1",
        "kind": "Challenge",
        "metadata": {"name": "solver-test"},
        "spec": {
            "url": "https://acme.test/chall/1",
            "authorizationURL": "https://acme.test/authz/1",
            "dnsName": dns_name,
            "type": "HTTP-01",
            "token": token,
            "key": format!("{token}.thumbprint"),
            "solver": {"http01": http01},
            "issuerRef": {"name": "test-issuer", "kind": "Issuer"},
        },
    }))
    .unwrap();
    Api::<Challenge>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &challenge)
        .await
        .unwrap()
}

/// The solver objects of a challenge (by the identity labels): Pods, Services, Ingresses.
async fn solver_objects(
    client: &Client,
    ns: &str,
    challenge: &Challenge,
) -> (Vec<Pod>, Vec<Service>, Vec<Ingress>) {
    let params = ListParams::default().labels(&label_selector(challenge));
    (
        Api::<Pod>::namespaced(client.clone(), ns)
            .list(&params)
            .await
            .unwrap()
            .items,
        Api::<Service>::namespaced(client.clone(), ns)
            .list(&params)
            .await
            .unwrap()
            .items,
        Api::<Ingress>::namespaced(client.clone(), ns)
            .list(&params)
            .await
            .unwrap()
            .items,
    )
}

/// Self-checks every 200 ms until one passes; panics with the last reason after `timeout`.
async fn self_check_passes(challenge: &Challenge, settings: &Http01Settings, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match http01::self_check(challenge, settings).await.unwrap() {
            SelfCheck::Passed => return,
            SelfCheck::Failed(reason) if Instant::now() >= deadline => {
                panic!("the self-check still fails after {timeout:?}: {reason}")
            }
            SelfCheck::Failed(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn wait_until_gone(client: &Client, ns: &str, challenge: &Challenge) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (pods, services, ingresses) = solver_objects(client, ns, challenge).await;
        if pods.is_empty() && services.is_empty() && ingresses.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "solver objects left after cleanup: {} Pods, {} Services, {} Ingresses",
            pods.len(),
            services.len(),
            ingresses.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn solver_pod_serves_the_challenge_through_the_ingress() {
    let cp = ControlPlane::shared();
    stand_ins();
    let client = cp.client().await.unwrap();
    let ns = restricted_namespace(cp, &client, "http01").await;
    let settings = settings(cp);

    // The namespace really enforces the restricted profile.
    let privileged: Pod = serde_json::from_value(json!({
        "metadata": {"name": "unrestricted"},
        "spec": {"containers": [{"name": "c", "image": "example.invalid/none"}]},
    }))
    .unwrap();
    let refused = Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &privileged)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("PodSecurity"), "{refused}");

    let dns_name = format!("{ns}.http01.test");
    let challenge = create_challenge(
        &client,
        &ns,
        &dns_name,
        json!({"ingress": {"ingressClassName": "certsmith-e2e"}}),
    )
    .await;

    // Before present(): nothing routes the challenge path.
    let SelfCheck::Failed(reason) = http01::self_check(&challenge, &settings).await.unwrap() else {
        panic!("the self-check passed before present()")
    };
    assert_eq!(reason, "wrong status code '404', expected '200'");

    http01::present(&client, &challenge, &settings)
        .await
        .unwrap();
    let first = solver_objects(&client, &ns, &challenge).await;
    http01::present(&client, &challenge, &settings)
        .await
        .unwrap();
    let (pods, services, ingresses) = solver_objects(&client, &ns, &challenge).await;
    assert_eq!(
        (pods.len(), services.len(), ingresses.len()),
        (1, 1, 1),
        "present() is idempotent"
    );
    assert_eq!(
        ingresses[0].metadata.resource_version, first.2[0].metadata.resource_version,
        "a second present() leaves the Ingress alone"
    );
    let ingress_spec = ingresses[0].spec.as_ref().unwrap();
    assert_eq!(
        ingress_spec.ingress_class_name.as_deref(),
        Some("certsmith-e2e")
    );
    assert_eq!(
        services[0].spec.as_ref().unwrap().type_.as_deref(),
        Some("NodePort")
    );

    self_check_passes(&challenge, &settings, Duration::from_secs(30)).await;
    let pod = Api::<Pod>::namespaced(client.clone(), &ns)
        .get(pods[0].metadata.name.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));

    // The same route with another key authorization, or another token, does not pass.
    let mut wrong_key = challenge.clone();
    wrong_key.spec.key = "another.key".into();
    let SelfCheck::Failed(reason) = http01::self_check(&wrong_key, &settings).await.unwrap() else {
        panic!("the self-check passed with the wrong key")
    };
    assert!(
        reason.starts_with("did not get expected response"),
        "{reason}"
    );
    assert!(!reason.contains("another.key"), "{reason}");
    let mut wrong_token = challenge.clone();
    wrong_token.spec.token = "other-token".into();
    assert_eq!(
        http01::self_check(&wrong_token, &settings).await.unwrap(),
        SelfCheck::Failed("wrong status code '404', expected '200'".into())
    );

    http01::cleanup(&client, &challenge).await.unwrap();
    wait_until_gone(&client, &ns, &challenge).await;
    http01::cleanup(&client, &challenge).await.unwrap();
    let SelfCheck::Failed(_) = http01::self_check(&challenge, &settings).await.unwrap() else {
        panic!("the self-check passed after cleanup()")
    };
}

#[tokio::test]
async fn solver_edits_a_named_ingress_in_place() {
    let cp = ControlPlane::shared();
    stand_ins();
    let client = cp.client().await.unwrap();
    let ns = restricted_namespace(cp, &client, "http01-named").await;
    let settings = settings(cp);
    let dns_name = format!("{ns}.http01.test");

    // The application's own Ingress, whose "/" must keep working.
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let web: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"rules": [{"host": dns_name, "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}},
        }]}}]},
    }))
    .unwrap();
    let web = ingresses
        .create(&PostParams::default(), &web)
        .await
        .unwrap();

    let challenge =
        create_challenge(&client, &ns, &dns_name, json!({"ingress": {"name": "web"}})).await;
    http01::present(&client, &challenge, &settings)
        .await
        .unwrap();
    http01::present(&client, &challenge, &settings)
        .await
        .unwrap();
    let (pods, services, own_ingresses) = solver_objects(&client, &ns, &challenge).await;
    assert_eq!((pods.len(), services.len(), own_ingresses.len()), (1, 1, 0));
    let edited = ingresses.get("web").await.unwrap();
    let paths = &edited.spec.as_ref().unwrap().rules.as_ref().unwrap()[0]
        .http
        .as_ref()
        .unwrap()
        .paths;
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert_eq!(
        paths[0].path.as_deref(),
        Some(format!("/.well-known/acme-challenge/{}", challenge.spec.token).as_str())
    );
    assert_eq!(
        paths[0].backend.service.as_ref().unwrap().name,
        services[0].metadata.name.clone().unwrap()
    );

    self_check_passes(&challenge, &settings, Duration::from_secs(30)).await;

    http01::cleanup(&client, &challenge).await.unwrap();
    wait_until_gone(&client, &ns, &challenge).await;
    let restored = ingresses.get("web").await.unwrap();
    assert_eq!(
        restored.spec, web.spec,
        "cleanup() removes only the challenge path"
    );
    http01::cleanup(&client, &challenge).await.unwrap();
}
