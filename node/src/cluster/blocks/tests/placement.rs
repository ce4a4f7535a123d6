//! All nodes up: placement, verified transfers, read repair and scrub of corrupt files.

use super::*;
use crate::cluster::blocks::{BlockError, BlockRequest, BlockResponse};
use crate::rpc::{Payload, RpcClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_put_through_one_node_lands_on_exactly_its_owners_and_reads_anywhere() {
    bounded(async {
        let cluster = BlockCluster::start(5, QuorumPolicy::Sloppy).await;
        let (first, last) = (&cluster.nodes[0], &cluster.nodes[4]);
        let (hash, data) = block_avoiding(&cluster, &[&first.id, &last.id], "placement");
        first.service.put_block(hash, data.clone()).await.unwrap();

        let mut owners = cluster.owners(&hash);
        owners.sort();
        assert_eq!(owners.len(), 3);
        eventually("all three owners hold the block", || async {
            cluster.holders(hash).await == owners
        })
        .await;
        assert_eq!(last.service.get_block(hash).await.unwrap(), data);
        assert_eq!(cluster.holders(hash).await, owners, "a read copies nothing");

        // A second put of the same block is idempotent.
        first.service.put_block(hash, data.clone()).await.unwrap();
        for node in &cluster.nodes {
            assert_eq!(node.service.get_block(hash).await.unwrap(), data);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_whose_bytes_do_not_match_the_hash_is_refused() {
    bounded(async {
        let cluster = BlockCluster::start(5, QuorumPolicy::Sloppy).await;
        let (hash, data) = block_avoiding(&cluster, &[], "wrong hash");
        let claimed: BlockHash = blake3::hash(b"some other block").into();

        let refused = cluster.nodes[0]
            .service
            .put_block(claimed, data.clone())
            .await;
        assert!(
            matches!(refused, Err(BlockError::HashMismatch { .. })),
            "{refused:?}"
        );

        // A peer sending a corrupt transfer straight to an owner is refused there too.
        let owner = cluster.node(&cluster.owners(&hash)[0]);
        let client: RpcClient<BlockRequest, BlockResponse> =
            RpcClient::new(cluster.secret.clone(), "tester", test_rpc_config()).unwrap();
        let mut damaged = data.to_vec();
        damaged[10] ^= 0xff;
        let request = BlockRequest::Put {
            hash,
            data: Payload::new(damaged),
        };
        let answer = client
            .call(owner.addr, &request, Duration::from_secs(5))
            .await
            .unwrap();
        match answer {
            BlockResponse::Failed(reason) => assert!(reason.contains("refused"), "{reason}"),
            other => panic!("corrupt transfer accepted: {other:?}"),
        }
        assert!(cluster.holders(hash).await.is_empty());
        assert!(cluster.holders(claimed).await.is_empty());
    })
    .await;
}

/// Overwrites the block file of `hash` on `node` with same-length garbage.
fn corrupt_file(node: &BlockNode, hash: &BlockHash) {
    let path = node.service.local().store().path_of(hash);
    let mut bytes = std::fs::read(&path).unwrap();
    for byte in bytes.iter_mut().take(64) {
        *byte = !*byte;
    }
    std::fs::write(&path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_replica_is_skipped_on_read_and_repaired_from_the_good_bytes() {
    bounded(async {
        let cluster = BlockCluster::start(5, QuorumPolicy::Sloppy).await;
        let (hash, data) = block_avoiding(&cluster, &[&cluster.nodes[4].id], "read repair");
        cluster.nodes[0]
            .service
            .put_block(hash, data.clone())
            .await
            .unwrap();
        let owners = cluster.owners(&hash);
        eventually("all owners hold the block", || async {
            cluster.holders(hash).await.len() == 3
        })
        .await;
        // The first owner is the first one a non-owner asks.
        let damaged = cluster.node(&owners[0]);
        corrupt_file(damaged, &hash);
        assert!(!damaged.service.has_local(hash).await.unwrap());

        let reader = &cluster.nodes[4];
        assert_eq!(reader.service.get_block(hash).await.unwrap(), data);
        eventually("the corrupt replica is repaired", || async {
            damaged.service.has_local(hash).await.unwrap()
        })
        .await;
        let aside = damaged._dir.path().join("blocks").join("corrupt");
        assert_eq!(std::fs::read_dir(aside).unwrap().count(), 1, "kept aside");

        // An owner whose own file is corrupt serves good bytes from a peer and heals itself.
        let owner = cluster.node(&owners[1]);
        corrupt_file(owner, &hash);
        assert_eq!(owner.service.get_block(hash).await.unwrap(), data);
        eventually("the coordinator's own file is repaired", || async {
            owner.service.has_local(hash).await.unwrap()
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_moves_a_corrupt_file_aside_and_refetches_it_from_a_replica() {
    bounded(async {
        let cluster = BlockCluster::start(5, QuorumPolicy::Sloppy).await;
        let (hash, data) = block_avoiding(&cluster, &[], "scrub");
        let (other_hash, other_data) = block_avoiding(&cluster, &[], "scrub second");
        for (hash, data) in [(hash, &data), (other_hash, &other_data)] {
            cluster.nodes[0]
                .service
                .put_block(hash, data.clone())
                .await
                .unwrap();
        }
        eventually("all owners hold both blocks", || async {
            cluster.holders(hash).await.len() == 3 && cluster.holders(other_hash).await.len() == 3
        })
        .await;
        let owner = cluster.node(&cluster.owners(&hash)[2]);
        corrupt_file(owner, &hash);
        let local_blocks = owner.service.local().list().unwrap().len() as u64;

        let report = owner.service.scrub_local().await.unwrap();
        assert_eq!(report.checked, local_blocks);
        assert_eq!((report.corrupt, report.repaired), (1, 1), "{report:?}");
        assert!(report.errors.is_empty(), "{report:?}");
        assert!(owner.service.has_local(hash).await.unwrap());
        let aside = owner._dir.path().join("blocks").join("corrupt");
        let kept: Vec<_> = std::fs::read_dir(aside).unwrap().collect();
        assert_eq!(kept.len(), 1, "the corrupt file is kept for inspection");

        let clean = owner.service.scrub_local().await.unwrap();
        assert_eq!((clean.checked, clean.corrupt), (local_blocks, 0));
    })
    .await;
}
