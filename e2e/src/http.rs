//! A small HTTP(S) client for health endpoints, Pebble and pebble-challtestsrv.
//!
//! It trusts only the given CA certificates and uses rustls with aws-lc-rs. It must be created and
//! used inside one tokio runtime (connections are driven by tasks of that runtime).

use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// A response: status and the whole body.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Response {
    /// The body as JSON, or an error if the status is not a success.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> anyhow::Result<T> {
        self.success()?;
        serde_json::from_slice(&self.body).context("decoding a JSON response")
    }

    /// Errors with the status and body unless the status is 2xx.
    pub fn success(&self) -> anyhow::Result<()> {
        if !self.status.is_success() {
            bail!(
                "HTTP {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            );
        }
        Ok(())
    }
}

impl HttpClient {
    /// A client that speaks plain HTTP and HTTPS, trusting the CA certificates in `ca_pem`, and
    /// presenting the client certificate `identity` (PEM certificate, PEM key) if given.
    pub fn new(ca_pem: &str, identity: Option<(&str, &str)>) -> anyhow::Result<HttpClient> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.context("parsing a CA certificate")?)?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .context("parsing a client certificate")?;
                let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                    .context("parsing a client key")?;
                builder.with_client_auth_cert(chain, key)?
            }
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpClient {
            inner: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    pub async fn get(&self, url: &str) -> anyhow::Result<Response> {
        self.request(Method::GET, url, None).await
    }

    pub async fn post_json(&self, url: &str, body: &serde_json::Value) -> anyhow::Result<Response> {
        self.request(Method::POST, url, Some(serde_json::to_vec(body)?))
            .await
    }

    pub async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Response> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(url)
            // Pebble rejects requests without a User-Agent.
            .header(hyper::header::USER_AGENT, "certsmith-e2e");
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let resp = self
            .inner
            .request(req)
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .with_context(|| format!("{method} {url}: reading the body"))?
            .to_bytes();
        Ok(Response { status, body })
    }
}
