#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use super::*;
use crate::error::S3ErrorCode;

fn assert_malformed<T: std::fmt::Debug>(result: S3Result<T>) {
    let err = result.unwrap_err();
    assert_eq!(err.code, S3ErrorCode::MalformedXML);
}

#[test]
fn complete_parses_parts_with_namespace_and_quotes() {
    let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part>
    <ETag>"a54357aff0632cce46d942af68356b38"</ETag>
    <PartNumber>1</PartNumber>
    <ChecksumCRC32>AAAAAA==</ChecksumCRC32>
  </Part>
  <Part><PartNumber> 2 </PartNumber><ETag>&quot;0c78aef83f66abc1fa1e8477f296d394&quot;</ETag></Part>
  <Part><PartNumber>3</PartNumber><ETag>acbd18db4cc2f85cedef654fccc4a4d8</ETag></Part>
</CompleteMultipartUpload>"#;
    assert_eq!(
        parse_complete_multipart_upload(body).unwrap(),
        vec![
            (1, "a54357aff0632cce46d942af68356b38".to_string()),
            (2, "0c78aef83f66abc1fa1e8477f296d394".to_string()),
            (3, "acbd18db4cc2f85cedef654fccc4a4d8".to_string()),
        ]
    );
}

#[test]
fn complete_without_namespace_keeps_request_order() {
    let body = b"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>b</ETag></Part>\
<Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>";
    assert_eq!(
        parse_complete_multipart_upload(body).unwrap(),
        vec![(2, "b".to_string()), (1, "a".to_string())]
    );
}

#[test]
fn complete_refuses_malformed_bodies() {
    let bad: &[&[u8]] = &[
        b"",
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload/>",
        b"<Delete><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Delete>",
        b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>-1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>99999999999</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>",
    ];
    for body in bad {
        assert_malformed(parse_complete_multipart_upload(body));
    }
}

#[test]
fn delete_parses_quiet_and_keys_exactly() {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
<Object><Key>sample1.txt</Key></Object>\
<Object><Key> spaced key </Key><VersionId>null</VersionId></Object>\
<Object><Key>a&lt;&amp;&gt;&quot;&apos;b</Key></Object>\
<Object><Key>日本語/ключ</Key></Object>\
<Quiet>true</Quiet></Delete>";
    let request = parse_delete_objects(body.as_bytes()).unwrap();
    assert!(request.quiet);
    assert_eq!(
        request.keys,
        vec!["sample1.txt", " spaced key ", "a<&>\"'b", "日本語/ключ"]
    );
}

#[test]
fn delete_accepts_namespace_prefixes_cdata_and_whitespace_only_keys() {
    let body = b"<s3:Delete xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n  \
<s3:Quiet> true </s3:Quiet>\n  <s3:Object><s3:Key>   </s3:Key></s3:Object>\n  \
<s3:Object><s3:Key><![CDATA[<raw & key>]]></s3:Key></s3:Object>\n</s3:Delete>";
    let request = parse_delete_objects(body).unwrap();
    assert!(request.quiet);
    assert_eq!(request.keys, vec!["   ", "<raw & key>"]);
}

#[test]
fn delete_quiet_defaults_to_false() {
    let request = parse_delete_objects(b"<Delete><Object><Key>k</Key></Object></Delete>").unwrap();
    assert!(!request.quiet);
    let request =
        parse_delete_objects(b"<Delete><Quiet>False</Quiet><Object><Key>k</Key></Object></Delete>")
            .unwrap();
    assert!(!request.quiet);
}

#[test]
fn delete_accepts_exactly_the_limit_and_refuses_more() {
    let body = |count: usize| {
        let objects = "<Object><Key>k</Key></Object>".repeat(count);
        format!("<Delete>{objects}</Delete>")
    };
    let request = parse_delete_objects(body(MAX_DELETE_OBJECTS).as_bytes()).unwrap();
    assert_eq!(request.keys.len(), MAX_DELETE_OBJECTS);
    assert_malformed(parse_delete_objects(
        body(MAX_DELETE_OBJECTS + 1).as_bytes(),
    ));
}

#[test]
fn delete_refuses_malformed_bodies() {
    let bad: &[&[u8]] = &[
        b"",
        b"<Delete></Delete>",
        b"<Delete><Quiet>true</Quiet></Delete>",
        b"<Delete><Object><VersionId>null</VersionId></Object></Delete>",
        b"<Delete><Quiet>yes</Quiet><Object><Key>k</Key></Object></Delete>",
        b"<Remove><Object><Key>k</Key></Object></Remove>",
        b"<Delete><Object><Key>k</Key></Object>",
        b"<Delete><Object><Key>k</Object></Key></Delete>",
        b"<Delete><Object><Key>k</Key></Object></Delete\xff>",
        b"<!DOCTYPE d [<!ENTITY x \"y\">]><Delete><Object><Key>&x;</Key></Object></Delete>",
        b"<Delete><Object><Key>&#0;</Key></Object></Delete>",
        b"not xml",
    ];
    for body in bad {
        assert_malformed(parse_delete_objects(body));
    }
}

#[test]
fn create_bucket_configuration_reads_region() {
    let body = b"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
    assert_eq!(
        parse_create_bucket_configuration(body).unwrap(),
        Some("eu-west-1".to_string())
    );
    let without_namespace =
        b"<CreateBucketConfiguration><LocationConstraint> us-west-2\n</LocationConstraint></CreateBucketConfiguration>";
    assert_eq!(
        parse_create_bucket_configuration(without_namespace).unwrap(),
        Some("us-west-2".to_string())
    );
}

#[test]
fn create_bucket_configuration_empty_cases_are_none() {
    assert_eq!(parse_create_bucket_configuration(b"").unwrap(), None);
    assert_eq!(parse_create_bucket_configuration(b" \r\n").unwrap(), None);
    assert_eq!(
        parse_create_bucket_configuration(b"<CreateBucketConfiguration/>").unwrap(),
        None
    );
    assert_eq!(
        parse_create_bucket_configuration(
            b"<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>"
        )
        .unwrap(),
        None
    );
}

#[test]
fn create_bucket_configuration_refuses_malformed_bodies() {
    assert_malformed(parse_create_bucket_configuration(
        b"<CreateBucketConfiguration>",
    ));
    assert_malformed(parse_create_bucket_configuration(
        b"<Other><LocationConstraint>x</LocationConstraint></Other>",
    ));
    assert_malformed(parse_create_bucket_configuration(b"garbage"));
}
