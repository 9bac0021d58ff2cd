"""Processes the tests start, and what Linux's ``/proc`` says about them.

- ``Process``: a program in its own session (process group), its output in a log file.
  ``stop()`` sends TERM, waits, then KILLs the whole group, so a test never leaves a process
  behind, even one whose master it broke. It may be called more than once.
- ``children``, ``session_members``, ``end_session``: the process tree, read from ``/proc``
  (the arbiter and reliability tests count workers and check nothing outlived a test).
- ``socket_inodes``, ``polls_listeners``: which sockets a process holds, and whether a
  worker is waiting on its master's listeners (it takes new connections).
- ``wait_for``: poll a predicate, bounded in time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.01) -> Any:
    """The first true value of ``predicate()``; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


class Process:
    """A program in its own session, its output in ``log`` (appended to, if ``append``)."""

    def __init__(
        self,
        argv: list[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        *,
        cwd: Path | None = None,
        pass_fds: tuple[int, ...] = (),
        append: bool = False,
    ) -> None:
        self.log_path = log
        self._log = log.open("ab" if append else "wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            pass_fds=pass_fds,
            start_new_session=True,
        )
        self._stopped = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Poll ``ready`` (an OSError counts as not yet) until true; on failure the process
        is stopped, then AssertionError with its log. Any other exception from ``ready``
        stops the process too before it propagates: the caller never got the process, so
        no fixture would stop it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"{what} exited {self.proc.returncode}:\n{self.log}")
            try:
                if ready():
                    return
            except OSError:
                pass
            except BaseException:
                self.stop()
                raise
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"{what} not ready within {timeout}s:\n{self.log}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """TERM, up to ``timeout`` seconds for it to exit, then KILL what is left of the
        session; the exit status (``-9`` if it had to be killed)."""
        if self._stopped:
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of this session
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(5)
        self._log.close()
        self._stopped = True
        return self.proc.returncode


# --- /proc -----------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from "state" on


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    """Live children of ``pid`` (``/proc/PID/task/*/children``, else a scan of /proc)."""
    found: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found.update(int(child) for child in text.split())
    except OSError:
        for entry in os.listdir("/proc"):
            fields = _stat(int(entry)) if entry.isdigit() else None
            if fields and fields[1] == str(pid):
                found.add(int(entry))
    return sorted(child for child in found if _alive(child))


def session_members(sid: int) -> list[int]:
    """The processes (zombies aside) of session ``sid``."""
    found = []
    for entry in os.listdir("/proc"):
        fields = _stat(int(entry)) if entry.isdigit() else None
        if fields and fields[3] == str(sid) and fields[0] != "Z":
            found.append(int(entry))
    return found


def end_session(sid: int, timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds for session ``sid`` to end, then KILL what is left of
    it; the processes that had to be killed (a test fails on them: they outlived it)."""
    try:
        wait_for(lambda: not session_members(sid), timeout, "the session to end")
    except AssertionError:
        strays = session_members(sid)
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return strays
    return []


def socket_inodes(pid: int) -> dict[str, int]:
    """``socket:[inode]`` -> fd number, for every socket ``pid`` holds."""
    found = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:"):
            found[link] = int(fd)
    return found


def polls_listeners(worker: int, master: int) -> bool:
    """Whether ``worker`` has the master's listening sockets in an epoll set: it is
    accepting, whether or not the kernel has handed it a connection yet (epoll workers)."""
    try:
        shared = set(socket_inodes(master))
        listeners = {fd for link, fd in socket_inodes(worker).items() if link in shared}
        for fd in os.listdir(f"/proc/{worker}/fdinfo"):
            for line in Path(f"/proc/{worker}/fdinfo/{fd}").read_text().splitlines():
                if line.startswith("tfd:") and int(line.split()[1]) in listeners:
                    return True
    except OSError:
        pass
    return False
