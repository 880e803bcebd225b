//! cert-manager's DNS-01 webhook protocol: a `ChallengePayload` POSTed to
//! `/apis/<groupName>/v1alpha1/<solverName>` on the Kubernetes API server, which proxies it to the
//! webhook's aggregated API server. One POST presents (`action: Present`), another cleans up
//! (`action: CleanUp`); the existing cert-manager DNS webhooks work unchanged.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Dns01Error, Dns01Provider};
use crate::api::acme::AcmeIssuerDns01ProviderWebhook;

pub struct Webhook {
    client: kube::Client,
    config: AcmeIssuerDns01ProviderWebhook,
    /// The identifier (`dnsName`) of the challenge.
    dns_name: String,
    /// The namespace of the issuer's Secrets (`resourceNamespace`).
    resource_namespace: String,
    allow_ambient_credentials: bool,
}

/// The request path: `/apis/<groupName>/v1alpha1/<solverName>`.
pub fn path(config: &AcmeIssuerDns01ProviderWebhook) -> String {
    format!(
        "/apis/{}/v1alpha1/{}",
        config.group_name.trim(),
        config.solver_name.trim()
    )
}

/// The body cert-manager sends: `{"request": ChallengeRequest}` without TypeMeta and without
/// `uid`, `config` holding only the webhook's `config`.
#[allow(clippy::too_many_arguments)]
pub fn payload(
    action: &str,
    dns_name: &str,
    key: &str,
    resource_namespace: &str,
    resolved_fqdn: &str,
    resolved_zone: &str,
    allow_ambient_credentials: bool,
    config: Option<&Value>,
) -> Value {
    let mut request = json!({
        "action": action,
        "type": "dns-01",
        "dnsName": dns_name,
        "key": key,
        "resourceNamespace": resource_namespace,
        "resolvedFQDN": resolved_fqdn,
        "resolvedZone": resolved_zone,
        "allowAmbientCredentials": allow_ambient_credentials,
    });
    if let Some(config) = config {
        request["config"] = config.clone();
    }
    json!({ "request": request })
}

/// What the webhook answered: `Ok` when `response.success` is true, otherwise its message.
pub fn outcome(response: &Value) -> Result<(), String> {
    let response = &response["response"];
    if response["success"].as_bool() == Some(true) {
        return Ok(());
    }
    match response["status"]["message"].as_str() {
        Some(message) if !message.is_empty() => Err(message.to_owned()),
        _ => Err("invalid payload response, did not succeed but no result provided".to_owned()),
    }
}

impl Webhook {
    pub fn new(
        client: kube::Client,
        config: &AcmeIssuerDns01ProviderWebhook,
        dns_name: &str,
        resource_namespace: &str,
        allow_ambient_credentials: bool,
    ) -> Webhook {
        Webhook {
            client,
            config: config.clone(),
            dns_name: dns_name.to_owned(),
            resource_namespace: resource_namespace.to_owned(),
            allow_ambient_credentials,
        }
    }

    async fn call(
        &self,
        action: &str,
        fqdn: &str,
        zone: &str,
        value: &str,
    ) -> Result<(), Dns01Error> {
        let path = path(&self.config);
        let body = payload(
            action,
            &self.dns_name,
            value,
            &self.resource_namespace,
            fqdn,
            zone,
            self.allow_ambient_credentials,
            self.config.config.as_ref(),
        );
        let request = http::Request::post(&path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .map_err(|e| Dns01Error::Config(format!("webhook request {path}: {e}")))?;
        let response: Value = match self.client.request(request).await {
            Ok(response) => response,
            // The API server could not reach the webhook, or refused the call: retried.
            Err(kube::Error::Api(status)) => {
                return Err(Dns01Error::Transient(format!(
                    "webhook {path} ({action}): {} ({})",
                    status.message, status.code
                )));
            }
            Err(e) => {
                return Err(Dns01Error::Transient(format!(
                    "webhook {path} ({action}): {e}"
                )));
            }
        };
        outcome(&response).map_err(|message| {
            Dns01Error::Rejected(format!("webhook {path} ({action}): {message}"))
        })
    }
}

impl Dns01Provider for Webhook {
    fn present<'a>(
        &'a self,
        fqdn: &'a str,
        zone: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), Dns01Error>> {
        Box::pin(self.call("Present", fqdn, zone, value))
    }

    fn cleanup<'a>(
        &'a self,
        fqdn: &'a str,
        zone: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), Dns01Error>> {
        Box::pin(self.call("CleanUp", fqdn, zone, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_cert_managers() {
        let config = AcmeIssuerDns01ProviderWebhook {
            group_name: "acme.example.com".into(),
            solver_name: "my-dns".into(),
            config: Some(json!({"apiKeySecretRef": {"name": "k"}})),
        };
        assert_eq!(path(&config), "/apis/acme.example.com/v1alpha1/my-dns");
        let body = payload(
            "Present",
            "example.com",
            "abc",
            "certs",
            "_acme-challenge.example.com.",
            "example.com.",
            false,
            config.config.as_ref(),
        );
        assert_eq!(
            body,
            json!({"request": {
                "action": "Present", "type": "dns-01", "dnsName": "example.com", "key": "abc",
                "resourceNamespace": "certs", "resolvedFQDN": "_acme-challenge.example.com.",
                "resolvedZone": "example.com.", "allowAmbientCredentials": false,
                "config": {"apiKeySecretRef": {"name": "k"}},
            }})
        );
        assert!(body.get("apiVersion").is_none() && body["request"].get("uid").is_none());
    }

    #[test]
    fn responses() {
        assert_eq!(outcome(&json!({"response": {"success": true}})), Ok(()));
        assert_eq!(
            outcome(&json!({"response": {"success": false, "status": {"message": "no zone"}}})),
            Err("no zone".to_owned())
        );
        assert_eq!(
            outcome(&json!({"response": {"success": false}})),
            Err("invalid payload response, did not succeed but no result provided".to_owned())
        );
    }
}
