//! How challenges are solved: the objects and processes that make an ACME server's validation
//! request succeed. Only HTTP-01 so far; DNS-01 and TLS-ALPN-01 solvers join this module.

pub mod http01;
