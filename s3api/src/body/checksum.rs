//! Integrity values a client attaches to a body: `Content-MD5` and the additional checksums
//! (`x-amz-checksum-*` as a header, announced by `x-amz-trailer`, or only named by
//! `x-amz-sdk-checksum-algorithm` so that the server computes it).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::HeaderMap;
use sha1::Digest as _;

use crate::backend::ChecksumAlgorithm;
use crate::error::{S3Error, S3ErrorCode, S3Result};

/// The algorithms we verify, in the order their headers are looked for.
const ALGORITHMS: [ChecksumAlgorithm; 4] = [
    ChecksumAlgorithm::Crc32,
    ChecksumAlgorithm::Crc32c,
    ChecksumAlgorithm::Sha1,
    ChecksumAlgorithm::Sha256,
];

/// Where the value to compare the computed checksum with comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expected {
    /// The `x-amz-checksum-<alg>` request header (base64, already validated).
    Header(String),
    /// An `aws-chunked` trailer named by `x-amz-trailer`.
    Trailer,
    /// Only the algorithm was named: compute it and report it, nothing to compare.
    ComputeOnly,
}

/// The additional checksum a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RequestedChecksum {
    pub algorithm: ChecksumAlgorithm,
    pub expected: Expected,
}

/// Incremental state of the non-SHA-256 checksums (SHA-256 shares the payload hasher).
pub(super) enum ChecksumHasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Sha1(sha1::Sha1),
}

impl ChecksumHasher {
    /// A hasher for `algorithm`, or `None` for SHA-256, which the caller hashes itself.
    pub fn new(algorithm: ChecksumAlgorithm) -> Option<Self> {
        match algorithm {
            ChecksumAlgorithm::Crc32 => Some(ChecksumHasher::Crc32(crc32fast::Hasher::new())),
            ChecksumAlgorithm::Crc32c => Some(ChecksumHasher::Crc32c(0)),
            ChecksumAlgorithm::Sha1 => Some(ChecksumHasher::Sha1(sha1::Sha1::new())),
            ChecksumAlgorithm::Sha256 => None,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            ChecksumHasher::Crc32(h) => h.update(data),
            ChecksumHasher::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            ChecksumHasher::Sha1(h) => h.update(data),
        }
    }

    /// The raw digest (CRCs big-endian, as S3 encodes them).
    pub fn finalize(self) -> Vec<u8> {
        match self {
            ChecksumHasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            ChecksumHasher::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            ChecksumHasher::Sha1(h) => h.finalize().to_vec(),
        }
    }
}

/// The header (and trailer) name carrying a checksum value, e.g. `x-amz-checksum-crc32`.
pub(super) fn checksum_header_name(algorithm: ChecksumAlgorithm) -> String {
    format!("x-amz-checksum-{}", algorithm.as_str().to_ascii_lowercase())
}

/// Base64 of a digest, as S3 writes checksum values.
pub(super) fn encode(digest: &[u8]) -> String {
    BASE64.encode(digest)
}

/// Checks that `value` is base64 of a digest of the right length for `algorithm`.
pub(super) fn validate_value(algorithm: ChecksumAlgorithm, value: &str) -> S3Result<()> {
    let digest_len = match algorithm {
        ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
        ChecksumAlgorithm::Sha1 => 20,
        ChecksumAlgorithm::Sha256 => 32,
    };
    match BASE64.decode(value.trim()) {
        Ok(bytes) if bytes.len() == digest_len => Ok(()),
        _ => Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            format!(
                "Value for {} header is invalid.",
                checksum_header_name(algorithm)
            ),
        )),
    }
}

/// The error for a checksum that does not match the data, in AWS's words.
pub(super) fn mismatch(algorithm: ChecksumAlgorithm) -> S3Error {
    S3Error::new(
        S3ErrorCode::BadDigest,
        format!(
            "The {} you specified did not match the calculated checksum.",
            algorithm.as_str()
        ),
    )
}

/// The decoded `Content-MD5` header, if present; `InvalidDigest` unless it is base64 of 16
/// bytes.
pub(super) fn content_md5(headers: &HeaderMap) -> S3Result<Option<[u8; 16]>> {
    let Some(value) = headers.get("content-md5") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| BASE64.decode(text.trim()).ok())
        .and_then(|bytes| <[u8; 16]>::try_from(bytes.as_slice()).ok())
        .map(Some)
        .ok_or_else(|| S3Error::from(S3ErrorCode::InvalidDigest))
}

/// Works out which additional checksum the request asks for. `chunked` says whether the body
/// is `aws-chunked` (the only framing that can carry a trailer). Algorithms we do not know
/// (e.g. CRC64NVME) are not verified.
pub(super) fn requested_checksum(
    headers: &HeaderMap,
    chunked: bool,
) -> S3Result<Option<RequestedChecksum>> {
    let from_header = header_checksum(headers)?;
    let from_trailer = trailer_checksum(headers)?;
    let named = ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"]
        .iter()
        .filter_map(|name| headers.get(*name))
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| ChecksumAlgorithm::parse(value.trim()));

    let requested = match (from_header, from_trailer) {
        (Some(_), Some(_)) => return Err(multiple_checksums()),
        (Some((algorithm, value)), None) => Some(RequestedChecksum {
            algorithm,
            expected: Expected::Header(value),
        }),
        (None, Some(algorithm)) => {
            if !chunked {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    "x-amz-trailer needs an aws-chunked request body.",
                ));
            }
            Some(RequestedChecksum {
                algorithm,
                expected: Expected::Trailer,
            })
        }
        (None, None) => named.map(|algorithm| RequestedChecksum {
            algorithm,
            expected: Expected::ComputeOnly,
        }),
    };
    if let (Some(requested), Some(named)) = (&requested, named) {
        if requested.algorithm != named {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                "Value for x-amz-sdk-checksum-algorithm header is invalid.",
            ));
        }
    }
    Ok(requested)
}

/// The single `x-amz-checksum-<alg>` header with its validated value, if any.
fn header_checksum(headers: &HeaderMap) -> S3Result<Option<(ChecksumAlgorithm, String)>> {
    let mut found = None;
    for algorithm in ALGORITHMS {
        let Some(value) = headers.get(checksum_header_name(algorithm)) else {
            continue;
        };
        if found.is_some() {
            return Err(multiple_checksums());
        }
        let value = value.to_str().unwrap_or_default().trim();
        validate_value(algorithm, value)?;
        found = Some((algorithm, value.to_owned()));
    }
    Ok(found)
}

/// The checksum algorithm `x-amz-trailer` announces, if any.
fn trailer_checksum(headers: &HeaderMap) -> S3Result<Option<ChecksumAlgorithm>> {
    let mut found = None;
    let names = headers
        .get_all("x-amz-trailer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for name in names {
        let name = name.trim().to_ascii_lowercase();
        let Some(algorithm) = name
            .strip_prefix("x-amz-checksum-")
            .and_then(ChecksumAlgorithm::parse)
        else {
            continue;
        };
        if found.is_some_and(|previous| previous != algorithm) {
            return Err(multiple_checksums());
        }
        found = Some(algorithm);
    }
    Ok(found)
}

fn multiple_checksums() -> S3Error {
    S3Error::new(
        S3ErrorCode::InvalidRequest,
        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
    )
}
