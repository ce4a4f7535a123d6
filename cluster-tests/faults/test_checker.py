"""Unit tests of the history checker on hand-made histories (no server, no Docker)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from checker import FinalState, Violation, check, replica_problems, wait_replicas_converged
from history import History, Op
from workload import Endpoint, Workload, classify_failure

NODES = ("n1", "n2", "n3")


def sha(label: str) -> str:
    """A stand-in for the sha256 of a put body."""
    return hashlib.sha256(label.encode()).hexdigest()


A, B, C = sha("A"), sha("B"), sha("C")


def put(key: str, value: str, start: float, end: float, outcome: str = "ok", **extra) -> Op:
    """A put op; an answered outcome gets a matching HTTP status unless given."""
    status = {"ok": 200, "fail": 403, "unknown": 503}[outcome]
    fields = {"client": 0, "node": "n1", "status": status} | extra
    return Op(kind="put", key=key, start=start, end=end, outcome=outcome, value=value, **fields)


def delete(key: str, start: float, end: float, outcome: str = "ok", **extra) -> Op:
    """A delete op."""
    status = {"ok": 204, "fail": 403, "unknown": 503}[outcome]
    fields = {"client": 0, "node": "n1", "status": status} | extra
    return Op(kind="delete", key=key, start=start, end=end, outcome=outcome, value=None, **fields)


def get(key: str, value: str | None, start: float, end: float) -> Op:
    """A successful get that read `value` (None: NoSuchKey)."""
    return Op(1, "get", key, "n2", start, end, "ok", value, status=200 if value else 404)


def listing(keys: tuple[str, ...], start: float, end: float) -> Op:
    """A successful list."""
    return Op(1, "list", None, "n2", start, end, "ok", None, keys=keys, status=200)


def settled(values: dict[str, str | None]) -> FinalState:
    """Every node reads `values` and lists exactly the present keys."""
    present = {key for key, value in values.items() if value is not None}
    return FinalState(
        reads={node: dict(values) for node in NODES},
        listings={node: set(present) for node in NODES},
        unreachable=set(),
    )


def kinds(violations: list[Violation]) -> set[str]:
    """The kinds of violations found."""
    return {violation.kind for violation in violations}


# ---- histories the checker must reject -----------------------------------------------------


def test_a_lost_acknowledged_write_is_flagged():
    history = History([put("k", A, 0, 1), put("k", B, 2, 3)])
    violations = check(history, settled({"k": A}))
    assert kinds(violations) == {"lost_write"}
    assert len(violations) == len(NODES)
    assert all(violation.key == "k" for violation in violations)


def test_an_acknowledged_put_that_vanished_is_a_lost_write():
    violations = check(History([put("k", A, 0, 1)]), settled({"k": None}))
    assert kinds(violations) == {"lost_write"}


def test_a_write_answered_with_5xx_is_superseded_by_a_later_acknowledged_write():
    history = History([put("k", A, 0, 1, outcome="unknown"), put("k", B, 2, 3)])
    assert kinds(check(history, settled({"k": A}))) == {"lost_write"}


def test_bytes_no_put_sent_are_a_phantom_during_the_run_and_at_the_end():
    history = History([put("k", A, 0, 1), get("k", C, 2, 3)])
    violations = check(history, settled({"k": A}))
    assert [(v.kind, v.key) for v in violations] == [("phantom", "k")]
    assert kinds(check(History([put("k", A, 0, 1)]), settled({"k": C}))) == {"phantom"}


def test_a_read_of_a_write_that_started_after_the_read_ended_is_a_phantom():
    history = History([put("k", A, 0, 1), get("k", B, 2, 3), put("k", B, 5, 6)])
    violations = check(history, settled({"k": B}))
    assert [v.kind for v in violations] == ["phantom"]
    assert "after the read ended" in violations[0].detail


def test_the_bytes_of_a_failed_put_must_never_be_read():
    history = History([put("k", A, 0, 1), put("k", B, 2, 3, outcome="fail"), get("k", B, 4, 5)])
    assert kinds(check(history, settled({"k": A}))) == {"phantom"}
    assert kinds(check(History([put("k", B, 0, 1, outcome="fail")]), settled({"k": B}))) == {
        "phantom"
    }


def test_a_listing_during_the_run_of_a_key_never_put_is_a_phantom():
    history = History([put("k", A, 0, 1), listing(("k", "ghost"), 2, 3)])
    violations = check(history, settled({"k": A, "ghost": None}))
    assert [(v.kind, v.key) for v in violations] == [("phantom", "ghost")]


def test_one_node_stale_after_settling_is_a_lost_write_and_divergence():
    history = History([put("k", A, 0, 1), put("k", B, 2, 3)])
    final = settled({"k": B})
    final.reads["n3"]["k"] = A
    violations = check(history, final)
    assert kinds(violations) == {"lost_write", "divergent"}
    assert any(v.kind == "lost_write" and "n3" in v.detail for v in violations)


def test_a_listing_missing_a_present_key_is_flagged():
    history = History([put("k1", A, 0, 1), put("k2", B, 0, 1)])
    final = settled({"k1": A, "k2": B})
    final.listings["n2"] = {"k1"}
    violations = check(history, final)
    assert [(v.kind, v.key) for v in violations] == [("listing", "k2")]
    assert "n2" in violations[0].detail


def test_a_listing_containing_a_deleted_key_is_flagged():
    history = History([put("k", A, 0, 1), delete("k", 2, 3)])
    final = settled({"k": None})
    final.listings["n1"] = {"k"}
    assert [(v.kind, v.key) for v in check(history, final)] == [("listing", "k")]


def test_an_unreadable_node_is_flagged():
    final = settled({"k": A})
    del final.reads["n3"], final.listings["n3"]
    final.unreachable.add("n3")
    final.reasons["n3"] = "EndpointConnectionError"
    violations = check(History([put("k", A, 0, 1)]), final)
    assert [(v.kind, v.key) for v in violations] == [("unreachable", None)]


# ---- histories the checker must accept -----------------------------------------------------


@pytest.mark.parametrize("winner", [A, B])
def test_overlapping_acknowledged_writes_may_end_either_way(winner):
    history = History([put("k", A, 0, 2), put("k", B, 1, 3)])
    assert check(history, settled({"k": winner})) == []


@pytest.mark.parametrize("winner", [A, None])
def test_an_overlapping_delete_may_win_or_lose(winner):
    history = History([put("k", A, 0, 2), delete("k", 1, 3)])
    assert check(history, settled({"k": winner})) == []


@pytest.mark.parametrize("final_value", [A, B])
def test_an_unknown_outcome_write_may_be_present_or_absent(final_value):
    history = History([put("k", A, 0, 1), put("k", B, 2, 3, outcome="unknown")])
    assert check(history, settled({"k": final_value})) == []


@pytest.mark.parametrize("final_value", [None, A])
def test_an_unknown_outcome_put_alone_may_or_may_not_have_happened(final_value):
    history = History([put("k", A, 0, 1, outcome="unknown")])
    assert check(history, settled({"k": final_value})) == []


def test_an_unanswered_write_may_take_effect_after_a_later_acknowledged_one():
    # A request to a paused node times out; the node resumes and executes it after B.
    history = History([put("k", A, 0, 15, outcome="unknown", status=None), put("k", B, 16, 17)])
    assert check(history, settled({"k": A})) == []
    assert check(history, settled({"k": B})) == []


def test_delete_then_put_ends_with_the_put():
    history = History([delete("k", 0, 1), put("k", A, 2, 3), get("k", None, 1.5, 1.8)])
    assert check(history, settled({"k": A})) == []
    assert kinds(check(history, settled({"k": None}))) == {"lost_write"}


def test_put_then_delete_ends_absent_and_unlisted():
    history = History([put("k", A, 0, 1), delete("k", 2, 3)])
    assert check(history, settled({"k": None})) == []
    assert kinds(check(history, settled({"k": A}))) == {"lost_write"}


def test_failed_writes_never_happened():
    history = History(
        [put("k", A, 0, 1), put("k", B, 2, 3, outcome="fail"), delete("k", 4, 5, "fail")]
    )
    assert check(history, settled({"k": A})) == []


def test_a_key_never_written_must_be_absent_and_may_be():
    assert check(History([]), settled({"k": None})) == []


def test_reads_of_an_older_acknowledged_value_during_the_run_are_allowed():
    history = History(
        [put("k", A, 0, 1), put("k", B, 2, 3), get("k", A, 4, 5), listing(("k",), 4, 5)]
    )
    assert check(history, settled({"k": B})) == []


def test_a_read_overlapping_the_put_it_returns_is_allowed():
    history = History([put("k", A, 1, 3), get("k", A, 0, 2)])
    assert check(history, settled({"k": A})) == []


# ---- the history log -----------------------------------------------------------------------


def test_history_round_trips_through_json_lines_and_summarises(tmp_path):
    history = History(
        [
            put("k", A, 0, 1),
            put("k", B, 1, 2, outcome="unknown", status=None, error="ReadTimeoutError"),
            get("k", A, 2, 3),
            listing(("k",), 3, 4),
        ]
    )
    path = tmp_path / "history.jsonl"
    history.save(path)
    assert History.load(path).ops == history.ops
    assert history.summary() == {
        "put": {"ok": 1, "unknown": 1},
        "get": {"ok": 1},
        "list": {"ok": 1},
    }


def test_history_records_from_many_threads():
    history = History()
    threads = [
        threading.Thread(
            target=lambda c=c: [history.record(get(f"k{c}", None, i, i)) for i in range(200)]
        )
        for c in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(history.ops) == 800


# ---- how the workload classifies failures --------------------------------------------------


def client_error(status: int, code: str) -> ClientError:
    """The ClientError botocore raises for an HTTP error answer."""
    return ClientError(
        {"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("error", "outcome", "status"),
    [
        (client_error(503, "ServiceUnavailable"), "unknown", 503),
        (client_error(500, "InternalError"), "unknown", 500),
        (client_error(403, "AccessDenied"), "fail", 403),
        (EndpointConnectionError(endpoint_url="http://n1:9000"), "fail", None),
        (ConnectTimeoutError(endpoint_url="http://n1:9000"), "fail", None),
        (ReadTimeoutError(endpoint_url="http://n1:9000"), "unknown", None),
        (ConnectionResetError("reset by peer"), "unknown", None),
    ],
)
def test_failures_are_classified_by_whether_the_request_may_have_applied(error, outcome, status):
    classified_outcome, classified_status, text = classify_failure(error)
    assert (classified_outcome, classified_status) == (outcome, status)
    assert text


def test_requests_to_a_closed_port_are_recorded_as_failed_without_spinning():
    workload = Workload([Endpoint("dead", "http://127.0.0.1:1")], "AK", "SK", "b", clients=2)
    workload.start()
    time.sleep(1)
    history = workload.stop()
    ops = history.ops
    # The back-off after a connection error bounds the rate: about 5 requests a second each.
    assert 2 <= len(ops) <= 2 * 8
    assert {(op.outcome, op.status) for op in ops} == {("fail", None)}
    assert all("EndpointConnectionError" in op.error for op in ops)
    assert workload.acknowledged_writes() == 0
    assert check(history, settled({name: None for name in workload.key_names})) == []


# ---- replica convergence (the locate view) -------------------------------------------------


def locate_report(
    stamps: dict[str, int | None], blocks: list[dict[str, bool]] | None = None
) -> dict:
    """A GET /v1/cluster/locate answer: metadata owners with stamps (None: no copy), blocks as
    {node: holds} maps."""
    return {
        "bucket": "b",
        "key": "k",
        "metadata": [
            {
                "node": node,
                "owner": True,
                "holds": stamp is not None,
                "stamp": stamp,
                "tombstone": False,
                "error": None,
            }
            for node, stamp in stamps.items()
        ],
        "blocks": [
            {
                "hash": f"{index:064x}",
                "owners": [
                    {"node": node, "holds": holds, "error": None} for node, holds in owners.items()
                ],
            }
            for index, owners in enumerate(blocks or [])
        ],
        "hints_pending_for_key": 0,
    }


def test_replicas_with_one_stamp_and_every_block_copy_have_converged():
    report = locate_report(
        {"n1": 7, "n2": 7, "n3": 7}, [{"n1": True, "n2": True}, {"n2": True, "n3": True}]
    )
    assert replica_problems(report) == []


def test_a_key_nobody_holds_has_converged():
    assert replica_problems(locate_report({"n1": None, "n2": None, "n3": None})) == []


def test_different_stamps_are_not_converged():
    problems = replica_problems(locate_report({"n1": 7, "n2": 7, "n3": 6}))
    assert len(problems) == 1 and "n3: 6" in problems[0]


def test_an_owner_without_a_copy_is_not_converged():
    problems = replica_problems(locate_report({"n1": 7, "n2": None, "n3": 7}))
    assert len(problems) == 1 and "n2: none" in problems[0]


def test_an_owner_that_could_not_be_asked_is_not_converged():
    report = locate_report({"n1": 7, "n2": 7, "n3": 7})
    report["metadata"][2] |= {"holds": False, "stamp": None, "error": "connection refused"}
    problems = replica_problems(report)
    assert any("n3 could not be asked: connection refused" in problem for problem in problems)


def test_a_block_owner_without_an_intact_copy_is_not_converged():
    report = locate_report({"n1": 7, "n2": 7, "n3": 7}, [{"n1": True, "n2": False}])
    problems = replica_problems(report)
    assert len(problems) == 1 and "no intact copy on n2" in problems[0]


@contextmanager
def locate_server(token: str, reports: list[dict]) -> Iterator[tuple[str, list[dict]]]:
    """A loopback admin stand-in answering locate queries with `reports` in turn (the last one
    forever); yields its URL and the queries it received."""
    queries: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if self.headers.get("Authorization") != f"Bearer {token}":
                self.send_response(401)
                self.end_headers()
                return
            queries.append({"path": url.path} | {k: v[0] for k, v in parse_qs(url.query).items()})
            body = json.dumps(reports[min(len(queries), len(reports)) - 1]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", queries
    finally:
        server.shutdown()
        server.server_close()


def test_wait_replicas_converged_polls_until_the_stamps_agree():
    lagging = locate_report({"n1": 7, "n2": 6})
    converged = locate_report({"n1": 7, "n2": 7})
    with locate_server("tok", [lagging, converged]) as (url, queries):
        ok, seconds, problems = wait_replicas_converged(
            {"n1": url}, "tok", "my bucket", ["a/b+c"], 30
        )
    assert ok and problems == []
    assert len(queries) == 2
    assert queries[0] == {"path": "/v1/cluster/locate", "bucket": "my bucket", "key": "a/b+c"}
    assert 0 < seconds < 30


def test_wait_replicas_converged_gives_up_with_the_reasons():
    lagging = locate_report({"n1": 7, "n2": 6})
    with locate_server("tok", [lagging]) as (url, _):
        dead_admin = "http://127.0.0.1:1"
        ok, _, problems = wait_replicas_converged(
            {"n0": dead_admin, "n1": url}, "tok", "b", 2, timeout=0
        )
    assert not ok
    assert len(problems) == 2 and all("different versions" in problem for problem in problems)


def test_wait_replicas_converged_reports_when_no_admin_answers():
    ok, _, problems = wait_replicas_converged({"n1": "http://127.0.0.1:1"}, "tok", "b", ["k"], 0)
    assert not ok
    assert problems and "no admin endpoint answered" in problems[0]
