"""Virtual-host style addressing (`bucket.ROOT_DOMAIN`) when the node has a root domain."""

from __future__ import annotations

import http.client
import os

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mucura_server import MucuraServer
from s3_helpers import make_s3_client

ROOT_DOMAIN = "s3.mucura.test"


@pytest.fixture
def vhost_server(mucura_binary, tmp_path):
    server = MucuraServer(tmp_path / "vhost", mucura_binary, ["--root-domain", ROOT_DOMAIN])
    server.start()
    yield server
    assert server.stop() == 0, server.log_tail()


def send_signed(server: MucuraServer, method: str, host: str, path: str, body: bytes = b""):
    """Signs for `host` (as a client resolving it would) and sends to the server's address."""
    request = AWSRequest(
        method=method,
        url=f"http://{host}{path}",
        data=body,
        headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    )
    S3SigV4Auth(Credentials(server.access_key, server.secret_key), "s3", "us-east-1").add_auth(
        request
    )
    connection = http.client.HTTPConnection("127.0.0.1", server.s3_port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host)
        for name, value in request.headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_bucket_in_host_name_reaches_the_same_objects_as_path_style(vhost_server):
    path_style = make_s3_client(
        vhost_server.endpoint, vhost_server.access_key, vhost_server.secret_key
    )
    path_style.create_bucket(Bucket="photos")
    host = f"photos.{ROOT_DOMAIN}:{vhost_server.s3_port}"

    data = os.urandom(3000)
    status, body = send_signed(vhost_server, "PUT", host, "/2026/cat.jpg", data)
    assert status == 200, body
    assert path_style.get_object(Bucket="photos", Key="2026/cat.jpg")["Body"].read() == data

    status, body = send_signed(vhost_server, "GET", host, "/2026/cat.jpg")
    assert (status, body) == (200, data)

    status, body = send_signed(vhost_server, "GET", host, "/?list-type=2")
    assert status == 200 and b"<Key>2026/cat.jpg</Key>" in body, body

    # The root domain itself is path-style.
    status, body = send_signed(
        vhost_server, "GET", f"{ROOT_DOMAIN}:{vhost_server.s3_port}", "/photos/2026/cat.jpg"
    )
    assert (status, body) == (200, data)

    status, body = send_signed(vhost_server, "GET", f"nosuch.{ROOT_DOMAIN}", "/x")
    assert status == 404 and b"<Code>NoSuchBucket</Code>" in body, body
