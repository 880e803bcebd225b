//! AWS Route53, through its documented REST API (version 2013-04-01), signed with AWS
//! Signature Version 4 (the `aws-sigv4` crate):
//!
//! * `GET /2013-04-01/hostedzonesbyname?dnsname=<zone>` (ListHostedZonesByName) finds the hosted
//!   zone when `hostedZoneID` is empty (a public zone whose name is the zone's);
//! * `GET /2013-04-01/hostedzone/<id>/rrset?name=<fqdn>&type=TXT&maxitems=1`
//!   (ListResourceRecordSets) reads the TXT values already there;
//! * `POST /2013-04-01/hostedzone/<id>/rrset` (ChangeResourceRecordSets) UPSERTs the record set
//!   with certsmith's value added; cleanup UPSERTs it without that value, or DELETEs the set
//!   when it was the only one — other values stay.
//!
//! Credentials: `accessKeyID` or `accessKeyIDSecretRef`, with `secretAccessKeySecretRef`; with
//! neither, the ambient `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`
//! environment variables when ambient credentials are allowed. `role` (STS AssumeRole) and
//! `auth.kubernetes` (AssumeRoleWithWebIdentity) are not supported yet: a configuration error.
//!
//! The endpoint is `https://route53.amazonaws.com`; the environment variable
//! `CERTSMITH_ROUTE53_API_URL` replaces it. That variable is for tests only (a local server
//! implementing the same wire API) and is not part of the supported configuration.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};

use super::cloudflare::{Https, encode_query, https_client};
use super::{Dns01Error, Dns01Provider};

pub const DEFAULT_API_URL: &str = "https://route53.amazonaws.com";
/// Test-only: replaces [`DEFAULT_API_URL`].
pub const API_URL_ENV: &str = "CERTSMITH_ROUTE53_API_URL";
/// Route53 is global; requests are signed for us-east-1 (the aws partition's signing region).
pub const SIGNING_REGION: &str = "us-east-1";
const SERVICE: &str = "route53";
const TTL: u32 = 10;
const TIMEOUT: Duration = Duration::from_secs(30);
const XMLNS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

/// AWS credentials. The secret never appears in `Debug` output.
#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AwsCredentials {{ access_key_id: {:?}, .. }}",
            self.access_key_id
        )
    }
}

impl AwsCredentials {
    /// The ambient credentials of the environment, if set.
    pub fn from_env() -> Option<AwsCredentials> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(AwsCredentials {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }
}

/// The elements `<tag>…</tag>` of `xml` (not nested in themselves), as their inner text.
pub fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

/// The first `<tag>` of `xml`, unescaped.
pub fn element(xml: &str, tag: &str) -> Option<String> {
    elements(xml, tag).first().map(|t| unescape(t))
}

pub fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A TXT value as Route53 shows it (`"abc"`, or `"ab" "c"` for long ones) → the text.
pub fn txt_text(value: &str) -> String {
    let value = value.trim();
    if !value.starts_with('"') {
        return value.to_owned();
    }
    let mut out = String::new();
    let mut in_string = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => in_string = !in_string,
            '\\' if in_string => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            c if in_string => out.push(c),
            _ => {}
        }
    }
    out
}

/// A ChangeResourceRecordSets body: one change of the TXT set `fqdn` to `values` (texts).
pub fn change_batch(action: &str, fqdn: &str, ttl: u32, values: &[String]) -> String {
    let records: String = values
        .iter()
        .map(|v| {
            format!(
                "<ResourceRecord><Value>{}</Value></ResourceRecord>",
                escape(&format!(
                    "\"{}\"",
                    v.replace('\\', "\\\\").replace('"', "\\\"")
                ))
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ChangeResourceRecordSetsRequest xmlns=\"{XMLNS}\"><ChangeBatch>\
         <Comment>certsmith DNS-01</Comment><Changes><Change><Action>{action}</Action>\
         <ResourceRecordSet><Name>{}</Name><Type>TXT</Type><TTL>{ttl}</TTL>\
         <ResourceRecords>{records}</ResourceRecords></ResourceRecordSet>\
         </Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>",
        escape(fqdn)
    )
}

/// Route53 escapes some characters of names as `\052` (octal); compares names loosely.
fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.replace("\\052", "*")
            .trim_end_matches('.')
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

/// The hosted zone id in `ListHostedZonesByName`'s answer for `zone`: a public zone of that
/// name, `/hostedzone/` stripped.
pub fn hosted_zone_id(xml: &str, zone: &str) -> Option<String> {
    elements(xml, "HostedZone").into_iter().find_map(|z| {
        let name = element(z, "Name")?;
        let private = element(z, "PrivateZone").is_some_and(|p| p == "true");
        if !same_name(&name, zone) || private {
            return None;
        }
        let id = element(z, "Id")?;
        Some(id.trim_start_matches("/hostedzone/").to_owned())
    })
}

/// The TTL and texts of the TXT set `fqdn` in a `ListResourceRecordSets` answer.
pub fn txt_set(xml: &str, fqdn: &str) -> Option<(u32, Vec<String>)> {
    elements(xml, "ResourceRecordSet")
        .into_iter()
        .find_map(|set| {
            let name = element(set, "Name")?;
            if !same_name(&name, fqdn) || element(set, "Type").as_deref() != Some("TXT") {
                return None;
            }
            let ttl = element(set, "TTL")
                .and_then(|t| t.parse().ok())
                .unwrap_or(TTL);
            let values = elements(set, "Value")
                .into_iter()
                .map(|v| txt_text(&unescape(v)))
                .collect();
            Some((ttl, values))
        })
}

pub struct Route53 {
    client: Https,
    base: String,
    credentials: AwsCredentials,
    hosted_zone_id: Option<String>,
}

impl Route53 {
    pub fn new(
        base: &str,
        credentials: AwsCredentials,
        hosted_zone_id: Option<String>,
    ) -> Result<Route53, Dns01Error> {
        Ok(Route53 {
            client: https_client()?,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
            hosted_zone_id: hosted_zone_id
                .filter(|z| !z.is_empty())
                .map(|z| z.trim_start_matches("/hostedzone/").to_owned()),
        })
    }

    /// The endpoint: [`API_URL_ENV`] (tests only) or [`DEFAULT_API_URL`].
    pub fn api_url() -> String {
        std::env::var(API_URL_ENV)
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned())
    }

    /// One signed call; the XML of a successful answer.
    async fn call(
        &self,
        method: http::Method,
        path_and_query: &str,
        body: Option<String>,
    ) -> Result<String, Dns01Error> {
        let url = format!("{}{path_and_query}", self.base);
        let what = format!("route53 {method} {path_and_query}");
        let uri: http::Uri = url
            .parse()
            .map_err(|e| Dns01Error::Config(format!("{what}: {e}")))?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| Dns01Error::Config(format!("{what}: no host in {url}")))?;
        let body = body.unwrap_or_default();
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(http::header::HOST, host)
            .header(http::header::USER_AGENT, "certsmith");
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, "text/xml");
        }
        let mut request = request
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| Dns01Error::Config(format!("{what}: {e}")))?;
        self.sign(&mut request, body.as_bytes())
            .map_err(|e| Dns01Error::Config(format!("{what}: signing: {e}")))?;

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
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            return Ok(text);
        }
        let code = element(&text, "Code").unwrap_or_default();
        let message = element(&text, "Message").unwrap_or_else(|| "no error message".to_owned());
        let error = format!("{what}: HTTP {}: {code}: {message}", status.as_u16());
        if status.is_server_error()
            || matches!(
                code.as_str(),
                "Throttling" | "PriorRequestNotComplete" | "ServiceUnavailable"
            )
        {
            Err(Dns01Error::Transient(error))
        } else {
            Err(Dns01Error::Rejected(error))
        }
    }

    /// Adds SigV4's `Authorization` and `X-Amz-Date` (and `X-Amz-Security-Token`) headers.
    fn sign(&self, request: &mut http::Request<Full<Bytes>>, body: &[u8]) -> Result<(), String> {
        let credentials = Credentials::new(
            &self.credentials.access_key_id,
            &self.credentials.secret_access_key,
            self.credentials.session_token.clone(),
            None,
            "certsmith",
        );
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(SIGNING_REGION)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let uri = request.uri().to_string();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    async fn zone_id(&self, zone: &str) -> Result<String, Dns01Error> {
        if let Some(id) = &self.hosted_zone_id {
            return Ok(id.clone());
        }
        let zone = zone.trim_end_matches('.');
        let xml = self
            .call(
                http::Method::GET,
                &format!(
                    "/2013-04-01/hostedzonesbyname?dnsname={}",
                    encode_query(zone)
                ),
                None,
            )
            .await?;
        hosted_zone_id(&xml, zone).ok_or_else(|| {
            Dns01Error::Rejected(format!(
                "route53: found no public hosted zone {zone} (set hostedZoneID, or allow route53:ListHostedZonesByName)"
            ))
        })
    }

    async fn current(
        &self,
        zone_id: &str,
        fqdn: &str,
    ) -> Result<Option<(u32, Vec<String>)>, Dns01Error> {
        let xml = self
            .call(
                http::Method::GET,
                &format!(
                    "/2013-04-01/hostedzone/{zone_id}/rrset?name={}&type=TXT&maxitems=1",
                    encode_query(fqdn)
                ),
                None,
            )
            .await?;
        Ok(txt_set(&xml, fqdn))
    }

    async fn change(&self, zone_id: &str, body: String) -> Result<(), Dns01Error> {
        self.call(
            http::Method::POST,
            &format!("/2013-04-01/hostedzone/{zone_id}/rrset"),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    async fn add(&self, fqdn: &str, zone: &str, value: &str) -> Result<(), Dns01Error> {
        let zone_id = self.zone_id(zone).await?;
        let (_, mut values) = self.current(&zone_id, fqdn).await?.unwrap_or_default();
        if values.iter().any(|v| v == value) {
            return Ok(());
        }
        values.push(value.to_owned());
        self.change(&zone_id, change_batch("UPSERT", fqdn, TTL, &values))
            .await
    }

    async fn remove(&self, fqdn: &str, zone: &str, value: &str) -> Result<(), Dns01Error> {
        let zone_id = self.zone_id(zone).await?;
        let Some((ttl, values)) = self.current(&zone_id, fqdn).await? else {
            return Ok(());
        };
        if !values.iter().any(|v| v == value) {
            return Ok(());
        }
        let rest: Vec<String> = values.iter().filter(|v| *v != value).cloned().collect();
        let body = if rest.is_empty() {
            change_batch("DELETE", fqdn, ttl, &values)
        } else {
            change_batch("UPSERT", fqdn, ttl, &rest)
        };
        self.change(&zone_id, body).await
    }
}

impl Dns01Provider for Route53 {
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
    fn xml_round_trip() {
        let body = change_batch(
            "UPSERT",
            "_acme-challenge.a.com.",
            10,
            &["v1".into(), "v2".into()],
        );
        assert!(body.contains("<Action>UPSERT</Action>"), "{body}");
        assert!(body.contains("<Value>&quot;v1&quot;</Value>"), "{body}");
        assert_eq!(
            txt_set(&body, "_acme-challenge.a.com"),
            Some((10, vec!["v1".to_owned(), "v2".to_owned()]))
        );
        assert_eq!(txt_text("\"ab\" \"c\""), "abc");
        assert_eq!(txt_text("\"a\\\"b\""), "a\"b");
        let zones = "<ListHostedZonesByNameResponse><HostedZones>\
            <HostedZone><Id>/hostedzone/ZPRIV</Id><Name>a.com.</Name><Config><PrivateZone>true</PrivateZone></Config></HostedZone>\
            <HostedZone><Id>/hostedzone/Z123</Id><Name>a.com.</Name><Config><PrivateZone>false</PrivateZone></Config></HostedZone>\
            </HostedZones></ListHostedZonesByNameResponse>";
        assert_eq!(hosted_zone_id(zones, "a.com"), Some("Z123".to_owned()));
        assert_eq!(hosted_zone_id(zones, "b.com"), None);
        let creds = AwsCredentials {
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        };
        assert!(!format!("{creds:?}").contains("secret"));
    }
}
