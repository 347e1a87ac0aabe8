//! The stylesheet and script of the pages, compiled in and served by the app (no CDN).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::Problem;
use crate::extract::Path;

const FILES: [(&str, &str, &str); 2] = [
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
];

/// `GET /static/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => Problem::not_found(format!("no static file '{file}'")).into_response(),
    }
}
