//! The node's HTTP side: the media port (HTTP-FLV, and `/api/v1/versions` as SRS mounts it there
//! for health checks) and the shared accept loop.

pub mod flv;
pub mod serve;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::context::NodeContext;

/// Routes of the media port.
pub fn media_router(ctx: Arc<NodeContext>) -> Router {
    Router::new()
        .route("/api/v1/versions", get(crate::api::versions))
        .route("/{app}/{file}", get(flv::play))
        .with_state(ctx)
}
