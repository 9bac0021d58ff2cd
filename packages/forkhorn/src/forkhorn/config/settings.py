"""The settings table: Gunicorn's names, flags and defaults, plus forkhorn's additions.

One ``Setting`` per row, rows grouped in ``forkhorn.config.table``. The CLI
(``forkhorn.cli``), config files (``forkhorn.config.loader``), ``--print-config`` and the
documentation are all generated from ``SETTINGS``; add a setting there and it exists
everywhere. Server hooks are not rows: they are pluggy hooks (``forkhorn.plugins.hookspec``)
and a config file's functions are registered as their implementations.

``GUNICORN_ONLY`` lists Gunicorn settings forkhorn does not implement (HTTP/2, ASGI, the
"dirty" arbiters, the control socket, uWSGI): a config file setting them loads (they are
ignored with a warning) instead of failing.
"""

from __future__ import annotations

from forkhorn.config.setting import Setting
from forkhorn.config.table import http, logs, server

SETTINGS: list[Setting] = [*server.ROWS, *http.ROWS, *logs.ROWS]

BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}

GUNICORN_ONLY: frozenset[str] = frozenset(
    {
        "asgi_disconnect_grace_period",
        "asgi_lifespan",
        "asgi_loop",
        "control_socket",
        "control_socket_disable",
        "control_socket_mode",
        "dirty_apps",
        "dirty_graceful_timeout",
        "dirty_post_fork",
        "dirty_threads",
        "dirty_timeout",
        "dirty_worker_exit",
        "dirty_worker_init",
        "dirty_workers",
        "enable_backlog_metric",
        "http2_cleartext",
        "http2_initial_window_size",
        "http2_max_concurrent_streams",
        "http2_max_frame_size",
        "http2_max_header_list_size",
        "http_parser",
        "http_protocols",
        "on_dirty_starting",
        "protocol",
        "root_path",
        "uwsgi_allow_ips",
        "websocket_max_message_size",
    }
)

#: the command-line options of ``GUNICORN_ONLY`` settings (Gunicorn 27), each with whether it
#: takes a value: accepted and ignored with a warning, as the settings are in a config file
GUNICORN_ONLY_FLAGS: dict[str, bool] = {
    "--asgi-disconnect-grace-period": True,
    "--asgi-lifespan": True,
    "--asgi-loop": True,
    "--control-socket": True,
    "--control-socket-mode": True,
    "--no-control-socket": False,
    "--dirty-app": True,
    "--dirty-graceful-timeout": True,
    "--dirty-threads": True,
    "--dirty-timeout": True,
    "--dirty-workers": True,
    "--enable-backlog-metric": False,
    "--http2-cleartext": True,
    "--http2-initial-window-size": True,
    "--http2-max-concurrent-streams": True,
    "--http2-max-frame-size": True,
    "--http2-max-header-list-size": True,
    "--http-parser": True,
    "--http-protocols": True,
    "--protocol": True,
    "--root-path": True,
    "--uwsgi-allow-from": True,
    "--websocket-max-message-size": True,
}

__all__ = ["BY_NAME", "GUNICORN_ONLY", "GUNICORN_ONLY_FLAGS", "SETTINGS", "Setting"]
