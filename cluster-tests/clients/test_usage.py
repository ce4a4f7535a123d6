"""Usage accounting and quotas with the real binary: `mucura admin usage` (and
`GET /v1/usage`) after puts, overwrites, deletes and multipart uploads, and 403 QuotaExceeded
for a plain PUT and for a multipart upload whose completion overflows the owner's quota.

Runs against the session server (a single node, or with MUCURA_TEST_TARGET=cluster a local
cluster, whose figures trail writes by a few seconds: the checks poll). In cluster mode a last
test starts its own three-node cluster, kills a node, writes, restarts it and checks that the
figures converge without counting anything twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from local_cluster import LocalClusterProcess
from mucura_server import _die_with_parent
from s3_helpers import empty_and_delete_bucket, expect_s3_error, unique_bucket_name
from test_users import (
    AdminEndpoint,
    admin_json,
    client_for,
    eventually_accepted,
    new_key,
    new_user,
    run_admin,
    session_admin,
)

# How long cluster-wide figures may take to follow a write: nodes publish every 2 s, and a
# figure needs two of a group's three owners to have published it.
CONVERGENCE_SECONDS = 30.0
MIB = 1024 * 1024
CLUSTER = os.environ.get("MUCURA_TEST_TARGET", "node") == "cluster"


@pytest.fixture(scope="module")
def endpoint(mucura) -> AdminEndpoint:
    """The session server's admin API."""
    return session_admin(mucura)


def user_usage(binary: Path, endpoint: AdminEndpoint, user: str) -> dict:
    """`mucura admin usage --user U --json`: the one user's entry."""
    answer = admin_json(binary, endpoint, "usage", "--user", user, "--json")
    assert [entry["user"] for entry in answer["users"]] == [user]
    return answer["users"][0]


def wait_for_usage(binary: Path, endpoint: AdminEndpoint, user: str, objects: int,
                   size: int) -> dict:
    """Polls until the user's usage is exactly (objects, size); returns the entry."""
    deadline = time.monotonic() + CONVERGENCE_SECONDS
    while True:
        entry = user_usage(binary, endpoint, user)
        if (entry["objects"], entry["bytes"]) == (objects, size):
            return entry
        if time.monotonic() > deadline:
            pytest.fail(f"usage of {user} stayed {entry}, expected {objects} objects, {size} B")
        time.sleep(0.5)


def wait_for_traffic(binary: Path, endpoint: AdminEndpoint, user: str,
                     at_least: dict[str, int], bytes_in: int, bytes_out: int) -> dict:
    """Polls until the user's request counts and bytes reach at least the given figures."""
    deadline = time.monotonic() + CONVERGENCE_SECONDS
    while True:
        entry = user_usage(binary, endpoint, user)
        counts = entry["requests"]
        if (all(counts.get(name, 0) >= count for name, count in at_least.items())
                and entry["bytes_in"] >= bytes_in and entry["bytes_out"] >= bytes_out):
            assert entry["buckets"][0]["requests"] == counts
            return entry
        if time.monotonic() > deadline:
            pytest.fail(f"traffic of {user} stayed {counts}, in {entry['bytes_in']}, "
                        f"out {entry['bytes_out']}; expected at least {at_least}, "
                        f"in {bytes_in}, out {bytes_out}")
        time.sleep(0.5)


def user_client(binary: Path, endpoint: AdminEndpoint, s3_endpoint: str, name: str,
                *options: str):
    """A new user (with `options`, e.g. quotas) and a boto3 client signing as it."""
    user = new_user(binary, endpoint, name, *options)
    client = client_for(s3_endpoint, new_key(binary, endpoint, user))
    eventually_accepted(client)
    return user, client


def multipart(client, bucket: str, key: str, sizes: list[int]) -> tuple[str, list[dict]]:
    """Starts an upload and uploads parts of `sizes`; returns the id and the parts."""
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, size in enumerate(sizes, start=1):
        answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                    PartNumber=number, Body=bytes([number]) * size)
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    return upload_id, parts


def test_usage_follows_puts_overwrites_deletes_and_multipart(mucura_binary, mucura, endpoint):
    user, client = user_client(mucura_binary, endpoint, mucura.endpoint, "usage")
    bucket = unique_bucket_name("usage-counts")
    client.create_bucket(Bucket=bucket)
    try:
        # A new user stores nothing, and is listed as such.
        assert (user_usage(mucura_binary, endpoint, user)["objects"]) == 0
        client.put_object(Bucket=bucket, Key="a", Body=b"a" * 100)
        client.put_object(Bucket=bucket, Key="b", Body=b"b" * 200)
        wait_for_usage(mucura_binary, endpoint, user, 2, 300)

        # An overwrite counts the new size only; a delete removes the object.
        client.put_object(Bucket=bucket, Key="a", Body=b"A" * 1000)
        wait_for_usage(mucura_binary, endpoint, user, 2, 1200)
        client.delete_object(Bucket=bucket, Key="b")
        wait_for_usage(mucura_binary, endpoint, user, 1, 1000)

        # Parts count only once completed: an aborted upload leaves nothing behind.
        upload_id, _ = multipart(client, bucket, "aborted", [5 * MIB])
        client.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload_id)
        upload_id, parts = multipart(client, bucket, "done", [5 * MIB, 1000])
        client.complete_multipart_upload(Bucket=bucket, Key="done", UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
        entry = wait_for_usage(mucura_binary, endpoint, user, 2, 1000 + 5 * MIB + 1000)
        assert [(b["bucket"], b["owner"], b["objects"], b["bytes"]) for b in entry["buckets"]] \
            == [(bucket, user, 2, 1000 + 5 * MIB + 1000)]
        assert entry["quota_bytes"] is None and entry["quota_objects"] is None

        # Requests by class and bytes in/out, counted by the node that answered.
        assert client.get_object(Bucket=bucket, Key="a")["Body"].read() == b"A" * 1000
        client.list_objects_v2(Bucket=bucket)
        wait_for_traffic(mucura_binary, endpoint, user, {"write": 9, "delete": 2, "read": 1,
                                                         "list": 1},
                         bytes_in=1300 + 10 * MIB + 1000, bytes_out=1000)

        # The bucket filter, the listing of everyone, and the table output.
        by_bucket = admin_json(mucura_binary, endpoint, "usage", "--bucket", bucket, "--json")
        assert [(u["user"], u["objects"]) for u in by_bucket["users"]] == [(user, 2)]
        assert by_bucket["exact"] is (not CLUSTER)
        everyone = admin_json(mucura_binary, endpoint, "usage", "--json")["users"]
        assert user in [u["user"] for u in everyone]
        table = run_admin(mucura_binary, endpoint, "usage", "--user", user)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split()[:4] == ["USER", "BUCKET", "OBJECTS", "BYTES"]
        assert any(line.split()[:2] == [bucket, "2"] for line in lines), table.stdout

        # Unknown filters answer 404 / 400 through the CLI's error.
        missing = run_admin(mucura_binary, endpoint, "usage", "--bucket", "no-such-bucket-x1")
        assert missing.returncode != 0 and "no-such-bucket-x1" in missing.stderr
    finally:
        empty_and_delete_bucket(client, bucket)


def test_a_put_past_the_quota_is_refused(mucura_binary, mucura, endpoint):
    user, client = user_client(mucura_binary, endpoint, mucura.endpoint, "quota-put",
                               "--quota-objects", "3", "--quota-bytes", "10000")
    bucket = unique_bucket_name("usage-quota-put")
    client.create_bucket(Bucket=bucket)
    try:
        # Too large by bytes, on the first write (a failed write stores nothing).
        with expect_s3_error("QuotaExceeded", 403) as refused:
            client.put_object(Bucket=bucket, Key="huge", Body=b"h" * 10001)
        assert "10000 bytes" in refused.error.response["Error"]["Message"]
        for key in ("one", "two", "three"):
            client.put_object(Bucket=bucket, Key=key, Body=b"x" * 100)
        # Refused at once by the node that admitted the three, before the figures move.
        with expect_s3_error("QuotaExceeded", 403) as refused:
            client.put_object(Bucket=bucket, Key="four", Body=b"x" * 100)
        assert "3 objects" in refused.error.response["Error"]["Message"]
        # A copy is a write too.
        with expect_s3_error("QuotaExceeded", 403):
            client.copy_object(Bucket=bucket, Key="copy",
                               CopySource={"Bucket": bucket, "Key": "one"})
        entry = wait_for_usage(mucura_binary, endpoint, user, 3, 300)
        assert (entry["quota_objects"], entry["quota_bytes"]) == (3, 10000)

        # Deleting frees room again, once the figures show the delete.
        client.delete_object(Bucket=bucket, Key="one")
        wait_for_usage(mucura_binary, endpoint, user, 2, 200)
        deadline = time.monotonic() + CONVERGENCE_SECONDS
        while True:
            try:
                client.put_object(Bucket=bucket, Key="four", Body=b"x" * 100)
                break
            except client.exceptions.ClientError as error:
                if error.response["Error"]["Code"] != "QuotaExceeded" or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert client.get_object(Bucket=bucket, Key="four")["Body"].read() == b"x" * 100
    finally:
        empty_and_delete_bucket(client, bucket)


def test_a_multipart_completion_past_the_quota_is_refused(mucura_binary, mucura, endpoint):
    user, client = user_client(mucura_binary, endpoint, mucura.endpoint, "quota-mpu",
                               "--quota-bytes", str(8 * MIB))
    bucket = unique_bucket_name("usage-quota-mpu")
    client.create_bucket(Bucket=bucket)
    try:
        # Each 5 MiB part fits under 8 MiB; the 10 MiB object does not.
        upload_id, parts = multipart(client, bucket, "big", [5 * MIB, 5 * MIB])
        with expect_s3_error("QuotaExceeded", 403) as refused:
            client.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id,
                                             MultipartUpload={"Parts": parts})
        assert f"{8 * MIB} bytes" in refused.error.response["Error"]["Message"]
        # Nothing was stored, and the upload is still open until aborted.
        with expect_s3_error("NoSuchKey", 404):
            client.get_object(Bucket=bucket, Key="big")
        listed = client.list_parts(Bucket=bucket, Key="big", UploadId=upload_id)
        assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
        client.abort_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id)

        # A part that alone exceeds the quota is refused when uploaded.
        upload_id = client.create_multipart_upload(Bucket=bucket, Key="huge")["UploadId"]
        with expect_s3_error("QuotaExceeded", 403):
            client.upload_part(Bucket=bucket, Key="huge", UploadId=upload_id, PartNumber=1,
                               Body=b"z" * (8 * MIB + 1))
        client.abort_multipart_upload(Bucket=bucket, Key="huge", UploadId=upload_id)
        wait_for_usage(mucura_binary, endpoint, user, 0, 0)

        # One that fits completes.
        upload_id, parts = multipart(client, bucket, "fits", [5 * MIB, 1 * MIB])
        client.complete_multipart_upload(Bucket=bucket, Key="fits", UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
        wait_for_usage(mucura_binary, endpoint, user, 1, 6 * MIB)
    finally:
        empty_and_delete_bucket(client, bucket)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "\nState:\tZ" not in status.read_text()


def _node_objects_gauge(node: dict) -> float | None:
    """This node's `mucura_objects` gauge (the objects its replicas account for)."""
    try:
        with urllib.request.urlopen(f"http://{node['admin']}/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("mucura_objects "):
            return float(line.split()[1])
    return None


@pytest.mark.skipif(not CLUSTER, reason="node failures need a cluster (MUCURA_TEST_TARGET=cluster)")
def test_usage_converges_after_a_node_failure(mucura_binary, tmp_path):
    cluster = LocalClusterProcess(mucura_binary, tmp_path, nodes=3)
    cluster.start()
    restarted = None
    try:
        seed, through, victim = cluster.nodes
        admin = AdminEndpoint(f"http://{seed['admin']}", cluster.admin_token(seed))
        user, client = user_client(mucura_binary, admin, f"http://{through['s3']}", "failure")
        bucket = unique_bucket_name("usage-failure")
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key="before", Body=b"b" * 10)
        wait_for_usage(mucura_binary, admin, user, 1, 10)

        # The victim misses these writes (hinted for it) and a delete.
        os.kill(victim["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(victim["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        for index in range(5):
            client.put_object(Bucket=bucket, Key=f"while-down-{index}", Body=b"w" * 100)
        client.delete_object(Bucket=bucket, Key="before")
        # The two live owners outvote the victim's stale figures.
        wait_for_usage(mucura_binary, admin, user, 5, 500)

        # Back up: hints, read repair and anti-entropy bring it the writes exactly once.
        with open(tmp_path / "victim-restarted.log", "ab") as log:
            restarted = subprocess.Popen(
                victim["argv"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=cluster.env, preexec_fn=_die_with_parent)
        victim_admin = AdminEndpoint(f"http://{victim['admin']}", cluster.admin_token(victim))
        deadline = time.monotonic() + CONVERGENCE_SECONDS * 2
        while _node_objects_gauge(victim) != 5.0:
            if time.monotonic() > deadline:
                pytest.fail(f"the victim accounts for {_node_objects_gauge(victim)} objects, not 5")
            # Repair now rather than at the next scheduled anti-entropy round.
            run_admin(mucura_binary, victim_admin, "cluster", "anti-entropy")
            time.sleep(1)
        wait_for_usage(mucura_binary, victim_admin, user, 5, 500)
        for node in (seed, through):
            assert _node_objects_gauge(node) == 5.0
        wait_for_usage(mucura_binary, admin, user, 5, 500)
        empty_and_delete_bucket(client, bucket)
    finally:
        if restarted is not None and restarted.poll() is None:
            restarted.send_signal(signal.SIGTERM)
            try:
                restarted.wait(timeout=15)
            except Exception:  # noqa: BLE001 - teardown must go on
                restarted.kill()
        cluster.stop()

