//! RFC 2136 dynamic updates, signed with TSIG (RFC 8945), on hickory's DNS client.
//!
//! Present adds one TXT value (an "add to an RRset" update: other values stay); cleanup deletes
//! exactly that value ("delete an RR from an RRset").

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use futures::future::BoxFuture;
use hickory_net::DnsMultiplexer;
use hickory_net::client::{Client, ClientHandle};
use hickory_net::proto::op::ResponseCode;
use hickory_net::proto::rr::rdata::TXT;
use hickory_net::proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_net::proto::rr::{DNSClass, Name, RData, Record, RecordSet, TSigner};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;

use super::{Dns01Error, Dns01Provider};
use crate::api::acme::{AcmeIssuerDns01ProviderRfc2136, Rfc2136Protocol};

/// TTL of the TXT records (cert-manager uses 60 s as well).
const TTL: u32 = 60;
const TIMEOUT: Duration = Duration::from_secs(10);
/// Allowed clock difference for TSIG (RFC 8945 recommends 300 s).
const FUDGE: u16 = 300;

pub struct Rfc2136 {
    server: SocketAddr,
    protocol: Rfc2136Protocol,
    signer: Option<TSigner>,
}

/// Which update to send.
#[derive(Clone, Copy)]
enum Update {
    Add,
    Remove,
}

/// cert-manager's algorithm names (case-insensitive; `HMACMD5` when empty) → hickory's.
pub fn tsig_algorithm(name: Option<&str>) -> Result<TsigAlgorithm, Dns01Error> {
    let name = name.unwrap_or("").trim().to_ascii_uppercase();
    let algorithm = match name.as_str() {
        "" | "HMACMD5" => TsigAlgorithm::HmacMd5,
        "HMACSHA1" => TsigAlgorithm::HmacSha1,
        "HMACSHA224" => TsigAlgorithm::HmacSha224,
        "HMACSHA256" => TsigAlgorithm::HmacSha256,
        "HMACSHA384" => TsigAlgorithm::HmacSha384,
        "HMACSHA512" => TsigAlgorithm::HmacSha512,
        other => {
            return Err(Dns01Error::Config(format!(
                "unknown TSIG algorithm {other:?} (expected HMACMD5, HMACSHA1, HMACSHA256 or HMACSHA512)"
            )));
        }
    };
    if !algorithm.supported() {
        let shown = if name.is_empty() {
            "HMACMD5 (the default)"
        } else {
            name.as_str()
        };
        return Err(Dns01Error::Config(format!(
            "TSIG algorithm {shown} is not supported by certsmith: use HMACSHA256, HMACSHA384 or HMACSHA512"
        )));
    }
    Ok(algorithm)
}

/// `host[:port]`, `[v6]:port` or a bare IPv6 address; port 53 by default.
pub fn split_nameserver(text: &str) -> Result<(String, u16), Dns01Error> {
    let bad = || Dns01Error::Config(format!("rfc2136 nameserver {text:?} is not host[:port]"));
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, rest) = rest.split_once(']').ok_or_else(bad)?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if rest.is_empty() => 53,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match text.matches(':').count() {
        0 => Ok((text.to_owned(), 53)),
        1 => {
            let (host, port) = text.split_once(':').ok_or_else(bad)?;
            Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
        }
        _ => Ok((text.to_owned(), 53)), // a bare IPv6 address
    }
}

impl Rfc2136 {
    /// Builds the provider; `secret` is the base64 TSIG key from `tsigSecretSecretRef`.
    pub async fn new(
        config: &AcmeIssuerDns01ProviderRfc2136,
        secret: Option<&str>,
    ) -> Result<Rfc2136, Dns01Error> {
        let (host, port) = split_nameserver(&config.nameserver)?;
        let server = match host.parse() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| Dns01Error::Transient(format!("resolving {host}: {e}")))?
                .next()
                .ok_or_else(|| Dns01Error::Transient(format!("{host} has no address")))?,
        };
        let key_name = config.tsig_key_name.as_deref().filter(|k| !k.is_empty());
        let signer = match (key_name, secret) {
            (Some(key_name), Some(secret)) => {
                let algorithm = tsig_algorithm(config.tsig_algorithm.as_deref())?;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(secret.trim())
                    .map_err(|_| {
                        Dns01Error::Secret("the TSIG secret is not valid base64".to_owned())
                    })?;
                let key_name = Name::from_ascii(key_name).map_err(|e| {
                    Dns01Error::Config(format!("tsigKeyName {key_name:?} is not a DNS name: {e}"))
                })?;
                Some(
                    TSigner::new(key, algorithm, key_name, FUDGE)
                        .map_err(|e| Dns01Error::Config(format!("TSIG: {e}")))?,
                )
            }
            (None, None) => None,
            _ => {
                return Err(Dns01Error::Config(
                    "rfc2136 needs both tsigKeyName and tsigSecretSecretRef, or neither".to_owned(),
                ));
            }
        };
        Ok(Rfc2136 {
            server,
            protocol: config.protocol.unwrap_or_default(),
            signer,
        })
    }

    async fn client(
        &self,
    ) -> Result<(Client<TokioRuntimeProvider>, tokio::task::JoinHandle<()>), String> {
        let server = self.server;
        Ok(match self.protocol {
            Rfc2136Protocol::UDP => {
                let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
                    .with_timeout(Some(TIMEOUT))
                    .with_signer(self.signer.clone())
                    .build();
                let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
                (client, spawn(background))
            }
            Rfc2136Protocol::TCP => {
                let (connect, handle) = TcpClientStream::new(
                    server,
                    None,
                    Some(TIMEOUT),
                    TokioRuntimeProvider::default(),
                );
                let stream = connect.await.map_err(|e| e.to_string())?;
                let mut multiplexer = DnsMultiplexer::new(stream, handle).with_timeout(TIMEOUT);
                if let Some(signer) = &self.signer {
                    multiplexer = multiplexer.with_signer(signer.clone());
                }
                let (client, background) = Client::<TokioRuntimeProvider>::from_sender(multiplexer);
                (client, spawn(background))
            }
        })
    }

    /// Sends one update and checks the response code.
    async fn update(
        &self,
        update: Update,
        fqdn: &str,
        zone: &str,
        value: &str,
    ) -> Result<(), Dns01Error> {
        let what = match update {
            Update::Add => "adding the TXT record",
            Update::Remove => "removing the TXT record",
        };
        let server = self.server;
        let parse = |text: &str| {
            Name::from_ascii(text)
                .map_err(|e| Dns01Error::Config(format!("{text:?} is not a DNS name: {e}")))
        };
        let (record_name, zone_name) = (parse(fqdn)?, parse(zone)?);
        if !zone_name.zone_of(&record_name) {
            return Err(Dns01Error::Config(format!(
                "{what} {fqdn}: the name is not in zone {zone}"
            )));
        }
        let ttl = match update {
            Update::Add => TTL,
            Update::Remove => 0,
        };
        let mut record = Record::from_rdata(
            record_name,
            ttl,
            RData::TXT(TXT::new(vec![value.to_owned()])),
        );
        record.dns_class = DNSClass::IN;
        let mut rrset = RecordSet::from(record);
        rrset.set_dns_class(DNSClass::IN);

        let (mut client, task) = self
            .client()
            .await
            .map_err(|e| Dns01Error::Transient(format!("{what} {fqdn} at {server}: {e}")))?;
        let response = match update {
            Update::Add => client.append(rrset, zone_name, false).await,
            Update::Remove => client.delete_by_rdata(rrset, zone_name).await,
        };
        task.abort();
        let response = response.map_err(|e| {
            let text = e.to_string();
            if text.to_ascii_lowercase().contains("tsig") || text.contains("sig") {
                Dns01Error::Rejected(format!("{what} {fqdn} at {server}: {text}"))
            } else {
                Dns01Error::Transient(format!("{what} {fqdn} at {server}: {text}"))
            }
        })?;
        match response.metadata.response_code {
            ResponseCode::NoError => Ok(()),
            code => Err(Dns01Error::Rejected(format!(
                "{what} {fqdn} in zone {zone} at {server}: the server answered {code}{}",
                match code {
                    ResponseCode::Refused => " (is the TSIG key allowed to update the zone?)",
                    ResponseCode::NotAuth => " (wrong TSIG key or algorithm, or not authoritative)",
                    ResponseCode::NotZone => " (the name is not in the zone)",
                    _ => "",
                }
            ))),
        }
    }
}

fn spawn<F>(background: F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future + Send + 'static,
{
    tokio::spawn(async move {
        background.await;
    })
}

impl Dns01Provider for Rfc2136 {
    fn present<'a>(
        &'a self,
        fqdn: &'a str,
        zone: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), Dns01Error>> {
        Box::pin(self.update(Update::Add, fqdn, zone, value))
    }

    fn cleanup<'a>(
        &'a self,
        fqdn: &'a str,
        zone: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), Dns01Error>> {
        Box::pin(self.update(Update::Remove, fqdn, zone, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsig_algorithm_names() {
        assert_eq!(
            tsig_algorithm(Some("HMACSHA256")).unwrap(),
            TsigAlgorithm::HmacSha256
        );
        assert_eq!(
            tsig_algorithm(Some("hmacsha512")).unwrap(),
            TsigAlgorithm::HmacSha512
        );
        assert_eq!(
            tsig_algorithm(Some("HMACSHA384")).unwrap(),
            TsigAlgorithm::HmacSha384
        );
        // cert-manager's default (MD5) and SHA-1 are known names, but hickory cannot sign with
        // them: a clear configuration error.
        let md5 = tsig_algorithm(None).unwrap_err().to_string();
        assert!(md5.contains("HMACMD5 (the default)"), "{md5}");
        let sha1 = tsig_algorithm(Some("HMACSHA1")).unwrap_err().to_string();
        assert!(sha1.contains("HMACSHA1 is not supported"), "{sha1}");
        let unknown = tsig_algorithm(Some("HMACFOO")).unwrap_err().to_string();
        assert!(unknown.contains("unknown"), "{unknown}");
    }

    #[test]
    fn nameservers() {
        let ns = |s: &str| split_nameserver(s).unwrap();
        assert_eq!(ns("10.0.0.1"), ("10.0.0.1".into(), 53));
        assert_eq!(ns("10.0.0.1:5353"), ("10.0.0.1".into(), 5353));
        assert_eq!(ns("ns.example.com:53"), ("ns.example.com".into(), 53));
        assert_eq!(ns("[2001:db8::1]:54"), ("2001:db8::1".into(), 54));
        assert_eq!(ns("2001:db8::1"), ("2001:db8::1".into(), 53));
        assert!(split_nameserver("").is_err());
        assert!(split_nameserver("host:port").is_err());
    }
}
