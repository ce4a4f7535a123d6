"""boto3: object put/get/head/delete, metadata, standard headers, ranges, conditions, keys."""

from __future__ import annotations

import email.header
import gzip
import io
import os
from datetime import UTC, datetime, timedelta

import pytest

from s3_helpers import MIB, etag_of, expect_s3_error, response_headers, response_status

SIZES = [0, 1, 5 * 1024, 3 * MIB]


@pytest.mark.parametrize("size", SIZES, ids=["0B", "1B", "5KiB", "3MiB"])
def test_put_get_head_delete_object(s3, bucket, size):
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key="object.bin", Body=data)
    assert put["ETag"] == etag_of(data)

    head = s3.head_object(Bucket=bucket, Key="object.bin")
    assert head["ContentLength"] == size
    assert head["ETag"] == etag_of(data)
    age = datetime.now(UTC) - head["LastModified"]
    assert timedelta(seconds=-5) < age < timedelta(minutes=5), head["LastModified"]

    got = s3.get_object(Bucket=bucket, Key="object.bin")
    assert got["ContentLength"] == size
    assert got["ETag"] == etag_of(data)
    assert got["Body"].read() == data

    assert response_status(s3.delete_object(Bucket=bucket, Key="object.bin")) == 204
    with expect_s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="object.bin")
    with expect_s3_error("404", 404):
        s3.head_object(Bucket=bucket, Key="object.bin")
    # Deleting what is not there succeeds, as in AWS.
    assert response_status(s3.delete_object(Bucket=bucket, Key="object.bin")) == 204


def test_overwrite_replaces_content_and_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first version", Metadata={"old": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"second", Metadata={"new": "2"})
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second"
    assert got["Metadata"] == {"new": "2"}
    assert got["ETag"] == etag_of(b"second")


def test_user_metadata_round_trip(s3, bucket):
    sent = {"color": "blue", "Mixed-Case": "Value With  Spaces", "symbols": "a=b;c,d:e/f?g"}
    s3.put_object(Bucket=bucket, Key="meta", Body=b"m", Metadata=sent)
    expected = {"color": "blue", "mixed-case": "Value With  Spaces", "symbols": "a=b;c,d:e/f?g"}
    assert s3.head_object(Bucket=bucket, Key="meta")["Metadata"] == expected
    assert s3.get_object(Bucket=bucket, Key="meta")["Metadata"] == expected


def decode_metadata_value(raw: bytes) -> str:
    """A metadata value as S3 may return it: raw UTF-8, or RFC 2047 encoded as AWS does."""
    text = raw.decode("latin-1")
    if text.startswith("=?"):
        return "".join(
            part.decode(charset or "ascii") if isinstance(part, bytes) else part
            for part, charset in email.header.decode_header(text)
        )
    return raw.decode("utf-8")


def test_utf8_metadata_round_trip(s3, raw_s3, bucket):
    # boto3 refuses non-ASCII metadata, so this PUT is hand-built (and signed by botocore).
    value = "héllo wörld ✓ 漢字"
    put = raw_s3.send("PUT", f"/{bucket}/utf8", {"x-amz-meta-greeting": value}, b"payload")
    assert put.status == 200, put.body
    for method in ("HEAD", "GET"):
        got = raw_s3.send(method, f"/{bucket}/utf8")
        assert got.status == 200, got.body
        assert decode_metadata_value(got.header_bytes("x-amz-meta-greeting")) == value


def test_standard_headers_round_trip(s3, bucket):
    text = b"hello mucura " * 100
    s3.put_object(
        Bucket=bucket,
        Key="doc.txt.gz",
        Body=gzip.compress(text),
        ContentType="text/plain; charset=utf-8",
        ContentDisposition='attachment; filename="report.txt"',
        ContentEncoding="gzip",
        ContentLanguage="de-CH",
        CacheControl="max-age=3600, public",
        Expires=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    head = s3.head_object(Bucket=bucket, Key="doc.txt.gz")
    got = s3.get_object(Bucket=bucket, Key="doc.txt.gz")
    for response in (head, got):
        headers = response_headers(response)
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert headers["content-disposition"] == 'attachment; filename="report.txt"'
        assert headers["content-encoding"] == "gzip"
        assert headers["content-language"] == "de-CH"
        assert headers["cache-control"] == "max-age=3600, public"
        assert headers["expires"] == "Wed, 02 Jan 2030 03:04:05 GMT"
    assert gzip.decompress(got["Body"].read()) == text


def test_response_header_overrides_on_get(s3, bucket):
    s3.put_object(Bucket=bucket, Key="plain", Body=b"body", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="plain",
        ResponseContentType="application/x-override",
        ResponseContentDisposition='attachment; filename="o.bin"',
        ResponseContentLanguage="fr",
        ResponseCacheControl="no-store",
        ResponseContentEncoding="identity",
        ResponseExpires=datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC),
    )
    headers = response_headers(got)
    assert headers["content-type"] == "application/x-override"
    assert headers["content-disposition"] == 'attachment; filename="o.bin"'
    assert headers["content-language"] == "fr"
    assert headers["cache-control"] == "no-store"
    assert headers["content-encoding"] == "identity"
    assert headers["expires"] == "Tue, 06 May 2031 07:08:09 GMT"
    assert got["Body"].read() == b"body"
    # The stored object is unchanged.
    assert s3.head_object(Bucket=bucket, Key="plain")["ContentType"] == "text/plain"


RANGE_DATA = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable enough


@pytest.mark.parametrize(
    "spec,first,last",
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-199", 100, 199),
        ("bytes=-10", 10230, 10239),
        ("bytes=5-", 5, 10239),
        ("bytes=10000-99999", 10000, 10239),
        ("bytes=10239-10239", 10239, 10239),
    ],
)
def test_range_read(s3, bucket, spec, first, last):
    s3.put_object(Bucket=bucket, Key="ranged", Body=RANGE_DATA)
    got = s3.get_object(Bucket=bucket, Key="ranged", Range=spec)
    assert response_status(got) == 206
    assert got["ContentRange"] == f"bytes {first}-{last}/{len(RANGE_DATA)}"
    assert got["ContentLength"] == last - first + 1
    assert got["Body"].read() == RANGE_DATA[first : last + 1]


def test_unsatisfiable_range_is_invalid_range(s3, bucket):
    s3.put_object(Bucket=bucket, Key="ranged", Body=RANGE_DATA)
    with expect_s3_error("InvalidRange", 416):
        s3.get_object(Bucket=bucket, Key="ranged", Range="bytes=10240-")
    with expect_s3_error("InvalidRange", 416):
        s3.get_object(Bucket=bucket, Key="ranged", Range="bytes=20000-20010")


def test_conditional_get_and_head(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cond", Body=b"conditional")["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="cond")["LastModified"]
    day_before = modified - timedelta(days=1)
    other_etag = '"0123456789abcdef0123456789abcdef"'

    def get(**conditions):
        return s3.get_object(Bucket=bucket, Key="cond", **conditions)

    assert get(IfMatch=etag)["Body"].read() == b"conditional"
    assert response_status(get(IfNoneMatch=other_etag)) == 200
    assert response_status(get(IfModifiedSince=day_before)) == 200
    assert response_status(get(IfUnmodifiedSince=modified)) == 200
    with expect_s3_error("PreconditionFailed", 412):
        get(IfMatch=other_etag)
    with expect_s3_error("304", 304):
        get(IfNoneMatch=etag)
    with expect_s3_error("304", 304):
        get(IfModifiedSince=modified)
    with expect_s3_error("PreconditionFailed", 412):
        get(IfUnmodifiedSince=day_before)

    # AWS's documented precedence: If-Match wins over If-Unmodified-Since, and
    # If-None-Match over If-Modified-Since.
    assert response_status(get(IfMatch=etag, IfUnmodifiedSince=day_before)) == 200
    with expect_s3_error("304", 304):
        get(IfNoneMatch=etag, IfModifiedSince=day_before)

    with expect_s3_error("304", 304):
        s3.head_object(Bucket=bucket, Key="cond", IfNoneMatch=etag)
    with expect_s3_error("412", 412):
        s3.head_object(Bucket=bucket, Key="cond", IfMatch=other_etag)


SPECIAL_KEYS = [
    "ünïcödé/ключ/漢字 🎉.txt",
    "../x",
    "a//b",
    "dir/",
    "with space",
    "plus+sign",
    "percent%20literal",
    "question?mark",
    "hash#tag",
    "amp&er=sand;semi",
    "tilde~and'quote",
    "k" * 1024,
    "é" * 512,  # 1024 bytes of UTF-8
]


def test_special_keys_round_trip(s3, bucket):
    for key in SPECIAL_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for key in SPECIAL_KEYS:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode(), key
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(key.encode())
    listed = s3.list_objects_v2(Bucket=bucket)
    expected = sorted(SPECIAL_KEYS, key=lambda key: key.encode())
    assert [item["Key"] for item in listed["Contents"]] == expected
    for key in SPECIAL_KEYS:
        s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_key_longer_than_1024_bytes_is_rejected(s3, bucket):
    with expect_s3_error("KeyTooLongError", 400):
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    with expect_s3_error("KeyTooLongError", 400):
        s3.put_object(Bucket=bucket, Key="é" * 513, Body=b"x")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_empty_upload_does_not_poison_the_next_request_on_the_connection(mucura, bucket):
    """botocore sends `Expect: 100-continue` even with an empty body; answered without a 100, it
    misparses the next response on that pooled connection and stalls until a timeout
    (boto/botocore#3755). The server closes such connections, so the next PUT just works."""
    from s3_helpers import make_s3_client

    s3 = make_s3_client(
        mucura.endpoint,
        mucura.access_key,
        mucura.secret_key,
        max_pool_connections=1,
        read_timeout=5,
    )
    for round_number in range(3):
        s3.upload_fileobj(io.BytesIO(b""), bucket, f"empty-{round_number}")
        data = os.urandom(20_000)
        s3.upload_fileobj(io.BytesIO(data), bucket, f"full-{round_number}")
        assert s3.get_object(Bucket=bucket, Key=f"full-{round_number}")["Body"].read() == data
