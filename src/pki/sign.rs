//! In-process signing for the SelfSigned and CA issuers.
//!
//! Like cert-manager's `CertificateTemplateFromCertificateRequest` + `SignCertificate`, the
//! certificate takes its subject, public key, SANs and name constraints from the CSR and its
//! lifetime, `isCA` and usages from the CertificateRequest's spec. Validity starts now and is
//! capped at the CA's own `notAfter`.

use jiff::{SignedDuration, Timestamp};
use rcgen::{KeyPair, PublicKeyData};

use super::csr::{self, CsrError, oids};
use super::der;
use super::x509::{self, CertInfo};
use crate::api::certificate::{KeyUsage, SignatureAlgorithm};

/// What the CertificateRequest and the issuer add to the CSR.
#[derive(Clone, Debug)]
pub struct SigningOptions {
    pub now: Timestamp,
    /// `spec.duration` of the request (cert-manager's default: 90 days).
    pub duration: SignedDuration,
    pub is_ca: bool,
    /// `spec.usages` of the request; empty means `digital signature, key encipherment`.
    pub usages: Vec<KeyUsage>,
    pub crl_distribution_points: Vec<String>,
    pub ocsp_servers: Vec<String>,
    pub issuing_certificate_urls: Vec<String>,
}

impl SigningOptions {
    pub fn new(now: Timestamp, duration: SignedDuration) -> Self {
        SigningOptions {
            now,
            duration,
            is_ca: false,
            usages: vec![],
            crl_distribution_points: vec![],
            ocsp_servers: vec![],
            issuing_certificate_urls: vec![],
        }
    }
}

/// Why a request could not be signed. Never carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// The request cannot become a certificate; retrying will not help.
    #[error("Error generating certificate template: {0}")]
    Request(String),
    /// The private key does not belong to the request (self-signed).
    #[error("Referenced private key in Secret does not match that in the request")]
    KeyMismatch,
    /// The CA certificate or key is unusable; fixing the CA Secret helps.
    #[error("{0}")]
    Ca(String),
    #[error("Error signing certificate: {0}")]
    Sign(String),
}

/// A signed certificate: `certificate` is the leaf plus any intermediates, `ca` the top of the
/// chain (for a self-signed certificate, the certificate itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    pub certificate_pem: String,
    pub ca_pem: String,
}

/// Signs the request with its own key (the SelfSigned issuer).
pub fn self_sign(
    csr_data: &[u8],
    key: &KeyPair,
    options: &SigningOptions,
) -> Result<Signed, SignError> {
    let request = parsed_request(csr_data)?;
    if request.public_key_der != key.subject_public_key_info() {
        return Err(SignError::KeyMismatch);
    }
    // Keep the CSR's signature algorithm (spec.signatureAlgorithm) when the key can make it.
    let signer =
        csr::with_signature_algorithm(key, requested_algorithm(&request.signature_algorithm))
            .or_else(|_| csr::with_signature_algorithm(key, None))
            .map_err(|e| SignError::Sign(e.to_string()))?;
    let not_after = options.now + options.duration;
    let der = certificate_der(
        &request,
        &signer,
        &request.subject_raw,
        None,
        not_after,
        options,
    )?;
    let pem = pem_block(&der);
    Ok(Signed {
        certificate_pem: pem.clone(),
        ca_pem: pem,
    })
}

/// Signs the request with a CA (the CA issuer). `ca_chain_pem` is the CA Secret's `tls.crt`:
/// the CA certificate, optionally followed by its own chain.
pub fn sign_with_ca(
    csr_data: &[u8],
    ca_chain_pem: &str,
    ca_key: &KeyPair,
    options: &SigningOptions,
) -> Result<Signed, SignError> {
    let ca_chain = x509::pem_chain_to_der(ca_chain_pem)
        .map_err(|e| SignError::Ca(format!("the CA certificate is invalid: {e}")))?;
    let ca = x509::parse_der(&ca_chain[0])
        .map_err(|e| SignError::Ca(format!("the CA certificate is invalid: {e}")))?;
    if !ca.has_public_key(&ca_key.subject_public_key_info()) {
        return Err(SignError::Ca(
            "the CA private key does not match the CA certificate".into(),
        ));
    }
    let request = parsed_request(csr_data)?;
    let signer =
        csr::with_signature_algorithm(ca_key, None).map_err(|e| SignError::Sign(e.to_string()))?;
    let not_after = (options.now + options.duration).min(ca.not_after);
    let der = certificate_der(
        &request,
        &signer,
        &ca.subject_raw,
        Some(&ca),
        not_after,
        options,
    )?;
    let mut chain: Vec<Vec<u8>> = vec![der];
    chain.extend(ca_chain);
    let top_is_root = chain.len() > 1
        && x509::parse_der(chain.last().unwrap()).is_ok_and(|c| c.subject_raw == c.issuer_raw);
    let ca_pem = pem_block(chain.last().unwrap());
    if top_is_root {
        chain.pop();
    }
    Ok(Signed {
        certificate_pem: chain.iter().map(|c| pem_block(c)).collect(),
        ca_pem,
    })
}

fn parsed_request(csr_data: &[u8]) -> Result<csr::ParsedCsr, SignError> {
    let request = csr::parse_csr(csr_data).map_err(|e| SignError::Request(e.to_string()))?;
    csr::verify_csr_signature(&request.der).map_err(|e| SignError::Request(e.to_string()))?;
    Ok(request)
}

fn requested_algorithm(oid: &str) -> Option<SignatureAlgorithm> {
    use SignatureAlgorithm as S;
    Some(match oid {
        "1.2.840.113549.1.1.11" => S::SHA256WithRSA,
        "1.2.840.113549.1.1.12" => S::SHA384WithRSA,
        "1.2.840.113549.1.1.13" => S::SHA512WithRSA,
        "1.2.840.10045.4.3.2" => S::ECDSAWithSHA256,
        "1.2.840.10045.4.3.3" => S::ECDSAWithSHA384,
        "1.2.840.10045.4.3.4" => S::ECDSAWithSHA512,
        "1.3.101.112" => S::PureEd25519,
        _ => return None,
    })
}

/// RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the subjectPublicKey bits.
fn key_identifier(spki_der: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    let (spki, _) = der::read(spki_der)?;
    let fields = der::read_all(spki.content)?;
    let bits = fields.get(1)?.content.get(1..)?;
    Some(sha2::Sha256::digest(bits)[..20].to_vec())
}

/// 128 random bits from aws-lc-rs, as a positive serial number.
fn random_serial() -> Result<Vec<u8>, SignError> {
    let mut serial = [0u8; 16];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut serial)
        .map_err(|_| SignError::Sign("no randomness for the serial number".into()))?;
    serial[0] &= 0x7f;
    if serial.iter().all(|b| *b == 0) {
        serial[15] = 1;
    }
    Ok(serial.to_vec())
}

fn uri_general_name(uri: &str) -> Result<Vec<u8>, SignError> {
    if !uri.is_ascii() {
        return Err(SignError::Request(format!("URL {uri:?} is not ASCII")));
    }
    Ok(der::context_primitive(6, uri.as_bytes()))
}

fn certificate_der(
    request: &csr::ParsedCsr,
    signer: &KeyPair,
    issuer_name: &[u8],
    ca: Option<&CertInfo>,
    not_after: Timestamp,
    options: &SigningOptions,
) -> Result<Vec<u8>, SignError> {
    let not_before = Timestamp::from_second(options.now.as_second())
        .map_err(|e| SignError::Sign(e.to_string()))?;
    let not_after = Timestamp::from_second(not_after.as_second())
        .map_err(|e| SignError::Sign(e.to_string()))?;
    if not_after <= not_before {
        return Err(SignError::Ca(
            "the CA certificate has expired: it cannot sign new certificates".into(),
        ));
    }
    let usages = if options.usages.is_empty() {
        KeyUsage::DEFAULT.to_vec()
    } else {
        options.usages.clone()
    };

    // Extensions in the order Go's crypto/x509 writes them.
    let mut extensions = csr::usage_extensions(&usages, options.is_ca);
    extensions.push(csr::basic_constraints_extension(options.is_ca));
    if options.is_ca
        && let Some(id) = key_identifier(&request.public_key_der)
    {
        extensions.push(der::extension(
            oids::SUBJECT_KEY_ID,
            false,
            &der::octet_string(&id),
        ));
    }
    if let Some(authority_id) = ca.and_then(|ca| ca.subject_key_id.clone()) {
        let value = der::seq([der::context_primitive(0, &authority_id)]);
        extensions.push(der::extension(oids::AUTHORITY_KEY_ID, false, &value));
    }
    let mut access = Vec::new();
    for url in &options.ocsp_servers {
        access.push(der::seq([der::oid(oids::OCSP), uri_general_name(url)?]));
    }
    for url in &options.issuing_certificate_urls {
        access.push(der::seq([
            der::oid(oids::CA_ISSUERS),
            uri_general_name(url)?,
        ]));
    }
    if !access.is_empty() {
        extensions.push(der::extension(
            oids::AUTHORITY_INFO_ACCESS,
            false,
            &der::seq(access),
        ));
    }
    if let Some(san) = &request.san_extension {
        extensions.push(san.clone());
    } else if request.subject.is_empty() {
        return Err(SignError::Request(
            "the request has neither a subject nor subject alternative names".into(),
        ));
    }
    if options.is_ca
        && let Some(constraints) = &request.name_constraints_extension
    {
        extensions.push(constraints.clone());
    }
    if !options.crl_distribution_points.is_empty() {
        let mut points = Vec::new();
        for url in &options.crl_distribution_points {
            // DistributionPoint { distributionPoint [0] { fullName [0] { URI } } }
            let full_name = der::context_constructed(0, &uri_general_name(url)?);
            points.push(der::seq([der::context_constructed(0, &full_name)]));
        }
        extensions.push(der::extension(
            oids::CRL_DISTRIBUTION_POINTS,
            false,
            &der::seq(points),
        ));
    }

    let algorithm = csr::signature_algorithm_identifier(signer).map_err(sign_err)?;
    let tbs = der::seq([
        der::context_constructed(0, &der::small_integer(2)),
        der::unsigned_integer(&random_serial()?),
        algorithm,
        issuer_name.to_vec(),
        der::seq([der::time(not_before), der::time(not_after)]),
        request.subject_raw.clone(),
        request.public_key_der.clone(),
        der::context_constructed(3, &der::seq(extensions)),
    ]);
    csr::sign_structure(signer, &tbs).map_err(sign_err)
}

fn sign_err(e: CsrError) -> SignError {
    SignError::Sign(e.to_string())
}

fn pem_block(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::certificate::CertificateSpec;
    use crate::api::meta::IssuerReference;
    use crate::pki::keys::KeySpec;
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn now() -> Timestamp {
        "2026-05-01T12:00:00Z".parse().unwrap()
    }

    fn spec(cn: &str, dns: &[&str], is_ca: bool) -> CertificateSpec {
        CertificateSpec {
            secret_name: "tls".into(),
            issuer_ref: IssuerReference {
                name: "issuer".into(),
                ..Default::default()
            },
            common_name: Some(cn.into()),
            dns_names: Some(dns.iter().map(|s| s.to_string()).collect()),
            is_ca: Some(is_ca),
            ..Default::default()
        }
    }

    fn verify_signed_by(cert_der: &[u8], issuer_spki: &[u8]) {
        let (_, cert) = X509Certificate::from_der(cert_der).unwrap();
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(issuer_spki).unwrap();
        // Reuse the CSR verifier's machinery through a fake "request" is not possible, so check
        // with the webpki algorithms directly.
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let sig_alg = der::read(cert_der)
            .and_then(|(outer, _)| der::read_all(outer.content))
            .unwrap()[1]
            .content
            .to_vec();
        let pk_alg = der::read(issuer_spki)
            .and_then(|(outer, _)| der::read_all(outer.content))
            .unwrap()[0]
            .content
            .to_vec();
        let algorithm = provider
            .signature_verification_algorithms
            .all
            .iter()
            .find(|a| *a.public_key_alg_id() == *pk_alg && *a.signature_alg_id() == *sig_alg)
            .expect("algorithm");
        algorithm
            .verify_signature(
                &spki.subject_public_key.data,
                cert.tbs_certificate.as_ref(),
                &cert.signature_value.data,
            )
            .expect("signature verifies");
    }

    #[test]
    fn self_signed_certificate_carries_the_request() {
        let key = KeySpec::Ecdsa(256).generate().unwrap();
        let s = spec("app.example.com", &["app.example.com"], false);
        let csr = csr::build_csr_der(&s, &key).unwrap();
        let mut options = SigningOptions::new(now(), SignedDuration::from_hours(24));
        options.usages = vec![KeyUsage::DigitalSignature, KeyUsage::ServerAuth];
        options.crl_distribution_points = vec!["http://crl.example.com/ca.crl".into()];
        let signed = self_sign(&csr, &key, &options).unwrap();
        assert_eq!(signed.certificate_pem, signed.ca_pem);
        let info = x509::parse_leaf_pem(&signed.certificate_pem).unwrap();
        assert_eq!(info.dns_names, ["app.example.com"]);
        assert_eq!(info.common_name.as_deref(), Some("app.example.com"));
        assert_eq!(info.not_before, now());
        assert_eq!(info.not_after, now() + SignedDuration::from_hours(24));
        assert_eq!(info.subject_raw, info.issuer_raw);
        assert!(!info.is_ca);
        assert!(info.has_public_key(&key.subject_public_key_info()));
        let der = x509::pem_chain_to_der(&signed.certificate_pem).unwrap();
        verify_signed_by(&der[0], &key.subject_public_key_info());
        let (_, cert) = X509Certificate::from_der(&der[0]).unwrap();
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_cert_sign());
        assert!(
            cert.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .server_auth
        );
        assert!(cert.basic_constraints().unwrap().unwrap().critical);
        assert!(csr::certificate_matches_spec(&signed.certificate_pem, &s).is_ok());
        assert!(csr::certificate_matches_key(&signed.certificate_pem, &key).is_ok());
    }

    #[test]
    fn ca_signed_chain_has_the_ca_separately() {
        let ca_key = KeySpec::Rsa(2048).generate().unwrap();
        let ca_spec = spec("certsmith test CA", &[], true);
        let mut ca_options = SigningOptions::new(now(), SignedDuration::from_hours(48));
        ca_options.is_ca = true;
        let ca = self_sign(
            &csr::build_csr_der(&ca_spec, &ca_key).unwrap(),
            &ca_key,
            &ca_options,
        )
        .unwrap();
        let ca_info = x509::parse_leaf_pem(&ca.certificate_pem).unwrap();
        assert!(ca_info.is_ca);
        assert!(ca_info.subject_key_id.is_some());

        let leaf_key = KeySpec::Ecdsa(384).generate().unwrap();
        let leaf_spec = spec("leaf.example.com", &["leaf.example.com"], false);
        let leaf_csr = csr::build_csr_pem(&leaf_spec, &leaf_key).unwrap();
        // Asks for 90 days; the CA lives 48 hours, so the leaf is capped.
        let options = SigningOptions::new(now(), SignedDuration::from_hours(2160));
        let signed =
            sign_with_ca(leaf_csr.as_bytes(), &ca.certificate_pem, &ca_key, &options).unwrap();
        assert_eq!(signed.ca_pem, ca.certificate_pem);
        let chain = x509::pem_chain_to_der(&signed.certificate_pem).unwrap();
        assert_eq!(chain.len(), 1, "the root is not repeated in the chain");
        let leaf = x509::parse_der(&chain[0]).unwrap();
        assert_eq!(leaf.issuer_raw, ca_info.subject_raw);
        assert_eq!(leaf.not_after, ca_info.not_after);
        assert!(leaf.has_public_key(&leaf_key.subject_public_key_info()));
        verify_signed_by(&chain[0], &ca_key.subject_public_key_info());
        let (_, cert) = X509Certificate::from_der(&chain[0]).unwrap();
        let aki = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.clone()
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(Some(aki.0.to_vec()), ca_info.subject_key_id);
    }

    #[test]
    fn mismatched_keys_and_broken_cas_are_reported() {
        let key = KeySpec::Ecdsa(256).generate().unwrap();
        let other = KeySpec::Ecdsa(256).generate().unwrap();
        let csr = csr::build_csr_der(&spec("a.example", &["a.example"], false), &key).unwrap();
        let options = SigningOptions::new(now(), SignedDuration::from_hours(1));
        assert_eq!(
            self_sign(&csr, &other, &options).unwrap_err(),
            SignError::KeyMismatch
        );
        let ca = self_sign(&csr, &key, &options).unwrap();
        let err = sign_with_ca(&csr, &ca.certificate_pem, &other, &options).unwrap_err();
        assert!(matches!(err, SignError::Ca(_)), "{err}");
        let err = sign_with_ca(&csr, "not a cert", &key, &options).unwrap_err();
        assert!(matches!(err, SignError::Ca(_)), "{err}");
        let err = self_sign(b"not a csr", &key, &options).unwrap_err();
        assert!(matches!(err, SignError::Request(_)), "{err}");
        // A CA that expired before now cannot sign.
        let expired = sign_with_ca(
            &csr,
            &ca.certificate_pem,
            &key,
            &SigningOptions::new(
                now() + SignedDuration::from_hours(2),
                SignedDuration::from_hours(1),
            ),
        )
        .unwrap_err();
        assert!(matches!(expired, SignError::Ca(_)), "{expired}");
    }

    #[test]
    fn self_signed_keeps_the_requested_signature_algorithm() {
        let key = KeySpec::Rsa(2048).generate().unwrap();
        let mut s = spec("rsa.example", &["rsa.example"], false);
        s.signature_algorithm = Some(SignatureAlgorithm::SHA512WithRSA);
        let csr = csr::build_csr_der(&s, &key).unwrap();
        let signed = self_sign(
            &csr,
            &key,
            &SigningOptions::new(now(), SignedDuration::from_hours(1)),
        )
        .unwrap();
        let der = x509::pem_chain_to_der(&signed.certificate_pem).unwrap();
        let (_, cert) = X509Certificate::from_der(&der[0]).unwrap();
        assert_eq!(
            cert.signature_algorithm.algorithm.to_id_string(),
            "1.2.840.113549.1.1.13"
        );
        verify_signed_by(&der[0], &key.subject_public_key_info());
    }
}
