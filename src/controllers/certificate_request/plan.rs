//! What the CertificateRequest controller should do, as pure functions of what it observed:
//! approval, the outcome of an issuer lookup, the Order an ACME request needs (spec and
//! cert-manager's name), what an Order's state means for the request, and the status
//! conditions that record it all.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;

use crate::api::acme::AcmeState;
use crate::api::certificate_request::{
    CertificateRequest, CertificateRequestCondition, CertificateRequestStatus,
};
use crate::api::meta::{CERT_MANAGER_GROUP, ConditionStatus, IssuerReference};
use crate::api::order::OrderSpec;
use crate::controllers::certificate::plan::dns_safe_shorten;
use crate::controllers::conditions::{self, Condition};
use crate::pki::csr::ParsedCsr;

/// The reason and message of the built-in approver.
pub const APPROVED_REASON: &str = "cert-manager.io";
pub const APPROVED_MESSAGE: &str = "Certificate request has been approved by cert-manager.io";
pub const DENIED_MESSAGE: &str = "The CertificateRequest was denied by an approval controller";
pub const ISSUED_MESSAGE: &str = "Certificate fetched from issuer successfully";
pub const ISSUER_NOT_READY_MESSAGE: &str = "Waiting for issuer to become ready";
/// Per-Certificate override of the issuer's ACME profile, copied from the Certificate's
/// annotations onto its requests.
pub const PROFILE_ANNOTATION: &str = "acme.certsmith.io/profile";

/// What to do about approval before anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    /// Issued, failed, denied (and recorded) or invalid: nothing more to do.
    Finished,
    /// Denied by an approver: record `Ready=False` reason `Denied`.
    RecordDenial,
    /// Issuer of another group: an external issuer's business.
    External,
    /// Approve it (auto-approval on, certsmith's own issuer, undecided).
    Approve,
    /// Wait for another approver.
    AwaitApproval,
    /// Approved: issue.
    Proceed,
}

/// cert-manager's approver and the first checks of its issuer controllers. A request another
/// approver decided is never touched.
pub fn approval(request: &CertificateRequest, auto_approve: bool) -> Approval {
    let ready_reason = request.ready_reason();
    if request.is_ready()
        || ready_reason == Some(CertificateRequestCondition::REASON_FAILED)
        || request.is_invalid_request()
    {
        return Approval::Finished;
    }
    if request.is_denied() {
        let recorded = ready_reason == Some(CertificateRequestCondition::REASON_DENIED)
            && request
                .status
                .as_ref()
                .is_some_and(|s| s.failure_time.is_some());
        return if recorded {
            Approval::Finished
        } else {
            Approval::RecordDenial
        };
    }
    if request.spec.issuer_ref.group_or_default() != CERT_MANAGER_GROUP {
        return Approval::External;
    }
    if !request.is_approved() {
        return if auto_approve {
            Approval::Approve
        } else {
            Approval::AwaitApproval
        };
    }
    Approval::Proceed
}

// ---------------------------------------------------------------------------------------------
// Status.
// ---------------------------------------------------------------------------------------------

fn set(
    status: &mut CertificateRequestStatus,
    type_: &str,
    value: ConditionStatus,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let mut list = status.conditions.take().unwrap_or_default();
    conditions::set(
        &mut list,
        CertificateRequestCondition::new(type_, value, reason, message, None),
        Time(now),
    );
    status.conditions = Some(list);
}

pub fn approve(status: &mut CertificateRequestStatus, now: Timestamp) {
    set(
        status,
        CertificateRequestCondition::APPROVED,
        ConditionStatus::True,
        APPROVED_REASON,
        APPROVED_MESSAGE,
        now,
    );
}

pub fn record_denial(status: &mut CertificateRequestStatus, now: Timestamp) {
    set(
        status,
        CertificateRequestCondition::READY,
        ConditionStatus::False,
        CertificateRequestCondition::REASON_DENIED,
        DENIED_MESSAGE,
        now,
    );
    status.failure_time.get_or_insert(Time(now));
}

pub fn set_pending(status: &mut CertificateRequestStatus, message: &str, now: Timestamp) {
    set(
        status,
        CertificateRequestCondition::READY,
        ConditionStatus::False,
        CertificateRequestCondition::REASON_PENDING,
        message,
        now,
    );
}

pub fn set_failed(status: &mut CertificateRequestStatus, message: &str, now: Timestamp) {
    set(
        status,
        CertificateRequestCondition::READY,
        ConditionStatus::False,
        CertificateRequestCondition::REASON_FAILED,
        message,
        now,
    );
    status.failure_time = Some(Time(now));
}

pub fn set_issued(
    status: &mut CertificateRequestStatus,
    certificate: &str,
    ca: Option<&str>,
    now: Timestamp,
) {
    status.certificate = Some(ByteString(certificate.as_bytes().to_vec()));
    status.ca = ca
        .filter(|ca| !ca.trim().is_empty())
        .map(|ca| ByteString(ca.as_bytes().to_vec()));
    set(
        status,
        CertificateRequestCondition::READY,
        ConditionStatus::True,
        CertificateRequestCondition::REASON_ISSUED,
        ISSUED_MESSAGE,
        now,
    );
}

// ---------------------------------------------------------------------------------------------
// Issuers.
// ---------------------------------------------------------------------------------------------

/// What the referenced issuer turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuerFacts {
    NotFound,
    NotReady,
    Acme {
        profile: Option<String>,
        enable_duration_feature: bool,
    },
    Ca,
    SelfSigned,
    /// An issuer type certsmith does not implement (`vault`, `venafi`), or none.
    Unsupported(String),
}

/// cert-manager's wording: `Referenced "Issuer" not found: issuer.cert-manager.io "x" not found`.
pub fn issuer_not_found_message(reference: &IssuerReference) -> String {
    let kind = reference.kind_or_default();
    format!(
        "Referenced \"{kind}\" not found: {}.cert-manager.io \"{}\" not found",
        kind.to_ascii_lowercase(),
        reference.name
    )
}

pub fn unsupported_issuer_message(type_name: &str) -> String {
    format!("certsmith does not implement the {type_name} issuer yet")
}

/// How long a pending request waits before it looks again without an event: a quarter of its
/// age, between 5 seconds and 5 minutes. (Issuer changes wake it earlier.)
pub fn pending_recheck(created: Option<Timestamp>, now: Timestamp) -> Duration {
    let age = created
        .map(|c| now.duration_since(c))
        .unwrap_or(SignedDuration::ZERO);
    let quarter = Duration::try_from(age / 4).unwrap_or_default();
    quarter.clamp(Duration::from_secs(5), Duration::from_secs(300))
}

// ---------------------------------------------------------------------------------------------
// Orders.
// ---------------------------------------------------------------------------------------------

/// The Order an ACME request needs: the request's CSR and issuer, the common name, DNS names
/// and IP addresses of the CSR, the duration when the issuer enables it, and the ACME profile
/// (the request's `acme.certsmith.io/profile` annotation, else the issuer's `profile`).
pub fn order_spec(
    request: &CertificateRequest,
    csr: &ParsedCsr,
    issuer_profile: Option<&str>,
    enable_duration_feature: bool,
) -> OrderSpec {
    let profile = request
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROFILE_ANNOTATION))
        .map(String::as_str)
        .or(issuer_profile)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    OrderSpec {
        request: request.spec.request.clone(),
        issuer_ref: request.spec.issuer_ref.clone(),
        common_name: csr.common_name().filter(|c| !c.is_empty()),
        dns_names: non_empty(&csr.names.dns_names),
        ip_addresses: non_empty(&csr.names.ip_addresses),
        duration: if enable_duration_feature {
            request.spec.duration.clone()
        } else {
            None
        },
        profile,
        replaces: None,
    }
}

/// FNV-1 (not 1a), 32 bits: Go's `hash/fnv.New32`.
pub fn fnv1_32(data: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in data {
        hash = hash.wrapping_mul(0x0100_0193);
        hash ^= u32::from(*byte);
    }
    hash
}

/// The Order spec as Go's `json.Marshal` writes it, field by field (for the name hash).
#[derive(Serialize)]
struct GoOrderSpec<'a> {
    request: Option<()>,
    #[serde(rename = "issuerRef")]
    issuer_ref: GoIssuerRef<'a>,
    #[serde(rename = "commonName", skip_serializing_if = "str::is_empty")]
    common_name: &'a str,
    #[serde(rename = "dnsNames", skip_serializing_if = "<[String]>::is_empty")]
    dns_names: &'a [String],
    #[serde(rename = "ipAddresses", skip_serializing_if = "<[String]>::is_empty")]
    ip_addresses: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    profile: &'a str,
}

#[derive(Serialize)]
struct GoIssuerRef<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    kind: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    group: &'a str,
}

#[derive(Serialize)]
struct GoNamedSpec<'a> {
    #[serde(rename = "CRName")]
    cr_name: &'a str,
    #[serde(rename = "Spec")]
    spec: GoOrderSpec<'a>,
}

/// cert-manager's Order name: `<request name, DNS-safely shortened to 52 characters>-<FNV-1
/// hash of the JSON spec without the CSR>`; a request name of 52 characters or more is hashed
/// along with the spec.
pub fn order_name(request_name: &str, spec: &OrderSpec) -> String {
    let go = GoOrderSpec {
        request: None,
        issuer_ref: GoIssuerRef {
            name: &spec.issuer_ref.name,
            kind: spec.issuer_ref.kind.as_deref().unwrap_or_default(),
            group: spec.issuer_ref.group.as_deref().unwrap_or_default(),
        },
        common_name: spec.common_name.as_deref().unwrap_or_default(),
        dns_names: spec.dns_names.as_deref().unwrap_or_default(),
        ip_addresses: spec.ip_addresses.as_deref().unwrap_or_default(),
        duration: spec.duration.as_deref(),
        profile: spec.profile.as_deref().unwrap_or_default(),
    };
    let json = if request_name.len() >= 52 {
        serde_json::to_vec(&GoNamedSpec {
            cr_name: request_name,
            spec: go,
        })
    } else {
        serde_json::to_vec(&go)
    }
    .unwrap_or_default();
    format!("{}-{}", dns_safe_shorten(request_name, 52), fnv1_32(&json))
}

/// The Order found under the expected name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderFacts {
    Missing,
    /// An Order of that name that is not this request's (an earlier request of the same name,
    /// not yet garbage-collected, or another CSR): delete it and create ours.
    Foreign,
    Found {
        state: Option<AcmeState>,
        reason: Option<String>,
        certificate: Option<String>,
    },
}

/// What an Order's state means for its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderOutcome {
    Issued(String),
    Failed(String),
    Pending(String),
}

pub fn order_outcome(namespace: &str, name: &str, order: &OrderFacts) -> OrderOutcome {
    let (state, reason, certificate) = match order {
        OrderFacts::Found {
            state,
            reason,
            certificate,
        } => (*state, reason.clone(), certificate.clone()),
        OrderFacts::Missing | OrderFacts::Foreign => (None, None, None),
    };
    let state_text = state.map(AcmeState::as_str).unwrap_or_default();
    match state {
        Some(AcmeState::Valid) if certificate.as_deref().is_some_and(|c| !c.trim().is_empty()) => {
            OrderOutcome::Issued(certificate.unwrap_or_default())
        }
        Some(s) if s.is_failure() => {
            let mut message = format!(
                "Failed to wait for order resource \"{name}\" to become ready: order is in \"{state_text}\" state"
            );
            if let Some(reason) = reason.filter(|r| !r.is_empty()) {
                message.push_str(": ");
                message.push_str(&reason);
            }
            OrderOutcome::Failed(message)
        }
        _ => OrderOutcome::Pending(format!(
            "Waiting on certificate issuance from order {namespace}/{name}: \"{state_text}\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::certificate::CertificateSpec;
    use crate::api::certificate_request::CertificateRequestSpec;
    use crate::pki::csr::{build_csr_pem, parse_csr};
    use crate::pki::keys::KeySpec;
    use std::collections::BTreeMap;

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn request(
        group: Option<&str>,
        conditions: &[(&str, ConditionStatus, &str)],
    ) -> CertificateRequest {
        let mut r = CertificateRequest::new(
            "web-1",
            CertificateRequestSpec {
                issuer_ref: IssuerReference {
                    name: "le".into(),
                    kind: Some("ClusterIssuer".into()),
                    group: group.map(String::from),
                },
                request: ByteString(b"csr".to_vec()),
                ..Default::default()
            },
        );
        r.metadata.namespace = Some("apps".into());
        if !conditions.is_empty() {
            r.status = Some(CertificateRequestStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s, reason)| CertificateRequestCondition {
                            type_: (*t).into(),
                            status: *s,
                            reason: Some((*reason).into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            });
        }
        r
    }

    use ConditionStatus::{False, True};

    #[test]
    fn approval_rules() {
        let undecided = request(None, &[]);
        assert_eq!(approval(&undecided, true), Approval::Approve);
        assert_eq!(approval(&undecided, false), Approval::AwaitApproval);
        assert_eq!(
            approval(&request(Some("cert-manager.io"), &[]), true),
            Approval::Approve
        );
        // External issuers are not approved by certsmith.
        assert_eq!(
            approval(&request(Some("awspca.cert-manager.io"), &[]), true),
            Approval::External
        );
        // Another approver decided: never touched.
        let approved_by_other = request(None, &[("Approved", True, "policy.example.com")]);
        assert_eq!(approval(&approved_by_other, true), Approval::Proceed);
        let denied = request(None, &[("Denied", True, "policy.example.com")]);
        assert_eq!(approval(&denied, true), Approval::RecordDenial);
        let mut recorded = request(
            None,
            &[
                ("Denied", True, "policy.example.com"),
                ("Ready", False, "Denied"),
            ],
        );
        assert_eq!(approval(&recorded, true), Approval::RecordDenial);
        recorded.status.as_mut().unwrap().failure_time = Some(Time(now()));
        assert_eq!(approval(&recorded, true), Approval::Finished);
        // Finished requests.
        for finished in [
            request(None, &[("Approved", True, "x"), ("Ready", True, "Issued")]),
            request(None, &[("Approved", True, "x"), ("Ready", False, "Failed")]),
            request(None, &[("InvalidRequest", True, "BadCSR")]),
        ] {
            assert_eq!(approval(&finished, true), Approval::Finished);
        }
        // Pending is not finished.
        let pending = request(
            None,
            &[("Approved", True, "x"), ("Ready", False, "Pending")],
        );
        assert_eq!(approval(&pending, true), Approval::Proceed);
    }

    #[test]
    fn approving_and_denying_write_cert_managers_conditions() {
        let mut status = CertificateRequestStatus::default();
        approve(&mut status, now());
        let c = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (
                c.type_.as_str(),
                c.status,
                c.reason.as_deref(),
                c.message.as_deref()
            ),
            (
                "Approved",
                True,
                Some("cert-manager.io"),
                Some(APPROVED_MESSAGE)
            )
        );
        let mut status = CertificateRequestStatus::default();
        record_denial(&mut status, now());
        let c = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.reason.as_deref()),
            ("Ready", Some("Denied"))
        );
        assert_eq!(status.failure_time, Some(Time(now())));
    }

    #[test]
    fn status_transitions() {
        let mut status = CertificateRequestStatus::default();
        approve(&mut status, now());
        set_pending(&mut status, "waiting", now());
        set_pending(
            &mut status,
            "still waiting",
            "2026-06-02T00:00:00Z".parse().unwrap(),
        );
        let ready = status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.message.as_deref(), Some("still waiting"));
        assert_eq!(
            ready.last_transition_time,
            Some(Time(now())),
            "same status, same time"
        );
        assert_eq!(status.failure_time, None);
        set_issued(&mut status, "CHAIN", Some(""), now());
        assert_eq!(status.certificate, Some(ByteString(b"CHAIN".to_vec())));
        assert_eq!(status.ca, None);
        let mut failed = CertificateRequestStatus::default();
        set_failed(&mut failed, "boom", now());
        assert_eq!(failed.failure_time, Some(Time(now())));
        // The Approved condition is left exactly as it was.
        assert_eq!(
            status.conditions.as_ref().unwrap()[0].reason.as_deref(),
            Some("cert-manager.io")
        );
    }

    #[test]
    fn issuer_messages_use_cert_managers_wording() {
        let issuer = IssuerReference {
            name: "missing".into(),
            ..Default::default()
        };
        assert_eq!(
            issuer_not_found_message(&issuer),
            "Referenced \"Issuer\" not found: issuer.cert-manager.io \"missing\" not found"
        );
        let cluster = IssuerReference {
            name: "le".into(),
            kind: Some("ClusterIssuer".into()),
            group: None,
        };
        assert_eq!(
            issuer_not_found_message(&cluster),
            "Referenced \"ClusterIssuer\" not found: clusterissuer.cert-manager.io \"le\" not found"
        );
        assert_eq!(
            unsupported_issuer_message("vault"),
            "certsmith does not implement the vault issuer yet"
        );
    }

    #[test]
    fn pending_requests_back_off_with_age() {
        let created = Some(now());
        assert_eq!(pending_recheck(created, now()), Duration::from_secs(5));
        assert_eq!(
            pending_recheck(created, now() + SignedDuration::from_secs(120)),
            Duration::from_secs(30)
        );
        assert_eq!(
            pending_recheck(created, now() + SignedDuration::from_hours(5)),
            Duration::from_secs(300)
        );
        assert_eq!(pending_recheck(None, now()), Duration::from_secs(5));
    }

    #[test]
    fn fnv1_matches_go() {
        // Go: fnv.New32() of "" is the offset basis; of "a" is 0x050c5d7e.
        assert_eq!(fnv1_32(b""), 0x811c9dc5);
        assert_eq!(fnv1_32(b"a"), 0x050c5d7e);
        assert_eq!(fnv1_32(b"foobar"), 0x31f0b262);
    }

    fn acme_request(name: &str) -> (CertificateRequest, ParsedCsr) {
        let spec = CertificateSpec {
            common_name: Some("example.com".into()),
            dns_names: Some(vec!["example.com".into(), "www.example.com".into()]),
            ..Default::default()
        };
        let key = KeySpec::Ecdsa(256).generate().unwrap();
        let pem = build_csr_pem(&spec, &key).unwrap();
        let mut r = request(None, &[]);
        r.metadata.name = Some(name.into());
        r.spec.request = ByteString(pem.clone().into_bytes());
        r.spec.duration = Some("2160h0m0s".into());
        (r, parse_csr(pem.as_bytes()).unwrap())
    }

    #[test]
    fn order_spec_and_name() {
        let (mut r, csr) = acme_request("web-1");
        let spec = order_spec(&r, &csr, Some("tlsserver"), false);
        assert_eq!(spec.common_name.as_deref(), Some("example.com"));
        assert_eq!(
            spec.dns_names.as_deref().unwrap(),
            ["example.com", "www.example.com"]
        );
        assert_eq!(spec.ip_addresses, None);
        assert_eq!(spec.duration, None);
        assert_eq!(spec.profile.as_deref(), Some("tlsserver"));
        assert_eq!(spec.request, r.spec.request);
        let with_duration = order_spec(&r, &csr, None, true);
        assert_eq!(with_duration.duration.as_deref(), Some("2160h0m0s"));
        assert_eq!(with_duration.profile, None);
        r.metadata.annotations = Some(BTreeMap::from([(
            PROFILE_ANNOTATION.to_string(),
            "shortlived".to_string(),
        )]));
        assert_eq!(
            order_spec(&r, &csr, Some("tlsserver"), false)
                .profile
                .as_deref(),
            Some("shortlived")
        );

        // The name: request name, hash of the spec without the CSR; stable, and different when
        // the spec differs.
        let name = order_name("web-1", &spec);
        assert!(name.starts_with("web-1-"), "{name}");
        let hash: u32 = name["web-1-".len()..].parse().unwrap();
        let expected_json = r#"{"request":null,"issuerRef":{"name":"le","kind":"ClusterIssuer"},"commonName":"example.com","dnsNames":["example.com","www.example.com"],"profile":"tlsserver"}"#;
        assert_eq!(hash, fnv1_32(expected_json.as_bytes()));
        let mut other = spec.clone();
        other.request = ByteString(b"another CSR".to_vec());
        assert_eq!(order_name("web-1", &other), name, "the CSR is not hashed");
        other.profile = None;
        assert_ne!(order_name("web-1", &other), name);
        // Long request names are shortened and hashed along.
        let long = format!("{}-1", "a".repeat(60));
        let long_name = order_name(&long, &spec);
        assert!(long_name.starts_with(&"a".repeat(52)));
        assert!(long_name.len() <= 63);
        assert_ne!(
            order_name(&format!("{}-2", "a".repeat(60)), &spec),
            long_name
        );
    }

    #[test]
    fn order_outcomes() {
        let found = |state, reason: Option<&str>, cert: Option<&str>| OrderFacts::Found {
            state,
            reason: reason.map(String::from),
            certificate: cert.map(String::from),
        };
        assert_eq!(
            order_outcome(
                "apps",
                "web-1-123",
                &found(Some(AcmeState::Valid), None, Some("CHAIN"))
            ),
            OrderOutcome::Issued("CHAIN".into())
        );
        assert_eq!(
            order_outcome(
                "apps",
                "web-1-123",
                &found(Some(AcmeState::Valid), None, None)
            ),
            OrderOutcome::Pending(
                "Waiting on certificate issuance from order apps/web-1-123: \"valid\"".into()
            )
        );
        assert_eq!(
            order_outcome(
                "apps",
                "web-1-123",
                &found(Some(AcmeState::Pending), None, None)
            ),
            OrderOutcome::Pending(
                "Waiting on certificate issuance from order apps/web-1-123: \"pending\"".into()
            )
        );
        assert_eq!(
            order_outcome("apps", "web-1-123", &found(None, None, None)),
            OrderOutcome::Pending(
                "Waiting on certificate issuance from order apps/web-1-123: \"\"".into()
            )
        );
        assert_eq!(
            order_outcome(
                "apps",
                "web-1-123",
                &found(
                    Some(AcmeState::Invalid),
                    Some("urn:ietf:params:acme:error:connection"),
                    None
                )
            ),
            OrderOutcome::Failed(
                "Failed to wait for order resource \"web-1-123\" to become ready: order is in \
                 \"invalid\" state: urn:ietf:params:acme:error:connection"
                    .into()
            )
        );
        for state in [AcmeState::Expired, AcmeState::Errored] {
            assert!(matches!(
                order_outcome("apps", "o", &found(Some(state), None, None)),
                OrderOutcome::Failed(_)
            ));
        }
    }
}
