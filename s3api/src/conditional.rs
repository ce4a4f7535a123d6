//! Conditional requests: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since on
//! GET/HEAD, and their `x-amz-copy-source-if-*` twins on copies. Evaluated in the order RFC 7232
//! and S3 use: a passing If-Match overrides a failing If-Unmodified-Since, a failing
//! If-None-Match overrides If-Modified-Since.

use http::HeaderMap;
use time::OffsetDateTime;

use crate::backend::ObjectInfo;
use crate::error::{S3Error, S3ErrorCode, S3Result};

/// The header names of one family of conditions.
struct ConditionHeaders {
    if_match: &'static str,
    if_none_match: &'static str,
    if_modified_since: &'static str,
    if_unmodified_since: &'static str,
}

const REQUEST: ConditionHeaders = ConditionHeaders {
    if_match: "if-match",
    if_none_match: "if-none-match",
    if_modified_since: "if-modified-since",
    if_unmodified_since: "if-unmodified-since",
};

const COPY_SOURCE: ConditionHeaders = ConditionHeaders {
    if_match: "x-amz-copy-source-if-match",
    if_none_match: "x-amz-copy-source-if-none-match",
    if_modified_since: "x-amz-copy-source-if-modified-since",
    if_unmodified_since: "x-amz-copy-source-if-unmodified-since",
};

/// Checks GET/HEAD conditions: `PreconditionFailed` (412) or `NotModified` (304) when they fail.
pub fn check_read_conditions(headers: &HeaderMap, info: &ObjectInfo) -> S3Result<()> {
    evaluate(headers, info, &REQUEST, S3ErrorCode::NotModified)
}

/// Checks the copy-source conditions of CopyObject / UploadPartCopy: every failure is 412.
pub fn check_copy_source_conditions(headers: &HeaderMap, info: &ObjectInfo) -> S3Result<()> {
    evaluate(headers, info, &COPY_SOURCE, S3ErrorCode::PreconditionFailed)
}

fn evaluate(
    headers: &HeaderMap,
    info: &ObjectInfo,
    names: &ConditionHeaders,
    not_modified: S3ErrorCode,
) -> S3Result<()> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let date = |name: &str| text(name).and_then(parse_http_date);
    // HTTP dates have second precision; compare the object's time truncated likewise.
    let modified = info.last_modified.unix_timestamp();

    let if_match = text(names.if_match);
    if let Some(list) = if_match {
        if !etag_list_matches(list, &info.etag) {
            return Err(S3ErrorCode::PreconditionFailed.into());
        }
    } else if let Some(since) = date(names.if_unmodified_since) {
        if modified > since.unix_timestamp() {
            return Err(S3ErrorCode::PreconditionFailed.into());
        }
    }

    if let Some(list) = text(names.if_none_match) {
        if etag_list_matches(list, &info.etag) {
            return Err(S3Error::from(not_modified));
        }
    } else if let Some(since) = date(names.if_modified_since) {
        if modified <= since.unix_timestamp() {
            return Err(S3Error::from(not_modified));
        }
    }
    Ok(())
}

/// Whether an `If-Match`-style list (`"a", "b"`, `*`, weak tags) names this ETag.
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|candidate| {
        candidate == "*"
            || candidate
                .trim_start_matches("W/")
                .trim_matches('"')
                .eq(etag)
    })
}

/// Parses an HTTP date (RFC 1123 and the obsolete forms httpdate knows).
pub fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    let time = httpdate::parse_http_date(value.trim()).ok()?;
    Some(OffsetDateTime::from(time))
}

/// Formats a time as an HTTP date (`Last-Modified`).
pub fn http_date(time: OffsetDateTime) -> String {
    httpdate::fmt_http_date(time.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ObjectAttrs;
    use http::HeaderValue;

    fn info() -> ObjectInfo {
        ObjectInfo {
            key: "k".into(),
            size: 1,
            etag: "abc".into(),
            last_modified: time::macros::datetime!(2024-01-02 03:04:05.678 UTC),
            attrs: ObjectAttrs::default(),
            checksum: None,
            parts_count: None,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn code(pairs: &[(&'static str, &str)]) -> Option<S3ErrorCode> {
        check_read_conditions(&headers(pairs), &info())
            .err()
            .map(|e| e.code)
    }

    #[test]
    fn etag_conditions() {
        assert_eq!(code(&[("if-match", "\"abc\"")]), None);
        assert_eq!(code(&[("if-match", "\"x\", \"abc\"")]), None);
        assert_eq!(code(&[("if-match", "*")]), None);
        assert_eq!(
            code(&[("if-match", "\"x\"")]),
            Some(S3ErrorCode::PreconditionFailed)
        );
        assert_eq!(
            code(&[("if-none-match", "\"abc\"")]),
            Some(S3ErrorCode::NotModified)
        );
        assert_eq!(code(&[("if-none-match", "\"x\"")]), None);
    }

    #[test]
    fn date_conditions_and_precedence() {
        let before = "Mon, 01 Jan 2024 00:00:00 GMT";
        let same = "Tue, 02 Jan 2024 03:04:05 GMT";
        assert_eq!(code(&[("if-modified-since", before)]), None);
        assert_eq!(
            code(&[("if-modified-since", same)]),
            Some(S3ErrorCode::NotModified)
        );
        assert_eq!(code(&[("if-unmodified-since", same)]), None);
        assert_eq!(
            code(&[("if-unmodified-since", before)]),
            Some(S3ErrorCode::PreconditionFailed)
        );
        // A matching If-Match wins over a failing If-Unmodified-Since.
        assert_eq!(
            code(&[("if-match", "\"abc\""), ("if-unmodified-since", before)]),
            None
        );
        // If-None-Match decides over If-Modified-Since.
        assert_eq!(
            code(&[("if-none-match", "\"x\""), ("if-modified-since", same)]),
            None
        );
    }

    #[test]
    fn copy_source_failures_are_412() {
        let h = headers(&[("x-amz-copy-source-if-none-match", "\"abc\"")]);
        let err = check_copy_source_conditions(&h, &info()).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::PreconditionFailed);
    }
}
