//! `cert-manager.io/v1` Issuer (namespaced) and ClusterIssuer (cluster-scoped).
//!
//! Both kinds share one spec, [`IssuerSpec`] (cert-manager's `IssuerConfig`): exactly one of
//! `acme`, `ca`, `selfSigned`, `vault` or `venafi`. ClusterIssuer wraps it in the transparent
//! newtype [`ClusterIssuerSpec`], so both CRDs carry the same schema and Rust code reaches the
//! fields of either through [`GenericIssuer::issuer_spec`] or `Deref`.

use std::ops::{Deref, DerefMut};

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema, Resource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::acme::{AcmeIssuer, AcmeIssuerStatus, ServiceAccountRef, bytes_schema};
use super::meta::{ConditionStatus, LocalObjectReference, SecretKeySelector};

/// The condition type every Issuer and ClusterIssuer reports.
pub const ISSUER_CONDITION_READY: &str = "Ready";

/// The configuration of an Issuer or ClusterIssuer: exactly one issuer type.
// Each `printcolumn(...)` repeats keys such as `type_`, which clippy mistakes for duplicated
// attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "Issuer",
    namespaced,
    status = "IssuerStatus",
    derive = "PartialEq",
    shortname = "iss",
    category = "cert-manager",
    doc = "An Issuer is a certificate issuing authority that Certificates and CertificateRequests in its own namespace refer to in `issuerRef`.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type == "Ready")].status"#
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        priority = 1,
        json_path = r#".status.conditions[?(@.type == "Ready")].message"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        description = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "(has(self.acme) ? 1 : 0) + (has(self.ca) ? 1 : 0) + (has(self.selfSigned) ? 1 : 0) + (has(self.vault) ? 1 : 0) + (has(self.venafi) ? 1 : 0) == 1"
).message(
    "exactly one of acme, ca, selfSigned, vault or venafi must be set"
))]
pub struct IssuerSpec {
    /// Obtain certificates from an ACME (RFC 8555) server such as Let's Encrypt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeIssuer>,

    /// Sign certificates with a CA key pair stored in a Secret (an internal PKI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaIssuer>,

    /// Sign certificates with a HashiCorp Vault PKI secrets engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultIssuer>,

    /// Sign each certificate with its own private key (the key of the CertificateRequest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_signed: Option<SelfSignedIssuer>,

    /// Sign certificates through a CyberArk Certificate Manager (formerly Venafi) policy zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venafi: Option<VenafiIssuer>,
}

// The spec of a ClusterIssuer: an Issuer's spec with the same JSON form and schema (the
// newtype is transparent to serde and schemars). Secrets a ClusterIssuer refers to live in the
// controller's cluster resource namespace. The doc comment must stay the same as
// `IssuerSpec`'s, because it becomes the description of `spec` in the CRD.
/// The configuration of an Issuer or ClusterIssuer: exactly one issuer type.
// Each `printcolumn(...)` repeats keys such as `type_`, which clippy mistakes for duplicated
// attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "ClusterIssuer",
    status = "IssuerStatus",
    derive = "PartialEq",
    shortname = "ciss",
    category = "cert-manager",
    doc = "A ClusterIssuer is a cluster-scoped certificate issuing authority that Certificates and CertificateRequests in any namespace can refer to in `issuerRef` (with `kind: ClusterIssuer`).",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type == "Ready")].status"#
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        priority = 1,
        json_path = r#".status.conditions[?(@.type == "Ready")].message"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        description = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct ClusterIssuerSpec(pub IssuerSpec);

impl Deref for ClusterIssuerSpec {
    type Target = IssuerSpec;

    fn deref(&self) -> &IssuerSpec {
        &self.0
    }
}

impl DerefMut for ClusterIssuerSpec {
    fn deref_mut(&mut self) -> &mut IssuerSpec {
        &mut self.0
    }
}

impl From<IssuerSpec> for ClusterIssuerSpec {
    fn from(spec: IssuerSpec) -> Self {
        Self(spec)
    }
}

impl From<ClusterIssuerSpec> for IssuerSpec {
    fn from(spec: ClusterIssuerSpec) -> Self {
        spec.0
    }
}

/// The configured issuer type of an [`IssuerSpec`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IssuerConfig<'a> {
    Acme(&'a AcmeIssuer),
    Ca(&'a CaIssuer),
    SelfSigned(&'a SelfSignedIssuer),
    Vault(&'a VaultIssuer),
    Venafi(&'a VenafiIssuer),
}

impl IssuerConfig<'_> {
    /// The JSON name of the issuer type, e.g. `selfSigned`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Acme(_) => "acme",
            Self::Ca(_) => "ca",
            Self::SelfSigned(_) => "selfSigned",
            Self::Vault(_) => "vault",
            Self::Venafi(_) => "venafi",
        }
    }
}

impl IssuerSpec {
    /// The issuer type that is set, or `None` when none is. The API server admits exactly one;
    /// should several be set anyway, the first in the order acme, ca, selfSigned, vault,
    /// venafi is returned.
    pub fn config(&self) -> Option<IssuerConfig<'_>> {
        if let Some(acme) = &self.acme {
            Some(IssuerConfig::Acme(acme))
        } else if let Some(ca) = &self.ca {
            Some(IssuerConfig::Ca(ca))
        } else if let Some(self_signed) = &self.self_signed {
            Some(IssuerConfig::SelfSigned(self_signed))
        } else if let Some(vault) = &self.vault {
            Some(IssuerConfig::Vault(vault))
        } else {
            self.venafi.as_ref().map(IssuerConfig::Venafi)
        }
    }
}

/// What Issuer and ClusterIssuer have in common, for code that handles both kinds.
pub trait GenericIssuer: Resource<DynamicType = ()> {
    /// The issuer configuration.
    fn issuer_spec(&self) -> &IssuerSpec;
    /// The status, if any has been written.
    fn issuer_status(&self) -> Option<&IssuerStatus>;
    /// The status, created empty when missing.
    fn issuer_status_mut(&mut self) -> &mut IssuerStatus;
}

impl GenericIssuer for Issuer {
    fn issuer_spec(&self) -> &IssuerSpec {
        &self.spec
    }

    fn issuer_status(&self) -> Option<&IssuerStatus> {
        self.status.as_ref()
    }

    fn issuer_status_mut(&mut self) -> &mut IssuerStatus {
        self.status.get_or_insert_with(IssuerStatus::default)
    }
}

impl GenericIssuer for ClusterIssuer {
    fn issuer_spec(&self) -> &IssuerSpec {
        &self.spec.0
    }

    fn issuer_status(&self) -> Option<&IssuerStatus> {
        self.status.as_ref()
    }

    fn issuer_status_mut(&mut self) -> &mut IssuerStatus {
        self.status.get_or_insert_with(IssuerStatus::default)
    }
}

// ---------------------------------------------------------------------------------------------
// Status.
// ---------------------------------------------------------------------------------------------

/// The observed state of an Issuer or ClusterIssuer, written by the controller.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IssuerStatus {
    /// The conditions of the issuer. The only type is `Ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Option<Vec<IssuerCondition>>,

    /// The registered ACME account, for ACME issuers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeIssuerStatus>,
}

impl IssuerStatus {
    /// The condition of the given type, if present.
    pub fn condition(&self, type_: &str) -> Option<&IssuerCondition> {
        self.conditions
            .as_deref()?
            .iter()
            .find(|c| c.type_ == type_)
    }

    /// Whether the `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.condition(ISSUER_CONDITION_READY)
            .is_some_and(|c| c.status == ConditionStatus::True)
    }
}

/// A condition of an Issuer or ClusterIssuer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerCondition {
    /// The type of the condition: `Ready`.
    #[serde(rename = "type")]
    pub type_: String,

    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,

    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,

    /// A CamelCase, machine-readable reason for the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// A human-readable explanation of the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    /// The `metadata.generation` the condition was computed from; older than the current
    /// generation means the condition is stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// CA and SelfSigned.
// ---------------------------------------------------------------------------------------------

/// Sign certificates with a CA certificate and key stored in a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CaIssuer {
    /// The `kubernetes.io/tls` Secret holding the CA certificate (`tls.crt`) and its private
    /// key (`tls.key`).
    #[x_kube(validation = Rule::new("self != ''").message(
        "ca.secretName must name the Secret that holds the CA certificate and key"
    ))]
    pub secret_name: String,

    /// CRL distribution point URLs embedded in issued certificates. None when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub crl_distribution_points: Option<Vec<String>>,

    /// OCSP responder URLs embedded in issued certificates (Authority Information Access).
    /// None when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub ocsp_servers: Option<Vec<String>>,

    /// URLs of the CA certificate embedded in issued certificates (Authority Information
    /// Access "CA Issuers", RFC 5280 §4.2.2.1), e.g. `http://ca.example.com/ca.crt`.
    #[serde(
        default,
        rename = "issuingCertificateURLs",
        skip_serializing_if = "Option::is_none"
    )]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub issuing_certificate_urls: Option<Vec<String>>,
}

/// Sign each certificate with the private key of its own request.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SelfSignedIssuer {
    /// CRL distribution point URLs embedded in issued certificates. None when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub crl_distribution_points: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Vault.
// ---------------------------------------------------------------------------------------------

/// Sign certificates with the `sign` endpoint of a HashiCorp Vault PKI secrets engine.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.caBundle) && has(self.caBundleSecretRef))").message(
    "vault may set only one of caBundle or caBundleSecretRef"
))]
pub struct VaultIssuer {
    /// How to authenticate with Vault.
    pub auth: VaultAuth,

    /// The address of the Vault server, e.g. `https://vault.example.com:8200`.
    #[x_kube(validation = Rule::new("self != ''").message(
        "vault.server must be the address of the Vault server, e.g. https://vault.example.com:8200"
    ))]
    pub server: String,

    /// The host name to verify the Vault server's certificate against, when it differs from
    /// the host in `server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,

    /// The path of the PKI engine's sign endpoint, e.g. `pki/sign/my-role`.
    #[x_kube(validation = Rule::new("self != ''").message(
        "vault.path must be the path of the PKI sign endpoint, e.g. pki/sign/my-role"
    ))]
    pub path: String,

    /// The Vault Enterprise namespace, e.g. `ns1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,

    /// PEM bundle of CA certificates (base64-encoded in JSON) trusted to verify Vault's TLS
    /// certificate. Not with `caBundleSecretRef`. When neither is set, the system trust store
    /// is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bytes_schema")]
    pub ca_bundle: Option<ByteString>,

    /// A Secret entry (default key `ca.crt`) with PEM CA certificates trusted to verify Vault's
    /// TLS certificate. Not with `caBundle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<SecretKeySelector>,

    /// A Secret entry with the PEM client certificate, for Vault servers that require mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret_ref: Option<SecretKeySelector>,

    /// A Secret entry with the PEM client private key, for Vault servers that require mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_secret_ref: Option<SecretKeySelector>,
}

/// How to authenticate with Vault. At least one method must be set; should several be, the
/// first set in the order tokenSecretRef, appRole, clientCertificate, kubernetes, aws is used.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "has(self.tokenSecretRef) || has(self.appRole) || has(self.clientCertificate) || has(self.kubernetes) || has(self.aws)"
).message(
    "vault.auth must set one of tokenSecretRef, appRole, clientCertificate, kubernetes or aws"
))]
pub struct VaultAuth {
    /// A Secret entry holding a Vault token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeySelector>,

    /// AppRole authentication, with the secret ID in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role: Option<VaultAppRole>,

    /// TLS client certificate authentication (HTTPS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<VaultClientCertificateAuth>,

    /// Kubernetes authentication with a ServiceAccount token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<VaultKubernetesAuth>,

    /// AWS IAM authentication (IRSA, EKS Pod Identity or ambient AWS credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<VaultAwsAuth>,
}

/// Vault AppRole authentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAppRole {
    /// Where the AppRole auth method is mounted, e.g. `approle`.
    pub path: String,

    /// The role ID.
    pub role_id: String,

    /// The Secret entry holding the secret ID; `key` must be set.
    pub secret_ref: SecretKeySelector,
}

/// Vault TLS certificate authentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultClientCertificateAuth {
    /// The mount path of the auth method; `/v1/auth/cert` when unset (login at
    /// `<mountPath>/login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,

    /// A `kubernetes.io/tls` Secret with the client certificate and key (`tls.crt`,
    /// `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,

    /// The certificate role to log in with; any matching role when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Vault Kubernetes authentication: a ServiceAccount token from a Secret (`secretRef`) or a
/// bound token requested for a ServiceAccount (`serviceAccountRef`), exactly one of them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretRef) != has(self.serviceAccountRef)").message(
    "vault.auth.kubernetes must set exactly one of secretRef or serviceAccountRef"
))]
pub struct VaultKubernetesAuth {
    /// The mount path of the auth method; `/v1/auth/kubernetes` when unset (login at
    /// `<mountPath>/login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,

    /// A Secret entry holding a ServiceAccount token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,

    /// A ServiceAccount to request a short-lived bound token for. The controller needs RBAC
    /// permission to create tokens for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountRef>,

    /// The Vault role to log in as, which binds the ServiceAccount to Vault policies.
    #[x_kube(validation = Rule::new("self != ''").message(
        "vault.auth.kubernetes.role must name the Vault role to log in as"
    ))]
    pub role: String,
}

/// Vault AWS IAM authentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAwsAuth {
    /// The mount path of the auth method; `/v1/auth/aws` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,

    /// The Vault role to log in as.
    #[schemars(length(min = 1))]
    pub role: String,

    /// The AWS region; from `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`, when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// A ServiceAccount whose token is exchanged for AWS credentials (IRSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountRef>,

    /// The IAM role to assume with the ServiceAccount token; required with
    /// `serviceAccountRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_role_arn: Option<String>,

    /// The value of the `X-Vault-AWS-IAM-Server-ID` header included in the signed STS
    /// request, against replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_header_value: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Venafi / CyberArk Certificate Manager.
// ---------------------------------------------------------------------------------------------

/// Sign certificates through a CyberArk Certificate Manager (formerly Venafi) policy zone:
/// exactly one of `tpp` (Self-Hosted), `cloud` (SaaS) or `ngts`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "(has(self.tpp) ? 1 : 0) + (has(self.cloud) ? 1 : 0) + (has(self.ngts) ? 1 : 0) == 1"
).message("exactly one of tpp, cloud, or ngts must be configured"))]
pub struct VenafiIssuer {
    /// The policy zone that restricts every request of this issuer.
    pub zone: String,

    /// CyberArk Certificate Manager Self-Hosted (formerly TPP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpp: Option<VenafiTpp>,

    /// CyberArk Certificate Manager SaaS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<VenafiCloud>,

    /// Palo Alto Networks Next Generation Trust Services, with OAuth 2.0 client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ngts: Option<VenafiNgts>,
}

/// CyberArk Certificate Manager Self-Hosted.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.caBundle) && has(self.caBundleSecretRef))").message(
    "venafi.tpp may set only one of caBundle or caBundleSecretRef"
))]
pub struct VenafiTpp {
    /// The base URL of the vedsdk endpoint, e.g. `https://tpp.example.com/vedsdk`.
    pub url: String,

    /// A Secret with the credentials: `access-token`, or `username` and `password`.
    pub credentials_ref: LocalObjectReference,

    /// PEM bundle of CA certificates (base64-encoded in JSON) trusted to verify the server's
    /// TLS certificate. Not with `caBundleSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bytes_schema")]
    pub ca_bundle: Option<ByteString>,

    /// A Secret entry with PEM CA certificates trusted to verify the server's TLS certificate.
    /// Not with `caBundle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<SecretKeySelector>,
}

/// CyberArk Certificate Manager SaaS.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VenafiCloud {
    /// The base URL of the API; `https://api.venafi.cloud/` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// The Secret entry holding the API key.
    pub api_token_secret_ref: SecretKeySelector,
}

/// Palo Alto Networks Next Generation Trust Services.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VenafiNgts {
    /// The base URL of the API; `https://api.strata.paloaltonetworks.com/ngts` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// The OAuth 2.0 token endpoint;
    /// `https://auth.apps.paloaltonetworks.com/oauth2/access_token` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,

    /// The Tenant Service Group ID that scopes the access token (without the `tsg_id:`
    /// prefix).
    #[serde(rename = "tsgID")]
    pub tsg_id: String,

    /// A Secret with the OAuth 2.0 client credentials, keys `client-id` and `client-secret`.
    pub credentials_ref: LocalObjectReference,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::acme::test_support::{assert_round_trip, crd_schema, rule_messages};
    use crate::api::acme::{CnameStrategy, HmacKeyAlgorithm};
    use kube::CustomResourceExt;

    const LETSENCRYPT: &str = r#"
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: letsencrypt-prod
  generation: 2
spec:
  acme:
    server: https://acme-v02.api.letsencrypt.org/directory
    email: ops@example.com
    privateKeySecretRef:
      name: letsencrypt-prod-account-key
    externalAccountBinding:
      keyID: kid-7e3b1d
      keySecretRef:
        name: eab-hmac
        key: secret
      keyAlgorithm: HS256
    preferredChain: ISRG Root X1
    profile: tlsserver
    solvers:
    - http01:
        ingress:
          class: nginx
    - selector:
        dnsZones:
        - example.com
      dns01:
        cloudflare:
          apiTokenSecretRef:
            name: cloudflare-api-token
            key: api-token
    - selector:
        dnsNames:
        - www.example.org
        matchLabels:
          use-route53: "true"
      dns01:
        cnameStrategy: Follow
        route53:
          region: eu-west-1
          hostedZoneID: Z2ABCDEF123456
          accessKeyIDSecretRef:
            name: route53-credentials
            key: access-key-id
          secretAccessKeySecretRef:
            name: route53-credentials
            key: secret-access-key
          role: arn:aws:iam::123456789012:role/dns-manager
    - selector:
        dnsZones: [example.net]
      dns01:
        webhook:
          groupName: acme.example.com
          solverName: gandi
          config:
            apiKeySecretRef:
              name: gandi-credentials
              key: api-token
            ttl: 300
status:
  acme:
    uri: https://acme-v02.api.letsencrypt.org/acme/acct/123456789
    lastRegisteredEmail: ops@example.com
    lastPrivateKeyHash: 4BJrTqC0kRX3WjdVvsXo8dpgXOUoJ1IYVf3bU+WsQtY=
  conditions:
  - type: Ready
    status: "True"
    reason: ACMEAccountRegistered
    message: The ACME account was registered with the ACME server
    lastTransitionTime: "2025-01-02T03:04:05Z"
    observedGeneration: 2
"#;

    #[test]
    fn letsencrypt_cluster_issuer_round_trips() {
        let issuer: ClusterIssuer = assert_round_trip(LETSENCRYPT);
        let acme = issuer.spec.acme.as_ref().expect("acme");
        assert_eq!(
            acme.server,
            "https://acme-v02.api.letsencrypt.org/directory"
        );
        let eab = acme.external_account_binding.as_ref().unwrap();
        assert_eq!(eab.key_id, "kid-7e3b1d");
        assert_eq!(eab.key_algorithm, Some(HmacKeyAlgorithm::HS256));
        let solvers = acme.solvers();
        assert_eq!(solvers.len(), 4);
        let ingress = solvers[0]
            .http01
            .as_ref()
            .unwrap()
            .ingress
            .as_ref()
            .unwrap();
        assert_eq!(ingress.class.as_deref(), Some("nginx"));
        let route53 = solvers[2].dns01.as_ref().unwrap();
        assert_eq!(route53.cname_strategy, Some(CnameStrategy::Follow));
        assert_eq!(
            route53.route53.as_ref().unwrap().hosted_zone_id.as_deref(),
            Some("Z2ABCDEF123456")
        );
        let webhook = solvers[3].dns01.as_ref().unwrap().webhook.as_ref().unwrap();
        assert_eq!(webhook.config.as_ref().unwrap()["ttl"], 300);

        assert!(matches!(
            issuer.issuer_spec().config(),
            Some(IssuerConfig::Acme(_))
        ));
        let status = issuer.issuer_status().unwrap();
        assert!(status.is_ready());
        assert_eq!(
            status.condition("Ready").unwrap().reason.as_deref(),
            Some("ACMEAccountRegistered")
        );
        assert_eq!(
            status.acme.as_ref().unwrap().uri.as_deref(),
            Some("https://acme-v02.api.letsencrypt.org/acme/acct/123456789")
        );
    }

    #[test]
    fn the_same_spec_parses_as_issuer_and_cluster_issuer() {
        let cluster: ClusterIssuer = serde_saphyr::from_str(LETSENCRYPT).unwrap();
        let namespaced: Issuer = serde_saphyr::from_str(
            &LETSENCRYPT
                .replace("kind: ClusterIssuer", "kind: Issuer")
                .replace("  generation: 2", "  namespace: default"),
        )
        .unwrap();
        assert_eq!(*cluster.spec, namespaced.spec);
        assert_eq!(cluster.issuer_spec(), namespaced.issuer_spec());
        assert_eq!(
            serde_json::to_value(&cluster.spec).unwrap(),
            serde_json::to_value(&namespaced.spec).unwrap()
        );
    }

    #[test]
    fn ca_issuer_round_trips() {
        let issuer: Issuer = assert_round_trip(
            r#"
apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: ca-issuer
  namespace: sandbox
spec:
  ca:
    secretName: ca-key-pair
    crlDistributionPoints: ["http://crl.example.com/ca.crl"]
    ocspServers: ["http://ocsp.example.com"]
    issuingCertificateURLs: ["http://ca.example.com/ca.crt"]
"#,
        );
        let Some(IssuerConfig::Ca(ca)) = issuer.spec.config() else {
            panic!("not a CA issuer");
        };
        assert_eq!(ca.secret_name, "ca-key-pair");
        assert_eq!(
            ca.issuing_certificate_urls.as_deref(),
            Some(&["http://ca.example.com/ca.crt".to_owned()][..])
        );
    }

    #[test]
    fn self_signed_issuer_round_trips() {
        let issuer: Issuer = assert_round_trip(
            "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata:\n  name: selfsigned\n  namespace: default\nspec:\n  selfSigned: {}\n",
        );
        assert_eq!(issuer.spec.config().unwrap().type_name(), "selfSigned");
        let issuer: ClusterIssuer = assert_round_trip(
            "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: selfsigned\nspec:\n  selfSigned:\n    crlDistributionPoints: [http://crl.example.com/root.crl]\n",
        );
        assert!(issuer.spec.self_signed.is_some());
    }

    #[test]
    fn vault_issuers_round_trip() {
        let issuer: Issuer = assert_round_trip(
            r#"
apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: vault-issuer
  namespace: sandbox
spec:
  vault:
    server: https://vault.example.com:8200
    serverName: vault.internal
    path: pki_int/sign/example-dot-com
    namespace: ns1
    caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJkakNDQVIyZ0F3SUJBZ0lVVjdkbWQyWnMKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
    clientCertSecretRef: {name: vault-client, key: tls.crt}
    clientKeySecretRef: {name: vault-client, key: tls.key}
    auth:
      kubernetes:
        role: cert-manager
        mountPath: /v1/auth/kubernetes
        serviceAccountRef:
          name: vault-issuer
          audiences: ["vault://sandbox/vault-issuer"]
"#,
        );
        let vault = issuer.spec.vault.as_ref().unwrap();
        assert!(
            vault
                .ca_bundle
                .as_ref()
                .unwrap()
                .0
                .starts_with(b"-----BEGIN CERTIFICATE-----")
        );

        for auth in [
            "tokenSecretRef: {name: vault-token, key: token}",
            "appRole: {path: approle, roleId: 6f1d2c3b, secretRef: {name: vault-approle, key: secretId}}",
            "clientCertificate: {mountPath: /v1/auth/cert, secretName: vault-client-tls, name: cert-manager}",
            "kubernetes: {role: issuer, secretRef: {name: issuer-token, key: token}}",
            "aws: {role: cert-manager, region: eu-west-1, mountPath: /v1/auth/aws, iamRoleArn: 'arn:aws:iam::123456789012:role/vault', vaultHeaderValue: vault.example.com, serviceAccountRef: {name: vault-aws}}",
        ] {
            let yaml = format!(
                "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: vault\nspec:\n  vault:\n    server: http://vault:8200\n    path: pki/sign/r\n    caBundleSecretRef: {{name: vault-ca, key: ca.crt}}\n    auth:\n      {auth}\n"
            );
            let issuer: ClusterIssuer = assert_round_trip(&yaml);
            assert_eq!(issuer.spec.config().unwrap().type_name(), "vault");
        }
    }

    #[test]
    fn venafi_issuers_round_trip() {
        for venafi in [
            "tpp: {url: 'https://tpp.example.com/vedsdk', credentialsRef: {name: tpp-credentials}, caBundleSecretRef: {name: tpp-ca, key: ca.crt}}",
            "cloud: {url: 'https://api.venafi.eu/', apiTokenSecretRef: {name: vaas, key: apikey}}",
            "ngts: {tsgID: '1234567890', credentialsRef: {name: ngts-credentials}, url: 'https://api.strata.paloaltonetworks.com/ngts', tokenEndpoint: 'https://auth.apps.paloaltonetworks.com/oauth2/access_token'}",
        ] {
            let yaml = format!(
                "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata:\n  name: venafi\n  namespace: default\nspec:\n  venafi:\n    zone: 'DevOps\\\\Default'\n    {venafi}\n"
            );
            let issuer: Issuer = assert_round_trip(&yaml);
            assert_eq!(issuer.spec.config().unwrap().type_name(), "venafi");
        }
    }

    #[test]
    fn crd_names_columns_and_scope_match_cert_manager() {
        let issuer = Issuer::crd();
        let cluster = ClusterIssuer::crd();
        assert_eq!(
            issuer.metadata.name.as_deref(),
            Some("issuers.cert-manager.io")
        );
        assert_eq!(
            cluster.metadata.name.as_deref(),
            Some("clusterissuers.cert-manager.io")
        );
        for (crd, kind, plural, short, scope) in [
            (&issuer, "Issuer", "issuers", "iss", "Namespaced"),
            (
                &cluster,
                "ClusterIssuer",
                "clusterissuers",
                "ciss",
                "Cluster",
            ),
        ] {
            assert_eq!(crd.spec.group, "cert-manager.io");
            assert_eq!(crd.spec.scope, scope);
            let names = &crd.spec.names;
            assert_eq!(names.kind, kind);
            assert_eq!(names.plural, plural);
            assert_eq!(names.singular.as_deref(), Some(&*kind.to_lowercase()));
            assert_eq!(names.short_names.as_deref(), Some(&[short.to_owned()][..]));
            assert_eq!(
                names.categories.as_deref(),
                Some(&["cert-manager".to_owned()][..])
            );
            assert_eq!(crd.spec.versions.len(), 1);
            let version = &crd.spec.versions[0];
            assert_eq!(version.name, "v1");
            assert!(version.served && version.storage);
            assert!(version.selectable_fields.is_none());
            assert!(version.subresources.as_ref().unwrap().status.is_some());
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
                    (
                        "Ready",
                        "string",
                        r#".status.conditions[?(@.type == "Ready")].status"#,
                        None
                    ),
                    (
                        "Status",
                        "string",
                        r#".status.conditions[?(@.type == "Ready")].message"#,
                        Some(1)
                    ),
                    ("Age", "date", ".metadata.creationTimestamp", None),
                ]
            );
        }
    }

    #[test]
    fn issuer_and_cluster_issuer_share_one_schema() {
        let issuer = crd_schema(&Issuer::crd());
        let cluster = crd_schema(&ClusterIssuer::crd());
        assert_eq!(issuer["properties"]["spec"], cluster["properties"]["spec"]);
        assert_eq!(
            issuer["properties"]["status"],
            cluster["properties"]["status"]
        );
    }

    #[test]
    fn schema_carries_the_validation_rules() {
        let schema = crd_schema(&ClusterIssuer::crd());
        assert_eq!(
            rule_messages(&schema, "/properties/spec"),
            ["exactly one of acme, ca, selfSigned, vault or venafi must be set"]
        );
        assert_eq!(
            rule_messages(&schema, "/properties/spec/properties/venafi"),
            ["exactly one of tpp, cloud, or ngts must be configured"]
        );
        let solvers = "/properties/spec/properties/acme/properties/solvers";
        assert_eq!(schema.pointer(solvers).unwrap()["maxItems"], 100);
        assert_eq!(
            rule_messages(&schema, &format!("{solvers}/items")),
            ["each solver must set exactly one of http01 or dns01"]
        );
        assert_eq!(
            rule_messages(&schema, &format!("{solvers}/items/properties/http01")),
            ["http01 must set exactly one of ingress or gatewayHTTPRoute"]
        );
        assert_eq!(
            rule_messages(
                &schema,
                &format!("{solvers}/items/properties/http01/properties/ingress")
            ),
            ["ingress may set only one of class, ingressClassName or name"]
        );
        assert_eq!(
            rule_messages(&schema, &format!("{solvers}/items/properties/dns01")).len(),
            1
        );
        let conditions = schema
            .pointer("/properties/status/properties/conditions")
            .unwrap();
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"])
        );
        let mut required: Vec<&str> = schema
            .pointer("/properties/spec/properties/acme/required")
            .and_then(serde_json::Value::as_array)
            .unwrap()
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        required.sort_unstable();
        assert_eq!(required, ["privateKeySecretRef", "server"]);
    }

    #[test]
    fn issuer_config_picks_the_type_that_is_set() {
        assert_eq!(IssuerSpec::default().config(), None);
        let spec = IssuerSpec {
            self_signed: Some(SelfSignedIssuer::default()),
            ..IssuerSpec::default()
        };
        assert_eq!(spec.config().unwrap().type_name(), "selfSigned");
        let mut cluster = ClusterIssuer::new("root", spec.clone().into());
        assert_eq!(cluster.issuer_spec(), &spec);
        assert!(cluster.issuer_status().is_none());
        cluster.issuer_status_mut().conditions = Some(vec![IssuerCondition {
            type_: ISSUER_CONDITION_READY.into(),
            status: ConditionStatus::False,
            ..IssuerCondition::default()
        }]);
        assert!(!cluster.issuer_status().unwrap().is_ready());
    }
}
