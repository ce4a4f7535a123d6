"""The client workload of the fault-injection suite: threads doing random puts, gets, deletes and
lists on a small key space, recording every request in a `History`.

Each thread loops until stopped: it picks a key (k000, k001, ...), an operation by weight and the
next node of its endpoints (round-robin), sends one request and records the outcome. Every put
body starts with a unique write id, so each attempted write has its own sha256 and any value read
back names the exact put it came from.

Requests are never retried (a retried PUT would blur its outcome): a refused or timed-out
connection before anything was sent is "fail", a 4xx is "fail", a 5xx, a read timeout or a reset
is "unknown".
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import traceback
import uuid
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from history import History, Op

REGION = "us-east-1"
KIB = 1024
MIB = 1024 * KIB
# Small bodies, and the "big" ones that span several 1 MiB blocks.
SMALL_BODY_RANGE = (1 * KIB, 64 * KIB)
BIG_BODY_RANGE = (int(1.5 * MIB), int(2.5 * MIB))
# Operation mix: writes dominate so the final state has history behind it.
OP_WEIGHTS = {"put": 45, "get": 30, "delete": 10, "list": 15}
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 15
# After a connection-level failure, so a dead node does not make a thread spin.
BACKOFF_AFTER_CONNECTION_ERROR_SECONDS = 0.2
HASH_CHUNK_BYTES = 256 * KIB


@dataclass
class Endpoint:
    """One node's S3 endpoint, e.g. Endpoint("n1", "http://172.28.5.11:9000")."""

    node: str
    url: str


def key_names(count: int) -> list[str]:
    """The workload's key space: k000, k001, ... (count names)."""
    return [f"k{index:03d}" for index in range(count)]


def make_client(endpoint: Endpoint, access_key: str, secret_key: str):
    """A boto3 S3 client for one node: path-style, SigV4, no retries, short timeouts.

    A fresh session per client: boto3's default session is not safe to share between threads.
    """
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint.url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            max_pool_connections=2,
        ),
    )


def sha256_of_stream(body) -> str:
    """The sha256 hex of a botocore streaming body, read in chunks (bodies reach 2.5 MiB)."""
    digest = hashlib.sha256()
    for chunk in body.iter_chunks(HASH_CHUNK_BYTES):
        digest.update(chunk)
    return digest.hexdigest()


def list_keys(client, bucket: str) -> tuple[str, ...]:
    """Every key of the bucket, following continuation tokens."""
    keys: list[str] = []
    request = {"Bucket": bucket}
    while True:
        page = client.list_objects_v2(**request)
        keys.extend(entry["Key"] for entry in page.get("Contents", []))
        if not page.get("IsTruncated"):
            return tuple(keys)
        request["ContinuationToken"] = page["NextContinuationToken"]


def is_no_such_key(error: Exception) -> bool:
    """Whether `error` is S3's NoSuchKey answer (a GET's way of saying "absent")."""
    return (
        isinstance(error, ClientError)
        and error.response.get("Error", {}).get("Code") == "NoSuchKey"
    )


def classify_failure(error: Exception) -> tuple[str, int | None, str]:
    """(outcome, HTTP status or None, short text) of a request that raised `error`."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.response.get("Error", {}).get("Code", "?")
        text = f"HTTP {status} {code}"
        if isinstance(status, int) and status >= 500:
            return "unknown", status, text
        return "fail", status, text
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        # No connection was ever made, so the request was not sent.
        return "fail", None, f"{type(error).__name__}: {error}"
    # Read timeouts, resets, truncated bodies: the server may have acted on the request.
    return "unknown", None, f"{type(error).__name__}: {error}"


class Workload:
    """Client threads doing random S3 operations against a cluster, recording a `History`."""

    def __init__(
        self,
        endpoints: list[Endpoint],
        access_key: str,
        secret_key: str,
        bucket: str,
        clients: int = 6,
        keys: int = 48,
        seed: int = 1,
        big_every: int = 10,
        client_endpoints: dict[int, list[Endpoint]] | None = None,
    ) -> None:
        """`client_endpoints` optionally pins client i to some nodes (clients on both sides
        of a partition); the other clients use all `endpoints`."""
        if not endpoints:
            raise ValueError("the workload needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.access_key = access_key
        self.secret_key = secret_key
        self.bucket = bucket
        self.clients = clients
        self.key_names = key_names(keys)
        self.seed = seed
        self.big_every = big_every
        self.client_endpoints = dict(client_endpoints or {})
        # Distinguishes this run's write ids from any earlier run's on the same bucket.
        self._run_id = uuid.uuid4().hex[:12]
        self._history = History()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # Unexpected exceptions that ended a client thread; `stop` raises them.
        self._crashes: list[str] = []

    @property
    def history(self) -> History:
        """The history recorded so far (live: it grows while the workload runs)."""
        return self._history

    def start(self) -> None:
        """Starts the client threads."""
        if self._threads:
            raise RuntimeError("the workload was already started")
        for client in range(self.clients):
            endpoints = self.client_endpoints.get(client) or self.endpoints
            thread = threading.Thread(
                target=self._run_client,
                args=(client, endpoints),
                name=f"workload-client-{client}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> History:
        """Stops the threads (each finishes its in-flight request) and returns the history.

        Raises RuntimeError if a client thread died of an unexpected exception (a bug in the
        workload, not a failed request); `history` still holds what was recorded."""
        self._stopping.set()
        for thread in self._threads:
            thread.join()
        if self._crashes:
            raise RuntimeError("workload client threads crashed:\n" + "\n".join(self._crashes))
        return self._history

    def acknowledged_writes(self) -> int:
        """How many puts and deletes the cluster acknowledged so far."""
        return sum(1 for op in self._history.ops if op.is_write and op.outcome == "ok")

    def _run_client(self, client: int, endpoints: list[Endpoint]) -> None:
        try:
            self._client_loop(client, endpoints)
        except Exception:
            # A thread dying quietly would leave a weaker workload and a passing check.
            self._crashes.append(f"client {client}: {traceback.format_exc()}")

    def _client_loop(self, client: int, endpoints: list[Endpoint]) -> None:
        rng = random.Random(self.seed * 1_000_003 + client)
        # Lazily created: a client per (thread, endpoint), never shared between threads.
        s3_clients: dict[str, object] = {}
        kinds = list(OP_WEIGHTS)
        weights = list(OP_WEIGHTS.values())
        # Start each thread on a different node so the load spreads from the first request.
        next_endpoint = client % len(endpoints)
        puts_sent = 0
        while not self._stopping.is_set():
            endpoint = endpoints[next_endpoint]
            next_endpoint = (next_endpoint + 1) % len(endpoints)
            if endpoint.node not in s3_clients:
                s3_clients[endpoint.node] = make_client(endpoint, self.access_key, self.secret_key)
            s3 = s3_clients[endpoint.node]
            kind = rng.choices(kinds, weights)[0]
            key = None if kind == "list" else rng.choice(self.key_names)
            body = b""
            if kind == "put":
                puts_sent += 1
                body = self._body(rng, client, puts_sent)
            op = self._execute(s3, client, endpoint.node, kind, key, body)
            self._history.record(op)
            if op.outcome != "ok" and op.status is None:
                time.sleep(BACKOFF_AFTER_CONNECTION_ERROR_SECONDS)

    def _body(self, rng: random.Random, client: int, sequence: int) -> bytes:
        """A random body starting with a write id unique to this put."""
        big = self.big_every > 0 and sequence % self.big_every == 0
        low, high = BIG_BODY_RANGE if big else SMALL_BODY_RANGE
        write_id = f"write {self._run_id} client {client} put {sequence}\n".encode()
        return write_id + rng.randbytes(rng.randint(low, high) - len(write_id))

    def _execute(self, s3, client: int, node: str, kind: str, key: str | None, body: bytes) -> Op:
        """Sends one request and returns its op (never raises for request failures)."""
        sent_value = hashlib.sha256(body).hexdigest() if kind == "put" else None
        read_value: str | None = None
        listed: tuple[str, ...] | None = None
        start = time.monotonic()
        try:
            if kind == "put":
                response = s3.put_object(Bucket=self.bucket, Key=key, Body=body)
            elif kind == "delete":
                response = s3.delete_object(Bucket=self.bucket, Key=key)
            elif kind == "get":
                response = s3.get_object(Bucket=self.bucket, Key=key)
                read_value = sha256_of_stream(response["Body"])
            else:
                listed = list_keys(s3, self.bucket)
                response = {"ResponseMetadata": {"HTTPStatusCode": 200}}
        except (ClientError, BotoCoreError, OSError) as error:
            end = time.monotonic()
            if kind == "get" and is_no_such_key(error):
                return Op(client, kind, key, node, start, end, "ok", None, status=404)
            outcome, status, text = classify_failure(error)
            return Op(
                client, kind, key, node, start, end, outcome, sent_value, error=text, status=status
            )
        end = time.monotonic()
        status = response["ResponseMetadata"]["HTTPStatusCode"]
        value = sent_value if kind == "put" else read_value
        return Op(client, kind, key, node, start, end, "ok", value, keys=listed, status=status)
