"""The workloads and targets of /work/shared/BENCHMARKS.md, as data.

Invariants: targets are ratios forkhorn / Gunicorn measured in the same run (plus one
absolute floor: the 10 ms sleep on gevent must reach 80% of 200 / 10 ms); a workload with
no target for a worker class is still measured and reported, marked "—".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
POST_SCRIPT = BENCH_DIR / "post-1mib.lua"
ASYNC_CLASSES = frozenset({"gevent", "eventlet"})
SLEEP_CLASSES = frozenset({"gthread", "gevent", "eventlet"})
SLEEP_IDEAL_RPS = 200 / 0.01


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    path: str
    connections: int
    close: bool = False
    script: str | None = None
    classes: frozenset[str] | None = None  # None: every worker class

    def applies_to(self, worker_class: str) -> bool:
        return self.classes is None or worker_class in self.classes


WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload("hello", "hello, keep-alive, c50", "/", 50),
        Workload("hello-close", "hello, Connection: close, c50", "/", 50, close=True),
        Workload("big", "1 MiB response, c10", "/big", 10),
        Workload("bigfile", "1 MiB file (file_wrapper), c10", "/bigfile", 10),
        Workload("post", "1 MiB POST echoed, c10", "/echo", 10, script=str(POST_SCRIPT)),
        Workload("sleep", "10 ms sleep, c200", "/sleep", 200, classes=SLEEP_CLASSES),
    )
}
FULL_WORKLOADS = tuple(WORKLOADS)
QUICK_WORKLOADS = ("hello", "hello-close", "sleep")


@dataclass(frozen=True)
class Target:
    """``ratio``: minimum forkhorn/gunicorn; ``floor_rps``: minimum absolute forkhorn req/s."""

    ratio: float | None = None
    floor_rps: float | None = None

    @property
    def judged(self) -> bool:
        """A target is set (a ratio, a floor or both)."""
        return self.ratio is not None or self.floor_rps is not None

    def describe(self) -> str:
        parts = []
        if self.ratio is not None:
            parts.append(f">= {self.ratio:g}x")
        if self.floor_rps is not None:
            parts.append(f">= {self.floor_rps:,.0f} req/s")
        return " and ".join(parts) or "—"

    def check(self, forkhorn_rps: float, ratio: float | None) -> str:
        """ "PASS", "FAIL" or "—" (no target)."""
        if self.ratio is None and self.floor_rps is None:
            return "—"
        ok = True
        if self.ratio is not None:
            ok = ok and ratio is not None and ratio >= self.ratio
        if self.floor_rps is not None:
            ok = ok and forkhorn_rps >= self.floor_rps
        return "PASS" if ok else "FAIL"


_TARGETS: dict[tuple[str, str], Target] = {
    ("hello-close", "sync"): Target(2.5),
    ("hello", "gthread"): Target(4.0),
    ("hello", "gevent"): Target(3.5),
    ("hello", "eventlet"): Target(3.0),
    ("sleep", "gevent"): Target(1.5, 0.8 * SLEEP_IDEAL_RPS),
    ("sleep", "eventlet"): Target(1.5),
}
_EVERY_CLASS: dict[str, Target] = {
    "big": Target(1.2),
    "bigfile": Target(1.2),
    "post": Target(1.5),
}
OBSERVABILITY_MIN_RATIO = 0.85  # access log + metrics on: within 15% of both off
#: the async workers' idle-connections check: this many idle keep-alive connections held
#: open beside a wrk hello run must leave its rate within 10% of the rate without them
IDLE_CONNECTIONS = 1000
IDLE_MIN_RATIO = 0.9


def target_for(workload: str, worker_class: str) -> Target:
    return _TARGETS.get((workload, worker_class)) or _EVERY_CLASS.get(workload) or Target()
