//! The ACME account of an issuer: its key in a Secret, registering it (with External Account
//! Binding when configured), finding it again, and keeping its contact email current.
//!
//! Account keys are ECDSA P-256 in PKCS#8 form, stored as PEM (`PRIVATE KEY`): instant-acme
//! supports no other kind. A Secret holding another kind of key (cert-manager's RSA account
//! keys, for example) is reported with what to do about it, never used or overwritten.
//!
//! Key material (the account key, the EAB HMAC key) never appears in logs, errors or events.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use instant_acme::{Account, ExternalAccountKey, Key, NewAccount};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use super::client::{self, TlsOptions, scoped};
use super::orders::OrderCache;
use super::problem::AcmeError;
use super::{AccountCache, IssuerKey};
use crate::api::acme::{AcmeIssuer, AcmeIssuerStatus};

/// Field manager of the account key Secrets certsmith writes.
const FIELD_MANAGER: &str = "certsmith";
/// The label cert-manager puts on Secrets its controller manages (and caches in full).
pub const FAO_LABEL: &str = "controller.cert-manager.io/fao";

/// An entry of a Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretEntry {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

impl std::fmt::Display for SecretEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Secret {}/{} (key {:?})",
            self.namespace, self.name, self.key
        )
    }
}

/// External Account Binding: the key id and where its HMAC key is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EabConfig {
    pub key_id: String,
    pub secret: SecretEntry,
}

/// Everything needed to register or load the ACME account of an issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountConfig {
    /// The directory URL.
    pub server: String,
    /// The contact email, if any.
    pub email: Option<String>,
    pub tls: TlsOptions,
    /// Where the account key is (or will be stored).
    pub private_key: SecretEntry,
    /// Generate and register a key when the Secret is missing (not `disableAccountKeyGeneration`).
    pub generate_key: bool,
    pub eab: Option<EabConfig>,
}

impl AccountConfig {
    /// The account configuration of an ACME issuer whose Secrets are in `secret_namespace` (the
    /// Issuer's namespace, or the cluster resource namespace for a ClusterIssuer).
    pub fn from_issuer(acme: &AcmeIssuer, secret_namespace: &str) -> AccountConfig {
        AccountConfig {
            server: acme.server.clone(),
            email: acme.email.clone().filter(|e| !e.is_empty()),
            tls: TlsOptions {
                ca_bundle: acme.ca_bundle.as_ref().map(|b| b.0.clone()),
                skip_tls_verify: acme.skip_tls_verify.unwrap_or(false),
            },
            private_key: SecretEntry {
                namespace: secret_namespace.to_owned(),
                name: acme.private_key_secret_ref.name.clone(),
                key: acme.private_key_secret_key().to_owned(),
            },
            generate_key: !acme.disable_account_key_generation.unwrap_or(false),
            eab: acme.external_account_binding.as_ref().map(|eab| EabConfig {
                key_id: eab.key_id.clone(),
                secret: SecretEntry {
                    namespace: secret_namespace.to_owned(),
                    name: eab.key_secret_ref.name.clone(),
                    key: eab.key_secret_ref.key.clone().unwrap_or_default(),
                },
            }),
        }
    }
}

/// The Secret contents an account needs, read by the caller.
#[derive(Clone, Default)]
pub struct AccountSecrets {
    /// Whether the account key Secret exists.
    pub private_key_secret_exists: bool,
    /// The account key entry (PEM), if present and not empty.
    pub private_key: Option<Vec<u8>>,
    /// Whether the EAB Secret exists (only meaningful with EAB configured).
    pub eab_secret_exists: bool,
    /// The EAB HMAC key entry as stored (base64url), if present.
    pub eab_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for AccountSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSecrets")
            .field("private_key_secret_exists", &self.private_key_secret_exists)
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("eab_secret_exists", &self.eab_secret_exists)
            .field("eab_key", &self.eab_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why an account could not be registered or loaded. Never holds key material.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(
        "the ACME account key Secret {}/{} does not exist and disableAccountKeyGeneration is set: create it with an ECDSA P-256 private key (PEM, PKCS#8) under key {:?}, or unset disableAccountKeyGeneration",
        .0.namespace, .0.name, .0.key
    )]
    KeySecretMissing(SecretEntry),
    #[error(
        "the ACME account key Secret {}/{} has no key {:?} and disableAccountKeyGeneration is set: add an ECDSA P-256 private key (PEM, PKCS#8) under that key, or unset disableAccountKeyGeneration",
        .0.namespace, .0.name, .0.key
    )]
    KeyEntryMissing(SecretEntry),
    #[error(
        "the ACME account key in {entry} is {found}, but certsmith's ACME client needs an ECDSA P-256 account key (cert-manager creates RSA account keys, which certsmith cannot use): delete Secret {}/{} so that certsmith generates a new key and registers a new account, or point privateKeySecretRef at a new Secret",
        entry.namespace, entry.name
    )]
    WrongKeyType { entry: SecretEntry, found: String },
    #[error(
        "the ACME account key in {entry} is not a PEM private key ({reason}): delete Secret {}/{} so that certsmith generates a new key, or store an ECDSA P-256 private key (PEM, PKCS#8) in it",
        entry.namespace, entry.name
    )]
    InvalidKey { entry: SecretEntry, reason: String },
    #[error("the External Account Binding key {0} does not exist")]
    EabKeyMissing(SecretEntry),
    #[error(
        "the External Account Binding key in {0} is not valid base64url (it must be the HMAC key exactly as the CA issued it)"
    )]
    EabKeyInvalid(SecretEntry),
    #[error(
        "no account exists at {server} for the key in {entry}, and the server requires External Account Binding: certsmith can only bind a newly generated key, so delete Secret {}/{} (or point privateKeySecretRef at a new Secret) to register a new account",
        entry.namespace, entry.name
    )]
    EabNeedsNewKey { server: String, entry: SecretEntry },
    #[error("the ACME account is not registered yet: {0}")]
    NotRegistered(String),
    #[error("storing the new ACME account key in {entry}: {error}")]
    StoreKey {
        entry: Box<SecretEntry>,
        #[source]
        error: Box<kube::Error>,
    },
    #[error("reading {entry}: {error}")]
    ReadSecret {
        entry: Box<SecretEntry>,
        #[source]
        error: Box<kube::Error>,
    },
    #[error("{0}")]
    Acme(AcmeError),
}

impl AccountError {
    /// Whether trying again later without a change may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            AccountError::Acme(e) => !e.is_terminal(),
            AccountError::StoreKey { .. }
            | AccountError::ReadSecret { .. }
            | AccountError::NotRegistered(_) => true,
            _ => false,
        }
    }

    /// How long the ACME server asked to wait, if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            AccountError::Acme(e) => e.retry_after(),
            _ => None,
        }
    }

    /// The ACME error, if this is one.
    pub fn acme(&self) -> Option<&AcmeError> {
        match self {
            AccountError::Acme(e) => Some(e),
            _ => None,
        }
    }
}

impl From<AcmeError> for AccountError {
    fn from(e: AcmeError) -> Self {
        AccountError::Acme(e)
    }
}

/// What [`AccountCache::ensure`] had to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationAction {
    /// A new account was registered (and, with a generated key, the key stored).
    Registered,
    /// An existing account was found for the key (and its contact updated if needed).
    Found,
    /// The account recorded in the issuer's status was loaded without registering.
    Restored,
    /// The cached account was up to date: no request was made.
    Cached,
}

/// The registered account, for the issuer's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The account URL (`status.acme.uri`).
    pub uri: String,
    /// The email registered as contact (`status.acme.lastRegisteredEmail`), empty for none.
    pub email: String,
    /// `status.acme.lastPrivateKeyHash`: base64 SHA-256 of the PKCS#8 key.
    pub key_hash: String,
    pub action: RegistrationAction,
}

/// A usable ACME account: cheap to clone, shared by the controllers through [`AccountCache`].
#[derive(Clone)]
pub struct AcmeAccount {
    pub(crate) inner: Arc<AccountInner>,
}

pub(crate) struct AccountInner {
    pub(crate) account: Account,
    server: String,
    email: String,
    key_hash: String,
    tls_fingerprint: String,
    pub(crate) orders: Arc<OrderCache>,
}

impl std::fmt::Debug for AcmeAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeAccount")
            .field("uri", &self.uri())
            .field("server", &self.inner.server)
            .finish()
    }
}

impl AcmeAccount {
    fn new(
        account: Account,
        config: &AccountConfig,
        email: String,
        key_hash: String,
    ) -> AcmeAccount {
        AcmeAccount {
            inner: Arc::new(AccountInner {
                account,
                server: config.server.clone(),
                email,
                key_hash,
                tls_fingerprint: config.tls.fingerprint(),
                orders: Arc::default(),
            }),
        }
    }

    /// The account URL.
    pub fn uri(&self) -> &str {
        self.inner.account.id()
    }

    /// The directory URL.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// The RFC 7638 thumbprint of the account key (base64url), the second half of every key
    /// authorization.
    pub fn thumbprint(&self) -> &str {
        self.inner.account.key_thumbprint()
    }

    /// The profiles the server's directory offers.
    pub fn profiles(&self) -> Vec<String> {
        self.inner
            .account
            .profiles()
            .map(|p| p.name.to_owned())
            .collect()
    }

    fn matches(&self, config: &AccountConfig, uri: &str, key_hash: &str) -> bool {
        self.inner.server == config.server
            && self.uri() == uri
            && self.inner.key_hash == key_hash
            && self.inner.tls_fingerprint == config.tls.fingerprint()
    }
}

/// `status.acme.lastPrivateKeyHash`: the standard base64 of the SHA-256 of the PKCS#8 DER key.
pub fn account_key_hash(pkcs8_der: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(pkcs8_der))
}

/// The PKCS#8 DER of an account key stored as PEM, if it is a P-256 key instant-acme can use.
pub(crate) fn parse_account_key(
    stored: &[u8],
    entry: &SecretEntry,
) -> Result<PrivatePkcs8KeyDer<'static>, AccountError> {
    let invalid = |reason: &str| AccountError::InvalidKey {
        entry: entry.clone(),
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(stored).map_err(|_| invalid("not text"))?;
    let blocks = pem::parse_many(text).map_err(|_| invalid("malformed PEM"))?;
    let block = blocks
        .iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or_else(|| invalid("no PRIVATE KEY block"))?;
    let describe = || -> String {
        match crate::pki::keys::parse_pem(text)
            .ok()
            .and_then(|k| crate::pki::keys::KeySpec::of(&k))
        {
            Some(crate::pki::keys::KeySpec::Rsa(bits)) => format!("an RSA {bits}-bit key"),
            Some(crate::pki::keys::KeySpec::Ecdsa(bits)) => format!("an ECDSA P-{bits} key"),
            Some(crate::pki::keys::KeySpec::Ed25519) => "an Ed25519 key".to_owned(),
            None => format!("a {} block of an unsupported kind", block.tag()),
        }
    };
    let wrong = || AccountError::WrongKeyType {
        entry: entry.clone(),
        found: describe(),
    };
    let pkcs8 = match block.tag() {
        "PRIVATE KEY" => block.contents().to_vec(),
        // SEC1: usable when it is P-256, wrapped as PKCS#8.
        "EC PRIVATE KEY" => sec1_p256_to_pkcs8(block.contents()).ok_or_else(wrong)?,
        _ => return Err(wrong()),
    };
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    match Key::from_pkcs8_der(der.clone_key()) {
        Ok(_) => Ok(der),
        Err(_) => Err(wrong()),
    }
}

/// Wraps a SEC1 `EC PRIVATE KEY` of curve P-256 as PKCS#8 (RFC 5915 §3); `None` for another
/// curve or malformed input.
fn sec1_p256_to_pkcs8(sec1_der: &[u8]) -> Option<Vec<u8>> {
    use pkcs8::ObjectIdentifier;
    use pkcs8::der::{Decode, Encode};
    const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    let ec = sec1::EcPrivateKey::from_der(sec1_der).ok()?;
    match ec.parameters {
        None => {}
        Some(sec1::EcParameters::NamedCurve(curve)) if curve == SECP256R1 => {}
        Some(_) => return None,
    }
    let inner = sec1::EcPrivateKey {
        parameters: None,
        ..ec
    }
    .to_der()
    .ok()?;
    pkcs8::PrivateKeyInfo {
        algorithm: pkcs8::AlgorithmIdentifierRef {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some((&SECP256R1).into()),
        },
        private_key: &inner,
        public_key: None,
    }
    .to_der()
    .ok()
}

/// The raw HMAC key of an EAB Secret entry: unpadded base64url as CAs issue it (padding and
/// surrounding whitespace tolerated).
pub(crate) fn decode_eab_key(stored: &[u8], entry: &SecretEntry) -> Result<Vec<u8>, AccountError> {
    let text =
        std::str::from_utf8(stored).map_err(|_| AccountError::EabKeyInvalid(entry.clone()))?;
    let trimmed = text.trim().trim_end_matches('=');
    if trimmed.is_empty() {
        return Err(AccountError::EabKeyInvalid(entry.clone()));
    }
    URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|_| AccountError::EabKeyInvalid(entry.clone()))
}

fn contacts(email: &str) -> Vec<String> {
    if email.is_empty() {
        Vec::new()
    } else {
        vec![format!("mailto:{email}")]
    }
}

fn host_of(url: &str) -> Option<String> {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
}

fn acme_err(context: &'static str) -> impl Fn(AcmeError) -> AccountError {
    move |e| AccountError::Acme(e.context(context))
}

/// Runs an instant-acme operation in a metrics/Retry-After scope.
async fn run<T>(
    action: &'static str,
    operation: impl Future<Output = Result<T, instant_acme::Error>>,
) -> Result<T, AcmeError> {
    match scoped(action, operation).await {
        (Ok(v), _) => Ok(v),
        (Err(e), retry_after) => Err(AcmeError::from_acme(e, retry_after)),
    }
}

fn builder(config: &AccountConfig) -> Result<instant_acme::AccountBuilder, AccountError> {
    let http = client::build(&config.server, &config.tls)?;
    Ok(Account::builder_with_http(Box::new(http)))
}

impl AccountCache {
    /// Makes sure the issuer's account exists at the server and is cached: registers it (the
    /// first time, or when the server, key or email changed since `status`), or loads it from
    /// `status` without registering when nothing changed. For the issuer controller.
    pub async fn ensure(
        &self,
        client: &Client,
        issuer: &IssuerKey,
        config: &AccountConfig,
        secrets: &AccountSecrets,
        status: Option<&AcmeIssuerStatus>,
    ) -> Result<Registration, AccountError> {
        let slot = self.slot(issuer);
        let mut slot = slot.lock().await;
        let email = config.email.clone().unwrap_or_default();

        let Some(stored_key) = secrets.private_key.as_deref() else {
            if !config.generate_key {
                return Err(if secrets.private_key_secret_exists {
                    AccountError::KeyEntryMissing(config.private_key.clone())
                } else {
                    AccountError::KeySecretMissing(config.private_key.clone())
                });
            }
            let eab = eab_key(config, secrets)?;
            let contact = contacts(&email);
            let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
            let new_account = NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            };
            let builder = builder(config)?;
            tracing::info!(%issuer, server = %config.server, "registering a new ACME account with a new key");
            let (account, credentials) = run(
                "new_account",
                builder.create(&new_account, config.server.clone(), eab.as_ref()),
            )
            .await
            .map_err(AccountError::Acme)?;
            let pkcs8 = credentials.private_key().secret_pkcs8_der().to_vec();
            store_key(client, &config.private_key, &pkcs8).await?;
            let key_hash = account_key_hash(&pkcs8);
            let account = AcmeAccount::new(account, config, email.clone(), key_hash.clone());
            let registration = Registration {
                uri: account.uri().to_owned(),
                email,
                key_hash,
                action: RegistrationAction::Registered,
            };
            *slot = Some(account);
            return Ok(registration);
        };

        let pkcs8 = parse_account_key(stored_key, &config.private_key)?;
        let key_hash = account_key_hash(pkcs8.secret_pkcs8_der());
        let recorded = status.and_then(|s| {
            let uri = s.uri.as_deref().filter(|u| !u.is_empty())?;
            let same_key = s.last_private_key_hash.as_deref() == Some(key_hash.as_str());
            let same_email = s.last_registered_email.as_deref().unwrap_or_default() == email;
            let same_server = host_of(uri).is_some() && host_of(uri) == host_of(&config.server);
            (same_key && same_email && same_server).then_some(uri)
        });

        // Registered by this process with the same server, key and trust: nothing to do (also
        // when the issuer's status is not yet the one written after registering), or only the
        // contact to update.
        let cached = slot
            .as_ref()
            .filter(|a| {
                a.inner.server == config.server
                    && a.inner.key_hash == key_hash
                    && a.inner.tls_fingerprint == config.tls.fingerprint()
                    && status
                        .and_then(|s| s.uri.as_deref())
                        .is_none_or(|uri| uri == a.uri())
            })
            .cloned();
        if let Some(cached) = cached {
            let action = if cached.inner.email == email {
                RegistrationAction::Cached
            } else {
                let contact = contacts(&email);
                let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                run(
                    "update_account",
                    cached.inner.account.update_contacts(&contact),
                )
                .await
                .map_err(acme_err("updating the account's contact"))?;
                // Same account: keep the orders it is working on.
                let mut updated = AcmeAccount::new(
                    cached.inner.account.clone(),
                    config,
                    email.clone(),
                    key_hash.clone(),
                );
                if let Some(inner) = Arc::get_mut(&mut updated.inner) {
                    inner.orders = cached.inner.orders.clone();
                }
                *slot = Some(updated);
                RegistrationAction::Found
            };
            return Ok(Registration {
                uri: cached.uri().to_owned(),
                email,
                key_hash,
                action,
            });
        }

        if let Some(uri) = recorded {
            let builder = builder(config)?;
            let account = run(
                "directory",
                builder.from_parts(uri.to_owned(), pkcs8.clone_key(), config.server.clone()),
            )
            .await
            .map_err(acme_err("loading the account"))?;
            *slot = Some(AcmeAccount::new(
                account,
                config,
                email.clone(),
                key_hash.clone(),
            ));
            return Ok(Registration {
                uri: uri.to_owned(),
                email,
                key_hash,
                action: RegistrationAction::Restored,
            });
        }

        // Find the account of this key, or register one.
        let key = || -> Result<(Key, PrivateKeyDer<'static>), AccountError> {
            let key =
                Key::from_pkcs8_der(pkcs8.clone_key()).map_err(|_| AccountError::WrongKeyType {
                    entry: config.private_key.clone(),
                    found: "not a P-256 key".to_owned(),
                })?;
            Ok((key, PrivateKeyDer::Pkcs8(pkcs8.clone_key())))
        };
        let found = run(
            "lookup_account",
            builder(config)?.from_key(key()?, config.server.clone()),
        )
        .await;
        let (account, action, contacts_known) = match found {
            Ok((account, _)) => {
                let registered_email = status.and_then(|s| s.last_registered_email.as_deref());
                (
                    account,
                    RegistrationAction::Found,
                    registered_email == Some(email.as_str()),
                )
            }
            Err(e) if e.problem_type() == Some("accountDoesNotExist") => {
                if config.eab.is_some() {
                    return Err(AccountError::EabNeedsNewKey {
                        server: config.server.clone(),
                        entry: config.private_key.clone(),
                    });
                }
                tracing::info!(%issuer, server = %config.server, "registering a new ACME account with the stored key");
                let (account, _) = run(
                    "new_account",
                    builder(config)?.create_from_key(key()?, config.server.clone()),
                )
                .await
                .map_err(AccountError::Acme)?;
                // create_from_key registers without contacts.
                (account, RegistrationAction::Registered, email.is_empty())
            }
            Err(e) => return Err(acme_err("looking up the account of the stored key")(e)),
        };
        if !contacts_known {
            let contact = contacts(&email);
            let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
            run("update_account", account.update_contacts(&contact))
                .await
                .map_err(acme_err("updating the account's contact"))?;
        }
        let account = AcmeAccount::new(account, config, email.clone(), key_hash.clone());
        let registration = Registration {
            uri: account.uri().to_owned(),
            email,
            key_hash,
            action,
        };
        *slot = Some(account);
        Ok(registration)
    }

    /// The issuer's registered account, for the order and challenge controllers: from the cache,
    /// or loaded from the issuer's `status.acme.uri` and the key in its Secret (one directory
    /// request) after a restart. Never registers: an issuer whose status does not record an
    /// account for its current key gives [`AccountError::NotRegistered`].
    pub async fn get(
        &self,
        client: &Client,
        issuer: &IssuerKey,
        config: &AccountConfig,
        status: Option<&AcmeIssuerStatus>,
    ) -> Result<AcmeAccount, AccountError> {
        let uri = status
            .and_then(|s| s.uri.as_deref())
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                AccountError::NotRegistered(format!("{issuer} has no registered ACME account"))
            })?;
        let recorded_hash = status
            .and_then(|s| s.last_private_key_hash.as_deref())
            .unwrap_or_default();
        let slot = self.slot(issuer);
        let mut slot = slot.lock().await;
        if let Some(cached) = slot
            .as_ref()
            .filter(|a| a.matches(config, uri, recorded_hash))
        {
            return Ok(cached.clone());
        }
        let entry = &config.private_key;
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(client.clone(), &entry.namespace);
        let secret =
            secrets
                .get_opt(&entry.name)
                .await
                .map_err(|error| AccountError::ReadSecret {
                    entry: Box::new(entry.clone()),
                    error: Box::new(error),
                })?;
        let stored = secret
            .and_then(|s| s.data)
            .and_then(|mut d| d.remove(&entry.key))
            .map(|b| b.0)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                AccountError::NotRegistered(format!("the account key {entry} is missing"))
            })?;
        let pkcs8 = parse_account_key(&stored, entry)?;
        let key_hash = account_key_hash(pkcs8.secret_pkcs8_der());
        if key_hash != recorded_hash {
            return Err(AccountError::NotRegistered(format!(
                "the account key in {entry} changed; waiting for {issuer} to register it"
            )));
        }
        let account = run(
            "directory",
            builder(config)?.from_parts(uri.to_owned(), pkcs8.clone_key(), config.server.clone()),
        )
        .await
        .map_err(acme_err("loading the account"))?;
        let email = status
            .and_then(|s| s.last_registered_email.clone())
            .unwrap_or_default();
        let account = AcmeAccount::new(account, config, email, key_hash);
        *slot = Some(account.clone());
        Ok(account)
    }
}

fn eab_key(
    config: &AccountConfig,
    secrets: &AccountSecrets,
) -> Result<Option<ExternalAccountKey>, AccountError> {
    let Some(eab) = &config.eab else {
        return Ok(None);
    };
    let stored = secrets
        .eab_key
        .as_deref()
        .ok_or_else(|| AccountError::EabKeyMissing(eab.secret.clone()))?;
    let raw = decode_eab_key(stored, &eab.secret)?;
    Ok(Some(ExternalAccountKey::new(eab.key_id.clone(), &raw)))
}

/// Stores a generated account key in its Secret (created if missing), labelled for the
/// controller's Secret cache.
async fn store_key(client: &Client, entry: &SecretEntry, pkcs8: &[u8]) -> Result<(), AccountError> {
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.to_vec()));
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": entry.name,
            "namespace": entry.namespace,
            "labels": { FAO_LABEL: "true" },
        },
        "data": { entry.key.clone(): STANDARD.encode(pem.as_bytes()) },
    });
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &entry.namespace);
    secrets
        .patch(
            &entry.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|error| AccountError::StoreKey {
            entry: Box::new(entry.clone()),
            error: Box::new(error),
        })?;
    tracing::info!(namespace = %entry.namespace, name = %entry.name, key = %entry.key, "stored the new ACME account key");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> SecretEntry {
        SecretEntry {
            namespace: "ns".into(),
            name: "acct".into(),
            key: "tls.key".into(),
        }
    }

    #[test]
    fn p256_pkcs8_keys_are_accepted_and_hashed() {
        let (_, pkcs8) = Key::generate_pkcs8().unwrap();
        let pem = pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            pkcs8.secret_pkcs8_der().to_vec(),
        ));
        let parsed = parse_account_key(pem.as_bytes(), &entry()).unwrap();
        assert_eq!(parsed.secret_pkcs8_der(), pkcs8.secret_pkcs8_der());
        let hash = account_key_hash(parsed.secret_pkcs8_der());
        assert_eq!(STANDARD.decode(&hash).unwrap().len(), 32);
    }

    #[test]
    fn sec1_p256_keys_are_converted() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let sec1 =
            crate::pki::keys::encode_pem(&key, crate::pki::keys::KeyEncoding::Pkcs1).unwrap();
        assert!(sec1.contains("EC PRIVATE KEY"));
        let parsed = parse_account_key(sec1.as_bytes(), &entry()).unwrap();
        assert!(Key::from_pkcs8_der(parsed).is_ok());
    }

    #[test]
    fn rsa_keys_get_a_clear_error_without_key_material() {
        let key =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .unwrap();
        for encoding in [
            crate::pki::keys::KeyEncoding::Pkcs1,
            crate::pki::keys::KeyEncoding::Pkcs8,
        ] {
            let pem = crate::pki::keys::encode_pem(&key, encoding).unwrap();
            let e = parse_account_key(pem.as_bytes(), &entry()).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, AccountError::WrongKeyType { .. }), "{text}");
            assert!(text.contains("an RSA 2048-bit key"), "{text}");
            assert!(text.contains("ECDSA P-256"), "{text}");
            assert!(text.contains("delete Secret ns/acct"), "{text}");
            assert!(!text.contains("BEGIN"), "{text}");
            let body: String = pem.lines().nth(1).unwrap().chars().take(16).collect();
            assert!(!text.contains(&body), "{text}");
        }
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let e = parse_account_key(p384.serialize_pem().as_bytes(), &entry()).unwrap_err();
        assert!(e.to_string().contains("an ECDSA P-384 key"), "{e}");
        let e = parse_account_key(b"garbage", &entry()).unwrap_err();
        assert!(matches!(e, AccountError::InvalidKey { .. }), "{e}");
    }

    #[test]
    fn eab_keys_are_base64url_padded_or_not() {
        let raw = b"\xfa\xfb\xfc\xfd hmac key bytes!";
        let unpadded = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(decode_eab_key(unpadded.as_bytes(), &entry()).unwrap(), raw);
        let padded = base64::engine::general_purpose::URL_SAFE.encode(raw);
        assert!(padded.ends_with('='));
        assert_eq!(
            decode_eab_key(format!("{padded}\n").as_bytes(), &entry()).unwrap(),
            raw
        );
        let e = decode_eab_key(b"not base64url!!", &entry()).unwrap_err();
        assert!(!e.to_string().contains("base64url!!"), "{e}");
        assert!(decode_eab_key(b"", &entry()).is_err());
    }

    #[test]
    fn config_from_issuer_applies_defaults() {
        let acme: AcmeIssuer = serde_json::from_value(serde_json::json!({
            "server": "https://acme.example/dir",
            "email": "",
            "privateKeySecretRef": {"name": "acct"},
            "externalAccountBinding": {"keyID": "kid", "keySecretRef": {"name": "eab"}},
        }))
        .unwrap();
        let config = AccountConfig::from_issuer(&acme, "cert-manager");
        assert_eq!(config.email, None);
        assert_eq!(config.private_key.key, "tls.key");
        assert_eq!(config.private_key.namespace, "cert-manager");
        assert!(config.generate_key);
        let eab = config.eab.unwrap();
        assert_eq!(eab.key_id, "kid");
        assert_eq!(eab.secret.name, "eab");
        assert_eq!(contacts("a@b.example"), ["mailto:a@b.example"]);
        assert!(contacts("").is_empty());
        assert_eq!(
            host_of("https://acme.example:14000/dir").as_deref(),
            Some("acme.example:14000")
        );
    }

    #[test]
    fn secrets_debug_redacts() {
        let secrets = AccountSecrets {
            private_key_secret_exists: true,
            private_key: Some(b"-----BEGIN PRIVATE KEY-----".to_vec()),
            eab_secret_exists: true,
            eab_key: Some(b"c2VjcmV0".to_vec()),
        };
        let text = format!("{secrets:?}");
        assert!(
            !text.contains("BEGIN") && !text.contains("c2VjcmV0"),
            "{text}"
        );
    }
}
