//! Certificate signing requests for a Certificate spec, and the checks that tell whether a CSR or
//! an issued certificate still matches the spec.
//!
//! Subjects, SANs and extensions are encoded as cert-manager (Go's `crypto/x509`) encodes them;
//! see [`super::der`] for why they are not built with rcgen's `CertificateParams`. The key pair
//! and the signature come from rcgen (aws-lc-rs).

use std::net::IpAddr;

use rcgen::{KeyPair, PublicKeyData, SigningKey};
use rcgen::{PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ECDSA_P521_SHA256};
use rcgen::{PKCS_ECDSA_P521_SHA384, PKCS_ECDSA_P521_SHA512, PKCS_ED25519};
use rcgen::{PKCS_RSA_SHA256, PKCS_RSA_SHA384, PKCS_RSA_SHA512};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::der;
use super::keys::KeySpec;
use super::x509::{CertInfo, SanNames, Subject, attr};
use crate::api::certificate::{
    CertificateSpec, KeyUsage, NameConstraintItem, NameConstraints, SignatureAlgorithm,
};

/// Why a CSR could not be built, parsed or verified. Never carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrError {
    #[error("invalid spec.literalSubject: {0}")]
    LiteralSubject(String),
    #[error("{0}")]
    InvalidSpec(String),
    #[error("{0}")]
    SignatureAlgorithm(String),
    #[error("the request could not be signed: {0}")]
    Sign(String),
    #[error("the certificate signing request could not be parsed: {0}")]
    Parse(String),
    #[error("the certificate signing request's signature is invalid: {0}")]
    Signature(String),
}

/// A distinguished name as RDNs of (OID arcs, value), in DER order.
pub type Rdns = Vec<Vec<(Vec<u64>, String)>>;

// ---------------------------------------------------------------------------------------------
// OIDs.
// ---------------------------------------------------------------------------------------------

pub(crate) mod oids {
    pub const COMMON_NAME: &[u64] = &[2, 5, 4, 3];
    pub const SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];
    pub const COUNTRY: &[u64] = &[2, 5, 4, 6];
    pub const LOCALITY: &[u64] = &[2, 5, 4, 7];
    pub const PROVINCE: &[u64] = &[2, 5, 4, 8];
    pub const STREET_ADDRESS: &[u64] = &[2, 5, 4, 9];
    pub const ORGANIZATION: &[u64] = &[2, 5, 4, 10];
    pub const ORGANIZATIONAL_UNIT: &[u64] = &[2, 5, 4, 11];
    pub const POSTAL_CODE: &[u64] = &[2, 5, 4, 17];
    pub const DOMAIN_COMPONENT: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 25];
    pub const USER_ID: &[u64] = &[0, 9, 2342, 19200300, 100, 1, 1];

    pub const EXTENSION_REQUEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 14];
    pub const SUBJECT_KEY_ID: &[u64] = &[2, 5, 29, 14];
    pub const KEY_USAGE: &[u64] = &[2, 5, 29, 15];
    pub const SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
    pub const BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
    pub const NAME_CONSTRAINTS: &[u64] = &[2, 5, 29, 30];
    pub const CRL_DISTRIBUTION_POINTS: &[u64] = &[2, 5, 29, 31];
    pub const AUTHORITY_KEY_ID: &[u64] = &[2, 5, 29, 35];
    pub const EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
    pub const AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
    pub const OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
    pub const CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];

    pub const EKU_ANY: &[u64] = &[2, 5, 29, 37, 0];
    pub const EKU_SERVER_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];
    pub const EKU_CLIENT_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];
    pub const EKU_CODE_SIGNING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 3];
    pub const EKU_EMAIL_PROTECTION: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 4];
    pub const EKU_IPSEC_END_SYSTEM: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 5];
    pub const EKU_IPSEC_TUNNEL: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 6];
    pub const EKU_IPSEC_USER: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 7];
    pub const EKU_TIMESTAMPING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 8];
    pub const EKU_OCSP_SIGNING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 9];
    pub const EKU_MICROSOFT_SGC: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 10, 3, 3];
    pub const EKU_NETSCAPE_SGC: &[u64] = &[2, 16, 840, 1, 113730, 4, 1];
}

// ---------------------------------------------------------------------------------------------
// Subjects.
// ---------------------------------------------------------------------------------------------

/// The subject a Certificate asks for: its `literalSubject`, or `subject` + `commonName` in the
/// order Go's `pkix.Name` writes them (C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER;
/// several values of one attribute share one RDN).
pub fn subject_for_spec(spec: &CertificateSpec) -> Result<Rdns, CsrError> {
    if let Some(literal) = spec
        .literal_subject
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        return parse_literal_subject(literal);
    }
    let subject = spec.subject.clone().unwrap_or_default();
    let mut rdns: Rdns = Vec::new();
    let mut push = |oid: &[u64], values: Vec<String>| {
        if !values.is_empty() {
            rdns.push(values.into_iter().map(|v| (oid.to_vec(), v)).collect());
        }
    };
    push(oids::COUNTRY, subject.countries.unwrap_or_default());
    push(oids::PROVINCE, subject.provinces.unwrap_or_default());
    push(oids::LOCALITY, subject.localities.unwrap_or_default());
    push(
        oids::STREET_ADDRESS,
        subject.street_addresses.unwrap_or_default(),
    );
    push(oids::POSTAL_CODE, subject.postal_codes.unwrap_or_default());
    push(
        oids::ORGANIZATION,
        subject.organizations.unwrap_or_default(),
    );
    push(
        oids::ORGANIZATIONAL_UNIT,
        subject.organizational_units.unwrap_or_default(),
    );
    push(
        oids::COMMON_NAME,
        spec.common_name
            .iter()
            .filter(|c| !c.is_empty())
            .cloned()
            .collect(),
    );
    push(
        oids::SERIAL_NUMBER,
        subject
            .serial_number
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect(),
    );
    Ok(rdns)
}

/// Attribute type names accepted in `literalSubject` (those cert-manager knows), case-insensitive.
const LITERAL_ATTRIBUTE_TYPES: &[(&str, &[u64])] = &[
    ("CN", oids::COMMON_NAME),
    ("C", oids::COUNTRY),
    ("O", oids::ORGANIZATION),
    ("OU", oids::ORGANIZATIONAL_UNIT),
    ("L", oids::LOCALITY),
    ("ST", oids::PROVINCE),
    ("STREET", oids::STREET_ADDRESS),
    ("POSTALCODE", oids::POSTAL_CODE),
    ("SERIALNUMBER", oids::SERIAL_NUMBER),
    ("DC", oids::DOMAIN_COMPONENT),
    ("UID", oids::USER_ID),
];

/// Parses an RFC 4514 distinguished name (`CN=foo,O=Acme\, Inc.,DC=example,DC=com`) into RDNs
/// in DER order (RFC 4514 writes the last RDN first). Multi-valued RDNs use `+`; values may use
/// `\`-escapes (`\,`, `\2C`, UTF-8 as hex pairs) or double quotes. Hex-encoded BER values
/// (`#04…`) and attribute types other than CN, C, O, OU, L, ST, STREET, POSTALCODE,
/// SERIALNUMBER, DC, UID or a dotted OID are rejected.
pub fn parse_literal_subject(text: &str) -> Result<Rdns, CsrError> {
    let err = |m: String| CsrError::LiteralSubject(m);
    let mut rdns: Rdns = Vec::new();
    let mut rdn: Vec<(Vec<u64>, String)> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    if text.trim().is_empty() {
        return Ok(rdns);
    }
    loop {
        // Attribute type.
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' {
            if matches!(bytes[i], b',' | b'+' | b';') {
                return Err(err(format!(
                    "expected '=' after attribute type {:?}",
                    text[start..i].trim()
                )));
            }
            i += 1;
        }
        if i >= bytes.len() {
            return Err(err(format!(
                "expected '=' after attribute type {:?}",
                text[start..].trim()
            )));
        }
        let type_name = text[start..i].trim();
        let oid = literal_attribute_oid(type_name)?;
        i += 1; // '='
        // Attribute value.
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let mut value: Vec<u8> = Vec::new();
        // Number of bytes of `value` that must not be trimmed (escaped trailing spaces).
        let mut protected = 0usize;
        if i < bytes.len() && bytes[i] == b'#' {
            return Err(err(format!(
                "the value of {type_name} is hex-encoded BER (#…), which certsmith does not encode; write it as a string"
            )));
        }
        if i < bytes.len() && bytes[i] == b'"' {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(err("unterminated quoted value".into())),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let (b, used) = unescape(bytes, i).map_err(err)?;
                        value.push(b);
                        i += used;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
            protected = value.len();
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
        } else {
            while i < bytes.len() && !matches!(bytes[i], b',' | b'+' | b';') {
                if bytes[i] == b'\\' {
                    let (b, used) = unescape(bytes, i).map_err(err)?;
                    value.push(b);
                    i += used;
                    protected = value.len();
                } else {
                    value.push(bytes[i]);
                    i += 1;
                }
            }
        }
        while value.len() > protected && value.last() == Some(&b' ') {
            value.pop();
        }
        let value = String::from_utf8(value)
            .map_err(|_| err(format!("the value of {type_name} is not valid UTF-8")))?;
        rdn.push((oid, value));
        match bytes.get(i) {
            None => {
                rdns.push(std::mem::take(&mut rdn));
                break;
            }
            Some(b'+') => i += 1,
            Some(b',' | b';') => {
                rdns.push(std::mem::take(&mut rdn));
                i += 1;
            }
            Some(other) => {
                return Err(err(format!("unexpected character {:?}", *other as char)));
            }
        }
    }
    rdns.reverse();
    Ok(rdns)
}

/// One `\`-escape at `bytes[at]`: the byte it stands for and how many bytes it used.
fn unescape(bytes: &[u8], at: usize) -> Result<(u8, usize), String> {
    let hex = |b: u8| (b as char).to_digit(16);
    match (bytes.get(at + 1), bytes.get(at + 2)) {
        (Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
            Ok(((hex(a).unwrap() * 16 + hex(b).unwrap()) as u8, 3))
        }
        (Some(&c), _)
            if matches!(
                c,
                b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' | b'=' | b' ' | b'#'
            ) =>
        {
            Ok((c, 2))
        }
        (Some(&c), _) => Err(format!("invalid escape sequence \\{}", c as char)),
        (None, _) => Err("the value ends with a lone backslash".into()),
    }
}

fn literal_attribute_oid(name: &str) -> Result<Vec<u64>, CsrError> {
    if let Some((_, oid)) = LITERAL_ATTRIBUTE_TYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        return Ok(oid.to_vec());
    }
    if name.starts_with(|c: char| c.is_ascii_digit())
        && let Some(oid) = der::parse_oid(name)
    {
        return Ok(oid);
    }
    Err(CsrError::LiteralSubject(format!(
        "unsupported attribute type {name:?}: use one of CN, C, O, OU, L, ST, STREET, POSTALCODE, \
         SERIALNUMBER, DC, UID or a dotted OID such as 2.5.4.3"
    )))
}

/// The DER of a Name.
pub(crate) fn encode_name(rdns: &Rdns) -> Vec<u8> {
    der::seq(rdns.iter().map(|rdn| {
        der::set_of(
            rdn.iter()
                .map(|(oid, value)| der::seq([der::oid(oid), der::directory_string(value)]))
                .collect(),
        )
    }))
}

/// RDNs with string OIDs and values sorted within each RDN, for comparing names semantically.
fn normalized(rdns: impl IntoIterator<Item = Vec<(String, String)>>) -> Vec<Vec<(String, String)>> {
    rdns.into_iter()
        .map(|mut rdn| {
            rdn.sort();
            rdn
        })
        .filter(|rdn| !rdn.is_empty())
        .collect()
}

fn rdns_as_strings(rdns: &Rdns) -> Vec<Vec<(String, String)>> {
    rdns.iter()
        .map(|rdn| {
            rdn.iter()
                .map(|(oid, v)| {
                    let dotted = oid.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
                    (dotted, v.clone())
                })
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Key usages.
// ---------------------------------------------------------------------------------------------

/// KeyUsage bit (bit i = named bit i of RFC 5280) or extended key usage OID of a usage.
enum Usage {
    Bit(u16),
    Extended(&'static [u64]),
}

fn usage(u: KeyUsage) -> Usage {
    use KeyUsage as K;
    match u {
        K::Signing | K::DigitalSignature => Usage::Bit(1 << 0),
        K::ContentCommitment => Usage::Bit(1 << 1),
        K::KeyEncipherment => Usage::Bit(1 << 2),
        K::DataEncipherment => Usage::Bit(1 << 3),
        K::KeyAgreement => Usage::Bit(1 << 4),
        K::CertSign => Usage::Bit(1 << 5),
        K::CrlSign => Usage::Bit(1 << 6),
        K::EncipherOnly => Usage::Bit(1 << 7),
        K::DecipherOnly => Usage::Bit(1 << 8),
        K::Any => Usage::Extended(oids::EKU_ANY),
        K::ServerAuth => Usage::Extended(oids::EKU_SERVER_AUTH),
        K::ClientAuth => Usage::Extended(oids::EKU_CLIENT_AUTH),
        K::CodeSigning => Usage::Extended(oids::EKU_CODE_SIGNING),
        K::EmailProtection | K::Smime => Usage::Extended(oids::EKU_EMAIL_PROTECTION),
        K::IpsecEndSystem => Usage::Extended(oids::EKU_IPSEC_END_SYSTEM),
        K::IpsecTunnel => Usage::Extended(oids::EKU_IPSEC_TUNNEL),
        K::IpsecUser => Usage::Extended(oids::EKU_IPSEC_USER),
        K::Timestamping => Usage::Extended(oids::EKU_TIMESTAMPING),
        K::OcspSigning => Usage::Extended(oids::EKU_OCSP_SIGNING),
        K::MicrosoftSgc => Usage::Extended(oids::EKU_MICROSOFT_SGC),
        K::NetscapeSgc => Usage::Extended(oids::EKU_NETSCAPE_SGC),
    }
}

/// The KeyUsage bits and extended key usage OIDs of a usage list; `cert sign` is added for a CA.
pub(crate) fn usage_bits(usages: &[KeyUsage], is_ca: bool) -> (u16, Vec<&'static [u64]>) {
    let mut bits = if is_ca { 1 << 5 } else { 0 };
    let mut ekus: Vec<&'static [u64]> = Vec::new();
    for u in usages {
        match usage(*u) {
            Usage::Bit(b) => bits |= b,
            Usage::Extended(oid) => {
                if !ekus.contains(&oid) {
                    ekus.push(oid);
                }
            }
        }
    }
    (bits, ekus)
}

/// KeyUsage (critical, as Go marks it) and ExtendedKeyUsage extensions.
pub(crate) fn usage_extensions(usages: &[KeyUsage], is_ca: bool) -> Vec<Vec<u8>> {
    let (bits, ekus) = usage_bits(usages, is_ca);
    let mut out = Vec::new();
    if bits != 0 {
        out.push(der::extension(
            oids::KEY_USAGE,
            true,
            &der::named_bits(bits),
        ));
    }
    if !ekus.is_empty() {
        let value = der::seq(ekus.iter().map(|oid| der::oid(oid)));
        out.push(der::extension(oids::EXT_KEY_USAGE, false, &value));
    }
    out
}

/// BasicConstraints, critical; `CA:TRUE` for a CA, an empty sequence (`CA:FALSE`) otherwise.
pub(crate) fn basic_constraints_extension(is_ca: bool) -> Vec<u8> {
    let value = if is_ca {
        der::seq([der::boolean(true)])
    } else {
        der::seq(Vec::<Vec<u8>>::new())
    };
    der::extension(oids::BASIC_CONSTRAINTS, true, &value)
}

// ---------------------------------------------------------------------------------------------
// Subject alternative names and name constraints.
// ---------------------------------------------------------------------------------------------

fn ia5(field: &str, value: &str) -> Result<(), CsrError> {
    if value.is_ascii() {
        Ok(())
    } else {
        Err(CsrError::InvalidSpec(format!(
            "{field} {value:?} is not ASCII: write internationalised names in their A-label \
             (punycode) form"
        )))
    }
}

/// The SubjectAlternativeName extension for the spec's names, or `None` when it has none. It is
/// critical when the subject is empty (RFC 5280 4.2.1.6).
pub(crate) fn san_extension(
    spec: &CertificateSpec,
    subject_empty: bool,
) -> Result<Option<Vec<u8>>, CsrError> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    for dns in spec.dns_names.iter().flatten() {
        ia5("spec.dnsNames", dns)?;
        names.push(der::context_primitive(2, dns.as_bytes()));
    }
    for email in spec.email_addresses.iter().flatten() {
        ia5("spec.emailAddresses", email)?;
        names.push(der::context_primitive(1, email.as_bytes()));
    }
    for ip in spec.ip_addresses.iter().flatten() {
        let parsed: IpAddr = ip.trim().parse().map_err(|_| {
            CsrError::InvalidSpec(format!("spec.ipAddresses {ip:?} is not an IP address"))
        })?;
        let octets = match parsed {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.octets().to_vec(),
                None => v6.octets().to_vec(),
            },
        };
        names.push(der::context_primitive(7, &octets));
    }
    for uri in spec.uris.iter().flatten() {
        ia5("spec.uris", uri)?;
        names.push(der::context_primitive(6, uri.as_bytes()));
    }
    for other in spec.other_names.iter().flatten() {
        let oid_text = other.oid.as_deref().unwrap_or_default();
        let oid = der::parse_oid(oid_text).ok_or_else(|| {
            CsrError::InvalidSpec(format!(
                "spec.otherNames oid {oid_text:?} is not a dotted OID"
            ))
        })?;
        let value = other.utf8_value.as_deref().unwrap_or_default();
        let content = der::concat([
            der::oid(&oid),
            der::context_constructed(0, &der::utf8_string(value)),
        ]);
        names.push(der::context_constructed(0, &content));
    }
    if names.is_empty() {
        return Ok(None);
    }
    Ok(Some(der::extension(
        oids::SUBJECT_ALT_NAME,
        subject_empty,
        &der::seq(names),
    )))
}

fn general_subtrees(item: &NameConstraintItem) -> Result<Vec<Vec<u8>>, CsrError> {
    let mut out = Vec::new();
    for dns in item.dns_domains.iter().flatten() {
        ia5("spec.nameConstraints dnsDomains", dns)?;
        out.push(der::seq([der::context_primitive(2, dns.as_bytes())]));
    }
    for range in item.ip_ranges.iter().flatten() {
        let bad = || {
            CsrError::InvalidSpec(format!(
                "spec.nameConstraints ipRanges {range:?} is not a CIDR such as 10.0.0.0/8"
            ))
        };
        let (addr, prefix) = range.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix: u32 = prefix.parse().map_err(|_| bad())?;
        let (mut bytes, bits) = match addr {
            IpAddr::V4(v4) => (v4.octets().to_vec(), 32),
            IpAddr::V6(v6) => (v6.octets().to_vec(), 128),
        };
        if prefix > bits {
            return Err(bad());
        }
        let mask: Vec<u8> = (0..bits / 8)
            .map(|i| {
                let start = i * 8;
                if prefix >= start + 8 {
                    0xff
                } else if prefix <= start {
                    0
                } else {
                    0xffu8 << (8 - (prefix - start))
                }
            })
            .collect();
        for (b, m) in bytes.iter_mut().zip(&mask) {
            *b &= m;
        }
        bytes.extend_from_slice(&mask);
        out.push(der::seq([der::context_primitive(7, &bytes)]));
    }
    for email in item.email_addresses.iter().flatten() {
        ia5("spec.nameConstraints emailAddresses", email)?;
        out.push(der::seq([der::context_primitive(1, email.as_bytes())]));
    }
    for uri in item.uri_domains.iter().flatten() {
        ia5("spec.nameConstraints uriDomains", uri)?;
        out.push(der::seq([der::context_primitive(6, uri.as_bytes())]));
    }
    Ok(out)
}

/// The NameConstraints extension, or `None` when neither list has an entry.
pub(crate) fn name_constraints_extension(
    constraints: &NameConstraints,
) -> Result<Option<Vec<u8>>, CsrError> {
    let permitted = match &constraints.permitted {
        Some(item) => general_subtrees(item)?,
        None => vec![],
    };
    let excluded = match &constraints.excluded {
        Some(item) => general_subtrees(item)?,
        None => vec![],
    };
    if permitted.is_empty() && excluded.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::new();
    if !permitted.is_empty() {
        parts.push(der::context_constructed(0, &der::concat(permitted)));
    }
    if !excluded.is_empty() {
        parts.push(der::context_constructed(1, &der::concat(excluded)));
    }
    Ok(Some(der::extension(
        oids::NAME_CONSTRAINTS,
        constraints.critical.unwrap_or(false),
        &der::seq(parts),
    )))
}

// ---------------------------------------------------------------------------------------------
// Signatures.
// ---------------------------------------------------------------------------------------------

/// The key re-loaded with the signature algorithm `spec.signatureAlgorithm` asks for (or the
/// key's default: SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521).
pub fn with_signature_algorithm(
    key: &KeyPair,
    requested: Option<SignatureAlgorithm>,
) -> Result<KeyPair, CsrError> {
    use SignatureAlgorithm as S;
    let spec = KeySpec::of(key)
        .ok_or_else(|| CsrError::SignatureAlgorithm("unsupported private key type".into()))?;
    let alg: &'static rcgen::SignatureAlgorithm = match (requested, spec) {
        (None, _) => key.algorithm(),
        (Some(S::SHA256WithRSA), KeySpec::Rsa(_)) => &PKCS_RSA_SHA256,
        (Some(S::SHA384WithRSA), KeySpec::Rsa(_)) => &PKCS_RSA_SHA384,
        (Some(S::SHA512WithRSA), KeySpec::Rsa(_)) => &PKCS_RSA_SHA512,
        (Some(S::ECDSAWithSHA256), KeySpec::Ecdsa(256)) => &PKCS_ECDSA_P256_SHA256,
        (Some(S::ECDSAWithSHA384), KeySpec::Ecdsa(384)) => &PKCS_ECDSA_P384_SHA384,
        (Some(S::ECDSAWithSHA512), KeySpec::Ecdsa(521)) => &PKCS_ECDSA_P521_SHA512,
        (Some(S::PureEd25519), KeySpec::Ed25519) => &PKCS_ED25519,
        (Some(requested), spec) => {
            return Err(CsrError::SignatureAlgorithm(format!(
                "spec.signatureAlgorithm {requested:?} is not supported for a {} key",
                describe_key(spec)
            )));
        }
    };
    let pkcs8 = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    KeyPair::from_der_and_sign_algo(&rustls::pki_types::PrivateKeyDer::Pkcs8(pkcs8), alg)
        .map_err(|e| CsrError::SignatureAlgorithm(e.to_string()))
}

fn describe_key(spec: KeySpec) -> String {
    match spec {
        KeySpec::Rsa(bits) => format!("{bits}-bit RSA"),
        KeySpec::Ecdsa(bits) => format!("P-{bits} ECDSA"),
        KeySpec::Ed25519 => "Ed25519".into(),
    }
}

/// The AlgorithmIdentifier of the signatures a key makes.
pub(crate) fn signature_algorithm_identifier(key: &KeyPair) -> Result<Vec<u8>, CsrError> {
    let alg = key.algorithm();
    let rsa = |last: u64| der::seq([der::oid(&[1, 2, 840, 113549, 1, 1, last]), der::null()]);
    let ecdsa = |last: u64| der::seq([der::oid(&[1, 2, 840, 10045, 4, 3, last])]);
    Ok(if alg == &PKCS_RSA_SHA256 {
        rsa(11)
    } else if alg == &PKCS_RSA_SHA384 {
        rsa(12)
    } else if alg == &PKCS_RSA_SHA512 {
        rsa(13)
    } else if alg == &PKCS_ECDSA_P256_SHA256 || alg == &PKCS_ECDSA_P521_SHA256 {
        ecdsa(2)
    } else if alg == &PKCS_ECDSA_P384_SHA384 || alg == &PKCS_ECDSA_P521_SHA384 {
        ecdsa(3)
    } else if alg == &PKCS_ECDSA_P521_SHA512 {
        ecdsa(4)
    } else if alg == &PKCS_ED25519 {
        der::seq([der::oid(&[1, 3, 101, 112])])
    } else {
        return Err(CsrError::SignatureAlgorithm(format!(
            "unsupported signature algorithm {alg:?}"
        )));
    })
}

/// `SEQUENCE { tbs, signatureAlgorithm, signature }` — the shape of both a CSR and a
/// certificate.
pub(crate) fn sign_structure(key: &KeyPair, tbs: &[u8]) -> Result<Vec<u8>, CsrError> {
    let alg = signature_algorithm_identifier(key)?;
    let signature = key.sign(tbs).map_err(|e| CsrError::Sign(e.to_string()))?;
    Ok(der::seq([tbs.to_vec(), alg, der::bit_string(&signature)]))
}

// ---------------------------------------------------------------------------------------------
// Building.
// ---------------------------------------------------------------------------------------------

/// The DER PKCS#10 request for a Certificate spec, signed by `key`: subject (or literal
/// subject), SANs, key usages and extended key usages when `encodeUsagesInRequest` (default
/// true), BasicConstraints and NameConstraints for a CA, signature per `signatureAlgorithm`.
pub fn build_csr_der(spec: &CertificateSpec, key: &KeyPair) -> Result<Vec<u8>, CsrError> {
    let signer = with_signature_algorithm(key, spec.signature_algorithm)?;
    let rdns = subject_for_spec(spec)?;
    let mut extensions: Vec<Vec<u8>> = Vec::new();
    if let Some(san) = san_extension(spec, rdns.is_empty())? {
        extensions.push(san);
    }
    if spec.encode_usages_in_request() {
        extensions.extend(usage_extensions(&spec.effective_usages(), spec.is_ca()));
    }
    if spec.is_ca() {
        extensions.push(basic_constraints_extension(true));
        if let Some(constraints) = &spec.name_constraints
            && let Some(ext) = name_constraints_extension(constraints)?
        {
            extensions.push(ext);
        }
    }
    let attributes = if extensions.is_empty() {
        der::context_constructed(0, &[])
    } else {
        let request = der::seq([
            der::oid(oids::EXTENSION_REQUEST),
            der::set_of(vec![der::seq(extensions)]),
        ]);
        der::context_constructed(0, &request)
    };
    let info = der::seq([
        der::small_integer(0),
        encode_name(&rdns),
        signer.subject_public_key_info(),
        attributes,
    ]);
    sign_structure(&signer, &info)
}

/// [`build_csr_der`] as PEM (`CERTIFICATE REQUEST`).
pub fn build_csr_pem(spec: &CertificateSpec, key: &KeyPair) -> Result<String, CsrError> {
    let der = build_csr_der(spec, key)?;
    Ok(pem::encode_config(
        &pem::Pem::new("CERTIFICATE REQUEST", der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    ))
}

// ---------------------------------------------------------------------------------------------
// Parsing.
// ---------------------------------------------------------------------------------------------

/// What certsmith reads from a CSR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCsr {
    pub der: Vec<u8>,
    pub subject: Subject,
    /// DER of the subject Name, as written in the request.
    pub subject_raw: Vec<u8>,
    pub names: SanNames,
    /// DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    /// BasicConstraints `cA`, when the extension is requested.
    pub is_ca: Option<bool>,
    /// KeyUsage bits (bit i = named bit i), when requested.
    pub key_usage: Option<u16>,
    /// Requested extended key usages, dotted OIDs.
    pub extended_key_usages: Vec<String>,
    /// The requested SubjectAltName and NameConstraints extensions, DER `Extension`s as
    /// written, for copying into the certificate.
    pub san_extension: Option<Vec<u8>>,
    pub name_constraints_extension: Option<Vec<u8>>,
    /// The dotted OID of the request's signature algorithm.
    pub signature_algorithm: String,
}

impl ParsedCsr {
    pub fn common_name(&self) -> Option<String> {
        self.subject.common_name()
    }
}

/// Accepts PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or DER, as cert-manager's
/// order controller does.
pub fn csr_der(data: &[u8]) -> Result<Vec<u8>, CsrError> {
    let trimmed = data.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let block = pem::parse(trimmed).map_err(|e| CsrError::Parse(e.to_string()))?;
        if !block.tag().ends_with("CERTIFICATE REQUEST") {
            return Err(CsrError::Parse(format!(
                "expected a CERTIFICATE REQUEST PEM block, found {}",
                block.tag()
            )));
        }
        Ok(block.into_contents())
    } else {
        Ok(data.to_vec())
    }
}

pub fn parse_csr(data: &[u8]) -> Result<ParsedCsr, CsrError> {
    let der_bytes = csr_der(data)?;
    let (_, csr) = X509CertificationRequest::from_der(&der_bytes)
        .map_err(|e| CsrError::Parse(e.to_string()))?;
    let info = &csr.certification_request_info;
    let mut parsed = ParsedCsr {
        der: der_bytes.clone(),
        subject: Subject::from_name(&info.subject),
        subject_raw: info.subject.as_raw().to_vec(),
        names: SanNames::default(),
        public_key_der: info.subject_pki.raw.to_vec(),
        is_ca: None,
        key_usage: None,
        extended_key_usages: vec![],
        san_extension: None,
        name_constraints_extension: None,
        signature_algorithm: csr.signature_algorithm.algorithm.to_id_string(),
    };
    if let Some(extensions) = csr.requested_extensions() {
        for ext in extensions {
            match ext {
                ParsedExtension::SubjectAlternativeName(san) => {
                    parsed.names = SanNames::from_general_names(&san.general_names);
                }
                ParsedExtension::BasicConstraints(bc) => parsed.is_ca = Some(bc.ca),
                ParsedExtension::KeyUsage(ku) => parsed.key_usage = Some(ku.flags),
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    let known = [
                        (eku.any, oids::EKU_ANY),
                        (eku.server_auth, oids::EKU_SERVER_AUTH),
                        (eku.client_auth, oids::EKU_CLIENT_AUTH),
                        (eku.code_signing, oids::EKU_CODE_SIGNING),
                        (eku.email_protection, oids::EKU_EMAIL_PROTECTION),
                        (eku.time_stamping, oids::EKU_TIMESTAMPING),
                        (eku.ocsp_signing, oids::EKU_OCSP_SIGNING),
                    ];
                    for (set, oid) in known {
                        if set {
                            parsed.extended_key_usages.push(dotted(oid));
                        }
                    }
                    for oid in &eku.other {
                        parsed.extended_key_usages.push(oid.to_id_string());
                    }
                }
                _ => {}
            }
        }
    }
    for ext in raw_requested_extensions(&der_bytes).unwrap_or_default() {
        match ext.0.as_str() {
            "2.5.29.17" => parsed.san_extension = Some(ext.1),
            "2.5.29.30" => parsed.name_constraints_extension = Some(ext.1),
            _ => {}
        }
    }
    Ok(parsed)
}

fn dotted(oid: &[u64]) -> String {
    oid.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// The requested extensions of a DER CSR as (dotted OID, whole `Extension` DER).
fn raw_requested_extensions(csr: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let (outer, _) = der::read(csr)?;
    let parts = der::read_all(outer.content)?;
    let info = der::read_all(parts.first()?.content)?;
    let attributes = info.iter().find(|e| e.tag == 0xa0)?;
    let mut out = Vec::new();
    for attribute in der::read_all(attributes.content)? {
        let fields = der::read_all(attribute.content)?;
        let (oid, values) = (fields.first()?, fields.get(1)?);
        if oid.tag != der::OID || der::oid_to_string(oid.content)? != "1.2.840.113549.1.9.14" {
            continue;
        }
        for extensions in der::read_all(values.content)? {
            for ext in der::read_all(extensions.content)? {
                let ext_fields = der::read_all(ext.content)?;
                let ext_oid = der::oid_to_string(ext_fields.first()?.content)?;
                out.push((ext_oid, ext.raw.to_vec()));
            }
        }
    }
    Some(out)
}

/// Checks the request's self-signature with aws-lc-rs (through rustls' webpki algorithms).
pub fn verify_csr_signature(csr_der: &[u8]) -> Result<(), CsrError> {
    let bad = |m: &str| CsrError::Signature(m.to_owned());
    let (outer, _) = der::read(csr_der).ok_or_else(|| bad("malformed request"))?;
    let parts = der::read_all(outer.content).ok_or_else(|| bad("malformed request"))?;
    let [info, sig_alg, signature] = parts.as_slice() else {
        return Err(bad("malformed request"));
    };
    let info_fields = der::read_all(info.content).ok_or_else(|| bad("malformed request"))?;
    let spki = info_fields.get(2).ok_or_else(|| bad("malformed request"))?;
    let spki_fields = der::read_all(spki.content).ok_or_else(|| bad("malformed public key"))?;
    let [pk_alg, pk_bits] = spki_fields.as_slice() else {
        return Err(bad("malformed public key"));
    };
    let public_key = pk_bits
        .content
        .get(1..)
        .ok_or_else(|| bad("empty public key"))?;
    let signature = signature
        .content
        .get(1..)
        .ok_or_else(|| bad("empty signature"))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let algorithm = provider
        .signature_verification_algorithms
        .all
        .iter()
        .find(|a| {
            *a.public_key_alg_id() == *pk_alg.content && *a.signature_alg_id() == *sig_alg.content
        })
        .ok_or_else(|| bad("unsupported signature or public key algorithm"))?;
    algorithm
        .verify_signature(public_key, info.raw, signature)
        .map_err(|_| bad("the signature does not verify with the request's public key"))
}

// ---------------------------------------------------------------------------------------------
// Matching.
// ---------------------------------------------------------------------------------------------

/// cert-manager's `EqualUnsorted`: the same strings, in any order.
fn equal_unsorted(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

fn normalize_ips(ips: &[String]) -> Vec<String> {
    ips.iter()
        .map(|ip| match ip.trim().parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
                v6.to_ipv4_mapped().unwrap().to_string()
            }
            Ok(parsed) => parsed.to_string(),
            Err(_) => ip.clone(),
        })
        .collect()
}

fn spec_list(list: &Option<Vec<String>>) -> Vec<String> {
    list.clone().unwrap_or_default()
}

/// Go's `%v` of a string slice: `[a b c]`.
pub fn format_violations(violations: &[String]) -> String {
    format!("[{}]", violations.join(" "))
}

/// The spec fields (cert-manager's names, e.g. `spec.dnsNames`) whose values differ from what
/// the CSR requests: subject or literal subject and every kind of SAN. (Fields of the
/// CertificateRequest itself — issuerRef, duration, isCA, usages — are compared by the caller.)
pub fn csr_violations(csr: &ParsedCsr, spec: &CertificateSpec) -> Vec<String> {
    // The order of cert-manager's `RequestMatchesSpec`.
    let mut v: Vec<String> = Vec::new();
    if !equal_unsorted(
        &normalize_ips(&csr.names.ip_addresses),
        &normalize_ips(&spec_list(&spec.ip_addresses)),
    ) {
        v.push("spec.ipAddresses".into());
    }
    if !equal_unsorted(&csr.names.uris, &spec_list(&spec.uris)) {
        v.push("spec.uris".into());
    }
    if !equal_unsorted(
        &csr.names.email_addresses,
        &spec_list(&spec.email_addresses),
    ) {
        v.push("spec.emailAddresses".into());
    }
    if !equal_unsorted(&csr.names.dns_names, &spec_list(&spec.dns_names)) {
        v.push("spec.dnsNames".into());
    }
    let mut requested: Vec<(String, String)> = csr.names.other_names.clone();
    let mut wanted: Vec<(String, String)> = spec
        .other_names
        .iter()
        .flatten()
        .map(|o| {
            (
                o.oid.clone().unwrap_or_default(),
                o.utf8_value.clone().unwrap_or_default(),
            )
        })
        .collect();
    requested.sort();
    wanted.sort();
    if requested != wanted {
        v.push("spec.otherNames".into());
    }
    if let Some(literal) = spec
        .literal_subject
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        let matches = parse_literal_subject(literal).is_ok_and(|rdns| {
            normalized(rdns_as_strings(&rdns)) == normalized(csr.subject.rdns.clone())
        });
        if !matches {
            v.push("spec.literalSubject".into());
        }
    } else {
        if csr.common_name().unwrap_or_default() != spec.common_name.clone().unwrap_or_default() {
            v.push("spec.commonName".into());
        }
        let subject = spec.subject.clone().unwrap_or_default();
        if csr.subject.serial_number().unwrap_or_default()
            != subject.serial_number.clone().unwrap_or_default()
        {
            v.push("spec.subject.serialNumber".into());
        }
        let fields: [(&str, &str, Vec<String>); 7] = [
            (
                "spec.subject.organizations",
                attr::ORGANIZATION,
                spec_list(&subject.organizations),
            ),
            (
                "spec.subject.countries",
                attr::COUNTRY,
                spec_list(&subject.countries),
            ),
            (
                "spec.subject.localities",
                attr::LOCALITY,
                spec_list(&subject.localities),
            ),
            (
                "spec.subject.organizationalUnits",
                attr::ORGANIZATIONAL_UNIT,
                spec_list(&subject.organizational_units),
            ),
            (
                "spec.subject.postalCodes",
                attr::POSTAL_CODE,
                spec_list(&subject.postal_codes),
            ),
            (
                "spec.subject.provinces",
                attr::PROVINCE,
                spec_list(&subject.provinces),
            ),
            (
                "spec.subject.streetAddresses",
                attr::STREET_ADDRESS,
                spec_list(&subject.street_addresses),
            ),
        ];
        for (field, oid, wanted) in fields {
            if !equal_unsorted(&csr.subject.values(oid), &wanted) {
                v.push(field.into());
            }
        }
    }
    v
}

/// `Ok` when the CSR asks for what the spec asks for; else the differing fields, formatted as
/// cert-manager does (`[spec.dnsNames spec.commonName]`), or why the CSR cannot be read.
pub fn csr_matches_spec(csr_pem: &[u8], spec: &CertificateSpec) -> Result<(), String> {
    let csr = parse_csr(csr_pem).map_err(|e| e.to_string())?;
    let violations = csr_violations(&csr, spec);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(format_violations(&violations))
    }
}

/// cert-manager's fuzzy check of an issued certificate against the spec (used when the
/// CertificateRequest that issued it is gone): names may move between the common name and the
/// DNS names, as CAs promote one to the other.
pub fn certificate_violations(cert: &CertInfo, spec: &CertificateSpec) -> Vec<String> {
    use std::collections::BTreeSet;
    let mut v: Vec<String> = Vec::new();
    let common_name = spec.common_name.clone().unwrap_or_default();
    let cert_common_name = cert.subject_name.common_name().unwrap_or_default();
    let spec_dns = spec_list(&spec.dns_names);
    let mut expected: BTreeSet<&String> = spec_dns.iter().collect();
    if !common_name.is_empty() {
        expected.insert(&common_name);
    }
    let mut all: BTreeSet<&String> = cert.dns_names.iter().collect();
    if !cert_common_name.is_empty() {
        all.insert(&cert_common_name);
    }
    if all != expected {
        if (!common_name.is_empty() && !all.contains(&common_name))
            || (!cert_common_name.is_empty() && !expected.contains(&cert_common_name))
        {
            v.push("spec.commonName".into());
        }
        if !spec_dns.iter().all(|d| all.contains(d))
            || !cert.dns_names.iter().all(|d| expected.contains(d))
        {
            v.push("spec.dnsNames".into());
        }
    }
    if !equal_unsorted(
        &normalize_ips(&cert.ip_addresses),
        &normalize_ips(&spec_list(&spec.ip_addresses)),
    ) {
        v.push("spec.ipAddresses".into());
    }
    if !equal_unsorted(&cert.uris, &spec_list(&spec.uris)) {
        v.push("spec.uris".into());
    }
    if !equal_unsorted(&cert.email_addresses, &spec_list(&spec.email_addresses)) {
        v.push("spec.emailAddresses".into());
    }
    v
}

/// `Ok` when the leaf of a PEM chain carries the names the spec asks for (see
/// [`certificate_violations`]).
pub fn certificate_matches_spec(cert_pem: &str, spec: &CertificateSpec) -> Result<(), String> {
    let cert = super::x509::parse_leaf_pem(cert_pem).map_err(|e| e.to_string())?;
    let violations = certificate_violations(&cert, spec);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(format_violations(&violations))
    }
}

/// `Ok` when the leaf of a PEM chain certifies `key`'s public key.
pub fn certificate_matches_key(cert_pem: &str, key: &KeyPair) -> Result<(), String> {
    let cert = super::x509::parse_leaf_pem(cert_pem).map_err(|e| e.to_string())?;
    if cert.has_public_key(&key.subject_public_key_info()) {
        Ok(())
    } else {
        Err("the certificate's public key does not match the private key".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::certificate::{OtherName, X509Subject};
    use crate::api::meta::IssuerReference;

    fn spec() -> CertificateSpec {
        CertificateSpec {
            secret_name: "tls".into(),
            issuer_ref: IssuerReference {
                name: "ca".into(),
                ..Default::default()
            },
            common_name: Some("example.com".into()),
            dns_names: Some(vec!["example.com".into(), "www.example.com".into()]),
            ..Default::default()
        }
    }

    fn ec_key() -> KeyPair {
        KeySpec::Ecdsa(256).generate().unwrap()
    }

    fn extensions_of(der: &[u8]) -> Vec<String> {
        raw_requested_extensions(der)
            .unwrap_or_default()
            .into_iter()
            .map(|(oid, _)| oid)
            .collect()
    }

    #[test]
    fn literal_subject_follows_rfc4514() {
        let rdns = parse_literal_subject(
            r"CN=foo\, bar,OU=Web+OU=Ops, O = Acme Inc. ,DC=example,DC=com,C=DE",
        )
        .unwrap();
        let as_strings = rdns_as_strings(&rdns);
        // Reversed into DER order.
        assert_eq!(as_strings[0], [("2.5.4.6".to_string(), "DE".to_string())]);
        assert_eq!(
            as_strings[1],
            [(attr::DOMAIN_COMPONENT.to_string(), "com".to_string())]
        );
        assert_eq!(
            as_strings[3],
            [(attr::ORGANIZATION.to_string(), "Acme Inc.".to_string())]
        );
        assert_eq!(
            as_strings[4],
            [
                (attr::ORGANIZATIONAL_UNIT.to_string(), "Web".to_string()),
                (attr::ORGANIZATIONAL_UNIT.to_string(), "Ops".to_string())
            ]
        );
        assert_eq!(
            as_strings[5],
            [(attr::COMMON_NAME.to_string(), "foo, bar".to_string())]
        );
    }

    #[test]
    fn literal_subject_escapes_quotes_and_oids() {
        let rdns = parse_literal_subject(r#"CN=Z\C3\BCrich\20,2.5.4.10="A+B, C",serialNumber=42"#)
            .unwrap();
        let s = rdns_as_strings(&rdns);
        assert_eq!(s[0], [(attr::SERIAL_NUMBER.into(), "42".into())]);
        assert_eq!(s[1], [(attr::ORGANIZATION.into(), "A+B, C".into())]);
        // The escaped trailing space is kept.
        assert_eq!(s[2], [(attr::COMMON_NAME.into(), "Zürich ".into())]);
        assert!(parse_literal_subject("").unwrap().is_empty());
    }

    #[test]
    fn literal_subject_rejects_what_it_cannot_encode() {
        for (input, needle) in [
            ("EMAILADDRESS=a@b.c", "unsupported attribute type"),
            ("CN=#0403666f6f", "hex-encoded"),
            ("CN", "expected '='"),
            ("CN=a,O", "expected '='"),
            (r"CN=a\", "lone backslash"),
            (r"CN=a\q", "invalid escape"),
            ("CN=\"open", "unterminated"),
        ] {
            let err = parse_literal_subject(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn subject_follows_go_order_and_multi_values() {
        let mut s = spec();
        s.subject = Some(X509Subject {
            organizations: Some(vec!["Acme".into(), "Acme Two".into()]),
            countries: Some(vec!["DE".into()]),
            serial_number: Some("1234".into()),
            ..Default::default()
        });
        let rdns = rdns_as_strings(&subject_for_spec(&s).unwrap());
        assert_eq!(rdns.len(), 4);
        assert_eq!(rdns[0][0].0, attr::COUNTRY);
        assert_eq!(rdns[1].len(), 2); // both organizations in one RDN, like Go
        assert_eq!(rdns[2][0], (attr::COMMON_NAME.into(), "example.com".into()));
        assert_eq!(rdns[3][0], (attr::SERIAL_NUMBER.into(), "1234".into()));
    }

    #[test]
    fn csr_round_trips_through_the_parser_and_verifies() {
        let mut s = spec();
        s.ip_addresses = Some(vec!["192.0.2.1".into(), "2001:db8::1".into()]);
        s.uris = Some(vec!["spiffe://cluster.local/ns/a/sa/b".into()]);
        s.email_addresses = Some(vec!["ops@example.com".into()]);
        s.other_names = Some(vec![OtherName {
            oid: Some("1.3.6.1.4.1.311.20.2.3".into()),
            utf8_value: Some("user@example.com".into()),
        }]);
        s.usages = Some(vec![KeyUsage::DigitalSignature, KeyUsage::ServerAuth]);
        s.subject = Some(X509Subject {
            organizations: Some(vec!["Acme".into()]),
            ..Default::default()
        });
        for key_spec in [
            KeySpec::Rsa(2048),
            KeySpec::Ecdsa(256),
            KeySpec::Ecdsa(384),
            KeySpec::Ecdsa(521),
            KeySpec::Ed25519,
        ] {
            let key = key_spec.generate().unwrap();
            let pem = build_csr_pem(&s, &key).unwrap();
            assert!(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
            let csr = parse_csr(pem.as_bytes()).unwrap();
            verify_csr_signature(&csr.der).unwrap_or_else(|e| panic!("{key_spec:?}: {e}"));
            assert_eq!(csr.public_key_der, key.subject_public_key_info());
            assert_eq!(csr.common_name().as_deref(), Some("example.com"));
            assert_eq!(csr.names.ip_addresses, ["192.0.2.1", "2001:db8::1"]);
            assert_eq!(
                csr.names.other_names,
                [("1.3.6.1.4.1.311.20.2.3".into(), "user@example.com".into())]
            );
            assert_eq!(csr.key_usage, Some(1));
            assert_eq!(csr.extended_key_usages, ["1.3.6.1.5.5.7.3.1"]);
            assert_eq!(csr.is_ca, None);
            assert!(csr.san_extension.is_some());
            assert_eq!(csr_matches_spec(pem.as_bytes(), &s), Ok(()));
        }
    }

    #[test]
    fn usages_are_omitted_when_not_encoded_and_ca_gets_basic_constraints() {
        let key = ec_key();
        let mut s = spec();
        s.encode_usages_in_request = Some(false);
        let der = build_csr_der(&s, &key).unwrap();
        assert_eq!(extensions_of(&der), ["2.5.29.17"]);

        let mut ca = spec();
        ca.is_ca = Some(true);
        ca.name_constraints = Some(NameConstraints {
            critical: Some(true),
            permitted: Some(NameConstraintItem {
                dns_domains: Some(vec!["example.com".into()]),
                ip_ranges: Some(vec!["10.0.0.0/8".into()]),
                ..Default::default()
            }),
            excluded: None,
        });
        let der = build_csr_der(&ca, &key).unwrap();
        let csr = parse_csr(&der).unwrap();
        assert_eq!(csr.is_ca, Some(true));
        // digital signature, key encipherment and cert sign.
        assert_eq!(csr.key_usage, Some(0b100101));
        assert!(csr.name_constraints_extension.is_some());
        verify_csr_signature(&der).unwrap();
    }

    #[test]
    fn empty_subject_makes_the_san_extension_critical() {
        let mut s = spec();
        s.common_name = None;
        let der = build_csr_der(&s, &ec_key()).unwrap();
        let csr = parse_csr(&der).unwrap();
        assert!(csr.subject.is_empty());
        let san = csr.san_extension.unwrap();
        let fields = der::read_all(der::read(&san).unwrap().0.content).unwrap();
        assert_eq!(fields[1].tag, der::BOOLEAN);
    }

    #[test]
    fn signature_algorithm_follows_the_spec() {
        let rsa = KeySpec::Rsa(2048).generate().unwrap();
        let mut s = spec();
        s.signature_algorithm = Some(SignatureAlgorithm::SHA384WithRSA);
        let csr = parse_csr(&build_csr_der(&s, &rsa).unwrap()).unwrap();
        assert_eq!(csr.signature_algorithm, "1.2.840.113549.1.1.12");
        verify_csr_signature(&csr.der).unwrap();

        let p521 = KeySpec::Ecdsa(521).generate().unwrap();
        s.signature_algorithm = Some(SignatureAlgorithm::ECDSAWithSHA512);
        let csr = parse_csr(&build_csr_der(&s, &p521).unwrap()).unwrap();
        assert_eq!(csr.signature_algorithm, "1.2.840.10045.4.3.4");
        verify_csr_signature(&csr.der).unwrap();
        s.signature_algorithm = Some(SignatureAlgorithm::ECDSAWithSHA256);
        assert!(build_csr_der(&s, &p521).is_err());

        s.signature_algorithm = Some(SignatureAlgorithm::ECDSAWithSHA512);
        let err = build_csr_der(&s, &ec_key()).unwrap_err().to_string();
        assert!(err.contains("not supported for a P-256 ECDSA key"), "{err}");
        s.signature_algorithm = Some(SignatureAlgorithm::PureEd25519);
        assert!(build_csr_der(&s, &rsa).is_err());
    }

    #[test]
    fn tampered_requests_fail_verification() {
        let mut der = build_csr_der(&spec(), &ec_key()).unwrap();
        // Flip a byte inside the subject's common name.
        let at = der.windows(11).position(|w| w == b"example.com").unwrap();
        der[at] ^= 1;
        assert!(verify_csr_signature(&der).is_err());
    }

    #[test]
    fn violations_name_each_changed_field() {
        let key = ec_key();
        let original = spec();
        let pem = build_csr_pem(&original, &key).unwrap();
        // Same names in another order: no violation.
        let mut reordered = original.clone();
        reordered.dns_names = Some(vec!["www.example.com".into(), "example.com".into()]);
        assert_eq!(csr_matches_spec(pem.as_bytes(), &reordered), Ok(()));

        let mut changed = original.clone();
        changed.dns_names = Some(vec!["example.com".into()]);
        changed.common_name = Some("other.example.com".into());
        changed.ip_addresses = Some(vec!["192.0.2.9".into()]);
        assert_eq!(
            csr_matches_spec(pem.as_bytes(), &changed),
            Err("[spec.ipAddresses spec.dnsNames spec.commonName]".into())
        );
        let mut org = original.clone();
        org.subject = Some(X509Subject {
            organizations: Some(vec!["New Org".into()]),
            ..Default::default()
        });
        assert_eq!(
            csr_matches_spec(pem.as_bytes(), &org),
            Err("[spec.subject.organizations]".into())
        );
        assert!(
            csr_matches_spec(b"garbage", &original)
                .unwrap_err()
                .contains("could not be parsed")
        );
    }

    #[test]
    fn certificate_names_are_compared_loosely() {
        let mut cert = crate::pki::x509::parse_leaf_pem(
            &rcgen::CertificateParams::new(vec!["www.example.com".to_string()])
                .unwrap()
                .self_signed(&ec_key())
                .unwrap()
                .pem(),
        )
        .unwrap();
        // The CA moved the common name into the DNS names and dropped it from the subject.
        cert.subject_name = Subject::default();
        cert.dns_names = vec!["example.com".into(), "www.example.com".into()];
        assert!(certificate_violations(&cert, &spec()).is_empty());
        let mut s = spec();
        s.dns_names = Some(vec!["example.com".into(), "api.example.com".into()]);
        assert_eq!(certificate_violations(&cert, &s), ["spec.dnsNames"]);
        let mut s = spec();
        s.common_name = Some("other.example.com".into());
        assert_eq!(certificate_violations(&cert, &s), ["spec.commonName"]);
        let mut s = spec();
        s.ip_addresses = Some(vec!["::ffff:192.0.2.1".into()]);
        cert.ip_addresses = vec!["192.0.2.1".into()];
        assert!(certificate_violations(&cert, &s).is_empty());
    }

    #[test]
    fn literal_subjects_compare_semantically() {
        let mut s = spec();
        s.common_name = None;
        s.literal_subject = Some("CN=app,OU=a+OU=b,O=Acme".into());
        let pem = build_csr_pem(&s, &ec_key()).unwrap();
        assert_eq!(csr_matches_spec(pem.as_bytes(), &s), Ok(()));
        let mut same = s.clone();
        same.literal_subject = Some("cn=app, ou=b+ou=a, o=Acme".into());
        assert_eq!(csr_matches_spec(pem.as_bytes(), &same), Ok(()));
        let mut other = s.clone();
        other.literal_subject = Some("CN=app,O=Acme".into());
        assert_eq!(
            csr_matches_spec(pem.as_bytes(), &other),
            Err("[spec.literalSubject]".into())
        );
    }

    #[test]
    fn invalid_spec_values_are_reported() {
        let key = ec_key();
        let mut s = spec();
        s.ip_addresses = Some(vec!["not-an-ip".into()]);
        assert!(
            build_csr_der(&s, &key)
                .unwrap_err()
                .to_string()
                .contains("not an IP")
        );
        let mut s = spec();
        s.dns_names = Some(vec!["bücher.example".into()]);
        assert!(
            build_csr_der(&s, &key)
                .unwrap_err()
                .to_string()
                .contains("A-label")
        );
    }
}
