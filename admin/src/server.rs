//! The admin API's routes, independent of how the node stores anything.
//!
//! `/health` and `/metrics` need no token (load balancers and Prometheus poll them; neither
//! reveals more than counts); every other route wants the admin bearer token.

use std::future::Future;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use subtle::ConstantTimeEq;

use crate::api::{ApiError, NodeStatus};

/// Content type of Prometheus' text exposition format, version 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// What the node offers the admin API.
pub trait AdminBackend: Send + Sync + 'static {
    /// The node's current status.
    fn status(&self) -> impl Future<Output = Result<NodeStatus, String>> + Send;

    /// The node's metrics in Prometheus' text exposition format 0.0.4.
    fn metrics(&self) -> impl Future<Output = Result<String, String>> + Send;
}

/// Answers one admin request. `token` is the bearer token every route but `/health` and
/// `/metrics` requires.
pub async fn handle<B: AdminBackend, RB>(
    backend: &B,
    token: &str,
    request: Request<RB>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if request.method() == Method::GET && path == "/health" {
        return text(StatusCode::OK, "ok\n");
    }
    if request.method() == Method::GET && path == "/metrics" {
        return match backend.metrics().await {
            Ok(body) => {
                let mut response = text_owned(StatusCode::OK, body);
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(METRICS_CONTENT_TYPE),
                );
                response
            }
            Err(message) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &message),
        };
    }
    if !authorized(&request, token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        );
    }
    match (request.method(), path) {
        (&Method::GET, "/v1/status") => match backend.status().await {
            Ok(status) => json(StatusCode::OK, &status),
            Err(message) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &message),
        },
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such admin route"),
    }
}

fn authorized<RB>(request: &Request<RB>, token: &str) -> bool {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(err) => text_owned(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

fn text_owned(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json(
        status,
        &ApiError {
            code: code.to_owned(),
            message: message.to_owned(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::StorageStatus;
    use http_body_util::BodyExt;

    struct Fixed;

    impl AdminBackend for Fixed {
        async fn status(&self) -> Result<NodeStatus, String> {
            Ok(NodeStatus {
                node_id: "n1".into(),
                version: "0".into(),
                uptime_seconds: 1,
                data_dir: "/d".into(),
                s3_listen: "127.0.0.1:1".into(),
                storage: StorageStatus::default(),
            })
        }

        async fn metrics(&self) -> Result<String, String> {
            Ok("# TYPE up gauge\nup 1\n".into())
        }
    }

    fn get(path: &str, token: Option<&str>) -> Request<()> {
        let mut builder = Request::get(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder.body(()).unwrap()
    }

    #[tokio::test]
    async fn health_is_open_and_status_needs_the_token() {
        let ok = handle(&Fixed, "secret", get("/health", None)).await;
        assert_eq!(ok.status(), StatusCode::OK);
        let denied = handle(&Fixed, "secret", get("/v1/status", Some("wrong"))).await;
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
        let status = handle(&Fixed, "secret", get("/v1/status", Some("secret"))).await;
        assert_eq!(status.status(), StatusCode::OK);
        let body = status.into_body().collect().await.unwrap().to_bytes();
        let parsed: NodeStatus = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed.node_id, "n1");
        let missing = handle(&Fixed, "secret", get("/v1/nope", Some("secret"))).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn metrics_are_served_without_a_token_in_the_text_format() {
        let response = handle(&Fixed, "secret", get("/metrics", None)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; version=0.0.4"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"# TYPE up gauge\nup 1\n");
    }
}
