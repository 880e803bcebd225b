//! `cert-manager.io/v1` CertificateRequest: a one-shot request to an issuer to sign a CSR.
//!
//! The schema mirrors cert-manager v1.21's published CRD field for field. What cert-manager's
//! webhook enforces is expressed as CEL rules: the spec is immutable, and the `Approved` and
//! `Denied` conditions may only be `True`, are mutually exclusive and cannot be changed or
//! removed once set.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::certificate::{
    DURATION_MAX_LENGTH, KeyUsage, go_duration_rule, issuer_kind_rule, issuer_name_rule,
};
use super::meta::{ConditionStatus, IssuerReference};

/// Transition rule on the whole object: an `Approved` or `Denied` condition, once set, stays
/// exactly as it is. It sits at the root so that it also runs when an update drops
/// `status.conditions` or `status` altogether.
const APPROVAL_IS_FINAL_RULE: &str = "!has(oldSelf.status) || !has(oldSelf.status.conditions) || \
     oldSelf.status.conditions.all(o, !(o.type in ['Approved', 'Denied']) || \
       (has(self.status) && has(self.status.conditions) && \
        self.status.conditions.exists(c, c == o)))";

/// Specification of the desired state of the CertificateRequest resource. Immutable after
/// creation.
// Each `printcolumn(...)` repeats keys such as `type_`, which clippy mistakes for duplicated
// attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "CertificateRequest",
    namespaced,
    status = "CertificateRequestStatus",
    derive = "PartialEq",
    shortname = "cr",
    shortname = "crs",
    category = "cert-manager",
    doc = "A CertificateRequest is used to request a signed certificate from one of the \
           configured issuers.\n\n\
           All fields within the CertificateRequest's `spec` are immutable after creation. A \
           CertificateRequest will either succeed or fail, as denoted by its `Ready` status \
           condition and its `status.failureTime` field.\n\n\
           A CertificateRequest is a one-shot resource, meaning it represents a single point in \
           time request for a certificate and cannot be re-used.",
    printcolumn(
        name = "Approved",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type == "Approved")].status"#
    ),
    printcolumn(
        name = "Denied",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type == "Denied")].status"#
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type == "Ready")].status"#
    ),
    printcolumn(name = "Issuer", type_ = "string", json_path = ".spec.issuerRef.name"),
    printcolumn(name = "Requester", type_ = "string", json_path = ".spec.username"),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type == "Ready")].message"#,
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "CreationTimestamp is a timestamp representing the server time when this \
                       object was created. It is not guaranteed to be set in happens-before order \
                       across separate operations. Clients may not set this value. It is \
                       represented in RFC3339 form and is in UTC."
    ),
    selectable = ".spec.issuerRef.group",
    selectable = ".spec.issuerRef.kind",
    selectable = ".spec.issuerRef.name",
    validation = Rule::new(APPROVAL_IS_FINAL_RULE)
        .message("status.conditions: an Approved or Denied condition cannot be changed or removed once set")
        .field_path(".status.conditions")
        .reason(Reason::FieldValueForbidden)
)]
#[x_kube(
    validation = Rule::new("self == oldSelf")
        .message("spec is immutable: create a new CertificateRequest instead")
        .reason(Reason::FieldValueForbidden),
    validation = issuer_name_rule("CertificateRequest"),
    validation = issuer_kind_rule()
)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequestSpec {
    /// Requested 'duration' (i.e. lifetime) of the Certificate. The issuer may ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX_LENGTH))]
    #[x_kube(validation = go_duration_rule("spec.duration"))]
    pub duration: Option<String>,

    /// Reference to the issuer responsible for issuing the certificate. A namespaced issuer must
    /// be in the CertificateRequest's namespace. The `name` field must always be specified.
    pub issuer_ref: IssuerReference,

    /// The PEM-encoded X.509 certificate signing request to be submitted to the issuer for
    /// signing (base64 in JSON). If the CSR has a BasicConstraints extension, its isCA attribute
    /// must match `isCA`; KeyUsage and ExtKeyUsage extensions must match `usages`.
    #[schemars(with = "String", extend("format" = "byte"))]
    #[x_kube(validation = Rule::new("size(self) > 0")
        .message("spec.request must contain a PEM-encoded certificate signing request")
        .reason(Reason::FieldValueRequired))]
    pub request: ByteString,

    /// Requested basic constraints isCA value; the issuer may ignore it. If true, the `cert sign`
    /// usage is added to the requested `usages`.
    #[serde(default, rename = "isCA", skip_serializing_if = "Option::is_none")]
    pub is_ca: Option<bool>,

    /// Requested key usages and extended key usages. If the CSR uses the KeyUsage or ExtKeyUsage
    /// extension, they must match these exactly. If unset, defaults to `digital signature` and
    /// `key encipherment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub usages: Option<Vec<KeyUsage>>,

    /// The name of the user that created the CertificateRequest. Populated on creation and
    /// immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,

    /// The uid of the user that created the CertificateRequest. Populated on creation and
    /// immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,

    /// Group membership of the user that created the CertificateRequest. Populated on creation
    /// and immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub groups: Option<Vec<String>>,

    /// Extra attributes of the user that created the CertificateRequest. Populated on creation
    /// and immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<BTreeMap<String, Vec<String>>>,
}

/// Status of the CertificateRequest. Set and managed by the controller (and approvers).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequestStatus {
    /// Status conditions of the CertificateRequest. Known condition types are `Ready`,
    /// `InvalidRequest`, `Approved` and `Denied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(
        merge_strategy = ListMerge::Map(vec!["type".into()]),
        validation = Rule::new(
            "self.all(c, !(c.type in ['Approved', 'Denied']) || c.status == 'True')"
        )
        .message("status.conditions: Approved and Denied conditions may only have status True"),
        validation = Rule::new(
            "!(self.exists(c, c.type == 'Approved') && self.exists(c, c.type == 'Denied'))"
        )
        .message("status.conditions: a CertificateRequest cannot be both Approved and Denied")
        .reason(Reason::FieldValueForbidden)
    )]
    pub conditions: Option<Vec<CertificateRequestCondition>>,

    /// The PEM encoded X.509 certificate resulting from the certificate signing request (base64
    /// in JSON). If not set, the CertificateRequest has either not completed or has failed; see
    /// `conditions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "byte"))]
    pub certificate: Option<ByteString>,

    /// The PEM encoded X.509 certificate of the signer, also known as the CA, set on a
    /// best-effort basis by issuers (base64 in JSON). If not set, the CA is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "byte"))]
    pub ca: Option<ByteString>,

    /// The time that this CertificateRequest failed; used for garbage collection and back-off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_time: Option<Time>,
}

/// Condition information for a CertificateRequest.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequestCondition {
    /// Type of the condition, known values are (`Ready`, `InvalidRequest`, `Approved`, `Denied`).
    #[serde(rename = "type")]
    pub type_: String,
    /// Status of the condition, one of (`True`, `False`, `Unknown`).
    pub status: ConditionStatus,
    /// The timestamp corresponding to the last status change of this condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// A brief machine readable explanation for the condition's last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human readable description of the details of the last transition, complementing reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl CertificateRequestCondition {
    /// Whether the request has been signed (`True`), is in progress or failed (`False`).
    pub const READY: &'static str = "Ready";
    /// The request is invalid and will never be signed (`True`).
    pub const INVALID_REQUEST: &'static str = "InvalidRequest";
    /// An approver allowed the request to be signed; only ever `True`.
    pub const APPROVED: &'static str = "Approved";
    /// An approver refused the request; only ever `True`.
    pub const DENIED: &'static str = "Denied";

    /// `Ready` reason: the request is being processed.
    pub const REASON_PENDING: &'static str = "Pending";
    /// `Ready` reason: the request failed and will not be retried.
    pub const REASON_FAILED: &'static str = "Failed";
    /// `Ready` reason: the certificate has been issued.
    pub const REASON_ISSUED: &'static str = "Issued";
    /// `Ready` reason: the request was denied.
    pub const REASON_DENIED: &'static str = "Denied";
}

impl CertificateRequest {
    /// The status condition of the given type, if present.
    pub fn condition(&self, type_: &str) -> Option<&CertificateRequestCondition> {
        self.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|condition| condition.type_ == type_)
    }

    fn condition_is_true(&self, type_: &str) -> bool {
        self.condition(type_)
            .is_some_and(|condition| condition.status == ConditionStatus::True)
    }

    /// Whether the `Approved` condition is `True`.
    pub fn is_approved(&self) -> bool {
        self.condition_is_true(CertificateRequestCondition::APPROVED)
    }

    /// Whether the `Denied` condition is `True`.
    pub fn is_denied(&self) -> bool {
        self.condition_is_true(CertificateRequestCondition::DENIED)
    }

    /// Whether the `InvalidRequest` condition is `True`.
    pub fn is_invalid_request(&self) -> bool {
        self.condition_is_true(CertificateRequestCondition::INVALID_REQUEST)
    }

    /// Whether the `Ready` condition is `True` (the certificate has been issued).
    pub fn is_ready(&self) -> bool {
        self.condition_is_true(CertificateRequestCondition::READY)
    }

    /// The reason of the `Ready` condition, if present.
    pub fn ready_reason(&self) -> Option<&str> {
        self.condition(CertificateRequestCondition::READY)?
            .reason
            .as_deref()
    }

    /// Whether the request has reached a final state: issued, failed, denied or invalid.
    pub fn is_finished(&self) -> bool {
        self.is_ready()
            || self.is_denied()
            || self.is_invalid_request()
            || self.ready_reason() == Some(CertificateRequestCondition::REASON_FAILED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::CustomResourceExt;
    use serde_json::{Value, json};

    const FULL_CERTIFICATE_REQUEST: &str = r#"
apiVersion: cert-manager.io/v1
kind: CertificateRequest
metadata:
  name: example-com-4
  namespace: web
  annotations:
    cert-manager.io/certificate-name: example-com
    cert-manager.io/certificate-revision: "4"
    cert-manager.io/private-key-secret-name: example-com-x7k2p
spec:
  duration: 2160h0m0s
  issuerRef:
    name: letsencrypt
    kind: ClusterIssuer
    group: cert-manager.io
  request: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlJQi4uLgotLS0tLUVORCBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K
  isCA: false
  usages: [digital signature, key encipherment, server auth]
  username: system:serviceaccount:cert-manager:cert-manager
  uid: 6c1e2a43-8a52-4e06-9a4d-a3b0c1e2f3a4
  groups: [system:serviceaccounts, system:authenticated]
  extra:
    authentication.kubernetes.io/pod-name: [cert-manager-5d7f9c8b6-abcde]
status:
  conditions:
    - type: Approved
      status: "True"
      lastTransitionTime: "2026-07-01T10:00:00Z"
      reason: cert-manager.io
      message: Certificate request has been approved by cert-manager.io
    - type: Ready
      status: "True"
      lastTransitionTime: "2026-07-01T10:00:05Z"
      reason: Issued
      message: Certificate fetched from issuer successfully
  certificate: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUMuLi4KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
  ca: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUQuLi4KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
  failureTime: "2026-06-30T09:00:00Z"
"#;

    #[test]
    fn full_certificate_request_round_trips() {
        let request: CertificateRequest = serde_saphyr::from_str(FULL_CERTIFICATE_REQUEST).unwrap();
        let expected: Value = serde_saphyr::from_str(FULL_CERTIFICATE_REQUEST).unwrap();
        assert_eq!(serde_json::to_value(&request).unwrap(), expected);

        assert!(
            request
                .spec
                .request
                .0
                .starts_with(b"-----BEGIN CERTIFICATE REQUEST-----")
        );
        let status = request.status.as_ref().unwrap();
        assert!(
            status
                .certificate
                .as_ref()
                .unwrap()
                .0
                .starts_with(b"-----BEGIN CERTIFICATE-----")
        );
        assert!(request.is_approved());
        assert!(!request.is_denied());
        assert!(request.is_ready());
        assert!(request.is_finished());
        assert_eq!(request.ready_reason(), Some("Issued"));
    }

    #[test]
    fn minimal_certificate_request_keeps_absent_fields_absent() {
        let yaml = r#"
apiVersion: cert-manager.io/v1
kind: CertificateRequest
metadata:
  name: minimal
spec:
  issuerRef:
    name: ca
  request: LS0tLS1CRUdJTi0tLS0tCg==
"#;
        let request: CertificateRequest = serde_saphyr::from_str(yaml).unwrap();
        let expected: Value = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(serde_json::to_value(&request).unwrap(), expected);
        assert!(!request.is_approved());
        assert!(!request.is_finished());
    }

    fn crd_json() -> Value {
        serde_json::to_value(CertificateRequest::crd()).unwrap()
    }

    #[test]
    fn crd_names_columns_and_selectable_fields_match_cert_manager() {
        let crd = crd_json();
        assert_eq!(
            crd["metadata"]["name"],
            "certificaterequests.cert-manager.io"
        );
        let spec = &crd["spec"];
        assert_eq!(spec["scope"], "Namespaced");
        // `listKind` is left out: the API server defaults it to `<kind>List`, as cert-manager's is.
        assert_eq!(
            spec["names"],
            json!({
                "categories": ["cert-manager"],
                "kind": "CertificateRequest",
                "plural": "certificaterequests",
                "shortNames": ["cr", "crs"],
                "singular": "certificaterequest",
            })
        );
        let version = &spec["versions"][0];
        assert_eq!(version["subresources"], json!({"status": {}}));
        let columns: Vec<(String, String, String, Option<i64>)> =
            version["additionalPrinterColumns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|column| {
                    (
                        column["name"].as_str().unwrap().to_owned(),
                        column["type"].as_str().unwrap().to_owned(),
                        column["jsonPath"].as_str().unwrap().to_owned(),
                        column["priority"].as_i64(),
                    )
                })
                .collect();
        let expected = [
            (
                "Approved",
                "string",
                r#".status.conditions[?(@.type == "Approved")].status"#,
                None,
            ),
            (
                "Denied",
                "string",
                r#".status.conditions[?(@.type == "Denied")].status"#,
                None,
            ),
            (
                "Ready",
                "string",
                r#".status.conditions[?(@.type == "Ready")].status"#,
                None,
            ),
            ("Issuer", "string", ".spec.issuerRef.name", None),
            ("Requester", "string", ".spec.username", None),
            (
                "Status",
                "string",
                r#".status.conditions[?(@.type == "Ready")].message"#,
                Some(1),
            ),
            ("Age", "date", ".metadata.creationTimestamp", None),
        ]
        .map(|(n, t, p, prio)| (n.to_owned(), t.to_owned(), p.to_owned(), prio));
        assert_eq!(columns, expected);
        assert_eq!(
            version["selectableFields"],
            json!([
                {"jsonPath": ".spec.issuerRef.group"},
                {"jsonPath": ".spec.issuerRef.kind"},
                {"jsonPath": ".spec.issuerRef.name"},
            ])
        );
    }

    #[test]
    fn schema_matches_cert_manager() {
        let crd = crd_json();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let spec = &schema["properties"]["spec"];
        let mut fields: Vec<&String> = spec["properties"].as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "duration",
                "extra",
                "groups",
                "isCA",
                "issuerRef",
                "request",
                "uid",
                "usages",
                "username"
            ]
        );
        let mut required: Vec<&str> = spec["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort();
        assert_eq!(required, ["issuerRef", "request"]);
        assert_eq!(spec["properties"]["request"]["format"], "byte");
        assert_eq!(spec["properties"]["request"]["type"], "string");
        assert_eq!(
            spec["properties"]["usages"]["items"]["enum"]
                .as_array()
                .unwrap()
                .len(),
            23
        );
        assert_eq!(
            spec["properties"]["extra"]["additionalProperties"]["items"]["type"],
            "string"
        );
        let spec_rules = spec["x-kubernetes-validations"].as_array().unwrap();
        assert_eq!(spec_rules[0]["rule"], "self == oldSelf");
        assert_eq!(
            spec_rules[0]["message"],
            "spec is immutable: create a new CertificateRequest instead"
        );

        let status = &schema["properties"]["status"]["properties"];
        for field in ["ca", "certificate"] {
            assert_eq!(status[field]["format"], "byte");
        }
        assert_eq!(status["failureTime"]["format"], "date-time");
        let conditions = &status["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
        assert_eq!(conditions["maxItems"], 32);
        assert_eq!(
            conditions["x-kubernetes-validations"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let mut condition_fields: Vec<&String> = conditions["items"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        condition_fields.sort();
        assert_eq!(
            condition_fields,
            ["lastTransitionTime", "message", "reason", "status", "type"]
        );

        let root_rules = schema["x-kubernetes-validations"].as_array().unwrap();
        assert_eq!(root_rules.len(), 1);
        assert!(
            root_rules[0]["rule"]
                .as_str()
                .unwrap()
                .contains("oldSelf.status")
        );
    }
}
