"""`mucura local-cluster`: three real node processes started, laid out and stopped by one
command, the DIR/cluster.json contract (restarting a node from its `argv` alone), and the
anti-entropy wiring on the node's RPC port (`POST /v1/cluster/anti-entropy`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mucura_server import _die_with_parent
from s3_helpers import make_s3_client

STARTUP_SECONDS = 30.0
CONVERGE_SECONDS = 15.0
STOP_SECONDS = 15.0


class LocalCluster:
    """One `mucura local-cluster --nodes 3` process and what its cluster.json says."""

    def __init__(self, binary: Path, work: Path, stale: dict | None = None):
        self.binary = binary
        self.dir = work / "cluster"
        self.log_path = work / "local-cluster.log"
        self.log = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items()
               if k not in ("MUCURA_ROOT_ACCESS_KEY", "MUCURA_ROOT_SECRET_KEY",
                            "MUCURA_CLUSTER_SECRET")}
        self.env = env
        self.process = subprocess.Popen(
            [str(binary), "local-cluster", "--nodes", "3", "--dir", str(self.dir)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            preexec_fn=_die_with_parent,
        )
        self.info = self._wait_for_cluster_file(stale)
        self.extra: list[subprocess.Popen] = []

    def _wait_for_cluster_file(self, stale: dict | None) -> dict:
        """The cluster.json this run writes (`stale`: the previous run's, to wait past)."""
        path = self.dir / "cluster.json"
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"local-cluster exited with {self.process.returncode}\n{self.tail()}")
            if path.exists():
                info = json.loads(path.read_text())
                if info != stale:
                    return info
            time.sleep(0.2)
        pytest.fail(f"no cluster.json after {STARTUP_SECONDS}s\n{self.tail()}")
        raise AssertionError  # unreachable

    def tail(self) -> str:
        text = self.log_path.read_text(errors="replace")
        logs = "".join(
            f"\n--- {log.name} ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            for log in sorted(self.dir.glob("*.log"))
        )
        return text[-3000:] + logs

    @property
    def nodes(self) -> list[dict]:
        return self.info["nodes"]

    def token(self, node: dict) -> str:
        text = (Path(node["data_dir"]) / "root-credentials.toml").read_text()
        return tomllib.loads(text)["admin_token"]

    def admin(self, node: dict, path: str, method: str = "GET") -> tuple[int, dict]:
        request = urllib.request.Request(
            f"http://{node['admin']}{path}", method=method,
            data=b"" if method == "POST" else None,
            headers={"Authorization": f"Bearer {self.token(node)}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def view(self, node: dict) -> tuple[int, dict[str, str]]:
        """(layout version, {id: liveness}) as `node` sees the cluster; (-1, {}) if down."""
        try:
            code, body = self.admin(node, "/v1/cluster/status")
        except OSError:
            return -1, {}
        if code != 200:
            return -1, {}
        return body["layout_version"], {n["id"]: n["status"] for n in body["nodes"]}

    def wait_all_up(self, what: str):
        everyone = {node["id"]: "Up" for node in self.nodes}
        deadline = time.monotonic() + CONVERGE_SECONDS
        while time.monotonic() < deadline:
            if all(self.view(node) == (1, everyone) for node in self.nodes):
                return
            time.sleep(0.25)
        views = {node["id"]: self.view(node) for node in self.nodes}
        pytest.fail(f"not within {CONVERGE_SECONDS}s: {what}; views {views}\n{self.tail()}")

    def close(self):
        if not self.log.closed:
            self.log.close()
        for process in self.extra:
            if process.poll() is None:
                process.kill()
                process.wait()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for node in self.nodes:
            if alive(node["pid"]):
                os.kill(node["pid"], signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.fixture(scope="module")
def cluster(mucura_binary, tmp_path_factory):
    started = time.monotonic()
    running = LocalCluster(mucura_binary, tmp_path_factory.mktemp("local-cluster"))
    print(f"cluster.json written {time.monotonic() - started:.1f}s after start")
    yield running
    running.close()


@pytest.mark.timeout(60)
def test_cluster_json_describes_three_up_nodes_sharing_keys(cluster):
    info = cluster.info
    assert len(cluster.nodes) == 3
    assert info["access_key"] and info["secret_key"]
    for node in cluster.nodes:
        assert set(node) == {"id", "pid", "s3", "admin", "rpc", "data_dir", "argv"}
        assert alive(node["pid"])
        for key in ("s3", "admin", "rpc"):
            assert node[key].startswith("127.0.0.1:")
        assert node["argv"][1] == "serve"
        stored = tomllib.loads((Path(node["data_dir"]) / "root-credentials.toml").read_text())
        assert (stored["access_key"], stored["secret_key"]) == (
            info["access_key"], info["secret_key"])
    # The secret file is private.
    assert (cluster.dir / "cluster-secret").stat().st_mode & 0o777 == 0o600
    cluster.wait_all_up("layout v1 with all three Up on every node")
    # Any node's S3 endpoint accepts the shared keys.
    for node in cluster.nodes:
        s3 = make_s3_client(f"http://{node['s3']}", info["access_key"], info["secret_key"])
        assert "Buckets" in s3.list_buckets()


@pytest.mark.timeout(60)
def test_anti_entropy_runs_on_demand_over_the_rpc_port(cluster):
    code, report = cluster.admin(cluster.nodes[0], "/v1/cluster/anti-entropy", method="POST")
    assert code == 200, report
    assert report["groups_compared"] > 0, report
    assert report["errors"] == 0, report
    assert report["groups_unsynced"] == 0, report

    second = cluster.nodes[1]
    cli = subprocess.run(
        [str(cluster.binary), "admin", "--admin-url", f"http://{second['admin']}",
         "--token", cluster.token(second), "cluster", "anti-entropy"],
        capture_output=True, text=True, timeout=30,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["groups_compared"] > 0

    code, status = cluster.admin(second, "/v1/cluster/status")
    assert code == 200, status
    assert status["anti_entropy"]["rounds"] >= 1
    assert status["anti_entropy"]["last_round"]["errors"] == 0
    assert status["pending_block_handoffs"] == 0 and status["pending_hints"] == 0
    assert status["last_scrub"] is None  # the first scrub runs a day after start


def test_admin_status_shows_the_node_and_the_cluster(cluster):
    cluster.wait_all_up("all three Up before asking")
    first = cluster.nodes[0]
    cli = subprocess.run(
        [str(cluster.binary), "admin", "--admin-url", f"http://{first['admin']}",
         "--token", cluster.token(first), "status"],
        capture_output=True, text=True, timeout=30,
    )
    assert cli.returncode == 0, cli.stderr
    answer = json.loads(cli.stdout)
    assert answer["node"]["s3_listen"] == first["s3"], answer["node"]
    assert answer["cluster"]["layout_version"] == 1, answer["cluster"]
    assert sorted(n["id"] for n in answer["cluster"]["nodes"]) == sorted(
        n["id"] for n in cluster.nodes
    )
    assert {n["status"] for n in answer["cluster"]["nodes"]} == {"Up"}


@pytest.mark.timeout(60)
def test_metrics_show_every_node_up_and_the_cluster_figures(cluster):
    cluster.wait_all_up("all three Up before scraping")
    ids = {node["id"] for node in cluster.nodes}
    for node in cluster.nodes:
        # /metrics needs no token (Prometheus scrapes it).
        with urllib.request.urlopen(f"http://{node['admin']}/metrics", timeout=10) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                samples[series] = float(value)
        up = {f'mucura_cluster_node_up{{node="{node_id}"}}' for node_id in ids}
        assert {series: samples.get(series) for series in up} == dict.fromkeys(up, 1.0), text
        assert samples["mucura_cluster_layout_version"] == 1.0
        assert samples["mucura_cluster_hints_pending"] == 0.0
        assert samples["mucura_cluster_block_handoffs_pending"] == 0.0
        assert "mucura_cluster_anti_entropy_rounds_total" in samples
        assert 'mucura_cluster_rebalance_ranges{state="total"}' in samples
        assert 'mucura_cluster_rebalance_moved_total{kind="blocks"}' in samples
        # Peers heartbeat each other, so every RPC server has answered gossip.
        assert samples.get('mucura_rpc_requests_total{outcome="ok",protocol="gossip"}', 0) > 0


@pytest.mark.timeout(60)
def test_a_node_restarts_from_its_argv_and_local_cluster_stops_everything(cluster):
    victim = cluster.nodes[2]
    os.kill(victim["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(victim["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(victim["pid"])

    # As-is: no credentials or secret in the environment.
    log = open(cluster.dir / "restarted.log", "ab")
    restarted = subprocess.Popen(
        victim["argv"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=cluster.env, preexec_fn=_die_with_parent,
    )
    cluster.extra.append(restarted)
    cluster.wait_all_up("the restarted node Up again everywhere")
    code, status = cluster.admin(victim, "/v1/cluster/status")
    assert code == 200 and status["node_id"] == victim["id"], status
    s3 = make_s3_client(f"http://{victim['s3']}", cluster.info["access_key"],
                        cluster.info["secret_key"])
    assert "Buckets" in s3.list_buckets()

    restarted.send_signal(signal.SIGTERM)
    assert restarted.wait(timeout=STOP_SECONDS) == 0
    log.close()

    cluster.process.send_signal(signal.SIGTERM)
    assert cluster.process.wait(timeout=STOP_SECONDS) == 0, cluster.tail()
    for node in cluster.nodes[:2]:
        assert not alive(node["pid"]), node
    assert "stopping 3 nodes" in cluster.log_path.read_text()

    # Running it again on the same DIR restarts the same nodes, which find their layout.
    before = cluster.info
    cluster.log.close()
    again = LocalCluster(cluster.binary, cluster.dir.parent, stale=before)
    cluster.extra.append(again.process)
    try:
        assert [(n["id"], n["rpc"], n["data_dir"]) for n in again.nodes] == [
            (n["id"], n["rpc"], n["data_dir"]) for n in before["nodes"]]
        assert (again.info["access_key"], again.info["secret_key"]) == (
            before["access_key"], before["secret_key"])
        again.wait_all_up("the re-run cluster Up with layout v1")
        again.process.send_signal(signal.SIGTERM)
        assert again.process.wait(timeout=STOP_SECONDS) == 0, again.tail()
        for node in again.nodes:
            assert not alive(node["pid"]), node
    finally:
        again.close()
