"""Grid identities end to end: a node with `--grid-listen` and a CA directory made at test
time; users register with their personal certificate over mutual TLS (curl), batch jobs turn
a proxy made by grid-proxy-init into temporary S3 credentials with AssumeRoleWithCertificate,
and boto3 uses both. Refusals: proxies cannot register, unregistered or revoked users and
untrusted certificates get nothing.

The node is this module's own single node (the grid flags are per node); sessions and keys are
the replicated ones in a cluster, which test_sts.py covers in both modes.
"""

from __future__ import annotations

import json
import os
import re
import time
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from grid_pki import GridNode, GridPki, Identity, grid_node
from s3_helpers import REGION, empty_and_delete_bucket, expect_s3_error, make_s3_client, unique_bucket_name

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
    # The module runs its own node: a second pass against the cluster target adds nothing.
    pytest.mark.skipif(os.environ.get("MUCURA_TEST_TARGET") == "cluster",
                       reason="runs its own single node"),
]


class GridClient:
    """Requests to a grid node with client certificates (curl)."""

    def __init__(self, node: GridNode):
        self.server = node.server
        self.pki = node.pki
        self.grid_url = node.grid_url

    def curl(self, client_cert: Path, key: Path | None, method_path: str,
             expect_tls_failure: bool = False) -> tuple[int, dict[str, str], str]:
        """One request with a client certificate; returns status, headers and body."""
        method, path = method_path.split(" ", 1)
        args = ["curl", "-sS", "-X", method, "--cacert", str(self.pki.ca_cert),
                "--cert", str(client_cert), "-D", "-", "--max-time", "30",
                f"{self.grid_url}{path}"]
        if key is not None:
            args[args.index("--cert") + 2:args.index("--cert") + 2] = ["--key", str(key)]
        completed = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if expect_tls_failure:
            assert completed.returncode != 0, f"the handshake succeeded: {completed.stdout}"
            return 0, {}, completed.stderr
        assert completed.returncode == 0, completed.stderr
        head, _, body = completed.stdout.replace("\r\n", "\n").partition("\n\n")
        status = int(head.split(" ", 2)[1])
        headers = {}
        for line in head.split("\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, body

    def register(self, user: Identity) -> dict:
        status, headers, body = self.curl(user.cert, user.key, "POST /mucura/v1/register")
        assert status == 200, body
        assert headers.get("x-mucura-s3-endpoint") == self.server.endpoint
        return json.loads(body)

    def assume_with_proxy(self, proxy: Path, duration: int = 3600) -> tuple[int, str]:
        path = ("/?Action=AssumeRoleWithCertificate&Version=2011-06-15"
                f"&DurationSeconds={duration}")
        status, _, body = self.curl(proxy, None, f"POST {path}")
        return status, body


@pytest.fixture(scope="module")
def grid(mucura_binary, tmp_path_factory):
    work = tmp_path_factory.mktemp("grid")
    with grid_node(mucura_binary, work, "--grid-max-session", "7200",
                   "--grid-ca-reload-interval", "1") as node:
        yield GridClient(node)


def credentials_from(xml_text: str) -> dict:
    """The Credentials of an AssumeRoleWithCertificate answer (namespaces ignored)."""
    root = ET.fromstring(xml_text)
    found = {}
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]
        if name in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"):
            found[name] = element.text
    return found


def session_client(url: str, credentials: dict):
    return boto3.client(
        "s3", endpoint_url=url, region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"total_max_attempts": 1}))


def test_register_with_a_personal_certificate_and_renew(grid):
    jane = grid.pki.user("jane", "Jane Doe 1234")
    first = grid.register(jane)
    assert first["created"] is True
    assert re.fullmatch(r"jane-doe-1234-[0-9a-f]{8}", first["user_id"]), first
    # The DN is the grid one, in OpenSSL's slash form.
    assert jane.subject == "/DC=org/DC=mucura-test/OU=People/CN=Jane Doe 1234"
    assert first["s3_endpoint"] == grid.server.endpoint
    expires = datetime.fromisoformat(first["expires_at"].replace("Z", "+00:00"))
    assert 360 <= (expires - datetime.now(timezone.utc)).days <= 366

    client = make_s3_client(grid.server.endpoint, first["access_key_id"],
                            first["secret_access_key"])
    bucket = unique_bucket_name("grid-registered")
    client.create_bucket(Bucket=bucket)
    try:
        client.put_object(Bucket=bucket, Key="hello.txt", Body=b"from a grid user")
        # Registering again (a renewed certificate, same DN) keeps user, key and buckets.
        renewed_cert = grid.pki.issue("jane-renewed", jane.subject, "user_cert", days=730)
        again = grid.register(renewed_cert)
        assert again["created"] is False
        assert (again["user_id"], again["access_key_id"], again["secret_access_key"]) == (
            first["user_id"], first["access_key_id"], first["secret_access_key"])
        renewed_expiry = datetime.fromisoformat(again["expires_at"].replace("Z", "+00:00"))
        assert renewed_expiry > expires
        assert client.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"from a grid user"
    finally:
        empty_and_delete_bucket(client, bucket)


def test_proxy_gives_temporary_credentials_for_the_registered_user(grid):
    bob = grid.pki.user("bob", "Bob Grid 42")
    registered = grid.register(bob)
    proxy = grid.pki.proxy(bob, "bob", hours=1)
    status, body = grid.assume_with_proxy(proxy, duration=7200)
    assert status == 200, body
    assert "<AssumeRoleWithCertificateResponse" in body
    credentials = credentials_from(body)
    assert credentials["AccessKeyId"].startswith("MS")
    # The lifetime is the proxy's (1 h), not the 2 h asked for.
    expiration = datetime.fromisoformat(credentials["Expiration"].replace("Z", "+00:00"))
    remaining = (expiration - datetime.now(timezone.utc)).total_seconds()
    assert 3300 <= remaining <= 3605, remaining

    session = session_client(grid.server.endpoint, credentials)
    bucket = unique_bucket_name("grid-proxy")
    session.create_bucket(Bucket=bucket)
    try:
        session.put_object(Bucket=bucket, Key="job-output.dat", Body=b"\x00" * 4096)
        owner = make_s3_client(grid.server.endpoint, registered["access_key_id"],
                               registered["secret_access_key"])
        names = [b["Name"] for b in owner.list_buckets()["Buckets"]]
        assert bucket in names, "the session's bucket belongs to the registered user"
    finally:
        empty_and_delete_bucket(session, bucket)


def test_a_proxy_cannot_register(grid):
    carol = grid.pki.user("carol", "Carol Proxy")
    proxy = grid.pki.proxy(carol, "carol")
    status, _, body = grid.curl(proxy, None, "POST /mucura/v1/register")
    assert status == 403, body
    assert "proxy" in json.loads(body)["error"]


def test_an_unregistered_user_gets_no_session(grid):
    dave = grid.pki.user("dave", "Dave Unregistered")
    proxy = grid.pki.proxy(dave, "dave")
    status, body = grid.assume_with_proxy(proxy)
    assert status == 403, body
    assert "<Code>AccessDenied</Code>" in body and "register" in body


def test_revoked_and_untrusted_certificates_are_refused_at_the_handshake(grid, tmp_path):
    erin = grid.pki.user("erin", "Erin Revoked")
    grid.register(erin)
    grid.pki.revoke(erin)
    # The node re-reads the CA directory (fetch-crl's updates) every second here.
    deadline = time.monotonic() + 10
    while True:
        args = ["curl", "-sS", "-o", "/dev/null", "-X", "POST", "--cacert", str(grid.pki.ca_cert),
                "--cert", str(erin.cert), "--key", str(erin.key), "--max-time", "30",
                f"{grid.grid_url}/mucura/v1/register"]
        if subprocess.run(args, capture_output=True, timeout=60).returncode != 0:
            break
        assert time.monotonic() < deadline, "a revoked certificate still gets through"
        time.sleep(0.5)
    # Certificates from a CA the node does not trust fail at once.
    stranger_pki = GridPki(tmp_path / "stranger", "/DC=org/DC=elsewhere/CN=Unknown CA")
    stranger = stranger_pki.user("frank", "Frank Stranger")
    grid.curl(stranger.cert, stranger.key, "POST /mucura/v1/register", expect_tls_failure=True)
    # No certificate at all: the listener requires one.
    completed = subprocess.run(
        ["curl", "-sS", "--cacert", str(grid.pki.ca_cert), "-X", "POST", "--max-time", "30",
         f"{grid.grid_url}/mucura/v1/register"], capture_output=True, text=True, timeout=60)
    assert completed.returncode != 0, f"answered without a client certificate: {completed.stdout}"


@pytest.mark.skipif(shutil.which("grid-proxy-init") is None, reason="needs grid-proxy-init")
def test_limited_proxies_are_accepted_and_marked(grid):
    gina = grid.pki.user("gina", "Gina Limited")
    grid.register(gina)
    proxy = grid.pki.proxy(gina, "gina", limited=True)
    status, body = grid.assume_with_proxy(proxy)
    assert status == 200, body


@pytest.mark.skipif(shutil.which("voms-proxy-init") is None, reason="needs voms-proxy-init")
def test_voms_proxy_init_proxies_work_too(grid):
    ivan = grid.pki.user("ivan", "Ivan Voms")
    registered = grid.register(ivan)
    status, body = grid.assume_with_proxy(grid.pki.voms_proxy(ivan, "ivan"))
    assert status == 200, body
    session = session_client(grid.server.endpoint, credentials_from(body))
    bucket = unique_bucket_name("grid-voms")
    session.create_bucket(Bucket=bucket)
    try:
        owner = make_s3_client(grid.server.endpoint, registered["access_key_id"],
                               registered["secret_access_key"])
        assert bucket in [b["Name"] for b in owner.list_buckets()["Buckets"]]
    finally:
        empty_and_delete_bucket(session, bucket)


def test_revoking_a_grid_users_sessions(grid, mucura_binary):
    harry = grid.pki.user("harry", "Harry Session")
    registered = grid.register(harry)
    status, body = grid.assume_with_proxy(grid.pki.proxy(harry, "harry"))
    assert status == 200, body
    session = session_client(grid.server.endpoint, credentials_from(body))
    session.list_buckets()
    token = (Path(grid.server.data_dir) / "root-credentials.toml").read_text()
    admin_token = re.search(r'admin_token = "([^"]+)"', token).group(1)
    subprocess.run([str(mucura_binary), "admin", "--admin-url", grid.server.admin_url,
                    "--token", admin_token, "user", "revoke-sessions", "--id",
                    registered["user_id"]], check=True, capture_output=True, timeout=60)
    with expect_s3_error("InvalidToken", 400):
        session.list_buckets()
