"""Mucura clusters as Docker containers, and the faults the scenarios inject into them.

Everything goes through the `docker` CLI (no client library): the image is built locally
`FROM scratch` out of the release binary and the shared libraries `ldd` lists (no registry is
reachable), every test run gets its own bridge network with a /24 of its own and fixed
addresses, and every node keeps its data in a bind-mounted host directory, so a test can fill,
inspect or corrupt it. The host reaches each node directly on its bridge address: S3 on
port 9000, the admin API on 9001, inter-node RPC on 7000 (nothing is published).

Every container and network carries the label `mucura-faults=<run id>`, where the run id
starts with the pid of the pytest process that made it: `remove_leftovers()` deletes what
interrupted runs left behind (their pid is gone) without touching a concurrent run's
clusters.

Faults: SIGKILL and restart (`docker kill -s KILL`, `docker start`), SIGTERM stop, freeze
(`docker pause`), cut a node off the network (`docker network disconnect`), split the
cluster into two sides (blackhole routes inside each node's network namespace, so the host
and its clients still reach every node while the sides cannot reach each other), and a full
disk (the node's data directory is a small tmpfs the test fills from the host).
"""

from __future__ import annotations

import atexit
import datetime
import errno
import hashlib
import json
import os
import random
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Label on every container and network of the suite; its value is the run id.
LABEL = "mucura-faults"
#: Repository name of the locally built images (the tag is the binary's hash).
IMAGE_REPOSITORY = "mucura-faults"
#: Images of other binaries younger than this are kept (see prune_old_images).
IMAGE_KEEP_SECONDS = 3600
#: Where the release binary is looked for when $MUCURA_BIN is not set.
DEFAULT_BINARY = Path("/var/tmp/mucura-target/release/mucura")

S3_PORT = 9000
ADMIN_PORT = 9001
RPC_PORT = 7000
#: Seconds between anti-entropy rounds on every node: short, so convergence is bounded.
ANTI_ENTROPY_INTERVAL_SECONDS = 5
#: How long a node may take to answer /health after its container starts.
READY_TIMEOUT_SECONDS = 30.0
#: How long the nodes may take to agree on a layout and see each other Up.
AGREEMENT_TIMEOUT_SECONDS = 60.0
#: Grace period of `docker stop` before it kills.
STOP_GRACE_SECONDS = 10
POLL_SECONDS = 0.25
#: The tmpfs of a node whose disk the test fills.
SMALL_DISK_BYTES = 256 * 1024 * 1024
#: Path component marking a tmpfs mount point of the suite (followed by the run id).
TMPFS_MARKER = "mucura-faults-tmpfs-"


class DockerError(RuntimeError):
    """A docker command failed, or the cluster did not reach the state a step waits for."""


def docker(*args: str, timeout: float = 120.0, check: bool = True) -> str:
    """Runs `docker ARGS` and returns its stdout; raises DockerError if it fails and `check`."""
    try:
        done = subprocess.run(
            ["docker", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as error:
        raise DockerError(f"docker {' '.join(args)}: no answer within {timeout}s") from error
    if check and done.returncode != 0:
        raise DockerError(
            f"docker {' '.join(args)} failed ({done.returncode}): "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout


def docker_unavailable_reason() -> str | None:
    """Why the suite cannot use Docker here (no CLI, no daemon, not root), or None."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    if os.geteuid() != 0:
        return "the fault suite needs root (nsenter into containers, tmpfs mounts)"
    for tool in ("nsenter", "ip", "ldd"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    try:
        docker("info", "--format", "{{.ServerVersion}}", timeout=20)
    except DockerError as error:
        return f"the Docker daemon is not reachable: {error}"
    return None


def find_mucura_binary() -> Path:
    """The release binary under test: $MUCURA_BIN, else the shared release build."""
    explicit = os.environ.get("MUCURA_BIN")
    candidates = [Path(explicit)] if explicit else [DEFAULT_BINARY]
    if not explicit and os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "mucura")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise DockerError(
        "no mucura binary: build it with `cargo build --release -p mucura-node` "
        f"or set MUCURA_BIN (looked at {', '.join(map(str, candidates))})"
    )


def shared_libraries(binary: Path) -> list[Path]:
    """The shared libraries and ELF interpreter `binary` loads, as `ldd` resolves them."""
    done = subprocess.run(
        ["ldd", str(binary)], check=False, capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        if "not a dynamic executable" in done.stdout + done.stderr:
            return []
        raise DockerError(f"ldd {binary} failed: {done.stderr.strip()}")
    libraries = []
    for line in done.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            raise DockerError(f"{binary} needs a library this host lacks: {line}")
        # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or, for the interpreter,
        # "/lib64/ld-linux-x86-64.so.2 (0x…)"; the vDSO has no path and needs no file.
        path = line.split("=>", 1)[1] if "=>" in line else line
        path = path.split("(", 1)[0].strip()
        if path.startswith("/"):
            libraries.append(Path(path))
    return libraries


def build_image(binary: Path, scratch: Path) -> str:
    """Builds (or reuses) the image `mucura-faults:<hash of binary>` and returns its tag.

    The image is `FROM scratch`: the binary at /usr/local/bin/mucura plus every library
    `ldd` lists, copied to the same paths (symlinks resolved), and an empty /tmp.
    """
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()[:16]
    tag = f"{IMAGE_REPOSITORY}:{digest}"
    if docker("images", "-q", tag).strip():
        return tag
    context = scratch / f"image-{digest}"
    if context.exists():
        shutil.rmtree(context)
    root = context / "rootfs"
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "tmp").mkdir(mode=0o1777)
    (root / "tmp").chmod(0o1777)
    shutil.copy(binary, root / "usr/local/bin/mucura")
    for library in shared_libraries(binary):
        target = root / library.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(library.resolve(), target)
    (context / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY rootfs/ /\n"
        f'LABEL {LABEL}.image="{digest}"\n'
        'ENTRYPOINT ["/usr/local/bin/mucura"]\n'
    )
    docker("build", "--quiet", "--tag", tag, str(context), timeout=300)
    shutil.rmtree(context)
    version = docker("run", "--rm", "--network", "none", tag, "--version", timeout=60)
    if "mucura" not in version.lower():
        raise DockerError(f"the image {tag} does not run mucura: `--version` said {version!r}")
    prune_old_images(keep=tag)
    return tag


def prune_old_images(keep: str) -> list[str]:
    """Removes the suite's images of earlier binaries (every rebuild makes one), except
    `keep` and any built within the last hour (a concurrent session may be about to use
    it); `docker rmi` without force also spares any image a container still uses.
    Returns the tags removed."""
    removed = []
    listing = docker(
        "images", "--filter", f"label={LABEL}.image", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"
    )
    for line in listing.splitlines():
        tag, image_id = line.split()
        if tag == keep:
            continue
        created = docker(
            "image", "inspect", "--format", "{{.Created}}", image_id, check=False
        ).strip()
        if created and _age_seconds(created) > IMAGE_KEEP_SECONDS:
            done = subprocess.run(
                ["docker", "rmi", tag], check=False, capture_output=True, timeout=120
            )
            if done.returncode == 0:
                removed.append(tag)
    return removed


def _age_seconds(docker_time: str) -> float:
    """Seconds since a timestamp as docker prints it (RFC 3339, nanoseconds)."""
    whole = docker_time.split(".", 1)[0].rstrip("Z")
    created = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
    return (datetime.datetime.now(datetime.UTC) - created).total_seconds()


def _run_owner_alive(run_id: str) -> bool:
    """Whether the pytest process that made run `run_id` ("<pid>-<hex>") still runs."""
    pid_text = run_id.split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers() -> list[str]:
    """Removes the containers, networks and tmpfs mounts of earlier runs whose pytest
    process is gone (interrupted runs); returns what it removed."""
    removed: list[str] = []
    listing = docker(
        "ps",
        "-a",
        "--filter",
        f"label={LABEL}",
        "--format",
        f'{{{{.ID}}}} {{{{.Label "{LABEL}"}}}}',
    )
    stale = [
        line.split()[0]
        for line in listing.splitlines()
        if len(line.split()) == 2 and not _run_owner_alive(line.split()[1])
    ]
    if stale:
        docker("rm", "--force", "--volumes", *stale, check=False)
        removed += [f"container {container}" for container in stale]
    for network in docker("network", "ls", "-q", "--filter", f"label={LABEL}").split():
        run_id = docker(
            "network",
            "inspect",
            "--format",
            f'{{{{index .Labels "{LABEL}"}}}}',
            network,
            check=False,
        ).strip()
        if run_id and not _run_owner_alive(run_id):
            docker("network", "rm", network, check=False)
            removed.append(f"network {network}")
    for mount_point in _suite_tmpfs_mounts():
        run_id = mount_point.name[len(TMPFS_MARKER) :].rsplit("-", 1)[0]
        if not _run_owner_alive(run_id):
            subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
            removed.append(f"tmpfs {mount_point}")
    return removed


def _suite_tmpfs_mounts() -> list[Path]:
    """Mount points of the suite's tmpfs disks (any run) in /proc/mounts."""
    points = []
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "tmpfs" and TMPFS_MARKER in fields[1]:
            points.append(Path(fields[1].replace("\\040", " ")))
    return points


@dataclass
class Node:
    """One node: its container, identity, address and host data directory."""

    #: Node id (`n1`, `n2`, …), also its zone's suffix and hostname.
    id: str
    #: Its fixed address on the run's network.
    ip: str
    #: Container name.
    container: str
    #: Host directory bind-mounted at /data.
    data_dir: Path
    #: Whether `data_dir` is a small tmpfs of its own (for the full-disk scenario).
    small_disk: bool = False

    @property
    def zone(self) -> str:
        """Its failure domain: one per node."""
        return f"z{self.id[1:]}"

    @property
    def s3_url(self) -> str:
        """The S3 endpoint as the host reaches it."""
        return f"http://{self.ip}:{S3_PORT}"

    @property
    def admin_url(self) -> str:
        """The admin API as the host reaches it."""
        return f"http://{self.ip}:{ADMIN_PORT}"

    @property
    def rpc_addr(self) -> str:
        """The inter-node RPC address (also its address in the layout)."""
        return f"{self.ip}:{RPC_PORT}"

    def layout_entry(self) -> dict:
        """Its entry in a layout (`ring::NodeInfo`)."""
        return {"id": self.id, "rpc_addr": self.rpc_addr, "zone": self.zone, "capacity": 1}


@dataclass
class Credentials:
    """Root keys and admin token shared by every node (root-credentials.toml)."""

    access_key: str
    secret_key: str
    admin_token: str

    @staticmethod
    def generate() -> Credentials:
        """Fresh random credentials shaped like the ones `mucura serve` generates."""
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        token = lambda length: "".join(secrets.choice(alphabet) for _ in range(length))
        return Credentials(
            access_key="MK" + token(18).upper(), secret_key=token(40), admin_token=token(32)
        )

    def to_toml(self) -> str:
        """The file `mucura serve` reads from its data dir."""
        return (
            f'access_key = "{self.access_key}"\nsecret_key = "{self.secret_key}"\n'
            f'admin_token = "{self.admin_token}"\n'
        )


#: Clusters not destroyed yet, so an exit without teardown (SIGTERM) still removes them.
_LIVE_CLUSTERS: list[DockerCluster] = []


def destroy_live_clusters() -> None:
    """Destroys every cluster of this process still running (exit and signal handlers)."""
    for cluster in _LIVE_CLUSTERS.copy():  # destroy() removes it from the list
        cluster.destroy()


atexit.register(destroy_live_clusters)


@dataclass
class DockerCluster:
    """A cluster of `mucura serve` containers on a private network of its own.

    `start()` creates the network, starts the nodes, applies a layout of all of them
    through node 1's admin API and waits until every node uses it and sees every node Up.
    `destroy()` removes everything (idempotent); the fixture calls it, and so does the
    process exit handler for a cluster a signal interrupted.
    """

    image: str
    work_dir: Path
    run_id: str = field(default_factory=lambda: f"{os.getpid()}-{secrets.token_hex(3)}")
    credentials: Credentials = field(default_factory=Credentials.generate)
    nodes: dict[str, Node] = field(default_factory=dict)
    #: Node ids of the current layout.
    members: list[str] = field(default_factory=list)
    layout_version: int = 0
    replication: int = 3
    network: str = ""
    subnet_prefix: str = ""
    #: Blackhole routes in place, as (node id, peer ip).
    blackholes: set[tuple[str, str]] = field(default_factory=set)
    #: Extra `mucura serve` flags of every node (see `start`).
    node_args: list[str] = field(default_factory=list)

    # --- lifecycle -----------------------------------------------------------------------

    def start(
        self,
        count: int = 5,
        replication: int = 3,
        small_disks: Iterable[str] = (),
        node_args: Sequence[str] = (),
    ) -> None:
        """Starts nodes n1..n`count` (the ones in `small_disks` on a 256 MiB tmpfs, every one
        with the extra `serve` flags `node_args`, also when added later), applies layout
        version 1 of all of them with `replication`, and waits for agreement."""
        _LIVE_CLUSTERS.append(self)
        self.node_args = list(node_args)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.replication = replication
        self._create_network()
        secret = self.work_dir / "cluster-secret"
        secret.write_text(secrets.token_hex(32) + "\n")
        secret.chmod(0o600)
        small = set(small_disks)
        for index in range(1, count + 1):
            self.add_container(f"n{index}", small_disk=f"n{index}" in small)
        for node in self.nodes.values():
            self.wait_ready(node)
        self.apply_layout([node.id for node in self.nodes.values()])

    def _create_network(self) -> None:
        """A bridge network with a /24 nobody uses yet (retrying on overlaps)."""
        name = f"{LABEL}-{self.run_id}"
        chooser = random.Random()
        last_error = ""
        for _ in range(40):
            prefix = f"172.{chooser.randint(20, 31)}.{chooser.randint(0, 255)}"
            try:
                docker(
                    "network",
                    "create",
                    "--driver",
                    "bridge",
                    "--subnet",
                    f"{prefix}.0/24",
                    "--label",
                    f"{LABEL}={self.run_id}",
                    name,
                )
            except DockerError as error:
                last_error = str(error)
                if "overlap" in last_error.lower():
                    continue
                raise
            self.network, self.subnet_prefix = name, prefix
            return
        raise DockerError(f"no free /24 for the test network: {last_error}")

    def add_container(self, node_id: str, small_disk: bool = False) -> Node:
        """Creates and starts node `node_id` (seeded with n1, unless it is n1) with the
        shared credentials installed in its data dir; does not wait for it nor change the
        layout."""
        index = int(node_id[1:])
        data_dir = self.work_dir / node_id
        if small_disk:
            data_dir = self.work_dir / f"{TMPFS_MARKER}{self.run_id}-{node_id}"
            data_dir.mkdir()
            subprocess.run(
                [
                    "mount",
                    "-t",
                    "tmpfs",
                    "-o",
                    f"size={SMALL_DISK_BYTES},mode=0755",
                    "tmpfs",
                    str(data_dir),
                ],
                check=True,
                capture_output=True,
            )
        else:
            data_dir.mkdir()
        credentials_file = data_dir / "root-credentials.toml"
        credentials_file.write_text(self.credentials.to_toml())
        credentials_file.chmod(0o600)
        node = Node(
            id=node_id,
            ip=f"{self.subnet_prefix}.{10 + index}",
            container=f"{LABEL}-{self.run_id}-{node_id}",
            data_dir=data_dir,
            small_disk=small_disk,
        )
        self.nodes[node_id] = node
        command = [
            "serve",
            "--data-dir",
            "/data",
            "--s3-listen",
            f"0.0.0.0:{S3_PORT}",
            "--admin-listen",
            f"0.0.0.0:{ADMIN_PORT}",
            "--rpc-listen",
            node.rpc_addr,
            "--node-id",
            node.id,
            "--zone",
            node.zone,
            "--cluster-secret-file",
            "/run/mucura/cluster-secret",
            "--anti-entropy-interval",
            str(ANTI_ENTROPY_INTERVAL_SECONDS),
            *self.node_args,
        ]
        if node_id != "n1":
            command += ["--seed", self.nodes["n1"].rpc_addr]
        docker(
            "run",
            "--detach",
            "--name",
            node.container,
            "--hostname",
            node.id,
            "--label",
            f"{LABEL}={self.run_id}",
            "--network",
            self.network,
            "--ip",
            node.ip,
            "--volume",
            f"{data_dir}:/data",
            "--volume",
            f"{self.work_dir / 'cluster-secret'}:/run/mucura/cluster-secret:ro",
            "--stop-timeout",
            str(STOP_GRACE_SECONDS),
            # Plain log lines (no ANSI colours) in `docker logs` and the saved logs.
            "--env",
            "NO_COLOR=1",
            self.image,
            *command,
        )
        return node

    def destroy(self) -> None:
        """Removes the containers and the network and unmounts the tmpfs disks."""
        containers = [node.container for node in self.nodes.values()]
        if containers:
            docker("rm", "--force", "--volumes", *containers, check=False, timeout=120)
        if self.network:
            docker("network", "rm", self.network, check=False)
        for node in self.nodes.values():
            if node.small_disk and os.path.ismount(node.data_dir):
                subprocess.run(["umount", str(node.data_dir)], check=False, capture_output=True)
        if self in _LIVE_CLUSTERS:
            _LIVE_CLUSTERS.remove(self)

    def save_logs(self, destination: Path) -> dict[str, Path]:
        """Writes every node's container log (stdout and stderr, all its runs) into
        `destination/<node>.log`; returns the files."""
        destination.mkdir(parents=True, exist_ok=True)
        files = {}
        for node in self.nodes.values():
            path = destination / f"{node.id}.log"
            with open(path, "wb") as output:
                subprocess.run(
                    ["docker", "logs", "--timestamps", node.container],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    check=False,
                    timeout=60,
                )
            files[node.id] = path
        return files

    def log_text(self, node_id: str) -> str:
        """A node's container log so far."""
        done = subprocess.run(
            ["docker", "logs", self.nodes[node_id].container],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        return done.stdout + done.stderr

    # --- admin API -----------------------------------------------------------------------

    def admin(
        self, node_id: str, path: str, body: dict | None = None, timeout: float = 10.0
    ) -> dict:
        """GET (or, with `body`, POST as JSON) `path` on a node's admin API; returns the
        parsed JSON answer (an empty dict for an empty one)."""
        request = urllib.request.Request(
            self.nodes[node_id].admin_url + path,
            data=None if body is None else json.dumps(body).encode(),
            method="GET" if body is None else "POST",
            headers={
                "Authorization": f"Bearer {self.credentials.admin_token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            raise DockerError(
                f"{path} on {node_id}: {error.code} {error.read().decode(errors='replace')}"
            ) from error
        return json.loads(text) if text.strip() else {}

    def status(self, node_id: str) -> dict | None:
        """A node's `/v1/cluster/status`, or None while it does not answer."""
        try:
            return self.admin(node_id, "/v1/cluster/status", timeout=5.0)
        except (OSError, DockerError, ValueError):
            return None

    def healthy(self, node_id: str) -> bool:
        """Whether the node answers `/health` with 200."""
        try:
            with urllib.request.urlopen(
                self.nodes[node_id].admin_url + "/health", timeout=2.0
            ) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_ready(self, node: Node, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Until the node answers /health; fails early, with its log, if its container
        stops."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy(node.id):
                return
            if not self.running(node.id):
                raise DockerError(
                    f"{node.id} stopped before it was ready:\n{tail(self.log_text(node.id))}"
                )
            time.sleep(POLL_SECONDS)
        raise DockerError(f"{node.id} not ready after {timeout}s:\n{tail(self.log_text(node.id))}")

    def running(self, node_id: str) -> bool:
        """Whether the node's container runs (a paused one counts as running)."""
        state = docker(
            "inspect", "--format", "{{.State.Running}}", self.nodes[node_id].container, check=False
        )
        return state.strip() == "true"

    def apply_layout(
        self, member_ids: Sequence[str], timeout: float = AGREEMENT_TIMEOUT_SECONDS
    ) -> int:
        """Applies the next layout version, of exactly `member_ids`, through the first
        member's admin API (as `mucura local-cluster` does), then waits until every member
        uses it and sees every member Up; returns the new version."""
        current = self.admin(member_ids[0], "/v1/cluster/layout")
        version = int(current.get("version", 0)) + 1
        layout = {
            "version": version,
            "replication": self.replication,
            "nodes": [self.nodes[node_id].layout_entry() for node_id in member_ids],
        }
        self.admin(member_ids[0], "/v1/cluster/layout", body=layout)
        self.members = list(member_ids)
        self.layout_version = version
        self.wait_all_up(timeout=timeout)
        return version

    def wait_all_up(
        self, expected: Sequence[str] | None = None, timeout: float = AGREEMENT_TIMEOUT_SECONDS
    ) -> float:
        """Until every node of `expected` (default: the members) uses the current layout
        and sees every one of them Up in it; returns the seconds it took."""
        expected = list(expected or self.members)
        started = time.monotonic()
        problem = ""
        while time.monotonic() - started < timeout:
            problem = ""
            for node_id in expected:
                status = self.status(node_id)
                problem = _agreement_problem(status, expected, self.layout_version)
                if problem:
                    problem = f"{node_id}: {problem}"
                    break
            if not problem:
                return time.monotonic() - started
            time.sleep(POLL_SECONDS)
        raise DockerError(f"the cluster did not agree within {timeout}s: {problem}")

    def wait_rebalanced(self, node_ids: Sequence[str], timeout: float) -> float:
        """Until every node of `node_ids` reports the current layout version rebalanced
        (every moved range it held confirmed by its new owners) and holds no hint or block
        handoff; returns the seconds it took."""
        started = time.monotonic()
        statuses: dict[str, dict | None] = {}
        while time.monotonic() - started < timeout:
            statuses = {node_id: self.status(node_id) for node_id in node_ids}
            if all(_rebalanced(status, self.layout_version) for status in statuses.values()):
                return time.monotonic() - started
            time.sleep(0.5)
        summary = {
            node_id: None
            if status is None
            else {
                key: status.get(key)
                for key in (
                    "layout_version",
                    "rebalance",
                    "pending_hints",
                    "pending_block_handoffs",
                )
            }
            for node_id, status in statuses.items()
        }
        raise DockerError(
            f"not rebalanced to layout {self.layout_version} within {timeout}s: "
            f"{json.dumps(summary)}"
        )

    # --- faults --------------------------------------------------------------------------

    def kill(self, node_id: str) -> None:
        """SIGKILL to the node's process; the container stays, with its data."""
        docker("kill", "--signal", "KILL", self.nodes[node_id].container)
        self._wait_stopped(node_id)

    def stop(self, node_id: str) -> None:
        """SIGTERM (`docker stop`), SIGKILL after the grace period."""
        docker(
            "stop",
            "--time",
            str(STOP_GRACE_SECONDS),
            self.nodes[node_id].container,
            timeout=STOP_GRACE_SECONDS + 60,
        )
        self._wait_stopped(node_id)

    def restart(self, node_id: str) -> None:
        """Starts the stopped container again (same address, same data) and waits until the
        node answers /health."""
        docker("start", self.nodes[node_id].container)
        self.wait_ready(self.nodes[node_id])

    def _wait_stopped(self, node_id: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.running(node_id):
            if time.monotonic() > deadline:
                raise DockerError(f"{node_id} still runs {timeout}s after it was stopped")
            time.sleep(0.1)

    def pause(self, node_id: str) -> None:
        """Freezes every process of the node (cgroup freezer): it neither answers nor
        notices time passing, while its sockets stay open."""
        docker("pause", self.nodes[node_id].container)

    def unpause(self, node_id: str) -> None:
        """Thaws a paused node."""
        docker("unpause", self.nodes[node_id].container)

    def disconnect(self, node_id: str) -> None:
        """Removes the node's interface on the cluster network: no peer and no client
        reaches it, and it reaches no one."""
        docker("network", "disconnect", self.network, self.nodes[node_id].container)

    def reconnect(self, node_id: str) -> None:
        """Gives the node back its interface, with the same address."""
        node = self.nodes[node_id]
        docker("network", "connect", "--ip", node.ip, self.network, node.container)

    def split(self, side_a: Sequence[str], side_b: Sequence[str]) -> None:
        """Cuts every node of `side_a` off every node of `side_b` and back, with blackhole
        routes inside each node's network namespace; the host (and so every client) still
        reaches every node."""
        for near, far in [(side_a, side_b), (side_b, side_a)]:
            for node_id in near:
                for peer_id in far:
                    self._route(node_id, "add", self.nodes[peer_id].ip)
                    self.blackholes.add((node_id, self.nodes[peer_id].ip))

    def heal_split(self) -> None:
        """Removes every blackhole route `split` added."""
        for node_id, peer_ip in sorted(self.blackholes):
            self._route(node_id, "del", peer_ip)
        self.blackholes.clear()

    def _route(self, node_id: str, action: str, peer_ip: str) -> None:
        pid = docker("inspect", "--format", "{{.State.Pid}}", self.nodes[node_id].container).strip()
        if not pid or pid == "0":
            raise DockerError(f"{node_id} is not running: cannot change its routes")
        command = ["nsenter", "--target", pid, "--net", "ip", "route", action, "blackhole"]
        done = subprocess.run(
            [*command, f"{peer_ip}/32"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise DockerError(
                f"ip route {action} blackhole {peer_ip} in {node_id}: {done.stderr.strip()}"
            )

    def fill_disk(self, node_id: str) -> int:
        """Fills the node's small tmpfs with a filler file written from the host, up to the
        last byte (ENOSPC); returns the filler's size."""
        node = self.nodes[node_id]
        if not node.small_disk:
            raise DockerError(f"{node_id} has no small disk of its own to fill")
        chunk = b"\0" * (1024 * 1024)
        written = 0
        with open(node.data_dir / "filler", "wb", buffering=0) as filler:
            while True:
                try:
                    written += filler.write(chunk)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
            # Whatever still fits, down to the last page, so the node has nothing left.
            for size in (64 * 1024, 4096, 1):
                while True:
                    try:
                        written += filler.write(b"\0" * size)
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
        return written

    def free_disk(self, node_id: str) -> None:
        """Deletes the filler file."""
        (self.nodes[node_id].data_dir / "filler").unlink(missing_ok=True)

    def disk_free_bytes(self, node_id: str) -> int:
        """Bytes free on the node's data directory, as the host sees it."""
        usage = shutil.disk_usage(self.nodes[node_id].data_dir)
        return usage.free


def _agreement_problem(status: dict | None, expected: Sequence[str], version: int) -> str:
    """What keeps `status` (one node's cluster status) from showing layout `version` with
    every `expected` node Up in it; empty if nothing."""
    if status is None:
        return "does not answer"
    if status.get("layout_version") != version:
        return f"uses layout {status.get('layout_version')}, not {version}"
    seen = {peer["id"]: peer for peer in status.get("nodes", [])}
    for node_id in expected:
        peer = seen.get(node_id)
        if peer is None or not peer.get("in_layout") or peer.get("status") != "Up":
            return f"does not see {node_id} Up in its layout ({peer})"
    return ""


def _rebalanced(status: dict | None, version: int) -> bool:
    """The node uses layout `version`, every moved range it held is confirmed, and it holds
    no hint or block handoff."""
    if status is None:
        return False
    summary = status.get("rebalance") or {}
    return (
        status.get("layout_version") == version
        and summary.get("layout_version") == version
        and summary.get("ranges_synced") == summary.get("ranges_total")
        and status.get("pending_hints") == 0
        and status.get("pending_block_handoffs") == 0
    )


def tail(text: str, lines: int = 40) -> str:
    """The last `lines` lines of `text`."""
    return "\n".join(text.splitlines()[-lines:])
