"""`mucura register`, `mucura login`, `env` and `credential-process` against a real node with
`--grid-listen` and a grid CA made at test time (grid_pki.py): a user registers with a
personal certificate, a job logs in with a proxy (grid-proxy-init when installed), and then
`mucura`, boto3 and the AWS CLI work through the cached credentials and the `mucura` profile.

The node is this module's own single node (the grid flags are per node), so the cluster pass
skips it, as test_grid_identity.py does.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from grid_pki import GridNode, grid_node
from s3_helpers import REGION, require_tool, unique_bucket_name

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
    pytest.mark.skipif(os.environ.get("MUCURA_TEST_TARGET") == "cluster",
                       reason="runs its own single node"),
]

# A login is one TLS handshake and one request; a transfer here is a few bytes.
COMMAND_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def grid(mucura_binary, tmp_path_factory):
    with grid_node(mucura_binary, tmp_path_factory.mktemp("grid-cli")) as node:
        yield node


def user_env(home: Path, grid: GridNode) -> dict:
    """A job's environment: no AWS variables, the grid URL and CA directory set."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "X509_", "MUCURA_"))}
    env.update({
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "MUCURA_GRID_URL": grid.grid_url,
        "X509_CERT_DIR": str(grid.pki.certificates),
        "MUCURA_LOG": "warn",
        "RUST_BACKTRACE": "0",
    })
    return env


def mucura(binary: Path, env: dict, *args: str, check: bool = True):
    completed = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True,
                               timeout=COMMAND_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    print(f"$ mucura {' '.join(args)} -> {completed.returncode}\n{completed.stderr[-2000:]}")
    if check:
        assert completed.returncode == 0, (
            f"mucura {' '.join(args)} failed\n{completed.stdout}\n{completed.stderr}")
    return completed


def register(binary: Path, env: dict, user, *extra: str) -> str:
    out = mucura(binary, env, "register", "--cert", str(user.cert), "--key", str(user.key),
                 *extra).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return fields["access key id"].strip()


def test_register_writes_a_working_profile(grid, mucura_binary, tmp_path):
    env = user_env(tmp_path, grid)
    jane = grid.pki.user("jane-cli", "Jane Cli 1")
    access_key = register(mucura_binary, env, jane, "--write-profile")
    credentials = tmp_path / ".aws" / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert f"aws_access_key_id = {access_key}" in credentials.read_text()
    config = (tmp_path / ".aws" / "config").read_text()
    assert f"endpoint_url = {grid.server.endpoint}" in config

    bucket = unique_bucket_name("grid-register")
    mucura(mucura_binary, env, "mb", f"s3://{bucket}", "--profile", "mucura")
    listed = mucura(mucura_binary, env, "ls", "--profile", "mucura").stdout
    assert bucket in listed
    mucura(mucura_binary, env, "rb", f"s3://{bucket}", "--profile", "mucura")


def test_login_caches_credentials_that_every_tool_uses(grid, mucura_binary, tmp_path,
                                                       monkeypatch):
    env = user_env(tmp_path, grid)
    bob = grid.pki.user("bob-cli", "Bob Cli 2")
    register(mucura_binary, env, bob)
    proxy = grid.pki.proxy(bob, "bob-cli", hours=2)
    env["X509_USER_PROXY"] = str(proxy)
    # Also keep an existing profile: login must leave it alone.
    (tmp_path / ".aws").mkdir(exist_ok=True)
    (tmp_path / ".aws" / "config").write_text("[profile other]\nregion = eu-west-1\n")

    first = mucura(mucura_binary, env, "login", "--duration", "3600")
    assert "Credentials valid until" in first.stdout
    cache = tmp_path / ".cache" / "mucura" / "credentials.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    cached = json.loads(cache.read_text())
    assert cached["endpoint"] == grid.server.endpoint
    assert cached["proxy_path"] == str(proxy)
    config = (tmp_path / ".aws" / "config").read_text()
    assert config.startswith("[profile other]\nregion = eu-west-1\n")
    assert f"credential_process = {mucura_binary.resolve()} credential-process" in config

    again = mucura(mucura_binary, env, "login")
    assert "Reusing cached credentials" in again.stdout
    assert json.loads(cache.read_text())["session_token"] == cached["session_token"]

    # mucura itself, with nothing but the cache.
    bucket = unique_bucket_name("grid-login")
    mucura(mucura_binary, env, "mb", f"s3://{bucket}")
    source = tmp_path / "result.txt"
    source.write_bytes(b"computed on a worker node")
    mucura(mucura_binary, env, "cp", str(source), f"s3://{bucket}/result.txt")

    # `mucura env` for any tool reading AWS_* variables.
    exports = mucura(mucura_binary, env, "env").stdout
    assert f"AWS_SESSION_TOKEN={cached['session_token']}" in exports.replace("'", "")
    assert f"export AWS_ENDPOINT_URL={grid.server.endpoint}" in exports

    # boto3 through the profile: credential_process + endpoint_url, no other setup.
    for name in ("HOME", "XDG_CACHE_HOME", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                 "RUST_BACKTRACE"):
        # credential_process runs with this process's environment: point it at the job's.
        monkeypatch.setenv(name, env[name])
    session = boto3.Session(profile_name="mucura", region_name=REGION)
    s3 = session.client("s3", config=Config(s3={"addressing_style": "path"}))
    body = s3.get_object(Bucket=bucket, Key="result.txt")["Body"].read()
    assert body == b"computed on a worker node"

    # The AWS CLI the same way.
    aws = require_tool("aws")
    aws_env = dict(env, AWS_PROFILE="mucura", AWS_DEFAULT_REGION=REGION)
    listed = subprocess.run([aws, "s3", "ls", f"s3://{bucket}/"], env=aws_env,
                            capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS,
                            stdin=subprocess.DEVNULL)
    assert listed.returncode == 0, listed.stderr
    assert "result.txt" in listed.stdout

    mucura(mucura_binary, env, "rm", f"s3://{bucket}/result.txt")
    mucura(mucura_binary, env, "rb", f"s3://{bucket}")


def test_a_renewed_proxy_gets_new_credentials(grid, mucura_binary, tmp_path):
    env = user_env(tmp_path, grid)
    carol = grid.pki.user("carol-cli", "Carol Cli 3")
    register(mucura_binary, env, carol)
    proxy = tmp_path / "x509up"
    shutil.copy(grid.pki.proxy(carol, "carol-cli-1"), proxy)
    proxy.chmod(0o600)
    mucura(mucura_binary, env, "login", "--proxy", str(proxy))
    cache = tmp_path / ".cache" / "mucura" / "credentials.json"
    first = json.loads(cache.read_text())

    shutil.copy(grid.pki.proxy(carol, "carol-cli-2"), proxy)
    process = json.loads(mucura(mucura_binary, env, "credential-process").stdout)
    assert process["Version"] == 1
    assert process["AccessKeyId"] != first["access_key_id"]
    assert json.loads(cache.read_text())["access_key_id"] == process["AccessKeyId"]


def test_refusals_are_reported(grid, mucura_binary, tmp_path):
    env = user_env(tmp_path, grid)
    dave = grid.pki.user("dave-cli", "Dave Cli Unregistered")
    proxy = grid.pki.proxy(dave, "dave-cli")
    refused = mucura(mucura_binary, env, "login", "--proxy", str(proxy), check=False)
    assert refused.returncode != 0
    assert "refused the proxy" in refused.stderr, refused.stderr
    assert not (tmp_path / ".cache" / "mucura" / "credentials.json").exists()

    # A proxy cannot register.
    erin = grid.pki.user("erin-cli", "Erin Cli")
    erin_proxy = grid.pki.proxy(erin, "erin-cli")
    no = mucura(mucura_binary, env, "register", "--cert", str(erin_proxy), "--key", str(erin_proxy),
                check=False)
    assert no.returncode != 0 and "refused the registration" in no.stderr, no.stderr

    # The server must be trusted: an empty CA directory and no CA file end the handshake.
    empty = tmp_path / "no-cas"
    empty.mkdir()
    untrusting = dict(env, X509_CERT_DIR=str(empty), SSL_CERT_FILE=str(empty / "none.pem"))
    distrust = mucura(mucura_binary, untrusting, "login", "--proxy", str(proxy), check=False)
    assert distrust.returncode != 0

    missing = mucura(mucura_binary, env, "login", "--proxy", str(tmp_path / "nothing"), check=False)
    assert missing.returncode != 0 and "cannot read the proxy file" in missing.stderr
    no_url = dict(env)
    del no_url["MUCURA_GRID_URL"]
    unset = mucura(mucura_binary, no_url, "login", "--proxy", str(proxy), check=False)
    assert unset.returncode != 0 and "MUCURA_GRID_URL" in unset.stderr
