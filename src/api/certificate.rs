//! `cert-manager.io/v1` Certificate: a request to keep a signed X.509 certificate up to date in a
//! Secret.
//!
//! The schema mirrors cert-manager v1.21's published CRD field for field. cert-manager validates
//! Certificates in an admission webhook; certsmith has no webhook, so the same checks are CEL rules
//! (`x-kubernetes-validations`) that the API server runs. Lists and strings that a rule iterates
//! carry a generous `maxItems`/`maxLength` so that the API server's CEL cost estimate stays within
//! budget; nothing else is bounded.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::{Message, Reason, Rule};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::{ConditionStatus, IssuerReference, SecretKeySelector};

/// Requested lifetime when `spec.duration` is unset (90 days).
pub const DEFAULT_DURATION: &str = "2160h";
/// Shortest `spec.duration` cert-manager accepts.
pub const MINIMUM_DURATION: &str = "1h";
/// Shortest `spec.renewBefore` cert-manager accepts.
pub const MINIMUM_RENEW_BEFORE: &str = "5m";

/// RE2 pattern (usable inside a single-quoted CEL string: no backslashes, no quotes) matching what
/// Go's `time.ParseDuration` accepts, e.g. `2160h`, `1h30m`, `90m`, `1.5h`, `0`.
/// Guarding `duration(x)` with it keeps a malformed value from turning into a CEL evaluation error.
pub(crate) const GO_DURATION_PATTERN: &str =
    "^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$";

/// Longest duration string accepted (bounds the cost of the CEL regex).
pub(crate) const DURATION_MAX_LENGTH: u32 = 64;

/// A CEL rule on a duration string: it must parse as a Go duration.
pub(crate) fn go_duration_rule(field: &str) -> Rule {
    Rule::new(format!("self.matches('{GO_DURATION_PATTERN}')")).message(Message::Message(format!(
        "{field} must be a duration such as 2160h, 90m or 1h30m (units h, m, s, ms, us, ns)"
    )))
}

/// A CEL rule on a duration string: at least `min`. Passes malformed values, which
/// [`go_duration_rule`] reports.
fn min_duration_rule(field: &str, min: &str) -> Rule {
    Rule::new(format!(
        "!self.matches('{GO_DURATION_PATTERN}') || duration(self) >= duration('{min}')"
    ))
    .message(Message::Message(format!(
        "{field} must be at least {min} (cert-manager's minimum)"
    )))
}

/// Schema transform for an `Option<enum>` field: schemars lists `null` among the enum values, which
/// the API server then prints in every "supported values" error. (An explicit null is rejected
/// by the enum check either way.)
fn drop_null_from_enum(schema: &mut schemars::Schema) {
    if let Some(serde_json::Value::Array(values)) = schema.get_mut("enum") {
        values.retain(|value| !value.is_null());
    }
}

/// Schema transform for a field that is a Go `int` in cert-manager: its CRD has no `format`.
fn drop_format(schema: &mut schemars::Schema) {
    schema.remove("format");
}

/// CEL rule on the whole spec: `issuerRef.name` must be set.
pub(crate) fn issuer_name_rule(kind: &str) -> Rule {
    Rule::new("self.issuerRef.name != ''")
        .message(Message::Message(format!(
            "spec.issuerRef.name must name the Issuer or ClusterIssuer that signs this {kind}"
        )))
        .field_path(".issuerRef.name")
        .reason(Reason::FieldValueRequired)
}

/// CEL rule on the whole spec: within the `cert-manager.io` group (the default) only `Issuer` and
/// `ClusterIssuer` exist.
pub(crate) fn issuer_kind_rule() -> Rule {
    Rule::new(
        "!(self.issuerRef.?group.orValue('') in ['', 'cert-manager.io']) || \
         self.issuerRef.?kind.orValue('') in ['', 'Issuer', 'ClusterIssuer']",
    )
    .message(
        "spec.issuerRef.kind must be Issuer or ClusterIssuer (set spec.issuerRef.group to use an \
         external issuer)",
    )
    .field_path(".issuerRef.kind")
}

/// `a || b || …` over the identity fields, at least one of which cert-manager requires.
const IDENTITY_RULE: &str = "self.?commonName.orValue('') != '' || \
     (has(self.literalSubject) && \
      self.literalSubject.matches('(^|[,+])[[:space:]]*(?i:cn|commonname|2[.]5[.]4[.]3)[[:space:]]*=')) || \
     self.?dnsNames.orValue([]).size() > 0 || \
     self.?uris.orValue([]).size() > 0 || \
     self.?ipAddresses.orValue([]).size() > 0 || \
     self.?emailAddresses.orValue([]).size() > 0 || \
     self.?otherNames.orValue([]).size() > 0";

/// `literalSubject` excludes every attribute of `subject` (an empty `subject: {}` is tolerated, as
/// in cert-manager).
const LITERAL_SUBJECT_EXCLUDES_SUBJECT_RULE: &str = "self.?literalSubject.orValue('') == '' || \
     !has(self.subject) || \
     (self.subject.?organizations.orValue([]).size() == 0 && \
      self.subject.?countries.orValue([]).size() == 0 && \
      self.subject.?organizationalUnits.orValue([]).size() == 0 && \
      self.subject.?localities.orValue([]).size() == 0 && \
      self.subject.?provinces.orValue([]).size() == 0 && \
      self.subject.?streetAddresses.orValue([]).size() == 0 && \
      self.subject.?postalCodes.orValue([]).size() == 0 && \
      self.subject.?serialNumber.orValue('') == '')";

/// `spec.duration` with its default applied, as a CEL expression. (A conditional rather than
/// `self.?duration.orValue(…)`: the cost estimator keeps the `maxLength` through a conditional but
/// not through `orValue`.)
const DURATION_OR_DEFAULT: &str = "(has(self.duration) ? self.duration : '2160h')";

fn renew_before_below_duration_rule() -> Rule {
    Rule::new(format!(
        "!has(self.renewBefore) || \
         !self.renewBefore.matches('{GO_DURATION_PATTERN}') || \
         !{DURATION_OR_DEFAULT}.matches('{GO_DURATION_PATTERN}') || \
         duration(self.renewBefore) < duration({DURATION_OR_DEFAULT})"
    ))
    .message(
        "spec.renewBefore must be shorter than spec.duration (which defaults to 2160h, 90 days)",
    )
    .field_path(".renewBefore")
}

/// cert-manager checks `duration * (100 - renewBeforePercentage) / 100 >= 5m`; 5m = 300000 ms.
fn renew_before_percentage_minimum_rule() -> Rule {
    Rule::new(format!(
        "!has(self.renewBeforePercentage) || \
         self.renewBeforePercentage <= 0 || self.renewBeforePercentage >= 100 || \
         !{DURATION_OR_DEFAULT}.matches('{GO_DURATION_PATTERN}') || \
         duration({DURATION_OR_DEFAULT}).getMilliseconds() * \
           (100 - self.renewBeforePercentage) >= 30000000"
    ))
    .message(
        "spec.renewBeforePercentage is too large for spec.duration: cert-manager requires \
         duration * (100 - renewBeforePercentage) / 100 to be at least 5m",
    )
    .field_path(".renewBeforePercentage")
}

/// Which signature algorithms go with which key algorithm (RSA when unset).
const SIGNATURE_ALGORITHM_RULE: &str = "!has(self.signatureAlgorithm) || \
     (self.?privateKey.?algorithm.orValue('RSA') == 'RSA' \
        ? self.signatureAlgorithm in ['SHA256WithRSA', 'SHA384WithRSA', 'SHA512WithRSA'] \
        : self.?privateKey.?algorithm.orValue('RSA') == 'ECDSA' \
          ? self.signatureAlgorithm in ['ECDSAWithSHA256', 'ECDSAWithSHA384', 'ECDSAWithSHA512'] \
          : self.signatureAlgorithm == 'PureEd25519')";

/// Specification of the desired state of the Certificate resource.
// Each `printcolumn(...)` repeats keys such as `type_`, which clippy mistakes for duplicated
// attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "Certificate",
    namespaced,
    status = "CertificateStatus",
    derive = "PartialEq",
    shortname = "cert",
    shortname = "certs",
    category = "cert-manager",
    doc = "A Certificate resource should be created to ensure an up to date and signed X.509 \
           certificate is stored in the Kubernetes Secret resource named in `spec.secretName`.\n\n\
           The stored certificate will be renewed before it expires (as configured by \
           `spec.renewBefore`).",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type == "Ready")].status"#
    ),
    printcolumn(name = "Secret", type_ = "string", json_path = ".spec.secretName"),
    printcolumn(
        name = "Issuer",
        type_ = "string",
        json_path = ".spec.issuerRef.name",
        priority = 1
    ),
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
    selectable = ".spec.issuerRef.name"
)]
#[x_kube(
    validation = Rule::new(IDENTITY_RULE)
        .message(
            "at least one of spec.commonName (or a CN in spec.literalSubject), spec.dnsNames, \
             spec.uris, spec.ipAddresses, spec.emailAddresses or spec.otherNames must be set",
        )
        .reason(Reason::FieldValueRequired),
    validation = Rule::new(
        "self.?literalSubject.orValue('') == '' || self.?commonName.orValue('') == ''",
    )
    .message(
        "spec.commonName cannot be combined with spec.literalSubject: put the CN into the \
         literal subject instead",
    )
    .field_path(".commonName")
    .reason(Reason::FieldValueForbidden),
    validation = Rule::new(LITERAL_SUBJECT_EXCLUDES_SUBJECT_RULE)
        .message(
            "spec.subject cannot be combined with spec.literalSubject: put all subject \
             attributes into the literal subject instead",
        )
        .field_path(".subject")
        .reason(Reason::FieldValueForbidden),
    validation = renew_before_below_duration_rule(),
    validation = Rule::new("!has(self.renewBefore) || !has(self.renewBeforePercentage)")
        .message(
            "spec.renewBefore and spec.renewBeforePercentage are mutually exclusive: set only one",
        )
        .field_path(".renewBeforePercentage")
        .reason(Reason::FieldValueForbidden),
    validation = renew_before_percentage_minimum_rule(),
    validation = Rule::new("!has(self.nameConstraints) || self.?isCA.orValue(false)")
        .message("spec.nameConstraints is only allowed on a CA certificate (spec.isCA: true)")
        .field_path(".nameConstraints")
        .reason(Reason::FieldValueForbidden),
    validation = Rule::new(SIGNATURE_ALGORITHM_RULE)
        .message(
            "spec.signatureAlgorithm does not match the key algorithm: RSA keys (the default) take \
             SHA256WithRSA, SHA384WithRSA or SHA512WithRSA, ECDSA keys take ECDSAWithSHA256, \
             ECDSAWithSHA384 or ECDSAWithSHA512, Ed25519 keys take PureEd25519",
        )
        .field_path(".signatureAlgorithm"),
    validation = issuer_name_rule("Certificate"),
    validation = issuer_kind_rule()
)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSpec {
    /// Requested set of X509 certificate subject attributes. The common name attribute is
    /// specified separately in the `commonName` field. Cannot be set if the `literalSubject` field
    /// is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<X509Subject>,

    /// Requested X.509 certificate subject, represented using the LDAP "String Representation of
    /// a Distinguished Name" (RFC 4514), e.g. `CN=foo,DC=corp,DC=example,DC=com`. The order of
    /// the attributes is kept. Cannot be set if the `subject` or `commonName` field is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub literal_subject: Option<String>,

    /// Requested common name X509 certificate subject attribute. TLS clients ignore it when any
    /// subject alternative name is set. 64 characters or fewer. Cannot be set if the
    /// `literalSubject` field is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub common_name: Option<String>,

    /// Requested 'duration' (i.e. lifetime) of the Certificate. The issuer may ignore it. If unset,
    /// this defaults to 90 days. Minimum accepted duration is 1 hour. Value must be in units
    /// accepted by Go time.ParseDuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX_LENGTH))]
    #[x_kube(
        validation = go_duration_rule("spec.duration"),
        validation = min_duration_rule("spec.duration", MINIMUM_DURATION)
    )]
    pub duration: Option<String>,

    /// How long before the currently issued certificate's expiry the certificate should be
    /// renewed. The actual lifetime of the issued certificate is used. If unset, renewal happens
    /// after 2/3 of the lifetime. Minimum accepted value is 5 minutes. Value must be in units
    /// accepted by Go time.ParseDuration. Cannot be set if the `renewBeforePercentage` field is
    /// set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX_LENGTH))]
    #[x_kube(
        validation = go_duration_rule("spec.renewBefore"),
        validation = min_duration_rule("spec.renewBefore", MINIMUM_RENEW_BEFORE)
    )]
    pub renew_before: Option<String>,

    /// Like `renewBefore`, but a percentage of the issued certificate's lifetime. Value must be an
    /// integer in the range (0,100). The minimum effective `renewBefore` derived from
    /// `renewBeforePercentage` and `duration` is 5 minutes. Cannot be set if the `renewBefore`
    /// field is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0 && self < 100").message(
        "spec.renewBeforePercentage must be between 1 and 99 (a percentage of the certificate's \
         lifetime)"
    ))]
    pub renew_before_percentage: Option<i32>,

    /// How the certificate is renewed. With policy `RenewBefore` the controller respects
    /// `renewBefore` and `renewBeforePercentage`, moved into the next renewal window if windows are
    /// set; with `Disabled` the certificate is not renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<CertificateRenewal>,

    /// Requested DNS subject alternative names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub dns_names: Option<Vec<String>>,

    /// Requested IP address subject alternative names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000), inner(length(max = 64)))]
    #[x_kube(
        merge_strategy = ListMerge::Atomic,
        validation = Rule::new("self.all(ip, isIP(ip))")
            .message("spec.ipAddresses must contain only IPv4 or IPv6 addresses, e.g. 10.0.0.1 or 2001:db8::1")
    )]
    pub ip_addresses: Option<Vec<String>>,

    /// Requested URI subject alternative names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub uris: Option<Vec<String>>,

    /// An escape hatch for SANs of any type; only UTF8String-valued otherNames are supported, e.g.
    /// a UPN with `oid: 1.3.6.1.4.1.311.20.2.3`. The OID is not checked to be valid for the
    /// UTF8String type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub other_names: Option<Vec<OtherName>>,

    /// Requested email subject alternative names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000), inner(length(max = 320)))]
    #[x_kube(
        merge_strategy = ListMerge::Atomic,
        validation = Rule::new("self.all(e, e.matches('^[^@<>()[:space:]]+@[^@<>()[:space:]]+$'))")
            .message("spec.emailAddresses must contain only bare email addresses such as user@example.com (no display names)")
    )]
    pub email_addresses: Option<Vec<String>>,

    /// Name of the Secret resource that will be automatically created and managed by this
    /// Certificate resource. It will be populated with a private key and certificate, signed by
    /// the denoted issuer. The Secret lives in the same namespace as the Certificate.
    #[schemars(length(max = 253))]
    #[x_kube(
        validation = Rule::new("self != ''")
            .message("spec.secretName must name the Secret to store the certificate in")
            .reason(Reason::FieldValueRequired),
        validation = Rule::new(
            "self == '' || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')"
        )
        .message(
            "spec.secretName must be a valid Secret name: lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit"
        )
    )]
    pub secret_name: String,

    /// Annotations and labels to be copied to the Certificate's Secret. They are added to, and
    /// cannot overwrite, the annotations cert-manager sets on the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_template: Option<CertificateSecretTemplate>,

    /// Additional keystore output formats to be stored in the Certificate's Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystores: Option<CertificateKeystores>,

    /// Reference to the issuer responsible for issuing the certificate. A namespaced issuer must
    /// be in the Certificate's namespace. The `name` field must always be specified.
    pub issuer_ref: IssuerReference,

    /// Requested basic constraints isCA value; the issuer may ignore it. If true, the `cert sign`
    /// usage is added to the requested `usages`.
    #[serde(default, rename = "isCA", skip_serializing_if = "Option::is_none")]
    pub is_ca: Option<bool>,

    /// Requested key usages and extended key usages. If unset, defaults to `digital signature` and
    /// `key encipherment`. Encoded into the CSR unless `encodeUsagesInRequest` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub usages: Option<Vec<KeyUsage>>,

    /// Private key options: algorithm and size, encoding and rotation policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<CertificatePrivateKey>,

    /// Signature algorithm to use. RSA keys: SHA256WithRSA, SHA384WithRSA, SHA512WithRSA. ECDSA
    /// keys: ECDSAWithSHA256, ECDSAWithSHA384, ECDSAWithSHA512. Ed25519 keys: PureEd25519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_null_from_enum)]
    pub signature_algorithm: Option<SignatureAlgorithm>,

    /// Whether the KeyUsage and ExtKeyUsage extensions should be set in the encoded CSR. Defaults
    /// to true; disable only for issuers that reject CSRs with these extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encode_usages_in_request: Option<bool>,

    /// The maximum number of CertificateRequest revisions kept in the Certificate's history;
    /// oldest are removed first. Must be 1 or greater. Default value is 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message(
        "spec.revisionHistoryLimit must be at least 1"
    ))]
    pub revision_history_limit: Option<i32>,

    /// Extra output formats of the private key and signed certificate chain to be written to
    /// this Certificate's target Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    #[x_kube(
        merge_strategy = ListMerge::Atomic,
        validation = Rule::new("self.all(f, self.exists_one(g, g.type == f.type))")
            .message("spec.additionalOutputFormats must not list the same type twice")
    )]
    pub additional_output_formats: Option<Vec<CertificateAdditionalOutputFormat>>,

    /// X.509 NameConstraints extension, which MUST NOT be used in a non-CA certificate (RFC 5280
    /// section 4.2.1.10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_constraints: Option<NameConstraints>,
}

/// X.509 subject attributes other than the common name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct X509Subject {
    /// Organizations to be used on the Certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub organizations: Option<Vec<String>>,
    /// Countries to be used on the Certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub countries: Option<Vec<String>>,
    /// Organizational Units to be used on the Certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub organizational_units: Option<Vec<String>>,
    /// Cities to be used on the Certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub localities: Option<Vec<String>>,
    /// State/Provinces to be used on the Certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub provinces: Option<Vec<String>>,
    /// Street addresses to be used on the Certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub street_addresses: Option<Vec<String>>,
    /// Postal codes to be used on the Certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub postal_codes: Option<Vec<String>>,
    /// Serial number to be used on the Certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
}

/// How a certificate is renewed (cert-manager v1.21).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(
    validation = Rule::new("has(self.policy)")
        .message("spec.renewal.policy must be set to RenewBefore or Disabled")
        .field_path(".policy")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("self.?policy.orValue('') != 'Disabled' || self.?windows.orValue([]).size() == 0")
        .message("spec.renewal.windows cannot be set when spec.renewal.policy is Disabled")
        .field_path(".windows")
        .reason(Reason::FieldValueForbidden)
)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRenewal {
    /// `policy` must be one of `Disabled`, `RenewBefore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_null_from_enum)]
    pub policy: Option<RenewalPolicy>,
    /// When the renewal may happen; renewal is moved into the next window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub windows: Option<Vec<CertificateRenewalWindow>>,
}

/// `spec.renewal.policy`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RenewalPolicy {
    // Renew as configured by renewBefore / renewBeforePercentage (and windows).
    RenewBefore,
    // Never renew.
    Disabled,
}

/// A renewal window: a cron schedule of window starts and how long each window lasts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRenewalWindow {
    /// IANA time zone, for example America/Denver. If this field is not set, the time zone is UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new(
        "self.matches('^[A-Za-z][-A-Za-z0-9_+]*(/[-A-Za-z0-9_+]+)*$')"
    )
    .message("spec.renewal.windows[].timezone must be an IANA time zone such as UTC or Europe/Berlin"))]
    pub timezone: Option<String>,

    /// How long each window is open. Value must be in units accepted by Go time.ParseDuration.
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(s|m|h))+$"))]
    pub window_duration: String,

    /// A 5-field cron expression (minute, hour, day of month, month, day of week) of the window
    /// starts, e.g. `0 2 * * 1-5`.
    #[schemars(length(min = 1, max = 256))]
    #[x_kube(validation = Rule::new(
        "self.matches('^[[:space:]]*[^[:space:]]+([[:space:]]+[^[:space:]]+){4}[[:space:]]*$')"
    )
    .message(
        "spec.renewal.windows[].cron must have five fields: minute hour day-of-month month \
         day-of-week, e.g. '0 2 * * 1-5'"
    ))]
    pub cron: String,
}

/// A UTF8String otherName subject alternative name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(
    validation = Rule::new("self.?oid.orValue('') != ''")
        .message("spec.otherNames[].oid must be set")
        .field_path(".oid")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new("self.?oid.orValue('') == '' || self.oid.matches('^[0-9]+([.][0-9]+)+$')")
        .message("spec.otherNames[].oid must be a dotted object identifier such as 1.3.6.1.4.1.311.20.2.3")
        .field_path(".oid"),
    validation = Rule::new("self.?utf8Value.orValue('') != ''")
        .message("spec.otherNames[].utf8Value must be a non-empty string")
        .field_path(".utf8Value")
        .reason(Reason::FieldValueRequired)
)]
pub struct OtherName {
    /// The object identifier for the otherName SAN, as a dotted string, e.g.
    /// "1.2.840.113556.1.4.221".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub oid: Option<String>,
    /// The UTF8 string value of the otherName SAN.
    #[serde(default, rename = "utf8Value", skip_serializing_if = "Option::is_none")]
    pub utf8_value: Option<String>,
}

/// Annotations and labels copied onto the Certificate's Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSecretTemplate {
    /// Annotations is a key value map to be copied to the target Kubernetes Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 1000))]
    #[x_kube(validation = Rule::new(
        "self.all(k, !k.startsWith('cert-manager.io/') || k == 'cert-manager.io/allow-direct-injection')"
    )
    .message(
        "spec.secretTemplate.annotations must not contain cert-manager.io/ annotations: \
         cert-manager sets those itself"
    ))]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels is a key value map to be copied to the target Kubernetes Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Additional keystore formats written into the Certificate's Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateKeystores {
    /// Options for storing a JKS keystore (`keystore.jks`, and `truststore.jks` with the CA) in
    /// the `spec.secretName` Secret resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jks: Option<JksKeystore>,
    /// Options for storing a PKCS12 keystore (`keystore.p12`, and `truststore.p12` with the CA)
    /// in the `spec.secretName` Secret resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs12: Option<Pkcs12Keystore>,
}

/// `password` and `passwordSecretRef` (with a name): exactly one of them.
const KEYSTORE_PASSWORD_RULE: &str =
    "has(self.password) != (self.?passwordSecretRef.?name.orValue('') != '')";

/// JKS keystore options.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new(KEYSTORE_PASSWORD_RULE).message(
    "spec.keystores.jks needs exactly one of password or passwordSecretRef"
))]
#[serde(rename_all = "camelCase")]
pub struct JksKeystore {
    /// Create enables JKS keystore creation for the Certificate. If true, `keystore.jks` is
    /// created in the target Secret, encrypted with the password from `passwordSecretRef` or
    /// `password`, and `truststore.jks` if the issuer provided a CA certificate.
    pub create: bool,
    /// The alias of the key in the keystore. If not provided, the default alias `certificate`
    /// is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// A reference to a non-empty key in a Secret resource containing the password used to
    /// encrypt the JKS keystore. Mutually exclusive with password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeySelector>,
    /// A literal password used to encrypt the JKS keystore. Mutually exclusive with
    /// passwordSecretRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self != ''").message(
        "spec.keystores.jks.password must not be empty"
    ))]
    pub password: Option<String>,
}

impl JksKeystore {
    /// The key alias with cert-manager's default applied.
    pub fn alias_or_default(&self) -> &str {
        match self.alias.as_deref() {
            None | Some("") => "certificate",
            Some(alias) => alias,
        }
    }
}

/// PKCS#12 keystore options.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new(KEYSTORE_PASSWORD_RULE).message(
    "spec.keystores.pkcs12 needs exactly one of password or passwordSecretRef"
))]
#[serde(rename_all = "camelCase")]
pub struct Pkcs12Keystore {
    /// Create enables PKCS12 keystore creation for the Certificate. If true, `keystore.p12` is
    /// created in the target Secret, encrypted with the password from `passwordSecretRef` or
    /// `password`, and `truststore.p12` if the issuer provided a CA certificate.
    pub create: bool,
    /// The key and certificate encryption algorithms and the HMAC algorithm used to create the
    /// keystore. Default value is `LegacyRC2` for backward compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_null_from_enum)]
    pub profile: Option<Pkcs12Profile>,
    /// A reference to a non-empty key in a Secret resource containing the password used to
    /// encrypt the PKCS#12 keystore. Mutually exclusive with password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeySelector>,
    /// A literal password used to encrypt the PKCS#12 keystore. Mutually exclusive with
    /// passwordSecretRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self != ''").message(
        "spec.keystores.pkcs12.password must not be empty"
    ))]
    pub password: Option<String>,
}

/// Encryption profile of a PKCS#12 keystore.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Pkcs12Profile {
    // Deprecated. Not supported by default in OpenSSL 3 or Java 20. The default.
    #[default]
    LegacyRC2,
    // Less secure algorithm; maximal compatibility.
    LegacyDES,
    // PBES2 with PBKDF2-HMAC-SHA-256 and AES-256-CBC, MAC with HMAC-SHA-256.
    Modern2023,
    // Like Modern2023 but with a PBMAC1 MAC (OpenSSL >= 3.4, Java >= 26); FIPS 140-3 (v1.21).
    Modern2026,
}

/// Private key options of a Certificate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(
    validation = Rule::new(
        "!has(self.size) || self.size <= 0 || self.?algorithm.orValue('RSA') != 'RSA' || \
         (self.size >= 2048 && self.size <= 8192)"
    )
    .message("spec.privateKey.size must be between 2048 and 8192 for RSA keys")
    .field_path(".size"),
    validation = Rule::new(
        "!has(self.size) || self.size <= 0 || self.?algorithm.orValue('RSA') != 'ECDSA' || \
         self.size in [256, 384, 521]"
    )
    .message("spec.privateKey.size must be 256, 384 or 521 for ECDSA keys")
    .field_path(".size")
)]
#[serde(rename_all = "camelCase")]
pub struct CertificatePrivateKey {
    /// How private keys are regenerated when a re-issuance is processed. `Never`: a key is only
    /// generated if none exists in the target Secret. `Always`: a new key is generated for every
    /// re-issuance. Default is `Always` (changed from `Never` in cert-manager v1.18).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_null_from_enum)]
    pub rotation_policy: Option<PrivateKeyRotationPolicy>,
    /// The PKCS encoding of the private key: `PKCS1` (the default) or `PKCS8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_null_from_enum)]
    pub encoding: Option<PrivateKeyEncoding>,
    /// The private key algorithm: `RSA` (the default), `ECDSA` or `Ed25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_null_from_enum)]
    pub algorithm: Option<PrivateKeyAlgorithm>,
    /// The key bit size. RSA: 2048 to 8192, default 2048. ECDSA: 256, 384 or 521, default 256.
    /// Ignored for Ed25519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_format)]
    pub size: Option<i64>,
}

impl CertificatePrivateKey {
    /// The algorithm with cert-manager's default (RSA) applied.
    pub fn algorithm_or_default(&self) -> PrivateKeyAlgorithm {
        self.algorithm.unwrap_or(PrivateKeyAlgorithm::Rsa)
    }

    /// The encoding with cert-manager's default (PKCS#1) applied.
    pub fn encoding_or_default(&self) -> PrivateKeyEncoding {
        self.encoding.unwrap_or(PrivateKeyEncoding::Pkcs1)
    }

    /// The rotation policy with cert-manager's default (`Always` since v1.18) applied.
    pub fn rotation_policy_or_default(&self) -> PrivateKeyRotationPolicy {
        self.rotation_policy
            .unwrap_or(PrivateKeyRotationPolicy::Always)
    }

    /// The key size with cert-manager's defaults applied (RSA 2048, ECDSA 256); `None` for
    /// Ed25519, which has no size.
    pub fn size_or_default(&self) -> Option<i64> {
        let size = self.size.filter(|size| *size > 0);
        match self.algorithm_or_default() {
            PrivateKeyAlgorithm::Rsa => Some(size.unwrap_or(2048)),
            PrivateKeyAlgorithm::Ecdsa => Some(size.unwrap_or(256)),
            PrivateKeyAlgorithm::Ed25519 => None,
        }
    }
}

/// `spec.privateKey.rotationPolicy`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum PrivateKeyRotationPolicy {
    // Keep the key in the Secret if it matches the spec.
    Never,
    // Generate a new key for every issuance.
    Always,
}

/// `spec.privateKey.encoding`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum PrivateKeyEncoding {
    // PKCS#1 (`RSA PRIVATE KEY` / `EC PRIVATE KEY`); Ed25519 keys are always PKCS#8.
    #[serde(rename = "PKCS1")]
    Pkcs1,
    // PKCS#8 (`PRIVATE KEY`).
    #[serde(rename = "PKCS8")]
    Pkcs8,
}

/// `spec.privateKey.algorithm`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum PrivateKeyAlgorithm {
    #[serde(rename = "RSA")]
    Rsa,
    #[serde(rename = "ECDSA")]
    Ecdsa,
    Ed25519,
}

/// `spec.signatureAlgorithm` (cert-manager v1.18).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum SignatureAlgorithm {
    SHA256WithRSA,
    SHA384WithRSA,
    SHA512WithRSA,
    ECDSAWithSHA256,
    ECDSAWithSHA384,
    ECDSAWithSHA512,
    PureEd25519,
}

/// An additional output format of the signed certificate chain and private key, written to the
/// Certificate's target Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CertificateAdditionalOutputFormat {
    /// The name of the format to write to the Certificate's target Secret.
    #[serde(rename = "type")]
    pub type_: CertificateOutputFormatType,
}

/// Additional output formats.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum CertificateOutputFormatType {
    // `key.der`: the private key in DER (PKCS#8).
    #[serde(rename = "DER")]
    Der,
    // `tls-combined.pem`: private key followed by the certificate chain, PEM.
    CombinedPEM,
}

/// The NameConstraints extension of a CA certificate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.permitted) || has(self.excluded)")
    .message("spec.nameConstraints needs at least one of permitted or excluded")
    .reason(Reason::FieldValueRequired))]
#[serde(rename_all = "camelCase")]
pub struct NameConstraints {
    /// If true then the name constraints are marked critical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<bool>,
    /// Constraints in which the names must be located.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permitted: Option<NameConstraintItem>,
    /// Constraints which must be disallowed: any name matching a restriction here is invalid,
    /// whatever `permitted` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<NameConstraintItem>,
}

/// Permitted or excluded names of a NameConstraints extension.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NameConstraintItem {
    /// DNS domains that are permitted or excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub dns_domains: Option<Vec<String>>,
    /// IP ranges that are permitted or excluded, in CIDR notation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000), inner(length(max = 64)))]
    #[x_kube(
        merge_strategy = ListMerge::Atomic,
        validation = Rule::new("self.all(r, isCIDR(r))")
            .message("spec.nameConstraints ipRanges must be CIDRs such as 10.0.0.0/8 or 2001:db8::/32")
    )]
    pub ip_ranges: Option<Vec<String>>,
    /// Email addresses that are permitted or excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub email_addresses: Option<Vec<String>>,
    /// URI domains that are permitted or excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub uri_domains: Option<Vec<String>>,
}

/// A key usage or extended key usage (RFC 5280 4.2.1.3 and 4.2.1.12), by cert-manager's names.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum KeyUsage {
    #[serde(rename = "signing")]
    Signing,
    #[serde(rename = "digital signature")]
    DigitalSignature,
    #[serde(rename = "content commitment")]
    ContentCommitment,
    #[serde(rename = "key encipherment")]
    KeyEncipherment,
    #[serde(rename = "key agreement")]
    KeyAgreement,
    #[serde(rename = "data encipherment")]
    DataEncipherment,
    #[serde(rename = "cert sign")]
    CertSign,
    #[serde(rename = "crl sign")]
    CrlSign,
    #[serde(rename = "encipher only")]
    EncipherOnly,
    #[serde(rename = "decipher only")]
    DecipherOnly,
    #[serde(rename = "any")]
    Any,
    #[serde(rename = "server auth")]
    ServerAuth,
    #[serde(rename = "client auth")]
    ClientAuth,
    #[serde(rename = "code signing")]
    CodeSigning,
    #[serde(rename = "email protection")]
    EmailProtection,
    #[serde(rename = "s/mime")]
    Smime,
    #[serde(rename = "ipsec end system")]
    IpsecEndSystem,
    #[serde(rename = "ipsec tunnel")]
    IpsecTunnel,
    #[serde(rename = "ipsec user")]
    IpsecUser,
    #[serde(rename = "timestamping")]
    Timestamping,
    #[serde(rename = "ocsp signing")]
    OcspSigning,
    #[serde(rename = "microsoft sgc")]
    MicrosoftSgc,
    #[serde(rename = "netscape sgc")]
    NetscapeSgc,
}

impl KeyUsage {
    /// The usages requested when `usages` is unset: `digital signature` and `key encipherment`.
    pub const DEFAULT: [KeyUsage; 2] = [KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment];

    /// Every usage, in cert-manager's order.
    pub const ALL: [KeyUsage; 23] = [
        KeyUsage::Signing,
        KeyUsage::DigitalSignature,
        KeyUsage::ContentCommitment,
        KeyUsage::KeyEncipherment,
        KeyUsage::KeyAgreement,
        KeyUsage::DataEncipherment,
        KeyUsage::CertSign,
        KeyUsage::CrlSign,
        KeyUsage::EncipherOnly,
        KeyUsage::DecipherOnly,
        KeyUsage::Any,
        KeyUsage::ServerAuth,
        KeyUsage::ClientAuth,
        KeyUsage::CodeSigning,
        KeyUsage::EmailProtection,
        KeyUsage::Smime,
        KeyUsage::IpsecEndSystem,
        KeyUsage::IpsecTunnel,
        KeyUsage::IpsecUser,
        KeyUsage::Timestamping,
        KeyUsage::OcspSigning,
        KeyUsage::MicrosoftSgc,
        KeyUsage::NetscapeSgc,
    ];

    /// The name used in the API, e.g. `digital signature`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUsage::Signing => "signing",
            KeyUsage::DigitalSignature => "digital signature",
            KeyUsage::ContentCommitment => "content commitment",
            KeyUsage::KeyEncipherment => "key encipherment",
            KeyUsage::KeyAgreement => "key agreement",
            KeyUsage::DataEncipherment => "data encipherment",
            KeyUsage::CertSign => "cert sign",
            KeyUsage::CrlSign => "crl sign",
            KeyUsage::EncipherOnly => "encipher only",
            KeyUsage::DecipherOnly => "decipher only",
            KeyUsage::Any => "any",
            KeyUsage::ServerAuth => "server auth",
            KeyUsage::ClientAuth => "client auth",
            KeyUsage::CodeSigning => "code signing",
            KeyUsage::EmailProtection => "email protection",
            KeyUsage::Smime => "s/mime",
            KeyUsage::IpsecEndSystem => "ipsec end system",
            KeyUsage::IpsecTunnel => "ipsec tunnel",
            KeyUsage::IpsecUser => "ipsec user",
            KeyUsage::Timestamping => "timestamping",
            KeyUsage::OcspSigning => "ocsp signing",
            KeyUsage::MicrosoftSgc => "microsoft sgc",
            KeyUsage::NetscapeSgc => "netscape sgc",
        }
    }
}

impl std::fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status of the Certificate. Set and managed by the controller.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// Status conditions of the certificate. Known condition types are `Ready` and `Issuing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Option<Vec<CertificateCondition>>,

    /// Set only if the latest issuance for this Certificate failed: the time of the failure. The
    /// next issuance is delayed by `1h * 2^(failedIssuanceAttempts - 1)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,

    /// The time after which the certificate stored in the `spec.secretName` Secret is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Time>,

    /// The expiration time of the certificate stored in the `spec.secretName` Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Time>,

    /// The time at which the certificate will be next renewed. If not set, no upcoming renewal is
    /// scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_time: Option<Time>,

    /// The current 'revision' of the certificate as issued. A CertificateRequest created for the
    /// next issuance carries the annotation `cert-manager.io/certificate-revision` set to one
    /// greater than this; on issuance this field takes that annotation's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_format)]
    pub revision: Option<i64>,

    /// The name of the Secret holding the private key for the next certificate iteration. Set
    /// while the `Issuing` condition is `True`, unset otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_private_key_secret_name: Option<String>,

    /// The number of continuous failed issuance attempts up till now. Removed on a successful
    /// issuance, set to 1 if unset on a failed one. The next issuance is delayed by
    /// `1h * 2^(failedIssuanceAttempts - 1)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = drop_format)]
    pub failed_issuance_attempts: Option<i64>,

    /// Information fetched from the ACME CA server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<CertificateAcmeStatus>,
}

/// Information fetched from the ACME CA server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAcmeStatus {
    /// ACME Renewal Information (RFC 9773) fetched from the ACME server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ari: Option<CertificateAriStatus>,
}

/// ACME Renewal Information (RFC 9773) of the current certificate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAriStatus {
    /// The suggested renewal window returned by the ACME server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_window: Option<AriSuggestedWindow>,
    /// A human-readable URL that may explain why the suggested window has its current value.
    #[serde(
        default,
        rename = "explanationURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub explanation_url: Option<String>,
    /// The time at which the ACME server was last checked for renewal information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked: Option<Time>,
    /// The time at which the ACME server will next be checked for renewal information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check: Option<Time>,
    /// The last error encountered when checking the ACME server for renewal information, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// An ARI suggested renewal window.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AriSuggestedWindow {
    /// Start of the suggested renewal window.
    pub start: Time,
    /// End of the suggested renewal window.
    pub end: Time,
}

/// Condition information for a Certificate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateCondition {
    /// Type of the condition, known values are (`Ready`, `Issuing`).
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
    /// If set, the `.metadata.generation` that the condition was set based upon; older than the
    /// current generation means the condition is out of date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl CertificateCondition {
    /// The certificate in the Secret is up to date and matches the spec.
    pub const READY: &'static str = "Ready";
    /// An issuance is in progress (set by the trigger controller or `cmctl renew`).
    pub const ISSUING: &'static str = "Issuing";
}

impl CertificateSpec {
    /// `isCA` with its default (false) applied.
    pub fn is_ca(&self) -> bool {
        self.is_ca.unwrap_or(false)
    }

    /// `encodeUsagesInRequest` with its default (true) applied.
    pub fn encode_usages_in_request(&self) -> bool {
        self.encode_usages_in_request.unwrap_or(true)
    }

    /// `revisionHistoryLimit` with its effective default (1) applied.
    pub fn revision_history_limit(&self) -> i32 {
        self.revision_history_limit.unwrap_or(1)
    }

    /// The requested usages, defaulting to `digital signature` and `key encipherment`, with
    /// `cert sign` added for a CA.
    pub fn effective_usages(&self) -> Vec<KeyUsage> {
        let mut usages = match &self.usages {
            Some(usages) if !usages.is_empty() => usages.clone(),
            _ => KeyUsage::DEFAULT.to_vec(),
        };
        if self.is_ca() && !usages.contains(&KeyUsage::CertSign) {
            usages.push(KeyUsage::CertSign);
        }
        usages
    }

    /// Private key options, or all defaults when `privateKey` is unset.
    pub fn private_key_or_default(&self) -> CertificatePrivateKey {
        self.private_key.clone().unwrap_or_default()
    }

    /// Whether `renewal.policy` is `Disabled`.
    pub fn renewal_disabled(&self) -> bool {
        self.renewal
            .as_ref()
            .and_then(|renewal| renewal.policy)
            .is_some_and(|policy| policy == RenewalPolicy::Disabled)
    }
}

impl Certificate {
    /// The status condition of the given type, if present.
    pub fn condition(&self, type_: &str) -> Option<&CertificateCondition> {
        self.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|condition| condition.type_ == type_)
    }

    /// Whether the `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.condition(CertificateCondition::READY)
            .is_some_and(|condition| condition.status == ConditionStatus::True)
    }

    /// Whether the `Issuing` condition is `True`.
    pub fn is_issuing(&self) -> bool {
        self.condition(CertificateCondition::ISSUING)
            .is_some_and(|condition| condition.status == ConditionStatus::True)
    }

    /// `status.revision`, if the certificate was issued at least once.
    pub fn revision(&self) -> Option<i64> {
        self.status.as_ref()?.revision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::CustomResourceExt;
    use serde_json::{Value, json};

    /// A Certificate with every field cert-manager v1.21 defines, as `kubectl get -o yaml` shows
    /// it.
    const FULL_CERTIFICATE: &str = r#"
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: example-com
  namespace: web
  generation: 3
  labels:
    app: web
spec:
  subject:
    organizations: [Example Inc.]
    countries: [DE]
    organizationalUnits: [Platform]
    localities: [Berlin]
    provinces: [Berlin]
    streetAddresses: [Street 1]
    postalCodes: ["10115"]
    serialNumber: "1234"
  commonName: example.com
  duration: 2160h0m0s
  renewBefore: 360h0m0s
  renewal:
    policy: RenewBefore
    windows:
      - timezone: Europe/Berlin
        windowDuration: 4h
        cron: "0 2 * * 1-5"
  dnsNames: [example.com, www.example.com]
  ipAddresses: [10.0.0.1, "2001:db8::1"]
  uris: ["spiffe://cluster.local/ns/web/sa/default"]
  otherNames:
    - oid: 1.3.6.1.4.1.311.20.2.3
      utf8Value: user@example.com
  emailAddresses: [hostmaster@example.com]
  secretName: example-com-tls
  secretTemplate:
    annotations:
      reflector.v1.k8s.emberstack.com/reflection-allowed: "true"
    labels:
      team: web
  keystores:
    jks:
      create: true
      alias: web
      passwordSecretRef:
        name: jks-password
        key: password
    pkcs12:
      create: true
      profile: Modern2026
      password: changeit
  issuerRef:
    name: letsencrypt
    kind: ClusterIssuer
    group: cert-manager.io
  isCA: false
  usages: [digital signature, key encipherment, server auth, client auth, s/mime]
  privateKey:
    rotationPolicy: Always
    encoding: PKCS8
    algorithm: ECDSA
    size: 384
  signatureAlgorithm: ECDSAWithSHA384
  encodeUsagesInRequest: true
  revisionHistoryLimit: 3
  additionalOutputFormats:
    - type: DER
    - type: CombinedPEM
status:
  conditions:
    - type: Ready
      status: "True"
      lastTransitionTime: "2026-07-01T10:00:00Z"
      reason: Ready
      message: Certificate is up to date and has not expired
      observedGeneration: 3
    - type: Issuing
      status: "False"
      lastTransitionTime: "2026-07-01T10:00:00Z"
      reason: Issued
      message: The certificate has been successfully issued
      observedGeneration: 3
  lastFailureTime: "2026-06-30T09:00:00Z"
  notBefore: "2026-07-01T09:59:00Z"
  notAfter: "2026-09-29T09:59:00Z"
  renewalTime: "2026-09-14T09:59:00Z"
  revision: 4
  nextPrivateKeySecretName: example-com-x7k2p
  failedIssuanceAttempts: 1
  acme:
    ari:
      suggestedWindow:
        start: "2026-09-10T00:00:00Z"
        end: "2026-09-12T00:00:00Z"
      explanationURL: https://acme.example/ari-explained
      lastChecked: "2026-07-02T00:00:00Z"
      nextCheck: "2026-07-02T06:00:00Z"
      lastError: "429 rate limited"
"#;

    #[test]
    fn full_certificate_round_trips() {
        let certificate: Certificate = serde_saphyr::from_str(FULL_CERTIFICATE).unwrap();
        let expected: Value = serde_saphyr::from_str(FULL_CERTIFICATE).unwrap();
        assert_eq!(serde_json::to_value(&certificate).unwrap(), expected);

        let spec = &certificate.spec;
        assert_eq!(spec.issuer_ref.kind_or_default(), "ClusterIssuer");
        assert_eq!(spec.usages.as_ref().unwrap()[4], KeyUsage::Smime);
        let keystores = spec.keystores.as_ref().unwrap();
        assert_eq!(
            keystores.pkcs12.as_ref().unwrap().profile,
            Some(Pkcs12Profile::Modern2026)
        );
        assert_eq!(keystores.jks.as_ref().unwrap().alias_or_default(), "web");
        assert_eq!(spec.private_key_or_default().size_or_default(), Some(384));
        assert!(certificate.is_ready());
        assert!(!certificate.is_issuing());
        assert_eq!(certificate.revision(), Some(4));
    }

    #[test]
    fn minimal_certificate_keeps_absent_fields_absent() {
        let yaml = r#"
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: minimal
spec:
  secretName: minimal-tls
  dnsNames: []
  issuerRef:
    name: ca
"#;
        let certificate: Certificate = serde_saphyr::from_str(yaml).unwrap();
        let expected: Value = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(serde_json::to_value(&certificate).unwrap(), expected);
        assert!(!certificate.is_ready());
        assert_eq!(
            certificate.spec.effective_usages(),
            vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment]
        );
        assert_eq!(certificate.spec.revision_history_limit(), 1);
        assert!(certificate.spec.encode_usages_in_request());
        let key = certificate.spec.private_key_or_default();
        assert_eq!(key.algorithm_or_default(), PrivateKeyAlgorithm::Rsa);
        assert_eq!(key.size_or_default(), Some(2048));
        assert_eq!(
            key.rotation_policy_or_default(),
            PrivateKeyRotationPolicy::Always
        );
    }

    #[test]
    fn cel_default_duration_matches_the_constant() {
        assert!(DURATION_OR_DEFAULT.contains(&format!("'{DEFAULT_DURATION}'")));
    }

    #[test]
    fn key_usage_names_match_serde() {
        for usage in KeyUsage::ALL {
            assert_eq!(serde_json::to_value(usage).unwrap(), json!(usage.as_str()));
        }
    }

    fn crd_json() -> Value {
        serde_json::to_value(Certificate::crd()).unwrap()
    }

    fn schema_json() -> Value {
        crd_json()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    #[test]
    fn crd_names_columns_and_selectable_fields_match_cert_manager() {
        let crd = crd_json();
        assert_eq!(crd["metadata"]["name"], "certificates.cert-manager.io");
        let spec = &crd["spec"];
        assert_eq!(spec["group"], "cert-manager.io");
        assert_eq!(spec["scope"], "Namespaced");
        // `listKind` is left out: the API server defaults it to `<kind>List`, as cert-manager's is.
        assert_eq!(
            spec["names"],
            json!({
                "categories": ["cert-manager"],
                "kind": "Certificate",
                "plural": "certificates",
                "shortNames": ["cert", "certs"],
                "singular": "certificate",
            })
        );
        let version = &spec["versions"][0];
        assert_eq!(version["name"], "v1");
        assert_eq!(version["served"], true);
        assert_eq!(version["storage"], true);
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
                "Ready",
                "string",
                r#".status.conditions[?(@.type == "Ready")].status"#,
                None,
            ),
            ("Secret", "string", ".spec.secretName", None),
            ("Issuer", "string", ".spec.issuerRef.name", Some(1)),
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
        assert!(
            version["additionalPrinterColumns"][4]["description"]
                .as_str()
                .unwrap()
                .starts_with("CreationTimestamp is a timestamp")
        );
        assert_eq!(
            version["selectableFields"],
            json!([
                {"jsonPath": ".spec.issuerRef.group"},
                {"jsonPath": ".spec.issuerRef.kind"},
                {"jsonPath": ".spec.issuerRef.name"},
            ])
        );
    }

    /// Every property path of cert-manager's published schema (v1.21.1) exists here too.
    #[test]
    fn schema_has_every_cert_manager_field() {
        let schema = schema_json();
        let spec = &schema["properties"]["spec"]["properties"];
        for field in [
            "additionalOutputFormats",
            "commonName",
            "dnsNames",
            "duration",
            "emailAddresses",
            "encodeUsagesInRequest",
            "ipAddresses",
            "isCA",
            "issuerRef",
            "keystores",
            "literalSubject",
            "nameConstraints",
            "otherNames",
            "privateKey",
            "renewBefore",
            "renewBeforePercentage",
            "renewal",
            "revisionHistoryLimit",
            "secretName",
            "secretTemplate",
            "signatureAlgorithm",
            "subject",
            "uris",
            "usages",
        ] {
            assert!(spec.get(field).is_some(), "spec.{field} missing");
        }
        assert_eq!(spec.as_object().unwrap().len(), 24);
        let mut required: Vec<&str> = schema["properties"]["spec"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort();
        assert_eq!(required, ["issuerRef", "secretName"]);

        let status = &schema["properties"]["status"]["properties"];
        for field in [
            "acme",
            "conditions",
            "failedIssuanceAttempts",
            "lastFailureTime",
            "nextPrivateKeySecretName",
            "notAfter",
            "notBefore",
            "renewalTime",
            "revision",
        ] {
            assert!(status.get(field).is_some(), "status.{field} missing");
        }
        let ari = &status["acme"]["properties"]["ari"]["properties"];
        for field in [
            "explanationURL",
            "lastChecked",
            "lastError",
            "nextCheck",
            "suggestedWindow",
        ] {
            assert!(ari.get(field).is_some(), "status.acme.ari.{field} missing");
        }
        assert_eq!(
            ari["suggestedWindow"]["properties"]["start"]["format"],
            "date-time"
        );

        let keystores = &spec["keystores"]["properties"];
        assert_eq!(
            keystores["pkcs12"]["properties"]["profile"]["enum"],
            json!(["LegacyRC2", "LegacyDES", "Modern2023", "Modern2026"])
        );
        for keystore in ["jks", "pkcs12"] {
            assert_eq!(keystores[keystore]["required"], json!(["create"]));
        }
        assert!(keystores["jks"]["properties"].get("alias").is_some());
        let window = &spec["renewal"]["properties"]["windows"]["items"];
        assert_eq!(
            window["properties"]["windowDuration"]["pattern"],
            r"^([0-9]+(\.[0-9]+)?(s|m|h))+$"
        );
        assert_eq!(spec["commonName"]["maxLength"], 64);
        assert!(
            spec["otherNames"]["items"]["properties"]
                .get("utf8Value")
                .is_some()
        );
    }

    #[test]
    fn schema_enums_match_cert_manager() {
        let schema = schema_json();
        let spec = &schema["properties"]["spec"]["properties"];
        let usages = spec["usages"]["items"]["enum"].as_array().unwrap();
        assert_eq!(usages.len(), 23);
        assert_eq!(usages[1], "digital signature");
        assert_eq!(usages[15], "s/mime");
        assert_eq!(
            spec["privateKey"]["properties"]["algorithm"]["enum"],
            json!(["RSA", "ECDSA", "Ed25519"])
        );
        assert_eq!(
            spec["privateKey"]["properties"]["encoding"]["enum"],
            json!(["PKCS1", "PKCS8"])
        );
        assert_eq!(
            spec["privateKey"]["properties"]["rotationPolicy"]["enum"],
            json!(["Never", "Always"])
        );
        assert_eq!(
            spec["signatureAlgorithm"]["enum"],
            json!([
                "SHA256WithRSA",
                "SHA384WithRSA",
                "SHA512WithRSA",
                "ECDSAWithSHA256",
                "ECDSAWithSHA384",
                "ECDSAWithSHA512",
                "PureEd25519"
            ])
        );
        assert_eq!(
            spec["additionalOutputFormats"]["items"]["properties"]["type"]["enum"],
            json!(["DER", "CombinedPEM"])
        );
        assert_eq!(
            spec["renewal"]["properties"]["policy"]["enum"],
            json!(["RenewBefore", "Disabled"])
        );
        let conditions = &schema["properties"]["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
        assert_eq!(
            conditions["items"]["properties"]["status"]["enum"],
            json!(["True", "False", "Unknown"])
        );
        let mut required: Vec<&str> = conditions["items"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort();
        assert_eq!(required, ["status", "type"]);
        assert_eq!(spec["dnsNames"]["x-kubernetes-list-type"], "atomic");
    }

    fn rules(schema: &Value) -> Vec<String> {
        schema["x-kubernetes-validations"]
            .as_array()
            .map(|rules| {
                rules
                    .iter()
                    .map(|rule| rule["rule"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn cel_rules_are_attached_where_expected() {
        let schema = schema_json();
        let spec = &schema["properties"]["spec"];
        let props = &spec["properties"];
        assert_eq!(rules(spec).len(), 10);
        for field in [
            "duration",
            "renewBefore",
            "renewBeforePercentage",
            "secretName",
            "ipAddresses",
            "emailAddresses",
            "revisionHistoryLimit",
            "additionalOutputFormats",
        ] {
            assert!(!rules(&props[field]).is_empty(), "no rule on spec.{field}");
        }
        for path in [
            &props["renewal"],
            &props["renewal"]["properties"]["windows"]["items"]["properties"]["cron"],
            &props["otherNames"]["items"],
            &props["privateKey"],
            &props["nameConstraints"],
            &props["keystores"]["properties"]["jks"],
            &props["keystores"]["properties"]["pkcs12"],
            &props["secretTemplate"]["properties"]["annotations"],
        ] {
            assert!(!rules(path).is_empty(), "missing rule in {path}");
        }
        // Every rule that walks a list or regex-matches a string has a bound on it.
        assert_eq!(props["ipAddresses"]["maxItems"], 1000);
        assert_eq!(props["ipAddresses"]["items"]["maxLength"], 64);
        assert_eq!(props["emailAddresses"]["items"]["maxLength"], 320);
        assert_eq!(props["duration"]["maxLength"], 64);
        assert_eq!(props["literalSubject"]["maxLength"], 4096);
        assert!(props["dnsNames"].get("maxItems").is_none());
    }
}
