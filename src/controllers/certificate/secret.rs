//! The Secrets a Certificate writes: the target `kubernetes.io/tls` Secret, exactly as
//! cert-manager lays it out (data keys, the `controller.cert-manager.io/fao` label, the
//! `AnnotationsForCertificate` annotations, `secretTemplate`), and the temporary
//! next-private-key Secret.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde_json::{Value, json};

use crate::api::Certificate;
use crate::api::certificate::CertificateOutputFormatType;
use crate::controllers::FIELD_MANAGER;
use crate::pki::keys::KeyEncoding;
use crate::pki::x509::{CertInfo, attr};

/// The label that marks the Secrets certsmith (and cert-manager) manage; only those are
/// watched.
pub const FAO_LABEL: &str = "controller.cert-manager.io/fao";
/// The label of a next-private-key Secret.
pub const NEXT_PRIVATE_KEY_LABEL: &str = "cert-manager.io/next-private-key";

pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";
pub const CA_KEY: &str = "ca.crt";
pub const DER_KEY: &str = "key.der";
pub const COMBINED_PEM_KEY: &str = "tls-combined.pem";
pub const SECRET_TYPE_TLS: &str = "kubernetes.io/tls";

/// The annotations cert-manager writes on a certificate Secret.
pub use crate::api::annotations as annotation;

/// cert-manager's `JoinWithEscapeCSV`: one CSV record as Go's `encoding/csv` writes it (fields
/// with a comma, quote, CR or LF, or a leading space, are quoted; quotes are doubled), without
/// the trailing newline.
pub fn join_escape_csv(values: &[String]) -> String {
    values
        .iter()
        .map(|field| {
            let needs_quotes = !field.is_empty()
                && (field == "\\."
                    || field.contains([',', '"', '\r', '\n'])
                    || field.chars().next().is_some_and(char::is_whitespace));
            if needs_quotes {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// cert-manager's `AnnotationsForCertificate`: names and subject of the issued certificate.
/// `common-name`, `alt-names`, `ip-sans` and `uri-sans` are always written (possibly empty),
/// the others only when they have a value.
pub fn annotations_for_certificate(cert: &CertInfo) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let subject = &cert.subject_name;
    out.insert(
        annotation::COMMON_NAME.into(),
        subject.common_name().unwrap_or_default(),
    );
    if let Some(serial) = subject.serial_number().filter(|s| !s.is_empty()) {
        out.insert(annotation::SUBJECT_SERIAL_NUMBER.into(), serial);
    }
    let optional = [
        (
            annotation::SUBJECT_ORGANIZATIONS,
            subject.values(attr::ORGANIZATION),
        ),
        (
            annotation::SUBJECT_ORGANIZATIONAL_UNITS,
            subject.values(attr::ORGANIZATIONAL_UNIT),
        ),
        (annotation::SUBJECT_COUNTRIES, subject.values(attr::COUNTRY)),
        (
            annotation::SUBJECT_PROVINCES,
            subject.values(attr::PROVINCE),
        ),
        (
            annotation::SUBJECT_LOCALITIES,
            subject.values(attr::LOCALITY),
        ),
        (
            annotation::SUBJECT_POSTAL_CODES,
            subject.values(attr::POSTAL_CODE),
        ),
        (
            annotation::SUBJECT_STREET_ADDRESSES,
            subject.values(attr::STREET_ADDRESS),
        ),
        (annotation::EMAIL_SANS, cert.email_addresses.clone()),
    ];
    for (key, values) in optional {
        if !values.is_empty() {
            out.insert(key.into(), join_escape_csv(&values));
        }
    }
    out.insert(
        annotation::ALT_NAMES.into(),
        join_escape_csv(&cert.dns_names),
    );
    out.insert(
        annotation::IP_SANS.into(),
        join_escape_csv(&cert.ip_addresses),
    );
    out.insert(annotation::URI_SANS.into(), join_escape_csv(&cert.uris));
    out
}

/// Labels, annotations and data certsmith writes into a target Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredSecret {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub data: BTreeMap<String, Vec<u8>>,
}

/// The private key PEM to store: the existing encoding is kept when it is already the one
/// `spec.privateKey.encoding` asks for (so a Secret written by cert-manager is not rewritten
/// for byte differences), else the key is encoded anew.
pub fn key_pem_for_spec(
    certificate: &Certificate,
    key: &rcgen::KeyPair,
    existing_pem: Option<&str>,
) -> Result<String, crate::pki::keys::KeyError> {
    let encoding = KeyEncoding::for_certificate(&certificate.spec);
    let wanted = crate::pki::keys::encode_pem(key, encoding)?;
    if let Some(existing) = existing_pem {
        let label = |pem: &str| pem.lines().next().map(str::to_owned);
        if label(existing) == label(&wanted) {
            return Ok(existing.to_owned());
        }
    }
    Ok(wanted)
}

/// What the Secret should hold for this certificate chain and key (`key_pem` already encoded
/// per the spec): `tls.crt`, `tls.key`, `ca.crt` when the issuer returned a CA, the additional
/// output formats; the fao label and the `secretTemplate` labels; the template annotations
/// overlaid with the certificate-name, issuer and `AnnotationsForCertificate` annotations.
pub fn desired_secret(
    certificate: &Certificate,
    leaf: &CertInfo,
    chain_pem: &str,
    ca_pem: Option<&str>,
    key_pem: &str,
) -> DesiredSecret {
    let spec = &certificate.spec;
    let template = spec.secret_template.clone().unwrap_or_default();
    let mut labels = template.labels.unwrap_or_default();
    labels.insert(FAO_LABEL.into(), "true".into());
    let mut annotations = template.annotations.unwrap_or_default();
    annotations.insert(
        annotation::CERTIFICATE_NAME.into(),
        certificate.metadata.name.clone().unwrap_or_default(),
    );
    annotations.insert(annotation::ISSUER_NAME.into(), spec.issuer_ref.name.clone());
    annotations.insert(
        annotation::ISSUER_KIND.into(),
        spec.issuer_ref.kind_or_default().to_owned(),
    );
    annotations.insert(
        annotation::ISSUER_GROUP.into(),
        spec.issuer_ref.group.clone().unwrap_or_default(),
    );
    annotations.extend(annotations_for_certificate(leaf));

    let mut data = BTreeMap::new();
    data.insert(TLS_CERT_KEY.into(), chain_pem.as_bytes().to_vec());
    data.insert(TLS_KEY_KEY.into(), key_pem.as_bytes().to_vec());
    if let Some(ca) = ca_pem.filter(|ca| !ca.trim().is_empty()) {
        data.insert(CA_KEY.into(), ca.as_bytes().to_vec());
    }
    for format in spec.additional_output_formats.iter().flatten() {
        match format.type_ {
            CertificateOutputFormatType::Der => {
                // cert-manager's OutputFormatDER: the DER of the tls.key PEM block.
                if let Ok(block) = pem::parse(key_pem) {
                    data.insert(DER_KEY.into(), block.into_contents());
                }
            }
            CertificateOutputFormatType::CombinedPEM => {
                let combined = format!("{key_pem}\n{chain_pem}");
                data.insert(COMBINED_PEM_KEY.into(), combined.into_bytes());
            }
        }
    }
    DesiredSecret {
        labels,
        annotations,
        data,
    }
}

/// The server-side apply body of the target Secret. The type is `kubernetes.io/tls` for a new
/// Secret; an existing Secret keeps its type (the field is immutable).
pub fn apply_body(
    certificate: &Certificate,
    desired: &DesiredSecret,
    existing_type: Option<&str>,
) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let data: serde_json::Map<String, Value> = desired
        .data
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(b64.encode(v))))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": certificate.spec.secret_name,
            "namespace": certificate.metadata.namespace,
            "labels": desired.labels,
            "annotations": desired.annotations,
        },
        "type": existing_type.filter(|t| !t.is_empty()).unwrap_or(SECRET_TYPE_TLS),
        "data": data,
    })
}

/// Label, annotation and data keys that certsmith's field manager owns on a Secret, read from
/// its managedFields.
pub fn owned_keys(secret: &Secret) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let mut labels = BTreeSet::new();
    let mut annotations = BTreeSet::new();
    let mut data = BTreeSet::new();
    let keys = |value: Option<&Value>, into: &mut BTreeSet<String>| {
        if let Some(Value::Object(map)) = value {
            for key in map.keys() {
                if let Some(k) = key.strip_prefix("f:") {
                    into.insert(k.to_owned());
                }
            }
        }
    };
    for entry in secret.metadata.managed_fields.iter().flatten() {
        if entry.manager.as_deref() != Some(FIELD_MANAGER) {
            continue;
        }
        let Some(fields) = &entry.fields_v1 else {
            continue;
        };
        let metadata = fields.0.get("f:metadata");
        keys(metadata.and_then(|m| m.get("f:labels")), &mut labels);
        keys(
            metadata.and_then(|m| m.get("f:annotations")),
            &mut annotations,
        );
        keys(fields.0.get("f:data"), &mut data);
    }
    (labels, annotations, data)
}

/// What differs between an existing Secret and what certsmith would write, or `None`. Values
/// of every desired label, annotation and data key must match; keys certsmith applied before
/// but no longer wants (a label removed from `secretTemplate`, an output format dropped) must
/// be gone.
pub fn drift(secret: &Secret, desired: &DesiredSecret) -> Option<String> {
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    let data = secret.data.clone().unwrap_or_default();
    for (k, v) in &desired.labels {
        if labels.get(k) != Some(v) {
            return Some(format!("label {k} is not up to date"));
        }
    }
    for (k, v) in &desired.annotations {
        if annotations.get(k) != Some(v) {
            return Some(format!("annotation {k} is not up to date"));
        }
    }
    for (k, v) in &desired.data {
        if data.get(k).map(|b| &b.0) != Some(v) {
            return Some(format!("data {k} is not up to date"));
        }
    }
    let (owned_labels, owned_annotations, owned_data) = owned_keys(secret);
    if let Some(k) = owned_labels
        .iter()
        .find(|k| !desired.labels.contains_key(*k) && labels.contains_key(*k))
    {
        return Some(format!("label {k} is no longer wanted"));
    }
    if let Some(k) = owned_annotations
        .iter()
        .find(|k| !desired.annotations.contains_key(*k) && annotations.contains_key(*k))
    {
        return Some(format!("annotation {k} is no longer wanted"));
    }
    if let Some(k) = owned_data
        .iter()
        .find(|k| !desired.data.contains_key(*k) && data.contains_key(*k))
    {
        return Some(format!("data {k} is no longer wanted"));
    }
    None
}

/// The next-private-key Secret: `generateName: <certificate>-`, labelled as such, owned by the
/// Certificate, holding `tls.key`.
pub fn next_key_secret(certificate: &Certificate, key_pem: &str) -> Secret {
    let mut labels = BTreeMap::new();
    labels.insert(NEXT_PRIVATE_KEY_LABEL.to_owned(), "true".to_owned());
    labels.insert(FAO_LABEL.to_owned(), "true".to_owned());
    Secret {
        metadata: ObjectMeta {
            generate_name: Some(format!(
                "{}-",
                certificate.metadata.name.as_deref().unwrap_or_default()
            )),
            namespace: certificate.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: certificate.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            TLS_KEY_KEY.to_owned(),
            ByteString(key_pem.as_bytes().to_vec()),
        )])),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::certificate::{
        CertificateAdditionalOutputFormat, CertificateSecretTemplate, CertificateSpec,
    };
    use crate::api::meta::IssuerReference;
    use crate::pki::keys::KeySpec;
    use crate::pki::{csr, sign, x509};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    fn certificate() -> Certificate {
        let mut c = Certificate::new(
            "web",
            CertificateSpec {
                secret_name: "web-tls".into(),
                issuer_ref: IssuerReference {
                    name: "ca".into(),
                    ..Default::default()
                },
                common_name: Some("example.com".into()),
                dns_names: Some(vec!["example.com".into(), "www.example.com".into()]),
                ..Default::default()
            },
        );
        c.metadata.namespace = Some("apps".into());
        c.metadata.uid = Some("1234".into());
        c
    }

    fn issued(certificate: &Certificate) -> (rcgen::KeyPair, String, CertInfo) {
        let key = KeySpec::Ecdsa(256).generate().unwrap();
        let csr = csr::build_csr_der(&certificate.spec, &key).unwrap();
        let signed = sign::self_sign(
            &csr,
            &key,
            &sign::SigningOptions::new(
                "2026-01-01T00:00:00Z".parse().unwrap(),
                jiff::SignedDuration::from_hours(24),
            ),
        )
        .unwrap();
        let info = x509::parse_leaf_pem(&signed.certificate_pem).unwrap();
        (key, signed.certificate_pem, info)
    }

    #[test]
    fn csv_escaping_follows_go() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(join_escape_csv(&v(&[])), "");
        assert_eq!(
            join_escape_csv(&v(&["a.example", "b.example"])),
            "a.example,b.example"
        );
        assert_eq!(
            join_escape_csv(&v(&["Acme, Inc.", "B"])),
            "\"Acme, Inc.\",B"
        );
        assert_eq!(join_escape_csv(&v(&["say \"hi\""])), "\"say \"\"hi\"\"\"");
        assert_eq!(join_escape_csv(&v(&[" lead"])), "\" lead\"");
        assert_eq!(join_escape_csv(&v(&["", "x"])), ",x");
    }

    #[test]
    fn annotations_follow_cert_manager() {
        let mut c = certificate();
        c.spec.subject = Some(crate::api::certificate::X509Subject {
            organizations: Some(vec!["Acme, Inc.".into()]),
            countries: Some(vec!["DE".into()]),
            ..Default::default()
        });
        c.spec.ip_addresses = Some(vec!["192.0.2.1".into()]);
        let (_, _, info) = issued(&c);
        let a = annotations_for_certificate(&info);
        assert_eq!(a[annotation::COMMON_NAME], "example.com");
        assert_eq!(a[annotation::ALT_NAMES], "example.com,www.example.com");
        assert_eq!(a[annotation::IP_SANS], "192.0.2.1");
        assert_eq!(a[annotation::URI_SANS], "");
        assert_eq!(a[annotation::SUBJECT_ORGANIZATIONS], "\"Acme, Inc.\"");
        assert_eq!(a[annotation::SUBJECT_COUNTRIES], "DE");
        assert!(!a.contains_key(annotation::EMAIL_SANS));
        assert!(!a.contains_key(annotation::SUBJECT_LOCALITIES));
        assert!(!a.contains_key(annotation::SUBJECT_SERIAL_NUMBER));
    }

    #[test]
    fn desired_secret_layout() {
        let mut c = certificate();
        c.spec.secret_template = Some(CertificateSecretTemplate {
            annotations: Some(BTreeMap::from([("team".into(), "web".into())])),
            labels: Some(BTreeMap::from([("app".into(), "web".into())])),
        });
        c.spec.additional_output_formats = Some(vec![
            CertificateAdditionalOutputFormat {
                type_: CertificateOutputFormatType::Der,
            },
            CertificateAdditionalOutputFormat {
                type_: CertificateOutputFormatType::CombinedPEM,
            },
        ]);
        let (key, chain, info) = issued(&c);
        let key_pem = key_pem_for_spec(&c, &key, None).unwrap();
        assert!(key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let desired = desired_secret(&c, &info, &chain, None, &key_pem);
        assert_eq!(desired.labels["app"], "web");
        assert_eq!(desired.labels[FAO_LABEL], "true");
        assert_eq!(desired.annotations["team"], "web");
        assert_eq!(desired.annotations[annotation::CERTIFICATE_NAME], "web");
        assert_eq!(desired.annotations[annotation::ISSUER_NAME], "ca");
        assert_eq!(desired.annotations[annotation::ISSUER_KIND], "Issuer");
        assert_eq!(desired.annotations[annotation::ISSUER_GROUP], "");
        assert_eq!(
            desired.data.keys().collect::<Vec<_>>(),
            [DER_KEY, COMBINED_PEM_KEY, TLS_CERT_KEY, TLS_KEY_KEY]
        );
        assert_eq!(
            desired.data[COMBINED_PEM_KEY],
            format!("{key_pem}\n{chain}").into_bytes()
        );
        assert_eq!(
            desired.data[DER_KEY],
            pem::parse(&key_pem).unwrap().into_contents()
        );
        // With a CA.
        let with_ca = desired_secret(&c, &info, &chain, Some(&chain), &key_pem);
        assert_eq!(with_ca.data[CA_KEY], chain.as_bytes());

        let body = apply_body(&c, &desired, None);
        assert_eq!(body["type"], SECRET_TYPE_TLS);
        assert_eq!(body["metadata"]["name"], "web-tls");
        assert_eq!(body["metadata"]["namespace"], "apps");
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(
            b64.decode(body["data"][TLS_CERT_KEY].as_str().unwrap())
                .unwrap(),
            chain.as_bytes()
        );
        assert_eq!(apply_body(&c, &desired, Some("Opaque"))["type"], "Opaque");
    }

    #[test]
    fn key_encoding_is_kept_when_it_already_fits() {
        let mut c = certificate();
        let key = KeySpec::Rsa(2048).generate().unwrap();
        let pkcs1 = crate::pki::keys::encode_pem(&key, KeyEncoding::Pkcs1).unwrap();
        let pkcs8 = crate::pki::keys::encode_pem(&key, KeyEncoding::Pkcs8).unwrap();
        assert_eq!(key_pem_for_spec(&c, &key, Some(&pkcs1)).unwrap(), pkcs1);
        assert_eq!(key_pem_for_spec(&c, &key, Some(&pkcs8)).unwrap(), pkcs1);
        c.spec.private_key = Some(crate::api::certificate::CertificatePrivateKey {
            encoding: Some(crate::api::certificate::PrivateKeyEncoding::Pkcs8),
            ..Default::default()
        });
        assert_eq!(key_pem_for_spec(&c, &key, Some(&pkcs1)).unwrap(), pkcs8);
    }

    fn secret_from(desired: &DesiredSecret) -> Secret {
        Secret {
            metadata: ObjectMeta {
                labels: Some(desired.labels.clone()),
                annotations: Some(desired.annotations.clone()),
                ..Default::default()
            },
            data: Some(
                desired
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn drift_is_detected_in_values_and_in_stale_keys() {
        let c = certificate();
        let (key, chain, info) = issued(&c);
        let key_pem = key_pem_for_spec(&c, &key, None).unwrap();
        let desired = desired_secret(&c, &info, &chain, None, &key_pem);
        let mut secret = secret_from(&desired);
        assert_eq!(drift(&secret, &desired), None);

        // A label someone else added is not certsmith's business.
        secret
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("other".into(), "x".into());
        assert_eq!(drift(&secret, &desired), None);

        // ... but one certsmith applied earlier and no longer wants is.
        secret.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some(FIELD_MANAGER.into()),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(json!({
                "f:metadata": {"f:labels": {"f:other": {}, "f:controller.cert-manager.io/fao": {}}},
                "f:data": {"f:tls.crt": {}},
            }))),
            ..Default::default()
        }]);
        assert_eq!(
            drift(&secret, &desired).as_deref(),
            Some("label other is no longer wanted")
        );
        let (labels, _, data) = owned_keys(&secret);
        assert!(labels.contains(FAO_LABEL));
        assert!(data.contains(TLS_CERT_KEY));

        let mut secret = secret_from(&desired);
        secret
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(annotation::ALT_NAMES.into(), "old.example".into());
        assert_eq!(
            drift(&secret, &desired).as_deref(),
            Some("annotation cert-manager.io/alt-names is not up to date")
        );
    }

    #[test]
    fn next_key_secret_layout() {
        let c = certificate();
        let secret = next_key_secret(&c, "PEM");
        assert_eq!(secret.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("apps"));
        let labels = secret.metadata.labels.unwrap();
        assert_eq!(labels[NEXT_PRIVATE_KEY_LABEL], "true");
        assert_eq!(labels[FAO_LABEL], "true");
        let owner = &secret.metadata.owner_references.unwrap()[0];
        assert_eq!(owner.kind, "Certificate");
        assert_eq!(owner.uid, "1234");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(secret.data.unwrap()[TLS_KEY_KEY].0, b"PEM");
    }
}
