//! The admin API's routes, independent of how the node stores anything.
//!
//! `/health` and `/metrics` need no token (load balancers and Prometheus poll them; neither
//! reveals more than counts); every other route wants the admin bearer token.
//!
//! Cluster routes (`/v1/cluster/…`) answer 404 with a clear message on a single node, whose
//! backend keeps the trait's default implementations.
//!
//! User and key routes (`/v1/users…`, `/v1/keys…`) manage who may sign S3 requests:
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /v1/users` ([`CreateUserRequest`]) | [`UserAnswer`] |
//! | `GET /v1/users` | [`UserList`] |
//! | `GET /v1/users/{id}` | [`UserAnswer`] with its keys |
//! | `PATCH /v1/users/{id}` ([`UpdateUserRequest`]: absent keeps, `null` clears) | [`UserAnswer`] |
//! | `DELETE /v1/users/{id}` | [`DeletedUser`] |
//! | `POST /v1/users/{id}/disable`, `…/enable` | [`UserAnswer`] |
//! | `POST /v1/users/{id}/revoke-sessions` | [`UserAnswer`] (temporary credentials issued so far stop working) |
//! | `POST /v1/users/{id}/keys` ([`CreateKeyRequest`], body optional) | [`NewAccessKey`] |
//! | `GET /v1/keys[?user=U]` | [`KeyList`] |
//! | `POST /v1/keys/{id}/disable`, `…/enable` | [`KeyAnswer`] |
//! | `POST /v1/keys/{id}/rotate` | [`NewAccessKey`] (the old key is disabled) |
//! | `DELETE /v1/keys/{id}` | [`DeletedKey`] |
//! | `GET /v1/usage[?user=U][&bucket=B]` | [`UsageAnswer`] (usage per user and bucket) |

use std::future::Future;

use bytes::{Buf, Bytes};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use ring::Layout;
use subtle::ConstantTimeEq;

use crate::api::{
    AccountStatus, AntiEntropyRound, ApiError, ClusterApiError, ClusterStatus, CreateKeyRequest,
    CreateUserRequest, DeletedKey, DeletedUser, IdentityApiError, KeyAnswer, KeyList, LocateReport,
    NewAccessKey, NodeStatus, ResyncSummary, ScrubSummary, UpdateUserRequest, UserAnswer, UserList,
};
use crate::usage::{UsageAnswer, UsageQuery};

/// Content type of Prometheus' text exposition format, version 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Largest request body the admin API reads. A layout of a thousand nodes is ~150 KiB of
/// JSON; 1 MiB leaves room while bounding what one request can make the node buffer.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the node offers the admin API.
pub trait AdminBackend: Send + Sync + 'static {
    /// The node's current status.
    fn status(&self) -> impl Future<Output = Result<NodeStatus, String>> + Send;

    /// The node's metrics in Prometheus' text exposition format 0.0.4.
    fn metrics(&self) -> impl Future<Output = Result<String, String>> + Send;

    /// The cluster as this node sees it. The default is a single node's answer.
    fn cluster_status(
        &self,
    ) -> impl Future<Output = Result<ClusterStatus, ClusterApiError>> + Send {
        async { Err(ClusterApiError::NotClustered) }
    }

    /// The layout this node uses. The default is a single node's answer.
    fn cluster_layout(&self) -> impl Future<Output = Result<Layout, ClusterApiError>> + Send {
        async { Err(ClusterApiError::NotClustered) }
    }

    /// Applies an operator's layout, which must be the current version + 1, and returns once
    /// this node uses it. The default is a single node's answer.
    fn apply_cluster_layout(
        &self,
        layout: Layout,
    ) -> impl Future<Output = Result<(), ClusterApiError>> + Send {
        let _ = layout;
        async { Err(ClusterApiError::NotClustered) }
    }

    /// Runs an anti-entropy round now and returns its report. The default is a single
    /// node's answer.
    fn run_anti_entropy(
        &self,
    ) -> impl Future<Output = Result<AntiEntropyRound, ClusterApiError>> + Send {
        async { Err(ClusterApiError::NotClustered) }
    }

    /// Where object `key` of `bucket` has its metadata and blocks, asking each owner. The
    /// default is a single node's answer.
    fn locate_object(
        &self,
        bucket: String,
        key: String,
    ) -> impl Future<Output = Result<LocateReport, ClusterApiError>> + Send {
        let _ = (bucket, key);
        async { Err(ClusterApiError::NotClustered) }
    }

    /// Re-hashes every local block file now, repairing corrupt ones from a replica, and
    /// returns the report. The default is a single node's answer.
    fn run_scrub(&self) -> impl Future<Output = Result<ScrubSummary, ClusterApiError>> + Send {
        async { Err(ClusterApiError::NotClustered) }
    }

    /// Fetches now every referenced block this node owns but lacks and returns the report.
    /// The default is a single node's answer.
    fn run_resync(&self) -> impl Future<Output = Result<ResyncSummary, ClusterApiError>> + Send {
        async { Err(ClusterApiError::NotClustered) }
    }

    /// Creates a user. The default: users are not supported.
    fn create_user(
        &self,
        request: CreateUserRequest,
    ) -> impl Future<Output = Result<UserAnswer, IdentityApiError>> + Send {
        let _ = request;
        async { Err(IdentityApiError::NotSupported) }
    }

    /// Every user. The default: users are not supported.
    fn list_users(&self) -> impl Future<Output = Result<UserList, IdentityApiError>> + Send {
        async { Err(IdentityApiError::NotSupported) }
    }

    /// One user and its keys. The default: users are not supported.
    fn show_user(
        &self,
        id: String,
    ) -> impl Future<Output = Result<UserAnswer, IdentityApiError>> + Send {
        let _ = id;
        async { Err(IdentityApiError::NotSupported) }
    }

    /// Changes a user's name, subject DN, quotas or expiry. The default: users are not
    /// supported.
    fn update_user(
        &self,
        id: String,
        request: UpdateUserRequest,
    ) -> impl Future<Output = Result<UserAnswer, IdentityApiError>> + Send {
        let _ = (id, request);
        async { Err(IdentityApiError::NotSupported) }
    }

    /// Disables or enables a user. The default: users are not supported.
    fn set_user_status(
        &self,
        id: String,
        status: AccountStatus,
    ) -> impl Future<Output = Result<UserAnswer, IdentityApiError>> + Send {
        let _ = (id, status);
        async { Err(IdentityApiError::NotSupported) }
    }

    /// Revokes every temporary credential issued to a user so far. The default: users are
    /// not supported.
    fn revoke_sessions(
        &self,
        id: String,
    ) -> impl Future<Output = Result<UserAnswer, IdentityApiError>> + Send {
        let _ = id;
        async { Err(IdentityApiError::NotSupported) }
    }

    /// Deletes a user and its keys (never its data). The default: users are not supported.
    fn delete_user(
        &self,
        id: String,
    ) -> impl Future<Output = Result<DeletedUser, IdentityApiError>> + Send {
        let _ = id;
        async { Err(IdentityApiError::NotSupported) }
    }

    /// Creates an access key for user `user`. The default: keys are not supported.
    fn create_key(
        &self,
        user: String,
        request: CreateKeyRequest,
    ) -> impl Future<Output = Result<NewAccessKey, IdentityApiError>> + Send {
        let _ = (user, request);
        async { Err(IdentityApiError::NotSupported) }
    }

    /// The access keys of `user`, or every key. The default: keys are not supported.
    fn list_keys(
        &self,
        user: Option<String>,
    ) -> impl Future<Output = Result<KeyList, IdentityApiError>> + Send {
        let _ = user;
        async { Err(IdentityApiError::NotSupported) }
    }

    /// Disables or enables an access key. The default: keys are not supported.
    fn set_key_status(
        &self,
        key: String,
        status: AccountStatus,
    ) -> impl Future<Output = Result<KeyAnswer, IdentityApiError>> + Send {
        let _ = (key, status);
        async { Err(IdentityApiError::NotSupported) }
    }

    /// Creates a new key for the user of `key` and disables `key`. The default: keys are
    /// not supported.
    fn rotate_key(
        &self,
        key: String,
    ) -> impl Future<Output = Result<NewAccessKey, IdentityApiError>> + Send {
        let _ = key;
        async { Err(IdentityApiError::NotSupported) }
    }

    /// Deletes an access key. The default: keys are not supported.
    fn delete_key(
        &self,
        key: String,
    ) -> impl Future<Output = Result<DeletedKey, IdentityApiError>> + Send {
        let _ = key;
        async { Err(IdentityApiError::NotSupported) }
    }

    /// Objects and bytes stored per user and bucket (`GET /v1/usage`). The default: usage
    /// is not accounted.
    fn usage(
        &self,
        query: UsageQuery,
    ) -> impl Future<Output = Result<UsageAnswer, IdentityApiError>> + Send {
        let _ = query;
        async { Err(IdentityApiError::NotSupported) }
    }
}

/// Answers one admin request. `token` is the bearer token every route but `/health` and
/// `/metrics` requires.
pub async fn handle<B, RB>(backend: &B, token: &str, request: Request<RB>) -> Response<Full<Bytes>>
where
    B: AdminBackend,
    RB: hyper::body::Body,
    RB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
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
        (&Method::GET, "/v1/cluster/status") => cluster_answer(backend.cluster_status().await),
        (&Method::GET, "/v1/cluster/layout") => cluster_answer(backend.cluster_layout().await),
        (&Method::POST, "/v1/cluster/layout") => match read_layout(request).await {
            Ok(layout) => cluster_answer(backend.apply_cluster_layout(layout).await),
            Err(failure) => cluster_failure(&failure),
        },
        (&Method::POST, "/v1/cluster/anti-entropy") => {
            cluster_answer(backend.run_anti_entropy().await)
        }
        (&Method::POST, "/v1/cluster/scrub") => cluster_answer(backend.run_scrub().await),
        (&Method::POST, "/v1/cluster/resync") => cluster_answer(backend.run_resync().await),
        (&Method::GET, "/v1/usage") => {
            match UsageQuery::parse(request.uri().query().unwrap_or("")) {
                Ok(query) => identity_answer(backend.usage(query).await),
                Err(failure) => identity_failure(&failure),
            }
        }
        (&Method::GET, "/v1/cluster/locate") => {
            match locate_params(request.uri().query().unwrap_or("")) {
                Ok((bucket, key)) => cluster_answer(backend.locate_object(bucket, key).await),
                Err(failure) => cluster_failure(&failure),
            }
        }
        _ => identity_route(backend, request).await,
    }
}

/// Answers the user and key routes; anything else is 404.
async fn identity_route<B, RB>(backend: &B, request: Request<RB>) -> Response<Full<Bytes>>
where
    B: AdminBackend,
    RB: hyper::body::Body,
    RB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = request.method().clone();
    let decoded: Result<Vec<String>, _> = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map(|text| text.into_owned())
        })
        .collect();
    let Ok(decoded) = decoded else {
        return identity_failure(&IdentityApiError::Invalid(
            "the path is not valid UTF-8".to_owned(),
        ));
    };
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let owned = |segment: &str| segment.to_owned();
    match (&method, segments.as_slice()) {
        (&Method::POST, ["v1", "users"]) => {
            match read_json::<CreateUserRequest, RB>(request, "user").await {
                Ok(body) => identity_answer(backend.create_user(body).await),
                Err(message) => identity_failure(&IdentityApiError::Invalid(message)),
            }
        }
        (&Method::GET, ["v1", "users"]) => identity_answer(backend.list_users().await),
        (&Method::GET, ["v1", "users", id]) => identity_answer(backend.show_user(owned(id)).await),
        (&Method::PATCH, ["v1", "users", id]) => {
            let id = owned(id);
            match read_json::<UpdateUserRequest, RB>(request, "user update").await {
                Ok(body) => identity_answer(backend.update_user(id, body).await),
                Err(message) => identity_failure(&IdentityApiError::Invalid(message)),
            }
        }
        (&Method::DELETE, ["v1", "users", id]) => {
            identity_answer(backend.delete_user(owned(id)).await)
        }
        (&Method::POST, ["v1", "users", id, "disable"]) => identity_answer(
            backend
                .set_user_status(owned(id), AccountStatus::Disabled)
                .await,
        ),
        (&Method::POST, ["v1", "users", id, "enable"]) => identity_answer(
            backend
                .set_user_status(owned(id), AccountStatus::Active)
                .await,
        ),
        (&Method::POST, ["v1", "users", id, "revoke-sessions"]) => {
            identity_answer(backend.revoke_sessions(owned(id)).await)
        }
        (&Method::POST, ["v1", "users", id, "keys"]) => {
            let user = owned(id);
            match read_json::<CreateKeyRequest, RB>(request, "key request").await {
                Ok(body) => identity_answer(backend.create_key(user, body).await),
                Err(message) => identity_failure(&IdentityApiError::Invalid(message)),
            }
        }
        (&Method::GET, ["v1", "keys"]) => match user_param(request.uri().query().unwrap_or("")) {
            Ok(user) => identity_answer(backend.list_keys(user).await),
            Err(failure) => identity_failure(&failure),
        },
        (&Method::DELETE, ["v1", "keys", key]) => {
            identity_answer(backend.delete_key(owned(key)).await)
        }
        (&Method::POST, ["v1", "keys", key, "disable"]) => identity_answer(
            backend
                .set_key_status(owned(key), AccountStatus::Disabled)
                .await,
        ),
        (&Method::POST, ["v1", "keys", key, "enable"]) => identity_answer(
            backend
                .set_key_status(owned(key), AccountStatus::Active)
                .await,
        ),
        (&Method::POST, ["v1", "keys", key, "rotate"]) => {
            identity_answer(backend.rotate_key(owned(key)).await)
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", "no such admin route"),
    }
}

/// The optional `user` parameter of `GET /v1/keys` (percent-decoded).
fn user_param(query: &str) -> Result<Option<String>, IdentityApiError> {
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "user" {
            let decoded = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| IdentityApiError::Invalid("user is not valid UTF-8".to_owned()))?;
            return Ok(Some(decoded.into_owned()));
        }
    }
    Ok(None)
}

fn identity_answer<T: serde::Serialize>(
    outcome: Result<T, IdentityApiError>,
) -> Response<Full<Bytes>> {
    match outcome {
        Ok(value) => json(StatusCode::OK, &value),
        Err(failure) => identity_failure(&failure),
    }
}

fn identity_failure(failure: &IdentityApiError) -> Response<Full<Bytes>> {
    let (status, code) = match failure {
        IdentityApiError::NotSupported => (StatusCode::NOT_IMPLEMENTED, "not_supported"),
        IdentityApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        IdentityApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        IdentityApiError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
        IdentityApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    error(status, code, &failure.to_string())
}

/// The `bucket` and `key` of a locate query string (both required, percent-decoded).
fn locate_params(query: &str) -> Result<(String, String), ClusterApiError> {
    let (mut bucket, mut key) = (None, None);
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Query strings may encode spaces as `+`; S3 keys may contain a literal `+`, which
        // clients then send as `%2B`.
        let value = value.replace('+', " ");
        let decoded = percent_encoding::percent_decode_str(&value)
            .decode_utf8()
            .map_err(|_| ClusterApiError::Invalid(format!("{name} is not valid UTF-8")))?
            .into_owned();
        match name {
            "bucket" => bucket = Some(decoded),
            "key" => key = Some(decoded),
            _ => {}
        }
    }
    match (bucket, key) {
        (Some(bucket), Some(key)) if !bucket.is_empty() && !key.is_empty() => Ok((bucket, key)),
        _ => Err(ClusterApiError::Invalid(
            "locate needs the query parameters bucket and key".to_owned(),
        )),
    }
}

/// Reads a JSON body of at most [`MAX_BODY_BYTES`]; an empty body reads as `T`'s default
/// (for requests whose every field is optional). The error is a sentence for the client
/// naming the expected document, `what`.
async fn read_json<T, RB>(request: Request<RB>, what: &str) -> Result<T, String>
where
    T: serde::de::DeserializeOwned + Default,
    RB: hyper::body::Body,
    RB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let body = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|err| {
            format!("cannot read the request body (at most {MAX_BODY_BYTES} bytes): {err}")
        })?
        .to_bytes();
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_reader(body.reader())
        .map_err(|err| format!("the body is not a valid {what}: {err}"))
}

/// Reads the layout of `POST /v1/cluster/layout` (a body is required).
async fn read_layout<RB>(request: Request<RB>) -> Result<Layout, ClusterApiError>
where
    RB: hyper::body::Body,
    RB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match read_json::<Option<Layout>, RB>(request, "layout").await {
        Ok(Some(layout)) => Ok(layout),
        Ok(None) => Err(ClusterApiError::Invalid(
            "the body is not a valid layout: it is empty".to_owned(),
        )),
        Err(message) => Err(ClusterApiError::Invalid(message)),
    }
}

fn cluster_answer<T: serde::Serialize>(
    outcome: Result<T, ClusterApiError>,
) -> Response<Full<Bytes>> {
    match outcome {
        Ok(value) => json(StatusCode::OK, &value),
        Err(failure) => cluster_failure(&failure),
    }
}

fn cluster_failure(failure: &ClusterApiError) -> Response<Full<Bytes>> {
    let (status, code) = match failure {
        ClusterApiError::NotClustered => (StatusCode::NOT_FOUND, "not_clustered"),
        ClusterApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        ClusterApiError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
        ClusterApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    error(status, code, &failure.to_string())
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
    use http_body_util::{BodyExt, Empty};

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

    fn get(path: &str, token: Option<&str>) -> Request<Empty<Bytes>> {
        let mut builder = Request::get(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder.body(Empty::new()).unwrap()
    }

    fn post(path: &str, body: &str) -> Request<Full<Bytes>> {
        Request::post(path)
            .header("authorization", "Bearer secret")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    }

    async fn api_error(response: Response<Full<Bytes>>) -> ApiError {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&body).unwrap()
    }

    /// A cluster backend holding one layout, accepting only its successor.
    struct OneLayout(std::sync::Mutex<Layout>);

    impl AdminBackend for OneLayout {
        async fn status(&self) -> Result<NodeStatus, String> {
            Fixed.status().await
        }

        async fn metrics(&self) -> Result<String, String> {
            Fixed.metrics().await
        }

        async fn cluster_layout(&self) -> Result<Layout, ClusterApiError> {
            Ok(self.0.lock().unwrap().clone())
        }

        async fn apply_cluster_layout(&self, layout: Layout) -> Result<(), ClusterApiError> {
            let mut current = self.0.lock().unwrap();
            if layout.version != current.version + 1 {
                return Err(ClusterApiError::Conflict("stale version".into()));
            }
            *current = layout;
            Ok(())
        }
    }

    #[tokio::test]
    async fn cluster_routes_say_when_the_node_is_not_clustered() {
        for path in ["/v1/cluster/status", "/v1/cluster/layout"] {
            let response = handle(&Fixed, "secret", get(path, Some("secret"))).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            let failure = api_error(response).await;
            assert_eq!(failure.code, "not_clustered");
            assert!(failure.message.contains("not in cluster mode"));
        }
        let layout = r#"{"version":1,"nodes":[],"replication":1}"#;
        let response = handle(&Fixed, "secret", post("/v1/cluster/layout", layout)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = handle(&Fixed, "secret", post("/v1/cluster/anti-entropy", "")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(api_error(response).await.code, "not_clustered");
        let response = handle(&Fixed, "secret", post("/v1/cluster/scrub", "")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let locate = get("/v1/cluster/locate?bucket=b&key=k", Some("secret"));
        let response = handle(&Fixed, "secret", locate).await;
        assert_eq!(api_error(response).await.code, "not_clustered");
    }

    #[test]
    fn locate_parameters_are_decoded_and_required() {
        let (bucket, key) = locate_params("key=a%2Fb%2Bc+d&bucket=photos&x=1").unwrap();
        assert_eq!((bucket.as_str(), key.as_str()), ("photos", "a/b+c d"));
        assert!(locate_params("bucket=photos").is_err());
        assert!(locate_params("bucket=photos&key=").is_err());
        assert!(locate_params("bucket=b&key=%FF").is_err());
    }

    #[tokio::test]
    async fn layouts_are_applied_once_and_conflicts_and_garbage_are_refused() {
        let backend = OneLayout(std::sync::Mutex::new(Layout {
            version: 0,
            nodes: Vec::new(),
            replication: 1,
        }));
        let next = r#"{"version":1,"nodes":[{"id":"a","rpc_addr":"127.0.0.1:1","zone":"z","capacity":1}],"replication":1}"#;
        let applied = handle(&backend, "secret", post("/v1/cluster/layout", next)).await;
        assert_eq!(applied.status(), StatusCode::OK);
        let shown = handle(
            &backend,
            "secret",
            get("/v1/cluster/layout", Some("secret")),
        )
        .await;
        let body = shown.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(serde_json::from_slice::<Layout>(&body).unwrap().version, 1);
        let again = handle(&backend, "secret", post("/v1/cluster/layout", next)).await;
        assert_eq!(again.status(), StatusCode::CONFLICT);
        let garbage = handle(&backend, "secret", post("/v1/cluster/layout", "{nope")).await;
        assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
        assert_eq!(api_error(garbage).await.code, "invalid");
    }

    #[tokio::test]
    async fn user_and_key_routes_say_when_the_node_keeps_no_users() {
        let routes = [
            ("POST", "/v1/users"),
            ("GET", "/v1/users"),
            ("GET", "/v1/users/alice"),
            ("PATCH", "/v1/users/alice"),
            ("DELETE", "/v1/users/alice"),
            ("POST", "/v1/users/alice/disable"),
            ("POST", "/v1/users/alice/enable"),
            ("POST", "/v1/users/alice/revoke-sessions"),
            ("POST", "/v1/users/alice/keys"),
            ("GET", "/v1/keys?user=alice"),
            ("POST", "/v1/keys/MKAAAAAAAAAAAAAAAAAA/disable"),
            ("POST", "/v1/keys/MKAAAAAAAAAAAAAAAAAA/enable"),
            ("POST", "/v1/keys/MKAAAAAAAAAAAAAAAAAA/rotate"),
            ("DELETE", "/v1/keys/MKAAAAAAAAAAAAAAAAAA"),
        ];
        for (method, path) in routes {
            let body: &'static [u8] = if path == "/v1/users" {
                br#"{"id":"alice"}"#
            } else if method == "PATCH" {
                br#"{"quota_bytes":null}"#
            } else {
                b""
            };
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", "Bearer secret")
                .body(Full::new(Bytes::from_static(body)))
                .unwrap();
            let response = handle(&Fixed, "secret", request).await;
            assert_eq!(
                response.status(),
                StatusCode::NOT_IMPLEMENTED,
                "{method} {path}"
            );
            assert_eq!(api_error(response).await.code, "not_supported");
        }
        // Path segments are percent-decoded (clients may encode any character).
        let response = handle(&Fixed, "secret", get("/v1/us%65rs/a%2Db", Some("secret"))).await;
        assert_eq!(response.status(), StatusCode::NOT_IMPLEMENTED);
        let response = handle(&Fixed, "secret", get("/v1/users/%FF", Some("secret"))).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        // Unknown verbs and depths are not routes; the token is still required.
        let response = handle(&Fixed, "secret", post("/v1/users/alice/explode", "")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = handle(&Fixed, "secret", get("/v1/users", Some("wrong"))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        // A malformed body is refused before the backend sees it.
        for (path, body) in [
            ("/v1/users", "{oops"),
            ("/v1/users", r#"{"id":"alice","display-name":"typo"}"#),
            ("/v1/users/alice/keys", r#"{"expires":"tomorrow"}"#),
        ] {
            let response = handle(&Fixed, "secret", post(path, body)).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(api_error(response).await.code, "invalid");
        }
    }

    /// A user backend that records the updates it is given and refuses them (the node's
    /// own tests cover what an update does; these cover how the route reads it).
    #[derive(Default)]
    struct UpdateRecorder(std::sync::Mutex<Vec<(String, UpdateUserRequest)>>);

    impl AdminBackend for UpdateRecorder {
        async fn status(&self) -> Result<NodeStatus, String> {
            Fixed.status().await
        }

        async fn metrics(&self) -> Result<String, String> {
            Fixed.metrics().await
        }

        async fn update_user(
            &self,
            id: String,
            request: UpdateUserRequest,
        ) -> Result<UserAnswer, IdentityApiError> {
            self.0.lock().unwrap().push((id.clone(), request));
            Err(IdentityApiError::NotFound(format!("no user {id}")))
        }
    }

    fn patch(path: &str, body: &str) -> Request<Full<Bytes>> {
        Request::patch(path)
            .header("authorization", "Bearer secret")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    }

    #[tokio::test]
    async fn a_user_update_tells_an_absent_field_from_null() {
        let backend = UpdateRecorder::default();
        let body =
            r#"{"display_name":"Al","quota_bytes":null,"quota_objects":7,"subject_dn":"CN=al"}"#;
        let response = handle(&backend, "secret", patch("/v1/users/al%2Dx", body)).await;
        // The backend's own answer comes back as is.
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(api_error(response).await.message, "no user al-x");
        let empty = handle(&backend, "secret", patch("/v1/users/bob", "")).await;
        assert_eq!(empty.status(), StatusCode::NOT_FOUND);
        let recorded = backend.0.lock().unwrap().clone();
        let expected = UpdateUserRequest {
            display_name: Some("Al".into()),
            subject_dn: Some(Some("CN=al".into())),
            quota_bytes: Some(None),
            quota_objects: Some(Some(7)),
            expires_at_unix_ms: None,
        };
        assert_eq!(
            recorded,
            [
                ("al-x".to_owned(), expected.clone()),
                ("bob".to_owned(), UpdateUserRequest::default())
            ]
        );
        assert!(recorded[1].1.is_empty() && !expected.is_empty());
        // What the client sends reads back as the same request: null stays null, absent
        // stays absent.
        let encoded = serde_json::to_string(&expected).unwrap();
        assert!(encoded.contains(r#""quota_bytes":null"#), "{encoded}");
        assert!(!encoded.contains("expires_at_unix_ms"), "{encoded}");
        let decoded: UpdateUserRequest = serde_json::from_str(&encoded).unwrap();
        assert_eq!(decoded, expected);

        // Malformed updates are refused before the backend sees them.
        for body in [
            r#"{"quota-bytes":5}"#,
            r#"{"id":"other"}"#,
            r#"{"display_name":null}"#,
            r#"{"display_name":null,"quota_bytes":1}"#,
            r#"{"quota_bytes":"lots"}"#,
            r#"{"expires_at_unix_ms":-1}"#,
            "[1]",
        ] {
            let response = handle(&backend, "secret", patch("/v1/users/al", body)).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(api_error(response).await.code, "invalid");
        }
        assert_eq!(backend.0.lock().unwrap().len(), 2);
        // PATCH is a route only on a user itself.
        let response = handle(&backend, "secret", patch("/v1/users", "{}")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_key_listing_filter_is_decoded() {
        assert_eq!(user_param("user=j.doe").unwrap().as_deref(), Some("j.doe"));
        assert_eq!(
            user_param("x=1&user=a%2Db").unwrap().as_deref(),
            Some("a-b")
        );
        assert_eq!(user_param("").unwrap(), None);
        assert!(user_param("user=%FF").is_err());
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
