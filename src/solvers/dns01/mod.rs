//! DNS-01: publish `base64url(sha256(keyAuthorization))` as a TXT record at
//! `_acme-challenge.<domain>` (the same name for `*.<domain>`), wait until the zone's nameservers
//! serve it, and remove only that value afterwards.
//!
//! * [`Dns01Provider`] is what a DNS provider implements: [`rfc2136`], [`webhook`]
//!   (cert-manager's webhook protocol through the API server's aggregation layer) and
//!   [`cloudflare`] (its REST API v4) and [`route53`] (its REST API, SigV4-signed).
//! * [`propagation`] finds the zone (an SOA walk), follows CNAMEs (`cnameStrategy: Follow`) and
//!   checks that the value is visible — on the zone's authoritative nameservers, or on the
//!   configured recursive ones (`--dns01-recursive-nameservers-only`) — with no fixed sleep.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use crate::api::Challenge;
use crate::api::acme::{AcmeChallengeSolverDns01, CnameStrategy};

pub mod cloudflare;
pub mod propagation;
pub mod rfc2136;
pub mod route53;
pub mod webhook;

/// Settings of DNS-01 solving, from the controller's flags.
#[derive(Clone, Debug, Default)]
pub struct Dns01Settings {
    /// `--dns01-recursive-nameservers`: used for the zone lookup (SOA walk), CNAME following and,
    /// with `recursive_only`, the propagation check. Empty: the servers of `/etc/resolv.conf`.
    pub recursive_nameservers: Vec<SocketAddr>,
    /// `--dns01-recursive-nameservers-only`: check propagation on the recursive nameservers
    /// instead of the zone's authoritative ones.
    pub recursive_only: bool,
    /// `--dns01-check-retry-period`: how often a record that is not visible yet is checked again.
    pub check_retry_period: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Dns01Error {
    /// The solver configuration cannot work (e.g. an unsupported TSIG algorithm).
    #[error("{0}")]
    Config(String),
    /// A Secret the solver needs is missing or incomplete.
    #[error("{0}")]
    Secret(String),
    /// The provider is not implemented by certsmith yet.
    #[error("the DNS-01 provider {0} is not implemented yet")]
    Unsupported(&'static str),
    /// The DNS server answered the update with an error code (REFUSED, NOTAUTH, NOTZONE, …).
    #[error("{0}")]
    Rejected(String),
    /// A DNS query or update did not get an answer, or the Kubernetes API failed.
    #[error("{0}")]
    Transient(String),
}

impl Dns01Error {
    /// Worth retrying soon with backoff (as opposed to waiting for a change of configuration).
    pub fn is_transient(&self) -> bool {
        matches!(self, Dns01Error::Transient(_))
    }
}

/// A DNS provider: adds and removes one TXT value. Both are idempotent, and `cleanup` leaves
/// other values of the same name alone.
pub trait Dns01Provider: Send + Sync {
    /// Adds `value` to the TXT records of `fqdn` (absolute, with a trailing dot) in `zone`.
    fn present<'a>(
        &'a self,
        fqdn: &'a str,
        zone: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), Dns01Error>>;
    /// Removes `value` (only it) from the TXT records of `fqdn` in `zone`.
    fn cleanup<'a>(
        &'a self,
        fqdn: &'a str,
        zone: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), Dns01Error>>;
}

/// The TXT record name of a DNS-01 challenge for `dns_name` (with or without `*.`), absolute and
/// lower case: `_acme-challenge.<domain>.`.
pub fn challenge_fqdn(dns_name: &str) -> String {
    let name = dns_name.trim_start_matches("*.").trim_end_matches('.');
    format!("_acme-challenge.{}.", name.to_ascii_lowercase())
}

/// The DNS-01 configuration of a Challenge, when it has one.
pub fn solver_config(challenge: &Challenge) -> Option<&AcmeChallengeSolverDns01> {
    challenge.spec.solver.dns01.as_ref()
}

/// The name of the provider configured, for messages.
pub fn provider_name(dns01: &AcmeChallengeSolverDns01) -> &'static str {
    if dns01.rfc2136.is_some() {
        "rfc2136"
    } else if dns01.webhook.is_some() {
        "webhook"
    } else if dns01.cloudflare.is_some() {
        "cloudflare"
    } else if dns01.route53.is_some() {
        "route53"
    } else if dns01.acme_dns.is_some() {
        "acmeDNS"
    } else if dns01.akamai.is_some() {
        "akamai"
    } else if dns01.azure_dns.is_some() {
        "azureDNS"
    } else if dns01.cloud_dns.is_some() {
        "cloudDNS"
    } else if dns01.digitalocean.is_some() {
        "digitalocean"
    } else {
        "none"
    }
}

/// Whether certsmith can solve this DNS-01 configuration.
pub fn is_supported(dns01: &AcmeChallengeSolverDns01) -> bool {
    dns01.rfc2136.is_some()
        || dns01.webhook.is_some()
        || dns01.cloudflare.is_some()
        || dns01.route53.is_some()
}

/// Where a challenge's record goes: the (CNAME-followed) record name and its zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub fqdn: String,
    pub zone: String,
}

/// Finds the record name (following CNAMEs with `cnameStrategy: Follow`) and its zone.
pub async fn target(challenge: &Challenge, settings: &Dns01Settings) -> Result<Target, Dns01Error> {
    let dns01 = solver_config(challenge)
        .ok_or_else(|| Dns01Error::Config("the Challenge has no dns01 solver".to_owned()))?;
    let servers = propagation::recursive_servers(settings)?;
    let mut fqdn = challenge_fqdn(&challenge.spec.dns_name);
    if dns01.cname_strategy == Some(CnameStrategy::Follow) {
        fqdn = propagation::follow_cnames(&fqdn, &servers).await?;
    }
    let zone = propagation::find_zone(&fqdn, &servers).await?;
    Ok(Target { fqdn, zone })
}

/// The provider of a Challenge, with its credentials read from `secret_namespace` (the
/// Challenge's namespace, or the cluster resource namespace for a ClusterIssuer).
/// `allow_ambient_credentials` is passed on to webhooks (cert-manager: true for ClusterIssuers,
/// false for Issuers by default).
pub async fn provider(
    client: &kube::Client,
    challenge: &Challenge,
    secret_namespace: &str,
    allow_ambient_credentials: bool,
) -> Result<Box<dyn Dns01Provider>, Dns01Error> {
    let dns01 = solver_config(challenge)
        .ok_or_else(|| Dns01Error::Config("the Challenge has no dns01 solver".to_owned()))?;
    if let Some(config) = &dns01.webhook {
        return Ok(Box::new(webhook::Webhook::new(
            client.clone(),
            config,
            &challenge.spec.dns_name,
            secret_namespace,
            allow_ambient_credentials,
        )));
    }
    if let Some(config) = &dns01.rfc2136 {
        let secret = match &config.tsig_secret_secret_ref {
            Some(selector) => {
                let key = selector.key.as_deref().unwrap_or("tsig-secret-key");
                Some(read_secret(client, secret_namespace, &selector.name, key).await?)
            }
            None => None,
        };
        return Ok(Box::new(
            rfc2136::Rfc2136::new(config, secret.as_deref()).await?,
        ));
    }
    if let Some(config) = &dns01.cloudflare {
        let auth = match (&config.api_token_secret_ref, &config.api_key_secret_ref) {
            (Some(token), None) => {
                let key = token.key.as_deref().unwrap_or("api-token");
                cloudflare::Auth::Token(
                    read_secret(client, secret_namespace, &token.name, key).await?,
                )
            }
            (None, Some(api_key)) => {
                let email = config
                    .email
                    .clone()
                    .filter(|e| !e.is_empty())
                    .ok_or_else(|| {
                        Dns01Error::Config(
                            "cloudflare: email is required with apiKeySecretRef".to_owned(),
                        )
                    })?;
                let key = api_key.key.as_deref().unwrap_or("api-key");
                cloudflare::Auth::Key {
                    email,
                    key: read_secret(client, secret_namespace, &api_key.name, key).await?,
                }
            }
            _ => {
                return Err(Dns01Error::Config(
                    "cloudflare: set exactly one of apiTokenSecretRef or apiKeySecretRef"
                        .to_owned(),
                ));
            }
        };
        return Ok(Box::new(cloudflare::Cloudflare::new(
            &cloudflare::Cloudflare::api_url(),
            auth,
        )?));
    }
    if let Some(config) = &dns01.route53 {
        if config.role.as_deref().is_some_and(|r| !r.is_empty()) {
            return Err(Dns01Error::Config(
                "route53: role (STS AssumeRole) is not supported by certsmith yet; use the role's own access key".to_owned(),
            ));
        }
        if config.auth.is_some() {
            return Err(Dns01Error::Config(
                "route53: auth.kubernetes (AssumeRoleWithWebIdentity) is not supported by certsmith yet".to_owned(),
            ));
        }
        let access_key_id = match (&config.access_key_id, &config.access_key_id_secret_ref) {
            (Some(id), _) if !id.trim().is_empty() => Some(id.trim().to_owned()),
            (_, Some(selector)) => {
                let key = selector.key.as_deref().unwrap_or("access-key-id");
                Some(read_secret(client, secret_namespace, &selector.name, key).await?)
            }
            _ => None,
        };
        let credentials = match (access_key_id, &config.secret_access_key_secret_ref) {
            (Some(access_key_id), Some(selector)) => {
                let key = selector.key.as_deref().unwrap_or("secret-access-key");
                route53::AwsCredentials {
                    access_key_id,
                    secret_access_key: read_secret(client, secret_namespace, &selector.name, key)
                        .await?,
                    session_token: None,
                }
            }
            (None, None) if allow_ambient_credentials => route53::AwsCredentials::from_env()
                .ok_or_else(|| {
                    Dns01Error::Config(
                        "route53: no credentials configured and none in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)".to_owned(),
                    )
                })?,
            (None, None) => {
                return Err(Dns01Error::Config(
                    "route53: no credentials configured, and ambient credentials are not allowed for an Issuer".to_owned(),
                ));
            }
            _ => {
                return Err(Dns01Error::Config(
                    "route53: set both an access key ID (accessKeyID or accessKeyIDSecretRef) and secretAccessKeySecretRef".to_owned(),
                ));
            }
        };
        return Ok(Box::new(route53::Route53::new(
            &route53::Route53::api_url(),
            credentials,
            config.hosted_zone_id.clone(),
        )?));
    }
    Err(Dns01Error::Unsupported(provider_name(dns01)))
}

/// One entry of a Secret, as text. The value never appears in errors or logs.
async fn read_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String, Dns01Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = match secrets.get_opt(name).await {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            return Err(Dns01Error::Secret(format!(
                "secret {namespace}/{name} not found"
            )));
        }
        Err(e) => {
            return Err(Dns01Error::Transient(format!(
                "reading secret {namespace}/{name}: {e}"
            )));
        }
    };
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| {
            Dns01Error::Secret(format!("secret {namespace}/{name} has no key {key:?}"))
        })?;
    let text = String::from_utf8(value.0.clone()).map_err(|_| {
        Dns01Error::Secret(format!(
            "key {key:?} of secret {namespace}/{name} is not text"
        ))
    })?;
    Ok(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names() {
        assert_eq!(
            challenge_fqdn("example.com"),
            "_acme-challenge.example.com."
        );
        assert_eq!(
            challenge_fqdn("*.Example.com"),
            "_acme-challenge.example.com."
        );
        assert_eq!(
            challenge_fqdn("www.example.com."),
            "_acme-challenge.www.example.com."
        );
    }

    #[test]
    fn supported_providers() {
        let mut dns01 = AcmeChallengeSolverDns01::default();
        assert!(!is_supported(&dns01));
        dns01.acme_dns = Some(Default::default());
        assert!(!is_supported(&dns01));
        assert_eq!(provider_name(&dns01), "acmeDNS");
        dns01.acme_dns = None;
        dns01.route53 = Some(Default::default());
        assert!(is_supported(&dns01));
        assert_eq!(provider_name(&dns01), "route53");
        dns01.route53 = None;
        dns01.cloudflare = Some(Default::default());
        assert!(is_supported(&dns01));
        assert_eq!(provider_name(&dns01), "cloudflare");
        dns01.cloudflare = None;
        dns01.rfc2136 = Some(Default::default());
        assert!(is_supported(&dns01));
        assert_eq!(provider_name(&dns01), "rfc2136");
        dns01.rfc2136 = None;
        dns01.webhook = Some(Default::default());
        assert!(is_supported(&dns01));
    }
}
