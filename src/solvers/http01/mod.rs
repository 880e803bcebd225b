//! HTTP-01: a solver Pod serves the key authorization, a Service and an Ingress route the ACME
//! server's request to it, and a self-check confirms the route before the ACME server is asked
//! to validate. The objects are cert-manager's (section 4 of the compatibility reference), so a
//! cluster moving between the two controllers finds the solver objects it expects.
//!
//! * [`present`] creates or keeps the Pod, Service and Ingress of a challenge;
//! * [`self_check`] fetches the challenge URL once;
//! * [`cleanup`] removes them again.
//!
//! [`objects`] builds the objects (pure), [`server`] is `certsmith solver`, the process in the
//! solver Pod.

use std::collections::BTreeMap;
use std::net::SocketAddr;

mod apply;
pub mod httproute;
pub mod objects;
mod self_check;
pub mod server;

pub use apply::{cleanup, present};
pub use self_check::{TIMEOUT as SELF_CHECK_TIMEOUT, challenge_url, self_check};

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "certsmith";

/// How the controller runs HTTP-01 solvers; cert-manager's `--acme-http01-solver-*` flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Http01Settings {
    /// The image of the solver Pods: certsmith's own image, whose entrypoint is the `certsmith`
    /// binary (`--acme-http01-solver-image`).
    pub solver_image: String,
    /// Labels added to every solver object (`--acme-http01-solver-extra-labels`); the identity
    /// labels cannot be overridden.
    pub extra_labels: BTreeMap<String, String>,
    /// `runAsNonRoot` of the solver Pods (`--acme-http01-solver-run-as-non-root`, default true).
    pub run_as_non_root: bool,
    /// The DNS servers the self-check resolves names with
    /// (`--acme-http01-solver-nameservers`); empty: the system resolver.
    pub self_check_nameservers: Vec<SocketAddr>,
}

impl Http01Settings {
    /// Settings with cert-manager's defaults for everything but the image.
    pub fn new(solver_image: impl Into<String>) -> Http01Settings {
        Http01Settings {
            solver_image: solver_image.into(),
            extra_labels: BTreeMap::new(),
            run_as_non_root: true,
            self_check_nameservers: Vec::new(),
        }
    }
}

/// The outcome of one self-check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelfCheck {
    /// The challenge URL answered 200 with exactly the key authorization.
    Passed,
    /// Why not, for people (e.g. `wrong status code '404', expected '200'`); goes into the
    /// Challenge's `status.reason` after "Waiting for HTTP-01 challenge propagation: ".
    Failed(String),
}

/// Why an HTTP-01 operation could not be carried out. Never holds a key authorization.
#[derive(Debug, thiserror::Error)]
pub enum Http01Error {
    /// The challenge is not an HTTP-01 challenge with an `http01` solver.
    #[error("the challenge is not an HTTP-01 challenge with an http01 solver")]
    NotHttp01,
    /// The solver uses a feature certsmith does not implement yet.
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
    /// The Challenge lacks a field that the API server sets; it must be one read from the API.
    #[error("the Challenge has no {0}")]
    IncompleteChallenge(&'static str),
    /// The Ingress named by `http01.ingress.name` does not exist.
    #[error("the Ingress {namespace}/{name} named by the solver does not exist")]
    IngressNotFound { namespace: String, name: String },
    /// The self-check's nameservers cannot be used.
    #[error("the HTTP-01 self-check resolver: {0}")]
    Resolver(String),
    /// A request to the API server failed.
    #[error("{action}: {error}")]
    Kube {
        action: String,
        #[source]
        error: kube::Error,
    },
}

impl Http01Error {
    /// A short, fixed label for metrics and event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Http01Error::NotHttp01 => "not_http01",
            Http01Error::Unsupported(_) => "unsupported",
            Http01Error::IncompleteChallenge(_) => "incomplete_challenge",
            Http01Error::IngressNotFound { .. } => "ingress_not_found",
            Http01Error::Resolver(_) => "resolver",
            Http01Error::Kube { .. } => "kube",
        }
    }

    /// Whether trying again later may help (the API server or the cluster may change), as
    /// opposed to a challenge that can never be solved as configured.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Http01Error::Kube { .. } | Http01Error::IngressNotFound { .. }
        )
    }
}
