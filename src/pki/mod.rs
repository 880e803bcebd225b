//! Keys, certificates and the arithmetic of renewal. Pure functions: no Kubernetes, no network.

pub mod csr;
pub(crate) mod der;
pub mod keys;
pub mod renewal;
pub mod sign;
pub mod x509;
