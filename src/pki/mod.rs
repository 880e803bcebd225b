//! Keys, certificates and the arithmetic of renewal. Pure functions: no Kubernetes, no network.

pub mod keys;
pub mod renewal;
pub mod x509;
