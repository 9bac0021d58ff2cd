"""The connection socket's fast paths keep eventlet's semantics and save the failing recv.

Run in a subprocess: the socket class is built after patching (on the worker's hub), and
the test process itself must stay unpatched.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import server_env

CHECKS = r"""
import eventlet
eventlet.monkey_patch()
from eventlet.patcher import original
from forkhorn.testing.sockets import (
    RecvSpy, check_nonblocking_recv_raises, check_recv_waits_after_each_response,
)
from forkhorn_eventlet import patching
patching.after_fork_in_child()  # the hub a worker runs
from forkhorn_eventlet.worker import _make_socket_class

Sock = _make_socket_class()
a, b = original("socket").socketpair()
ours, peer = Sock(a), Sock(b)
ours.fd = spy = RecvSpy(ours.fd)  # ours's OS socket, counting the recvs that fail


def answer():
    eventlet.sleep(0.05)
    peer.sendall(b"next request")


# nothing sent yet: recv waits cooperatively (through eventlet's own loop)
eventlet.spawn(answer)
assert ours.recv(100) == b"next request"

check_recv_waits_after_each_response(ours, peer, spy, lambda: eventlet.spawn(answer))
check_nonblocking_recv_raises(ours)
print("ok")
"""


def test_send_and_recv_fast_paths_keep_eventlet_semantics() -> None:
    result = subprocess.run([sys.executable, "-c", CHECKS], env=server_env(),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
