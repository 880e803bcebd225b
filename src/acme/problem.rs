//! What went wrong talking to an ACME server, and what to do about it: try again soon
//! ([`ErrorClass::Retryable`]), wait as long as the server asks ([`ErrorClass::RateLimited`]), or
//! stop and tell a person ([`ErrorClass::Terminal`]).
//!
//! Messages never carry key material: they are built from the server's problem document, the
//! HTTP status and transport errors, none of which include the account key or an EAB key.

use std::fmt;
use std::time::{Duration, SystemTime};

/// The ACME problem type namespace (RFC 8555 §6.7).
pub const ACME_ERROR_NS: &str = "urn:ietf:params:acme:error:";

/// How the caller should react to an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient (network, timeouts, 5xx, `badNonce`, `serverInternal`): try again with backoff.
    Retryable,
    /// The server is rate limiting: try again no earlier than `retry_after` (when it said).
    RateLimited { retry_after: Option<Duration> },
    /// Trying again without a change (of configuration, identifiers, key, …) will fail again.
    Terminal,
}

/// An error of an ACME operation, classified. `Display` gives the message in cert-manager's form
/// for server problems (`<status> urn:ietf:params:acme:error:<type>: <detail>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeError {
    class: ErrorClass,
    /// The short problem type (`rateLimited`), when the server sent one.
    problem_type: Option<String>,
    /// The HTTP status, when known.
    status: Option<u16>,
    /// The full message.
    message: String,
    /// When the server asked to be contacted again (`Retry-After`), whatever the class.
    retry_after: Option<Duration>,
}

impl std::error::Error for AcmeError {}

impl fmt::Display for AcmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl AcmeError {
    /// An error of certsmith's own making (bad configuration, unusable input), not the server's.
    pub fn terminal(message: impl Into<String>) -> AcmeError {
        AcmeError {
            class: ErrorClass::Terminal,
            problem_type: None,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A transient error of certsmith's own making.
    pub fn retryable(message: impl Into<String>) -> AcmeError {
        AcmeError {
            class: ErrorClass::Retryable,
            problem_type: None,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// An error built from a problem document (as the server sent it, or as a challenge or order
    /// carries it), classified.
    pub fn from_problem(
        problem_type: Option<&str>,
        status: Option<u16>,
        detail: Option<&str>,
        retry_after: Option<Duration>,
    ) -> AcmeError {
        let short = problem_type.map(|t| t.strip_prefix(ACME_ERROR_NS).unwrap_or(t).to_owned());
        let class = classify_problem(short.as_deref(), status, detail, retry_after);
        let mut message = String::new();
        if let Some(status) = status {
            message.push_str(&status.to_string());
            message.push(' ');
        }
        match problem_type {
            Some(t) if t.contains(':') => message.push_str(t),
            Some(t) => {
                message.push_str(ACME_ERROR_NS);
                message.push_str(t);
            }
            None => message.push_str("unknown ACME error"),
        }
        if let Some(detail) = detail.filter(|d| !d.is_empty()) {
            message.push_str(": ");
            message.push_str(detail);
        }
        let retry_after = match class {
            ErrorClass::RateLimited { retry_after } => retry_after,
            _ => retry_after,
        };
        AcmeError {
            class,
            problem_type: short,
            status,
            message: message.trim_end().to_owned(),
            retry_after,
        }
    }

    /// The same error with `context: ` in front of the message.
    pub fn context(mut self, context: impl fmt::Display) -> AcmeError {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn class(&self) -> ErrorClass {
        self.class
    }

    pub fn is_retryable(&self) -> bool {
        self.class == ErrorClass::Retryable
    }

    pub fn is_rate_limited(&self) -> bool {
        matches!(self.class, ErrorClass::RateLimited { .. })
    }

    pub fn is_terminal(&self) -> bool {
        self.class == ErrorClass::Terminal
    }

    /// The short ACME problem type, e.g. `rateLimited`, `accountDoesNotExist`.
    pub fn problem_type(&self) -> Option<&str> {
        self.problem_type.as_deref()
    }

    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// How long the server asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The full message (same as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A short, human explanation of what the class and problem type mean for the user.
    pub fn summary(&self) -> &'static str {
        match (self.class, self.problem_type.as_deref()) {
            (ErrorClass::RateLimited { .. }, _) => "the ACME server is rate limiting this account",
            (_, Some("badNonce")) => "the ACME server rejected a replayed nonce (transient)",
            (_, Some("serverInternal")) => "the ACME server had an internal error (transient)",
            (_, Some("unauthorized")) => "the ACME server refused: the account is not authorized",
            (_, Some("rejectedIdentifier")) => "the ACME server will not issue for this identifier",
            (_, Some("unsupportedIdentifier")) => {
                "the ACME server does not support this identifier type"
            }
            (_, Some("malformed")) => "the ACME server rejected a malformed request",
            (_, Some("caa")) => "a CAA record forbids this CA from issuing for the domain",
            (_, Some("dns")) => "the ACME server could not resolve the domain",
            (_, Some("connection")) => {
                "the ACME server could not connect to validate the challenge"
            }
            (_, Some("externalAccountRequired")) => {
                "the ACME server requires External Account Binding (externalAccountBinding)"
            }
            (_, Some("accountDoesNotExist")) => "no ACME account exists for this key",
            (_, Some("badCSR")) => "the ACME server rejected the certificate signing request",
            (_, Some("invalidContact" | "unsupportedContact")) => {
                "the ACME server rejected the contact email address"
            }
            (_, Some("userActionRequired")) => {
                "the ACME server requires an action from the account owner (e.g. accept new terms of service)"
            }
            (ErrorClass::Retryable, _) => "a transient error talking to the ACME server",
            (ErrorClass::Terminal, _) => "the ACME server refused the request",
        }
    }

    /// Classifies an instant-acme error. `retry_after` is the `Retry-After` that the HTTP client
    /// captured for the failing request (instant-acme drops response headers on errors).
    pub(crate) fn from_acme(
        error: instant_acme::Error,
        retry_after: Option<Duration>,
    ) -> AcmeError {
        use instant_acme::Error as E;
        match error {
            E::Api(problem) => {
                let mut e = AcmeError::from_problem(
                    problem.r#type.as_deref(),
                    problem.status,
                    problem.detail.as_deref(),
                    retry_after,
                );
                for sub in &problem.subproblems {
                    let ty = sub.r#type.as_deref().unwrap_or_default();
                    let ty = ty.strip_prefix(ACME_ERROR_NS).unwrap_or(ty);
                    let identifier = sub
                        .identifier
                        .as_ref()
                        .map(|i| i.authorized(false).to_string())
                        .unwrap_or_default();
                    e.message.push_str(&format!(
                        "; {identifier}: {ty}: {}",
                        sub.detail.as_deref().unwrap_or_default()
                    ));
                }
                e
            }
            E::Timeout(at) => {
                let mut e = AcmeError::retryable("timed out waiting for the ACME server");
                e.retry_after =
                    at.map(|at| at.saturating_duration_since(std::time::Instant::now()));
                e
            }
            E::KeyRejected => AcmeError::terminal(
                "the key was rejected: certsmith's ACME client needs an ECDSA P-256 key in PKCS#8 form",
            ),
            E::Crypto => AcmeError::terminal("a cryptographic operation failed"),
            E::Unsupported(what) => {
                AcmeError::terminal(format!("the ACME server does not support {what}"))
            }
            E::InvalidUri(e) => AcmeError::terminal(format!("invalid ACME server URL: {e}")),
            E::Http(e) => AcmeError::terminal(format!("invalid ACME request: {e}")),
            E::Json(e) => {
                AcmeError::retryable(format!("unexpected response from the ACME server: {e}"))
            }
            E::Hyper(e) => AcmeError::retryable(format!("HTTP error: {}", chain(&e))),
            E::Other(e) => match e.downcast::<super::client::TransportError>() {
                Ok(transport) => {
                    let mut e = AcmeError::retryable(transport.to_string());
                    e.retry_after = retry_after;
                    e
                }
                Err(other) => AcmeError::retryable(chain(other.as_ref())),
            },
            E::Str(s) => {
                AcmeError::retryable(format!("unexpected response from the ACME server: {s}"))
            }
            other => AcmeError::retryable(chain(&other)),
        }
    }
}

/// An error and its sources, `: `-separated.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = e.source();
    }
    message
}

fn classify_problem(
    problem_type: Option<&str>,
    status: Option<u16>,
    detail: Option<&str>,
    retry_after: Option<Duration>,
) -> ErrorClass {
    match problem_type {
        Some("rateLimited") => ErrorClass::RateLimited {
            retry_after: retry_after.or_else(|| detail.and_then(retry_after_from_detail)),
        },
        Some("badNonce" | "serverInternal" | "connection" | "orderNotReady") => {
            ErrorClass::Retryable
        }
        Some(
            "unauthorized"
            | "rejectedIdentifier"
            | "unsupportedIdentifier"
            | "malformed"
            | "caa"
            | "dns"
            | "tls"
            | "incorrectResponse"
            | "externalAccountRequired"
            | "accountDoesNotExist"
            | "badCSR"
            | "badPublicKey"
            | "badSignatureAlgorithm"
            | "badRevocationReason"
            | "alreadyRevoked"
            | "alreadyReplaced"
            | "invalidContact"
            | "unsupportedContact"
            | "userActionRequired"
            | "compound"
            | "invalidProfile",
        ) => ErrorClass::Terminal,
        _ => match status {
            Some(429) => ErrorClass::RateLimited {
                retry_after: retry_after.or_else(|| detail.and_then(retry_after_from_detail)),
            },
            Some(s) if s >= 500 => ErrorClass::Retryable,
            Some(408) => ErrorClass::Retryable,
            Some(_) => ErrorClass::Terminal,
            None => ErrorClass::Retryable,
        },
    }
}

/// Boulder words rate limits as `…: retry after 2026-01-02 03:04:05 UTC: see https://…`.
fn retry_after_from_detail(detail: &str) -> Option<Duration> {
    let lower = detail.to_ascii_lowercase();
    let at = lower.find("retry after ")? + "retry after ".len();
    let rest = &detail[at..];
    // "2026-01-02 03:04:05 UTC" or an RFC 3339 timestamp.
    let candidate: String = rest.chars().take(23).collect();
    let normalized = candidate
        .trim_end_matches([':', ',', '.'])
        .replace(" UTC", "Z")
        .replacen(' ', "T", 1);
    let ts: jiff::Timestamp = normalized
        .parse()
        .or_else(|_| rest.split_whitespace().next().unwrap_or_default().parse())
        .ok()?;
    let target = SystemTime::from(ts);
    Some(
        target
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(json: &str) -> instant_acme::Error {
        instant_acme::Error::Api(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn server_problems_are_classified() {
        let cases = [
            ("badNonce", 400, ErrorClass::Retryable),
            ("serverInternal", 500, ErrorClass::Retryable),
            ("connection", 400, ErrorClass::Retryable),
            ("unauthorized", 403, ErrorClass::Terminal),
            ("rejectedIdentifier", 400, ErrorClass::Terminal),
            ("malformed", 400, ErrorClass::Terminal),
            ("caa", 403, ErrorClass::Terminal),
            ("dns", 400, ErrorClass::Terminal),
            ("externalAccountRequired", 401, ErrorClass::Terminal),
            ("accountDoesNotExist", 400, ErrorClass::Terminal),
            ("somethingNew", 503, ErrorClass::Retryable),
            ("somethingNew", 404, ErrorClass::Terminal),
        ];
        for (ty, status, class) in cases {
            let json = format!(
                r#"{{"type":"urn:ietf:params:acme:error:{ty}","detail":"d","status":{status}}}"#
            );
            let e = AcmeError::from_acme(problem(&json), None);
            assert_eq!(e.class(), class, "{ty}");
            assert_eq!(e.problem_type(), Some(ty));
            assert_eq!(e.status(), Some(status));
            assert_eq!(
                e.to_string(),
                format!("{status} urn:ietf:params:acme:error:{ty}: d")
            );
        }
    }

    #[test]
    fn rate_limits_carry_the_retry_after() {
        let e = AcmeError::from_acme(
            problem(
                r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders","status":429}"#,
            ),
            Some(Duration::from_secs(7)),
        );
        assert_eq!(
            e.class(),
            ErrorClass::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.is_rate_limited());
        assert_eq!(e.summary(), "the ACME server is rate limiting this account");

        // Without the header, Boulder's "retry after <time>" in the detail is used.
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600);
        let detail = format!(
            "too many certificates already issued: retry after {}: see https://letsencrypt.org/docs/rate-limits/",
            later.strftime("%Y-%m-%d %H:%M:%S UTC")
        );
        let json = serde_json::json!({
            "type": "urn:ietf:params:acme:error:rateLimited", "detail": detail, "status": 429
        });
        let e = AcmeError::from_acme(problem(&json.to_string()), None);
        let wait = e.retry_after().expect("parsed from the detail");
        assert!(
            wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3600),
            "{wait:?}"
        );

        // A bare 429 is a rate limit too.
        let e = AcmeError::from_acme(problem(r#"{"status":429,"detail":"slow down"}"#), None);
        assert!(e.is_rate_limited());
    }

    #[test]
    fn subproblems_are_listed() {
        let e = AcmeError::from_acme(
            problem(
                r#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"Error creating new order","status":400,
                    "subproblems":[{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"forbidden name","identifier":{"type":"dns","value":"bad.example"}}]}"#,
            ),
            None,
        );
        assert!(e.is_terminal());
        assert_eq!(
            e.to_string(),
            "400 urn:ietf:params:acme:error:rejectedIdentifier: Error creating new order; bad.example: rejectedIdentifier: forbidden name"
        );
    }

    #[test]
    fn client_side_errors_are_classified() {
        assert!(AcmeError::from_acme(instant_acme::Error::KeyRejected, None).is_terminal());
        assert!(
            AcmeError::from_acme(instant_acme::Error::Str("no nonce found"), None).is_retryable()
        );
        assert!(
            AcmeError::from_acme(
                instant_acme::Error::Unsupported("ACME renewal information (ARI)"),
                None
            )
            .is_terminal()
        );
        let transport =
            instant_acme::Error::Other(Box::new(super::super::client::TransportError::Timeout {
                url: "https://acme.example/dir".into(),
                after: Duration::from_secs(30),
            }));
        let e = AcmeError::from_acme(transport, None);
        assert!(e.is_retryable());
        assert!(e.to_string().contains("no response within 30s"), "{e}");
        let e = AcmeError::terminal("x").context("registering");
        assert_eq!(e.to_string(), "registering: x");
    }
}
