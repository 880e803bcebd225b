//! The self-check: before asking the ACME server to validate, fetch the challenge URL the way
//! the ACME server will, and see the key authorization. Follows cert-manager's client: 10 s per
//! check, no keep-alive, redirects followed (at most 10, HTTPS targets without certificate
//! verification, as ACME servers do for HTTP-01), at most 1 MiB of body read, and names resolved
//! through the configured nameservers when there are any.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use http_body_util::{BodyExt, Empty};
use hyper::header::{ACCEPT, CONNECTION, HOST, LOCATION, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::objects::challenge_path;
use super::{Http01Error, Http01Settings, SelfCheck};
use crate::api::Challenge;
use crate::api::challenge::ChallengeType;

/// How long one self-check may take, redirects included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How many redirects are followed (Go's default, which cert-manager keeps).
const MAX_REDIRECTS: usize = 10;
/// How much of the body is read; a longer body cannot be a key authorization anyway.
const MAX_BODY: usize = 1 << 20;
/// How much of an unexpected body a failure reason quotes.
const QUOTED_BODY: usize = 24;

/// Checks once that the challenge URL answers 200 with exactly the key authorization.
pub async fn self_check(
    challenge: &Challenge,
    settings: &Http01Settings,
) -> Result<SelfCheck, Http01Error> {
    if challenge.spec.type_ != ChallengeType::Http01 {
        return Err(Http01Error::NotHttp01);
    }
    let url = challenge_url(&challenge.spec.dns_name, &challenge.spec.token);
    let dns = Dns::new(&settings.self_check_nameservers)?;
    let fetched = tokio::time::timeout(TIMEOUT, fetch(&dns, &url)).await;
    Ok(judge(fetched, &url, challenge.spec.key.as_bytes()))
}

/// `http://<identifier>/.well-known/acme-challenge/<token>`, with an IPv6 literal bracketed.
pub fn challenge_url(identifier: &str, token: &str) -> String {
    let host = match identifier.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => identifier.to_owned(),
    };
    format!("http://{host}{}", challenge_path(token))
}

fn judge(
    fetched: Result<Result<(StatusCode, Bytes), String>, tokio::time::error::Elapsed>,
    url: &str,
    key: &[u8],
) -> SelfCheck {
    match fetched {
        Err(_) => SelfCheck::Failed(format!(
            "failed to perform self check GET request '{url}': no answer within {}s",
            TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => SelfCheck::Failed(format!(
            "failed to perform self check GET request '{url}': {e}"
        )),
        Ok(Ok((status, _))) if status != StatusCode::OK => SelfCheck::Failed(format!(
            "wrong status code '{}', expected '200'",
            status.as_u16()
        )),
        Ok(Ok((_, body))) if body != key => SelfCheck::Failed(format!(
            // Unlike cert-manager's message, without the expected key authorization.
            "did not get expected response when querying endpoint, got: {}",
            quote(&body)
        )),
        Ok(Ok(_)) => SelfCheck::Passed,
    }
}

/// The start of an unexpected body, printable and short.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(QUOTED_BODY)]);
    let mut quoted: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned();
    quoted = format!("{quoted:?}");
    if body.len() > QUOTED_BODY {
        quoted.push_str("... (truncated)");
    }
    quoted
}

/// Where names are resolved.
enum Dns {
    /// The operating system's resolver (`getaddrinfo`: `/etc/hosts`, `resolv.conf`, nsswitch).
    System,
    Servers(Box<TokioResolver>),
}

impl Dns {
    fn new(nameservers: &[SocketAddr]) -> Result<Dns, Http01Error> {
        if nameservers.is_empty() {
            return Ok(Dns::System);
        }
        let servers = nameservers
            .iter()
            .map(|addr| {
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = addr.port();
                        c
                    })
                    .collect();
                NameServerConfig::new(addr.ip(), true, connections)
            })
            .collect();
        let mut builder = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        );
        // Fresh answers each time: a check repeats until DNS changes, so nothing is cached.
        builder.options_mut().cache_size = 0;
        builder
            .build()
            .map(|resolver| Dns::Servers(Box::new(resolver)))
            .map_err(|e| Http01Error::Resolver(e.to_string()))
    }

    async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let addrs: Vec<SocketAddr> = match self {
            Dns::System => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| format!("lookup {host}: {e}"))?
                .collect(),
            Dns::Servers(resolver) => resolver
                .lookup_ip(host)
                .await
                .map_err(|e| format!("lookup {host}: {e}"))?
                .iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
        };
        if addrs.is_empty() {
            return Err(format!("lookup {host}: no such host"));
        }
        Ok(addrs)
    }
}

/// One hop of a request: where to connect and what to ask.
#[derive(Debug, PartialEq)]
struct Target {
    https: bool,
    /// Without brackets.
    host: String,
    port: u16,
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(format!("unsupported protocol scheme \"{other}\"")),
            None => return Err("URL without a scheme".to_owned()),
        };
        let host = uri.host().ok_or("URL without a host")?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Ok(Target {
            https,
            host: host.to_owned(),
            port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
            path_and_query: uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
        })
    }

    fn url(&self) -> String {
        format!(
            "{}://{}{}",
            if self.https { "https" } else { "http" },
            self.authority(),
            self.path_and_query
        )
    }

    /// The `Host` header: the port only when it is not the scheme's default.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default_port = if self.https { 443 } else { 80 };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The target of a redirect `location` given by a response to this target (RFC 3986 §5.2,
    /// without dot-segment removal, which servers do not rely on for ACME paths).
    fn redirect(&self, location: &str) -> Result<Target, String> {
        if location.contains("://") {
            return Target::parse(location);
        }
        let scheme = if self.https { "https" } else { "http" };
        if let Some(rest) = location.strip_prefix("//") {
            return Target::parse(&format!("{scheme}://{rest}"));
        }
        let path = if location.starts_with('/') {
            location.to_owned()
        } else {
            let path = self.path_and_query.split('?').next().unwrap_or("/");
            let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            format!("{dir}/{location}")
        };
        Target::parse(&format!("{scheme}://{}{path}", self.authority()))
    }
}

/// GETs `url`, following redirects; the final status and the start of its body.
async fn fetch(dns: &Dns, url: &str) -> Result<(StatusCode, Bytes), String> {
    let mut target = Target::parse(url)?;
    for hop in 0..=MAX_REDIRECTS {
        let (status, location, body) = get_once(dns, &target).await.map_err(|e| {
            if hop == 0 {
                e
            } else {
                format!("after a redirect to '{}': {e}", target.url())
            }
        })?;
        match location {
            Some(location) if status.is_redirection() && status != StatusCode::NOT_MODIFIED => {
                target = target
                    .redirect(&location)
                    .map_err(|e| format!("redirect to {location:?}: {e}"))?;
            }
            _ => return Ok((status, body)),
        }
    }
    Err(format!("stopped after {MAX_REDIRECTS} redirects"))
}

/// One request on a fresh connection: status, `Location` and body.
async fn get_once(
    dns: &Dns,
    target: &Target,
) -> Result<(StatusCode, Option<String>, Bytes), String> {
    let addrs = dns.lookup(&target.host, target.port).await?;
    let mut last_error = String::new();
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("dial tcp {addr}: {e}"),
        }
    }
    let stream = stream.ok_or(last_error)?;
    let request = Request::get(target.path_and_query.as_str())
        .header(HOST, target.authority())
        .header(
            USER_AGENT,
            concat!(
                "certsmith/",
                env!("CARGO_PKG_VERSION"),
                " (HTTP-01 self-check)"
            ),
        )
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("building the request: {e}"))?;
    if target.https {
        let name = ServerName::try_from(target.host.clone())
            .map_err(|e| format!("TLS server name {:?}: {e}", target.host))?;
        let tls = tokio_rustls::TlsConnector::from(insecure_tls_config()?)
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS handshake with {}: {e}", target.authority()))?;
        send(tls, request).await
    } else {
        send(stream, request).await
    }
}

async fn send<S>(
    stream: S,
    request: Request<Empty<Bytes>>,
) -> Result<(StatusCode, Option<String>, Bytes), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    // The connection task ends with the response (the request asks to close).
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let mut body = response.into_body();
        let mut data = BytesMut::new();
        while data.len() < MAX_BODY {
            match body.frame().await {
                None => break,
                Some(frame) => {
                    if let Ok(chunk) = frame.map_err(|e| e.to_string())?.into_data() {
                        data.extend_from_slice(&chunk);
                    }
                }
            }
        }
        data.truncate(MAX_BODY);
        Ok((status, location, data.freeze()))
    }
    .await;
    driver.abort();
    result
}

/// TLS for redirect targets: like an ACME server validating HTTP-01 (RFC 8555 §8.3), and like
/// cert-manager's self-check, the certificate is not verified (the point of the challenge is
/// that no valid certificate exists yet); the handshake signatures still are.
fn insecure_tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solvers::http01::server::{SolverConfig, serve};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn urls() {
        assert_eq!(
            challenge_url("example.com", "t"),
            "http://example.com/.well-known/acme-challenge/t"
        );
        assert_eq!(
            challenge_url("2001:db8::1", "t"),
            "http://[2001:db8::1]/.well-known/acme-challenge/t"
        );
        assert_eq!(
            challenge_url("192.0.2.1", "t"),
            "http://192.0.2.1/.well-known/acme-challenge/t"
        );
        let t = Target::parse("http://[2001:db8::1]/a/b?c").unwrap();
        assert_eq!(
            t,
            Target {
                https: false,
                host: "2001:db8::1".into(),
                port: 80,
                path_and_query: "/a/b?c".into()
            }
        );
        assert_eq!(t.authority(), "[2001:db8::1]");
        assert_eq!(t.url(), "http://[2001:db8::1]/a/b?c");
        let r = t.redirect("https://example.com:8443/x").unwrap();
        assert_eq!(
            (r.https, r.port, r.authority()),
            (true, 8443, "example.com:8443".into())
        );
        assert_eq!(t.redirect("/x").unwrap().url(), "http://[2001:db8::1]/x");
        assert_eq!(t.redirect("d").unwrap().url(), "http://[2001:db8::1]/a/d");
        assert_eq!(t.redirect("//other/p").unwrap().url(), "http://other/p");
        assert!(Target::parse("ftp://example.com/").is_err());
    }

    #[test]
    fn failure_reasons() {
        let url = "http://example.com/.well-known/acme-challenge/t";
        let ok = |status, body: &'static str| Ok(Ok((status, Bytes::from(body))));
        assert_eq!(
            judge(ok(StatusCode::OK, "key"), url, b"key"),
            SelfCheck::Passed
        );
        assert_eq!(
            judge(ok(StatusCode::NOT_FOUND, ""), url, b"key"),
            SelfCheck::Failed("wrong status code '404', expected '200'".into())
        );
        let SelfCheck::Failed(reason) = judge(
            ok(StatusCode::OK, "some other page\nthat is long"),
            url,
            b"secret-key",
        ) else {
            panic!("passed")
        };
        assert_eq!(
            reason,
            "did not get expected response when querying endpoint, got: \"some other page that is\"... (truncated)"
        );
        assert!(!reason.contains("secret-key"));
        let SelfCheck::Failed(reason) =
            judge(Ok(Err("dial tcp 1.2.3.4:80: refused".into())), url, b"k")
        else {
            panic!("passed")
        };
        assert_eq!(
            reason,
            format!(
                "failed to perform self check GET request '{url}': dial tcp 1.2.3.4:80: refused"
            )
        );
    }

    /// A server that answers every request with `response` (a raw HTTP/1.1 response head and
    /// body) built from the request's `Host` header.
    async fn raw_server(response: fn(&str) -> String) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = vec![0; 4096];
                let n = stream.read(&mut buf).await.unwrap();
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let host = request
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("host: ")
                            .or_else(|| l.strip_prefix("Host: "))
                    })
                    .unwrap_or("")
                    .to_owned();
                let _ = stream.write_all(response(&host).as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn fetches_from_a_solver_and_follows_redirects() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let solver = listener.local_addr().unwrap();
        let config = SolverConfig {
            domain: "127.0.0.1".into(),
            token: "tok".into(),
            key: "tok.thumb".into(),
        };
        tokio::spawn(serve(listener, config, std::future::pending()));
        let url = format!("http://{solver}/.well-known/acme-challenge/tok");
        let dns = Dns::new(&[]).unwrap();
        assert_eq!(
            fetch(&dns, &url).await.unwrap(),
            (StatusCode::OK, Bytes::from("tok.thumb"))
        );
        let wrong = format!("http://{solver}/.well-known/acme-challenge/other");
        assert_eq!(fetch(&dns, &wrong).await.unwrap().0, StatusCode::NOT_FOUND);

        // A redirect to the solver, with the Host header of the redirect target.
        static SOLVER: std::sync::OnceLock<SocketAddr> = std::sync::OnceLock::new();
        SOLVER.set(solver).unwrap();
        let redirector = raw_server(|_| {
            format!(
                "HTTP/1.1 301 Moved Permanently\r\nLocation: http://{}/.well-known/acme-challenge/tok\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                SOLVER.get().unwrap()
            )
        })
        .await;
        let url = format!("http://{redirector}/.well-known/acme-challenge/tok");
        assert_eq!(
            fetch(&dns, &url).await.unwrap(),
            (StatusCode::OK, Bytes::from("tok.thumb"))
        );

        let looping = raw_server(|host| {
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{host}/again\r\nContent-Length: 0\r\n\r\n"
            )
        })
        .await;
        assert_eq!(
            fetch(&dns, &format!("http://{looping}/"))
                .await
                .unwrap_err(),
            "stopped after 10 redirects"
        );
    }

    #[tokio::test]
    async fn self_check_through_a_nameserver() {
        // A nameserver that is not there: the lookup fails, and that is a failed check, not an
        // error.
        let gone = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut challenge: Challenge = serde_json::from_value(serde_json::json!({
            "apiVersion": "acme.cert-manager.io/v1", "kind": "Challenge",
            "metadata": {"name": "c", "namespace": "n"},
            "spec": {
                "url": "u", "authorizationURL": "a", "dnsName": "nowhere.invalid", "type": "HTTP-01",
                "token": "tok", "key": "tok.thumb",
                "solver": {"http01": {"ingress": {}}}, "issuerRef": {"name": "i"},
            },
        }))
        .unwrap();
        let mut settings = Http01Settings::new("img");
        settings.self_check_nameservers = vec![gone];
        let SelfCheck::Failed(reason) = self_check(&challenge, &settings).await.unwrap() else {
            panic!("passed")
        };
        assert!(reason.starts_with("failed to perform self check GET request 'http://nowhere.invalid/.well-known/acme-challenge/tok': "), "{reason}");

        // An IP identifier needs no DNS.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = SolverConfig {
            domain: "127.0.0.1".into(),
            token: "tok".into(),
            key: "tok.thumb".into(),
        };
        tokio::spawn(serve(listener, config, std::future::pending()));
        challenge.spec.dns_name = "127.0.0.1".into();
        // Port 80 is not ours to bind in a unit test; check the pieces self_check is made of.
        let dns = Dns::new(&settings.self_check_nameservers).unwrap();
        let url = format!("http://127.0.0.1:{port}/.well-known/acme-challenge/tok");
        let fetched = tokio::time::timeout(TIMEOUT, fetch(&dns, &url)).await;
        assert_eq!(judge(fetched, &url, b"tok.thumb"), SelfCheck::Passed);
        let fetched = tokio::time::timeout(TIMEOUT, fetch(&dns, &url)).await;
        assert!(matches!(
            judge(fetched, &url, b"other"),
            SelfCheck::Failed(_)
        ));
    }
}
