//! Orders, authorizations, challenges and certificates, for the order and challenge
//! controllers, as plain snapshots: no instant-acme type leaves this module.
//!
//! Each account keeps the instant-acme `Order`s it works on ([`OrderCache`]), with the
//! authorizations already fetched and the last nonce, so following an order takes few requests:
//! after creating an order (2 requests plus one per authorization), accepting a challenge is one
//! request, polling an authorization or the order one each, finalizing one, and the download one.
//! After a restart an order is re-attached by its URL (`account.order(url)`, 2 requests); an
//! order is never created again.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use instant_acme::{
    AuthorizationState, AuthorizationStatus, CertificateIdentifier, ChallengeStatus, ChallengeType,
    Identifier, NewOrder, Order, OrderState, OrderStatus, Problem,
};
use sha2::{Digest, Sha256};

use super::account::AcmeAccount;
use super::client::{scoped, set_action};
use super::problem::AcmeError;
use crate::api::acme::AcmeState;

/// How many orders an account keeps in memory; the oldest are dropped first (and re-attached
/// by URL when needed again).
const MAX_CACHED_ORDERS: usize = 512;

/// What to order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewOrderRequest {
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// The ACME profile, if any.
    pub profile: Option<String>,
    /// The ARI CertID (`base64url(AKI).base64url(serial)`) of the certificate this order
    /// replaces. Dropped when the server does not offer ARI or rejects it.
    pub replaces: Option<String>,
}

/// An order as the server last described it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderSnapshot {
    pub url: String,
    pub status: AcmeState,
    pub finalize_url: String,
    /// Every authorization URL of the order, in order.
    pub authorization_urls: Vec<String>,
    /// The authorizations whose state is known (all of them after [`AcmeAccount::create_order`]
    /// or [`AcmeAccount::order_details`]), in order.
    pub authorizations: Vec<AuthorizationSnapshot>,
    pub certificate_url: Option<String>,
    /// The order's error, if the server set one.
    pub error: Option<AcmeError>,
    /// When the server asked to be polled again (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl OrderSnapshot {
    /// Whether the state of every authorization is known.
    pub fn has_all_authorizations(&self) -> bool {
        self.authorizations.len() == self.authorization_urls.len()
    }
}

/// An authorization: one identifier to prove control of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationSnapshot {
    pub url: String,
    /// The DNS name (without `*.`) or IP address.
    pub identifier: String,
    /// Whether the identifier is an IP address.
    pub ip: bool,
    pub wildcard: bool,
    pub status: AcmeState,
    pub challenges: Vec<ChallengeSnapshot>,
    /// When the server asked to be polled again.
    pub retry_after: Option<Duration>,
}

impl AuthorizationSnapshot {
    /// The challenge of an ACME type (`http-01`, `dns-01`, `tls-alpn-01`).
    pub fn challenge(&self, acme_type: &str) -> Option<&ChallengeSnapshot> {
        self.challenges.iter().find(|c| c.type_ == acme_type)
    }

    /// Why the authorization failed: the error of a challenge (of `acme_type` first).
    pub fn error(&self, acme_type: Option<&str>) -> Option<&AcmeError> {
        acme_type
            .and_then(|t| self.challenge(t))
            .and_then(|c| c.error.as_ref())
            .or_else(|| self.challenges.iter().find_map(|c| c.error.as_ref()))
    }
}

/// A challenge offered for an authorization.
#[derive(Clone, PartialEq, Eq)]
pub struct ChallengeSnapshot {
    /// The ACME type: `http-01`, `dns-01`, `tls-alpn-01`, …
    pub type_: String,
    pub url: String,
    pub token: String,
    pub status: AcmeState,
    pub error: Option<AcmeError>,
    /// `<token>.<account key thumbprint>`: the HTTP-01 response body.
    pub key_authorization: String,
    /// `base64url(sha256(key authorization))`: the DNS-01 TXT value.
    pub dns_value: String,
}

impl std::fmt::Debug for ChallengeSnapshot {
    // The key authorization is public (served over HTTP) but has no place in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeSnapshot")
            .field("type_", &self.type_)
            .field("url", &self.url)
            .field("status", &self.status)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// The outcome of asking for an order's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateOutcome {
    /// The PEM chain, leaf first.
    Issued(String),
    /// The server is still issuing; poll again (no earlier than `retry_after`, if given).
    Processing { retry_after: Option<Duration> },
}

// ---------------------------------------------------------------------------------------------
// Conversions (pure).
// ---------------------------------------------------------------------------------------------

fn order_state(status: OrderStatus) -> AcmeState {
    match status {
        OrderStatus::Pending => AcmeState::Pending,
        OrderStatus::Ready => AcmeState::Ready,
        OrderStatus::Processing => AcmeState::Processing,
        OrderStatus::Valid => AcmeState::Valid,
        OrderStatus::Invalid => AcmeState::Invalid,
    }
}

fn authorization_state(status: AuthorizationStatus) -> AcmeState {
    match status {
        AuthorizationStatus::Pending => AcmeState::Pending,
        AuthorizationStatus::Valid => AcmeState::Valid,
        AuthorizationStatus::Expired => AcmeState::Expired,
        AuthorizationStatus::Invalid
        | AuthorizationStatus::Revoked
        | AuthorizationStatus::Deactivated => AcmeState::Invalid,
    }
}

fn challenge_state(status: ChallengeStatus) -> AcmeState {
    match status {
        ChallengeStatus::Pending => AcmeState::Pending,
        ChallengeStatus::Processing => AcmeState::Processing,
        ChallengeStatus::Valid => AcmeState::Valid,
        ChallengeStatus::Invalid => AcmeState::Invalid,
    }
}

/// The wire name of a challenge type.
fn type_name(t: &ChallengeType) -> String {
    match t {
        ChallengeType::Http01 => "http-01".to_owned(),
        ChallengeType::Dns01 => "dns-01".to_owned(),
        ChallengeType::TlsAlpn01 => "tls-alpn-01".to_owned(),
        ChallengeType::DeviceAttest01 => "device-attest-01".to_owned(),
        ChallengeType::Unknown(other) => other.clone(),
        _ => "unknown".to_owned(),
    }
}

fn challenge_type(name: &str) -> ChallengeType {
    match name.to_ascii_lowercase().as_str() {
        "http-01" => ChallengeType::Http01,
        "dns-01" => ChallengeType::Dns01,
        "tls-alpn-01" => ChallengeType::TlsAlpn01,
        "device-attest-01" => ChallengeType::DeviceAttest01,
        other => ChallengeType::Unknown(other.to_owned()),
    }
}

fn problem_error(problem: &Problem) -> AcmeError {
    AcmeError::from_problem(
        problem.r#type.as_deref(),
        problem.status,
        problem.detail.as_deref(),
        None,
    )
}

/// `<token>.<thumbprint>` and its DNS-01 digest.
pub(crate) fn key_authorization(token: &str, thumbprint: &str) -> (String, String) {
    let key_authorization = format!("{token}.{thumbprint}");
    let dns_value = URL_SAFE_NO_PAD.encode(Sha256::digest(key_authorization.as_bytes()));
    (key_authorization, dns_value)
}

pub(crate) fn authorization_snapshot(
    url: &str,
    state: &AuthorizationState,
    thumbprint: &str,
    retry_after: Option<Duration>,
) -> AuthorizationSnapshot {
    let id = state.identifier();
    let (identifier, ip) = match id.identifier {
        Identifier::Dns(name) => (name.clone(), false),
        Identifier::Ip(ip) => (ip.to_string(), true),
        other => (other.authorized(false).to_string(), false),
    };
    AuthorizationSnapshot {
        url: url.to_owned(),
        identifier,
        ip,
        wildcard: state.wildcard,
        status: authorization_state(state.status),
        challenges: state
            .challenges
            .iter()
            .map(|c| {
                let (key_authorization, dns_value) = key_authorization(&c.token, thumbprint);
                ChallengeSnapshot {
                    type_: type_name(&c.r#type),
                    url: c.url.clone(),
                    token: c.token.clone(),
                    status: challenge_state(c.status),
                    error: c.error.as_ref().map(problem_error),
                    key_authorization,
                    dns_value,
                }
            })
            .collect(),
        retry_after,
    }
}

pub(crate) fn order_snapshot(
    url: &str,
    state: &OrderState,
    thumbprint: &str,
    retry_after: Option<Duration>,
) -> OrderSnapshot {
    OrderSnapshot {
        url: url.to_owned(),
        status: order_state(state.status),
        finalize_url: state.finalize.clone(),
        authorization_urls: state.authorizations.iter().map(|a| a.url.clone()).collect(),
        authorizations: state
            .authorizations
            .iter()
            .filter_map(|a| {
                a.state
                    .as_ref()
                    .map(|s| authorization_snapshot(&a.url, s, thumbprint, None))
            })
            .collect(),
        certificate_url: state.certificate.clone(),
        error: state.error.as_ref().map(problem_error),
        retry_after,
    }
}

/// An ARI CertID `base64url(AKI).base64url(serial)`.
fn certificate_identifier(cert_id: &str) -> Option<CertificateIdentifier<'static>> {
    let (aki, serial) = cert_id.trim().split_once('.')?;
    if aki.is_empty() || serial.is_empty() {
        return None;
    }
    Some(CertificateIdentifier {
        authority_key_identifier: Cow::Owned(aki.to_owned()),
        serial: Cow::Owned(serial.to_owned()),
    })
}

/// Whether the server refused the order because of its `replaces` (ARI): the order is then
/// placed again without it, as cert-manager does.
fn is_replaces_rejection(error: &instant_acme::Error) -> bool {
    match error {
        instant_acme::Error::Unsupported(_) => true,
        instant_acme::Error::Api(p) => {
            let ty = p.r#type.as_deref().unwrap_or_default();
            ty.ends_with(":alreadyReplaced")
                || (ty.ends_with(":malformed")
                    && p.detail
                        .as_deref()
                        .unwrap_or_default()
                        .to_ascii_lowercase()
                        .contains("replace"))
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The order cache.
// ---------------------------------------------------------------------------------------------

type OrderSlot = Arc<tokio::sync::Mutex<Option<Order>>>;

/// The instant-acme orders an account is working on, by URL.
#[derive(Default)]
pub(crate) struct OrderCache {
    entries: Mutex<(HashMap<String, OrderSlot>, VecDeque<String>)>,
}

impl OrderCache {
    fn slot(&self, url: &str) -> OrderSlot {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (map, age) = &mut *guard;
        if let Some(slot) = map.get(url) {
            return slot.clone();
        }
        while map.len() >= MAX_CACHED_ORDERS {
            match age.pop_front() {
                Some(oldest) => {
                    map.remove(&oldest);
                }
                None => break,
            }
        }
        let slot = OrderSlot::default();
        map.insert(url.to_owned(), slot.clone());
        age.push_back(url.to_owned());
        slot
    }

    fn remove(&self, url: &str) {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (map, age) = &mut *guard;
        map.remove(url);
        age.retain(|u| u != url);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .len()
    }
}

/// Re-attaches to an order by URL when it is not in memory. Returns whether it was loaded (its
/// state is then fresh).
async fn load(
    account: &AcmeAccount,
    slot: &mut Option<Order>,
    url: &str,
) -> Result<bool, instant_acme::Error> {
    if slot.is_some() {
        return Ok(false);
    }
    set_action("get_order");
    *slot = Some(account.inner.account.order(url.to_owned()).await?);
    Ok(true)
}

/// Fetches the state of every authorization not yet known.
async fn fetch_authorizations(order: &mut Order) -> Result<(), instant_acme::Error> {
    set_action("get_authorization");
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        authorization?;
    }
    Ok(())
}

impl AcmeAccount {
    fn failed(
        &self,
        url: &str,
        error: instant_acme::Error,
        retry_after: Option<Duration>,
    ) -> AcmeError {
        let error = AcmeError::from_acme(error, retry_after);
        if error.is_terminal() {
            // The order may be gone or in another state: re-attach next time.
            self.inner.orders.remove(url);
        }
        error
    }

    /// Places a new order. Call once per Order object: the returned URL must be persisted
    /// before anything else. The authorizations are fetched too (best effort: the snapshot
    /// lists those fetched; [`AcmeAccount::order_details`] fetches the rest).
    pub async fn create_order(
        &self,
        request: &NewOrderRequest,
    ) -> Result<OrderSnapshot, AcmeError> {
        let identifiers: Vec<Identifier> = request
            .dns_names
            .iter()
            .map(|n| Identifier::Dns(n.clone()))
            .chain(request.ip_addresses.iter().map(|ip| Identifier::Ip(*ip)))
            .collect();
        if identifiers.is_empty() {
            return Err(AcmeError::terminal(
                "the order names no DNS name or IP address",
            ));
        }
        let replaces = request.replaces.as_deref().and_then(certificate_identifier);
        let new_order = |with_replaces: bool| {
            let mut new = NewOrder::new(&identifiers);
            if let Some(profile) = request.profile.as_deref().filter(|p| !p.is_empty()) {
                new = new.profile(profile);
            }
            if let (true, Some(replaces)) = (with_replaces, replaces.clone()) {
                new = new.replaces(replaces);
            }
            new
        };
        let (mut result, mut retry_after) =
            scoped("new_order", self.inner.account.new_order(&new_order(true))).await;
        if replaces.is_some() && result.as_ref().err().is_some_and(is_replaces_rejection) {
            tracing::info!(
                error = %AcmeError::from_acme(result.err().expect("an error"), retry_after),
                "ordering again without ARI replaces"
            );
            (result, retry_after) =
                scoped("new_order", self.inner.account.new_order(&new_order(false))).await;
        }
        let mut order = result.map_err(|e| AcmeError::from_acme(e, retry_after))?;
        let url = order.url().to_owned();
        tracing::debug!(order_url = %url, "new-order accepted by the server");
        let (fetched, _) = scoped("get_authorization", fetch_authorizations(&mut order)).await;
        if let Err(e) = fetched {
            tracing::warn!(order_url = %url, error = %AcmeError::from_acme(e, None), "could not fetch the order's authorizations yet");
        }
        let snapshot = order_snapshot(&url, order.state(), self.thumbprint(), retry_after);
        *self.inner.orders.slot(&url).lock().await = Some(order);
        Ok(snapshot)
    }

    /// The order with the state of every authorization (fetching those not known). Does not
    /// refresh the order itself when it is in memory.
    pub async fn order_details(&self, url: &str) -> Result<OrderSnapshot, AcmeError> {
        let slot = self.inner.orders.slot(url);
        let mut slot = slot.lock().await;
        let (result, retry_after) = scoped("get_order", async {
            load(self, &mut slot, url).await?;
            fetch_authorizations(slot.as_mut().expect("loaded")).await
        })
        .await;
        match result {
            Ok(()) => {
                let order = slot.as_mut().expect("loaded");
                Ok(order_snapshot(
                    url,
                    order.state(),
                    self.thumbprint(),
                    retry_after,
                ))
            }
            Err(e) => {
                drop(slot);
                Err(self.failed(url, e, retry_after))
            }
        }
    }

    /// The order's current state, from the server (one request). Authorizations are listed as
    /// far as known.
    pub async fn refresh_order(&self, url: &str) -> Result<OrderSnapshot, AcmeError> {
        let slot = self.inner.orders.slot(url);
        let mut slot = slot.lock().await;
        let (result, retry_after) = scoped("get_order", async {
            if !load(self, &mut slot, url).await? {
                slot.as_mut().expect("loaded").refresh().await?;
            }
            Ok::<_, instant_acme::Error>(())
        })
        .await;
        match result {
            Ok(()) => {
                let order = slot.as_mut().expect("loaded");
                Ok(order_snapshot(
                    url,
                    order.state(),
                    self.thumbprint(),
                    retry_after,
                ))
            }
            Err(e) => {
                drop(slot);
                Err(self.failed(url, e, retry_after))
            }
        }
    }

    /// Tells the server that the challenge of `acme_type` (`http-01`, …) of an authorization of
    /// the order is ready to be validated.
    pub async fn accept_challenge(
        &self,
        order_url: &str,
        authorization_url: &str,
        acme_type: &str,
    ) -> Result<(), AcmeError> {
        let slot = self.inner.orders.slot(order_url);
        let mut slot = slot.lock().await;
        let wanted = challenge_type(acme_type);
        let (result, retry_after) = scoped("accept_challenge", async {
            load(self, &mut slot, order_url).await?;
            let order = slot.as_mut().expect("loaded");
            set_action("get_authorization");
            let mut authorizations = order.authorizations();
            while let Some(authorization) = authorizations.next().await {
                let mut authorization = authorization?;
                if authorization.url() != authorization_url {
                    continue;
                }
                let Some(mut challenge) = authorization.challenge(wanted.clone()) else {
                    return Ok(Err(AcmeError::terminal(format!(
                        "the authorization {authorization_url} offers no {acme_type} challenge"
                    ))));
                };
                set_action("accept_challenge");
                challenge.set_ready().await?;
                return Ok(Ok(()));
            }
            Ok(Err(AcmeError::terminal(format!(
                "the order {order_url} has no authorization {authorization_url}"
            ))))
        })
        .await;
        match result {
            Ok(outcome) => outcome,
            Err(e) => {
                drop(slot);
                Err(self.failed(order_url, e, retry_after))
            }
        }
    }

    /// The authorization's current state, from the server (one request when the order is in
    /// memory).
    pub async fn authorization(
        &self,
        order_url: &str,
        authorization_url: &str,
    ) -> Result<AuthorizationSnapshot, AcmeError> {
        let slot = self.inner.orders.slot(order_url);
        let mut slot = slot.lock().await;
        let thumbprint = self.thumbprint().to_owned();
        let (result, retry_after) = scoped("get_authorization", async {
            load(self, &mut slot, order_url).await?;
            let order = slot.as_mut().expect("loaded");
            let known = order
                .state()
                .authorizations
                .iter()
                .find(|a| a.url == authorization_url)
                .map(|a| a.state.is_some());
            let Some(known) = known else {
                return Ok(None);
            };
            set_action("get_authorization");
            let mut authorizations = order.authorizations();
            while let Some(authorization) = authorizations.next().await {
                let mut authorization = authorization?;
                if authorization.url() != authorization_url {
                    continue;
                }
                if known {
                    authorization.refresh().await?;
                }
                return Ok(Some(authorization_snapshot(
                    authorization_url,
                    &authorization,
                    &thumbprint,
                    None,
                )));
            }
            Ok(None)
        })
        .await;
        match result {
            Ok(Some(mut snapshot)) => {
                snapshot.retry_after = retry_after;
                Ok(snapshot)
            }
            Ok(None) => Err(AcmeError::terminal(format!(
                "the order {order_url} has no authorization {authorization_url}"
            ))),
            Err(e) => {
                drop(slot);
                Err(self.failed(order_url, e, retry_after))
            }
        }
    }

    /// Finalizes a `ready` order with a DER CSR.
    pub async fn finalize(
        &self,
        order_url: &str,
        csr_der: &[u8],
    ) -> Result<OrderSnapshot, AcmeError> {
        let slot = self.inner.orders.slot(order_url);
        let mut slot = slot.lock().await;
        let (result, retry_after) = scoped("finalize", async {
            load(self, &mut slot, order_url).await?;
            set_action("finalize");
            slot.as_mut().expect("loaded").finalize_csr(csr_der).await
        })
        .await;
        match result {
            Ok(()) => {
                let order = slot.as_mut().expect("loaded");
                tracing::info!(%order_url, "finalized ACME order");
                Ok(order_snapshot(
                    order_url,
                    order.state(),
                    self.thumbprint(),
                    retry_after,
                ))
            }
            Err(e) => {
                drop(slot);
                Err(self.failed(order_url, e, retry_after))
            }
        }
    }

    /// The certificate chain of a `processing` or `valid` order: polls a processing order once,
    /// downloads the chain of a valid one. Once issued, the order is dropped from memory.
    pub async fn certificate(&self, order_url: &str) -> Result<CertificateOutcome, AcmeError> {
        let slot = self.inner.orders.slot(order_url);
        let mut slot = slot.lock().await;
        let (result, retry_after) = scoped("get_order", async {
            load(self, &mut slot, order_url).await?;
            let order = slot.as_mut().expect("loaded");
            if !matches!(
                order.state().status,
                OrderStatus::Processing | OrderStatus::Valid
            ) {
                // The cached state is stale (e.g. `ready` before finalizing elsewhere).
                order.refresh().await?;
            }
            order.certificate().await
        })
        .await;
        match result {
            Ok(Some(chain)) => {
                drop(slot);
                self.inner.orders.remove(order_url);
                tracing::info!(%order_url, "downloaded the certificate chain");
                Ok(CertificateOutcome::Issued(chain))
            }
            Ok(None) => Ok(CertificateOutcome::Processing { retry_after }),
            Err(e) => {
                drop(slot);
                Err(self.failed(order_url, e, retry_after))
            }
        }
    }

    /// Drops an order from memory (its Order object is final or gone).
    pub fn forget_order(&self, order_url: &str) {
        self.inner.orders.remove(order_url);
    }

    /// How many orders the account keeps in memory.
    pub fn cached_orders(&self) -> usize {
        self.inner.orders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THUMBPRINT: &str = "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

    fn order_fixture() -> OrderState {
        serde_json::from_value(serde_json::json!({
            "status": "pending",
            "expires": "2026-01-08T00:00:00Z",
            "identifiers": [{"type": "dns", "value": "example.com"}, {"type": "dns", "value": "*.example.com"}],
            "authorizations": ["https://acme.example/authz/1", "https://acme.example/authz/2"],
            "finalize": "https://acme.example/finalize/7",
            "profile": "shortlived"
        }))
        .unwrap()
    }

    fn authorization_fixture() -> AuthorizationState {
        serde_json::from_value(serde_json::json!({
            "identifier": {"type": "dns", "value": "example.com"},
            "status": "invalid",
            "wildcard": true,
            "challenges": [
                {"type": "http-01", "url": "https://acme.example/chall/1", "token": "tok-1", "status": "pending"},
                {"type": "dns-01", "url": "https://acme.example/chall/2", "token": "tok-1", "status": "invalid",
                 "error": {"type": "urn:ietf:params:acme:error:dns", "detail": "no TXT record found at _acme-challenge.example.com", "status": 400}},
                {"type": "tls-alpn-01", "url": "https://acme.example/chall/3", "token": "tok-1", "status": "pending"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn order_states_become_snapshots() {
        let state = order_fixture();
        let snapshot = order_snapshot(
            "https://acme.example/order/7",
            &state,
            THUMBPRINT,
            Some(Duration::from_secs(3)),
        );
        assert_eq!(snapshot.status, AcmeState::Pending);
        assert_eq!(snapshot.finalize_url, "https://acme.example/finalize/7");
        assert_eq!(snapshot.authorization_urls.len(), 2);
        assert!(snapshot.authorizations.is_empty());
        assert!(!snapshot.has_all_authorizations());
        assert_eq!(snapshot.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(snapshot.error, None);

        let invalid: OrderState = serde_json::from_value(serde_json::json!({
            "status": "invalid",
            "authorizations": [],
            "finalize": "https://acme.example/finalize/8",
            "error": {"type": "urn:ietf:params:acme:error:unauthorized", "detail": "authorization failed", "status": 403}
        }))
        .unwrap();
        let snapshot = order_snapshot("u", &invalid, THUMBPRINT, None);
        assert_eq!(snapshot.status, AcmeState::Invalid);
        assert_eq!(
            snapshot.error.unwrap().to_string(),
            "403 urn:ietf:params:acme:error:unauthorized: authorization failed"
        );
    }

    #[test]
    fn authorizations_carry_key_authorizations_and_errors() {
        let snapshot = authorization_snapshot(
            "https://acme.example/authz/1",
            &authorization_fixture(),
            THUMBPRINT,
            None,
        );
        assert_eq!(snapshot.identifier, "example.com");
        assert!(snapshot.wildcard && !snapshot.ip);
        assert_eq!(snapshot.status, AcmeState::Invalid);
        let http = snapshot.challenge("http-01").unwrap();
        assert_eq!(http.key_authorization, format!("tok-1.{THUMBPRINT}"));
        assert_eq!(http.status, AcmeState::Pending);
        let dns = snapshot.challenge("dns-01").unwrap();
        assert_eq!(dns.dns_value.len(), 43);
        assert!(!dns.dns_value.contains('='));
        assert_eq!(
            snapshot.error(Some("http-01")).unwrap().to_string(),
            "400 urn:ietf:params:acme:error:dns: no TXT record found at _acme-challenge.example.com"
        );
        assert!(snapshot.challenge("tls-alpn-01").is_some());
        assert!(
            !format!("{http:?}").contains("tok-1."),
            "Debug leaks the key authorization"
        );

        let ip: AuthorizationState = serde_json::from_value(serde_json::json!({
            "identifier": {"type": "ip", "value": "192.0.2.10"}, "status": "valid", "challenges": []
        }))
        .unwrap();
        let snapshot = authorization_snapshot("u", &ip, THUMBPRINT, None);
        assert_eq!(
            (snapshot.identifier.as_str(), snapshot.ip, snapshot.status),
            ("192.0.2.10", true, AcmeState::Valid)
        );
    }

    #[test]
    fn dns_value_is_the_rfc_8555_digest() {
        // RFC 8555 §8.4 computes the TXT value as base64url(SHA-256(keyAuthorization)).
        let (ka, dns) = key_authorization(
            "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
            "nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ",
        );
        assert_eq!(
            ka,
            "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ"
        );
        assert_eq!(dns, URL_SAFE_NO_PAD.encode(Sha256::digest(ka.as_bytes())));
    }

    #[test]
    fn challenge_types_and_cert_ids() {
        for name in [
            "http-01",
            "dns-01",
            "tls-alpn-01",
            "device-attest-01",
            "x-new-01",
        ] {
            assert_eq!(type_name(&challenge_type(name)), name);
        }
        assert_eq!(type_name(&challenge_type("HTTP-01")), "http-01");
        let id = certificate_identifier("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap();
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
        assert!(certificate_identifier("nodot").is_none());
        assert!(certificate_identifier(".x").is_none());
        assert!(is_replaces_rejection(&instant_acme::Error::Unsupported(
            "ACME renewal information (ARI)"
        )));
        let rejected: Problem = serde_json::from_str(
            r#"{"type":"urn:ietf:params:acme:error:alreadyReplaced","detail":"already replaced","status":409}"#,
        )
        .unwrap();
        assert!(is_replaces_rejection(&instant_acme::Error::Api(rejected)));
        let other: Problem = serde_json::from_str(
            r#"{"type":"urn:ietf:params:acme:error:rateLimited","status":429}"#,
        )
        .unwrap();
        assert!(!is_replaces_rejection(&instant_acme::Error::Api(other)));
    }

    #[test]
    fn the_order_cache_is_bounded() {
        let cache = OrderCache::default();
        for i in 0..(MAX_CACHED_ORDERS + 10) {
            let _ = cache.slot(&format!("https://acme.example/order/{i}"));
        }
        assert_eq!(cache.len(), MAX_CACHED_ORDERS);
        cache.remove("https://acme.example/order/500");
        assert_eq!(cache.len(), MAX_CACHED_ORDERS - 1);
    }
}
