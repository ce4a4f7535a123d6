"""Browser POST uploads (POST Object): forms made by boto3's `generate_presigned_post`, sent as
a browser would (`multipart/form-data` with the file last) with http.client.

Refusals checked: an expired policy, a key outside the policy's `starts-with`, a file larger
than its `content-length-range`, a tampered signature, a field no condition names, a signer
who may not write the bucket, an anonymous form to a private bucket, a body that is not a form.
"""

from __future__ import annotations

import hashlib
import http.client
import secrets
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from mucura_server import MucuraServer
from s3_helpers import MIB, make_s3_client
from s3_raw import RawResponse, RawS3
from test_sharing import client_of, make_user, wait_for_key


def form_body(fields: dict[str, str], file_name: str, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with `fields` first and the file last, and its Content-Type."""
    boundary = "----mucura" + secrets.token_hex(8)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_form(
    raw_s3: RawS3, post: dict, content: bytes, file_name: str = "upload.bin", extra=None
) -> RawResponse:
    """Sends a presigned POST (boto3's `{"url", "fields"}`) with `content` as the file."""
    fields = dict(post["fields"])
    fields.update(extra or {})
    body, content_type = form_body(fields, file_name, content)
    path = urllib.parse.urlsplit(post["url"]).path
    return raw_s3.send_prepared("POST", path, {"Content-Type": content_type}, body)


def test_signed_form_uploads_with_fields_and_answers_201(s3, raw_s3, bucket):
    content = b"hello from a browser form\n"
    post = s3.generate_presigned_post(
        Bucket=bucket,
        Key="uploads/${filename}",
        Fields={
            "Content-Type": "text/plain",
            "x-amz-meta-note": "from-form",
            "success_action_status": "201",
        },
        Conditions=[
            {"Content-Type": "text/plain"},
            ["starts-with", "$x-amz-meta-note", "from-"],
            {"success_action_status": "201"},
            ["content-length-range", 1, MIB],
        ],
        ExpiresIn=600,
    )
    answer = post_form(raw_s3, post, content, file_name="note.txt")
    assert answer.status == 201, answer.body
    etag = f'"{hashlib.md5(content).hexdigest()}"'
    assert answer.headers["etag"] == etag
    document = ET.fromstring(answer.body)
    assert document.tag == "PostResponse"
    assert document.findtext("Bucket") == bucket
    assert document.findtext("Key") == "uploads/note.txt"
    assert document.findtext("ETag") == etag

    stored = s3.get_object(Bucket=bucket, Key="uploads/note.txt")
    assert stored["Body"].read() == content
    assert stored["ContentType"] == "text/plain"
    assert stored["Metadata"] == {"note": "from-form"}


def test_large_file_streams_and_default_status_is_204(s3, raw_s3, bucket):
    content = secrets.token_bytes(12 * MIB + 123)
    post = s3.generate_presigned_post(Bucket=bucket, Key="big.bin", ExpiresIn=600)
    answer = post_form(raw_s3, post, content)
    assert answer.status == 204, answer.body
    assert answer.headers["etag"] == f'"{hashlib.md5(content).hexdigest()}"'
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(content)


def test_redirect_after_upload(s3, raw_s3, bucket):
    redirect = "https://app.example.com/done"
    post = s3.generate_presigned_post(
        Bucket=bucket,
        Key="r.txt",
        Fields={"success_action_redirect": redirect},
        Conditions=[{"success_action_redirect": redirect}],
    )
    answer = post_form(raw_s3, post, b"x")
    assert answer.status == 303, answer.body
    location = urllib.parse.urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
    query = urllib.parse.parse_qs(location.query)
    assert query["bucket"] == [bucket] and query["key"] == ["r.txt"]
    assert query["etag"] == [f'"{hashlib.md5(b"x").hexdigest()}"']


def assert_refused(answer: RawResponse, status: int, code: str, says: str = "") -> None:
    assert (answer.status, answer.error_code()) == (status, code), answer.body
    assert says.encode() in answer.body, answer.body


def test_policy_refusals(s3, raw_s3, bucket):
    expired = s3.generate_presigned_post(Bucket=bucket, Key="k", ExpiresIn=-60)
    assert_refused(post_form(raw_s3, expired, b"x"), 403, "AccessDenied", "Policy expired")

    prefixed = s3.generate_presigned_post(Bucket=bucket, Key="inbox/${filename}")
    outside = post_form(raw_s3, prefixed, b"x", extra={"key": "elsewhere/evil"})
    assert_refused(outside, 403, "AccessDenied", "Policy Condition failed")
    assert "starts-with" in outside.body.decode()

    small = s3.generate_presigned_post(
        Bucket=bucket, Key="small", Conditions=[["content-length-range", 2, 10]]
    )
    assert_refused(post_form(raw_s3, small, b"y" * 100), 400, "EntityTooLarge")
    assert_refused(post_form(raw_s3, small, b"y"), 400, "EntityTooSmall")

    plain = s3.generate_presigned_post(Bucket=bucket, Key="plain")
    extra = post_form(raw_s3, plain, b"x", extra={"acl": "public-read"})
    assert_refused(extra, 403, "AccessDenied", "Extra input fields: acl")

    signature = plain["fields"]["x-amz-signature"]
    tampered = "0" * len(signature) if signature[0] != "0" else "1" * len(signature)
    forged = post_form(raw_s3, plain, b"x", extra={"x-amz-signature": tampered})
    assert_refused(forged, 403, "SignatureDoesNotMatch")

    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert listed == [], "no refused upload may leave an object behind"


def test_who_may_post(mucura_binary, mucura, s3, raw_s3, bucket):
    user = make_user(mucura_binary, mucura, "dave")
    dave = client_of(mucura, user)
    wait_for_key(dave)
    post = dave.generate_presigned_post(Bucket=bucket, Key="from-dave")
    assert_refused(post_form(raw_s3, post, b"x"), 403, "AccessDenied")

    anonymous = {"url": f"{mucura.endpoint}/{bucket}", "fields": {"key": "anon.txt"}}
    assert_refused(post_form(raw_s3, anonymous, b"x"), 403, "AccessDenied")
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    answer = post_form(raw_s3, anonymous, b"anonymous")
    assert answer.status == 204, answer.body
    assert s3.get_object(Bucket=bucket, Key="anon.txt")["Body"].read() == b"anonymous"


def test_malformed_posts(raw_s3, bucket):
    not_a_form = raw_s3.send_prepared(
        "POST", f"/{bucket}", {"Content-Type": "text/plain"}, b"key=x"
    )
    assert_refused(not_a_form, 412, "PreconditionFailed")
    body, content_type = form_body({"key": "k"}, "f", b"x")
    without_file = body.replace(b'name="file"', b'name="other"')
    answer = raw_s3.send_prepared("POST", f"/{bucket}", {"Content-Type": content_type}, without_file)
    assert_refused(answer, 400, "IncorrectNumberOfFilesInPostRequest")


@pytest.mark.parametrize("origin", ["https://app.example.com"])
def test_browser_upload_gets_cors_headers(s3, raw_s3, bucket, origin):
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={"CORSRules": [{"AllowedOrigins": [origin], "AllowedMethods": ["POST"]}]},
    )
    post = s3.generate_presigned_post(Bucket=bucket, Key="cors.txt")
    fields = dict(post["fields"])
    body, content_type = form_body(fields, "cors.txt", b"c")
    answer = raw_s3.send_prepared(
        "POST", f"/{bucket}", {"Content-Type": content_type, "Origin": origin}, body
    )
    assert answer.status == 204, answer.body
    assert answer.headers["access-control-allow-origin"] == origin


def test_virtual_host_style_post(mucura_binary, tmp_path):
    """`POST /` to `bucket.ROOT_DOMAIN` is the same upload (the form names no bucket)."""
    root_domain = "s3.mucura.test"
    server = MucuraServer(tmp_path / "vhost", mucura_binary, ["--root-domain", root_domain])
    server.start()
    try:
        s3 = make_s3_client(server.endpoint, server.access_key, server.secret_key)
        s3.create_bucket(Bucket="forms")
        post = s3.generate_presigned_post(Bucket="forms", Key="via-host.txt")
        body, content_type = form_body(post["fields"], "f.txt", b"vhost form")
        connection = http.client.HTTPConnection("127.0.0.1", server.s3_port, timeout=30)
        try:
            connection.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", f"forms.{root_domain}:{server.s3_port}")
            connection.putheader("Content-Type", content_type)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            assert response.status == 204, response.read()
        finally:
            connection.close()
        assert s3.get_object(Bucket="forms", Key="via-host.txt")["Body"].read() == b"vhost form"
    finally:
        assert server.stop() == 0, server.log_tail()
