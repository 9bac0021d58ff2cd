"""The worker test kit for plugin authors: one conformance suite for every worker class.

A worker plugin (forkhorn's own gevent and eventlet workers, or a third party's) runs the
same tests against real ``forkhorn -k <worker>`` processes over real sockets. In the
plugin's ``tests/conftest.py``::

    import pytest
    from forkhorn.testing.servers import server_env, start_server  # noqa: F401

    @pytest.fixture
    def worker_name() -> str:
        return "myworker"  # what ``-k`` selects; found through the plugin's entry point

and in a ``tests/test_conformance.py``::

    from forkhorn.testing.suite import *  # noqa: F403

Modules:

- :mod:`forkhorn.testing.servers`: ``Server`` (a master in its own session, always ended),
  ``free_port``, ``http_get``, ``server_env`` and the ``start_server`` fixture (it reads the
  ``worker_name`` fixture).
- :mod:`forkhorn.testing.processes`: ``Process`` (a program in its own session, its output
  in a log file; ``Server`` is one), ``wait_for``, and the process tree from ``/proc``
  (``children``, ``session_members``, ``end_session``).
- :mod:`forkhorn.testing.apps`: the WSGI apps the servers serve (``app``, ``checked``,
  ``echo_app``), importable as ``forkhorn.testing.apps:app``.
- :mod:`forkhorn.testing.plugins`: ``probe_registration``, what the plugin's entry-point
  module registers and imports, seen from a fresh interpreter.
- :mod:`forkhorn.testing.sockets`: ``RecvSpy``, which counts the failing ``recv`` calls
  under a worker's own cooperative socket class, and the checks built on it
  (``check_recv_waits_after_each_response``, ``check_nonblocking_recv_raises``).
- :mod:`forkhorn.testing.suite`: the shared tests (worker behaviour, Gunicorn's request
  corpus over a socket, reliability scenarios). The corpus and the reliability scenarios
  live in the core package's ``tests`` directory: from a wheel (no tests) those tests skip,
  saying so.

Only these modules import pytest; nothing else in forkhorn imports this package.
"""
