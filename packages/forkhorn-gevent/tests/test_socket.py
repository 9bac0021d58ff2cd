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
from forkhorn_gevent.worker import _make_socket_class

Sock = _make_socket_class()
a, b = socket.socketpair()
ours = Sock(a.family, a.type, a.proto, fileno=a.detach())
peer = Sock(b.family, b.type, b.proto, fileno=b.detach())

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

# nothing sent, nothing there: recv still waits cooperatively
gevent.spawn(answer)
assert ours.recv(100) == b"next request"

# a non-blocking socket (timeout 0) still raises at once
ours.settimeout(0)
try:
    ours.recv(100)
except BlockingIOError:
    pass
else:
    raise AssertionError("no BlockingIOError")
reader.kill()

# after a response leaves through sendmsg (a large body goes out as [head, body]), recv
# waits for the answer first too: no recv fails (EAGAIN) before it. A spy on the OS
# socket counts the failures.
class Spy:
    def __init__(self, sock):
        self.sock, self.failed = sock, 0
    def recv(self, *args):
        try:
            return self.sock.recv(*args)
        except BlockingIOError:
            self.failed += 1
            raise
    def __getattr__(self, name):
        return getattr(self.sock, name)

c, d = socket.socketpair()
ours = Sock(c.family, c.type, c.proto, fileno=c.detach())
peer = Sock(d.family, d.type, d.proto, fileno=d.detach())
ours._sock = spy = Spy(ours._sock)
assert ours.sendmsg([b"head", b"body"]) == 8
gevent.spawn(answer)
assert ours.recv(100) == b"next request"
assert spy.failed == 0, spy.failed
print("ok")
"""


def test_send_and_recv_fast_paths_keep_gevent_semantics() -> None:
    result = subprocess.run([sys.executable, "-c", CHECKS], env=server_env(),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
