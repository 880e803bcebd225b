//! The control plane's certificates, all ECDSA P-256, written as PEM files into the work dir.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// Common name of the front-proxy client certificate; `--requestheader-allowed-names`.
pub const FRONT_PROXY_CLIENT_CN: &str = "front-proxy-client";

/// A PEM certificate and its PEM private key, plus where both were written.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Every certificate and key the control plane uses.
#[derive(Debug)]
pub(crate) struct Pki {
    /// Signs the kube-apiserver serving certificate; clients trust it.
    pub serving_ca: CertFiles,
    pub apiserver: CertFiles,
    /// `--client-ca-file`: signs the admin and kube-controller-manager client certificates.
    pub client_ca: CertFiles,
    /// CN=admin, O=system:masters.
    pub admin: CertFiles,
    /// CN=system:kube-controller-manager, O=system:masters.
    pub controller_manager: CertFiles,
    /// Service-account token signing key (`key`) and its public key (`cert` holds the PEM public key).
    pub service_account: CertFiles,
    /// `--requestheader-client-ca-file`: signs the front-proxy client certificate.
    pub front_proxy_ca: CertFiles,
    pub front_proxy_client: CertFiles,
    /// Signs Pebble's listener certificate: ACME clients trust it.
    pub pebble_ca: CertFiles,
    pub pebble_listener: CertFiles,
}

/// Localhost names for serving certificates.
const LOCAL_SANS: [&str; 2] = ["localhost", "127.0.0.1"];

impl Pki {
    pub(crate) fn generate(dir: &Path) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let serving_ca = Ca::new("certsmith-e2e serving CA")?;
        let client_ca = Ca::new("certsmith-e2e client CA")?;
        let front_proxy_ca = Ca::new("certsmith-e2e front-proxy CA")?;
        let pebble_ca = Ca::new("certsmith-e2e Pebble listener CA")?;

        let sa_key = KeyPair::generate()?;
        let service_account = write(
            dir,
            "service-account",
            sa_key.public_key_pem(),
            sa_key.serialize_pem(),
        )?;

        Ok(Pki {
            apiserver: serving_ca.server(dir, "apiserver", "localhost")?,
            serving_ca: serving_ca.write(dir, "serving-ca")?,
            admin: client_ca.client(dir, "admin", "admin", "system:masters")?,
            controller_manager: client_ca.client(
                dir,
                "kube-controller-manager",
                "system:kube-controller-manager",
                "system:masters",
            )?,
            client_ca: client_ca.write(dir, "client-ca")?,
            service_account,
            front_proxy_client: front_proxy_ca.client(
                dir,
                "front-proxy-client",
                FRONT_PROXY_CLIENT_CN,
                "",
            )?,
            front_proxy_ca: front_proxy_ca.write(dir, "front-proxy-ca")?,
            pebble_listener: pebble_ca.server(dir, "pebble-listener", "localhost")?,
            pebble_ca: pebble_ca.write(dir, "pebble-ca")?,
        })
    }
}

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(common_name: &str) -> anyhow::Result<Ca> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name, "certsmith-e2e");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)
            .with_context(|| format!("generating {common_name}"))?;
        Ok(Ca { issuer })
    }

    fn write(&self, dir: &Path, name: &str) -> anyhow::Result<CertFiles> {
        write(
            dir,
            name,
            self.issuer.pem(),
            self.issuer.key().serialize_pem(),
        )
    }

    /// A serving certificate for localhost and 127.0.0.1.
    fn server(&self, dir: &Path, name: &str, common_name: &str) -> anyhow::Result<CertFiles> {
        let mut params = CertificateParams::new(LOCAL_SANS.map(String::from).to_vec())?;
        params.distinguished_name = dn(common_name, "");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(dir, name, params)
    }

    /// A client certificate; `organization` (the Kubernetes group) may be empty.
    fn client(
        &self,
        dir: &Path,
        name: &str,
        common_name: &str,
        organization: &str,
    ) -> anyhow::Result<CertFiles> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name, organization);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(dir, name, params)
    }

    fn sign(&self, dir: &Path, name: &str, params: CertificateParams) -> anyhow::Result<CertFiles> {
        let key = KeyPair::generate()?;
        let cert = params
            .signed_by(&key, &*self.issuer)
            .with_context(|| format!("signing the {name} certificate"))?;
        write(dir, name, cert.pem(), key.serialize_pem())
    }
}

fn dn(common_name: &str, organization: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if !organization.is_empty() {
        dn.push(DnType::OrganizationName, organization);
    }
    dn
}

fn write(dir: &Path, name: &str, cert_pem: String, key_pem: String) -> anyhow::Result<CertFiles> {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, &cert_pem).with_context(|| format!("writing {}", cert.display()))?;
    std::fs::write(&key, &key_pem).with_context(|| format!("writing {}", key.display()))?;
    Ok(CertFiles {
        cert_pem,
        key_pem,
        cert,
        key,
    })
}
