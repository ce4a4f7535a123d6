"""Judges a fault-injection run: the workload's history against the state the cluster settles in.

Rule for a key's final value
----------------------------
The candidate writes of a key are its puts and deletes (a delete writes "absent") whose outcome
is "ok" or "unknown"; "fail" ops never happened. The key starts absent, as if a delete had been
acknowledged at time -infinity. Mucura is last-writer-wins, so a write is *superseded* when an
acknowledged ("ok") put or delete of the same key started after it ended: the later write got a
later version stamp and must win. The final value of the key must equal the value of a candidate
write (or the initial absent state) that is not superseded. So with no acknowledged write at all,
anything attempted (or absent) may survive; otherwise only the writes that overlap or follow the
last-starting acknowledged write may.

Where a write "ended": an op the server answered (2xx or 5xx) got its version stamp before the
answer, so it ended at `end`. An "unknown" op the server never answered (timeout, reset) may
still be executed later -- a paused node resumes and reads a request still in its socket buffer
-- so it is treated as ending at +infinity and is never superseded.

Violations
----------
- `phantom`: a read (during the run or final) returned bytes no put of that key sent, bytes of a
  put that failed, or bytes of a put that started only after the read ended; likewise a listing
  during the run that names a key no such put could have created.
- `lost_write`: a node's final value is not allowed: older than, or absent instead of, what was
  acknowledged. (A value that is no phantom is some candidate's, and with nothing acknowledged
  every candidate is allowed, so a disallowed final value always means an acknowledged write
  was lost.)
- `divergent`: the reachable nodes read different final values for a key.
- `listing`: a node's final listing differs from the keys it reads as present.
- `unreachable`: a node could not be read at the end.

Reads of an older acknowledged value during the run are allowed: with R=2 under faults the store
is eventually consistent, not linearizable.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from history import History, Op
from workload import Endpoint, is_no_such_key, key_names, list_keys, make_client, sha256_of_stream

# Pause between two polls of the cluster while waiting for it to settle.
POLL_INTERVAL_SECONDS = 1.0
ADMIN_TIMEOUT_SECONDS = 10.0


@dataclass
class FinalState:
    """What every node reads and lists once the faults are over."""

    reads: dict[str, dict[str, str | None]]  # node -> key -> sha256 of bytes read (None: absent)
    listings: dict[str, set[str]]  # node -> keys listed
    unreachable: set[str]  # nodes that could not be read (no reads or listing for them)
    reasons: dict[str, str] = field(default_factory=dict)  # node -> why it could not be read


@dataclass
class Violation:
    """One broken promise found by `check`."""

    kind: str
    key: str | None
    detail: str


def effective_end(write: Op) -> float:
    """When a candidate write may last have taken its version stamp (see the module docstring)."""
    if write.outcome == "unknown" and write.status is None:
        return math.inf
    return write.end


def allowed_final_values(ops: Iterable[Op]) -> set[str | None]:
    """The values (sha256, or None for absent) one key may end with, given all its ops."""
    candidates = [op for op in ops if op.is_write and op.outcome != "fail"]
    latest_acknowledged_start = max(
        (op.start for op in candidates if op.outcome == "ok"), default=-math.inf
    )
    # The initial absent state ended at -infinity: any acknowledged write supersedes it.
    allowed: set[str | None] = {None} if latest_acknowledged_start == -math.inf else set()
    for write in candidates:
        if effective_end(write) >= latest_acknowledged_start:
            allowed.add(write.value if write.kind == "put" else None)
    return allowed


def check(history: History, final: FinalState) -> list[Violation]:
    """Every violation of the rules in the module docstring, in a stable order."""
    ops = history.ops
    ops_by_key: dict[str, list[Op]] = defaultdict(list)
    puts_by_bytes: dict[tuple[str, str], list[Op]] = defaultdict(list)
    for op in ops:
        if op.key is not None:
            ops_by_key[op.key].append(op)
        if op.kind == "put" and op.value is not None:
            puts_by_bytes[(op.key, op.value)].append(op)

    violations: list[Violation] = []
    violations += _phantoms_during_run(ops, ops_by_key, puts_by_bytes)
    violations += _final_value_violations(final, ops_by_key, puts_by_bytes)
    violations += _divergence(final)
    violations += _listing_violations(final)
    violations += [
        Violation("unreachable", None, f"node {node} could not be read: {final.reasons.get(node)}")
        for node in sorted(final.unreachable)
    ]
    return violations


def _phantom_problem(
    key: str, value: str, read_end: float, puts_by_bytes: dict[tuple[str, str], list[Op]]
) -> str | None:
    """Why a read of `value` for `key` ending at `read_end` is impossible, or None if it is not."""
    puts = puts_by_bytes.get((key, value), [])
    if not puts:
        return "no put of this key ever sent these bytes"
    if any(put.outcome != "fail" and put.start < read_end for put in puts):
        return None
    if any(put.outcome == "fail" for put in puts):
        return f"the bytes of a put that failed ({puts[0].error})"
    return f"the bytes of a put that started {puts[0].start - read_end:.3f}s after the read ended"


def _phantoms_during_run(
    ops: list[Op],
    ops_by_key: dict[str, list[Op]],
    puts_by_bytes: dict[tuple[str, str], list[Op]],
) -> list[Violation]:
    # A listing may name a key once its first put that could have happened has started.
    first_put_start: dict[str, float] = {}
    for key, key_ops in ops_by_key.items():
        starts = [op.start for op in key_ops if op.kind == "put" and op.outcome != "fail"]
        if starts:
            first_put_start[key] = min(starts)
    violations = []
    for op in ops:
        if op.outcome != "ok":
            continue
        if op.kind == "get" and op.value is not None:
            problem = _phantom_problem(op.key, op.value, op.end, puts_by_bytes)
            if problem:
                where = f"client {op.client} read from {op.node}"
                violations.append(Violation("phantom", op.key, f"{where}: {problem}"))
        elif op.kind == "list":
            for key in op.keys or ():
                if first_put_start.get(key, math.inf) >= op.end:
                    detail = (
                        f"client {op.client} listed it on {op.node} "
                        "but no put of it could have happened yet"
                    )
                    violations.append(Violation("phantom", key, detail))
    return violations


def _describe(value: str | None, ops: list[Op]) -> str:
    """A value, named by the put that wrote it when there is one."""
    if value is None:
        return "absent"
    for op in ops:
        if op.kind == "put" and op.value == value:
            return (
                f"{value[:12]} (put by client {op.client} via {op.node}, {op.outcome}, "
                f"{op.start:.3f}-{op.end:.3f})"
            )
    return value[:12]


def _final_value_violations(
    final: FinalState,
    ops_by_key: dict[str, list[Op]],
    puts_by_bytes: dict[tuple[str, str], list[Op]],
) -> list[Violation]:
    violations = []
    for node in sorted(final.reads):
        for key, value in sorted(final.reads[node].items()):
            ops = ops_by_key.get(key, [])
            if value is not None:
                problem = _phantom_problem(key, value, math.inf, puts_by_bytes)
                if problem:
                    violations.append(Violation("phantom", key, f"final read on {node}: {problem}"))
                    continue
            allowed = allowed_final_values(ops)
            if value in allowed:
                continue
            # Not allowed though not a phantom: only possible when a write was acknowledged.
            latest = max(
                (op for op in ops if op.is_write and op.outcome == "ok"), key=lambda op: op.start
            )
            last = "a delete" if latest.kind == "delete" else _describe(latest.value, ops)
            expected = ", ".join(sorted(_describe(v, ops) for v in allowed))
            detail = (
                f"{node} ends with {_describe(value, ops)}; allowed: {expected}; "
                f"last acknowledged write: {last}"
            )
            violations.append(Violation("lost_write", key, detail))
    return violations


def _divergence(final: FinalState) -> list[Violation]:
    values_by_key: dict[str, dict[str, str | None]] = defaultdict(dict)
    for node, reads in final.reads.items():
        for key, value in reads.items():
            values_by_key[key][node] = value
    violations = []
    for key in sorted(values_by_key):
        by_node = values_by_key[key]
        if len(set(by_node.values())) > 1:
            seen = ", ".join(
                f"{node}: {'absent' if value is None else value[:12]}"
                for node, value in sorted(by_node.items())
            )
            violations.append(Violation("divergent", key, f"nodes disagree: {seen}"))
    return violations


def _listing_violations(final: FinalState) -> list[Violation]:
    violations = []
    for node in sorted(final.listings):
        present = {key for key, value in final.reads.get(node, {}).items() if value is not None}
        listed = final.listings[node]
        for key in sorted(present - listed):
            violations.append(Violation("listing", key, f"{node} reads it but does not list it"))
        for key in sorted(listed - present):
            violations.append(Violation("listing", key, f"{node} lists it but reads it absent"))
    return violations


def _key_list(keys: Iterable[str] | int) -> list[str]:
    """Key names: given as names, or as a count meaning the workload's k000, k001, ..."""
    return key_names(keys) if isinstance(keys, int) else list(keys)


def _read_node(
    endpoint: Endpoint, access_key: str, secret_key: str, bucket: str, keys: list[str]
) -> tuple[dict[str, str | None], set[str]]:
    """One node's reads of every key and its listing; raises if any request fails."""
    s3 = make_client(endpoint, access_key, secret_key)
    reads: dict[str, str | None] = {}
    for key in keys:
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if not is_no_such_key(error):
                raise
            reads[key] = None
        else:
            reads[key] = sha256_of_stream(response["Body"])
    return reads, set(list_keys(s3, bucket))


def collect_final_state(
    endpoints: list[Endpoint],
    access_key: str,
    secret_key: str,
    bucket: str,
    keys: Iterable[str] | int,
) -> FinalState:
    """Reads every key and lists the bucket on every node (nodes in parallel).

    A node on which any request fails is unreachable: none of its answers are kept, so a
    half-read node never passes for one that read "absent".
    """
    names = _key_list(keys)
    state = FinalState(reads={}, listings={}, unreachable=set())
    with ThreadPoolExecutor(max_workers=len(endpoints) or 1) as pool:
        futures = {
            endpoint.node: pool.submit(_read_node, endpoint, access_key, secret_key, bucket, names)
            for endpoint in endpoints
        }
        for node, future in futures.items():
            try:
                state.reads[node], state.listings[node] = future.result()
            except (ClientError, BotoCoreError, OSError) as error:
                state.unreachable.add(node)
                state.reasons[node] = f"{type(error).__name__}: {error}"
    return state


def wait_until_settled(
    endpoints: list[Endpoint],
    access_key: str,
    secret_key: str,
    bucket: str,
    keys: Iterable[str] | int,
    history: History,
    timeout: float,
) -> tuple[FinalState, float]:
    """Polls the final state until every node is readable, all agree on every key, listings
    match and `check` passes; returns the last state and the seconds it took (after `timeout`,
    the last state: `check` then says what is still wrong)."""
    names = _key_list(keys)
    started = time.monotonic()
    while True:
        state = collect_final_state(endpoints, access_key, secret_key, bucket, names)
        elapsed = time.monotonic() - started
        if not check(history, state) or elapsed >= timeout:
            return state, elapsed
        time.sleep(POLL_INTERVAL_SECONDS)


def replica_problems(report: dict) -> list[str]:
    """What keeps one locate report (GET /v1/cluster/locate) from showing converged replicas.

    Converged: every metadata owner answered and they all hold the same version stamp (or all
    hold nothing: a key never written), and every owner of every block holds an intact copy.
    """
    key = report.get("key")
    owners = [replica for replica in report.get("metadata", []) if replica.get("owner")]
    if not owners:
        return [f"{key}: no metadata owners listed"]
    problems = [
        f"{key}: metadata owner {replica['node']} could not be asked: {replica['error']}"
        for replica in owners
        if replica.get("error")
    ]
    stamps = {replica["stamp"] if replica.get("holds") else None for replica in owners}
    if len(stamps) > 1:
        copies = ", ".join(
            f"{replica['node']}: {replica['stamp'] if replica.get('holds') else 'none'}"
            for replica in owners
        )
        problems.append(f"{key}: metadata owners hold different versions ({copies})")
    for block in report.get("blocks", []):
        block_name = block.get("hash", "?")[:12]
        if not block.get("owners"):
            problems.append(f"{key}: block {block_name} has no owners")
        for replica in block.get("owners", []):
            if not replica.get("holds"):
                reason = f" ({replica['error']})" if replica.get("error") else ""
                problems.append(
                    f"{key}: block {block_name} has no intact copy on {replica['node']}{reason}"
                )
    return problems


def fetch_locate_report(admin_url: str, admin_token: str, bucket: str, key: str) -> dict:
    """GET {admin}/v1/cluster/locate for one object; raises OSError (URLError) on failure."""
    query = urllib.parse.urlencode({"bucket": bucket, "key": key})
    request = urllib.request.Request(
        f"{admin_url.rstrip('/')}/v1/cluster/locate?{query}",
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    with urllib.request.urlopen(request, timeout=ADMIN_TIMEOUT_SECONDS) as response:
        return json.load(response)


def _locate_problems(
    admins: dict[str, str], admin_token: str, bucket: str, key: str, first: int
) -> list[str]:
    """The replica problems of one key, asking the admins in turn from index `first`."""
    urls = list(admins.values())
    failures = []
    for offset in range(len(urls)):
        url = urls[(first + offset) % len(urls)]
        try:
            return replica_problems(fetch_locate_report(url, admin_token, bucket, key))
        except (OSError, ValueError) as error:
            # HTTPError is an OSError; a half-written body is a ValueError (JSON).
            failures.append(f"{url}: {error}")
    return [f"{key}: no admin endpoint answered ({'; '.join(failures)})"]


def wait_replicas_converged(
    admins: dict[str, str],
    admin_token: str,
    bucket: str,
    keys: Iterable[str] | int,
    timeout: float,
) -> tuple[bool, float, list[str]]:
    """Polls the locate view of every key until `replica_problems` finds nothing for any.

    `admins` maps node id to admin base URL; each key is asked of one node that answers (the
    nodes take turns). Returns (converged, seconds waited, the last problems found).
    """
    if not admins:
        raise ValueError("wait_replicas_converged needs at least one admin endpoint")
    names = _key_list(keys)
    started = time.monotonic()
    while True:
        problems = []
        for index, key in enumerate(names):
            problems += _locate_problems(admins, admin_token, bucket, key, index)
        elapsed = time.monotonic() - started
        if not problems or elapsed >= timeout:
            return not problems, elapsed, problems
        time.sleep(POLL_INTERVAL_SECONDS)
