"""Request body decoders: Content-Length and chunked (RFC 9112 §6, §7.1). Sans-IO.

``body_decoder(request, limits)`` picks the decoder (None: the request has no body) and
refuses up front (413) a Content-Length over ``limit_request_body``. ``feed(data)`` returns
``(payload, leftover)``: the payload bytes decoded from ``data`` and, once the body is
complete, the bytes after it (the next pipelined request). ``eof()`` says what a body cut
short by the peer closing is (it raises). After any ``HTTPError`` the decoder is dead: the
connection must be closed, no later byte parsed.

Chunked invariants (the same result for any split of the input):
- chunk-size is 1-16 HEXDIG, nothing before it; chunk-ext is
  ``*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )``; a size line over
  ``MAX_CHUNK_LINE`` or extensions over ``limits.max_chunk_extensions`` in total are refused.
  A size line is judged only once complete (or once too long), hex first, extensions second.
- chunk data must be followed by exactly CRLF (ChunkMissingTerminator otherwise).
- trailers are field lines under the head's rules (``fields.parse_field_lines``) plus a
  list of names that may never come in a trailer (framing, routing, connection, auth...);
  they land in ``.trailers`` and ``request.trailers``, never in the head's headers.
- the decoded total may not pass ``limits.max_body`` (413 as soon as a size line says so).
"""

from __future__ import annotations

import re

from forkhorn.http import fields as fl
from forkhorn.http.errors import (
    ChunkMissingTerminator,
    IncompleteBody,
    InvalidChunkExtension,
    InvalidChunkSize,
    InvalidHeaderName,
    LimitRequestBody,
    LimitRequestHeaders,
)
from forkhorn.http.parser import ParserLimits
from forkhorn.http.request import Request

MAX_CHUNK_SIZE_DIGITS = 16
MAX_CHUNK_LINE = 4096
_HEX_RE = re.compile(r"[0-9A-Fa-f]*")
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_TOKEN = f"[{fl.TCHAR}]+"
_CHUNK_EXT_RE = re.compile(
    f"(?:[ \\t]*;[ \\t]*{_TOKEN}(?:[ \\t]*=[ \\t]*(?:{_TOKEN}|{_QUOTED}))?)*"
)
#: names that must not be taken from a trailer (RFC 9110 §6.5.1): framing, routing,
#: connection management, request modifiers, authentication, content processing
FORBIDDEN_TRAILERS = frozenset(
    {
        "CONTENT-LENGTH", "TRANSFER-ENCODING", "TRAILER", "HOST", "CONNECTION",
        "KEEP-ALIVE", "PROXY-CONNECTION", "TE", "UPGRADE", "EXPECT", "MAX-FORWARDS",
        "RANGE", "IF-MATCH", "IF-NONE-MATCH", "IF-MODIFIED-SINCE", "IF-UNMODIFIED-SINCE",
        "IF-RANGE", "AUTHORIZATION", "PROXY-AUTHORIZATION", "COOKIE", "SET-COOKIE",
        "CONTENT-ENCODING", "CONTENT-RANGE", "CACHE-CONTROL",
    }
)  # fmt: skip


class BodyDecoder:
    """Common interface. ``done``: the whole body (and trailers) has been seen."""

    __slots__ = ("done", "trailers")

    def __init__(self) -> None:
        self.done = False
        self.trailers: list[tuple[str, str]] | None = None

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        raise NotImplementedError

    def eof(self) -> None:
        """The peer closed the connection; raises unless the body was complete."""
        raise NotImplementedError


class LengthDecoder(BodyDecoder):
    __slots__ = ("remaining",)

    def __init__(self, length: int) -> None:
        super().__init__()
        self.remaining = length
        self.done = length == 0

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        remaining = self.remaining
        if len(data) < remaining:
            self.remaining = remaining - len(data)
            return bytes(data), b""
        self.remaining = 0
        self.done = True
        return bytes(data[:remaining]), bytes(data[remaining:])

    def eof(self) -> None:
        if not self.done:
            raise IncompleteBody(f"body ended {self.remaining} bytes before its Content-Length")


_SIZE, _DATA, _DATA_END, _TRAILERS, _DONE = range(5)


class ChunkedDecoder(BodyDecoder):
    __slots__ = (
        "_ext_total",
        "_pending",
        "_remaining",
        "_scanned",
        "_state",
        "_total",
        "limits",
        "request",
    )  # fmt: skip

    def __init__(self, limits: ParserLimits, request: Request | None = None) -> None:
        super().__init__()
        self.limits = limits
        self.request = request
        self._state = _SIZE
        #: the start of an unfinished size line, chunk CRLF or trailer section
        self._pending = bytearray()
        self._remaining = 0  # bytes left in the current chunk
        self._total = 0  # decoded bytes so far
        self._ext_total = 0  # chunk-extension bytes so far
        self._scanned = 0  # bytes of the pending trailer section searched already

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        if self.done:
            return b"", bytes(data)
        buf: bytes | bytearray = data
        if self._pending:
            # extend in place: a slow peer's trailer section costs O(n), not O(n^2)
            self._pending += data
            buf = self._pending
            self._pending = bytearray()
        out: list[bytes] = []
        pos, size = 0, len(buf)
        while pos < size:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, size - pos)
                out.append(bytes(buf[pos : pos + take]))
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _DATA_END
            elif state == _SIZE:
                eol = buf.find(b"\r\n", pos, pos + MAX_CHUNK_LINE + 2)
                if eol < 0:
                    self._check_partial_size_line(bytes(buf[pos:]))
                    self._keep(buf, pos)
                    break
                self._size_line(bytes(buf[pos:eol]))
                pos = eol + 2
            elif state == _DATA_END:
                if buf[pos : pos + 2] == b"\r\n":
                    pos += 2
                    self._state = _SIZE
                elif buf[pos : pos + 1] == b"\r" and pos + 1 == size:
                    self._keep(buf, pos)
                    break
                else:
                    raise ChunkMissingTerminator("chunk data not followed by CRLF")
            else:  # _TRAILERS
                end = self._trailers(buf, pos)
                if end < 0:
                    self._keep(buf, pos)
                    break
                self._state = _DONE
                self.done = True
                if self.request is not None:
                    self.request.trailers = self.trailers
                return b"".join(out), bytes(buf[end:])
        return b"".join(out), b""

    def eof(self) -> None:
        if not self.done:
            raise ChunkMissingTerminator("connection closed inside a chunked body")

    def _keep(self, buf: bytes | bytearray, pos: int) -> None:
        if pos == 0 and isinstance(buf, bytearray):
            self._pending = buf
        else:
            self._pending = bytearray(buf[pos:])

    def _check_partial_size_line(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > MAX_CHUNK_LINE:
            self._too_long(line)
        hex_end = _HEX_RE.match(line.decode("latin-1")).end()  # type: ignore[union-attr]
        if hex_end > MAX_CHUNK_SIZE_DIGITS:
            raise InvalidChunkSize("chunk size with too many digits")

    def _too_long(self, line: bytes) -> None:
        """A size line over the limit: judged on exactly its first MAX_CHUNK_LINE + 1 bytes,
        so the verdict does not depend on how much of it has arrived."""
        self._check_size_line(line[: MAX_CHUNK_LINE + 1].decode("latin-1"), complete=False)
        raise InvalidChunkExtension("chunk size line too long")

    def _check_size_line(self, line: str, *, complete: bool) -> tuple[int, int]:
        """-> (size, extension length); the hex part is judged first, then the extensions."""
        hex_end = _HEX_RE.match(line).end()  # type: ignore[union-attr]
        if hex_end > MAX_CHUNK_SIZE_DIGITS:
            raise InvalidChunkSize("chunk size with too many digits")
        rest = line[hex_end:]
        # only BWS may come between the size and the ";" of an extension
        after_bws = rest.lstrip(" \t")
        if hex_end == 0 or (after_bws[:1] != ";" and (after_bws or (complete and rest))):
            raise InvalidChunkSize(f"invalid chunk size line {line[:24]!r}")
        if complete and not _CHUNK_EXT_RE.fullmatch(rest):
            raise InvalidChunkExtension(f"invalid chunk extension {rest[:40]!r}")
        return int(line[:hex_end], 16), len(rest)

    def _size_line(self, raw: bytes) -> None:
        if len(raw) > MAX_CHUNK_LINE:  # pragma: no cover - feed() never finds such a line
            self._too_long(raw)
        size, ext = self._check_size_line(raw.decode("latin-1"), complete=True)
        self._ext_total += ext
        if self._ext_total > self.limits.max_chunk_extensions:
            raise InvalidChunkExtension("too many chunk extension bytes")
        self._total += size
        if self.limits.max_body and self._total > self.limits.max_body:
            raise LimitRequestBody(f"chunked body over {self.limits.max_body} bytes")
        if size:
            self._remaining = size
            self._state = _DATA
        else:
            self._state = _TRAILERS
            self._scanned = 0

    def _trailers(self, buf: bytes | bytearray, pos: int) -> int:
        """Parse the trailer section at ``buf[pos:]``; -> offset after it, or -1 (pending)."""
        if buf.startswith(b"\r\n", pos):
            self.trailers = []
            return pos + 2
        end = buf.find(b"\r\n\r\n", pos + max(0, self._scanned - 3))
        bound = self.limits.max_trailer_section
        if end < 0 or end + 4 - pos > bound:
            if len(buf) - pos > bound:
                raise LimitRequestHeaders("trailer section too large")
            self._scanned = len(buf) - pos
            return -1
        # a leading CRLF keeps the fields module's "a line starts after CRLF" convention
        text = "\r\n" + buf[pos : end + 2].decode("latin-1")
        trailers: list[tuple[str, str]] = []
        for raw_name, value in fl.parse_field_lines(text, 2, len(text), self.limits):
            name = raw_name.upper()
            if name in FORBIDDEN_TRAILERS:
                raise InvalidHeaderName(f"{name} is not allowed in a trailer")
            if "_" in name and not fl.keep_underscore_name(name, self.limits, "trailer"):
                continue
            trailers.append((name, value))
        self.trailers = trailers
        return end + 4


def body_decoder(request: Request, limits: ParserLimits) -> BodyDecoder | None:
    """The decoder for ``request``'s body, or None when it has none."""
    if request.chunked:
        return ChunkedDecoder(limits, request)
    length = request.content_length
    if not length:
        return None
    if limits.max_body and length > limits.max_body:
        raise LimitRequestBody(f"Content-Length {length} over {limits.max_body} bytes")
    return LengthDecoder(length)
