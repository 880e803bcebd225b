//! Pure translation of an annotated Ingress into the Certificates it asks for, with
//! cert-manager's rules (`pkg/controller/certificate-shim/{sync,helper}.go`), and the comparison
//! that decides what to write. No I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::api::Certificate;
use crate::api::certificate::{
    CertificatePrivateKey, CertificateSecretTemplate, CertificateSpec, KeyUsage,
    PrivateKeyAlgorithm, PrivateKeyEncoding, PrivateKeyRotationPolicy, X509Subject,
};
use crate::api::meta::{CERT_MANAGER_GROUP, IssuerReference};
use crate::pki::renewal::{format_go_duration, parse_go_duration};

/// Annotations read on the Ingress.
pub mod annotation {
    pub use crate::api::annotations::{
        ALT_NAMES, COMMON_NAME, EMAIL_SANS, IP_SANS, ISSUER_GROUP, ISSUER_KIND, SUBJECT_COUNTRIES,
        SUBJECT_LOCALITIES, SUBJECT_ORGANIZATIONAL_UNITS, SUBJECT_ORGANIZATIONS,
        SUBJECT_POSTAL_CODES, SUBJECT_PROVINCES, SUBJECT_SERIAL_NUMBER, SUBJECT_STREET_ADDRESSES,
        URI_SANS,
    };
    pub const ISSUER: &str = "cert-manager.io/issuer";
    pub const CLUSTER_ISSUER: &str = "cert-manager.io/cluster-issuer";
    pub const DURATION: &str = "cert-manager.io/duration";
    pub const RENEW_BEFORE: &str = "cert-manager.io/renew-before";
    pub const RENEW_BEFORE_PERCENTAGE: &str = "cert-manager.io/renew-before-percentage";
    pub const USAGES: &str = "cert-manager.io/usages";
    pub const REVISION_HISTORY_LIMIT: &str = "cert-manager.io/revision-history-limit";
    pub const PRIVATE_KEY_ALGORITHM: &str = "cert-manager.io/private-key-algorithm";
    pub const PRIVATE_KEY_ENCODING: &str = "cert-manager.io/private-key-encoding";
    pub const PRIVATE_KEY_SIZE: &str = "cert-manager.io/private-key-size";
    pub const PRIVATE_KEY_ROTATION_POLICY: &str = "cert-manager.io/private-key-rotation-policy";
    pub const SECRET_TEMPLATE: &str = "cert-manager.io/secret-template";
    pub const EDIT_IN_PLACE: &str = "acme.cert-manager.io/http01-edit-in-place";
    pub const INGRESS_CLASS: &str = "acme.cert-manager.io/http01-ingress-class";
    pub const INGRESS_CLASS_NAME: &str = "acme.cert-manager.io/http01-ingress-ingressclassname";
    /// The label an applyset puts on its members; never copied onto Certificates (#7306).
    pub const APPLYSET_PART_OF: &str = "applyset.kubernetes.io/part-of";
}

/// Annotations the shim sets on the Certificates, which the ACME path reads (through the
/// CertificateRequest and the Order, which copy them).
pub mod override_annotation {
    pub const INGRESS_NAME: &str = "acme.cert-manager.io/http01-override-ingress-name";
    pub const INGRESS_CLASS: &str = "acme.cert-manager.io/http01-override-ingress-class";
    pub const INGRESS_CLASS_NAME: &str =
        "acme.cert-manager.io/http01-override-ingress-ingressclassname";
    pub const ISSUE_TEMPORARY_CERTIFICATE: &str = "cert-manager.io/issue-temporary-certificate";
    pub const PARENT_REF_KIND: &str = "acme.cert-manager.io/http01-parentrefkind";
    pub const PARENT_REF_NAME: &str = "acme.cert-manager.io/http01-parentrefname";
    /// Every annotation the shim manages on a Certificate.
    pub const ALL: [&str; 6] = [
        INGRESS_NAME,
        INGRESS_CLASS,
        INGRESS_CLASS_NAME,
        ISSUE_TEMPORARY_CERTIFICATE,
        PARENT_REF_KIND,
        PARENT_REF_NAME,
    ];
}

/// The shim's flags (cert-manager's `--default-issuer-*` and `--auto-certificate-annotations`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShimSettings {
    pub default_issuer_name: String,
    pub default_issuer_kind: String,
    pub default_issuer_group: String,
    pub auto_certificate_annotations: Vec<String>,
    /// Run the Gateway shim too (`--enable-gateway-api`).
    pub enable_gateway_api: bool,
}

impl Default for ShimSettings {
    fn default() -> Self {
        ShimSettings {
            default_issuer_name: String::new(),
            default_issuer_kind: "Issuer".into(),
            default_issuer_group: CERT_MANAGER_GROUP.into(),
            auto_certificate_annotations: vec!["kubernetes.io/tls-acme".into()],
            enable_gateway_api: false,
        }
    }
}

/// One TLS entry of an Ingress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsBlock {
    pub hosts: Vec<String>,
    pub secret_name: String,
}

/// Go's `strconv.ParseBool` truth values.
fn go_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// Whether the object asks for Certificates: `cert-manager.io/issuer`,
/// `cert-manager.io/cluster-issuer`, or (Ingress only) an auto-certificate annotation that is
/// true.
pub fn has_shim_annotation(
    annotations: &BTreeMap<String, String>,
    settings: &ShimSettings,
    ingress: bool,
) -> bool {
    if annotations.contains_key(annotation::ISSUER)
        || annotations.contains_key(annotation::CLUSTER_ISSUER)
    {
        return true;
    }
    ingress
        && settings
            .auto_certificate_annotations
            .iter()
            .any(|a| annotations.get(a).is_some_and(|v| go_true(v)))
}

/// The issuer the Certificates refer to (`issuerForIngressLike`).
pub fn issuer_ref(
    annotations: &BTreeMap<String, String>,
    settings: &ShimSettings,
) -> Result<IssuerReference, String> {
    let issuer = annotations.get(annotation::ISSUER);
    let cluster_issuer = annotations.get(annotation::CLUSTER_ISSUER);
    let kind_override = annotations.get(annotation::ISSUER_KIND);
    let group_override = annotations.get(annotation::ISSUER_GROUP);
    let (mut name, mut kind, mut group) = (
        settings.default_issuer_name.clone(),
        settings.default_issuer_kind.clone(),
        settings.default_issuer_group.clone(),
    );
    let mut errors = Vec::new();
    if let Some(issuer) = issuer {
        name = issuer.clone();
        kind = "Issuer".into();
    }
    if let Some(cluster_issuer) = cluster_issuer {
        name = cluster_issuer.clone();
        kind = "ClusterIssuer".into();
    }
    if let Some(k) = kind_override {
        kind = k.clone();
    }
    if let Some(g) = group_override {
        group = g.clone();
    }
    if issuer.is_some() && cluster_issuer.is_some() {
        errors.push(format!(
            "both {:?} and {:?} may not be set",
            annotation::ISSUER,
            annotation::CLUSTER_ISSUER
        ));
    }
    if cluster_issuer.is_some() && group_override.is_some() {
        errors.push(format!(
            "both {:?} and {:?} may not be set",
            annotation::CLUSTER_ISSUER,
            annotation::ISSUER_GROUP
        ));
    }
    if cluster_issuer.is_some() && kind_override.is_some() {
        errors.push(format!(
            "both {:?} and {:?} may not be set",
            annotation::CLUSTER_ISSUER,
            annotation::ISSUER_KIND
        ));
    }
    if name.is_empty() {
        errors.push(
            "failed to determine issuer name to be used for ingress resource (no issuer \
             annotation and no --default-issuer-name)"
                .into(),
        );
    }
    if !errors.is_empty() {
        return Err(errors.join(", "));
    }
    Ok(IssuerReference {
        name,
        kind: Some(kind).filter(|k| !k.is_empty()),
        group: Some(group).filter(|g| !g.is_empty()),
    })
}

/// Splits a comma-separated list as cert-manager's `SplitWithEscapeCSV` does: fields may be
/// double-quoted (with `""` for a quote), so that they can contain commas.
pub fn split_csv(text: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err(format!("extraneous text after a quoted field in {text:?}"));
                    }
                }
            }
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            '"' => return Err(format!("bare \" in non-quoted field in {text:?}")),
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err(format!("unterminated quoted field in {text:?}"));
    }
    fields.push(field);
    Ok(fields)
}

/// A plain comma-separated list, entries trimmed, empty ones dropped.
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_int(key: &str, value: &str) -> Result<i64, String> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("{key:?}: {value:?} is not an integer"))
}

fn parse_min_duration(key: &str, value: &str, min: &str) -> Result<String, String> {
    let parsed =
        parse_go_duration(value).map_err(|_| format!("{key:?}: {value:?} is not a duration"))?;
    let minimum = parse_go_duration(min).expect("constant minimum");
    if parsed < minimum {
        return Err(format!(
            "{key:?}: {value:?} is shorter than the minimum of {min}"
        ));
    }
    Ok(format_go_duration(parsed))
}

fn valid_email(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !address
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '"'))
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

fn valid_uri(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !uri.chars().any(char::is_whitespace)
}

/// Applies the `cert-manager.io/*` annotations to `spec` (`translateAnnotations`). Every
/// problem is reported, not only the first.
pub fn translate_annotations(
    annotations: &BTreeMap<String, String>,
    spec: &mut CertificateSpec,
) -> Result<(), String> {
    use annotation as a;
    let mut errors: Vec<String> = Vec::new();
    if let Some(cn) = annotations.get(a::COMMON_NAME) {
        if cn.len() > 64 {
            errors.push(format!(
                "{:?}: the common name may be at most 64 bytes, got {}",
                a::COMMON_NAME,
                cn.len()
            ));
        } else {
            spec.common_name = Some(cn.clone());
        }
    }
    if let Some(alt) = annotations.get(a::ALT_NAMES) {
        spec.dns_names
            .get_or_insert_with(Vec::new)
            .extend(split_list(alt));
    }
    if let Some(ips) = annotations.get(a::IP_SANS) {
        for ip in split_list(ips) {
            match ip.parse::<IpAddr>() {
                Ok(parsed) => spec
                    .ip_addresses
                    .get_or_insert_with(Vec::new)
                    .push(parsed.to_string()),
                Err(_) => errors.push(format!("{:?}: {ip:?} is not an IP address", a::IP_SANS)),
            }
        }
    }
    if let Some(uris) = annotations.get(a::URI_SANS) {
        for uri in split_list(uris) {
            if valid_uri(&uri) {
                spec.uris.get_or_insert_with(Vec::new).push(uri);
            } else {
                errors.push(format!("{:?}: {uri:?} is not a URI", a::URI_SANS));
            }
        }
    }
    if let Some(emails) = annotations.get(a::EMAIL_SANS) {
        let list = split_list(emails);
        let bad: Vec<&String> = list.iter().filter(|e| !valid_email(e)).collect();
        if bad.is_empty() {
            spec.email_addresses = Some(list).filter(|l| !l.is_empty());
        } else {
            errors.push(format!(
                "{:?}: {bad:?} are not plain email addresses",
                a::EMAIL_SANS
            ));
        }
    }
    type Field = fn(&mut X509Subject) -> &mut Option<Vec<String>>;
    let subject_fields: [(&str, Field); 7] = [
        (a::SUBJECT_ORGANIZATIONS, |s| &mut s.organizations),
        (a::SUBJECT_ORGANIZATIONAL_UNITS, |s| {
            &mut s.organizational_units
        }),
        (a::SUBJECT_COUNTRIES, |s| &mut s.countries),
        (a::SUBJECT_PROVINCES, |s| &mut s.provinces),
        (a::SUBJECT_LOCALITIES, |s| &mut s.localities),
        (a::SUBJECT_POSTAL_CODES, |s| &mut s.postal_codes),
        (a::SUBJECT_STREET_ADDRESSES, |s| &mut s.street_addresses),
    ];
    for (key, field) in subject_fields {
        if let Some(value) = annotations.get(key) {
            match split_csv(value) {
                Ok(values) => {
                    *field(spec.subject.get_or_insert_with(Default::default)) = Some(values);
                }
                Err(e) => errors.push(format!("{key:?}: {e}")),
            }
        }
    }
    if let Some(serial) = annotations.get(a::SUBJECT_SERIAL_NUMBER) {
        spec.subject
            .get_or_insert_with(Default::default)
            .serial_number = Some(serial.clone());
    }
    if let Some(d) = annotations.get(a::DURATION) {
        match parse_min_duration(a::DURATION, d, crate::api::certificate::MINIMUM_DURATION) {
            Ok(d) => spec.duration = Some(d),
            Err(e) => errors.push(e),
        }
    }
    if let Some(d) = annotations.get(a::RENEW_BEFORE) {
        match parse_min_duration(
            a::RENEW_BEFORE,
            d,
            crate::api::certificate::MINIMUM_RENEW_BEFORE,
        ) {
            Ok(d) => spec.renew_before = Some(d),
            Err(e) => errors.push(e),
        }
    }
    if let Some(p) = annotations.get(a::RENEW_BEFORE_PERCENTAGE) {
        match parse_int(a::RENEW_BEFORE_PERCENTAGE, p)
            .and_then(|p| i32::try_from(p).map_err(|_| format!("{p} is out of range")))
        {
            Ok(p) => spec.renew_before_percentage = Some(p),
            Err(e) => errors.push(e),
        }
    }
    if let Some(usages) = annotations.get(a::USAGES) {
        let mut parsed = Vec::new();
        for name in usages.split(',').map(str::trim) {
            match KeyUsage::ALL.iter().find(|u| u.as_str() == name) {
                Some(u) => parsed.push(*u),
                None => errors.push(format!("{:?}: {name:?} is not a key usage", a::USAGES)),
            }
        }
        spec.usages = Some(parsed);
    }
    if let Some(limit) = annotations.get(a::REVISION_HISTORY_LIMIT) {
        match parse_int(a::REVISION_HISTORY_LIMIT, limit) {
            Ok(l) if (1..=i64::from(i32::MAX)).contains(&l) => {
                spec.revision_history_limit = Some(l as i32)
            }
            Ok(l) => errors.push(format!(
                "{:?}: {l} must be at least 1",
                a::REVISION_HISTORY_LIMIT
            )),
            Err(e) => errors.push(e),
        }
    }
    let mut key = CertificatePrivateKey::default();
    if let Some(alg) = annotations.get(a::PRIVATE_KEY_ALGORITHM) {
        match alg.as_str() {
            "RSA" => key.algorithm = Some(PrivateKeyAlgorithm::Rsa),
            "ECDSA" => key.algorithm = Some(PrivateKeyAlgorithm::Ecdsa),
            "Ed25519" => key.algorithm = Some(PrivateKeyAlgorithm::Ed25519),
            _ => errors.push(format!(
                "{:?}: {alg:?} is not RSA, ECDSA or Ed25519",
                a::PRIVATE_KEY_ALGORITHM
            )),
        }
    }
    if let Some(enc) = annotations.get(a::PRIVATE_KEY_ENCODING) {
        match enc.as_str() {
            "PKCS1" => key.encoding = Some(PrivateKeyEncoding::Pkcs1),
            "PKCS8" => key.encoding = Some(PrivateKeyEncoding::Pkcs8),
            _ => errors.push(format!(
                "{:?}: {enc:?} is not PKCS1 or PKCS8",
                a::PRIVATE_KEY_ENCODING
            )),
        }
    }
    if let Some(size) = annotations.get(a::PRIVATE_KEY_SIZE) {
        match parse_int(a::PRIVATE_KEY_SIZE, size) {
            Ok(size) => {
                let ok = match key.algorithm_or_default() {
                    PrivateKeyAlgorithm::Rsa => (2048..=8192).contains(&size),
                    PrivateKeyAlgorithm::Ecdsa => [256, 384, 521].contains(&size),
                    PrivateKeyAlgorithm::Ed25519 => true,
                };
                if ok {
                    key.size = Some(size);
                } else {
                    errors.push(format!(
                        "{:?}: {size} is not a valid size for {:?} keys",
                        a::PRIVATE_KEY_SIZE,
                        key.algorithm_or_default()
                    ));
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if let Some(policy) = annotations.get(a::PRIVATE_KEY_ROTATION_POLICY) {
        match policy.as_str() {
            "Never" => key.rotation_policy = Some(PrivateKeyRotationPolicy::Never),
            "Always" => key.rotation_policy = Some(PrivateKeyRotationPolicy::Always),
            _ => errors.push(format!(
                "{:?}: {policy:?} is not Never or Always",
                a::PRIVATE_KEY_ROTATION_POLICY
            )),
        }
    }
    if key != CertificatePrivateKey::default() {
        spec.private_key = Some(key);
    }
    if let Some(template) = annotations.get(a::SECRET_TEMPLATE) {
        match parse_secret_template(template) {
            Ok(t) => spec.secret_template = Some(t),
            Err(e) => errors.push(format!("{:?}: {e}", a::SECRET_TEMPLATE)),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// `{"annotations": {…}, "labels": {…}}`, strictly (unknown fields are errors), without
/// `cert-manager.io/` annotations.
fn parse_secret_template(text: &str) -> Result<CertificateSecretTemplate, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        #[serde(default)]
        annotations: Option<BTreeMap<String, String>>,
        #[serde(default)]
        labels: Option<BTreeMap<String, String>>,
    }
    let strict: Strict = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(bad) = strict
        .annotations
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .find(|k| k.starts_with("cert-manager.io/"))
    {
        return Err(format!(
            "annotation {bad:?}: cert-manager.io/ annotations are reserved"
        ));
    }
    Ok(CertificateSecretTemplate {
        annotations: strict.annotations,
        labels: strict.labels,
    })
}

/// The ACME HTTP-01 annotations a Certificate of `source_name` gets (`setIssuerSpecificConfig`).
pub fn http01_annotations(
    annotations: &BTreeMap<String, String>,
    source_name: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let edit_in_place = annotations
        .get(annotation::EDIT_IN_PLACE)
        .is_some_and(|v| v == "true");
    let class = annotations.get(annotation::INGRESS_CLASS);
    let class_name = annotations.get(annotation::INGRESS_CLASS_NAME);
    let set = [edit_in_place, class.is_some(), class_name.is_some()]
        .into_iter()
        .filter(|b| *b)
        .count();
    if set > 1 {
        return Err(format!(
            "only one of {:?}, {:?} and {:?} may be set",
            annotation::EDIT_IN_PLACE,
            annotation::INGRESS_CLASS,
            annotation::INGRESS_CLASS_NAME
        ));
    }
    if edit_in_place {
        out.insert(
            override_annotation::INGRESS_NAME.to_owned(),
            source_name.to_owned(),
        );
        out.insert(
            override_annotation::ISSUE_TEMPORARY_CERTIFICATE.to_owned(),
            "true".to_owned(),
        );
    }
    if let Some(class) = class {
        out.insert(override_annotation::INGRESS_CLASS.to_owned(), class.clone());
    }
    if let Some(class_name) = class_name {
        out.insert(
            override_annotation::INGRESS_CLASS_NAME.to_owned(),
            class_name.clone(),
        );
    }
    Ok(out)
}

/// The Certificates an annotated Ingress asks for: one per TLS `secretName` (entries naming the
/// same Secret are merged), named after the Secret, with the entry's hosts, controller-owned by
/// `owner`. `Err` is the message of a `BadConfig` Warning Event.
pub fn desired_certificates(
    meta: &ObjectMeta,
    owner: OwnerReference,
    tls: &[TlsBlock],
    settings: &ShimSettings,
) -> Result<Vec<Certificate>, String> {
    let empty = BTreeMap::new();
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    let name = meta.name.clone().unwrap_or_default();
    let mut errors = Vec::new();
    let issuer = issuer_ref(annotations, settings)
        .map_err(|e| errors.push(e))
        .ok();
    let mut template = CertificateSpec {
        usages: Some(KeyUsage::DEFAULT.to_vec()),
        ..CertificateSpec::default()
    };
    let translated = translate_annotations(annotations, &mut template);
    if let Err(e) = translated {
        errors.push(e);
    }
    let http01 = http01_annotations(annotations, &name)
        .map_err(|e| errors.push(e))
        .ok();
    let mut by_secret: Vec<(String, Vec<String>)> = Vec::new();
    for (i, block) in tls.iter().enumerate() {
        if block.secret_name.is_empty() {
            errors.push(format!(
                "TLS entry {i} for hosts {:?} must specify a secretName",
                block.hosts
            ));
            continue;
        }
        if block.hosts.is_empty() {
            errors.push(format!(
                "secret {:?} for ingress {name:?} has no hosts specified",
                block.secret_name
            ));
            continue;
        }
        match by_secret.iter_mut().find(|(s, _)| *s == block.secret_name) {
            Some((_, hosts)) => {
                for h in &block.hosts {
                    if !hosts.contains(h) {
                        hosts.push(h.clone());
                    }
                }
            }
            None => by_secret.push((block.secret_name.clone(), block.hosts.clone())),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let (issuer, http01) = (issuer.expect("no error"), http01.expect("no error"));
    let labels: BTreeMap<String, String> = meta
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != annotation::APPLYSET_PART_OF)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(by_secret
        .into_iter()
        .map(|(secret_name, hosts)| {
            let mut spec = template.clone();
            let mut dns_names = hosts;
            dns_names.extend(spec.dns_names.take().unwrap_or_default());
            spec.dns_names = Some(dns_names);
            spec.secret_name = secret_name.clone();
            spec.issuer_ref = issuer.clone();
            Certificate {
                metadata: ObjectMeta {
                    name: Some(secret_name),
                    namespace: meta.namespace.clone(),
                    labels: Some(labels.clone()).filter(|l| !l.is_empty()),
                    annotations: Some(http01.clone()).filter(|a| !a.is_empty()),
                    owner_references: Some(vec![owner.clone()]),
                    ..ObjectMeta::default()
                },
                spec,
                status: None,
            }
        })
        .collect())
}

/// Whether `cert` is controller-owned by the object of `uid`.
pub fn is_controlled_by(cert: &Certificate, uid: &str) -> bool {
    cert.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// Whether `existing` already says what `desired` says: same spec, same labels, and the same
/// shim-managed annotations (others, e.g. kubectl's, are ignored).
pub fn up_to_date(existing: &Certificate, desired: &Certificate) -> bool {
    let empty = BTreeMap::new();
    let labels = |c: &Certificate| c.metadata.labels.clone().unwrap_or_default();
    let existing_annotations = existing.metadata.annotations.as_ref().unwrap_or(&empty);
    let desired_annotations = desired.metadata.annotations.as_ref().unwrap_or(&empty);
    existing.spec == desired.spec
        && labels(existing) == labels(desired)
        && override_annotation::ALL
            .iter()
            .all(|k| existing_annotations.get(*k) == desired_annotations.get(*k))
}

/// What to do with one Certificate.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Create(Box<Certificate>),
    Update(Box<Certificate>),
    /// A Certificate of that name exists and is not controlled by this object: left alone.
    NotOwned(String),
    /// Owned by this object, no longer asked for (its TLS entry is gone).
    Delete(String),
}

/// The writes that bring `existing` (the Certificates of the namespace) to `desired`; nothing
/// for a Certificate that is already up to date.
pub fn actions(desired: &[Certificate], existing: &[Certificate], owner_uid: &str) -> Vec<Action> {
    let name = |c: &Certificate| c.metadata.name.clone().unwrap_or_default();
    let mut out = Vec::new();
    for want in desired {
        match existing.iter().find(|c| name(c) == name(want)) {
            None => out.push(Action::Create(Box::new(want.clone()))),
            Some(have) if !is_controlled_by(have, owner_uid) => {
                out.push(Action::NotOwned(name(want)))
            }
            Some(have) if !up_to_date(have, want) => {
                out.push(Action::Update(Box::new(want.clone())))
            }
            Some(_) => {}
        }
    }
    for have in existing {
        if is_controlled_by(have, owner_uid)
            && have.metadata.deletion_timestamp.is_none()
            && !desired.iter().any(|w| name(w) == name(have))
        {
            out.push(Action::Delete(name(have)));
        }
    }
    out
}

#[cfg(test)]
mod tests;
