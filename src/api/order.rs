//! `acme.cert-manager.io/v1` Order: one ACME order, created for a CertificateRequest of an ACME
//! issuer. The spec is immutable; the status records the ACME URLs, so a restarted controller
//! re-attaches to the same order instead of creating another one.

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::acme::{AcmeState, bytes_schema};
use super::meta::IssuerReference;

/// What to order: the CSR and the identifiers it names, and the issuer to order from.
// Each `printcolumn(...)` repeats keys such as `type_`, which clippy mistakes for duplicated
// attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "acme.cert-manager.io",
    version = "v1",
    kind = "Order",
    namespaced,
    status = "OrderStatus",
    derive = "PartialEq",
    category = "cert-manager",
    category = "cert-manager-acme",
    doc = "An Order is one certificate order at an ACME server, made for a CertificateRequest.",
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(
        name = "Issuer",
        type_ = "string",
        priority = 1,
        json_path = ".spec.issuerRef.name"
    ),
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
    "the spec of an Order cannot be changed; delete the Order (or its CertificateRequest) to order again"
))]
pub struct OrderSpec {
    /// The certificate signing request used to finalize the order (base64-encoded in JSON).
    /// cert-manager copies the PEM CSR of the CertificateRequest here; DER is accepted too.
    #[schemars(schema_with = "bytes_schema")]
    pub request: ByteString,

    /// The ACME Issuer or ClusterIssuer to order from.
    pub issuer_ref: IssuerReference,

    /// The Common Name of the CSR. When set it is also one of `dnsNames` or `ipAddresses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,

    /// The DNS names to order, the same as in the CSR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub dns_names: Option<Vec<String>>,

    /// The IP addresses to order, the same as in the CSR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub ip_addresses: Option<Vec<String>>,

    /// The requested certificate lifetime (a Go duration such as `2160h`), sent as the order's
    /// `notAfter`. Only set when the issuer has `enableDurationFeature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,

    /// The ACME profile to order, from the issuer's `profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,

    /// The ARI CertID (RFC 9773 §4.1, `base64url(AKI).base64url(serial)`) of the certificate
    /// this order replaces. Sent as `replaces` only when the server's directory offers ARI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// The progress of an Order, written by the controller.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrderStatus {
    /// The URL of the order at the ACME server. Set once the order is created, and never
    /// changed afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// The URL to finalize the order at once all authorizations are valid.
    #[serde(
        default,
        rename = "finalizeURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub finalize_url: Option<String>,

    /// The authorizations the server requires before the order can be finalized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub authorizations: Option<Vec<AcmeAuthorization>>,

    /// The issued certificate chain, PEM (base64-encoded in JSON). Set when the order is
    /// `valid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bytes_schema")]
    pub certificate: Option<ByteString>,

    /// The state of the order. `valid`, `invalid`, `expired` and `errored` are final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AcmeState>,

    /// Why the order is in its state, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// When the order failed; drives back-off and clean-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_time: Option<Time>,
}

/// An authorization of an order: one identifier to prove control of.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AcmeAuthorization {
    /// The URL of the authorization at the ACME server.
    pub url: String,

    /// The identifier (DNS name without `*.`, or IP address) to validate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,

    /// Whether the authorization is for a wildcard name; `identifier` then holds the name
    /// without the `*.` prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard: Option<bool>,

    /// The state of the authorization when first fetched. Already `valid` (an authorization
    /// the server reuses) means no Challenge is needed; unset with an identifier means
    /// `pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_state: Option<AcmeState>,

    /// The challenges the server offers for this authorization; one is chosen and solved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub challenges: Option<Vec<AcmeChallenge>>,
}

/// A challenge offered by the ACME server for an authorization.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcmeChallenge {
    /// The URL of the challenge at the ACME server.
    pub url: String,

    /// The challenge token, from which the key authorization is computed.
    pub token: String,

    /// The challenge type exactly as the server names it, e.g. `http-01`, `dns-01` or
    /// `tls-alpn-01`.
    #[serde(rename = "type")]
    pub type_: String,
}

impl Order {
    /// The state of the order, `None` while unknown.
    pub fn state(&self) -> Option<AcmeState> {
        self.status.as_ref().and_then(|s| s.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::acme::test_support::{assert_round_trip, crd_schema, rule_messages};
    use kube::CustomResourceExt;

    /// An Order as cert-manager writes it for a CertificateRequest of a Let's Encrypt
    /// ClusterIssuer, once the certificate has been issued.
    const ORDER: &str = r#"
apiVersion: acme.cert-manager.io/v1
kind: Order
metadata:
  name: example-com-tls-1-2807719523
  namespace: default
  uid: 0b6c5e38-6a37-4c8f-9d55-2c1c0d8c1e7a
  resourceVersion: "48213"
  generation: 1
  creationTimestamp: "2025-03-01T10:00:00Z"
  labels:
    app.kubernetes.io/name: web
  annotations:
    cert-manager.io/certificate-name: example-com-tls
    cert-manager.io/certificate-revision: "1"
    cert-manager.io/private-key-secret-name: example-com-tls-x7k2p
  ownerReferences:
  - apiVersion: cert-manager.io/v1
    blockOwnerDeletion: true
    controller: true
    kind: CertificateRequest
    name: example-com-tls-1
    uid: 5f2c7a8e-3d1b-4c6a-9e0f-7b8a9c0d1e2f
spec:
  commonName: example.com
  dnsNames:
  - example.com
  - www.example.com
  issuerRef:
    group: cert-manager.io
    kind: ClusterIssuer
    name: letsencrypt-prod
  profile: tlsserver
  request: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlIZ01JR0hBZ0VBTUFBd1dUQVRCZ2NxaGtqT1BRSUJCZ2dxaGtqT1BRTUJCd05DQUFRN2szWDF2UzJZZ3YxUAotLS0tLUVORCBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K
status:
  authorizations:
  - challenges:
    - token: Xq7LwZk3lYtq4d9mQ8mYb9B1cS5rJk2hH0aPz4xW1eE
      type: http-01
      url: https://acme-v02.api.letsencrypt.org/acme/chall/123456789/987654321/AbCdEf
    - token: Xq7LwZk3lYtq4d9mQ8mYb9B1cS5rJk2hH0aPz4xW1eE
      type: dns-01
      url: https://acme-v02.api.letsencrypt.org/acme/chall/123456789/987654321/GhIjKl
    - token: Xq7LwZk3lYtq4d9mQ8mYb9B1cS5rJk2hH0aPz4xW1eE
      type: tls-alpn-01
      url: https://acme-v02.api.letsencrypt.org/acme/chall/123456789/987654321/MnOpQr
    identifier: example.com
    initialState: pending
    url: https://acme-v02.api.letsencrypt.org/acme/authz/123456789/987654321
    wildcard: false
  - identifier: www.example.com
    initialState: valid
    url: https://acme-v02.api.letsencrypt.org/acme/authz/123456789/987654322
    wildcard: false
  certificate: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJkakNDQVIyZ0F3SUJBZ0lVVjdkbWQyWnMKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
  finalizeURL: https://acme-v02.api.letsencrypt.org/acme/finalize/123456789/555555555
  state: valid
  url: https://acme-v02.api.letsencrypt.org/acme/order/123456789/555555555
"#;

    #[test]
    fn order_as_cert_manager_writes_it_round_trips() {
        let order: Order = assert_round_trip(ORDER);
        assert!(
            order
                .spec
                .request
                .0
                .starts_with(b"-----BEGIN CERTIFICATE REQUEST-----")
        );
        assert_eq!(order.spec.issuer_ref.kind_or_default(), "ClusterIssuer");
        assert_eq!(order.state(), Some(AcmeState::Valid));
        let status = order.status.as_ref().unwrap();
        let authorizations = status.authorizations.as_ref().unwrap();
        assert_eq!(authorizations[0].initial_state, Some(AcmeState::Pending));
        assert_eq!(
            authorizations[0].challenges.as_ref().unwrap()[2].type_,
            "tls-alpn-01"
        );
        assert_eq!(authorizations[1].initial_state, Some(AcmeState::Valid));
        assert!(
            status
                .certificate
                .as_ref()
                .unwrap()
                .0
                .starts_with(b"-----BEGIN CERTIFICATE-----")
        );
    }

    #[test]
    fn failed_order_round_trips() {
        let order: Order = assert_round_trip(
            r#"
apiVersion: acme.cert-manager.io/v1
kind: Order
metadata:
  name: ip-cert-1-1155669370
  namespace: default
spec:
  ipAddresses: ["192.0.2.10", "2001:db8::10"]
  duration: 160h0m0s
  replaces: aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE
  issuerRef:
    name: pebble
  request: LS0tLS0K
status:
  state: errored
  reason: 'Failed to create Order: 400 urn:ietf:params:acme:error:rejectedIdentifier: Error creating new order'
  failureTime: "2025-03-01T10:05:00Z"
"#,
        );
        assert!(order.state().unwrap().is_failure());
        assert!(order.status.unwrap().failure_time.is_some());
    }

    #[test]
    fn crd_matches_cert_manager() {
        let crd = Order::crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("orders.acme.cert-manager.io")
        );
        assert_eq!(crd.spec.group, "acme.cert-manager.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.kind, "Order");
        assert_eq!(crd.spec.names.plural, "orders");
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
                ("Issuer", "string", ".spec.issuerRef.name", Some(1)),
                ("Reason", "string", ".status.reason", Some(1)),
                ("Age", "date", ".metadata.creationTimestamp", None),
            ]
        );
        let selectable: Vec<_> = version
            .selectable_fields
            .as_ref()
            .unwrap()
            .iter()
            .map(|f| f.json_path.as_str())
            .collect();
        assert_eq!(
            selectable,
            [
                ".spec.issuerRef.group",
                ".spec.issuerRef.kind",
                ".spec.issuerRef.name"
            ]
        );
        assert!(version.subresources.as_ref().unwrap().status.is_some());

        let schema = crd_schema(&crd);
        assert_eq!(
            schema.pointer("/properties/spec/x-kubernetes-validations/0/rule"),
            Some(&serde_json::json!("self == oldSelf"))
        );
        assert_eq!(rule_messages(&schema, "/properties/spec").len(), 1);
        assert_eq!(
            schema.pointer("/properties/spec/properties/request/format"),
            Some(&serde_json::json!("byte"))
        );
        assert_eq!(
            schema.pointer("/properties/status/properties/state/enum"),
            Some(&serde_json::json!([
                "valid",
                "ready",
                "pending",
                "processing",
                "invalid",
                "expired",
                "errored"
            ]))
        );
    }
}
