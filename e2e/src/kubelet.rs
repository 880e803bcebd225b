//! A stand-in for a kubelet: runs the first container of a Pod as a local process.
//!
//! The machines have no container runtime, and the harness no kubelet or scheduler. For the
//! few Pods a test needs to really run (an HTTP-01 solver, a test web server), [`FakeKubelet`]
//! maps container images to local binaries and plays the kubelet's part of the Pod lifecycle:
//!
//! * It adopts a Pod that is Pending, has no pod IP yet, and whose first container's image is in
//!   its map (each Pod is adopted by one `FakeKubelet` of the process at most).
//! * It gives the Pod a pod IP of the control plane's own loopback range
//!   ([`crate::ControlPlane::pod_ips`]), builds the container's environment from `env` (`value`,
//!   and `valueFrom.fieldRef` for `metadata.name`, `metadata.namespace`, `metadata.uid`,
//!   `metadata.labels['…']`, `metadata.annotations['…']`, `spec.nodeName`,
//!   `spec.serviceAccountName`, `status.podIP(s)`, `status.hostIP(s)`), expands `$(VAR)` in
//!   `command` and `args` as Kubernetes does, and runs the mapped binary with them. The process
//!   gets only that environment, plus `HOSTNAME` (the Pod name) and the test's `PATH`. When the
//!   container sets `command`, `command[0]` must name the mapped binary (its path or file name):
//!   the rest of `command` and then `args` become the arguments; without `command` the binary
//!   is the image's entrypoint and `args` its arguments.
//! * Once the process accepts connections on every TCP port the container declares (at most
//!   30 s; at once if it declares none), it reports the Pod Running and Ready with its pod IP.
//! * When the process exits, the Pod becomes Succeeded (exit code 0) or Failed; containers are
//!   not restarted, whatever the `restartPolicy`.
//! * When the Pod gets a `deletionTimestamp` (a graceful deletion) it stops the process and
//!   finishes the deletion (`gracePeriodSeconds: 0`), as a kubelet does; when the Pod is deleted
//!   outright it stops the process. Pods stay unbound (no `spec.nodeName`), and the API server
//!   deletes unbound Pods at once, so the second case is the usual one.
//!
//! What it does not do: other containers of a Pod, init containers, volumes, probes, resource
//! limits, security contexts, `envFrom`, Secret or ConfigMap references (the Pod stays Pending
//! with `CreateContainerConfigError`). The process of each Pod writes to
//! `<work dir>/logs/pods/<namespace>_<name>.log`; it is one of [`crate::process`]'s children, so
//! it never outlives the test process. Dropping the `FakeKubelet` stops its processes; their
//! Pods keep their last status.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::ControlPlane;
use crate::loopback::{PodIpLease, PodIps};
use crate::process::{self, Process};

/// How long a process may take to open its ports before its Pod is reported Running anyway
/// (but not Ready).
const PORTS_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a process is checked for having exited.
const POLL: Duration = Duration::from_millis(50);
/// The node address in Pod statuses.
const HOST_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The UIDs of the Pods adopted by any `FakeKubelet` of this process.
static ADOPTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn adopted() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    ADOPTED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running kubelet stand-in; see the module documentation. Stops on drop.
#[derive(Debug)]
pub struct FakeKubelet {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Context {
    client: Client,
    images: HashMap<String, PathBuf>,
    pod_ips: Arc<PodIps>,
    work_dir: PathBuf,
}

impl FakeKubelet {
    /// Starts watching the Pods of all namespaces of `cp`; `images` maps a container image to
    /// the local binary that is its entrypoint. Returns once the watch has listed the existing
    /// Pods. The kubelet runs on a thread and tokio runtime of its own, so it serves the tests
    /// of any runtime, and outlives the one it was started from.
    pub async fn start(
        cp: &ControlPlane,
        images: HashMap<String, PathBuf>,
    ) -> anyhow::Result<FakeKubelet> {
        for (image, binary) in &images {
            if !binary.is_file() {
                bail!(
                    "the binary {} for image {image} does not exist",
                    binary.display()
                );
            }
        }
        let work_dir = cp.work_dir().to_owned();
        std::fs::create_dir_all(work_dir.join("logs/pods"))?;
        std::fs::create_dir_all(work_dir.join("pods"))?;
        let config = cp.kube_config();
        let pod_ips = cp.pod_ips().clone();
        let (stop, stopped) = oneshot::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("certsmith-e2e-kubelet".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow!(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let client = match Client::try_from(config) {
                        Ok(client) => client,
                        Err(e) => {
                            let _ = ready_tx.send(Err(anyhow!(e)));
                            return;
                        }
                    };
                    let ctx = Arc::new(Context {
                        client,
                        images,
                        pod_ips,
                        work_dir,
                    });
                    run(ctx, stopped, ready_tx).await;
                });
                // Dropping the runtime drops the Pods' tasks, and with them their processes.
            })?;
        let kubelet = FakeKubelet {
            stop: Some(stop),
            thread: Some(thread),
        };
        match tokio::time::timeout(Duration::from_secs(60), ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(kubelet),
            Ok(Ok(Err(e))) => Err(e.context("starting the fake kubelet")),
            Ok(Err(_)) => bail!("the fake kubelet's thread ended while starting"),
            Err(_) => bail!("the fake kubelet's Pod watch did not start within 60 s"),
        }
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the kubelet has seen of an adopted Pod's deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lifecycle {
    Live,
    /// It has a `deletionTimestamp`: the kubelet must finish the deletion.
    Terminating,
    /// It is gone from the API.
    Gone,
}

async fn run(
    ctx: Arc<Context>,
    mut stop: oneshot::Receiver<()>,
    ready: oneshot::Sender<anyhow::Result<()>>,
) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut ready = Some(ready);
    let mut pods: HashMap<String, watch::Sender<Lifecycle>> = HashMap::new();
    let mut tasks = JoinSet::new();
    loop {
        let event = tokio::select! {
            _ = &mut stop => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            event = events.next() => event,
        };
        match event {
            None => break,
            Some(Err(e)) => eprintln!("certsmith-e2e: fake kubelet: watching Pods: {e}"),
            Some(Ok(Event::Init)) => {}
            Some(Ok(Event::InitDone)) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => {
                let uid = pod.uid().unwrap_or_default();
                if let Some(lifecycle) = pods.get(&uid) {
                    if pod.metadata.deletion_timestamp.is_some() {
                        lifecycle.send_if_modified(|l| {
                            let changed = *l == Lifecycle::Live;
                            if changed {
                                *l = Lifecycle::Terminating;
                            }
                            changed
                        });
                    }
                } else if should_adopt(&ctx, &pod) && adopted().insert(uid.clone()) {
                    let (lifecycle, watched) = watch::channel(Lifecycle::Live);
                    pods.insert(uid, lifecycle);
                    tasks.spawn(run_pod(ctx.clone(), pod, watched));
                }
            }
            Some(Ok(Event::Delete(pod))) => {
                if let Some(lifecycle) = pods.remove(&pod.uid().unwrap_or_default()) {
                    lifecycle.send_replace(Lifecycle::Gone);
                }
            }
        }
    }
    if let Some(ready) = ready.take() {
        let _ = ready.send(Err(anyhow!("the Pod watch ended before listing the Pods")));
    }
}

fn should_adopt(ctx: &Context, pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let pending = status
        .and_then(|s| s.phase.as_deref())
        .is_none_or(|p| p == "Pending");
    let unstarted = status.and_then(|s| s.pod_ip.as_ref()).is_none();
    let image = first_container(pod).and_then(|c| c.image.as_deref());
    pod.metadata.deletion_timestamp.is_none()
        && pending
        && unstarted
        && image.is_some_and(|i| ctx.images.contains_key(i))
}

fn first_container(pod: &Pod) -> Option<&Container> {
    pod.spec.as_ref().and_then(|s| s.containers.first())
}

/// One adopted Pod, from start to deletion.
async fn run_pod(ctx: Arc<Context>, pod: Pod, mut lifecycle: watch::Receiver<Lifecycle>) {
    let uid = pod.uid().unwrap_or_default();
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let status = StatusWriter {
        api: api.clone(),
        name: name.clone(),
        container: first_container(&pod).cloned().unwrap_or_default(),
    };
    if let Err(e) = run_container(&ctx, &pod, &status, &mut lifecycle).await {
        eprintln!("certsmith-e2e: fake kubelet: Pod {namespace}/{name}: {e:#}");
    }
    // Whatever happened, wait for the deletion, and finish a graceful one.
    while *lifecycle.borrow_and_update() == Lifecycle::Live {
        if lifecycle.changed().await.is_err() {
            break;
        }
    }
    if *lifecycle.borrow() == Lifecycle::Terminating {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        if let Err(e) = api.delete(&name, &params).await
            && !matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
        {
            eprintln!("certsmith-e2e: fake kubelet: deleting Pod {namespace}/{name}: {e}");
        }
    }
    adopted().remove(&uid);
}

/// Runs the container until it exits or the Pod is deleted; the process is stopped before this
/// returns.
async fn run_container(
    ctx: &Context,
    pod: &Pod,
    status: &StatusWriter,
    lifecycle: &mut watch::Receiver<Lifecycle>,
) -> anyhow::Result<()> {
    let Some(lease) = ctx.pod_ips.allocate() else {
        status
            .waiting(
                "CreateContainerError",
                "no pod IP left in the fake kubelet's range",
            )
            .await?;
        return Ok(());
    };
    let plan = match plan_container(ctx, pod, lease.ip()) {
        Ok(plan) => plan,
        Err(message) => {
            status
                .waiting("CreateContainerConfigError", &message)
                .await?;
            return Ok(());
        }
    };
    let started = Timestamp::now();
    let process = spawn(ctx, pod, &plan)?;
    let running = Running {
        process,
        lease,
        started,
    };
    let result = supervise(&running, &plan, status, lifecycle).await;
    // Process::drop waits for the process to end (SIGTERM, then SIGKILL after a grace period).
    tokio::task::spawn_blocking(move || drop(running)).await?;
    result
}

struct Running {
    process: Process,
    lease: PodIpLease,
    started: Timestamp,
}

async fn supervise(
    running: &Running,
    plan: &Plan,
    status: &StatusWriter,
    lifecycle: &mut watch::Receiver<Lifecycle>,
) -> anyhow::Result<()> {
    let ip = running.lease.ip();
    let deadline = Instant::now() + PORTS_TIMEOUT;
    let mut reported = false;
    loop {
        if *lifecycle.borrow_and_update() != Lifecycle::Live {
            return Ok(());
        }
        if let Some(exit) = running.process.exit_status() {
            status.terminated(ip, running.started, exit).await?;
            return Ok(());
        }
        if !reported {
            let open = ports_open(ip, &plan.ports).await;
            if open || Instant::now() >= deadline {
                status.running(ip, running.started, open).await?;
                reported = true;
            }
        }
        tokio::select! {
            _ = lifecycle.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn ports_open(ip: Ipv4Addr, ports: &[u16]) -> bool {
    for &port in ports {
        let connect = tokio::net::TcpStream::connect(SocketAddr::from((ip, port)));
        match tokio::time::timeout(Duration::from_millis(200), connect).await {
            Ok(Ok(_)) => {}
            _ => return false,
        }
    }
    true
}

/// How to run a Pod's container.
#[derive(Debug, PartialEq)]
struct Plan {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The TCP ports the container declares.
    ports: Vec<u16>,
}

/// The process for the Pod's first container, or the reason it cannot be run (for the status).
fn plan_container(ctx: &Context, pod: &Pod, pod_ip: Ipv4Addr) -> Result<Plan, String> {
    let container = first_container(pod).ok_or("the Pod has no container")?;
    let image = container.image.as_deref().unwrap_or_default();
    let program = ctx
        .images
        .get(image)
        .ok_or_else(|| format!("no binary for image {image}"))?
        .clone();
    if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err("envFrom is not supported by the fake kubelet".to_owned());
    }
    let env = container_env(pod, container, pod_ip)?;
    let vars: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expand_all = |list: &Option<Vec<String>>| -> Vec<String> {
        list.iter()
            .flatten()
            .map(|s| expand(s, |name| vars.get(name).map(|v| (*v).to_owned())))
            .collect()
    };
    let mut args = Vec::new();
    let command = expand_all(&container.command);
    if let Some((first, rest)) = command.split_first() {
        let named = Path::new(first);
        if named != program && named.file_name() != program.file_name() {
            return Err(format!(
                "command[0] {first:?} is not the image's entrypoint {}",
                program.display()
            ));
        }
        args.extend_from_slice(rest);
    }
    args.extend(expand_all(&container.args));
    let ports = container
        .ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect();
    Ok(Plan {
        program,
        args,
        env,
        ports,
    })
}

/// The container's environment, in order, each value expanded against the ones before it.
fn container_env(
    pod: &Pod,
    container: &Container,
    pod_ip: Ipv4Addr,
) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (_, Some(source)) => {
                let field = source.field_ref.as_ref().ok_or_else(|| {
                    format!(
                        "env {}: only valueFrom.fieldRef is supported by the fake kubelet",
                        var.name
                    )
                })?;
                field_value(pod, &field.field_path, pod_ip).ok_or_else(|| {
                    format!(
                        "env {}: unsupported fieldPath {:?}",
                        var.name, field.field_path
                    )
                })?
            }
            (value, None) => {
                let defined: BTreeMap<&str, &str> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                expand(value.as_deref().unwrap_or_default(), |name| {
                    defined.get(name).map(|v| (*v).to_owned())
                })
            }
        };
        env.retain(|(k, _)| *k != var.name);
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

/// The downward API's value of `path` for the Pod.
fn field_value(pod: &Pod, path: &str, pod_ip: Ipv4Addr) -> Option<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let in_map = |map: &Option<BTreeMap<String, String>>, prefix: &str| {
        let key = path
            .strip_prefix(prefix)?
            .strip_suffix("']")
            .or_else(|| path.strip_prefix(prefix)?.strip_suffix("\"]"))?;
        Some(map.as_ref()?.get(key).cloned().unwrap_or_default())
    };
    match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => Some(spec?.node_name.clone().unwrap_or_default()),
        "spec.serviceAccountName" => Some(spec?.service_account_name.clone().unwrap_or_default()),
        "status.podIP" | "status.podIPs" => Some(pod_ip.to_string()),
        "status.hostIP" | "status.hostIPs" => Some(HOST_IP.to_string()),
        _ if path.starts_with("metadata.labels[") => in_map(&meta.labels, "metadata.labels['")
            .or_else(|| in_map(&meta.labels, "metadata.labels[\"")),
        _ if path.starts_with("metadata.annotations[") => {
            in_map(&meta.annotations, "metadata.annotations['")
                .or_else(|| in_map(&meta.annotations, "metadata.annotations[\""))
        }
        _ => None,
    }
}

/// Kubernetes' `$(VAR)` expansion: a defined variable is replaced by its value, an undefined
/// reference is left as it is, and `$$` stands for a literal `$` (so `$$(VAR)` gives `$(VAR)`).
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(reference) = after.strip_prefix('(')
            && let Some(end) = reference.find(')')
        {
            let name = &reference[..end];
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &reference[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn spawn(ctx: &Context, pod: &Pod, plan: &Plan) -> anyhow::Result<Process> {
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    let dir = ctx
        .work_dir
        .join("pods")
        .join(format!("{namespace}_{name}_{}", &uid[..uid.len().min(8)]));
    std::fs::create_dir_all(&dir)?;
    let mut cmd = Command::new(&plan.program);
    cmd.args(&plan.args)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOSTNAME", &name)
        .envs(plan.env.iter().map(|(k, v)| (k, v)));
    let log = ctx
        .work_dir
        .join("logs/pods")
        .join(format!("{namespace}_{name}.log"));
    process::spawn(&format!("pod {namespace}/{name}"), cmd, &log)
        .with_context(|| format!("starting Pod {namespace}/{name}"))
}

/// Writes a Pod's status as a kubelet would.
struct StatusWriter {
    api: Api<Pod>,
    name: String,
    container: Container,
}

fn now() -> Value {
    time(Timestamp::now())
}

fn time(t: Timestamp) -> Value {
    serde_json::to_value(Time(t)).unwrap_or(Value::Null)
}

fn condition(type_: &str, status: bool) -> Value {
    json!({
        "type": type_,
        "status": if status { "True" } else { "False" },
        "lastTransitionTime": now(),
    })
}

impl StatusWriter {
    async fn patch(&self, status: Value) -> anyhow::Result<()> {
        self.api
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .with_context(|| format!("updating the status of Pod {}", self.name))?;
        Ok(())
    }

    fn container_status(&self, ready: bool, state: Value) -> Value {
        json!([{
            "name": self.container.name,
            "image": self.container.image,
            "imageID": "",
            "ready": ready,
            "started": state.get("running").is_some(),
            "restartCount": 0,
            "state": state,
        }])
    }

    async fn waiting(&self, reason: &str, message: &str) -> anyhow::Result<()> {
        eprintln!(
            "certsmith-e2e: fake kubelet: Pod {}: {reason}: {message}",
            self.name
        );
        self.patch(json!({
            "phase": "Pending",
            "hostIP": HOST_IP.to_string(),
            "hostIPs": [{"ip": HOST_IP.to_string()}],
            "conditions": [
                condition("PodScheduled", true),
                condition("Initialized", true),
                condition("ContainersReady", false),
                condition("Ready", false),
            ],
            "containerStatuses": self.container_status(false, json!({
                "waiting": {"reason": reason, "message": message},
            })),
        }))
        .await
    }

    async fn running(&self, ip: Ipv4Addr, started: Timestamp, ready: bool) -> anyhow::Result<()> {
        self.patch(json!({
            "phase": "Running",
            "hostIP": HOST_IP.to_string(),
            "hostIPs": [{"ip": HOST_IP.to_string()}],
            "podIP": ip.to_string(),
            "podIPs": [{"ip": ip.to_string()}],
            "startTime": time(started),
            "conditions": [
                condition("PodReadyToStartContainers", true),
                condition("PodScheduled", true),
                condition("Initialized", true),
                condition("ContainersReady", ready),
                condition("Ready", ready),
            ],
            "containerStatuses": self.container_status(ready, json!({
                "running": {"startedAt": time(started)},
            })),
        }))
        .await
    }

    async fn terminated(
        &self,
        ip: Ipv4Addr,
        started: Timestamp,
        exit: ExitStatus,
    ) -> anyhow::Result<()> {
        use std::os::unix::process::ExitStatusExt;
        let code = exit
            .code()
            .unwrap_or_else(|| 128 + exit.signal().unwrap_or(0));
        let succeeded = code == 0;
        self.patch(json!({
            "phase": if succeeded { "Succeeded" } else { "Failed" },
            "hostIP": HOST_IP.to_string(),
            "hostIPs": [{"ip": HOST_IP.to_string()}],
            "podIP": ip.to_string(),
            "podIPs": [{"ip": ip.to_string()}],
            "startTime": time(started),
            "conditions": [
                condition("PodReadyToStartContainers", false),
                condition("PodScheduled", true),
                condition("Initialized", true),
                condition("ContainersReady", false),
                condition("Ready", false),
            ],
            "containerStatuses": self.container_status(false, json!({
                "terminated": {
                    "exitCode": code,
                    "reason": if succeeded { "Completed" } else { "Error" },
                    "startedAt": time(started),
                    "finishedAt": now(),
                },
            })),
        }))
        .await
    }
}

/// The IP of a Running Pod that a kubelet reported ready, if any.
pub fn ready_pod_ip(pod: &Pod) -> Option<IpAddr> {
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if pod.metadata.deletion_timestamp.is_some()
        || status.phase.as_deref() != Some("Running")
        || !ready
    {
        return None;
    }
    status.pod_ip.as_deref()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "POD_IP" => Some("127.1.2.3".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion_follows_kubernetes() {
        assert_eq!(
            expand("--listen=$(POD_IP):8080", lookup),
            "--listen=127.1.2.3:8080"
        );
        assert_eq!(expand("$(UNDEFINED)", lookup), "$(UNDEFINED)");
        assert_eq!(expand("$$(POD_IP)", lookup), "$(POD_IP)");
        assert_eq!(expand("a$$b", lookup), "a$b");
        assert_eq!(expand("$(EMPTY)x", lookup), "x");
        assert_eq!(expand("cost: $5 $(POD_IP", lookup), "cost: $5 $(POD_IP");
        assert_eq!(expand("$", lookup), "$");
        assert_eq!(expand("é$(POD_IP)é", lookup), "é127.1.2.3é");
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "web"}},
            "spec": {"containers": [{
                "name": "c", "image": "img:1",
                "command": ["/usr/local/bin/server", "serve"],
                "args": ["--listen=$(ADDR)", "--name=$(NAME)"],
                "env": [
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "ADDR", "value": "$(POD_IP):8080"},
                    {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                ],
                "ports": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}],
            }]},
        }))
        .unwrap()
    }

    fn ctx() -> Context {
        let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        Context {
            client: Client::try_from(config).unwrap(),
            images: HashMap::from([("img:1".to_owned(), PathBuf::from("/opt/bin/server"))]),
            pod_ips: PodIps::new(&crate::loopback::Block::claim()),
            work_dir: PathBuf::from("/nonexistent"),
        }
    }

    #[test]
    fn plans_the_container() {
        let ctx = ctx();
        let ip = Ipv4Addr::new(127, 9, 9, 2);
        let plan = plan_container(&ctx, &pod(), ip).unwrap();
        assert_eq!(
            plan,
            Plan {
                program: PathBuf::from("/opt/bin/server"),
                args: vec![
                    "serve".into(),
                    "--listen=127.9.9.2:8080".into(),
                    "--name=web".into()
                ],
                env: vec![
                    ("POD_IP".into(), "127.9.9.2".into()),
                    ("ADDR".into(), "127.9.9.2:8080".into()),
                    ("NAME".into(), "web".into()),
                ],
                ports: vec![8080],
            }
        );
        assert!(should_adopt(&ctx, &pod()));

        let mut other = pod();
        other.spec.as_mut().unwrap().containers[0].command = Some(vec!["/bin/sh".into()]);
        let err = plan_container(&ctx, &other, ip).unwrap_err();
        assert!(err.contains("is not the image's entrypoint"), "{err}");

        let mut secret = pod();
        secret.spec.as_mut().unwrap().containers[0].env = Some(vec![
            serde_json::from_value(
                json!({"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}),
            )
            .unwrap(),
        ]);
        assert!(plan_container(&ctx, &secret, ip).is_err());

        let mut running = pod();
        running.status = Some(
            serde_json::from_value(json!({"phase": "Running", "podIP": "127.9.9.3"})).unwrap(),
        );
        assert!(!should_adopt(&ctx, &running));
        let mut unknown = pod();
        unknown.spec.as_mut().unwrap().containers[0].image = Some("other".into());
        assert!(!should_adopt(&ctx, &unknown));
    }
}
