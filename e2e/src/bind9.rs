//! BIND9 (Debian's `named`) as an authoritative server that accepts RFC 2136 updates signed with
//! a TSIG key: the DNS provider of the DNS-01 tests, and the DNS server a Pebble started with
//! [`crate::PebbleOptions::dns_server`] validates against.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

use crate::process::{self, Process};
use crate::wait_for;

/// A TSIG key as BIND configures it.
#[derive(Clone, Debug)]
pub struct TsigKey {
    /// The key name, e.g. `certsmith-key.`.
    pub name: String,
    /// BIND's algorithm name, e.g. `hmac-sha256`.
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

/// A running `named`. Dropping it stops the process.
#[derive(Debug)]
pub struct Bind9 {
    addr: SocketAddr,
    ns_address: Option<std::net::Ipv4Addr>,
    _lease: Option<crate::PodIpLease>,
    _relay: Option<Relay>,
    dir: PathBuf,
    process: Process,
}

/// The path of the `named` binary: `$NAMED`, or `named` in `/usr/sbin`, `/usr/bin` or `$PATH`.
pub fn named_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("NAMED") {
        return Some(PathBuf::from(path));
    }
    let mut dirs: Vec<PathBuf> = vec!["/usr/sbin".into(), "/usr/bin".into()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join("named"))
        .find(|p| p.is_file())
}

impl Bind9 {
    /// Starts `named` on a free 127.0.0.1 port (UDP and TCP) with the primary `zones` (each with
    /// an SOA, an NS `ns.<zone>` at 127.0.0.1, and A records `<zone>` and `*.<zone>` at
    /// `address`), updatable with `key`. `records` are more zone-file lines with absolute owner
    /// names (e.g. `_acme-challenge.a.example. 60 IN CNAME b.example.`), each added to the zone
    /// it belongs to. Zone files and journals live in `dir`. With `ns_address`, the zones' NS
    /// record `ns.<zone>` points there and a relay on UDP port 53 of that address forwards to
    /// `named` (which only binds addresses of network interfaces, and 127.0.0.0/8 has just
    /// 127.0.0.1): a propagation check that asks the zone's authoritative nameservers (on port
    /// 53) reaches it.
    pub async fn start(
        dir: &Path,
        zones: &[&str],
        records: &[&str],
        key: &TsigKey,
        address: std::net::Ipv4Addr,
        ns_address: Option<std::net::Ipv4Addr>,
        timeout: Duration,
    ) -> anyhow::Result<Bind9> {
        let named = named_binary().context(
            "BIND9's `named` was not found: install it with `apt-get install -y bind9 bind9-utils`",
        )?;
        std::fs::create_dir_all(dir)?;
        let [port] = process::free_ports()?;
        let d = dir.display();
        let mut conf = format!(
            r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    // Recursion for loopback clients, so that a CNAME from one of its zones into another is
    // followed within one answer, as a resolver would (`cnameStrategy: Follow`).
    recursion yes;
    allow-recursion {{ 127.0.0.1; }};
    dnssec-validation no;
    notify no;
    minimal-responses no;
}};
controls {{ }};
key "{name}" {{
    algorithm {algorithm};
    secret "{secret}";
}};
"#,
            name = key.name,
            algorithm = key.algorithm,
            secret = key.secret,
        );
        for zone in zones {
            let zone = zone.trim_end_matches('.');
            let file = dir.join(format!("{zone}.db"));
            let ns_ip = ns_address.unwrap_or(std::net::Ipv4Addr::LOCALHOST);
            let extra: String = records
                .iter()
                .filter(|r| {
                    let owner = r.split_whitespace().next().unwrap_or("");
                    owner.trim_end_matches('.').ends_with(&format!(".{zone}"))
                })
                .map(|r| format!("{r}\n"))
                .collect();
            std::fs::write(
                &file,
                format!(
                    "$TTL 60\n\
                     @ IN SOA ns.{zone}. hostmaster.{zone}. 1 60 60 600 5\n\
                     @ IN NS ns.{zone}.\n\
                     ns IN A {ns_ip}\n\
                     @ IN A {address}\n\
                     * IN A {address}\n\
                     {extra}"
                ),
            )?;
            writeln!(
                conf,
                r#"zone "{zone}" {{ type primary; file "{}"; allow-update {{ key "{}"; }}; }};"#,
                file.display(),
                key.name
            )?;
        }
        let conf_path = dir.join("named.conf");
        std::fs::write(&conf_path, conf)?;

        let mut cmd = Command::new(named);
        cmd.arg("-g").arg("-4").arg("-c").arg(&conf_path);
        let process = process::spawn("named", cmd, &dir.join("named.log"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for(&process, timeout, || async move {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
            let log = std::fs::read_to_string(dir.join("named.log")).unwrap_or_default();
            anyhow::ensure!(log.contains("running"), "named is not running yet");
            Ok(())
        })
        .await
        .with_context(|| format!("starting named (log: {}/named.log)", dir.display()))?;
        let relay = match ns_address {
            Some(ip) => Some(Relay::start(SocketAddr::from((ip, 53)), addr)?),
            None => None,
        };
        Ok(Bind9 {
            addr,
            ns_address,
            _lease: None,
            _relay: relay,
            dir: dir.to_path_buf(),
            process,
        })
    }

    /// Keeps `lease` (the address of `ns_address`) for as long as this server runs.
    pub fn with_lease(mut self, lease: crate::PodIpLease) -> Bind9 {
        self._lease = Some(lease);
        self
    }

    /// The address whose port 53 `named` also listens on, the zones' NS address.
    pub fn ns_address(&self) -> Option<std::net::Ipv4Addr> {
        self.ns_address
    }

    /// Where `named` listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The TXT values of `name` (blocking, over UDP); none for a name that does not exist.
    pub fn lookup_txt(&self, name: &str) -> anyhow::Result<Vec<String>> {
        match crate::pebble::dns::query_txt(self.addr, name) {
            Err(e) if e.to_string().contains("rcode 3") => Ok(Vec::new()),
            other => other,
        }
    }
}

/// Forwards DNS over UDP from `listen` to `upstream`, one datagram at a time, on a thread of its
/// own (it outlives the runtime of the test that started it); stops when dropped.
#[derive(Debug)]
struct Relay {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<Relay> {
        use std::sync::atomic::Ordering;
        let socket = std::net::UdpSocket::bind(listen)
            .with_context(|| format!("binding the DNS relay to {listen}"))?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name(format!("dns-relay-{listen}"))
            .spawn(move || {
                let mut buf = [0u8; 65_535];
                while !stopped.load(Ordering::Relaxed) {
                    let Ok((n, client)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let forward = || -> std::io::Result<Vec<u8>> {
                        let out = std::net::UdpSocket::bind("127.0.0.1:0")?;
                        out.set_read_timeout(Some(Duration::from_secs(2)))?;
                        out.send_to(&buf[..n], upstream)?;
                        let mut answer = vec![0u8; 65_535];
                        let m = out.recv(&mut answer)?;
                        answer.truncate(m);
                        Ok(answer)
                    };
                    if let Ok(answer) = forward() {
                        let _ = socket.send_to(&answer, client);
                    }
                }
            })?;
        Ok(Relay { stop })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
