"""The conformance suite every worker passes (:mod:`forkhorn.testing.suite`), for ``-k gevent``:
the worker over real sockets, Gunicorn's request corpus, the reliability scenarios."""

from forkhorn.testing.suite import *  # noqa: F403
