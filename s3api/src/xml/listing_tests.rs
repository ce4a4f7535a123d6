use time::macros::datetime;

use super::*;
use crate::xml::url_encode_key;

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn summary(key: &str, etag: &str, size: u64) -> ObjectSummary {
    ObjectSummary {
        key: key.into(),
        size,
        etag: etag.into(),
        last_modified: datetime!(2009-10-12 17:50:30 UTC),
    }
}

fn owner() -> Owner {
    Owner {
        id: "id1".into(),
        display_name: "user1".into(),
    }
}

#[test]
fn v1_exact_xml_escapes_keys() {
    let result = ListBucketResultV1 {
        name: "bucket".into(),
        prefix: "".into(),
        marker: "".into(),
        next_marker: Some("photos/".into()),
        max_keys: 2,
        delimiter: Some("/".into()),
        is_truncated: true,
        url_encoded: false,
        contents: vec![summary("a<&>\"'b", "0123abcd", 434234)],
        common_prefixes: vec!["photos/".into()],
        owner: owner(),
    };
    let expected = format!(
        "{HEAD}<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>bucket</Name><Prefix></Prefix><Marker></Marker><NextMarker>photos/</NextMarker>\
         <MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>\
         <Contents><Key>a&lt;&amp;&gt;&quot;&apos;b</Key>\
         <LastModified>2009-10-12T17:50:30.000Z</LastModified>\
         <ETag>&quot;0123abcd&quot;</ETag><Size>434234</Size><StorageClass>STANDARD</StorageClass>\
         <Owner><ID>id1</ID><DisplayName>user1</DisplayName></Owner></Contents>\
         <CommonPrefixes><Prefix>photos/</Prefix></CommonPrefixes>\
         </ListBucketResult>"
    );
    assert_eq!(result.to_xml(), expected);
}

#[test]
fn v1_without_delimiter_omits_next_marker_and_delimiter() {
    let result = ListBucketResultV1 {
        name: "b".into(),
        prefix: "p/".into(),
        marker: "p/a".into(),
        max_keys: 1000,
        owner: owner(),
        ..Default::default()
    };
    let expected = format!(
        "{HEAD}<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>b</Name><Prefix>p/</Prefix><Marker>p/a</Marker><MaxKeys>1000</MaxKeys>\
         <IsTruncated>false</IsTruncated></ListBucketResult>"
    );
    assert_eq!(result.to_xml(), expected);
}

#[test]
fn v2_exact_xml_with_url_encoding_and_unicode() {
    let key = "données/été 1+1.txt";
    let result = ListBucketResultV2 {
        name: "bucket".into(),
        prefix: url_encode_key("données/"),
        continuation_token: Some("tok&1".into()),
        next_continuation_token: Some("tok2".into()),
        max_keys: 2,
        delimiter: Some("/".into()),
        start_after: Some(url_encode_key("a b")),
        url_encoded: true,
        is_truncated: true,
        contents: vec![summary(&url_encode_key(key), "\"e1\"", 0)],
        common_prefixes: vec![url_encode_key("données/x y/")],
        owner: None,
    };
    let expected = format!(
        "{HEAD}<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>bucket</Name><Prefix>donn%C3%A9es/</Prefix>\
         <ContinuationToken>tok&amp;1</ContinuationToken>\
         <NextContinuationToken>tok2</NextContinuationToken>\
         <KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter>\
         <StartAfter>a%20b</StartAfter><EncodingType>url</EncodingType>\
         <IsTruncated>true</IsTruncated>\
         <Contents><Key>donn%C3%A9es/%C3%A9t%C3%A9%201%2B1.txt</Key>\
         <LastModified>2009-10-12T17:50:30.000Z</LastModified>\
         <ETag>&quot;e1&quot;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>\
         <CommonPrefixes><Prefix>donn%C3%A9es/x%20y/</Prefix></CommonPrefixes>\
         </ListBucketResult>"
    );
    assert_eq!(result.to_xml(), expected);
}

#[test]
fn v2_unicode_key_without_encoding_is_written_raw() {
    let result = ListBucketResultV2 {
        name: "b".into(),
        max_keys: 1000,
        contents: vec![summary("日本/語 ☃", "x", 5)],
        owner: Some(owner()),
        ..Default::default()
    };
    let expected = format!(
        "{HEAD}<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>b</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>\
         <IsTruncated>false</IsTruncated>\
         <Contents><Key>日本/語 ☃</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>\
         <ETag>&quot;x&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass>\
         <Owner><ID>id1</ID><DisplayName>user1</DisplayName></Owner></Contents>\
         </ListBucketResult>"
    );
    assert_eq!(result.to_xml(), expected);
}

#[test]
fn versions_exact_xml() {
    let result = ListVersionsResult {
        name: "bucket".into(),
        prefix: "my".into(),
        key_marker: "".into(),
        version_id_marker: "".into(),
        next_key_marker: Some("my-z".into()),
        next_version_id_marker: Some("null".into()),
        max_keys: 1,
        delimiter: None,
        is_truncated: true,
        url_encoded: false,
        versions: vec![summary("my-image.jpg", "fba9", 434234)],
        common_prefixes: vec![],
        owner: owner(),
    };
    let expected = format!(
        "{HEAD}<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>bucket</Name><Prefix>my</Prefix><KeyMarker></KeyMarker>\
         <VersionIdMarker></VersionIdMarker><NextKeyMarker>my-z</NextKeyMarker>\
         <NextVersionIdMarker>null</NextVersionIdMarker><MaxKeys>1</MaxKeys>\
         <IsTruncated>true</IsTruncated>\
         <Version><Key>my-image.jpg</Key><VersionId>null</VersionId><IsLatest>true</IsLatest>\
         <LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>&quot;fba9&quot;</ETag>\
         <Size>434234</Size><StorageClass>STANDARD</StorageClass>\
         <Owner><ID>id1</ID><DisplayName>user1</DisplayName></Owner></Version>\
         </ListVersionsResult>"
    );
    assert_eq!(result.to_xml(), expected);
}

#[test]
fn versions_with_delimiter_and_encoding() {
    let result = ListVersionsResult {
        name: "b".into(),
        max_keys: 1000,
        delimiter: Some("/".into()),
        url_encoded: true,
        common_prefixes: vec![url_encode_key("a b/")],
        owner: owner(),
        ..Default::default()
    };
    let xml = result.to_xml();
    assert!(xml.contains(
        "<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>\
         <EncodingType>url</EncodingType>\
         <CommonPrefixes><Prefix>a%20b/</Prefix></CommonPrefixes></ListVersionsResult>"
    ));
    assert!(!xml.contains("<Version>"));
}
