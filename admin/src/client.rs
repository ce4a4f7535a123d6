//! The admin API client behind `mucura admin …`.

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ring::Layout;

use crate::api::{
    AntiEntropyRound, ApiError, ClusterStatus, LocateReport, NodeStatus, ResyncSummary,
    ScrubSummary,
};

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
    #[error("cannot encode the request for {url}: {source}")]
    Encode {
        url: String,
        source: serde_json::Error,
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
    http: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
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

    /// `GET /v1/cluster/status`: the cluster as the node sees it.
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        self.get_json("/v1/cluster/status").await
    }

    /// `GET /v1/cluster/layout`: the layout the node uses.
    pub async fn cluster_layout(&self) -> Result<Layout, ClientError> {
        self.get_json("/v1/cluster/layout").await
    }

    /// `POST /v1/cluster/layout`: applies `layout`, which must be the node's version + 1.
    pub async fn apply_cluster_layout(&self, layout: &Layout) -> Result<(), ClientError> {
        let url = format!("{}/v1/cluster/layout", self.base);
        let body = serde_json::to_vec(layout).map_err(|source| ClientError::Encode {
            url: url.clone(),
            source,
        })?;
        self.send(http::Method::POST, "/v1/cluster/layout", Bytes::from(body))
            .await
            .map(|_| ())
    }

    /// `POST /v1/cluster/anti-entropy`: runs an anti-entropy round on the node now.
    pub async fn run_anti_entropy(&self) -> Result<AntiEntropyRound, ClientError> {
        let path = "/v1/cluster/anti-entropy";
        let body = self.send(http::Method::POST, path, Bytes::new()).await?;
        let url = format!("{}{path}", self.base);
        serde_json::from_slice(&body).map_err(|source| ClientError::Decode { url, source })
    }

    /// `GET /v1/cluster/locate`: where object `key` of `bucket` has its metadata and blocks.
    pub async fn locate(&self, bucket: &str, key: &str) -> Result<LocateReport, ClientError> {
        let encode = |text: &str| {
            percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        };
        let path = format!(
            "/v1/cluster/locate?bucket={}&key={}",
            encode(bucket),
            encode(key)
        );
        self.get_json(&path).await
    }

    /// `POST /v1/cluster/scrub`: re-hashes the node's block files now, repairing corrupt
    /// ones from replicas.
    pub async fn run_scrub(&self) -> Result<ScrubSummary, ClientError> {
        self.post_json("/v1/cluster/scrub").await
    }

    /// `POST /v1/cluster/resync`: fetches now every referenced block the node owns but
    /// lacks.
    pub async fn run_resync(&self) -> Result<ResyncSummary, ClientError> {
        self.post_json("/v1/cluster/resync").await
    }

    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, ClientError> {
        let body = self.send(http::Method::POST, path, Bytes::new()).await?;
        let url = format!("{}{path}", self.base);
        serde_json::from_slice(&body).map_err(|source| ClientError::Decode { url, source })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self.send(http::Method::GET, path, Bytes::new()).await?;
        let url = format!("{}{path}", self.base);
        serde_json::from_slice(&body).map_err(|source| ClientError::Decode { url, source })
    }

    /// Sends one request and returns the body of a successful answer.
    async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Bytes,
    ) -> Result<Bytes, ClientError> {
        let url = format!("{}{path}", self.base);
        let request = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
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
        Ok(body)
    }
}
