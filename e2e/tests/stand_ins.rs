//! The kubelet and ingress controller stand-ins: a Pod's container runs as a local process on a
//! loopback pod IP, and an Ingress routes a request on the control plane's ingress address to it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use certsmith_e2e::{ControlPlane, FakeKubelet, IngressRouter};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn echo_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_e2e-echo"))
}

/// Polls `check` every 100 ms until it gives a value, or panics after `timeout`.
async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One HTTP/1.1 GET with the given `Host` header: status code and body.
async fn get(addr: SocketAddr, host: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn echo_pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{
            "name": "echo",
            "image": image,
            "args": ["--listen=$(POD_IP):8080", "--message=hello from $(POD_NAME)"],
            "env": [
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "ports": [{"name": "web", "containerPort": 8080}],
        }]},
    }))
    .unwrap()
}

async fn ready_pod_ip(pods: &Api<Pod>, name: &str) -> IpAddr {
    eventually(Duration::from_secs(30), "the Pod to be Ready", || async {
        let pod = pods.get(name).await.ok()?;
        certsmith_e2e::kubelet::ready_pod_ip(&pod)
    })
    .await
}

#[tokio::test]
async fn pod_runs_and_is_routed_through_the_ingress() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("stand-ins").await.unwrap();
    let image = "certsmith-e2e.test/echo:routed";
    let _kubelet = FakeKubelet::start(cp, HashMap::from([(image.to_owned(), echo_binary())]))
        .await
        .unwrap();
    let ingress_addr = SocketAddr::from((cp.ingress_ip(), 80));
    let router = IngressRouter::start(cp, ingress_addr).await.unwrap();
    assert_eq!(router.addr(), ingress_addr);
    assert_ne!(cp.ingress_ip(), std::net::Ipv4Addr::LOCALHOST);

    // The Pod runs, with a pod IP of this control plane's own range.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.create(&PostParams::default(), &echo_pod("echo", image))
        .await
        .unwrap();
    let ip = ready_pod_ip(&pods, "echo").await;
    let (first, last) = cp.pod_ips().range();
    assert!(
        ip >= IpAddr::V4(first) && ip <= IpAddr::V4(last),
        "{ip} outside {first}–{last}"
    );
    let pod = pods.get("echo").await.unwrap();
    let status = pod.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.pod_ips.unwrap()[0].ip, ip.to_string());
    let container = &status.container_statuses.unwrap()[0];
    assert!(container.ready && container.state.as_ref().unwrap().running.is_some());
    let direct = get((ip, 8080).into(), "direct", "/x").await.unwrap();
    assert_eq!(
        direct,
        (200, "hello from echo host=direct path=/x\n".to_owned())
    );

    // A Service (named target port) and an Ingress route to it.
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "echo"},
        "spec": {"selector": {"app": "echo"}, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]},
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let host = format!("echo.{ns}.test");
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "echo"},
        "spec": {"rules": [{"host": host, "http": {"paths": [{
            "path": "/app", "pathType": "Prefix",
            "backend": {"service": {"name": "echo", "port": {"number": 80}}},
        }]}}]},
    }))
    .unwrap();
    Api::<Ingress>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &ingress)
        .await
        .unwrap();
    let routed = eventually(Duration::from_secs(10), "the route", || async {
        let answer = get(ingress_addr, &format!("{host}:80"), "/app/page?q=1")
            .await
            .ok()?;
        (answer.0 != 404).then_some(answer)
    })
    .await;
    assert_eq!(
        routed,
        (
            200,
            format!("hello from echo host={host}:80 path=/app/page?q=1\n")
        )
    );
    assert_eq!(get(ingress_addr, &host, "/other").await.unwrap().0, 404);
    assert_eq!(
        get(ingress_addr, "unknown.test", "/app").await.unwrap().0,
        404
    );

    // Deleting the Pod stops its process, and the route has no endpoint any more.
    pods.delete("echo", &DeleteParams::default()).await.unwrap();
    eventually(Duration::from_secs(30), "the process to stop", || async {
        get((ip, 8080).into(), "direct", "/")
            .await
            .is_err()
            .then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "the Pod to be gone", || async {
        pods.get_opt("echo").await.unwrap().is_none().then_some(())
    })
    .await;
    let answer = eventually(Duration::from_secs(10), "no endpoint", || async {
        let answer = get(ingress_addr, &host, "/app").await.ok()?;
        (answer.0 != 200).then_some(answer)
    })
    .await;
    assert_eq!(answer.0, 503, "{answer:?}");
}

#[tokio::test]
async fn config_errors_exits_and_graceful_deletions() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("stand-ins-bad").await.unwrap();
    let image = "certsmith-e2e.test/echo:unsupported";
    let _kubelet = FakeKubelet::start(cp, HashMap::from([(image.to_owned(), echo_binary())]))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let mut pod = echo_pod("wrong-command", image);
    pod.spec.as_mut().unwrap().containers[0].command = Some(vec!["/bin/sh".into()]);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let waiting = eventually(Duration::from_secs(30), "a waiting reason", || async {
        let pod = pods.get("wrong-command").await.ok()?;
        let status = pod.status?.container_statuses?.into_iter().next()?;
        status.state?.waiting
    })
    .await;
    assert_eq!(
        waiting.reason.as_deref(),
        Some("CreateContainerConfigError")
    );
    assert!(
        waiting
            .message
            .unwrap()
            .contains("is not the image's entrypoint")
    );

    // A process that exits fails its Pod.
    let mut failing = echo_pod("exits", image);
    failing.spec.as_mut().unwrap().containers[0].args = Some(vec!["--no-such-flag".into()]);
    pods.create(&PostParams::default(), &failing).await.unwrap();
    let terminated = eventually(Duration::from_secs(30), "the Pod to fail", || async {
        let pod = pods.get("exits").await.ok()?;
        let status = pod.status?;
        (status.phase.as_deref() == Some("Failed")).then_some(())?;
        status
            .container_statuses?
            .into_iter()
            .next()?
            .state?
            .terminated
    })
    .await;
    assert_eq!(terminated.exit_code, 2);

    // A graceful deletion (here: held by a finalizer) stops the process at once.
    let mut held = echo_pod("held", image);
    held.metadata.finalizers = Some(vec!["certsmith-e2e.test/hold".into()]);
    pods.create(&PostParams::default(), &held).await.unwrap();
    let ip = ready_pod_ip(&pods, "held").await;
    assert!(get((ip, 8080).into(), "h", "/").await.is_ok());
    pods.delete("held", &DeleteParams::default()).await.unwrap();
    eventually(Duration::from_secs(30), "the process to stop", || async {
        get((ip, 8080).into(), "h", "/")
            .await
            .is_err()
            .then_some(())
    })
    .await;
    let patch = json!({"metadata": {"finalizers": null}});
    pods.patch("held", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the Pod to be gone", || async {
        pods.get_opt("held").await.unwrap().is_none().then_some(())
    })
    .await;

    // A router on another port of the same address: a rule whose Service selects no Pod.
    let router = IngressRouter::start(cp, (cp.ingress_ip(), 0).into())
        .await
        .unwrap();
    assert_ne!(router.addr().port(), 80);
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "nothing"},
        "spec": {"rules": [{"host": format!("nothing.{ns}.test"), "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "missing", "port": {"name": "http"}}},
        }]}}]},
    }))
    .unwrap();
    Api::<Ingress>::namespaced(cp.client().await.unwrap(), &ns)
        .create(&PostParams::default(), &ingress)
        .await
        .unwrap();
    let answer = eventually(Duration::from_secs(10), "the rule", || async {
        let answer = get(router.addr(), &format!("nothing.{ns}.test"), "/")
            .await
            .ok()?;
        (answer.0 != 404).then_some(answer)
    })
    .await;
    assert_eq!(answer.0, 503, "{answer:?}");
    assert!(answer.1.contains("no Service"), "{answer:?}");
}
