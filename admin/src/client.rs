//! The admin API client behind `mucura admin …`.

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::api::{ApiError, NodeStatus};

/// What can go wrong talking to a node's admin API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid admin URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        url: String,
        source: hyper_util::client::legacy::Error,
    },
    #[error("reading the answer from {url}: {source}")]
    Body { url: String, source: hyper::Error },
    #[error("{url} answered {status}: {message}")]
    Api {
        url: String,
        status: StatusCode,
        message: String,
    },
    #[error("{url} answered a document we cannot read: {source}")]
    Decode {
        url: String,
        source: serde_json::Error,
    },
}

/// A connection to one node's admin port.
pub struct AdminClient {
    base: String,
    token: String,
    http: Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
}

impl AdminClient {
    /// A client for `base` (e.g. `http://127.0.0.1:9001`) using the bearer `token`.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Self {
        AdminClient {
            base: base.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<NodeStatus, ClientError> {
        self.get_json("/v1/status").await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let request = Request::get(&url)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Empty::new())
            .map_err(|err| ClientError::BadUrl {
                url: url.clone(),
                reason: err.to_string(),
            })?;
        let response =
            self.http
                .request(request)
                .await
                .map_err(|source| ClientError::Unreachable {
                    url: url.clone(),
                    source,
                })?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|source| ClientError::Body {
                url: url.clone(),
                source,
            })?
            .to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<ApiError>(&body)
                .map(|e| e.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(ClientError::Api {
                url,
                status,
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|source| ClientError::Decode { url, source })
    }
}
