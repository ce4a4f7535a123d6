"""Fault scenarios on five-node Docker clusters (N=3, W=2, R=2), each under a client load.

Every scenario starts a fresh cluster, runs the workload (six S3 clients writing, overwriting,
reading, listing and deleting 48 keys through every node, see workload.py) while it injects
one fault, heals it, keeps the load on for a few more seconds, and then ends the same way:

1. the workload stops; `wait_until_settled` polls until every node reads and lists the same
   final state (bounded by SETTLE_SECONDS);
2. `wait_replicas_converged` polls the debug view of every key until all metadata owners
   hold the same version and every block owner an intact copy (bounded by CONVERGE_SECONDS);
3. `check(history, final)` must find nothing: no acknowledged write lost, no phantom bytes,
   no divergence, listings equal to the live keys;
4. enough writes were acknowledged for the run to mean something.

Each scenario prints `FAULT <scenario> acked=… unknown=… lost=… settle=…s converge=…s`
(collected at the end of the run, and recorded in docs/FAULTS.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from checker import check, wait_replicas_converged, wait_until_settled
from docker_cluster import DockerCluster, DockerError
from history import History
from workload import Endpoint, Workload, key_names

BUCKET = "faults"
KEY_COUNT = 48
KEYS = key_names(KEY_COUNT)
CLIENTS = 6
#: Load before the fault, so it hits a cluster with data and requests in flight.
WARMUP_SECONDS = 5.0
#: How long a fault lasts under load.
FAULT_SECONDS = 25.0
#: Block GC of the full-disk scenario: every 5 s, blocks unreferenced for 30 s (longer than
#: the fault, so little of what n3 holds is freed while its disk is full).
ENOSPC_NODE_ARGS = ("--block-gc-interval", "5", "--block-gc-grace", "30")
#: Load after the heal, so the healed node serves and receives writes again.
AFTER_HEAL_SECONDS = 8.0
SETTLE_SECONDS = 90.0
CONVERGE_SECONDS = 90.0
#: Fewer acknowledged writes than this and a run proves little: the cluster barely served.
MIN_ACKNOWLEDGED_WRITES = 100
#: The failure detector's down timeout (node/src/cluster/membership/mod.rs, DOWN_AFTER).
DOWN_AFTER_SECONDS = 8.0
#: How long the cluster may take to see a silent node Down, beyond DOWN_AFTER_SECONDS.
DETECTION_SLACK_SECONDS = 7.0
#: Per-test bound: start, warm-up, fault, settle and converge, with room to spare.
SCENARIO_TIMEOUT = 300


@dataclass
class Figures:
    """What one scenario measured (a row of the table in docs/FAULTS.md)."""

    scenario: str
    acknowledged: int
    unknown: int
    violations: int
    settle_seconds: float
    converge_seconds: float

    def line(self) -> str:
        """The `FAULT …` line the suite prints."""
        return (
            f"FAULT {self.scenario} acked={self.acknowledged} unknown={self.unknown} "
            f"lost={self.violations} settle={self.settle_seconds:.1f}s "
            f"converge={self.converge_seconds:.1f}s"
        )


def endpoints(cluster: DockerCluster, node_ids: list[str]) -> list[Endpoint]:
    """The S3 endpoints of some nodes."""
    return [Endpoint(node_id, cluster.nodes[node_id].s3_url) for node_id in node_ids]


def create_bucket(cluster: DockerCluster, deadline_seconds: float = 30.0) -> None:
    """Creates the workload's bucket through node 1 (retrying while the cluster warms up)."""
    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=cluster.nodes["n1"].s3_url,
        region_name="us-east-1",
        aws_access_key_id=cluster.credentials.access_key,
        aws_secret_access_key=cluster.credentials.secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            connect_timeout=2,
            read_timeout=10,
        ),
    )
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            s3.create_bucket(Bucket=BUCKET)
            return
        except (ClientError, BotoCoreError) as error:
            if time.monotonic() > deadline:
                raise DockerError(f"cannot create bucket {BUCKET}: {error}") from error
            time.sleep(1.0)


def writes_with_outcome(history: History, outcome: str) -> int:
    """Puts and deletes of the history with `outcome`."""
    return sum(1 for op in history.ops if op.is_write and op.outcome == outcome)


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Polls `condition` until it holds; returns the seconds it took, fails after `seconds`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not within {seconds}s: {what}")
        time.sleep(0.25)
    return time.monotonic() - started


def seen_down_by_all(cluster: DockerCluster, node_id: str, observers: list[str]) -> bool:
    """Whether every observer's failure detector reports `node_id` Down."""
    for observer in observers:
        status = cluster.status(observer)
        peers = {peer["id"]: peer["status"] for peer in (status or {}).get("nodes", [])}
        if peers.get(node_id) != "Down":
            return False
    return True


def run_under_load(
    cluster: DockerCluster,
    scenario: str,
    tmp_path: Path,
    fault: Callable[[], None],
    fault_figures: list[str],
    client_nodes: dict[int, list[str]] | None = None,
    nodes: list[str] | None = None,
    big_every: int = 10,
) -> tuple[History, Figures]:
    """Runs the workload through `nodes` (default: every member; `client_nodes` pins some
    clients), calls `fault()` after the warm-up (it injects the fault and heals it),
    keeps the load on a little, then settles, converges and checks (see the module
    docstring). Returns the history and the figures; fails the test on any violation."""
    create_bucket(cluster)
    through = nodes or list(cluster.members)
    workload = Workload(
        endpoints(cluster, through),
        cluster.credentials.access_key,
        cluster.credentials.secret_key,
        BUCKET,
        clients=CLIENTS,
        keys=KEY_COUNT,
        seed=1,
        big_every=big_every,
        client_endpoints={
            client: endpoints(cluster, ids) for client, ids in (client_nodes or {}).items()
        },
    )
    workload.start()
    try:
        time.sleep(WARMUP_SECONDS)
        fault()
        time.sleep(AFTER_HEAL_SECONDS)
    finally:
        history = workload.stop()
        history.save(tmp_path / "history.jsonl")

    members = list(cluster.members)
    final, settle_seconds = wait_until_settled(
        endpoints(cluster, members),
        cluster.credentials.access_key,
        cluster.credentials.secret_key,
        BUCKET,
        KEYS,
        history,
        SETTLE_SECONDS,
    )
    converged, converge_seconds, problems = wait_replicas_converged(
        {node_id: cluster.nodes[node_id].admin_url for node_id in members},
        cluster.credentials.admin_token,
        BUCKET,
        KEYS,
        CONVERGE_SECONDS,
    )
    violations = check(history, final)
    figures = Figures(
        scenario,
        writes_with_outcome(history, "ok"),
        writes_with_outcome(history, "unknown"),
        len(violations),
        settle_seconds,
        converge_seconds,
    )
    print(figures.line())
    print(f"history of {scenario}: {history.summary()}")
    fault_figures.append(figures.line())
    assert not violations, "\n".join(f"{v.kind} {v.key}: {v.detail}" for v in violations[:20])
    assert converged, f"replicas not converged after {CONVERGE_SECONDS}s: {problems[:10]}"
    assert figures.acknowledged >= MIN_ACKNOWLEDGED_WRITES, history.summary()
    return history, figures


@pytest.mark.timeout(SCENARIO_TIMEOUT)
def test_sigkill_a_node_under_load_and_restart_it(cluster, tmp_path, fault_figures):
    """1. SIGKILL one node mid-load; restart the same container on the same volume."""
    cluster.start(count=5)

    def fault() -> None:
        cluster.kill("n2")
        time.sleep(FAULT_SECONDS)
        cluster.restart("n2")
        cluster.wait_all_up()

    run_under_load(cluster, "sigkill", tmp_path, fault, fault_figures)


@pytest.mark.timeout(SCENARIO_TIMEOUT)
def test_pause_a_node_beyond_the_failure_detector(cluster, tmp_path, fault_figures):
    """2. Freeze one node (cgroup freezer) until the others declare it Down, then thaw it:
    requests it had in its socket buffers run late."""
    cluster.start(count=5)
    observers = ["n1", "n2", "n4", "n5"]

    def fault() -> None:
        cluster.pause("n3")
        paused_at = time.monotonic()
        wait_until(
            lambda: seen_down_by_all(cluster, "n3", observers),
            DOWN_AFTER_SECONDS + DETECTION_SLACK_SECONDS,
            "the others see n3 Down",
        )
        time.sleep(max(0.0, FAULT_SECONDS - (time.monotonic() - paused_at)))
        cluster.unpause("n3")
        cluster.wait_all_up()

    run_under_load(cluster, "pause", tmp_path, fault, fault_figures)


@pytest.mark.timeout(SCENARIO_TIMEOUT)
def test_disconnect_a_node_from_the_network(cluster, tmp_path, fault_figures):
    """3. Take one node off the network (peers and clients lose it), then reconnect it with
    the same address."""
    cluster.start(count=5)
    observers = ["n1", "n2", "n3", "n5"]

    def fault() -> None:
        cluster.disconnect("n4")
        cut_at = time.monotonic()
        wait_until(
            lambda: seen_down_by_all(cluster, "n4", observers),
            DOWN_AFTER_SECONDS + DETECTION_SLACK_SECONDS,
            "the others see n4 Down",
        )
        time.sleep(max(0.0, FAULT_SECONDS - (time.monotonic() - cut_at)))
        cluster.reconnect("n4")
        cluster.wait_all_up()

    run_under_load(cluster, "disconnect", tmp_path, fault, fault_figures)


@pytest.mark.timeout(SCENARIO_TIMEOUT)
def test_split_minority_and_majority_with_clients_on_both_sides(cluster, tmp_path, fault_figures):
    """4. Split {n1,n2,n3} | {n4,n5}: the sides cannot reach each other, clients 0-2 write
    through the majority and 3-5 through the minority. The minority may refuse writes (503)
    or take them with sloppy quorum; either way nothing acknowledged may be lost."""
    cluster.start(count=5)
    majority, minority = ["n1", "n2", "n3"], ["n4", "n5"]

    def fault() -> None:
        cluster.split(majority, minority)
        split_at = time.monotonic()
        wait_until(
            lambda: (
                seen_down_by_all(cluster, "n4", majority)
                and seen_down_by_all(cluster, "n1", minority)
            ),
            DOWN_AFTER_SECONDS + DETECTION_SLACK_SECONDS,
            "each side sees the other Down",
        )
        time.sleep(max(0.0, FAULT_SECONDS - (time.monotonic() - split_at)))
        cluster.heal_split()
        cluster.wait_all_up()

    pinned = {0: majority, 1: majority, 2: majority, 3: minority, 4: minority, 5: minority}
    history, _ = run_under_load(
        cluster, "split", tmp_path, fault, fault_figures, client_nodes=pinned
    )
    acknowledged_by_side = {
        side: sum(
            1 for op in history.ops if op.is_write and op.outcome == "ok" and op.node in nodes
        )
        for side, nodes in (("majority", majority), ("minority", minority))
    }
    print(f"acknowledged writes by side: {acknowledged_by_side}")
    assert acknowledged_by_side["majority"] > 0, acknowledged_by_side


@pytest.mark.timeout(SCENARIO_TIMEOUT)
def test_rolling_restart_of_every_node(cluster, tmp_path, fault_figures):
    """5. Stop (SIGTERM) and restart every node in turn under load, waiting until the
    cluster sees the restarted node Up before the next one."""
    cluster.start(count=5)

    def fault() -> None:
        for node_id in list(cluster.members):
            cluster.stop(node_id)
            time.sleep(2.0)
            cluster.restart(node_id)
            cluster.wait_all_up()

    run_under_load(cluster, "rolling-restart", tmp_path, fault, fault_figures)


REBALANCE_SECONDS = 90.0
#: Load on each new layout once its rebalance is done, before the next step.
LAYOUT_LOAD_SECONDS = 10.0


@pytest.mark.timeout(SCENARIO_TIMEOUT + 60)
def test_add_a_node_then_decommission_another(cluster, tmp_path, fault_figures):
    """6. Under load through n1-n4: n6 joins (layout v2 of six nodes) and, once the
    rebalance is done, serves its share for a while; then n5 is decommissioned (layout v3
    without it); once every node, n5 included, reports that rebalance done, and a while
    later, n5's container stops."""
    cluster.start(count=5)
    times: dict[str, float] = {}

    def fault() -> None:
        cluster.add_container("n6")
        cluster.wait_ready(cluster.nodes["n6"])
        cluster.apply_layout(["n1", "n2", "n3", "n4", "n5", "n6"])
        times["add"] = cluster.wait_rebalanced(list(cluster.members), REBALANCE_SECONDS)
        time.sleep(LAYOUT_LOAD_SECONDS)
        cluster.apply_layout(["n1", "n2", "n3", "n4", "n6"])
        times["decommission"] = cluster.wait_rebalanced(
            ["n1", "n2", "n3", "n4", "n5", "n6"], REBALANCE_SECONDS
        )
        time.sleep(LAYOUT_LOAD_SECONDS)
        cluster.stop("n5")

    run_under_load(
        cluster,
        "add-decommission",
        tmp_path,
        fault,
        fault_figures,
        nodes=["n1", "n2", "n3", "n4"],
    )
    print(f"rebalance seconds: {times}")
    assert cluster.members == ["n1", "n2", "n3", "n4", "n6"]


@pytest.mark.timeout(SCENARIO_TIMEOUT)
def test_full_disk_on_one_node(cluster, tmp_path, fault_figures):
    """7. n3's volume (a 256 MiB tmpfs) is filled to ENOSPC under load: writes through the
    other nodes keep being acknowledged, n3 reports errors, nothing is lost; once the filler
    is deleted n3 serves again and its replicas converge."""
    # The volume must hold what n3 owns once the filler is gone, however fast this machine
    # writes: small bodies only (the multi-block path has its own scenarios), and overwritten
    # blocks collected half a minute after they lose their last reference (the default
    # hour would keep every overwrite of the run on the 256 MiB volume).
    cluster.start(count=5, small_disks=["n3"], node_args=ENOSPC_NODE_ARGS)
    window: dict[str, float] = {}

    def fault() -> None:
        filled = cluster.fill_disk("n3")
        window["start"] = time.monotonic()
        print(f"filled n3's disk with {filled} bytes; {cluster.disk_free_bytes('n3')} free")
        time.sleep(FAULT_SECONDS)
        window["end"] = time.monotonic()
        cluster.free_disk("n3")
        if not cluster.running("n3"):
            pytest.fail(f"n3 exited on a full disk:\n{cluster.log_text('n3')[-4000:]}")
        cluster.wait_all_up()

    history, _ = run_under_load(cluster, "enospc", tmp_path, fault, fault_figures, big_every=0)
    during = [
        op
        for op in history.ops
        if op.is_write and window["start"] <= op.start and op.end <= window["end"]
    ]
    through_others = sum(1 for op in during if op.node != "n3" and op.outcome == "ok")
    refused_by_n3 = sum(1 for op in during if op.node == "n3" and op.outcome != "ok")
    print(
        f"while n3's disk was full: {through_others} writes acknowledged through the other "
        f"nodes, {refused_by_n3} writes through n3 not acknowledged"
    )
    assert through_others >= 20, [op for op in during if op.node != "n3"][:5]
    full_disk_logged = "No space left on device" in cluster.log_text("n3")
    assert refused_by_n3 > 0 or full_disk_logged, "n3 neither refused writes nor logged ENOSPC"
