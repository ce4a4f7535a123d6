//! Oversized frames, garbage and idle sockets: the server refuses them and keeps serving.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{client, eventually, secret, start_server, TestRequest, TestResponse, CALL_TIMEOUT};
use crate::rpc::codec::{encode_frame, MAX_BODY};
use crate::rpc::{auth, tls, Payload, RpcConfig, RpcError};

/// Reads until the server closes the stream, failing the test if it does not within 5 s.
async fn expect_closed<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) {
    let mut sink = vec![0u8; 4096];
    let closed = async {
        // An error (reset, TLS alert) counts as closed too.
        while let Ok(read) = stream.read(&mut sink).await {
            if read == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the server kept the connection open");
}

async fn assert_still_serving(addr: SocketAddr) {
    let request = TestRequest::Echo { n: 9, delay_ms: 0 };
    let response = client(secret("a"), "healthy")
        .call(addr, &request, CALL_TIMEOUT)
        .await
        .unwrap();
    assert!(matches!(response, TestResponse::Echo { n: 9, .. }));
}

#[tokio::test]
async fn oversized_requests_and_responses_are_refused_without_breaking_the_connection() {
    let server = start_server(secret("a"), RpcConfig::default()).await;
    let addr = server.local_addr();
    let client = client(secret("a"), "node-1");

    let too_big = TestRequest::TakeBytes(Payload::new(vec![0; MAX_BODY + 1]));
    let err = client.call(addr, &too_big, CALL_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, RpcError::FrameTooLarge { .. }), "{err}");

    let block = TestRequest::TakeBytes(Payload::new(vec![0; 1024 * 1024]));
    let response = client.call(addr, &block, CALL_TIMEOUT).await.unwrap();
    assert_eq!(response, TestResponse::Length(1024 * 1024));

    let huge_answer = TestRequest::SendBytes(MAX_BODY + 1);
    let err = client
        .call(addr, &huge_answer, CALL_TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RpcError::Remote { message, .. } if message.contains("exceeds")),
        "{err}"
    );
    assert_eq!(
        server.stats().authenticated,
        1,
        "a refusal cost the connection"
    );
    assert_eq!(server.stats().protocol_errors, 0);
}

#[tokio::test]
async fn an_authenticated_peer_announcing_a_huge_frame_is_disconnected() {
    let server = start_server(secret("a"), RpcConfig::default()).await;
    let addr = server.local_addr();
    let connector = TlsConnector::from(tls::client_config().unwrap());
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut stream = connector.connect(tls::server_name(), tcp).await.unwrap();
    let binding = tls::session_binding(stream.get_ref().1).unwrap();
    auth::authenticate_to_server(&mut stream, &binding, &secret("a"), "rogue", addr)
        .await
        .unwrap();

    // Announce 4 GiB and send nothing more: the server must refuse, not wait or allocate.
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    expect_closed(&mut stream).await;
    eventually("the server counts the protocol error", || {
        server.stats().protocol_errors == 1
    })
    .await;
    assert_still_serving(addr).await;
}

#[tokio::test]
async fn garbage_and_plaintext_clients_do_not_disturb_the_server() {
    let server = start_server(secret("a"), RpcConfig::default()).await;
    let addr = server.local_addr();

    let mut garbage = TcpStream::connect(addr).await.unwrap();
    let noise: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    // The server may hang up before all of it is written; that is the point.
    let _ = garbage.write_all(&noise).await;
    expect_closed(&mut garbage).await;

    let mut plaintext = TcpStream::connect(addr).await.unwrap();
    let frame = encode_frame(1, &TestRequest::Echo { n: 1, delay_ms: 0 }).unwrap();
    let _ = plaintext.write_all(&frame).await;
    expect_closed(&mut plaintext).await;

    drop(TcpStream::connect(addr).await.unwrap());

    eventually("the server counts three failed handshakes", || {
        server.stats().handshake_failed == 3
    })
    .await;
    assert_still_serving(addr).await;
    assert_eq!(server.stats().authenticated, 1);
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let config = RpcConfig {
        handshake_timeout: Duration::from_millis(300),
        ..RpcConfig::default()
    };
    let server = start_server(secret("a"), config).await;
    let mut silent = TcpStream::connect(server.local_addr()).await.unwrap();
    expect_closed(&mut silent).await;
    eventually("the server counts the timed-out handshake", || {
        server.stats().handshake_failed == 1
    })
    .await;
}
