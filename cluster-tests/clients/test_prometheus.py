"""Mucura's metrics as a real Prometheus server sees them: Debian's `prometheus` scrapes every
node of a three-node `mucura local-cluster` once a second, and the test reads the series back
through Prometheus' HTTP API while an S3 workload runs, so names, labels and the text format are
checked by the consumer they are for, not by a parser of our own.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

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
    finally:
        prometheus.stop()
