"""Runs `mucura local-cluster` for tests: a whole cluster of real node processes on loopback,
started, laid out and stopped by one command, described by its DIR/cluster.json (see the
README's "A whole cluster on one machine").

`ClusterTarget` makes such a cluster look like the single server of `mucura_server` (an
`endpoint`, `host_port`, `s3_port`, keys), so the real-client suites run unchanged against a
cluster when `MUCURA_TEST_TARGET=cluster` (see conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tomllib
from pathlib import Path

from mucura_server import _die_with_parent

# local-cluster starts the nodes, applies the layout and waits until all see each other.
STARTUP_TIMEOUT_SECONDS = 60.0
# local-cluster stops its nodes with SIGTERM, then SIGKILL after 10 s.
STOP_TIMEOUT_SECONDS = 20.0
# Environment that would override the cluster's own generated credentials and secret.
OVERRIDING_ENV = ("MUCURA_ROOT_ACCESS_KEY", "MUCURA_ROOT_SECRET_KEY", "MUCURA_CLUSTER_SECRET")


class LocalClusterProcess:
    """One `mucura local-cluster --nodes N --dir WORK/cluster` process and its cluster.json."""

    def __init__(self, binary: Path, work: Path, nodes: int = 3, extra_args: list[str] | None = None):
        self.binary = binary
        self.dir = work / "cluster"
        self.log_path = work / "local-cluster.log"
        self.env = {name: value for name, value in os.environ.items() if name not in OVERRIDING_ENV}
        self.command = [str(binary), "local-cluster", "--nodes", str(nodes), "--dir", str(self.dir),
                        *(extra_args or [])]
        self.process: subprocess.Popen | None = None
        self.info: dict = {}

    def start(self) -> None:
        """Starts the cluster and waits for the cluster.json of this run."""
        stale_path = self.dir / "cluster.json"
        stale = json.loads(stale_path.read_text()) if stale_path.exists() else None
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"local-cluster exited with {self.process.returncode}\n{self.log_tail()}")
            if stale_path.exists():
                info = json.loads(stale_path.read_text())
                if info != stale:
                    self.info = info
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"no cluster.json after {STARTUP_TIMEOUT_SECONDS}s\n{self.log_tail()}")

    def stop(self) -> int:
        """SIGTERMs local-cluster (which stops every node) and returns its exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
                raise RuntimeError(
                    f"local-cluster ignored SIGTERM for {STOP_TIMEOUT_SECONDS}s\n{self.log_tail()}")
        return self.process.returncode

    @property
    def nodes(self) -> list[dict]:
        """The nodes as cluster.json lists them."""
        return self.info["nodes"]

    def admin_token(self, node: dict) -> str:
        """The admin API bearer token (shared by every node)."""
        text = (Path(node["data_dir"]) / "root-credentials.toml").read_text()
        return tomllib.loads(text)["admin_token"]

    def log_tail(self, lines: int = 20) -> str:
        """The end of local-cluster's log and of every node's log, for failure messages."""
        parts = []
        for log in [self.log_path, *sorted(self.dir.glob("*.log"))]:
            try:
                tail = log.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"--- {log.name} ---\n" + "\n".join(tail))
        return "\n".join(parts) or "(no logs)"


class ClusterTarget:
    """A local cluster presented like one `MucuraServer`: clients talk to `through` (a node
    other than the seed, so requests cross nodes for placement and bucket agreement)."""

    def __init__(self, work: Path, binary: Path, nodes: int = 3, through: int = 1):
        self.cluster = LocalClusterProcess(binary, work, nodes)
        self.through = through

    def start(self) -> None:
        """Starts the cluster."""
        self.cluster.start()

    def stop(self) -> int:
        """Stops the cluster; 0 when every node stopped cleanly."""
        return self.cluster.stop()

    def log_tail(self) -> str:
        """Logs for failure messages."""
        return self.cluster.log_tail()

    @property
    def node(self) -> dict:
        """The node clients talk to."""
        return self.cluster.nodes[self.through]

    @property
    def access_key(self) -> str:
        """The root access key every node accepts."""
        return self.cluster.info["access_key"]

    @property
    def secret_key(self) -> str:
        """The root secret key."""
        return self.cluster.info["secret_key"]

    @property
    def host_port(self) -> str:
        """`127.0.0.1:PORT` of the node's S3 listener."""
        return self.node["s3"]

    @property
    def data_dir(self) -> Path:
        """The data directory of the node clients talk to (its access log, credentials)."""
        return Path(self.node["data_dir"])

    @property
    def s3_port(self) -> int:
        """The node's S3 port."""
        return int(self.host_port.rsplit(":", 1)[1])

    @property
    def endpoint(self) -> str:
        """The node's S3 endpoint URL (path-style)."""
        return f"http://{self.host_port}"

    @property
    def admin_url(self) -> str:
        """The node's admin API base URL."""
        return f"http://{self.node['admin']}"
