//! Access control lists: grants of permissions to users and groups on a bucket or an object.
//!
//! An ACL comes from a canned ACL name or grant headers ([`acl_from_headers`]) or from an
//! `AccessControlPolicy` XML body ([`Acl::from_xml`]), and is written back by
//! [`Acl::to_xml`]. [`Acl::allows`] answers whether a principal holds a permission.

mod headers;
mod xml;

use serde::{Deserialize, Serialize};

use super::Principal;
use crate::error::{S3Error, S3ErrorCode};

pub use self::headers::acl_from_headers;

/// The URI of the group of everyone, anonymous requests included.
pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// The URI of the group of every signed request, whoever signed it.
pub const AUTHENTICATED_USERS_URI: &str =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// The URI of the group S3 server access logs are written as.
pub const LOG_DELIVERY_URI: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// A permission an ACL grants. On a bucket, `READ` lists it and `WRITE` creates, overwrites
/// and deletes its objects; on an object, `READ` reads it (`WRITE` means nothing there).
/// `READ_ACP`/`WRITE_ACP` read and replace the ACL itself; `FULL_CONTROL` is all four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// `READ`.
    Read,
    /// `WRITE`.
    Write,
    /// `READ_ACP`.
    ReadAcp,
    /// `WRITE_ACP`.
    WriteAcp,
    /// `FULL_CONTROL`.
    FullControl,
}

impl Permission {
    /// The name as S3 writes it, e.g. `READ_ACP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    /// Reads a permission name as S3 writes it (exact case).
    pub fn parse(name: &str) -> Option<Permission> {
        [
            Permission::Read,
            Permission::Write,
            Permission::ReadAcp,
            Permission::WriteAcp,
            Permission::FullControl,
        ]
        .into_iter()
        .find(|permission| permission.as_str() == name)
    }

    /// Whether holding this permission gives `wanted` (`FULL_CONTROL` gives everything).
    pub fn implies(self, wanted: Permission) -> bool {
        self == Permission::FullControl || self == wanted
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Grantee {
    /// One user, by canonical id.
    User(String),
    /// Everyone, anonymous requests included.
    AllUsers,
    /// Every signed request.
    AuthenticatedUsers,
    /// The log delivery group; no request Mucura serves is made as it.
    LogDelivery,
}

impl Grantee {
    /// The group a URI names, if it is one of the three S3 groups.
    pub fn from_group_uri(uri: &str) -> Option<Grantee> {
        match uri {
            ALL_USERS_URI => Some(Grantee::AllUsers),
            AUTHENTICATED_USERS_URI => Some(Grantee::AuthenticatedUsers),
            LOG_DELIVERY_URI => Some(Grantee::LogDelivery),
            _ => None,
        }
    }

    /// The group's URI; `None` for a user.
    pub fn group_uri(&self) -> Option<&'static str> {
        match self {
            Grantee::User(_) => None,
            Grantee::AllUsers => Some(ALL_USERS_URI),
            Grantee::AuthenticatedUsers => Some(AUTHENTICATED_USERS_URI),
            Grantee::LogDelivery => Some(LOG_DELIVERY_URI),
        }
    }

    /// Whether a request by `principal` is covered by this grantee.
    pub fn includes(&self, principal: &Principal) -> bool {
        match (self, principal) {
            (Grantee::AllUsers, _) => true,
            (Grantee::AuthenticatedUsers, Principal::User { .. }) => true,
            (Grantee::User(grantee), Principal::User { id }) => grantee == id,
            _ => false,
        }
    }
}

/// One permission given to one grantee.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// Who receives the permission.
    pub grantee: Grantee,
    /// What they may do.
    pub permission: Permission,
}

impl Grant {
    /// A grant of `permission` to `grantee`.
    pub fn new(grantee: Grantee, permission: Permission) -> Grant {
        Grant {
            grantee,
            permission,
        }
    }
}

/// The ACL of a bucket or an object: its owner and the grants, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    /// The owner's canonical user id.
    pub owner: String,
    /// The grants, in the order they were given.
    pub grants: Vec<Grant>,
}

impl Acl {
    /// The default ACL: the owner has `FULL_CONTROL`, nobody else anything.
    pub fn private(owner: &str) -> Acl {
        CannedAcl::Private.expand(owner, owner)
    }

    /// Whether `principal` holds `permission` under this ACL. The owner always holds
    /// `READ_ACP` and `WRITE_ACP`, whatever the grants say, so an owner cannot lose control of
    /// the ACL itself.
    pub fn allows(&self, principal: &Principal, permission: Permission) -> bool {
        let owner_acp = matches!(permission, Permission::ReadAcp | Permission::WriteAcp)
            && principal.user_id() == Some(self.owner.as_str());
        owner_acp
            || self.grants.iter().any(|grant| {
                grant.grantee.includes(principal) && grant.permission.implies(permission)
            })
    }

    /// The user ids the grants name, so the caller can check they exist (AWS answers
    /// InvalidArgument for a grant to an unknown id).
    pub fn granted_user_ids(&self) -> impl Iterator<Item = &str> {
        self.grants.iter().filter_map(|grant| match &grant.grantee {
            Grantee::User(id) => Some(id.as_str()),
            _ => None,
        })
    }
}

/// The canned ACLs of the `x-amz-acl` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedAcl {
    /// `private`: the owner has `FULL_CONTROL`.
    Private,
    /// `public-read`: and everyone may `READ`.
    PublicRead,
    /// `public-read-write`: and everyone may `READ` and `WRITE`.
    PublicReadWrite,
    /// `authenticated-read`: and every signed request may `READ`.
    AuthenticatedRead,
    /// `bucket-owner-read` (objects): and the bucket owner may `READ`.
    BucketOwnerRead,
    /// `bucket-owner-full-control` (objects): the bucket owner has `FULL_CONTROL` too.
    BucketOwnerFullControl,
    /// `log-delivery-write` (buckets): the log delivery group may `WRITE` and `READ_ACP`.
    LogDeliveryWrite,
}

impl CannedAcl {
    /// The name as sent in `x-amz-acl`.
    pub fn as_str(self) -> &'static str {
        match self {
            CannedAcl::Private => "private",
            CannedAcl::PublicRead => "public-read",
            CannedAcl::PublicReadWrite => "public-read-write",
            CannedAcl::AuthenticatedRead => "authenticated-read",
            CannedAcl::BucketOwnerRead => "bucket-owner-read",
            CannedAcl::BucketOwnerFullControl => "bucket-owner-full-control",
            CannedAcl::LogDeliveryWrite => "log-delivery-write",
        }
    }

    /// Reads an `x-amz-acl` value; an unknown name is InvalidArgument, as in AWS, and
    /// `aws-exec-read` (which grants to EC2, which Mucura has not) is NotImplemented.
    pub fn parse(name: &str) -> Result<CannedAcl, S3Error> {
        use CannedAcl::*;
        [
            Private,
            PublicRead,
            PublicReadWrite,
            AuthenticatedRead,
            BucketOwnerRead,
            BucketOwnerFullControl,
            LogDeliveryWrite,
        ]
        .into_iter()
        .find(|canned| canned.as_str() == name)
        .ok_or_else(|| {
            if name == "aws-exec-read" {
                S3Error::new(
                    S3ErrorCode::NotImplemented,
                    "The canned ACL aws-exec-read is not supported by this server",
                )
            } else {
                S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    format!("The canned ACL {name:?} is not valid"),
                )
                .with_detail("ArgumentName", "x-amz-acl")
                .with_detail("ArgumentValue", name)
            }
        })
    }

    /// The ACL this canned ACL stands for, for a resource owned by `owner` in a bucket owned
    /// by `bucket_owner` (for a bucket, pass its owner twice). The owner's `FULL_CONTROL`
    /// comes first; a grant to the bucket owner that repeats the owner's is left out.
    pub fn expand(self, owner: &str, bucket_owner: &str) -> Acl {
        let mut grants = vec![Grant::new(
            Grantee::User(owner.to_string()),
            Permission::FullControl,
        )];
        let mut grant = |grantee, permission| grants.push(Grant::new(grantee, permission));
        match self {
            CannedAcl::Private => {}
            CannedAcl::PublicRead => grant(Grantee::AllUsers, Permission::Read),
            CannedAcl::PublicReadWrite => {
                grant(Grantee::AllUsers, Permission::Read);
                grant(Grantee::AllUsers, Permission::Write);
            }
            CannedAcl::AuthenticatedRead => grant(Grantee::AuthenticatedUsers, Permission::Read),
            CannedAcl::BucketOwnerRead if bucket_owner != owner => {
                grant(Grantee::User(bucket_owner.to_string()), Permission::Read);
            }
            CannedAcl::BucketOwnerFullControl if bucket_owner != owner => grant(
                Grantee::User(bucket_owner.to_string()),
                Permission::FullControl,
            ),
            CannedAcl::BucketOwnerRead | CannedAcl::BucketOwnerFullControl => {}
            CannedAcl::LogDeliveryWrite => {
                grant(Grantee::LogDelivery, Permission::Write);
                grant(Grantee::LogDelivery, Permission::ReadAcp);
            }
        }
        Acl {
            owner: owner.to_string(),
            grants,
        }
    }
}

#[cfg(test)]
mod tests;
