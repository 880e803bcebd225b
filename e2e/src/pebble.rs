//! Pebble (the ACME test server) and pebble-challtestsrv (its mock DNS server).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;

use crate::certs::CertFiles;
use crate::http::HttpClient;
use crate::process::{self, Process};
use crate::wait_for;

/// One certificate profile of Pebble (`profiles.<name>` in its config).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PebbleProfile {
    pub description: String,
    /// Validity of issued certificates, in seconds.
    pub validity_period: u64,
}

impl PebbleProfile {
    pub fn new(description: &str, validity_period: u64) -> PebbleProfile {
        PebbleProfile {
            description: description.to_owned(),
            validity_period,
        }
    }
}

/// How to configure a Pebble instance.
///
/// Note Pebble's own behaviour: an order that names no profile gets a *random* one of
/// `profiles`, so tests that care about validity should request a profile.
#[derive(Clone, Debug)]
pub struct PebbleOptions {
    /// `externalAccountBindingRequired`.
    pub eab_required: bool,
    /// `externalAccountMACKeys`: key id → base64url-encoded HMAC key.
    pub eab_keys: BTreeMap<String, String>,
    /// `profiles`; default: `default` (90 days), `shortlived` (6 days), `tenminutes` (600 s).
    pub profiles: BTreeMap<String, PebbleProfile>,
    /// `retryAfter.authz` and `retryAfter.order`, in seconds.
    pub retry_after: u32,
    /// Extra environment variables (they override the defaults `PEBBLE_VA_NOSLEEP=1` and
    /// `PEBBLE_WFE_NONCEREJECT=0`), e.g. `PEBBLE_AUTHZREUSE=0`.
    pub env: Vec<(String, String)>,
    /// The DNS server Pebble validates with (`-dnsserver`); default: the control plane's
    /// pebble-challtestsrv. Point it at a [`crate::Bind9`] for real DNS-01 validation.
    pub dns_server: Option<SocketAddr>,
}

impl Default for PebbleOptions {
    fn default() -> Self {
        PebbleOptions {
            eab_required: false,
            eab_keys: BTreeMap::new(),
            profiles: BTreeMap::from([
                (
                    "default".to_owned(),
                    PebbleProfile::new("The default profile", 7_776_000),
                ),
                (
                    "shortlived".to_owned(),
                    PebbleProfile::new("A short-lived certificate profile", 518_400),
                ),
                (
                    "tenminutes".to_owned(),
                    PebbleProfile::new("Certificates valid for ten minutes", 600),
                ),
            ]),
            retry_after: 1,
            env: Vec::new(),
            dns_server: None,
        }
    }
}

impl PebbleOptions {
    /// Options that require External Account Binding with the given key id → base64url HMAC key.
    pub fn with_eab(keys: impl IntoIterator<Item = (String, String)>) -> PebbleOptions {
        PebbleOptions {
            eab_required: true,
            eab_keys: keys.into_iter().collect(),
            ..PebbleOptions::default()
        }
    }
}

/// A running Pebble ACME server. Dropping it stops the process.
#[derive(Debug)]
pub struct Pebble {
    listen_port: u16,
    management_port: u16,
    tls_port: u16,
    ca_pem: String,
    config_path: PathBuf,
    process: Process,
}

/// What every Pebble instance of a control plane shares.
pub(crate) struct PebbleEnv<'a> {
    pub bin_dir: &'a Path,
    pub dir: &'a Path,
    pub name: &'a str,
    pub listener: &'a CertFiles,
    pub ca_pem: &'a str,
    pub dns: SocketAddr,
    pub timeout: Duration,
}

impl Pebble {
    /// Starts Pebble and waits until its directory answers.
    pub(crate) async fn start(env: PebbleEnv<'_>, opts: &PebbleOptions) -> anyhow::Result<Pebble> {
        let [listen_port, management_port, tls_port] = process::free_ports()?;
        let config = json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": env.listener.cert,
            "privateKey": env.listener.key,
            // Port 80, as real ACME servers: the solver objects and the ingress stand-in are
            // then the same as in a cluster.
            "httpPort": HTTP_PORT,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": opts.eab_required,
            "externalAccountMACKeys": opts.eab_keys,
            "domainBlocklist": ["blocked-domain.example"],
            "retryAfter": {"authz": opts.retry_after, "order": opts.retry_after},
            "profiles": opts.profiles,
        }});
        let config_path = env.dir.join(format!("{}.json", env.name));
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;

        let mut cmd = Command::new(env.bin_dir.join("pebble"));
        cmd.arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(opts.dns_server.unwrap_or(env.dns).to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .envs(opts.env.iter().map(|(k, v)| (k, v)));
        let log = env.dir.join("logs").join(format!("{}.log", env.name));
        let process = process::spawn(env.name, cmd, &log)?;
        let pebble = Pebble {
            listen_port,
            management_port,
            tls_port,
            ca_pem: env.ca_pem.to_owned(),
            config_path,
            process,
        };
        let client = pebble.http_client()?;
        let url = pebble.directory_url();
        wait_for(&pebble.process, env.timeout, || async {
            client.get(&url).await?.success()
        })
        .await?;
        Ok(pebble)
    }

    /// The ACME directory URL, `https://127.0.0.1:<port>/dir`.
    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.listen_port)
    }

    /// PEM of the CA that signed Pebble's listener certificate (for both the ACME and the
    /// management API): ACME clients must trust it. This is not the CA that issues certificates,
    /// see [`Pebble::root_pem`].
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The management API's base URL, `https://127.0.0.1:<port>` (same listener CA).
    pub fn management_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.management_port)
    }

    /// The port Pebble connects to for HTTP-01 validation, 80, on the address the mock DNS
    /// returns ([`crate::ControlPlane::ingress_ip`] unless a test adds records). Nothing listens
    /// there until a test starts an [`crate::IngressRouter`] (or another server).
    pub fn http_port(&self) -> u16 {
        HTTP_PORT
    }

    /// The port Pebble connects to for TLS-ALPN-01 validation.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// The generated Pebble config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The process (pid, log file).
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// An HTTP client that trusts [`Pebble::ca_pem`]; create it in the runtime that uses it.
    pub fn http_client(&self) -> anyhow::Result<HttpClient> {
        HttpClient::new(&self.ca_pem, None)
    }

    /// The ACME directory object.
    pub async fn directory(&self) -> anyhow::Result<serde_json::Value> {
        self.http_client()?.get(&self.directory_url()).await?.json()
    }

    /// PEM of the current root that issues certificates (`/roots/0`). Pebble makes a new one at
    /// every start.
    pub async fn root_pem(&self) -> anyhow::Result<String> {
        self.management_get("/roots/0").await
    }

    /// PEM of the current intermediate (`/intermediates/0`).
    pub async fn intermediate_pem(&self) -> anyhow::Result<String> {
        self.management_get("/intermediates/0").await
    }

    async fn management_get(&self, path: &str) -> anyhow::Result<String> {
        let resp = self
            .http_client()?
            .get(&format!("{}{path}", self.management_url()))
            .await?;
        resp.success()?;
        Ok(String::from_utf8(resp.body.to_vec())?)
    }
}

/// The port Pebble validates HTTP-01 on.
const HTTP_PORT: u16 = 80;

/// A running pebble-challtestsrv: the DNS server Pebble resolves names with.
#[derive(Debug)]
pub struct ChallTestSrv {
    management_port: u16,
    dns_port: u16,
    process: Process,
}

impl ChallTestSrv {
    /// Starts pebble-challtestsrv with only its management API and DNS server (no HTTP-01,
    /// TLS-ALPN-01 or DoH listeners). A queries answer `default_ipv4` by default (the control
    /// plane's ingress address), AAAA nothing.
    pub(crate) async fn start(
        bin_dir: &Path,
        dir: &Path,
        default_ipv4: Ipv4Addr,
        timeout: Duration,
    ) -> anyhow::Result<ChallTestSrv> {
        let [management_port] = process::free_ports()?;
        let dns_port = free_dns_port()?;
        let mut cmd = Command::new(bin_dir.join("pebble-challtestsrv"));
        cmd.args(["-management", &format!("127.0.0.1:{management_port}")])
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""])
            .args([
                "-defaultIPv4",
                &default_ipv4.to_string(),
                "-defaultIPv6",
                "",
            ]);
        let log = dir.join("logs").join("pebble-challtestsrv.log");
        let process = process::spawn("pebble-challtestsrv", cmd, &log)?;
        let srv = ChallTestSrv {
            management_port,
            dns_port,
            process,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], management_port));
        wait_for(&srv.process, timeout, || async move {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
            Ok(())
        })
        .await?;
        Ok(srv)
    }

    /// The management API's base URL, `http://127.0.0.1:<port>`.
    pub fn management_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.management_port)
    }

    /// The DNS server's address (UDP and TCP).
    pub fn dns_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.dns_port))
    }

    /// The process (pid, log file).
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// POSTs a JSON body to a management endpoint, e.g. `/set-txt`; errors unless it answers 2xx.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
        HttpClient::new("", None)?
            .post_json(&format!("{}{path}", self.management_url()), &body)
            .await?
            .success()
    }

    /// Serves a TXT record (`/set-txt`); `host` is a fully qualified name with a trailing dot.
    pub async fn set_txt(&self, host: &str, value: &str) -> anyhow::Result<()> {
        self.post("/set-txt", json!({"host": host, "value": value}))
            .await
    }

    /// Removes the TXT records of `host` (`/clear-txt`).
    pub async fn clear_txt(&self, host: &str) -> anyhow::Result<()> {
        self.post("/clear-txt", json!({"host": host})).await
    }

    /// Serves A records for `host` (`/add-a`).
    pub async fn add_a(&self, host: &str, addresses: &[&str]) -> anyhow::Result<()> {
        self.post("/add-a", json!({"host": host, "addresses": addresses}))
            .await
    }

    /// Asks the DNS server for the TXT records of `name` over UDP (blocking, 2 s timeout).
    pub fn lookup_txt(&self, name: &str) -> anyhow::Result<Vec<String>> {
        dns::query_txt(self.dns_addr(), name)
    }
}

/// A port free for both TCP and UDP on 127.0.0.1.
fn free_dns_port() -> anyhow::Result<u16> {
    for _ in 0..20 {
        let [port] = process::free_ports()?;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no loopback port free for both TCP and UDP")
}

/// A minimal DNS client: one TXT question over UDP.
pub(crate) mod dns {
    use super::*;

    const TYPE_TXT: u16 = 16;

    pub(crate) fn query_txt(server: SocketAddr, name: &str) -> anyhow::Result<Vec<String>> {
        let id: u16 = std::process::id() as u16 ^ 0x5a5a;
        let mut query = Vec::with_capacity(64);
        query.extend_from_slice(&id.to_be_bytes());
        query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
        for label in name.trim_end_matches('.').split('.') {
            anyhow::ensure!(
                !label.is_empty() && label.len() < 64,
                "bad DNS name {name:?}"
            );
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.push(0);
        query.extend_from_slice(&TYPE_TXT.to_be_bytes());
        query.extend_from_slice(&1u16.to_be_bytes()); // class IN

        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        socket.connect(server)?;
        socket.send(&query)?;
        let mut buf = [0u8; 4096];
        let n = socket
            .recv(&mut buf)
            .with_context(|| format!("DNS query to {server}"))?;
        parse_txt_answers(&buf[..n], id)
    }

    fn parse_txt_answers(msg: &[u8], id: u16) -> anyhow::Result<Vec<String>> {
        let u16_at = |i: usize| -> anyhow::Result<u16> {
            match msg.get(i..i + 2) {
                Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
                None => bail!("truncated DNS message"),
            }
        };
        anyhow::ensure!(u16_at(0)? == id, "DNS answer with a wrong id");
        let rcode = u16_at(2)? & 0xf;
        anyhow::ensure!(rcode == 0, "DNS answer with rcode {rcode}");
        let questions = u16_at(4)?;
        let answers = u16_at(6)?;
        let mut pos = 12;
        for _ in 0..questions {
            pos = skip_name(msg, pos)? + 4;
        }
        let mut out = Vec::new();
        for _ in 0..answers {
            pos = skip_name(msg, pos)?;
            let rtype = u16_at(pos)?;
            let rdlen = u16_at(pos + 8)? as usize;
            let start = pos + 10;
            let rdata = msg
                .get(start..start + rdlen)
                .context("truncated DNS record")?;
            if rtype == TYPE_TXT {
                // One or more <length><bytes> character strings, joined as in RFC 7208 §3.3.
                let mut text = Vec::new();
                let mut i = 0;
                while i < rdata.len() {
                    let len = rdata[i] as usize;
                    text.extend_from_slice(rdata.get(i + 1..i + 1 + len).context("bad TXT")?);
                    i += 1 + len;
                }
                out.push(String::from_utf8_lossy(&text).into_owned());
            }
            pos = start + rdlen;
        }
        Ok(out)
    }

    /// The position after the (possibly compressed) name at `pos`.
    fn skip_name(msg: &[u8], mut pos: usize) -> anyhow::Result<usize> {
        loop {
            let len = *msg.get(pos).context("truncated DNS name")? as usize;
            match len {
                0 => return Ok(pos + 1),
                l if l & 0xc0 == 0xc0 => return Ok(pos + 2),
                l => pos += 1 + l,
            }
        }
    }
}
