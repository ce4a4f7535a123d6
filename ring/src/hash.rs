//! The hash functions that place keys and tokens on the ring.
//!
//! Everything is BLAKE3 truncated to its first 8 bytes read big-endian, so every platform,
//! process and version agrees on placement. Changing any function here moves data: the
//! `pinned_placement` test exists to catch that.

/// Context string for token derivation; keeps tokens apart from key hashes.
const TOKEN_CONTEXT: &str = "mucura ring token v1";

/// The ring position of arbitrary bytes: the first 8 bytes of their BLAKE3 hash, big-endian.
pub fn hash_key(bytes: &[u8]) -> u64 {
    prefix_u64(blake3::hash(bytes).as_bytes())
}

/// The ring position of an object's metadata record.
///
/// The bucket name is length-prefixed so that `("a", "bc")` and `("ab", "c")` differ.
pub fn hash_object_key(bucket: &str, key: &str) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(bucket.len() as u64).to_be_bytes());
    hasher.update(bucket.as_bytes());
    hasher.update(key.as_bytes());
    prefix_u64(hasher.finalize().as_bytes())
}

/// The token of virtual node `vnode` of node `node_id`.
///
/// Depends only on the id and the index, so a node keeps its tokens across layout versions and
/// growing a node's vnode count only adds tokens.
pub(crate) fn vnode_token(node_id: &str, vnode: u32) -> u64 {
    let mut hasher = blake3::Hasher::new_derive_key(TOKEN_CONTEXT);
    hasher.update(&(node_id.len() as u64).to_be_bytes());
    hasher.update(node_id.as_bytes());
    hasher.update(&vnode.to_be_bytes());
    prefix_u64(hasher.finalize().as_bytes())
}

fn prefix_u64(digest: &[u8; 32]) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_key_is_the_big_endian_blake3_prefix() {
        // BLAKE3("") = af1349b9f5f9a1a6...
        assert_eq!(hash_key(b""), 0xaf13_49b9_f5f9_a1a6);
    }

    #[test]
    fn object_key_hash_separates_bucket_from_key() {
        assert_ne!(hash_object_key("a", "bc"), hash_object_key("ab", "c"));
        assert_eq!(hash_object_key("b", "k"), hash_object_key("b", "k"));
    }

    #[test]
    fn tokens_differ_per_node_and_index() {
        assert_ne!(vnode_token("a", 0), vnode_token("a", 1));
        assert_ne!(vnode_token("a", 0), vnode_token("b", 0));
    }
}
