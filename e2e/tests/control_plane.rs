//! The local control plane works: API server, garbage collector, namespace controller, Pebble
//! and the mock DNS server.

use std::time::{Duration, Instant};

use certsmith_e2e::{ControlPlane, PebbleOptions};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

/// Polls `check` every 200 ms until it returns true or `timeout` passes.
async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

fn config_map(name: &str, owner: Option<&ConfigMap>) -> ConfigMap {
    let owner_refs = owner.map(|o| {
        serde_json::json!([{
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": o.metadata.name,
            "uid": o.metadata.uid,
        }])
    });
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "ownerReferences": owner_refs},
        "data": {"k": "v"},
    }))
    .unwrap()
}

#[tokio::test]
async fn control_plane_starts() {
    let cp = ControlPlane::shared();
    eprintln!(
        "control plane started in {:?}; work dir {}",
        cp.startup_time(),
        cp.work_dir().display()
    );
    let client = cp.client().await.unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v1.36.3");
    // The root CA published by kube-controller-manager into every namespace.
    let ns = cp.create_namespace("start").await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, &ns);
    assert!(
        eventually(Duration::from_secs(30), || async {
            cms.get_opt("kube-root-ca.crt").await.unwrap().is_some()
        })
        .await,
        "kube-root-ca.crt was not published"
    );
}

#[tokio::test]
async fn kubectl_uses_the_admin_kubeconfig() {
    let cp = ControlPlane::shared();
    if !cp.bin_dir().join("kubectl").exists() {
        eprintln!("no kubectl built; skipping");
        return;
    }
    let out = cp
        .kubectl()
        .args(["get", "namespace", "default", "-o", "name"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "namespace/default"
    );
}

#[tokio::test]
async fn owner_reference_garbage_collection() {
    let cp = ControlPlane::shared();
    let ns = cp.create_namespace("gc").await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(cp.client().await.unwrap(), &ns);
    let pp = PostParams::default();
    let owner = cms.create(&pp, &config_map("owner", None)).await.unwrap();
    cms.create(&pp, &config_map("child", Some(&owner)))
        .await
        .unwrap();
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            cms.get_opt("child").await.unwrap().is_none()
        })
        .await,
        "the child ConfigMap was not garbage collected"
    );
}

#[tokio::test]
async fn namespace_deletion_finishes() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("delete").await.unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &config_map("some", None))
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(client);
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            namespaces.get_opt(&ns).await.unwrap().is_none()
        })
        .await,
        "namespace {ns} was not finalized"
    );
}

#[tokio::test]
async fn pebble_directory() {
    let pebble = ControlPlane::shared().pebble();
    let dir = pebble.directory().await.unwrap();
    assert!(dir["newOrder"].is_string(), "{dir}");
    assert!(dir["renewalInfo"].is_string(), "no ARI: {dir}");
    let profiles = dir["meta"]["profiles"].as_object().expect("meta.profiles");
    for p in ["default", "shortlived", "tenminutes"] {
        assert!(profiles.contains_key(p), "profile {p} missing: {dir}");
    }
    assert_eq!(dir["meta"]["externalAccountRequired"], false);
    assert!(
        pebble
            .root_pem()
            .await
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
}

#[tokio::test]
async fn second_pebble_requires_eab() {
    let cp = ControlPlane::shared();
    let pebble = cp
        .start_pebble(PebbleOptions::with_eab([(
            "kid-1".to_owned(),
            "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W".to_owned(),
        )]))
        .await
        .unwrap();
    assert_ne!(pebble.directory_url(), cp.pebble().directory_url());
    let dir = pebble.directory().await.unwrap();
    assert_eq!(dir["meta"]["externalAccountRequired"], true, "{dir}");
    let pid = pebble.process().pid();
    drop(pebble);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the dropped Pebble is still running"
    );
}

#[tokio::test]
async fn challtestsrv_serves_txt_records() {
    let srv = ControlPlane::shared().challtestsrv();
    let host = "_acme-challenge.txt-test.example.";
    srv.set_txt(host, "token-value").await.unwrap();
    let answers = tokio::task::spawn_blocking(move || srv.lookup_txt(host))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answers, vec!["token-value".to_owned()]);
    srv.clear_txt(host).await.unwrap();
    let answers = tokio::task::spawn_blocking(move || srv.lookup_txt(host))
        .await
        .unwrap()
        .unwrap();
    assert!(answers.is_empty(), "{answers:?}");
}

#[tokio::test]
async fn pods_get_service_account_tokens() {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("pod").await.unwrap();
    // The ServiceAccount admission plugin is on: the Pod gets the default account and its
    // projected token volume.
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "example.invalid/none"}]},
    }))
    .unwrap();
    let pod = Api::<Pod>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let spec = pod.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert!(
        spec.volumes
            .unwrap_or_default()
            .iter()
            .any(|v| v.name.starts_with("kube-api-access-"))
    );
    // Tokens are signed with the service-account key.
    let request: TokenRequest = serde_json::from_value(serde_json::json!({
        "spec": {"audiences": []}
    }))
    .unwrap();
    let token = Api::<ServiceAccount>::namespaced(client, &ns)
        .create_token_request("default", &PostParams::default(), &request)
        .await
        .unwrap();
    assert!(token.status.unwrap().token.split('.').count() == 3);
}
