//! Storage failures and the one place where they become S3 errors.

use std::io;

use s3api::{S3Error, S3ErrorCode};

use super::codec::CodecError;
use super::kv::KvError;

/// What can go wrong inside the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation on block or temp files failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The metadata engine failed.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// A stored record could not be decoded (or encoded).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Stored metadata contradicts itself.
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// The request is refused with this S3 error (NoSuchKey, InvalidPart, ...).
    #[error(transparent)]
    Rejected(#[from] S3Error),
}

impl StoreError {
    /// An I/O failure with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> StoreError {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    /// A refusal with AWS's default message for `code`.
    pub fn rejected(code: S3ErrorCode) -> StoreError {
        StoreError::Rejected(S3Error::from(code))
    }
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(err: tokio::task::JoinError) -> Self {
        StoreError::Task(err.to_string())
    }
}

/// Whether the error means the disk (or the user's quota on it) is full.
fn is_out_of_space(err: &io::Error) -> bool {
    /// Linux's EDQUOT ("disk quota exceeded"); its `ErrorKind` is not stable yet.
    const EDQUOT: i32 = 122;
    err.kind() == io::ErrorKind::StorageFull || err.raw_os_error() == Some(EDQUOT)
}

fn from_io(what: &dyn std::fmt::Display, err: &io::Error) -> S3Error {
    if is_out_of_space(err) {
        // 503 tells clients to retry later, which is right once GC or an operator frees space.
        S3Error::new(
            S3ErrorCode::ServiceUnavailable,
            format!("This storage node is out of disk space; please try again later. ({what})"),
        )
    } else {
        S3Error::internal(what)
    }
}

impl From<StoreError> for S3Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Rejected(s3) => s3,
            StoreError::Io { ref source, .. } => {
                tracing::error!(error = %err, "storage I/O failure");
                from_io(&err, source)
            }
            StoreError::Kv(KvError::Io(ref source)) => {
                tracing::error!(error = %err, "metadata I/O failure");
                from_io(&err, source)
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                S3Error::internal(other)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux errno values, spelled out to avoid a libc dependency for two constants.
    const ENOSPC: i32 = 28;
    const EIO: i32 = 5;

    #[test]
    fn disk_full_is_a_retryable_5xx_with_a_clear_message() {
        let err = StoreError::io("writing block", io::Error::from_raw_os_error(ENOSPC));
        let s3 = S3Error::from(err);
        assert_eq!(s3.code, S3ErrorCode::ServiceUnavailable);
        assert!(s3.message.contains("out of disk space"));
        let err = StoreError::Kv(KvError::Io(io::Error::from_raw_os_error(ENOSPC)));
        assert_eq!(S3Error::from(err).code, S3ErrorCode::ServiceUnavailable);
    }

    #[test]
    fn other_failures_are_internal_errors_and_refusals_pass_through() {
        let err = StoreError::io("syncing block", io::Error::from_raw_os_error(EIO));
        assert_eq!(S3Error::from(err).code, S3ErrorCode::InternalError);
        let err = StoreError::Corrupt("bad key".into());
        assert_eq!(S3Error::from(err).code, S3ErrorCode::InternalError);
        let err = StoreError::rejected(S3ErrorCode::NoSuchKey);
        assert_eq!(S3Error::from(err).code, S3ErrorCode::NoSuchKey);
    }
}
