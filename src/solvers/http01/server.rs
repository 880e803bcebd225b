//! The solver's HTTP server (`certsmith solver`), which runs in the solver Pod and answers the
//! ACME server's validation request with the key authorization. Behaves as cert-manager's
//! `acmesolver`: `/` and `/healthz` answer 200, the challenge path answers the key when host and
//! token match, everything else 404.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::objects::CHALLENGE_PATH_PREFIX;

/// cert-manager's acmesolver waits this long for request headers (its `ReadHeaderTimeout`):
/// long enough for slow validators, short enough that idle connections do not pile up.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);

/// What one solver serves.
#[derive(Clone)]
pub struct SolverConfig {
    /// The identifier: a DNS name or an IP address.
    pub domain: String,
    pub token: String,
    /// The key authorization.
    pub key: String,
}

// The key authorization stays out of debug output and logs.
impl std::fmt::Debug for SolverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolverConfig")
            .field("domain", &self.domain)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// The answer to one request: status and body.
pub fn respond(config: &SolverConfig, host: Option<&str>, path: &str) -> (StatusCode, Bytes) {
    if path == "/" || path == "/healthz" {
        return (StatusCode::OK, Bytes::new());
    }
    let token_matches = path
        .strip_prefix(CHALLENGE_PATH_PREFIX)
        .is_some_and(|token| token == config.token);
    let host_matches = host
        .map(strip_port)
        .is_some_and(|h| h.eq_ignore_ascii_case(strip_brackets(&config.domain)));
    if token_matches && host_matches {
        (StatusCode::OK, Bytes::from(config.key.clone()))
    } else {
        (StatusCode::NOT_FOUND, Bytes::new())
    }
}

/// The host of a `Host` header value without its port: `example.com:80` → `example.com`,
/// `[2001:db8::1]:80` → `2001:db8::1`.
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    match host.rsplit_once(':') {
        // More than one colon without brackets: an IPv6 address, which has no port here.
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

async fn handle(
    config: Arc<SolverConfig>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host());
    let (status, body) = respond(&config, host, req.uri().path());
    tracing::debug!(
        method = %req.method(),
        path = req.uri().path(),
        host,
        status = status.as_u16(),
        "solver request"
    );
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// Serves `config` on `listener` until `shutdown` completes. Each connection is served on its
/// own task; connections still open at shutdown are dropped.
pub async fn serve(
    listener: TcpListener,
    config: SolverConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: pause instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let config = config.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(config.clone(), req));
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "solver connection");
            }
        });
    }
}

/// Binds `addr` and serves until SIGTERM or SIGINT: the entry point of `certsmith solver`.
pub async fn run(addr: SocketAddr, config: SolverConfig) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding {addr}: {e}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        domain = config.domain,
        token = config.token,
        "serving the HTTP-01 challenge"
    );
    serve(listener, config, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn config() -> SolverConfig {
        SolverConfig {
            domain: "example.com".into(),
            token: "tok".into(),
            key: "tok.thumb".into(),
        }
    }

    #[test]
    fn routing() {
        let c = config();
        let ok = |host, path| respond(&c, host, path);
        assert_eq!(ok(None, "/"), (StatusCode::OK, Bytes::new()));
        assert_eq!(ok(None, "/healthz").0, StatusCode::OK);
        let key = (StatusCode::OK, Bytes::from("tok.thumb"));
        assert_eq!(
            ok(Some("example.com"), "/.well-known/acme-challenge/tok"),
            key
        );
        assert_eq!(
            ok(Some("example.com:80"), "/.well-known/acme-challenge/tok"),
            key
        );
        assert_eq!(
            ok(Some("EXAMPLE.com"), "/.well-known/acme-challenge/tok"),
            key
        );
        for (host, path) in [
            (Some("other.com"), "/.well-known/acme-challenge/tok"),
            (None, "/.well-known/acme-challenge/tok"),
            (Some("example.com"), "/.well-known/acme-challenge/other"),
            (Some("example.com"), "/.well-known/acme-challenge/x/tok"),
            (Some("example.com"), "/.well-known/acme-challenge/"),
            (Some("example.com"), "/tok"),
        ] {
            assert_eq!(ok(host, path).0, StatusCode::NOT_FOUND, "{host:?} {path}");
        }
        let ip = SolverConfig {
            domain: "2001:db8::1".into(),
            ..config()
        };
        assert_eq!(
            respond(
                &ip,
                Some("[2001:db8::1]:80"),
                "/.well-known/acme-challenge/tok"
            )
            .0,
            StatusCode::OK
        );
        assert_eq!(
            respond(
                &ip,
                Some("[2001:db8::1]"),
                "/.well-known/acme-challenge/tok"
            )
            .0,
            StatusCode::OK
        );
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("192.0.2.1:80"), "192.0.2.1");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("::1"), "::1");
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert!(!format!("{:?}", config()).contains("thumb"));
    }

    async fn raw_request(addr: SocketAddr, request: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_over_http() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, config(), async {
            let _ = stopped.await;
        }));
        let answer = raw_request(
            addr,
            "GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\ntok.thumb"), "{answer}");
        let answer = raw_request(
            addr,
            "GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: wrong.example\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
        let answer = raw_request(addr, "GET /healthz HTTP/1.0\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
