"""Authentication, presigned URLs and protocol errors: what a wrong request gets back."""

from __future__ import annotations

import os
import time
import urllib.parse

from botocore.exceptions import ClientError

from s3_helpers import curl, expect_s3_error, make_s3_client
from s3_raw import content_md5


def test_presigned_get_with_curl(s3, bucket):
    data = os.urandom(300_000)
    s3.put_object(Bucket=bucket, Key="shared/ü file.bin", Body=data)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "shared/ü file.bin"}, ExpiresIn=300
    )
    assert "X-Amz-Signature=" in url
    status, body = curl([url])
    assert status == 200, body[:500]
    assert body == data

    status, body = curl(["-r", "10-19", url])
    assert status == 206
    assert body == data[10:20]


def test_presigned_put_with_curl(s3, bucket, tmp_path):
    data = os.urandom(150_000)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(data)
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "via-presigned-put"}, ExpiresIn=300
    )
    status, body = curl(["-T", str(upload), url])
    assert status == 200, body[:500]
    assert s3.get_object(Bucket=bucket, Key="via-presigned-put")["Body"].read() == data


def test_expired_presigned_url_is_access_denied(s3, bucket):
    s3.put_object(Bucket=bucket, Key="short-lived", Body=b"gone soon")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "short-lived"}, ExpiresIn=1
    )
    time.sleep(2)
    status, body = curl([url])
    assert status == 403, body
    assert b"<Code>AccessDenied</Code>" in body, body


def test_tampered_presigned_url_is_rejected(s3, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret")
    s3.put_object(Bucket=bucket, Key="private2", Body=b"other secret")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "private"}, ExpiresIn=300
    )
    status, body = curl([url.replace("/private?", "/private2?")])
    assert status == 403, body
    assert b"<Code>SignatureDoesNotMatch</Code>" in body, body


def test_wrong_secret_is_signature_does_not_match(mucura, bucket):
    wrong = make_s3_client(mucura.endpoint, mucura.access_key, "W" * 40)
    with expect_s3_error("SignatureDoesNotMatch", 403):
        wrong.list_buckets()
    with expect_s3_error("SignatureDoesNotMatch", 403):
        wrong.put_object(Bucket=bucket, Key="nope", Body=b"x")


def test_unknown_access_key_is_invalid_access_key_id(mucura, bucket):
    stranger = make_s3_client(mucura.endpoint, "AKIANOSUCHKEY0000000", "S" * 40)
    with expect_s3_error("InvalidAccessKeyId", 403):
        stranger.list_buckets()
    with expect_s3_error("InvalidAccessKeyId", 403):
        stranger.get_object(Bucket=bucket, Key="k")


def test_anonymous_request_is_access_denied(s3, raw_s3, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret")
    for path in (f"/{bucket}/private", f"/{bucket}", "/"):
        answer = raw_s3.send("GET", path, sign=False)
        assert (answer.status, answer.error_code()) == (403, "AccessDenied"), (path, answer.body)
        assert answer.headers.get("x-amz-request-id"), answer.headers


def test_error_body_and_header_carry_the_same_request_id(raw_s3, bucket):
    answer = raw_s3.send("GET", f"/{bucket}/missing-key")
    assert (answer.status, answer.error_code()) == (404, "NoSuchKey"), answer.body
    request_id = answer.headers["x-amz-request-id"]
    assert request_id
    assert f"<RequestId>{request_id}</RequestId>".encode() in answer.body
    assert b"<Key>missing-key</Key>" in answer.body
    assert answer.headers["content-type"].startswith("application/xml")


def test_request_ids_are_unique(s3, bucket):
    ids = set()
    for _ in range(5):
        try:
            s3.get_object(Bucket=bucket, Key="absent")
        except ClientError as error:
            ids.add(error.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"])
    assert len(ids) == 5
    ok = s3.list_objects_v2(Bucket=bucket)
    assert ok["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")


def test_unsupported_subresource_is_not_implemented(s3, bucket):
    with expect_s3_error("NotImplemented", 501):
        s3.put_bucket_website(
            Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}}
        )


def test_malformed_delete_body_is_malformed_xml(s3, raw_s3, bucket):
    s3.put_object(Bucket=bucket, Key="survives", Body=b"s")
    for body in (b"this is not xml <", b"<Delete><Object><Key>survives</Key></Object>"):
        answer = raw_s3.send("POST", f"/{bucket}?delete", {"Content-MD5": content_md5(body)}, body)
        assert (answer.status, answer.error_code()) == (400, "MalformedXML"), (body, answer.body)
        assert answer.headers.get("x-amz-request-id")
    assert s3.get_object(Bucket=bucket, Key="survives")["Body"].read() == b"s"


def test_malformed_complete_multipart_body_is_malformed_xml(s3, raw_s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    query = urllib.parse.urlencode({"uploadId": upload_id})
    answer = raw_s3.send("POST", f"/{bucket}/mp?{query}", body=b"<CompleteMultipartUpload><Part>")
    assert (answer.status, answer.error_code()) == (400, "MalformedXML"), answer.body
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id)
