//! The CustomResourceDefinitions certsmith serves, generated from the types in [`crate::api`].
//!
//! `certsmith crds` prints them and `crds/` holds one file per CRD; a test fails when the two drift.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::{Certificate, CertificateRequest, Challenge, ClusterIssuer, Issuer, Order};

/// Every CRD, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        Certificate::crd(),
        CertificateRequest::crd(),
        Issuer::crd(),
        ClusterIssuer::crd(),
        Order::crd(),
        Challenge::crd(),
    ]
}

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
