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
HOST:PORT bench.app:app``) so it runs through the same ``ServerSpec`` and ``Server``; the
app argument must name the bench app, whose ``/`` and ``/sleep`` it mirrors. Its processes
are one master and ``N - 1`` forked children, all accepting on the same socket (the
benchmark's ``Server`` stops the whole process group).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from bench.app import HELLO, SLEEP_SECONDS  # noqa: E402

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: reference\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(HELLO), HELLO)
)


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
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("-w", dest="workers", type=int, default=2)
    parser.add_argument("-k", dest="worker_class", choices=["gevent"], default="gevent")
    parser.add_argument("-b", dest="bind", required=True, help="HOST:PORT")
    parser.add_argument("app", choices=["bench.app:app"])
    args = parser.parse_args()
    host, _, port = args.bind.rpartition(":")
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(2048)
    for _ in range(args.workers - 1):
        if os.fork() == 0:
            break
    while True:
        conn, _ = listener.accept()
        gevent.spawn_raw(serve, conn)


if __name__ == "__main__":
    main()
