//! The node's own message types: ping and a 1 MiB block round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{loopback, secret, CALL_TIMEOUT};
use crate::rpc::messages::BlockHash;
use crate::rpc::{Caller, Payload, Request, Response, RpcClient, RpcConfig, RpcHandler, RpcServer};

/// Keeps blocks in memory, checking each against its hash as a real node does.
#[derive(Default)]
struct BlockHandler {
    blocks: Mutex<HashMap<BlockHash, Payload>>,
}

impl RpcHandler for BlockHandler {
    type Request = Request;
    type Response = Response;

    async fn handle(&self, _caller: &Caller, request: Request) -> Response {
        match request {
            Request::Ping => Response::Pong,
            Request::PutBlock { hash, data } => {
                if *blake3::hash(&data).as_bytes() != hash {
                    return Response::Failed("block does not match its hash".to_string());
                }
                self.blocks.lock().unwrap().insert(hash, data);
                Response::Done
            }
            Request::GetBlock { hash } => {
                Response::Block(self.blocks.lock().unwrap().get(&hash).cloned())
            }
            other => Response::Failed(format!("not supported in this test: {other:?}")),
        }
    }
}

#[tokio::test]
async fn a_one_mebibyte_block_survives_a_round_trip() {
    let handler = Arc::new(BlockHandler::default());
    let server = RpcServer::bind(loopback(), secret("b"), handler, RpcConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    let client: RpcClient<Request, Response> =
        RpcClient::new(secret("b"), "node-2", RpcConfig::default()).unwrap();

    let pong = client
        .call(addr, &Request::Ping, CALL_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(pong, Response::Pong);

    let block: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let hash = *blake3::hash(&block).as_bytes();
    let put = Request::PutBlock {
        hash,
        data: Payload::new(block.clone()),
    };
    assert_eq!(
        client.call(addr, &put, CALL_TIMEOUT).await.unwrap(),
        Response::Done
    );

    let fetched = client
        .call(addr, &Request::GetBlock { hash }, CALL_TIMEOUT)
        .await
        .unwrap();
    let Response::Block(Some(bytes)) = fetched else {
        panic!("expected the block back, got {fetched:?}");
    };
    assert_eq!(bytes.len(), block.len());
    assert!(*bytes == *block, "block bytes changed in transit");

    let missing = client
        .call(addr, &Request::GetBlock { hash: [0; 32] }, CALL_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(missing, Response::Block(None));
}
