//! The command line: `certsmith controller`, `certsmith solver`, `certsmith crds`,
//! `certsmith version`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "certsmith",
    version,
    about = "ACME certificates for Kubernetes, compatible with cert-manager v1"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start-up: the size of the controller's flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller: issue and renew the cluster's certificates.
    Controller(crate::runtime::controller::ControllerArgs),
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD into a directory.
    Crds {
        /// Write `<group>_<plural>.yaml` files into this directory instead of printing.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Serve one HTTP-01 challenge: the process of an HTTP-01 solver Pod (cert-manager's
    /// `acmesolver`).
    Solver(SolverArgs),
    /// Print the version.
    Version,
}

/// The arguments of `certsmith solver`, cert-manager's `acmesolver` flags.
#[derive(clap::Args)]
pub struct SolverArgs {
    /// The port to listen on.
    #[arg(long, default_value_t = 8089)]
    pub listen_port: u16,
    /// The address to listen on; the solver Pod passes its own address through the downward
    /// API. Default (also when empty): all addresses.
    #[arg(long, env = "POD_IP")]
    pub listen_address: Option<String>,
    /// The identifier (DNS name or IP address) the challenge is for; requests for other hosts
    /// get 404.
    #[arg(long)]
    pub domain: String,
    /// The challenge token.
    #[arg(long)]
    pub token: String,
    /// The key authorization to serve.
    #[arg(long)]
    pub key: String,
}

// The key authorization stays out of debug output.
impl std::fmt::Debug for SolverArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolverArgs")
            .field("listen_port", &self.listen_port)
            .field("listen_address", &self.listen_address)
            .field("domain", &self.domain)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Cli {
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Controller(args) => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(args.run()),
            Command::Crds { dir: None } => {
                print!("{}", crate::crds::all_yaml());
                Ok(())
            }
            Command::Crds { dir: Some(dir) } => {
                std::fs::create_dir_all(&dir)?;
                for crd in crate::crds::all() {
                    let path = dir.join(crate::crds::file_name(&crd));
                    std::fs::write(&path, crate::crds::to_yaml(&crd))?;
                }
                Ok(())
            }
            Command::Solver(args) => {
                // Logs go to the Pod's log; RUST_LOG overrides the level.
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(
                        tracing_subscriber::EnvFilter::try_from_default_env()
                            .unwrap_or_else(|_| "info".into()),
                    )
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .try_init();
                let ip = match args.listen_address.as_deref().map(str::trim) {
                    None | Some("") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    Some(ip) => ip.parse().map_err(|_| {
                        anyhow::anyhow!("--listen-address (POD_IP) {ip:?} is not an IP address")
                    })?,
                };
                let addr = SocketAddr::new(ip, args.listen_port);
                let config = crate::solvers::http01::server::SolverConfig {
                    domain: args.domain,
                    token: args.token,
                    key: args.key,
                };
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(crate::solvers::http01::server::run(addr, config))
            }
            Command::Version => {
                println!("certsmith {}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
        }
    }
}
