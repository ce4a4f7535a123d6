//! The S3 service over a real store, observed: records carry what really happened.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use s3api::auth::signer::sign_v4;
use s3api::auth::{SecretKey, UNSIGNED_PAYLOAD};
use s3api::observe::{PeerAddr, RequestObserver, RequestRecord};
use s3api::service::{S3Config, S3Service};

use super::access_log::{self, AccessLogConfig, AccessLogCounters};
use super::metrics::Metrics;
use super::NodeObserver;
use crate::credentials::{KeyRing, RootCredentials};
use crate::store::{Store, StoreConfig};

const ACCESS_KEY: &str = "AKTESTOBSERVE";
const SECRET: &str = "observe-secret-observe-secret-observe-00";

#[derive(Default)]
struct Collect(Mutex<Vec<RequestRecord>>);

impl RequestObserver for Collect {
    fn observe(&self, record: &RequestRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

/// Fans out to the node's observer and to a collector the test can read.
struct Both(NodeObserver, Arc<Collect>);

impl RequestObserver for Both {
    fn observe(&self, record: &RequestRecord) {
        self.0.observe(record);
        self.1.observe(record);
    }
}

fn signed(method: Method, path: &str, body: &'static str) -> Request<Full<Bytes>> {
    let uri: Uri = format!("http://127.0.0.1:9000{path}").parse().unwrap();
    let mut request = Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    sign_v4(
        &method,
        &uri,
        request.headers_mut(),
        UNSIGNED_PAYLOAD,
        ACCESS_KEY,
        &SecretKey::new(SECRET),
        "us-east-1",
        SystemTime::now(),
    );
    let peer = PeerAddr("10.1.2.3:4567".parse().unwrap());
    request.extensions_mut().insert(peer);
    request
}

#[tokio::test]
async fn records_follow_requests_through_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path().join("data"))).unwrap();
    let keys = KeyRing::new(&RootCredentials {
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET.into(),
        admin_token: "token".into(),
    });
    let metrics = Arc::new(Metrics::new().unwrap());
    let counters = AccessLogCounters {
        dropped: metrics.access_log_dropped(),
        write_errors: metrics.access_log_write_errors(),
    };
    let (log, writer) = access_log::start(AccessLogConfig::new(dir.path()), "3", counters).unwrap();
    let collected = Arc::new(Collect::default());
    let observer = Both(NodeObserver::new(metrics.clone(), log), collected.clone());
    let s3 = S3Service::new(Arc::new(store), Arc::new(keys), S3Config::default())
        .with_observer(Arc::new(observer));

    let created = s3.handle(signed(Method::PUT, "/pics", "")).await;
    assert_eq!(created.status(), 200);
    drop(created);
    let put = s3
        .handle(signed(Method::PUT, "/pics/a.txt", "hello world"))
        .await;
    assert_eq!(put.status(), 200);
    drop(put);
    let got = s3.handle(signed(Method::GET, "/pics/a.txt", "")).await;
    assert_eq!(
        collected.0.lock().unwrap().len(),
        2,
        "GET not over before its body"
    );
    let body = got.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello world");
    let mut anonymous = Request::get("http://127.0.0.1:9000/pics/a.txt")
        .body(Full::new(Bytes::new()))
        .unwrap();
    anonymous
        .extensions_mut()
        .insert(PeerAddr("10.9.9.9:1".parse().unwrap()));
    let denied = s3.handle(anonymous).await;
    let error_xml = denied.into_body().collect().await.unwrap().to_bytes();

    let records = collected.0.lock().unwrap().clone();
    let summary: Vec<_> = records
        .iter()
        .map(|r| (r.operation, r.status, r.error_code, r.bytes_in, r.bytes_out))
        .collect();
    assert_eq!(
        summary,
        [
            (Some("CreateBucket"), 200, None, 0, 0),
            (Some("PutObject"), 200, None, 11, 0),
            (Some("GetObject"), 200, None, 0, 11),
            (
                Some("GetObject"),
                403,
                Some("AccessDenied"),
                0,
                error_xml.len() as u64
            ),
        ]
    );
    assert_eq!(records[1].user.as_deref(), Some("root"));
    assert_eq!(records[1].access_key.as_deref(), Some(ACCESS_KEY));
    assert_eq!(records[1].key.as_deref(), Some("a.txt"));
    assert_eq!(
        records[1].remote_addr,
        Some("10.1.2.3:4567".parse().unwrap())
    );
    assert_eq!(records[3].bucket.as_deref(), Some("pics"));
    assert_eq!(records[3].user, None);

    let text = metrics.render().unwrap();
    assert!(text.contains(r#"mucura_s3_requests_total{operation="GetObject",status="200"} 1"#));
    assert!(text.contains(r#"mucura_s3_errors_total{code="AccessDenied"} 1"#));

    writer.close().await;
    let log = std::fs::read_to_string(dir.path().join("logs/access.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[2]["request_id"], records[2].request_id.as_str());
    assert_eq!(lines[2]["remote_addr"], "10.1.2.3:4567");
    assert_eq!(lines[3]["remote_addr"], "10.9.9.9:1");
    assert_eq!(lines[2]["node"], "3");
}
