//! Cloudflare, through its documented REST API v4:
//!
//! * `GET /client/v4/zones?name=<zone>` finds the zone's id (walking up from the zone found by
//!   the SOA walk, as an account may hold a parent zone only);
//! * `GET /client/v4/zones/<id>/dns_records?type=TXT&name=<fqdn>&content=<value>` finds the
//!   record, `POST /client/v4/zones/<id>/dns_records` (`{type: TXT, name, content, ttl}`) adds it
//!   when missing, `DELETE /client/v4/zones/<id>/dns_records/<record id>` removes it — only the
//!   record holding certsmith's value, other TXT values of the name stay.
//!
//! Authentication as cert-manager: `Authorization: Bearer <token>` (`apiTokenSecretRef`), or
//! `X-Auth-Email` + `X-Auth-Key` (`email` + `apiKeySecretRef`).
//!
//! The API's base URL is `https://api.cloudflare.com/client/v4`; the environment variable
//! `CERTSMITH_CLOUDFLARE_API_URL` replaces it. That variable is for tests only (a local server
//! implementing the same wire API) and is not part of the supported configuration.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::{Dns01Error, Dns01Provider};

/// The API's base URL.
pub const DEFAULT_API_URL: &str = "https://api.cloudflare.com/client/v4";
/// Test-only: replaces [`DEFAULT_API_URL`].
pub const API_URL_ENV: &str = "CERTSMITH_CLOUDFLARE_API_URL";
/// TTL of the TXT records (Cloudflare's minimum outside Enterprise plans; cert-manager's too).
const TTL: u32 = 120;
const TIMEOUT: Duration = Duration::from_secs(30);

/// How requests are authenticated.
#[derive(Clone)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Token(String),
    /// `X-Auth-Email` and `X-Auth-Key` (a global API key).
    Key { email: String, key: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(..)"),
            Auth::Key { email, .. } => write!(f, "Key {{ email: {email:?}, .. }}"),
        }
    }
}

pub type Https = HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTPS (or, for a local test server, HTTP) client trusting the platform's CAs, with
/// aws-lc-rs as rustls' crypto provider.
pub fn https_client() -> Result<Https, Dns01Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_platform_verifier(provider)
        .map_err(|e| Dns01Error::Config(format!("loading the platform's trusted CAs: {e}")))?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let connector = builder
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(HyperClient::builder(TokioExecutor::new()).build(connector))
}

/// Percent-encodes a query parameter value (everything but RFC 3986's unreserved characters).
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The zone names to look up for `zone`, from the zone itself up to its two-label parent.
pub fn zone_candidates(zone: &str) -> Vec<String> {
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = zone.split('.').filter(|l| !l.is_empty()).collect();
    let stop = labels.len().saturating_sub(2);
    (0..=stop)
        .filter(|&i| i < labels.len())
        .map(|i| labels[i..].join("."))
        .collect()
}

/// The message of a Cloudflare error body: `errors[].message` (with codes), if any.
pub fn error_message(body: &Value) -> Option<String> {
    let errors = body["errors"].as_array()?;
    let messages: Vec<String> = errors
        .iter()
        .map(|e| match (e["code"].as_i64(), e["message"].as_str()) {
            (Some(code), Some(message)) => format!("{message} (code {code})"),
            (None, Some(message)) => message.to_owned(),
            _ => e.to_string(),
        })
        .collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

pub struct Cloudflare {
    client: Https,
    base: String,
    auth: Auth,
}

impl Cloudflare {
    /// A provider for the API at `base` (e.g. [`DEFAULT_API_URL`]).
    pub fn new(base: &str, auth: Auth) -> Result<Cloudflare, Dns01Error> {
        Ok(Cloudflare {
            client: https_client()?,
            base: base.trim_end_matches('/').to_owned(),
            auth,
        })
    }

    /// The base URL: [`API_URL_ENV`] (tests only) or [`DEFAULT_API_URL`].
    pub fn api_url() -> String {
        std::env::var(API_URL_ENV)
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned())
    }

    /// One API call: the `result` of a successful answer.
    async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Dns01Error> {
        let url = format!("{}{path}", self.base);
        let what = format!("cloudflare {method} {path}");
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "certsmith");
        request = match &self.auth {
            Auth::Token(token) => {
                request.header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            }
            Auth::Key { email, key } => request
                .header("X-Auth-Email", email.as_str())
                .header("X-Auth-Key", key.as_str()),
        };
        let payload = match body {
            Some(body) => {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(payload))
            .map_err(|e| Dns01Error::Config(format!("{what}: {e}")))?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| {
                Dns01Error::Transient(format!("{what}: no answer within {}s", TIMEOUT.as_secs()))
            })?
            .map_err(|e| Dns01Error::Transient(format!("{what}: {e}")))?;
        let status = response.status();
        let bytes = tokio::time::timeout(TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| Dns01Error::Transient(format!("{what}: the answer did not finish")))?
            .map_err(|e| Dns01Error::Transient(format!("{what}: {e}")))?
            .to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() && body["success"].as_bool() == Some(true) {
            return Ok(body["result"].clone());
        }
        let message = error_message(&body).unwrap_or_else(|| "no error message".to_owned());
        let error = format!("{what}: HTTP {}: {message}", status.as_u16());
        if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
            Err(Dns01Error::Transient(error))
        } else {
            Err(Dns01Error::Rejected(error))
        }
    }

    /// The id of the Cloudflare zone holding `zone` (or a parent of it).
    async fn zone_id(&self, zone: &str) -> Result<String, Dns01Error> {
        for candidate in zone_candidates(zone) {
            let result = self
                .call(
                    http::Method::GET,
                    &format!("/zones?name={}", encode_query(&candidate)),
                    None,
                )
                .await?;
            if let Some(id) = result
                .as_array()
                .and_then(|zones| zones.iter().find_map(|z| z["id"].as_str()))
            {
                return Ok(id.to_owned());
            }
        }
        Err(Dns01Error::Rejected(format!(
            "cloudflare: found no zone for {zone} in the account (is the token allowed to read it?)"
        )))
    }

    /// The ids of the TXT records of `name` holding `value`.
    async fn records(
        &self,
        zone_id: &str,
        name: &str,
        value: &str,
    ) -> Result<Vec<String>, Dns01Error> {
        let result = self
            .call(
                http::Method::GET,
                &format!(
                    "/zones/{zone_id}/dns_records?type=TXT&name={}&content={}",
                    encode_query(name),
                    encode_query(value)
                ),
                None,
            )
            .await?;
        Ok(result
            .as_array()
            .map(|records| {
                records
                    .iter()
                    .filter(|r| {
                        r["content"]
                            .as_str()
                            .is_none_or(|c| c.trim_matches('"') == value)
                    })
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn add(&self, fqdn: &str, zone: &str, value: &str) -> Result<(), Dns01Error> {
        let zone_id = self.zone_id(zone).await?;
        let name = fqdn.trim_end_matches('.');
        if !self.records(&zone_id, name, value).await?.is_empty() {
            return Ok(());
        }
        self.call(
            http::Method::POST,
            &format!("/zones/{zone_id}/dns_records"),
            Some(json!({"type": "TXT", "name": name, "content": value, "ttl": TTL})),
        )
        .await?;
        Ok(())
    }

    async fn remove(&self, fqdn: &str, zone: &str, value: &str) -> Result<(), Dns01Error> {
        let zone_id = self.zone_id(zone).await?;
        let name = fqdn.trim_end_matches('.');
        for id in self.records(&zone_id, name, value).await? {
            self.call(
                http::Method::DELETE,
                &format!("/zones/{zone_id}/dns_records/{id}"),
                None,
            )
            .await?;
        }
        Ok(())
    }
}

impl Dns01Provider for Cloudflare {
    fn present<'a>(
        &'a self,
        fqdn: &'a str,
        zone: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), Dns01Error>> {
        Box::pin(self.add(fqdn, zone, value))
    }

    fn cleanup<'a>(
        &'a self,
        fqdn: &'a str,
        zone: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), Dns01Error>> {
        Box::pin(self.remove(fqdn, zone, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names_walk_up() {
        assert_eq!(
            zone_candidates("a.b.example.com."),
            ["a.b.example.com", "b.example.com", "example.com"]
        );
        assert_eq!(zone_candidates("example.com."), ["example.com"]);
        assert_eq!(zone_candidates("test."), ["test"]);
    }

    #[test]
    fn query_encoding_and_errors() {
        assert_eq!(
            encode_query("_acme-challenge.a.com"),
            "_acme-challenge.a.com"
        );
        assert_eq!(encode_query("a b+/="), "a%20b%2B%2F%3D");
        let body = json!({"success": false, "errors": [{"code": 10000, "message": "Authentication error"}]});
        assert_eq!(
            error_message(&body).unwrap(),
            "Authentication error (code 10000)"
        );
        assert_eq!(error_message(&json!({"errors": []})), None);
        let auth = Auth::Key {
            email: "a@b".into(),
            key: "secret".into(),
        };
        assert!(!format!("{auth:?}").contains("secret"));
        assert!(!format!("{:?}", Auth::Token("secret".into())).contains("secret"));
    }
}
