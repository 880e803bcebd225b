//! The command line: `certsmith crds`, `certsmith version`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "certsmith", version, about = "ACME certificates for Kubernetes, compatible with cert-manager v1")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD into a directory.
    Crds {
        /// Write `<group>_<plural>.yaml` files into this directory instead of printing.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the version.
    Version,
}

impl Cli {
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
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
            Command::Version => {
                println!("certsmith {}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
        }
    }
}
