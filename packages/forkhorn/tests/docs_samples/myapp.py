"""The first app of the Getting started page (tests/test_docs.py serves it for real)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = b"Hello from forkhorn\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def create_app(greeting: str = "Hello") -> Callable[..., Iterable[bytes]]:
    """An app factory: ``forkhorn 'myapp:create_app("Bonjour")'`` calls it once per worker."""
    body = f"{greeting} from forkhorn\n".encode()

    def greet(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return greet
