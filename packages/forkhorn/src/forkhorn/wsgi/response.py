"""``start_response``, the ``write()`` callable and the HTTP/1.x response serializer.

Strategy: ``start_response`` validates and stores; nothing is sent until the first non-empty
body chunk (or the end of the body), and then the status line, our headers, the app's
headers and that chunk leave in ONE send. Everything per worker (validated header names,
status lines, the Date header of the current second) is cached in ``ResponseContext``.

Invariants:
- status is ``3DIGIT SP reason`` (PEP 3333); header names are tokens; names and values never
  carry CR, LF, NUL or other controls (response splitting); hop-by-hop headers from the app
  are refused (PEP 3333), except ``Connection: close`` which is honoured as a request to
  close; a refusal raises ``InvalidResponse`` into the app (the handler answers 500);
- framing: the app's Content-Length (never more body than it: the excess is cut, logged,
  and the connection closed; less than it closes the connection too), else a length we know
  (whole body in hand, or a file), else chunked on HTTP/1.1, else close-delimited;
- no body (and no chunking) for HEAD, 1xx, 204 and 304; no Content-Length on 1xx/204;
- ``Date`` and ``Server`` are ours unless the app gave its own; ``Connection: close`` is
  sent whenever the connection will not be reused;
- a failed send raises ``ClientDisconnected`` and the response is dead from then on.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forkhorn.http.request import Request

_STATUS_RE = re.compile(r"[1-9][0-9]{2} [\t\x20-\x7e\x80-\xff]*")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
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
_MSG_MORE = getattr(socket, "MSG_MORE", 0)
_SENDFILE_BLOCK = 0x3FFFFFFF


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


def _check_value(name: str, value: Any) -> None:
    if type(value) is not str:
        raise InvalidResponse(f"value of header {name!r} must be a str")
    if not _VALUE_RE.fullmatch(value):
        # the value is left out: it may hold secrets
        raise InvalidResponse(f"invalid characters in the value of header {name!r}")


def _status_lines(status: str) -> tuple[bytes, bytes]:
    encoded = status.encode("latin-1")
    return b"HTTP/1.1 " + encoded + b"\r\n", b"HTTP/1.0 " + encoded + b"\r\n"


class ResponseContext:
    """What every response of a worker shares; safe to share between threads."""

    def __init__(self, log: Any, *, tls: bool, server: str = "forkhorn") -> None:
        self.log = log
        self.tls = tls
        self.server_header = b"Server: " + server.encode("latin-1") + b"\r\n"
        self.kinds: dict[str, int] = {}
        #: status string -> (code, HTTP/1.1 status line, HTTP/1.0 status line)
        self.statuses: dict[str, tuple[int, bytes, bytes]] = {}
        self._date: tuple[int, bytes] = (0, b"")

    def date_header(self) -> bytes:
        # one tuple attribute, so a reader in another thread never sees a torn pair
        now = int(time.time())
        cached = self._date
        if cached[0] != now:
            cached = (now, b"Date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n")
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
        if not _TOKEN_RE.fullmatch(name):
            raise InvalidResponse(f"invalid header name {name!r}")
        kind = _KINDS.get(name.lower(), _PLAIN)
        if len(self.kinds) < _CACHE_MAX:
            self.kinds[name] = kind
        return kind

    def error_response(self, status: int, reason: str, close: bool = True) -> bytes:
        """A complete short text/plain response for a refusal the app never saw."""
        body = f"{status} {reason}\n".encode("latin-1")
        return b"".join(
            (
                b"HTTP/1.1 %d %s\r\n" % (status, reason.encode("latin-1")),
                self.server_header,
                self.date_header(),
                b"Connection: close\r\n" if close else b"",
                b"Content-Type: text/plain; charset=utf-8\r\n",
                b"Content-Length: %d\r\n\r\n" % len(body),
                body,
            )
        )


class Response:
    """One response: the app's ``start_response``/``write`` and the bytes on the wire."""

    # Class-level defaults: a response sets only what differs (fewer stores per request).
    status: str | None = None
    status_code = 0
    #: the app's headers as given (for the access log and post_request)
    headers: list[tuple[str, str]] = []  # never mutated: replaced per response
    _header_text = ""
    _status_lines = b""
    content_length: int | None = None
    headers_sent = False
    chunked = False
    omit_body = False
    #: body bytes sent (payload, without chunk framing)
    sent = 0
    _own_server = True
    _own_date = True
    _cut = False

    def __init__(self, ctx: ResponseContext, sock: Any, req: Request, keep_alive: bool,
                 inp: Any) -> None:  # fmt: skip
        self.ctx = ctx
        self.sock = sock
        self.req = req
        #: may the connection carry another request (decided for good when the head is sent)
        self.keep_alive = keep_alive
        self.inp = inp

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
        code, line11, line10 = self.ctx.status(status)
        self._process_headers(code, headers)
        self.status = status
        self.status_code = code
        self._status_lines = line11 if self.req.version >= (1, 1) else line10
        self.omit_body = self.req.method == "HEAD" or code < 200 or code in (204, 304)
        return self.write

    def _process_headers(self, code: int, headers: Iterable[tuple[str, str]]) -> None:
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
                        raise InvalidResponse(f"hop-by-hop header not allowed: {name}: {value}")
                    close = close or "close" in tokens
                    continue  # we write our own Connection header
                elif kind == _HOP:
                    raise InvalidResponse(f"hop-by-hop header not allowed (PEP 3333): {name}")
                elif kind == _SERVER:
                    own_server = False
                else:
                    own_date = False
            lines.append(f"{name}: {value}\r\n")
        self.headers = headers if type(headers) is list else list(headers)
        self._header_text = "".join(lines)
        self.content_length = length
        self._own_server = own_server
        self._own_date = own_date
        if close:
            self.keep_alive = False

    def write(self, data: bytes) -> None:
        """The ``write()`` callable, and how the handler sends each body chunk."""
        if type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise TypeError(f"body chunks must be bytes, got {type(data).__name__}")
            data = bytes(data)
        if not self.headers_sent:
            if not data:
                return
            self._send(self._head(), self._frame(data))
        elif data:
            self._send(b"", self._frame(data))

    # -- the handler side ---------------------------------------------------------------

    def send_whole(self, body: bytes) -> None:
        """Send ``body`` as the complete response body: its length is known."""
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
        self._send(head, body)

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
        try:
            self.sock.sendfile(wrapper.filelike, offset, nbytes)
        except OSError as exc:
            self.keep_alive = False
            raise ClientDisconnected(str(exc)) from exc
        return True

    # -- serialization ------------------------------------------------------------------

    def _set_length(self, length: int, *, of_representation: bool = False) -> None:
        """Announce a length we know. A HEAD response gets one only when it is the length
        of what GET would send (a file), never the length of the empty HEAD body."""
        code = self.status_code
        if code < 200 or code in (204, 304) or (self.omit_body and not of_representation):
            return
        self.content_length = length
        self._header_text += f"Content-Length: {length}\r\n"

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
        return b"".join(
            (
                self._status_lines,
                ctx.server_header if self._own_server else b"",
                ctx.date_header() if self._own_date else b"",
                connection,
                framing,
                self._header_text.encode("latin-1"),
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
        try:
            if len(body) <= _JOIN_MAX or self.ctx.tls:
                sock.sendall(head + body if head else body, flags)
            else:
                sent = sock.sendmsg([head, body]) if head else 0
                if sent < len(head):
                    sock.sendall(head[sent:])
                    sent = len(head)
                sock.sendall(memoryview(body)[sent - len(head) :])
        except OSError as exc:
            self.keep_alive = False
            raise ClientDisconnected(str(exc)) from exc
