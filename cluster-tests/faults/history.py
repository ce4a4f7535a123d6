"""The operation history of a fault-injection run: what each client asked, of which node, when,
and what came back.

The workload records one `Op` per request; the checker (checker.py) judges the history together
with the state the cluster ends in. Times are `time.monotonic()` readings of the one process that
ran every client, so they order operations in real time.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

KINDS = ("put", "delete", "get", "list")
OUTCOMES = ("ok", "fail", "unknown")


@dataclass(frozen=True)
class Op:
    """One request and its outcome.

    `outcome` is "ok" (the server acknowledged it), "fail" (it definitely did not take effect:
    a 4xx answer, or no connection was ever made) or "unknown" (a 5xx answer, a timeout or a
    reset: a write may or may not have taken effect).
    """

    client: int
    kind: str
    key: str | None
    node: str
    start: float
    end: float
    outcome: str
    value: str | None
    keys: tuple[str, ...] | None = None
    error: str | None = None
    # The HTTP status the server answered with; None when no answer came (refused connection,
    # timeout, reset). The checker needs it: a write the server never answered may still be
    # executed later (a paused node resumes and reads a request still in its socket buffer), one
    # it answered got its version stamp before the answer.
    status: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown op kind {self.kind!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown op outcome {self.outcome!r}")

    @property
    def is_write(self) -> bool:
        """Whether the op changes a key (a put, or a delete that writes "absent")."""
        return self.kind in ("put", "delete")


class History:
    """A thread-safe, append-only log of ops in the order they were recorded."""

    def __init__(self, ops: list[Op] | None = None) -> None:
        self._lock = threading.Lock()
        self._ops: list[Op] = list(ops or [])

    def record(self, op: Op) -> None:
        """Appends one finished op."""
        with self._lock:
            self._ops.append(op)

    @property
    def ops(self) -> list[Op]:
        """A snapshot copy of the ops recorded so far."""
        with self._lock:
            return list(self._ops)

    def save(self, path: str | Path) -> None:
        """Writes the history as JSON lines, one op per line."""
        with open(path, "w", encoding="utf-8") as out:
            for op in self.ops:
                out.write(json.dumps(asdict(op), sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Reads a history written by `save`."""
        ops = []
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                fields = json.loads(line)
                if fields.get("keys") is not None:
                    fields["keys"] = tuple(fields["keys"])
                ops.append(Op(**fields))
        return cls(ops)

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts of ops by kind and outcome, e.g. {"put": {"ok": 10, "unknown": 2}, ...}."""
        counts: dict[str, Counter[str]] = {}
        for op in self.ops:
            counts.setdefault(op.kind, Counter())[op.outcome] += 1
        return {kind: dict(by_outcome) for kind, by_outcome in counts.items()}
