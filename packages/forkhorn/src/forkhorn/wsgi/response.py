"""``start_response``, the ``write()`` callable and the HTTP/1.x response serializer.

Strategy: ``start_response`` validates and stores; nothing is sent until the first non-empty
body chunk (or the end of the body), and then the status line, our headers, the app's
headers and that chunk leave in ONE send. Everything per worker (validated header names,
status lines, the Date header of the current second, and whole validated and serialised
header lists, since most apps send the same few again and again) is cached in
``ResponseContext``, bounded.

Invariants:
- status is ``3DIGIT SP reason`` (PEP 3333); header names are tokens; names and values never
  carry CR, LF, NUL or other controls (response splitting); a refusal raises
  ``InvalidResponse`` into the app (the handler answers 500);
- hop-by-hop headers from the app (PEP 3333 forbids them) are dropped, as Gunicorn drops
  them, with a warning once per name per worker: the server frames the response and owns
  the connection. ``Connection: close`` is honoured as a request to close.
- framing: the app's Content-Length (never more body than it: the excess is cut, logged,
  and the connection closed; less than it closes the connection too), else a length we know
  (whole body in hand, or a file), else chunked on HTTP/1.1, else close-delimited;
- no body (and no chunking) for HEAD, 1xx, 204 and 304; no Content-Length on 1xx/204;
- ``Date`` and ``Server`` are ours unless the app gave its own; ``Connection: close`` is
  sent whenever the connection will not be reused;
- a failed send raises ``ClientDisconnected`` and the response is dead from then on;
- ``write_timeout``: a send never blocks on the hot path (the first attempt is
  ``MSG_DONTWAIT``); only when the client's socket buffer is full does the rest go out
  with the socket's timeout set to ``write_timeout``, so a client that stops reading is
  dropped after that long without progress (``ClientDisconnected``; the handler still
  closes the app's iterable).
"""

from __future__ import annotations

import os
import re
import socket
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from forkhorn.http.dates import formatdate
from forkhorn.http.fields import TOKEN_RE
from forkhorn.wsgi.sendfile import poll_writable, sendfile_all

if TYPE_CHECKING:
    from forkhorn.http.request import Request

_STATUS_RE = re.compile(r"[1-9][0-9]{2} [\t\x20-\x7e\x80-\xff]*")
_VALUE_RE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")

# header kinds: what start_response must do with a name besides copying it
_PLAIN, _LENGTH, _CONNECTION, _HOP, _SERVER, _DATE = range(6)
_KINDS = {
    "content-length": _LENGTH,
    "connection": _CONNECTION,
    "keep-alive": _HOP,
    "proxy-authenticate": _HOP,
    "proxy-authorization": _HOP,
    "proxy-connection": _HOP,
    "te": _HOP,
    "trailer": _HOP,
    "trailers": _HOP,
    "transfer-encoding": _HOP,
    "upgrade": _HOP,
    "server": _SERVER,
    "date": _DATE,
}
_CACHE_MAX = 512
#: bodies above this go out with sendmsg (no copy) instead of being joined with the head
_JOIN_MAX = 65536
_MSG_MORE = int(getattr(socket, "MSG_MORE", 0))  # int: enum arithmetic is slow
_DONTWAIT = int(getattr(socket, "MSG_DONTWAIT", 0))
#: the socket class of the sync and gthread workers' connections: the stdlib's (a worker
#: with a class of its own, gevent's or eventlet's, brings its own ``sendfile``)
_PLAIN_SOCKET = socket.socket


class InvalidResponse(ValueError):
    """The app broke a PEP 3333 / HTTP rule in start_response or write (answered with 500)."""


class ClientDisconnected(Exception):
    """Sending to the client failed: it went away. Not an OSError, so app code catching
    OSError around ``write()`` does not hide it."""


class FileWrapper:
    """``wsgi.file_wrapper``: iterates a file in blocks; the handler sends it with
    ``os.sendfile`` when it wraps a real file on a plain socket."""

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        blksize = self.blksize
        while data := read(blksize):
            yield data


def body_bytes(chunk: Any) -> bytes:
    """A body chunk as ``bytes`` (a ``bytearray`` or ``memoryview`` copied); ``TypeError``
    naming the type for anything else, ``str`` most often."""
    if type(chunk) is bytes:
        return chunk
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"body chunks must be bytes, got {type(chunk).__name__}")


def _check_value(name: str, value: Any) -> None:
    if type(value) is not str:
        raise InvalidResponse(f"value of header {name!r} must be a str")
    if not _VALUE_RE.fullmatch(value):
        # the value is left out: it may hold secrets
        raise InvalidResponse(f"invalid characters in the value of header {name!r}")


#: an app's validated header list: (serialised lines, Content-Length or None,
#: add our Server, add our Date, the app asked to close)
HeaderSet = tuple[bytes, "int | None", bool, bool, bool]
_NO_HEADERS: HeaderSet = (b"", None, True, True, False)


def _status_lines(status: str) -> tuple[bytes, bytes]:
    encoded = status.encode("latin-1")
    return b"HTTP/1.1 " + encoded + b"\r\n", b"HTTP/1.0 " + encoded + b"\r\n"


class ResponseContext:
    """What every response of a worker shares; safe to share between threads."""

    def __init__(
        self,
        log: Any,
        *,
        tls: bool,
        server: str = "forkhorn",
        write_timeout: float = 0.0,
        close_at_once: bool = True,
    ) -> None:
        self.log = log
        self.tls = tls
        #: seconds a send may wait for the client to make room (0: no limit)
        self.write_timeout = write_timeout
        #: the first send of a chunk may take MSG_DONTWAIT (not on TLS sockets)
        self.dontwait = 0 if tls else _DONTWAIT
        #: flags of a whole response's one send when the connection closes right after it
        #: (``send_whole(final=True)``): MSG_MORE holds the last segment back until the
        #: close, which then adds its FIN to it, so every closed connection costs one TCP
        #: segment less each way. Not on TLS sockets (they take no flags), nor unless the
        #: close follows at once (``close_at_once``): Linux would hold the segment up to
        #: 200 ms.
        self.closing_flags = _MSG_MORE if close_at_once and not tls else 0
        self.server_header = b"Server: " + server.encode("latin-1") + b"\r\n"
        self.kinds: dict[str, int] = {}
        #: tuple(app's header list) -> its HeaderSet (only for statuses >= 200 but 204,
        #: where the serialisation does not depend on the status)
        self.header_sets: dict[tuple[Any, ...], HeaderSet] = {}
        #: status string -> (code, HTTP/1.1 status line, HTTP/1.0 status line)
        self.statuses: dict[str, tuple[int, bytes, bytes]] = {}
        self._date: tuple[int, bytes] = (0, b"")
        #: hop-by-hop header names the app set and we dropped (each warned about once)
        self.dropped: set[str] = set()

    def drop_hop_by_hop(self, name: str, value: str) -> None:
        """The app set a hop-by-hop header: it is left out of the response (warned once)."""
        lowered = name.lower()
        if lowered not in self.dropped:  # hop-by-hop names are few: the set stays small
            self.dropped.add(lowered)
            self.log.warning(
                "The app set the hop-by-hop header %r (%r); it is dropped: the server frames "
                "the response and owns the connection (PEP 3333). Logged once per worker.",
                name, value[:60],
            )  # fmt: skip

    def date_header(self) -> bytes:
        # one tuple attribute, so a reader in another thread never sees a torn pair
        now = int(time.time())
        cached = self._date
        if cached[0] != now:
            cached = (now, b"Date: " + formatdate(now).encode("ascii") + b"\r\n")
            self._date = cached
        return cached[1]

    def status(self, status: Any) -> tuple[int, bytes, bytes]:
        known = self.statuses.get(status)
        if known is not None:
            return known
        if type(status) is not str:
            raise InvalidResponse(f"status must be a str, got {type(status).__name__}")
        if not _STATUS_RE.fullmatch(status):
            raise InvalidResponse(f"invalid status {status!r}: want '3DIGIT SP reason'")
        known = (int(status[:3]), *_status_lines(status))
        if len(self.statuses) < _CACHE_MAX:
            self.statuses[status] = known
        return known

    def kind(self, name: Any) -> int:
        kind = self.kinds.get(name)
        if kind is not None:
            return kind
        if type(name) is not str:
            raise InvalidResponse(f"header name must be a str, got {type(name).__name__}")
        if not TOKEN_RE.fullmatch(name):
            raise InvalidResponse(f"invalid header name {name!r}")
        kind = _KINDS.get(name.lower(), _PLAIN)
        if len(self.kinds) < _CACHE_MAX:
            self.kinds[name] = kind
        return kind


class Response:
    """One response: the app's ``start_response``/``write`` and the bytes on the wire."""

    # Class-level defaults: a response sets only what differs (fewer stores per request).
    status: str | None = None
    status_code = 0
    #: the app's headers as given (for the access log and post_request)
    headers: list[tuple[str, str]] = []  # never mutated: replaced per response
    _headset = _NO_HEADERS
    #: header lines we add to the app's (a Content-Length we know)
    _extra_headers = b""
    _status_lines = b""
    content_length: int | None = None
    headers_sent = False
    chunked = False
    omit_body = False
    #: body bytes sent (payload, without chunk framing)
    sent = 0
    _cut = False

    def __init__(self, ctx: ResponseContext, sock: Any, req: Request, keep_alive: bool,
                 inp: Any) -> None:  # fmt: skip
        self.ctx = ctx
        self.sock = sock
        self.req = req
        #: may the connection carry another request (decided for good when the head is sent)
        self.keep_alive = keep_alive
        self.inp = inp

    # -- Gunicorn's names, for post_request hooks written for it --------------------------

    @property
    def response_length(self) -> int | None:
        """The Content-Length the response was given (None: none)."""
        return self.content_length

    def should_close(self) -> bool:
        """The connection closes after this response."""
        return not self.keep_alive

    # -- the WSGI side ------------------------------------------------------------------

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called twice without exc_info")
        ctx = self.ctx
        code, line11, line10 = ctx.statuses.get(status) or ctx.status(status)
        if type(headers) is not list:
            headers = list(headers)
        headset = None
        key = None
        if code >= 200 and code != 204:
            try:
                key = tuple(headers)
                headset = ctx.header_sets.get(key)
            except TypeError:
                key = None  # unhashable items: validated (and refused) below
        if headset is None:
            headset = self._process_headers(code, headers)
            if key is not None and len(ctx.header_sets) < _CACHE_MAX:
                ctx.header_sets[key] = headset
        self.headers = headers
        self._headset = headset
        self.content_length = headset[1]
        if headset[4]:
            self.keep_alive = False
        self.status = status
        self.status_code = code
        req = self.req
        self._status_lines = line11 if req.version >= (1, 1) else line10
        self.omit_body = req.method == "HEAD" or code < 200 or code in (204, 304)
        return self.write

    def _process_headers(self, code: int, headers: Iterable[tuple[str, str]]) -> HeaderSet:
        """Validate the app's header list; returns its ``HeaderSet``."""
        kind_of = self.ctx.kind
        kinds = self.ctx.kinds
        lines = []
        length: int | None = None
        own_server = own_date = True
        close = False
        for name, value in headers:
            kind = kinds.get(name)
            if kind is None:
                kind = kind_of(name)
            # fast path: printable ASCII; else the full rule (HTAB and obs-text allowed)
            if not (type(value) is str and value.isascii() and value.isprintable()):
                _check_value(name, value)
            if kind:
                value = value.strip(" \t")
                if kind == _LENGTH:
                    if not (value.isdigit() and value.isascii()):
                        raise InvalidResponse(f"invalid Content-Length {value!r}")
                    if length is not None and length != int(value):
                        raise InvalidResponse("two different Content-Length headers")
                    length = int(value)
                    if code < 200 or code == 204:
                        continue  # RFC 9110 8.6: never on 1xx/204
                elif kind == _CONNECTION:
                    tokens = {t.strip().lower() for t in value.split(",")}
                    if not tokens <= {"close", "keep-alive"}:
                        self.ctx.drop_hop_by_hop(name, value)
                    close = close or "close" in tokens
                    continue  # we write our own Connection header
                elif kind == _HOP:
                    self.ctx.drop_hop_by_hop(name, value)
                    continue
                elif kind == _SERVER:
                    own_server = False
                else:
                    own_date = False
            lines.append(f"{name}: {value}\r\n")
        return "".join(lines).encode("latin-1"), length, own_server, own_date, close

    def write(self, data: bytes) -> None:
        """The ``write()`` callable, and how the handler sends each body chunk."""
        if type(data) is not bytes:
            data = body_bytes(data)
        if not self.headers_sent:
            if not data:
                return
            self._send(self._head(), self._frame(data))
        elif data:
            self._send(b"", self._frame(data))

    # -- the handler side ---------------------------------------------------------------

    def send_whole(self, body: bytes, final: bool = False) -> None:
        """Send ``body`` as the complete response body: its length is known. ``final``: the
        caller does nothing but close the connection after this send, if it is to close
        (see ``ResponseContext.closing_flags``)."""
        if self.headers_sent:
            if body:
                self._send(b"", self._frame(body))
            return
        if self.content_length is None:
            self._set_length(len(body))
        head = self._head()
        if self.omit_body:
            body = b""
        elif self.content_length != len(body) or self.chunked:
            body = self._frame(body)  # cut to Content-Length, or chunk-framed
        else:
            self.sent = len(body)
        self._send(head, body, self.ctx.closing_flags if final and not self.keep_alive else 0)

    def finish(self) -> None:
        """End the body: send the head if it never went, the last chunk, check the length."""
        if not self.headers_sent:
            if self.status is None:
                raise AssertionError("the app returned without calling start_response")
            self.send_whole(b"")
            return
        if self.chunked:
            self._send(b"", b"0\r\n\r\n")
        elif (
            self.content_length is not None
            and self.sent < self.content_length
            and not self.omit_body
        ):
            self.keep_alive = False
            req = self.req
            self.ctx.log.warning(
                "%s %s: the app sent %d body bytes of the %d its Content-Length announced;"
                " closing the connection", req.method, req.path, self.sent, self.content_length,
            )  # fmt: skip

    def send_file(self, wrapper: FileWrapper) -> bool:
        """Send a ``FileWrapper`` over a regular file with ``sendfile``. False: not possible
        here (TLS, no fileno, not a regular file, chunked already), iterate instead."""
        if self.ctx.tls or self.chunked:
            return False
        try:
            fd = wrapper.filelike.fileno()
            info = os.fstat(fd)
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        except (AttributeError, OSError, ValueError):
            return False
        if not stat.S_ISREG(info.st_mode):
            return False
        nbytes = max(info.st_size - offset, 0)
        if self.content_length is not None:
            nbytes = min(nbytes, self.content_length - self.sent)
        elif not self.headers_sent:
            self._set_length(nbytes, of_representation=True)
        elif not self.omit_body:
            return False  # close-delimited after write(): plain reads are just as good
        if not self.headers_sent:
            head = self._head()
            if self.omit_body or not nbytes:
                self._send(head, b"")
                return True
            self._send(head, b"", _MSG_MORE)
        if self.omit_body or not nbytes:
            return True
        self.sent += nbytes
        sock = self.sock
        timeout = self.ctx.write_timeout
        saved = sock.gettimeout()
        if timeout:
            # sendfile then waits for room at most write_timeout at a time
            sock.settimeout(timeout if saved is None else min(timeout, saved))
        try:
            if type(sock) is _PLAIN_SOCKET:  # sync, gthread
                wait = partial(poll_writable, timeout=sock.gettimeout())
                sendfile_all(sock, wrapper.filelike, offset, nbytes, wait)
            else:  # a worker's own socket class brings its (cooperative) sendfile
                sock.sendfile(wrapper.filelike, offset, nbytes)
        except OSError as exc:
            self.keep_alive = False
            raise ClientDisconnected(_send_failure(exc, timeout)) from exc
        finally:
            if timeout:
                sock.settimeout(saved)
        return True

    # -- serialization ------------------------------------------------------------------

    def _set_length(self, length: int, *, of_representation: bool = False) -> None:
        """Announce a length we know. A HEAD response gets one only when it is the length
        of what GET would send (a file), never the length of the empty HEAD body."""
        code = self.status_code
        if code < 200 or code in (204, 304) or (self.omit_body and not of_representation):
            return
        self.content_length = length
        self._extra_headers = b"Content-Length: %d\r\n" % length

    def _head(self) -> bytes:
        if self.status is None:
            raise AssertionError("write() before start_response()")
        req = self.req
        keep = self.keep_alive
        framing = b""
        if not self.omit_body and self.content_length is None:
            if req.version >= (1, 1):
                self.chunked = True
                framing = b"Transfer-Encoding: chunked\r\n"
            else:
                keep = False
        if keep and self.inp.awaiting_continue:
            keep = False  # the client still waits to send a body nobody asked for
        self.keep_alive = keep
        if not keep:
            connection = b"Connection: close\r\n"
        elif req.version < (1, 1):
            connection = b"Connection: keep-alive\r\n"
        else:
            connection = b""
        ctx = self.ctx
        headset = self._headset
        return b"".join(
            (
                self._status_lines,
                ctx.server_header if headset[2] else b"",
                ctx.date_header() if headset[3] else b"",
                connection,
                framing,
                headset[0],
                self._extra_headers,
                b"\r\n",
            )
        )

    def _frame(self, data: bytes) -> bytes:
        if self.omit_body:
            return b""
        length = self.content_length
        if length is not None:
            room = length - self.sent
            if len(data) > room:
                data = data[:room]
                self.keep_alive = False
                if not self._cut:
                    self._cut = True
                    self.ctx.log.warning(
                        "%s %s: the app sent more than its Content-Length (%d); body cut,"
                        " connection closed", self.req.method, self.req.path, length,
                    )  # fmt: skip
            self.sent += len(data)
            return data
        self.sent += len(data)
        if self.chunked and data:
            return b"%X\r\n%b\r\n" % (len(data), data)
        return data

    def _send(self, head: bytes, body: bytes, flags: int = 0) -> None:
        # marked sent before the call: after a partial send nothing else may be written
        self.headers_sent = True
        sock = self.sock
        dontwait = self.ctx.dontwait
        try:
            if len(body) <= _JOIN_MAX or not dontwait:
                data = head + body if head else body
                sent = 0
                if dontwait:
                    try:
                        sent = sock.send(data, flags | dontwait)
                    except BlockingIOError:
                        pass  # the client's buffer is full: wait below
                if sent < len(data):
                    self._send_waiting(memoryview(data)[sent:], flags)
            else:
                # a large body: no copy to join it with the head
                sent = 0
                if head:
                    try:
                        sent = sock.sendmsg([head, body], (), flags | dontwait)
                    except BlockingIOError:
                        pass
                if sent < len(head):
                    self._send_waiting(memoryview(head)[sent:], flags)
                    sent = len(head)
                self._send_waiting(memoryview(body)[sent - len(head) :], flags)
        except OSError as exc:
            self.keep_alive = False
            raise ClientDisconnected(_send_failure(exc, self.ctx.write_timeout)) from exc

    def _send_waiting(self, view: memoryview, flags: int) -> None:
        """Send all of ``view``, each wait for room bounded by ``write_timeout``."""
        sock = self.sock
        timeout = self.ctx.write_timeout
        saved = sock.gettimeout()
        if timeout:
            sock.settimeout(timeout if saved is None else min(timeout, saved))
        try:
            while view:
                view = view[sock.send(view, flags) :]
        finally:
            if timeout:
                sock.settimeout(saved)


def _send_failure(exc: OSError, write_timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"the client read nothing for write_timeout ({write_timeout:g}s)"
    return str(exc)
