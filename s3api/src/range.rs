//! The `Range` header of GetObject and the `x-amz-copy-source-range` of UploadPartCopy.

use std::ops::Range;

use crate::error::{S3Error, S3ErrorCode, S3Result};

/// A single byte range as a client wrote it, before the object size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRangeSpec {
    /// `bytes=first-last` (inclusive) or `bytes=first-` when `last` is `None`.
    From { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// Parses a `Range` header value. S3 ignores malformed or multi-range headers and sends the
/// whole object, so those parse to `None`.
pub fn parse_range(value: &str) -> Option<ByteRangeSpec> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return last.parse().ok().map(ByteRangeSpec::Suffix);
    }
    let first: u64 = first.parse().ok()?;
    let last = if last.is_empty() {
        None
    } else {
        let last: u64 = last.parse().ok()?;
        if last < first {
            return None;
        }
        Some(last)
    };
    Some(ByteRangeSpec::From { first, last })
}

impl ByteRangeSpec {
    /// The half-open byte range within an object of `size` bytes, or `InvalidRange` when no
    /// byte of it exists (as AWS answers with 416).
    pub fn resolve(self, size: u64) -> S3Result<Range<u64>> {
        let unsatisfiable = || {
            S3Error::from(S3ErrorCode::InvalidRange)
                .with_detail("ActualObjectSize", size.to_string())
        };
        match self {
            ByteRangeSpec::From { first, last } => {
                if first >= size {
                    return Err(unsatisfiable());
                }
                let end = last.map_or(size, |last| last.saturating_add(1).min(size));
                Ok(first..end)
            }
            ByteRangeSpec::Suffix(0) => Err(unsatisfiable()),
            ByteRangeSpec::Suffix(n) => Ok(size.saturating_sub(n)..size),
        }
    }
}

/// Parses `x-amz-copy-source-range: bytes=first-last` against the source size. Unlike GET,
/// a malformed or out-of-bounds copy range is an error.
pub fn parse_copy_source_range(value: &str, size: u64) -> S3Result<Range<u64>> {
    let invalid = || {
        S3Error::new(
            S3ErrorCode::InvalidArgument,
            format!("Range specified is not valid for source object of size: {size}"),
        )
    };
    match parse_range(value) {
        Some(ByteRangeSpec::From {
            first,
            last: Some(last),
        }) if last < size => Ok(first..last + 1),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_s3() {
        let r = |s: &str, size| parse_range(s).map(|spec| spec.resolve(size));
        assert_eq!(r("bytes=0-9", 100).unwrap().unwrap(), 0..10);
        assert_eq!(r("bytes=90-200", 100).unwrap().unwrap(), 90..100);
        assert_eq!(r("bytes=5-", 100).unwrap().unwrap(), 5..100);
        assert_eq!(r("bytes=-10", 100).unwrap().unwrap(), 90..100);
        assert_eq!(r("bytes=-500", 100).unwrap().unwrap(), 0..100);
        let err = r("bytes=100-", 100).unwrap().unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidRange);
        assert!(r("bytes=0-0", 0).unwrap().is_err());
    }

    #[test]
    fn malformed_ranges_are_ignored() {
        for bad in [
            "bytes=a-b",
            "items=0-1",
            "bytes=5-1",
            "bytes=0-1,4-5",
            "bytes=-",
        ] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn copy_source_range_must_fit_the_source() {
        assert_eq!(parse_copy_source_range("bytes=0-9", 10).unwrap(), 0..10);
        assert!(parse_copy_source_range("bytes=0-10", 10).is_err());
        assert!(parse_copy_source_range("bytes=5-", 10).is_err());
    }
}
