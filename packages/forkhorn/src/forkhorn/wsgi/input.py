"""``wsgi.input``: the request body as a blocking, read-only byte stream.

Strategy: the connection keeps one ``bytes`` buffer of what was received but not yet
consumed. A body is read from that buffer first, then from the socket, never past its
end: bytes after the body stay in the buffer for the next (pipelined) request.
Content-Length bodies are cut here (the common case, no per-chunk decoder call);
chunked bodies go through the HTTP layer's ``BodyDecoder``.

Large reads (``read()``, ``read(size)`` beyond one receive) go straight from the socket into
one preallocated ``bytearray`` with ``recv_into``: no concatenation, as few syscalls as the
kernel allows, one final copy to ``bytes``.

Deadlines (``BodyPace``, from ``body_timeout`` and ``min_body_rate``): nothing is armed while
the body is already in the buffer (the usual small POST). On the first read that must wait
for the socket, the body's clock starts and the socket gets ``body_timeout`` as its timeout,
so no single wait lasts longer; after every receive the average rate is checked: having
received ``n`` bytes, the body may not have taken longer than
``body_timeout + n / min_body_rate`` seconds. Either failure is a 408 (``RequestTimeout``).
The socket's previous timeout is restored once the body is complete.

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

import io
from collections.abc import Iterator
from time import monotonic
from typing import TYPE_CHECKING, Any

from forkhorn.http.errors import HTTPError, IncompleteBody, RequestTimeout

if TYPE_CHECKING:
    from forkhorn.wsgi.handler import Connection

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
RECV_SIZE = 65536


class BodyPace:
    """How long a request body may take (per worker, immutable): no wait for the next
    piece longer than ``timeout`` seconds, and (``min_rate`` > 0) an average of at least
    ``min_rate`` bytes per second once ``timeout`` seconds of grace are spent."""

    __slots__ = ("min_rate", "timeout")

    def __init__(self, timeout: float, min_rate: float) -> None:
        self.timeout = timeout
        self.min_rate = min_rate

    @classmethod
    def from_config(cls, cfg: Any) -> BodyPace | None:
        timeout = float(getattr(cfg, "body_timeout", 0) or 0)
        return cls(timeout, float(getattr(cfg, "min_body_rate", 0) or 0)) if timeout > 0 else None


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
    a chunked body decoded by the HTTP layer. ``pace``: the body's deadlines (None: none)."""

    __slots__ = (
        "_conn",
        "_decoder",
        "_got",
        "_pace",
        "_pending",
        "_remaining",
        "_saved_timeout",
        "_started",
        "awaiting_continue",
        "error",
    )  # fmt: skip

    def __init__(
        self,
        conn: Connection,
        content_length: int | None,
        decoder: Any,
        expect_continue: bool,
        pace: BodyPace | None = None,
    ) -> None:
        self._conn = conn
        #: Content-Length bytes still on the wire/buffer; None for a chunked body
        self._remaining = None if decoder is not None else (content_length or 0)
        self._decoder = decoder
        self._pending = b""
        #: 100-continue not sent yet (the handler closes instead of draining such a body)
        self.awaiting_continue = expect_continue
        self.error: HTTPError | None = None
        self._pace = pace
        #: monotonic time of the first wait on the socket (0.0: none yet), bytes received
        self._started = 0.0
        self._got = 0
        self._saved_timeout: float | None = None

    @property
    def complete(self) -> bool:
        """The whole body (and trailers) was received."""
        if self._decoder is not None:
            return bool(self._decoder.done)
        return self._remaining == 0

    def _fail(self, error: HTTPError) -> RequestBodyError:
        self.error = error
        return RequestBodyError(error)

    # -- the socket, under the body's deadlines ------------------------------------------

    def _before_wait(self) -> None:
        """About to read from the socket: answer 100-continue, start the body's clock."""
        if self.awaiting_continue:
            self.awaiting_continue = False
            self._conn.sock.sendall(CONTINUE)
        pace = self._pace
        if pace is not None and not self._started:
            self._started = monotonic()
            sock = self._conn.sock
            saved = self._saved_timeout = sock.gettimeout()
            sock.settimeout(pace.timeout if saved is None else min(pace.timeout, saved))

    def _after_wait(self, received: int) -> None:
        pace = self._pace
        if pace is not None and pace.min_rate:
            self._got += received
            allowed = pace.timeout + self._got / pace.min_rate
            if monotonic() - self._started > allowed:
                rate = f"{pace.min_rate:g} bytes/s"
                raise self._fail(RequestTimeout(f"request body slower than min_body_rate {rate}"))

    def _socket_error(self, exc: OSError) -> RequestBodyError:
        if isinstance(exc, TimeoutError) and self._pace is not None:
            waited = f"{self._pace.timeout:g}s"
            return self._fail(RequestTimeout(f"no request body data for body_timeout {waited}"))
        return self._fail(IncompleteBody(f"request body: {exc}"))

    def _body_done(self) -> None:
        """The whole body is in: give the socket its own timeout back."""
        if self._started:
            self._started = 0.0
            self._pace = None  # nothing more to read: no clock to restart
            self._conn.sock.settimeout(self._saved_timeout)

    def _recv(self, size: int) -> bytes:
        self._before_wait()
        try:
            data = self._conn.sock.recv(size)
        except OSError as exc:
            raise self._socket_error(exc) from exc
        if not data:
            raise self._fail(self._cut_short())
        self._after_wait(len(data))
        return data

    def _cut_short(self) -> HTTPError:
        """The HTTP layer's verdict on a body the peer stopped sending."""
        if self._decoder is not None:
            try:
                self._decoder.eof()
            except HTTPError as exc:
                return exc
        return IncompleteBody(f"body ended {self._remaining} bytes before its Content-Length")

    # -- reading -------------------------------------------------------------------------

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
                piece = bytes(buf[:remaining]) if isinstance(buf, bytearray) else buf[:remaining]
                conn.buf = buf[len(piece) :]
            else:
                piece = self._recv(min(remaining, RECV_SIZE))
            remaining = self._remaining = remaining - len(piece)
            if not remaining:
                self._body_done()
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
            if decoder.done:
                self._body_done()
            if payload:
                return bytes(payload)
        return b""

    def _read_fixed(self, size: int) -> bytes:
        """Exactly ``size`` bytes of a Content-Length body (``size`` at most what is left of
        it, more than is pending): pending bytes, the connection's buffer, then
        ``recv_into`` straight into the bytes object that is returned.

        That object is the buffer of a ``BytesIO``: ``getvalue()`` hands it over without a
        copy once no view of it is left (CPython shares it). A ``bytearray`` plus
        ``bytes()`` would touch twice the memory, and for a 1 MiB body that is what made
        the allocator give pages back to the kernel and fault them in again per request.
        """
        out = io.BytesIO()
        out.seek(size - 1)
        out.write(b"\0")  # sized once; the gap is zero-filled
        pending = self._pending
        pos = len(pending)
        self._pending = b""
        conn = self._conn
        buf = conn.buf
        with out.getbuffer() as view:
            view[:pos] = pending
            if buf:
                self.awaiting_continue = False
                piece = buf[: size - pos]
                conn.buf = buf[len(piece) :]
                view[pos : pos + len(piece)] = piece
                pos += len(piece)
                self._remaining -= len(piece)  # type: ignore[operator]
            if pos < size:
                self._before_wait()
                recv_into = conn.sock.recv_into
                while pos < size:
                    try:
                        got = recv_into(view[pos:])
                    except OSError as exc:
                        raise self._socket_error(exc) from exc
                    if not got:
                        raise self._fail(self._cut_short())
                    pos += got
                    self._remaining -= got  # type: ignore[operator]
                    self._after_wait(got)
        if not self._remaining:
            self._body_done()
        return out.getvalue()

    def read(self, size: int | None = -1) -> bytes:
        if self.error is not None:
            raise RequestBodyError(self.error)
        remaining = self._remaining
        if remaining is not None:
            pending = self._pending
            if size is None or size < 0 or size > len(pending) + remaining:
                size = len(pending) + remaining
            if size - len(pending) >= RECV_SIZE:
                return self._read_fixed(size)  # large: straight into one buffer
        if size is None or size < 0:
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
