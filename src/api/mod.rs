//! The cert-manager-compatible API: CRD types only, no I/O.
//!
//! `cert-manager.io/v1`: [`Certificate`], [`CertificateRequest`], [`Issuer`], [`ClusterIssuer`].
//! `acme.cert-manager.io/v1`: [`Order`], [`Challenge`].

pub mod acme;
pub mod annotations;
pub mod certificate;
pub mod certificate_request;
pub mod challenge;
pub mod issuer;
pub mod meta;
pub mod order;

pub use certificate::Certificate;
pub use certificate_request::CertificateRequest;
pub use challenge::Challenge;
pub use issuer::{ClusterIssuer, Issuer};
pub use order::Order;
