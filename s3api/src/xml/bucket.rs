//! Bucket-level documents: ListBuckets and GetBucketLocation.

use super::writer::XmlWriter;
use super::Owner;
use crate::backend::BucketInfo;

/// The answer to ListBuckets (`GET /`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAllMyBucketsResult {
    /// The user the buckets belong to.
    pub owner: Owner,
    /// The buckets in the order they are listed (AWS lists by name).
    pub buckets: Vec<BucketInfo>,
}

impl ListAllMyBucketsResult {
    /// The XML document, `<ListAllMyBucketsResult>` with Owner and Buckets.
    pub fn to_xml(&self) -> String {
        XmlWriter::document("ListAllMyBucketsResult", |w| {
            w.owner("Owner", &self.owner);
            w.element("Buckets", |w| {
                for bucket in &self.buckets {
                    w.element("Bucket", |w| {
                        w.text("Name", &bucket.name);
                        w.timestamp("CreationDate", bucket.created);
                    });
                }
            });
        })
    }
}

/// The answer to GetBucketLocation (`GET /bucket?location`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationConstraint {
    /// The bucket's region; `None` or `us-east-1` are written as an empty element, as AWS does
    /// for its default region.
    pub region: Option<String>,
}

impl LocationConstraint {
    /// The XML document, `<LocationConstraint>region</LocationConstraint>`.
    pub fn to_xml(&self) -> String {
        let region = match self.region.as_deref() {
            None | Some("us-east-1") => "",
            Some(region) => region,
        };
        // The root element itself holds the text, so no child element is written.
        XmlWriter::document_with_text("LocationConstraint", region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn list_buckets_exact_xml() {
        let result = ListAllMyBucketsResult {
            owner: Owner {
                id: "owner&1".into(),
                display_name: "Zoë <admin>".into(),
            },
            buckets: vec![
                BucketInfo {
                    name: "alpha".into(),
                    created: datetime!(2009-02-03 16:45:09.5 UTC),
                    owner: "owner&1".into(),
                },
                BucketInfo {
                    name: "beta".into(),
                    created: datetime!(2024-12-31 23:59:59 UTC),
                    owner: "owner&1".into(),
                },
            ],
        };
        assert_eq!(
            result.to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Owner><ID>owner&amp;1</ID><DisplayName>Zoë &lt;admin&gt;</DisplayName></Owner>\
             <Buckets>\
             <Bucket><Name>alpha</Name><CreationDate>2009-02-03T16:45:09.500Z</CreationDate></Bucket>\
             <Bucket><Name>beta</Name><CreationDate>2024-12-31T23:59:59.000Z</CreationDate></Bucket>\
             </Buckets></ListAllMyBucketsResult>"
        );
    }

    #[test]
    fn list_buckets_with_no_bucket_keeps_buckets_element() {
        let result = ListAllMyBucketsResult {
            owner: Owner::default(),
            buckets: vec![],
        };
        assert!(result
            .to_xml()
            .ends_with("<Owner><ID></ID><DisplayName></DisplayName></Owner><Buckets></Buckets></ListAllMyBucketsResult>"));
    }

    #[test]
    fn location_constraint_is_empty_for_us_east_1() {
        let empty = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></LocationConstraint>";
        assert_eq!(LocationConstraint { region: None }.to_xml(), empty);
        let us_east_1 = LocationConstraint {
            region: Some("us-east-1".into()),
        };
        assert_eq!(us_east_1.to_xml(), empty);
        let eu = LocationConstraint {
            region: Some("eu-west-1".into()),
        };
        assert_eq!(
            eu.to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">eu-west-1</LocationConstraint>"
        );
    }
}
