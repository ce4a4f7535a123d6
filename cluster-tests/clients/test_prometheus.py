"""Mucura's metrics as a real Prometheus server sees them: Debian's `prometheus` scrapes every
node of a three-node `mucura local-cluster` once a second, and the test reads the series back
through Prometheus' HTTP API while an S3 workload runs, so names, labels and the text format are
checked by the consumer they are for, not by a parser of our own.

The replication counters are then driven by real failures in the same kind of cluster, read
straight from each node's `/metrics`: a stopped node's hints delivered once it is back
(`mucura_cluster_hints_delivered_total`), and a write refused with 503 when two of three nodes
are down (`mucura_cluster_quorum_failures_total`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from local_cluster import LocalClusterProcess
from mucura_server import _die_with_parent, free_port
from s3_helpers import make_s3_client, require_tool

SCRAPE_INTERVAL = "1s"
# Prometheus needs a few scrapes (and its query lookback) before a series shows.
SERIES_TIMEOUT_SECONDS = 30.0


class Prometheus:
    """One Prometheus server on loopback scraping the given admin endpoints."""

    def __init__(self, binary: str, work: Path, targets: list[str]):
        self.port = free_port()
        config = work / "prometheus.yml"
        config.write_text(json.dumps({  # YAML is a superset of JSON
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "scrape_configs": [{"job_name": "mucura", "static_configs": [{"targets": targets}]}],
        }))
        self.log_path = work / "prometheus.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )

    def api(self, path: str, **params: str) -> dict:
        """GETs `/api/v1/<path>` and returns its `data`; fails on an API error."""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.loads(response.read())
        assert answer["status"] == "success", answer
        return answer["data"]

    def value(self, query: str) -> float | None:
        """The single value of an instant query, or None while it has no result."""
        try:
            result = self.api("query", query=query)["result"]
        except OSError:
            return None  # not listening yet
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    def wait_for(self, query: str, predicate, what: str) -> float:
        """Polls `query` until `predicate(value)` holds; returns the value."""
        deadline = time.monotonic() + SERIES_TIMEOUT_SECONDS
        value = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            value = self.value(query)
            if value is not None and predicate(value):
                return value
            time.sleep(0.5)
        pytest.fail(f"{what}: `{query}` is {value} after {SERIES_TIMEOUT_SECONDS}s\n"
                    + self.log_path.read_text()[-2000:])
        raise AssertionError  # unreachable

    def stop(self) -> None:
        """Stops the server."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def cluster(mucura_binary, tmp_path):
    running = LocalClusterProcess(mucura_binary, tmp_path, nodes=3)
    running.start()
    yield running
    assert running.stop() == 0, running.log_tail()


@pytest.mark.timeout(120)
def test_prometheus_scrapes_every_node_and_sees_the_series_move(cluster, tmp_path):
    binary = require_tool("prometheus")
    targets = [node["admin"] for node in cluster.nodes]
    prometheus = Prometheus(binary, tmp_path, targets)
    try:
        prometheus.wait_for('count(up{job="mucura"} == 1)', lambda up: up == len(targets),
                            "every node scraped")
        # Liveness as each node sees the others: 3 nodes x 3 views, all Up.
        prometheus.wait_for("sum(mucura_cluster_node_up)", lambda up: up == 9,
                            "every node sees every node up")
        assert prometheus.value("count(mucura_disk_free_bytes)") >= 3

        node = cluster.nodes[1]
        s3 = make_s3_client(f"http://{node['s3']}", cluster.info["access_key"],
                            cluster.info["secret_key"])
        s3.create_bucket(Bucket="scraped")
        for index in range(20):
            # Distinct bodies: blocks are content-addressed, equal ones would be stored once.
            body = f"{index:08d}".encode() * (8 * 1024)
            s3.put_object(Bucket="scraped", Key=f"k{index}", Body=body)
            assert s3.get_object(Bucket="scraped", Key=f"k{index}")["Body"].read() == body

        instance = node["admin"]
        puts = prometheus.wait_for(
            f'sum(mucura_s3_requests_total{{instance="{instance}",operation="PutObject",'
            f'status="200"}})', lambda count: count >= 20, "PutObject requests counted")
        assert puts == 20
        prometheus.wait_for(
            f'sum(mucura_s3_received_bytes_total{{instance="{instance}"}})',
            lambda received: received >= 20 * len(body), "received bytes counted")
        prometheus.wait_for(
            f'sum(mucura_s3_sent_bytes_total{{instance="{instance}"}})',
            lambda sent: sent >= 20 * len(body), "sent bytes counted")
        # Latency histograms are usable as histograms.
        prometheus.wait_for(
            f'histogram_quantile(0.5, sum by (le) (mucura_s3_request_duration_seconds_bucket'
            f'{{instance="{instance}",operation="GetObject"}}))',
            lambda seconds: 0 < seconds < 5, "GetObject median latency")
        # The replication the workload caused shows as inter-node RPC on the other nodes.
        prometheus.wait_for("sum(mucura_rpc_requests_total)", lambda calls: calls > 0,
                            "inter-node RPC counted")
        # Each 64 KiB body is one block file, stored on all three nodes.
        prometheus.wait_for('sum(mucura_blocks{job="mucura"})', lambda blocks: blocks >= 60,
                            "block files counted")
        # Replication failure counters exist on every node before any failure (4 op x kind
        # series each), at zero in a healthy cluster.
        prometheus.wait_for("count(mucura_cluster_quorum_failures_total)",
                            lambda series: series == 4 * len(targets), "quorum failure series")
        assert prometheus.value("sum(mucura_cluster_quorum_failures_total)") == 0
        assert prometheus.value("count(mucura_cluster_hints_delivered_total)") == len(targets)
    finally:
        prometheus.stop()


# A node's hint-replay worker runs every 10 s, and its peers must first see the returning node
# up again (a few gossip rounds).
DELIVERY_TIMEOUT_SECONDS = 30.0
# A node stopped with SIGTERM finishes its in-flight work, then exits.
NODE_STOP_SECONDS = 15.0


def alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def node_metrics(node: dict) -> dict[str, float]:
    """One node's /metrics as {series as rendered: value}."""
    with urllib.request.urlopen(f"http://{node['admin']}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            samples[series] = float(value)
    return samples


def write_quorum_failures(samples: dict[str, float]) -> float:
    """Coordinated writes (metadata and blocks) that missed their quorum."""
    return sum(samples.get(f'mucura_cluster_quorum_failures_total{{kind="{kind}",op="write"}}', 0)
               for kind in ("table", "block"))


class NodeControl:
    """Stops nodes of a `LocalClusterProcess` and restarts them from their `argv`; stops every
    restarted process on `close` (local-cluster only stops the processes it started)."""

    def __init__(self, cluster: LocalClusterProcess):
        self.cluster = cluster
        self.restarted: list[subprocess.Popen] = []

    def stop(self, node: dict) -> None:
        os.kill(node["pid"], signal.SIGTERM)
        deadline = time.monotonic() + NODE_STOP_SECONDS
        while alive(node["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(node["pid"]), f"{node['id']} ignored SIGTERM"

    def restart(self, node: dict) -> None:
        with open(self.cluster.dir / f"{node['id']}-restarted.log", "ab") as log:
            process = subprocess.Popen(
                node["argv"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.cluster.env, preexec_fn=_die_with_parent,
            )
        self.restarted.append(process)
        node["pid"] = process.pid

    def close(self) -> None:
        for process in self.restarted:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=NODE_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_for_metric(node: dict, what: str, predicate, timeout: float) -> dict[str, float]:
    """Scrapes `node` until `predicate(samples)` holds; returns those samples."""
    deadline = time.monotonic() + timeout
    samples = node_metrics(node)
    while not predicate(samples):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}; metrics: "
                        + json.dumps({k: v for k, v in samples.items() if "cluster" in k}))
        time.sleep(0.25)
        samples = node_metrics(node)
    return samples


@pytest.mark.timeout(90)
def test_hint_deliveries_and_quorum_failures_are_counted(cluster):
    control = NodeControl(cluster)
    coordinator, first_victim, second_victim = cluster.nodes
    s3 = make_s3_client(f"http://{coordinator['s3']}", cluster.info["access_key"],
                        cluster.info["secret_key"])
    try:
        before = node_metrics(coordinator)
        assert before["mucura_cluster_hints_delivered_total"] == 0.0
        assert write_quorum_failures(before) == 0.0, before
        # Every failure series exists before the first failure, so alerts see it move.
        assert 'mucura_cluster_quorum_failures_total{kind="block",op="read"}' in before

        # One node down: writes succeed (W=2 of 3); the bucket table is a full copy on
        # every node, so the coordinator keeps a hint of the new bucket for the stopped one.
        control.stop(first_victim)
        s3.create_bucket(Bucket="hinted")
        for index in range(3):
            s3.put_object(Bucket="hinted", Key=f"k{index}", Body=f"{index:08d}".encode() * 8192)
        held = wait_for_metric(coordinator, "hints held for the stopped node",
                               lambda m: m["mucura_cluster_hints_pending"] > 0, 10.0)
        pending = held["mucura_cluster_hints_pending"]

        control.restart(first_victim)
        delivered = wait_for_metric(
            coordinator, "the hints delivered to the restarted node",
            lambda m: m["mucura_cluster_hints_pending"] == 0
            and m["mucura_cluster_hints_delivered_total"] >= pending,
            DELIVERY_TIMEOUT_SECONDS)
        print(f"DELIVERED {delivered['mucura_cluster_hints_delivered_total']:.0f} hints")

        # Two nodes down: a write cannot reach W=2 replicas and is refused with 503.
        control.stop(first_victim)
        control.stop(second_victim)
        with pytest.raises(ClientError) as refused:
            s3.put_object(Bucket="hinted", Key="refused", Body=b"q" * 65536)
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503, \
            refused.value.response
        after = node_metrics(coordinator)
        assert write_quorum_failures(after) >= 1, after

        # The admin CLI shows the same running totals.
        cli = subprocess.run(
            [str(cluster.binary), "admin", "--admin-url", f"http://{coordinator['admin']}",
             "--token", cluster.admin_token(coordinator), "cluster", "status"],
            capture_output=True, text=True, timeout=30,
        )
        assert cli.returncode == 0, cli.stderr
        status = json.loads(cli.stdout)
        assert status["hints_delivered_total"] >= pending, status
        failures = status["quorum_failures"]
        assert failures["table_writes"] + failures["block_writes"] >= 1, status
    finally:
        control.close()
