//! `certsmith controller`: flags named as cert-manager's controller names them, then every
//! reconciler until SIGTERM or SIGINT.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use kube::api::{Api, ListParams};

use super::telemetry::{self, LogFormat};
use crate::api::Certificate;
use crate::controllers::{self, Config};
use crate::solvers::http01::Http01Settings;

#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// Path to a kubeconfig; default: $KUBECONFIG, ~/.kube/config, then the in-cluster config.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Namespace holding the Secrets that ClusterIssuers refer to.
    #[arg(long, default_value = "kube-system")]
    pub cluster_resource_namespace: String,
    /// First backoff after a failed issuance; doubles per failure.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub certificate_request_minimum_backoff_duration: Duration,
    /// Longest backoff after repeated failed issuances.
    #[arg(long, default_value = "32h", value_parser = parse_duration)]
    pub certificate_request_maximum_backoff_duration: Duration,
    /// Leave CertificateRequests for an external approver instead of approving those for
    /// certsmith's own issuers.
    #[arg(long)]
    pub disable_auto_approval: bool,
    /// Image of the HTTP-01 solver Pods (certsmith's own image).
    #[arg(long, default_value = concat!("ghcr.io/certsmith/certsmith:", env!("CARGO_PKG_VERSION")))]
    pub acme_http01_solver_image: String,
    /// DNS servers (host:port, comma separated) the HTTP-01 self-check resolves names with.
    #[arg(long, value_delimiter = ',')]
    pub acme_http01_solver_nameservers: Vec<SocketAddr>,
    /// runAsNonRoot of the HTTP-01 solver Pods.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub acme_http01_solver_run_as_non_root: bool,
    /// Extra labels (key=value, comma separated) on every HTTP-01 solver object.
    #[arg(long, value_delimiter = ',', value_parser = parse_label)]
    pub acme_http01_solver_extra_labels: Vec<(String, String)>,
    /// How often a challenge whose self-check has not passed is checked again.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub acme_self_check_retry_period: Duration,
    /// DNS servers (host:port, comma separated) for DNS-01 zone lookups, CNAME following and,
    /// with `--dns01-recursive-nameservers-only`, the propagation check (default: resolv.conf).
    #[arg(long, value_delimiter = ',')]
    pub dns01_recursive_nameservers: Vec<SocketAddr>,
    /// Check DNS-01 propagation on the recursive nameservers instead of the zone's
    /// authoritative nameservers.
    #[arg(long)]
    pub dns01_recursive_nameservers_only: bool,
    /// How often a DNS-01 record that is not visible yet is checked again.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub dns01_check_retry_period: Duration,
    /// The Ingress and Gateway shims (boxed: they would make every subcommand as large).
    #[command(flatten)]
    pub shim: Box<ShimArgs>,
    /// Address of the Prometheus `/metrics` endpoint.
    #[arg(long, default_value = "0.0.0.0:9402")]
    pub metrics_listen_address: SocketAddr,
    /// Address of the `/healthz` (liveness) and `/readyz` (readiness) endpoints.
    #[arg(long, alias = "healthz-listen-address", default_value = "0.0.0.0:9403")]
    pub internal_healthz_listen_address: SocketAddr,
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
    /// Log level filter, overridden by RUST_LOG.
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

/// Flags of the Ingress and Gateway shims, named as cert-manager's.
#[derive(clap::Args, Debug)]
pub struct ShimArgs {
    /// Issuer of Ingresses with an auto-certificate annotation (`kubernetes.io/tls-acme: "true"`)
    /// and no issuer annotation.
    #[arg(long, default_value = "")]
    pub default_issuer_name: String,
    /// Kind of the default issuer.
    #[arg(long, default_value = "Issuer")]
    pub default_issuer_kind: String,
    /// API group of the default issuer.
    #[arg(long, default_value = "cert-manager.io")]
    pub default_issuer_group: String,
    /// Ingress annotations that, set to a true value, ask for Certificates from the default
    /// issuer.
    #[arg(long, value_delimiter = ',', default_value = "kubernetes.io/tls-acme")]
    pub auto_certificate_annotations: Vec<String>,
    /// Create Certificates for annotated Gateway API Gateways (the Gateway API CRDs must be
    /// installed).
    #[arg(long)]
    pub enable_gateway_api: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = crate::pki::renewal::parse_go_duration(text).map_err(|e| e.to_string())?;
    d.try_into()
        .map_err(|_| format!("{text:?} must not be negative"))
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not key=value"))
}

impl ControllerArgs {
    fn config(&self) -> Config {
        Config {
            cluster_resource_namespace: self.cluster_resource_namespace.clone(),
            namespace: self.namespace.clone(),
            issuance_backoff_min: self.certificate_request_minimum_backoff_duration,
            issuance_backoff_max: self.certificate_request_maximum_backoff_duration,
            auto_approve: !self.disable_auto_approval,
            http01: Http01Settings {
                solver_image: self.acme_http01_solver_image.clone(),
                extra_labels: self
                    .acme_http01_solver_extra_labels
                    .iter()
                    .cloned()
                    .collect::<BTreeMap<_, _>>(),
                run_as_non_root: self.acme_http01_solver_run_as_non_root,
                self_check_nameservers: self.acme_http01_solver_nameservers.clone(),
            },
            self_check_retry: self.acme_self_check_retry_period,
            dns01: crate::solvers::dns01::Dns01Settings {
                recursive_nameservers: self.dns01_recursive_nameservers.clone(),
                recursive_only: self.dns01_recursive_nameservers_only,
                check_retry_period: self.dns01_check_retry_period,
            },
            shim: controllers::shim::ShimSettings {
                default_issuer_name: self.shim.default_issuer_name.clone(),
                default_issuer_kind: self.shim.default_issuer_kind.clone(),
                default_issuer_group: self.shim.default_issuer_group.clone(),
                auto_certificate_annotations: self.shim.auto_certificate_annotations.clone(),
                enable_gateway_api: self.shim.enable_gateway_api,
            },
        }
    }

    pub async fn run(self) -> anyhow::Result<()> {
        telemetry::init(self.log_format, &self.log_level);
        let registry = std::sync::Arc::new(super::metrics::registry());
        super::server::spawn(
            self.metrics_listen_address,
            super::server::Endpoints::Metrics,
            registry.clone(),
        )
        .await;
        super::server::spawn(
            self.internal_healthz_listen_address,
            super::server::Endpoints::Health,
            registry,
        )
        .await;
        let client = kube_client(self.kubeconfig.as_deref()).await?;
        // Fail fast with a hint instead of watch errors when the CRDs are not installed.
        Api::<Certificate>::all(client.clone())
            .list(&ListParams::default().limit(1))
            .await
            .context("cannot list Certificates: are the CRDs installed? (`certsmith crds | kubectl apply -f -`)")?;
        let config = self.config();
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            namespace = config.namespace.as_deref().unwrap_or("<all>"),
            cluster_resource_namespace = %config.cluster_resource_namespace,
            "certsmith controller starting"
        );
        let ctx = controllers::Context::new(client, config);
        // The API server answered the list above; the controllers start now.
        super::metrics::set_ready(true);
        controllers::run(ctx, controllers::shutdown_on(shutdown_signal())).await;
        tracing::info!("certsmith controller stopped");
        Ok(())
    }
}

async fn kube_client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
