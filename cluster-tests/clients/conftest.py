"""Fixtures of the real-client tests: one mucura server per session, a fresh bucket per test.

The server binary comes from $MUCURA_BIN, else ./target/release/mucura, else
$CARGO_TARGET_DIR/release/mucura (see mucura_server.find_mucura_binary).

With MUCURA_TEST_TARGET=cluster the session's "server" is a three-node `mucura local-cluster`
instead (clients talk to its second node), so the client suites that only need an S3 endpoint
(boto3, AWS CLI, s3cmd, rclone) also run against the cluster's S3 path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from local_cluster import ClusterTarget
from mucura_server import MucuraBinaryNotFound, MucuraServer, find_mucura_binary
from s3_helpers import (
    empty_and_delete_bucket,
    make_s3_client,
    unique_bucket_name,
    write_random_file,
)
from s3_raw import RawS3


def pytest_configure(config):
    """Keeps the host's AWS configuration (profiles, endpoints, checksum modes) out of boto3."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="session")
def mucura_binary() -> Path:
    """The server binary under test."""
    try:
        return find_mucura_binary()
    except MucuraBinaryNotFound as error:
        pytest.fail(str(error))
        raise


TARGET = os.environ.get("MUCURA_TEST_TARGET", "node")


@pytest.fixture(scope="session")
def mucura(mucura_binary, tmp_path_factory):
    """One server (or, with MUCURA_TEST_TARGET=cluster, one local cluster) for the whole
    session; on teardown SIGTERM must end it with 0 in time."""
    work = tmp_path_factory.mktemp("mucura-session")
    if TARGET == "cluster":
        server = ClusterTarget(work, mucura_binary)
    elif TARGET == "node":
        server = MucuraServer(work, mucura_binary)
    else:
        pytest.fail(f"MUCURA_TEST_TARGET must be 'node' or 'cluster', not {TARGET!r}")
    server.start()
    yield server
    exit_code = server.stop()
    assert exit_code == 0, f"mucura exited with {exit_code} after SIGTERM\n{server.log_tail()}"


@pytest.fixture(scope="session")
def s3(mucura):
    """A boto3 S3 client with the root credentials."""
    return make_s3_client(mucura.endpoint, mucura.access_key, mucura.secret_key)


@pytest.fixture(scope="session")
def raw_s3(mucura) -> RawS3:
    """Hand-built signed requests to the session server."""
    return RawS3("127.0.0.1", mucura.s3_port, mucura.access_key, mucura.secret_key)


@pytest.fixture
def bucket(s3, request) -> str:
    """A fresh, empty bucket for one test; emptied and deleted afterwards."""
    name = unique_bucket_name(request.node.name)
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete_bucket(s3, name)


@pytest.fixture(scope="session")
def random_file(tmp_path_factory):
    """Makes (once per session) a file of random bytes of a given size; returns its path."""
    folder = tmp_path_factory.mktemp("random-files")
    made: dict[int, Path] = {}

    def make(size: int) -> Path:
        if size not in made:
            made[size] = write_random_file(folder / f"random-{size}.bin", size)
        return made[size]

    return make
