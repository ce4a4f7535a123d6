"""rclone (S3 backend, provider Other): mkdir, copy, check, ls, lsd, multipart, delete, purge."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from s3_helpers import (
    MIB,
    empty_and_delete_bucket,
    make_file_tree,
    require_tool,
    run_tool,
    sha256_file,
    tree_files,
    unique_bucket_name,
)


class Rclone:
    """Runs rclone with the `mucura:` remote defined by environment variables only."""

    def __init__(self, executable: str, config: Path, env: dict):
        self.executable = executable
        self.config = config
        self.env = env

    def __call__(self, *args: str, check: bool = True):
        return run_tool(
            [
                self.executable,
                "--config",
                str(self.config),
                "--retries",
                "1",
                "--low-level-retries",
                "1",
                *args,
            ],
            env=self.env,
            check=check,
            timeout=400,
        )


@pytest.fixture(scope="module")
def rclone(mucura, tmp_path_factory) -> Rclone:
    executable = require_tool("rclone")
    home = tmp_path_factory.mktemp("rclone-home")
    config = home / "rclone.conf"
    config.write_text("")
    # The host's AWS_* settings (a CA bundle, a profile) must not reach rclone's AWS SDK either.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RCLONE_", "AWS_"))
    }
    env.update(
        {
            "HOME": str(home),
            "RCLONE_CONFIG_MUCURA_TYPE": "s3",
            "RCLONE_CONFIG_MUCURA_PROVIDER": "Other",
            "RCLONE_CONFIG_MUCURA_ACCESS_KEY_ID": mucura.access_key,
            "RCLONE_CONFIG_MUCURA_SECRET_ACCESS_KEY": mucura.secret_key,
            "RCLONE_CONFIG_MUCURA_ENDPOINT": mucura.endpoint,
            "RCLONE_CONFIG_MUCURA_REGION": "us-east-1",
            "RCLONE_CONFIG_MUCURA_FORCE_PATH_STYLE": "true",
        }
    )
    return Rclone(executable, config, env)


@pytest.fixture
def rclone_bucket(rclone, s3, request):
    name = unique_bucket_name(request.node.name)
    rclone("mkdir", f"mucura:{name}")
    s3.head_bucket(Bucket=name)
    yield name
    empty_and_delete_bucket(s3, name)


def test_copy_check_ls_lsd_delete(rclone, s3, rclone_bucket, tmp_path):
    local = tmp_path / "tree"
    files = make_file_tree(local)
    rclone("copy", str(local), f"mucura:{rclone_bucket}/tree")

    checked = rclone("check", str(local), f"mucura:{rclone_bucket}/tree")
    assert "0 differences found" in checked.stderr, checked.stderr
    assert f"{len(files)} matching files" in checked.stderr, checked.stderr

    listed = rclone("ls", f"mucura:{rclone_bucket}/tree").stdout
    sizes = {}
    for line in listed.splitlines():
        size, name = line.strip().split(" ", 1)
        sizes[name] = int(size)
    assert sizes == {name: len(content) for name, content in files.items()}

    directories = rclone("lsd", f"mucura:{rclone_bucket}/tree").stdout
    # Each line: size, date, time, count, name (which may hold spaces).
    names = sorted(line.split(None, 4)[4] for line in directories.splitlines() if line.strip())
    assert names == sorted({name.split("/")[0] for name in files if "/" in name}), directories

    down = tmp_path / "down"
    rclone("copy", f"mucura:{rclone_bucket}/tree", str(down))
    assert tree_files(down) == files

    rclone("delete", f"mucura:{rclone_bucket}/tree/a")
    remaining = s3.list_objects_v2(Bucket=rclone_bucket, Prefix="tree/")["Contents"]
    assert sorted(item["Key"] for item in remaining) == sorted(
        f"tree/{name}" for name in files if not name.startswith("a/")
    )


def test_copy_120_mib_multipart_and_back(rclone, s3, rclone_bucket, random_file, tmp_path):
    source = random_file(120 * MIB)
    folder = tmp_path / "big"
    folder.mkdir()
    local = folder / "120MiB.bin"
    try:
        os.link(source, local)
    except OSError:
        shutil.copyfile(source, local)
    # rclone's default cutoff is 200 MiB: lower it so this upload is multipart (8 parts).
    rclone(
        "copy",
        str(local),
        f"mucura:{rclone_bucket}/big",
        "--s3-upload-cutoff",
        "32M",
        "--s3-chunk-size",
        "16M",
    )
    head = s3.head_object(Bucket=rclone_bucket, Key="big/120MiB.bin")
    assert head["ContentLength"] == 120 * MIB
    assert head["ETag"].endswith('-8"'), head["ETag"]

    checked = rclone("check", str(folder), f"mucura:{rclone_bucket}/big")
    assert "0 differences found" in checked.stderr, checked.stderr

    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    remote_md5 = rclone("md5sum", f"mucura:{rclone_bucket}/big").stdout.split()
    assert remote_md5 == [md5, "120MiB.bin"]

    down = tmp_path / "down"
    rclone("copy", f"mucura:{rclone_bucket}/big/120MiB.bin", str(down))
    assert sha256_file(down / "120MiB.bin") == sha256_file(source)


def test_purge_removes_bucket(rclone, s3, tmp_path):
    name = unique_bucket_name("rclone-purge")
    local = tmp_path / "tree"
    files = make_file_tree(local)
    rclone("copy", str(local), f"mucura:{name}/x")
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == len(files)
    rclone("purge", f"mucura:{name}")
    buckets = [entry["Name"] for entry in s3.list_buckets()["Buckets"]]
    assert name not in buckets
    assert name not in rclone("lsd", "mucura:").stdout
