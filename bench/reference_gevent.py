"""A bare pre-fork gevent loop: what pure Python on gevent can do on this host, no HTTP.

BENCHMARKS.md quotes "a deliberately minimal pure-Python pre-fork loop" as the room a
server has: on its reference machine, 48,000 req/s keep-alive and 16,000 req/s on the 10 ms
sleep, which is also where the gevent sleep target's absolute floor (16,000 req/s) comes
from. Hosts differ in speed by more than the targets' margins, so the full benchmark runs
this loop in the same run as forkhorn's gevent worker, taking turns with it, and reports
forkhorn's rate as a share of the loop's: a floor missed on a slow host then shows as such.

What it does per request, and nothing more: one ``recv``; for a request to ``/sleep``, a
10 ms ``time.sleep`` (gevent's, patched); one ``send`` of a fixed response as long as the
bench app's hello. No parsing, no framing checks, no WSGI: a ceiling, not a server.

It takes the command line the benchmark gives every server (``-w N -k gevent -b
HOST:PORT bench.app:app``; ``bench/prefork.py``), so it runs through the same
``ServerSpec`` and ``Server``; it mirrors the bench app's ``/`` and ``/sleep``.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from bench.app import SLEEP_SECONDS  # noqa: E402
from bench.prefork import hello_response, listen_and_fork  # noqa: E402

RESPONSE = hello_response(close=False)


def serve(conn: socket.socket) -> None:
    """Answer each read with the response; sleep first when it asks for /sleep."""
    recv, send = conn.recv, conn.send
    try:
        while True:
            data = recv(65536)
            if not data:
                break
            if data.startswith(b"GET /sleep "):
                time.sleep(SLEEP_SECONDS)
            send(RESPONSE)
    except OSError:
        pass  # the load generator closed or reset the connection: nothing to report
    finally:
        conn.close()


def main() -> None:
    listener = listen_and_fork(__doc__.partition("\n")[0], "gevent")
    while True:
        conn, _ = listener.accept()
        gevent.spawn_raw(serve, conn)


if __name__ == "__main__":
    main()
