//! The CORS configuration document: parsing with AWS's validation, and the canonical XML.

use serde::Deserialize;

use crate::error::{xml_escape, S3Error, S3ErrorCode, S3Result};
use crate::xml::{S3_XMLNS, XML_DECLARATION};

/// The most rules one configuration may hold, as in AWS.
pub const MAX_CORS_RULES: usize = 100;

/// The largest configuration document accepted (AWS: "up to 64 KB").
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// The longest rule id AWS accepts.
const MAX_ID_LEN: usize = 255;

/// The methods a rule may allow; AWS refuses any other with InvalidRequest.
const SUPPORTED_METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

/// One `<CORSRule>`: which origins may use which methods and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsRule {
    /// The optional `<ID>`.
    pub id: Option<String>,
    /// `GET`, `PUT`, `HEAD`, `POST`, `DELETE` (at least one).
    pub allowed_methods: Vec<String>,
    /// Origins, each with at most one `*` wildcard (at least one).
    pub allowed_origins: Vec<String>,
    /// Request headers a preflight may ask for, each with at most one `*` wildcard.
    pub allowed_headers: Vec<String>,
    /// Response headers scripts may read.
    pub expose_headers: Vec<String>,
    /// How long a browser may cache the preflight answer.
    pub max_age_seconds: Option<u64>,
}

/// A bucket's CORS rules, in the order the owner gave them (the first match answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfiguration {
    /// The rules, 1 to [`MAX_CORS_RULES`].
    pub rules: Vec<CorsRule>,
}

#[derive(Deserialize)]
enum CorsDocument {
    #[serde(rename = "CORSConfiguration")]
    Configuration(CorsBody),
}

#[derive(Deserialize)]
struct CorsBody {
    #[serde(rename = "CORSRule", default)]
    rules: Vec<RawRule>,
}

/// A rule as written; numbers are read as text so errors are ours, not serde's.
#[derive(Deserialize)]
struct RawRule {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "AllowedMethod", default)]
    allowed_methods: Vec<String>,
    #[serde(rename = "AllowedOrigin", default)]
    allowed_origins: Vec<String>,
    #[serde(rename = "AllowedHeader", default)]
    allowed_headers: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    expose_headers: Vec<String>,
    #[serde(rename = "MaxAgeSeconds")]
    max_age_seconds: Option<String>,
}

impl CorsConfiguration {
    /// Reads and validates a PutBucketCors body: MalformedXML for an unreadable document, no
    /// rule, more than [`MAX_CORS_RULES`] rules or a rule without method or origin;
    /// InvalidRequest for an unsupported method or a pattern with two wildcards.
    pub fn parse(body: &[u8]) -> S3Result<CorsConfiguration> {
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(malformed());
        }
        let text = std::str::from_utf8(body).map_err(|_| malformed())?;
        let CorsDocument::Configuration(document) =
            quick_xml::de::from_str(text).map_err(|_| malformed())?;
        if document.rules.is_empty() || document.rules.len() > MAX_CORS_RULES {
            return Err(malformed());
        }
        let rules = document
            .rules
            .into_iter()
            .map(CorsRule::validate)
            .collect::<S3Result<Vec<_>>>()?;
        Ok(CorsConfiguration { rules })
    }

    /// Reads a configuration this server stored: it was validated then, so a failure is
    /// damage (InternalError), not the client's doing.
    pub fn from_stored(text: &str) -> S3Result<CorsConfiguration> {
        CorsConfiguration::parse(text.as_bytes()).map_err(|err| {
            S3Error::internal(format!("stored CORS configuration is invalid: {err}"))
        })
    }

    /// The canonical document: stored with the bucket and answered by GetBucketCors.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str(XML_DECLARATION);
        out.push_str("<CORSConfiguration xmlns=\"");
        out.push_str(S3_XMLNS);
        out.push_str("\">");
        for rule in &self.rules {
            out.push_str("<CORSRule>");
            let mut element = |name: &str, value: &str| {
                out.push('<');
                out.push_str(name);
                out.push('>');
                out.push_str(&xml_escape(value));
                out.push_str("</");
                out.push_str(name);
                out.push('>');
            };
            if let Some(id) = &rule.id {
                element("ID", id);
            }
            for header in &rule.allowed_headers {
                element("AllowedHeader", header);
            }
            for method in &rule.allowed_methods {
                element("AllowedMethod", method);
            }
            for origin in &rule.allowed_origins {
                element("AllowedOrigin", origin);
            }
            for header in &rule.expose_headers {
                element("ExposeHeader", header);
            }
            if let Some(max_age) = rule.max_age_seconds {
                element("MaxAgeSeconds", &max_age.to_string());
            }
            out.push_str("</CORSRule>");
        }
        out.push_str("</CORSConfiguration>");
        out
    }
}

impl CorsRule {
    fn validate(raw: RawRule) -> S3Result<CorsRule> {
        let trimmed = |values: Vec<String>| -> Vec<String> {
            values.into_iter().map(|v| v.trim().to_owned()).collect()
        };
        let allowed_methods = trimmed(raw.allowed_methods);
        let allowed_origins = trimmed(raw.allowed_origins);
        let allowed_headers = trimmed(raw.allowed_headers);
        if allowed_methods.is_empty() || allowed_origins.is_empty() {
            return Err(malformed());
        }
        if let Some(method) = allowed_methods
            .iter()
            .find(|method| !SUPPORTED_METHODS.contains(&method.as_str()))
        {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {method}"
                ),
            ));
        }
        for (kind, values) in [
            ("AllowedOrigin", &allowed_origins),
            ("AllowedHeader", &allowed_headers),
        ] {
            if let Some(value) = values.iter().find(|v| v.matches('*').count() > 1) {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    format!("{kind} \"{value}\" can not have more than one wildcard."),
                ));
            }
        }
        let id = raw.id.map(|id| id.trim().to_owned());
        if id.as_ref().is_some_and(|id| id.len() > MAX_ID_LEN) {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                "The ID of a CORS rule can not be longer than 255 characters",
            ));
        }
        let max_age_seconds = raw
            .max_age_seconds
            .map(|text| text.trim().parse::<u64>().map_err(|_| malformed()))
            .transpose()?;
        Ok(CorsRule {
            id,
            allowed_methods,
            allowed_origins,
            allowed_headers,
            expose_headers: trimmed(raw.expose_headers),
            max_age_seconds,
        })
    }
}

fn malformed() -> S3Error {
    S3Error::from(S3ErrorCode::MalformedXML)
}
