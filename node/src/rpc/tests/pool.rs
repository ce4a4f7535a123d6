//! The client pool: its in-flight bound and explicit disconnection.

use std::time::Duration;

use super::{eventually, secret, start_server, TestClient, TestRequest, CALL_TIMEOUT};
use crate::rpc::{RpcClient, RpcConfig, RpcError};

#[tokio::test]
async fn the_in_flight_bound_holds_further_calls_back_until_a_slot_frees() {
    let server = start_server(secret("a"), RpcConfig::default()).await;
    let addr = server.local_addr();
    let config = RpcConfig {
        max_in_flight_per_peer: 2,
        ..RpcConfig::default()
    };
    let client: TestClient = RpcClient::new(secret("a"), "node-1", config).unwrap();
    let mut stalled = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let client = client.clone();
        stalled.spawn(async move {
            client
                .call(addr, &TestRequest::Stall, Duration::from_millis(600))
                .await
        });
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The server would answer at once, but both slots are taken by stalled calls.
    let quick = TestRequest::Echo { n: 1, delay_ms: 0 };
    let err = client
        .call(addr, &quick, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Timeout { .. }), "{err}");

    // Once the stalled calls give up, their slots serve the next call.
    while let Some(result) = stalled.join_next().await {
        assert!(matches!(result.unwrap(), Err(RpcError::Timeout { .. })));
    }
    client.call(addr, &quick, CALL_TIMEOUT).await.unwrap();
}

#[tokio::test]
async fn disconnect_fails_pending_calls_and_the_next_call_reconnects() {
    let server = start_server(secret("a"), RpcConfig::default()).await;
    let addr = server.local_addr();
    let client: TestClient = super::client(secret("a"), "node-1");
    let quick = TestRequest::Echo { n: 1, delay_ms: 0 };
    client.call(addr, &quick, CALL_TIMEOUT).await.unwrap();

    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.call(addr, &TestRequest::Stall, CALL_TIMEOUT).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.disconnect(addr).await;
    let err = tokio::time::timeout(Duration::from_secs(2), pending)
        .await
        .expect("the pending call was not failed promptly")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, RpcError::ConnectionLost { .. }), "{err}");

    client.call(addr, &quick, CALL_TIMEOUT).await.unwrap();
    eventually("a second connection was opened", || {
        server.stats().authenticated == 2
    })
    .await;
}
