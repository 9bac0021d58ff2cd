"""The HTTP layer's one error hierarchy.

Every refusal of client input is an ``HTTPError`` carrying the status the server should
answer (``None``: the input ended before a request was complete, close without answering).
Class names follow Gunicorn's exception names so the shared request corpus maps onto them.
After any ``HTTPError`` the connection is closed: no later byte on it is parsed.
"""

from __future__ import annotations


class HTTPError(Exception):
    """A request the server refuses. ``status`` is the response to send, or None."""

    status: int | None = 400
    reason: str = "Bad Request"

    def __init__(self, detail: str = "", status: int | None = None) -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail or self.__class__.__name__
        if status is not None:
            self.status = status


class NoMoreData(HTTPError):
    """The peer closed the connection in the middle of a request."""

    status = None
    reason = ""


class InvalidRequestLine(HTTPError):
    pass


class InvalidRequestMethod(HTTPError):
    pass


class InvalidHTTPVersion(HTTPError):
    pass


class InvalidHeader(HTTPError):
    pass


class InvalidHeaderName(HTTPError):
    pass


class ObsoleteFolding(HTTPError):
    pass


class InvalidHost(HTTPError):
    pass


class UnsupportedTransferCoding(HTTPError):
    status = 501
    reason = "Not Implemented"


class InvalidChunkSize(HTTPError):
    pass


class InvalidChunkExtension(HTTPError):
    pass


class ChunkMissingTerminator(HTTPError):
    pass


class InvalidContentLength(HTTPError):
    pass


class IncompleteBody(HTTPError):
    """The peer closed the connection before the whole Content-Length body arrived."""


class LimitRequestLine(HTTPError):
    status = 414
    reason = "URI Too Long"


class LimitRequestHeaders(HTTPError):
    status = 431
    reason = "Request Header Fields Too Large"


class LimitRequestBody(HTTPError):
    status = 413
    reason = "Content Too Large"


class InvalidProxyLine(HTTPError):
    pass


class ForbiddenProxyRequest(HTTPError):
    status = 403
    reason = "Forbidden"


class InvalidSchemeHeaders(HTTPError):
    pass


class UnsupportedHTTPVersion(HTTPError):
    status = 505
    reason = "HTTP Version Not Supported"


class RequestTimeout(HTTPError):
    status = 408
    reason = "Request Timeout"


def error_response(error: HTTPError) -> bytes | None:
    """The bytes to answer ``error`` with (short text body, ``Connection: close``), or None
    when the connection should just be closed. The body never echoes client input."""
    if error.status is None:
        return None
    body = f"{error.status} {error.reason}\n".encode("ascii")
    head = (
        f"HTTP/1.1 {error.status} {error.reason}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
