"""The `mucura` user commands (ls, cp, rm, share, mb, rb, env, credential-process) against the
session server: transfers both ways (single PUT and multipart), recursive copies and deletes,
presigned share links fetched with urllib, the credential sources (environment, AWS profile
with credential_process, the login cache with temporary credentials) and the error messages.

Runs against a single node and, with MUCURA_TEST_TARGET=cluster, against a local cluster.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from s3_helpers import (
    MIB,
    REGION,
    make_file_tree,
    sha256_file,
    tree_files,
    unique_bucket_name,
)
from test_users import new_key, new_user, session_admin

# Generous for a 20 MiB transfer on a loaded CI machine, short enough to catch a hang.
COMMAND_TIMEOUT_SECONDS = 120


class Mucura:
    """Runs `mucura` user commands with an environment and home directory of their own."""

    def __init__(self, binary: Path, env: dict):
        self.binary = binary
        self.env = env

    def __call__(self, *args: str, check: bool = True, env: dict | None = None, cwd=None):
        completed = subprocess.run(
            [str(self.binary), *args],
            env=env or self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
        )
        print(f"$ mucura {' '.join(args)} -> {completed.returncode}")
        if check and completed.returncode != 0:
            pytest.fail(
                f"mucura {' '.join(args)} exited with {completed.returncode}\n"
                f"--- stdout ---\n{completed.stdout[-3000:]}\n--- stderr ---\n{completed.stderr[-3000:]}"
            )
        return completed


def clean_env(home: Path) -> dict:
    """The process environment without any AWS_ or grid variable, with a private home."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "X509_", "MUCURA_"))
    }
    env.update(
        {
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / "cache"),
            "AWS_CONFIG_FILE": str(home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
            "MUCURA_LOG": "warn",
        "RUST_BACKTRACE": "0",
        }
    )
    return env


@pytest.fixture(scope="module")
def cli(mucura, mucura_binary, tmp_path_factory) -> Mucura:
    """`mucura` with the root keys and endpoint in the environment."""
    home = tmp_path_factory.mktemp("user-cli-home")
    env = clean_env(home)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": mucura.access_key,
            "AWS_SECRET_ACCESS_KEY": mucura.secret_key,
            "AWS_ENDPOINT_URL": mucura.endpoint,
            "AWS_REGION": REGION,
        }
    )
    return Mucura(mucura_binary, env)


def test_mb_ls_rb(cli, s3, request):
    name = unique_bucket_name(request.node.name)
    assert cli("mb", f"s3://{name}").stdout.strip() == f"make_bucket: {name}"
    s3.head_bucket(Bucket=name)
    listed = cli("ls").stdout.splitlines()
    line = next(line for line in listed if line.endswith(f"  {name}"))
    # "YYYY-MM-DD HH:MM:SS  name"
    assert line[4] == "-" and line[10] == " " and line[13] == ":", line
    assert cli("rb", f"s3://{name}").stdout.strip() == f"remove_bucket: {name}"
    assert not any(line.endswith(f"  {name}") for line in cli("ls").stdout.splitlines())


def test_cp_up_and_down_with_ls_sizes(cli, s3, bucket, tmp_path):
    source = tmp_path / "hello world.txt"
    source.write_bytes(b"hello from mucura cp\n" * 100)
    cli("cp", str(source), f"s3://{bucket}/docs/")
    assert s3.get_object(Bucket=bucket, Key="docs/hello world.txt")["Body"].read() == (
        source.read_bytes()
    )
    cli("cp", str(source), f"s3://{bucket}/renamed.txt")

    top = cli("ls", f"s3://{bucket}").stdout.splitlines()
    assert any(line.split() == ["PRE", "docs/"] for line in top), top
    renamed = next(line for line in top if line.endswith(" renamed.txt"))
    assert renamed.split()[2] == str(source.stat().st_size)
    inside = cli("ls", f"s3://{bucket}/docs/").stdout
    assert inside.rstrip().endswith(" 2100  hello world.txt"), inside

    down_dir = tmp_path / "down"
    down_dir.mkdir()
    cli("cp", f"s3://{bucket}/docs/hello world.txt", f"{down_dir}/")
    assert (down_dir / "hello world.txt").read_bytes() == source.read_bytes()
    cli("cp", f"s3://{bucket}/renamed.txt", str(down_dir / "explicit.txt"))
    assert (down_dir / "explicit.txt").read_bytes() == source.read_bytes()
    # No partial files are left behind.
    assert sorted(path.name for path in down_dir.iterdir()) == ["explicit.txt", "hello world.txt"]


def test_multipart_upload_and_streaming_download(cli, s3, bucket, random_file, tmp_path):
    source = random_file(20 * MIB)
    cli(
        "cp", str(source), f"s3://{bucket}/big/20MiB.bin",
        "--multipart-threshold", "8MiB", "--part-size", "5MiB",
    )
    head = s3.head_object(Bucket=bucket, Key="big/20MiB.bin")
    assert head["ContentLength"] == 20 * MIB
    # A multipart object's ETag ends with its part count: 20 MiB in 5 MiB parts.
    assert head["ETag"].strip('"').endswith("-4"), head["ETag"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    target = tmp_path / "copy.bin"
    cli("cp", f"s3://{bucket}/big/20MiB.bin", str(target))
    assert sha256_file(target) == sha256_file(source)

    # Below the threshold the same file goes up in one PUT (a plain MD5 ETag).
    cli("cp", str(source), f"s3://{bucket}/big/single.bin", "--multipart-threshold", "64MiB")
    assert "-" not in s3.head_object(Bucket=bucket, Key="big/single.bin")["ETag"]


def test_recursive_cp_and_rm(cli, s3, bucket, tmp_path):
    tree = tmp_path / "tree"
    files = make_file_tree(tree)
    cli("cp", "-r", str(tree), f"s3://{bucket}/set")
    keys = sorted(
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    )
    assert keys == sorted(f"set/{name}" for name in files)
    listed = cli("ls", "-r", f"s3://{bucket}/set/").stdout.splitlines()
    assert len(listed) == len(files)
    assert all(line.split("  ")[-1].startswith("set/") for line in listed)

    back = tmp_path / "back"
    cli("cp", "--recursive", f"s3://{bucket}/set", str(back))
    assert tree_files(back) == files

    # A directory without -r is refused, as is a prefix download without -r.
    refused = cli("cp", str(tree), f"s3://{bucket}/x", check=False)
    assert refused.returncode != 0 and "use -r" in refused.stderr
    refused = cli("cp", f"s3://{bucket}/set/", str(tmp_path / "y"), check=False)
    assert refused.returncode != 0 and "use -r" in refused.stderr

    s3.put_object(Bucket=bucket, Key="keep.txt", Body=b"stays")
    deleted = cli("rm", "-r", f"s3://{bucket}/set").stdout.splitlines()
    assert len(deleted) == len(files) and all(line.startswith("delete: s3://") for line in deleted)
    remaining = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [item["Key"] for item in remaining] == ["keep.txt"]
    assert cli("rm", f"s3://{bucket}/keep.txt").stdout.strip() == f"delete: s3://{bucket}/keep.txt"
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def fetch(url: str) -> tuple[int, bytes]:
    """GETs a URL with urllib; returns (status, body) for errors too."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_share_gives_a_working_presigned_url(cli, s3, bucket):
    s3.put_object(Bucket=bucket, Key="shared/report ü.txt", Body=b"for your eyes")
    url = cli("share", f"s3://{bucket}/shared/report ü.txt", "--expires", "10m").stdout.strip()
    assert "X-Amz-Expires=600" in url and "X-Amz-Signature=" in url
    assert fetch(url) == (200, b"for your eyes")
    tampered_status, _ = fetch(url.replace("X-Amz-Expires=600", "X-Amz-Expires=601"))
    assert tampered_status == 403
    assert "X-Amz-Expires=604800" in cli("share", f"s3://{bucket}/shared/report ü.txt",
                                          "--expires", "7d").stdout

    too_long = cli("share", f"s3://{bucket}/shared/report ü.txt", "--expires", "8d", check=False)
    assert too_long.returncode != 0 and "7 days" in too_long.stderr
    missing = cli("share", f"s3://{bucket}/nothing-here", check=False)
    assert missing.returncode != 0 and "NoSuchKey" in missing.stderr


def test_errors_carry_the_s3_code_and_fail_the_command(cli, tmp_path):
    missing = f"s3://{unique_bucket_name('no-such')}"
    listed = cli("ls", missing, check=False)
    assert listed.returncode != 0
    assert "NoSuchBucket" in listed.stderr, listed.stderr
    source = tmp_path / "f.txt"
    source.write_text("x")
    copied = cli("cp", str(source), f"{missing}/f.txt", check=False)
    assert copied.returncode != 0 and "NoSuchBucket" in copied.stderr
    downloaded = cli("cp", f"{missing}/f.txt", str(tmp_path / "g.txt"), check=False)
    assert downloaded.returncode != 0
    assert not (tmp_path / "g.txt").exists()

    bad_url = cli("ls", "s3://Not_A_Bucket", check=False)
    assert bad_url.returncode != 0 and "invalid bucket name" in bad_url.stderr
    both_local = cli("cp", str(source), str(tmp_path / "h.txt"), check=False)
    assert both_local.returncode != 0 and "must be an S3 URL" in both_local.stderr

    wrong_secret = dict(cli.env, AWS_SECRET_ACCESS_KEY="wrong-secret")
    refused = cli("ls", check=False, env=wrong_secret)
    assert refused.returncode != 0 and "SignatureDoesNotMatch" in refused.stderr


def test_nothing_configured_is_explained(mucura_binary, tmp_path):
    bare = Mucura(mucura_binary, clean_env(tmp_path))
    result = bare("ls", check=False)
    assert result.returncode != 0
    assert "no S3 credentials" in result.stderr and "mucura login" in result.stderr, result.stderr
    no_login = bare("env", check=False)
    assert no_login.returncode != 0 and "not logged in" in no_login.stderr


def test_a_profile_with_credential_process_is_used(mucura, mucura_binary, s3, bucket, tmp_path):
    env = clean_env(tmp_path)
    helper = tmp_path / "creds.sh"
    helper.write_text(
        "#!/bin/sh\n"
        f"echo '{{\"Version\": 1, \"AccessKeyId\": \"{mucura.access_key}\", "
        f"\"SecretAccessKey\": \"{mucura.secret_key}\"}}'\n"
    )
    helper.chmod(0o700)
    Path(env["AWS_CONFIG_FILE"]).write_text(
        f"[default]\nregion = {REGION}\n\n[profile lab]\ncredential_process = {helper}\n"
        f"endpoint_url = {mucura.endpoint}\n"
    )
    s3.put_object(Bucket=bucket, Key="via-profile.txt", Body=b"p")
    listed = Mucura(mucura_binary, env)("ls", "--profile", "lab", f"s3://{bucket}").stdout
    assert listed.rstrip().endswith(" 1  via-profile.txt"), listed
    unknown = Mucura(mucura_binary, env)("ls", "--profile", "nope", check=False)
    assert unknown.returncode != 0 and 'profile "nope"' in unknown.stderr


@pytest.fixture(scope="module")
def session_credentials(mucura, mucura_binary) -> dict:
    """Temporary credentials of a fresh user (STS AssumeRole on the S3 endpoint)."""
    endpoint = session_admin(mucura)
    user = new_user(mucura_binary, endpoint, "cli-session")
    key = new_key(mucura_binary, endpoint, user)
    sts = boto3.client(
        "sts",
        endpoint_url=mucura.endpoint,
        region_name=REGION,
        aws_access_key_id=key.access_key,
        aws_secret_access_key=key.secret_key,
        config=Config(retries={"total_max_attempts": 1}),
    )
    # A new key may take a moment to reach every node of a cluster.
    for attempt in range(50):
        try:
            return sts.assume_role(
                RoleArn="arn:aws:iam::000000000000:role/mucura-session",
                RoleSessionName="user-cli",
                DurationSeconds=900,
            )["Credentials"]
        except ClientError as error:
            if attempt == 49 or error.response["Error"]["Code"] != "InvalidAccessKeyId":
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def write_login_cache(home: Path, credentials: dict, endpoint: str) -> Path:
    """A login cache as `mucura login` leaves it, for a proxy file that has not changed."""
    proxy = home / "x509up_test"
    proxy.write_bytes(b"a proxy file stands here")
    cache = home / "cache" / "mucura" / "credentials.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(
        json.dumps(
            {
                "version": 1,
                "access_key_id": credentials["AccessKeyId"],
                "secret_access_key": credentials["SecretAccessKey"],
                "session_token": credentials["SessionToken"],
                "expiration": credentials["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endpoint": endpoint,
                "proxy_path": str(proxy),
                "proxy_sha256": hashlib.sha256(proxy.read_bytes()).hexdigest(),
                "grid_url": "https://127.0.0.1:1",
                "ca_file": None,
                "duration_seconds": 900,
            }
        )
    )
    cache.chmod(0o600)
    return cache


def test_temporary_credentials_from_the_login_cache(
    mucura, mucura_binary, session_credentials, tmp_path
):
    env = clean_env(tmp_path)
    write_login_cache(tmp_path, session_credentials, mucura.endpoint)
    user = Mucura(mucura_binary, env)
    name = unique_bucket_name("cli-session")
    user("mb", f"s3://{name}")
    source = tmp_path / "data.txt"
    source.write_bytes(b"signed with a session token")
    user("cp", str(source), f"s3://{name}/data.txt")
    assert "data.txt" in user("ls", f"s3://{name}").stdout

    url = user("share", f"s3://{name}/data.txt", "--expires", "300").stdout.strip()
    assert "X-Amz-Security-Token=" in url
    assert fetch(url) == (200, b"signed with a session token")

    exports = user("env").stdout
    assert f"export AWS_ACCESS_KEY_ID={session_credentials['AccessKeyId']}\n" in exports
    assert f"export AWS_ENDPOINT_URL={mucura.endpoint}\n" in exports
    process = json.loads(user("credential-process").stdout)
    assert process["Version"] == 1
    assert process["SessionToken"] == session_credentials["SessionToken"]

    # The exported variables work on their own (no cache needed).
    exported = clean_env(tmp_path / "elsewhere")
    for line in exports.splitlines():
        name_value = line.removeprefix("export ")
        variable, _, value = name_value.partition("=")
        exported[variable] = value.strip("'")
    assert "data.txt" in Mucura(mucura_binary, exported)("ls", f"s3://{name}").stdout

    user("rm", f"s3://{name}/data.txt")
    user("rb", f"s3://{name}")
