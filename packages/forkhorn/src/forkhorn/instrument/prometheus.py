"""The Prometheus text exposition format (0.0.4), written by hand: no client library.

Theory of operation
-------------------
The master gathers a ``Snapshot`` (the metrics board's totals plus what it knows itself:
worker pids and their memory, restarts, timeouts, listener backlogs) and ``render`` turns
it into the text format. One family per metric, ``# HELP`` and ``# TYPE`` first, then its
samples; counters end in ``_total``; the histogram has cumulative ``_bucket`` samples with
``le`` labels ending in ``+Inf``, then ``_sum`` and ``_count``.

Invariants: label values are escaped (``\\``, ``"``, newline) as the format requires; a
request cell that is zero is left out (counters appear on first use), every other family
is always present so dashboards see a zero rather than nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forkhorn.instrument.board import BUCKETS, Totals

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class WorkerSample:
    pid: int
    age: int
    state: str
    rss_bytes: int | None


@dataclass
class BacklogSample:
    listener: str
    queued: int
    limit: int


@dataclass
class Snapshot:
    totals: Totals
    workers: list[WorkerSample] = field(default_factory=list)
    wanted_workers: int = 0
    worker_spawns: int = 0
    worker_exits: int = 0
    worker_timeouts: int = 0
    master_rss_bytes: int | None = None
    backlogs: list[BacklogSample] = field(default_factory=list)
    version: str = ""


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        if labels:
            text = ",".join(f'{key}="{_label_value(val)}"' for key, val in labels.items())
            self.lines.append(f"{name}{{{text}}} {_number(value)}")
        else:
            self.lines.append(f"{name} {_number(value)}")

    def render(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode("utf-8")


def render(snap: Snapshot) -> bytes:
    out = Exposition()
    totals = snap.totals
    out.family("forkhorn_requests_total", "counter",
               "Requests served by all workers, by method and status.")  # fmt: skip
    for method, status, count in totals.requests():
        out.sample("forkhorn_requests_total", count, {"method": method, "status": status})
    name = "forkhorn_request_duration_seconds"
    out.family(name, "histogram", "Time from the request head to the end of the response.")
    cumulative = 0
    for bound, count in zip((*BUCKETS, None), totals.buckets(), strict=True):
        cumulative += count
        le = "+Inf" if bound is None else repr(float(bound))
        out.sample(f"{name}_bucket", cumulative, {"le": le})
    out.sample(f"{name}_sum", float(totals.duration_sum))
    out.sample(f"{name}_count", cumulative)
    out.family("forkhorn_requests_in_flight", "gauge", "Requests being served right now.")
    out.sample("forkhorn_requests_in_flight", totals.in_flight)
    out.family("forkhorn_workers", "gauge", "Worker processes alive, by state.")
    states: dict[str, int] = {}
    for worker in snap.workers:
        states[worker.state] = states.get(worker.state, 0) + 1
    for state in ("booting", "ready", "wants-retirement", "drain"):
        states.setdefault(state, 0)
    for state, count in sorted(states.items()):
        out.sample("forkhorn_workers", count, {"state": state})
    out.family("forkhorn_workers_wanted", "gauge", "The worker count the master converges to.")
    out.sample("forkhorn_workers_wanted", snap.wanted_workers)
    out.family("forkhorn_worker_spawns_total", "counter", "Worker processes started.")
    out.sample("forkhorn_worker_spawns_total", snap.worker_spawns)
    out.family("forkhorn_worker_restarts_total", "counter",
               "Worker processes that exited (each is replaced unless the count went down).")  # fmt: skip
    out.sample("forkhorn_worker_restarts_total", snap.worker_exits)
    out.family("forkhorn_worker_timeouts_total", "counter",
               "Workers aborted because their heartbeat was older than the timeout.")  # fmt: skip
    out.sample("forkhorn_worker_timeouts_total", snap.worker_timeouts)
    out.family("forkhorn_worker_resident_memory_bytes", "gauge", "Resident memory of a worker.")
    for worker in snap.workers:
        if worker.rss_bytes is not None:
            labels = {"pid": str(worker.pid), "age": str(worker.age)}
            out.sample("forkhorn_worker_resident_memory_bytes", worker.rss_bytes, labels)
    out.family("forkhorn_master_resident_memory_bytes", "gauge", "Resident memory of the master.")
    if snap.master_rss_bytes is not None:
        out.sample("forkhorn_master_resident_memory_bytes", snap.master_rss_bytes)
    out.family("forkhorn_listen_backlog", "gauge",
               "Connections waiting in a listener's accept queue (TCP, Linux).")  # fmt: skip
    for backlog in snap.backlogs:
        out.sample("forkhorn_listen_backlog", backlog.queued, {"listener": backlog.listener})
    out.family("forkhorn_listen_backlog_limit", "gauge", "The accept queue's capacity.")
    for backlog in snap.backlogs:
        out.sample("forkhorn_listen_backlog_limit", backlog.limit, {"listener": backlog.listener})
    out.family("forkhorn_build_info", "gauge", "The forkhorn version serving.")
    out.sample("forkhorn_build_info", 1, {"version": snap.version})
    return out.render()
