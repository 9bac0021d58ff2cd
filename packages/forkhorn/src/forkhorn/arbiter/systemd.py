"""systemd integration without libsystemd: ``sd_notify`` over the ``NOTIFY_SOCKET`` datagram.

Invariants: notifying never raises and never blocks (a missing or dead socket is logged at
debug level); an abstract socket address (``@name``) is supported; ``NOTIFY_SOCKET`` and
``WATCHDOG_*`` are removed from the environment so workers and the app do not inherit them.
Socket activation (``LISTEN_FDS``) is handled by ``listeners``.
"""

from __future__ import annotations

import os
import socket
from typing import Any


class Notifier:
    """``notify("READY=1")``; ``watchdog_interval`` is half of ``WATCHDOG_USEC`` (or None)."""

    def __init__(self, log: Any, environ: Any = None) -> None:
        env = os.environ if environ is None else environ
        self.log = log
        address = env.pop("NOTIFY_SOCKET", None)
        self.address: str | None = None
        if address:
            self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval: float | None = None
        usec = env.pop("WATCHDOG_USEC", None)
        watchdog_pid = env.pop("WATCHDOG_PID", None)
        ours = watchdog_pid is None or watchdog_pid == str(os.getpid())
        if usec and usec.isdigit() and int(usec) > 0 and ours:
            self.watchdog_interval = int(usec) / 1_000_000 / 2

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, state: str) -> None:
        if self.address is None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.sendto(state.encode("utf-8"), self.address)
        except OSError as exc:
            self.log.debug("sd_notify(%r) failed: %s", state, exc)
        finally:
            sock.close()
