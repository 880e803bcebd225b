//! Placeholder until the reconciler lands.

use std::sync::Arc;

use super::{Context, Shutdown};

pub async fn run(_ctx: Arc<Context>, shutdown: Shutdown) {
    shutdown.await;
}
