//! etcd, kube-apiserver and kube-controller-manager; kubeconfigs; CRDs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, anyhow};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};

use crate::certs::{FRONT_PROXY_CLIENT_CN, Pki};
use crate::http::HttpClient;
use crate::process::{self, Process};
use crate::wait_for;

/// The field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "certsmith-e2e";

pub(crate) struct Etcd {
    pub process: Process,
    pub client_url: String,
}

pub(crate) async fn start_etcd(
    bin_dir: &Path,
    dir: &Path,
    timeout: Duration,
) -> anyhow::Result<Etcd> {
    let [client_port, peer_port] = process::free_ports()?;
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let mut cmd = Command::new(bin_dir.join("etcd"));
    cmd.arg(format!("--data-dir={}", dir.join("etcd").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=default={peer_url}"))
        .arg("--unsafe-no-fsync=true");
    let process = process::spawn("etcd", cmd, &dir.join("logs/etcd.log"))?;
    let client = HttpClient::new("", None)?;
    let health = format!("{client_url}/health");
    let (client, health) = (&client, &health);
    wait_for(&process, timeout, move || async move {
        client.get(health).await?.success()
    })
    .await?;
    Ok(Etcd {
        process,
        client_url,
    })
}

pub(crate) struct ApiServer {
    pub process: Process,
    pub port: u16,
}

impl ApiServer {
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

pub(crate) async fn start_apiserver(
    bin_dir: &Path,
    dir: &Path,
    pki: &Pki,
    etcd_url: &str,
    timeout: Duration,
) -> anyhow::Result<ApiServer> {
    let [port] = process::free_ports()?;
    let p = |path: &PathBuf| path.display().to_string();
    let args = [
        format!("--etcd-servers={etcd_url}"),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        format!("--cert-dir={}", dir.join("apiserver").display()),
        format!("--tls-cert-file={}", p(&pki.apiserver.cert)),
        format!("--tls-private-key-file={}", p(&pki.apiserver.key)),
        format!("--client-ca-file={}", p(&pki.client_ca.cert)),
        "--authorization-mode=RBAC".into(),
        "--service-cluster-ip-range=10.0.0.0/24".into(),
        "--allow-privileged=true".into(),
        // With a single loopback apiserver, the `kubernetes` Service endpoints would be invalid.
        "--endpoint-reconciler-type=none".into(),
        format!("--service-account-issuer=https://127.0.0.1:{port}"),
        format!(
            "--service-account-key-file={}",
            p(&pki.service_account.cert)
        ),
        format!(
            "--service-account-signing-key-file={}",
            p(&pki.service_account.key)
        ),
        // The aggregation layer (DNS-01 webhook solvers are aggregated API servers).
        format!(
            "--proxy-client-cert-file={}",
            p(&pki.front_proxy_client.cert)
        ),
        format!("--proxy-client-key-file={}", p(&pki.front_proxy_client.key)),
        format!(
            "--requestheader-client-ca-file={}",
            p(&pki.front_proxy_ca.cert)
        ),
        format!("--requestheader-allowed-names={FRONT_PROXY_CLIENT_CN}"),
        "--requestheader-username-headers=X-Remote-User".into(),
        "--requestheader-group-headers=X-Remote-Group".into(),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
        "--profiling=false".into(),
    ];
    let mut cmd = Command::new(bin_dir.join("kube-apiserver"));
    cmd.args(args);
    let process = process::spawn("kube-apiserver", cmd, &dir.join("logs/kube-apiserver.log"))?;
    let apiserver = ApiServer { process, port };
    let client = HttpClient::new(
        &pki.serving_ca.cert_pem,
        Some((&pki.admin.cert_pem, &pki.admin.key_pem)),
    )?;
    let readyz = format!("{}/readyz", apiserver.url());
    let (client, readyz) = (&client, &readyz);
    wait_for(&apiserver.process, timeout, move || async move {
        client.get(readyz).await?.success()
    })
    .await?;
    Ok(apiserver)
}

pub(crate) fn start_controller_manager(
    bin_dir: &Path,
    dir: &Path,
    pki: &Pki,
    kubeconfig: &Path,
) -> anyhow::Result<Process> {
    let p = |path: &PathBuf| path.display().to_string();
    let args = [
        format!("--kubeconfig={}", kubeconfig.display()),
        "--controllers=*".into(),
        format!(
            "--service-account-private-key-file={}",
            p(&pki.service_account.key)
        ),
        format!("--root-ca-file={}", p(&pki.serving_ca.cert)),
        "--use-service-account-credentials=false".into(),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        // No serving endpoint: readiness is seen through its effects (the default ServiceAccount).
        "--secure-port=0".into(),
        // CSRs for the kube-apiserver-client signer get certificates the apiserver trusts.
        format!("--cluster-signing-cert-file={}", p(&pki.client_ca.cert)),
        format!("--cluster-signing-key-file={}", p(&pki.client_ca.key)),
        "--kube-api-qps=100".into(),
        "--kube-api-burst=200".into(),
        "--profiling=false".into(),
    ];
    let mut cmd = Command::new(bin_dir.join("kube-controller-manager"));
    cmd.args(args);
    process::spawn(
        "kube-controller-manager",
        cmd,
        &dir.join("logs/kube-controller-manager.log"),
    )
}

/// Writes a kubeconfig for `server` that authenticates with the client certificate `user`.
pub(crate) fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_file: &Path,
    cert_file: &Path,
    key_file: &Path,
) -> anyhow::Result<()> {
    // JSON strings are valid YAML scalars: this quotes the paths safely.
    let q = |p: &Path| serde_json::Value::from(p.display().to_string()).to_string();
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: certsmith-e2e
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: admin
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: certsmith-e2e
  context:
    cluster: certsmith-e2e
    user: admin
    namespace: default
current-context: certsmith-e2e
",
        ca = q(ca_file),
        cert = q(cert_file),
        key = q(key_file),
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Waits for the `default` namespace and its `default` ServiceAccount (made by
/// kube-controller-manager's serviceaccount controller).
pub(crate) async fn wait_for_defaults(
    client: &Client,
    controller_manager: &Process,
    timeout: Duration,
) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let (namespaces, accounts) = (&namespaces, &accounts);
    wait_for(controller_manager, timeout, move || async move {
        namespaces
            .get_opt("default")
            .await?
            .ok_or_else(|| anyhow!("no namespace `default` yet"))?;
        accounts
            .get_opt("default")
            .await?
            .ok_or_else(|| anyhow!("no ServiceAccount default/default yet"))?;
        Ok(())
    })
    .await
}

/// Reads the CustomResourceDefinitions in every `*.yaml` file of `dir` (each may hold several
/// documents; documents of other kinds are skipped).
pub(crate) fn read_crds(dir: &Path) -> anyhow::Result<Vec<CustomResourceDefinition>> {
    let mut files = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    let mut crds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
            .with_context(|| format!("parsing {}", file.display()))?;
        for doc in docs {
            // Skip other kinds (e.g. Gateway API's ValidatingAdmissionPolicy) and empty documents.
            if doc["kind"] == "CustomResourceDefinition" {
                crds.push(serde_json::from_value(doc).with_context(|| {
                    format!("parsing a CustomResourceDefinition in {}", file.display())
                })?);
            }
        }
    }
    Ok(crds)
}

/// Server-side applies the CRDs (field manager [`FIELD_MANAGER`]) and waits until each is
/// Established.
pub(crate) async fn apply_crds(
    client: &Client,
    crds: &[CustomResourceDefinition],
    timeout: Duration,
) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for crd in crds {
        let name = crd
            .metadata
            .name
            .as_deref()
            .context("a CRD without metadata.name")?;
        api.patch(name, &params, &Patch::Apply(crd))
            .await
            .with_context(|| format!("applying CRD {name}"))?;
    }
    for crd in crds {
        let name = crd.metadata.name.as_deref().unwrap_or_default();
        tokio::time::timeout(
            timeout,
            await_condition(api.clone(), name, conditions::is_crd_established()),
        )
        .await
        .with_context(|| format!("CRD {name} not Established after {timeout:?}"))?
        .with_context(|| format!("waiting for CRD {name}"))?;
    }
    Ok(())
}
