"""The workload and the checker end to end against one real `mucura serve` on loopback (no
Docker): a run without faults must record many acknowledged operations and pass the check, and
a write the history does not know about must not."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from checker import check, collect_final_state, wait_until_settled
from workload import Endpoint, Workload, make_client

# The client suite's server launcher (fresh loopback ports, readiness wait, log tail).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients"))
from mucura_server import MucuraServer

SHARED_RELEASE_BINARY = Path("/var/tmp/mucura-target/release/mucura")
RUN_SECONDS = 5
SETTLE_TIMEOUT_SECONDS = 30
# A healthy server on loopback does hundreds of writes in RUN_SECONDS; far fewer means the
# workload is stuck (e.g. every request failing), which would make a passing check vacuous.
MIN_ACKNOWLEDGED_WRITES = 50


def mucura_binary() -> Path:
    """$MUCURA_BIN, else the shared release build."""
    binary = Path(os.environ.get("MUCURA_BIN") or SHARED_RELEASE_BINARY)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(
            f"no mucura binary at {binary}: build it with `cargo build --release -p mucura-node` "
            "or set MUCURA_BIN"
        )
    return binary


@pytest.mark.timeout(120)
def test_workload_history_checks_clean_against_one_local_server(tmp_path):
    server = MucuraServer(tmp_path / "server", mucura_binary())
    server.start()
    try:
        bucket = "faults-local"
        admin = make_client(
            Endpoint("setup", server.endpoint), server.access_key, server.secret_key
        )
        admin.create_bucket(Bucket=bucket)
        # Two names for the one server: exercises the per-endpoint clients and round-robin.
        endpoints = [Endpoint("a", server.endpoint), Endpoint("b", server.endpoint)]
        workload = Workload(
            endpoints, server.access_key, server.secret_key, bucket, clients=4, keys=12, seed=7
        )
        workload.start()
        time.sleep(RUN_SECONDS)
        history = workload.stop()
        history.save(tmp_path / "history.jsonl")
        summary = history.summary()

        final, seconds = wait_until_settled(
            endpoints,
            server.access_key,
            server.secret_key,
            bucket,
            workload.key_names,
            history,
            SETTLE_TIMEOUT_SECONDS,
        )
        assert check(history, final) == [], summary
        assert seconds < SETTLE_TIMEOUT_SECONDS
        # Nothing was injected: every request must have succeeded.
        assert {outcome for counts in summary.values() for outcome in counts} == {"ok"}, summary
        assert set(summary) == {"put", "get", "delete", "list"}, summary
        assert workload.acknowledged_writes() >= MIN_ACKNOWLEDGED_WRITES, summary
        present = {key for key, value in final.reads["a"].items() if value is not None}
        assert present and final.listings["a"] == present

        # A write behind the history's back is caught: the checker is not vacuous.
        tampered = sorted(present)[0]
        admin.put_object(Bucket=bucket, Key=tampered, Body=b"written outside the workload")
        final = collect_final_state(
            endpoints, server.access_key, server.secret_key, bucket, workload.key_names
        )
        violations = check(history, final)
        assert [(v.kind, v.key) for v in violations] == [("phantom", tampered)] * 2, violations
    finally:
        server.stop()
