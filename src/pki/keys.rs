//! Private keys: generation by algorithm and size, PEM encoding as cert-manager writes it
//! (PKCS#1 / SEC1 by default, PKCS#8 on request) and parsing of any of those forms.

use pkcs8::der::{Decode, Encode};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ECDSA_P521_SHA512};
use rcgen::{PKCS_ED25519, PKCS_RSA_SHA256, PublicKeyData, RsaKeySize};
use x509_parser::prelude::FromDer;

use crate::api::certificate::{CertificateSpec, PrivateKeyAlgorithm, PrivateKeyEncoding};

/// Algorithm and size of a private key, with cert-manager's defaults applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
    Rsa(u32),
    Ecdsa(u32),
    Ed25519,
}

/// How a private key is written into `tls.key`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyEncoding {
    /// `RSA PRIVATE KEY` / `EC PRIVATE KEY` (cert-manager's default). Ed25519 has no PKCS#1
    /// form and is always written as PKCS#8, as cert-manager does.
    #[default]
    Pkcs1,
    /// `PRIVATE KEY`.
    Pkcs8,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unsupported private key: {0}")]
    Unsupported(String),
    #[error("the private key could not be generated: {0}")]
    Generate(String),
    // Never carries key material: only the parser's description of what went wrong.
    #[error("the private key could not be parsed: {0}")]
    Parse(String),
}

impl KeySpec {
    /// Builds a spec from cert-manager's `privateKey.algorithm` and `privateKey.size`.
    pub fn from_fields(algorithm: Option<&str>, size: Option<u32>) -> Result<Self, KeyError> {
        match (algorithm.unwrap_or("RSA"), size) {
            ("RSA", None | Some(0)) => Ok(Self::Rsa(2048)),
            ("RSA", Some(bits @ 2048..=8192)) => Ok(Self::Rsa(bits)),
            ("ECDSA", None | Some(0)) => Ok(Self::Ecdsa(256)),
            ("ECDSA", Some(bits @ (256 | 384 | 521))) => Ok(Self::Ecdsa(bits)),
            ("Ed25519", _) => Ok(Self::Ed25519),
            (algorithm, size) => Err(KeyError::Unsupported(format!(
                "{algorithm} with size {}",
                size.unwrap_or_default()
            ))),
        }
    }

    /// The spec that a parsed key satisfies.
    pub fn of(key: &KeyPair) -> Option<Self> {
        let alg = key.algorithm();
        if alg == &PKCS_ED25519 {
            Some(Self::Ed25519)
        } else if alg == &PKCS_ECDSA_P256_SHA256 {
            Some(Self::Ecdsa(256))
        } else if alg == &PKCS_ECDSA_P384_SHA384 {
            Some(Self::Ecdsa(384))
        } else if alg == &PKCS_ECDSA_P521_SHA512 {
            Some(Self::Ecdsa(521))
        } else {
            rsa_modulus_bits(key).map(Self::Rsa)
        }
    }

    pub fn generate(self) -> Result<KeyPair, KeyError> {
        let generated = match self {
            Self::Rsa(bits) => {
                let size = match bits {
                    2048 => RsaKeySize::_2048,
                    3072 => RsaKeySize::_3072,
                    4096 => RsaKeySize::_4096,
                    // aws-lc-rs generates only these sizes; cert-manager accepts any size in
                    // 2048..=8192, so other sizes are refused here with a clear reason.
                    other => {
                        return Err(KeyError::Unsupported(format!(
                            "RSA key size {other}: certsmith generates 2048, 3072 or 4096 bit RSA keys"
                        )));
                    }
                };
                KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, size)
            }
            Self::Ecdsa(256) => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
            Self::Ecdsa(384) => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384),
            Self::Ecdsa(521) => KeyPair::generate_for(&PKCS_ECDSA_P521_SHA512),
            Self::Ecdsa(other) => {
                return Err(KeyError::Unsupported(format!("ECDSA key size {other}")));
            }
            Self::Ed25519 => KeyPair::generate_for(&PKCS_ED25519),
        };
        generated.map_err(|e| KeyError::Generate(e.to_string()))
    }
}

impl KeySpec {
    /// The key a Certificate's `spec.privateKey` asks for, with cert-manager's defaults.
    pub fn for_certificate(spec: &CertificateSpec) -> Result<Self, KeyError> {
        let private_key = spec.private_key_or_default();
        let algorithm = match private_key.algorithm_or_default() {
            PrivateKeyAlgorithm::Rsa => "RSA",
            PrivateKeyAlgorithm::Ecdsa => "ECDSA",
            PrivateKeyAlgorithm::Ed25519 => "Ed25519",
        };
        let size = match private_key.size.filter(|size| *size > 0) {
            Some(size) => Some(
                u32::try_from(size)
                    .map_err(|_| KeyError::Unsupported(format!("{algorithm} with size {size}")))?,
            ),
            None => None,
        };
        Self::from_fields(Some(algorithm), size)
    }
}

impl KeyEncoding {
    /// `spec.privateKey.encoding` with cert-manager's default (PKCS#1).
    pub fn for_certificate(spec: &CertificateSpec) -> Self {
        match spec.private_key_or_default().encoding_or_default() {
            PrivateKeyEncoding::Pkcs1 => Self::Pkcs1,
            PrivateKeyEncoding::Pkcs8 => Self::Pkcs8,
        }
    }
}

/// cert-manager's `PrivateKeyMatchesSpec`: the `spec.privateKey` fields an existing key does not
/// satisfy (`spec.privateKey.algorithm` or `spec.privateKey.size`). `actual` is `None` for a key
/// of a type certsmith does not know.
pub fn private_key_violations(actual: Option<KeySpec>, spec: &CertificateSpec) -> Vec<String> {
    let private_key = spec.private_key_or_default();
    let wanted_size = private_key.size_or_default();
    let size_differs = |bits: u32| wanted_size.is_some_and(|size| size != i64::from(bits));
    let violation = match (private_key.algorithm_or_default(), actual) {
        (PrivateKeyAlgorithm::Rsa, Some(KeySpec::Rsa(bits)))
        | (PrivateKeyAlgorithm::Ecdsa, Some(KeySpec::Ecdsa(bits))) => {
            size_differs(bits).then_some("spec.privateKey.size")
        }
        (PrivateKeyAlgorithm::Ed25519, Some(KeySpec::Ed25519)) => None,
        _ => Some("spec.privateKey.algorithm"),
    };
    violation.into_iter().map(String::from).collect()
}

/// Parses a PEM private key in PKCS#1, SEC1 or PKCS#8 form. The key is held as PKCS#8
/// whatever its input form, so that [`encode_pem`] can write it in either encoding.
pub fn parse_pem(pem: &str) -> Result<KeyPair, KeyError> {
    // The first private key block: `openssl ecparam -genkey` writes EC PARAMETERS before it.
    let block = pem::parse_many(pem)
        .map_err(parse_err)?
        .into_iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or_else(|| KeyError::Parse("no PRIVATE KEY PEM block".into()))?;
    let pkcs8 = match block.tag() {
        "PRIVATE KEY" => block.into_contents(),
        "RSA PRIVATE KEY" => {
            let algorithm = super::der::seq([
                super::der::oid(&[1, 2, 840, 113549, 1, 1, 1]),
                super::der::null(),
            ]);
            wrap_pkcs8(algorithm, block.contents())
        }
        "EC PRIVATE KEY" => {
            let mut ec = sec1::EcPrivateKey::from_der(block.contents()).map_err(parse_err)?;
            let Some(sec1::EcParameters::NamedCurve(curve)) = ec.parameters.take() else {
                return Err(KeyError::Parse(
                    "the EC private key does not name its curve".into(),
                ));
            };
            let algorithm = super::der::seq([
                super::der::oid(&[1, 2, 840, 10045, 2, 1]),
                super::der::tlv(super::der::OID, curve.as_bytes()),
            ]);
            // Inside PKCS#8 the curve lives in the AlgorithmIdentifier (RFC 5915 section 3).
            wrap_pkcs8(algorithm, &ec.to_der().map_err(parse_err)?)
        }
        other => {
            return Err(KeyError::Parse(format!(
                "unexpected PEM block {other:?}, expected a private key"
            )));
        }
    };
    KeyPair::try_from(pkcs8.as_slice()).map_err(parse_err)
}

/// `PrivateKeyInfo { version 0, algorithm, privateKey }`.
fn wrap_pkcs8(algorithm: Vec<u8>, private_key: &[u8]) -> Vec<u8> {
    super::der::seq([
        super::der::small_integer(0),
        algorithm,
        super::der::octet_string(private_key),
    ])
}

/// Writes a key as PEM in the requested encoding.
pub fn encode_pem(key: &KeyPair, encoding: KeyEncoding) -> Result<String, KeyError> {
    let pkcs8 = key.serialize_der();
    let block = match (encoding, KeySpec::of(key)) {
        (KeyEncoding::Pkcs8, _) | (_, Some(KeySpec::Ed25519)) => {
            pem::Pem::new("PRIVATE KEY", pkcs8)
        }
        (KeyEncoding::Pkcs1, Some(KeySpec::Rsa(_))) => {
            let info = pkcs8::PrivateKeyInfo::from_der(&pkcs8).map_err(parse_err)?;
            pem::Pem::new("RSA PRIVATE KEY", info.private_key.to_vec())
        }
        (KeyEncoding::Pkcs1, Some(KeySpec::Ecdsa(_))) => {
            pem::Pem::new("EC PRIVATE KEY", pkcs8_ec_to_sec1(&pkcs8)?)
        }
        (KeyEncoding::Pkcs1, None) => return Err(KeyError::Unsupported("unknown key type".into())),
    };
    Ok(pem::encode_config(
        &block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    ))
}

/// SEC1 `ECPrivateKey` with the named curve, as OpenSSL and Go write `EC PRIVATE KEY`.
fn pkcs8_ec_to_sec1(pkcs8: &[u8]) -> Result<Vec<u8>, KeyError> {
    let info = pkcs8::PrivateKeyInfo::from_der(pkcs8).map_err(parse_err)?;
    let curve = info
        .algorithm
        .parameters_oid()
        .map_err(|e| KeyError::Parse(e.to_string()))?;
    let mut ec = sec1::EcPrivateKey::from_der(info.private_key).map_err(parse_err)?;
    ec.parameters = Some(sec1::EcParameters::NamedCurve(curve));
    ec.to_der().map_err(parse_err)
}

fn parse_err(e: impl std::fmt::Display) -> KeyError {
    KeyError::Parse(e.to_string())
}

/// Bit length of an RSA key's modulus, read from its SubjectPublicKeyInfo.
fn rsa_modulus_bits(key: &KeyPair) -> Option<u32> {
    let spki = key.subject_public_key_info();
    let (_, parsed) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).ok()?;
    match parsed.parsed().ok()? {
        x509_parser::public_key::PublicKey::RSA(rsa) => Some(rsa.key_size() as u32),
        _ => None,
    }
}

/// DER SubjectPublicKeyInfo of a key: what a certificate's public key is compared against.
pub fn public_key_der(key: &KeyPair) -> Vec<u8> {
    key.subject_public_key_info()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_cert_manager() {
        assert_eq!(
            KeySpec::from_fields(None, None).unwrap(),
            KeySpec::Rsa(2048)
        );
        assert_eq!(
            KeySpec::from_fields(Some("ECDSA"), None).unwrap(),
            KeySpec::Ecdsa(256)
        );
        assert_eq!(
            KeySpec::from_fields(Some("Ed25519"), None).unwrap(),
            KeySpec::Ed25519
        );
        assert!(KeySpec::from_fields(Some("ECDSA"), Some(512)).is_err());
        assert!(KeySpec::from_fields(Some("RSA"), Some(1024)).is_err());
    }

    #[test]
    fn every_algorithm_round_trips_through_every_encoding() {
        for spec in [
            KeySpec::Rsa(2048),
            KeySpec::Ecdsa(256),
            KeySpec::Ecdsa(384),
            KeySpec::Ecdsa(521),
            KeySpec::Ed25519,
        ] {
            let key = spec.generate().unwrap();
            assert_eq!(KeySpec::of(&key), Some(spec));
            for encoding in [KeyEncoding::Pkcs1, KeyEncoding::Pkcs8] {
                let pem = encode_pem(&key, encoding).unwrap();
                let label = pem.lines().next().unwrap().to_owned();
                let expected = match (encoding, spec) {
                    (KeyEncoding::Pkcs8, _) | (_, KeySpec::Ed25519) => {
                        "-----BEGIN PRIVATE KEY-----"
                    }
                    (_, KeySpec::Rsa(_)) => "-----BEGIN RSA PRIVATE KEY-----",
                    (_, KeySpec::Ecdsa(_)) => "-----BEGIN EC PRIVATE KEY-----",
                };
                assert_eq!(label, expected, "{spec:?} {encoding:?}");
                let back = parse_pem(&pem).unwrap();
                assert_eq!(
                    public_key_der(&back),
                    public_key_der(&key),
                    "{spec:?} {encoding:?}"
                );
                assert_eq!(KeySpec::of(&back), Some(spec), "{spec:?} {encoding:?}");
                // A key read from either form can be written in the other.
                for other in [KeyEncoding::Pkcs1, KeyEncoding::Pkcs8] {
                    let again = encode_pem(&back, other).unwrap();
                    assert_eq!(
                        again,
                        encode_pem(&key, other).unwrap(),
                        "{spec:?} {other:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn private_key_violations_follow_cert_manager() {
        use crate::api::certificate::CertificatePrivateKey;
        let spec = |algorithm, size| CertificateSpec {
            private_key: Some(CertificatePrivateKey {
                algorithm,
                size,
                ..Default::default()
            }),
            ..Default::default()
        };
        let none: Vec<String> = vec![];
        assert_eq!(
            private_key_violations(Some(KeySpec::Rsa(2048)), &CertificateSpec::default()),
            none
        );
        assert_eq!(
            private_key_violations(Some(KeySpec::Rsa(4096)), &CertificateSpec::default()),
            ["spec.privateKey.size"]
        );
        assert_eq!(
            private_key_violations(Some(KeySpec::Ecdsa(256)), &CertificateSpec::default()),
            ["spec.privateKey.algorithm"]
        );
        let ecdsa384 = spec(Some(PrivateKeyAlgorithm::Ecdsa), Some(384));
        assert_eq!(
            private_key_violations(Some(KeySpec::Ecdsa(384)), &ecdsa384),
            none
        );
        assert_eq!(
            private_key_violations(Some(KeySpec::Ecdsa(256)), &ecdsa384),
            ["spec.privateKey.size"]
        );
        let ed = spec(Some(PrivateKeyAlgorithm::Ed25519), Some(4096));
        assert_eq!(private_key_violations(Some(KeySpec::Ed25519), &ed), none);
        assert_eq!(
            private_key_violations(None, &ed),
            ["spec.privateKey.algorithm"]
        );
        assert_eq!(
            KeySpec::for_certificate(&ecdsa384).unwrap(),
            KeySpec::Ecdsa(384)
        );
        assert_eq!(
            KeySpec::for_certificate(&CertificateSpec::default()).unwrap(),
            KeySpec::Rsa(2048)
        );
        assert!(
            KeySpec::for_certificate(&spec(Some(PrivateKeyAlgorithm::Ecdsa), Some(512))).is_err()
        );
    }

    #[test]
    fn ec_parameters_before_the_key_are_skipped() {
        let key = KeySpec::Ecdsa(256).generate().unwrap();
        let pem = encode_pem(&key, KeyEncoding::Pkcs1).unwrap();
        let with_params = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{pem}"
        );
        assert_eq!(
            public_key_der(&parse_pem(&with_params).unwrap()),
            public_key_der(&key)
        );
        assert!(
            parse_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
    }

    #[test]
    fn parse_errors_do_not_echo_the_input() {
        let secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
        let err = parse_pem(secret).unwrap_err().to_string();
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }
}
