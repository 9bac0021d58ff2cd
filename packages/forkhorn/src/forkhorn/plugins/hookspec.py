"""Every forkhorn hook, declared once. Each docstring is the reference documentation.

pluggy project name ``forkhorn``; plugins are found through the entry-point group
``forkhorn.plugins``. A Gunicorn-style config file's functions (``on_starting``,
``post_fork``, ...) are registered as implementations of the ``forkhorn_<name>`` hook with
the same arguments, so ``gunicorn.conf.py`` hooks run unchanged.

Each docstring says in which process the hook runs, when, how often, and what its return
value means. An exception raised by a lifecycle hook is logged and does not take the
master down (``on_starting`` and ``when_ready`` excepted: failing there stops start-up).

Names and arguments are Gunicorn's server hooks with the ``forkhorn_`` prefix; hooks are
called with keyword arguments (``pm.hook.forkhorn_when_ready(server=arbiter)``), so an
implementation may accept any subset of the arguments, by name.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("forkhorn")
hookimpl = pluggy.HookimplMarker("forkhorn")


@hookspec
def forkhorn_register_workers(registry: Any) -> None:
    """Register worker classes by name.

    Process: the master, and any command that lists or resolves workers (``--list-workers``,
    ``--help``, ``-k``). When: once per run, before the worker class is resolved and before
    the config file runs. Call ``registry.add(name, "module:Class", summary)`` once per
    worker; the class is imported only if it is chosen, so this must stay cheap and must
    not import gevent, eventlet or other heavy modules. The registry records which
    distribution made each call; a name claimed twice stops start-up with an error naming
    both. Return value ignored.
    """


@hookspec
def forkhorn_on_starting(server: Any) -> None:
    """Master, once, just before the master initialises (sockets not bound yet).

    Called with ``server`` (the arbiter). An exception stops start-up. Return value ignored.
    """


@hookspec
def forkhorn_on_reload(server: Any) -> None:
    """Master, on every SIGHUP reload, after the configuration was re-read and
    before the new workers are spawned. Return value ignored.
    """


@hookspec
def forkhorn_when_ready(server: Any) -> None:
    """Master, once, after the sockets are bound, just before the first workers are
    forked (Gunicorn's moment). An exception stops start-up. Return value ignored.
    """


@hookspec
def forkhorn_pre_fork(server: Any, worker: Any) -> None:
    """Master, before each worker is forked (start-up, replacements, TTIN, HUP).

    ``worker`` is the worker object not started yet. Return value ignored.
    """


@hookspec
def forkhorn_post_fork(server: Any, worker: Any) -> None:
    """Worker, right after each fork, before the worker initialises (signals,
    app loading). ``server`` is the arbiter as copied into the child. Return value ignored.
    """


@hookspec
def forkhorn_post_worker_init(worker: Any) -> None:
    """Worker, once per worker, after it initialised and loaded the app,
    before it serves its first request. Return value ignored. The ``timeout`` counts
    meanwhile: work that takes longer calls ``worker.tmp.notify()`` now and then (from a
    thread, say), as with Gunicorn.
    """


@hookspec
def forkhorn_worker_int(worker: Any) -> None:
    """Worker, when it receives SIGINT or SIGQUIT (quick stop), once.
    Return value ignored.
    """


@hookspec
def forkhorn_worker_abort(worker: Any) -> None:
    """Worker, when it receives SIGABRT, usually because the master found it
    silent past ``timeout``; the stacks are dumped around it. Return value ignored.
    """


@hookspec
def forkhorn_pre_exec(server: Any) -> None:
    """Master side of SIGUSR2: in the forked child, just before it execs the new
    master (once per upgrade). Return value ignored.
    """


@hookspec
def forkhorn_pre_request(worker: Any, req: Any) -> None:
    """Worker, before each request is handed to the app (every request).

    ``req`` is the parsed ``forkhorn.http.request.Request``, with Gunicorn's fields
    (``method``, ``uri``, ``path``, ``query``, ``version``, ``headers``, ``remote_addr``,
    ``peer_addr``, ``scheme``, ``body``, ``should_close()``). The worker looks the hook up
    once, so it costs nothing per request when nobody implements it. Return value ignored.
    """


@hookspec
def forkhorn_post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    """Worker, after each request's response is complete (every request).

    ``environ`` is the WSGI environ, ``resp`` the response object (Gunicorn's ``status``,
    ``status_code``, ``headers``, ``sent``, ``response_length``, ``should_close()``).
    Costs nothing when unimplemented. A config file may define it with Gunicorn's 2- or
    3-argument forms. Return value ignored.
    """


@hookspec
def forkhorn_child_exit(server: Any, worker: Any) -> None:
    """Master, after a worker process exited and was reaped (each worker exit).
    Return value ignored.
    """


@hookspec
def forkhorn_worker_exit(server: Any, worker: Any) -> None:
    """Worker, just before the worker process exits (each worker, once).
    Return value ignored.
    """


@hookspec
def forkhorn_nworkers_changed(server: Any, new_value: int, old_value: int | None) -> None:
    """Master, whenever the target number of workers changes: at start-up
    (``old_value`` None), on TTIN/TTOU, on a reload that changes ``workers``. Return value
    ignored.
    """


@hookspec
def forkhorn_on_exit(server: Any) -> None:
    """Master, once, just before it exits. Return value ignored."""


@hookspec(firstresult=True)
def forkhorn_ssl_context(config: Any, default_ssl_context_factory: Any) -> Any:
    """Return the ``ssl.SSLContext`` to serve TLS with (``firstresult``).

    Process: each worker, once, when it starts serving with TLS on (``certfile`` set). The first non-None result is used; return None to
    leave the decision to the next implementation or the default.
    ``default_ssl_context_factory()`` builds the context from the TLS settings, so an
    implementation can adjust it: ``ctx = default_ssl_context_factory(); ...; return ctx``.
    """
