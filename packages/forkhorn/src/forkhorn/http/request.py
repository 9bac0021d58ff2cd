"""The parsed request head, as the HTTP layer hands it to the WSGI layer.

A ``Request`` is plain data: the parser fills it once, nothing here does I/O. Header names
are upper-cased (as Gunicorn reports them), values are ``str`` decoded as latin-1 so that
obs-text survives byte for byte (PEP 3333 "bytes as latin-1" strings).
"""

from __future__ import annotations


class Request:
    __slots__ = (
        "chunked",
        "content_length",
        "expect_continue",
        "fragment",
        "headers",
        "host",
        "keep_alive",
        "method",
        "path",
        "port",
        "proxy",
        "query",
        "scheme",
        "trailers",
        "uri",
        "version",
    )

    def __init__(
        self,
        method: str,
        uri: str,
        path: str,
        query: str,
        version: tuple[int, int],
        headers: list[tuple[str, str]],
        *,
        fragment: str = "",
        scheme: str = "",
        host: str | None = None,
        port: int | None = None,
        content_length: int | None = None,
        chunked: bool = False,
        keep_alive: bool = True,
        expect_continue: bool = False,
    ) -> None:
        self.method = method
        #: the raw request-target exactly as sent (RAW_URI)
        self.uri = uri
        #: scheme/host/port are set only for absolute-form targets
        self.scheme = scheme
        self.host = host
        self.port = port
        #: path is still percent-encoded; the WSGI layer decodes it for PATH_INFO
        self.path = path
        self.query = query
        self.fragment = fragment
        self.version = version
        self.headers = headers
        #: framing: exactly one of content_length / chunked describes the body
        #: (neither: no body)
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        #: filled by the chunked body decoder once the body is complete
        self.trailers: list[tuple[str, str]] | None = None
        #: (client_host, client_port, proxy_host, proxy_port) from a PROXY header, or None
        self.proxy: tuple[str, int, str, int] | None = None

    def get_header(self, name: str) -> str | None:
        """First value of header ``name`` (upper-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} HTTP/{self.version[0]}.{self.version[1]}>"
