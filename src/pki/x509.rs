//! Reading issued certificates: validity, names, serial and public key.

use jiff::Timestamp;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

/// What certsmith needs to know about a leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// Lower-case hex, no separators.
    pub serial_hex: String,
    pub subject: String,
    pub issuer: String,
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub uris: Vec<String>,
    pub email_addresses: Vec<String>,
    pub is_ca: bool,
    /// DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    /// Every subject attribute, RDN by RDN.
    pub subject_name: Subject,
    /// UTF8String otherName SANs, as (dotted OID, value).
    pub other_names: Vec<(String, String)>,
    /// The DER of the subject and issuer names, as they appear in the certificate.
    pub subject_raw: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    /// The SubjectKeyIdentifier extension, if present.
    pub subject_key_id: Option<Vec<u8>>,
}

/// OIDs of the subject attributes cert-manager's API knows.
pub mod attr {
    pub const COMMON_NAME: &str = "2.5.4.3";
    pub const SERIAL_NUMBER: &str = "2.5.4.5";
    pub const COUNTRY: &str = "2.5.4.6";
    pub const LOCALITY: &str = "2.5.4.7";
    pub const PROVINCE: &str = "2.5.4.8";
    pub const STREET_ADDRESS: &str = "2.5.4.9";
    pub const ORGANIZATION: &str = "2.5.4.10";
    pub const ORGANIZATIONAL_UNIT: &str = "2.5.4.11";
    pub const POSTAL_CODE: &str = "2.5.4.17";
    pub const DOMAIN_COMPONENT: &str = "0.9.2342.19200300.100.1.25";
    pub const USER_ID: &str = "0.9.2342.19200300.100.1.1";
    pub const EMAIL_ADDRESS: &str = "1.2.840.113549.1.9.1";
}

/// A distinguished name as a list of RDNs, each a list of (dotted OID, value) pairs, in the order
/// of the DER encoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    pub rdns: Vec<Vec<(String, String)>>,
}

impl Subject {
    /// Reads a parsed name. Values that are not strings are kept as lower-case hex.
    pub fn from_name(name: &x509_parser::x509::X509Name<'_>) -> Subject {
        let rdns = name
            .iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|atv| {
                        let value = match atv.as_str() {
                            Ok(s) => s.to_owned(),
                            Err(_) => atv
                                .attr_value()
                                .data
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect(),
                        };
                        (atv.attr_type().to_id_string(), value)
                    })
                    .collect()
            })
            .collect();
        Subject { rdns }
    }

    /// Every value of an attribute type, in order.
    pub fn values(&self, oid: &str) -> Vec<String> {
        self.rdns
            .iter()
            .flatten()
            .filter(|(o, _)| o == oid)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The common name as Go reads it: the last CN attribute.
    pub fn common_name(&self) -> Option<String> {
        self.values(attr::COMMON_NAME).pop()
    }

    /// The serial number as Go reads it: the last serialNumber attribute.
    pub fn serial_number(&self) -> Option<String> {
        self.values(attr::SERIAL_NUMBER).pop()
    }

    pub fn is_empty(&self) -> bool {
        self.rdns.iter().all(Vec::is_empty)
    }
}

/// The value of a UTF8String otherName (`[0] EXPLICIT UTF8String`), if it is one.
pub(crate) fn other_name_utf8(value: &[u8]) -> Option<String> {
    let (outer, _) = super::der::read(value)?;
    if outer.tag != 0xa0 {
        return None;
    }
    let (inner, _) = super::der::read(outer.content)?;
    if inner.tag != super::der::UTF8_STRING {
        return None;
    }
    String::from_utf8(inner.content.to_vec()).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("no certificate found in PEM data")]
    Empty,
    #[error("invalid certificate: {0}")]
    Invalid(String),
}

/// Every certificate of a PEM bundle, as DER, in order.
pub fn pem_chain_to_der(pem: &str) -> Result<Vec<Vec<u8>>, CertError> {
    let blocks = pem::parse_many(pem).map_err(|e| CertError::Invalid(e.to_string()))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect();
    if certs.is_empty() {
        return Err(CertError::Empty);
    }
    Ok(certs)
}

/// Parses the first (leaf) certificate of a PEM bundle.
pub fn parse_leaf_pem(pem: &str) -> Result<CertInfo, CertError> {
    let chain = pem_chain_to_der(pem)?;
    parse_der(&chain[0])
}

pub fn parse_der(der: &[u8]) -> Result<CertInfo, CertError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| CertError::Invalid(e.to_string()))?;
    let validity = cert.validity();
    let ts = |t: &x509_parser::time::ASN1Time| {
        Timestamp::from_second(t.timestamp()).map_err(|e| CertError::Invalid(e.to_string()))
    };
    let mut info = CertInfo {
        not_before: ts(&validity.not_before)?,
        not_after: ts(&validity.not_after)?,
        serial_hex: cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        common_name: cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(String::from),
        dns_names: vec![],
        ip_addresses: vec![],
        uris: vec![],
        email_addresses: vec![],
        is_ca: cert.is_ca(),
        public_key_der: cert.public_key().raw.to_vec(),
        subject_name: Subject::from_name(cert.subject()),
        other_names: vec![],
        subject_raw: cert.subject().as_raw().to_vec(),
        issuer_raw: cert.issuer().as_raw().to_vec(),
        subject_key_id: None,
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                let names = SanNames::from_general_names(&san.general_names);
                info.dns_names = names.dns_names;
                info.ip_addresses = names.ip_addresses;
                info.uris = names.uris;
                info.email_addresses = names.email_addresses;
                info.other_names = names.other_names;
            }
            ParsedExtension::SubjectKeyIdentifier(id) => {
                info.subject_key_id = Some(id.0.to_vec());
            }
            _ => {}
        }
    }
    Ok(info)
}

/// The subject alternative names of a certificate or CSR, grouped by type, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SanNames {
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub uris: Vec<String>,
    pub email_addresses: Vec<String>,
    /// UTF8String otherNames, as (dotted OID, value).
    pub other_names: Vec<(String, String)>,
}

impl SanNames {
    pub fn from_general_names(names: &[GeneralName<'_>]) -> SanNames {
        let mut out = SanNames::default();
        for name in names {
            match name {
                GeneralName::DNSName(d) => out.dns_names.push((*d).to_owned()),
                GeneralName::URI(u) => out.uris.push((*u).to_owned()),
                GeneralName::RFC822Name(e) => out.email_addresses.push((*e).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        out.ip_addresses.push(ip.to_string());
                    }
                }
                GeneralName::OtherName(oid, value) => {
                    if let Some(v) = other_name_utf8(value) {
                        out.other_names.push((oid.to_id_string(), v));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

impl CertInfo {
    /// Whether `key_spki_der` is this certificate's public key.
    pub fn has_public_key(&self, key_spki_der: &[u8]) -> bool {
        self.public_key_der == key_spki_der
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, PublicKeyData, SanType};

    fn self_signed(names: &[&str]) -> (String, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("192.0.2.7".parse().unwrap()));
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2026, 4, 1);
        (params.self_signed(&key).unwrap().pem(), key)
    }

    #[test]
    fn reads_names_validity_and_key() {
        let (pem, key) = self_signed(&["a.example.com", "b.example.com"]);
        let info = parse_leaf_pem(&pem).unwrap();
        assert_eq!(info.dns_names, ["a.example.com", "b.example.com"]);
        assert_eq!(info.ip_addresses, ["192.0.2.7"]);
        assert_eq!(info.not_before, "2026-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(info.not_after, "2026-04-01T00:00:00Z".parse().unwrap());
        assert!(info.has_public_key(&key.subject_public_key_info()));
        assert!(!info.has_public_key(&KeyPair::generate().unwrap().subject_public_key_info()));
    }

    #[test]
    fn rejects_non_certificates() {
        assert!(matches!(
            parse_leaf_pem("not pem"),
            Err(CertError::Empty) | Err(CertError::Invalid(_))
        ));
    }
}
