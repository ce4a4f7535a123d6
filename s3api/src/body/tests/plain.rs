//! Plain bodies: Content-MD5, x-amz-content-sha256, additional checksums, lengths, copies.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::HeaderMap;
use md5::{Digest, Md5};
use sha2::Sha256;

use super::*;
use crate::auth::PayloadCheck;
use crate::backend::{ByteStream, ChecksumAlgorithm};
use crate::error::S3ErrorCode;

#[tokio::test]
async fn plain_body_is_handed_out_without_copying() {
    let frame = Bytes::from(vec![7u8; 4096]);
    let hdrs = headers(&[("content-length", "4096")]);
    let mut body = body_of(vec![frame.clone()], PayloadCheck::Unsigned, &hdrs);
    let data = body.chunk().await.unwrap().unwrap();
    assert_eq!(data.as_ptr(), frame.as_ptr());
    assert!(body.chunk().await.unwrap().is_none());
    assert_eq!(body.declared_len(), Some(4096));
}

#[tokio::test]
async fn content_md5_is_checked() {
    let payload = b"The quick brown fox".to_vec();
    let good = b64(&Md5::digest(&payload));
    let hdrs = headers(&[("content-md5", &good)]);
    assert_decodes(
        frames_of(&payload, 5),
        PayloadCheck::Unsigned,
        &hdrs,
        &payload,
    )
    .await;

    let wrong = headers(&[("content-md5", &b64(&Md5::digest(b"other")))]);
    expect_error(
        body_of(vec![payload.clone().into()], PayloadCheck::Unsigned, &wrong),
        S3ErrorCode::BadDigest,
    )
    .await;

    for malformed in ["not base64!", "AAAA"] {
        let hdrs = headers(&[("content-md5", malformed)]);
        let err = ObjectBody::from_request(http_body(vec![]), PayloadCheck::Unsigned, &hdrs)
            .err()
            .unwrap();
        assert_eq!(err.code, S3ErrorCode::InvalidDigest);
    }
}

#[tokio::test]
async fn payload_sha256_is_checked() {
    let payload = b"signed payload".to_vec();
    let good = PayloadCheck::Sha256(hex::encode(Sha256::digest(&payload)));
    assert_decodes(frames_of(&payload, 3), good, &HeaderMap::new(), &payload).await;
    let bad = PayloadCheck::Sha256(hex::encode(Sha256::digest(b"something else")));
    let body = body_of(vec![payload.into()], bad, &HeaderMap::new());
    expect_error(body, S3ErrorCode::XAmzContentSHA256Mismatch).await;
}

#[tokio::test]
async fn checksum_headers_are_verified_or_computed() {
    let payload = b"checksummed".to_vec();
    let sha1 = b64(&sha1::Sha1::digest(&payload));
    let hdrs = headers(&[("x-amz-checksum-sha1", &sha1)]);
    let body = assert_decodes(
        frames_of(&payload, 4),
        PayloadCheck::Unsigned,
        &hdrs,
        &payload,
    )
    .await;
    assert_eq!(body.checksum(), Some((ChecksumAlgorithm::Sha1, sha1)));

    // SHA-256 shares its pass with x-amz-content-sha256.
    let sha256 = Sha256::digest(&payload);
    let hdrs = headers(&[("x-amz-checksum-sha256", &b64(&sha256))]);
    let body = assert_decodes(
        vec![payload.clone().into()],
        PayloadCheck::Sha256(hex::encode(sha256)),
        &hdrs,
        &payload,
    )
    .await;
    assert_eq!(
        body.checksum(),
        Some((ChecksumAlgorithm::Sha256, b64(&sha256)))
    );

    let hdrs = headers(&[("x-amz-sdk-checksum-algorithm", "CRC32C")]);
    let body = assert_decodes(
        vec![payload.clone().into()],
        PayloadCheck::Unsigned,
        &hdrs,
        &payload,
    )
    .await;
    let crc32c = b64(&crc32c::crc32c(&payload).to_be_bytes());
    assert_eq!(body.checksum(), Some((ChecksumAlgorithm::Crc32c, crc32c)));

    let wrong = headers(&[(
        "x-amz-checksum-crc32",
        &b64(&crc32fast::hash(b"x").to_be_bytes()),
    )]);
    let mut body = body_of(vec![payload.clone().into()], PayloadCheck::Unsigned, &wrong);
    let err = read_all(&mut body).await.unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            S3ErrorCode::BadDigest,
            "The CRC32 you specified did not match the calculated checksum."
        )
    );

    for bad in [
        headers(&[("x-amz-checksum-crc32", "not-a-crc")]),
        headers(&[
            ("x-amz-checksum-crc32", "AAAAAA=="),
            ("x-amz-checksum-sha1", &b64(&[0; 20])),
        ]),
    ] {
        let err = ObjectBody::from_request(http_body(vec![]), PayloadCheck::Unsigned, &bad)
            .err()
            .unwrap();
        assert_eq!(err.code, S3ErrorCode::InvalidRequest);
    }
}

#[tokio::test]
async fn plain_body_length_and_transport_errors() {
    let hdrs = headers(&[("content-length", "10")]);
    let body = body_of(
        vec![Bytes::from_static(b"short")],
        PayloadCheck::Unsigned,
        &hdrs,
    );
    expect_error(body, S3ErrorCode::IncompleteBody).await;

    let failing = StreamBody::new(futures_util::stream::iter(vec![
        Ok(Frame::data(Bytes::from_static(b"abc"))),
        Err("connection reset by peer"),
    ]));
    let mut body =
        ObjectBody::from_request(failing, PayloadCheck::Unsigned, &HeaderMap::new()).unwrap();
    assert_eq!(
        body.chunk().await.unwrap().unwrap(),
        Bytes::from_static(b"abc")
    );
    assert_eq!(
        body.chunk().await.unwrap_err().code,
        S3ErrorCode::IncompleteBody
    );
}

#[tokio::test]
async fn from_stream_computes_md5_and_checks_length() {
    let stream = || -> ByteStream {
        Box::pin(futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"copy ")),
            Ok(Bytes::from_static(b"me")),
        ]))
    };
    let mut body = ObjectBody::from_stream(stream(), Some(7));
    assert_eq!(read_all(&mut body).await.unwrap(), b"copy me");
    assert_eq!(body.md5(), <[u8; 16]>::from(Md5::digest(b"copy me")));
    assert_eq!(body.declared_len(), Some(7));
    expect_error(
        ObjectBody::from_stream(stream(), Some(8)),
        S3ErrorCode::IncompleteBody,
    )
    .await;
}
