//! Types shared by every kind, mirroring cert-manager's `pkg/apis/meta/v1`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of Certificate, CertificateRequest, Issuer and ClusterIssuer.
pub const CERT_MANAGER_GROUP: &str = "cert-manager.io";
/// API group of Order and Challenge.
pub const ACME_GROUP: &str = "acme.cert-manager.io";
/// The only served version of every kind.
pub const VERSION: &str = "v1";

/// Key of the CA certificate in a `kubernetes.io/tls` Secret.
pub const TLS_CA_KEY: &str = "ca.crt";

/// A reference to an Issuer or ClusterIssuer (or an external issuer of another group).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerReference {
    /// Name of the issuer being referred to.
    pub name: String,
    /// Kind of the issuer being referred to. Defaults to `Issuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Group of the issuer being referred to. Defaults to `cert-manager.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl IssuerReference {
    /// The kind with cert-manager's default applied.
    pub fn kind_or_default(&self) -> &str {
        match self.kind.as_deref() {
            None | Some("") => "Issuer",
            Some(kind) => kind,
        }
    }

    /// The group with cert-manager's default applied.
    pub fn group_or_default(&self) -> &str {
        match self.group.as_deref() {
            None | Some("") => CERT_MANAGER_GROUP,
            Some(group) => group,
        }
    }
}

/// A reference to an object in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    /// Name of the resource being referred to.
    pub name: String,
}

/// A reference to a key of a Secret in the same namespace (the cluster resource namespace for
/// ClusterIssuers).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// Name of the Secret being referred to.
    pub name: String,
    /// The key of the entry in the Secret's `data` field. Some fields have a default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `True`, `False` or `Unknown`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    #[default]
    Unknown,
}
