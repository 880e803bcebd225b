//! What an issuer's status should say, given what was observed: pure functions.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::acme::Registration;
use crate::api::acme::AcmeIssuerStatus;
use crate::api::issuer::{ISSUER_CONDITION_READY, IssuerCondition, IssuerConfig, IssuerStatus};
use crate::api::meta::ConditionStatus;
use crate::controllers::conditions::{self, Condition};

pub const REASON_ACME_REGISTERED: &str = "ACMEAccountRegistered";
pub const MESSAGE_ACME_REGISTERED: &str = "The ACME account was registered with the ACME server";
pub const REASON_ACME_REGISTER_FAILED: &str = "ErrRegisterACMEAccount";
pub const REASON_SELF_SIGNED_READY: &str = "IsReady";
pub const REASON_CA_VERIFIED: &str = "KeyPairVerified";
pub const MESSAGE_CA_VERIFIED: &str = "Signing CA verified";
pub const REASON_CA_GET_KEY_PAIR: &str = "ErrGetKeyPair";
pub const REASON_CA_INVALID_KEY_PAIR: &str = "ErrInvalidKeyPair";
pub const MESSAGE_CA_KEY_PAIR_ERROR: &str = "Error getting keypair for CA issuer: ";
pub const REASON_NOT_IMPLEMENTED: &str = "NotImplemented";
pub const REASON_INVALID_CONFIG: &str = "InvalidConfig";

/// The `Ready` condition to set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

impl Ready {
    pub fn yes(reason: &str, message: impl Into<String>) -> Ready {
        Ready {
            status: ConditionStatus::True,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    pub fn no(reason: &str, message: impl Into<String>) -> Ready {
        Ready {
            status: ConditionStatus::False,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.status == ConditionStatus::True
    }
}

/// The condition of issuer types that need no I/O to judge; `None` for ACME and CA issuers.
pub fn static_ready(config: Option<IssuerConfig<'_>>) -> Option<Ready> {
    match config {
        None => Some(Ready::no(
            REASON_INVALID_CONFIG,
            "exactly one of acme, ca, selfSigned, vault or venafi must be set",
        )),
        Some(IssuerConfig::SelfSigned(_)) => Some(Ready::yes(REASON_SELF_SIGNED_READY, "")),
        Some(IssuerConfig::Vault(_)) => Some(Ready::no(
            REASON_NOT_IMPLEMENTED,
            "certsmith does not implement the vault issuer yet",
        )),
        Some(IssuerConfig::Venafi(_)) => Some(Ready::no(
            REASON_NOT_IMPLEMENTED,
            "certsmith does not implement the venafi issuer yet",
        )),
        Some(IssuerConfig::Acme(_) | IssuerConfig::Ca(_)) => None,
    }
}

/// The condition of a CA issuer whose Secret `secret_name` has `data` (`None`: no such Secret).
pub fn ca_ready(secret_name: &str, data: Option<&BTreeMap<String, ByteString>>) -> Ready {
    let get_error = |why: String| {
        Ready::no(
            REASON_CA_GET_KEY_PAIR,
            format!("{MESSAGE_CA_KEY_PAIR_ERROR}{why}"),
        )
    };
    let invalid = |why: String| {
        Ready::no(
            REASON_CA_INVALID_KEY_PAIR,
            format!("{MESSAGE_CA_KEY_PAIR_ERROR}{why}"),
        )
    };
    let Some(data) = data else {
        return get_error(format!("secret \"{secret_name}\" not found"));
    };
    let entry = |key: &str| {
        data.get(key)
            .filter(|v| !v.0.is_empty())
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
    };
    let Some(cert_pem) = entry("tls.crt") else {
        return get_error(format!("secret \"{secret_name}\" has no tls.crt"));
    };
    let Some(key_pem) = entry("tls.key") else {
        return get_error(format!("secret \"{secret_name}\" has no tls.key"));
    };
    let cert = match crate::pki::x509::parse_leaf_pem(&cert_pem) {
        Ok(cert) => cert,
        Err(e) => return invalid(format!("the certificate in secret \"{secret_name}\": {e}")),
    };
    // The key parser's errors describe the encoding, never the key itself.
    let key = match crate::pki::keys::parse_pem(&key_pem) {
        Ok(key) => key,
        Err(e) => return invalid(format!("the private key in secret \"{secret_name}\": {e}")),
    };
    if !cert.has_public_key(&crate::pki::keys::public_key_der(&key)) {
        return invalid(format!(
            "the private key in secret \"{secret_name}\" does not match the certificate's public key"
        ));
    }
    if !cert.is_ca {
        return invalid(format!(
            "the certificate in secret \"{secret_name}\" is not a CA"
        ));
    }
    Ready::yes(REASON_CA_VERIFIED, MESSAGE_CA_VERIFIED)
}

/// The condition after registering (or failing to register) the ACME account.
pub fn acme_ready(result: &Result<Registration, String>) -> Ready {
    match result {
        Ok(_) => Ready::yes(REASON_ACME_REGISTERED, MESSAGE_ACME_REGISTERED),
        Err(message) => Ready::no(
            REASON_ACME_REGISTER_FAILED,
            format!("Failed to register ACME account: {message}"),
        ),
    }
}

/// The `status.acme` after registering: the new account, or (on failure) what was there.
pub fn acme_status(
    result: &Result<Registration, String>,
    current: Option<&AcmeIssuerStatus>,
) -> Option<AcmeIssuerStatus> {
    match result {
        Ok(registration) => Some(AcmeIssuerStatus {
            uri: Some(registration.uri.clone()),
            last_registered_email: Some(registration.email.clone()).filter(|e| !e.is_empty()),
            last_private_key_hash: Some(registration.key_hash.clone()),
        }),
        Err(_) => current.cloned(),
    }
}

/// The whole status to write: `current` with `Ready` set and `acme` replaced.
pub fn desired_status(
    current: Option<&IssuerStatus>,
    ready: &Ready,
    acme: Option<AcmeIssuerStatus>,
    generation: Option<i64>,
    now: Time,
) -> IssuerStatus {
    let mut conditions_list = current
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    conditions::set(
        &mut conditions_list,
        IssuerCondition::new(
            ISSUER_CONDITION_READY,
            ready.status,
            &ready.reason,
            &ready.message,
            generation,
        ),
        now,
    );
    IssuerStatus {
        conditions: Some(conditions_list),
        acme,
    }
}

/// Whether the `Ready` condition changes (status, reason or message), i.e. worth an Event.
pub fn ready_changed(current: Option<&IssuerStatus>, ready: &Ready) -> bool {
    match current.and_then(|s| s.condition(ISSUER_CONDITION_READY)) {
        Some(c) => {
            c.status != ready.status
                || c.reason.as_deref() != Some(ready.reason.as_str())
                || c.message.as_deref() != Some(ready.message.as_str())
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::RegistrationAction;
    use crate::api::issuer::{CaIssuer, SelfSignedIssuer, VaultIssuer};
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn simple_issuer_types() {
        let ready =
            static_ready(Some(IssuerConfig::SelfSigned(&SelfSignedIssuer::default()))).unwrap();
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (ConditionStatus::True, "IsReady")
        );
        let vault = VaultIssuer::default();
        let ready = static_ready(Some(IssuerConfig::Vault(&vault))).unwrap();
        assert_eq!(ready.reason, "NotImplemented");
        assert_eq!(
            ready.message,
            "certsmith does not implement the vault issuer yet"
        );
        assert!(static_ready(Some(IssuerConfig::Ca(&CaIssuer::default()))).is_none());
        assert!(!static_ready(None).unwrap().is_ready());
    }

    fn ca_secret(is_ca: bool, matching_key: bool) -> BTreeMap<String, ByteString> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        if is_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let cert = params.self_signed(&key).unwrap();
        let stored_key = if matching_key {
            key
        } else {
            KeyPair::generate().unwrap()
        };
        BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(cert.pem().into_bytes())),
            (
                "tls.key".to_owned(),
                ByteString(stored_key.serialize_pem().into_bytes()),
            ),
        ])
    }

    #[test]
    fn ca_key_pairs_are_verified() {
        let ok = ca_ready("ca", Some(&ca_secret(true, true)));
        assert_eq!(ok, Ready::yes("KeyPairVerified", "Signing CA verified"));
        let missing = ca_ready("ca", None);
        assert_eq!(missing.reason, "ErrGetKeyPair");
        assert_eq!(
            missing.message,
            "Error getting keypair for CA issuer: secret \"ca\" not found"
        );
        let mut no_key = ca_secret(true, true);
        no_key.remove("tls.key");
        assert_eq!(ca_ready("ca", Some(&no_key)).reason, "ErrGetKeyPair");
        let not_ca = ca_ready("ca", Some(&ca_secret(false, true)));
        assert_eq!(not_ca.reason, "ErrInvalidKeyPair");
        assert!(
            not_ca.message.ends_with("is not a CA"),
            "{}",
            not_ca.message
        );
        let mismatch = ca_ready("ca", Some(&ca_secret(true, false)));
        assert_eq!(mismatch.reason, "ErrInvalidKeyPair");
        assert!(
            mismatch.message.contains("does not match"),
            "{}",
            mismatch.message
        );
        assert!(!mismatch.message.contains("BEGIN"));
    }

    #[test]
    fn acme_registration_sets_status_and_condition() {
        let registration = Registration {
            uri: "https://acme.example/acct/1".into(),
            email: "ops@example.com".into(),
            key_hash: "aGFzaA==".into(),
            action: RegistrationAction::Registered,
        };
        let ok: Result<Registration, String> = Ok(registration);
        let ready = acme_ready(&ok);
        assert_eq!(
            ready,
            Ready::yes(REASON_ACME_REGISTERED, MESSAGE_ACME_REGISTERED)
        );
        let acme = acme_status(&ok, None).unwrap();
        assert_eq!(acme.uri.as_deref(), Some("https://acme.example/acct/1"));
        assert_eq!(
            acme.last_registered_email.as_deref(),
            Some("ops@example.com")
        );
        assert_eq!(acme.last_private_key_hash.as_deref(), Some("aGFzaA=="));

        let status = desired_status(
            None,
            &ready,
            Some(acme.clone()),
            Some(3),
            time("2026-01-01T00:00:00Z"),
        );
        let condition = status.condition("Ready").unwrap();
        assert_eq!(condition.observed_generation, Some(3));
        assert_eq!(
            condition.last_transition_time,
            Some(time("2026-01-01T00:00:00Z"))
        );
        assert!(!ready_changed(Some(&status), &ready));

        let failed: Result<Registration, String> = Err("connection refused".into());
        let not_ready = acme_ready(&failed);
        assert_eq!(not_ready.reason, "ErrRegisterACMEAccount");
        assert_eq!(
            not_ready.message,
            "Failed to register ACME account: connection refused"
        );
        assert!(ready_changed(Some(&status), &not_ready));
        // A failure keeps the account that was registered before.
        assert_eq!(acme_status(&failed, Some(&acme)), Some(acme.clone()));
        let later = desired_status(
            Some(&status),
            &not_ready,
            Some(acme),
            Some(4),
            time("2026-01-02T00:00:00Z"),
        );
        let condition = later.condition("Ready").unwrap();
        assert_eq!(
            condition.last_transition_time,
            Some(time("2026-01-02T00:00:00Z"))
        );
        assert_eq!(condition.observed_generation, Some(4));
        assert_eq!(later.conditions.unwrap().len(), 1);
    }
}
