//! Why a policy document is refused, and how that reaches the client.

use crate::error::{S3Error, S3ErrorCode};

/// Why a policy document was refused. Every variant becomes a `MalformedPolicy` error
/// (HTTP 400) whose message is this error's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document exceeds [`super::MAX_POLICY_SIZE`].
    #[error("Policies must be no more than 20 KB (this one is {size} bytes)")]
    TooLarge {
        /// The document's size in bytes.
        size: usize,
    },
    /// The document is not a JSON object.
    #[error("This policy contains invalid Json: {0}")]
    InvalidJson(String),
    /// `Version` is not one of the two policy language versions.
    #[error("Invalid policy version {0:?}: use \"2012-10-17\" or \"2008-10-17\"")]
    InvalidVersion(String),
    /// A field that must be present is not.
    #[error("Missing required field {0}")]
    MissingField(&'static str),
    /// A field the grammar does not know.
    #[error("Unknown field {0}")]
    UnknownField(String),
    /// Both members of a pair that excludes each other (e.g. `Action` and `NotAction`).
    #[error("A statement cannot have both {0} and {1}")]
    ConflictingFields(&'static str, &'static str),
    /// A field holds the wrong JSON type.
    #[error("Invalid type for {field}: {expected}")]
    InvalidType {
        /// The field.
        field: &'static str,
        /// What it must hold.
        expected: &'static str,
    },
    /// Two statements share a `Sid`.
    #[error("Statement IDs (SID) in a single policy must be unique: {0:?}")]
    DuplicateSid(String),
    /// `Effect` is neither `Allow` nor `Deny`.
    #[error("Invalid effect: {0:?}")]
    InvalidEffect(String),
    /// A principal is not `*` nor a user id or IAM ARN.
    #[error("Invalid principal in policy: {0}")]
    InvalidPrincipal(String),
    /// An action that is not `*` or an `s3:` name.
    #[error("Policy has invalid action: {0:?}")]
    InvalidAction(String),
    /// A resource that is not an S3 ARN of the policy's bucket.
    #[error("Policy has invalid resource: {0:?}")]
    InvalidResource(String),
    /// A `Condition` operator Mucura does not know.
    #[error("Invalid Condition type : {0}")]
    UnknownConditionOperator(String),
    /// A `Condition` block of the wrong shape.
    #[error("Invalid Condition: {0}")]
    InvalidCondition(String),
    /// A condition value that the operator cannot read (a bad date, number, IP or boolean).
    #[error("Invalid value {value:?} for condition {operator} on key {key}")]
    InvalidConditionValue {
        /// The operator as written.
        operator: String,
        /// The condition key.
        key: String,
        /// The offending value.
        value: String,
    },
}

impl From<PolicyError> for S3Error {
    fn from(error: PolicyError) -> Self {
        S3Error::new(S3ErrorCode::MalformedPolicy, error.to_string())
    }
}
