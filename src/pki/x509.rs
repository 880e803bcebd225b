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
    };
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => info.dns_names.push((*d).to_owned()),
                    GeneralName::URI(u) => info.uris.push((*u).to_owned()),
                    GeneralName::RFC822Name(e) => info.email_addresses.push((*e).to_owned()),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            info.ip_addresses.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(info)
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
