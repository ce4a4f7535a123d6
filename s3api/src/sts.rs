//! Temporary credentials on the S3 endpoint: the STS actions `AssumeRole` (signed by a user's
//! key, as AWS's) and `AssumeRoleWithCertificate` (authenticated by an X.509 client
//! certificate on the grid listener, as MinIO's).
//!
//! Both are `POST /` with the parameters in a form body or in the query (`Action=…&
//! Version=2011-06-15&DurationSeconds=…`), and both answer AWS's STS XML, so boto3, the AWS
//! CLI and MinIO's SDKs use them unchanged. What a session may do is what its user may do:
//! the provider ([`CredentialProvider::assume_role`]) issues credentials acting for the
//! caller's own user, never for someone else, and never valid beyond the caller's own
//! credentials. `RoleArn` is accepted and ignored (Mucura has users, not roles); a session
//! policy (`Policy`) is refused rather than silently ignored, since a caller passing one
//! expects less privilege than the parent's.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use http::Method;
use http_body_util::BodyExt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::{self, CredentialProvider, Identity, SecretKey};
use crate::body::RequestBody;
use crate::error::{xml_escape, S3Error, S3ErrorCode, S3Result};
use crate::router::Query;
use crate::xml::writer::XmlWriter;

/// The namespace of STS answers.
pub const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The only STS API version.
pub const STS_VERSION: &str = "2011-06-15";
/// Lifetime of a session when the caller names none (AWS's default).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
/// The shortest session a caller may ask for (AWS's minimum).
pub const MIN_DURATION: Duration = Duration::from_secs(900);
/// The longest session a caller may ask for (AWS's maximum for roles).
pub const MAX_DURATION: Duration = Duration::from_secs(43_200);
/// Largest STS form body read: STS requests are a few hundred bytes.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// An `AssumeRole` call by an authenticated caller.
#[derive(Debug, Clone)]
pub struct RoleRequest<'a> {
    /// The access key the request was signed with.
    pub access_key: &'a str,
    /// The user that key acts for.
    pub user: &'a str,
    /// The caller's own session token, when it signed with temporary credentials.
    pub session_token: Option<&'a str>,
    /// The lifetime asked for (already within [`MIN_DURATION`]..=[`MAX_DURATION`]).
    pub duration: Duration,
    /// `RoleSessionName`, for logs and the assumed-role ARN.
    pub session_name: &'a str,
    /// When the request was received.
    pub now: SystemTime,
}

/// The verified client certificate of a request that arrived on the grid listener, attached to
/// the request as an extension by the node. Only that listener sets it, after checking the
/// chain, so its presence is proof of the identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The subject DN of the end-entity certificate (the person), in OpenSSL's
    /// `/DC=org/CN=Jane` form.
    pub subject_dn: String,
    /// The earliest `notAfter` of the presented chain.
    pub not_after: SystemTime,
    /// Whether the chain ends in a proxy certificate (a batch job's credential).
    pub is_proxy: bool,
    /// Whether a proxy in the chain is a limited proxy.
    pub limited: bool,
}

/// An `AssumeRoleWithCertificate` call.
#[derive(Debug, Clone)]
pub struct CertificateRequest<'a> {
    /// The verified certificate.
    pub certificate: &'a ClientCertificate,
    /// The lifetime asked for (already within [`MIN_DURATION`]..=[`MAX_DURATION`]).
    pub duration: Duration,
    /// When the request was received.
    pub now: SystemTime,
}

/// Temporary credentials as issued.
#[derive(Debug, Clone)]
pub struct Session {
    /// The temporary access key id.
    pub access_key: String,
    /// Its secret.
    pub secret: SecretKey,
    /// The token requests must carry in `x-amz-security-token`.
    pub token: String,
    /// The user the session acts for.
    pub user: String,
    /// When the credentials stop working.
    pub expires_at: SystemTime,
}

/// The STS actions Mucura answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AssumeRole,
    AssumeRoleWithCertificate,
}

impl Action {
    /// The action's name, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Action::AssumeRole => "AssumeRole",
            Action::AssumeRoleWithCertificate => "AssumeRoleWithCertificate",
        }
    }
}

/// Whether a request is for STS: `POST /` naming no bucket (S3 has no bucket-less POST).
pub fn is_sts_request(method: &Method, bucket: Option<&str>) -> bool {
    *method == Method::POST && bucket.is_none()
}

/// What an answered STS request produced: the action and the XML document, or the action (if
/// known that far) and the error.
pub struct Outcome {
    /// The action, once it was named.
    pub action: Option<Action>,
    /// Who authenticated, once known (for the access log).
    pub identity: Option<Identity>,
    /// The answer.
    pub result: S3Result<String>,
}

/// Answers one STS request: reads the form, authenticates, and asks `creds` for a session.
pub async fn handle<RB: RequestBody>(
    creds: &dyn CredentialProvider,
    parts: &Parts,
    body: RB,
    request_id: &str,
) -> Outcome {
    let mut outcome = Outcome {
        action: None,
        identity: None,
        result: Ok(String::new()),
    };
    outcome.result = answer(creds, parts, body, request_id, &mut outcome).await;
    outcome
}

async fn answer<RB: RequestBody>(
    creds: &dyn CredentialProvider,
    parts: &Parts,
    body: RB,
    request_id: &str,
    outcome: &mut Outcome,
) -> S3Result<String> {
    let body = read_form(body).await?;
    let params = parameters(parts, &body)?;
    let action = match params.get("Action") {
        Some("AssumeRole") => Action::AssumeRole,
        Some("AssumeRoleWithCertificate") => Action::AssumeRoleWithCertificate,
        Some(other) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidAction,
                format!("Could not find operation {other} for version {STS_VERSION}"),
            ))
        }
        None => {
            return Err(S3Error::new(
                S3ErrorCode::NotImplemented,
                "POST on the service root is only for STS actions (Action=AssumeRole)",
            ))
        }
    };
    outcome.action = Some(action);
    if params.get("Version") != Some(STS_VERSION) {
        return Err(validation(format!(
            "Version must be {STS_VERSION} for {}",
            action.name()
        )));
    }
    let duration = requested_duration(&params)?;
    let now = SystemTime::now();
    match action {
        Action::AssumeRole => {
            if params.get("Policy").is_some() || params.has("PolicyArns.member.1.arn") {
                return Err(S3Error::new(
                    S3ErrorCode::NotImplemented,
                    "Session policies are not supported: sessions act with their user's \
                     permissions",
                ));
            }
            let session_name = params.get("RoleSessionName").unwrap_or("session");
            check_session_name(session_name)?;
            let authenticated = auth::authenticate_sts(parts, &body, creds, now)?;
            outcome.identity = Some(authenticated.identity.clone());
            let Identity::User { access_key, user } = &authenticated.identity else {
                return Err(S3Error::new(
                    S3ErrorCode::AccessDenied,
                    "AssumeRole must be signed with an access key",
                ));
            };
            let token = auth::session_token(parts);
            let session = creds.assume_role(&RoleRequest {
                access_key,
                user,
                session_token: token.as_deref(),
                duration,
                session_name,
                now,
            })?;
            Ok(assume_role_xml(&session, session_name, request_id))
        }
        Action::AssumeRoleWithCertificate => {
            let Some(certificate) = parts.extensions.get::<ClientCertificate>() else {
                return Err(S3Error::new(
                    S3ErrorCode::AccessDenied,
                    "AssumeRoleWithCertificate needs a client certificate: call it on the \
                     grid listener with your certificate or proxy",
                ));
            };
            let session = creds.assume_role_with_certificate(&CertificateRequest {
                certificate,
                duration,
                now,
            })?;
            outcome.identity = Some(Identity::User {
                access_key: session.access_key.clone(),
                user: session.user.clone(),
            });
            Ok(certificate_xml(&session, request_id))
        }
    }
}

/// The form body, bounded (STS parameters are small).
async fn read_form<RB: RequestBody>(mut body: RB) -> S3Result<Bytes> {
    let mut form = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            S3Error::new(
                S3ErrorCode::IncompleteBody,
                format!("Reading the request body failed: {err}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if form.len() + data.len() > MAX_FORM_BYTES {
                return Err(validation(format!(
                    "The request body exceeds {MAX_FORM_BYTES} bytes"
                )));
            }
            form.extend_from_slice(&data);
        }
    }
    Ok(form.freeze())
}

/// The query's parameters followed by the form body's (`application/x-www-form-urlencoded`).
fn parameters(parts: &Parts, body: &[u8]) -> S3Result<Query> {
    let form = std::str::from_utf8(body)
        .map_err(|_| validation("The request body is not valid UTF-8 form data"))?;
    let joined = match (parts.uri.query(), form.trim()) {
        (Some(query), "") => query.to_owned(),
        (Some(query), form) => format!("{query}&{form}"),
        (None, form) => form.to_owned(),
    };
    Ok(Query::parse(Some(&joined)))
}

/// `DurationSeconds`, or the default; outside [`MIN_DURATION`]..=[`MAX_DURATION`] it is
/// AWS's `ValidationError`.
fn requested_duration(params: &Query) -> S3Result<Duration> {
    let Some(raw) = params.get("DurationSeconds") else {
        return Ok(DEFAULT_DURATION);
    };
    let seconds: u64 = raw.parse().map_err(|_| {
        validation(format!(
            "Value '{raw}' at 'durationSeconds' failed to satisfy constraint: Member must be a number"
        ))
    })?;
    let duration = Duration::from_secs(seconds);
    if duration < MIN_DURATION {
        return Err(validation(format!(
            "Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: Member must \
             have value greater than or equal to {}",
            MIN_DURATION.as_secs()
        )));
    }
    if duration > MAX_DURATION {
        return Err(validation(format!(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role \
             ({} seconds).",
            MAX_DURATION.as_secs()
        )));
    }
    Ok(duration)
}

/// AWS's rule for `RoleSessionName`: 2 to 64 of `[\w+=,.@-]`.
fn check_session_name(name: &str) -> S3Result<()> {
    let valid = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(validation(format!(
            "Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must \
             satisfy regular expression pattern: [\\w+=,.@-]*"
        )))
    }
}

fn validation(message: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::ValidationError, message)
}

/// STS's timestamp form: `2026-11-26T20:00:00Z` (whole seconds).
fn sts_timestamp(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at)
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(&Rfc3339).unwrap_or_default()
}

fn credentials_element(w: &mut XmlWriter, session: &Session) {
    w.element("Credentials", |w| {
        w.text("AccessKeyId", &session.access_key);
        w.text("SecretAccessKey", session.secret.expose());
        w.text("SessionToken", &session.token);
        w.text("Expiration", &sts_timestamp(session.expires_at));
    });
}

fn response_metadata(w: &mut XmlWriter, request_id: &str) {
    w.element("ResponseMetadata", |w| w.text("RequestId", request_id));
}

/// AWS's `AssumeRoleResponse`.
pub fn assume_role_xml(session: &Session, session_name: &str, request_id: &str) -> String {
    XmlWriter::document_in("AssumeRoleResponse", STS_XMLNS, |w| {
        w.element("AssumeRoleResult", |w| {
            w.element("AssumedRoleUser", |w| {
                w.text(
                    "Arn",
                    &format!(
                        "arn:aws:sts::mucura:assumed-role/{}/{session_name}",
                        session.user
                    ),
                );
                w.text(
                    "AssumedRoleId",
                    &format!("{}:{session_name}", session.access_key),
                );
            });
            credentials_element(w, session);
        });
        response_metadata(w, request_id);
    })
}

/// MinIO's `AssumeRoleWithCertificateResponse`.
pub fn certificate_xml(session: &Session, request_id: &str) -> String {
    XmlWriter::document_in("AssumeRoleWithCertificateResponse", STS_XMLNS, |w| {
        w.element("AssumeRoleWithCertificateResult", |w| {
            credentials_element(w, session);
        });
        response_metadata(w, request_id);
    })
}

/// STS's error document (`ErrorResponse`), which AWS SDKs parse differently from S3's.
pub fn error_xml(err: &S3Error, request_id: &str) -> String {
    let kind = if err.status().is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{STS_XMLNS}\">\
         <Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error>\
         <RequestId>{}</RequestId></ErrorResponse>",
        err.code.as_str(),
        xml_escape(&err.message),
        xml_escape(request_id)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
#[path = "sts_tests.rs"]
mod tests;
