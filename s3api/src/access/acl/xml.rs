//! The `AccessControlPolicy` document of GetBucketAcl/GetObjectAcl (written) and
//! PutBucketAcl/PutObjectAcl (read).
//!
//! The shared response writer of [`crate::xml`] writes no attributes, and grantees carry
//! `xmlns:xsi` and `xsi:type`, so this document is written here with the same escaping,
//! declaration and namespace.

use serde::Deserialize;

use super::{Acl, Grant, Grantee, Permission};
use crate::error::{xml_escape, S3Error, S3ErrorCode, S3Result};
use crate::xml::{S3_XMLNS, XML_DECLARATION};

/// The XML Schema instance namespace that `xsi:type` belongs to.
const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

impl Acl {
    /// The `AccessControlPolicy` document as AWS writes it. `display_name` gives the display
    /// name of a user id (the owner's and user grantees'); unknown names are written empty,
    /// as S3 keeps the `<DisplayName>` element.
    pub fn to_xml(&self, display_name: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(512);
        out.push_str(XML_DECLARATION);
        out.push_str("<AccessControlPolicy xmlns=\"");
        out.push_str(S3_XMLNS);
        out.push_str("\"><Owner>");
        push_user(&mut out, &self.owner, &display_name);
        out.push_str("</Owner><AccessControlList>");
        for grant in &self.grants {
            out.push_str("<Grant><Grantee xmlns:xsi=\"");
            out.push_str(XSI_NAMESPACE);
            match &grant.grantee {
                Grantee::User(id) => {
                    out.push_str("\" xsi:type=\"CanonicalUser\">");
                    push_user(&mut out, id, &display_name);
                }
                group => {
                    out.push_str("\" xsi:type=\"Group\"><URI>");
                    out.push_str(group.group_uri().unwrap_or_default());
                    out.push_str("</URI>");
                }
            }
            out.push_str("</Grantee><Permission>");
            out.push_str(grant.permission.as_str());
            out.push_str("</Permission></Grant>");
        }
        out.push_str("</AccessControlList></AccessControlPolicy>");
        out
    }

    /// Reads an `AccessControlPolicy` body (with or without namespaces). The owner id is
    /// returned as sent; comparing it with the resource's owner is the caller's business.
    ///
    /// Unreadable XML, a missing owner id, a grant without grantee or permission, an unknown
    /// permission or grantee type is MalformedACLError; an unknown group URI is
    /// InvalidArgument; an email grantee is UnresolvableGrantByEmailAddress.
    pub fn from_xml(body: &[u8]) -> S3Result<Acl> {
        let text = std::str::from_utf8(body).map_err(|_| malformed_acl())?;
        let AclDocument::AccessControlPolicy(document) =
            quick_xml::de::from_str(text).map_err(|_| malformed_acl())?;
        let owner = document
            .owner
            .and_then(|owner| owner.id)
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
            .ok_or_else(malformed_acl)?;
        let grants = document
            .access_control_list
            .map(|list| list.grants)
            .unwrap_or_default()
            .into_iter()
            .map(GrantElement::into_grant)
            .collect::<S3Result<_>>()?;
        Ok(Acl { owner, grants })
    }
}

fn push_user(out: &mut String, id: &str, display_name: &impl Fn(&str) -> Option<String>) {
    out.push_str("<ID>");
    out.push_str(&xml_escape(id));
    out.push_str("</ID><DisplayName>");
    out.push_str(&xml_escape(&display_name(id).unwrap_or_default()));
    out.push_str("</DisplayName>");
}

fn malformed_acl() -> S3Error {
    S3Error::from(S3ErrorCode::MalformedACLError)
}

/// The root element; the variant name is the element's name.
#[derive(Deserialize)]
enum AclDocument {
    AccessControlPolicy(AccessControlPolicyElement),
}

#[derive(Deserialize)]
struct AccessControlPolicyElement {
    #[serde(rename = "Owner")]
    owner: Option<OwnerElement>,
    #[serde(rename = "AccessControlList")]
    access_control_list: Option<AccessControlListElement>,
}

#[derive(Deserialize)]
struct OwnerElement {
    #[serde(rename = "ID")]
    id: Option<String>,
}

#[derive(Deserialize)]
struct AccessControlListElement {
    #[serde(rename = "Grant", default)]
    grants: Vec<GrantElement>,
}

#[derive(Deserialize)]
struct GrantElement {
    #[serde(rename = "Grantee")]
    grantee: Option<GranteeElement>,
    #[serde(rename = "Permission")]
    permission: Option<String>,
}

/// A `<Grantee>`: `xsi:type` is read by its local name; when a client leaves it out, the
/// child element present (`ID`, `URI`, `EmailAddress`) tells the type.
#[derive(Deserialize)]
struct GranteeElement {
    #[serde(rename = "@type")]
    kind: Option<String>,
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "URI")]
    uri: Option<String>,
    #[serde(rename = "EmailAddress")]
    email_address: Option<String>,
}

impl GrantElement {
    fn into_grant(self) -> S3Result<Grant> {
        let permission = self
            .permission
            .as_deref()
            .map(str::trim)
            .and_then(Permission::parse)
            .ok_or_else(malformed_acl)?;
        let grantee = self.grantee.ok_or_else(malformed_acl)?.into_grantee()?;
        Ok(Grant::new(grantee, permission))
    }
}

impl GranteeElement {
    fn into_grantee(self) -> S3Result<Grantee> {
        let trimmed = |value: Option<String>| {
            value
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let kind = match self.kind.as_deref().map(str::trim) {
            Some(kind) => kind.to_string(),
            None if self.id.is_some() => "CanonicalUser".to_string(),
            None if self.uri.is_some() => "Group".to_string(),
            None if self.email_address.is_some() => "AmazonCustomerByEmail".to_string(),
            None => return Err(malformed_acl()),
        };
        match kind.as_str() {
            "CanonicalUser" => trimmed(self.id)
                .map(Grantee::User)
                .ok_or_else(malformed_acl),
            "Group" => {
                let uri = trimmed(self.uri).ok_or_else(malformed_acl)?;
                Grantee::from_group_uri(&uri).ok_or_else(|| {
                    S3Error::new(S3ErrorCode::InvalidArgument, "Invalid group uri")
                        .with_detail("ArgumentName", "Group")
                        .with_detail("ArgumentValue", uri)
                })
            }
            "AmazonCustomerByEmail" => {
                let email = trimmed(self.email_address).ok_or_else(malformed_acl)?;
                Err(S3Error::from(S3ErrorCode::UnresolvableGrantByEmailAddress)
                    .with_detail("EmailAddress", email))
            }
            _ => Err(malformed_acl()),
        }
    }
}
