//! The controller's HTTP endpoints: `/metrics` on `--metrics-listen-address` and `/healthz`
//! (the process is alive) and `/readyz` (the API server answered and the controllers started) on
//! `--internal-healthz-listen-address`, as cert-manager's controller serves them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use super::metrics;

/// Which endpoints a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoints {
    Metrics,
    Health,
}

/// The answer to one request: status, content type and body.
pub fn respond(
    endpoints: Endpoints,
    registry: &Registry,
    path: &str,
) -> (StatusCode, &'static str, Bytes) {
    const TEXT: &str = "text/plain; charset=utf-8";
    match (endpoints, path) {
        (Endpoints::Metrics, "/metrics") => (
            StatusCode::OK,
            metrics::CONTENT_TYPE,
            Bytes::from(metrics::encode(registry)),
        ),
        (Endpoints::Health, "/healthz" | "/livez") => (StatusCode::OK, TEXT, Bytes::from("ok")),
        (Endpoints::Health, "/readyz") if metrics::is_ready() => {
            (StatusCode::OK, TEXT, Bytes::from("ok"))
        }
        (Endpoints::Health, "/readyz") => (
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            Bytes::from("not ready"),
        ),
        _ => (StatusCode::NOT_FOUND, TEXT, Bytes::from("not found")),
    }
}

/// Binds `addr` and serves `endpoints` in the background. A port that cannot be bound is logged,
/// not fatal: issuing certificates matters more than being scraped.
pub async fn spawn(addr: SocketAddr, endpoints: Endpoints, registry: Arc<Registry>) {
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%addr, %error, ?endpoints, "cannot listen; endpoints not served");
            return;
        }
    };
    tracing::info!(address = %addr, ?endpoints, "serving");
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let registry = registry.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let (status, content_type, body) =
                        respond(endpoints, &registry, req.uri().path());
                    let mut response = Response::new(Full::new(body));
                    *response.status_mut() = status;
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                    async move { Ok::<_, Infallible>(response) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!(%peer, %error, "metrics/health connection");
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let registry = metrics::registry();
        let (status, _, body) = respond(Endpoints::Metrics, &registry, "/metrics");
        assert_eq!(status, StatusCode::OK);
        assert!(String::from_utf8_lossy(&body).contains("certmanager_clock_time_seconds_gauge"));
        assert_eq!(
            respond(Endpoints::Health, &registry, "/healthz").0,
            StatusCode::OK
        );
        assert_eq!(
            respond(Endpoints::Health, &registry, "/metrics").0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            respond(Endpoints::Metrics, &registry, "/healthz").0,
            StatusCode::NOT_FOUND
        );
    }
}
