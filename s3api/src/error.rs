//! S3 errors: the codes AWS returns, their HTTP statuses, and the XML error body.
//!
//! Every failure that reaches a client goes through [`S3Error`]; the mapping from storage
//! failures to S3 codes happens where the backend builds these values, never ad hoc in handlers.

use http::StatusCode;

/// The S3 error codes Mucura returns, each with the HTTP status AWS uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3ErrorCode {
    AccessDenied,
    /// A CORS preflight that no rule of the bucket allows (403).
    AccessForbidden,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    /// A request that cannot be understood at all (a preflight without `Origin`).
    BadRequest,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    EntityTooLarge,
    EntityTooSmall,
    ExpiredToken,
    IncompleteBody,
    IncorrectNumberOfFilesInPostRequest,
    InternalError,
    InvalidAccessKeyId,
    InvalidAction,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidPart,
    InvalidPartOrder,
    InvalidPolicyDocument,
    InvalidRange,
    InvalidRequest,
    InvalidStorageClass,
    InvalidToken,
    KeyTooLongError,
    MalformedACLError,
    MalformedPOSTRequest,
    MalformedPolicy,
    MalformedXML,
    MaxPostPreDataLengthExceededError,
    MetadataTooLarge,
    MethodNotAllowed,
    MissingContentLength,
    MissingSecurityHeader,
    NoSuchBucket,
    NoSuchBucketPolicy,
    NoSuchCORSConfiguration,
    NoSuchKey,
    NoSuchUpload,
    NotImplemented,
    NotModified,
    PreconditionFailed,
    /// Not an AWS code (S3 has no quotas): the bucket owner's storage quota would be
    /// exceeded. Ceph RGW answers the same code with 403.
    QuotaExceeded,
    RequestHeaderSectionTooLarge,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
    ServiceUnavailable,
    SlowDown,
    UnresolvableGrantByEmailAddress,
    ValidationError,
    XAmzContentSHA256Mismatch,
}

impl S3ErrorCode {
    /// The code as it appears in the `<Code>` element.
    pub fn as_str(self) -> &'static str {
        use S3ErrorCode::*;
        match self {
            AccessDenied => "AccessDenied",
            AccessForbidden => "AccessForbidden",
            AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            BadDigest => "BadDigest",
            BadRequest => "BadRequest",
            BucketAlreadyExists => "BucketAlreadyExists",
            BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketNotEmpty => "BucketNotEmpty",
            EntityTooLarge => "EntityTooLarge",
            EntityTooSmall => "EntityTooSmall",
            ExpiredToken => "ExpiredToken",
            IncompleteBody => "IncompleteBody",
            IncorrectNumberOfFilesInPostRequest => "IncorrectNumberOfFilesInPostRequest",
            InternalError => "InternalError",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            InvalidAction => "InvalidAction",
            InvalidArgument => "InvalidArgument",
            InvalidBucketName => "InvalidBucketName",
            InvalidDigest => "InvalidDigest",
            InvalidPart => "InvalidPart",
            InvalidPartOrder => "InvalidPartOrder",
            InvalidPolicyDocument => "InvalidPolicyDocument",
            InvalidRange => "InvalidRange",
            InvalidRequest => "InvalidRequest",
            InvalidStorageClass => "InvalidStorageClass",
            InvalidToken => "InvalidToken",
            KeyTooLongError => "KeyTooLongError",
            MalformedACLError => "MalformedACLError",
            MalformedPOSTRequest => "MalformedPOSTRequest",
            MalformedPolicy => "MalformedPolicy",
            MaxPostPreDataLengthExceededError => "MaxPostPreDataLengthExceededError",
            MalformedXML => "MalformedXML",
            MetadataTooLarge => "MetadataTooLarge",
            MethodNotAllowed => "MethodNotAllowed",
            MissingContentLength => "MissingContentLength",
            MissingSecurityHeader => "MissingSecurityHeader",
            NoSuchBucket => "NoSuchBucket",
            NoSuchKey => "NoSuchKey",
            NoSuchUpload => "NoSuchUpload",
            NoSuchBucketPolicy => "NoSuchBucketPolicy",
            NoSuchCORSConfiguration => "NoSuchCORSConfiguration",
            NotImplemented => "NotImplemented",
            NotModified => "NotModified",
            PreconditionFailed => "PreconditionFailed",
            QuotaExceeded => "QuotaExceeded",
            RequestHeaderSectionTooLarge => "RequestHeaderSectionTooLarge",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            ServiceUnavailable => "ServiceUnavailable",
            SlowDown => "SlowDown",
            UnresolvableGrantByEmailAddress => "UnresolvableGrantByEmailAddress",
            ValidationError => "ValidationError",
            XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
        }
    }

    /// The HTTP status AWS answers with for this code.
    pub fn status(self) -> StatusCode {
        use S3ErrorCode::*;
        match self {
            NotModified => StatusCode::NOT_MODIFIED,
            AuthorizationHeaderMalformed
            | AuthorizationQueryParametersError
            | BadDigest
            | BadRequest
            | EntityTooLarge
            | EntityTooSmall
            | ExpiredToken
            | IncompleteBody
            | IncorrectNumberOfFilesInPostRequest
            | InvalidAction
            | InvalidArgument
            | InvalidBucketName
            | InvalidDigest
            | InvalidPart
            | InvalidPartOrder
            | InvalidPolicyDocument
            | InvalidRequest
            | InvalidStorageClass
            | InvalidToken
            | KeyTooLongError
            | MalformedACLError
            | MalformedPOSTRequest
            | MalformedPolicy
            | MalformedXML
            | MaxPostPreDataLengthExceededError
            | MetadataTooLarge
            | MissingSecurityHeader
            | UnresolvableGrantByEmailAddress
            | ValidationError
            | XAmzContentSHA256Mismatch
            | RequestHeaderSectionTooLarge => StatusCode::BAD_REQUEST,
            AccessDenied
            | AccessForbidden
            | InvalidAccessKeyId
            | QuotaExceeded
            | RequestTimeTooSkewed
            | SignatureDoesNotMatch => StatusCode::FORBIDDEN,
            NoSuchBucket
            | NoSuchBucketPolicy
            | NoSuchCORSConfiguration
            | NoSuchKey
            | NoSuchUpload => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            BucketAlreadyExists | BucketAlreadyOwnedByYou | BucketNotEmpty => StatusCode::CONFLICT,
            MissingContentLength => StatusCode::LENGTH_REQUIRED,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ServiceUnavailable | SlowDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for S3ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An S3 error as the client will see it: code, human message, and optional extra XML fields
/// (for example `<Key>`, `<BucketName>`, `<ActualObjectSize>`) that AWS adds for some codes.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct S3Error {
    /// The S3 code; decides the HTTP status.
    pub code: S3ErrorCode,
    /// A sentence for humans; AWS's wording where we know it.
    pub message: String,
    /// Extra `<Name>value</Name>` elements written into the error body, in order.
    pub details: Vec<(&'static str, String)>,
}

impl S3Error {
    /// An error with an explicit message.
    pub fn new(code: S3ErrorCode, message: impl Into<String>) -> Self {
        S3Error {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Adds an extra element to the XML body (e.g. `("BucketName", name)`).
    pub fn with_detail(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.details.push((name, value.into()));
        self
    }

    /// An `InternalError` carrying a description of what failed inside the server. The
    /// description goes to the log and the message; it must not contain secrets.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        S3Error::new(
            S3ErrorCode::InternalError,
            format!("We encountered an internal error, please try again. ({what})"),
        )
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The XML error document AWS sends, with the request id and the resource path.
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        out.push_str(self.code.as_str());
        out.push_str("</Code><Message>");
        out.push_str(&xml_escape(&self.message));
        out.push_str("</Message>");
        for (name, value) in &self.details {
            out.push('<');
            out.push_str(name);
            out.push('>');
            out.push_str(&xml_escape(value));
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        out.push_str("<Resource>");
        out.push_str(&xml_escape(resource));
        out.push_str("</Resource><RequestId>");
        out.push_str(&xml_escape(request_id));
        out.push_str("</RequestId></Error>");
        out
    }
}

impl From<S3ErrorCode> for S3Error {
    fn from(code: S3ErrorCode) -> Self {
        S3Error::new(code, default_message(code))
    }
}

/// AWS's usual message for a code, used when the caller has nothing more specific.
fn default_message(code: S3ErrorCode) -> &'static str {
    use S3ErrorCode::*;
    match code {
        AccessDenied => "Access Denied",
        BadDigest => "The Content-MD5 you specified did not match what we received.",
        BucketAlreadyExists => "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
        BucketAlreadyOwnedByYou => "Your previous request to create the named bucket succeeded and you already own it.",
        BucketNotEmpty => "The bucket you tried to delete is not empty",
        EntityTooLarge => "Your proposed upload exceeds the maximum allowed size",
        EntityTooSmall => "Your proposed upload is smaller than the minimum allowed object size.",
        IncompleteBody => "You did not provide the number of bytes specified by the Content-Length HTTP header",
        InternalError => "We encountered an internal error. Please try again.",
        InvalidAccessKeyId => "The AWS Access Key Id you provided does not exist in our records.",
        InvalidBucketName => "The specified bucket is not valid.",
        InvalidDigest => "The Content-MD5 you specified is not valid.",
        InvalidPart => "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
        InvalidPartOrder => "The list of parts was not in ascending order. Parts must be ordered by part number.",
        InvalidRange => "The requested range is not satisfiable",
        KeyTooLongError => "Your key is too long",
        MalformedACLError => "The XML you provided was not well-formed or did not validate against our published schema",
        MalformedPolicy => "Policies must be valid JSON and the first byte must be '{'",
        MalformedXML => "The XML you provided was not well-formed or did not validate against our published schema",
        MetadataTooLarge => "Your metadata headers exceed the maximum allowed metadata size.",
        MethodNotAllowed => "The specified method is not allowed against this resource.",
        MissingContentLength => "You must provide the Content-Length HTTP header.",
        NoSuchBucket => "The specified bucket does not exist",
        NoSuchKey => "The specified key does not exist.",
        NoSuchBucketPolicy => "The bucket policy does not exist",
        NoSuchCORSConfiguration => "The CORS configuration does not exist",
        IncorrectNumberOfFilesInPostRequest => "POST requires exactly one file upload per request.",
        InvalidPolicyDocument => "Invalid Policy: Invalid JSON.",
        NoSuchUpload => "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        NotImplemented => "A header you provided implies functionality that is not implemented",
        NotModified => "Not Modified",
        PreconditionFailed => "At least one of the pre-conditions you specified did not hold",
        QuotaExceeded => "The bucket owner's storage quota would be exceeded.",
        RequestTimeTooSkewed => "The difference between the request time and the current time is too large.",
        SignatureDoesNotMatch => "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ServiceUnavailable => "Please reduce your request rate.",
        SlowDown => "Please reduce your request rate.",
        UnresolvableGrantByEmailAddress => "The email address you provided does not match any account on record.",
        XAmzContentSHA256Mismatch => "The provided 'x-amz-content-sha256' header does not match what was computed.",
        _ => "The request could not be processed.",
    }
}

/// Escapes the five XML special characters.
pub fn xml_escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\'']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Shorthand for results whose error is an [`S3Error`].
pub type S3Result<T> = Result<T, S3Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_xml_has_code_message_resource_and_request_id() {
        let err = S3Error::from(S3ErrorCode::NoSuchKey).with_detail("Key", "a<b");
        let xml = err.to_xml("/bucket/a<b", "REQ1");
        assert!(xml.starts_with("<?xml"));
        assert!(xml.contains("<Code>NoSuchKey</Code>"));
        assert!(xml.contains("<Key>a&lt;b</Key>"));
        assert!(xml.contains("<Resource>/bucket/a&lt;b</Resource>"));
        assert!(xml.contains("<RequestId>REQ1</RequestId>"));
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
    }
}
