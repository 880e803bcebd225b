//! The HTTP client instant-acme talks through: hyper-util + hyper-rustls with the issuer's
//! trust (its `caBundle`, or the platform's roots, or no verification at all with
//! `skipTLSVerify`), a timeout per request, a metric per request, and the `Retry-After` of every
//! response captured for the operation that made it (instant-acme drops headers on errors).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use super::metrics::{self, RequestLabels};
use super::problem::{AcmeError, chain};

/// How long one ACME request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the ACME server's TLS certificate is verified: the issuer's `caBundle` and
/// `skipTLSVerify`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM CA certificates to trust instead of the platform's roots.
    pub ca_bundle: Option<Vec<u8>>,
    /// Accept any certificate (insecure).
    pub skip_tls_verify: bool,
}

impl TlsOptions {
    /// A digest of the options, to notice when they change.
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        hash.update([u8::from(self.skip_tls_verify)]);
        if let Some(bundle) = &self.ca_bundle {
            hash.update(bundle);
        }
        hex(&hash.finalize()[..8])
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a request got no response. Carried inside `instant_acme::Error::Other`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("request to {url} failed: {message}")]
    Request { url: String, message: String },
    #[error("request to {url} got no response within {}s", after.as_secs())]
    Timeout { url: String, after: Duration },
}

/// instant-acme's [`HttpClient`], built by [`build`].
pub(crate) struct AcmeHttpClient {
    inner: HyperClient<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
    timeout: Duration,
}

/// Builds the HTTP client for an ACME server. `server` is only used for logging.
pub(crate) fn build(server: &str, tls: &TlsOptions) -> Result<AcmeHttpClient, AcmeError> {
    build_with_timeout(server, tls, REQUEST_TIMEOUT)
}

pub(crate) fn build_with_timeout(
    server: &str,
    tls: &TlsOptions,
    timeout: Duration,
) -> Result<AcmeHttpClient, AcmeError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if tls.skip_tls_verify {
        warn_insecure_once(server);
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| AcmeError::terminal(format!("TLS configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth();
        builder.with_tls_config(config)
    } else if let Some(bundle) = tls.ca_bundle.as_deref().filter(|b| !b.is_empty()) {
        let roots = roots_from_pem(bundle)?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| AcmeError::terminal(format!("TLS configuration: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        builder.with_tls_config(config)
    } else {
        builder
            .with_provider_and_platform_verifier(provider)
            .map_err(|e| AcmeError::terminal(format!("loading the platform's trusted CAs: {e}")))?
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    let connector = builder
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(AcmeHttpClient {
        inner: HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector),
        timeout,
    })
}

/// Every certificate of a PEM bundle, as trust anchors.
fn roots_from_pem(bundle: &[u8]) -> Result<RootCertStore, AcmeError> {
    let mut roots = RootCertStore::empty();
    let mut rejected = 0;
    for cert in CertificateDer::pem_slice_iter(bundle) {
        let cert =
            cert.map_err(|e| AcmeError::terminal(format!("caBundle is not valid PEM: {e}")))?;
        if roots.add(cert).is_err() {
            rejected += 1;
        }
    }
    if roots.is_empty() {
        return Err(AcmeError::terminal(if rejected > 0 {
            "caBundle holds no usable CA certificate".to_owned()
        } else {
            "caBundle holds no PEM certificate".to_owned()
        }));
    }
    Ok(roots)
}

fn warn_insecure_once(server: &str) {
    static WARNED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);
    let first = WARNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(server.to_owned());
    if first {
        tracing::warn!(
            server,
            "skipTLSVerify is set: the ACME server's TLS certificate is not verified (insecure)"
        );
    }
}

/// Accepts any server certificate; still checks that the handshake is signed by its key.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------------
// Per-operation scope: the action label of the requests, and the Retry-After they returned.
// ---------------------------------------------------------------------------------------------

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

struct Scope {
    action: Mutex<&'static str>,
    retry_after: Mutex<Option<SystemTime>>,
}

/// Runs one ACME operation: its POSTs are counted under `action` (see [`set_action`]), and the
/// last `Retry-After` any of its responses carried is returned with the result.
pub(crate) async fn scoped<T>(
    action: &'static str,
    operation: impl Future<Output = T>,
) -> (T, Option<Duration>) {
    let scope = Arc::new(Scope {
        action: Mutex::new(action),
        retry_after: Mutex::new(None),
    });
    let result = SCOPE.scope(scope.clone(), operation).await;
    let retry_after = scope
        .retry_after
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
    (result, retry_after)
}

/// Changes the action label of the current operation's next requests.
pub(crate) fn set_action(action: &'static str) {
    let _ = SCOPE.try_with(|s| *s.action.lock().unwrap_or_else(|e| e.into_inner()) = action);
}

fn current_action(method: &Method) -> &'static str {
    match *method {
        Method::HEAD => "nonce",
        Method::GET => "directory",
        _ => SCOPE
            .try_with(|s| *s.action.lock().unwrap_or_else(|e| e.into_inner()))
            .unwrap_or("unknown"),
    }
}

fn remember_retry_after(at: SystemTime) {
    let _ = SCOPE.try_with(|s| *s.retry_after.lock().unwrap_or_else(|e| e.into_inner()) = Some(at));
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<SystemTime> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(now + Duration::from_secs(seconds));
    }
    let ts = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    Some(SystemTime::from(ts))
}

impl HttpClient for AcmeHttpClient {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let action = current_action(req.method());
        let method = req.method().to_string();
        let uri = req.uri().clone();
        let url = format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("https"),
            uri.authority().map(|a| a.as_str()).unwrap_or_default(),
            uri.path()
        );
        let labels = move |action: &str, status: String| RequestLabels {
            scheme: uri.scheme_str().unwrap_or("https").to_owned(),
            host: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
            action: action.to_owned(),
            method: method.clone(),
            status,
        };
        let timeout = self.timeout;
        let response = self.inner.request(req);
        Box::pin(async move {
            let started = Instant::now();
            let outcome = tokio::time::timeout(timeout, response).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match outcome {
                Ok(Ok(response)) => {
                    let status = response.status();
                    if let Some(at) = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()))
                    {
                        remember_retry_after(at);
                    }
                    // instant-acme polls a processing order and downloads the chain in one call:
                    // tell the download by what it returns.
                    let is_chain = response
                        .headers()
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.starts_with("application/pem-certificate-chain"));
                    let action = if is_chain { "get_certificate" } else { action };
                    let labels = labels(action, status.as_u16().to_string());
                    tracing::debug!(
                        %url, action = labels.action, method = labels.method,
                        status = status.as_u16(), elapsed_ms, "ACME request"
                    );
                    metrics::record(labels);
                    Ok(BytesResponse::from(response))
                }
                Ok(Err(error)) => {
                    let labels = labels(action, "error".to_owned());
                    let message = chain(&error);
                    tracing::debug!(
                        %url, action = labels.action, method = labels.method,
                        elapsed_ms, error = %message, "ACME request failed"
                    );
                    metrics::record(labels);
                    Err(instant_acme::Error::Other(Box::new(
                        TransportError::Request { url, message },
                    )))
                }
                Err(_) => {
                    let labels = labels(action, "timeout".to_owned());
                    tracing::debug!(
                        %url, action = labels.action, method = labels.method,
                        elapsed_ms, "ACME request timed out"
                    );
                    metrics::record(labels);
                    Err(instant_acme::Error::Other(Box::new(
                        TransportError::Timeout {
                            url,
                            after: timeout,
                        },
                    )))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(now + Duration::from_secs(120))
        );
        let at = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now).unwrap();
        assert_eq!(
            at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_445_412_480
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn ca_bundles_must_hold_certificates() {
        let e = roots_from_pem(b"not pem").unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let cert = rcgen::generate_simple_self_signed(vec!["ca.example".into()]).unwrap();
        let two = format!("{}{}", cert.cert.pem(), cert.cert.pem());
        assert_eq!(roots_from_pem(two.as_bytes()).unwrap().len(), 2);
        let tls = TlsOptions {
            ca_bundle: Some(two.into_bytes()),
            skip_tls_verify: false,
        };
        assert!(build("https://acme.example/dir", &tls).is_ok());
        assert_ne!(tls.fingerprint(), TlsOptions::default().fingerprint());
    }

    #[tokio::test]
    async fn unreachable_servers_are_counted_and_retryable() {
        // Port 9 on loopback: nothing listens, the connection is refused at once.
        let client = build("https://127.0.0.1:9/dir", &TlsOptions::default()).unwrap();
        let before = metrics::request_count_where(Some("127.0.0.1:9"), None, None, None);
        let (result, retry_after) = scoped("directory", async {
            let request = Request::builder()
                .uri("https://127.0.0.1:9/dir")
                .body(BodyWrapper::default())
                .unwrap();
            client.request(request).await
        })
        .await;
        let Err(error) = result else {
            panic!("connected to port 9")
        };
        let error = AcmeError::from_acme(error, retry_after);
        assert!(error.is_retryable(), "{error}");
        assert!(error.to_string().contains("127.0.0.1:9"), "{error}");
        assert_eq!(
            metrics::request_count_where(
                Some("127.0.0.1:9"),
                Some("directory"),
                Some("GET"),
                Some("error")
            ),
            before + 1
        );
    }
}
