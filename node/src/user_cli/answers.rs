//! The XML answers of S3 the CLI reads: ListBuckets, ListObjectsV2 and error documents.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::s3::S3Error;
use super::xml;

/// One bucket of a ListBuckets answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketEntry {
    /// Its name.
    pub name: String,
    /// `CreationDate`, as sent.
    pub created: String,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    /// The key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// `LastModified`, as sent.
    pub last_modified: String,
}

/// One page of ListObjectsV2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The objects.
    pub objects: Vec<ObjectEntry>,
    /// The common prefixes (with a delimiter).
    pub prefixes: Vec<String>,
    /// The token of the next page, when truncated.
    pub next_token: Option<String>,
}

/// Reads an S3 error document into (code, message); `None` if `body` is not one.
pub fn parse_error_document(body: &[u8]) -> Option<(String, String)> {
    let root = xml::parse(body).ok()?;
    if root.name != "Error" {
        return None;
    }
    Some((
        root.child_text("Code").unwrap_or("Unknown").to_string(),
        root.child_text("Message").unwrap_or_default().to_string(),
    ))
}

/// Reads a ListAllMyBucketsResult.
pub fn parse_bucket_list(body: &[u8]) -> Result<Vec<BucketEntry>, S3Error> {
    let root =
        xml::parse(body).map_err(|err| S3Error::Unexpected(format!("ListBuckets: {err}")))?;
    let Some(buckets) = root.child("Buckets") else {
        return Ok(Vec::new());
    };
    Ok(buckets
        .children_named("Bucket")
        .map(|bucket| BucketEntry {
            name: bucket.child_text("Name").unwrap_or_default().to_string(),
            created: bucket
                .child_text("CreationDate")
                .unwrap_or_default()
                .to_string(),
        })
        .collect())
}

/// Reads a ListBucketResult (ListObjectsV2).
pub fn parse_object_list(body: &[u8]) -> Result<ListPage, S3Error> {
    let root =
        xml::parse(body).map_err(|err| S3Error::Unexpected(format!("ListObjectsV2: {err}")))?;
    let mut objects = Vec::new();
    for contents in root.children_named("Contents") {
        let key = contents.child_text("Key").unwrap_or_default().to_string();
        let size_text = contents.child_text("Size").unwrap_or("0");
        let size = size_text.parse().map_err(|_| {
            S3Error::Unexpected(format!("ListObjectsV2: size {size_text:?} of {key:?}"))
        })?;
        objects.push(ObjectEntry {
            key,
            size,
            last_modified: contents
                .child_text("LastModified")
                .unwrap_or_default()
                .to_string(),
        });
    }
    let prefixes = root
        .children_named("CommonPrefixes")
        .filter_map(|prefix| prefix.child_text("Prefix").map(str::to_string))
        .collect();
    let truncated = root.child_text("IsTruncated") == Some("true");
    let next_token = root
        .child_text("NextContinuationToken")
        .filter(|token| truncated && !token.is_empty())
        .map(str::to_string);
    if truncated && next_token.is_none() {
        return Err(S3Error::Unexpected(
            "ListObjectsV2: truncated page without NextContinuationToken".to_string(),
        ));
    }
    Ok(ListPage {
        objects,
        prefixes,
        next_token,
    })
}

/// `2026-11-26T18:00:00.000Z` → `2026-11-26 18:00:00` (as sent when it does not parse).
pub fn display_time(text: &str) -> String {
    match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(time) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            time.year(),
            u8::from(time.month()),
            time.day(),
            time.hour(),
            time.minute(),
            time.second()
        ),
        Err(_) => text.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn listings_are_read_with_prefixes_and_tokens() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
<NextContinuationToken>tok+1</NextContinuationToken>
<Contents><Key>a &amp; b.txt</Key><LastModified>2026-11-26T18:00:00.000Z</LastModified><ETag>"x"</ETag><Size>12</Size></Contents>
<CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes></ListBucketResult>"#;
        let page = parse_object_list(body).unwrap();
        assert_eq!(
            page.objects,
            vec![ObjectEntry {
                key: "a & b.txt".into(),
                size: 12,
                last_modified: "2026-11-26T18:00:00.000Z".into()
            }]
        );
        assert_eq!(page.prefixes, vec!["dir/".to_string()]);
        assert_eq!(page.next_token.as_deref(), Some("tok+1"));
        let broken = String::from_utf8_lossy(body)
            .replace("<NextContinuationToken>tok+1</NextContinuationToken>", "");
        assert!(parse_object_list(broken.as_bytes()).is_err());
        let bad_size = String::from_utf8_lossy(body).replace("<Size>12</Size>", "<Size>x</Size>");
        assert!(parse_object_list(bad_size.as_bytes()).is_err());
    }

    #[test]
    fn bucket_lists_and_errors_are_read() {
        let body = br#"<ListAllMyBucketsResult><Owner><ID>x</ID></Owner><Buckets><Bucket><Name>one</Name><CreationDate>2026-01-02T03:04:05Z</CreationDate></Bucket><Bucket><Name>two</Name><CreationDate>x</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>"#;
        let buckets = parse_bucket_list(body).unwrap();
        assert_eq!(buckets.len(), 2);
        assert_eq!(buckets[0].name, "one");
        assert_eq!(display_time(&buckets[0].created), "2026-01-02 03:04:05");
        assert_eq!(display_time("x"), "x");
        assert_eq!(
            parse_error_document(
                b"<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>"
            ),
            Some((
                "NoSuchBucket".into(),
                "The specified bucket does not exist".into()
            ))
        );
        assert_eq!(parse_error_document(b"<Other/>"), None);
    }
}
