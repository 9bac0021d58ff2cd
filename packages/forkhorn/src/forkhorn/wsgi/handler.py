"""The blocking connection handler every worker class shares: bytes in, WSGI app, bytes out.

Strategy (the hot path): one ``recv`` of up to 64 KiB usually holds the whole request head;
the sans-IO parser finds and parses it in one pass; the environ is a copy of a prebuilt
base; the response head leaves with the first body chunk in one send. Per-request hooks,
the access log and the worker's request bookkeeping are looked up once, here, so a request
pays nothing for what is switched off.

Invariants:
- requests on a connection are answered strictly in order; bytes past a request stay in
  ``Connection.buf`` for the next one (pipelining);
- a parse error answers the error's status with a short body and ``Connection: close``, is
  logged once (info, with the peer, no traceback), and the connection is closed gently
  (write side shut, brief drain) so the answer is not lost to a TCP reset; an error
  without a status closes silently;
- an app exception is logged with its traceback; the client gets a 500 if the head was not
  sent yet, else the connection is cut; a broken request body answers its own status;
- the app iterable's ``close()`` is called exactly once whatever happens, client
  disconnects, app errors and timeouts included;
- a connection is reused only if the response was delimited, the request body was
  consumed (or drained within ``DRAIN_LIMIT``) and the worker is still alive;
- ``DeadlineExceeded`` (the workers' per-request timeout) is a ``BaseException`` so app
  code catching ``Exception`` cannot swallow it;
- the app may take the connection over (a websocket, through ``gunicorn.socket``): a
  request with ``Upgrade: websocket`` marks its connection ``long_lived`` (the gthread
  and cooperative workers then run no request clock on it) and is never reused; an app
  that raises ``StopIteration`` instead of returning (Flask-Sock, after its websocket
  closed) ends the connection with nothing more written, as in Gunicorn.

Deadlines against slow or hostile clients (all armed only off the hot path):
- ``header_timeout``: a head not complete after the read that brought its first bytes is
  read on with socket timeouts up to the deadline (or, with ``park_partial_heads``, the
  connection is handed back to the worker's poller with ``Connection.head_deadline`` set
  and the worker enforces it); past it: 408 and close. A worker that times out the wait
  for the first byte raises ``DeadlineExceeded`` into the read: closed silently, or 408
  if some bytes had come;
- ``body_timeout``/``min_body_rate``: in ``wsgi.input`` (``BodyPace``);
- ``write_timeout``: in the response writer;
- bounded buffers: ``Connection.buf`` never holds more than one head (bounded by the
  parser's limits) plus one read of ``RECV_SIZE``: a head is parsed before anything more
  is read, so a pipelined flood waits in the kernel, not in our memory.
"""

from __future__ import annotations

import socket
import time
from functools import partial
from typing import Any

from forkhorn.http.body import body_decoder
from forkhorn.http.errors import (
    ForbiddenProxyRequest,
    HTTPError,
    NoMoreData,
    RequestTimeout,
    error_response,
    status_reason,
)
from forkhorn.http.parser import ParserLimits, RequestParser
from forkhorn.http.peers import PeerMatcher, describe_peer
from forkhorn.http.proxy import V1_PREFIX, V2_SIGNATURE, parse_proxy_header
from forkhorn.http.request import Request
from forkhorn.plugins.manager import hook_or_none
from forkhorn.wsgi.environ import EnvironBuilder
from forkhorn.wsgi.input import BodyPace, EmptyInput, InputStream
from forkhorn.wsgi.response import (
    ClientDisconnected,
    FileWrapper,
    Response,
    ResponseContext,
    body_bytes,
)

RECV_SIZE = 65536
#: unread request body discarded after a response to keep the connection; above: close
DRAIN_LIMIT = 65536
#: how long a gentle close waits for the peer to finish sending before the socket closes
LINGER_SECONDS = 0.2
_DONTWAIT = int(getattr(socket, "MSG_DONTWAIT", 0))


def linger(sock: socket.socket, seconds: float, limit: int) -> None:
    """Shut our side and read what the peer still sends (up to ``limit`` bytes or
    ``seconds``) before the caller closes: closing with unread data makes the kernel send
    a reset, which can destroy the response the peer has not read yet."""
    try:
        sock.shutdown(socket.SHUT_WR)
        end = time.monotonic() + seconds
        seen = 0
        while seen < limit:
            left = end - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            data = sock.recv(RECV_SIZE)
            if not data:
                break
            seen += len(data)
    except OSError:
        pass


class DeadlineExceeded(BaseException):
    """Raised inside a request that ran longer than ``timeout`` (by the worker)."""


class _HeadPending(Exception):
    """The head is incomplete and the worker parks such connections (gthread)."""


class Connection:
    """One client connection: its socket, unconsumed bytes and per-connection state.

    Class-level defaults: a new connection stores only what differs (the sync worker
    makes one per request)."""

    #: received bytes not consumed yet (the next request head, pipelined requests); a
    #: bytearray only while an incomplete head is held (``head_deadline`` set)
    buf: bytes | bytearray = b""
    parser: RequestParser | None = None
    #: the PROXY protocol header's ProxyInfo, if the connection began with one
    proxy: Any = None
    requests = 0
    #: the request being served (for diagnostics such as a timeout report)
    request: Request | None = None
    #: close gently (shut write side, drain briefly): unread bytes may be in flight
    linger = False
    _trusted: bool | None = None
    #: monotonic deadline of an incomplete head held in ``buf`` (0.0: none)
    head_deadline = 0.0
    #: a websocket upgrade was asked for: the app may hold the connection as long as it
    #: likes (no request clock in gthread and the cooperative workers); not reused
    long_lived = False

    def __init__(self, sock: socket.socket, client_addr: Any, server_addr: Any) -> None:
        self.sock = sock
        self.client = client_addr
        self.server = server_addr

    @property
    def has_buffered_data(self) -> bool:
        """Pipelined bytes already read: serve again at once, do not wait in a selector
        (an incomplete head waits for more bytes like an idle connection)."""
        return bool(self.buf) and not self.head_deadline

    def is_trusted(self, peers: PeerMatcher) -> bool:
        """Whether the socket peer is in ``peers`` (asked once per connection)."""
        trusted = self._trusted
        if trusted is None:
            trusted = self._trusted = bool(peers.allows(self.client))
        return trusted


class ConnectionHandler:
    """Serves connections for ``worker`` (built once per worker process)."""

    def __init__(
        self,
        worker: Any,
        *,
        keepalive: bool | None = None,
        multithread: bool | None = None,
        park_partial_heads: bool = False,
    ) -> None:
        cfg = worker.cfg
        self.worker = worker
        self.cfg = cfg
        self.app = worker.wsgi
        self.log = worker.log
        self.limits = ParserLimits.from_config(cfg)
        #: may connections carry more than one request (the sync worker says no)
        self.keepalive = cfg.keepalive > 0 if keepalive is None else keepalive
        self.timeout = cfg.timeout
        self.header_timeout = float(getattr(cfg, "header_timeout", 0) or 0)
        #: an incomplete head ends serve_one (``Connection.head_deadline`` set) instead of
        #: blocking: the worker waits for the socket and enforces the deadline (gthread)
        self.park_partial_heads = park_partial_heads and self.header_timeout > 0
        self.pace = BodyPace.from_config(cfg)
        #: peers trusted with forwarding headers (scheme, SCRIPT_NAME, ``_`` names)
        self.forwarded_peers = PeerMatcher(list(cfg.forwarded_allow_ips or ()))
        if multithread is None:
            multithread = bool(getattr(worker, "wsgi_multithread", False))
        self.environ = EnvironBuilder(
            cfg,
            forwarded_peers=self.forwarded_peers,
            multithread=multithread,
            file_wrapper=FileWrapper,
            # onto the error log's streams, as Gunicorn's (a logger_class of one's own may
            # have none: then stderr)
            errors=getattr(self.log, "wsgi_errors", None),
        )
        self.empty_input = EmptyInput()
        self.access_enabled = bool(getattr(self.log, "access_enabled", False))
        # JSON logs (or the request-id atom) put forkhorn.request_id in the environ before
        # the app runs, so the app can log and forward the same id; None otherwise.
        self._request_id = getattr(self.log, "request_id_for", None)
        plugin_manager = getattr(getattr(worker, "app", None), "plugin_manager", None)
        self._pre_request = self._post_request = None
        if plugin_manager is not None:
            self._pre_request = hook_or_none(plugin_manager, "forkhorn_pre_request")
            self._post_request = hook_or_none(plugin_manager, "forkhorn_post_request")
        #: a request hook will see the request: give it Gunicorn's fields (no cost otherwise)
        self._hooked = self._pre_request is not None or self._post_request is not None
        self.ctx = ResponseContext(
            self.log,
            tls=bool(getattr(cfg, "certfile", None)),
            write_timeout=float(getattr(cfg, "write_timeout", 0) or 0),
            # the hook and the access log run between a closing response's send and the
            # close: its last segment must not wait for them
            close_at_once=self._post_request is None
            and not (self.access_enabled and getattr(self.log, "access_may_block", True)),
        )
        # the base class may not have these (yet): look once, not per request
        self._request_started = getattr(worker, "request_started", None)
        self._request_finished = getattr(worker, "request_finished", None)
        self._count_request = getattr(worker, "count_request", None)
        mode = str(getattr(cfg, "proxy_protocol", "off")).lower()
        self._proxy_mode = None if mode in ("off", "false") else mode
        self._proxy_peers = PeerMatcher(list(getattr(cfg, "proxy_allow_ips", ()) or ()))

    # -- connection level ---------------------------------------------------------------

    def serve(self, conn: Connection) -> None:
        """Serve requests on ``conn`` while it stays reusable and the worker alive; close it."""
        try:
            while self.serve_one(conn) and self.worker.alive:
                pass
        finally:
            self.close(conn)

    def close(self, conn: Connection) -> None:
        """Close ``conn``; gently (see ``Connection.linger``) after an error or unread body."""
        sock = conn.sock
        if conn.linger:
            linger(sock, LINGER_SECONDS, DRAIN_LIMIT)
        try:
            sock.close()
        except OSError:
            pass

    def serve_one(self, conn: Connection) -> bool:
        """Read one request, run the app, write the response. True: the connection may be
        reused for another request."""
        try:
            if self._proxy_mode is not None and not conn.requests:
                self._read_proxy_header(conn)
            req = self._read_head(conn)
        except HTTPError as exc:
            self._refuse(conn, exc)
            return False
        except OSError as exc:
            self.log.debug(
                "%s: connection error while reading a request: %s", describe_peer(conn.client), exc
            )
            return False
        except _HeadPending:
            return True  # the worker waits for more bytes, up to conn.head_deadline
        except DeadlineExceeded:
            # the worker's own clock ran out before the head was complete
            if conn.buf:
                self._refuse(conn, RequestTimeout("request head not complete in time"))
            return False
        if req is None:
            return False
        conn.requests += 1
        conn.request = req
        if self._request_started is not None:
            self._request_started(req.method, req.path)
        try:
            return self._handle(conn, req)
        finally:
            conn.request = None
            if self._request_finished is not None:
                self._request_finished()
            if self._count_request is not None:
                self._count_request()

    def _read_head(self, conn: Connection) -> Request | None:
        """The next request head: from the buffer, else one read (the hot path: the whole
        head comes in one read); an incomplete head goes to ``_read_rest_of_head``."""
        parser = conn.parser
        if parser is None:
            # asked only if a name with "_" comes (forwarder_headers); bound to the peer's
            # address, not to conn: conn -> parser -> conn would be a reference cycle, left
            # for the garbage collector to find after every connection
            trusted = partial(self.forwarded_peers.allows, conn.client)
            parser = conn.parser = RequestParser(self.limits, trusted=trusted)
        buf = conn.buf
        if buf and not conn.head_deadline:  # pipelined bytes (a parked head: read first)
            parsed = parser.parse_head(buf)
            if parsed is not None:
                req, used = parsed
                conn.buf = buf[used:] if used < len(buf) else b""
                return req  # the parser resets itself after a request
        data = conn.sock.recv(RECV_SIZE)
        if not data:
            conn.buf = b""
            if buf:
                raise NoMoreData("peer closed the connection in the middle of a request head")
            return None
        if buf:
            if type(buf) is not bytearray:
                buf = bytearray(buf)
            buf += data
            return self._read_rest_of_head(conn, parser, buf)
        parsed = parser.parse_head(data)
        if parsed is None:
            return self._read_rest_of_head(conn, parser, bytearray(data))
        req, used = parsed
        conn.buf = data[used:] if used < len(data) else b""
        return req

    def _read_rest_of_head(
        self, conn: Connection, parser: RequestParser, buf: bytearray
    ) -> Request | None:
        """A head that one read did not complete (a slow client, a big head, or bytes
        parked earlier): read on under ``header_timeout``. ``buf`` grows in place, so a
        head trickling in byte by byte costs linear time; its size is bounded by the
        parser, which refuses a line or field over its limit as soon as it sees one."""
        while True:
            parsed = parser.parse_head(buf)
            if parsed is not None:
                req, used = parsed
                conn.buf = bytes(buf[used:])
                conn.head_deadline = 0.0
                return req
            timeout = self.header_timeout
            if timeout > 0 and not conn.head_deadline:
                conn.head_deadline = time.monotonic() + timeout
            conn.buf = buf  # what a timeout sees: bytes came, so it answers 408
            if self.park_partial_heads:
                raise _HeadPending()
            data = self._recv_head_bytes(conn)
            if not data:
                conn.buf = b""
                raise NoMoreData("peer closed the connection in the middle of a request head")
            buf += data

    def _recv_head_bytes(self, conn: Connection) -> bytes:
        """One read of a head's continuation, waiting at most until ``head_deadline``."""
        sock = conn.sock
        deadline = conn.head_deadline
        if not deadline:
            return sock.recv(RECV_SIZE)  # header_timeout = 0: no deadline
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._head_timeout()
        saved = sock.gettimeout()
        sock.settimeout(left if saved is None else min(left, saved))
        try:
            return sock.recv(RECV_SIZE)
        except TimeoutError:
            raise self._head_timeout() from None
        finally:
            sock.settimeout(saved)

    def _read_proxy_header(self, conn: Connection) -> None:
        """Consume the PROXY protocol header a peer in ``proxy_allow_ips`` starts with
        (required in modes v1/v2, optional in auto); refuse one from any other peer."""
        allowed = self._proxy_peers.allows(conn.client)
        buf = conn.buf
        while True:
            if allowed:
                parsed = parse_proxy_header(buf, self._proxy_mode or "auto")
                if parsed is not None:
                    info, used = parsed
                    conn.proxy = info if info.client_host is not None else None
                    conn.buf = buf[used:]
                    return
            elif buf.startswith(V1_PREFIX) or buf.startswith(V2_SIGNATURE):
                raise ForbiddenProxyRequest(f"PROXY header from {describe_peer(conn.client)}")
            elif len(buf) >= len(V2_SIGNATURE) or not (
                V1_PREFIX.startswith(buf[: len(V1_PREFIX)]) or V2_SIGNATURE.startswith(buf)
            ):
                conn.buf = buf
                return  # an ordinary request from a peer that may not send PROXY
            data = conn.sock.recv(RECV_SIZE)
            if not data:
                conn.buf = b""
                raise NoMoreData("peer closed the connection in a PROXY header")
            buf += data

    def _refuse(self, conn: Connection, exc: HTTPError) -> None:
        """Answer a request the HTTP layer refused, then let the connection close."""
        status = exc.status
        if status is None:
            self.log.debug("%s: %s", describe_peer(conn.client), exc.detail)
            return
        self.log.info("Invalid request from %s: %s", describe_peer(conn.client), exc.detail)
        conn.linger = True
        self._send_error(conn, exc)

    def time_out_head(self, conn: Connection) -> None:
        """For a worker's sweep: a parked head passed ``header_timeout``. Answer 408 and
        drop what was received, without ever blocking (the sweep serves every connection);
        the caller closes the connection."""
        error = self._head_timeout()
        self.log.info("Invalid request from %s: %s", describe_peer(conn.client), error.detail)
        data = self._error_bytes(error)
        sock = conn.sock
        conn.linger = False
        conn.buf = b""
        try:
            sock.send(data, _DONTWAIT)  # type: ignore[arg-type]
            # unread bytes would turn the close into a reset that can destroy the answer
            seen = 0
            while seen < DRAIN_LIMIT:
                chunk = sock.recv(RECV_SIZE, _DONTWAIT)
                if not chunk:
                    break
                seen += len(chunk)
        except OSError:
            pass

    def _head_timeout(self) -> RequestTimeout:
        return RequestTimeout(f"request head not complete in {self.header_timeout:g}s")

    def _error_bytes(self, error: HTTPError | int) -> bytes | None:
        """The short error response for ``error`` (see ``http.errors.error_response``)
        with our Server and Date headers."""
        ctx = self.ctx
        return error_response(error, headers=ctx.server_header + ctx.date_header())

    def _send_error(self, conn: Connection, error: HTTPError | int) -> None:
        """Send ``_error_bytes(error)``; a client that is gone or not reading is ignored."""
        data = self._error_bytes(error)
        if data is None:
            return
        try:
            conn.sock.sendall(data)
        except OSError:
            pass

    # -- request level ------------------------------------------------------------------

    def _body_input(self, conn: Connection, req: Request) -> Any:
        """``wsgi.input`` for a request that announced a body (chunked or a length)."""
        decoder = body_decoder(req, self.limits)  # 413 before any body when CL says so
        if decoder is None:
            return self.empty_input
        expect = req.expect_continue and req.version >= (1, 1)
        return InputStream(conn, req.content_length, decoder if req.chunked else None, expect,
                           self.pace)  # fmt: skip

    def _handle(self, conn: Connection, req: Request) -> bool:
        try:
            if req.chunked or req.content_length:
                inp = self._body_input(conn, req)
            else:
                inp = self.empty_input  # most requests: no call, no object
            environ = self.environ.build(req, conn, inp)
            if self._request_id is not None:
                self._request_id(environ)
        except HTTPError as exc:
            self._refuse(conn, exc)
            return False
        worker = self.worker
        resp = Response(self.ctx, conn.sock, req, self.keepalive and req.keep_alive
                        and worker.alive, inp)  # fmt: skip
        if "HTTP_UPGRADE" in environ:
            _note_upgrade(conn, resp, environ["HTTP_UPGRADE"])
        if self._hooked:
            _add_gunicorn_fields(req, conn, environ)
        started = time.monotonic() if self.access_enabled else 0.0
        try:
            if self._pre_request is not None:
                self._pre_request(worker=worker, req=req)
            result = self.app(environ, resp.start_response)
            kind = type(result)
            try:
                if kind is list or kind is tuple:
                    if len(result) == 1 and type(result[0]) is bytes:
                        body = result[0]
                    else:
                        body = _joined(result)
                    if resp.headers_sent:
                        resp.write(body)
                    else:
                        resp.send_whole(body, final=True)  # a list has no close() to call
                elif kind is not FileWrapper or not resp.send_file(result):
                    write = resp.write
                    for chunk in result:
                        write(chunk)
                resp.finish()
            finally:
                if kind is not list and kind is not tuple:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
        except ClientDisconnected as exc:
            self.log.debug("%s: client went away during %s %s: %s", describe_peer(conn.client),
                           req.method, req.path, exc)  # fmt: skip
            if self.access_enabled:  # as Gunicorn does: the request happened, log it
                self._access(environ, resp, started)
            return False
        except DeadlineExceeded:
            self._timed_out(conn, req, resp)
            if self.access_enabled:  # the 504 (or the cut) shows in the access log too
                self._access(environ, resp, started)
            return False
        except StopIteration:
            # Gunicorn's convention for "the app ended the connection itself": Flask-Sock
            # raises it once its websocket is closed. Nothing more may be written.
            self.log.debug("%s: the app ended the connection (%s %s)",
                           describe_peer(conn.client), req.method, req.path)  # fmt: skip
            return False
        except Exception as exc:
            self._failed(conn, req, resp, inp, exc)
            if self.access_enabled:
                self._access(environ, resp, started)
            return False
        if self._post_request is not None:
            self._post_request(worker=worker, req=req, environ=environ, resp=resp)
        if self.access_enabled:
            self._access(environ, resp, started)
        if not inp.complete and (not resp.keep_alive or not inp.drain(DRAIN_LIMIT)):
            conn.linger = True
            return False
        return resp.keep_alive

    def _failed(self, conn: Connection, req: Request, resp: Response, inp: Any,
                exc: Exception) -> None:  # fmt: skip
        conn.linger = True
        error = inp.error
        if error is not None:
            # the request body broke (client gone, bad chunk, too large): not the app's fault
            status = error.status
            if status is None:
                self.log.debug("%s: %s", describe_peer(conn.client), error.detail)
                return
            self.log.info(
                "Invalid request body from %s: %s", describe_peer(conn.client), error.detail
            )
            answer: HTTPError | int = error
        else:
            self.log.exception("Error handling request %s %s", req.method, req.uri)
            answer = status = 500
        if not resp.headers_sent:
            resp.status = f"{status} {status_reason(status, error)}"
            resp.headers_sent = True
            self._send_error(conn, answer)

    def _timed_out(self, conn: Connection, req: Request, resp: Response) -> None:
        self.log.error("Request timed out after %ss: %s %s from %s", self.timeout, req.method,
                       req.uri, describe_peer(conn.client))  # fmt: skip
        if not resp.headers_sent and not conn.long_lived:  # (the app may speak websocket)
            resp.status = "504 Gateway Timeout"
            resp.headers_sent = True
            self._send_error(conn, 504)

    def _access(self, environ: dict[str, Any], resp: Response, started: float) -> None:
        try:
            self.log.access(environ, resp.status or "500 Internal Server Error", resp.headers,
                            resp.sent, time.monotonic() - started)  # fmt: skip
        except Exception:
            self.log.exception("access log failed")


def _add_gunicorn_fields(req: Request, conn: Connection, environ: dict[str, Any]) -> None:
    """What Gunicorn's request object also carries, for request hooks written for it: the
    peer's address, the body stream and the scheme the request came in with (after
    ``forwarded_allow_ips``, as ``wsgi.url_scheme``)."""
    req.peer_addr = req.remote_addr = conn.client
    req.body = environ["wsgi.input"]
    req.scheme = environ["wsgi.url_scheme"]


def asks_for_websocket(upgrade: str) -> bool:
    """An ``Upgrade`` header value (``HTTP_UPGRADE``) that asks for a websocket."""
    return "websocket" in upgrade.lower()


def _joined(chunks: list[Any] | tuple[Any, ...]) -> bytes:
    """A list or tuple body as one ``bytes``; a chunk that is not bytes (a ``str``, most
    often) is named by ``body_bytes``, as ``Response.write`` names it."""
    try:
        return b"".join(chunks)
    except TypeError:
        pass  # (outside the except block below: the log shows one traceback, not two)
    return b"".join([body_bytes(chunk) for chunk in chunks])


def _note_upgrade(conn: Connection, resp: Response, upgrade: str) -> None:
    """A request asking for a websocket: the app may take the connection over for as long
    as it likes, so no request clock applies, and whatever the app answers, the connection
    is not reused (the worker cannot tell whether the protocol switched)."""
    if asks_for_websocket(upgrade):
        conn.long_lived = True
        resp.keep_alive = False
