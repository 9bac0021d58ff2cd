"""The parsed request head, as the HTTP layer hands it to the WSGI layer.

A ``Request`` is plain data: the parser fills it once, nothing here does I/O. Header names
are upper-cased (as Gunicorn reports them), values are ``str`` decoded as latin-1 so that
obs-text survives byte for byte (PEP 3333 "bytes as latin-1" strings).
"""

from __future__ import annotations

from typing import Any


class Request:
    """One request head. Class-level defaults: the parser stores only what the request
    has (six attributes for the usual GET)."""

    #: every attribute of a request (for comparisons and debugging)
    FIELDS = (
        "method", "uri", "path", "query", "version", "headers", "scheme", "host", "port",
        "fragment", "content_length", "chunked", "keep_alive", "expect_continue", "trailers",
        "proxy",
    )  # fmt: skip

    #: scheme/host/port are set only for absolute-form targets (a request hook sees
    #: ``scheme`` as Gunicorn's: the effective one, ``wsgi.url_scheme``)
    scheme = ""
    host: str | None = None
    port: int | None = None
    fragment = ""
    #: framing: exactly one of content_length / chunked describes the body
    #: (neither: no body)
    content_length: int | None = None
    chunked = False
    keep_alive = True
    expect_continue = False
    #: filled by the chunked body decoder once the body is complete
    trailers: list[tuple[str, str]] | None = None
    #: (client_host, client_port, proxy_host, proxy_port) from a PROXY header, or None
    proxy: tuple[str, int, str, int] | None = None
    #: set only for request hooks, as Gunicorn's request has them (the WSGI layer's
    #: ``_add_gunicorn_fields``): the socket peer's address and the body stream
    peer_addr: Any = None
    remote_addr: Any = None
    body: Any = None

    def __init__(
        self,
        method: str,
        uri: str,
        path: str,
        query: str,
        version: tuple[int, int],
        headers: list[tuple[str, str]],
        **others: Any,
    ) -> None:
        self.method = method
        #: the raw request-target exactly as sent (RAW_URI)
        self.uri = uri
        #: path is still percent-encoded; the WSGI layer decodes it for PATH_INFO
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        if others:
            for name, value in others.items():
                if name not in _OPTIONAL:
                    raise TypeError(f"Request() got an unexpected keyword argument {name!r}")
                setattr(self, name, value)

    def should_close(self) -> bool:
        """Gunicorn's name: the client asked to close the connection after this request."""
        return not self.keep_alive

    def get_header(self, name: str) -> str | None:
        """First value of header ``name`` (upper-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} HTTP/{self.version[0]}.{self.version[1]}>"


_OPTIONAL = frozenset(
    ("scheme", "host", "port", "fragment", "content_length", "chunked", "keep_alive",
     "expect_continue", "trailers", "proxy")
)  # fmt: skip
