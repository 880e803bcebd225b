//! Helpers shared by the integration tests: waiting for conditions, reading Secrets, and the
//! ACME issuers the tests use.
#![allow(dead_code)]

use std::fmt::Debug;
use std::time::{Duration, Instant};

use base64::Engine as _;
use certsmith::api::certificate::{Certificate, CertificateCondition};
use certsmith::api::meta::ConditionStatus;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{Api, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Polls `get` until `done` holds, or panics after `timeout` with the last value seen.
pub async fn wait_for<K, F>(api: &Api<K>, name: &str, timeout: Duration, what: &str, done: F) -> K
where
    K: Clone + DeserializeOwned + Debug + Resource,
    F: Fn(&K) -> bool,
{
    let start = Instant::now();
    let mut last = None;
    loop {
        if let Ok(Some(obj)) = api.get_opt(name).await {
            if done(&obj) {
                return obj;
            }
            last = Some(obj);
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {name}: {what}; last seen: {last:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn condition<'a>(cert: &'a Certificate, type_: &str) -> Option<&'a CertificateCondition> {
    cert.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn is_ready(cert: &Certificate) -> bool {
    condition(cert, "Ready").is_some_and(|c| c.status == ConditionStatus::True)
        && cert.metadata.generation.is_some()
        && condition(cert, "Ready").and_then(|c| c.observed_generation) == cert.metadata.generation
}

pub fn revision(cert: &Certificate) -> i64 {
    cert.status.as_ref().and_then(|s| s.revision).unwrap_or(0)
}

/// `data[key]` of a Secret as text.
pub fn secret_text(secret: &Secret, key: &str) -> String {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("Secret has no {key}"));
    String::from_utf8(bytes.0.clone()).expect("PEM is text")
}

pub fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// An ACME issuer spec for a Pebble directory, trusting Pebble's listener certificate.
pub fn acme_spec(directory_url: &str, ca_pem: &str, account_secret: &str) -> Value {
    json!({
        "acme": {
            "server": directory_url,
            "email": "ops@certsmith.test",
            "caBundle": b64(ca_pem),
            "profile": "default",
            "privateKeySecretRef": {"name": account_secret},
            "solvers": [{"http01": {"ingress": {"ingressClassName": "stand-in"}}}]
        }
    })
}

pub async fn create<K>(api: &Api<K>, obj: Value) -> K
where
    K: Clone + DeserializeOwned + Debug + Resource + serde::Serialize,
{
    let obj: K = serde_json::from_value(obj).expect("valid object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create")
}

/// How long an ACME issuance may take on the local control plane before a test gives up.
pub const ISSUANCE_TIMEOUT: Duration = Duration::from_secs(90);
