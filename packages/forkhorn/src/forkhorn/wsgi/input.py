"""``wsgi.input``: the request body as a blocking, read-only byte stream.

Strategy: the connection keeps one ``bytes`` buffer of what was received but not yet
consumed. A body is read from that buffer first, then from the socket, never past its
end: bytes after the body stay in the buffer for the next (pipelined) request.
Content-Length bodies are cut here (the common case, no per-chunk decoder call);
chunked bodies go through the HTTP layer's ``BodyDecoder``.

Invariants:
- a body cut short (EOF before Content-Length or before the last chunk) raises
  ``RequestBodyError`` (an ``OSError``, as frameworks expect for a broken upload), never
  returns short data; a framing error or ``limit_request_body`` in a chunked body raises it
  too; ``.error`` keeps the HTTP layer's error so the handler answers its status;
- ``Expect: 100-continue`` is answered (``HTTP/1.1 100 Continue``) on the first read, and
  only if the client has not started sending the body on its own;
- ``read``/``readline`` with a size never return more than asked; ``read()`` returns all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from forkhorn.http.errors import HTTPError, IncompleteBody

if TYPE_CHECKING:
    from forkhorn.wsgi.handler import Connection

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
RECV_SIZE = 65536


class RequestBodyError(OSError):
    """The request body could not be read: the client went away or sent a broken body."""

    def __init__(self, error: HTTPError) -> None:
        super().__init__(error.detail)
        self.http_error = error


class EmptyInput:
    """``wsgi.input`` for a request without a body. Stateless, so one serves every request."""

    complete = True
    awaiting_continue = False
    error = None

    def read(self, size: int | None = -1) -> bytes:
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return []

    def __iter__(self) -> Iterator[bytes]:
        return iter(())

    def drain(self, limit: int) -> bool:
        return True


class InputStream:
    """The body of one request on ``conn``: ``content_length`` bytes, or (``decoder`` given)
    a chunked body decoded by the HTTP layer."""

    __slots__ = ("_conn", "_decoder", "_pending", "_remaining", "awaiting_continue", "error")

    def __init__(
        self, conn: Connection, content_length: int | None, decoder: Any, expect_continue: bool
    ) -> None:
        self._conn = conn
        #: Content-Length bytes still on the wire/buffer; None for a chunked body
        self._remaining = None if decoder is not None else (content_length or 0)
        self._decoder = decoder
        self._pending = b""
        #: 100-continue not sent yet (the handler closes instead of draining such a body)
        self.awaiting_continue = expect_continue
        self.error: HTTPError | None = None

    @property
    def complete(self) -> bool:
        """The whole body (and trailers) was received."""
        if self._decoder is not None:
            return bool(self._decoder.done)
        return self._remaining == 0

    def _fail(self, error: HTTPError) -> RequestBodyError:
        self.error = error
        return RequestBodyError(error)

    def _recv(self, size: int) -> bytes:
        if self.awaiting_continue:
            self.awaiting_continue = False
            self._conn.sock.sendall(CONTINUE)
        try:
            data = self._conn.sock.recv(size)
        except OSError as exc:
            raise self._fail(IncompleteBody(f"request body: {exc}")) from exc
        if not data:
            raise self._fail(self._cut_short())
        return data

    def _cut_short(self) -> HTTPError:
        """The HTTP layer's verdict on a body the peer stopped sending."""
        if self._decoder is not None:
            try:
                self._decoder.eof()
            except HTTPError as exc:
                return exc
        return IncompleteBody(f"body ended {self._remaining} bytes before its Content-Length")

    def _fill(self) -> bytes:
        """The next piece of payload (b"" at the end of the body)."""
        conn = self._conn
        remaining = self._remaining
        if remaining is not None:
            if not remaining:
                return b""
            buf = conn.buf
            if buf:
                self.awaiting_continue = False
                piece = buf[:remaining]
                conn.buf = buf[len(piece) :]
            else:
                piece = self._recv(min(remaining, RECV_SIZE))
            self._remaining = remaining - len(piece)
            return piece
        decoder = self._decoder
        while not decoder.done:
            data = conn.buf
            if data:
                self.awaiting_continue = False
                conn.buf = b""
            else:
                data = self._recv(RECV_SIZE)
            try:
                payload, leftover = decoder.feed(data)
            except HTTPError as exc:
                raise self._fail(exc) from exc
            if leftover:
                conn.buf = leftover
            if payload:
                return bytes(payload)
        return b""

    def _read_all_fixed(self) -> bytes:
        """All remaining Content-Length bytes, received straight into one buffer."""
        remaining = self._remaining or 0
        out = bytearray(len(self._pending) + remaining)
        out[: len(self._pending)] = self._pending
        pos = len(self._pending)
        self._pending = b""
        conn = self._conn
        if conn.buf:
            self.awaiting_continue = False
            piece = conn.buf[:remaining]
            conn.buf = conn.buf[len(piece) :]
            out[pos : pos + len(piece)] = piece
            pos += len(piece)
        view = memoryview(out)
        if pos < len(out) and self.awaiting_continue:
            self.awaiting_continue = False
            conn.sock.sendall(CONTINUE)
        while pos < len(out):
            try:
                got = conn.sock.recv_into(view[pos:])
            except OSError as exc:
                self._remaining = len(out) - pos
                raise self._fail(IncompleteBody(f"request body: {exc}")) from exc
            if not got:
                self._remaining = len(out) - pos
                raise self._fail(self._cut_short())
            pos += got
        self._remaining = 0
        return bytes(out)

    def read(self, size: int | None = -1) -> bytes:
        if self.error is not None:
            raise RequestBodyError(self.error)
        if size is None or size < 0:
            if self._remaining is not None:
                return self._read_all_fixed()
            parts = [self._pending]
            self._pending = b""
            while piece := self._fill():
                parts.append(piece)
            return b"".join(parts)
        pending = self._pending
        while len(pending) < size:
            piece = self._fill()
            if not piece:
                break
            pending = pending + piece if pending else piece
        self._pending = pending[size:]
        return pending[:size]

    def readline(self, size: int | None = -1) -> bytes:
        if self.error is not None:
            raise RequestBodyError(self.error)
        limit = size if size is not None and size >= 0 else -1
        pending = self._pending
        start = 0
        while True:
            idx = pending.find(b"\n", start)
            if idx >= 0:
                end = idx + 1
                break
            if 0 <= limit <= len(pending):
                end = limit
                break
            start = len(pending)
            piece = self._fill()
            if not piece:
                end = len(pending)
                break
            pending = pending + piece if pending else piece
        if 0 <= limit < end:
            end = limit
        self._pending = pending[end:]
        return pending[:end]

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def drain(self, limit: int) -> bool:
        """Discard the unread rest of the body if it is at most ``limit`` bytes.

        Returns True when the body is complete (the connection can carry another request).
        Never answers 100-continue: a client still waiting for it has sent no body.
        """
        if self.error is not None or self.awaiting_continue:
            return False
        self._pending = b""
        if self._remaining is not None and self._remaining > limit:
            return False
        seen = 0
        try:
            while seen <= limit:
                piece = self._fill()
                if not piece:
                    return True
                seen += len(piece)
        except RequestBodyError:
            return False
        return False
