//! certsmith: issues and renews TLS certificates through ACME, API-compatible with cert-manager v1.
#![forbid(unsafe_code)]

pub mod acme;
pub mod api;
pub mod cli;
pub mod controllers;
pub mod crds;
pub mod pki;
pub mod runtime;
pub mod solvers;
