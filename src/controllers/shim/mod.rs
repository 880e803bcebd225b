//! Ingress and Gateway → Certificates, from cert-manager's annotations
//! (cert-manager's `ingress-shim`): `reference/cert-manager-api.md` §2.3.
//!
//! [`plan`] is the pure translation of annotations into Certificates and the comparison that
//! decides what to write; [`ingress`] is the controller that watches Ingresses and the
//! Certificates they own.

use std::sync::Arc;

use super::{Context, Shutdown};

pub mod gateway;
pub mod ingress;
pub mod plan;

pub use plan::ShimSettings;

/// Runs the shim controllers until `shutdown` resolves.
/// Runs the shim controllers until `shutdown` resolves: the Ingress shim always, the Gateway
/// shim with `--enable-gateway-api` (the Gateway API CRDs must then be installed).
pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    if ctx.config.shim.enable_gateway_api {
        futures::join!(
            ingress::run(ctx.clone(), shutdown.clone()),
            gateway::run(ctx, shutdown),
        );
    } else {
        ingress::run(ctx, shutdown).await;
    }
}
