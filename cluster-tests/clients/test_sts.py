"""Temporary credentials (STS AssumeRole on the S3 endpoint) with boto3 and the AWS CLI: a
user's key asks for a session, the session works with unchanged clients, and every way a
session must stop working does (expiry, revocation, its parent key disabled, a forged token).

Runs against the session server (single node, or a local cluster with
MUCURA_TEST_TARGET=cluster: sessions are stateless tokens every node validates).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from datetime import datetime, timezone

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from s3_helpers import REGION, empty_and_delete_bucket, expect_s3_error, make_s3_client, unique_bucket_name
from test_users import (
    AdminEndpoint,
    Key,
    admin_json,
    client_for,
    eventually_accepted,
    new_key,
    new_user,
    rfc3339_in,
    session_admin,
)

ROLE_ARN = "arn:aws:iam::000000000000:role/mucura-session"


@pytest.fixture(scope="module")
def endpoint(mucura) -> AdminEndpoint:
    """The session server's admin API."""
    return session_admin(mucura)


def sts_client(url: str, key: Key | None, **config):
    """A boto3 STS client for the S3 endpoint, signing with `key` (unsigned without)."""
    options = {"retries": {"total_max_attempts": 1}}
    options.update(config)
    if key is None:
        options["signature_version"] = UNSIGNED
    return boto3.client(
        "sts",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key.access_key if key else None,
        aws_secret_access_key=key.secret_key if key else None,
        config=Config(**options),
    )


def assume(url: str, key: Key, **params) -> dict:
    """AssumeRole with `key`; returns the Credentials dict."""
    params.setdefault("RoleArn", ROLE_ARN)
    params.setdefault("RoleSessionName", "pytest")
    return sts_client(url, key).assume_role(**params)["Credentials"]


def session_client(url: str, credentials: dict):
    """A boto3 S3 client using temporary credentials."""
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"total_max_attempts": 1}),
    )


def expect_sts_error(code: str, status: int):
    """Asserts an STS call fails with this code and status (STS's own error format)."""
    return _StsError(code, status)


class _StsError:
    def __init__(self, code: str, status: int) -> None:
        self.code, self.status = code, status

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        assert error is not None, f"expected STS error {self.code}, the call succeeded"
        assert isinstance(error, ClientError), f"expected a ClientError, got {error!r}"
        answered = error.response["Error"].get("Code")
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        assert (answered, status) == (self.code, self.status), (
            f"expected {self.code} ({self.status}), got {answered} ({status}): "
            f"{error.response['Error'].get('Message')}")
        return True


def eventually_invalid_token(session, failure: str) -> None:
    """Waits until requests with the session are refused with InvalidToken (in a cluster the
    change travels through the replicated identity tables)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            session.list_buckets()
        except ClientError as error:
            assert error.response["Error"]["Code"] == "InvalidToken"
            return
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)


@pytest.fixture
def user_key(mucura_binary, mucura, endpoint) -> Key:
    """A fresh user with one key the node already accepts."""
    user_id = new_user(mucura_binary, endpoint, "sts")
    key = new_key(mucura_binary, endpoint, user_id)
    eventually_accepted(client_for(mucura.endpoint, key))
    return key


def test_boto3_session_works_as_its_user(mucura, user_key):
    started = datetime.now(timezone.utc)
    credentials = assume(mucura.endpoint, user_key, DurationSeconds=1800)
    assert credentials["AccessKeyId"].startswith("MS") and len(credentials["AccessKeyId"]) == 20
    lifetime = (credentials["Expiration"] - started).total_seconds()
    assert 1790 <= lifetime <= 1810, lifetime

    session = session_client(mucura.endpoint, credentials)
    bucket = unique_bucket_name("sts-boto3")
    session.create_bucket(Bucket=bucket)
    try:
        session.put_object(Bucket=bucket, Key="from-session.txt", Body=b"temporary")
        # The bucket belongs to the user: the long-term key sees it and its object.
        owner = client_for(mucura.endpoint, user_key)
        assert bucket in [b["Name"] for b in owner.list_buckets()["Buckets"]]
        body = owner.get_object(Bucket=bucket, Key="from-session.txt")["Body"].read()
        assert body == b"temporary"
        # A presigned URL made with the session carries its token and works anonymously.
        url = session.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "from-session.txt"}, ExpiresIn=300)
        assert "X-Amz-Security-Token=" in url
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.read() == b"temporary"
    finally:
        empty_and_delete_bucket(client_for(mucura.endpoint, user_key), bucket)


def test_aws_cli_assume_role_and_use_the_session(mucura, user_key, tmp_path):
    cli_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": user_key.access_key,
        "AWS_SECRET_ACCESS_KEY": user_key.secret_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_MAX_ATTEMPTS": "1",
    }
    assumed = subprocess.run(
        ["aws", "sts", "assume-role", "--endpoint-url", mucura.endpoint,
         "--role-arn", ROLE_ARN, "--role-session-name", "cli", "--output", "json"],
        capture_output=True, text=True, timeout=60, env=cli_env, check=True)
    credentials = json.loads(assumed.stdout)["Credentials"]
    session_env = dict(cli_env,
                       AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
                       AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
                       AWS_SESSION_TOKEN=credentials["SessionToken"])
    bucket = unique_bucket_name("sts-cli")
    subprocess.run(["aws", "s3", "mb", f"s3://{bucket}", "--endpoint-url", mucura.endpoint],
                   capture_output=True, text=True, timeout=60, env=session_env, check=True)
    try:
        source = tmp_path / "note.txt"
        source.write_text("written with temporary credentials\n")
        subprocess.run(["aws", "s3", "cp", str(source), f"s3://{bucket}/note.txt",
                        "--endpoint-url", mucura.endpoint],
                       capture_output=True, text=True, timeout=60, env=session_env, check=True)
        listed = subprocess.run(["aws", "s3", "ls", f"s3://{bucket}/",
                                 "--endpoint-url", mucura.endpoint],
                                capture_output=True, text=True, timeout=60, env=session_env,
                                check=True)
        assert "note.txt" in listed.stdout
    finally:
        empty_and_delete_bucket(client_for(mucura.endpoint, user_key), bucket)


def test_sessions_expire_on_time_and_never_outlive_their_key(mucura_binary, mucura, endpoint):
    user_id = new_user(mucura_binary, endpoint, "sts-expiry")
    key = new_key(mucura_binary, endpoint, user_id, "--expires", rfc3339_in(8))
    eventually_accepted(client_for(mucura.endpoint, key))
    credentials = assume(mucura.endpoint, key, DurationSeconds=3600)
    # Capped by the key's expiry, not the hour asked for.
    remaining = (credentials["Expiration"] - datetime.now(timezone.utc)).total_seconds()
    assert remaining <= 9, remaining
    session = session_client(mucura.endpoint, credentials)
    session.list_buckets()
    time.sleep(max(0.0, remaining) + 1.5)
    with expect_s3_error("ExpiredToken", 400):
        session.list_buckets()


def test_revocation_ends_sessions_but_not_keys(mucura_binary, mucura, endpoint, user_key):
    credentials = assume(mucura.endpoint, user_key)
    session = session_client(mucura.endpoint, credentials)
    session.list_buckets()
    revoked = admin_json(mucura_binary, endpoint, "user", "revoke-sessions", "--id", user_key.user)
    assert revoked["user"]["id"] == user_key.user
    eventually_invalid_token(session, "the revoked session still works")
    # The long-term key works, and a new session too.
    client_for(mucura.endpoint, user_key).list_buckets()
    time.sleep(0.01)
    session_client(mucura.endpoint, assume(mucura.endpoint, user_key)).list_buckets()


def test_disabling_the_parent_key_ends_its_sessions(mucura_binary, mucura, endpoint, user_key):
    session = session_client(mucura.endpoint, assume(mucura.endpoint, user_key))
    session.list_buckets()
    admin_json(mucura_binary, endpoint, "key", "disable", "--key", user_key.access_key)
    eventually_invalid_token(session, "the session outlived its disabled key")


def test_forged_or_missing_tokens_are_refused(mucura, user_key):
    credentials = assume(mucura.endpoint, user_key)
    token = credentials["SessionToken"]
    middle = len(token) // 2
    forged = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    with expect_s3_error("InvalidToken", 400):
        session_client(mucura.endpoint, dict(credentials, SessionToken=forged)).list_buckets()
    # The temporary key without its token is no key at all.
    bare = make_s3_client(mucura.endpoint, credentials["AccessKeyId"],
                          credentials["SecretAccessKey"])
    with expect_s3_error("InvalidAccessKeyId", 403):
        bare.list_buckets()
    # Another session's token with this key id.
    other = assume(mucura.endpoint, user_key)
    with expect_s3_error("InvalidToken", 400):
        session_client(mucura.endpoint,
                       dict(credentials, SessionToken=other["SessionToken"])).list_buckets()


def test_sessions_cannot_reach_other_tenants(mucura_binary, mucura, endpoint, user_key):
    other_id = new_user(mucura_binary, endpoint, "sts-other")
    other_key = new_key(mucura_binary, endpoint, other_id)
    other = client_for(mucura.endpoint, other_key)
    eventually_accepted(other)
    bucket = unique_bucket_name("sts-private")
    other.create_bucket(Bucket=bucket)
    try:
        other.put_object(Bucket=bucket, Key="secret.txt", Body=b"not yours")
        session = session_client(mucura.endpoint, assume(mucura.endpoint, user_key))
        with expect_s3_error("AccessDenied", 403):
            session.get_object(Bucket=bucket, Key="secret.txt")
        with expect_s3_error("AccessDenied", 403):
            session.put_object(Bucket=bucket, Key="intruder.txt", Body=b"x")
    finally:
        empty_and_delete_bucket(other, bucket)


def test_sts_refusals(mucura, user_key):
    root = Key(mucura.access_key, mucura.secret_key, "root")
    with expect_sts_error("AccessDenied", 403):
        assume(mucura.endpoint, root)
    with expect_sts_error("AccessDenied", 403):
        sts_client(mucura.endpoint, None).assume_role(RoleArn=ROLE_ARN, RoleSessionName="anon")
    unvalidated = sts_client(mucura.endpoint, user_key, parameter_validation=False)
    for duration in (899, 43201):
        with expect_sts_error("ValidationError", 400):
            unvalidated.assume_role(RoleArn=ROLE_ARN, RoleSessionName="x1",
                                    DurationSeconds=duration)
    with expect_sts_error("NotImplemented", 501):
        sts_client(mucura.endpoint, user_key).assume_role(
            RoleArn=ROLE_ARN, RoleSessionName="policy", Policy='{"Version":"2012-10-17"}')
    with expect_sts_error("InvalidAction", 400):
        sts_client(mucura.endpoint, user_key).get_caller_identity()
    # Signed with a wrong secret.
    wrong = Key(user_key.access_key, "x" * 40, user_key.user)
    with expect_sts_error("SignatureDoesNotMatch", 403):
        assume(mucura.endpoint, wrong)


def test_the_access_log_records_assume_role(mucura, user_key):
    from test_users import session_log

    assume(mucura.endpoint, user_key, RoleSessionName="logged")
    log = session_log(mucura)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        matching = [line for line in lines if line.get("operation") == "AssumeRole"
                    and line.get("access_key") == user_key.access_key]
        if matching:
            assert matching[-1]["status"] == 200
            assert matching[-1]["user"] == user_key.user
            return
        time.sleep(0.2)
    pytest.fail("no AssumeRole line in the access log")
