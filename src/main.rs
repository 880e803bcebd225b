use clap::Parser;

fn main() -> anyhow::Result<()> {
    // kube and instant-acme must agree on one rustls provider; install it before any TLS use.
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        anyhow::bail!("a rustls crypto provider was installed before main");
    }
    certsmith::cli::Cli::parse().run()
}
