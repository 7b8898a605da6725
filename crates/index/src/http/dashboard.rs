//! `GET /`: the dashboard, one page compiled into the binary (no CDN, no build step): nodes with
//! their health and load, live streams with their viewers per edge, where the scheduler sends a
//! selected stream's viewers, and the live event feed (Server-Sent Events from `/api/v1/events`).
//! A play token in the page's own `?token=` goes with its requests.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("../../assets/dashboard.html");

pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAGE).into_response()
}
