"""Shared helpers of the client tests: boto3 clients, S3 error assertions, external tools."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

MIB = 1024 * 1024
REGION = "us-east-1"


def make_s3_client(endpoint: str, access_key: str, secret_key: str, **config_overrides):
    """A boto3 S3 client for one endpoint: path-style, SigV4, no retries (errors show at once)."""
    options = {
        "signature_version": "s3v4",
        "s3": {"addressing_style": "path"},
        "retries": {"total_max_attempts": 1},
        "connect_timeout": 10,
        "read_timeout": 120,
    }
    options.update(config_overrides)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(**options),
    )


def response_status(response: dict) -> int:
    """The HTTP status of a boto3 response."""
    return response["ResponseMetadata"]["HTTPStatusCode"]


def response_headers(response: dict) -> dict:
    """The HTTP headers (lower-case names) of a boto3 response."""
    return response["ResponseMetadata"]["HTTPHeaders"]


class S3ErrorInfo:
    """What an expected S3 error looked like, for further assertions."""

    def __init__(self) -> None:
        self.error: ClientError | None = None

    @property
    def code(self) -> str:
        assert self.error is not None
        return self.error.response["Error"].get("Code", "")

    @property
    def headers(self) -> dict:
        assert self.error is not None
        return self.error.response["ResponseMetadata"]["HTTPHeaders"]


@contextlib.contextmanager
def expect_s3_error(code: str, status: int) -> Iterator[S3ErrorInfo]:
    """Asserts the block raises a boto3 ClientError with this S3 code and HTTP status.

    Every S3 error must carry an `x-amz-request-id` header; that is checked too.
    For HEAD requests (no body) boto3 reports the status number as the code: pass e.g. "404".
    """
    info = S3ErrorInfo()
    with pytest.raises(ClientError) as caught:
        yield info
    info.error = caught.value
    error = caught.value.response["Error"]
    metadata = caught.value.response["ResponseMetadata"]
    described = f"{error.get('Code')} ({metadata.get('HTTPStatusCode')}): {error.get('Message')}"
    assert error.get("Code") == code, f"expected {code}, server answered {described}"
    assert metadata.get("HTTPStatusCode") == status, f"expected HTTP {status}, got {described}"
    assert metadata["HTTPHeaders"].get("x-amz-request-id"), (
        f"error {described} lacks the x-amz-request-id header: {metadata['HTTPHeaders']}"
    )


def unique_bucket_name(hint: str) -> str:
    """A valid, unused bucket name that says which test made it."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:40].strip("-")
    return f"t-{cleaned}-{secrets.token_hex(4)}"


def empty_and_delete_bucket(s3, name: str) -> None:
    """Deletes every object and pending upload of a bucket, then the bucket."""
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        uploads = s3.list_multipart_uploads(Bucket=name).get("Uploads", [])
        for upload in uploads:
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        s3.delete_bucket(Bucket=name)
    except ClientError as error:
        if error.response["Error"].get("Code") != "NoSuchBucket":
            warnings.warn(f"cleanup of bucket {name} failed: {error}", stacklevel=1)
    except BotoCoreError as error:
        warnings.warn(f"cleanup of bucket {name} failed: {error}", stacklevel=1)


def etag_of(data: bytes) -> str:
    """The quoted ETag S3 gives a single-part object."""
    return '"' + hashlib.md5(data).hexdigest() + '"'


def multipart_etag(parts: list[bytes]) -> str:
    """The quoted ETag S3 gives a multipart object: md5 of the parts' md5s, dash, part count."""
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(MIB), b""):
            digest.update(piece)
    return digest.hexdigest()


def write_random_file(path: Path, size: int) -> Path:
    """Writes `size` random bytes to `path` (random so misplaced parts cannot go unnoticed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remaining = size
    with open(path, "wb") as handle:
        while remaining > 0:
            piece = min(remaining, 8 * MIB)
            handle.write(os.urandom(piece))
            remaining -= piece
    return path


def tools_required() -> bool:
    """Whether a missing external tool fails the test (CI, scripts/test-all) or skips it."""
    return (
        os.environ.get("CI", "").lower() == "true" or os.environ.get("MUCURA_REQUIRE_TOOLS") == "1"
    )


def require_tool(name: str) -> str:
    """Path of an external client tool; fails under CI, else skips with the reason shown."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: ./scripts/test-all installs it"
    if tools_required():
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")


def run_tool(
    args: list[str],
    env: dict | None = None,
    cwd: Path | None = None,
    timeout: float = 240,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Runs an external client; with `check`, a non-zero exit fails the test with its output.

    Each command and its duration is printed: pytest shows them with a failure's output.
    """
    started = time.monotonic()
    completed = subprocess.run(
        args,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    print(f"$ {' '.join(map(str, args))}  # {time.monotonic() - started:.1f}s")
    if check and completed.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited with {completed.returncode}\n"
            f"--- stdout ---\n{completed.stdout[-4000:]}\n"
            f"--- stderr ---\n{completed.stderr[-4000:]}"
        )
    return completed


def curl(args: list[str], timeout: float = 120) -> tuple[int, bytes]:
    """Runs curl with `args`; returns (HTTP status, response body)."""
    curl_path = require_tool("curl")
    completed = subprocess.run(
        [curl_path, "-sS", "-o", "-", "-w", "\n%{http_code}", *args],
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 0, f"curl failed: {completed.stderr.decode(errors='replace')}"
    body, _, status = completed.stdout.rpartition(b"\n")
    return int(status), body


def tree_files(root: Path) -> dict[str, bytes]:
    """Every regular file under `root`, by its relative POSIX path, with its content."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def make_file_tree(root: Path) -> dict[str, bytes]:
    """Creates a tree of 30 files (nested folders, unicode and space names); returns it."""
    names = [f"top-{index}.txt" for index in range(5)]
    names += [f"a/b/c/deep-{index}.bin" for index in range(5)]
    names += [f"ünïcödé/файл-{index}.txt" for index in range(5)]
    names += [f"spaces dir/file {index}.txt" for index in range(5)]
    names += [f"a/mixed+plus-{index}.dat" for index in range(5)]
    names += [f"z/{index}/漢字-{index}.md" for index in range(5)]
    files = {}
    for index, name in enumerate(names):
        # Sizes from 0 bytes up to ~200 KB.
        content = os.urandom((index * 7919) % 200_000)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        files[name] = content
    return files
