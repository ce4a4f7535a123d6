"""boto3: copy_object (COPY, REPLACE, conditions) and delete_objects batches."""

from __future__ import annotations

import os

from s3_helpers import MIB, etag_of, expect_s3_error, response_status

SOURCE_KEY = "source dir/ünï src+1.bin"


def put_source(s3, bucket, data: bytes) -> str:
    return s3.put_object(
        Bucket=bucket,
        Key=SOURCE_KEY,
        Body=data,
        ContentType="application/x-source",
        Metadata={"origin": "source", "n": "1"},
    )["ETag"]


def test_copy_object_keeps_metadata_with_copy_directive(s3, bucket):
    data = os.urandom(2 * MIB + 17)
    etag = put_source(s3, bucket, data)
    copied = s3.copy_object(
        Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": SOURCE_KEY}
    )
    assert copied["CopyObjectResult"]["ETag"] == etag == etag_of(data)
    head = s3.head_object(Bucket=bucket, Key="copy")
    assert head["ContentType"] == "application/x-source"
    assert head["Metadata"] == {"origin": "source", "n": "1"}
    assert head["ContentLength"] == len(data)
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == data


def test_copy_object_between_buckets(s3, bucket):
    other = f"{bucket}-dst"[:63]
    s3.create_bucket(Bucket=other)
    try:
        data = b"cross bucket copy"
        put_source(s3, bucket, data)
        s3.copy_object(Bucket=other, Key="x", CopySource={"Bucket": bucket, "Key": SOURCE_KEY})
        assert s3.get_object(Bucket=other, Key="x")["Body"].read() == data
    finally:
        s3.delete_object(Bucket=other, Key="x")
        s3.delete_bucket(Bucket=other)


def test_copy_object_replace_directive(s3, bucket):
    data = b"replace my metadata"
    put_source(s3, bucket, data)
    s3.copy_object(
        Bucket=bucket,
        Key="replaced",
        CopySource={"Bucket": bucket, "Key": SOURCE_KEY},
        MetadataDirective="REPLACE",
        Metadata={"fresh": "yes"},
        ContentType="text/x-new",
    )
    head = s3.head_object(Bucket=bucket, Key="replaced")
    assert head["Metadata"] == {"fresh": "yes"}
    assert head["ContentType"] == "text/x-new"
    assert s3.get_object(Bucket=bucket, Key="replaced")["Body"].read() == data
    # The source is untouched.
    assert s3.head_object(Bucket=bucket, Key=SOURCE_KEY)["Metadata"] == {
        "origin": "source",
        "n": "1",
    }


def test_copy_object_onto_itself_needs_replace(s3, bucket):
    put_source(s3, bucket, b"self")
    with expect_s3_error("InvalidRequest", 400):
        s3.copy_object(
            Bucket=bucket, Key=SOURCE_KEY, CopySource={"Bucket": bucket, "Key": SOURCE_KEY}
        )
    s3.copy_object(
        Bucket=bucket,
        Key=SOURCE_KEY,
        CopySource={"Bucket": bucket, "Key": SOURCE_KEY},
        MetadataDirective="REPLACE",
        Metadata={"updated": "in-place"},
    )
    head = s3.head_object(Bucket=bucket, Key=SOURCE_KEY)
    assert head["Metadata"] == {"updated": "in-place"}
    assert s3.get_object(Bucket=bucket, Key=SOURCE_KEY)["Body"].read() == b"self"


def test_copy_object_conditions(s3, bucket):
    etag = put_source(s3, bucket, b"conditional copy")
    source = {"Bucket": bucket, "Key": SOURCE_KEY}
    with expect_s3_error("PreconditionFailed", 412):
        s3.copy_object(
            Bucket=bucket,
            Key="c1",
            CopySource=source,
            CopySourceIfMatch='"00000000000000000000000000000000"',
        )
    with expect_s3_error("PreconditionFailed", 412):
        s3.copy_object(Bucket=bucket, Key="c2", CopySource=source, CopySourceIfNoneMatch=etag)
    with expect_s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="c1")
    copied = s3.copy_object(Bucket=bucket, Key="c3", CopySource=source, CopySourceIfMatch=etag)
    assert copied["CopyObjectResult"]["ETag"] == etag


def test_copy_from_missing_source(s3, bucket):
    with expect_s3_error("NoSuchKey", 404):
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "absent"})


def test_delete_objects_verbose_reports_every_key(s3, bucket):
    keys = [f"batch/{index:03d}" for index in range(50)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    request = [{"Key": key} for key in keys] + [{"Key": "batch/never-existed"}]
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": request, "Quiet": False})
    assert response_status(result) == 200
    assert result.get("Errors", []) == []
    deleted = sorted(entry["Key"] for entry in result["Deleted"])
    assert deleted == sorted(keys + ["batch/never-existed"])
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_quiet_reports_nothing(s3, bucket):
    keys = [f"quiet/{index:03d} ü+x" for index in range(50)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"q")
    s3.put_object(Bucket=bucket, Key="survivor", Body=b"s")
    request = [{"Key": key} for key in keys] + [{"Key": "quiet/missing"}]
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": request, "Quiet": True})
    assert response_status(result) == 200
    assert result.get("Deleted", []) == []
    assert result.get("Errors", []) == []
    remaining = s3.list_objects_v2(Bucket=bucket)
    assert [item["Key"] for item in remaining["Contents"]] == ["survivor"]
