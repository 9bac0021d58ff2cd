"""The eventlet websocket app the tests serve (imported by the server's workers, not by
pytest): ``/ws`` echoes over ``eventlet.websocket``, the rest is the shared test app
(:mod:`forkhorn.testing.apps`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from forkhorn.testing.apps import app


def websocket_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``/ws``: an ``eventlet.websocket`` echo (Flask-SocketIO style); the rest: ``app``."""
    if environ["PATH_INFO"] != "/ws":
        return app(environ, start_response)
    from eventlet import websocket

    @websocket.WebSocketWSGI  # type: ignore[misc]
    def echo(ws: Any) -> None:
        while (message := ws.wait()) is not None:
            ws.send(message)

    return echo(environ, start_response)  # type: ignore[no-any-return]
