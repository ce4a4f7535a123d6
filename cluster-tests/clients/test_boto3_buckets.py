"""boto3: bucket create, head, list and delete, with the errors AWS gives."""

from __future__ import annotations

from s3_helpers import expect_s3_error, response_status, unique_bucket_name


def test_create_head_list_delete_bucket(s3):
    name = unique_bucket_name("lifecycle")
    created = s3.create_bucket(Bucket=name)
    assert response_status(created) == 200
    assert created["Location"] == f"/{name}"

    assert response_status(s3.head_bucket(Bucket=name)) == 200
    listed = s3.list_buckets()
    names = [entry["Name"] for entry in listed["Buckets"]]
    assert name in names
    entry = next(entry for entry in listed["Buckets"] if entry["Name"] == name)
    assert entry["CreationDate"] is not None
    assert listed["Owner"]["ID"]

    location = s3.get_bucket_location(Bucket=name)
    assert location["LocationConstraint"] in (None, "us-east-1")

    assert response_status(s3.delete_bucket(Bucket=name)) == 204
    assert name not in [entry["Name"] for entry in s3.list_buckets()["Buckets"]]
    with expect_s3_error("404", 404):
        s3.head_bucket(Bucket=name)


def test_create_existing_bucket_is_already_owned_by_you(s3, bucket):
    with expect_s3_error("BucketAlreadyOwnedByYou", 409):
        s3.create_bucket(Bucket=bucket)


def test_delete_non_empty_bucket_fails(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep-me", Body=b"x")
    with expect_s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="keep-me")["Body"].read() == b"x"


def test_missing_bucket_errors(s3):
    name = unique_bucket_name("never-created")
    with expect_s3_error("NoSuchBucket", 404):
        s3.delete_bucket(Bucket=name)
    with expect_s3_error("NoSuchBucket", 404):
        s3.list_objects_v2(Bucket=name)
    with expect_s3_error("NoSuchBucket", 404):
        s3.put_object(Bucket=name, Key="k", Body=b"data")
    with expect_s3_error("NoSuchBucket", 404):
        s3.get_object(Bucket=name, Key="k")
    with expect_s3_error("404", 404):
        s3.head_bucket(Bucket=name)


def test_invalid_bucket_names_are_rejected(s3):
    for name in ("ab", "Upper-Case-Name", "bad_underscore", "-leading-dash", "a" * 64):
        with expect_s3_error("InvalidBucketName", 400):
            s3.create_bucket(Bucket=name)


def test_bucket_name_is_reusable_after_delete(s3):
    name = unique_bucket_name("reuse")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="old", Body=b"old")
    s3.delete_object(Bucket=name, Key="old")
    s3.delete_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)
    try:
        assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    finally:
        s3.delete_bucket(Bucket=name)
