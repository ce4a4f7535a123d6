//! Object-level documents: CopyObject, UploadPartCopy and DeleteObjects.

use time::OffsetDateTime;

use super::writer::XmlWriter;
use crate::error::{S3Error, S3ErrorCode};

/// The answer to CopyObject (`PUT /bucket/key` with `x-amz-copy-source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyObjectResult {
    /// When the copy was committed.
    pub last_modified: OffsetDateTime,
    /// The new object's ETag without quotes; quoted when written.
    pub etag: String,
}

impl CopyObjectResult {
    /// The XML document, `<CopyObjectResult>`.
    pub fn to_xml(&self) -> String {
        XmlWriter::document("CopyObjectResult", |w| {
            w.timestamp("LastModified", self.last_modified);
            w.etag("ETag", &self.etag);
        })
    }
}

/// The answer to UploadPartCopy (`PUT /bucket/key?partNumber=…&uploadId=…` with a copy source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPartResult {
    /// When the part was stored.
    pub last_modified: OffsetDateTime,
    /// The part's ETag without quotes; quoted when written.
    pub etag: String,
}

impl CopyPartResult {
    /// The XML document, `<CopyPartResult>`.
    pub fn to_xml(&self) -> String {
        XmlWriter::document("CopyPartResult", |w| {
            w.timestamp("LastModified", self.last_modified);
            w.etag("ETag", &self.etag);
        })
    }
}

/// An object DeleteObjects removed (or found already absent, which S3 also reports as deleted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedObject {
    /// The key as the request named it.
    pub key: String,
    /// The version id the request named, echoed back when it named one.
    pub version_id: Option<String>,
}

/// An object DeleteObjects could not remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteError {
    /// The key as the request named it.
    pub key: String,
    /// The version id the request named, if any.
    pub version_id: Option<String>,
    /// Why it failed.
    pub code: S3ErrorCode,
    /// AWS's message for the code, or a more specific one.
    pub message: String,
}

impl DeleteError {
    /// The failure of `key` described by an error the backend returned.
    pub fn from_error(key: impl Into<String>, error: &S3Error) -> Self {
        DeleteError {
            key: key.into(),
            version_id: None,
            code: error.code,
            message: error.message.clone(),
        }
    }
}

/// The answer to DeleteObjects (`POST /bucket?delete`). In quiet mode the caller leaves
/// `deleted` empty: only errors are reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteResult {
    /// The objects deleted, in request order.
    pub deleted: Vec<DeletedObject>,
    /// The objects that failed, in request order.
    pub errors: Vec<DeleteError>,
}

impl DeleteResult {
    /// The XML document, `<DeleteResult>` with `<Deleted>` then `<Error>` entries.
    pub fn to_xml(&self) -> String {
        XmlWriter::document("DeleteResult", |w| {
            for deleted in &self.deleted {
                w.element("Deleted", |w| {
                    w.text("Key", &deleted.key);
                    w.optional_text("VersionId", deleted.version_id.as_deref());
                });
            }
            for error in &self.errors {
                w.element("Error", |w| {
                    w.text("Key", &error.key);
                    w.optional_text("VersionId", error.version_id.as_deref());
                    w.text("Code", error.code.as_str());
                    w.text("Message", &error.message);
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

    #[test]
    fn copy_object_exact_xml() {
        let result = CopyObjectResult {
            last_modified: datetime!(2009-10-28 22:32:00 UTC),
            etag: "9b2cf535f27731c974343645a3985328".into(),
        };
        assert_eq!(
            result.to_xml(),
            format!(
                "{HEAD}<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LastModified>2009-10-28T22:32:00.000Z</LastModified>\
                 <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag></CopyObjectResult>"
            )
        );
    }

    #[test]
    fn copy_part_exact_xml() {
        let result = CopyPartResult {
            last_modified: datetime!(2009-10-28 22:32:00.001 UTC),
            etag: "\"9b2c\"".into(),
        };
        assert_eq!(
            result.to_xml(),
            format!(
                "{HEAD}<CopyPartResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LastModified>2009-10-28T22:32:00.001Z</LastModified>\
                 <ETag>&quot;9b2c&quot;</ETag></CopyPartResult>"
            )
        );
    }

    #[test]
    fn delete_result_exact_xml() {
        let result = DeleteResult {
            deleted: vec![
                DeletedObject {
                    key: "sample1.txt".into(),
                    version_id: None,
                },
                DeletedObject {
                    key: "ключ <&>".into(),
                    version_id: Some("null".into()),
                },
            ],
            errors: vec![DeleteError::from_error(
                "sample2's.txt",
                &S3Error::from(S3ErrorCode::AccessDenied),
            )],
        };
        assert_eq!(
            result.to_xml(),
            format!(
                "{HEAD}<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <Deleted><Key>sample1.txt</Key></Deleted>\
                 <Deleted><Key>ключ &lt;&amp;&gt;</Key><VersionId>null</VersionId></Deleted>\
                 <Error><Key>sample2&apos;s.txt</Key><Code>AccessDenied</Code>\
                 <Message>Access Denied</Message></Error></DeleteResult>"
            )
        );
    }

    #[test]
    fn empty_delete_result_is_an_empty_root() {
        assert_eq!(
            DeleteResult::default().to_xml(),
            format!("{HEAD}<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></DeleteResult>")
        );
    }
}
