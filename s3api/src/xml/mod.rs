//! S3 XML bodies: the documents Mucura answers with and the request bodies it reads.
//!
//! Responses are plain structs with a `to_xml()` that writes the exact element names and order
//! of the AWS S3 API reference, behind `<?xml …?>` and with the S3 namespace on the root
//! element. They are written by a small hand-rolled writer (`writer`) rather than serde:
//! every document needs the namespace attribute on its root, quoted ETags, elements present
//! only in some cases and empty elements kept as `<Prefix></Prefix>`, and writing them by hand
//! keeps `to_xml()` infallible.
//!
//! Request bodies are read by [`request`] with quick-xml's serde deserializer; the root
//! element's name is checked by deserializing into a one-variant enum named after it.
//!
//! | module | documents |
//! | --- | --- |
//! | [`bucket`] | ListAllMyBucketsResult, LocationConstraint |
//! | [`listing`] | ListBucketResult (v1, v2), ListVersionsResult |
//! | [`multipart`] | InitiateMultipartUploadResult, CompleteMultipartUploadResult, ListPartsResult, ListMultipartUploadsResult |
//! | [`object`] | CopyObjectResult, CopyPartResult, DeleteResult |
//! | [`request`] | CompleteMultipartUpload, Delete, CreateBucketConfiguration (parsers) |

pub mod bucket;
pub mod listing;
pub mod multipart;
pub mod object;
pub mod request;
pub(crate) mod writer;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use time::{OffsetDateTime, UtcOffset};

pub use bucket::{ListAllMyBucketsResult, LocationConstraint};
pub use listing::{ListBucketResultV1, ListBucketResultV2, ListVersionsResult};
pub use multipart::{
    CompleteMultipartUploadResult, InitiateMultipartUploadResult, ListMultipartUploadsResult,
    ListPartsResult,
};
pub use object::{CopyObjectResult, CopyPartResult, DeleteError, DeleteResult, DeletedObject};
pub use request::{
    parse_complete_multipart_upload, parse_create_bucket_configuration, parse_delete_objects,
    DeleteRequest, MAX_DELETE_OBJECTS,
};

/// The namespace S3 puts on the root element of every response document.
pub const S3_XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// The declaration that opens every response document.
pub const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// The only storage class Mucura offers; listings report it for every object.
pub const STORAGE_CLASS_STANDARD: &str = "STANDARD";

/// The owner of a bucket or object as listings show it (`<ID>`, `<DisplayName>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// The canonical user id.
    pub id: String,
    /// A human-readable name; AWS sends the same element even when it is empty.
    pub display_name: String,
}

/// Formats a time as S3 writes it in XML: ISO 8601 in UTC with milliseconds,
/// e.g. `2009-10-12T17:50:30.000Z`.
pub fn s3_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Everything but the unreserved characters of RFC 3986 and `/` is percent-encoded.
const LISTING_KEY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Encodes a key, prefix, marker or delimiter for a listing answered with `encoding-type=url`.
///
/// UTF-8 bytes outside `A-Za-z0-9-_.~/` become `%XX` (upper-case hex); a space becomes `%20`
/// and `+` becomes `%2B`, so both plain `unquote` and the `unquote_plus` botocore uses (and
/// Java's `URLDecoder`, Go's `QueryUnescape`) give the original key back. Ceph's s3-tests,
/// written against AWS, expect exactly this form (`quux ab/` → `quux%20ab/`).
pub fn url_encode_key(key: &str) -> String {
    utf8_percent_encode(key, LISTING_KEY_ENCODE_SET).to_string()
}

/// The ETag as it appears in XML: surrounded by double quotes (added unless already there).
fn quoted_etag(etag: &str) -> String {
    if etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"') {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamp_has_milliseconds_and_utc() {
        assert_eq!(
            s3_timestamp(datetime!(2009-10-12 17:50:30.123456 UTC)),
            "2009-10-12T17:50:30.123Z"
        );
        assert_eq!(
            s3_timestamp(datetime!(2009-10-12 19:50:30 +02:00)),
            "2009-10-12T17:50:30.000Z"
        );
    }

    #[test]
    fn url_encoding_keeps_unreserved_and_slash() {
        assert_eq!(url_encode_key("a-b_c.d~e/f"), "a-b_c.d~e/f");
        assert_eq!(url_encode_key("quux ab/"), "quux%20ab/");
        assert_eq!(url_encode_key("foo+1/"), "foo%2B1/");
        assert_eq!(url_encode_key("100%.csv"), "100%25.csv");
        assert_eq!(url_encode_key("é/\u{1}&?#="), "%C3%A9/%01%26%3F%23%3D");
        assert_eq!(url_encode_key("한글"), "%ED%95%9C%EA%B8%80");
    }

    #[test]
    fn etag_is_quoted_once() {
        assert_eq!(quoted_etag("abc"), "\"abc\"");
        assert_eq!(quoted_etag("\"abc\""), "\"abc\"");
        assert_eq!(quoted_etag("\""), "\"\"\"");
    }
}
