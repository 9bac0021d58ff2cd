"""Real servers for the reliability suite, what /proc says about them, and the figures.

Shared with the worker test kit's suite (:mod:`forkhorn.testing.suite` puts this directory
on ``sys.path`` for the gevent and eventlet packages), so it imports nothing from a
``conftest``.

- ``Servers``: starts ``python -m forkhorn`` in its own session (its whole process tree is
  found by session id); ``close()`` stops what is left and raises if a process survives.
- ``children``/``fd_count``/``socket_count``/``rss``/``threads``: /proc readings.
- ``report(test, worker, guarantee, met, **figures)``: prints the figures, appends them as
  a JSON line to ``$FORKHORN_RELIABILITY_RESULTS`` and, when
  ``$FORKHORN_RELIABILITY_RESULTS_MD`` is set, rewrites that markdown table from every
  record (the last one per test and worker wins).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from forkhorn.testing.processes import children, end_session, socket_inodes, wait_for
from forkhorn.testing.servers import free_port, http_get

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
_RECORDS: list[dict[str, Any]] = []


# --- /proc (``children`` and ``wait_for``: the worker test kit's) -------------------------


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def socket_count(pid: int) -> int:
    return len(socket_inodes(pid))


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no Threads: line for {pid}")


def mib(size: float) -> float:
    return round(size / (1024 * 1024), 1)


# --- servers --------------------------------------------------------------------------------


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path, workers: int) -> None:
        self.proc = proc
        self.port = port
        self.log_path = log
        self.num_workers = workers

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def workers(self) -> list[int]:
        return children(self.pid)

    def wait_workers(self, count: int | None = None, timeout: float = 15.0) -> list[int]:
        count = self.num_workers if count is None else count
        found = wait_for(
            lambda: (w,) if len(w := self.workers()) == count else None,
            timeout,
            f"{count} workers of {self.pid}",
        )
        return list(found[0])

    def wait_serving(self, timeout: float = 20.0) -> None:
        def answers() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                return get(self.port, "/", timeout=2.0)[0] == 200
            except OSError:
                return False

        try:
            wait_for(answers, timeout, "the server to answer", step=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log ends:\n{self.log()[-3000:]}") from None

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)


def get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET on a new connection (``Connection: close``): (status, body)."""
    return http_get(port, path, timeout)


class Servers:
    """Starts servers in ``tmp``; ``close()`` ends them all and fails on a survivor."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[Server] = []

    def start(
        self,
        *args: str,
        worker: str = "sync",
        workers: int = 2,
        app: str = "reliability_apps:app",
        env: dict[str, str] | None = None,
        autoload: bool = False,
        wait: bool = True,
        pythonpath: tuple[Path, ...] = (),
    ) -> Server:
        port = free_port()
        environ = dict(os.environ)
        paths = [*map(str, pythonpath), str(HERE), str(SRC), environ.get("PYTHONPATH", "")]
        environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        environ["FORKHORN_RELIABILITY_SIDE_FILE"] = str(self.tmp / "side.txt")
        if autoload:
            environ.pop("FORKHORN_DISABLE_PLUGIN_AUTOLOAD", None)
        else:
            environ["FORKHORN_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        for name in ("NOTIFY_SOCKET", "FORKHORN_CMD_ARGS", "PYTEST_CURRENT_TEST"):
            environ.pop(name, None)
        environ.update(env or {})
        log = self.tmp / f"server-{len(self.started)}.log"
        argv = [sys.executable, "-m", "forkhorn", "-k", worker, "-w", str(workers)]
        argv += ["-b", f"127.0.0.1:{port}", *args, app]
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, cwd=self.tmp, env=environ, stdout=out, stderr=out,
                                    start_new_session=True)  # fmt: skip
        server = Server(proc, port, log, workers)
        self.started.append(server)
        if wait:
            server.wait_serving()
            server.wait_workers()
        return server

    def side_file(self) -> list[str]:
        path = self.tmp / "side.txt"
        return path.read_text().splitlines() if path.exists() else []

    def close(self) -> None:
        strays: list[int] = []
        for server in self.started:
            if server.proc.poll() is None:
                server.signal(signal.SIGTERM)
                try:
                    server.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.proc.wait(timeout=10)
            strays += end_session(server.pid, 10)
        assert not strays, f"stray processes left behind: {strays}"


# --- figures --------------------------------------------------------------------------------


def report(test: str, worker: str, guarantee: str, met: bool, **figures: Any) -> bool:
    """Record one test's figures (stdout, JSON lines, markdown); returns ``met``."""
    record = {"test": test, "worker": worker, "guarantee": guarantee, "met": bool(met),
              "figures": figures, "time": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    print(f"\nRELIABILITY {json.dumps(record)}")
    _RECORDS.append(record)
    results = os.environ.get("FORKHORN_RELIABILITY_RESULTS")
    if results:
        with open(results, "a") as out:
            out.write(json.dumps(record) + "\n")
    markdown = os.environ.get("FORKHORN_RELIABILITY_RESULTS_MD")
    if markdown:
        write_markdown(Path(markdown), Path(results) if results else None)
    return bool(met)


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_figure(item) for item in value) + "]"
    return str(value)


def write_markdown(path: Path, results: Path | None) -> None:
    """The table of the last record per (test, worker), from the JSON lines file if given."""
    records = _RECORDS
    if results is not None and results.exists():
        records = [json.loads(line) for line in results.read_text().splitlines() if line]
    last: dict[tuple[str, str], dict[str, Any]] = {}
    tests: dict[str, int] = {}  # in the order they first ran
    for record in records:
        tests.setdefault(record["test"], len(tests))
        last[(record["test"], record["worker"])] = record
    lines = [
        "# Reliability results",
        "",
        f"Last run: {max(r['time'] for r in last.values())}, Linux {platform.release()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}.",
        "",
        "| test | worker | guarantee | met | figures |",
        "|---|---|---|---|---|",
    ]
    for (test, worker), record in sorted(last.items(), key=lambda item: tests[item[0][0]]):
        figures = ", ".join(f"{k}={_figure(v)}" for k, v in record["figures"].items())
        met = "yes" if record["met"] else "**NO**"
        lines.append(f"| {test} | {worker} | {record['guarantee']} | {met} | {figures} |")
    path.write_text("\n".join(lines) + "\n")
