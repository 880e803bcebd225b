//! Plain DNS queries for DNS-01: the zone of a name (SOA walk), CNAME following, and the
//! propagation check. Every query goes straight to one server, without a cache, so a record that
//! just appeared is seen at once.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_net::client::Client;
use hickory_net::proto::op::{DnsRequestOptions, DnsResponse, Query, ResponseCode};
use hickory_net::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::{DnsHandle, DnsMultiplexer};

use super::{Dns01Error, Dns01Settings};

/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Most CNAMEs followed from `_acme-challenge.<domain>`.
const MAX_CNAMES: usize = 10;

/// The servers for zone lookups and CNAME following: the configured recursive nameservers, or
/// those of `/etc/resolv.conf`.
pub fn recursive_servers(settings: &Dns01Settings) -> Result<Vec<SocketAddr>, Dns01Error> {
    if !settings.recursive_nameservers.is_empty() {
        return Ok(settings.recursive_nameservers.clone());
    }
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let servers = resolv_conf_servers(&text);
    if servers.is_empty() {
        return Err(Dns01Error::Config(
            "no recursive nameservers: set --dns01-recursive-nameservers".to_owned(),
        ));
    }
    Ok(servers)
}

/// The `nameserver` lines of a resolv.conf, on port 53.
pub fn resolv_conf_servers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        .filter_map(|addr| IpAddr::from_str(addr.split('%').next()?).ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

fn name(text: &str) -> Result<Name, Dns01Error> {
    Name::from_ascii(text)
        .map_err(|e| Dns01Error::Config(format!("{text:?} is not a DNS name: {e}")))
}

/// Sends one query to `server` (UDP, then TCP when the answer was truncated).
pub async fn query(
    server: SocketAddr,
    qname: &Name,
    qtype: RecordType,
    recursion: bool,
) -> Result<DnsResponse, Dns01Error> {
    let mut q = Query::query(qname.clone(), qtype);
    q.set_query_class(DNSClass::IN);
    let mut options = DnsRequestOptions::default();
    options.recursion_desired = recursion;
    options.use_edns = true;
    let failed = |e: &dyn std::fmt::Display| {
        Dns01Error::Transient(format!("querying {server} for {qname} {qtype}: {e}"))
    };

    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(QUERY_TIMEOUT))
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let task = tokio::spawn(background);
    let response = first(client.lookup(q.clone(), options)).await;
    task.abort();
    let response = response.map_err(|e| failed(&e))?;
    if !response.metadata.truncation {
        return Ok(response);
    }

    let (connect, handle) = TcpClientStream::new(
        server,
        None,
        Some(QUERY_TIMEOUT),
        TokioRuntimeProvider::default(),
    );
    let stream = connect.await.map_err(|e| failed(&e))?;
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(
        DnsMultiplexer::new(stream, handle).with_timeout(QUERY_TIMEOUT),
    );
    let task = tokio::spawn(background);
    let response = first(client.lookup(q, options)).await;
    task.abort();
    response.map_err(|e| failed(&e))
}

/// The first response of a response stream.
async fn first<S, E>(mut stream: S) -> Result<DnsResponse, String>
where
    S: futures::Stream<Item = Result<DnsResponse, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures::StreamExt;
    match stream.next().await {
        Some(Ok(response)) => Ok(response),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("no response".to_owned()),
    }
}

/// What an SOA answer for `candidate` says about the zone: `Some(zone)` when `candidate` is a
/// zone apex (an SOA in the answers) or the server named the enclosing zone (an SOA in the
/// authority section of a negative answer).
pub fn zone_from_answer(
    candidate: &Name,
    answers: &[Record],
    authorities: &[Record],
) -> Option<Name> {
    let soa_owner = |records: &[Record]| {
        records
            .iter()
            .find(|r| matches!(r.data, RData::SOA(_)))
            .map(|r| r.name.clone())
    };
    if let Some(owner) = soa_owner(answers)
        && owner.to_lowercase() == candidate.to_lowercase()
    {
        return Some(owner);
    }
    soa_owner(authorities).filter(|owner| owner.zone_of(candidate))
}

/// The zone of `fqdn`: walks from `fqdn` towards the root asking for SOA records.
pub async fn find_zone(fqdn: &str, servers: &[SocketAddr]) -> Result<String, Dns01Error> {
    let mut candidate = name(fqdn)?;
    candidate.set_fqdn(true);
    let mut last_error = None;
    while !candidate.is_root() {
        for server in servers {
            match query(*server, &candidate, RecordType::SOA, true).await {
                Ok(response) => {
                    let code = response.metadata.response_code;
                    if let Some(zone) =
                        zone_from_answer(&candidate, &response.answers, &response.authorities)
                    {
                        return Ok(zone.to_ascii().to_lowercase());
                    }
                    if !matches!(code, ResponseCode::NoError | ResponseCode::NXDomain) {
                        last_error = Some(format!("{server} answered {code}"));
                        continue;
                    }
                    break;
                }
                Err(e) => last_error = Some(e.to_string()),
            }
        }
        candidate = candidate.base_name();
    }
    Err(Dns01Error::Transient(match last_error {
        Some(e) => format!("could not find the zone of {fqdn}: {e}"),
        None => format!("could not find the zone of {fqdn}: no SOA record found"),
    }))
}

/// The target of the CNAME at `owner` in `answers`, if any.
pub fn cname_target(owner: &Name, answers: &[Record]) -> Option<Name> {
    answers.iter().find_map(|r| match &r.data {
        RData::CNAME(target) if r.name.to_lowercase() == owner.to_lowercase() => {
            Some(target.0.clone())
        }
        _ => None,
    })
}

/// Follows CNAMEs from `fqdn` (`cnameStrategy: Follow`); returns the final name.
pub async fn follow_cnames(fqdn: &str, servers: &[SocketAddr]) -> Result<String, Dns01Error> {
    let mut current = name(fqdn)?;
    current.set_fqdn(true);
    for _ in 0..MAX_CNAMES {
        let mut next = None;
        let mut last_error = None;
        for server in servers {
            match query(*server, &current, RecordType::CNAME, true).await {
                Ok(response) => {
                    next = cname_target(&current, &response.answers);
                    last_error = None;
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        if let Some(e) = last_error {
            return Err(e);
        }
        match next {
            Some(target) => current = target,
            None => return Ok(current.to_ascii().to_lowercase()),
        }
    }
    Err(Dns01Error::Config(format!(
        "more than {MAX_CNAMES} CNAMEs from {fqdn}"
    )))
}

/// Whether the TXT answers for `fqdn` hold `value`.
pub fn txt_has_value(fqdn: &Name, answers: &[Record], value: &str) -> bool {
    answers.iter().any(|r| match &r.data {
        RData::TXT(txt) if r.name.to_lowercase() == fqdn.to_lowercase() => {
            let joined: Vec<u8> = txt
                .txt_data
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            joined == value.as_bytes()
        }
        _ => false,
    })
}

/// The addresses of the zone's authoritative nameservers (port 53).
async fn authoritative_servers(
    zone: &Name,
    servers: &[SocketAddr],
) -> Result<Vec<SocketAddr>, Dns01Error> {
    let mut last_error = None;
    for server in servers {
        let response = match query(*server, zone, RecordType::NS, true).await {
            Ok(r) => r,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        let hosts: Vec<Name> = response
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(ns) => Some(ns.0.clone()),
                _ => None,
            })
            .collect();
        let mut addresses = Vec::new();
        for host in hosts {
            // Glue first, then a lookup through the same server.
            let mut found: Vec<IpAddr> = response
                .additionals
                .iter()
                .filter(|r| r.name.to_lowercase() == host.to_lowercase())
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            if found.is_empty()
                && let Ok(r) = query(*server, &host, RecordType::A, true).await
            {
                found.extend(r.answers.iter().filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    _ => None,
                }));
            }
            addresses.extend(found.into_iter().map(|ip| SocketAddr::new(ip, 53)));
        }
        if !addresses.is_empty() {
            return Ok(addresses);
        }
    }
    Err(last_error.unwrap_or_else(|| {
        Dns01Error::Transient(format!("found no authoritative nameservers of {zone}"))
    }))
}

/// Whether `value` is visible at `fqdn`: on every authoritative nameserver of `zone`, or with
/// `recursive_only` on every recursive nameserver. `Ok(Err(why))` when not yet.
pub async fn check(
    fqdn: &str,
    zone: &str,
    value: &str,
    settings: &Dns01Settings,
) -> Result<Result<(), String>, Dns01Error> {
    let fqdn_name = name(fqdn)?;
    let recursive = recursive_servers(settings)?;
    let (servers, recursion) = if settings.recursive_only {
        (recursive, true)
    } else {
        (
            authoritative_servers(&name(zone)?, &recursive).await?,
            false,
        )
    };
    for server in servers {
        let response = query(server, &fqdn_name, RecordType::TXT, recursion).await?;
        if !txt_has_value(&fqdn_name, &response.answers, value) {
            return Ok(Err(format!(
                "DNS record for {fqdn:?} not yet propagated (nameserver {server})"
            )));
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_net::proto::rr::rdata::{CNAME, SOA, TXT};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn soa(owner: &str) -> Record {
        Record::from_rdata(
            n(owner),
            60,
            RData::SOA(SOA::new(
                n("ns1.example."),
                n("admin.example."),
                1,
                60,
                60,
                60,
                60,
            )),
        )
    }

    #[test]
    fn zone_from_soa_answers() {
        let apex = n("example.com.");
        assert_eq!(
            zone_from_answer(&apex, &[soa("example.com.")], &[]),
            Some(apex.clone())
        );
        // A name below the apex: the negative answer names the zone in its authority section.
        let below = n("_acme-challenge.www.example.com.");
        assert_eq!(
            zone_from_answer(&below, &[], &[soa("example.com.")]),
            Some(apex)
        );
        // An SOA of an unrelated zone does not count.
        assert_eq!(zone_from_answer(&below, &[], &[soa("other.org.")]), None);
        assert_eq!(zone_from_answer(&below, &[], &[]), None);
    }

    #[test]
    fn cnames_and_txt_values() {
        let owner = n("_acme-challenge.example.com.");
        let cname = Record::from_rdata(
            owner.clone(),
            60,
            RData::CNAME(CNAME(n("example.com.acme.other.org."))),
        );
        assert_eq!(
            cname_target(&owner, &[cname]),
            Some(n("example.com.acme.other.org."))
        );
        assert_eq!(cname_target(&owner, &[]), None);
        let txt = |v: &str| {
            Record::from_rdata(owner.clone(), 60, RData::TXT(TXT::new(vec![v.to_owned()])))
        };
        assert!(txt_has_value(&owner, &[txt("other"), txt("abc")], "abc"));
        assert!(!txt_has_value(&owner, &[txt("other")], "abc"));
    }

    #[test]
    fn resolv_conf() {
        let text =
            "# comment\nnameserver 10.0.0.10\nsearch svc.cluster.local\nnameserver fe80::1%eth0\n";
        assert_eq!(
            resolv_conf_servers(text),
            vec![
                "10.0.0.10:53".parse::<SocketAddr>().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }
}
