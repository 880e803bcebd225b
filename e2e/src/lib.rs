//! certsmith's local control plane for tests and the demo: etcd, kube-apiserver,
//! kube-controller-manager, Pebble and pebble-challtestsrv, run as local processes from the
//! binaries that `e2e/tools.sh` builds.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use certsmith_e2e::ControlPlane;
//! let cp = ControlPlane::shared(); // started once per test binary
//! let client = cp.client().await?; // a fresh admin client for this test's runtime
//! let ns = cp.create_namespace("my-test").await?;
//! let acme_directory = cp.pebble().directory_url();
//! # Ok(()) }
//! ```
//!
//! No child process outlives the test process: see [`process`] for how.
//!
//! There is no kubelet, scheduler or ingress controller. [`FakeKubelet`] and [`IngressRouter`]
//! stand in for the two that HTTP-01 needs: the first runs a Pod's container as a local process
//! on a loopback pod IP, the second routes HTTP requests by the cluster's Ingresses. Every
//! control plane has its own loopback addresses ([`ControlPlane::ingress_ip`]), where the mock
//! DNS points every name and Pebble validates HTTP-01 on port 80.

pub mod bind9;
mod certs;
pub mod http;
pub mod ingress;
mod kube;
pub mod kubelet;
mod loopback;
mod pebble;
pub mod process;
pub mod stack;

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::BuildHasher;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ::kube::Api;
use anyhow::{Context, anyhow, bail};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub use crate::bind9::{Bind9, TsigKey};
pub use crate::certs::FRONT_PROXY_CLIENT_CN;
pub use crate::ingress::IngressRouter;
pub use crate::kube::FIELD_MANAGER;
pub use crate::kubelet::FakeKubelet;
pub use crate::loopback::{PodIpLease, PodIps};
use crate::pebble::PebbleEnv;
pub use crate::pebble::{ChallTestSrv, Pebble, PebbleOptions, PebbleProfile};
use crate::process::{Process, WorkDir};

/// Overrides the directory of the tool binaries (default: the output of `e2e/tools.sh --print`).
pub const ENV_TOOLS_BIN: &str = "CERTSMITH_TOOLS_BIN";
/// Overrides the directory of the CRDs installed at start (default: the repository's `crds/`).
pub const ENV_CRDS_DIR: &str = "CERTSMITH_CRDS_DIR";
/// If set (and not `0`), the work dir (certificates, configs, logs, etcd data) is kept.
pub const ENV_KEEP_LOGS: &str = "CERTSMITH_KEEP_LOGS";

const BINARIES: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "pebble",
    "pebble-challtestsrv",
];

/// How to start a [`ControlPlane`]. `Options::default()` reads the environment variables.
#[derive(Clone, Debug)]
pub struct Options {
    /// The tool binaries; `None`: [`ENV_TOOLS_BIN`], else `e2e/tools.sh --print`.
    pub bin_dir: Option<PathBuf>,
    /// CRDs to install at start; a missing or empty directory installs nothing.
    pub crds_dir: PathBuf,
    /// Keep the work dir when stopping.
    pub keep_work_dir: bool,
    /// The control plane's Pebble.
    pub pebble: PebbleOptions,
    /// How long each start-up step may take (etcd, kube-apiserver, …).
    pub step_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bin_dir: std::env::var_os(ENV_TOOLS_BIN).map(PathBuf::from),
            crds_dir: std::env::var_os(ENV_CRDS_DIR)
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds")),
            keep_work_dir: std::env::var_os(ENV_KEEP_LOGS)
                .is_some_and(|v| !v.is_empty() && v != "0"),
            pebble: PebbleOptions::default(),
            step_timeout: Duration::from_secs(60),
        }
    }
}

/// A running local control plane. See the crate documentation.
#[derive(Debug)]
pub struct ControlPlane {
    controller_manager: Process,
    apiserver: Process,
    etcd: Process,
    pebble: Pebble,
    challtestsrv: ChallTestSrv,
    admin_config: ::kube::Config,
    serving_ca_pem: String,
    front_proxy_ca_pem: String,
    pebble_ca_pem: String,
    pebble_listener: certs::CertFiles,
    kubeconfig: PathBuf,
    bin_dir: PathBuf,
    step_timeout: Duration,
    startup_time: Duration,
    extra_pebbles: AtomicU32,
    pod_ips: Arc<PodIps>,
    /// Holds this control plane's loopback addresses for as long as it runs.
    loopback: loopback::Block,
    /// Last: removed after every process has stopped.
    work_dir: WorkDir,
}

impl ControlPlane {
    /// The control plane shared by all tests of this test binary, started on first use with
    /// [`Options::default`]. Blocks while starting; panics with the reason if the start failed
    /// (every later call panics with the same reason, without trying again). Its processes are
    /// stopped and its work dir removed when the process exits.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        let started = SHARED
            .get_or_init(|| ControlPlane::start(Options::default()).map_err(|e| format!("{e:?}")));
        match started {
            Ok(cp) => cp,
            Err(e) => panic!(
                "certsmith-e2e: the local control plane failed to start \
                 (set {ENV_KEEP_LOGS}=1 to keep its work dir and logs): {e}"
            ),
        }
    }

    /// Starts a control plane owned by the caller; it is stopped on drop. Blocks; may be called
    /// from inside or outside a tokio runtime (the start runs on its own thread and runtime).
    pub fn start(opts: Options) -> anyhow::Result<ControlPlane> {
        std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(ControlPlane::start_async(opts))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    async fn start_async(opts: Options) -> anyhow::Result<ControlPlane> {
        let started = Instant::now();
        let bin_dir = match opts.bin_dir {
            Some(dir) => dir,
            None => default_bin_dir()?,
        };
        let missing: Vec<_> = BINARIES
            .iter()
            .filter(|b| !bin_dir.join(b).is_file())
            .collect();
        if !missing.is_empty() {
            bail!(
                "missing tool binaries {missing:?} in {}: run e2e/tools.sh to build them",
                bin_dir.display()
            );
        }
        let work_dir = WorkDir::new(opts.keep_work_dir)?;
        let dir = work_dir.path();
        if opts.keep_work_dir {
            eprintln!("certsmith-e2e: control plane work dir {}", dir.display());
        }
        std::fs::create_dir_all(dir.join("logs"))?;
        let pki = certs::Pki::generate(&dir.join("certs"))?;
        let timeout = opts.step_timeout;
        let loopback = loopback::Block::claim();

        let (etcd, challtestsrv) = tokio::try_join!(
            kube::start_etcd(&bin_dir, dir, timeout),
            ChallTestSrv::start(&bin_dir, dir, loopback.ingress_ip(), timeout),
        )?;
        let pebble_env = PebbleEnv {
            bin_dir: &bin_dir,
            dir,
            name: "pebble",
            listener: &pki.pebble_listener,
            ca_pem: &pki.pebble_ca.cert_pem,
            dns: challtestsrv.dns_addr(),
            timeout,
        };
        let (apiserver, pebble) = tokio::try_join!(
            kube::start_apiserver(&bin_dir, dir, &pki, &etcd.client_url, timeout),
            Pebble::start(pebble_env, &opts.pebble),
        )?;

        let kubeconfig = dir.join("admin.kubeconfig");
        kube::write_kubeconfig(
            &kubeconfig,
            &apiserver.url(),
            &pki.serving_ca.cert,
            &pki.admin.cert,
            &pki.admin.key,
        )?;
        let kcm_kubeconfig = dir.join("kube-controller-manager.kubeconfig");
        kube::write_kubeconfig(
            &kcm_kubeconfig,
            &apiserver.url(),
            &pki.serving_ca.cert,
            &pki.controller_manager.cert,
            &pki.controller_manager.key,
        )?;

        let serving_ca_der = CertificateDer::from_pem_slice(pki.serving_ca.cert_pem.as_bytes())
            .context("parsing the serving CA")?
            .to_vec();
        let admin_config = admin_kube_config(
            &apiserver.url(),
            &serving_ca_der,
            &pki.admin.cert,
            &pki.admin.key,
        )?;
        // Install the CRDs before kube-controller-manager starts, so that its garbage collector
        // knows their kinds from its first discovery on (it re-discovers only every 30 s).
        let crds = kube::read_crds(&opts.crds_dir)?;
        if crds.is_empty() {
            eprintln!(
                "certsmith-e2e: no CRDs in {}, installing none",
                opts.crds_dir.display()
            );
        } else {
            let client = ::kube::Client::try_from(admin_config.clone())?;
            kube::apply_crds(&client, &crds, timeout).await?;
        }
        let controller_manager =
            kube::start_controller_manager(&bin_dir, dir, &pki, &kcm_kubeconfig)?;
        let client = ::kube::Client::try_from(admin_config.clone())?;
        kube::wait_for_defaults(&client, &controller_manager, timeout).await?;

        Ok(ControlPlane {
            controller_manager,
            apiserver: apiserver.process,
            etcd: etcd.process,
            pebble,
            challtestsrv,
            admin_config,
            serving_ca_pem: pki.serving_ca.cert_pem.clone(),
            front_proxy_ca_pem: pki.front_proxy_ca.cert_pem.clone(),
            pebble_listener: pki.pebble_listener.clone(),
            pebble_ca_pem: pki.pebble_ca.cert_pem.clone(),
            kubeconfig,
            bin_dir,
            step_timeout: timeout,
            startup_time: started.elapsed(),
            extra_pebbles: AtomicU32::new(0),
            pod_ips: PodIps::new(&loopback),
            loopback,
            work_dir,
        })
    }

    /// A fresh admin client (`system:masters`). Create one per tokio runtime: a client is bound
    /// to the runtime it was first used in, and each `#[tokio::test]` has its own.
    pub async fn client(&self) -> anyhow::Result<::kube::Client> {
        Ok(::kube::Client::try_from(self.kube_config())?)
    }

    /// The admin client configuration (client certificate CN=admin, O=system:masters).
    pub fn kube_config(&self) -> ::kube::Config {
        self.admin_config.clone()
    }

    /// The admin kubeconfig file (it refers to certificate files in the work dir).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// kube-apiserver's URL, `https://127.0.0.1:<port>`.
    pub fn apiserver_url(&self) -> String {
        self.admin_config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned()
    }

    /// PEM of the CA that signed kube-apiserver's serving certificate.
    pub fn serving_ca_pem(&self) -> &str {
        &self.serving_ca_pem
    }

    /// PEM of the CA of the front-proxy client certificate (CN [`FRONT_PROXY_CLIENT_CN`]) that
    /// kube-apiserver presents to aggregated API servers; they authenticate it with this CA.
    pub fn front_proxy_ca_pem(&self) -> &str {
        &self.front_proxy_ca_pem
    }

    /// Creates a namespace named `<prefix>-<n>-<random>` and waits (up to 10 s) for its `default`
    /// ServiceAccount, so Pods can be created in it right away. Returns the name.
    pub async fn create_namespace(&self, prefix: &str) -> anyhow::Result<String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{n}-{}", random_suffix());
        let client = self.client().await?;
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"certsmith-e2e/test": "true"}}
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&Default::default(), &namespace)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        let accounts: Api<ServiceAccount> = Api::namespaced(client, &name);
        let accounts = &accounts;
        wait_for(
            &self.controller_manager,
            Duration::from_secs(10),
            move || async move {
                accounts
                    .get_opt("default")
                    .await?
                    .map(drop)
                    .ok_or_else(|| anyhow!("no default ServiceAccount yet"))
            },
        )
        .await
        .with_context(|| format!("namespace {name}"))?;
        Ok(name)
    }

    /// Server-side applies every CRD in `dir` (`*.yaml`, field manager [`FIELD_MANAGER`]) and
    /// waits until each is Established. Note that kube-controller-manager's garbage collector
    /// learns of new kinds only at its next discovery (every 30 s).
    pub async fn install_crds(&self, dir: &Path) -> anyhow::Result<()> {
        let crds = kube::read_crds(dir)?;
        kube::apply_crds(&self.client().await?, &crds, self.step_timeout).await
    }

    /// The control plane's Pebble.
    pub fn pebble(&self) -> &Pebble {
        &self.pebble
    }

    /// Starts another Pebble (e.g. one that requires External Account Binding), with the same
    /// listener CA ([`Pebble::ca_pem`]) and mock DNS. It is stopped when dropped.
    pub async fn start_pebble(&self, opts: PebbleOptions) -> anyhow::Result<Pebble> {
        let n = self.extra_pebbles.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("pebble-{n}");
        let env = PebbleEnv {
            bin_dir: &self.bin_dir,
            dir: self.work_dir.path(),
            name: &name,
            listener: &self.pebble_listener,
            ca_pem: &self.pebble_ca_pem,
            dns: self.challtestsrv.dns_addr(),
            timeout: self.step_timeout,
        };
        Pebble::start(env, &opts).await
    }

    /// Starts a BIND9 `named` serving `zones` (updatable with `key`; every name's A record is
    /// [`Self::ingress_ip`]; `records`: more zone-file lines, see [`Bind9::start`]) in a
    /// directory of its own under the work dir, also on port 53 of a loopback address of its own
    /// (the zones' NS address). It is stopped when dropped.
    pub async fn start_bind9(
        &self,
        zones: &[&str],
        records: &[&str],
        key: &TsigKey,
    ) -> anyhow::Result<Bind9> {
        let n = self.extra_pebbles.fetch_add(1, Ordering::Relaxed) + 1;
        let dir = self.work_dir.path().join(format!("bind9-{n}"));
        let lease = self
            .pod_ips()
            .allocate()
            .context("no loopback address left for BIND9's port 53")?;
        let bind = Bind9::start(
            &dir,
            zones,
            records,
            key,
            self.ingress_ip(),
            Some(lease.ip()),
            self.step_timeout,
        )
        .await?;
        Ok(bind.with_lease(lease))
    }

    /// The mock DNS server that Pebble resolves names with.
    pub fn challtestsrv(&self) -> &ChallTestSrv {
        &self.challtestsrv
    }

    /// "The cluster's ingress": a loopback address of this control plane alone (never
    /// 127.0.0.1), which the mock DNS answers for every name without a record of its own, and
    /// where Pebble validates HTTP-01 (port 80). An [`IngressRouter`] listens there.
    pub fn ingress_ip(&self) -> Ipv4Addr {
        self.loopback.ingress_ip()
    }

    /// The pod IPs of this control plane: loopback addresses of its own, handed out by
    /// [`FakeKubelet`]s.
    pub fn pod_ips(&self) -> &Arc<PodIps> {
        &self.pod_ips
    }

    /// The directory of the tool binaries.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The temporary work dir: `certs/`, `logs/<process>.log`, `etcd/`, configs, kubeconfigs.
    pub fn work_dir(&self) -> &Path {
        self.work_dir.path()
    }

    /// A `kubectl` command with `--kubeconfig` set to the admin kubeconfig.
    pub fn kubectl(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.bin_dir.join("kubectl"));
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()));
        cmd
    }

    /// How long the start took (from the call to ready, including certificate generation).
    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }

    /// The processes.
    pub fn processes(&self) -> [&Process; 5] {
        [
            &self.controller_manager,
            &self.apiserver,
            self.pebble.process(),
            self.challtestsrv.process(),
            &self.etcd,
        ]
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // The work dir goes after this, as the last field.
        process::stop(&self.processes());
    }
}

fn admin_kube_config(
    url: &str,
    ca_der: &[u8],
    cert: &Path,
    key: &Path,
) -> anyhow::Result<::kube::Config> {
    let mut config = ::kube::Config::new(url.parse()?);
    config.root_cert = Some(vec![ca_der.to_vec()]);
    config.auth_info.client_certificate = Some(cert.display().to_string());
    config.auth_info.client_key = Some(key.display().to_string());
    Ok(config)
}

/// The bin dir that `e2e/tools.sh --print` reports (it honours `CERTSMITH_TOOLS_CACHE`).
fn default_bin_dir() -> anyhow::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("--print")
        .output()
        .with_context(|| format!("running {} --print", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} --print failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// Five random lower-case letters and digits.
fn random_suffix() -> String {
    let mut x = RandomState::new().hash_one(Instant::now());
    (0..5)
        .map(|_| {
            let c = b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize];
            x /= 36;
            c as char
        })
        .collect()
}

/// Polls `check` every 100 ms until it succeeds, `process` exits (error with its log's tail) or
/// `timeout` passes (error with the last failure and the log's tail).
pub(crate) async fn wait_for<F, Fut>(
    process: &Process,
    timeout: Duration,
    mut check: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        process.check_running()?;
        let last = match tokio::time::timeout(Duration::from_secs(5), check()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => anyhow!("no answer within 5 s"),
        };
        if Instant::now() >= deadline {
            return Err(process.explain(last.context(format!("still failing after {timeout:?}"))));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
