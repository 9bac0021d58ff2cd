"""A bare pre-fork blocking loop: what pure Python does with ``Connection: close`` on this
host, no HTTP.

BENCHMARKS.md quotes "a deliberately minimal pure-Python pre-fork loop" that served 28,000
req/s with ``Connection: close`` on its reference machine, about three times Gunicorn's
sync worker there. The sync target (2.5 times Gunicorn) is measured against that room; on
this kind of host a new connection per request costs the kernel and the single-threaded
load generator most of the time, whatever the server does. The full benchmark runs this
loop in the same run as forkhorn's sync worker, taking turns with it, and reports
forkhorn's rate as a share of the loop's, as it does for gevent
(``bench/reference_gevent.py``).

Per connection, and nothing more: ``accept``, one ``recv``, one ``send`` of a fixed
response as long as the bench app's hello (saying ``Connection: close``), ``close``. No
parsing, no WSGI, no timeouts: a ceiling, not a server.

It takes the command line the benchmark gives every server (``-w N -k sync -b HOST:PORT
bench.app:app``; ``bench/prefork.py``).
"""

from __future__ import annotations

import socket

from bench.prefork import hello_response, listen_and_fork

RESPONSE = hello_response(close=True)


def serve(listener: socket.socket) -> None:
    """Answer every connection's first read with the response, then close it."""
    while True:
        conn, _ = listener.accept()
        try:
            if conn.recv(65536):
                conn.send(RESPONSE)
        except OSError:
            pass  # the load generator reset the connection: nothing to report
        finally:
            conn.close()


def main() -> None:
    serve(listen_and_fork(__doc__.partition("\n")[0], "sync"))


if __name__ == "__main__":
    main()
