"""Fixtures of the fault-injection suite: Docker checks, the node image, one cluster per test.

The image is built once per session from $MUCURA_BIN (else the shared release build, see
docker_cluster.find_mucura_binary) and reused across sessions while the binary is the same.
Without a usable Docker the suite is skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from docker_cluster import (
    DockerCluster,
    DockerError,
    build_image,
    docker_unavailable_reason,
    find_mucura_binary,
    remove_leftovers,
    tail,
)

#: Warnings and errors of each node's log printed when a scenario fails (the whole logs are
#: saved): the info lines of periodic background work would crowd them out of a plain tail.
LOG_TAIL_LINES = 30
#: What marks a log line worth printing on failure.
NOTABLE_LOG_MARKERS = (" WARN ", " ERROR ", "panicked")
#: Where the session keeps the scenarios' `FAULT …` lines for the terminal summary.
FAULT_LINES = pytest.StashKey[list[str]]()


def _interrupted(signum: int, _frame: object) -> None:
    """SIGTERM behaves like Ctrl-C: pytest stops and runs every fixture's teardown, which
    removes the containers, networks and tmpfs mounts."""
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """Keeps the host's AWS configuration out of boto3 and makes SIGTERM clean up."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    signal.signal(signal.SIGTERM, _interrupted)
    config.stash[FAULT_LINES] = []


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Repeats every scenario's `FAULT …` line at the end of the run (docs/FAULTS.md)."""
    lines = config.stash.get(FAULT_LINES, [])
    if lines:
        terminalreporter.section("fault scenario figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def fault_figures(pytestconfig: pytest.Config) -> list[str]:
    """The session's list of `FAULT …` lines; a scenario appends its own."""
    return pytestconfig.stash[FAULT_LINES]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Keeps each phase's report on the item, so the cluster fixture knows whether the test
    failed when it tears down."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def docker_ready() -> None:
    """Docker is usable (else skip, or fail under CI=true); leftovers of interrupted runs
    are removed."""
    reason = docker_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and Docker is not usable: {reason}")
        pytest.skip(f"Docker is not usable: {reason}")
    for leftover in remove_leftovers():
        print(f"removed a leftover of an interrupted run: {leftover}")


@pytest.fixture(scope="session")
def mucura_image(docker_ready: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tag of the node image built from the binary under test."""
    try:
        binary = find_mucura_binary()
        return build_image(binary, tmp_path_factory.mktemp("image"))
    except DockerError as error:
        pytest.fail(str(error))
        raise


@pytest.fixture
def cluster(
    mucura_image: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[DockerCluster]:
    """A cluster object for one test, not started yet (the test chooses its size and
    disks). On teardown every node's log goes to `tmp_path/logs`, their last warnings and
    errors are printed if the test failed, and every container, the network and any tmpfs
    are removed."""
    running = DockerCluster(mucura_image, tmp_path / "cluster")
    try:
        yield running
    finally:
        try:
            if running.nodes:
                logs = running.save_logs(tmp_path / "logs")
                failed = any(
                    getattr(getattr(request.node, f"report_{phase}", None), "failed", False)
                    for phase in ("setup", "call")
                )
                if failed:
                    for node_id, path in logs.items():
                        text = path.read_text(errors="replace")
                        notable = "\n".join(
                            line
                            for line in text.splitlines()
                            if any(marker in line for marker in NOTABLE_LOG_MARKERS)
                        )
                        print(
                            f"\n----- {node_id}: last {LOG_TAIL_LINES} warnings and errors "
                            f"(whole log: {path}) -----"
                        )
                        print(tail(notable, LOG_TAIL_LINES) or "(none)")
        finally:
            running.destroy()
