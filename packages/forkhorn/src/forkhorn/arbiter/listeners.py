"""Listening sockets: bind them, adopt inherited ones, close them without losing a connection.

Theory of operation
-------------------
The master binds every ``bind`` address before forking; workers share the sockets (the
same open file description), so the kernel queues connections for all of them. Sockets
come from one of three places, in this order of precedence:

1. ``FORKHORN_FD`` (a comma list of fds): we are a master re-exec'd on USR2 by an old master
   that still holds the same sockets. ``FORKHORN_FD_EXTERNAL`` names the ones that were not
   bound by us (systemd, ``fd://``) so their ownership survives the re-exec.
2. ``LISTEN_FDS``/``LISTEN_PID`` (systemd socket activation): fds 3.. 3+N-1.
3. ``bind``: ``HOST:PORT``, ``[IPV6]:PORT``, ``unix:PATH``, ``fd://N``. Default
   ``127.0.0.1:8000``, or ``0.0.0.0:$PORT`` when ``PORT`` is set.

Invariants
----------
* Every socket is close-on-exec (non-inheritable) and non-blocking; an fd is made
  inheritable only in the child that execs a new master.
* ``owned`` is true for sockets this master lineage bound itself: only those may be closed to
  new connections while the backlog drains (``stop_accepting``), and only owned unix sockets
  are unlinked at exit. Sockets systemd or another process gave us are left untouched: their
  owner may keep them listening.
* ``stop_accepting`` keeps the accept queue intact: TCP gets a socket filter that drops new
  SYNs (the handshake of a new client never completes, so it is later refused, never reset);
  a unix socket is unlinked (new clients get ENOENT). Workers then drain what is queued.
* ``reuse_port``: each worker also opens a listening socket of its own on every shared TCP
  address (``open_worker_listeners``), so the kernel balances connections across workers.
  The master's shared socket stays open and listening: it keeps the address and the
  ``SO_REUSEPORT`` group alive across worker restarts, HUP and USR2 (the group is never
  empty, so the port cannot be taken meanwhile), and workers accept from it too, so what
  the kernel queues there is never stranded.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct
import time
from typing import Any

ENV_FDS = "FORKHORN_FD"
ENV_EXTERNAL_FDS = "FORKHORN_FD_EXTERNAL"
SD_LISTEN_FDS_START = 3
DEFAULT_PORT = 8000
# SO_ATTACH_FILTER from <asm-generic/socket.h>; the socket module does not export it.
_SO_ATTACH_FILTER = 26
_BIND_RETRY_DELAY = 0.5

Address = Any  # (host, port) | (host, port, flow, scope) | str path | int fd


class ListenerError(Exception):
    """A listener could not be created. The message is the one line the user sees."""


class Listener:
    """One listening socket and how it is shown to the operator."""

    def __init__(
        self, sock: socket.socket, *, owned: bool, tls: bool = False, address: Address = None
    ) -> None:
        self.sock = sock
        self.owned = owned
        self.tls = tls
        self.address: Address = address if address is not None else sock.getsockname()
        self._unix_identity: tuple[int, int] | None = None
        if self.is_unix and isinstance(self.address, str):
            try:
                st = os.stat(self.address)
                self._unix_identity = (st.st_dev, st.st_ino)
            except OSError:
                pass
        sock.set_inheritable(False)
        sock.setblocking(False)

    @property
    def is_unix(self) -> bool:
        return self.sock.family == socket.AF_UNIX

    def fileno(self) -> int:
        return self.sock.fileno()

    def __getattr__(self, name: str) -> Any:
        # the socket's own methods (getsockname, ...), as Gunicorn's listeners offer them
        if name == "sock":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.sock, name)

    def __str__(self) -> str:
        if self.is_unix:
            path = self.address
            if isinstance(path, bytes):
                path = path.decode("utf-8", "replace")
            return f"unix:{path}"
        scheme = "https" if self.tls else "http"
        host, port = self.address[0], self.address[1]
        if self.sock.family == socket.AF_INET6:
            return f"{scheme}://[{host}]:{port}"
        return f"{scheme}://{host}:{port}"

    def __repr__(self) -> str:
        return f"<Listener {self} fd={self.sock.fileno()} owned={self.owned}>"

    def stop_accepting(self) -> None:
        """Refuse new connections while keeping the ones already queued (owned sockets only)."""
        if not self.owned:
            return
        if self.is_unix:
            self._unlink_path()
        else:
            _attach_drop_filter(self.sock)

    def close(self, unlink: bool) -> None:
        if unlink and self.owned and self.is_unix:
            self._unlink_path()
        try:
            self.sock.close()
        except OSError:
            pass

    def _unlink_path(self) -> None:
        """Unlink our unix socket path, but never a newer socket that replaced it."""
        path = self.address
        if not isinstance(path, str) or not path or path.startswith("\0"):
            return
        try:
            st = os.stat(path)
            if self._unix_identity is None or (st.st_dev, st.st_ino) == self._unix_identity:
                os.unlink(path)
        except OSError:
            pass


#: classic BPF, run by TCP on a listener with the data at the TCP header:
#: ``ldb [13]`` (the flags byte); ``jset #SYN`` -> ``ret #0`` (drop); else ``ret #-1`` (keep)
_DROP_SYN_PROGRAM = (
    struct.pack("=HBBI", 0x30, 0, 0, 13)
    + struct.pack("=HBBI", 0x45, 0, 1, 0x02)
    + struct.pack("=HBBI", 0x06, 0, 0, 0)
    + struct.pack("=HBBI", 0x06, 0, 0, 0xFFFFFFFF)
)


def _attach_drop_filter(sock: socket.socket) -> None:
    """A classic BPF program that drops SYNs: new clients are ignored (their SYN is
    retransmitted, and goes to another socket of a ``SO_REUSEPORT`` group once this one is
    closed) while established-but-unaccepted connections stay queued for accept(), and a
    handshake already half-way (its final ACK passes) still completes into the queue."""
    # ctypes only here (drain at shutdown): a module-level import put _ctypes/libffi in
    # the master and every worker although nothing else uses it.
    import ctypes

    instruction = ctypes.create_string_buffer(_DROP_SYN_PROGRAM)
    program = struct.pack("@HP", len(_DROP_SYN_PROGRAM) // 8, ctypes.addressof(instruction))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, program)
    except OSError:
        pass  # not Linux: the drain then races with new arrivals, as in other servers


# --- parsing addresses ---------------------------------------------------------------


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """``unix:PATH`` -> str, ``fd://N`` -> int, else ``(host, port)``. ValueError if invalid."""
    text = text.strip()
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError(f"{text!r}: empty unix socket path")
        return path
    if text.startswith("fd://"):
        try:
            return int(text[len("fd://") :])
        except ValueError:
            raise ValueError(f"{text!r} is not a valid file descriptor") from None
    if text.startswith("tcp://"):
        text = text[len("tcp://") :]
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"{text!r}: missing ']' after the IPv6 address")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        raise ValueError(f"{text!r}: write IPv6 addresses in brackets, e.g. [::1]:8000")
    else:
        host, port_text = text, ""
    host = host.lower() or "0.0.0.0"
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{port_text!r} is not a valid port number")
    return host, int(port_text)


def default_binds(environ: os._Environ[str] | dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    port = env.get("PORT")
    return [f"0.0.0.0:{port}"] if port else [f"127.0.0.1:{DEFAULT_PORT}"]


# --- creating and adopting sockets ---------------------------------------------------


def create_listeners(cfg: Any, log: Any) -> list[Listener]:
    """The master's listeners: inherited ones if any, else bound from ``cfg.bind``.

    Raises ``ListenerError`` with one line for the operator (address in use, bad address...).
    Consumes ``FORKHORN_FD*`` and ``LISTEN_*`` from the environment so workers and the app
    never see them.
    """
    tls = bool(getattr(cfg, "certfile", None))
    inherited = _from_forkhorn_fd(tls)
    if inherited is None:
        inherited = _from_systemd(tls, log)
    if inherited is not None:
        return inherited
    binds = list(getattr(cfg, "bind", None) or []) or default_binds()
    listeners: list[Listener] = []
    try:
        for text in binds:
            listeners.append(_create_one(text, cfg, tls, log))
    except BaseException:
        for listener in listeners:
            listener.close(unlink=True)
        raise
    return listeners


def _adopt_fd(fd: int, *, owned: bool, tls: bool) -> Listener:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ListenerError(f"fd {fd} is not a usable socket: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise ListenerError(f"fd {fd} is not a stream socket")
    return Listener(sock, owned=owned, tls=tls)


def _parse_fd_list(text: str, name: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ListenerError(f"{name}={text!r} is not a comma-separated list of fds") from None


def _from_forkhorn_fd(tls: bool) -> list[Listener] | None:
    text = os.environ.pop(ENV_FDS, None)
    external = set(_parse_fd_list(os.environ.pop(ENV_EXTERNAL_FDS, ""), ENV_EXTERNAL_FDS))
    if not text:
        return None
    return [
        _adopt_fd(fd, owned=fd not in external, tls=tls) for fd in _parse_fd_list(text, ENV_FDS)
    ]


def _from_systemd(tls: bool, log: Any) -> list[Listener] | None:
    pid_text = os.environ.get("LISTEN_PID")
    count_text = os.environ.get("LISTEN_FDS")
    if not pid_text or not count_text:
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    if not pid_text.isdigit() or int(pid_text) != os.getpid():
        return None  # meant for another process (e.g. our parent)
    if not count_text.isdigit() or int(count_text) < 1:
        return None
    fds = range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count_text))
    log.debug("Using %d socket(s) from systemd socket activation", len(fds))
    return [_adopt_fd(fd, owned=False, tls=tls) for fd in fds]


def _create_one(text: str, cfg: Any, tls: bool, log: Any) -> Listener:
    try:
        address = parse_address(text)
    except ValueError as exc:
        raise ListenerError(f"Invalid bind address: {exc}") from None
    if isinstance(address, int):
        return _adopt_fd(address, owned=False, tls=tls)
    if isinstance(address, str):
        return _bind_unix(address, cfg, log)
    return _bind_tcp(address, cfg, tls, log)


def _bind_tcp(address: tuple[str, int], cfg: Any, tls: bool, log: Any) -> Listener:
    host, port = address
    try:
        # An ASCII host goes as bytes: a str host makes getaddrinfo encode it with the
        # "idna" codec, which imports encodings.idna, stringprep and unicodedata at start-up.
        query: str | bytes = host.encode("ascii") if host.isascii() else host
        infos = socket.getaddrinfo(query, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenerError(f"Invalid bind address {host!r}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    shown = (host, port)
    for attempt in (1, 2):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if getattr(cfg, "reuse_port", False) and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(sockaddr)
            sock.listen(int(getattr(cfg, "backlog", 2048)))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE and attempt == 1:
                # A previous server may be releasing the port: one short retry, no noise.
                log.debug("Connection in use: %s, retrying once", shown)
                time.sleep(_BIND_RETRY_DELAY)
                continue
            if exc.errno == errno.EADDRINUSE:
                raise ListenerError(f"Connection in use: {shown}") from None
            raise ListenerError(f"Can't bind to {shown}: {exc.strerror}") from None
        return Listener(sock, owned=True, tls=tls)
    raise AssertionError("unreachable")


def open_worker_listeners(shared: list[Listener], cfg: Any, log: Any) -> list[Listener]:
    """``reuse_port``: in a worker (after fork, before dropping privileges, since the kernel
    only lets sockets of one effective uid share a port), one more listening socket of its
    own on the address of each shared TCP listener that has ``SO_REUSEPORT``. The kernel then
    balances new connections across the workers' sockets (and the shared one).

    A shared listener without ``SO_REUSEPORT`` (systemd or ``fd://`` without it,
    ``reuse_port`` switched on by a HUP) gets none: binding next to it would fail. A failure
    is logged and the worker serves the shared sockets only.
    """
    reuseport = getattr(socket, "SO_REUSEPORT", None)
    if reuseport is None:
        return []
    backlog = int(getattr(cfg, "backlog", 2048))
    own: list[Listener] = []
    for listener in shared:
        sock = listener.sock
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            continue
        try:
            if not sock.getsockopt(socket.SOL_SOCKET, reuseport):
                continue
            address = sock.getsockname()
        except OSError:
            continue
        new = socket.socket(sock.family, socket.SOCK_STREAM)  # close-on-exec
        try:
            new.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            new.setsockopt(socket.SOL_SOCKET, reuseport, 1)
            if sock.family == socket.AF_INET6:
                v6only = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
                new.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
            new.bind(address)
            new.listen(backlog)
        except OSError as exc:
            new.close()
            log.warning("reuse_port: no socket of its own on %s for this worker (%s); "
                        "it accepts on the shared one", listener, exc.strerror)  # fmt: skip
            continue
        own.append(Listener(new, owned=True, tls=listener.tls))
    return own


def _bind_unix(path: str, cfg: Any, log: Any) -> Listener:
    _remove_stale_unix_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(int(getattr(cfg, "umask", 0) or 0))
    try:
        sock.bind(path)
        sock.listen(int(getattr(cfg, "backlog", 2048)))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenerError(f"Connection in use: {path}") from None
        raise ListenerError(f"Can't bind to unix:{path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    _chown_to_workers(path, cfg, log)
    return Listener(sock, owned=True, address=path)


def _remove_stale_unix_socket(path: str) -> None:
    """Remove a socket file nobody listens on; refuse to steal one a live server uses."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ListenerError(f"Can't bind to unix:{path}: {exc.strerror}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise ListenerError(f"Can't bind to unix:{path}: the path exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody accepts there: a stale file from a crashed server
        return
    finally:
        probe.close()
    raise ListenerError(f"Connection in use: {path}")


def _chown_to_workers(path: str, cfg: Any, log: Any) -> None:
    user = getattr(cfg, "user", None)
    group = getattr(cfg, "group", None)
    if user is None and group is None:
        return
    from forkhorn.config.validators import group_id, user_id

    try:
        uid, gid = user_id(user), group_id(group)
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    except (OSError, ValueError) as exc:
        log.warning("Could not change the owner of %s: %s", path, exc)


def inheritable_env(listeners: list[Listener]) -> dict[str, str]:
    """The environment a re-exec'd master needs to adopt ``listeners`` (fds made inheritable
    by the caller, in the child that execs)."""
    env = {ENV_FDS: ",".join(str(listener.fileno()) for listener in listeners)}
    external = [str(listener.fileno()) for listener in listeners if not listener.owned]
    if external:
        env[ENV_EXTERNAL_FDS] = ",".join(external)
    return env
