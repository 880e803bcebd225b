//! The only code that touches instant-acme.
//!
//! * [`client`]: the HTTP client (issuer trust, timeouts, `Retry-After`, request metrics);
//! * [`account`]: registering or finding an issuer's account, its key in a Secret, EAB;
//! * [`orders`]: orders, authorizations, challenges and certificates, as plain snapshots;
//! * [`problem`]: errors, classified into retryable, rate limited and terminal;
//! * [`metrics`]: the request counters.
//!
//! [`AccountCache`] keeps one registered account per issuer, so the order and challenge
//! controllers reuse the account the issuer controller registered, and each account keeps the
//! orders it is working on (with their fetched authorizations and nonce), so that following an
//! order through its life takes as few ACME requests as possible.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

pub mod account;
pub mod client;
pub mod metrics;
pub mod orders;
pub mod problem;

pub use account::{
    AccountConfig, AccountError, AccountSecrets, AcmeAccount, EabConfig, Registration,
    RegistrationAction, SecretEntry, account_key_hash,
};
pub use client::TlsOptions;
pub use orders::{
    AuthorizationSnapshot, CertificateOutcome, ChallengeSnapshot, NewOrderRequest, OrderSnapshot,
};
pub use problem::{AcmeError, ErrorClass};

/// The kind of an issuer that owns an account.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum IssuerKind {
    Issuer,
    ClusterIssuer,
}

/// Identifies the issuer an account belongs to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct IssuerKey {
    pub kind: IssuerKind,
    /// Empty for a ClusterIssuer.
    pub namespace: String,
    pub name: String,
}

impl IssuerKey {
    pub fn issuer(namespace: impl Into<String>, name: impl Into<String>) -> IssuerKey {
        IssuerKey {
            kind: IssuerKind::Issuer,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn cluster_issuer(name: impl Into<String>) -> IssuerKey {
        IssuerKey {
            kind: IssuerKind::ClusterIssuer,
            namespace: String::new(),
            name: name.into(),
        }
    }
}

impl fmt::Display for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            IssuerKind::Issuer => write!(f, "Issuer {}/{}", self.namespace, self.name),
            IssuerKind::ClusterIssuer => write!(f, "ClusterIssuer {}", self.name),
        }
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<AcmeAccount>>>;

/// ACME accounts by issuer, so that orders and challenges reuse one registered account.
///
/// An entry remembers the server, account URL, key hash, email and TLS settings it was made
/// with; a lookup whose issuer no longer matches them loads the account again. Lookups of one
/// issuer are serialized, so concurrent reconciles load an account once.
#[derive(Default)]
pub struct AccountCache {
    slots: Mutex<HashMap<IssuerKey, Slot>>,
}

impl AccountCache {
    fn slot(&self, issuer: &IssuerKey) -> Slot {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(issuer.clone())
            .or_default()
            .clone()
    }

    /// Drops the account of an issuer (deleted, or no longer ACME).
    pub fn forget(&self, issuer: &IssuerKey) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(issuer);
    }

    /// The cached account of an issuer, if any, without loading it.
    pub fn cached(&self, issuer: &IssuerKey) -> Option<AcmeAccount> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(issuer)
            .cloned()?;
        slot.try_lock().ok().and_then(|s| s.clone())
    }
}
