//! The answers of the grid endpoint: `AssumeRoleWithCertificate` (the STS XML MinIO and AWS
//! use) and `/mucura/v1/register` (JSON), and the error documents both may send instead.

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::xml;

/// Temporary credentials, as the STS answer carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsCredentials {
    /// The temporary access key id.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// The session token every request must carry.
    pub session_token: String,
    /// When they stop working.
    pub expiration: OffsetDateTime,
}

/// What a grid-endpoint call can fail with, beyond the transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridAnswerError {
    /// The server answered with an error document.
    #[error("{code}: {message}")]
    Service {
        /// The error code (`AccessDenied`, `InvalidParameterValue`, …).
        code: String,
        /// The server's explanation.
        message: String,
    },
    /// The answer could not be understood.
    #[error("unexpected answer from the grid endpoint: {0}")]
    Malformed(String),
}

/// Reads an `<ErrorResponse><Error><Code/><Message/></Error></ErrorResponse>` (or a bare
/// S3-style `<Error>`), if `body` is one.
pub fn parse_error(body: &[u8]) -> Option<GridAnswerError> {
    let root = xml::parse(body).ok()?;
    let error = if root.name == "Error" {
        &root
    } else {
        root.child("Error")?
    };
    Some(GridAnswerError::Service {
        code: error.child_text("Code").unwrap_or("Unknown").to_string(),
        message: error.child_text("Message").unwrap_or_default().to_string(),
    })
}

/// An error for a non-2xx answer: the error document when there is one, else the status and
/// the start of the body.
pub fn error_for_status(status: u16, body: &[u8]) -> GridAnswerError {
    if let Some(error) = parse_error(body) {
        return error;
    }
    if let Ok(answer) = serde_json::from_slice::<JsonError>(body) {
        return GridAnswerError::Service {
            code: answer.code.unwrap_or_else(|| format!("HTTP{status}")),
            message: answer.message.or(answer.error).unwrap_or_default(),
        };
    }
    let text = String::from_utf8_lossy(body);
    let excerpt: String = text.chars().take(200).collect();
    GridAnswerError::Service {
        code: format!("HTTP{status}"),
        message: excerpt.trim().to_string(),
    }
}

/// The JSON error shape the registration endpoint may use.
#[derive(Deserialize)]
struct JsonError {
    #[serde(alias = "Code")]
    code: Option<String>,
    #[serde(alias = "Message")]
    message: Option<String>,
    error: Option<String>,
}

fn parse_time(text: &str, what: &str) -> Result<OffsetDateTime, GridAnswerError> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|err| {
        GridAnswerError::Malformed(format!("{what} {text:?} is not RFC 3339: {err}"))
    })
}

/// Reads an `AssumeRoleWithCertificateResponse` (namespaces ignored), or the error it is.
pub fn parse_assume_role(body: &[u8]) -> Result<StsCredentials, GridAnswerError> {
    let root = xml::parse(body).map_err(|err| GridAnswerError::Malformed(err.to_string()))?;
    if root.name == "ErrorResponse" || root.name == "Error" {
        return Err(parse_error(body)
            .unwrap_or_else(|| GridAnswerError::Malformed("empty error document".to_string())));
    }
    let credentials = root
        .path(&["AssumeRoleWithCertificateResult", "Credentials"])
        .ok_or_else(|| {
            GridAnswerError::Malformed(format!(
                "<{}> holds no AssumeRoleWithCertificateResult/Credentials",
                root.name
            ))
        })?;
    let field = |name: &str| -> Result<String, GridAnswerError> {
        match credentials.child_text(name) {
            Some(value) if !value.is_empty() => Ok(value.to_string()),
            _ => Err(GridAnswerError::Malformed(format!(
                "the credentials lack {name}"
            ))),
        }
    };
    Ok(StsCredentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: field("SessionToken")?,
        expiration: parse_time(&field("Expiration")?, "Expiration")?,
    })
}

/// The registration answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Registration {
    /// The user the certificate's subject maps to.
    pub user_id: String,
    /// The long-term access key id.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// Where the S3 endpoint is.
    pub s3_endpoint: String,
    /// When the registration (and the keys) lapse: the certificate's expiry.
    pub expires_at: String,
}

/// Reads a registration answer, checking its expiry is RFC 3339.
pub fn parse_registration(body: &[u8]) -> Result<(Registration, OffsetDateTime), GridAnswerError> {
    let registration: Registration = serde_json::from_slice(body)
        .map_err(|err| GridAnswerError::Malformed(format!("registration answer: {err}")))?;
    let expires = parse_time(&registration.expires_at, "expires_at")?;
    Ok((registration, expires))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<AssumeRoleWithCertificateResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithCertificateResult>
    <Credentials>
      <AccessKeyId>ASIA123</AccessKeyId>
      <SecretAccessKey>s3cr3t/+=</SecretAccessKey>
      <SessionToken>tok&amp;en</SessionToken>
      <Expiration>2026-11-26T20:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithCertificateResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleWithCertificateResponse>"#;

    #[test]
    fn reads_the_credentials_of_an_sts_answer() {
        let credentials = parse_assume_role(ANSWER.as_bytes()).unwrap();
        assert_eq!(credentials.access_key_id, "ASIA123");
        assert_eq!(credentials.secret_access_key, "s3cr3t/+=");
        assert_eq!(credentials.session_token, "tok&en");
        assert_eq!(credentials.expiration.unix_timestamp(), 1_795_723_200);
    }

    #[test]
    fn prefixed_namespaces_are_ignored() {
        let prefixed = ANSWER
            .replace("<A", "<sts:A")
            .replace("</A", "</sts:A")
            .replace("xmlns=", "xmlns:sts=");
        assert_eq!(
            parse_assume_role(prefixed.as_bytes())
                .unwrap()
                .access_key_id,
            "ASIA123"
        );
    }

    #[test]
    fn error_documents_become_service_errors() {
        let body = br#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>proxy expired</Message></Error><RequestId>x</RequestId></ErrorResponse>"#;
        let expected = GridAnswerError::Service {
            code: "AccessDenied".into(),
            message: "proxy expired".into(),
        };
        assert_eq!(parse_assume_role(body), Err(expected.clone()));
        assert_eq!(error_for_status(403, body), expected);
        assert_eq!(
            error_for_status(502, b"bad gateway"),
            GridAnswerError::Service {
                code: "HTTP502".into(),
                message: "bad gateway".into()
            }
        );
        assert_eq!(
            error_for_status(403, br#"{"error":"a proxy cannot register"}"#),
            GridAnswerError::Service {
                code: "HTTP403".into(),
                message: "a proxy cannot register".into()
            }
        );
    }

    #[test]
    fn incomplete_or_malformed_answers_are_refused() {
        let without_token = ANSWER.replace("<SessionToken>tok&amp;en</SessionToken>", "");
        assert_eq!(
            parse_assume_role(without_token.as_bytes()),
            Err(GridAnswerError::Malformed(
                "the credentials lack SessionToken".into()
            ))
        );
        let bad_time = ANSWER.replace("2026-11-26T20:00:00Z", "tomorrow");
        assert!(matches!(
            parse_assume_role(bad_time.as_bytes()),
            Err(GridAnswerError::Malformed(_))
        ));
        assert!(parse_assume_role(b"<Other/>").is_err());
        assert!(parse_assume_role(b"not xml <").is_err());
    }

    #[test]
    fn reads_a_registration() {
        let body = br#"{"user_id":"u-1","access_key_id":"AK","secret_access_key":"SK","s3_endpoint":"https://h:9000","expires_at":"2027-01-01T00:00:00Z"}"#;
        let (registration, expires) = parse_registration(body).unwrap();
        assert_eq!(registration.user_id, "u-1");
        assert_eq!(registration.s3_endpoint, "https://h:9000");
        assert_eq!(expires.year(), 2027);
        assert!(parse_registration(br#"{"user_id":"u"}"#).is_err());
    }
}
