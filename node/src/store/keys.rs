//! How table keys are laid out, so that range scans return S3's order.
//!
//! - objects: `bucket 0x00 key` — all keys of a bucket are one contiguous range, in byte order;
//! - uploads: `bucket 0x00 key 0x00 upload-id` — by key, then by upload id, whose leading
//!   hybrid-clock digits make it initiation order;
//! - parts: `upload-id part-number(u32 big-endian)` — by part number.
//!
//! Bucket names never contain 0x00. Object keys are only bytes here: they never reach a path.

/// Length of an upload id: 16 hex digits of hybrid-clock time, 16 of randomness.
pub const UPLOAD_ID_LEN: usize = 32;

/// The start of every key in `bucket` (objects and uploads tables).
pub fn bucket_prefix(bucket: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.len() + 1);
    out.extend_from_slice(bucket.as_bytes());
    out.push(0);
    out
}

/// The objects-table key of `bucket`/`key`.
pub fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut out = bucket_prefix(bucket);
    out.extend_from_slice(key.as_bytes());
    out
}

/// The uploads-table key of one upload.
pub fn upload_key(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut out = object_key(bucket, key);
    out.push(0);
    out.extend_from_slice(upload_id.as_bytes());
    out
}

/// Splits an uploads-table key (with the bucket prefix already removed) into key and upload id.
pub fn split_upload_key(rest: &[u8]) -> Option<(&str, &str)> {
    let split = rest.len().checked_sub(UPLOAD_ID_LEN + 1)?;
    let (key, tail) = rest.split_at(split);
    let (separator, upload_id) = tail.split_first()?;
    if *separator != 0 {
        return None;
    }
    Some((
        std::str::from_utf8(key).ok()?,
        std::str::from_utf8(upload_id).ok()?,
    ))
}

/// The parts-table key of one part.
pub fn part_key(upload_id: &str, part_number: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(UPLOAD_ID_LEN + 4);
    out.extend_from_slice(upload_id.as_bytes());
    out.extend_from_slice(&part_number.to_be_bytes());
    out
}

/// The part number at the end of a parts-table key.
pub fn part_number_of(part_key: &[u8]) -> Option<u32> {
    let start = part_key.len().checked_sub(4)?;
    let bytes: [u8; 4] = part_key[start..].try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// Whether `upload_id` has the shape this store issues; anything else cannot exist.
pub fn is_valid_upload_id(upload_id: &str) -> bool {
    upload_id.len() == UPLOAD_ID_LEN && upload_id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A fresh upload id: hybrid-clock time first, so ids of one key sort by initiation.
pub fn new_upload_id(hlc: u64) -> String {
    let random = uuid::Uuid::new_v4();
    let mut id = hex::encode(hlc.to_be_bytes());
    id.push_str(&hex::encode(&random.as_bytes()[..8]));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_of_a_bucket_share_its_prefix_and_sort_by_key() {
        let a = object_key("b", "a/x");
        let b = object_key("b", "a//");
        assert!(a.starts_with(&bucket_prefix("b")));
        assert!(!object_key("bb", "x").starts_with(&bucket_prefix("b")));
        assert!(b < a, "'/' sorts before 'x'");
    }

    #[test]
    fn upload_keys_split_back_into_key_and_id() {
        let id = new_upload_id(77 << 16);
        assert!(is_valid_upload_id(&id));
        let full = upload_key("bkt", "dir/ü ../", &id);
        let rest = &full[bucket_prefix("bkt").len()..];
        assert_eq!(split_upload_key(rest), Some(("dir/ü ../", id.as_str())));
        assert!(new_upload_id(78 << 16) > id);
        assert!(!is_valid_upload_id("../../etc"));
    }

    #[test]
    fn part_keys_sort_by_number() {
        let id = new_upload_id(1);
        assert!(part_key(&id, 2) < part_key(&id, 10));
        assert_eq!(part_number_of(&part_key(&id, 10_000)), Some(10_000));
    }
}
