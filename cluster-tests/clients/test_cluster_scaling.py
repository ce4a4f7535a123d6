"""Scaling a five-node loopback cluster (`mucura local-cluster --nodes 5`, N=3 W=2 R=2) out
and in, with real processes, checked replica by replica through the debug view
(`GET /v1/cluster/locate`) and the block files on disk.

Scenarios (each under 60 s, a fresh cluster each):

- add a node: objects (inline, one-block and two-block bodies) are written through nodes
  1-3 while a sixth `mucura serve` joins and `mucura admin layout add-node` adds it; every
  acknowledged object is read back through random nodes during the whole move, without a
  single failure or wrong byte. Once every node reports the new layout rebalanced, each
  object's metadata and blocks are on exactly its three current owners, the new node holds
  its share, and block files left the nodes that no longer own them.
- decommission: a layout without node 5 is applied (`layout show`, remove it, bump the
  version, `layout apply --file`); once the four remaining nodes report the rebalance done,
  every object is on its three current owners and reads back through them, also after
  node 5 is stopped.

Each scenario prints its convergence time (`CONVERGED <scenario> <seconds>`); the figures
are recorded in docs/BENCHMARKS.md, "Cluster recovery (loopback)".
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from mucura_server import _die_with_parent
from test_cluster_recovery import Cluster

OBJECTS = 300
REBALANCE_SECONDS = 40.0
JOIN_SECONDS = 15.0
BUCKET = "scaling"


def body_for(index: int) -> bytes:
    """Inline (2 KiB) for every third object, two blocks (1.5 MiB) for every fifteenth,
    one block (24 KiB) otherwise."""
    if index % 15 == 0:
        size = 1536 * 1024
    elif index % 3 == 0:
        size = 2 * 1024
    else:
        size = 24 * 1024
    seed = f"scaling-{index}-".encode()
    return (seed * (size // len(seed) + 1))[:size]


def index_of(key: str) -> int:
    return int(key.rsplit("/", 1)[1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_cli(cluster: Cluster, node: dict, *args: str) -> str:
    """Runs `mucura admin <args>` against `node` through the environment variables (as an
    operator would) and returns its stdout."""
    env = dict(cluster.env, MUCURA_ADMIN_URL=f"http://{node['admin']}",
               MUCURA_ADMIN_TOKEN=cluster.token(node))
    done = subprocess.run([str(cluster.binary), "admin", *args], capture_output=True,
                          text=True, timeout=30, env=env)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


class Traffic:
    """Writers putting `OBJECTS` numbered objects through some nodes, and readers reading
    acknowledged objects back through random nodes (`readable`, which may grow) until
    stopped. Every failed or wrong read is recorded."""

    def __init__(self, cluster: Cluster, writers_through: list[dict], readable: list[dict]):
        self.cluster = cluster
        self.readable = readable
        self.acknowledged: list[str] = []
        self.write_errors: list[str] = []
        self.read_errors: list[str] = []
        self.reads = 0
        self.lock = threading.Lock()
        self.counter = iter(range(OBJECTS))
        self.stop = threading.Event()
        self.writers = [threading.Thread(target=self._write, args=(cluster.s3(node),))
                        for node in writers_through]
        self.readers = [threading.Thread(target=self._read, args=(seed,)) for seed in (1, 2)]
        for thread in self.writers + self.readers:
            thread.start()

    def _write(self, s3):
        while not self.stop.is_set():
            with self.lock:
                index = next(self.counter, None)
            if index is None:
                return
            key = f"obj/{index:05d}"
            try:
                s3.put_object(Bucket=BUCKET, Key=key, Body=body_for(index))
            except Exception as error:  # noqa: BLE001 - every failure is a finding
                self.write_errors.append(f"{key}: {error}")
                continue
            with self.lock:
                self.acknowledged.append(key)

    def _read(self, seed: int):
        chooser = random.Random(seed)
        clients: dict[str, object] = {}
        while not self.stop.is_set():
            with self.lock:
                keys = list(self.acknowledged)
                nodes = list(self.readable)
            if not keys:
                time.sleep(0.05)
                continue
            key, node = chooser.choice(keys), chooser.choice(nodes)
            s3 = clients.setdefault(node["id"], self.cluster.s3(node))
            try:
                body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                if body != body_for(index_of(key)):
                    self.read_errors.append(f"{key} through {node['id']}: wrong bytes "
                                            f"({len(body)} bytes)")
            except Exception as error:  # noqa: BLE001 - every failure is a finding
                self.read_errors.append(f"{key} through {node['id']}: {error}")
            with self.lock:
                self.reads += 1

    def writes_done(self) -> list[str]:
        for thread in self.writers:
            thread.join(timeout=45)
        return sorted(self.acknowledged)

    def finish(self):
        self.stop.set()
        for thread in self.writers + self.readers:
            thread.join(timeout=30)


def rebalance_state(cluster: Cluster, node: dict) -> dict:
    try:
        return cluster.admin(node, "/v1/cluster/status")
    except (OSError, pytest.fail.Exception):
        return {}


def rebalanced(status: dict, version: int) -> bool:
    """The node uses layout `version` and every moved range it held is confirmed."""
    summary = status.get("rebalance") or {}
    return (status.get("layout_version") == version
            and summary.get("layout_version") == version
            and summary.get("ranges_synced") == summary.get("ranges_total"))


def wait_rebalanced(cluster: Cluster, nodes: list[dict], version: int, scenario: str,
                    since: float) -> tuple[float, dict[str, dict]]:
    """Until every node in `nodes` reports layout `version` rebalanced and no hint or block
    handoff is pending; prints and returns the seconds since `since` and the statuses."""
    deadline = time.monotonic() + REBALANCE_SECONDS
    statuses: dict[str, dict] = {}
    while time.monotonic() < deadline:
        statuses = {node["id"]: rebalance_state(cluster, node) for node in nodes}
        if all(rebalanced(status, version) for status in statuses.values()) and all(
                status["pending_hints"] + status["pending_block_handoffs"] == 0
                for status in statuses.values()):
            elapsed = time.monotonic() - since
            print(f"CONVERGED {scenario} {elapsed:.1f}s")
            return elapsed, statuses
        time.sleep(0.5)
    summary = {node_id: (status.get("layout_version"), status.get("rebalance"),
                         status.get("pending_hints"), status.get("pending_block_handoffs"))
               for node_id, status in statuses.items()}
    pytest.fail(f"{scenario}: not rebalanced to version {version} within "
                f"{REBALANCE_SECONDS}s: {json.dumps(summary)}")
    raise AssertionError  # unreachable


def on_current_owners(report: dict, expect_blocks: bool) -> bool:
    """Three owners hold the same metadata version, and every block is on its three."""
    metadata = report["metadata"]
    return (len(metadata) == 3 and all(copy["holds"] and not copy["error"] for copy in metadata)
            and len({copy["stamp"] for copy in metadata}) == 1
            and (len(report["blocks"]) > 0) == expect_blocks
            and all(len(block["owners"]) == 3 and all(o["holds"] for o in block["owners"])
                    for block in report["blocks"]))


def block_file(node: dict, hash_hex: str) -> Path:
    return Path(node["data_dir"]) / "blocks" / hash_hex[:2] / hash_hex


def check_placement(cluster: Cluster, asker: dict, keys: list[str],
                    members: list[dict]) -> dict[str, int]:
    """Asserts every key sits on exactly its three current owners (among `members`),
    metadata and blocks, and that no node of the cluster outside a block's owners (a former
    member included) keeps its file; returns how many keys' metadata each member owns."""
    owned = {node["id"]: 0 for node in members}
    stray_blocks: list[str] = []
    for key in keys:
        report = cluster.locate(asker, BUCKET, key)
        expect_blocks = len(body_for(index_of(key))) > 8 * 1024
        assert on_current_owners(report, expect_blocks), (key, json.dumps(report))
        for copy in report["metadata"]:
            assert copy["node"] in owned, (key, copy["node"])
            owned[copy["node"]] += 1
        for block in report["blocks"]:
            owners = {owner["node"] for owner in block["owners"]}
            strays = [node["id"] for node in cluster.nodes if node["id"] not in owners
                      and block_file(node, block["hash"]).exists()]
            if strays:
                stray_blocks.append(f"{key}: block {block['hash'][:16]} on non-owners "
                                    f"{strays}, owners {sorted(owners)}")
    assert not stray_blocks, (len(stray_blocks), stray_blocks[:10])
    return owned


SETTLE_SECONDS = 35.0


def eventually(check, seconds: float, what: str):
    """Runs `check` until it stops failing an assertion or `seconds` pass; returns its value."""
    started = time.monotonic()
    while True:
        try:
            value = check()
            print(f"CONVERGED {what} {time.monotonic() - started:.1f}s")
            return value
        except AssertionError:
            if time.monotonic() - started > seconds:
                raise
            time.sleep(2.0)


def read_all(cluster: Cluster, keys: list[str], nodes: list[dict]):
    for position, key in enumerate(keys):
        node = nodes[position % len(nodes)]
        body = cluster.s3(node).get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert body == body_for(index_of(key)), f"{key} through {node['id']}"


def start_extra_node(cluster: Cluster, template: dict, node_id: str, zone: str) -> dict:
    """Starts one more `mucura serve` in cluster mode from `template`'s argv with its own
    data dir, id, zone and ports (same secret file and seed); it shares the cluster's root
    credentials by having node 1's credentials file in its data dir before it starts."""
    data_dir = cluster.dir / node_id
    data_dir.mkdir()
    shutil.copy(Path(cluster.nodes[0]["data_dir"]) / "root-credentials.toml",
                data_dir / "root-credentials.toml")
    node = {"id": node_id, "data_dir": str(data_dir),
            "s3": f"127.0.0.1:{free_port()}", "admin": f"127.0.0.1:{free_port()}",
            "rpc": f"127.0.0.1:{free_port()}"}
    replaced = {"--data-dir": node["data_dir"], "--s3-listen": node["s3"],
                "--admin-listen": node["admin"], "--rpc-listen": node["rpc"],
                "--node-id": node_id, "--zone": zone}
    argv = list(template["argv"])
    for position, argument in enumerate(argv[:-1]):
        if argument in replaced:
            argv[position + 1] = replaced[argument]
    assert "--seed" in argv and "--cluster-secret-file" in argv, argv
    node["argv"] = argv
    log = open(cluster.dir / f"{node_id}.log", "ab")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=cluster.env,
                               preexec_fn=_die_with_parent)
    log.close()
    cluster.restarted.append(process)
    node["pid"] = process.pid
    deadline = time.monotonic() + JOIN_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{node_id} exited with {process.returncode}"
        try:
            with urllib.request.urlopen(f"http://{node['admin']}/health", timeout=2):
                return node
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{node_id} not healthy within {JOIN_SECONDS}s")
    raise AssertionError  # unreachable


@pytest.fixture
def cluster(mucura_binary, tmp_path):
    running = Cluster(mucura_binary, tmp_path)
    try:
        running.wait_up("all five nodes Up")
        yield running
    finally:
        running.close()


def layout_version(cluster: Cluster, node: dict) -> int:
    return json.loads(run_cli(cluster, node, "layout", "show"))["version"]


@pytest.mark.timeout(60)
def test_a_sixth_node_takes_its_share_under_traffic(cluster):
    first = cluster.nodes[0]
    cluster.s3(first).create_bucket(Bucket=BUCKET)
    readable = list(cluster.nodes)
    traffic = Traffic(cluster, cluster.nodes[:3], readable)
    try:
        time.sleep(1)
        sixth = start_extra_node(cluster, cluster.nodes[4], "node-6", "zone-6")
        before = layout_version(cluster, first)
        added_at = time.monotonic()
        run_cli(cluster, first, "layout", "add-node", "--id", sixth["id"],
                "--rpc", sixth["rpc"], "--zone", "zone-6")
        written_before_add = len(traffic.acknowledged)
        cluster.nodes.append(sixth)
        cluster.by_id[sixth["id"]] = sixth
        keys = traffic.writes_done()
        print(f"writes: {written_before_add} before add-node, {len(keys) - written_before_add}"
              f" after, the last {time.monotonic() - added_at:.1f}s after it")
        assert not traffic.write_errors, traffic.write_errors[:5]
        assert len(keys) == OBJECTS, len(keys)
        assert len(keys) - written_before_add >= 30, written_before_add
        version = before + 1
        _, statuses = wait_rebalanced(cluster, cluster.nodes, version, "add-node", added_at)
        with traffic.lock:
            readable.append(sixth)  # reads through the new member too, once it has the layout
        time.sleep(1)
    finally:
        traffic.finish()
    assert not traffic.read_errors, (traffic.reads, traffic.read_errors[:5])
    assert traffic.reads >= 50, traffic.reads
    print(f"reads during the move: {traffic.reads}, none failed")

    moved = sum(status["rebalance"]["entries_moved"] for status in statuses.values())
    dropped = sum(status["rebalance"]["dropped"] for status in statuses.values())
    assert moved > 0 and dropped > 0, json.dumps({k: s["rebalance"] for k, s in statuses.items()})

    # A write that reaches an old owner after its first pass listed its data (in flight, or
    # from a coordinator still on the old layout) is moved by the settling passes that follow
    # every completed pass, one per retry pause (10 s): placement is eventually exact.
    owned = eventually(lambda: check_placement(cluster, sixth, keys, cluster.nodes),
                       SETTLE_SECONDS, "placement after the settling passes")
    share = owned[sixth["id"]] / len(keys)
    print(f"node-6 owns the metadata of {owned[sixth['id']]}/{len(keys)} keys "
          f"({share:.2f}, expected about 0.5): {owned}")
    assert owned[sixth["id"]] > 0, owned
    assert 0.2 <= share <= 0.8, owned
    read_all(cluster, keys[:30], [sixth])


@pytest.mark.timeout(60)
def test_a_decommissioned_node_hands_its_data_over(cluster, tmp_path):
    first, leaving = cluster.nodes[0], cluster.nodes[4]
    remaining = cluster.nodes[:4]
    s3 = cluster.s3(first)
    s3.create_bucket(Bucket=BUCKET)
    keys = [f"obj/{index:05d}" for index in range(1, 121)]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body_for(index_of(key)))

    layout = json.loads(run_cli(cluster, first, "layout", "show"))
    layout["nodes"] = [node for node in layout["nodes"] if node["id"] != leaving["id"]]
    layout["version"] += 1
    layout_file = tmp_path / "layout-without-node-5.json"
    layout_file.write_text(json.dumps(layout))
    applied_at = time.monotonic()
    run_cli(cluster, first, "layout", "apply", "--file", str(layout_file))
    # The leaving node still runs and pushes its share: it must report its pass done too.
    _, statuses = wait_rebalanced(cluster, cluster.nodes, layout["version"], "decommission",
                                  applied_at)
    print(f"leaving node: {json.dumps(statuses[leaving['id']]['rebalance'])}")
    assert statuses[leaving["id"]]["rebalance"]["dropped"] > 0, statuses[leaving["id"]]
    left_behind = [path.name for path in (Path(leaving["data_dir"]) / "blocks").glob("*/*")
                   if len(path.name) == 64]
    assert not left_behind, f"block files left on the decommissioned node: {left_behind[:5]}"

    read_all(cluster, keys, remaining)
    owned = check_placement(cluster, first, keys, remaining)
    assert sum(owned.values()) == 3 * len(keys), owned
    assert leaving["id"] not in owned

    cluster.kill(leaving)
    read_all(cluster, keys, remaining)
