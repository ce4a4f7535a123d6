"""AWS CLI (v1, from PyPI): mb, cp of a 110 MiB file, sync, ls, rm, presign, s3api."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from s3_helpers import (
    MIB,
    curl,
    make_file_tree,
    require_tool,
    run_tool,
    sha256_file,
    tree_files,
    unique_bucket_name,
)


class AwsCli:
    """Runs `aws` against the test server with an environment of its own."""

    def __init__(self, executable: str, endpoint: str, env: dict):
        self.executable = executable
        self.endpoint = endpoint
        self.env = env

    def __call__(self, *args: str, cwd: Path | None = None, check: bool = True):
        return run_tool(
            [self.executable, "--endpoint-url", self.endpoint, *args],
            env=self.env,
            cwd=cwd,
            check=check,
        )


@pytest.fixture(scope="module")
def aws(mucura, tmp_path_factory) -> AwsCli:
    executable = require_tool("aws")
    home = tmp_path_factory.mktemp("awscli-home")
    config = home / "config"
    # Path-style addressing, and nothing else: the host's own ~/.aws must never leak in.
    config.write_text("[default]\ns3 =\n    addressing_style = path\n")
    credentials = home / "credentials"
    credentials.write_text("")
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": mucura.access_key,
            "AWS_SECRET_ACCESS_KEY": mucura.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "HOME": str(home),
            "LC_ALL": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
        }
    )
    return AwsCli(executable, mucura.endpoint, env)


@pytest.fixture
def cli_bucket(aws, request):
    name = unique_bucket_name(request.node.name)
    made = aws("s3", "mb", f"s3://{name}")
    assert made.stdout.strip() == f"make_bucket: {name}"
    yield name
    aws("s3", "rb", "--force", f"s3://{name}", check=False)


def test_cp_110_mib_up_and_down(aws, s3, cli_bucket, random_file, tmp_path):
    source = random_file(110 * MIB)
    aws("s3", "cp", str(source), f"s3://{cli_bucket}/big/110MiB.bin", "--only-show-errors")
    head = s3.head_object(Bucket=cli_bucket, Key="big/110MiB.bin")
    assert head["ContentLength"] == 110 * MIB
    # The CLI's default 8 MiB threshold and chunk size: 14 parts.
    assert head["ETag"].endswith('-14"'), head["ETag"]

    target = tmp_path / "down.bin"
    aws("s3", "cp", f"s3://{cli_bucket}/big/110MiB.bin", str(target), "--only-show-errors")
    assert sha256_file(target) == sha256_file(source)


def uploads_in(output: str) -> list[str]:
    """The paths below s3://BUCKET/tree/ that an `aws s3 sync` run said it uploaded."""
    pattern = r"^(?:\(dryrun\) )?upload: .+ to s3://[^/]+/tree/(.+)$"
    return sorted(re.findall(pattern, output, re.MULTILINE))


def test_sync_up_modify_and_down(aws, s3, cli_bucket, tmp_path):
    local = tmp_path / "tree"
    files = make_file_tree(local)
    assert len(files) == 30
    # Files older than the upload, so that a timestamp rounded to the second in the listing
    # cannot make the CLI think a local file is newer than its copy.
    hour_ago = time.time() - 3600
    for path in local.rglob("*"):
        os.utime(path, (hour_ago, hour_ago))
    first = aws("s3", "sync", str(local), f"s3://{cli_bucket}/tree", "--no-progress")
    assert uploads_in(first.stdout) == sorted(files)

    listed = aws("s3", "ls", "--recursive", f"s3://{cli_bucket}/tree/")
    lines = [line for line in listed.stdout.splitlines() if line.strip()]
    assert len(lines) == 30
    listed_sizes = {line.split(None, 3)[3]: int(line.split(None, 3)[2]) for line in lines}
    assert listed_sizes == {f"tree/{name}": len(content) for name, content in files.items()}

    nothing = aws("s3", "sync", str(local), f"s3://{cli_bucket}/tree", "--no-progress")
    assert uploads_in(nothing.stdout) == [], nothing.stdout

    changed = "ünïcödé/файл-2.txt"
    assert len(files[changed]) > 100
    (local / changed).write_bytes(b"changed content, another size")
    dry = aws("s3", "sync", str(local), f"s3://{cli_bucket}/tree", "--dryrun")
    assert uploads_in(dry.stdout) == [changed], dry.stdout
    second = aws("s3", "sync", str(local), f"s3://{cli_bucket}/tree", "--no-progress")
    assert uploads_in(second.stdout) == [changed], second.stdout

    down = tmp_path / "down"
    aws("s3", "sync", f"s3://{cli_bucket}/tree", str(down), "--no-progress")
    assert tree_files(down) == tree_files(local)

    removed = aws("s3", "rm", "--recursive", f"s3://{cli_bucket}/tree")
    assert len(re.findall(r"^delete: s3://", removed.stdout, re.MULTILINE)) == 30
    assert s3.list_objects_v2(Bucket=cli_bucket)["KeyCount"] == 0


def test_presign_and_curl(aws, s3, cli_bucket):
    data = os.urandom(50_000)
    s3.put_object(Bucket=cli_bucket, Key="pre/signed file.bin", Body=data)
    url = aws(
        "s3", "presign", f"s3://{cli_bucket}/pre/signed file.bin", "--expires-in", "300"
    ).stdout.strip()
    assert url.startswith(aws.endpoint), url
    status, body = curl([url])
    assert status == 200, body[:500]
    assert body == data


def test_s3api_list_objects_v2(aws, s3, cli_bucket):
    keys = ["docs/a.txt", "docs/b.txt", "docs/sub/c.txt", "img/x.png"]
    for key in keys:
        s3.put_object(Bucket=cli_bucket, Key=key, Body=key.encode())
    listed = aws(
        "s3api", "list-objects-v2", "--bucket", cli_bucket, "--prefix", "docs/", "--delimiter", "/"
    )
    answer = json.loads(listed.stdout)
    assert [item["Key"] for item in answer["Contents"]] == ["docs/a.txt", "docs/b.txt"]
    assert [item["Prefix"] for item in answer["CommonPrefixes"]] == ["docs/sub/"]
    assert answer["Contents"][0]["Size"] == len(b"docs/a.txt")

    paged = aws("s3api", "list-objects-v2", "--bucket", cli_bucket, "--page-size", "1")
    assert [item["Key"] for item in json.loads(paged.stdout)["Contents"]] == keys

    head = json.loads(
        aws("s3api", "head-object", "--bucket", cli_bucket, "--key", "img/x.png").stdout
    )
    assert head["ContentLength"] == len(b"img/x.png")


def test_ls_lists_buckets_and_prefixes(aws, s3, cli_bucket):
    s3.put_object(Bucket=cli_bucket, Key="folder/inner.txt", Body=b"i")
    s3.put_object(Bucket=cli_bucket, Key="top.txt", Body=b"top")
    buckets = aws("s3", "ls").stdout
    assert re.search(rf"^\S+ \S+ {re.escape(cli_bucket)}$", buckets, re.MULTILINE), buckets
    root = aws("s3", "ls", f"s3://{cli_bucket}/").stdout.splitlines()
    assert root[0].split() == ["PRE", "folder/"]
    assert root[1].split()[2:] == ["3", "top.txt"]
