"""CORS with real clients: boto3 manages a bucket's configuration, hand-built requests play the
browser (preflight `OPTIONS` and actual requests carrying `Origin`).

The bucket of each test is the root user's; a second user, made once per session with
`mucura admin`, checks that only the owner (or whom a policy allows) manages the rules.
"""

from __future__ import annotations

import json

import pytest

from s3_helpers import expect_s3_error, unique_bucket_name, empty_and_delete_bucket
from s3_raw import RawS3
from test_sharing import client_of, make_user, wait_for_key

APP = "https://app.example.com"

RULES = {
    "CORSRules": [
        {
            "ID": "app",
            "AllowedOrigins": [APP, "https://*.example.org"],
            "AllowedMethods": ["GET", "PUT", "HEAD"],
            "AllowedHeaders": ["Content-*", "x-amz-*"],
            "ExposeHeaders": ["ETag", "x-amz-request-id"],
            "MaxAgeSeconds": 600,
        },
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
    ]
}


@pytest.fixture(scope="module")
def other_s3(mucura_binary, mucura):
    """A boto3 client of a user who does not own the test buckets."""
    user = make_user(mucura_binary, mucura, "carol")
    client = client_of(mucura, user)
    wait_for_key(client)
    return user, client


@pytest.fixture
def cors_bucket(s3, request) -> str:
    """A fresh bucket with the rules above and one object, `hello.txt`."""
    name = unique_bucket_name(request.node.name)
    s3.create_bucket(Bucket=name)
    s3.put_bucket_cors(Bucket=name, CORSConfiguration=RULES)
    s3.put_object(Bucket=name, Key="hello.txt", Body=b"hello")
    yield name
    empty_and_delete_bucket(s3, name)


def preflight(raw_s3: RawS3, path: str, origin: str | None, method: str | None, headers=None):
    """An unsigned `OPTIONS`, as a browser sends it before a cross-origin request."""
    sent = {}
    if origin is not None:
        sent["Origin"] = origin
    if method is not None:
        sent["Access-Control-Request-Method"] = method
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return raw_s3.send("OPTIONS", path, sent, sign=False)


def test_configuration_round_trips_and_deletes(s3, bucket):
    with expect_s3_error("NoSuchCORSConfiguration", 404):
        s3.get_bucket_cors(Bucket=bucket)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got == RULES["CORSRules"]
    replaced = {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["POST"]}]}
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=replaced)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == replaced["CORSRules"]
    s3.delete_bucket_cors(Bucket=bucket)
    with expect_s3_error("NoSuchCORSConfiguration", 404):
        s3.get_bucket_cors(Bucket=bucket)
    # Deleting what is not there succeeds, as in AWS.
    s3.delete_bucket_cors(Bucket=bucket)


def test_invalid_configurations_are_refused(s3, raw_s3, bucket):
    with expect_s3_error("InvalidRequest", 400):
        s3.put_bucket_cors(
            Bucket=bucket,
            CORSConfiguration={"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]},
        )
    with expect_s3_error("InvalidRequest", 400):
        s3.put_bucket_cors(
            Bucket=bucket,
            CORSConfiguration={
                "CORSRules": [{"AllowedOrigins": ["https://*.*.com"], "AllowedMethods": ["GET"]}]
            },
        )
    too_many = [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101
    with expect_s3_error("MalformedXML", 400):
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": too_many})
    for body in (
        b"<CORSConfiguration></CORSConfiguration>",
        b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
        b"not xml",
    ):
        answer = raw_s3.send("PUT", f"/{bucket}?cors", body=body)
        assert (answer.status, answer.error_code()) == (400, "MalformedXML"), answer.body
    with expect_s3_error("NoSuchCORSConfiguration", 404):
        s3.get_bucket_cors(Bucket=bucket)


def test_only_the_owner_or_a_policy_manages_cors(s3, other_s3, bucket):
    user, other = other_s3
    with expect_s3_error("AccessDenied", 403):
        other.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    with expect_s3_error("AccessDenied", 403):
        other.get_bucket_cors(Bucket=bucket)
    with expect_s3_error("AccessDenied", 403):
        other.delete_bucket_cors(Bucket=bucket)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": [user.user_id]},
                "Action": "s3:GetBucketCORS",
                "Resource": f"arn:aws:s3:::{bucket}",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    try:
        assert other.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES["CORSRules"]
        with expect_s3_error("AccessDenied", 403):
            other.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    finally:
        s3.delete_bucket_policy(Bucket=bucket)


def test_preflight_answers_from_the_first_matching_rule(raw_s3, cors_bucket):
    answer = preflight(raw_s3, f"/{cors_bucket}/hello.txt", APP, "PUT", "content-type,x-amz-date")
    assert answer.status == 200, answer.body
    assert answer.headers["access-control-allow-origin"] == APP
    assert answer.headers["access-control-allow-methods"] == "GET, PUT, HEAD"
    assert answer.headers["access-control-allow-headers"] == "content-type, x-amz-date"
    assert answer.headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert answer.headers["access-control-max-age"] == "600"
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in answer.headers["vary"]

    sub = preflight(raw_s3, f"/{cors_bucket}/any/key", "https://cdn.example.org", "HEAD")
    assert sub.status == 200
    assert sub.headers["access-control-allow-origin"] == "https://cdn.example.org"
    # Any origin may GET (second rule): answered with `*` and no credentials.
    anyone = preflight(raw_s3, f"/{cors_bucket}", "https://elsewhere.net", "GET")
    assert anyone.status == 200
    assert anyone.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in anyone.headers


@pytest.mark.parametrize(
    "origin, method, headers",
    [
        ("https://elsewhere.net", "PUT", None),  # origin only allowed to GET
        (APP, "DELETE", None),  # method in no rule
        (APP, "PUT", "x-secret"),  # header in no rule
        ("https://example.org", "PUT", None),  # `*.example.org` needs a subdomain
    ],
)
def test_preflight_refuses_what_no_rule_allows(raw_s3, cors_bucket, origin, method, headers):
    answer = preflight(raw_s3, f"/{cors_bucket}/hello.txt", origin, method, headers)
    assert (answer.status, answer.error_code()) == (403, "AccessForbidden"), answer.body
    assert b"CORSResponse: This CORS request is not allowed" in answer.body
    assert "access-control-allow-origin" not in answer.headers


def test_preflight_needs_a_configuration_and_an_origin(raw_s3, bucket, cors_bucket):
    answer = preflight(raw_s3, f"/{bucket}/k", APP, "GET")
    assert (answer.status, answer.error_code()) == (403, "AccessForbidden"), answer.body
    answer = preflight(raw_s3, f"/{cors_bucket}/k", None, "GET")
    assert (answer.status, answer.error_code()) == (400, "BadRequest"), answer.body
    answer = preflight(raw_s3, f"/{cors_bucket}/k", APP, None)
    assert (answer.status, answer.error_code()) == (400, "BadRequest"), answer.body


def test_actual_responses_carry_cors_headers_errors_included(raw_s3, cors_bucket):
    signed = raw_s3.send("GET", f"/{cors_bucket}/hello.txt", {"Origin": APP})
    assert signed.status == 200 and signed.body == b"hello"
    assert signed.headers["access-control-allow-origin"] == APP
    assert signed.headers["access-control-expose-headers"] == "ETag, x-amz-request-id"

    # A refused anonymous read still tells the page why (the browser lets it read the 403).
    refused = raw_s3.send("GET", f"/{cors_bucket}/hello.txt", {"Origin": APP}, sign=False)
    assert (refused.status, refused.error_code()) == (403, "AccessDenied")
    assert refused.headers["access-control-allow-origin"] == APP

    missing = raw_s3.send("GET", f"/{cors_bucket}/missing", {"Origin": "https://x.net"})
    assert missing.status == 404
    assert missing.headers["access-control-allow-origin"] == "*"

    # No rule lets this origin DELETE; no Origin at all: no CORS headers.
    denied = raw_s3.send("DELETE", f"/{cors_bucket}/nothing", {"Origin": "https://x.net"})
    assert denied.status == 204
    assert "access-control-allow-origin" not in denied.headers
    plain = raw_s3.send("GET", f"/{cors_bucket}/hello.txt")
    assert "access-control-allow-origin" not in plain.headers
