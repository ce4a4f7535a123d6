"""Durability across restarts: a clean SIGTERM stop, and `kill -9` after an acknowledged put."""

from __future__ import annotations

import os

import pytest

from mucura_server import MucuraServer
from s3_helpers import MIB, expect_s3_error, make_s3_client, multipart_etag


@pytest.fixture
def own_server(mucura_binary, tmp_path):
    """A server of this test alone (the session server must not be restarted)."""
    server = MucuraServer(tmp_path / "node", mucura_binary)
    server.start()
    yield server
    if server.is_running():
        exit_code = server.stop()
        assert exit_code == 0, f"mucura exited with {exit_code} after SIGTERM\n{server.log_tail()}"


def client_of(server: MucuraServer):
    return make_s3_client(server.endpoint, server.access_key, server.secret_key)


def restart(server: MucuraServer, kill: bool):
    if kill:
        server.kill()
    else:
        exit_code = server.stop()
        assert exit_code == 0, f"mucura exited with {exit_code} after SIGTERM\n{server.log_tail()}"
    server.start()
    return client_of(server)


def test_objects_survive_a_clean_restart(own_server):
    s3 = client_of(own_server)
    s3.create_bucket(Bucket="durable")
    # Sizes from empty through inline-sized up to several 1 MiB blocks.
    objects = {f"obj/{index:02d}": os.urandom(index * 97 * 1024 + index) for index in range(20)}
    for key, data in objects.items():
        s3.put_object(Bucket="durable", Key=key, Body=data, Metadata={"index": key[-2:]})
    s3.put_object(Bucket="durable", Key="deleted-before-restart", Body=b"bye")
    s3.delete_object(Bucket="durable", Key="deleted-before-restart")
    upload_id = s3.create_multipart_upload(Bucket="durable", Key="pending")["UploadId"]
    first_part = os.urandom(5 * MIB)
    first_etag = s3.upload_part(
        Bucket="durable", Key="pending", UploadId=upload_id, PartNumber=1, Body=first_part
    )["ETag"]

    s3 = restart(own_server, kill=False)

    assert "durable" in [entry["Name"] for entry in s3.list_buckets()["Buckets"]]
    listed = s3.list_objects_v2(Bucket="durable")
    assert [item["Key"] for item in listed["Contents"]] == sorted(objects)
    for key, data in objects.items():
        got = s3.get_object(Bucket="durable", Key=key)
        assert got["Body"].read() == data, key
        assert got["Metadata"] == {"index": key[-2:]}
    with expect_s3_error("NoSuchKey", 404):
        s3.get_object(Bucket="durable", Key="deleted-before-restart")

    # A multipart upload started before the restart can be finished after it.
    last_part = b"tail"
    last_etag = s3.upload_part(
        Bucket="durable", Key="pending", UploadId=upload_id, PartNumber=2, Body=last_part
    )["ETag"]
    done = s3.complete_multipart_upload(
        Bucket="durable",
        Key="pending",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": first_etag}, {"PartNumber": 2, "ETag": last_etag}]
        },
    )
    assert done["ETag"] == multipart_etag([first_part, last_part])
    assert s3.get_object(Bucket="durable", Key="pending")["Body"].read() == first_part + last_part


def test_acknowledged_put_survives_kill_9(own_server):
    s3 = client_of(own_server)
    s3.create_bucket(Bucket="crashy")
    small = b"acknowledged small object"
    s3.put_object(Bucket="crashy", Key="small", Body=small)
    s3 = restart(own_server, kill=True)
    assert s3.get_object(Bucket="crashy", Key="small")["Body"].read() == small

    large = os.urandom(3 * MIB + 5)
    s3.put_object(Bucket="crashy", Key="large", Body=large)
    s3.delete_object(Bucket="crashy", Key="small")
    s3 = restart(own_server, kill=True)
    assert s3.get_object(Bucket="crashy", Key="large")["Body"].read() == large
    with expect_s3_error("NoSuchKey", 404):
        s3.get_object(Bucket="crashy", Key="small")
    assert [item["Key"] for item in s3.list_objects_v2(Bucket="crashy")["Contents"]] == ["large"]
