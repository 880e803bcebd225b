//! The CertificateRequest a Certificate creates for its next revision, and how an existing one
//! is read back: its revision, its outcome, and whether it still matches the spec.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use super::plan::{CertState, RequestFacts, RequestState};
use crate::api::Certificate;
use crate::api::certificate::{CertificateSpec, KeyUsage};
use crate::api::certificate_request::{
    CertificateRequest, CertificateRequestCondition, CertificateRequestSpec,
};
use crate::api::meta::{ConditionStatus, IssuerReference};
use crate::pki::csr::{csr_violations, parse_csr};
use crate::pki::renewal::{format_go_duration, parse_go_duration};
use crate::pki::x509;

pub const CERTIFICATE_NAME_ANNOTATION: &str = "cert-manager.io/certificate-name";
pub const REVISION_ANNOTATION: &str = "cert-manager.io/certificate-revision";
pub const PRIVATE_KEY_ANNOTATION: &str = "cert-manager.io/private-key-secret-name";

/// Annotation prefixes not copied from a Certificate to its requests (cert-manager's
/// `--copied-annotation-prefixes` default: `*,-kubectl.kubernetes.io/,-fluxcd.io/,-argocd.argoproj.io/`).
pub const EXCLUDED_ANNOTATION_PREFIXES: [&str; 3] = [
    "kubectl.kubernetes.io/",
    "fluxcd.io/",
    "argocd.argoproj.io/",
];

/// The Certificate's annotations that its requests carry too.
pub fn copied_annotations(
    annotations: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    annotations
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            !EXCLUDED_ANNOTATION_PREFIXES
                .iter()
                .any(|p| k.starts_with(p))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `spec.duration` as Go writes it (`2160h0m0s`); kept as given when it does not parse.
fn normalized_duration(duration: Option<&str>) -> Option<String> {
    let duration = duration.filter(|d| !d.is_empty())?;
    Some(
        parse_go_duration(duration)
            .map(format_go_duration)
            .unwrap_or_else(|_| duration.to_owned()),
    )
}

/// The CertificateRequest of `revision`: owned by the Certificate, with its labels and (filtered)
/// annotations plus the certificate-name, revision and private-key-secret-name annotations; the
/// spec carries the CSR, the issuer, and the Certificate's duration, isCA and usages.
pub fn build_request(
    certificate: &Certificate,
    name: &str,
    revision: i64,
    key_secret: &str,
    csr_pem: &str,
) -> CertificateRequest {
    let spec = &certificate.spec;
    let mut annotations = copied_annotations(certificate.metadata.annotations.as_ref());
    annotations.insert(
        CERTIFICATE_NAME_ANNOTATION.into(),
        certificate.metadata.name.clone().unwrap_or_default(),
    );
    annotations.insert(REVISION_ANNOTATION.into(), revision.to_string());
    annotations.insert(PRIVATE_KEY_ANNOTATION.into(), key_secret.into());
    CertificateRequest {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: certificate.metadata.namespace.clone(),
            labels: certificate.metadata.labels.clone(),
            annotations: Some(annotations),
            owner_references: certificate.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        spec: CertificateRequestSpec {
            duration: normalized_duration(spec.duration.as_deref()),
            issuer_ref: spec.issuer_ref.clone(),
            request: ByteString(csr_pem.as_bytes().to_vec()),
            is_ca: spec.is_ca().then_some(true),
            usages: spec.usages.clone().filter(|u| !u.is_empty()),
            ..Default::default()
        },
        status: None,
    }
}

/// `cert-manager.io/certificate-revision`, when it is a number.
pub fn revision_of(request: &CertificateRequest) -> Option<i64> {
    request
        .metadata
        .annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)?
        .trim()
        .parse()
        .ok()
}

fn usage_set(usages: Option<&Vec<KeyUsage>>) -> Vec<KeyUsage> {
    let mut set = match usages {
        Some(u) if !u.is_empty() => u.clone(),
        _ => KeyUsage::DEFAULT.to_vec(),
    };
    set.sort();
    set.dedup();
    set
}

fn issuer_refs_equal(a: &IssuerReference, b: &IssuerReference) -> bool {
    a.name == b.name
        && a.kind_or_default() == b.kind_or_default()
        && a.group_or_default() == b.group_or_default()
}

/// cert-manager's `RequestMatchesSpec`: the spec fields a request does not match, in its order
/// (names and subject from the CSR, then isCA, usages, duration and issuerRef from the request's
/// spec), or why the CSR cannot be read. Usages compare with the default applied on both sides.
pub fn request_violations(
    request: &CertificateRequest,
    spec: &CertificateSpec,
) -> Result<Vec<String>, String> {
    let csr = parse_csr(&request.spec.request.0).map_err(|e| e.to_string())?;
    let mut v = csr_violations(&csr, spec);
    if request.spec.is_ca.unwrap_or(false) != spec.is_ca() {
        v.push("spec.isCA".into());
    }
    if usage_set(request.spec.usages.as_ref()) != usage_set(spec.usages.as_ref()) {
        v.push("spec.usages".into());
    }
    if let (Some(have), Some(want)) = (request.spec.duration.as_deref(), spec.duration.as_deref()) {
        let differ = match (parse_go_duration(have), parse_go_duration(want)) {
            (Ok(a), Ok(b)) => a != b,
            _ => have != want,
        };
        if differ {
            v.push("spec.duration".into());
        }
    }
    if !issuer_refs_equal(&request.spec.issuer_ref, &spec.issuer_ref) {
        v.push("spec.issuerRef".into());
    }
    Ok(v)
}

/// The outcome of a request: Denied and InvalidRequest are failures with that condition's
/// reason and message (as cert-manager's issuing controller reads them), `Ready=False` with
/// reason `Failed` is a failure, `Ready=True` an issued certificate.
pub fn request_state(request: &CertificateRequest) -> RequestState {
    let failure_time = request
        .status
        .as_ref()
        .and_then(|s| s.failure_time.as_ref())
        .map(|t| t.0);
    let failed =
        |condition: &CertificateRequestCondition, default_reason: &str| RequestState::Failed {
            reason: condition
                .reason
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| default_reason.to_owned()),
            message: condition.message.clone().unwrap_or_default(),
            failed_at: failure_time,
        };
    for type_ in [
        CertificateRequestCondition::DENIED,
        CertificateRequestCondition::INVALID_REQUEST,
    ] {
        if let Some(c) = request.condition(type_)
            && c.status == ConditionStatus::True
        {
            return failed(c, type_);
        }
    }
    match request.condition(CertificateRequestCondition::READY) {
        Some(c) if c.status == ConditionStatus::True => {
            let chain = request
                .status
                .as_ref()
                .and_then(|s| s.certificate.as_ref())
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default();
            if chain.trim().is_empty() {
                return RequestState::Issued(CertState::Missing);
            }
            match x509::parse_leaf_pem(&chain) {
                Ok(info) => RequestState::Issued(CertState::Valid(Box::new(info))),
                Err(e) => RequestState::Issued(CertState::Invalid(e.to_string())),
            }
        }
        Some(c)
            if c.status == ConditionStatus::False
                && c.reason.as_deref() == Some(CertificateRequestCondition::REASON_FAILED) =>
        {
            failed(c, CertificateRequestCondition::REASON_FAILED)
        }
        _ => RequestState::Pending,
    }
}

/// Everything the plan needs to know about one request.
pub fn request_facts(request: &CertificateRequest, spec: &CertificateSpec) -> RequestFacts {
    let public_key_der = parse_csr(&request.spec.request.0)
        .map(|csr| csr.public_key_der)
        .map_err(|e| e.to_string());
    RequestFacts {
        name: request.metadata.name.clone().unwrap_or_default(),
        revision: revision_of(request),
        created: request.metadata.creation_timestamp.as_ref().map(|t| t.0),
        public_key_der,
        mismatches: request_violations(request, spec),
        state: request_state(request),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::certificate_request::CertificateRequestStatus;
    use crate::pki::csr::build_csr_pem;
    use crate::pki::keys::KeySpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn certificate() -> Certificate {
        let mut c = Certificate::new(
            "web",
            CertificateSpec {
                secret_name: "web-tls".into(),
                issuer_ref: IssuerReference {
                    name: "ca".into(),
                    ..Default::default()
                },
                dns_names: Some(vec!["example.com".into()]),
                duration: Some("2160h".into()),
                ..Default::default()
            },
        );
        c.metadata.namespace = Some("apps".into());
        c.metadata.uid = Some("uid-1".into());
        c.metadata.labels = Some(BTreeMap::from([("app".into(), "web".into())]));
        c.metadata.annotations = Some(BTreeMap::from([
            ("acme.certsmith.io/profile".into(), "shortlived".into()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                "{}".into(),
            ),
            ("fluxcd.io/sync".into(), "x".into()),
            ("team".into(), "web".into()),
        ]));
        c
    }

    fn request_for(c: &Certificate) -> CertificateRequest {
        let key = KeySpec::Ecdsa(256).generate().unwrap();
        let csr = build_csr_pem(&c.spec, &key).unwrap();
        build_request(c, "web-1", 1, "web-x7k2p", &csr)
    }

    #[test]
    fn requests_carry_annotations_labels_owner_and_spec() {
        let c = certificate();
        let r = request_for(&c);
        assert_eq!(r.metadata.name.as_deref(), Some("web-1"));
        assert_eq!(r.metadata.namespace.as_deref(), Some("apps"));
        let a = r.metadata.annotations.as_ref().unwrap();
        assert_eq!(a[CERTIFICATE_NAME_ANNOTATION], "web");
        assert_eq!(a[REVISION_ANNOTATION], "1");
        assert_eq!(a[PRIVATE_KEY_ANNOTATION], "web-x7k2p");
        assert_eq!(a["acme.certsmith.io/profile"], "shortlived");
        assert_eq!(a["team"], "web");
        assert!(!a.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert!(!a.contains_key("fluxcd.io/sync"));
        assert_eq!(r.metadata.labels.as_ref().unwrap()["app"], "web");
        let owner = &r.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Certificate", "uid-1")
        );
        assert_eq!(r.spec.duration.as_deref(), Some("2160h0m0s"));
        assert_eq!(r.spec.is_ca, None);
        assert_eq!(r.spec.issuer_ref.name, "ca");
        assert!(
            r.spec
                .request
                .0
                .starts_with(b"-----BEGIN CERTIFICATE REQUEST-----")
        );
        assert_eq!(revision_of(&r), Some(1));
        // The request serializes the CSR as base64, as the CRD's `format: byte` wants.
        let json = serde_json::to_value(&r).unwrap();
        assert!(
            json["spec"]["request"]
                .as_str()
                .unwrap()
                .starts_with("LS0tLS1CRUdJTi")
        );
    }

    #[test]
    fn request_violations_compare_the_request_fields() {
        let c = certificate();
        let r = request_for(&c);
        assert_eq!(request_violations(&r, &c.spec), Ok(vec![]));

        let mut changed = c.spec.clone();
        changed.duration = Some("2160h0m0s".into());
        changed.usages = Some(KeyUsage::DEFAULT.to_vec());
        changed.issuer_ref.kind = Some("Issuer".into());
        changed.issuer_ref.group = Some("cert-manager.io".into());
        assert_eq!(
            request_violations(&r, &changed),
            Ok(vec![]),
            "defaults are equivalent"
        );

        changed.duration = Some("720h".into());
        changed.is_ca = Some(true);
        changed.usages = Some(vec![KeyUsage::ServerAuth]);
        changed.issuer_ref.kind = Some("ClusterIssuer".into());
        changed.dns_names = Some(vec!["other.example".into()]);
        assert_eq!(
            request_violations(&r, &changed),
            Ok(vec![
                "spec.dnsNames".to_string(),
                "spec.isCA".into(),
                "spec.usages".into(),
                "spec.duration".into(),
                "spec.issuerRef".into(),
            ])
        );
        let mut broken = r.clone();
        broken.spec.request = ByteString(b"nope".to_vec());
        assert!(request_violations(&broken, &c.spec).is_err());
        assert!(request_facts(&broken, &c.spec).public_key_der.is_err());
    }

    fn with_conditions(
        mut r: CertificateRequest,
        conditions: Vec<(&str, ConditionStatus, &str)>,
    ) -> CertificateRequest {
        r.status = Some(CertificateRequestStatus {
            conditions: Some(
                conditions
                    .into_iter()
                    .map(|(t, s, reason)| CertificateRequestCondition {
                        type_: t.into(),
                        status: s,
                        reason: Some(reason.into()),
                        message: Some(format!("{t} message")),
                        ..Default::default()
                    })
                    .collect(),
            ),
            failure_time: Some(Time("2026-01-01T00:00:00Z".parse().unwrap())),
            ..Default::default()
        });
        r
    }

    #[test]
    fn request_outcomes() {
        let c = certificate();
        let r = request_for(&c);
        assert_eq!(request_state(&r), RequestState::Pending);
        let pending = with_conditions(
            r.clone(),
            vec![("Ready", ConditionStatus::False, "Pending")],
        );
        assert_eq!(request_state(&pending), RequestState::Pending);
        let failed = with_conditions(r.clone(), vec![("Ready", ConditionStatus::False, "Failed")]);
        assert_eq!(
            request_state(&failed),
            RequestState::Failed {
                reason: "Failed".into(),
                message: "Ready message".into(),
                failed_at: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            }
        );
        let denied = with_conditions(
            r.clone(),
            vec![
                ("Denied", ConditionStatus::True, "policy.example.com"),
                ("Ready", ConditionStatus::False, "Denied"),
            ],
        );
        assert!(matches!(
            request_state(&denied),
            RequestState::Failed { reason, message, .. } if reason == "policy.example.com" && message == "Denied message"
        ));
        let invalid = with_conditions(
            r.clone(),
            vec![("InvalidRequest", ConditionStatus::True, "BadCSR")],
        );
        assert!(
            matches!(request_state(&invalid), RequestState::Failed { reason, .. } if reason == "BadCSR")
        );
        let mut issued =
            with_conditions(r.clone(), vec![("Ready", ConditionStatus::True, "Issued")]);
        assert_eq!(
            request_state(&issued),
            RequestState::Issued(CertState::Missing)
        );
        issued.status.as_mut().unwrap().certificate = Some(ByteString(b"garbage".to_vec()));
        assert!(matches!(
            request_state(&issued),
            RequestState::Issued(CertState::Invalid(_))
        ));
    }
}
