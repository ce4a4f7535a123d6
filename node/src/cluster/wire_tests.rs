//! Three in-process nodes, each with ONE RPC server (a [`NodeRpcHandler`]) and ONE client
//! (`RpcClient<NodeRequest, NodeResponse>`) shared by tables, blocks and anti-entropy, as
//! the running node wires them.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ring::{Layout, NodeId, NodeInfo, Ring};

use super::*;
use crate::cluster::antientropy::AntiEntropyConfig;
use crate::cluster::blocks::{BlockConfig, BlockRefTable, BlockRefs, BlockRefsSchema};
use crate::cluster::crdt::{Lww, Stamp};
use crate::cluster::{Replication, StaticLiveness, SystemConfig};
use crate::rpc::{ClusterSecret, RpcConfig, RpcServer};
use crate::store::blocks::{BlockStore, OsBlockIo};
use crate::store::kv::{KvStore, SledKv};

struct WiredNode {
    blocks: Arc<BlockService>,
    refs: BlockRefTable,
    engine: Arc<AntiEntropy>,
    _server: RpcServer,
    _dir: tempfile::TempDir,
}

fn rpc_config() -> RpcConfig {
    RpcConfig {
        connect_timeout: Duration::from_secs(1),
        ..RpcConfig::default()
    }
}

async fn start_nodes(count: usize) -> Vec<WiredNode> {
    let ids: Vec<NodeId> = (0..count).map(|i| NodeId::new(format!("n{i}"))).collect();
    let infos = ids
        .iter()
        .map(|id| NodeInfo {
            id: id.clone(),
            rpc_addr: String::new(),
            zone: "z".into(),
            capacity: 1,
        })
        .collect();
    let ring = Arc::new(Ring::new(&Layout::new(1, infos, 3).unwrap()));
    let secret = ClusterSecret::new("wire tests shared secret").unwrap();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut nodes = Vec::new();
    let mut livenesses = Vec::new();
    let mut addrs = Vec::new();
    for id in &ids {
        let dir = tempfile::tempdir().unwrap();
        let kv: Arc<dyn KvStore> = Arc::new(SledKv::open(&dir.path().join("meta")).unwrap());
        let store =
            Arc::new(BlockStore::open(dir.path().join("blocks"), Arc::new(OsBlockIo)).unwrap());
        let liveness = Arc::new(StaticLiveness::new(
            id.clone(),
            Arc::clone(&ring),
            HashMap::new(),
        ));
        let handler = NodeRpcHandler::new();
        let server = RpcServer::bind(loopback, secret.clone(), Arc::clone(&handler), rpc_config())
            .await
            .unwrap();
        let client: RpcClient<NodeRequest, NodeResponse> =
            RpcClient::new(secret.clone(), id.as_str(), rpc_config()).unwrap();
        let system = TableSystem::with_transport(
            liveness.clone(),
            Arc::clone(&kv),
            Arc::new(client.clone()),
            SystemConfig::default(),
        );
        handler.attach_tables(Arc::clone(&system));
        let blocks = BlockService::with_transport(
            liveness.clone(),
            store,
            kv,
            Arc::new(client.clone()),
            BlockConfig::default(),
        );
        handler.attach_blocks(Arc::clone(&blocks));
        let refs = BlockRefTable::new(Arc::clone(&system), Replication::DEFAULT_SHARDED).unwrap();
        let transport = NodeAeTransport::new(client, liveness.clone(), Duration::from_secs(5));
        let engine = AntiEntropy::new(system, Arc::new(transport), AntiEntropyConfig::default());
        engine.register::<BlockRefsSchema>(Replication::DEFAULT_SHARDED);
        handler.attach_anti_entropy(Arc::clone(&engine));
        addrs.push((id.clone(), server.local_addr()));
        livenesses.push(liveness);
        nodes.push(WiredNode {
            blocks,
            refs,
            engine,
            _server: server,
            _dir: dir,
        });
    }
    for liveness in &livenesses {
        for (id, addr) in &addrs {
            liveness.set_addr(id.clone(), *addr);
        }
    }
    nodes
}

#[tokio::test]
async fn blocks_and_anti_entropy_travel_over_the_shared_node_protocol() {
    let test = async {
        let nodes = start_nodes(3).await;
        let data = Bytes::from(vec![7u8; 200_000]);
        let hash = *blake3::hash(&data).as_bytes();
        nodes[0].blocks.put_block(hash, data.clone()).await.unwrap();
        assert_eq!(nodes[2].blocks.get_block(hash).await.unwrap(), data);
        // The put returned after W = 2; the third copy follows on its own.
        for _ in 0..100 {
            let mut held = 0;
            for node in &nodes {
                held += usize::from(node.blocks.has_local(hash).await.unwrap());
            }
            if held == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for node in &nodes {
            assert!(node.blocks.has_local(hash).await.unwrap());
        }

        // An entry only node 0 holds reaches its successor through one round.
        let entry = BlockRefs {
            hash,
            refs: BTreeMap::from([("v1".to_owned(), Lww::new(Stamp::new(1 << 16, 1), ()))]),
        };
        assert!(nodes[0].refs.table().local_merge(&entry).await.unwrap());
        let report = nodes[0].engine.run_round().await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.groups_compared, 1);
        assert_eq!(report.entries_sent, 1);
        let copies = nodes
            .iter()
            .filter(|node| node.refs.table().local_get(&hash).unwrap().is_some())
            .count();
        assert_eq!(copies, 2);
    };
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test took too long");
}

#[test]
fn answers_of_another_protocol_are_refused() {
    let answer = NodeResponse::Table(TableResponse::Pong);
    let err = BlockResponse::try_from(answer.clone()).unwrap_err();
    assert_eq!((err.expected, err.got), ("block", "table"));
    let err = AeResponse::try_from(answer).unwrap_err();
    assert_eq!((err.expected, err.got), ("anti-entropy", "table"));
    let blocks = NodeResponse::Blocks(BlockResponse::Pong);
    assert_eq!(
        BlockResponse::try_from(blocks).unwrap(),
        BlockResponse::Pong
    );
}
