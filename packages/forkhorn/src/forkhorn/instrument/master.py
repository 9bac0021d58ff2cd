"""``MasterInstruments``: the master's side of metrics, in one object the arbiter calls.

Theory of operation
-------------------
The arbiter calls, in its own thread and loop (no thread of ours runs in the master):

* ``region(slot)`` before forking a worker: the worker's zeroed counters in the metrics
  board (None when ``metrics_bind`` is off, so a worker without metrics pays nothing);
* ``worker_exited(record)`` after reaping one: its counters are folded into the totals;
* ``worker_timed_out(record)`` when it aborts one for a stale heartbeat;
* ``tick()`` once per loop turn: (re)binds the endpoint after a start, a HUP that changed
  ``metrics_bind`` or an earlier failure (a USR2 successor binds once its predecessor let
  the port go), sends the ``forkhorn.workers`` gauge and flushes StatsD;
* ``read_fds()``/``write_fds()``/``handle()`` around its ``select``;
* ``close()`` when it halts.

A scrape reads the board and asks the kernel for worker memory and listener backlogs; a
failure to bind the endpoint is logged and retried every tick, never fatal: serving the
application matters more than its metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forkhorn.instrument.board import MetricsBoard, WorkerMetrics
    from forkhorn.instrument.httpd import MetricsServer
    from forkhorn.instrument.prometheus import Snapshot

# The board, the endpoint and the exposition are imported where first used: the arbiter
# builds this object on every start, and metrics_bind is off by default.


class MasterInstruments:
    def __init__(self, arbiter: Any) -> None:
        self.arbiter = arbiter
        self.board: MetricsBoard | None = None
        self.server: MetricsServer | None = None
        self.spawns = 0
        self.exits = 0
        self.timeouts = 0
        self._bind_failed: str | None = None  # the address whose bind failed last
        if self._address is not None:
            # metrics are on from the start: import the endpoint now, so that the first
            # loop turn binds it at once, before the workers have booted
            import forkhorn.instrument.httpd  # noqa: F401

    @property
    def _address(self) -> str | None:
        return getattr(self.arbiter.cfg, "metrics_bind", None) or None

    # --- called by the worker set ---------------------------------------------------------

    def region(self, slot: Any) -> WorkerMetrics | None:
        self.spawns += 1
        if self._address is None:
            return None
        return self._board().region(slot.index)

    def _board(self) -> MetricsBoard:
        if self.board is None:
            from forkhorn.instrument.board import MetricsBoard

            self.board = MetricsBoard()
        return self.board

    def worker_exited(self, record: Any) -> None:
        self.exits += 1
        if self.board is not None:
            self.board.fold(record.slot.index)

    def worker_timed_out(self, record: Any) -> None:
        self.timeouts += 1

    def close_in_child(self) -> None:
        """In a forked worker: the endpoint's sockets belong to the master."""
        if self.server is not None:
            self.server.close_in_child()
            self.server = None

    # --- the master loop --------------------------------------------------------------------

    def tick(self) -> None:
        self._ensure_server()
        log = self.arbiter.log
        statsd = getattr(log, "statsd", None)
        if statsd is not None:
            statsd.gauge("forkhorn.workers", len(self.arbiter.workers))
            statsd.flush()

    def _ensure_server(self) -> None:
        address = self._address
        server = self.server
        if server is not None and server.address == address:
            return
        if server is not None:
            server.close()
            self.server = None
        if address is None:
            return
        from forkhorn.instrument.httpd import MetricsBindError, MetricsServer

        try:
            self.server = MetricsServer(address, self.render, self.arbiter.log)
        except MetricsBindError as exc:
            if self._bind_failed != address:
                self.arbiter.log.error("%s; retrying every second", exc)
            self._bind_failed = address
            return
        self._bind_failed = None
        self.arbiter.log.info("Metrics at: http://%s/metrics", address)

    def read_fds(self) -> list[Any]:
        return self.server.read_fds() if self.server is not None else []

    def write_fds(self) -> list[Any]:
        return self.server.write_fds() if self.server is not None else []

    def handle(self, readable: list[Any], writable: list[Any]) -> None:
        if self.server is not None:
            self.server.handle(readable, writable)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        statsd = getattr(self.arbiter.log, "statsd", None)
        if statsd is not None:
            statsd.flush()

    # --- a scrape ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        from forkhorn import __version__
        from forkhorn.instrument.prometheus import BacklogSample, Snapshot, WorkerSample
        from forkhorn.instrument.system import listen_queue, rss_bytes
        from forkhorn.workers.heartbeat import STATE_NAMES

        arbiter = self.arbiter
        records = list(arbiter.workers.values())
        totals = self._board().totals([record.slot.index for record in records])
        workers = [
            WorkerSample(
                record.pid,
                record.age,
                STATE_NAMES.get(record.slot.state, "unknown"),
                rss_bytes(record.pid),
            )
            for record in records
        ]
        backlogs = []
        for listener in arbiter.listeners:
            queue = listen_queue(listener.sock)
            if queue is not None:
                backlogs.append(BacklogSample(str(listener), queue[0], queue[1]))
        return Snapshot(
            totals=totals,
            workers=workers,
            wanted_workers=int(arbiter.num_workers),
            worker_spawns=self.spawns,
            worker_exits=self.exits,
            worker_timeouts=self.timeouts,
            master_rss_bytes=rss_bytes(arbiter.pid),
            backlogs=backlogs,
            version=__version__,
        )

    def render(self) -> bytes:
        from forkhorn.instrument.prometheus import render

        return render(self.snapshot())
