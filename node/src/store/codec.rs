//! The one place where persisted records become bytes and back.
//!
//! Every record is one format-version byte followed by its bincode 1.3 encoding (varint
//! integers, size limit, no trailing bytes). A reader that meets a version it does not know
//! reports [`CodecError::UnknownVersion`] instead of guessing; when a record's layout changes,
//! bump its version and decode the older one in [`Record::decode_older`] (with
//! [`decode_payload`]), so data written before an upgrade stays readable.

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Upper bound for one encoded record. Object records list their blocks (36 bytes each), so
/// 64 MiB covers objects far larger than anything sled should hold in one value; the bound only
/// exists so a corrupt length prefix cannot make the decoder allocate without limit.
const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// A type stored in a metadata table.
pub trait Record: Serialize + DeserializeOwned {
    /// Format version written in front of every encoded record of this type.
    const FORMAT_VERSION: u8;
    /// Human name for error messages.
    const NAME: &'static str;
    /// Older format versions whose leading fields are laid out as the current version's, so
    /// [`decode_head`] reads them too.
    const HEAD_COMPATIBLE_VERSIONS: &'static [u8] = &[];

    /// Reads the payload of a record written with an older format `version`; `None` when
    /// this code does not know that version.
    fn decode_older(version: u8, payload: &[u8]) -> Option<Result<Self, CodecError>> {
        let _ = (version, payload);
        None
    }
}

/// Decodes a bincode payload (without version byte) as `T`, for [`Record::decode_older`].
pub fn decode_payload<T: DeserializeOwned>(
    record: &'static str,
    payload: &[u8],
) -> Result<T, CodecError> {
    options()
        .deserialize(payload)
        .map_err(|err| CodecError::Malformed {
            record,
            reason: err.to_string(),
        })
}

/// Why bytes could not become a record (or the reverse).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The value is empty: not even a version byte.
    #[error("empty {record} record")]
    Empty { record: &'static str },
    /// The record was written by a format this code does not know.
    #[error("{record} record has format version {found}, this node reads version {expected}")]
    UnknownVersion {
        record: &'static str,
        found: u8,
        expected: u8,
    },
    /// The payload is malformed or too large.
    #[error("malformed {record} record: {reason}")]
    Malformed {
        record: &'static str,
        reason: String,
    },
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(MAX_RECORD_BYTES)
        .reject_trailing_bytes()
}

/// Encodes `record` with its version byte.
pub fn encode<R: Record>(record: &R) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![R::FORMAT_VERSION];
    options()
        .serialize_into(&mut out, record)
        .map_err(|err| CodecError::Malformed {
            record: R::NAME,
            reason: err.to_string(),
        })?;
    Ok(out)
}

/// Decodes a record written by [`encode`], by this format version or an older one the record
/// type still reads.
pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, CodecError> {
    let (&version, payload) = bytes
        .split_first()
        .ok_or(CodecError::Empty { record: R::NAME })?;
    if version == R::FORMAT_VERSION {
        return decode_payload(R::NAME, payload);
    }
    R::decode_older(version, payload).unwrap_or(Err(CodecError::UnknownVersion {
        record: R::NAME,
        found: version,
        expected: R::FORMAT_VERSION,
    }))
}

/// Decodes only the leading fields of a record: `H` must be a prefix-compatible view of `R`
/// (same field order and enum variant order, fewer trailing fields). Listing uses this to skip
/// inline bodies and block lists it does not need.
pub fn decode_head<R: Record, H: DeserializeOwned>(bytes: &[u8]) -> Result<H, CodecError> {
    let payload = check_version::<R>(bytes)?;
    bincode::DefaultOptions::new()
        .with_limit(MAX_RECORD_BYTES)
        .allow_trailing_bytes()
        .deserialize(payload)
        .map_err(|err| CodecError::Malformed {
            record: R::NAME,
            reason: err.to_string(),
        })
}

fn check_version<R: Record>(bytes: &[u8]) -> Result<&[u8], CodecError> {
    let (&version, payload) = bytes
        .split_first()
        .ok_or(CodecError::Empty { record: R::NAME })?;
    if version != R::FORMAT_VERSION && !R::HEAD_COMPATIBLE_VERSIONS.contains(&version) {
        return Err(CodecError::UnknownVersion {
            record: R::NAME,
            found: version,
            expected: R::FORMAT_VERSION,
        });
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        id: u64,
        name: String,
        tail: Vec<u8>,
    }

    impl Record for Sample {
        const FORMAT_VERSION: u8 = 3;
        const NAME: &'static str = "sample";
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct SampleHead {
        id: u64,
        name: String,
    }

    fn sample() -> Sample {
        Sample {
            id: 42,
            name: "ü/..//x".into(),
            tail: vec![1; 100],
        }
    }

    #[test]
    fn round_trip_starts_with_the_version_byte() {
        let bytes = encode(&sample()).unwrap();
        assert_eq!(bytes[0], 3);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample());
    }

    #[test]
    fn unknown_version_empty_and_trailing_bytes_are_errors() {
        let mut bytes = encode(&sample()).unwrap();
        bytes[0] = 9;
        assert!(matches!(
            decode::<Sample>(&bytes),
            Err(CodecError::UnknownVersion { found: 9, .. })
        ));
        assert!(matches!(
            decode::<Sample>(&[]),
            Err(CodecError::Empty { .. })
        ));
        let mut trailing = encode(&sample()).unwrap();
        trailing.push(0);
        assert!(matches!(
            decode::<Sample>(&trailing),
            Err(CodecError::Malformed { .. })
        ));
        assert!(matches!(
            decode::<Sample>(&[3, 0xff, 0xff]),
            Err(CodecError::Malformed { .. })
        ));
    }

    /// [`Sample`] as it was before `tail` was added, at format version 2.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Evolving {
        id: u64,
        name: String,
        tail: Vec<u8>,
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct EvolvingV2 {
        id: u64,
        name: String,
    }

    impl Record for Evolving {
        const FORMAT_VERSION: u8 = 3;
        const NAME: &'static str = "evolving";
        const HEAD_COMPATIBLE_VERSIONS: &'static [u8] = &[2];

        fn decode_older(version: u8, payload: &[u8]) -> Option<Result<Self, CodecError>> {
            (version == 2).then(|| {
                decode_payload::<EvolvingV2>(Self::NAME, payload).map(|old| Evolving {
                    id: old.id,
                    name: old.name,
                    tail: Vec::new(),
                })
            })
        }
    }

    impl Record for EvolvingV2 {
        const FORMAT_VERSION: u8 = 2;
        const NAME: &'static str = "evolving";
    }

    #[test]
    fn older_versions_decode_through_the_record_type() {
        let old = encode(&EvolvingV2 {
            id: 7,
            name: "n".into(),
        })
        .unwrap();
        let record: Evolving = decode(&old).unwrap();
        assert_eq!(
            record,
            Evolving {
                id: 7,
                name: "n".into(),
                tail: vec![]
            }
        );
        let head: SampleHead = decode_head::<Evolving, _>(&old).unwrap();
        assert_eq!(head.id, 7);
        let mut unknown = old.clone();
        unknown[0] = 1;
        assert!(matches!(
            decode::<Evolving>(&unknown),
            Err(CodecError::UnknownVersion { found: 1, .. })
        ));
    }

    #[test]
    fn head_decoding_reads_the_leading_fields_only() {
        let bytes = encode(&sample()).unwrap();
        let head: SampleHead = decode_head::<Sample, _>(&bytes).unwrap();
        assert_eq!(
            head,
            SampleHead {
                id: 42,
                name: "ü/..//x".into()
            }
        );
    }
}
