"""Recovery of a five-node loopback cluster (`mucura local-cluster --nodes 5`, N=3 W=2 R=2)
from crashes, lost hints and rotten block files, checked replica by replica through the debug
view (`GET /v1/cluster/locate`, `mucura admin cluster locate`), which asks every owner of an
object's metadata and blocks directly instead of through a quorum.

Scenarios (each under 60 s, a fresh cluster each):

- crash: kill -9 one node under a write load through the others; every acknowledged object
  reads back from every survivor; the node restarts from its `argv`; hinted handoff (metadata)
  and block handoff (blocks) bring every object back to three copies and drain.
- two crashes: writes still succeed through the three survivors (sloppy quorum); after both
  restart everything converges as above.
- lost hints: node X stops, objects are written, then the nodes holding X's hints (the two
  non-owners of a group of keys) are killed before X returns, so hint replay cannot reach
  X; only anti-entropy (`mucura admin cluster anti-entropy`) can restore X's metadata, which
  the test checks before restarting the hint holders. X's missing *blocks* with another owner
  up are then restored by the block resync queue (`mucura admin cluster resync`: anti-entropy
  gave X the block references, resync fetches the blocks they name), still before the hint
  holders return; the rest come back once they do, which the final full-replication check
  covers.
- rotten block: a block file overwritten on one owner; GET through another node returns the
  right bytes, and `mucura admin cluster scrub` on the owner repairs the file.

Each scenario prints its convergence time (`CONVERGED <scenario> <seconds>`); the figures
are recorded in docs/BENCHMARKS.md, "Cluster recovery (loopback)".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from mucura_server import _die_with_parent
from s3_helpers import make_s3_client

NODES = 5
STARTUP_SECONDS = 30.0
UP_SECONDS = 20.0
CONVERGE_SECONDS = 35.0
BLOCK_SIZE = 1024 * 1024


def alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


class Cluster:
    """A `mucura local-cluster --nodes 5` run, its nodes, and restarts from their argv."""

    def __init__(self, binary: Path, work: Path):
        self.binary = binary
        self.dir = work / "cluster"
        self.log_path = work / "local-cluster.log"
        self.log = open(self.log_path, "ab")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("MUCURA_ROOT_ACCESS_KEY", "MUCURA_ROOT_SECRET_KEY",
                                 "MUCURA_CLUSTER_SECRET")}
        self.process = subprocess.Popen(
            [str(binary), "local-cluster", "--nodes", str(NODES), "--dir", str(self.dir)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env, preexec_fn=_die_with_parent,
        )
        self.restarted: list[subprocess.Popen] = []
        self.info = self._wait_for_cluster_file()
        self.nodes: list[dict] = self.info["nodes"]
        self.by_id = {node["id"]: node for node in self.nodes}
        self.down: set[str] = set()

    def _wait_for_cluster_file(self) -> dict:
        path = self.dir / "cluster.json"
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"local-cluster exited with {self.process.returncode}")
            if path.exists():
                return json.loads(path.read_text())
            time.sleep(0.2)
        pytest.fail(f"no cluster.json after {STARTUP_SECONDS}s")
        raise AssertionError  # unreachable

    def token(self, node: dict) -> str:
        text = (Path(node["data_dir"]) / "root-credentials.toml").read_text()
        return tomllib.loads(text)["admin_token"]

    def admin(self, node: dict, path: str, method: str = "GET") -> dict:
        request = urllib.request.Request(
            f"http://{node['admin']}{path}", method=method,
            data=b"" if method == "POST" else None,
            headers={"Authorization": f"Bearer {self.token(node)}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            pytest.fail(f"{path} on {node['id']}: {error.code} {error.read()!r}")
            raise

    def cli(self, node: dict, *args: str) -> dict:
        """Runs `mucura admin --admin-url … <args>` and returns its JSON output."""
        done = subprocess.run(
            [str(self.binary), "admin", "--admin-url", f"http://{node['admin']}",
             "--token", self.token(node), *args],
            capture_output=True, text=True, timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def locate(self, node: dict, bucket: str, key: str) -> dict:
        query = urllib.parse.urlencode({"bucket": bucket, "key": key})
        return self.admin(node, f"/v1/cluster/locate?{query}")

    def s3(self, node: dict):
        return make_s3_client(f"http://{node['s3']}", self.info["access_key"],
                              self.info["secret_key"])

    def up_nodes(self) -> list[dict]:
        return [node for node in self.nodes if node["id"] not in self.down]

    def kill(self, node: dict, sig: int = signal.SIGKILL):
        os.kill(node["pid"], sig)
        deadline = time.monotonic() + 10
        while alive(node["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(node["pid"]), node
        self.down.add(node["id"])

    def restart(self, node: dict):
        """Restarts `node` from its argv alone (no credentials in the environment)."""
        log = open(self.dir / f"{node['id']}-restarted.log", "ab")
        process = subprocess.Popen(
            node["argv"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env, preexec_fn=_die_with_parent,
        )
        log.close()
        self.restarted.append(process)
        node["pid"] = process.pid
        self.down.discard(node["id"])

    def liveness(self, node: dict) -> dict[str, str]:
        try:
            status = self.admin(node, "/v1/cluster/status")
        except (OSError, pytest.fail.Exception):
            return {}
        return {peer["id"]: peer["status"] for peer in status["nodes"]}

    def wait_up(self, what: str):
        """Until every running node sees exactly the running nodes as Up."""
        expected = {node["id"] for node in self.up_nodes()}
        deadline = time.monotonic() + UP_SECONDS
        while time.monotonic() < deadline:
            views = [self.liveness(node) for node in self.up_nodes()]
            if all({i for i, s in view.items() if s == "Up"} >= expected for view in views):
                return
            time.sleep(0.25)
        pytest.fail(f"not within {UP_SECONDS}s: {what}")

    def pending(self) -> int:
        """Hints plus block handoffs held by the running nodes."""
        total = 0
        for node in self.up_nodes():
            status = self.admin(node, "/v1/cluster/status")
            total += status["pending_hints"] + status["pending_block_handoffs"]
        return total

    def close(self):
        for process in self.restarted:
            if process.poll() is None:
                process.kill()
                process.wait()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for node in self.nodes:
            if alive(node["pid"]):
                os.kill(node["pid"], signal.SIGKILL)
        self.log.close()


@pytest.fixture
def cluster(mucura_binary, tmp_path):
    running = Cluster(mucura_binary, tmp_path)
    try:
        running.wait_up("all five nodes Up")
        yield running
    finally:
        running.close()


def body_for(index: int) -> bytes:
    """16 KiB (one block) for most objects, 1.5 MiB (two blocks) for every fifth."""
    size = 1536 * 1024 if index % 5 == 0 else 16 * 1024
    seed = f"object-{index}-".encode()
    return (seed * (size // len(seed) + 1))[:size]


def fully_replicated(report: dict) -> bool:
    """Three owners hold the same metadata version and every block is on its three owners."""
    metadata = report["metadata"]
    stamps = {copy["stamp"] for copy in metadata}
    return (len(metadata) == 3 and all(copy["holds"] for copy in metadata)
            and len(stamps) == 1 and len(report["blocks"]) > 0
            and all(len(block["owners"]) == 3 and all(o["holds"] for o in block["owners"])
                    for block in report["blocks"]))


def wait_converged(cluster: Cluster, bucket: str, keys: list[str], scenario: str,
                   since: float, deadline_seconds: float = CONVERGE_SECONDS) -> float:
    """Waits until every key is fully replicated and no hint or handoff is pending; prints
    and returns the seconds elapsed since `since`."""
    deadline = time.monotonic() + deadline_seconds
    remaining = list(keys)
    pending = -1
    while time.monotonic() < deadline:
        asker = cluster.up_nodes()[0]
        remaining = [key for key in remaining
                     if not fully_replicated(cluster.locate(asker, bucket, key))]
        if not remaining:
            pending = cluster.pending()
            if pending == 0:
                elapsed = time.monotonic() - since
                print(f"CONVERGED {scenario} {elapsed:.1f}s ({len(keys)} objects)")
                return elapsed
        time.sleep(0.5)
    example = (cluster.locate(cluster.up_nodes()[0], bucket, remaining[0])
               if remaining else None)
    pytest.fail(f"{scenario}: not converged within {deadline_seconds}s: {len(remaining)} "
                f"objects short, {pending} pending; e.g. {json.dumps(example)}")
    raise AssertionError  # unreachable


MAX_LOAD_OBJECTS = 1000


class WriteLoad:
    """Writers putting numbered objects through the given nodes until stopped (at most
    `MAX_LOAD_OBJECTS`, so reading them all back stays quick on a fast machine)."""

    def __init__(self, cluster: Cluster, bucket: str, through: list[dict], writers: int = 2):
        self.bucket = bucket
        self.acknowledged: list[str] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.counter = iter(range(10**9))
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(cluster.s3(through[i % len(through)]),))
            for i in range(writers)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, s3):
        while not self.stop.is_set():
            with self.lock:
                index = next(self.counter)
            if index >= MAX_LOAD_OBJECTS:
                return
            key = f"load/{index:05d}"
            try:
                s3.put_object(Bucket=self.bucket, Key=key, Body=body_for(index))
            except Exception as error:  # noqa: BLE001 - every failure is a finding
                self.errors.append(f"{key}: {error}")
                continue
            with self.lock:
                self.acknowledged.append(key)

    def finish(self) -> list[str]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        return sorted(self.acknowledged)


def read_back(cluster: Cluster, bucket: str, keys: list[str], nodes: list[dict]):
    for node in nodes:
        s3 = cluster.s3(node)
        for key in keys:
            index = int(key.rsplit("/", 1)[1])
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert body == body_for(index), f"{key} through {node['id']}"


@pytest.mark.timeout(60)
def test_a_crashed_node_catches_up_after_restart(cluster):
    victim = cluster.nodes[4]
    others = cluster.nodes[:4]
    cluster.s3(others[0]).create_bucket(Bucket="crash")
    load = WriteLoad(cluster, "crash", others)
    time.sleep(1)
    cluster.kill(victim)
    written_before_kill = len(load.acknowledged)
    time.sleep(3)
    keys = load.finish()
    assert not load.errors, load.errors[:5]
    assert len(keys) - written_before_kill >= 20, (written_before_kill, len(keys))
    read_back(cluster, "crash", keys, others)

    restarted_at = time.monotonic()
    cluster.restart(victim)
    cluster.wait_up("the crashed node Up again")
    wait_converged(cluster, "crash", keys, "one-node-crash", restarted_at)
    read_back(cluster, "crash", keys[:5], [victim])


@pytest.mark.timeout(60)
def test_writes_go_on_with_two_nodes_down_and_converge_after(cluster):
    victims = cluster.nodes[3:]
    survivors = cluster.nodes[:3]
    cluster.s3(survivors[0]).create_bucket(Bucket="double")
    for victim in victims:
        cluster.kill(victim)
    load = WriteLoad(cluster, "double", survivors)
    time.sleep(4)
    keys = load.finish()
    assert not load.errors, load.errors[:5]
    assert len(keys) >= 10, keys

    restarted_at = time.monotonic()
    for victim in victims:
        cluster.restart(victim)
    cluster.wait_up("both crashed nodes Up again")
    wait_converged(cluster, "double", keys, "two-node-crash", restarted_at)
    read_back(cluster, "double", keys, cluster.nodes)


@pytest.mark.timeout(60)
def test_anti_entropy_restores_metadata_whose_hints_are_lost(cluster):
    first, absent = cluster.nodes[0], cluster.nodes[4]
    s3 = cluster.s3(first)
    s3.create_bucket(Bucket="lost-hints")
    cluster.kill(absent, signal.SIGTERM)
    keys = [f"load/{index:05d}" for index in range(1, 61)]
    for index, key in enumerate(keys, start=1):
        s3.put_object(Bucket="lost-hints", Key=key, Body=body_for(index))

    # The keys owned by one set S of three nodes holding both `first` and `absent`: their
    # hints for `absent` sit on the two nodes outside S, which are killed before it returns.
    owners_of = {key: frozenset(copy["node"] for copy in
                                cluster.locate(first, "lost-hints", key)["metadata"])
                 for key in keys}
    groups = Counter(owners for owners in owners_of.values()
                     if {first["id"], absent["id"]} <= owners)
    assert groups, owners_of
    owner_set, _ = groups.most_common(1)[0]
    group = [key for key, owners in owners_of.items() if owners == owner_set]
    holders = [node for node in cluster.nodes if node["id"] not in owner_set]
    for holder in holders:
        cluster.kill(holder)

    restarted_at = time.monotonic()
    cluster.restart(absent)
    cluster.wait_up("the absent node Up with the hint holders down")
    # Nobody can replay the hints: the absent node has none of the group yet.
    time.sleep(1)
    missing = [key for key in group if not next(
        copy["holds"] for copy in cluster.locate(first, "lost-hints", key)["metadata"]
        if copy["node"] == absent["id"])]
    assert missing == group, "something other than anti-entropy delivered the metadata"

    # Rounds report errors for the groups shared with the two killed holders; what matters
    # is what they repaired.
    repaired = sum(cluster.cli(node, "cluster", "anti-entropy")["entries_repaired"]
                   for node in cluster.up_nodes())
    assert repaired >= len(group), repaired
    for key in group:
        metadata = cluster.locate(first, "lost-hints", key)["metadata"]
        assert all(copy["holds"] for copy in metadata), (key, metadata)
        assert len({copy["stamp"] for copy in metadata}) == 1, (key, metadata)
    print(f"CONVERGED lost-hints-metadata {time.monotonic() - restarted_at:.1f}s "
          f"({len(group)} objects, anti-entropy only)")

    # Its missing blocks whose other owners are up come back through the resync queue:
    # anti-entropy gave it their references, resync fetches what they name.
    down = {holder["id"] for holder in holders}
    resync = cluster.cli(absent, "cluster", "resync")
    lacking = []
    for key in keys:
        for block in cluster.locate(first, "lost-hints", key)["blocks"]:
            owners = {owner["node"]: owner["holds"] for owner in block["owners"]}
            if absent["id"] in owners and set(owners) - down - {absent["id"]}:
                if not owners[absent["id"]]:
                    lacking.append((key, block))
    assert not lacking, lacking[:3]
    print(f"CONVERGED lost-hints-resync {time.monotonic() - restarted_at:.1f}s "
          f"(fetched {resync['fetched']} blocks, hint holders still down)")

    # The rest (blocks whose other owners are the killed holders) come back with them.
    holders_back = time.monotonic()
    for holder in holders:
        cluster.restart(holder)
    cluster.wait_up("the hint holders Up again")
    wait_converged(cluster, "lost-hints", keys, "lost-hints-blocks", holders_back)


def block_file(node: dict, hash_hex: str) -> Path:
    return Path(node["data_dir"]) / "blocks" / hash_hex[:2] / hash_hex


@pytest.mark.timeout(60)
def test_a_rotten_block_is_read_around_and_scrubbed(cluster):
    s3 = cluster.s3(cluster.nodes[0])
    s3.create_bucket(Bucket="rot")
    body = body_for(0)  # two blocks
    s3.put_object(Bucket="rot", Key="read-around", Body=body)
    s3.put_object(Bucket="rot", Key="scrubbed", Body=body_for(5)[::-1])

    # A rotten copy of the first block of `read-around` on its primary owner.
    report = cluster.locate(cluster.nodes[0], "rot", "read-around")
    first_block = report["blocks"][0]
    owner = cluster.by_id[first_block["owners"][0]["node"]]
    path = block_file(owner, first_block["hash"])
    assert path.read_bytes() == body[:BLOCK_SIZE]
    path.write_bytes(b"\0" * BLOCK_SIZE)
    reader = next(node for node in cluster.nodes if node["id"] != owner["id"])
    assert cluster.s3(reader).get_object(Bucket="rot", Key="read-around")["Body"].read() == body

    # A rotten copy nobody reads: only the scrub can find it.
    other = cluster.locate(cluster.nodes[0], "rot", "scrubbed")["blocks"][0]
    other_owner = cluster.by_id[other["owners"][1]["node"]]
    other_path = block_file(other_owner, other["hash"])
    original = other_path.read_bytes()
    other_path.write_bytes(bytes(len(original)))
    before = cluster.locate(cluster.nodes[0], "rot", "scrubbed")["blocks"][0]
    assert not next(o["holds"] for o in before["owners"] if o["node"] == other_owner["id"])

    corrupted_at = time.monotonic()
    scrub = cluster.cli(other_owner, "cluster", "scrub")
    assert scrub["corrupt"] >= 1 and scrub["repaired"] >= 1, scrub
    assert scrub["unrepaired"] == 0 and scrub["errors"] == 0, scrub
    assert other_path.read_bytes() == original
    status = cluster.admin(other_owner, "/v1/cluster/status")
    assert status["last_scrub"]["repaired"] == scrub["repaired"], status
    # The read-around block is whole again too (read repair or the owner's own scrub).
    cluster.cli(owner, "cluster", "scrub")
    assert path.read_bytes() == body[:BLOCK_SIZE]
    wait_converged(cluster, "rot", ["read-around", "scrubbed"], "rotten-block", corrupted_at)

    located = cluster.cli(cluster.nodes[2], "cluster", "locate", "--bucket", "rot",
                          "--key", "scrubbed")
    assert located["bucket"] == "rot" and located["key"] == "scrubbed"
    assert fully_replicated(located), located
