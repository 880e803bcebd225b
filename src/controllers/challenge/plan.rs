//! What a Challenge needs next: pure functions.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::acme::AuthorizationSnapshot;
use crate::api::Challenge;
use crate::api::acme::AcmeState;
use crate::api::challenge::{
    CHALLENGE_FINALIZER, ChallengeStatus, ChallengeType, LEGACY_CHALLENGE_FINALIZER,
};

pub const REASON_AUTHORIZED: &str = "Successfully authorized domain";
pub const REASON_DNS01_NOT_IMPLEMENTED: &str = "DNS-01 is not implemented yet";

/// Why a DNS-01 Challenge cannot be solved: its provider is not implemented yet.
pub fn dns01_not_implemented(challenge: &Challenge) -> String {
    match challenge.spec.solver.dns01.as_ref() {
        Some(dns01) => format!(
            "{REASON_DNS01_NOT_IMPLEMENTED} for the {} provider",
            crate::solvers::dns01::provider_name(dns01)
        ),
        None => format!("{REASON_DNS01_NOT_IMPLEMENTED}: the solver has no dns01 section"),
    }
}
pub const REASON_WAITING_FOR_VALIDATION: &str =
    "Waiting for the ACME server to validate the challenge";

/// What the Challenge controller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Being deleted: clean up the solver, then remove the finalizer.
    Delete,
    /// Our finalizer is missing (or only the legacy one is there): add it first.
    AddFinalizer,
    /// Final, but the solver may still be in place: clean it up and mark it so.
    CleanUp,
    /// Final and cleaned up: nothing to do.
    Idle,
    /// A challenge certsmith cannot solve yet (a DNS-01 provider not implemented).
    NotImplemented,
    /// Not accepted yet: present the solver, check it, then accept the challenge.
    Present,
    /// Accepted (`processing`): poll the authorization.
    Poll,
}

pub fn next(challenge: &Challenge) -> Next {
    if challenge.metadata.deletion_timestamp.is_some() {
        return Next::Delete;
    }
    let state = challenge.state();
    if state.is_some_and(|s| s.is_final()) {
        let status = challenge.status.as_ref();
        let dirty = status.is_some_and(|s| s.presented == Some(true) || s.processing == Some(true));
        return if dirty { Next::CleanUp } else { Next::Idle };
    }
    if finalizers_with_ours(challenge.finalizers()).is_some() {
        return Next::AddFinalizer;
    }
    if challenge.spec.type_ == ChallengeType::Dns01
        && !challenge
            .spec
            .solver
            .dns01
            .as_ref()
            .is_some_and(crate::solvers::dns01::is_supported)
    {
        return Next::NotImplemented;
    }
    match state {
        Some(AcmeState::Processing | AcmeState::Valid | AcmeState::Ready) => Next::Poll,
        _ => Next::Present,
    }
}

/// The finalizers with ours added and the legacy one replaced; `None` when nothing changes.
pub fn finalizers_with_ours(current: &[String]) -> Option<Vec<String>> {
    if current.iter().any(|f| f == CHALLENGE_FINALIZER)
        && !current.iter().any(|f| f == LEGACY_CHALLENGE_FINALIZER)
    {
        return None;
    }
    let mut finalizers: Vec<String> = current
        .iter()
        .filter(|f| *f != LEGACY_CHALLENGE_FINALIZER && *f != CHALLENGE_FINALIZER)
        .cloned()
        .collect();
    finalizers.push(CHALLENGE_FINALIZER.to_owned());
    Some(finalizers)
}

/// The finalizers without ours (nor the legacy one); `None` when neither is there.
pub fn finalizers_without_ours(current: &[String]) -> Option<Vec<String>> {
    if !current
        .iter()
        .any(|f| f == CHALLENGE_FINALIZER || f == LEGACY_CHALLENGE_FINALIZER)
    {
        return None;
    }
    Some(
        current
            .iter()
            .filter(|f| *f != LEGACY_CHALLENGE_FINALIZER && *f != CHALLENGE_FINALIZER)
            .cloned()
            .collect(),
    )
}

/// With `waitInsteadOfSelfCheck`: how long is left to wait after `presented_at`, or `None` when
/// the solver has no such wait (the self-check decides). An unparsable duration is an error.
pub fn wait_instead_of_self_check(
    challenge: &Challenge,
    presented_at: Option<&Time>,
    now: jiff::Timestamp,
) -> Result<Option<Duration>, String> {
    let Some(text) = challenge.spec.solver.wait_instead_of_self_check.as_deref() else {
        return Ok(None);
    };
    let wait = crate::pki::renewal::parse_go_duration(text)
        .map_err(|_| format!("waitInsteadOfSelfCheck: {text:?} is not a duration"))?;
    let wait = Duration::try_from(wait).unwrap_or_default();
    let since = presented_at
        .map(|t| now.duration_since(t.0))
        .unwrap_or_default();
    let since = Duration::try_from(since).unwrap_or_default();
    Ok(Some(wait.saturating_sub(since)))
}

/// What the server says about an accepted challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The authorization is valid.
    Valid,
    /// The authorization failed: the final state and the reason.
    Failed { state: AcmeState, reason: String },
    /// Still being validated.
    Processing,
    /// The challenge has not been accepted (e.g. the accept request was lost): accept it again.
    NotAccepted,
}

pub fn outcome(challenge: &Challenge, authorization: &AuthorizationSnapshot) -> Outcome {
    let acme_type = challenge.spec.type_.acme_type();
    match authorization.status {
        AcmeState::Valid => Outcome::Valid,
        AcmeState::Invalid | AcmeState::Expired | AcmeState::Errored => {
            let detail = authorization
                .error(Some(acme_type))
                .map(ToString::to_string)
                .unwrap_or_else(|| format!("the authorization is {}", authorization.status));
            Outcome::Failed {
                state: if authorization.status == AcmeState::Expired {
                    AcmeState::Expired
                } else {
                    AcmeState::Invalid
                },
                reason: format!(
                    "Error accepting authorization: acme: authorization error for {}: {detail}",
                    challenge.spec.dns_name
                ),
            }
        }
        _ => match authorization.challenge(acme_type).map(|c| c.status) {
            Some(AcmeState::Pending) => Outcome::NotAccepted,
            _ => Outcome::Processing,
        },
    }
}

/// The status with `change` applied to a copy of the current one.
pub fn updated(
    challenge: &Challenge,
    change: impl FnOnce(&mut ChallengeStatus),
) -> ChallengeStatus {
    let mut status = challenge.status.clone().unwrap_or_default();
    change(&mut status);
    status
}

/// The status of a challenge that reached a final state.
pub fn finished(challenge: &Challenge, state: AcmeState, reason: &str) -> ChallengeStatus {
    updated(challenge, |s| {
        s.state = Some(state);
        s.reason = Some(reason.to_owned());
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::ChallengeSnapshot;
    use crate::api::challenge::ChallengeSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn challenge(type_: ChallengeType, state: Option<AcmeState>, finalizers: &[&str]) -> Challenge {
        let mut c = Challenge::new(
            "web-1-2-3",
            ChallengeSpec {
                dns_name: "example.com".into(),
                type_,
                ..ChallengeSpec::default()
            },
        );
        c.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
        c.status = Some(ChallengeStatus {
            state,
            ..ChallengeStatus::default()
        });
        c
    }

    #[test]
    fn next_steps() {
        let ours = [CHALLENGE_FINALIZER];
        assert_eq!(
            next(&challenge(ChallengeType::Http01, None, &[])),
            Next::AddFinalizer
        );
        assert_eq!(
            next(&challenge(
                ChallengeType::Http01,
                None,
                &[LEGACY_CHALLENGE_FINALIZER]
            )),
            Next::AddFinalizer
        );
        assert_eq!(
            next(&challenge(ChallengeType::Http01, None, &ours)),
            Next::Present
        );
        assert_eq!(
            next(&challenge(
                ChallengeType::Http01,
                Some(AcmeState::Pending),
                &ours
            )),
            Next::Present
        );
        assert_eq!(
            next(&challenge(
                ChallengeType::Http01,
                Some(AcmeState::Processing),
                &ours
            )),
            Next::Poll
        );
        assert_eq!(
            next(&challenge(ChallengeType::Dns01, None, &ours)),
            Next::NotImplemented
        );
        // DNS-01 through RFC 2136 is solved like HTTP-01: present, then poll once accepted.
        let mut rfc2136 = challenge(ChallengeType::Dns01, None, &ours);
        rfc2136.spec.solver.dns01 = Some(crate::api::acme::AcmeChallengeSolverDns01 {
            rfc2136: Some(Default::default()),
            ..Default::default()
        });
        assert_eq!(next(&rfc2136), Next::Present);
        rfc2136.status.as_mut().unwrap().state = Some(AcmeState::Processing);
        assert_eq!(next(&rfc2136), Next::Poll);
        // Another provider is not implemented yet, and says which.
        let mut acme_dns = challenge(ChallengeType::Dns01, None, &ours);
        acme_dns.spec.solver.dns01 = Some(crate::api::acme::AcmeChallengeSolverDns01 {
            acme_dns: Some(Default::default()),
            ..Default::default()
        });
        assert_eq!(next(&acme_dns), Next::NotImplemented);
        assert_eq!(
            dns01_not_implemented(&acme_dns),
            "DNS-01 is not implemented yet for the acmeDNS provider"
        );
        assert_eq!(
            next(&challenge(
                ChallengeType::Http01,
                Some(AcmeState::Valid),
                &ours
            )),
            Next::Idle
        );
        let mut presented = challenge(ChallengeType::Http01, Some(AcmeState::Invalid), &ours);
        presented.status.as_mut().unwrap().presented = Some(true);
        assert_eq!(next(&presented), Next::CleanUp);
        presented.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        assert_eq!(next(&presented), Next::Delete);
    }

    #[test]
    fn finalizers_are_added_replaced_and_removed() {
        let s = |v: &[&str]| v.iter().map(|f| f.to_string()).collect::<Vec<_>>();
        assert_eq!(
            finalizers_with_ours(&s(&[])),
            Some(s(&[CHALLENGE_FINALIZER]))
        );
        assert_eq!(finalizers_with_ours(&s(&[CHALLENGE_FINALIZER])), None);
        assert_eq!(
            finalizers_with_ours(&s(&["other", LEGACY_CHALLENGE_FINALIZER])),
            Some(s(&["other", CHALLENGE_FINALIZER]))
        );
        assert_eq!(
            finalizers_without_ours(&s(&[
                "other",
                CHALLENGE_FINALIZER,
                LEGACY_CHALLENGE_FINALIZER
            ])),
            Some(s(&["other"]))
        );
        assert_eq!(finalizers_without_ours(&s(&["other"])), None);
    }

    #[test]
    fn wait_instead_of_self_check_counts_from_presentation() {
        let mut c = challenge(ChallengeType::Http01, None, &[]);
        let now: jiff::Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        let presented = Time("2026-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(
            wait_instead_of_self_check(&c, Some(&presented), now),
            Ok(None)
        );
        c.spec.solver.wait_instead_of_self_check = Some("1m".into());
        assert_eq!(
            wait_instead_of_self_check(&c, Some(&presented), now),
            Ok(Some(Duration::from_secs(30)))
        );
        c.spec.solver.wait_instead_of_self_check = Some("0s".into());
        assert_eq!(
            wait_instead_of_self_check(&c, Some(&presented), now),
            Ok(Some(Duration::ZERO))
        );
        c.spec.solver.wait_instead_of_self_check = Some("soon".into());
        assert!(wait_instead_of_self_check(&c, Some(&presented), now).is_err());
    }

    fn authorization(
        status: AcmeState,
        challenge_status: AcmeState,
        error: Option<&str>,
    ) -> AuthorizationSnapshot {
        AuthorizationSnapshot {
            url: "a".into(),
            identifier: "example.com".into(),
            ip: false,
            wildcard: false,
            status,
            challenges: vec![ChallengeSnapshot {
                type_: "http-01".into(),
                url: "c".into(),
                token: "t".into(),
                status: challenge_status,
                error: error.map(|d| {
                    crate::acme::AcmeError::from_problem(
                        Some("urn:ietf:params:acme:error:unauthorized"),
                        Some(403),
                        Some(d),
                        None,
                    )
                }),
                key_authorization: "t.k".into(),
                dns_value: "d".into(),
            }],
            retry_after: None,
        }
    }

    #[test]
    fn authorization_outcomes() {
        let c = challenge(ChallengeType::Http01, Some(AcmeState::Processing), &[]);
        assert_eq!(
            outcome(&c, &authorization(AcmeState::Valid, AcmeState::Valid, None)),
            Outcome::Valid
        );
        assert_eq!(
            outcome(
                &c,
                &authorization(AcmeState::Pending, AcmeState::Processing, None)
            ),
            Outcome::Processing
        );
        assert_eq!(
            outcome(
                &c,
                &authorization(AcmeState::Pending, AcmeState::Pending, None)
            ),
            Outcome::NotAccepted
        );
        assert_eq!(
            outcome(&c, &authorization(AcmeState::Invalid, AcmeState::Invalid, Some("The key authorization file from the server did not match"))),
            Outcome::Failed {
                state: AcmeState::Invalid,
                reason: "Error accepting authorization: acme: authorization error for example.com: 403 urn:ietf:params:acme:error:unauthorized: The key authorization file from the server did not match".into()
            }
        );
        let Outcome::Failed { state, .. } = outcome(
            &c,
            &authorization(AcmeState::Expired, AcmeState::Pending, None),
        ) else {
            panic!()
        };
        assert_eq!(state, AcmeState::Expired);
        let done = finished(&c, AcmeState::Valid, REASON_AUTHORIZED);
        assert_eq!(
            done.reason.as_deref(),
            Some("Successfully authorized domain")
        );
    }
}
