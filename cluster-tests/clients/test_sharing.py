"""Sharing between users with real clients: bucket ownership, canned ACLs, grants, bucket
policies, anonymous access and presigned share links.

Two users, alice and bob, are created once per session with `mucura admin user|key create`
(the admin API of the server under test). Every test works in a fresh bucket of alice's.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from s3_helpers import (
    REGION,
    curl,
    empty_and_delete_bucket,
    expect_s3_error,
    make_s3_client,
    unique_bucket_name,
)


@dataclass(frozen=True)
class User:
    """A user made for the session, with one access key."""

    user_id: str
    access_key: str
    secret_key: str


def admin_token(mucura) -> str:
    """The admin API bearer token of the server (or cluster node) under test."""
    if hasattr(mucura, "cluster"):
        return mucura.cluster.admin_token(mucura.node)
    text = (Path(mucura.data_dir) / "root-credentials.toml").read_text()
    return tomllib.loads(text)["admin_token"]


def admin(mucura_binary: Path, mucura, *args: str) -> dict:
    """Runs `mucura admin ARGS` against the server; returns its JSON output."""
    completed = subprocess.run(
        [
            str(mucura_binary),
            "admin",
            "--admin-url",
            mucura.admin_url,
            "--token",
            admin_token(mucura),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 0, (
        f"mucura admin {' '.join(args)} exited with {completed.returncode}\n{completed.stderr}"
    )
    return json.loads(completed.stdout)


def make_user(mucura_binary: Path, mucura, name: str) -> User:
    """Creates a user with a unique id and one key."""
    user_id = f"{name}-{secrets.token_hex(3)}"
    admin(mucura_binary, mucura, "user", "create", "--id", user_id)
    key = admin(mucura_binary, mucura, "key", "create", "--user", user_id)
    return User(user_id, key["access_key"], key["secret_key"])


@pytest.fixture(scope="session")
def alice(mucura_binary, mucura) -> User:
    """The user who owns the buckets of these tests."""
    return make_user(mucura_binary, mucura, "alice")


@pytest.fixture(scope="session")
def bob(mucura_binary, mucura) -> User:
    """Another user, whom alice shares with (or not)."""
    return make_user(mucura_binary, mucura, "bob")


def client_of(mucura, user: User):
    """A boto3 client signing as `user`."""
    return make_s3_client(mucura.endpoint, user.access_key, user.secret_key)


def wait_for_key(client, attempts: int = 50) -> None:
    """Waits until a new key is accepted (in a cluster it reaches the node through the
    replicated tables moments after creation)."""
    for _ in range(attempts):
        try:
            client.list_buckets()
            return
        except client.exceptions.ClientError as error:
            if error.response["Error"]["Code"] != "InvalidAccessKeyId":
                raise
            time.sleep(0.1)
    client.list_buckets()


@pytest.fixture(scope="session")
def alice_s3(mucura, alice):
    """alice's boto3 client."""
    client = client_of(mucura, alice)
    wait_for_key(client)
    return client


@pytest.fixture(scope="session")
def bob_s3(mucura, bob):
    """bob's boto3 client."""
    client = client_of(mucura, bob)
    wait_for_key(client)
    return client


@pytest.fixture(scope="session")
def anonymous_s3(mucura):
    """A boto3 client that signs nothing."""
    return boto3.client(
        "s3",
        endpoint_url=mucura.endpoint,
        region_name=REGION,
        config=Config(
            signature_version=UNSIGNED,
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
        ),
    )


@pytest.fixture
def alices_bucket(alice_s3, request) -> str:
    """A fresh bucket owned by alice; emptied and deleted afterwards."""
    name = unique_bucket_name(request.node.name)
    alice_s3.create_bucket(Bucket=name)
    yield name
    alice_s3.delete_bucket_policy(Bucket=name)
    empty_and_delete_bucket(alice_s3, name)


def http_get(url: str) -> tuple[int, bytes]:
    """A plain unsigned GET, as a browser following a link would send it."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_private_bucket_is_invisible_and_closed_to_another_user(
    alice_s3, bob_s3, anonymous_s3, alice, bob, alices_bucket
):
    alice_s3.put_object(Bucket=alices_bucket, Key="diary.txt", Body=b"private")
    listed = bob_s3.list_buckets()
    assert alices_bucket not in [b["Name"] for b in listed["Buckets"]]
    assert listed["Owner"]["ID"] == bob.user_id
    mine = alice_s3.list_buckets()
    assert alices_bucket in [b["Name"] for b in mine["Buckets"]]
    assert mine["Owner"]["ID"] == alice.user_id

    with expect_s3_error("AccessDenied", 403):
        bob_s3.get_object(Bucket=alices_bucket, Key="diary.txt")
    with expect_s3_error("AccessDenied", 403):
        bob_s3.list_objects_v2(Bucket=alices_bucket)
    with expect_s3_error("AccessDenied", 403):
        bob_s3.put_object(Bucket=alices_bucket, Key="intruder", Body=b"x")
    with expect_s3_error("AccessDenied", 403):
        bob_s3.delete_object(Bucket=alices_bucket, Key="diary.txt")
    with expect_s3_error("AccessDenied", 403):
        bob_s3.delete_bucket(Bucket=alices_bucket)
    with expect_s3_error("AccessDenied", 403):
        bob_s3.get_bucket_acl(Bucket=alices_bucket)
    # A missing key is not told apart from a forbidden one to someone who may not list.
    with expect_s3_error("AccessDenied", 403):
        bob_s3.get_object(Bucket=alices_bucket, Key="no-such-key")
    with expect_s3_error("BucketAlreadyExists", 409):
        bob_s3.create_bucket(Bucket=alices_bucket)
    with expect_s3_error("AccessDenied", 403):
        anonymous_s3.get_object(Bucket=alices_bucket, Key="diary.txt")
    assert alice_s3.get_object(Bucket=alices_bucket, Key="diary.txt")["Body"].read() == b"private"


def test_public_read_object_is_readable_without_credentials(
    mucura, alice_s3, anonymous_s3, alices_bucket
):
    alice_s3.put_object(Bucket=alices_bucket, Key="public.txt", Body=b"hello all", ACL="public-read")
    alice_s3.put_object(Bucket=alices_bucket, Key="private.txt", Body=b"mine")
    url = f"{mucura.endpoint}/{alices_bucket}/public.txt"

    assert http_get(url) == (200, b"hello all")
    assert curl([url]) == (200, b"hello all")
    got = anonymous_s3.get_object(Bucket=alices_bucket, Key="public.txt")
    assert got["Body"].read() == b"hello all"

    status, body = http_get(f"{mucura.endpoint}/{alices_bucket}/private.txt")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body
    # Reading is not writing, and the bucket itself stays private.
    with expect_s3_error("AccessDenied", 403):
        anonymous_s3.put_object(Bucket=alices_bucket, Key="graffiti", Body=b"x")
    with expect_s3_error("AccessDenied", 403):
        anonymous_s3.list_objects_v2(Bucket=alices_bucket)

    grants = alice_s3.get_object_acl(Bucket=alices_bucket, Key="public.txt")["Grants"]
    assert {"Permission": "READ", "Grantee": {
        "Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}} in grants


def test_public_read_bucket_lists_anonymously(alice_s3, anonymous_s3, alices_bucket):
    alice_s3.put_object(Bucket=alices_bucket, Key="a", Body=b"a")
    alice_s3.put_bucket_acl(Bucket=alices_bucket, ACL="public-read")
    listed = anonymous_s3.list_objects_v2(Bucket=alices_bucket)
    assert [item["Key"] for item in listed["Contents"]] == ["a"]
    # Listing does not open the objects: "a" is private.
    with expect_s3_error("AccessDenied", 403):
        anonymous_s3.get_object(Bucket=alices_bucket, Key="a")
    # Whoever may list learns that a key does not exist.
    with expect_s3_error("NoSuchKey", 404):
        anonymous_s3.get_object(Bucket=alices_bucket, Key="missing")


def test_policy_grants_a_prefix_and_explicit_deny_wins(
    alice_s3, bob_s3, anonymous_s3, bob, alices_bucket
):
    for key in ("shared/report.txt", "shared/secret.txt", "private/notes.txt"):
        alice_s3.put_object(Bucket=alices_bucket, Key=key, Body=key.encode())
    # The ACL of secret.txt lets everyone read; the policy's Deny still wins.
    alice_s3.put_object_acl(Bucket=alices_bucket, Key="shared/secret.txt", ACL="public-read")
    with expect_s3_error("NoSuchBucketPolicy", 404):
        alice_s3.get_bucket_policy(Bucket=alices_bucket)
    with expect_s3_error("MalformedPolicy", 400):
        alice_s3.put_bucket_policy(Bucket=alices_bucket, Policy='{"Statement": "nonsense"}')

    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "BobReadsShared",
                "Effect": "Allow",
                "Principal": {"AWS": [bob.user_id]},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{alices_bucket}/shared/*",
            },
            {
                "Sid": "NobodyReadsSecrets",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{alices_bucket}/shared/secret*",
            },
        ],
    }
    alice_s3.put_bucket_policy(Bucket=alices_bucket, Policy=json.dumps(policy))
    stored = json.loads(alice_s3.get_bucket_policy(Bucket=alices_bucket)["Policy"])
    assert stored == policy

    got = bob_s3.get_object(Bucket=alices_bucket, Key="shared/report.txt")
    assert got["Body"].read() == b"shared/report.txt"
    with expect_s3_error("AccessDenied", 403):
        bob_s3.get_object(Bucket=alices_bucket, Key="private/notes.txt")
    with expect_s3_error("AccessDenied", 403):
        bob_s3.get_object(Bucket=alices_bucket, Key="shared/secret.txt")
    with expect_s3_error("AccessDenied", 403):
        anonymous_s3.get_object(Bucket=alices_bucket, Key="shared/secret.txt")
    with expect_s3_error("AccessDenied", 403):
        alice_s3.get_object(Bucket=alices_bucket, Key="shared/secret.txt")
    # The policy grants reads only: bob still may not write.
    with expect_s3_error("AccessDenied", 403):
        bob_s3.put_object(Bucket=alices_bucket, Key="shared/new.txt", Body=b"x")

    alice_s3.delete_bucket_policy(Bucket=alices_bucket)
    with expect_s3_error("AccessDenied", 403):
        bob_s3.get_object(Bucket=alices_bucket, Key="shared/report.txt")
    got = anonymous_s3.get_object(Bucket=alices_bucket, Key="shared/secret.txt")
    assert got["Body"].read() == b"shared/secret.txt"


def test_presigned_url_shares_until_it_expires(alice_s3, alices_bucket):
    alice_s3.put_object(Bucket=alices_bucket, Key="link.txt", Body=b"shared by link")
    url = alice_s3.generate_presigned_url(
        "get_object", Params={"Bucket": alices_bucket, "Key": "link.txt"}, ExpiresIn=2
    )
    assert http_get(url) == (200, b"shared by link")
    assert curl([url]) == (200, b"shared by link")
    time.sleep(3)
    status, body = http_get(url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body


def test_object_acl_grant_lets_the_named_user_read(alice_s3, bob_s3, bob, alices_bucket):
    alice_s3.put_object(Bucket=alices_bucket, Key="for-bob.txt", Body=b"hi bob")
    with expect_s3_error("AccessDenied", 403):
        bob_s3.get_object(Bucket=alices_bucket, Key="for-bob.txt")
    current = alice_s3.get_object_acl(Bucket=alices_bucket, Key="for-bob.txt")
    alice_s3.put_object_acl(
        Bucket=alices_bucket,
        Key="for-bob.txt",
        AccessControlPolicy={
            "Owner": current["Owner"],
            "Grants": [
                *current["Grants"],
                {"Grantee": {"Type": "CanonicalUser", "ID": bob.user_id}, "Permission": "READ"},
            ],
        },
    )
    got = bob_s3.get_object(Bucket=alices_bucket, Key="for-bob.txt")
    assert got["Body"].read() == b"hi bob"
    grantees = [g["Grantee"].get("ID") for g in
                alice_s3.get_object_acl(Bucket=alices_bucket, Key="for-bob.txt")["Grants"]]
    assert bob.user_id in grantees
    # READ on the object is not READ_ACP, and not WRITE on the bucket.
    with expect_s3_error("AccessDenied", 403):
        bob_s3.get_object_acl(Bucket=alices_bucket, Key="for-bob.txt")
    with expect_s3_error("AccessDenied", 403):
        bob_s3.delete_object(Bucket=alices_bucket, Key="for-bob.txt")


def test_bucket_write_grant_lets_another_user_upload(
    alice_s3, bob_s3, alice, bob, alices_bucket
):
    alice_s3.put_bucket_acl(
        Bucket=alices_bucket,
        GrantWrite=f'id="{bob.user_id}"',
        GrantFullControl=f'id="{alice.user_id}"',
    )
    bob_s3.put_object(Bucket=alices_bucket, Key="from-bob.txt", Body=b"a gift")
    owner = bob_s3.get_object_acl(Bucket=alices_bucket, Key="from-bob.txt")["Owner"]
    assert owner["ID"] == bob.user_id
    # The bucket owner may do everything in her bucket, including reading bob's object.
    got = alice_s3.get_object(Bucket=alices_bucket, Key="from-bob.txt")
    assert got["Body"].read() == b"a gift"
    # Write does not let bob list.
    with expect_s3_error("AccessDenied", 403):
        bob_s3.list_objects_v2(Bucket=alices_bucket)


def test_grants_and_policies_must_name_existing_users(
    alice_s3, bob_s3, bob, raw_s3, alices_bucket
):
    """A grant or policy naming an unknown user is refused (a typo would otherwise grant
    nothing now, and everything to a user created later under that id), as in AWS."""
    alice_s3.put_object(Bucket=alices_bucket, Key="doc.txt", Body=b"doc")
    current = alice_s3.get_object_acl(Bucket=alices_bucket, Key="doc.txt")

    def acl_granting(user_id: str) -> dict:
        return {
            "Owner": current["Owner"],
            "Grants": [
                *current["Grants"],
                {"Grantee": {"Type": "CanonicalUser", "ID": user_id}, "Permission": "READ"},
            ],
        }

    with expect_s3_error("InvalidArgument", 400) as refused:
        alice_s3.put_object_acl(
            Bucket=alices_bucket, Key="doc.txt", AccessControlPolicy=acl_granting("no-such-user")
        )
    error = refused.error.response["Error"]
    assert error["Message"] == "Invalid id"
    assert (error.get("ArgumentName"), error.get("ArgumentValue")) == (
        "CanonicalUser/ID",
        "no-such-user",
    )
    # The refused ACL was not stored; the same grant to a real user is.
    assert alice_s3.get_object_acl(Bucket=alices_bucket, Key="doc.txt")["Grants"] == current[
        "Grants"
    ]
    alice_s3.put_object_acl(
        Bucket=alices_bucket, Key="doc.txt", AccessControlPolicy=acl_granting(bob.user_id)
    )
    assert bob_s3.get_object(Bucket=alices_bucket, Key="doc.txt")["Body"].read() == b"doc"

    # Grant headers, on new objects and on the bucket, are checked the same way.
    with expect_s3_error("InvalidArgument", 400):
        alice_s3.put_object(
            Bucket=alices_bucket, Key="new.txt", Body=b"x", GrantRead='id="no-such-user"'
        )
    with expect_s3_error("NoSuchKey", 404):
        alice_s3.get_object(Bucket=alices_bucket, Key="new.txt")
    with expect_s3_error("InvalidArgument", 400):
        alice_s3.copy_object(
            Bucket=alices_bucket,
            Key="copy.txt",
            CopySource={"Bucket": alices_bucket, "Key": "doc.txt"},
            GrantRead='id="no-such-user"',
        )
    with expect_s3_error("InvalidArgument", 400):
        alice_s3.create_multipart_upload(
            Bucket=alices_bucket, Key="big.bin", GrantRead='id="no-such-user"'
        )
    with expect_s3_error("InvalidArgument", 400):
        alice_s3.put_bucket_acl(Bucket=alices_bucket, GrantRead='id="no-such-user"')
    other_bucket = f"{alices_bucket}-2"
    with expect_s3_error("InvalidArgument", 400):
        alice_s3.create_bucket(Bucket=other_bucket, GrantRead='id="no-such-user"')
    with expect_s3_error("404", 404):
        alice_s3.head_bucket(Bucket=other_bucket)
    alice_s3.put_object(
        Bucket=alices_bucket, Key="new.txt", Body=b"x", GrantRead=f'id="{bob.user_id}"'
    )
    assert bob_s3.get_object(Bucket=alices_bucket, Key="new.txt")["Body"].read() == b"x"

    # So are the grant fields of browser POST uploads.
    from test_post_upload import post_form  # here: that module imports this one

    def form_granting(user_id: str) -> dict:
        grant = f'id="{user_id}"'
        return alice_s3.generate_presigned_post(
            Bucket=alices_bucket,
            Key="posted.txt",
            Fields={"x-amz-grant-read": grant},
            Conditions=[{"x-amz-grant-read": grant}],
        )

    answer = post_form(raw_s3, form_granting("no-such-user"), b"posted")
    assert (answer.status, answer.error_code()) == (400, "InvalidArgument"), answer.body
    answer = post_form(raw_s3, form_granting(bob.user_id), b"posted")
    assert answer.status == 204, answer.body
    assert bob_s3.get_object(Bucket=alices_bucket, Key="posted.txt")["Body"].read() == b"posted"

    def policy_for(principal: str) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": [principal]},
                        "Action": "s3:ListBucket",
                        "Resource": f"arn:aws:s3:::{alices_bucket}",
                    }
                ],
            }
        )

    with expect_s3_error("MalformedPolicy", 400) as refused:
        alice_s3.put_bucket_policy(Bucket=alices_bucket, Policy=policy_for("no-such-user"))
    assert refused.error.response["Error"]["Message"].startswith("Invalid principal in policy")
    with expect_s3_error("NoSuchBucketPolicy", 404):
        alice_s3.get_bucket_policy(Bucket=alices_bucket)
    alice_s3.put_bucket_policy(Bucket=alices_bucket, Policy=policy_for(bob.user_id))
    bob_s3.list_objects_v2(Bucket=alices_bucket)
