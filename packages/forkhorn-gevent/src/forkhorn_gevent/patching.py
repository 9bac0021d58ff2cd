"""When and how forkhorn-gevent monkey-patches a process: once, and before the app exists.

Two moments, never both for one process:

- default: in each worker, right after fork, before signals, the heartbeat and the app are
  set up (``GeventWorker.init_process``). The master stays an ordinary process: gevent is
  not even imported there, so the arbiter's signal handling, ``waitpid`` and sleeps are the
  plain stdlib ones.
- ``preload_app``: the app is imported in the master, so the master is patched first, by
  ``GeventWorker.patch_master(preload=True)``, which the bootstrap calls right after the
  worker class is resolved: before logging, the config file and the app. Workers inherit
  the patched interpreter; gevent's own ``fork`` re-initialises the hub in the child and
  ``after_fork_in_child`` makes sure of it.

``patch()`` is idempotent: a worker of a patched master does not patch again (a second
``patch_all`` with other arguments is what raises gevent's "Patching more than once"
``MonkeyPatchWarning``). Nothing here imports gevent at module level: importing this module
(or the worker class) in the master must leave ``sys.modules`` free of gevent.

Pitfalls this order avoids (the ones Gunicorn users meet): ``ssl`` imported before the
patch ("Monkey-patching ssl after ssl has already been imported", then recursion errors or
blocking TLS), an app preloaded into an unpatched master (its module-level locks, sockets
and clients are blocking ones), and patching from a config file *after* the server already
imported ``threading`` objects it uses.
"""

from __future__ import annotations

import sys
from typing import Any


def is_patched() -> bool:
    """True once ``patch_all`` ran in this process (read without importing gevent)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


def patch() -> None:
    """``gevent.monkey.patch_all()`` unless this process is already patched."""
    if is_patched():
        return
    from gevent import events, monkey

    # patch_all tells gevent's plugins (entry points of the "gevent.plugins.monkey.*"
    # groups) of each step; gevent finds them with importlib.metadata, which imports
    # email, zipfile, csv, pathlib... and reads every distribution's metadata, in every
    # worker: 3.3 MiB of RSS and about 70 ms of start-up each (measured). The same plugins
    # are found, in the same order, by forkhorn's own scan.
    gevent_finder = getattr(events, "notify_and_call_entry_points", None)
    if gevent_finder is not None:
        events.notify_and_call_entry_points = _notify_and_call_entry_points
    try:
        monkey.patch_all()
    finally:
        if gevent_finder is not None:
            events.notify_and_call_entry_points = gevent_finder


def _notify_and_call_entry_points(event: Any) -> None:
    """gevent's ``events.notify_and_call_entry_points``: subscribers, then the entry
    points of ``event.ENTRY_POINT_NAME`` (a distribution installed twice counts once, as
    with ``importlib.metadata.entry_points``)."""
    from forkhorn.plugins.entrypoints import entry_points
    from gevent import events

    events.notify(event)
    for entry_point in entry_points(event.ENTRY_POINT_NAME, unique=True):
        entry_point.load()(event)


def after_fork_in_child() -> None:
    """Give a child of a patched master its own event loop.

    gevent's patched ``os.fork`` already does this; a fork made through an unpatched
    reference (``from os import fork`` taken before patching) would not, and two processes
    driving one libev loop lose wake-ups. ``reinit`` is cheap and safe to repeat.
    """
    if "gevent" in sys.modules:
        import gevent

        gevent.reinit()
