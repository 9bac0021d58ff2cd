"""Every forkhorn hook, declared once. Each docstring is the reference documentation.

pluggy project name ``forkhorn``; plugins are found through the entry-point group
``forkhorn.plugins``. A Gunicorn-style config file's functions (``on_starting``,
``post_fork``, ...) are registered as implementations of the ``forkhorn_<name>`` hook with
the same arguments, so ``gunicorn.conf.py`` hooks run unchanged.

Each docstring says in which process the hook runs, when, how often, and what its return
value means. An exception raised by a lifecycle hook is logged and does not take the
master down (``on_starting`` and ``when_ready`` excepted: failing there stops start-up).
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("forkhorn")
hookimpl = pluggy.HookimplMarker("forkhorn")


@hookspec
def forkhorn_register_workers(registry: Any) -> None:
    """Register worker classes by name.

    Process: the master (and any command that lists workers), once per run, before the
    worker class is resolved. Call ``registry.add(name, "module:Class", summary)``; the
    class is imported only if it is chosen. Return value ignored.
    """


@hookspec
def forkhorn_on_starting(server: Any) -> None:
    """Master, once, just before the master initialises (sockets not bound yet)."""


@hookspec
def forkhorn_on_reload(server: Any) -> None:
    """Master, on every SIGHUP reload, before the new workers are spawned."""


@hookspec
def forkhorn_when_ready(server: Any) -> None:
    """Master, once, after the sockets are bound and the first workers are spawned."""


@hookspec
def forkhorn_pre_fork(server: Any, worker: Any) -> None:
    """Master, before each worker is forked; ``worker`` is the not-yet-started worker object."""


@hookspec
def forkhorn_post_fork(server: Any, worker: Any) -> None:
    """Worker, right after the fork, before the worker initialises."""


@hookspec
def forkhorn_post_worker_init(worker: Any) -> None:
    """Worker, once, after the worker initialised and loaded the app, before it serves."""


@hookspec
def forkhorn_worker_int(worker: Any) -> None:
    """Worker, when it receives SIGINT or SIGQUIT (quick stop)."""


@hookspec
def forkhorn_worker_abort(worker: Any) -> None:
    """Worker, when it receives SIGABRT (the master aborts it on timeout)."""


@hookspec
def forkhorn_pre_exec(server: Any) -> None:
    """Master, on SIGUSR2, in the forked child just before it execs the new master."""


@hookspec
def forkhorn_pre_request(worker: Any, req: Any) -> None:
    """Worker, before each request is handed to the app. Costs nothing when unimplemented."""


@hookspec
def forkhorn_post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    """Worker, after each request's response is complete. Costs nothing when unimplemented."""


@hookspec
def forkhorn_child_exit(server: Any, worker: Any) -> None:
    """Master, after a worker process exited and was reaped."""


@hookspec
def forkhorn_worker_exit(server: Any, worker: Any) -> None:
    """Worker, just before the worker process exits."""


@hookspec
def forkhorn_nworkers_changed(server: Any, new_value: int, old_value: int | None) -> None:
    """Master, whenever the target number of workers changes (start-up, TTIN, TTOU)."""


@hookspec
def forkhorn_on_exit(server: Any) -> None:
    """Master, once, just before it exits."""


@hookspec(firstresult=True)
def forkhorn_ssl_context(config: Any, default_ssl_context_factory: Any) -> Any:
    """Worker (and master when preloading), when TLS is on: return an ``ssl.SSLContext``.

    The first non-None result is used; ``default_ssl_context_factory()`` builds the context
    from the TLS settings.
    """
