//! The decision table of the Certificate controller.

use super::*;
use crate::api::certificate::{
    CertificatePrivateKey, CertificateRenewal, PrivateKeyAlgorithm, RenewalPolicy,
};
use crate::api::meta::IssuerReference;
use crate::pki::x509::Subject;

const KEY_A: &[u8] = b"public-key-a";
const KEY_B: &[u8] = b"public-key-b";
const MIN: Duration = Duration::from_secs(3600);
const MAX: Duration = Duration::from_secs(32 * 3600);

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn now() -> Timestamp {
    ts("2026-06-01T00:00:00Z")
}

fn spec() -> CertificateSpec {
    CertificateSpec {
        secret_name: "web-tls".into(),
        issuer_ref: IssuerReference {
            name: "ca".into(),
            ..Default::default()
        },
        common_name: Some("example.com".into()),
        dns_names: Some(vec!["example.com".into()]),
        ..Default::default()
    }
}

fn certificate(spec: CertificateSpec, status: Option<CertificateStatus>) -> Certificate {
    let mut c = Certificate::new("web", spec);
    c.metadata.namespace = Some("default".into());
    c.metadata.generation = Some(3);
    c.status = status;
    c
}

fn cert_info(not_before: &str, not_after: &str, dns: &[&str], key: &[u8]) -> CertInfo {
    CertInfo {
        not_before: ts(not_before),
        not_after: ts(not_after),
        serial_hex: "0a1b".into(),
        subject: "CN=example.com".into(),
        issuer: "CN=example.com".into(),
        common_name: Some("example.com".into()),
        dns_names: dns.iter().map(|s| s.to_string()).collect(),
        ip_addresses: vec![],
        uris: vec![],
        email_addresses: vec![],
        is_ca: false,
        public_key_der: key.to_vec(),
        subject_name: Subject {
            rdns: vec![vec![("2.5.4.3".into(), "example.com".into())]],
        },
        other_names: vec![],
        subject_raw: vec![],
        issuer_raw: vec![],
        subject_key_id: None,
    }
}

/// Valid from May 1 to July 30 (90 days): renewal at 2/3, June 30.
fn good_cert(key: &[u8]) -> CertInfo {
    cert_info(
        "2026-05-01T00:00:00Z",
        "2026-07-30T00:00:00Z",
        &["example.com"],
        key,
    )
}

fn valid_key(key: &[u8]) -> KeyState {
    KeyState::Valid {
        public_key_der: key.to_vec(),
        spec: Some(KeySpec::Rsa(2048)),
    }
}

fn good_secret() -> SecretFacts {
    SecretFacts {
        has_data: true,
        key: valid_key(KEY_A),
        cert: CertState::Valid(Box::new(good_cert(KEY_A))),
        issuer_name: Some("ca".into()),
        issuer_kind: Some("Issuer".into()),
        issuer_group: Some("cert-manager.io".into()),
        certificate_name: Some("web".into()),
        drift: None,
    }
}

fn request(name: &str, revision: i64, key: &[u8], state: RequestState) -> RequestFacts {
    RequestFacts {
        name: name.into(),
        revision: Some(revision),
        created: Some(ts("2026-05-31T23:00:00Z")),
        public_key_der: Ok(key.to_vec()),
        mismatches: Ok(vec![]),
        state,
    }
}

fn issuing_status(reason_text: &str, since: &str) -> CertificateStatus {
    CertificateStatus {
        conditions: Some(vec![CertificateCondition {
            type_: "Issuing".into(),
            status: ConditionStatus::True,
            reason: Some(reason_text.into()),
            message: Some("m".into()),
            last_transition_time: Some(Time(ts(since))),
            observed_generation: Some(3),
        }]),
        ..Default::default()
    }
}

struct Case {
    certificate: Certificate,
    secret: Option<SecretFacts>,
    requests: Vec<RequestFacts>,
    next_keys: Vec<NextKeyFacts>,
    owns_secret: bool,
    now: Timestamp,
}

impl Case {
    fn new(certificate: Certificate) -> Case {
        Case {
            certificate,
            secret: Some(good_secret()),
            requests: vec![],
            next_keys: vec![],
            owns_secret: true,
            now: now(),
        }
    }

    fn plan(&self) -> Plan {
        plan(&Inputs {
            certificate: &self.certificate,
            secret: self.secret.as_ref(),
            requests: &self.requests,
            next_keys: &self.next_keys,
            owns_secret: self.owns_secret,
            now: self.now,
            backoff_min: MIN,
            backoff_max: MAX,
        })
    }

    fn evaluate(&self, chain: Chain) -> Option<Violation> {
        let current = self
            .certificate
            .status
            .as_ref()
            .and_then(|s| s.revision)
            .and_then(|rev| self.requests.iter().find(|r| r.revision == Some(rev)));
        evaluate(
            chain,
            &self.certificate,
            self.secret.as_ref(),
            current,
            self.now,
        )
    }
}

fn condition<'a>(plan: &'a Plan, type_: &str) -> Option<&'a CertificateCondition> {
    plan.status
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.type_ == type_))
}

fn reason_of(plan: &Plan, type_: &str) -> Option<(ConditionStatus, String)> {
    condition(plan, type_).map(|c| (c.status, c.reason.clone().unwrap_or_default()))
}

fn issued_status(revision: i64) -> CertificateStatus {
    CertificateStatus {
        revision: Some(revision),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Names, times and backoff.
// ---------------------------------------------------------------------------------------------

#[test]
fn request_names_are_stable_and_bounded() {
    assert_eq!(request_name("web", 1), "web-1");
    assert_eq!(request_name("web", 12), "web-12");
    let long = "a".repeat(233);
    assert_eq!(request_name(&long, 2), format!("{long}-2"));
    let longer = format!("{}.b", "a".repeat(240));
    let name = request_name(&longer, 7);
    assert!(name.len() <= 253, "{}", name.len());
    assert!(name.starts_with(&"a".repeat(168)));
    assert!(name.ends_with("-7"));
    // 168 + '-' + 64 hex + '-7'
    assert_eq!(name.len(), 168 + 1 + 64 + 2);
    assert_ne!(
        request_name(&longer, 7),
        request_name(&format!("{longer}c"), 7)
    );
}

#[test]
fn dns_safe_shortening_ends_alphanumeric() {
    assert_eq!(dns_safe_shorten("abc", 10), "abc");
    assert_eq!(dns_safe_shorten("aa.....", 3), "aa");
    assert_eq!(dns_safe_shorten("aaa.....", 3), "aaa");
    assert_eq!(dns_safe_shorten(".....", 3), "");
}

#[test]
fn times_print_like_go() {
    let t = ts("2026-01-02T15:04:05Z");
    assert_eq!(go_time_string(t), "2026-01-02 15:04:05 +0000 UTC");
    assert_eq!(rfc1123(t), "Fri, 02 Jan 2026 15:04:05 UTC");
}

#[test]
fn backoff_doubles_from_min_to_max() {
    let hours = |h: u64| Duration::from_secs(h * 3600);
    assert_eq!(backoff_delay(0, MIN, MAX), hours(1));
    assert_eq!(backoff_delay(1, MIN, MAX), hours(1));
    assert_eq!(backoff_delay(2, MIN, MAX), hours(2));
    assert_eq!(backoff_delay(3, MIN, MAX), hours(4));
    assert_eq!(backoff_delay(6, MIN, MAX), hours(32));
    assert_eq!(backoff_delay(7, MIN, MAX), hours(32));
    assert_eq!(backoff_delay(1000, MIN, MAX), hours(32));
    // Test flags: 2s doubling to 10s.
    let (min, max) = (Duration::from_secs(2), Duration::from_secs(10));
    assert_eq!(backoff_delay(3, min, max), Duration::from_secs(8));
    assert_eq!(backoff_delay(4, min, max), Duration::from_secs(10));
}

#[test]
fn backoff_counts_from_the_last_failure() {
    let mut status = CertificateStatus {
        last_failure_time: Some(Time(ts("2026-05-31T23:30:00Z"))),
        failed_issuance_attempts: Some(2),
        ..Default::default()
    };
    // 2 failures: 2h after 23:30 → 01:30.
    assert_eq!(
        backoff_until(&status, None, now(), MIN, MAX),
        Some(ts("2026-06-01T01:30:00Z"))
    );
    assert_eq!(
        backoff_until(&status, Some(true), now(), MIN, MAX),
        Some(ts("2026-06-01T01:30:00Z"))
    );
    // The spec changed since: no backoff.
    assert_eq!(backoff_until(&status, Some(false), now(), MIN, MAX), None);
    // Over.
    assert_eq!(
        backoff_until(&status, None, ts("2026-06-01T01:30:00Z"), MIN, MAX),
        None
    );
    // A failure without a count (an older cert-manager) backs off the minimum.
    status.failed_issuance_attempts = None;
    assert_eq!(
        backoff_until(&status, None, now(), MIN, MAX),
        Some(ts("2026-06-01T00:30:00Z"))
    );
    status.last_failure_time = None;
    assert_eq!(backoff_until(&status, None, now(), MIN, MAX), None);
}

#[test]
fn renewal_time_follows_the_spec() {
    let nb = ts("2026-05-01T00:00:00Z");
    let na = ts("2026-07-30T00:00:00Z");
    assert_eq!(
        renewal_time(&spec(), nb, na),
        Some(ts("2026-06-30T00:00:00Z"))
    );
    let mut s = spec();
    s.renew_before = Some("240h".into());
    assert_eq!(renewal_time(&s, nb, na), Some(ts("2026-07-20T00:00:00Z")));
    let mut s = spec();
    s.renew_before_percentage = Some(50);
    assert_eq!(renewal_time(&s, nb, na), Some(ts("2026-06-15T00:00:00Z")));
    let mut s = spec();
    s.renewal = Some(CertificateRenewal {
        policy: Some(RenewalPolicy::Disabled),
        windows: None,
    });
    assert_eq!(renewal_time(&s, nb, na), None);
}

// ---------------------------------------------------------------------------------------------
// The policy chain, reason by reason.
// ---------------------------------------------------------------------------------------------

fn first(case: &Case) -> (String, String) {
    let v = case.evaluate(Chain::Trigger).expect("a violation");
    (v.reason.to_owned(), v.message)
}

#[test]
fn secret_does_not_exist() {
    let mut case = Case::new(certificate(spec(), None));
    case.secret = None;
    assert_eq!(
        first(&case),
        (
            "DoesNotExist".into(),
            "Issuing certificate as Secret does not exist".into()
        )
    );
}

#[test]
fn secret_missing_data() {
    let mut case = Case::new(certificate(spec(), None));
    let mut secret = good_secret();
    secret.has_data = false;
    case.secret = Some(secret);
    assert_eq!(
        first(&case).1,
        "Issuing certificate as Secret does not contain any data"
    );
    let mut secret = good_secret();
    secret.key = KeyState::Missing;
    case.secret = Some(secret);
    assert_eq!(
        first(&case),
        (
            "MissingData".into(),
            "Issuing certificate as Secret does not contain a private key".into()
        )
    );
    let mut secret = good_secret();
    secret.cert = CertState::Missing;
    case.secret = Some(secret);
    assert_eq!(
        first(&case).1,
        "Issuing certificate as Secret does not contain a certificate"
    );
}

#[test]
fn invalid_key_pair_and_invalid_certificate() {
    let mut case = Case::new(certificate(spec(), None));
    let mut secret = good_secret();
    secret.key = KeyState::Invalid("bad PEM".into());
    case.secret = Some(secret);
    assert_eq!(
        first(&case),
        (
            "InvalidKeyPair".into(),
            "Issuing certificate as Secret contains invalid private key data: bad PEM".into()
        )
    );
    let mut secret = good_secret();
    secret.cert = CertState::Invalid("truncated".into());
    case.secret = Some(secret);
    assert_eq!(
        first(&case),
        (
            "InvalidCertificate".into(),
            "Issuing certificate as Secret contains an invalid certificate: truncated".into()
        )
    );
    let mut secret = good_secret();
    secret.key = valid_key(KEY_B);
    case.secret = Some(secret);
    assert_eq!(
        first(&case),
        (
            "InvalidKeyPair".into(),
            "Issuing certificate as Secret contains a private key that does not match the certificate"
                .into()
        )
    );
}

#[test]
fn incorrect_issuer() {
    let mut case = Case::new(certificate(spec(), None));
    let mut secret = good_secret();
    secret.issuer_name = Some("old-ca".into());
    case.secret = Some(secret);
    assert_eq!(
        first(&case),
        (
            "IncorrectIssuer".into(),
            "Issuing certificate as Secret was previously issued by \"Issuer.cert-manager.io/old-ca\""
                .into()
        )
    );
    // Defaults are equivalent: empty kind/group annotations match Issuer/cert-manager.io.
    let mut secret = good_secret();
    secret.issuer_kind = Some(String::new());
    secret.issuer_group = None;
    case.secret = Some(secret);
    assert_eq!(case.evaluate(Chain::Trigger), None);
    // No issuer annotations at all (a Secret from before): not checked.
    let mut secret = good_secret();
    secret.issuer_name = None;
    secret.issuer_kind = None;
    secret.issuer_group = None;
    case.secret = Some(secret);
    assert_eq!(case.evaluate(Chain::Trigger), None);
    // A ClusterIssuer of the same name is another issuer.
    let mut s = spec();
    s.issuer_ref.kind = Some("ClusterIssuer".into());
    let case = Case::new(certificate(s, None));
    assert_eq!(first(&case).0, "IncorrectIssuer");
}

#[test]
fn incorrect_certificate() {
    let mut case = Case::new(certificate(spec(), None));
    let mut secret = good_secret();
    secret.certificate_name = Some("other".into());
    case.secret = Some(secret);
    assert_eq!(
        first(&case),
        (
            "IncorrectCertificate".into(),
            "Secret was issued for \"other\". If this message is not transient, you might have \
             two conflicting Certificates pointing to the same secret."
                .into()
        )
    );
}

#[test]
fn private_key_not_up_to_date() {
    let mut s = spec();
    s.private_key = Some(CertificatePrivateKey {
        algorithm: Some(PrivateKeyAlgorithm::Ecdsa),
        ..Default::default()
    });
    let case = Case::new(certificate(s, None));
    assert_eq!(
        first(&case),
        (
            "SecretMismatch".into(),
            "Existing private key is not up to date for spec: [spec.privateKey.algorithm]".into()
        )
    );
}

#[test]
fn current_request_checks() {
    let mut case = Case::new(certificate(spec(), Some(issued_status(1))));
    case.requests = vec![request(
        "web-1",
        1,
        KEY_B,
        RequestState::Issued(CertState::Missing),
    )];
    assert_eq!(
        first(&case),
        (
            "SecretMismatch".into(),
            "Secret contains a private key that does not match the current CertificateRequest"
                .into()
        )
    );
    let mut r = request("web-1", 1, KEY_A, RequestState::Pending);
    r.public_key_der = Err("bad CSR".into());
    case.requests = vec![r];
    assert_eq!(
        first(&case),
        (
            "InvalidCertificateRequest".into(),
            "Failed to decode current CertificateRequest: bad CSR".into()
        )
    );
    let mut r = request("web-1", 1, KEY_A, RequestState::Pending);
    r.mismatches = Ok(vec!["spec.dnsNames".into(), "spec.duration".into()]);
    case.requests = vec![r];
    assert_eq!(
        first(&case),
        (
            "RequestChanged".into(),
            "Fields on existing CertificateRequest resource not up to date: [spec.dnsNames spec.duration]"
                .into()
        )
    );
    // An unreadable request alone does not trigger.
    let mut r = request("web-1", 1, KEY_A, RequestState::Pending);
    r.mismatches = Err("cannot parse".into());
    case.requests = vec![r];
    assert_eq!(case.evaluate(Chain::Trigger), None);
    // Requests of other revisions are not the current one.
    let mut r = request("web-1", 1, KEY_A, RequestState::Pending);
    r.revision = Some(7);
    r.mismatches = Ok(vec!["spec.dnsNames".into()]);
    case.requests = vec![r];
    assert_eq!(case.evaluate(Chain::Trigger), None);
}

#[test]
fn without_a_request_the_certificate_is_compared() {
    let mut s = spec();
    s.dns_names = Some(vec!["example.com".into(), "www.example.com".into()]);
    let case = Case::new(certificate(s, Some(issued_status(1))));
    assert_eq!(
        first(&case),
        (
            "SecretMismatch".into(),
            "Issuing certificate as Existing issued Secret is not up to date for spec: [spec.dnsNames]"
                .into()
        )
    );
}

#[test]
fn renewal_is_due() {
    let mut status = issued_status(1);
    status.renewal_time = Some(Time(ts("2026-06-30T00:00:00Z")));
    let mut case = Case::new(certificate(spec(), Some(status)));
    assert_eq!(case.evaluate(Chain::Trigger), None);
    case.now = ts("2026-06-30T00:00:00Z");
    assert_eq!(
        first(&case),
        (
            "Renewing".into(),
            "Renewing certificate as renewal was scheduled at 2026-06-30 00:00:00 +0000 UTC".into()
        )
    );
    // Readiness does not care about renewal.
    assert_eq!(case.evaluate(Chain::Readiness), None);
}

#[test]
fn expired() {
    let mut case = Case::new(certificate(spec(), Some(issued_status(1))));
    case.now = ts("2026-08-01T00:00:00Z");
    assert_eq!(
        case.evaluate(Chain::Readiness),
        Some(Violation {
            reason: "Expired",
            message: "Certificate expired on Thu, 30 Jul 2026 00:00:00 UTC".into()
        })
    );
    assert_eq!(first(&case).0, "Expired");
    // Renewal disabled: reported, not re-issued.
    let mut s = spec();
    s.renewal = Some(CertificateRenewal {
        policy: Some(RenewalPolicy::Disabled),
        windows: None,
    });
    let mut case = Case::new(certificate(s, Some(issued_status(1))));
    case.now = ts("2026-08-01T00:00:00Z");
    assert_eq!(case.evaluate(Chain::Readiness).unwrap().reason, "Expired");
    assert_eq!(case.evaluate(Chain::Trigger), None);
}

#[test]
fn up_to_date() {
    let case = Case::new(certificate(spec(), Some(issued_status(1))));
    assert_eq!(case.evaluate(Chain::Trigger), None);
    assert_eq!(case.evaluate(Chain::Readiness), None);
}

// ---------------------------------------------------------------------------------------------
// Trigger.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_missing_secret_triggers_issuance() {
    let mut case = Case::new(certificate(spec(), None));
    case.secret = None;
    let plan = case.plan();
    let issuing = condition(&plan, "Issuing").unwrap();
    assert_eq!(issuing.status, ConditionStatus::True);
    assert_eq!(issuing.reason.as_deref(), Some("DoesNotExist"));
    assert_eq!(
        issuing.message.as_deref(),
        Some("Issuing certificate as Secret does not exist")
    );
    assert_eq!(issuing.observed_generation, Some(3));
    assert_eq!(
        reason_of(&plan, "Ready"),
        Some((ConditionStatus::False, "DoesNotExist".into()))
    );
    assert_eq!(
        plan.events,
        [PlannedEvent {
            warning: false,
            reason: "Issuing",
            message: "Issuing certificate as Secret does not exist".into()
        }]
    );
    assert!(plan.steps.is_empty());
    assert_eq!(plan.status.not_after, None);
}

#[test]
fn an_up_to_date_certificate_sleeps_until_its_renewal_time() {
    let mut status = issued_status(1);
    status.renewal_time = Some(Time(ts("2026-06-30T00:00:00Z")));
    let case = Case::new(certificate(spec(), Some(status)));
    let plan = case.plan();
    assert!(condition(&plan, "Issuing").is_none());
    let ready = condition(&plan, "Ready").unwrap();
    assert_eq!(ready.status, ConditionStatus::True);
    assert_eq!(ready.reason.as_deref(), Some("Ready"));
    assert_eq!(ready.message.as_deref(), Some(READY_MESSAGE));
    assert_eq!(
        plan.status.not_before,
        Some(Time(ts("2026-05-01T00:00:00Z")))
    );
    assert_eq!(
        plan.status.not_after,
        Some(Time(ts("2026-07-30T00:00:00Z")))
    );
    assert_eq!(
        plan.status.renewal_time,
        Some(Time(ts("2026-06-30T00:00:00Z")))
    );
    assert!(plan.steps.is_empty());
    // Wakes exactly at the renewal time, 29 days away; no polling before.
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(29 * 86400)));
    let mut near = case;
    near.now = ts("2026-06-29T23:55:00Z");
    assert_eq!(near.plan().requeue_after, Some(Duration::from_secs(300)));
}

#[test]
fn renewal_sets_issuing_with_renewing() {
    let mut status = issued_status(1);
    status.renewal_time = Some(Time(ts("2026-06-30T00:00:00Z")));
    let mut case = Case::new(certificate(spec(), Some(status)));
    case.now = ts("2026-06-30T00:00:01Z");
    let plan = case.plan();
    assert_eq!(
        reason_of(&plan, "Issuing"),
        Some((ConditionStatus::True, "Renewing".into()))
    );
    // Still Ready while renewing.
    assert_eq!(
        reason_of(&plan, "Ready"),
        Some((ConditionStatus::True, "Ready".into()))
    );
}

#[test]
fn a_failed_issuance_backs_off_and_wakes_exactly_when_it_ends() {
    let mut status = CertificateStatus {
        last_failure_time: Some(Time(ts("2026-05-31T23:00:00Z"))),
        failed_issuance_attempts: Some(3),
        conditions: Some(vec![CertificateCondition {
            type_: "Issuing".into(),
            status: ConditionStatus::False,
            reason: Some("Failed".into()),
            message: Some("x".into()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let mut case = Case::new(certificate(spec(), Some(status.clone())));
    case.secret = None;
    let plan = case.plan();
    assert_eq!(
        reason_of(&plan, "Issuing"),
        Some((ConditionStatus::False, "Failed".into()))
    );
    // 3 failures: 4h after 23:00 → 03:00, 3h from now.
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(3 * 3600)));
    case.now = ts("2026-06-01T02:59:00Z");
    assert_eq!(case.plan().requeue_after, Some(Duration::from_secs(60)));
    case.now = ts("2026-06-01T03:00:00Z");
    assert_eq!(
        reason_of(&case.plan(), "Issuing"),
        Some((ConditionStatus::True, "DoesNotExist".into()))
    );
    // A spec change since the failure re-triggers at once.
    status.failed_issuance_attempts = Some(5);
    let mut case = Case::new(certificate(spec(), Some(status)));
    case.secret = None;
    let mut changed = request(
        "web-1",
        1,
        KEY_A,
        RequestState::Failed {
            reason: "Failed".into(),
            message: "boom".into(),
            failed_at: None,
        },
    );
    changed.mismatches = Ok(vec!["spec.dnsNames".into()]);
    case.requests = vec![changed];
    assert_eq!(
        reason_of(&case.plan(), "Issuing"),
        Some((ConditionStatus::True, "DoesNotExist".into()))
    );
}

#[test]
fn a_certificate_that_does_not_own_its_secret_does_not_trigger() {
    let mut case = Case::new(certificate(spec(), None));
    case.secret = None;
    case.owns_secret = false;
    let plan = case.plan();
    assert!(condition(&plan, "Issuing").is_none());
    assert_eq!(plan.requeue_after, Some(NOT_OWNER_RECHECK));
}

#[test]
fn leftover_next_keys_are_deleted_when_not_issuing() {
    let mut status = issued_status(1);
    status.next_private_key_secret_name = Some("web-abcde".into());
    let mut case = Case::new(certificate(spec(), Some(status)));
    case.next_keys = vec![NextKeyFacts {
        name: "web-abcde".into(),
        key: valid_key(KEY_B),
    }];
    let plan = case.plan();
    assert_eq!(
        plan.steps,
        [Step::DeleteKeySecrets(vec!["web-abcde".into()])]
    );
    assert_eq!(plan.status.next_private_key_secret_name, None);
}

#[test]
fn drifted_secret_metadata_is_rewritten_without_reissuing() {
    let mut case = Case::new(certificate(spec(), Some(issued_status(1))));
    let mut secret = good_secret();
    secret.drift = Some("label x".into());
    case.secret = Some(secret.clone());
    assert_eq!(case.plan().steps, [Step::RewriteSecret]);
    // Not when the Secret is about to be replaced anyway.
    secret.key = valid_key(KEY_B);
    case.secret = Some(secret);
    assert!(!case.plan().steps.contains(&Step::RewriteSecret));
}

// ---------------------------------------------------------------------------------------------
// Key manager.
// ---------------------------------------------------------------------------------------------

fn issuing_case() -> Case {
    let mut case = Case::new(certificate(
        spec(),
        Some(issuing_status("DoesNotExist", "2026-05-31T23:59:00Z")),
    ));
    case.secret = None;
    case
}

#[test]
fn issuing_starts_with_a_new_key() {
    let plan = issuing_case().plan();
    assert_eq!(
        plan.steps,
        [Step::CreateNextKey {
            reuse_existing: false
        }]
    );
    assert_eq!(
        reason_of(&plan, "Issuing"),
        Some((ConditionStatus::True, "DoesNotExist".into()))
    );
}

#[test]
fn manually_triggered_issuance_proceeds() {
    let mut case = Case::new(certificate(
        spec(),
        Some(CertificateStatus {
            revision: Some(1),
            ..issuing_status("ManuallyTriggered", "2026-05-31T23:59:00Z")
        }),
    ));
    case.requests = vec![request("web-1", 1, KEY_A, RequestState::Pending)];
    let plan = case.plan();
    assert_eq!(
        plan.steps,
        [Step::CreateNextKey {
            reuse_existing: false
        }]
    );
}

#[test]
fn rotation_policy_never_reuses_a_key_that_fits() {
    let mut s = spec();
    s.private_key = Some(CertificatePrivateKey {
        rotation_policy: Some(PrivateKeyRotationPolicy::Never),
        ..Default::default()
    });
    let mut case = Case::new(certificate(
        s.clone(),
        Some(issuing_status("Renewing", "2026-05-31T23:59:00Z")),
    ));
    assert_eq!(
        case.plan().steps,
        [Step::CreateNextKey {
            reuse_existing: true
        }]
    );
    // The existing key no longer fits the spec: a new one.
    s.private_key.as_mut().unwrap().size = Some(4096);
    case.certificate.spec = s;
    assert_eq!(
        case.plan().steps,
        [Step::CreateNextKey {
            reuse_existing: false
        }]
    );
    // No Secret: a new one.
    case.certificate.spec.private_key.as_mut().unwrap().size = None;
    case.secret = None;
    assert_eq!(
        case.plan().steps,
        [Step::CreateNextKey {
            reuse_existing: false
        }]
    );
}

#[test]
fn rotation_policy_always_generates() {
    let case = Case::new(certificate(
        spec(),
        Some(issuing_status("Renewing", "2026-05-31T23:59:00Z")),
    ));
    assert_eq!(
        case.plan().steps,
        [Step::CreateNextKey {
            reuse_existing: false
        }]
    );
}

#[test]
fn several_or_stale_next_keys_are_replaced() {
    let mut case = issuing_case();
    case.next_keys = vec![
        NextKeyFacts {
            name: "web-a".into(),
            key: valid_key(KEY_A),
        },
        NextKeyFacts {
            name: "web-b".into(),
            key: valid_key(KEY_B),
        },
    ];
    assert_eq!(
        case.plan().steps,
        [Step::DeleteKeySecrets(vec!["web-a".into(), "web-b".into()])]
    );
    case.next_keys = vec![NextKeyFacts {
        name: "web-a".into(),
        key: KeyState::Valid {
            public_key_der: KEY_A.to_vec(),
            spec: Some(KeySpec::Ecdsa(256)),
        },
    }];
    assert_eq!(
        case.plan().steps,
        [Step::DeleteKeySecrets(vec!["web-a".into()])]
    );
    case.next_keys = vec![NextKeyFacts {
        name: "web-a".into(),
        key: KeyState::Invalid("garbage".into()),
    }];
    assert_eq!(
        case.plan().steps,
        [Step::DeleteKeySecrets(vec!["web-a".into()])]
    );
}

// ---------------------------------------------------------------------------------------------
// Request manager.
// ---------------------------------------------------------------------------------------------

fn with_key(mut case: Case) -> Case {
    case.next_keys = vec![NextKeyFacts {
        name: "web-k3y".into(),
        key: valid_key(KEY_A),
    }];
    case
}

#[test]
fn the_next_revision_is_requested() {
    let plan = with_key(issuing_case()).plan();
    assert_eq!(
        plan.steps,
        [Step::CreateRequest {
            name: "web-1".into(),
            revision: 1,
            key_secret: "web-k3y".into()
        }]
    );
    assert_eq!(
        plan.status.next_private_key_secret_name.as_deref(),
        Some("web-k3y")
    );

    let mut case = with_key(issuing_case());
    case.certificate.status.as_mut().unwrap().revision = Some(4);
    case.requests = vec![request("web-4", 4, KEY_B, RequestState::Pending)];
    assert!(plan_creates(&case.plan(), "web-5", 5));
}

fn plan_creates(plan: &Plan, name: &str, revision: i64) -> bool {
    plan.steps.iter().any(|s| {
        matches!(s, Step::CreateRequest { name: n, revision: r, .. } if n == name && *r == revision)
    })
}

#[test]
fn a_request_that_no_longer_matches_is_deleted_before_it_is_recreated() {
    let mut case = with_key(issuing_case());
    let mut stale = request("web-1", 1, KEY_A, RequestState::Pending);
    stale.mismatches = Ok(vec!["spec.dnsNames".into()]);
    case.requests = vec![stale];
    let plan = case.plan();
    assert_eq!(plan.steps, [Step::DeleteRequests(vec!["web-1".into()])]);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(1)));

    // Signed by another key.
    case.requests = vec![request("web-1", 1, KEY_B, RequestState::Pending)];
    assert_eq!(
        case.plan().steps,
        [Step::DeleteRequests(vec!["web-1".into()])]
    );
}

#[test]
fn a_failure_from_an_earlier_attempt_is_not_this_attempts_outcome() {
    let mut case = with_key(issuing_case());
    let failed_before = request(
        "web-1",
        1,
        KEY_A,
        RequestState::Failed {
            reason: "Failed".into(),
            message: "boom".into(),
            failed_at: Some(ts("2026-05-31T22:00:00Z")),
        },
    );
    case.requests = vec![failed_before];
    assert_eq!(
        case.plan().steps,
        [Step::DeleteRequests(vec!["web-1".into()])]
    );
}

#[test]
fn a_pending_request_is_waited_for() {
    let mut case = with_key(issuing_case());
    case.requests = vec![request("web-1", 1, KEY_A, RequestState::Pending)];
    let plan = case.plan();
    assert!(plan.steps.is_empty());
    assert!(plan.events.is_empty());
    assert_eq!(
        reason_of(&plan, "Issuing"),
        Some((ConditionStatus::True, "DoesNotExist".into()))
    );
}

#[test]
fn duplicate_requests_keep_the_oldest() {
    let mut case = with_key(issuing_case());
    let mut older = request("web-1", 1, KEY_A, RequestState::Pending);
    older.created = Some(ts("2026-05-31T10:00:00Z"));
    let newer = request("web-1-dup", 1, KEY_A, RequestState::Pending);
    case.requests = vec![newer, older];
    assert_eq!(
        case.plan().steps,
        [Step::DeleteRequests(vec!["web-1-dup".into()])]
    );
}

// ---------------------------------------------------------------------------------------------
// Issuing.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_failed_request_fails_the_issuance_and_starts_the_backoff() {
    let mut case = with_key(issuing_case());
    case.certificate
        .status
        .as_mut()
        .unwrap()
        .failed_issuance_attempts = Some(2);
    case.requests = vec![request(
        "web-1",
        1,
        KEY_A,
        RequestState::Failed {
            reason: "Failed".into(),
            message: "order is in \"invalid\" state".into(),
            failed_at: Some(ts("2026-06-01T00:00:00Z")),
        },
    )];
    let plan = case.plan();
    let issuing = condition(&plan, "Issuing").unwrap();
    assert_eq!(issuing.status, ConditionStatus::False);
    assert_eq!(issuing.reason.as_deref(), Some("Failed"));
    let message = "The certificate request has failed to complete and will be retried: order is in \"invalid\" state";
    assert_eq!(issuing.message.as_deref(), Some(message));
    assert_eq!(plan.status.failed_issuance_attempts, Some(3));
    assert_eq!(plan.status.last_failure_time, Some(Time(now())));
    assert_eq!(
        plan.events,
        [PlannedEvent {
            warning: true,
            reason: "Failed",
            message: message.into()
        }]
    );
    let audit = plan.audit.unwrap();
    assert_eq!(audit.event, "failed");
    assert_eq!(audit.revision, 1);
    assert_eq!(audit.reason.as_deref(), Some("Failed"));
}

#[test]
fn a_denied_request_fails_with_its_reason() {
    let mut case = with_key(issuing_case());
    case.requests = vec![request(
        "web-1",
        1,
        KEY_A,
        RequestState::Failed {
            reason: "Denied".into(),
            message: "policy says no".into(),
            failed_at: Some(now()),
        },
    )];
    let plan = case.plan();
    assert_eq!(
        reason_of(&plan, "Issuing"),
        Some((ConditionStatus::False, "Denied".into()))
    );
    assert_eq!(plan.status.failed_issuance_attempts, Some(1));
}

#[test]
fn an_issued_request_is_written_and_the_revision_moves_on() {
    let mut case = with_key(issuing_case());
    case.certificate
        .status
        .as_mut()
        .unwrap()
        .failed_issuance_attempts = Some(2);
    case.certificate.status.as_mut().unwrap().last_failure_time =
        Some(Time(ts("2026-05-01T00:00:00Z")));
    let leaf = cert_info(
        "2026-06-01T00:00:00Z",
        "2026-06-01T03:00:00Z",
        &["example.com"],
        KEY_A,
    );
    case.requests = vec![request(
        "web-1",
        1,
        KEY_A,
        RequestState::Issued(CertState::Valid(Box::new(leaf))),
    )];
    let plan = case.plan();
    assert_eq!(
        plan.steps,
        [
            Step::WriteSecret {
                request: "web-1".into(),
                key_secret: "web-k3y".into()
            },
            Step::DeleteKeySecrets(vec!["web-k3y".into()]),
        ]
    );
    assert_eq!(plan.status.revision, Some(1));
    assert!(condition(&plan, "Issuing").is_none());
    let ready = condition(&plan, "Ready").unwrap();
    assert_eq!(ready.status, ConditionStatus::True);
    assert_eq!(ready.message.as_deref(), Some(READY_MESSAGE));
    assert_eq!(
        plan.status.not_after,
        Some(Time(ts("2026-06-01T03:00:00Z")))
    );
    assert_eq!(
        plan.status.renewal_time,
        Some(Time(ts("2026-06-01T02:00:00Z")))
    );
    assert_eq!(plan.status.failed_issuance_attempts, None);
    assert_eq!(plan.status.last_failure_time, None);
    assert_eq!(plan.status.next_private_key_secret_name, None);
    assert_eq!(plan.events[0].message, ISSUED_MESSAGE);
    assert_eq!(plan.events[0].reason, "Issuing");
    let audit = plan.audit.unwrap();
    assert_eq!(audit.event, "issued");
    assert_eq!(audit.serial.as_deref(), Some("0a1b"));
    // Wakes at the new renewal time, two hours away.
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(7200)));
}

#[test]
fn a_renewal_is_audited_as_renewed_and_prunes_history() {
    let mut case = with_key(Case::new(certificate(
        spec(),
        Some(CertificateStatus {
            revision: Some(2),
            ..issuing_status("Renewing", "2026-05-31T23:59:00Z")
        }),
    )));
    let leaf = cert_info(
        "2026-06-01T00:00:00Z",
        "2026-08-30T00:00:00Z",
        &["example.com"],
        KEY_A,
    );
    case.requests = vec![
        request("web-1", 1, KEY_B, RequestState::Pending),
        request("web-2", 2, KEY_A, RequestState::Pending),
        request(
            "web-3",
            3,
            KEY_A,
            RequestState::Issued(CertState::Valid(Box::new(leaf))),
        ),
    ];
    let plan = case.plan();
    assert_eq!(plan.audit.as_ref().unwrap().event, "renewed");
    assert_eq!(plan.status.revision, Some(3));
    // History limit 1: after revision 3, revisions 1 and 2 go.
    assert!(
        plan.steps
            .contains(&Step::DeleteRequests(vec!["web-2".into(), "web-1".into()]))
    );
}

#[test]
fn an_issued_certificate_for_another_key_is_never_stored() {
    let mut case = with_key(issuing_case());
    let leaf = cert_info(
        "2026-06-01T00:00:00Z",
        "2026-06-02T00:00:00Z",
        &["example.com"],
        KEY_B,
    );
    case.requests = vec![request(
        "web-1",
        1,
        KEY_A,
        RequestState::Issued(CertState::Valid(Box::new(leaf))),
    )];
    let plan = case.plan();
    assert_eq!(plan.steps, [Step::DeleteRequests(vec!["web-1".into()])]);
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::WriteSecret { .. }))
    );
    assert_eq!(
        reason_of(&plan, "Issuing"),
        Some((ConditionStatus::False, "InvalidCertificate".into()))
    );
    assert_eq!(plan.status.failed_issuance_attempts, Some(1));

    case.requests[0].state = RequestState::Issued(CertState::Invalid("bad".into()));
    assert_eq!(
        condition(&case.plan(), "Issuing")
            .unwrap()
            .message
            .as_deref(),
        Some(
            "The certificate request has failed to complete and will be retried: the issued \
             certificate is invalid: bad"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Revision history.
// ---------------------------------------------------------------------------------------------

#[test]
fn revision_history_keeps_the_newest() {
    let requests = vec![
        request("web-1", 1, KEY_A, RequestState::Pending),
        request("web-2", 2, KEY_A, RequestState::Pending),
        request("web-3", 3, KEY_A, RequestState::Pending),
        request("web-4", 4, KEY_A, RequestState::Pending),
        RequestFacts {
            revision: None,
            ..request("web-x", 0, KEY_A, RequestState::Pending)
        },
    ];
    assert_eq!(
        requests_to_prune(&requests, Some(3), 1),
        ["web-x", "web-2", "web-1"]
    );
    assert_eq!(requests_to_prune(&requests, Some(3), 2), ["web-x", "web-1"]);
    assert_eq!(requests_to_prune(&requests, Some(3), 10), ["web-x"]);
    // Never below 1.
    assert_eq!(
        requests_to_prune(&requests, Some(3), 0),
        ["web-x", "web-2", "web-1"]
    );
    // Nothing issued yet: only the unrevisioned one.
    assert_eq!(requests_to_prune(&requests, None, 1), ["web-x"]);
}

#[test]
fn history_is_pruned_on_an_idle_certificate() {
    let mut s = spec();
    s.revision_history_limit = Some(2);
    let mut case = Case::new(certificate(s, Some(issued_status(3))));
    case.requests = vec![
        request("web-1", 1, KEY_A, RequestState::Pending),
        request("web-2", 2, KEY_A, RequestState::Pending),
        request("web-3", 3, KEY_A, RequestState::Pending),
    ];
    assert_eq!(
        case.plan().steps,
        [Step::DeleteRequests(vec!["web-1".into()])]
    );
}

// ---------------------------------------------------------------------------------------------
// Readiness.
// ---------------------------------------------------------------------------------------------

#[test]
fn readiness_reports_the_first_violation() {
    let mut case = Case::new(certificate(spec(), Some(issued_status(1))));
    case.now = ts("2026-08-01T00:00:00Z");
    let plan = case.plan();
    let ready = condition(&plan, "Ready").unwrap();
    assert_eq!(ready.status, ConditionStatus::False);
    assert_eq!(ready.reason.as_deref(), Some("Expired"));
    // The expired certificate is renewed.
    assert_eq!(
        reason_of(&plan, "Issuing"),
        Some((ConditionStatus::True, "Expired".into()))
    );
}

#[test]
fn renewal_disabled_has_no_renewal_time_but_wakes_for_expiry() {
    let mut s = spec();
    s.renewal = Some(CertificateRenewal {
        policy: Some(RenewalPolicy::Disabled),
        windows: None,
    });
    let mut case = Case::new(certificate(s, Some(issued_status(1))));
    case.now = ts("2026-07-29T23:00:00Z");
    let plan = case.plan();
    assert_eq!(plan.status.renewal_time, None);
    assert!(condition(&plan, "Issuing").is_none());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(3601)));
}

#[test]
fn the_transition_time_of_ready_is_kept_when_nothing_changes() {
    let case = Case::new(certificate(spec(), Some(issued_status(1))));
    let first_plan = case.plan();
    let mut again = Case::new(certificate(spec(), Some(first_plan.status.clone())));
    again.now = ts("2026-06-02T00:00:00Z");
    let second = again.plan();
    assert_eq!(
        first_plan.status, second.status,
        "a steady state writes nothing"
    );
}
