//! A namespace-blind XML tree for the small answers the CLI reads (S3 listings and errors, STS
//! credentials): elements by local name, their text and children. Answers from AWS, MinIO and
//! Mucura differ in namespaces and prefixes only, so matching on local names reads them all.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One element: its local name, its text (concatenated, trimmed) and its child elements.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Element {
    /// The local name (`Key` for `<s3:Key>`).
    pub name: String,
    /// The character data directly inside the element, entities decoded.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// The document is not well-formed XML.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// The document has no root element.
    #[error("empty XML document")]
    Empty,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |child| child.name == name)
    }

    /// The text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|child| child.text.as_str())
    }

    /// The element at a path of child names below this one.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names
            .iter()
            .try_fold(self, |element, name| element.child(name))
    }
}

fn local_name(raw: &str) -> String {
    raw.rsplit(':').next().unwrap_or(raw).to_string()
}

/// The five entities XML predefines; S3 and STS answers use no others (no DTDs).
fn predefined_entity(name: &str) -> Result<char, XmlError> {
    match name {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        other => Err(XmlError::Malformed(format!("unknown entity &{other};"))),
    }
}

/// Parses a whole document into its root element.
pub fn parse(document: &[u8]) -> Result<Element, XmlError> {
    let mut reader = Reader::from_reader(document);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut buffer = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buffer)
            .map_err(|err| XmlError::Malformed(err.to_string()))?;
        match event {
            Event::Start(start) => stack.push(Element {
                name: local_name(start.name().as_ref()),
                ..Element::default()
            }),
            Event::Empty(start) => {
                let element = Element {
                    name: local_name(start.name().as_ref()),
                    ..Element::default()
                };
                attach(&mut stack, &mut root, element);
            }
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(top) = stack.last_mut() {
                    let resolved = match reference
                        .resolve_char_ref()
                        .map_err(|err| XmlError::Malformed(err.to_string()))?
                    {
                        Some(character) => character,
                        None => predefined_entity(&reference.xml10_content())?,
                    };
                    top.text.push(resolved);
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&data.xml10_content());
                }
            }
            Event::End(_) => {
                if let Some(mut element) = stack.pop() {
                    element.text = element.text.trim().to_string();
                    attach(&mut stack, &mut root, element);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed("unclosed elements".to_string()));
    }
    root.ok_or(XmlError::Empty)
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => {
            if root.is_none() {
                *root = Some(element);
            }
        }
    }
}

/// Escapes text for an XML element body.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaced_documents_by_local_name() {
        let doc = br#"<?xml version="1.0"?>
            <s3:Root xmlns:s3="urn:x"><s3:A>one &amp; two &#x41;&#66;&lt;</s3:A><B/><A>three</A></s3:Root>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Root");
        assert_eq!(root.child_text("A"), Some("one & two AB<"));
        assert_eq!(root.children_named("A").count(), 2);
        assert_eq!(root.child_text("B"), Some(""));
    }

    #[test]
    fn rejects_malformed_and_empty_documents() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(matches!(parse(b""), Err(XmlError::Empty)));
        assert!(parse(b"<a><b>").is_err());
        assert!(parse(b"<a>&nbsp;</a>").is_err());
    }
}
