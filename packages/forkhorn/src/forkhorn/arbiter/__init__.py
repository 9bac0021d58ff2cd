"""The master process: ``Arbiter(app).run()``.

Submodules: ``listeners`` (bind/adopt sockets), ``pidfile``, ``systemd`` (sd_notify, socket
activation), ``process`` (daemon, privileges, process title), ``reloader`` (code reload),
``arbiter`` (the loop). ``Arbiter`` is imported lazily so that workers importing
``forkhorn.arbiter.listeners`` do not pull in the master loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forkhorn.arbiter.arbiter import Arbiter, HaltServer

__all__ = ["Arbiter", "HaltServer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from forkhorn.arbiter import arbiter

        return getattr(arbiter, name)
    raise AttributeError(f"module 'forkhorn.arbiter' has no attribute {name!r}")
