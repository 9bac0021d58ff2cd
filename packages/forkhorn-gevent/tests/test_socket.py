"""The connection socket's fast paths keep gevent's semantics.

Run in a subprocess: the socket class is built after patching, and the test process
itself must stay unpatched.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import server_env

CHECKS = r"""
import socket, gevent
from gevent import monkey
monkey.patch_all()
from forkhorn.testing.sockets import (
    RecvSpy, check_nonblocking_recv_raises, check_recv_waits_after_each_response,
)
from forkhorn_gevent.worker import _make_socket_class

Sock = _make_socket_class()


def pair():
    # ours (its OS socket under a spy counting the recvs that fail) and its peer
    a, b = socket.socketpair()
    ours = Sock(a.family, a.type, a.proto, fileno=a.detach())
    ours._sock = spy = RecvSpy(ours._sock)
    return ours, Sock(b.family, b.type, b.proto, fileno=b.detach()), spy


ours, peer, spy = pair()

# send(MSG_DONTWAIT) on a full buffer raises instead of waiting: the handler then waits
# itself, under its write_timeout
chunk = b"x" * 65536
try:
    while True:
        assert ours.send(chunk, socket.MSG_DONTWAIT) > 0
except BlockingIOError:
    pass
else:
    raise AssertionError("no BlockingIOError")

# a plain send on a full buffer waits for room, cooperatively
def drain():
    gevent.sleep(0.05)
    while True:
        peer.recv(1 << 20)
reader = gevent.spawn(drain)
assert ours.send(chunk) > 0

# after a send, recv waits for the answer (and gets it) instead of failing
def answer():
    gevent.sleep(0.05)
    peer.sendall(b"next request")
gevent.spawn(answer)
assert ours.recv(100) == b"next request"
assert spy.failed == 0, spy.failed

# nothing sent, nothing there: recv still waits cooperatively
gevent.spawn(answer)
assert ours.recv(100) == b"next request"

check_nonblocking_recv_raises(ours)
reader.kill()

ours, peer, spy = pair()
check_recv_waits_after_each_response(ours, peer, spy, lambda: gevent.spawn(answer))
print("ok")
"""


def test_send_and_recv_fast_paths_keep_gevent_semantics() -> None:
    result = subprocess.run([sys.executable, "-c", CHECKS], env=server_env(),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
