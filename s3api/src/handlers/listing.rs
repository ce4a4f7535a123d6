//! ListObjects (v1), ListObjectsV2 and ListObjectVersions over the backend's listing pages.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::Response;

use super::bucket::owner;
use super::{xml_response, RequestHead};
use crate::backend::{ListPage, ListQuery, S3Backend};
use crate::enforce::RequestAccess;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::service::ResponseBody;
use crate::xml::{url_encode_key, ListBucketResultV1, ListBucketResultV2, ListVersionsResult};

/// The page size S3 uses by default and never exceeds.
const MAX_KEYS: usize = 1000;

/// The parameters every listing shares.
struct ListingParams {
    prefix: String,
    delimiter: Option<String>,
    max_keys: usize,
    url_encoded: bool,
}

fn listing_params(head: &RequestHead) -> S3Result<ListingParams> {
    let max_keys = match head.query_number::<i64>("max-keys")? {
        None => MAX_KEYS,
        Some(n) if n < 0 => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                "max-keys cannot be negative",
            ))
        }
        Some(n) => (n as usize).min(MAX_KEYS),
    };
    let url_encoded = match head.query.get("encoding-type") {
        None => false,
        Some(t) if t.eq_ignore_ascii_case("url") => true,
        Some(_) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                "Invalid Encoding Method specified in Request",
            ))
        }
    };
    Ok(ListingParams {
        prefix: head.query.get("prefix").unwrap_or_default().to_owned(),
        delimiter: head
            .query
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        max_keys,
        url_encoded,
    })
}

impl ListingParams {
    fn query(&self, start_after: Option<String>) -> ListQuery {
        ListQuery {
            prefix: self.prefix.clone(),
            delimiter: self.delimiter.clone(),
            start_after,
            max_keys: self.max_keys,
        }
    }

    /// Applies `encoding-type=url` to one string of the answer.
    fn encode(&self, s: &str) -> String {
        if self.url_encoded {
            url_encode_key(s)
        } else {
            s.to_owned()
        }
    }

    /// Encodes the keys and prefixes of a page in place.
    fn encode_page(&self, page: &mut ListPage) {
        if self.url_encoded {
            for object in &mut page.objects {
                object.key = url_encode_key(&object.key);
            }
            for prefix in &mut page.common_prefixes {
                *prefix = url_encode_key(prefix);
            }
        }
    }
}

pub(super) async fn list_objects_v1<B: S3Backend>(
    backend: &B,
    access: &RequestAccess,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    let bucket = head.bucket()?;
    let params = listing_params(head)?;
    let marker = head.query.get("marker").unwrap_or_default().to_owned();
    let start = (!marker.is_empty()).then(|| marker.clone());
    let mut page = backend.list_objects(bucket, &params.query(start)).await?;
    let next_marker = match (&params.delimiter, page.is_truncated) {
        (Some(_), true) => page.next_marker.as_deref().map(|m| params.encode(m)),
        _ => None,
    };
    params.encode_page(&mut page);
    xml_response(
        ListBucketResultV1 {
            name: bucket.to_owned(),
            prefix: params.encode(&params.prefix),
            marker: params.encode(&marker),
            next_marker,
            max_keys: params.max_keys,
            delimiter: params.delimiter.as_deref().map(|d| params.encode(d)),
            is_truncated: page.is_truncated,
            url_encoded: params.url_encoded,
            contents: page.objects,
            common_prefixes: page.common_prefixes,
            owner: owner(access),
        }
        .to_xml(),
    )
}

pub(super) async fn list_objects_v2<B: S3Backend>(
    backend: &B,
    access: &RequestAccess,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    let bucket = head.bucket()?;
    let params = listing_params(head)?;
    let token = head.query.get("continuation-token").map(str::to_owned);
    let start_after = head.query.get("start-after").map(str::to_owned);
    let resume = match &token {
        Some(token) => Some(decode_continuation_token(token)?),
        None => start_after.clone().filter(|s| !s.is_empty()),
    };
    let mut page = backend.list_objects(bucket, &params.query(resume)).await?;
    let next_token = match (page.is_truncated, &page.next_marker) {
        (true, Some(marker)) => Some(URL_SAFE_NO_PAD.encode(marker.as_bytes())),
        _ => None,
    };
    params.encode_page(&mut page);
    let fetch_owner = head.query.get("fetch-owner") == Some("true");
    xml_response(
        ListBucketResultV2 {
            name: bucket.to_owned(),
            prefix: params.encode(&params.prefix),
            continuation_token: token,
            next_continuation_token: next_token,
            max_keys: params.max_keys,
            delimiter: params.delimiter.as_deref().map(|d| params.encode(d)),
            start_after: start_after.as_deref().map(|s| params.encode(s)),
            url_encoded: params.url_encoded,
            is_truncated: page.is_truncated,
            contents: page.objects,
            common_prefixes: page.common_prefixes,
            owner: fetch_owner.then(|| owner(access)),
        }
        .to_xml(),
    )
}

fn decode_continuation_token(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                "The continuation token provided is incorrect",
            )
            .with_detail("ArgumentName", "continuation-token")
        })
}

/// Buckets are unversioned: every object is listed once, as version `null`.
pub(super) async fn list_object_versions<B: S3Backend>(
    backend: &B,
    access: &RequestAccess,
    head: &RequestHead,
) -> S3Result<Response<ResponseBody>> {
    let bucket = head.bucket()?;
    let params = listing_params(head)?;
    let key_marker = head.query.get("key-marker").unwrap_or_default().to_owned();
    let start = (!key_marker.is_empty()).then(|| key_marker.clone());
    let mut page = backend.list_objects(bucket, &params.query(start)).await?;
    let next_key_marker = page
        .is_truncated
        .then(|| page.next_marker.as_deref().map(|m| params.encode(m)))
        .flatten();
    params.encode_page(&mut page);
    xml_response(
        ListVersionsResult {
            name: bucket.to_owned(),
            prefix: params.encode(&params.prefix),
            key_marker: params.encode(&key_marker),
            version_id_marker: head
                .query
                .get("version-id-marker")
                .unwrap_or_default()
                .to_owned(),
            next_version_id_marker: next_key_marker.as_ref().map(|_| "null".to_owned()),
            next_key_marker,
            max_keys: params.max_keys,
            delimiter: params.delimiter.as_deref().map(|d| params.encode(d)),
            is_truncated: page.is_truncated,
            url_encoded: params.url_encoded,
            versions: page.objects,
            common_prefixes: page.common_prefixes,
            owner: owner(access),
        }
        .to_xml(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_tokens_round_trip_and_reject_garbage() {
        let token = URL_SAFE_NO_PAD.encode("dir/€ key".as_bytes());
        assert_eq!(decode_continuation_token(&token).unwrap(), "dir/€ key");
        let err = decode_continuation_token("!!!").unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidArgument);
    }
}
