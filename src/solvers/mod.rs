//! How challenges are solved: the objects and processes that make an ACME server's validation
//! request succeed: HTTP-01 and DNS-01 (RFC 2136, cert-manager webhooks); TLS-ALPN-01 joins this
//! module.

pub mod dns01;
pub mod http01;
