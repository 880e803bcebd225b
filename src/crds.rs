//! The CustomResourceDefinitions certsmith serves, generated from the types in [`crate::api`].
//!
//! `certsmith crds` prints them and `crds/` holds one file per CRD; a test fails when the two drift.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;

use crate::api::{Certificate, CertificateRequest, Challenge, ClusterIssuer, Issuer, Order};

/// Every CRD, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    [
        Certificate::crd(),
        CertificateRequest::crd(),
        Issuer::crd(),
        ClusterIssuer::crd(),
        Order::crd(),
        Challenge::crd(),
    ]
    .into_iter()
    .map(complete)
    .collect()
}

/// Adds what kube-derive leaves out but cert-manager's CRDs carry, so that tools reading the
/// schema (kubectl explain, IDE plugins, schema linters) see the same document: `listKind`, and
/// the root `apiVersion`, `kind` and `metadata` properties.
fn complete(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut crd = drop_nullable(crd);
    crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        let properties = root.properties.get_or_insert_with(Default::default);
        properties.insert("apiVersion".into(), string_property(API_VERSION_DOC));
        properties.insert("kind".into(), string_property(KIND_DOC));
        properties.insert(
            "metadata".into(),
            JSONSchemaProps {
                type_: Some("object".into()),
                ..Default::default()
            },
        );
    }
    crd
}

/// kube-derive marks every `Option` field `nullable`, which makes the API server keep an explicit
/// `null` (and then reject it on enums). cert-manager's CRDs are not nullable, so a Helm value
/// left empty (`algorithm:`) is dropped there; stripping `nullable` gives the same behaviour here.
fn drop_nullable(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("nullable");
                if let Some(serde_json::Value::Array(values)) = map.get_mut("enum") {
                    values.retain(|v| !v.is_null());
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(&crd).expect("a CRD serialises to JSON");
    for version in value["spec"]["versions"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        walk(&mut version["schema"]);
    }
    serde_json::from_value(value).expect("a CRD without nullable is still a CRD")
}

fn string_property(description: &str) -> JSONSchemaProps {
    JSONSchemaProps {
        type_: Some("string".into()),
        description: Some(description.into()),
        ..Default::default()
    }
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. \
Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. \
More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";

const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. \
Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. \
More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The file name of a CRD in `crds/`, the same as cert-manager's: `<group>_<plural>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// One CRD as a YAML document.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    let yaml = serde_saphyr::to_string(crd).expect("a CRD always serialises to YAML");
    format!("---\n{}", yaml.trim_start_matches("---\n"))
}

/// All CRDs as one multi-document YAML stream.
pub fn all_yaml() -> String {
    all().iter().map(to_yaml).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_cert_manager() {
        let names: Vec<String> = all().iter().map(file_name).collect();
        assert_eq!(
            names,
            [
                "cert-manager.io_certificates.yaml",
                "cert-manager.io_certificaterequests.yaml",
                "cert-manager.io_issuers.yaml",
                "cert-manager.io_clusterissuers.yaml",
                "acme.cert-manager.io_orders.yaml",
                "acme.cert-manager.io_challenges.yaml",
            ]
        );
    }

    #[test]
    fn yaml_parses_back_to_the_same_crd() {
        for crd in all() {
            let back: CustomResourceDefinition =
                serde_saphyr::from_str(&to_yaml(&crd)).expect("generated YAML parses");
            assert_eq!(back, crd);
        }
    }
}
