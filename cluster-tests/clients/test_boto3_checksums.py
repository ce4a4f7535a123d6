"""Integrity checks: Content-MD5, x-amz-checksum-*, aws-chunked bodies, x-amz-content-sha256."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import pytest
from botocore.httpchecksum import Crc32Checksum, Sha1Checksum, Sha256Checksum

from s3_helpers import MIB, etag_of, expect_s3_error, response_headers
from s3_raw import Crc32cChecksum, content_md5, crc32c_base64


def expected_checksum(algorithm: str, data: bytes) -> str:
    """The base64 x-amz-checksum-* value of `data`, computed without botocore."""
    if algorithm == "CRC32":
        raw = zlib.crc32(data).to_bytes(4, "big")
        return base64.b64encode(raw).decode()
    if algorithm == "CRC32C":
        return crc32c_base64(data)
    return base64.b64encode(hashlib.new(algorithm.lower(), data).digest()).decode()


def test_crc32c_helper_matches_the_standard_check_value():
    assert crc32c_base64(b"123456789") == base64.b64encode(bytes.fromhex("e3069283")).decode()


def test_content_md5(s3, bucket):
    data = b"integrity matters"
    s3.put_object(Bucket=bucket, Key="good", Body=data, ContentMD5=content_md5(data))
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == data
    with expect_s3_error("BadDigest", 400):
        s3.put_object(
            Bucket=bucket, Key="bad", Body=data, ContentMD5=content_md5(b"something else")
        )
    with expect_s3_error("InvalidDigest", 400):
        s3.put_object(Bucket=bucket, Key="bad", Body=data, ContentMD5="not-base64-md5!")
    with expect_s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="bad")


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA1", "SHA256"])
def test_put_object_with_checksum_algorithm(s3, bucket, algorithm):
    data = os.urandom(MIB + 123)
    put = s3.put_object(Bucket=bucket, Key="sum", Body=data, ChecksumAlgorithm=algorithm)
    assert put["ETag"] == etag_of(data)
    got = s3.get_object(Bucket=bucket, Key="sum", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert "aws-chunked" not in response_headers(got).get("content-encoding", "")
    echoed = got.get(f"Checksum{algorithm}")
    if echoed is not None:
        assert echoed == expected_checksum(algorithm, data)


def test_put_object_with_precomputed_crc32c(s3, bucket):
    data = os.urandom(100_000)
    s3.put_object(Bucket=bucket, Key="crc32c", Body=data, ChecksumCRC32C=crc32c_base64(data))
    assert s3.get_object(Bucket=bucket, Key="crc32c")["Body"].read() == data


def test_put_object_with_wrong_checksum_is_bad_digest(s3, bucket):
    with expect_s3_error("BadDigest", 400):
        s3.put_object(Bucket=bucket, Key="wrong", Body=b"data", ChecksumCRC32="AAAAAA==")
    with expect_s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="wrong")


TRAILER_ALGORITHMS = {
    "CRC32": (Crc32Checksum, "x-amz-checksum-crc32"),
    "CRC32C": (Crc32cChecksum, "x-amz-checksum-crc32c"),
    "SHA1": (Sha1Checksum, "x-amz-checksum-sha1"),
    "SHA256": (Sha256Checksum, "x-amz-checksum-sha256"),
}


@pytest.mark.parametrize("algorithm", list(TRAILER_ALGORITHMS))
def test_aws_chunked_body_with_checksum_trailer(s3, raw_s3, bucket, algorithm):
    # What boto3 sends over TLS: botocore's own AwsChunkedWrapper encodes the body.
    data = os.urandom(200_000)
    checksum_cls, header = TRAILER_ALGORITHMS[algorithm]
    put = raw_s3.put_aws_chunked_with_trailer(f"/{bucket}/chunked", data, checksum_cls, header)
    assert put.status == 200, put.body
    assert put.headers["etag"] == etag_of(data)
    got = s3.get_object(Bucket=bucket, Key="chunked")
    assert got["Body"].read() == data
    assert got["ContentLength"] == len(data)
    assert "content-encoding" not in response_headers(got)


def test_aws_chunked_keeps_the_other_content_encoding(s3, raw_s3, bucket):
    data = os.urandom(70_000)
    put = raw_s3.put_aws_chunked_with_trailer(
        f"/{bucket}/gz",
        data,
        Crc32Checksum,
        "x-amz-checksum-crc32",
        extra_headers={"Content-Encoding": "gzip", "Content-Type": "application/x-tar"},
    )
    assert put.status == 200, put.body
    head = s3.head_object(Bucket=bucket, Key="gz")
    assert response_headers(head)["content-encoding"] == "gzip"
    assert head["ContentType"] == "application/x-tar"
    assert s3.get_object(Bucket=bucket, Key="gz")["Body"].read() == data


class _WrongCrc32(Crc32Checksum):
    def digest(self):
        return b"\x00\x00\x00\x00"


def test_aws_chunked_with_wrong_trailer_checksum_is_bad_digest(s3, raw_s3, bucket):
    put = raw_s3.put_aws_chunked_with_trailer(
        f"/{bucket}/bad-trailer", os.urandom(10_000), _WrongCrc32, "x-amz-checksum-crc32"
    )
    assert (put.status, put.error_code()) == (400, "BadDigest"), put.body
    with expect_s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="bad-trailer")


def test_signed_aws_chunked_upload(s3, raw_s3, bucket):
    chunks = [os.urandom(64 * 1024), os.urandom(64 * 1024), os.urandom(1000)]
    put = raw_s3.put_signed_chunks(f"/{bucket}/signed-chunks", chunks)
    assert put.status == 200, put.body
    got = s3.get_object(Bucket=bucket, Key="signed-chunks")
    assert got["Body"].read() == b"".join(chunks)
    assert "content-encoding" not in response_headers(got)


def test_signed_aws_chunked_with_tampered_chunk_is_rejected(s3, raw_s3, bucket):
    chunks = [os.urandom(64 * 1024), os.urandom(64 * 1024), os.urandom(1000)]
    put = raw_s3.put_signed_chunks(f"/{bucket}/tampered", chunks, tamper_chunk=1)
    assert (put.status, put.error_code()) == (403, "SignatureDoesNotMatch"), put.body
    with expect_s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="tampered")


def test_content_sha256_mismatch(s3, raw_s3, bucket):
    wrong_hash = hashlib.sha256(b"a different body").hexdigest()
    put = raw_s3.send("PUT", f"/{bucket}/mismatch", body=b"the real body", payload_hash=wrong_hash)
    assert (put.status, put.error_code()) == (400, "XAmzContentSHA256Mismatch"), put.body
    with expect_s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="mismatch")
