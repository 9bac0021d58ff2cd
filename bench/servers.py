"""Start a pre-fork server under test, measure it idle, and stop it without leaving anything.

Invariants:
- Every server runs in its own session (process group = master pid) so the whole tree can
  be killed at once on timeout; :class:`Server` is a context manager and ``__exit__``
  always stops it (TERM, wait, then KILL of the group), whatever happened in between.
- ``startup_s`` is wall time from ``Popen`` to the first ``200`` on ``/``.
- Idle worker RSS is read from ``/proc/<pid>/status`` of the master's children once the
  expected number of workers exist and their RSS has stopped moving, before any load.
- Server output goes to a log file (never a pipe nobody reads, which could block it).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
WORKERS_TIMEOUT_S = 10.0


class ServerError(RuntimeError):
    """The server did not start, or did not answer ``200``."""


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server: ``<python> -m <module> <args> bench.app:app``."""

    label: str  # "forkhorn" | "gunicorn"
    python: str
    module: str  # "forkhorn" | "gunicorn"
    worker_class: str
    workers: int = 2
    threads: int = 0  # > 0: --threads N
    extra: tuple[str, ...] = ()

    def command(self, port: int) -> list[str]:
        cmd = [self.python, "-m", self.module, "-w", str(self.workers)]
        cmd += ["-k", self.worker_class, "-b", f"127.0.0.1:{port}"]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        return cmd + list(self.extra) + ["bench.app:app"]


def free_port() -> int:
    """A loopback port free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (scans /proc: works without CONFIG_PROC_CHILDREN)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name may contain spaces and parentheses: split after the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 if it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def http_status(port: int, path: str = "/", timeout: float = 1.0) -> int:
    """Status of one GET on a fresh connection, or 0 when the server did not answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


class IdleConnections:
    """``count`` keep-alive connections to ``port``, each answered once and then left idle:
    ``with IdleConnections(port, 1000) as idle: ...``; ``served`` counts the 200s, and
    ``still_open()`` how many the server has not closed."""

    REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    def __init__(self, port: int, count: int, timeout: float = 10.0) -> None:
        self.port = port
        self.count = count
        self.timeout = timeout
        self.socks: list[socket.socket] = []
        self.served = 0

    def __enter__(self) -> IdleConnections:
        try:
            for _ in range(self.count):
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
                self.socks.append(sock)
                sock.sendall(self.REQUEST)
            self.served = sum(self._answered(sock) for sock in self.socks)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _answered(sock: socket.socket) -> bool:
        """Read one response (the bench app's hello: its head and 14 bytes); True on a 200."""
        data = b""
        try:
            while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < 14:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                data += chunk
        except OSError:
            return False
        return data.startswith(b"HTTP/1.1 200 ")

    def still_open(self) -> int:
        """Connections the server kept: a read finds nothing yet (no EOF, no reset)."""
        count = 0
        for sock in self.socks:
            sock.setblocking(False)
            try:
                sock.recv(1)
            except BlockingIOError:
                count += 1
            except OSError:
                pass
        return count

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.socks = []


@dataclass
class Server:
    """A running server; use as ``with Server(spec, cwd, log_path) as srv: ...``."""

    spec: ServerSpec
    cwd: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    startup_s: float = 0.0
    proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self) -> None:
        self.port = free_port()
        started = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.spec.command(self.port),
                cwd=self.cwd,
                env=self.env or None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()
        self.startup_s = time.perf_counter() - started

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.spec.label} exited {self.proc.returncode}: {self.log_tail()}"
                )
            status = http_status(self.port, timeout=0.5)
            if status == 200:
                return
            if status:  # it answers, wrongly: waiting longer will not help
                raise ServerError(f"{self.spec.label} answered {status} on /: {self.log_tail()}")
            time.sleep(0.005)
        raise ServerError(f"{self.spec.label} gave no 200 in {READY_TIMEOUT_S}s: {self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The master's children once ``spec.workers`` of them exist (or what exists then)."""
        assert self.proc is not None
        deadline = time.monotonic() + WORKERS_TIMEOUT_S
        pids = children_of(self.proc.pid)
        while len(pids) < self.spec.workers and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = children_of(self.proc.pid)
        return pids

    def idle_worker_rss_kib(self) -> float:
        """Mean VmRSS of the workers, sampled until it stops moving (at most ~2 s)."""
        pids = self.worker_pids()
        if not pids:
            return 0.0
        last = -1
        for _ in range(20):
            total = sum(rss_kib(pid) for pid in pids)
            if total == last:
                break
            last = total
            time.sleep(0.1)
        return last / len(pids)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) + f"\n(full log: {self.log_path})"

    def stop(self) -> None:
        """TERM the master, wait; KILL the whole process group on timeout; reap."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM, only_leader=True)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT_S)
        # Workers orphaned by a crashed master would still be in the group: end them too.
        _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals, only_leader: bool = False) -> None:
    try:
        if only_leader:
            os.kill(pgid, sig)
        else:
            os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
