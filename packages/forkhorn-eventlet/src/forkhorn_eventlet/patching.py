"""When and how forkhorn-eventlet greens a process: in the master, before anything else.

eventlet must green the interpreter before locks, ``logging``, ``ssl`` and the app exist:
locks created earlier stay native (eventlet then reports "N RLock(s) were not greened") and
modules that took references to blocking functions keep them. So, unlike gevent, the
master is always patched (all but ``os``, see ``patch_master``), by
``EventletWorker.patch_master``, which the bootstrap calls
right after the worker class is resolved and before logging, the config file and the app
(DESIGN.md, "Bootstrap order"). Up to that point the bootstrap imports neither ``logging``
nor ``ssl``; eventlet itself imports them while it patches, which is its business.

After fork each worker takes a new hub (``after_fork_in_child``): the master's hub holds an
epoll descriptor whose registrations a child must never share.

Invariants: patching is idempotent (``eventlet.monkey_patch`` skips what it already did);
nothing here imports eventlet at module level, so importing the worker class costs nothing
before the bootstrap decides to patch.
"""

from __future__ import annotations

import sys


def is_patched() -> bool:
    """True once ``eventlet.monkey_patch()`` greened ``socket`` in this process."""
    patcher = sys.modules.get("eventlet.patcher")
    return patcher is not None and bool(patcher.is_monkey_patched("socket"))


def patch_master() -> None:
    """Green everything but ``os`` in the master.

    The arbiter's self-pipe needs the plain ``os.read``/``os.write``: its signal handlers
    write to the pipe from whatever green thread is running (the hub, often), where a green
    ``os.write`` refuses to wait, and it drains the non-blocking pipe until
    ``BlockingIOError``, where a green ``os.read`` would wait for the next byte instead.
    ``os`` holds no locks and the app does not run in the master, so greening it in each
    worker (``patch_worker``) loses nothing.
    """
    import eventlet

    eventlet.monkey_patch(os=False)


def patch_worker() -> None:
    """Green everything (the rest of it, under a patched master); repeating is harmless."""
    import eventlet

    eventlet.monkey_patch()


def after_fork_in_child() -> None:
    """Drop the hub inherited from the master; the next wait builds this process's own:
    ``OneShotHub`` (eventlet's epoll hub, one ``epoll_ctl`` per wait) unless
    ``EVENTLET_HUB`` chooses another or there is no epoll."""
    import os

    import eventlet.hubs
    from eventlet.patcher import original

    if os.environ.get("EVENTLET_HUB") or not hasattr(original("select"), "epoll"):
        eventlet.hubs.use_hub()
        return
    from forkhorn_eventlet.hub import OneShotHub

    eventlet.hubs.use_hub(OneShotHub)
