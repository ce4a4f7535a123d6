//! Tests of [`ObjectBody`]: AWS's published `aws-chunked` vectors, frames split anywhere, and
//! every integrity failure a client can cause.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failed test.

mod chunked;
mod plain;

use std::convert::Infallible;

use base64::Engine as _;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::StreamBody;
use hyper::body::Frame;
use md5::{Digest, Md5};
use sha2::Sha256;

use super::ObjectBody;
use crate::auth::chunked::ChunkSigningContext;
use crate::auth::PayloadCheck;
use crate::error::{S3ErrorCode, S3Result};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const AMZ_DATE: &str = "20130524T000000Z";
const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Signatures from "Transferring Payload in Multiple Chunks" (S3 API reference).
const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const CHUNK_SIGS: [&str; 3] = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];
/// Signatures from "Signature calculations for trailing headers (chunked uploads)".
const TRAILER_SEED: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
const TRAILER_CHUNK_SIGS: [&str; 3] = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
];
const TRAILER_SIG: &str = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";

fn hmac(key: &[u8], data: &str) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().into()
}

fn signing_key() -> [u8; 32] {
    let date_key = hmac(format!("AWS4{SECRET}").as_bytes(), "20130524");
    hmac(&hmac(&hmac(&date_key, "us-east-1"), "s3"), "aws4_request")
}

fn signing(seed: &str, has_trailer: bool) -> PayloadCheck {
    PayloadCheck::SignedChunks(ChunkSigningContext {
        signing_key: signing_key(),
        amz_date: AMZ_DATE.into(),
        scope: SCOPE.into(),
        seed_signature: seed.into(),
        has_trailer,
    })
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    map
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The AWS example payload: 65 KiB of `a`.
fn aws_payload() -> Vec<u8> {
    vec![b'a'; 66560]
}

/// The AWS example body with the given chunk signatures and what follows the final chunk.
fn aws_example_body(sigs: [&str; 3], after_final: &str) -> Vec<u8> {
    let mut body = format!("10000;chunk-signature={}\r\n", sigs[0]).into_bytes();
    body.extend_from_slice(&[b'a'; 65536]);
    body.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", sigs[1]).as_bytes());
    body.extend_from_slice(&[b'a'; 1024]);
    body.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n", sigs[2]).as_bytes());
    body.extend_from_slice(after_final.as_bytes());
    body
}

fn aws_trailer_body(trailer_value: &str) -> Vec<u8> {
    let trailer = format!(
        "x-amz-checksum-crc32c:{trailer_value}\r\nx-amz-trailer-signature:{TRAILER_SIG}\r\n\r\n"
    );
    aws_example_body(TRAILER_CHUNK_SIGS, &trailer)
}

/// Our own signer for bodies of any shape, written from the S3 reference independently of the
/// decoder; `signer_reproduces_the_aws_examples` checks it against AWS's bytes.
fn sign_chunked(seed: &str, payload: &[u8], chunk_size: usize, trailer: Option<&str>) -> Vec<u8> {
    let key = signing_key();
    let mut previous = seed.to_owned();
    let mut body = Vec::new();
    let mut chunks: Vec<&[u8]> = payload.chunks(chunk_size).collect();
    chunks.push(&[]);
    for chunk in chunks {
        let to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{EMPTY_SHA256}\n{}",
            hex::encode(Sha256::digest(chunk))
        );
        previous = hex::encode(hmac(&key, &to_sign));
        body.extend_from_slice(
            format!("{:x};chunk-signature={previous}\r\n", chunk.len()).as_bytes(),
        );
        if !chunk.is_empty() {
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
    }
    if let Some(line) = trailer {
        let to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{}",
            hex::encode(Sha256::digest(format!("{line}\n")))
        );
        let signature = hex::encode(hmac(&key, &to_sign));
        body.extend_from_slice(
            format!("{line}\r\nx-amz-trailer-signature:{signature}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(b"\r\n");
    body
}

fn unsigned_chunked(payload: &[u8], chunk_size: usize, trailer: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for chunk in payload.chunks(chunk_size) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("0\r\n{trailer}\r\n\r\n").as_bytes());
    body
}

/// An HTTP body delivering `wire` in the given frames.
fn http_body(
    frames: Vec<Bytes>,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    StreamBody::new(futures_util::stream::iter(
        frames.into_iter().map(|frame| Ok(Frame::data(frame))),
    ))
}

fn frames_of(wire: &[u8], size: usize) -> Vec<Bytes> {
    wire.chunks(size).map(Bytes::copy_from_slice).collect()
}

fn split_at(wire: &[u8], cut: usize) -> Vec<Bytes> {
    vec![
        Bytes::copy_from_slice(&wire[..cut]),
        Bytes::copy_from_slice(&wire[cut..]),
    ]
}

fn body_of(frames: Vec<Bytes>, payload: PayloadCheck, headers: &HeaderMap) -> ObjectBody {
    ObjectBody::from_request(http_body(frames), payload, headers).unwrap()
}

async fn read_all(body: &mut ObjectBody) -> S3Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(data) = body.chunk().await? {
        assert!(!data.is_empty(), "chunk() must not hand out empty slices");
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// Reads `frames` to the end and checks payload, MD5 and the reported checksum.
async fn assert_decodes(
    frames: Vec<Bytes>,
    payload_check: PayloadCheck,
    headers: &HeaderMap,
    payload: &[u8],
) -> ObjectBody {
    let mut body = body_of(frames, payload_check, headers);
    let got = read_all(&mut body).await.unwrap();
    assert_eq!(got, payload);
    assert_eq!(body.md5(), <[u8; 16]>::from(Md5::digest(payload)));
    assert!(body.chunk().await.unwrap().is_none(), "the end is sticky");
    body
}

async fn expect_error(mut body: ObjectBody, code: S3ErrorCode) {
    let err = read_all(&mut body).await.unwrap_err();
    assert_eq!(err.code, code, "{err}");
    let again = body.chunk().await.unwrap_err();
    assert_eq!(again.code, code, "a failed body stays failed");
}

fn aws_headers() -> HeaderMap {
    headers(&[("x-amz-decoded-content-length", "66560")])
}

fn aws_trailer_headers() -> HeaderMap {
    headers(&[
        ("x-amz-decoded-content-length", "66560"),
        ("x-amz-trailer", "x-amz-checksum-crc32c"),
    ])
}
