//! A minimal writer for S3 response documents: elements with escaped text, nested by closures
//! so every element that is opened is also closed.

use time::OffsetDateTime;

use super::{quoted_etag, s3_timestamp, Owner, S3_XMLNS, XML_DECLARATION};
use crate::error::xml_escape;

/// Builds one XML document in a string.
pub(crate) struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// Writes a whole document: the declaration, then `root` carrying the S3 namespace, with
    /// the children that `body` writes.
    pub(crate) fn document(root: &str, body: impl FnOnce(&mut XmlWriter)) -> String {
        XmlWriter::document_in(root, S3_XMLNS, body)
    }

    /// Writes a whole document whose root carries the namespace `xmlns` (STS answers use
    /// their own).
    pub(crate) fn document_in(
        root: &str,
        xmlns: &str,
        body: impl FnOnce(&mut XmlWriter),
    ) -> String {
        let mut writer = XmlWriter {
            out: String::with_capacity(512),
        };
        writer.out.push_str(XML_DECLARATION);
        writer.out.push('<');
        writer.out.push_str(root);
        writer.out.push_str(" xmlns=\"");
        writer.out.push_str(xmlns);
        writer.out.push_str("\">");
        body(&mut writer);
        writer.close_tag(root);
        writer.out
    }

    /// Writes a document whose root element holds only text (e.g. `<LocationConstraint>`).
    pub(crate) fn document_with_text(root: &str, text: &str) -> String {
        XmlWriter::document(root, |w| w.out.push_str(&xml_escape(text)))
    }

    /// Writes `<name>…</name>` around the children that `children` writes.
    pub(crate) fn element(&mut self, name: &str, children: impl FnOnce(&mut XmlWriter)) {
        self.open_tag(name);
        children(self);
        self.close_tag(name);
    }

    /// Writes `<name>text</name>` with the text escaped (an empty text gives `<name></name>`).
    pub(crate) fn text(&mut self, name: &str, text: &str) {
        self.open_tag(name);
        self.out.push_str(&xml_escape(text));
        self.close_tag(name);
    }

    /// Writes the element only when there is a value.
    pub(crate) fn optional_text(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.text(name, text);
        }
    }

    /// Writes a number or boolean, which never needs escaping.
    pub(crate) fn scalar(&mut self, name: &str, value: impl std::fmt::Display) {
        self.open_tag(name);
        self.out.push_str(&value.to_string());
        self.close_tag(name);
    }

    /// Writes a time in S3's millisecond ISO 8601 form.
    pub(crate) fn timestamp(&mut self, name: &str, time: OffsetDateTime) {
        self.scalar(name, s3_timestamp(time));
    }

    /// Writes an ETag, quoted as S3 does (the quotes come out as `&quot;`).
    pub(crate) fn etag(&mut self, name: &str, etag: &str) {
        self.text(name, &quoted_etag(etag));
    }

    /// Writes `<name><ID>…</ID><DisplayName>…</DisplayName></name>`.
    pub(crate) fn owner(&mut self, name: &str, owner: &Owner) {
        self.element(name, |w| {
            w.text("ID", &owner.id);
            w.text("DisplayName", &owner.display_name);
        });
    }

    /// Writes one `<CommonPrefixes><Prefix>…</Prefix></CommonPrefixes>` per prefix.
    pub(crate) fn common_prefixes(&mut self, prefixes: &[String]) {
        for prefix in prefixes {
            self.element("CommonPrefixes", |w| w.text("Prefix", prefix));
        }
    }

    fn open_tag(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    fn close_tag(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }
}
