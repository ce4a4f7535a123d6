//! Failures a cluster meets: wrong secrets, stalled handlers, dead and restarted peers.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{client, eventually, secret, start_server, TestHandler, TestRequest, CALL_TIMEOUT};
use crate::rpc::{tls, RpcConfig, RpcError, RpcServer};

#[tokio::test]
async fn a_wrong_cluster_secret_is_refused_on_both_sides() {
    let server = start_server(secret("right"), RpcConfig::default()).await;
    let intruder = client(secret("wrong"), "intruder");
    let request = TestRequest::Echo { n: 1, delay_ms: 0 };
    let err = intruder
        .call(server.local_addr(), &request, CALL_TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RpcError::AuthFailed { reason, .. } if reason.contains("cluster secret")),
        "{err}"
    );
    assert!(!err.is_transient());
    eventually("the server counts the refusal", || {
        server.stats().auth_rejected == 1
    })
    .await;
    assert_eq!(server.stats().authenticated, 0);

    // The refusal is remembered for a backoff pause instead of hammering the server.
    let again = intruder
        .call(server.local_addr(), &request, CALL_TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(again, RpcError::Connect { .. }), "{again}");
}

#[tokio::test]
async fn a_stalled_handler_makes_the_call_time_out_and_the_connection_stays_usable() {
    let server = start_server(secret("a"), RpcConfig::default()).await;
    let addr = server.local_addr();
    let client = client(secret("a"), "node-1");
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = client
        .call(addr, &TestRequest::Stall, timeout)
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(err, RpcError::Timeout { after, .. } if after == timeout),
        "{err}"
    );
    assert!(err.is_transient());
    assert!(
        waited >= timeout && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    let request = TestRequest::Echo { n: 5, delay_ms: 0 };
    client.call(addr, &request, CALL_TIMEOUT).await.unwrap();
    assert_eq!(
        server.stats().authenticated,
        1,
        "the timeout cost the connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_pending_calls_promptly_and_a_restarted_one_is_reached_again() {
    let server = start_server(secret("a"), RpcConfig::default()).await;
    let addr = server.local_addr();
    let client = client(secret("a"), "node-1");
    let warm_up = TestRequest::Echo { n: 1, delay_ms: 0 };
    client.call(addr, &warm_up, CALL_TIMEOUT).await.unwrap();

    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let client = client.clone();
        pending.spawn(async move {
            client
                .call(addr, &TestRequest::Stall, Duration::from_secs(30))
                .await
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed_at = Instant::now();
    server.shutdown().await;
    while let Some(result) = pending.join_next().await {
        let err = result.unwrap().unwrap_err();
        assert!(matches!(err, RpcError::ConnectionLost { .. }), "{err}");
    }
    let noticed_after = killed_at.elapsed();
    assert!(
        noticed_after < Duration::from_secs(2),
        "pending calls took {noticed_after:?} to fail"
    );

    let restarted = RpcServer::bind(
        addr,
        secret("a"),
        Arc::new(TestHandler),
        RpcConfig::default(),
    )
    .await
    .unwrap();
    let request = TestRequest::Echo { n: 2, delay_ms: 0 };
    client.call(addr, &request, CALL_TIMEOUT).await.unwrap();
    assert_eq!(restarted.stats().authenticated, 1);
}

#[tokio::test]
async fn an_unreachable_peer_fails_fast_and_is_retried_after_the_backoff() {
    // Reserve a port, then free it: nothing listens there.
    let placeholder = start_server(secret("a"), RpcConfig::default()).await;
    let addr = placeholder.local_addr();
    placeholder.shutdown().await;

    let client = client(secret("a"), "node-1");
    let request = TestRequest::Echo { n: 3, delay_ms: 0 };
    let err = client.call(addr, &request, CALL_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, RpcError::Connect { .. }), "{err}");

    let _server = RpcServer::bind(
        addr,
        secret("a"),
        Arc::new(TestHandler),
        RpcConfig::default(),
    )
    .await
    .unwrap();
    // The first backoff pause is 50 ms; well after it the peer is tried again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.call(addr, &request, CALL_TIMEOUT).await.unwrap();
}

#[tokio::test]
async fn a_relaying_man_in_the_middle_cannot_pass_the_secret_proof() {
    let server = start_server(secret("a"), RpcConfig::default()).await;
    let target = server.local_addr();
    // The relay terminates the client's TLS with its own certificate, opens its own TLS
    // session to the server and copies the plaintext both ways, secret proofs included.
    let relay = tokio::net::TcpListener::bind(super::loopback())
        .await
        .unwrap();
    let relay_addr = relay.local_addr().unwrap();
    let relay_task = tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config().unwrap());
        let connector = tokio_rustls::TlsConnector::from(tls::client_config().unwrap());
        let (inbound, _) = relay.accept().await.unwrap();
        let mut client_side = acceptor.accept(inbound).await.unwrap();
        let outbound = tokio::net::TcpStream::connect(target).await.unwrap();
        let mut server_side = connector
            .connect(tls::server_name(), outbound)
            .await
            .unwrap();
        let _ = tokio::io::copy_bidirectional(&mut client_side, &mut server_side).await;
    });

    let victim = client(secret("a"), "victim");
    let request = TestRequest::Echo { n: 1, delay_ms: 0 };
    let err = victim
        .call(relay_addr, &request, CALL_TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::AuthFailed { .. }), "{err}");
    eventually("the server refuses the relayed connection", || {
        server.stats().auth_rejected == 1
    })
    .await;
    assert_eq!(server.stats().authenticated, 0);
    relay_task.abort();
}
