//! Process plumbing: the `controller` command's flags, logging, shutdown.

pub mod controller;
pub mod telemetry;
