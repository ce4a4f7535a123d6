"""Starts, stops and kills one `mucura serve` process for the client tests.

Every start picks fresh free loopback ports; the data directory is kept across restarts so the
restart tests can check durability.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import string
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# A node that has not answered /health after this long will not: fail with its log.
READY_TIMEOUT_SECONDS = 30.0
# The clean-shutdown promise the suite checks: SIGTERM ends the process within this time.
STOP_TIMEOUT_SECONDS = 10.0
# prctl(2) option: the signal the kernel sends the child when its parent dies.
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGKILL it if pytest dies, so no server outlives a run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # Not Linux: the fixtures' own teardown still stops the server.


class MucuraBinaryNotFound(RuntimeError):
    """No `mucura` binary at any of the places the tests look."""


def find_mucura_binary() -> Path:
    """Returns the server binary: $MUCURA_BIN, else ./target/release, else $CARGO_TARGET_DIR."""
    explicit = os.environ.get("MUCURA_BIN")
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise MucuraBinaryNotFound(f"MUCURA_BIN={explicit} is not an executable file")
        return path
    candidates = [REPO_ROOT / "target" / "release" / "mucura"]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "mucura")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise MucuraBinaryNotFound(
        "no mucura binary: build it with `cargo build --release -p mucura-node` "
        f"or set MUCURA_BIN (looked at {', '.join(map(str, candidates))})"
    )


def free_port() -> int:
    """Asks the kernel for a currently unused loopback TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def random_credentials() -> tuple[str, str]:
    """Returns a fresh (access key, secret key) pair shaped like AWS's."""
    access = "MU" + "".join(
        secrets.choice(string.ascii_uppercase + string.digits) for _ in range(18)
    )
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    return access, secret


class MucuraServer:
    """One `mucura serve` process on loopback, with its data directory and log file."""

    def __init__(
        self, work_dir: Path, binary: Path | None = None, extra_args: list[str] | None = None
    ):
        self.binary = binary or find_mucura_binary()
        self.extra_args = list(extra_args or [])
        self.work_dir = work_dir
        self.data_dir = work_dir / "data"
        self.log_path = work_dir / "mucura.log"
        self.access_key, self.secret_key = random_credentials()
        self.s3_port = 0
        self.admin_port = 0
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL (path-style)."""
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def host_port(self) -> str:
        """`127.0.0.1:PORT` of the S3 listener, for tools configured by host."""
        return f"127.0.0.1:{self.s3_port}"

    @property
    def admin_url(self) -> str:
        """The admin API base URL."""
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self) -> None:
        """Starts the process on fresh ports and waits until /health answers 200."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.s3_port = free_port()
        self.admin_port = free_port()
        env = dict(os.environ)
        env["MUCURA_ROOT_ACCESS_KEY"] = self.access_key
        env["MUCURA_ROOT_SECRET_KEY"] = self.secret_key
        env.setdefault("RUST_BACKTRACE", "1")
        command = [
            str(self.binary),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--s3-listen",
            self.host_port,
            "--admin-listen",
            f"127.0.0.1:{self.admin_port}",
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mucura exited with {self.process.returncode} before it was ready\n"
                    + self.log_tail()
                )
            try:
                with urllib.request.urlopen(f"{self.admin_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
                    last_problem = f"/health answered {response.status}"
            except urllib.error.HTTPError as error:
                last_problem = f"/health answered {error.code}"
            except OSError as error:
                last_problem = str(error)
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"mucura not ready after {READY_TIMEOUT_SECONDS}s ({last_problem})\n" + self.log_tail()
        )

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """Sends SIGTERM and returns the exit code; kills it and raises if it hangs."""
        assert self.process is not None, "never started"
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired as timed_out:
                self.kill()
                raise RuntimeError(
                    f"mucura did not exit within {timeout}s of SIGTERM\n" + self.log_tail()
                ) from timed_out
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILLs the process (a crash: no chance to flush anything) and reaps it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def is_running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the server's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        all_lines = text.splitlines()
        # Backtraces bury the panic message: show the first panics apart from the tail.
        panics = [line for line in all_lines if "panicked at" in line or "ERROR" in line]
        tail = "\n".join(all_lines[-lines:])
        report = f"--- last {lines} lines of {self.log_path} ---\n{tail}"
        if panics:
            report = "--- first panics/errors ---\n" + "\n".join(panics[:10]) + "\n" + report
        return report
