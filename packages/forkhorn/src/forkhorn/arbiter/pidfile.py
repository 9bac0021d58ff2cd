"""The pidfile: written atomically, renamed during the USR2 dance, removed only if still ours.

Invariants: the file is replaced with ``rename`` (a reader never sees a half-written pid);
``unlink`` removes the file only if it still holds our pid, so a master never deletes the
pidfile its successor wrote.
"""

from __future__ import annotations

import os


class PidfileError(Exception):
    """The pidfile names a running process, or cannot be written."""


class Pidfile:
    def __init__(self, path: str) -> None:
        self.path = path
        self.pid: int | None = None

    def create(self, pid: int) -> None:
        existing = read_pid(self.path)
        if existing is not None and existing != pid and _alive(existing):
            if existing == os.getppid():
                pass  # the old master of a USR2 upgrade: we take its place later
            else:
                raise PidfileError(
                    f"Already running on PID {existing} (or pid file {self.path!r} is stale)"
                )
        self.pid = pid
        directory = os.path.dirname(os.path.abspath(self.path))
        import tempfile  # only with --pid: it pulls in random and shutil

        fd, tmp = tempfile.mkstemp(prefix=".forkhorn-pid-", dir=directory)
        try:
            os.write(fd, f"{pid}\n".encode("ascii"))
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
        os.rename(tmp, self.path)

    def rename(self, path: str) -> None:
        """Move our pidfile to ``path`` (e.g. ``<pidfile>.oldbin`` on USR2, back on failure)."""
        if self.pid is None:
            return
        try:
            os.rename(self.path, path)
        except FileNotFoundError:
            self.path = path
            self.create(self.pid)
            return
        self.path = path

    def unlink(self) -> None:
        if self.pid is not None and read_pid(self.path) == self.pid:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
