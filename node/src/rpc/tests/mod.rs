//! Tests of the RPC layer over real TLS on 127.0.0.1 (port 0), each bounded in time.

mod blocks;
mod codec;
mod failures;
mod hostile;
mod pool;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Caller, ClusterSecret, Payload, RpcClient, RpcConfig, RpcHandler, RpcServer};

/// Generous bound for calls that should succeed quickly.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests of the test protocol.
#[derive(Debug, Serialize, Deserialize)]
enum TestRequest {
    /// Answer `n` back after `delay_ms`.
    Echo { n: u64, delay_ms: u64 },
    /// Never answer (until the server dies).
    Stall,
    /// Answer with a payload of this many bytes.
    SendBytes(usize),
    /// Answer with the length of the payload received.
    TakeBytes(Payload),
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum TestResponse {
    Echo { n: u64, caller: String },
    Bytes(Payload),
    Length(usize),
}

struct TestHandler;

impl RpcHandler for TestHandler {
    type Request = TestRequest;
    type Response = TestResponse;

    async fn handle(&self, caller: &Caller, request: TestRequest) -> TestResponse {
        match request {
            TestRequest::Echo { n, delay_ms } => {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                TestResponse::Echo {
                    n,
                    caller: caller.node_id.clone(),
                }
            }
            TestRequest::Stall => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                TestResponse::Length(0)
            }
            TestRequest::SendBytes(len) => TestResponse::Bytes(Payload::new(vec![7; len])),
            TestRequest::TakeBytes(bytes) => TestResponse::Length(bytes.len()),
        }
    }
}

type TestClient = RpcClient<TestRequest, TestResponse>;

fn secret(text: &str) -> ClusterSecret {
    ClusterSecret::new(format!("test cluster secret: {text}")).unwrap()
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn start_server(secret: ClusterSecret, config: RpcConfig) -> RpcServer {
    RpcServer::bind(loopback(), secret, Arc::new(TestHandler), config)
        .await
        .unwrap()
}

fn client(secret: ClusterSecret, node_id: &str) -> TestClient {
    RpcClient::new(secret, node_id, RpcConfig::default()).unwrap()
}

/// Polls `condition` every 10 ms for up to 5 s (server counters update asynchronously).
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn round_trip_carries_request_response_and_caller_identity() {
    let server = start_server(secret("a"), RpcConfig::default()).await;
    let client = client(secret("a"), "node-7");
    let request = TestRequest::Echo { n: 42, delay_ms: 0 };
    let response = client
        .call(server.local_addr(), &request, CALL_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        response,
        TestResponse::Echo {
            n: 42,
            caller: "node-7".to_string()
        }
    );
    assert_eq!(server.stats().authenticated, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_connection_and_match_out_of_order_responses() {
    const CALLS: u64 = 200;
    let server = start_server(secret("a"), RpcConfig::default()).await;
    let addr = server.local_addr();
    let client = client(secret("a"), "node-1");
    let completion_order = Arc::new(Mutex::new(Vec::new()));
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..CALLS {
        let client = client.clone();
        let completion_order = Arc::clone(&completion_order);
        // Pseudo-random 0..=19 ms delays so later requests often finish first.
        let delay_ms = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59;
        calls.spawn(async move {
            let request = TestRequest::Echo { n, delay_ms };
            let response = client.call(addr, &request, CALL_TIMEOUT).await.unwrap();
            completion_order.lock().unwrap().push(n);
            (n, response)
        });
    }
    while let Some(result) = calls.join_next().await {
        let (n, response) = result.unwrap();
        let expected = TestResponse::Echo {
            n,
            caller: "node-1".to_string(),
        };
        assert_eq!(response, expected, "response to call {n} was mismatched");
    }
    let order = completion_order.lock().unwrap().clone();
    assert_eq!(order.len(), CALLS as usize);
    assert!(
        order.windows(2).any(|pair| pair[0] > pair[1]),
        "responses all came back in request order; multiplexing was not exercised"
    );
    assert_eq!(
        server.stats().authenticated,
        1,
        "calls opened extra connections"
    );
}
