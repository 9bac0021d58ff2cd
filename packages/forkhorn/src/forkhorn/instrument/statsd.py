"""A StatsD client that can never block or fail a request.

Theory of operation
-------------------
Gunicorn's metric names with our prefix: ``forkhorn.requests`` (counter),
``forkhorn.request.duration`` (timer, ms), ``forkhorn.request.status.<code>`` (counters),
``forkhorn.workers`` (gauge, from the master), ``forkhorn.log.critical|error|warning|
exception`` (counters), all behind ``statsd_prefix`` and followed by the DogStatsD tags
(``|#a:b,c:d``) when ``dogstatsd_tags`` is set.

Metrics are not sent one datagram each (Gunicorn sends three per request): lines are
appended to a per-process batch and the batch leaves as one datagram (newline-separated
metrics, which StatsD and DogStatsD accept) when the next line would not fit
(``MAX_UDP_PACKET`` / ``MAX_UNIX_PACKET`` bytes), when ``flush_if_due`` finds it older than
``FLUSH_INTERVAL`` (workers call it from ``notify()``, the master every tick) and on exit.
StatsD aggregates over 10 s windows, so a batch at most a second old changes no figure.

Invariants
----------
* The socket is a non-blocking datagram socket (UDP ``connect``-ed to the resolved address,
  or unix ``sendto`` a path): a send either goes at once or the batch is dropped; every
  ``OSError`` is swallowed. No metric is worth a stalled or failed request.
* The batch is guarded by a lock (gthread's threads share it); the socket, created in the
  master, is shared by every forked worker, which is safe for datagrams.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

MAX_UDP_PACKET = 1400  # fits an Ethernet MTU with IP/UDP headers
MAX_UNIX_PACKET = 8192
FLUSH_INTERVAL = 1.0


def normalize_prefix(prefix: str) -> str:
    """``app`` and ``app.`` and ``app..`` -> ``app.``; empty stays empty (Gunicorn's rule)."""
    prefix = (prefix or "").strip()
    return re.sub(r"\.*$", "", prefix) + "." if prefix.strip(".") else ""


class StatsdClient:
    """``increment``, ``gauge``, ``timing``, ``request`` (the per-request triple)."""

    def __init__(self, address: str, prefix: str = "", tags: str = "") -> None:
        self.address = address
        self.prefix = normalize_prefix(prefix)
        tags = (tags or "").strip()
        self.suffix = f"|#{tags}" if tags else ""
        self._lock = threading.Lock()
        self._batch: list[bytes] = []
        self._size = 0
        self._next_flush = 0.0
        self._target: str | None = None
        self.sock, self.max_packet = self._connect(address)
        p, s = self.prefix.replace("%", "%%"), self.suffix.replace("%", "%%")
        self._request_template = (
            f"{p}forkhorn.requests:1|c{s}\n"
            f"{p}forkhorn.request.duration:%.3f|ms{s}\n"
            f"{p}forkhorn.request.status.%s:1|c{s}\n"
        )

    def _connect(self, address: str) -> tuple[socket.socket, int]:
        if address.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._target = address[len("unix:") :]
            return sock, MAX_UNIX_PACKET
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "localhost"
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host, int(port), type=socket.SOCK_DGRAM
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        sock.connect(sockaddr)  # UDP: no packet sent; fixes the destination
        return sock, MAX_UDP_PACKET

    # --- metric lines ---------------------------------------------------------------------

    def increment(self, name: str, value: float = 1, sample_rate: float = 1.0) -> None:
        rate = f"|@{sample_rate:g}" if sample_rate != 1.0 else ""
        self._add(f"{self.prefix}{name}:{value:g}|c{rate}{self.suffix}\n")

    def decrement(self, name: str, value: float = 1, sample_rate: float = 1.0) -> None:
        self.increment(name, -value, sample_rate)

    def gauge(self, name: str, value: float) -> None:
        self._add(f"{self.prefix}{name}:{value:g}|g{self.suffix}\n")

    def timing(self, name: str, milliseconds: float) -> None:
        self._add(f"{self.prefix}{name}:{milliseconds:.3f}|ms{self.suffix}\n")

    histogram = timing  # Gunicorn's name for the ms timer

    def request(self, status_code: str, duration_ms: float) -> None:
        """The three metrics of one request, as one batch entry."""
        self._add(self._request_template % (duration_ms, status_code))

    def sink(self) -> Callable[..., None]:
        """``request`` as an access sink ``(environ, status, headers, sent, took)``."""
        add, template = self._add, self._request_template

        def request(environ: Any, status: str, headers: Any, sent: int, took: float) -> None:
            code = status[:3]
            add(template % (took * 1000.0, code if code.isdigit() else "other"))

        return request

    # --- batching -------------------------------------------------------------------------

    def _add(self, line: str) -> None:
        data = line.encode("ascii", "replace")
        with self._lock:
            if self._size + len(data) > self.max_packet and self._batch:
                self._send_locked()
            self._batch.append(data)
            self._size += len(data)

    def after_fork(self) -> None:
        """In a new worker: lines the master had batched are the master's to send."""
        self._batch = []
        self._size = 0

    def flush_if_due(self) -> None:
        now = time.monotonic()
        if now >= self._next_flush:
            self._next_flush = now + FLUSH_INTERVAL
            self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        with self._lock:
            self._send_locked()

    def _send_locked(self) -> None:
        packet = b"".join(self._batch)[:-1]  # no trailing newline
        self._batch.clear()
        self._size = 0
        try:
            if self._target is not None:
                self.sock.sendto(packet, self._target)
            else:
                self.sock.send(packet)
        except OSError:
            pass  # full buffer, nobody listening, network down: drop, never block

    def close(self) -> None:
        self.flush()
        try:
            self.sock.close()
        except OSError:
            pass
