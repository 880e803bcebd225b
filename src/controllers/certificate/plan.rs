//! What the Certificate controller should do, as a pure function of what it observed.
//!
//! One pass of [`plan`] plays cert-manager's certificates-trigger, -key-manager,
//! -request-manager, -issuing, -readiness and -revision-manager controllers in turn:
//!
//! * not issuing: delete leftover next-private-key Secrets; evaluate the trigger policy chain
//!   and, unless a failed issuance is still backing off, set `Issuing=True` with the first
//!   violation's reason; otherwise re-apply drifted Secret metadata and wake at the renewal time;
//! * issuing (`Issuing=True`, set by the trigger or by `cmctl renew`): make sure exactly one
//!   next private key exists and matches the spec, then exactly one CertificateRequest of the
//!   next revision that matches the spec and the key, then act on its outcome: write the Secret
//!   and bump the revision, or record the failure and back off;
//! * always: `Ready` from the readiness policy chain, `notBefore`/`notAfter`/`renewalTime` from
//!   the Secret, and pruning of CertificateRequests beyond `revisionHistoryLimit`.
//!
//! No Kubernetes calls, no clock, no randomness: the inputs are facts already parsed from the
//! observed objects ([`super`] gathers them), the output is a desired status plus steps.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::certificate::{
    Certificate, CertificateCondition, CertificateSpec, CertificateStatus, PrivateKeyRotationPolicy,
};
use crate::api::meta::ConditionStatus;
use crate::controllers::conditions::{self, Condition};
use crate::pki::csr::{certificate_violations, format_violations};
use crate::pki::keys::{KeySpec, private_key_violations};
use crate::pki::renewal::{self, parse_go_duration};
use crate::pki::x509::CertInfo;

/// Condition reasons (cert-manager's `policies/constants.go` and the issuing controller).
pub mod reason {
    pub const DOES_NOT_EXIST: &str = "DoesNotExist";
    pub const MISSING_DATA: &str = "MissingData";
    pub const INVALID_KEY_PAIR: &str = "InvalidKeyPair";
    pub const INVALID_CERTIFICATE: &str = "InvalidCertificate";
    pub const INVALID_CERTIFICATE_REQUEST: &str = "InvalidCertificateRequest";
    pub const SECRET_MISMATCH: &str = "SecretMismatch";
    pub const INCORRECT_ISSUER: &str = "IncorrectIssuer";
    pub const INCORRECT_CERTIFICATE: &str = "IncorrectCertificate";
    pub const REQUEST_CHANGED: &str = "RequestChanged";
    pub const RENEWING: &str = "Renewing";
    pub const EXPIRED: &str = "Expired";
    /// What `cmctl renew` writes into `Issuing=True`.
    pub const MANUALLY_TRIGGERED: &str = "ManuallyTriggered";
    pub const READY: &str = "Ready";
}

pub const READY_MESSAGE: &str = "Certificate is up to date and has not expired";
pub const ISSUED_MESSAGE: &str = "The certificate has been successfully issued";
pub const FAILED_PREFIX: &str =
    "The certificate request has failed to complete and will be retried: ";

/// How long a Certificate that shares its Secret with an older Certificate waits before it
/// looks again (cert-manager: 3 minutes).
pub const NOT_OWNER_RECHECK: Duration = Duration::from_secs(180);
/// The longest single sleep (tokio's timer wheel tops out at about two years); a Certificate
/// whose renewal is further away wakes once a month to schedule the rest.
pub const MAX_SLEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// A failed policy check: a condition reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub reason: &'static str,
    pub message: String,
}

fn violation(reason: &'static str, message: impl Into<String>) -> Option<Violation> {
    Some(Violation {
        reason,
        message: message.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// Facts.
// ---------------------------------------------------------------------------------------------

/// A private key as found in a Secret. The key material itself stays with the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyState {
    Missing,
    /// Why it could not be parsed (never the key).
    Invalid(String),
    Valid {
        /// DER SubjectPublicKeyInfo.
        public_key_der: Vec<u8>,
        spec: Option<KeySpec>,
    },
}

/// A certificate as found in a Secret or a CertificateRequest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertState {
    Missing,
    Invalid(String),
    Valid(Box<CertInfo>),
}

/// The target Secret, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFacts {
    /// Whether `data` is set at all.
    pub has_data: bool,
    pub key: KeyState,
    pub cert: CertState,
    pub issuer_name: Option<String>,
    pub issuer_kind: Option<String>,
    pub issuer_group: Option<String>,
    /// `cert-manager.io/certificate-name`.
    pub certificate_name: Option<String>,
    /// What differs between the Secret's labels, annotations and output formats and what
    /// certsmith would write for the certificate it holds; `None` when up to date.
    pub drift: Option<String>,
}

/// The outcome of a CertificateRequest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestState {
    Pending,
    /// `Ready=True`: the leaf of `status.certificate`.
    Issued(CertState),
    /// `Ready=False` reason `Failed`, or `Denied`, or `InvalidRequest`: the reason and message
    /// of that condition, and `status.failureTime`.
    Failed {
        reason: String,
        message: String,
        failed_at: Option<Timestamp>,
    },
}

/// A CertificateRequest owned by the Certificate, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    pub name: String,
    /// `cert-manager.io/certificate-revision`; `None` when missing or not a number.
    pub revision: Option<i64>,
    pub created: Option<Timestamp>,
    /// The CSR's public key, or why the CSR cannot be read.
    pub public_key_der: Result<Vec<u8>, String>,
    /// The spec fields the request does not match (cert-manager's `RequestMatchesSpec`), or
    /// why the CSR cannot be read.
    pub mismatches: Result<Vec<String>, String>,
    pub state: RequestState,
}

impl RequestFacts {
    fn matches_spec(&self) -> bool {
        self.mismatches.as_ref().is_ok_and(Vec::is_empty)
    }
}

/// A next-private-key Secret owned by the Certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextKeyFacts {
    pub name: String,
    pub key: KeyState,
}

/// Everything [`plan`] decides on.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub certificate: &'a Certificate,
    /// `None`: the Secret does not exist.
    pub secret: Option<&'a SecretFacts>,
    pub requests: &'a [RequestFacts],
    pub next_keys: &'a [NextKeyFacts],
    /// `false` when an older Certificate in the namespace names the same Secret.
    pub owns_secret: bool,
    pub now: Timestamp,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

// ---------------------------------------------------------------------------------------------
// Output.
// ---------------------------------------------------------------------------------------------

/// A side effect, applied in order before the status is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Delete these next-private-key Secrets.
    DeleteKeySecrets(Vec<String>),
    /// Create the next-private-key Secret: copy the key of the target Secret (rotation policy
    /// `Never`, key up to date) or generate one. The caller records its name in
    /// `status.nextPrivateKeySecretName`.
    CreateNextKey {
        reuse_existing: bool,
    },
    /// Create the CertificateRequest for `revision` with the key in `key_secret`.
    CreateRequest {
        name: String,
        revision: i64,
        key_secret: String,
    },
    DeleteRequests(Vec<String>),
    /// Write the target Secret from the issued request and the next private key.
    WriteSecret {
        request: String,
        key_secret: String,
    },
    /// Re-apply the target Secret from its own certificate and key (metadata drift).
    RewriteSecret,
}

/// A Kubernetes Event on the Certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The one structured log record of an issuance outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    /// `issued`, `renewed` or `failed`.
    pub event: &'static str,
    pub revision: i64,
    pub serial: Option<String>,
    pub not_after: Option<Timestamp>,
    pub dns_names: Vec<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The status to write (written only if it differs from the observed one).
    pub status: CertificateStatus,
    pub steps: Vec<Step>,
    pub events: Vec<PlannedEvent>,
    pub audit: Option<Audit>,
    /// When to look again without an event; `None`: only on an event.
    pub requeue_after: Option<Duration>,
}

// ---------------------------------------------------------------------------------------------
// Naming.
// ---------------------------------------------------------------------------------------------

/// cert-manager's `DNSSafeShortenToNCharacters`: at most `max` bytes, ending in an
/// alphanumeric character.
pub fn dns_safe_shorten(name: &str, max: usize) -> &str {
    if name.len() < max {
        return name;
    }
    let cut = &name[..max.min(name.len())];
    match cut.rfind(|c: char| c.is_ascii_alphanumeric()) {
        Some(i) => &cut[..=i],
        None => "",
    }
}

/// cert-manager's StableCertificateRequestName: `<certificate>-<revision>`; Certificate names
/// longer than 233 characters become their first 168 characters plus a SHA-256 of the name.
pub fn request_name(certificate: &str, revision: i64) -> String {
    use sha2::Digest;
    const MAX: usize = 233;
    let base = if certificate.len() <= MAX {
        certificate.to_owned()
    } else {
        let hash = sha2::Sha256::digest(certificate.as_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let prefix = dns_safe_shorten(certificate, MAX - hex.len() - 1);
        if prefix.is_empty() {
            hex
        } else {
            format!("{prefix}-{hex}")
        }
    };
    format!("{base}-{revision}")
}

// ---------------------------------------------------------------------------------------------
// Time helpers.
// ---------------------------------------------------------------------------------------------

/// Go's `time.Time.String()` for a UTC instant, as cert-manager's messages print
/// `status.renewalTime`: `2026-01-02 15:04:05 +0000 UTC`.
pub fn go_time_string(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()
}

/// Go's RFC 1123 layout in UTC: `Mon, 02 Jan 2006 15:04:05 UTC`.
pub fn rfc1123(at: Timestamp) -> String {
    at.strftime("%a, %d %b %Y %H:%M:%S UTC").to_string()
}

/// When the certificate is due for renewal, per `renewBefore` / `renewBeforePercentage` / 2/3
/// of its lifetime; `None` with `renewal.policy: Disabled`.
pub fn renewal_time(
    spec: &CertificateSpec,
    not_before: Timestamp,
    not_after: Timestamp,
) -> Option<Timestamp> {
    if spec.renewal_disabled() {
        return None;
    }
    let policy = renewal::RenewalPolicy {
        renew_before: spec
            .renew_before
            .as_deref()
            .and_then(|d| parse_go_duration(d).ok())
            .filter(|d| d.is_positive()),
        renew_before_percentage: spec.renew_before_percentage,
    };
    Some(renewal::renewal_time(not_before, not_after, policy))
}

/// `min * 2^(attempts-1)`, at least `min`, at most `max` (cert-manager: 1h and 32h).
pub fn backoff_delay(attempts: i64, min: Duration, max: Duration) -> Duration {
    let exponent = attempts.clamp(1, 64) as u32 - 1;
    let factor = 1u32.checked_shl(exponent.min(31)).unwrap_or(u32::MAX);
    let delay = if exponent >= 31 {
        max
    } else {
        min.saturating_mul(factor)
    };
    delay.min(max).max(min.min(max))
}

/// Until when a failed issuance keeps the trigger from firing again, or `None` when it may
/// fire now. A spec change since the failure (the next revision's request no longer matches)
/// lifts the backoff at once, as in cert-manager.
pub fn backoff_until(
    status: &CertificateStatus,
    next_request_matches: Option<bool>,
    now: Timestamp,
    min: Duration,
    max: Duration,
) -> Option<Timestamp> {
    let last_failure = status.last_failure_time.as_ref()?.0;
    if next_request_matches == Some(false) {
        return None;
    }
    let delay = backoff_delay(status.failed_issuance_attempts.unwrap_or(1), min, max);
    let until = last_failure + SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
    (now < until).then_some(until)
}

fn duration_until(at: Timestamp, now: Timestamp) -> Duration {
    let secs = at.as_second() - now.as_second();
    let nanos = at.subsec_nanosecond() - now.subsec_nanosecond();
    let total = SignedDuration::new(secs, nanos);
    // Never zero: a past instant is looked at again in a second, not in a tight loop.
    Duration::try_from(total)
        .unwrap_or_default()
        .max(Duration::from_secs(1))
}

// ---------------------------------------------------------------------------------------------
// Policy chains.
// ---------------------------------------------------------------------------------------------

/// Which policy chain to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// Should a new certificate be issued?
    Trigger,
    /// Is the Certificate `Ready`?
    Readiness,
}

fn kind_or_default(kind: Option<&str>) -> &str {
    match kind {
        None | Some("") => "Issuer",
        Some(kind) => kind,
    }
}

fn group_or_default(group: Option<&str>) -> &str {
    match group {
        None | Some("") => "cert-manager.io",
        Some(group) => group,
    }
}

/// cert-manager's policy chains, in its order: the Secret exists, has data, holds a valid key
/// pair, was issued by the referenced issuer for this Certificate, its key matches the spec and
/// the current request, the current request (or, without one, the certificate) matches the
/// spec; then `Expired` and, for the trigger chain, `Renewing`.
pub fn evaluate(
    chain: Chain,
    certificate: &Certificate,
    secret: Option<&SecretFacts>,
    current_request: Option<&RequestFacts>,
    now: Timestamp,
) -> Option<Violation> {
    let spec = &certificate.spec;
    let Some(secret) = secret else {
        return violation(
            reason::DOES_NOT_EXIST,
            "Issuing certificate as Secret does not exist",
        );
    };
    if !secret.has_data {
        return violation(
            reason::MISSING_DATA,
            "Issuing certificate as Secret does not contain any data",
        );
    }
    if secret.key == KeyState::Missing {
        return violation(
            reason::MISSING_DATA,
            "Issuing certificate as Secret does not contain a private key",
        );
    }
    if secret.cert == CertState::Missing {
        return violation(
            reason::MISSING_DATA,
            "Issuing certificate as Secret does not contain a certificate",
        );
    }
    let (key_der, key_spec) = match &secret.key {
        KeyState::Invalid(e) => {
            return violation(
                reason::INVALID_KEY_PAIR,
                format!("Issuing certificate as Secret contains invalid private key data: {e}"),
            );
        }
        KeyState::Valid {
            public_key_der,
            spec,
        } => (public_key_der, *spec),
        KeyState::Missing => unreachable!("handled above"),
    };
    let cert = match &secret.cert {
        CertState::Invalid(e) => {
            return violation(
                reason::INVALID_CERTIFICATE,
                format!("Issuing certificate as Secret contains an invalid certificate: {e}"),
            );
        }
        CertState::Valid(cert) => cert,
        CertState::Missing => unreachable!("handled above"),
    };
    if !cert.has_public_key(key_der) {
        return violation(
            reason::INVALID_KEY_PAIR,
            "Issuing certificate as Secret contains a private key that does not match the certificate",
        );
    }
    let any_issuer_annotation = secret.issuer_name.is_some()
        || secret.issuer_kind.is_some()
        || secret.issuer_group.is_some();
    if any_issuer_annotation {
        let name = secret.issuer_name.as_deref().unwrap_or_default();
        let kind = kind_or_default(secret.issuer_kind.as_deref());
        let group = group_or_default(secret.issuer_group.as_deref());
        if name != spec.issuer_ref.name
            || kind != spec.issuer_ref.kind_or_default()
            || group != spec.issuer_ref.group_or_default()
        {
            return violation(
                reason::INCORRECT_ISSUER,
                format!(
                    "Issuing certificate as Secret was previously issued by \"{kind}.{group}/{name}\""
                ),
            );
        }
    }
    if let Some(name) = &secret.certificate_name
        && Some(name.as_str()) != certificate.metadata.name.as_deref()
    {
        return violation(
            reason::INCORRECT_CERTIFICATE,
            format!(
                "Secret was issued for \"{name}\". If this message is not transient, you might \
                 have two conflicting Certificates pointing to the same secret."
            ),
        );
    }
    let key_violations = private_key_violations(key_spec, spec);
    if !key_violations.is_empty() {
        return violation(
            reason::SECRET_MISMATCH,
            format!(
                "Existing private key is not up to date for spec: {}",
                format_violations(&key_violations)
            ),
        );
    }
    match current_request {
        Some(request) => {
            match &request.public_key_der {
                Err(e) => {
                    return violation(
                        reason::INVALID_CERTIFICATE_REQUEST,
                        format!("Failed to decode current CertificateRequest: {e}"),
                    );
                }
                Ok(der) if der != key_der => {
                    return violation(
                        reason::SECRET_MISMATCH,
                        "Secret contains a private key that does not match the current CertificateRequest",
                    );
                }
                Ok(_) => {}
            }
            // An unreadable request does not trigger: the certificate may still be good.
            if let Ok(mismatches) = &request.mismatches
                && !mismatches.is_empty()
            {
                return violation(
                    reason::REQUEST_CHANGED,
                    format!(
                        "Fields on existing CertificateRequest resource not up to date: {}",
                        format_violations(mismatches)
                    ),
                );
            }
        }
        None => {
            let mismatches = certificate_violations(cert, spec);
            if !mismatches.is_empty() {
                return violation(
                    reason::SECRET_MISMATCH,
                    format!(
                        "Issuing certificate as Existing issued Secret is not up to date for spec: {}",
                        format_violations(&mismatches)
                    ),
                );
            }
        }
    }
    let renewal_disabled = spec.renewal_disabled();
    if !(chain == Chain::Trigger && renewal_disabled) && now > cert.not_after {
        return violation(
            reason::EXPIRED,
            format!("Certificate expired on {}", rfc1123(cert.not_after)),
        );
    }
    if chain == Chain::Trigger
        && let Some(at) = renewal_time(spec, cert.not_before, cert.not_after)
        && at <= now
    {
        let scheduled = certificate
            .status
            .as_ref()
            .and_then(|s| s.renewal_time.as_ref())
            .map_or(at, |t| t.0);
        return violation(
            reason::RENEWING,
            format!(
                "Renewing certificate as renewal was scheduled at {}",
                go_time_string(scheduled)
            ),
        );
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Revision history.
// ---------------------------------------------------------------------------------------------

/// The requests to delete: those without a valid revision annotation, and those of revisions
/// up to the current one beyond the newest `limit` (at least 1). Requests of later revisions
/// (an issuance in progress) are kept.
pub fn requests_to_prune(
    requests: &[RequestFacts],
    current_revision: Option<i64>,
    limit: i32,
) -> Vec<String> {
    let mut prune: Vec<String> = requests
        .iter()
        .filter(|r| r.revision.is_none())
        .map(|r| r.name.clone())
        .collect();
    if let Some(current) = current_revision {
        let mut history: Vec<&RequestFacts> = requests
            .iter()
            .filter(|r| r.revision.is_some_and(|rev| rev <= current))
            .collect();
        history.sort_by(|a, b| {
            b.revision
                .cmp(&a.revision)
                .then_with(|| a.name.cmp(&b.name))
        });
        let keep = usize::try_from(limit.max(1)).unwrap_or(1);
        prune.extend(history.into_iter().skip(keep).map(|r| r.name.clone()));
    }
    prune
}

// ---------------------------------------------------------------------------------------------
// The plan.
// ---------------------------------------------------------------------------------------------

fn set_condition(
    conditions: &mut Vec<CertificateCondition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    conditions::set(
        conditions,
        CertificateCondition::new(type_, status, reason, message, generation),
        Time(now),
    );
}

fn is_true(conditions: &[CertificateCondition], type_: &str) -> bool {
    conditions::find(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True)
}

/// Decides one reconcile of a Certificate. See the module documentation.
pub fn plan(input: &Inputs<'_>) -> Plan {
    let certificate = input.certificate;
    let spec = &certificate.spec;
    let generation = certificate.metadata.generation;
    let now = input.now;

    let mut status = certificate.status.clone().unwrap_or_default();
    let mut conds = status.conditions.take().unwrap_or_default();
    let mut out = Plan::default();
    let mut wake: Vec<Duration> = vec![];

    let current_revision = status.revision;
    let current_request =
        current_revision.and_then(|rev| input.requests.iter().find(|r| r.revision == Some(rev)));
    let next_revision = current_revision.unwrap_or(0) + 1;

    // Readiness, from the Secret as it is now (overridden below after a successful issuance).
    let readiness = evaluate(
        Chain::Readiness,
        certificate,
        input.secret,
        current_request,
        now,
    );
    let secret_cert = input.secret.and_then(|s| match &s.cert {
        CertState::Valid(cert) => Some(cert.as_ref().clone()),
        _ => None,
    });
    let mut issued_cert: Option<CertInfo> = None;

    let pruned = requests_to_prune(
        input.requests,
        current_revision,
        spec.revision_history_limit(),
    );

    if is_true(&conds, CertificateCondition::ISSUING) {
        let issuing_since = conditions::find(&conds, CertificateCondition::ISSUING)
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0);
        issue(
            input,
            &mut status,
            &mut conds,
            &mut out,
            &mut issued_cert,
            next_revision,
            issuing_since,
        );
    } else {
        // Key manager: no next private key outside an issuance.
        if !input.next_keys.is_empty() {
            out.steps.push(Step::DeleteKeySecrets(
                input.next_keys.iter().map(|k| k.name.clone()).collect(),
            ));
        }
        status.next_private_key_secret_name = None;

        if !input.owns_secret {
            wake.push(NOT_OWNER_RECHECK);
        } else {
            let next_request = input
                .requests
                .iter()
                .find(|r| r.revision == Some(next_revision));
            let trigger = evaluate(
                Chain::Trigger,
                certificate,
                input.secret,
                current_request,
                now,
            );
            match trigger {
                Some(trigger) => {
                    match backoff_until(
                        &status,
                        next_request.map(RequestFacts::matches_spec),
                        now,
                        input.backoff_min,
                        input.backoff_max,
                    ) {
                        Some(until) => wake.push(duration_until(until, now)),
                        None => {
                            set_condition(
                                &mut conds,
                                CertificateCondition::ISSUING,
                                ConditionStatus::True,
                                trigger.reason,
                                &trigger.message,
                                generation,
                                now,
                            );
                            out.events.push(PlannedEvent {
                                warning: false,
                                reason: "Issuing",
                                message: trigger.message.clone(),
                            });
                        }
                    }
                }
                None => {
                    if readiness.is_none() && input.secret.is_some_and(|s| s.drift.is_some()) {
                        out.steps.push(Step::RewriteSecret);
                    }
                }
            }
            // Wake for renewal (and, with renewal disabled, for expiry).
            if let Some(cert) = &secret_cert {
                match renewal_time(spec, cert.not_before, cert.not_after) {
                    Some(at) if at > now => wake.push(duration_until(at, now)),
                    _ => {}
                }
                if cert.not_after >= now {
                    wake.push(duration_until(
                        cert.not_after + SignedDuration::from_secs(1),
                        now,
                    ));
                }
            }
        }
    }

    // Ready, notBefore, notAfter, renewalTime.
    let shown = issued_cert.as_ref().or(secret_cert.as_ref());
    match (&issued_cert, &readiness) {
        (Some(_), _) | (None, None) => set_condition(
            &mut conds,
            CertificateCondition::READY,
            ConditionStatus::True,
            reason::READY,
            READY_MESSAGE,
            generation,
            now,
        ),
        (None, Some(v)) => set_condition(
            &mut conds,
            CertificateCondition::READY,
            ConditionStatus::False,
            v.reason,
            &v.message,
            generation,
            now,
        ),
    }
    match shown {
        Some(cert) => {
            status.not_before = Some(Time(cert.not_before));
            status.not_after = Some(Time(cert.not_after));
            status.renewal_time = renewal_time(spec, cert.not_before, cert.not_after).map(Time);
        }
        None => {
            status.not_before = None;
            status.not_after = None;
            status.renewal_time = None;
        }
    }

    // Revision history (after a successful issuance, the new revision counts too).
    let pruned = if issued_cert.is_some() {
        requests_to_prune(
            input.requests,
            status.revision,
            spec.revision_history_limit(),
        )
    } else {
        pruned
    };
    let pruned: Vec<String> = pruned
        .into_iter()
        .filter(|n| {
            !out.steps
                .iter()
                .any(|s| matches!(s, Step::DeleteRequests(d) if d.contains(n)))
        })
        .collect();
    if !pruned.is_empty() {
        out.steps.push(Step::DeleteRequests(pruned));
    }

    status.conditions = (!conds.is_empty()).then_some(conds);
    out.status = status;
    wake.extend(out.requeue_after);
    out.requeue_after = wake.into_iter().min().map(|d| d.min(MAX_SLEEP));
    out
}

/// The issuing half of [`plan`]: `Issuing=True`.
fn issue(
    input: &Inputs<'_>,
    status: &mut CertificateStatus,
    conds: &mut Vec<CertificateCondition>,
    out: &mut Plan,
    issued_cert: &mut Option<CertInfo>,
    next_revision: i64,
    issuing_since: Option<Timestamp>,
) {
    let certificate = input.certificate;
    let spec = &certificate.spec;
    let generation = certificate.metadata.generation;
    let now = input.now;
    let name = certificate.metadata.name.clone().unwrap_or_default();

    // Key manager: exactly one next private key that matches the spec.
    let key = match input.next_keys {
        [] => {
            let reuse_existing = spec.private_key_or_default().rotation_policy_or_default()
                == PrivateKeyRotationPolicy::Never
                && input.secret.is_some_and(|s| match &s.key {
                    KeyState::Valid { spec: key_spec, .. } => {
                        private_key_violations(*key_spec, spec).is_empty()
                    }
                    _ => false,
                });
            out.steps.push(Step::CreateNextKey { reuse_existing });
            status.next_private_key_secret_name = None;
            return;
        }
        [one] => one,
        several => {
            out.steps.push(Step::DeleteKeySecrets(
                several.iter().map(|k| k.name.clone()).collect(),
            ));
            status.next_private_key_secret_name = None;
            return;
        }
    };
    let key_der = match &key.key {
        KeyState::Valid {
            public_key_der,
            spec: key_spec,
        } if private_key_violations(*key_spec, spec).is_empty() => public_key_der,
        _ => {
            // Unreadable, or generated for an older spec: start over with a new key.
            out.steps
                .push(Step::DeleteKeySecrets(vec![key.name.clone()]));
            status.next_private_key_secret_name = None;
            return;
        }
    };
    status.next_private_key_secret_name = Some(key.name.clone());

    // Request manager: exactly one request of the next revision, matching spec and key.
    let mut delete: Vec<String> = Vec::new();
    let mut candidates: Vec<&RequestFacts> = Vec::new();
    for request in input
        .requests
        .iter()
        .filter(|r| r.revision == Some(next_revision))
    {
        let stale_failure = match &request.state {
            RequestState::Failed { failed_at, .. } => {
                let at = failed_at.or(request.created);
                matches!((at, issuing_since), (Some(at), Some(since)) if at < since)
            }
            _ => false,
        };
        let key_matches = request.public_key_der.as_ref().is_ok_and(|d| d == key_der);
        if stale_failure || !request.matches_spec() || !key_matches {
            delete.push(request.name.clone());
        } else {
            candidates.push(request);
        }
    }
    candidates.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)));
    if candidates.len() > 1 {
        delete.extend(candidates.drain(1..).map(|r| r.name.clone()));
    }
    if !delete.is_empty() {
        out.steps.push(Step::DeleteRequests(delete.clone()));
    }
    let Some(request) = candidates.first() else {
        let request_name = request_name(&name, next_revision);
        if delete.contains(&request_name) {
            // Wait for the deletion to be observed before the name is used again.
            out.requeue_after = Some(Duration::from_secs(1));
            return;
        }
        out.steps.push(Step::CreateRequest {
            name: request_name,
            revision: next_revision,
            key_secret: key.name.clone(),
        });
        return;
    };

    // Issuing: act on the request's outcome.
    let fail = |status: &mut CertificateStatus,
                conds: &mut Vec<CertificateCondition>,
                out: &mut Plan,
                reason_text: &str,
                message: &str| {
        let message = format!("{FAILED_PREFIX}{message}");
        status.last_failure_time = Some(Time(now));
        status.failed_issuance_attempts = Some(status.failed_issuance_attempts.unwrap_or(0) + 1);
        set_condition(
            conds,
            CertificateCondition::ISSUING,
            ConditionStatus::False,
            reason_text,
            &message,
            generation,
            now,
        );
        out.events.push(PlannedEvent {
            warning: true,
            reason: "Failed",
            message: message.clone(),
        });
        out.audit = Some(Audit {
            event: "failed",
            revision: next_revision,
            serial: None,
            not_after: None,
            dns_names: spec.dns_names.clone().unwrap_or_default(),
            reason: Some(reason_text.to_owned()),
            message: Some(message),
        });
    };
    match &request.state {
        RequestState::Pending => {}
        RequestState::Failed {
            reason, message, ..
        } => {
            fail(status, conds, out, reason, message);
        }
        RequestState::Issued(CertState::Valid(leaf)) if leaf.has_public_key(key_der) => {
            out.steps.push(Step::WriteSecret {
                request: request.name.clone(),
                key_secret: key.name.clone(),
            });
            out.steps
                .push(Step::DeleteKeySecrets(vec![key.name.clone()]));
            status.revision = Some(next_revision);
            status.next_private_key_secret_name = None;
            status.last_failure_time = None;
            status.failed_issuance_attempts = None;
            conditions::remove(conds, CertificateCondition::ISSUING);
            out.events.push(PlannedEvent {
                warning: false,
                reason: "Issuing",
                message: ISSUED_MESSAGE.into(),
            });
            out.audit = Some(Audit {
                event: if next_revision > 1 {
                    "renewed"
                } else {
                    "issued"
                },
                revision: next_revision,
                serial: Some(leaf.serial_hex.clone()),
                not_after: Some(leaf.not_after),
                dns_names: leaf.dns_names.clone(),
                reason: None,
                message: None,
            });
            *issued_cert = Some(leaf.as_ref().clone());
            if let Some(at) = renewal_time(spec, leaf.not_before, leaf.not_after) {
                out.requeue_after = Some(duration_until(at.max(now), now));
            }
        }
        RequestState::Issued(state) => {
            // Never store a certificate that does not match its key: drop this request so that
            // the next attempt asks again.
            let problem = match state {
                CertState::Valid(_) => {
                    "the issued certificate does not match the private key".to_owned()
                }
                CertState::Invalid(e) => format!("the issued certificate is invalid: {e}"),
                CertState::Missing => "the issuer returned no certificate".to_owned(),
            };
            out.steps
                .push(Step::DeleteRequests(vec![request.name.clone()]));
            fail(status, conds, out, reason::INVALID_CERTIFICATE, &problem);
        }
    }
}

#[cfg(test)]
mod tests;
