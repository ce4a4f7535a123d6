use time::macros::datetime;

use super::*;

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn owner() -> Owner {
    Owner {
        id: "id1".into(),
        display_name: "user1".into(),
    }
}

#[test]
fn initiate_exact_xml() {
    let result = InitiateMultipartUploadResult {
        bucket: "example-bucket".into(),
        key: "ünï/<c&d>".into(),
        upload_id: "VXBsb2FkIElE".into(),
    };
    assert_eq!(
        result.to_xml(),
        format!(
            "{HEAD}<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Bucket>example-bucket</Bucket><Key>ünï/&lt;c&amp;d&gt;</Key>\
             <UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>"
        )
    );
}

#[test]
fn complete_exact_xml() {
    let result = CompleteMultipartUploadResult {
        location: "http://localhost:9000/b/a%27b".into(),
        bucket: "b".into(),
        key: "a'b".into(),
        etag: "3858f62230ac3c915f300c664312c11f-9".into(),
    };
    assert_eq!(
        result.to_xml(),
        format!(
            "{HEAD}<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Location>http://localhost:9000/b/a%27b</Location><Bucket>b</Bucket>\
             <Key>a&apos;b</Key><ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>\
             </CompleteMultipartUploadResult>"
        )
    );
}

#[test]
fn list_parts_exact_xml() {
    let result = ListPartsResult {
        bucket: "b".into(),
        key: "k\"1".into(),
        upload_id: "u1".into(),
        part_number_marker: 1,
        next_part_number_marker: Some(2),
        max_parts: 1,
        is_truncated: true,
        parts: vec![PartInfo {
            part_number: 2,
            etag: "7778aef83f66abc1fa1e8477f296d394".into(),
            size: 10485760,
            last_modified: datetime!(2010-11-10 20:48:33.5 UTC),
        }],
        owner: owner(),
    };
    assert_eq!(
        result.to_xml(),
        format!(
            "{HEAD}<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Bucket>b</Bucket><Key>k&quot;1</Key><UploadId>u1</UploadId>\
             <PartNumberMarker>1</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>\
             <MaxParts>1</MaxParts><IsTruncated>true</IsTruncated>\
             <Part><PartNumber>2</PartNumber><LastModified>2010-11-10T20:48:33.500Z</LastModified>\
             <ETag>&quot;7778aef83f66abc1fa1e8477f296d394&quot;</ETag><Size>10485760</Size></Part>\
             <Initiator><ID>id1</ID><DisplayName>user1</DisplayName></Initiator>\
             <Owner><ID>id1</ID><DisplayName>user1</DisplayName></Owner>\
             <StorageClass>STANDARD</StorageClass></ListPartsResult>"
        )
    );
}

#[test]
fn list_parts_without_next_marker_omits_it() {
    let result = ListPartsResult {
        max_parts: 1000,
        owner: owner(),
        ..Default::default()
    };
    let xml = result.to_xml();
    assert!(xml.contains("<PartNumberMarker>0</PartNumberMarker><MaxParts>1000</MaxParts>"));
    assert!(!xml.contains("NextPartNumberMarker"));
    assert!(!xml.contains("<Part>"));
}

#[test]
fn list_uploads_exact_xml() {
    let result = ListMultipartUploadsResult {
        bucket: "bucket".into(),
        key_marker: "".into(),
        upload_id_marker: "".into(),
        next_key_marker: Some("my-movie.m2ts".into()),
        next_upload_id_marker: Some("YW55".into()),
        prefix: "".into(),
        delimiter: Some("/".into()),
        max_uploads: 3,
        is_truncated: true,
        uploads: vec![UploadInfo {
            key: "my-movie.m2ts".into(),
            upload_id: "YW55".into(),
            initiated: datetime!(2010-11-10 20:48:33 UTC),
        }],
        common_prefixes: vec!["photos/".into()],
        url_encoded: false,
        owner: owner(),
    };
    assert_eq!(
        result.to_xml(),
        format!(
            "{HEAD}<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Bucket>bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>\
             <NextKeyMarker>my-movie.m2ts</NextKeyMarker><NextUploadIdMarker>YW55</NextUploadIdMarker>\
             <Prefix></Prefix><Delimiter>/</Delimiter><MaxUploads>3</MaxUploads>\
             <IsTruncated>true</IsTruncated>\
             <Upload><Key>my-movie.m2ts</Key><UploadId>YW55</UploadId>\
             <Initiator><ID>id1</ID><DisplayName>user1</DisplayName></Initiator>\
             <Owner><ID>id1</ID><DisplayName>user1</DisplayName></Owner>\
             <StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated>\
             </Upload>\
             <CommonPrefixes><Prefix>photos/</Prefix></CommonPrefixes>\
             </ListMultipartUploadsResult>"
        )
    );
}

#[test]
fn list_uploads_with_url_encoding_ends_with_encoding_type() {
    let result = ListMultipartUploadsResult {
        bucket: "b".into(),
        max_uploads: 1000,
        url_encoded: true,
        uploads: vec![UploadInfo {
            key: crate::xml::url_encode_key("a b"),
            upload_id: "u".into(),
            initiated: datetime!(2010-11-10 20:48:33 UTC),
        }],
        ..Default::default()
    };
    let xml = result.to_xml();
    assert!(xml.contains("<Key>a%20b</Key>"));
    assert!(xml.ends_with("<EncodingType>url</EncodingType></ListMultipartUploadsResult>"));
}
