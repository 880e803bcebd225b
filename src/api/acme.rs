//! The ACME issuer configuration (`spec.acme` of an Issuer or ClusterIssuer), its challenge
//! solvers, and the ACME types shared with `acme.cert-manager.io/v1` Order and Challenge.
//!
//! Mirrors cert-manager's `pkg/apis/acme/v1/types_issuer.go`. JSON names, types and optionality
//! follow the published CRDs of cert-manager v1.21; CEL rules stand in for the checks
//! cert-manager's admission webhook makes, because certsmith has none.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference as CoreLocalObjectReference, SELinuxOptions, SeccompProfile,
    Sysctl, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::meta::SecretKeySelector;

/// The most solvers one issuer may list. Bounds the cost of the CEL rules evaluated per solver.
pub const MAX_SOLVERS: usize = 100;

/// The key of the account private key in its Secret when `privateKeySecretRef.key` is not set.
pub const DEFAULT_PRIVATE_KEY_SECRET_KEY: &str = "tls.key";

// ---------------------------------------------------------------------------------------------
// Schema helpers shared with the other API modules.
// ---------------------------------------------------------------------------------------------

/// Schema of a `[]byte` field: a base64 string (`format: byte`), as Kubernetes encodes bytes.
pub(crate) fn bytes_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "byte" })
}

/// Schema of a field holding arbitrary JSON that the API server keeps as it is.
pub(crate) fn preserve_unknown_fields_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// Schema of a Pod's `imagePullSecrets`, as Kubernetes (and cert-manager's CRD) declare it: a
/// list keyed by `name` whose entries are replaced as a whole.
fn image_pull_secrets_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "description": "A reference to a Secret of type kubernetes.io/dockerconfigjson in the solver Pod's namespace.",
            "type": "object",
            "properties": {
                "name": {
                    "description": "Name of the Secret.",
                    "type": "string",
                    "default": "",
                },
            },
            "x-kubernetes-map-type": "atomic",
        },
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    })
}

/// The pattern of a resource quantity such as `100m`, `128Mi` or `1e3`, as in Kubernetes'
/// published schemas.
const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// Adds the quantity pattern to the values of a map of resource quantities, so the API server
/// rejects malformed quantities instead of the Pod creation failing later.
fn quantity_pattern(schema: &mut Schema) {
    if let Some(values) = schema
        .get_mut("additionalProperties")
        .and_then(serde_json::Value::as_object_mut)
    {
        values.insert("pattern".into(), QUANTITY_PATTERN.into());
    }
}

/// Adds the server-side apply markers that Kubernetes' own schemas of `Affinity` carry and
/// k8s-openapi's do not: every list is atomic, and label and node selectors (and their terms)
/// are replaced as a whole.
fn kubernetes_merge_markers(schema: &mut Schema) {
    schemars::transform::transform_subschemas(&mut kubernetes_merge_markers, schema);
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let is_array = match object.get("type") {
        Some(serde_json::Value::String(t)) => t == "array",
        Some(serde_json::Value::Array(types)) => types.iter().any(|t| t == "array"),
        _ => false,
    };
    if is_array && !object.contains_key("x-kubernetes-list-type") {
        object.insert("x-kubernetes-list-type".into(), "atomic".into());
    }
    let atomic_struct = object
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .is_some_and(|properties| {
            let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
            names.sort_unstable();
            matches!(
                names.as_slice(),
                // LabelSelector, NodeSelectorTerm, NodeSelector.
                ["matchExpressions", "matchLabels"]
                    | ["matchExpressions", "matchFields"]
                    | ["nodeSelectorTerms"]
            )
        });
    if atomic_struct {
        object.insert("x-kubernetes-map-type".into(), "atomic".into());
    }
}

// ---------------------------------------------------------------------------------------------
// The ACME issuer.
// ---------------------------------------------------------------------------------------------

/// Configures an issuer that obtains certificates from an ACME (RFC 8555) server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.privateKeySecretRef.name != ''").message(
    "privateKeySecretRef.name must name the Secret that holds (or will hold) the ACME account key"
))]
#[x_kube(validation = Rule::new(
    "!(has(self.caBundle) && has(self.skipTLSVerify) && self.skipTLSVerify)"
).message(
    "caBundle and skipTLSVerify are mutually exclusive: set caBundle to trust a private CA, or skipTLSVerify (insecure), not both"
))]
pub struct AcmeIssuer {
    /// The email address registered with the ACME account. Optional but recommended: the CA
    /// uses it to warn about problems with the account or its certificates. It may be changed
    /// after the account has been registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,

    /// The URL of the ACME server's directory, e.g.
    /// `https://acme-v02.api.letsencrypt.org/directory`. Only RFC 8555 servers are supported.
    #[x_kube(validation = Rule::new("self != ''").message(
        "server must be the URL of the ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory"
    ))]
    pub server: String,

    /// The chain to prefer when the ACME server offers several: the one whose top-most
    /// certificate has this issuer Common Name (for example `ISRG Root X1`). When none matches,
    /// the server's default chain is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub preferred_chain: Option<String>,

    /// PEM bundle of CA certificates (base64-encoded in JSON) trusted to verify the ACME
    /// server's TLS certificate. Mutually exclusive with `skipTLSVerify`. When neither is set,
    /// the system trust store is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bytes_schema")]
    pub ca_bundle: Option<ByteString>,

    /// INSECURE: do not verify the ACME server's TLS certificate. Mutually exclusive with
    /// `caBundle`; only meant for development environments.
    #[serde(
        default,
        rename = "skipTLSVerify",
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_tls_verify: Option<bool>,

    /// Credentials of an account at the CA that the ACME account is bound to on registration
    /// (External Account Binding, required by some commercial CAs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<AcmeExternalAccountBinding>,

    /// The Secret that stores the ACME account's private key. The key inside the Secret
    /// defaults to `tls.key`. A missing Secret is created with a new key unless
    /// `disableAccountKeyGeneration` is set.
    pub private_key_secret_ref: SecretKeySelector,

    /// How to solve the ACME challenges of each domain. The solver with the most specific
    /// `selector` that matches a domain is used; without a matching solver the order waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SOLVERS))]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub solvers: Option<Vec<AcmeChallengeSolver>>,

    /// Never generate an account key: expect it in the `privateKeySecretRef` Secret.
    /// Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_account_key_generation: Option<bool>,

    /// Ask the ACME server for a `notAfter` matching the certificate's requested duration.
    /// Not every server supports it (Let's Encrypt does not); orders fail on those that do not.
    /// Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_duration_feature: Option<bool>,

    /// The certificate profile to request from the ACME server. The server's directory lists
    /// the profiles it offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl AcmeIssuer {
    /// The key of the account private key in its Secret, with the default applied.
    pub fn private_key_secret_key(&self) -> &str {
        match self.private_key_secret_ref.key.as_deref() {
            None | Some("") => DEFAULT_PRIVATE_KEY_SECRET_KEY,
            Some(key) => key,
        }
    }

    /// The configured solvers, or none.
    pub fn solvers(&self) -> &[AcmeChallengeSolver] {
        self.solvers.as_deref().unwrap_or_default()
    }
}

/// An account at the CA that the ACME account is bound to on registration (RFC 8555 §7.3.4).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AcmeExternalAccountBinding {
    /// The key identifier the CA issued for the external account.
    #[serde(rename = "keyID")]
    #[x_kube(validation = Rule::new("self != ''").message(
        "externalAccountBinding.keyID must be the key identifier the CA issued"
    ))]
    pub key_id: String,

    /// The Secret entry that holds the MAC key of the external account. The value must be the
    /// key exactly as the CA issued it: unpadded base64url.
    #[x_kube(validation = Rule::new("self.name != ''").message(
        "externalAccountBinding.keySecretRef.name must name the Secret that holds the MAC key"
    ))]
    pub key_secret_ref: SecretKeySelector,

    /// Deprecated and ignored: the MAC algorithm is always HS256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_algorithm: Option<HmacKeyAlgorithm>,
}

/// The MAC algorithm of an External Account Binding (deprecated field, kept for compatibility).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum HmacKeyAlgorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
}

/// The ACME account status of an Issuer or ClusterIssuer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcmeIssuerStatus {
    /// The URL of the registered ACME account, which identifies it at the CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,

    /// The email address the account was last registered or updated with, to notice when
    /// `spec.acme.email` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_registered_email: Option<String>,

    /// A hash of the account private key last registered, to notice when the key changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_private_key_hash: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Solvers.
// ---------------------------------------------------------------------------------------------

/// How to solve the challenges of the domains this solver is selected for: exactly one of
/// `http01` or `dns01`, optionally restricted by `selector`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.http01) != has(self.dns01)").message(
    "each solver must set exactly one of http01 or dns01"
))]
pub struct AcmeChallengeSolver {
    /// The domains this solver is for. Without a selector the solver is the default, used
    /// only when no other solver matches more specifically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<CertificateDnsNameSelector>,

    /// Solve HTTP-01 challenges by serving the key authorization from a temporary Pod, routed
    /// by an Ingress or a Gateway API HTTPRoute. Cannot validate wildcard names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http01: Option<AcmeChallengeSolverHttp01>,

    /// Solve DNS-01 challenges by publishing a TXT record through a DNS provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns01: Option<AcmeChallengeSolverDns01>,

    /// Skip the self-check and wait this long (a Go duration such as `30s`) after presenting
    /// the challenge before asking the ACME server to validate it. An escape hatch for networks
    /// where the controller cannot see what the ACME server sees (split-horizon DNS, egress
    /// restrictions); `0s` accepts at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_instead_of_self_check: Option<String>,
}

impl AcmeChallengeSolver {
    /// The selector, or the empty (match-everything) selector.
    pub fn selector_or_default(&self) -> CertificateDnsNameSelector {
        self.selector.clone().unwrap_or_default()
    }
}

/// Selects the domains of a certificate that a solver is used for. All set criteria must match.
///
/// Precedence between solvers: a `dnsNames` match beats a `dnsZones` match; among zones the
/// longest (most specific) wins; ties go to the solver with more `matchLabels`, then to the one
/// listed first.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateDnsNameSelector {
    /// Labels the Certificate (or CertificateRequest) must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,

    /// Exact DNS names this solver is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub dns_names: Option<Vec<String>>,

    /// DNS zones this solver is for: a name matches a zone when it equals the zone or is a
    /// subdomain of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub dns_zones: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// HTTP-01.
// ---------------------------------------------------------------------------------------------

/// The HTTP-01 solver: exactly one of `ingress` or `gatewayHTTPRoute`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.ingress) != has(self.gatewayHTTPRoute)").message(
    "http01 must set exactly one of ingress or gatewayHTTPRoute"
))]
pub struct AcmeChallengeSolverHttp01 {
    /// Route the challenge through an Ingress: a new one per challenge, or an existing one
    /// (`name`) that gets a rule added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<AcmeChallengeSolverHttp01Ingress>,

    /// Route the challenge through a Gateway API HTTPRoute attached to `parentRefs`.
    #[serde(
        default,
        rename = "gatewayHTTPRoute",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_http_route: Option<AcmeChallengeSolverHttp01GatewayHttpRoute>,
}

/// Solves HTTP-01 challenges with a solver Pod and Service, routed by an Ingress.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "(has(self.class) ? 1 : 0) + (has(self.ingressClassName) ? 1 : 0) + (has(self.name) ? 1 : 0) <= 1"
).message(
    "ingress may set only one of class, ingressClassName or name"
))]
pub struct AcmeChallengeSolverHttp01Ingress {
    /// The type of the solver Service: `NodePort` (the default) or `ClusterIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == 'NodePort' || self == 'ClusterIP'").message(
        "serviceType must be NodePort or ClusterIP"
    ))]
    pub service_type: Option<String>,

    /// The `spec.ingressClassName` of the Ingresses created for challenges (the recommended
    /// way to pick an ingress controller). Only one of `class`, `ingressClassName` or `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,

    /// The `kubernetes.io/ingress.class` annotation of the Ingresses created for challenges.
    /// Only one of `class`, `ingressClassName` or `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,

    /// The name of an existing Ingress to add the challenge paths to, instead of creating one
    /// (for controllers such as ingress-gce that tie one IP to one Ingress). Only one of
    /// `class`, `ingressClassName` or `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Overrides for the solver Pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<AcmeChallengeSolverHttp01PodTemplate>,

    /// Overrides for the Ingresses created for challenges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_template: Option<AcmeChallengeSolverHttp01IngressTemplate>,
}

/// Solves HTTP-01 challenges with a solver Pod and Service, routed by a Gateway API HTTPRoute
/// created in the Challenge's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AcmeChallengeSolverHttp01GatewayHttpRoute {
    /// The type of the solver Service: `NodePort` (the default) or `ClusterIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == 'NodePort' || self == 'ClusterIP'").message(
        "serviceType must be NodePort or ClusterIP"
    ))]
    pub service_type: Option<String>,

    /// Labels of the HTTPRoutes created for challenges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,

    /// The Gateways (or other parents) the HTTPRoutes attach to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub parent_refs: Option<Vec<ParentReference>>,

    /// Overrides for the solver Pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<AcmeChallengeSolverHttp01PodTemplate>,
}

/// A Gateway API `ParentReference` (`gateway.networking.k8s.io/v1`): the object, usually a
/// Gateway, that an HTTPRoute attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    /// The API group of the parent. `gateway.networking.k8s.io` when unset; the empty string
    /// is the core group (for a Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        regex(pattern = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        extend("default" = "gateway.networking.k8s.io")
    )]
    pub group: Option<String>,

    /// The kind of the parent: `Gateway` when unset, or `Service` for a mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"),
        extend("default" = "Gateway")
    )]
    pub kind: Option<String>,

    /// The namespace of the parent; the HTTPRoute's own namespace when unset. A parent in
    /// another namespace must allow the route (Gateway `allowedRoutes`, ReferenceGrant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,

    /// The name of the parent.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// A section of the parent: a listener name of a Gateway, or a port name of a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub section_name: Option<String>,

    /// The port of the parent to attach to (all listeners on that port of a Gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// Overrides for the HTTP-01 solver Pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcmeChallengeSolverHttp01PodTemplate {
    /// Labels and annotations added to the solver Pods; they override built-in ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<SolverObjectMeta>,

    /// Pod spec fields applied to the solver Pods. Only the fields listed here are supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<AcmeChallengeSolverHttp01PodSpec>,
}

/// Overrides for the Ingresses created to solve HTTP-01 challenges.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcmeChallengeSolverHttp01IngressTemplate {
    /// Labels and annotations added to the solver Ingresses; they override built-in ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<SolverObjectMeta>,
}

/// The part of an object's metadata that a solver template may set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SolverObjectMeta {
    /// Annotations added to the created object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,

    /// Labels added to the created object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// The Pod spec fields that may be set on HTTP-01 solver Pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AcmeChallengeSolverHttp01PodSpec {
    /// Node labels the solver Pod must be scheduled on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,

    /// Scheduling constraints of the solver Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = kubernetes_merge_markers)]
    pub affinity: Option<Affinity>,

    /// Tolerations of the solver Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub tolerations: Option<Vec<Toleration>>,

    /// The PriorityClass of the solver Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,

    /// The ServiceAccount the solver Pod runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Secrets used to pull the solver image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "image_pull_secrets_schema")]
    pub image_pull_secrets: Option<Vec<CoreLocalObjectReference>>,

    /// The Pod-level security context of the solver Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<AcmeChallengeSolverHttp01PodSecurityContext>,

    /// Resource requests and limits of the solver container, overriding the controller's
    /// defaults. Limits must not be below the requests in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<AcmeChallengeSolverHttp01PodResources>,
}

/// The Pod security context fields that may be set on HTTP-01 solver Pods (a subset of
/// Kubernetes' `PodSecurityContext`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AcmeChallengeSolverHttp01PodSecurityContext {
    /// The SELinux context applied to all containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se_linux_options: Option<SELinuxOptions>,

    /// The UID the containers run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,

    /// The GID the containers run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,

    /// Require the containers to run as a non-root user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,

    /// Extra groups of the first process of each container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub supplemental_groups: Option<Vec<i64>>,

    /// The group that owns the Pod's volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<i64>,

    /// Namespaced sysctls set for the Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub sysctls: Option<Vec<Sysctl>>,

    /// When to change the ownership of volumes to `fsGroup`: `OnRootMismatch` or `Always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group_change_policy: Option<String>,

    /// The seccomp profile of the containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<SeccompProfile>,
}

/// Resource requests and limits of the HTTP-01 solver container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcmeChallengeSolverHttp01PodResources {
    /// The most of each resource the container may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = quantity_pattern)]
    pub limits: Option<BTreeMap<String, Quantity>>,

    /// The amount of each resource the container is guaranteed. Defaults to the limit when
    /// only a limit is set, otherwise to the controller's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = quantity_pattern)]
    pub requests: Option<BTreeMap<String, Quantity>>,
}

// ---------------------------------------------------------------------------------------------
// DNS-01.
// ---------------------------------------------------------------------------------------------

/// The DNS-01 solver: exactly one provider, plus how to treat CNAMEs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "(has(self.acmeDNS) ? 1 : 0) + (has(self.akamai) ? 1 : 0) + (has(self.azureDNS) ? 1 : 0) + (has(self.cloudDNS) ? 1 : 0) + (has(self.cloudflare) ? 1 : 0) + (has(self.digitalocean) ? 1 : 0) + (has(self.rfc2136) ? 1 : 0) + (has(self.route53) ? 1 : 0) + (has(self.webhook) ? 1 : 0) == 1"
).message(
    "dns01 must set exactly one provider: acmeDNS, akamai, azureDNS, cloudDNS, cloudflare, digitalocean, rfc2136, route53 or webhook"
))]
pub struct AcmeChallengeSolverDns01 {
    /// Whether to follow a CNAME at `_acme-challenge.<domain>` and publish the record at its
    /// target (`Follow`), or not (`None`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname_strategy: Option<CnameStrategy>,

    /// Akamai Edge DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub akamai: Option<AcmeIssuerDns01ProviderAkamai>,

    /// Google Cloud DNS.
    #[serde(default, rename = "cloudDNS", skip_serializing_if = "Option::is_none")]
    pub cloud_dns: Option<AcmeIssuerDns01ProviderCloudDns>,

    /// Cloudflare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudflare: Option<AcmeIssuerDns01ProviderCloudflare>,

    /// AWS Route53.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route53: Option<AcmeIssuerDns01ProviderRoute53>,

    /// Microsoft Azure DNS.
    #[serde(default, rename = "azureDNS", skip_serializing_if = "Option::is_none")]
    pub azure_dns: Option<AcmeIssuerDns01ProviderAzureDns>,

    /// DigitalOcean DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digitalocean: Option<AcmeIssuerDns01ProviderDigitalOcean>,

    /// An acme-dns server (<https://github.com/joohoi/acme-dns>).
    #[serde(default, rename = "acmeDNS", skip_serializing_if = "Option::is_none")]
    pub acme_dns: Option<AcmeIssuerDns01ProviderAcmeDns>,

    /// Any DNS server that accepts RFC 2136 dynamic updates (BIND, Knot, PowerDNS, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rfc2136: Option<AcmeIssuerDns01ProviderRfc2136>,

    /// An external DNS-01 webhook solver (cert-manager's webhook protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<AcmeIssuerDns01ProviderWebhook>,
}

/// Whether a DNS-01 solver follows CNAME records.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CnameStrategy {
    /// Publish the record at `_acme-challenge.<domain>` itself.
    #[default]
    None,
    /// Follow CNAMEs from `_acme-challenge.<domain>` and publish the record at the target.
    Follow,
}

/// Akamai Edge DNS credentials (EdgeGrid).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcmeIssuerDns01ProviderAkamai {
    /// The EdgeGrid host, e.g. `akab-xxxx.luna.akamaiapis.net`.
    pub service_consumer_domain: String,
    /// The EdgeGrid client token.
    pub client_token_secret_ref: SecretKeySelector,
    /// The EdgeGrid client secret.
    pub client_secret_secret_ref: SecretKeySelector,
    /// The EdgeGrid access token.
    pub access_token_secret_ref: SecretKeySelector,
}

/// Google Cloud DNS.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcmeIssuerDns01ProviderCloudDns {
    /// A service account key (JSON). Without it, ambient credentials (workload identity) are
    /// used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_secret_ref: Option<SecretKeySelector>,

    /// The Google Cloud project that owns the zone.
    pub project: String,

    /// The managed zone to write to. Found automatically when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_name: Option<String>,
}

/// Cloudflare: an API token (recommended) or a global API key with the account's email.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.apiTokenSecretRef) != has(self.apiKeySecretRef)").message(
    "cloudflare must set exactly one of apiTokenSecretRef (recommended) or apiKeySecretRef"
))]
#[x_kube(validation = Rule::new("!has(self.apiKeySecretRef) || has(self.email)").message(
    "cloudflare email is required with apiKeySecretRef"
))]
pub struct AcmeIssuerDns01ProviderCloudflare {
    /// The email of the Cloudflare account; only needed with `apiKeySecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,

    /// A global API key. Prefer `apiTokenSecretRef`, whose permissions can be limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeySelector>,

    /// An API token with permission to edit the zone's DNS records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_secret_ref: Option<SecretKeySelector>,
}

/// AWS Route53. Without explicit credentials the ambient ones are used (environment, shared
/// credentials file, instance metadata, IRSA).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.accessKeyID) && has(self.accessKeyIDSecretRef))").message(
    "route53 may set only one of accessKeyID or accessKeyIDSecretRef"
))]
pub struct AcmeIssuerDns01ProviderRoute53 {
    /// Authenticate with a Kubernetes ServiceAccount token (AssumeRoleWithWebIdentity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Route53Auth>,

    /// The AWS access key ID. Only one of `accessKeyID` or `accessKeyIDSecretRef`.
    #[serde(
        default,
        rename = "accessKeyID",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_key_id: Option<String>,

    /// The AWS access key ID, read from a Secret. Only one of `accessKeyID` or
    /// `accessKeyIDSecretRef`.
    #[serde(
        default,
        rename = "accessKeyIDSecretRef",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_key_id_secret_ref: Option<SecretKeySelector>,

    /// The AWS secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_secret_ref: Option<SecretKeySelector>,

    /// The ARN of an IAM role to assume with the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,

    /// The hosted zone to write to; skips the lookup by name (`route53:ListHostedZonesByName`).
    #[serde(
        default,
        rename = "hostedZoneID",
        skip_serializing_if = "Option::is_none"
    )]
    pub hosted_zone_id: Option<String>,

    /// The AWS region used to scope credentials (Route53 itself is global).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// How the Route53 provider authenticates.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Route53Auth {
    /// Use a bound ServiceAccount token with AssumeRoleWithWebIdentity.
    pub kubernetes: Route53KubernetesAuth,
}

/// Route53 authentication with a Kubernetes ServiceAccount token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Route53KubernetesAuth {
    /// The ServiceAccount to request a token for. The controller needs RBAC permission to
    /// create tokens for it. The audience defaults to `sts.amazonaws.com`.
    pub service_account_ref: ServiceAccountRef,
}

/// A ServiceAccount in the issuer's namespace (the cluster resource namespace for a
/// ClusterIssuer) whose bound token is requested for authentication.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountRef {
    /// The name of the ServiceAccount.
    pub name: String,

    /// Extra audiences of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(merge_strategy = ListMerge::Atomic)]
    pub audiences: Option<Vec<String>>,
}

/// Microsoft Azure DNS: a service principal (`clientID`, `clientSecretSecretRef`, `tenantID`),
/// a managed or workload identity (`managedIdentity`), or ambient credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.clientSecretSecretRef) || (has(self.clientID) && has(self.tenantID))"
).message(
    "azureDNS clientSecretSecretRef needs clientID and tenantID as well"
))]
#[x_kube(validation = Rule::new(
    "!has(self.managedIdentity) || !(has(self.clientID) || has(self.clientSecretSecretRef) || has(self.tenantID))"
).message(
    "azureDNS managedIdentity cannot be combined with clientID, clientSecretSecretRef or tenantID"
))]
pub struct AcmeIssuerDns01ProviderAzureDns {
    /// The client ID of the service principal. Needs `clientSecretSecretRef` and `tenantID`.
    #[serde(default, rename = "clientID", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,

    /// The password of the service principal. Needs `clientID` and `tenantID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_secret_ref: Option<SecretKeySelector>,

    /// The ID of the Azure subscription that holds the zone.
    #[serde(rename = "subscriptionID")]
    pub subscription_id: String,

    /// The tenant of the service principal. Needs `clientID` and `clientSecretSecretRef`.
    #[serde(default, rename = "tenantID", skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,

    /// The resource group of the zone.
    pub resource_group_name: String,

    /// The name of the zone. Found automatically when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_name: Option<String>,

    /// The Azure cloud (default `AzurePublicCloud`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<AzureDnsEnvironment>,

    /// Authenticate with Azure Workload Identity or a Managed Service Identity. Excludes
    /// `clientID`, `clientSecretSecretRef` and `tenantID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_identity: Option<AzureManagedIdentity>,

    /// Whether the zone is public (`AzurePublicZone`, the default) or private
    /// (`AzurePrivateZone`, experimental).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_type: Option<AzureDnsZoneType>,
}

/// An Azure cloud.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AzureDnsEnvironment {
    /// The global Azure cloud.
    #[default]
    AzurePublicCloud,
    /// Azure China.
    AzureChinaCloud,
    /// Azure Germany.
    AzureGermanCloud,
    /// Azure US Government.
    AzureUSGovernmentCloud,
}

/// The kind of Azure DNS zone.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AzureDnsZoneType {
    /// A public Azure DNS zone.
    #[default]
    AzurePublicZone,
    /// An Azure Private DNS zone (experimental).
    AzurePrivateZone,
}

/// An Azure Workload Identity or Managed Service Identity.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.resourceID) || !(has(self.clientID) || has(self.tenantID))"
).message(
    "azureDNS managedIdentity resourceID cannot be combined with clientID or tenantID"
))]
pub struct AzureManagedIdentity {
    /// The client ID of the identity. Not with `resourceID`.
    #[serde(default, rename = "clientID", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,

    /// The resource ID of the managed identity. Not with `clientID` or `tenantID`; not
    /// supported for Managed Service Identity.
    #[serde(
        default,
        rename = "resourceID",
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_id: Option<String>,

    /// The tenant of the identity. Not with `resourceID`.
    #[serde(default, rename = "tenantID", skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// DigitalOcean DNS.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcmeIssuerDns01ProviderDigitalOcean {
    /// An API token with write access to the domain.
    pub token_secret_ref: SecretKeySelector,
}

/// An acme-dns server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcmeIssuerDns01ProviderAcmeDns {
    /// The URL of the acme-dns server.
    pub host: String,

    /// The acme-dns account registrations (JSON, keyed by domain).
    pub account_secret_ref: SecretKeySelector,
}

/// RFC 2136 dynamic DNS updates, optionally authenticated with TSIG.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.tsigKeyName) == has(self.tsigSecretSecretRef)").message(
    "rfc2136 tsigKeyName and tsigSecretSecretRef must be set together (or both left out for unsigned updates)"
))]
pub struct AcmeIssuerDns01ProviderRfc2136 {
    /// The authoritative server that accepts updates, as `host[:port]` (port 53 by default;
    /// an IPv6 address in brackets, e.g. `[2001:db8::1]:53`).
    #[x_kube(validation = Rule::new("self != ''").message(
        "rfc2136 nameserver must be the host[:port] of the DNS server that accepts updates"
    ))]
    pub nameserver: String,

    /// The Secret entry holding the TSIG key (base64). Needs `tsigKeyName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig_secret_secret_ref: Option<SecretKeySelector>,

    /// The name of the TSIG key configured on the server. Needs `tsigSecretSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig_key_name: Option<String>,

    /// The TSIG algorithm, case-insensitive: `HMACMD5` (the default), `HMACSHA1`,
    /// `HMACSHA256` or `HMACSHA512`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig_algorithm: Option<String>,

    /// The transport of the updates: `UDP` (the default) or `TCP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Rfc2136Protocol>,
}

/// The transport of RFC 2136 updates.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Rfc2136Protocol {
    /// DNS over TCP.
    TCP,
    /// DNS over UDP.
    #[default]
    UDP,
}

/// An external DNS-01 solver that implements cert-manager's webhook protocol, served as an
/// aggregated API at `/apis/<groupName>/v1alpha1/<solverName>`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcmeIssuerDns01ProviderWebhook {
    /// The API group the webhook serves, as set in the webhook's implementation.
    pub group_name: String,

    /// The name of the solver within the webhook, e.g. `cloudflare`.
    pub solver_name: String,

    /// Solver-specific configuration passed to the webhook as it is. Reference Secrets here
    /// rather than embedding credentials; see the webhook's documentation for its schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_fields_schema")]
    pub config: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------------
// Shared with Order and Challenge.
// ---------------------------------------------------------------------------------------------

/// The state of an ACME order, authorization or challenge, as the ACME server reports it,
/// plus `errored` for failures the controller cannot attribute to the server. An absent state
/// means unknown.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AcmeState {
    /// Everything is done: the order's certificate is issued, or the challenge was validated.
    Valid,
    /// All authorizations are valid; the order can be finalized.
    Ready,
    /// Waiting for authorizations or challenges to be completed.
    Pending,
    /// The server is working on it (validating a challenge, issuing a certificate).
    Processing,
    /// The server rejected it. Final.
    Invalid,
    /// It expired before it was completed. Final.
    Expired,
    /// The controller failed in a way that is not an ACME error (for example the order no
    /// longer exists on the server). Final.
    Errored,
}

impl AcmeState {
    /// Whether nothing more will happen in this state: `valid`, `invalid`, `expired` or
    /// `errored`.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Valid | Self::Invalid | Self::Expired | Self::Errored
        )
    }

    /// Whether the state is a final failure: `invalid`, `expired` or `errored`.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Invalid | Self::Expired | Self::Errored)
    }

    /// The lowercase wire value, e.g. `valid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Ready => "ready",
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Invalid => "invalid",
            Self::Expired => "expired",
            Self::Errored => "errored",
        }
    }
}

impl std::fmt::Display for AcmeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Helpers for the API modules' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    /// Parses a YAML manifest into `T`, checks that `T` serializes back to exactly the same
    /// JSON (no field lost, renamed, defaulted or reordered into something else), and returns it.
    pub(crate) fn assert_round_trip<T: DeserializeOwned + Serialize>(yaml: &str) -> T {
        let typed: T = serde_saphyr::from_str(yaml).expect("the manifest parses into the type");
        let expected: serde_json::Value =
            serde_saphyr::from_str(yaml).expect("the manifest parses as JSON");
        let actual = serde_json::to_value(&typed).expect("the type serializes");
        assert_eq!(actual, expected, "round trip changed the manifest");
        typed
    }

    /// The `openAPIV3Schema` of the only version of a CRD, as JSON.
    pub(crate) fn crd_schema(
        crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ) -> serde_json::Value {
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("the CRD has a schema");
        serde_json::to_value(schema).expect("the schema serializes")
    }

    /// The `x-kubernetes-validations` messages at a JSON pointer into a schema.
    pub(crate) fn rule_messages(schema: &serde_json::Value, pointer: &str) -> Vec<String> {
        schema
            .pointer(pointer)
            .unwrap_or_else(|| panic!("no schema at {pointer}"))
            .get("x-kubernetes-validations")
            .and_then(serde_json::Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| r["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::assert_round_trip;
    use super::*;
    use schemars::generate::SchemaSettings;

    /// The schema of a type as kube generates it for a CRD.
    fn crd_style_schema<T: JsonSchema>() -> serde_json::Value {
        let generator = SchemaSettings::openapi3()
            .with(|s| {
                s.inline_subschemas = true;
                s.meta_schema = None;
            })
            .with_transform(schemars::transform::AddNullable::default())
            .with_transform(kube::core::schema::StructuralSchemaRewriter)
            .with_transform(kube::core::schema::OptionalEnum)
            .with_transform(kube::core::schema::OptionalIntOrString)
            .into_generator();
        serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap()
    }

    #[test]
    fn solver_with_every_dns01_provider_round_trips() {
        let providers = [
            "acmeDNS: {host: 'https://auth.acme-dns.io', accountSecretRef: {name: acme-dns, key: acmedns.json}}",
            "akamai: {serviceConsumerDomain: akab-x.luna.akamaiapis.net, clientTokenSecretRef: {name: akamai, key: client-token}, clientSecretSecretRef: {name: akamai, key: client-secret}, accessTokenSecretRef: {name: akamai, key: access-token}}",
            "azureDNS: {subscriptionID: sub-1, resourceGroupName: dns-rg, hostedZoneName: example.com, environment: AzurePublicCloud, zoneType: AzurePrivateZone, managedIdentity: {clientID: 00000000-0000-0000-0000-000000000001}}",
            "azureDNS: {subscriptionID: sub-1, resourceGroupName: dns-rg, clientID: app-1, tenantID: tenant-1, clientSecretSecretRef: {name: azuredns, key: client-secret}}",
            "cloudDNS: {project: my-project, hostedZoneName: example-zone, serviceAccountSecretRef: {name: clouddns, key: key.json}}",
            "cloudflare: {email: admin@example.com, apiKeySecretRef: {name: cloudflare, key: api-key}}",
            "digitalocean: {tokenSecretRef: {name: digitalocean, key: access-token}}",
            "rfc2136: {nameserver: '[2001:db8::53]:53', tsigKeyName: certsmith., tsigAlgorithm: HMACSHA256, tsigSecretSecretRef: {name: tsig, key: secret}, protocol: TCP}",
            "route53: {region: us-east-1, auth: {kubernetes: {serviceAccountRef: {name: route53-sa, audiences: [sts.amazonaws.com]}}}}",
            "route53: {accessKeyID: AKIAIOSFODNN7EXAMPLE, secretAccessKeySecretRef: {name: aws, key: secret}}",
            "webhook: {groupName: acme.example.com, solverName: example, config: {a: 1, b: [x, {c: null}], d: true}}",
        ];
        for provider in providers {
            let yaml = format!("dns01:\n  cnameStrategy: None\n  {provider}\n");
            let solver: AcmeChallengeSolver = assert_round_trip(&yaml);
            assert!(solver.dns01.is_some(), "{provider}");
        }
    }

    #[test]
    fn http01_solvers_round_trip() {
        let ingress: AcmeChallengeSolver = assert_round_trip(
            r#"
selector:
  matchLabels: {tier: web}
http01:
  ingress:
    ingressClassName: nginx
    serviceType: ClusterIP
    podTemplate:
      metadata:
        labels: {team: platform}
        annotations: {sidecar.istio.io/inject: "false"}
      spec:
        nodeSelector: {kubernetes.io/os: linux}
        priorityClassName: system-cluster-critical
        serviceAccountName: acme-solver
        imagePullSecrets: [{name: regcred}]
        tolerations:
        - {key: dedicated, operator: Equal, value: ingress, effect: NoSchedule}
        - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
        affinity:
          nodeAffinity:
            requiredDuringSchedulingIgnoredDuringExecution:
              nodeSelectorTerms:
              - matchExpressions:
                - {key: node-role.kubernetes.io/ingress, operator: Exists}
          podAntiAffinity:
            preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels: {acme.cert-manager.io/http01-solver: "true"}
        securityContext:
          runAsNonRoot: true
          runAsUser: 1000
          runAsGroup: 1000
          fsGroup: 2000
          fsGroupChangePolicy: OnRootMismatch
          supplementalGroups: [3000]
          sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: "0"}]
          seLinuxOptions: {level: "s0:c123,c456"}
          seccompProfile: {type: RuntimeDefault}
        resources:
          requests: {cpu: 10m, memory: 64Mi}
          limits: {memory: 128Mi}
    ingressTemplate:
      metadata:
        labels: {exposed: "true"}
        annotations: {nginx.ingress.kubernetes.io/ssl-redirect: "false"}
"#,
        );
        let spec = ingress
            .http01
            .unwrap()
            .ingress
            .unwrap()
            .pod_template
            .unwrap();
        let spec = spec.spec.unwrap();
        assert_eq!(spec.image_pull_secrets.unwrap()[0].name, "regcred");
        assert_eq!(spec.tolerations.unwrap()[1].toleration_seconds, Some(300));

        let gateway: AcmeChallengeSolver = assert_round_trip(
            r#"
http01:
  gatewayHTTPRoute:
    serviceType: ClusterIP
    labels: {app: acme-solver}
    parentRefs:
    - {name: public, namespace: gateway-system, kind: Gateway, group: gateway.networking.k8s.io, sectionName: http, port: 80}
    - {name: mesh-entry, kind: Service, group: ""}
    podTemplate:
      spec:
        nodeSelector: {kubernetes.io/os: linux}
waitInsteadOfSelfCheck: 30s
"#,
        );
        let route = gateway.http01.unwrap().gateway_http_route.unwrap();
        assert_eq!(
            route.parent_refs.as_ref().unwrap()[1].group.as_deref(),
            Some("")
        );
        assert_eq!(gateway.wait_instead_of_self_check.as_deref(), Some("30s"));
    }

    #[test]
    fn acme_issuer_defaults_and_helpers() {
        let acme: AcmeIssuer = assert_round_trip(
            "server: https://acme.example/dir\nprivateKeySecretRef: {name: account}\n",
        );
        assert_eq!(acme.private_key_secret_key(), "tls.key");
        assert!(acme.solvers().is_empty());
        let acme: AcmeIssuer = assert_round_trip(
            "server: https://acme.example/dir\nprivateKeySecretRef: {name: account, key: key.pem}\nskipTLSVerify: false\ncaBundle: LS0tLS0K\ndisableAccountKeyGeneration: true\nenableDurationFeature: true\n",
        );
        assert_eq!(acme.private_key_secret_key(), "key.pem");
        assert_eq!(acme.ca_bundle.unwrap().0, b"-----\n");
    }

    #[test]
    fn acme_state_wire_values() {
        let all = [
            AcmeState::Valid,
            AcmeState::Ready,
            AcmeState::Pending,
            AcmeState::Processing,
            AcmeState::Invalid,
            AcmeState::Expired,
            AcmeState::Errored,
        ];
        for state in all {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
            assert_eq!(state.to_string(), state.as_str());
        }
        let finals: Vec<_> = all
            .iter()
            .filter(|s| s.is_final())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(finals, ["valid", "invalid", "expired", "errored"]);
        let failures: Vec<_> = all
            .iter()
            .filter(|s| s.is_failure())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(failures, ["invalid", "expired", "errored"]);
    }

    #[test]
    fn solver_schema_reproduces_kubernetes_markers() {
        let schema = crd_style_schema::<AcmeChallengeSolver>();
        let pod_spec = schema
            .pointer("/properties/http01/properties/ingress/properties/podTemplate/properties/spec/properties")
            .unwrap();
        let pull = &pod_spec["imagePullSecrets"];
        assert_eq!(pull["x-kubernetes-list-type"], "map");
        assert_eq!(
            pull["x-kubernetes-list-map-keys"],
            serde_json::json!(["name"])
        );
        assert_eq!(pull["items"]["properties"]["name"]["default"], "");
        let terms = pod_spec["affinity"]
            .pointer("/properties/nodeAffinity/properties/requiredDuringSchedulingIgnoredDuringExecution")
            .unwrap();
        assert_eq!(terms["x-kubernetes-map-type"], "atomic");
        assert_eq!(
            terms["properties"]["nodeSelectorTerms"]["x-kubernetes-list-type"],
            "atomic"
        );
        let limits = pod_spec["resources"]
            .pointer("/properties/limits/additionalProperties")
            .unwrap();
        assert_eq!(limits["x-kubernetes-int-or-string"], true);
        assert_eq!(limits["pattern"], QUANTITY_PATTERN);
        assert_eq!(pod_spec["tolerations"]["x-kubernetes-list-type"], "atomic");

        let webhook = schema
            .pointer("/properties/dns01/properties/webhook/properties/config")
            .unwrap();
        assert_eq!(webhook["x-kubernetes-preserve-unknown-fields"], true);
        let key_algorithms = crd_style_schema::<AcmeExternalAccountBinding>();
        assert_eq!(
            key_algorithms["properties"]["keyAlgorithm"]["enum"],
            serde_json::json!(["HS256", "HS384", "HS512"]),
            "no null among the enum values of an optional enum"
        );
        let parent = schema
            .pointer("/properties/http01/properties/gatewayHTTPRoute/properties/parentRefs/items/properties")
            .unwrap();
        assert_eq!(parent["group"]["default"], "gateway.networking.k8s.io");
        assert_eq!(parent["kind"]["default"], "Gateway");
        assert_eq!(parent["port"]["maximum"], 65535);
    }
}
