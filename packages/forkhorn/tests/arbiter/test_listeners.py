"""Listeners: address parsing, binding, inheritance (systemd, fd://), and their errors."""

from __future__ import annotations

import os
import signal
import socket
import sys

import pytest
from conftest import free_port, http_get, wait_for
from forkhorn.arbiter.listeners import (
    Listener,
    ListenerError,
    create_listeners,
    inheritable_env,
    parse_address,
)
from forkhorn.config import Config


class _Log:
    def debug(self, *args: object) -> None:
        pass

    warning = info = error = debug


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("localhost", ("localhost", 8000)),
        (":9000", ("0.0.0.0", 9000)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", 8000)),
        ("tcp://Example.COM:81", ("example.com", 81)),
        ("unix:/tmp/x.sock", "/tmp/x.sock"),
        ("unix:///tmp/x.sock", "/tmp/x.sock"),
        ("fd://3", 3),
    ],
)
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["::1:80", "host:port", "[::1", "fd://x", "unix:", "h:70000"])
def test_parse_address_rejects(text):
    with pytest.raises(ValueError):
        parse_address(text)


def _cfg(*binds: str) -> Config:
    cfg = Config()
    cfg.set("bind", list(binds))
    return cfg


def test_tcp_ipv6_and_unix_listeners(tmp_path):
    path = tmp_path / "s.sock"
    listeners = create_listeners(_cfg("127.0.0.1:0", "[::1]:0", f"unix:{path}"), _Log())
    try:
        tcp, tcp6, unix = listeners
        assert str(tcp).startswith("http://127.0.0.1:")
        assert str(tcp6).startswith("http://[::1]:")
        assert str(unix) == f"unix:{path}"
        for listener in listeners:
            assert listener.owned
            assert not listener.sock.get_inheritable()
            assert not listener.sock.getblocking()
    finally:
        for listener in listeners:
            listener.close(unlink=True)
    assert not path.exists()


def test_stale_unix_socket_is_replaced_but_a_live_one_is_not(tmp_path):
    path = str(tmp_path / "s.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens
    (listener,) = create_listeners(_cfg(f"unix:{path}"), _Log())
    try:
        with pytest.raises(ListenerError, match="Connection in use"):
            create_listeners(_cfg(f"unix:{path}"), _Log())
    finally:
        listener.close(unlink=True)


def test_stop_accepting_keeps_queued_connections_and_refuses_new_ones():
    (listener,) = create_listeners(_cfg("127.0.0.1:0"), _Log())
    port = listener.address[1]
    try:
        queued = socket.create_connection(("127.0.0.1", port), timeout=2)
        listener.stop_accepting()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.3)
        accepted, _ = listener.sock.accept()
        accepted.close()
        queued.close()
    finally:
        listener.close(unlink=True)


def test_inheritable_env_marks_external_sockets():
    sock = socket.socket()
    try:
        owned = Listener(sock, owned=True, address=("127.0.0.1", 1))
        env = inheritable_env([owned])
        assert env == {"FORKHORN_FD": str(sock.fileno())}
        external = Listener(sock, owned=False, address=("127.0.0.1", 1))
        assert inheritable_env([external])["FORKHORN_FD_EXTERNAL"] == str(sock.fileno())
    finally:
        sock.close()


def test_port_in_use_exits_1_with_one_line(start_server):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = start_server(port=port, wait=False)
        assert server.wait_exit(10) == 1
    log = server.log()
    assert "Traceback" not in log
    errors = [line for line in log.splitlines() if "[ERROR]" in line]
    assert errors == [errors[0]] and errors[0].endswith(f"Connection in use: ('127.0.0.1', {port})")


def test_unix_socket_is_served_and_removed_on_exit(start_server, tmp_path):
    path = tmp_path / "app.sock"
    server = start_server("-b", f"unix:{path}", bind=False, wait=False)
    wait_for(path.exists, 10, "the unix socket")

    def get() -> bytes:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(path))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

    wait_for(lambda: get().startswith(b"HTTP/1.1 200"), 10, "an answer on the unix socket")
    server.kill(signal.SIGTERM)
    assert server.wait_exit(10) == 0
    assert not path.exists()


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def test_fd_bind_uses_an_inherited_socket(start_server):
    sock = _listening_socket()
    port = sock.getsockname()[1]
    os.set_inheritable(sock.fileno(), True)
    server = start_server(
        "-b", f"fd://{sock.fileno()}", bind=False, port=port, pass_fds=(sock.fileno(),)
    )
    sock.close()
    assert f"Listening at: http://127.0.0.1:{port}" in server.log()
    server.kill(signal.SIGTERM)
    assert server.wait_exit(10) == 0


SYSTEMD_WRAPPER = (
    "import os, sys; fd = int(sys.argv[1]); os.dup2(fd, 3); os.close(fd);"
    "os.environ['LISTEN_PID'] = str(os.getpid()); os.environ['LISTEN_FDS'] = '1';"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


@pytest.mark.parametrize("abstract", [False, True])
def test_systemd_socket_activation_and_sd_notify(start_server, tmp_path, abstract):
    sock = _listening_socket()
    port = sock.getsockname()[1]
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"@forkhorn-test-{os.getpid()}-{port}"
        notify.bind("\0" + name[1:])
    else:
        name = str(tmp_path / "notify.sock")
        notify.bind(name)
    notify.settimeout(10)
    command = [sys.executable, "-c", SYSTEMD_WRAPPER, str(sock.fileno()), "-m", "forkhorn"]
    server = start_server(
        bind=False,
        port=port,
        pass_fds=(sock.fileno(),),
        command=command,
        env={"NOTIFY_SOCKET": name},
        workers=2,
    )
    sock.close()
    messages: list[str] = []
    while not any("READY=1" in m for m in messages):
        messages.append(notify.recv(4096).decode())
    assert http_get(port)[0] == 200
    server.kill(signal.SIGTERM)
    assert server.wait_exit(10) == 0
    while not any("STOPPING=1" in m for m in messages):
        messages.append(notify.recv(4096).decode())
    notify.close()
    # systemd owns the socket: we must not have closed it to new connections for good
    assert f"Listening at: http://127.0.0.1:{port}" in server.log()


def test_port_env_default_bind_used_when_no_bind(start_server):
    port = free_port()
    server = start_server(bind=False, port=port, env={"PORT": str(port)})
    assert f"Listening at: http://0.0.0.0:{port}" in server.log()
