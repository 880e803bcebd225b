//! `acme.cert-manager.io/v1` Challenge: one ACME challenge to solve for one authorization of an
//! Order. The spec (including a copy of the chosen solver) is immutable; the status tracks the
//! scheduling, presentation and validation of the challenge.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::acme::{AcmeChallengeSolver, AcmeState};
use super::meta::IssuerReference;

/// Finalizer that keeps a Challenge until its solver resources are cleaned up.
pub const CHALLENGE_FINALIZER: &str = "acme.cert-manager.io/finalizer";

/// Finalizer name of older cert-manager releases, replaced by [`CHALLENGE_FINALIZER`].
pub const LEGACY_CHALLENGE_FINALIZER: &str = "finalizer.acme.cert-manager.io";

/// The challenge to solve and how.
// Each `printcolumn(...)` repeats keys such as `type_`, which clippy mistakes for duplicated
// attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "acme.cert-manager.io",
    version = "v1",
    kind = "Challenge",
    namespaced,
    status = "ChallengeStatus",
    derive = "PartialEq",
    category = "cert-manager",
    category = "cert-manager-acme",
    doc = "A Challenge is one ACME challenge that proves control of an identifier of an Order.",
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.dnsName"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        description = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.",
        json_path = ".metadata.creationTimestamp"
    ),
    selectable = ".spec.issuerRef.group",
    selectable = ".spec.issuerRef.kind",
    selectable = ".spec.issuerRef.name"
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message(
    "the spec of a Challenge cannot be changed; delete the Challenge and the Order controller creates a new one"
))]
pub struct ChallengeSpec {
    /// The URL of the challenge at the ACME server.
    pub url: String,

    /// The URL of the authorization this challenge belongs to.
    #[serde(rename = "authorizationURL")]
    pub authorization_url: String,

    /// The identifier the challenge is for, without `*.` for a wildcard: `example.com` for
    /// `*.example.com`.
    pub dns_name: String,

    /// Whether the challenge is for a wildcard name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard: Option<bool>,

    /// The type of the challenge, `HTTP-01` or `DNS-01` (upper case, unlike ACME's names).
    #[serde(rename = "type")]
    pub type_: ChallengeType,

    /// The challenge token as the ACME server issued it.
    pub token: String,

    /// What to present. For HTTP-01 the key authorization `<token>.<account key thumbprint>`;
    /// for DNS-01 the TXT record value, `base64url(sha256(key authorization))` without padding.
    pub key: String,

    /// The solver chosen from the issuer for this challenge, copied at creation.
    pub solver: AcmeChallengeSolver,

    /// The ACME Issuer or ClusterIssuer the challenge is solved for.
    pub issuer_ref: IssuerReference,
}

/// The type of a Challenge.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ChallengeType {
    /// Serve the key authorization at `http://<name>/.well-known/acme-challenge/<token>`.
    #[default]
    #[serde(rename = "HTTP-01")]
    Http01,
    /// Publish a TXT record at `_acme-challenge.<name>`.
    #[serde(rename = "DNS-01")]
    Dns01,
}

impl ChallengeType {
    /// The value in a Challenge: `HTTP-01` or `DNS-01`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "HTTP-01",
            Self::Dns01 => "DNS-01",
        }
    }

    /// The ACME challenge type (RFC 8555 §8): `http-01` or `dns-01`.
    pub fn acme_type(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
        }
    }

    /// The type for an ACME challenge type name, if supported.
    pub fn from_acme_type(acme_type: &str) -> Option<Self> {
        match acme_type {
            "http-01" => Some(Self::Http01),
            "dns-01" => Some(Self::Dns01),
            _ => None,
        }
    }
}

impl std::fmt::Display for ChallengeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The progress of a Challenge, written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeStatus {
    /// Whether the challenge is being worked on. Set to true by the scheduler, which bounds
    /// how many challenges are in progress at once, and back to false once the challenge is
    /// final; a challenge that is not processing is left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<bool>,

    /// Whether the solver's resources are in place (the TXT record published, the HTTP-01
    /// solver serving the key). Says nothing about the self-check or the ACME server's
    /// validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presented: Option<bool>,

    /// When the solver's resources were first put in place; used by the solver's
    /// `waitInsteadOfSelfCheck`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presented_at: Option<Time>,

    /// Why the challenge is in its state, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// The state of the challenge at the ACME server; unknown when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AcmeState>,
}

impl Challenge {
    /// The state of the challenge, `None` while unknown.
    pub fn state(&self) -> Option<AcmeState> {
        self.status.as_ref().and_then(|s| s.state)
    }

    /// Whether the scheduler has marked the challenge for processing.
    pub fn is_processing(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.processing)
            .unwrap_or(false)
    }

    /// Whether the solver's resources are in place.
    pub fn is_presented(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.presented)
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::acme::test_support::{assert_round_trip, crd_schema, rule_messages};
    use kube::CustomResourceExt;

    #[test]
    fn http01_challenge_as_cert_manager_writes_it_round_trips() {
        let challenge: Challenge = assert_round_trip(
            r#"
apiVersion: acme.cert-manager.io/v1
kind: Challenge
metadata:
  name: example-com-tls-1-2807719523-3457834588
  namespace: default
  uid: 8d1e0f2a-5b3c-4d6e-8f7a-9b0c1d2e3f4a
  creationTimestamp: "2025-03-01T10:00:02Z"
  finalizers:
  - acme.cert-manager.io/finalizer
  ownerReferences:
  - apiVersion: acme.cert-manager.io/v1
    blockOwnerDeletion: true
    controller: true
    kind: Order
    name: example-com-tls-1-2807719523
    uid: 0b6c5e38-6a37-4c8f-9d55-2c1c0d8c1e7a
spec:
  authorizationURL: https://acme-v02.api.letsencrypt.org/acme/authz/123456789/987654321
  dnsName: example.com
  issuerRef:
    group: cert-manager.io
    kind: ClusterIssuer
    name: letsencrypt-prod
  key: Xq7LwZk3lYtq4d9mQ8mYb9B1cS5rJk2hH0aPz4xW1eE.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI
  solver:
    http01:
      ingress:
        ingressClassName: nginx
        podTemplate:
          spec:
            nodeSelector:
              kubernetes.io/os: linux
  token: Xq7LwZk3lYtq4d9mQ8mYb9B1cS5rJk2hH0aPz4xW1eE
  type: HTTP-01
  url: https://acme-v02.api.letsencrypt.org/acme/chall/123456789/987654321/AbCdEf
  wildcard: false
status:
  presented: true
  presentedAt: "2025-03-01T10:00:04Z"
  processing: true
  reason: "Waiting for HTTP-01 challenge propagation: wrong status code '404', expected '200'"
  state: pending
"#,
        );
        assert_eq!(challenge.spec.type_, ChallengeType::Http01);
        assert_eq!(challenge.state(), Some(AcmeState::Pending));
        assert!(challenge.is_processing() && challenge.is_presented());
        assert_eq!(
            challenge.metadata.finalizers.as_deref(),
            Some(&[CHALLENGE_FINALIZER.to_owned()][..])
        );
    }

    #[test]
    fn dns01_wildcard_challenge_round_trips() {
        let challenge: Challenge = assert_round_trip(
            r#"
apiVersion: acme.cert-manager.io/v1
kind: Challenge
metadata:
  name: wildcard-example-com-1-1822853893-1939271616
  namespace: default
spec:
  authorizationURL: https://acme.example/authz/2
  dnsName: example.com
  issuerRef:
    kind: Issuer
    name: acme
  key: x3n0XJ3Jm2H0cLf7lZpKzQyHk3Ls2m8vQfA4cPqOaYw
  solver:
    selector:
      dnsZones: [example.com]
    dns01:
      rfc2136:
        nameserver: 10.0.0.53:53
        tsigKeyName: certsmith
        tsigAlgorithm: HMACSHA512
        tsigSecretSecretRef:
          name: tsig-secret
          key: tsig-secret-key
  token: bM2iC1iyTo6Wn2VnFzjGmY7tm0lrKkqU9yKyV5Xl1m0
  type: DNS-01
  url: https://acme.example/chall/2
  wildcard: true
status:
  presented: false
  processing: false
  reason: Successfully authorized domain
  state: valid
"#,
        );
        assert_eq!(challenge.spec.type_, ChallengeType::Dns01);
        assert_eq!(challenge.spec.wildcard, Some(true));
        assert!(challenge.state().unwrap().is_final());
        assert!(!challenge.is_processing());
    }

    #[test]
    fn challenge_types() {
        for (t, wire, acme) in [
            (ChallengeType::Http01, "HTTP-01", "http-01"),
            (ChallengeType::Dns01, "DNS-01", "dns-01"),
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), wire);
            assert_eq!(t.to_string(), wire);
            assert_eq!(t.acme_type(), acme);
            assert_eq!(ChallengeType::from_acme_type(acme), Some(t));
        }
        assert_eq!(ChallengeType::from_acme_type("tls-alpn-01"), None);
    }

    #[test]
    fn crd_matches_cert_manager() {
        let crd = Challenge::crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("challenges.acme.cert-manager.io")
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.kind, "Challenge");
        assert_eq!(crd.spec.names.short_names, None);
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["cert-manager".to_owned(), "cert-manager-acme".to_owned()][..])
        );
        let version = &crd.spec.versions[0];
        let columns: Vec<_> = version
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.type_.as_str(),
                    c.json_path.as_str(),
                    c.priority,
                )
            })
            .collect();
        assert_eq!(
            columns,
            [
                ("State", "string", ".status.state", None),
                ("Domain", "string", ".spec.dnsName", None),
                ("Reason", "string", ".status.reason", Some(1)),
                ("Age", "date", ".metadata.creationTimestamp", None),
            ]
        );
        assert_eq!(version.selectable_fields.as_ref().map(Vec::len), Some(3));
        assert!(version.subresources.as_ref().unwrap().status.is_some());

        let schema = crd_schema(&crd);
        assert_eq!(
            schema.pointer("/properties/spec/x-kubernetes-validations/0/rule"),
            Some(&serde_json::json!("self == oldSelf"))
        );
        assert_eq!(
            schema.pointer("/properties/spec/properties/type/enum"),
            Some(&serde_json::json!(["HTTP-01", "DNS-01"]))
        );
        assert_eq!(
            rule_messages(&schema, "/properties/spec/properties/solver"),
            ["each solver must set exactly one of http01 or dns01"]
        );
        let mut required: Vec<&str> = schema
            .pointer("/properties/spec/required")
            .and_then(serde_json::Value::as_array)
            .unwrap()
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        required.sort_unstable();
        assert_eq!(
            required,
            [
                "authorizationURL",
                "dnsName",
                "issuerRef",
                "key",
                "solver",
                "token",
                "type",
                "url"
            ]
        );
    }
}
