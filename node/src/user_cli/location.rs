//! Command-line operands: `s3://bucket/key` URLs, local paths, and `--expires` durations.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Why an operand was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OperandError {
    /// An `s3://` URL without a bucket name.
    #[error("{0}: an S3 URL needs a bucket name (s3://BUCKET[/KEY])")]
    NoBucket(String),
    /// A bucket name S3 would refuse.
    #[error("{url}: invalid bucket name {bucket:?} (3-63 characters: a-z, 0-9, '.', '-')")]
    BadBucket {
        /// The URL as typed.
        url: String,
        /// The bucket part.
        bucket: String,
    },
    /// The command needs an S3 URL here.
    #[error("{0} is not an S3 URL (s3://BUCKET[/KEY])")]
    NotS3(String),
    /// The command needs an object key and got only a bucket.
    #[error("{0}: name an object (s3://BUCKET/KEY)")]
    NoKey(String),
    /// An `--expires` value that is not a duration.
    #[error("invalid duration {0:?}: use SECONDS or a number with s, m, h or d (e.g. 3600, 90m, 12h, 7d)")]
    BadDuration(String),
    /// A byte size that does not parse.
    #[error("invalid size {0:?}: use bytes or a number with K, M, G (powers of 1024), e.g. 16MiB")]
    BadSize(String),
    /// An `--expires` value outside what SigV4 presigning allows.
    #[error("a shared URL must expire between 1 second and 7 days (604800 s), not {0} s")]
    ExpiryOutOfRange(u64),
}

/// An object, or a bucket and key prefix, in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// The bucket name.
    pub bucket: String,
    /// The key (or key prefix); empty for the bucket itself.
    pub key: String,
}

impl S3Url {
    /// Parses `s3://bucket[/key]`; `Ok(None)` when `text` is not an S3 URL at all.
    pub fn parse(text: &str) -> Result<Option<S3Url>, OperandError> {
        let Some(rest) = text
            .strip_prefix("s3://")
            .or_else(|| text.strip_prefix("S3://"))
        else {
            return Ok(None);
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(OperandError::NoBucket(text.to_string()));
        }
        if !valid_bucket_name(bucket) {
            return Err(OperandError::BadBucket {
                url: text.to_string(),
                bucket: bucket.to_string(),
            });
        }
        Ok(Some(S3Url {
            bucket: bucket.to_string(),
            key: key.to_string(),
        }))
    }

    /// Parses an operand that must be an S3 URL.
    pub fn require(text: &str) -> Result<S3Url, OperandError> {
        Self::parse(text)?.ok_or_else(|| OperandError::NotS3(text.to_string()))
    }

    /// Parses an operand that must name an object (bucket and non-empty key).
    pub fn require_object(text: &str) -> Result<S3Url, OperandError> {
        let url = Self::require(text)?;
        if url.key.is_empty() {
            return Err(OperandError::NoKey(text.to_string()));
        }
        Ok(url)
    }

    /// The last component of the key (what a download is named after).
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }

    /// The same bucket with another key.
    pub fn with_key(&self, key: impl Into<String>) -> S3Url {
        S3Url {
            bucket: self.bucket.clone(),
            key: key.into(),
        }
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// S3's bucket-name rules (lower case, digits, dots, hyphens; 3 to 63 characters; letters or
/// digits at both ends), checked here so a typo gets a clear message instead of a server 400.
fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge_ok = |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|&byte| edge_ok(&byte) || byte == b'.' || byte == b'-')
        && bytes.first().is_some_and(edge_ok)
        && bytes.last().is_some_and(edge_ok)
}

/// A `cp` operand: an S3 location or a local path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `s3://…`
    S3(S3Url),
    /// Anything else is a local path.
    Local(PathBuf),
}

impl Location {
    /// Reads a `cp` operand.
    pub fn parse(text: &str) -> Result<Location, OperandError> {
        Ok(match S3Url::parse(text)? {
            Some(url) => Location::S3(url),
            None => Location::Local(PathBuf::from(text)),
        })
    }
}

/// The longest validity SigV4 presigning allows (as AWS).
pub const MAX_SHARE_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses an `--expires` value: plain seconds or a number with `s`, `m`, `h` or `d`, between
/// one second and seven days.
pub fn parse_expiry(text: &str) -> Result<Duration, OperandError> {
    let trimmed = text.trim();
    let (digits, unit) = match trimmed.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((index, _)) => trimmed.split_at(index),
        None => (trimmed, "s"),
    };
    let multiplier: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(OperandError::BadDuration(text.to_string())),
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| OperandError::BadDuration(text.to_string()))?;
    let seconds = count.saturating_mul(multiplier);
    if seconds == 0 || seconds > MAX_SHARE_EXPIRY.as_secs() {
        return Err(OperandError::ExpiryOutOfRange(seconds));
    }
    Ok(Duration::from_secs(seconds))
}

/// Parses a byte size: `5242880`, `512K`, `16M`, `16MiB`, `1G`, `1GB` (binary multiples).
pub fn parse_size(text: &str) -> Result<u64, OperandError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(OperandError::BadSize(text.to_string())),
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| OperandError::BadSize(text.to_string()))?;
    count
        .checked_mul(1u64 << shift)
        .ok_or_else(|| OperandError::BadSize(text.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("5242880").unwrap(), 5 * 1024 * 1024);
        assert_eq!(parse_size("16MiB").unwrap(), 16 * 1024 * 1024);
        assert_eq!(parse_size("16m").unwrap(), 16 * 1024 * 1024);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512K").unwrap(), 512 * 1024);
        assert!(parse_size("16 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    use super::*;

    #[test]
    fn s3_urls_split_into_bucket_and_key() {
        assert_eq!(
            S3Url::parse("s3://data/a/b.txt").unwrap(),
            Some(S3Url {
                bucket: "data".into(),
                key: "a/b.txt".into()
            })
        );
        let bucket_only = S3Url::parse("s3://data").unwrap().unwrap();
        assert_eq!(bucket_only.key, "");
        assert_eq!(S3Url::parse("s3://data/").unwrap().unwrap().key, "");
        assert_eq!(S3Url::parse("/tmp/file").unwrap(), None);
        assert_eq!(
            S3Url::require_object("s3://data/dir/file.bin")
                .unwrap()
                .file_name(),
            "file.bin"
        );
    }

    #[test]
    fn bad_s3_urls_are_refused_with_a_reason() {
        assert_eq!(
            S3Url::parse("s3://"),
            Err(OperandError::NoBucket("s3://".into()))
        );
        assert!(matches!(
            S3Url::parse("s3://Bad_Bucket/x"),
            Err(OperandError::BadBucket { .. })
        ));
        assert!(matches!(
            S3Url::parse("s3://ab"),
            Err(OperandError::BadBucket { .. })
        ));
        assert_eq!(
            S3Url::require("file.txt"),
            Err(OperandError::NotS3("file.txt".into()))
        );
        assert_eq!(
            S3Url::require_object("s3://data"),
            Err(OperandError::NoKey("s3://data".into()))
        );
    }

    #[test]
    fn cp_operands_are_local_unless_s3() {
        assert_eq!(
            Location::parse("./x").unwrap(),
            Location::Local(PathBuf::from("./x"))
        );
        assert!(matches!(
            Location::parse("s3://bkt/k").unwrap(),
            Location::S3(_)
        ));
    }

    #[test]
    fn expiry_accepts_units_within_a_week() {
        assert_eq!(parse_expiry("3600").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_expiry("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_expiry("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_expiry("7d").unwrap(), MAX_SHARE_EXPIRY);
        assert_eq!(parse_expiry("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(
            parse_expiry("604801"),
            Err(OperandError::ExpiryOutOfRange(604_801))
        );
        assert_eq!(
            parse_expiry("8d"),
            Err(OperandError::ExpiryOutOfRange(691_200))
        );
        assert_eq!(parse_expiry("0"), Err(OperandError::ExpiryOutOfRange(0)));
        assert!(matches!(
            parse_expiry("1w"),
            Err(OperandError::BadDuration(_))
        ));
        assert!(matches!(
            parse_expiry("h"),
            Err(OperandError::BadDuration(_))
        ));
        assert!(matches!(
            parse_expiry("-5"),
            Err(OperandError::BadDuration(_))
        ));
    }
}
