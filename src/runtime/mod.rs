//! Process plumbing: the `controller` command's flags, logging, shutdown.

pub mod controller;
pub mod metrics;
pub mod server;
pub mod telemetry;
