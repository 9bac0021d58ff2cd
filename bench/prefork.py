"""What the bare reference loops (``reference_sync.py``, ``reference_gevent.py``) share:
the command line the benchmark gives every server, one listening socket, the fork into
worker processes, and the fixed hello response.

The benchmark starts every server as ``<module> -w N -k CLASS -b HOST:PORT bench.app:app``
(``bench/servers.py``); a loop accepts exactly that, for its one class and the bench app
whose routes it mirrors. Its processes are one master and ``N - 1`` forked children, all
accepting on the same socket (the benchmark's ``Server`` stops the whole process group).
A gevent loop imports this module after patching: the socket it makes is then gevent's.
"""

from __future__ import annotations

import argparse
import os
import socket

from bench.app import HELLO


def hello_response(*, close: bool) -> bytes:
    """The response a loop sends for every request, as long as the bench app's hello."""
    connection = b"Connection: close\r\n" if close else b""
    return (
        b"HTTP/1.1 200 OK\r\nServer: reference\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n%s\r\n%s" % (len(HELLO), connection, HELLO)
    )


def listen_and_fork(description: str, worker_class: str) -> socket.socket:
    """Parse the server command line, listen on its address, and fork the other workers.
    Returns the listening socket, in the master and in each child."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-w", dest="workers", type=int, default=2)
    parser.add_argument("-k", dest="worker_class", choices=[worker_class], default=worker_class)
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
    return listener
