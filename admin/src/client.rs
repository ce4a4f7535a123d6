//! The admin API client behind `mucura admin …`.

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ring::Layout;

use crate::api::{
    AccountStatus, AntiEntropyRound, ApiError, ClusterStatus, CreateKeyRequest, CreateUserRequest,
    DeletedKey, DeletedUser, KeyAnswer, KeyList, LocateReport, NewAccessKey, NodeStatus,
    ResyncSummary, ScrubSummary, UpdateUserRequest, UserAnswer, UserList,
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

    /// `POST /v1/users`: creates a user.
    pub async fn create_user(
        &self,
        request: &CreateUserRequest,
    ) -> Result<UserAnswer, ClientError> {
        self.call(http::Method::POST, "/v1/users", Some(request))
            .await
    }

    /// `GET /v1/users`: every user.
    pub async fn list_users(&self) -> Result<UserList, ClientError> {
        self.get_json("/v1/users").await
    }

    /// `GET /v1/users/{id}`: one user and its keys.
    pub async fn show_user(&self, id: &str) -> Result<UserAnswer, ClientError> {
        self.get_json(&format!("/v1/users/{}", path_segment(id)))
            .await
    }

    /// `POST /v1/users/{id}/disable` or `…/enable`.
    pub async fn set_user_status(
        &self,
        id: &str,
        status: AccountStatus,
    ) -> Result<UserAnswer, ClientError> {
        let path = format!("/v1/users/{}/{}", path_segment(id), status_verb(status));
        self.post_json(&path).await
    }

    /// `POST /v1/users/{id}/revoke-sessions`: ends every temporary credential of the user.
    pub async fn revoke_sessions(&self, id: &str) -> Result<UserAnswer, ClientError> {
        let path = format!("/v1/users/{}/revoke-sessions", path_segment(id));
        self.post_json(&path).await
    }

    /// `PATCH /v1/users/{id}`: changes the fields `request` names (`null` ones are cleared).
    pub async fn update_user(
        &self,
        id: &str,
        request: &UpdateUserRequest,
    ) -> Result<UserAnswer, ClientError> {
        let path = format!("/v1/users/{}", path_segment(id));
        self.call(http::Method::PATCH, &path, Some(request)).await
    }

    /// `DELETE /v1/users/{id}`: deletes the user and its keys (its buckets stay).
    pub async fn delete_user(&self, id: &str) -> Result<DeletedUser, ClientError> {
        let path = format!("/v1/users/{}", path_segment(id));
        self.call(http::Method::DELETE, &path, None::<&()>).await
    }

    /// `POST /v1/users/{id}/keys`: a new access key for the user, secret included.
    pub async fn create_key(
        &self,
        user: &str,
        request: &CreateKeyRequest,
    ) -> Result<NewAccessKey, ClientError> {
        let path = format!("/v1/users/{}/keys", path_segment(user));
        self.call(http::Method::POST, &path, Some(request)).await
    }

    /// `GET /v1/keys[?user=U]`: the keys of one user, or every key.
    pub async fn list_keys(&self, user: Option<&str>) -> Result<KeyList, ClientError> {
        match user {
            Some(user) => {
                self.get_json(&format!("/v1/keys?user={}", path_segment(user)))
                    .await
            }
            None => self.get_json("/v1/keys").await,
        }
    }

    /// `POST /v1/keys/{id}/disable` or `…/enable`.
    pub async fn set_key_status(
        &self,
        key: &str,
        status: AccountStatus,
    ) -> Result<KeyAnswer, ClientError> {
        let path = format!("/v1/keys/{}/{}", path_segment(key), status_verb(status));
        self.post_json(&path).await
    }

    /// `POST /v1/keys/{id}/rotate`: a new key for the same user; the old one is disabled.
    pub async fn rotate_key(&self, key: &str) -> Result<NewAccessKey, ClientError> {
        self.post_json(&format!("/v1/keys/{}/rotate", path_segment(key)))
            .await
    }

    /// `GET /v1/usage` with the filters of `query`.
    pub async fn usage(
        &self,
        query: &crate::usage::UsageQuery,
    ) -> Result<crate::usage::UsageAnswer, ClientError> {
        let query = query.to_query();
        if query.is_empty() {
            self.get_json("/v1/usage").await
        } else {
            self.get_json(&format!("/v1/usage?{query}")).await
        }
    }

    /// `DELETE /v1/keys/{id}`.
    pub async fn delete_key(&self, key: &str) -> Result<DeletedKey, ClientError> {
        let path = format!("/v1/keys/{}", path_segment(key));
        self.call(http::Method::DELETE, &path, None::<&()>).await
    }

    /// Sends `body` (if any) as JSON and decodes the JSON answer.
    async fn call<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let encoded = match body {
            Some(body) => {
                Bytes::from(
                    serde_json::to_vec(body).map_err(|source| ClientError::Encode {
                        url: url.clone(),
                        source,
                    })?,
                )
            }
            None => Bytes::new(),
        };
        let answer = self.send(method, path, encoded).await?;
        serde_json::from_slice(&answer).map_err(|source| ClientError::Decode { url, source })
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

    /// Sends one request and returns the body of a successful answer (the status is in the
    /// error of a failed one).
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

/// Characters a path segment or query value keeps as they are: RFC 3986's unreserved set.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` made safe as one path segment or query value.
fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// The last path segment that sets `status`.
fn status_verb(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "enable",
        AccountStatus::Disabled => "disable",
    }
}
