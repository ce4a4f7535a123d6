"""s3cmd with Signature V2 and with V4: mb, put, get, ls, del, sync, a 20 MiB multipart, signurl."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from s3_helpers import (
    MIB,
    curl,
    empty_and_delete_bucket,
    make_file_tree,
    multipart_etag,
    require_tool,
    run_tool,
    sha256_file,
    tree_files,
    unique_bucket_name,
)


class S3cmd:
    """Runs s3cmd with a config file of its own."""

    def __init__(self, executable: str, config: Path, env: dict):
        self.executable = executable
        self.config = config
        self.env = env

    def __call__(self, *args: str, check: bool = True):
        return run_tool(
            [self.executable, "-c", str(self.config), "--no-progress", *args],
            env=self.env,
            check=check,
        )


@pytest.fixture(params=[True, False], ids=["sigv2", "sigv4"])
def s3cmd(request, mucura, tmp_path) -> S3cmd:
    executable = require_tool("s3cmd")
    config = tmp_path / "s3cfg"
    config.write_text(
        "\n".join(
            [
                "[default]",
                f"access_key = {mucura.access_key}",
                f"secret_key = {mucura.secret_key}",
                f"host_base = {mucura.host_port}",
                f"host_bucket = {mucura.host_port}",
                "use_https = False",
                "check_ssl_certificate = False",
                f"signature_v2 = {request.param}",
                "bucket_location = us-east-1",
                "multipart_chunk_size_mb = 15",
                "",
            ]
        )
    )
    env = dict(os.environ, HOME=str(tmp_path), LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8")
    return S3cmd(executable, config, env)


@pytest.fixture
def s3cmd_bucket(s3cmd, s3, request):
    name = unique_bucket_name(request.node.name)
    made = s3cmd("mb", f"s3://{name}")
    assert f"Bucket 's3://{name}/' created" in made.stdout
    yield name
    empty_and_delete_bucket(s3, name)


def test_put_get_ls_del(s3cmd, s3, s3cmd_bucket, tmp_path):
    data = os.urandom(123_456)
    local = tmp_path / "local file.bin"
    local.write_bytes(data)
    s3cmd("put", str(local), f"s3://{s3cmd_bucket}/dir/remote file.bin")
    s3cmd("put", str(local), f"s3://{s3cmd_bucket}/top.bin")
    assert s3.get_object(Bucket=s3cmd_bucket, Key="dir/remote file.bin")["Body"].read() == data

    listing = s3cmd("ls", f"s3://{s3cmd_bucket}").stdout
    assert re.search(rf"DIR\s+s3://{s3cmd_bucket}/dir/$", listing, re.MULTILINE), listing
    assert re.search(rf"\s123456\s+s3://{s3cmd_bucket}/top.bin$", listing, re.MULTILINE), listing
    recursive = s3cmd("ls", "--recursive", f"s3://{s3cmd_bucket}").stdout
    assert f"s3://{s3cmd_bucket}/dir/remote file.bin" in recursive

    target = tmp_path / "fetched.bin"
    s3cmd("get", f"s3://{s3cmd_bucket}/dir/remote file.bin", str(target))
    assert target.read_bytes() == data

    deleted = s3cmd("del", f"s3://{s3cmd_bucket}/dir/remote file.bin").stdout
    assert f"delete: 's3://{s3cmd_bucket}/dir/remote file.bin'" in deleted
    remaining = s3.list_objects_v2(Bucket=s3cmd_bucket)
    assert [item["Key"] for item in remaining["Contents"]] == ["top.bin"]

    buckets = s3cmd("ls").stdout
    assert f"s3://{s3cmd_bucket}" in buckets


def test_sync_folder(s3cmd, s3, s3cmd_bucket, tmp_path):
    local = tmp_path / "tree"
    files = make_file_tree(local)
    s3cmd("sync", f"{local}/", f"s3://{s3cmd_bucket}/synced/")
    listed = s3.list_objects_v2(Bucket=s3cmd_bucket, Prefix="synced/")
    assert sorted(item["Key"] for item in listed["Contents"]) == sorted(
        f"synced/{name}" for name in files
    )
    again = s3cmd("sync", f"{local}/", f"s3://{s3cmd_bucket}/synced/").stdout
    assert "upload:" not in again, again

    down = tmp_path / "down"
    down.mkdir()
    s3cmd("sync", f"s3://{s3cmd_bucket}/synced/", f"{down}/")
    assert tree_files(down) == files


def test_put_20_mib_multipart(s3cmd, s3, s3cmd_bucket, random_file, tmp_path):
    source = random_file(20 * MIB)
    s3cmd("put", str(source), f"s3://{s3cmd_bucket}/big.bin")
    head = s3.head_object(Bucket=s3cmd_bucket, Key="big.bin")
    assert head["ContentLength"] == 20 * MIB
    data = source.read_bytes()
    assert head["ETag"] == multipart_etag([data[: 15 * MIB], data[15 * MIB :]])
    target = tmp_path / "big-down.bin"
    s3cmd("get", f"s3://{s3cmd_bucket}/big.bin", str(target))
    assert sha256_file(target) == sha256_file(source)


def test_signurl_with_curl(s3cmd, s3, s3cmd_bucket):
    data = os.urandom(40_000)
    s3.put_object(Bucket=s3cmd_bucket, Key="signed/object.bin", Body=data)
    url = s3cmd("signurl", f"s3://{s3cmd_bucket}/signed/object.bin", "+300").stdout.strip()
    assert "Signature=" in url and "Expires=" in url, url
    status, body = curl([url])
    assert status == 200, body[:500]
    assert body == data
