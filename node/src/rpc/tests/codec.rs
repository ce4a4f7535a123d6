//! The frame codec on its own, without sockets.

use crate::rpc::codec::{
    decode_body, encode_frame, read_frame, FrameError, HEADER_LEN, MAX_BODY, MAX_FRAME,
    WIRE_VERSION,
};
use crate::rpc::{Payload, Request};

#[tokio::test]
async fn a_frame_decodes_to_what_was_encoded() {
    let request = Request::PutRecord {
        table: "objects".to_string(),
        key: Payload::from(&b"bucket/key"[..]),
        value: Payload::new(vec![1, 2, 3]),
    };
    let frame = encode_frame(9, &request).unwrap();
    assert_eq!(frame[4], WIRE_VERSION);
    let declared = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert_eq!(declared, frame.len() - 4);

    let mut reader = &frame[..];
    let read = read_frame(&mut reader).await.unwrap().unwrap();
    assert_eq!(read.id, 9);
    assert_eq!(decode_body::<Request>(&read.body).unwrap(), request);
    assert!(
        read_frame(&mut reader).await.unwrap().is_none(),
        "expected clean end"
    );
}

#[tokio::test]
async fn an_oversized_length_prefix_is_rejected_before_reading_the_body() {
    // Only the prefix is there: reading on would fail with end-of-file instead.
    let prefix = ((MAX_FRAME + 1) as u32).to_be_bytes();
    let mut reader = &prefix[..];
    let err = read_frame(&mut reader).await.unwrap_err();
    assert!(
        matches!(err, FrameError::TooLarge { size, .. } if size == MAX_FRAME as u64 + 1),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_versions_and_short_frames_are_rejected() {
    let mut frame = encode_frame(1, &Request::Ping).unwrap();
    frame[4] = WIRE_VERSION + 1;
    let err = read_frame(&mut &frame[..]).await.unwrap_err();
    assert!(matches!(err, FrameError::UnknownVersion { .. }), "{err:?}");

    let short = ((HEADER_LEN - 1) as u32).to_be_bytes();
    let err = read_frame(&mut &short[..]).await.unwrap_err();
    assert!(matches!(err, FrameError::Truncated { .. }), "{err:?}");
}

#[test]
fn an_oversized_message_is_refused_by_the_encoder() {
    let body = Payload::new(vec![0; MAX_BODY + 1]);
    let err = encode_frame(1, &body).unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { .. }), "{err:?}");
    let block = Payload::new(vec![0; 1024 * 1024]);
    assert!(encode_frame(1, &block).is_ok(), "a 1 MiB block must fit");
}

#[test]
fn trailing_bytes_and_garbage_bodies_are_rejected() {
    let frame = encode_frame(1, &Request::Ping).unwrap();
    let mut body = frame[4 + HEADER_LEN..].to_vec();
    body.push(0);
    assert!(decode_body::<Request>(&body).is_err());
    assert!(decode_body::<Request>(&[0xff; 12]).is_err());
}
