//! Everything an HTTP-01 issuance needs around the certsmith controller: the control plane, the
//! stand-in kubelet and ingress controller, and the controller binary itself as a process.
//!
//! The stand-ins run on a runtime of their own, so one stack serves every `#[tokio::test]` of a
//! test binary (each of which has its own, short-lived runtime).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use anyhow::Context as _;

use crate::process::{self, Process};
use crate::{ControlPlane, FakeKubelet, IngressRouter};

/// The image name solver Pods get; the stand-in kubelet runs the certsmith binary for it.
pub const SOLVER_IMAGE: &str = "certsmith.test/certsmith:dev";

/// Flags the tests and the demo give the controller on top of the defaults.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// Backoff after a failed issuance (cert-manager's default of 1h is too slow for a test).
    pub backoff_min: &'static str,
    pub backoff_max: &'static str,
    /// More flags, appended last.
    pub extra_args: Vec<String>,
    /// More environment variables of the controller process.
    pub extra_env: Vec<(String, String)>,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            backoff_min: "5s",
            backoff_max: "20s",
            extra_args: vec![],
            extra_env: vec![],
        }
    }
}

pub struct Stack {
    cp: &'static ControlPlane,
    certsmith: PathBuf,
    controller: Mutex<Option<Process>>,
    options: ControllerOptions,
    /// Loopback ports of the controller's `/metrics` and `/healthz`, `/readyz` endpoints.
    metrics_port: u16,
    healthz_port: u16,
    // Kept alive for the stack's lifetime; they run on `runtime`.
    _kubelet: FakeKubelet,
    _router: IngressRouter,
    _runtime: tokio::runtime::Runtime,
}

impl Stack {
    /// The stack of this test binary, started on first use with default controller options.
    pub fn shared(certsmith: &str) -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(|| {
            Stack::start(
                ControlPlane::shared(),
                Path::new(certsmith),
                ControllerOptions::default(),
            )
            .unwrap_or_else(|e| panic!("certsmith-e2e: the stack failed to start: {e:#}"))
        })
    }

    /// Starts the stand-ins and the controller on `cp`.
    pub fn start(
        cp: &'static ControlPlane,
        certsmith: &Path,
        options: ControllerOptions,
    ) -> anyhow::Result<Stack> {
        let images = HashMap::from([(SOLVER_IMAGE.to_owned(), certsmith.to_path_buf())]);
        let ingress: SocketAddr = (cp.ingress_ip(), 80).into();
        // Built on a thread of its own: a test calls this from inside its own tokio runtime,
        // where starting (or blocking on) another runtime is not allowed.
        let (runtime, kubelet, router) = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()?;
                    let (kubelet, router) = runtime.block_on(async {
                        let kubelet = FakeKubelet::start(cp, images)
                            .await
                            .context("stand-in kubelet")?;
                        let router = IngressRouter::start(cp, ingress)
                            .await
                            .context("stand-in ingress controller")?;
                        anyhow::Ok((kubelet, router))
                    })?;
                    anyhow::Ok((runtime, kubelet, router))
                })
                .join()
                .map_err(|_| anyhow::anyhow!("starting the stand-ins panicked"))?
        })?;
        let [metrics_port, healthz_port] = process::free_ports::<2>()?;
        let stack = Stack {
            cp,
            metrics_port,
            healthz_port,
            certsmith: certsmith.to_path_buf(),
            controller: Mutex::new(None),
            options,
            _kubelet: kubelet,
            _router: router,
            _runtime: runtime,
        };
        stack.start_controller()?;
        Ok(stack)
    }

    pub fn control_plane(&self) -> &'static ControlPlane {
        self.cp
    }

    /// The controller's Prometheus endpoint: `http://127.0.0.1:<port>/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    /// The controller's health endpoints' base: `http://127.0.0.1:<port>` (`/healthz`, `/readyz`).
    pub fn healthz_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.healthz_port)
    }

    /// The controller's command line.
    pub fn controller_command(&self) -> Command {
        let mut cmd = Command::new(&self.certsmith);
        cmd.arg("controller")
            .arg("--kubeconfig")
            .arg(self.cp.kubeconfig_path())
            .args(["--acme-http01-solver-image", SOLVER_IMAGE])
            .arg(format!(
                "--acme-http01-solver-nameservers={}",
                self.cp.challtestsrv().dns_addr()
            ))
            .args(["--acme-self-check-retry-period", "500ms"])
            .args([
                "--certificate-request-minimum-backoff-duration",
                self.options.backoff_min,
            ])
            .args([
                "--certificate-request-maximum-backoff-duration",
                self.options.backoff_max,
            ])
            .args(["--log-format", "json"])
            .arg(format!(
                "--metrics-listen-address=127.0.0.1:{}",
                self.metrics_port
            ))
            .arg(format!(
                "--internal-healthz-listen-address=127.0.0.1:{}",
                self.healthz_port
            ))
            .args(&self.options.extra_args)
            .env("RUST_LOG", "certsmith=debug,info")
            .envs(self.options.extra_env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Starts the controller process (stopping a running one first).
    pub fn start_controller(&self) -> anyhow::Result<()> {
        let mut slot = self.controller.lock().unwrap();
        if let Some(old) = slot.take() {
            drop(old);
        }
        let n = CONTROLLER_STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self
            .cp
            .work_dir()
            .join(format!("certsmith-controller-{n}.log"));
        *slot = Some(process::spawn(
            "certsmith-controller",
            self.controller_command(),
            &log,
        )?);
        Ok(())
    }

    /// Kills the controller with SIGKILL, as a crash would.
    pub fn kill_controller(&self) {
        if let Some(p) = self.controller.lock().unwrap().take() {
            p.kill_hard();
        }
    }

    /// The controller's log so far (for assertions on audit records).
    pub fn controller_log(&self) -> String {
        let dir = self.cp.work_dir();
        let mut text = String::new();
        let n = CONTROLLER_STARTS.load(std::sync::atomic::Ordering::Relaxed);
        for i in 0..n {
            text.push_str(
                &std::fs::read_to_string(dir.join(format!("certsmith-controller-{i}.log")))
                    .unwrap_or_default(),
            );
        }
        text
    }
}

static CONTROLLER_STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
