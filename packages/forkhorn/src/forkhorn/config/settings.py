"""The settings table: Gunicorn's names, flags and defaults, plus forkhorn's additions.

One ``Setting`` per row, rows grouped in ``forkhorn.config.table``. The CLI
(``forkhorn.cli``), config files (``forkhorn.config.loader``), ``--print-config`` and the
documentation are all generated from ``SETTINGS``; add a setting there and it exists
everywhere. Server hooks are not rows: they are pluggy hooks (``forkhorn.plugins.hookspec``)
and a config file's functions are registered as their implementations.

``GUNICORN_ONLY`` lists Gunicorn settings forkhorn does not implement (HTTP/2, ASGI, the
"dirty" arbiters, the control socket, uWSGI), with their options: a config file setting
them loads, and the command line giving their options parses (they are ignored with a
warning), instead of failing.
"""

from __future__ import annotations

from forkhorn.config.setting import Setting
from forkhorn.config.table import http, logs, server

SETTINGS: list[Setting] = [*server.ROWS, *http.ROWS, *logs.ROWS]

BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}

#: Gunicorn (27) settings forkhorn does not implement, each with its command-line option
#: and whether that takes a value (None: no option, a hook of those features). Setting one
#: in a config file, or giving its option, is ignored with a warning instead of failing.
GUNICORN_ONLY: dict[str, tuple[str, bool] | None] = {
    "asgi_disconnect_grace_period": ("--asgi-disconnect-grace-period", True),
    "asgi_lifespan": ("--asgi-lifespan", True),
    "asgi_loop": ("--asgi-loop", True),
    "control_socket": ("--control-socket", True),
    "control_socket_disable": ("--no-control-socket", False),
    "control_socket_mode": ("--control-socket-mode", True),
    "dirty_apps": ("--dirty-app", True),
    "dirty_graceful_timeout": ("--dirty-graceful-timeout", True),
    "dirty_post_fork": None,
    "dirty_threads": ("--dirty-threads", True),
    "dirty_timeout": ("--dirty-timeout", True),
    "dirty_worker_exit": None,
    "dirty_worker_init": None,
    "dirty_workers": ("--dirty-workers", True),
    "enable_backlog_metric": ("--enable-backlog-metric", False),
    "http2_cleartext": ("--http2-cleartext", True),
    "http2_initial_window_size": ("--http2-initial-window-size", True),
    "http2_max_concurrent_streams": ("--http2-max-concurrent-streams", True),
    "http2_max_frame_size": ("--http2-max-frame-size", True),
    "http2_max_header_list_size": ("--http2-max-header-list-size", True),
    "http_parser": ("--http-parser", True),
    "http_protocols": ("--http-protocols", True),
    "on_dirty_starting": None,
    "protocol": ("--protocol", True),
    "root_path": ("--root-path", True),
    "uwsgi_allow_ips": ("--uwsgi-allow-from", True),
    "websocket_max_message_size": ("--websocket-max-message-size", True),
}

__all__ = ["BY_NAME", "GUNICORN_ONLY", "SETTINGS", "Setting"]
