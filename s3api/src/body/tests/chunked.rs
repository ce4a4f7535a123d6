//! `aws-chunked` bodies: AWS's vectors, frames split anywhere, signature and framing failures.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::HeaderMap;

use super::*;
use crate::auth::PayloadCheck;
use crate::backend::ChecksumAlgorithm;
use crate::error::S3ErrorCode;

#[test]
fn chunked_signer_reproduces_the_aws_examples() {
    assert_eq!(
        sign_chunked(SEED, &aws_payload(), 65536, None),
        aws_example_body(CHUNK_SIGS, "\r\n")
    );
    assert_eq!(
        sign_chunked(
            TRAILER_SEED,
            &aws_payload(),
            65536,
            Some("x-amz-checksum-crc32c:sOO8/Q==")
        ),
        aws_trailer_body("sOO8/Q==")
    );
}

#[tokio::test]
async fn chunked_aws_signed_example_decodes_in_any_frame_size() {
    let wire = aws_example_body(CHUNK_SIGS, "\r\n");
    for size in [1, 7, 100, 8192, wire.len()] {
        let body = assert_decodes(
            frames_of(&wire, size),
            signing(SEED, false),
            &aws_headers(),
            &aws_payload(),
        )
        .await;
        assert_eq!(body.declared_len(), Some(66560));
        assert_eq!(body.checksum(), None);
    }
}

#[tokio::test]
async fn chunked_aws_signed_example_decodes_split_around_every_boundary() {
    let wire = aws_example_body(CHUNK_SIGS, "\r\n");
    // Every cut inside the headers, the CRLFs and the first/last data bytes.
    let second_header = 88 + 65536;
    let cuts = (0..=120)
        .chain(second_header - 10..second_header + 100)
        .chain(wire.len() - 200..=wire.len());
    for cut in cuts {
        assert_decodes(
            split_at(&wire, cut),
            signing(SEED, false),
            &aws_headers(),
            &aws_payload(),
        )
        .await;
    }
}

#[tokio::test]
async fn chunked_aws_trailer_example_verifies_the_signed_crc32c() {
    let wire = aws_trailer_body("sOO8/Q==");
    for size in [1, 7, 4096, wire.len()] {
        let body = assert_decodes(
            frames_of(&wire, size),
            signing(TRAILER_SEED, true),
            &aws_trailer_headers(),
            &aws_payload(),
        )
        .await;
        assert_eq!(
            body.checksum(),
            Some((ChecksumAlgorithm::Crc32c, "sOO8/Q==".to_owned()))
        );
    }
}

#[tokio::test]
async fn chunked_small_signed_body_split_at_every_byte_in_two_and_three_frames() {
    let payload: Vec<u8> = (0..100u8).collect();
    let crc = b64(&crc32fast::hash(&payload).to_be_bytes());
    let wire = sign_chunked(
        SEED,
        &payload,
        40,
        Some(&format!("x-amz-checksum-crc32:{crc}")),
    );
    let hdrs = headers(&[
        ("x-amz-decoded-content-length", "100"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ]);
    for first in 0..=wire.len() {
        assert_decodes(split_at(&wire, first), signing(SEED, true), &hdrs, &payload).await;
    }
    for first in (0..wire.len()).step_by(13) {
        for second in first..=wire.len() {
            let frames = vec![
                Bytes::copy_from_slice(&wire[..first]),
                Bytes::copy_from_slice(&wire[first..second]),
                Bytes::copy_from_slice(&wire[second..]),
            ];
            assert_decodes(frames, signing(SEED, true), &hdrs, &payload).await;
        }
    }
}

#[tokio::test]
async fn chunked_unsigned_trailer_with_crc32_split_at_every_byte() {
    let payload = b"hello unsigned trailer world, split anywhere you like".repeat(3);
    let crc = b64(&crc32fast::hash(&payload).to_be_bytes());
    let wire = unsigned_chunked(&payload, 64, &format!("x-amz-checksum-crc32:{crc}"));
    let hdrs = headers(&[
        ("x-amz-decoded-content-length", &payload.len().to_string()),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ]);
    for cut in 0..=wire.len() {
        let body = assert_decodes(
            split_at(&wire, cut),
            PayloadCheck::UnsignedChunks,
            &hdrs,
            &payload,
        )
        .await;
        assert_eq!(
            body.checksum(),
            Some((ChecksumAlgorithm::Crc32, crc.clone()))
        );
    }
    assert_decodes(
        frames_of(&wire, 1),
        PayloadCheck::UnsignedChunks,
        &hdrs,
        &payload,
    )
    .await;
}

#[tokio::test]
async fn chunked_tampered_data_fails_the_chunk_signature() {
    let mut wire = aws_example_body(CHUNK_SIGS, "\r\n");
    wire[1000] = b'b';
    let body = body_of(frames_of(&wire, 7000), signing(SEED, false), &aws_headers());
    expect_error(body, S3ErrorCode::SignatureDoesNotMatch).await;
}

#[tokio::test]
async fn chunked_wrong_chunk_signature_is_rejected() {
    let mut sigs = CHUNK_SIGS;
    sigs[2] = CHUNK_SIGS[1];
    let body = body_of(
        vec![aws_example_body(sigs, "\r\n").into()],
        signing(SEED, false),
        &aws_headers(),
    );
    expect_error(body, S3ErrorCode::SignatureDoesNotMatch).await;
    let body = body_of(
        vec![aws_example_body(CHUNK_SIGS, "\r\n").into()],
        signing(TRAILER_SEED, false),
        &aws_headers(),
    );
    expect_error(body, S3ErrorCode::SignatureDoesNotMatch).await;
}

#[tokio::test]
async fn chunked_tampered_signed_trailer_fails_the_trailer_signature() {
    let body = body_of(
        vec![aws_trailer_body("AAAAAA==").into()],
        signing(TRAILER_SEED, true),
        &aws_trailer_headers(),
    );
    expect_error(body, S3ErrorCode::SignatureDoesNotMatch).await;
}

#[tokio::test]
async fn chunked_wrong_unsigned_trailer_checksum_is_bad_digest() {
    let payload = b"some data".to_vec();
    let wrong = b64(&crc32fast::hash(b"other data").to_be_bytes());
    let wire = unsigned_chunked(&payload, 4, &format!("x-amz-checksum-crc32:{wrong}"));
    let hdrs = headers(&[
        ("x-amz-decoded-content-length", "9"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ]);
    let mut body = body_of(vec![wire.into()], PayloadCheck::UnsignedChunks, &hdrs);
    let err = read_all(&mut body).await.unwrap_err();
    assert_eq!(err.code, S3ErrorCode::BadDigest);
    assert_eq!(
        err.message,
        "The CRC32 you specified did not match the calculated checksum."
    );
}

#[tokio::test]
async fn chunked_truncated_body_is_incomplete() {
    let wire = aws_example_body(CHUNK_SIGS, "\r\n");
    for end in [0, 50, 100, 65000, 65626, wire.len() - 3] {
        let body = body_of(
            frames_of(&wire[..end], 5000),
            signing(SEED, false),
            &aws_headers(),
        );
        expect_error(body, S3ErrorCode::IncompleteBody).await;
    }
    let missing_trailer = aws_example_body(TRAILER_CHUNK_SIGS, "");
    let body = body_of(
        vec![missing_trailer.into()],
        signing(TRAILER_SEED, true),
        &aws_trailer_headers(),
    );
    expect_error(body, S3ErrorCode::IncompleteBody).await;
}

#[tokio::test]
async fn chunked_length_must_match_the_decoded_content_length() {
    let wire = aws_example_body(CHUNK_SIGS, "\r\n");
    let short = headers(&[("x-amz-decoded-content-length", "66559")]);
    expect_error(
        body_of(vec![wire.clone().into()], signing(SEED, false), &short),
        S3ErrorCode::IncompleteBody,
    )
    .await;
    let long = headers(&[("x-amz-decoded-content-length", "66561")]);
    expect_error(
        body_of(vec![wire.into()], signing(SEED, false), &long),
        S3ErrorCode::IncompleteBody,
    )
    .await;
}

#[tokio::test]
async fn chunked_malformed_framing_is_rejected() {
    let bad_crlf = b"3\r\nabcXY0\r\n\r\n".to_vec();
    let body = body_of(
        vec![bad_crlf.into()],
        PayloadCheck::UnsignedChunks,
        &HeaderMap::new(),
    );
    expect_error(body, S3ErrorCode::IncompleteBody).await;
    let bad_size = b"zz\r\nabc\r\n0\r\n\r\n".to_vec();
    let body = body_of(
        vec![bad_size.into()],
        PayloadCheck::UnsignedChunks,
        &HeaderMap::new(),
    );
    expect_error(body, S3ErrorCode::IncompleteBody).await;
    let too_big = b"1000001\r\n".to_vec();
    let body = body_of(
        vec![too_big.into()],
        PayloadCheck::UnsignedChunks,
        &HeaderMap::new(),
    );
    expect_error(body, S3ErrorCode::InvalidRequest).await;
    let trailing_garbage = b"3\r\nabc\r\n0\r\n\r\nmore".to_vec();
    let body = body_of(
        vec![trailing_garbage.into()],
        PayloadCheck::UnsignedChunks,
        &HeaderMap::new(),
    );
    expect_error(body, S3ErrorCode::IncompleteBody).await;
    let unsigned_chunk = b"3\r\nabc\r\n0\r\n\r\n".to_vec();
    let body = body_of(
        vec![unsigned_chunk.into()],
        signing(SEED, false),
        &HeaderMap::new(),
    );
    expect_error(body, S3ErrorCode::SignatureDoesNotMatch).await;
}

#[tokio::test]
async fn chunked_payload_is_handed_out_as_slices_of_the_frames() {
    let wire = Bytes::from(aws_example_body(CHUNK_SIGS, "\r\n"));
    let frame_range = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
    let mut body = body_of(vec![wire.clone()], signing(SEED, false), &aws_headers());
    let mut total = 0;
    while let Some(data) = body.chunk().await.unwrap() {
        assert!(
            frame_range.contains(&(data.as_ptr() as usize)),
            "payload was copied"
        );
        total += data.len();
    }
    assert_eq!(total, 66560);
}
