"""Cluster control plane on loopback: flags, layout apply and gossip, failure detection,
persisted layouts across restarts, and refusal of a node with the wrong cluster secret.

Three real `mucura serve` processes in cluster mode (node 2 and 3 seeded with node 1). S3
data is not replicated yet in this build; only membership and the layout are checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mucura_server import MucuraServer, free_port

# Generous bounds over the node's own timings: 1 s heartbeats, Down after 8 s of silence.
CONVERGE_SECONDS = 15.0
DOWN_WITHIN_SECONDS = 14.0
SECRET = "correct-horse-battery-staple-0123"


def admin_token(server: MucuraServer) -> str:
    """The bearer token the node stored in its data dir."""
    text = (server.data_dir / "root-credentials.toml").read_text()
    return tomllib.loads(text)["admin_token"]


def admin_get(server: MucuraServer, path: str) -> tuple[int, dict]:
    """GET an admin route; returns (status, JSON body) for successes and API errors alike."""
    request = urllib.request.Request(
        server.admin_url + path, headers={"Authorization": f"Bearer {admin_token(server)}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def cli(binary: Path, server: MucuraServer, *args: str) -> subprocess.CompletedProcess:
    """Runs `mucura admin … ARGS` against `server`."""
    return subprocess.run(
        [str(binary), "admin", "--admin-url", server.admin_url, "--token", admin_token(server), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def statuses(server: MucuraServer) -> tuple[int, dict[str, str]]:
    """(layout version, {node id: liveness}) as `server` sees the cluster."""
    code, body = admin_get(server, "/v1/cluster/status")
    assert code == 200, body
    return body["layout_version"], {node["id"]: node["status"] for node in body["nodes"]}


def wait_until(condition, seconds: float, what: str, servers: list[MucuraServer]):
    """Polls `condition` every 0.25 s; fails with every node's view if it never holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    views = {}
    for server in servers:
        try:
            views[str(server.work_dir.name)] = statuses(server)
        except Exception as error:  # noqa: BLE001 - report, the assertion below fails anyway
            views[str(server.work_dir.name)] = repr(error)
    pytest.fail(f"not within {seconds}s: {what}; views: {views}")


def cluster_node(work_dir: Path, binary: Path, node_id: str, rpc_port: int, secret_file: Path,
                 seed: int | None) -> MucuraServer:
    """A node in cluster mode with a fixed RPC port (so it keeps its address over restarts)."""
    args = [
        "--rpc-listen", f"127.0.0.1:{rpc_port}",
        "--node-id", node_id,
        "--zone", f"zone-{node_id}",
        "--capacity", "1G",
        "--cluster-secret-file", str(secret_file),
    ]
    if seed is not None:
        args += ["--seed", f"127.0.0.1:{seed}"]
    work_dir.mkdir()
    return MucuraServer(work_dir, binary, args)


@pytest.mark.timeout(90)
def test_three_nodes_agree_detect_failure_and_restart_with_their_layout(
    mucura_binary, tmp_path, monkeypatch
):
    monkeypatch.delenv("MUCURA_CLUSTER_SECRET", raising=False)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    ports = [free_port() for _ in range(4)]
    nodes = [
        cluster_node(tmp_path / f"n{i + 1}", mucura_binary, f"n{i + 1}", ports[i], secret_file,
                     None if i == 0 else ports[0])
        for i in range(3)
    ]
    intruder = None
    try:
        for node in nodes:
            node.start()
        started = time.monotonic()
        first, _, third = nodes

        assert statuses(first)[0] == 0
        layout = {
            "version": 1,
            "replication": 3,
            "nodes": [
                {"id": f"n{i + 1}", "rpc_addr": f"127.0.0.1:{ports[i]}", "zone": f"zone-n{i + 1}",
                 "capacity": 1 << 30}
                for i in range(3)
            ],
        }
        layout_file = tmp_path / "layout.json"
        layout_file.write_text(json.dumps(layout))
        applied = cli(mucura_binary, first, "layout", "apply", "--file", str(layout_file))
        assert applied.returncode == 0, applied.stderr
        again = cli(mucura_binary, first, "layout", "apply", "--file", str(layout_file))
        assert again.returncode != 0 and "409" in again.stderr, again.stderr

        everyone_up = {"n1": "Up", "n2": "Up", "n3": "Up"}
        wait_until(
            lambda: all(statuses(n) == (1, everyone_up) for n in nodes),
            CONVERGE_SECONDS, "layout v1 and all three Up everywhere", nodes,
        )
        print(f"converged {time.monotonic() - started:.1f}s after start")
        shown = cli(mucura_binary, nodes[1], "layout", "show")
        assert shown.returncode == 0 and json.loads(shown.stdout)["version"] == 1, shown.stderr
        status = json.loads(cli(mucura_binary, nodes[2], "cluster", "status").stdout)
        assert status["node_id"] == "n3" and status["pending_hints"] == 0
        me = next(node for node in status["nodes"] if node["is_self"])
        assert (me["zone"], me["capacity"], me["rpc_addr"]) == (
            "zone-n3", 1 << 30, f"127.0.0.1:{ports[2]}")

        # Every node persisted the gossiped layout.
        for node in nodes:
            stored = json.loads((node.data_dir / "cluster" / "layout.json").read_text())
            assert stored["layout"]["version"] == 1

        third.kill()
        killed = time.monotonic()
        wait_until(
            lambda: all(statuses(n)[1]["n3"] == "Down" for n in nodes[:2]),
            DOWN_WITHIN_SECONDS, "n3 Down on n1 and n2", nodes[:2],
        )
        print(f"n3 Down everywhere {time.monotonic() - killed:.1f}s after SIGKILL")

        third.start()
        # The layout comes from its own disk, before any gossip could have brought it.
        assert statuses(third)[0] == 1
        wait_until(
            lambda: all(statuses(n) == (1, everyone_up) for n in nodes),
            CONVERGE_SECONDS, "n3 Up again everywhere", nodes,
        )

        wrong_secret = tmp_path / "wrong-secret"
        wrong_secret.write_text("not-the-cluster-secret-at-all\n")
        intruder = cluster_node(tmp_path / "n4", mucura_binary, "n4", ports[3], wrong_secret,
                                ports[0])
        intruder.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for node in nodes:
                assert statuses(node)[1].get("n4") != "Up"
            time.sleep(0.5)
        assert statuses(intruder) == (0, {"n4": "Up"})
        assert "cluster secret" in intruder.log_path.read_text()

        for node in [intruder, *nodes]:
            assert node.stop() == 0, node.log_tail()
    finally:
        for node in [*nodes, *([intruder] if intruder else [])]:
            node.kill()


def test_cluster_mode_needs_a_secret(mucura_binary, tmp_path, monkeypatch):
    monkeypatch.delenv("MUCURA_CLUSTER_SECRET", raising=False)
    result = subprocess.run(
        [str(mucura_binary), "serve", "--data-dir", str(tmp_path / "d"),
         "--s3-listen", f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{free_port()}",
         "--rpc-listen", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "--cluster-secret-file" in result.stderr and "MUCURA_CLUSTER_SECRET" in result.stderr


@pytest.mark.skipif(os.environ.get("MUCURA_TEST_TARGET") == "cluster",
                    reason="about the single-node session server")
def test_single_node_cluster_routes_say_not_in_cluster_mode(mucura):
    for path in ["/v1/cluster/status", "/v1/cluster/layout"]:
        code, body = admin_get(mucura, path)
        assert code == 404 and "not in cluster mode" in body["message"], body


@pytest.mark.skipif(os.environ.get("MUCURA_TEST_TARGET") == "cluster",
                    reason="about the single-node session server")
def test_single_node_admin_status_has_no_cluster(mucura):
    token = tomllib.loads((mucura.data_dir / "root-credentials.toml").read_text())["admin_token"]
    cli = subprocess.run(
        [str(mucura.binary), "admin", "--admin-url", mucura.admin_url, "--token", token,
         "status"],
        capture_output=True, text=True, timeout=30,
    )
    assert cli.returncode == 0, cli.stderr
    answer = json.loads(cli.stdout)
    assert answer["cluster"] is None
    assert answer["node"]["s3_listen"] == mucura.host_port
