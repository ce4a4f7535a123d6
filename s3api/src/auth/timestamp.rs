//! Request timestamps: the formats signatures carry them in, and the clock-skew rule.

use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc2822;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::error::{S3Error, S3ErrorCode, S3Result};

/// How far a header-signed request's time may be from ours: AWS's limit, which clients expect
/// (they retry with a corrected clock when told `RequestTimeTooSkewed`).
pub(crate) const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The ISO 8601 basic form SigV4 signs: `20130524T000000Z`.
const AMZ_DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// The extended form AWS uses in error details: `2013-05-24T00:00:00Z`.
const ISO8601_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// Parses a SigV4 timestamp (`yyyyMMdd'T'HHmmss'Z'`).
pub(crate) fn parse_amz_date(value: &str) -> Option<SystemTime> {
    if value.len() != 16 {
        return None;
    }
    let parsed = PrimitiveDateTime::parse(value, AMZ_DATE_FORMAT).ok()?;
    Some(SystemTime::from(parsed.assume_utc()))
}

/// Formats a time as a SigV4 timestamp (`20130524T000000Z`).
pub(crate) fn format_amz_date(at: SystemTime) -> String {
    format_with(at, AMZ_DATE_FORMAT)
}

/// Formats a time the way AWS writes it in error details (`2013-05-24T00:00:00Z`).
pub(crate) fn format_iso8601(at: SystemTime) -> String {
    format_with(at, ISO8601_FORMAT)
}

fn format_with(
    at: SystemTime,
    format: &[time::format_description::BorrowedFormatItem<'static>],
) -> String {
    // Formatting a UTC date with numeric components only cannot fail; an empty string would
    // merely make the signature not match.
    OffsetDateTime::from(at).format(format).unwrap_or_default()
}

/// Parses an HTTP `Date` (IMF-fixdate, RFC 850, asctime) or an RFC 2822 date with a numeric
/// zone (`Tue, 27 Mar 2007 19:36:42 +0000`), which SigV2 clients send.
pub(crate) fn parse_http_date(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    if let Ok(at) = httpdate::parse_http_date(value) {
        return Some(at);
    }
    OffsetDateTime::parse(value, &Rfc2822)
        .ok()
        .map(SystemTime::from)
}

/// The absolute distance between two instants.
pub(crate) fn distance(a: SystemTime, b: SystemTime) -> Duration {
    match a.duration_since(b) {
        Ok(d) => d,
        Err(e) => e.duration(),
    }
}

/// Rejects a header-signed request whose time is more than [`MAX_CLOCK_SKEW`] from `now`.
pub(crate) fn check_skew(request_time: SystemTime, now: SystemTime) -> S3Result<()> {
    if distance(request_time, now) <= MAX_CLOCK_SKEW {
        return Ok(());
    }
    Err(S3Error::from(S3ErrorCode::RequestTimeTooSkewed)
        .with_detail("RequestTime", format_iso8601(request_time))
        .with_detail("ServerTime", format_iso8601(now))
        .with_detail(
            "MaxAllowedSkewMilliseconds",
            MAX_CLOCK_SKEW.as_millis().to_string(),
        ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn amz_date_round_trips() {
        let at = parse_amz_date("20130524T000000Z").unwrap();
        assert_eq!(format_amz_date(at), "20130524T000000Z");
        assert_eq!(format_iso8601(at), "2013-05-24T00:00:00Z");
        let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(since_epoch.as_secs(), 1_369_353_600);
    }

    #[test]
    fn malformed_amz_dates_are_rejected() {
        for bad in [
            "",
            "20130524",
            "20130524T000000",
            "2013-05-24T00:00:00Z",
            "20131324T000000Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn http_dates_in_both_forms_parse() {
        let gmt = parse_http_date("Fri, 24 May 2013 00:00:00 GMT").unwrap();
        assert_eq!(gmt, parse_amz_date("20130524T000000Z").unwrap());
        let numeric = parse_http_date("Tue, 27 Mar 2007 19:36:42 +0000").unwrap();
        assert_eq!(format_iso8601(numeric), "2007-03-27T19:36:42Z");
        assert!(parse_http_date("yesterday").is_none());
    }

    #[test]
    fn skew_limit_is_fifteen_minutes_either_way() {
        let now = parse_amz_date("20130524T000000Z").unwrap();
        assert!(check_skew(now + MAX_CLOCK_SKEW, now).is_ok());
        assert!(check_skew(now - MAX_CLOCK_SKEW, now).is_ok());
        let err = check_skew(now + MAX_CLOCK_SKEW + Duration::from_secs(1), now).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::RequestTimeTooSkewed);
        let err = check_skew(now - MAX_CLOCK_SKEW - Duration::from_secs(1), now).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::RequestTimeTooSkewed);
    }
}
