//! ACLs from request headers: `x-amz-acl` (a canned ACL) or the `x-amz-grant-*` headers.
//!
//! A grant header holds comma-separated `type=value` items, the value optionally in double
//! quotes: `id="user-id"`, `uri="http://acs.amazonaws.com/groups/global/AllUsers"` or
//! `emailAddress="someone@example.org"`. Mucura users have no email addresses, so a grant by
//! email is UnresolvableGrantByEmailAddress, as AWS answers for an address it does not know.

use http::HeaderMap;

use super::{Acl, CannedAcl, Grant, Grantee, Permission};
use crate::error::{S3Error, S3ErrorCode, S3Result};

/// The canned ACL header.
pub const CANNED_ACL_HEADER: &str = "x-amz-acl";

/// The grant headers and the permission each grants.
const GRANT_HEADERS: [(&str, Permission); 5] = [
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
    ("x-amz-grant-full-control", Permission::FullControl),
];

/// The ACL a request's headers ask for, for a resource owned by `owner` in a bucket owned by
/// `bucket_owner`; `None` when the request has none of the headers (the caller then applies
/// `private` to a new resource, or keeps the current ACL).
///
/// A canned ACL expands as [`CannedAcl::expand`]; grant headers give exactly the grants they
/// list (the owner keeps `READ_ACP`/`WRITE_ACP` implicitly). Both at once is InvalidRequest;
/// an unknown canned ACL, a malformed grant, an unknown grantee type or group URI is
/// InvalidArgument; an email grantee is UnresolvableGrantByEmailAddress. Whether granted user
/// ids exist is left to the caller ([`Acl::granted_user_ids`]).
pub fn acl_from_headers(
    headers: &HeaderMap,
    owner: &str,
    bucket_owner: &str,
) -> S3Result<Option<Acl>> {
    let canned = headers
        .get(CANNED_ACL_HEADER)
        .map(|value| header_text(CANNED_ACL_HEADER, value))
        .transpose()?;
    let mut grants = Vec::new();
    let mut any_grant_header = false;
    for (name, permission) in GRANT_HEADERS {
        for value in headers.get_all(name) {
            any_grant_header = true;
            for grantee in parse_grantees(name, header_text(name, value)?)? {
                grants.push(Grant::new(grantee, permission));
            }
        }
    }
    match (canned, any_grant_header) {
        (Some(_), true) => Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "Specifying both Canned ACLs and Header Grants is not allowed",
        )),
        (Some(name), false) => Ok(Some(
            CannedAcl::parse(name.trim())?.expand(owner, bucket_owner),
        )),
        (None, true) => Ok(Some(Acl {
            owner: owner.to_string(),
            grants,
        })),
        (None, false) => Ok(None),
    }
}

fn header_text<'a>(name: &str, value: &'a http::HeaderValue) -> S3Result<&'a str> {
    value
        .to_str()
        .map_err(|_| invalid_argument(name, "", format!("The {name} header is not valid ASCII")))
}

/// Reads the grantees of one grant header.
fn parse_grantees(header: &str, value: &str) -> S3Result<Vec<Grantee>> {
    split_outside_quotes(value)
        .into_iter()
        .map(|item| parse_grantee(header, item.trim()))
        .collect()
}

fn parse_grantee(header: &str, item: &str) -> S3Result<Grantee> {
    let unrecognised = || invalid_argument(header, item, "Argument format not recognized");
    let (kind, value) = item.split_once('=').ok_or_else(unrecognised)?;
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    if value.is_empty() || value.contains('"') {
        return Err(unrecognised());
    }
    match kind.trim().to_ascii_lowercase().as_str() {
        "id" => Ok(Grantee::User(value.to_string())),
        "uri" => Grantee::from_group_uri(value)
            .ok_or_else(|| invalid_argument(header, value, "Invalid group uri")),
        "emailaddress" => Err(S3Error::from(S3ErrorCode::UnresolvableGrantByEmailAddress)
            .with_detail("EmailAddress", value)),
        _ => Err(unrecognised()),
    }
}

/// Splits on commas that are not inside double quotes.
fn split_outside_quotes(value: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (index, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&value[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    items.push(&value[start..]);
    items
}

fn invalid_argument(name: &str, value: &str, message: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, message)
        .with_detail("ArgumentName", name.to_string())
        .with_detail("ArgumentValue", value)
}
