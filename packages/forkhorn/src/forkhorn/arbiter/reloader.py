"""Code reload (``--reload``): a daemon thread in each worker watches the app's source files.

Theory of operation
-------------------
The watched set is every loaded module's source file plus ``reload_extra_files`` (globs,
re-expanded each pass so new files matching a pattern are seen). On the first change the
worker asks the master for a replacement (``Worker.request_retirement``): the new worker
loads the new code and is ready before the old one is told to stop, so a code reload drops
no request either. The watcher stops after reporting once.

Engines: ``inotify`` when ``inotify_simple`` is importable (the ``inotify`` extra), else
``poll`` (mtime comparison once a second). ``reload_engine`` = ``auto`` | ``poll`` |
``inotify`` picks one.
"""

from __future__ import annotations

import glob
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

POLL_INTERVAL = 1.0


def module_files() -> set[str]:
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        if path.endswith((".pyc", ".pyo")):
            path = path[:-1]
        files.add(os.path.abspath(path))
    return files


class Reloader(threading.Thread):
    """Polls mtimes; ``callback(path)`` once when a watched file changes or disappears."""

    def __init__(self, extra_globs: Iterable[str], callback: Callable[[str], None]) -> None:
        super().__init__(name="forkhorn-reloader", daemon=True)
        self.extra_globs = list(extra_globs)
        self.callback = callback
        self._extra_files: set[str] = set()
        self._stop = threading.Event()

    def add_extra_file(self, path: str) -> None:
        self._extra_files.add(os.path.abspath(path))

    def watched_files(self) -> set[str]:
        files = module_files() | self._extra_files
        for pattern in self.extra_globs:
            files.update(os.path.abspath(p) for p in glob.glob(pattern, recursive=True))
        return files

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        mtimes: dict[str, float] = {}
        while not self._stop.is_set():
            for path in self.watched_files():
                try:
                    mtime = os.stat(path).st_mtime
                except OSError:
                    if path in mtimes:
                        self.callback(path)
                        return
                    continue
                previous = mtimes.setdefault(path, mtime)
                if mtime != previous:
                    self.callback(path)
                    return
            self._stop.wait(POLL_INTERVAL)


class InotifyReloader(Reloader):
    """Same contract, woken by inotify events on the watched files' directories."""

    def run(self) -> None:
        import inotify_simple  # type: ignore[import-not-found]

        flags = inotify_simple.flags
        mask = flags.MODIFY | flags.CLOSE_WRITE | flags.MOVED_TO | flags.CREATE | flags.DELETE
        with inotify_simple.INotify() as notifier:
            watched_dirs: dict[int, str] = {}
            while not self._stop.is_set():
                files = self.watched_files()
                for directory in {os.path.dirname(f) for f in files} - set(watched_dirs.values()):
                    try:
                        watched_dirs[notifier.add_watch(directory, mask)] = directory
                    except OSError:
                        continue
                for event in notifier.read(timeout=int(POLL_INTERVAL * 1000)):
                    watched = watched_dirs.get(event.wd)
                    if watched is None:
                        continue
                    path = os.path.join(watched, event.name)
                    if path in files:
                        self.callback(path)
                        return


def start_reloader(cfg: Any, log: Any, callback: Callable[[str], None]) -> Reloader:
    engine = str(getattr(cfg, "reload_engine", "auto") or "auto")
    extra = list(getattr(cfg, "reload_extra_files", None) or [])
    cls: type[Reloader] = Reloader
    if engine in ("auto", "inotify"):
        try:
            import inotify_simple  # noqa: F401

            cls = InotifyReloader
        except ImportError:
            if engine == "inotify":
                log.warning(
                    "reload_engine=inotify needs inotify_simple (pip install 'forkhorn[inotify]'); polling instead"
                )
    reloader = cls(extra, callback)
    reloader.start()
    return reloader
