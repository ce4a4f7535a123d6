"""Users and access keys with the real binary: `mucura admin user|key …` creates, lists,
disables, rotates and deletes them, and boto3 signs with the keys it prints.

The first tests run against the session server (a single node, or with
MUCURA_TEST_TARGET=cluster a local cluster); the last ones start their own three-node
`mucura local-cluster` to check that a key created through one node authenticates through
another.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from local_cluster import LocalClusterProcess
from s3_helpers import empty_and_delete_bucket, expect_s3_error, make_s3_client, unique_bucket_name

# How long a new key or a status change may take to reach the node that serves S3 (in a
# cluster it travels through the replicated tables).
PROPAGATION_SECONDS = 5.0


@dataclass(frozen=True)
class AdminEndpoint:
    """Where `mucura admin` connects: one node's admin API and its bearer token."""

    url: str
    token: str


@dataclass(frozen=True)
class Key:
    """An access key as `mucura admin key create|rotate` printed it."""

    access_key: str
    secret_key: str
    user: str


def session_admin(mucura) -> AdminEndpoint:
    """The admin API of the session server (or of the cluster node clients talk to)."""
    if hasattr(mucura, "cluster"):
        return AdminEndpoint(mucura.admin_url, mucura.cluster.admin_token(mucura.node))
    text = (Path(mucura.data_dir) / "root-credentials.toml").read_text()
    return AdminEndpoint(mucura.admin_url, tomllib.loads(text)["admin_token"])


def session_log(mucura) -> Path:
    """The access log of the node the session's admin commands go to."""
    data_dir = mucura.node["data_dir"] if hasattr(mucura, "cluster") else mucura.data_dir
    return Path(data_dir) / "logs" / "access.log"


def run_admin(binary: Path, endpoint: AdminEndpoint, *args: str) -> subprocess.CompletedProcess:
    """Runs `mucura admin ARGS` against `endpoint`."""
    return subprocess.run(
        [str(binary), "admin", "--admin-url", endpoint.url, "--token", endpoint.token, *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def admin_json(binary: Path, endpoint: AdminEndpoint, *args: str) -> dict:
    """Runs `mucura admin ARGS`, which must succeed, and returns its JSON output."""
    completed = run_admin(binary, endpoint, *args)
    assert completed.returncode == 0, (
        f"mucura admin {' '.join(args)} exited with {completed.returncode}\n{completed.stderr}")
    return json.loads(completed.stdout)


def admin_fails(binary: Path, endpoint: AdminEndpoint, *args: str) -> str:
    """Runs `mucura admin ARGS`, which must fail; returns its error output."""
    completed = run_admin(binary, endpoint, *args)
    assert completed.returncode != 0, f"mucura admin {' '.join(args)} succeeded: {completed.stdout}"
    return completed.stderr


def new_user(binary: Path, endpoint: AdminEndpoint, name: str, *options: str) -> str:
    """Creates a user with a unique id; returns the id."""
    user_id = f"{name}-{secrets.token_hex(3)}"
    created = admin_json(binary, endpoint, "user", "create", "--id", user_id, *options)
    assert created["user"]["id"] == user_id
    return user_id


def new_key(binary: Path, endpoint: AdminEndpoint, user_id: str, *options: str) -> Key:
    """Creates an access key for `user_id`."""
    created = admin_json(binary, endpoint, "key", "create", "--user", user_id, *options)
    return Key(created["access_key"], created["secret_key"], created["user"])


def client_for(endpoint_url: str, key: Key):
    """A boto3 client signing with `key`."""
    return make_s3_client(endpoint_url, key.access_key, key.secret_key)


def eventually_accepted(client) -> None:
    """Waits until the node accepts the client's key (ListBuckets succeeds)."""
    deadline = time.monotonic() + PROPAGATION_SECONDS
    while True:
        try:
            client.list_buckets()
            return
        except client.exceptions.ClientError as error:
            if error.response["Error"]["Code"] != "InvalidAccessKeyId" or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def eventually_refused(client) -> None:
    """Waits until the node refuses the client's key with 403 InvalidAccessKeyId."""
    deadline = time.monotonic() + PROPAGATION_SECONDS
    while time.monotonic() < deadline:
        try:
            client.list_buckets()
        except client.exceptions.ClientError as error:
            if error.response["Error"]["Code"] == "InvalidAccessKeyId":
                break
            raise
        time.sleep(0.1)
    with expect_s3_error("InvalidAccessKeyId", 403):
        client.list_buckets()


def rfc3339_in(seconds: float) -> str:
    """An RFC 3339 UTC time `seconds` from now."""
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


@pytest.fixture(scope="module")
def endpoint(mucura) -> AdminEndpoint:
    """The session server's admin API."""
    return session_admin(mucura)


def test_a_new_users_key_works_with_boto3(mucura_binary, mucura, endpoint):
    user_id = f"alice-{secrets.token_hex(3)}"
    created = admin_json(
        mucura_binary, endpoint, "user", "create", "--id", user_id,
        "--display-name", "Alice A.", "--subject-dn", "CN=Alice A.,O=Lab",
        "--quota-bytes", "1000000", "--quota-objects", "100", "--expires", rfc3339_in(3600),
    )["user"]
    assert created["display_name"] == "Alice A."
    assert created["subject_dn"] == "CN=Alice A.,O=Lab"
    assert created["status"] == "active"
    assert (created["quota_bytes"], created["quota_objects"]) == (1000000, 100)
    assert created["expires_at_unix_ms"] > time.time() * 1000

    key = new_key(mucura_binary, endpoint, user_id)
    assert key.user == user_id
    assert len(key.access_key) == 20 and key.access_key.startswith("MK")
    assert key.access_key.isalnum() and key.access_key.isupper()
    assert len(key.secret_key) == 40

    client = client_for(mucura.endpoint, key)
    eventually_accepted(client)
    bucket = unique_bucket_name("users-boto3")
    client.create_bucket(Bucket=bucket)
    try:
        client.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello from a user key")
        body = client.get_object(Bucket=bucket, Key="hello.txt")["Body"].read()
        assert body == b"hello from a user key"
    finally:
        empty_and_delete_bucket(client, bucket)

    # Listings show the key, never its secret.
    shown = admin_json(mucura_binary, endpoint, "user", "show", "--id", user_id)
    assert [k["access_key"] for k in shown["keys"]] == [key.access_key]
    listed = admin_json(mucura_binary, endpoint, "key", "list", "--user", user_id)
    assert listed["keys"][0]["status"] == "active"
    assert key.secret_key not in json.dumps(listed) + json.dumps(shown)
    users = admin_json(mucura_binary, endpoint, "user", "list")["users"]
    assert user_id in [user["id"] for user in users]


def test_a_disabled_key_or_user_is_refused_until_enabled(mucura_binary, mucura, endpoint):
    user_id = new_user(mucura_binary, endpoint, "disable")
    key = new_key(mucura_binary, endpoint, user_id)
    client = client_for(mucura.endpoint, key)
    eventually_accepted(client)

    disabled = admin_json(mucura_binary, endpoint, "key", "disable", "--key", key.access_key)
    assert disabled["key"]["status"] == "disabled"
    eventually_refused(client)
    admin_json(mucura_binary, endpoint, "key", "enable", "--key", key.access_key)
    eventually_accepted(client)

    disabled = admin_json(mucura_binary, endpoint, "user", "disable", "--id", user_id)
    assert disabled["user"]["status"] == "disabled"
    eventually_refused(client)
    # A disabled user gets no new key.
    assert "disabled" in admin_fails(mucura_binary, endpoint, "key", "create", "--user", user_id)
    admin_json(mucura_binary, endpoint, "user", "enable", "--id", user_id)
    eventually_accepted(client)


def test_rotation_gives_a_new_key_and_retires_the_old_one(mucura_binary, mucura, endpoint):
    user_id = new_user(mucura_binary, endpoint, "rotate")
    old = new_key(mucura_binary, endpoint, user_id)
    old_client = client_for(mucura.endpoint, old)
    eventually_accepted(old_client)

    rotated = admin_json(mucura_binary, endpoint, "key", "rotate", "--key", old.access_key)
    assert rotated["user"] == user_id
    assert rotated["replaced_key"] == old.access_key
    assert rotated["access_key"] != old.access_key and len(rotated["secret_key"]) == 40
    new_client = client_for(mucura.endpoint, Key(rotated["access_key"], rotated["secret_key"], user_id))
    eventually_accepted(new_client)
    eventually_refused(old_client)
    statuses = {k["access_key"]: k["status"]
                for k in admin_json(mucura_binary, endpoint, "key", "list", "--user", user_id)["keys"]}
    assert statuses == {old.access_key: "disabled", rotated["access_key"]: "active"}

    admin_json(mucura_binary, endpoint, "key", "delete", "--key", old.access_key)
    assert "no access key" in admin_fails(
        mucura_binary, endpoint, "key", "enable", "--key", old.access_key)


def test_an_expired_key_is_refused(mucura_binary, mucura, endpoint):
    user_id = new_user(mucura_binary, endpoint, "expiry")
    lifetime = 4.0
    key = new_key(mucura_binary, endpoint, user_id, "--expires", rfc3339_in(lifetime))
    expires_at = time.time() + lifetime
    client = client_for(mucura.endpoint, key)
    eventually_accepted(client)
    time.sleep(max(0.0, expires_at - time.time()) + 0.5)
    with expect_s3_error("InvalidAccessKeyId", 403):
        client.list_buckets()
    # An expiry in the past is a mistake, refused outright.
    assert "past" in admin_fails(
        mucura_binary, endpoint, "key", "create", "--user", user_id, "--expires", rfc3339_in(-60))


def test_deleting_a_user_removes_its_keys_and_retires_its_id(mucura_binary, mucura, endpoint):
    user_id = new_user(mucura_binary, endpoint, "leaver")
    keys = [new_key(mucura_binary, endpoint, user_id) for _ in range(2)]
    client = client_for(mucura.endpoint, keys[0])
    eventually_accepted(client)

    deleted = admin_json(mucura_binary, endpoint, "user", "delete", "--id", user_id)
    assert deleted["deleted_user"] == user_id
    assert sorted(deleted["deleted_keys"]) == sorted(k.access_key for k in keys)
    eventually_refused(client)
    assert "no user" in admin_fails(mucura_binary, endpoint, "user", "show", "--id", user_id)
    assert "not reused" in admin_fails(mucura_binary, endpoint, "user", "create", "--id", user_id)
    users = admin_json(mucura_binary, endpoint, "user", "list")["users"]
    assert user_id not in [user["id"] for user in users]


def test_updating_a_users_quota_takes_effect(mucura_binary, mucura, endpoint):
    user_id = new_user(mucura_binary, endpoint, "grow", "--quota-bytes", "1000",
                       "--display-name", "Grower", "--expires", rfc3339_in(3600))
    client = client_for(mucura.endpoint, new_key(mucura_binary, endpoint, user_id))
    eventually_accepted(client)
    bucket = unique_bucket_name("users-update")
    client.create_bucket(Bucket=bucket)
    try:
        # Over the old limit on its own, so refused whatever the usage figures say.
        with expect_s3_error("QuotaExceeded", 403):
            client.put_object(Bucket=bucket, Key="big", Body=b"b" * 1500)

        updated = admin_json(mucura_binary, endpoint, "user", "update", "--id", user_id,
                             "--quota-bytes", "4000", "--quota-objects", "10", "--no-expiry")
        assert (updated["user"]["quota_bytes"], updated["user"]["quota_objects"]) == (4000, 10)
        assert updated["user"]["expires_at_unix_ms"] is None
        assert updated["user"]["display_name"] == "Grower"  # not named, so kept
        shown = admin_json(mucura_binary, endpoint, "user", "show", "--id", user_id)["user"]
        assert shown == updated["user"]
        usage = admin_json(mucura_binary, endpoint, "usage", "--user", user_id, "--json")
        assert (usage["users"][0]["quota_bytes"], usage["users"][0]["quota_objects"]) == (4000, 10)

        # The raised limit reaches the node serving S3 (in a cluster, through the
        # replicated user table).
        deadline = time.monotonic() + PROPAGATION_SECONDS
        while True:
            try:
                client.put_object(Bucket=bucket, Key="big", Body=b"b" * 1500)
                break
            except client.exceptions.ClientError as error:
                if error.response["Error"]["Code"] != "QuotaExceeded" or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert client.head_object(Bucket=bucket, Key="big")["ContentLength"] == 1500

        # Clearing lifts the quota; contradictions and mistakes are refused.
        cleared = admin_json(mucura_binary, endpoint, "user", "update", "--id", user_id,
                             "--no-quota-bytes")["user"]
        assert (cleared["quota_bytes"], cleared["quota_objects"]) == (None, 10)
        admin_fails(mucura_binary, endpoint, "user", "update", "--id", user_id,
                    "--quota-bytes", "1", "--no-quota-bytes")
        assert "no field" in admin_fails(mucura_binary, endpoint, "user", "update", "--id", user_id)
        assert "past" in admin_fails(mucura_binary, endpoint, "user", "update", "--id", user_id,
                                     "--expires", rfc3339_in(-60))
        assert "no user" in admin_fails(mucura_binary, endpoint, "user", "update",
                                        "--id", f"{user_id}-missing", "--quota-bytes", "1")
    finally:
        empty_and_delete_bucket(client, bucket)


def test_admin_mistakes_are_clear_errors(mucura_binary, endpoint):
    user_id = new_user(mucura_binary, endpoint, "twice")
    assert "409" in admin_fails(mucura_binary, endpoint, "user", "create", "--id", user_id)
    assert "already exists" in admin_fails(mucura_binary, endpoint, "user", "create", "--id", user_id)
    assert "400" in admin_fails(mucura_binary, endpoint, "user", "create", "--id", "Not Valid")
    assert "built-in root" in admin_fails(mucura_binary, endpoint, "user", "create", "--id", "root")
    assert "404" in admin_fails(mucura_binary, endpoint, "key", "create", "--user", "nobody-here")
    assert "RFC 3339" in admin_fails(
        mucura_binary, endpoint, "key", "create", "--user", user_id, "--expires", "tomorrow")
    wrong_token = AdminEndpoint(endpoint.url, "not-the-token")
    assert "401" in admin_fails(mucura_binary, wrong_token, "user", "list")


def test_admin_actions_are_logged_without_secrets(mucura_binary, mucura, endpoint):
    user_id = new_user(mucura_binary, endpoint, "audited")
    key = new_key(mucura_binary, endpoint, user_id)
    admin_json(mucura_binary, endpoint, "key", "disable", "--key", key.access_key)
    admin_fails(mucura_binary, endpoint, "user", "create", "--id", user_id)
    admin_json(mucura_binary, endpoint, "user", "update", "--id", user_id, "--quota-objects", "9")
    log = session_log(mucura)
    wanted = {
        ("admin.user.create", user_id, 200),
        ("admin.key.create", key.access_key, 200),
        ("admin.key.disable", key.access_key, 200),
        ("admin.user.create", user_id, 409),
        ("admin.user.update", user_id, 200),
    }
    deadline = time.monotonic() + 10
    seen: set = set()
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        seen = {(line.get("operation"), line.get("target"), line.get("status"))
                for line in lines if line.get("actor") == "admin-token"}
        if wanted <= seen:
            break
        time.sleep(0.2)
    assert wanted <= seen, f"missing admin lines: {wanted - seen}"
    assert key.secret_key not in log.read_text()


# ---------------------------------------------------------------------------------------
# Across a cluster


@pytest.fixture(scope="module")
def cluster(mucura_binary, tmp_path_factory):
    """A three-node `mucura local-cluster` of this module's own."""
    process = LocalClusterProcess(mucura_binary, tmp_path_factory.mktemp("users-cluster"), nodes=3)
    process.start()
    yield process
    exit_code = process.stop()
    assert exit_code == 0, f"local-cluster exited with {exit_code}\n{process.log_tail()}"


def node_admin(cluster: LocalClusterProcess, index: int) -> AdminEndpoint:
    """The admin API of node `index` of `cluster`."""
    node = cluster.nodes[index]
    return AdminEndpoint(f"http://{node['admin']}", cluster.admin_token(node))


def node_endpoint(cluster: LocalClusterProcess, index: int) -> str:
    """The S3 endpoint of node `index` of `cluster`."""
    return f"http://{cluster.nodes[index]['s3']}"


def test_a_key_made_through_one_node_authenticates_through_another(mucura_binary, cluster):
    first, third = node_admin(cluster, 0), node_admin(cluster, 2)
    user_id = new_user(mucura_binary, first, "roamer")
    key = new_key(mucura_binary, first, user_id)

    started = time.monotonic()
    client = client_for(node_endpoint(cluster, 2), key)
    eventually_accepted(client)
    assert time.monotonic() - started < PROPAGATION_SECONDS
    bucket = unique_bucket_name("users-cluster")
    client.create_bucket(Bucket=bucket)
    try:
        client.put_object(Bucket=bucket, Key="k", Body=b"across nodes")
        # Read back through the first node with the same key.
        other = client_for(node_endpoint(cluster, 0), key)
        assert other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"across nodes"
    finally:
        empty_and_delete_bucket(client, bucket)

    # Every node lists the user; a change made through the third node reaches the first.
    assert user_id in [u["id"] for u in admin_json(mucura_binary, third, "user", "list")["users"]]
    admin_json(mucura_binary, third, "key", "disable", "--key", key.access_key)
    eventually_refused(client_for(node_endpoint(cluster, 0), key))
    eventually_refused(client_for(node_endpoint(cluster, 1), key))


def test_the_layout_applied_by_local_cluster_is_an_admin_line(cluster):
    # local-cluster applies layout version 1 through the first node's admin API.
    log = Path(cluster.nodes[0]["data_dir"]) / "logs" / "access.log"
    deadline = time.monotonic() + 10
    applied: list[dict] = []
    while time.monotonic() < deadline and not applied:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        applied = [line for line in lines if line.get("operation") == "admin.layout.apply"]
        time.sleep(0.2)
    assert applied, f"no admin.layout.apply line in {log}"
    assert (applied[0]["target"], applied[0]["status"], applied[0]["actor"]) == ("1", 200, "admin-token")


def test_a_rotated_key_works_everywhere_and_the_old_one_nowhere(mucura_binary, cluster):
    second = node_admin(cluster, 1)
    user_id = new_user(mucura_binary, second, "rotator")
    old = new_key(mucura_binary, second, user_id)
    rotated = admin_json(mucura_binary, second, "key", "rotate", "--key", old.access_key)
    new = Key(rotated["access_key"], rotated["secret_key"], user_id)
    for index in range(3):
        eventually_accepted(client_for(node_endpoint(cluster, index), new))
        eventually_refused(client_for(node_endpoint(cluster, index), old))
