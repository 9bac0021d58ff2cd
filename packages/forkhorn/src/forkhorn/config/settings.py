"""The settings table: Gunicorn's names, flags and defaults, plus forkhorn's additions.

One ``Setting`` per row. The CLI (``forkhorn.cli``), config files (``forkhorn.config.loader``),
``--print-config`` and the documentation are all generated from ``SETTINGS``; add a setting
here and it exists everywhere.
"""

from __future__ import annotations

from forkhorn.config import validators as v
from forkhorn.config.setting import Setting

SOCKET = "Server Socket"
WORKERS = "Worker Processes"
SECURITY = "Security"
PARSER = "HTTP Parsing"
MECHANICS = "Server Mechanics"
LOGGING = "Logging"
SSL = "SSL"
PROCESS = "Process Naming"
DEBUG = "Debugging"
PLUGINS = "Plugins"

SETTINGS: list[Setting] = [
    # --- Server Socket ---------------------------------------------------------------
    Setting(
        "bind", SOCKET, [], v.appended_list,
        """The sockets to bind: ``HOST``, ``HOST:PORT``, ``[IPV6]:PORT``, ``unix:PATH`` or
``fd://FD``. Give it several times to bind several. Default ``127.0.0.1:8000``, or
``0.0.0.0:$PORT`` when the ``PORT`` environment variable is set.""",
        flags=("-b", "--bind"), action="append", meta="ADDRESS",
    ),
    Setting(
        "backlog", SOCKET, 2048, v.integer(1),
        "The maximum number of pending connections the kernel queues per socket.",
        flags=("--backlog",), meta="INT",
    ),
    Setting(
        "reuse_port", SOCKET, False, v.boolean,
        "Set ``SO_REUSEPORT`` on listening sockets.",
        flags=("--reuse-port",), action="store_true",
    ),
    # --- Worker Processes ------------------------------------------------------------
    Setting(
        "workers", WORKERS, 1, v.integer(1),
        """The number of worker processes. Defaults to ``$WEB_CONCURRENCY`` when set, else 1.""",
        flags=("-w", "--workers"), meta="INT", env="WEB_CONCURRENCY",
    ),
    Setting(
        "worker_class", WORKERS, "sync", v.string,
        """The worker class: a registered name (``forkhorn --list-workers``), a
``module:Class`` or dotted path, or Gunicorn's ``egg:DIST#NAME``.""",
        flags=("-k", "--worker-class"), meta="STRING",
    ),
    Setting(
        "threads", WORKERS, 1, v.integer(1),
        """Threads per worker for the ``gthread`` worker. With the ``sync`` class, a value
above 1 switches to ``gthread`` as Gunicorn does.""",
        flags=("--threads",), meta="INT",
    ),
    Setting(
        "worker_connections", WORKERS, 1000, v.integer(1),
        "The maximum number of simultaneous connections per worker (gthread, gevent, eventlet).",
        flags=("--worker-connections",), meta="INT",
    ),
    Setting(
        "max_requests", WORKERS, 0, v.positive_int,
        """Restart a worker after this many requests (0 disables). Its replacement is
started and ready before it stops accepting.""",
        flags=("--max-requests",), meta="INT",
    ),
    Setting(
        "max_requests_jitter", WORKERS, 0, v.positive_int,
        "A random amount up to this added to ``max_requests`` per worker, to spread restarts.",
        flags=("--max-requests-jitter",), meta="INT",
    ),
    Setting(
        "timeout", WORKERS, 30, v.positive_int,
        """Seconds a worker may stay silent (or a request may run) before it is aborted and
replaced. 0 disables.""",
        flags=("-t", "--timeout"), meta="INT",
    ),
    Setting(
        "graceful_timeout", WORKERS, 30, v.positive_int,
        "Seconds workers get to finish in-flight requests after a graceful stop or reload.",
        flags=("--graceful-timeout",), meta="INT",
    ),
    Setting(
        "keepalive", WORKERS, 2, v.positive_int,
        "Seconds an idle keep-alive connection is kept open (not the sync worker). 0 disables keep-alive.",
        flags=("--keep-alive",), meta="INT",
    ),
    # --- Security / HTTP parsing -----------------------------------------------------
    Setting(
        "limit_request_line", SECURITY, 4094, v.integer(0),
        """The maximum size of the request line in bytes (414 above it). 0 means the
largest we allow (8190).""",
        flags=("--limit-request-line",), meta="INT",
    ),
    Setting(
        "limit_request_fields", SECURITY, 100, v.integer(0),
        "The maximum number of header fields (431 above it). 0 means the largest we allow (32768).",
        flags=("--limit-request-fields",), meta="INT",
    ),
    Setting(
        "limit_request_field_size", SECURITY, 8190, v.integer(0),
        "The maximum size of one header field line (431 above it). 0 means the largest we allow (8190*4).",
        flags=("--limit-request-field_size", "--limit-request-field-size"), meta="INT",
    ),
    Setting(
        "limit_request_body", SECURITY, 0, v.positive_int,
        "The maximum request body size in bytes (413 above it). 0 means unlimited.",
        flags=("--limit-request-body",), meta="INT",
    ),
    Setting(
        "permit_obsolete_folding", PARSER, False, v.boolean,
        "Accept obsolete line folding (obs-fold) in header values, unfolding it to one space.",
        flags=("--permit-obsolete-folding",), action="store_true",
    ),
    Setting(
        "permit_unconventional_http_method", PARSER, False, v.boolean,
        """Accept any token as a method (lower case, very long, with ``#``...); by default
methods are 3-20 upper-case letters.""",
        flags=("--permit-unconventional-http-method",), action="store_true",
    ),
    Setting(
        "permit_unconventional_http_version", PARSER, False, v.boolean,
        "Accept HTTP/1.x versions other than 1.0 and 1.1 (answered as HTTP/1.1).",
        flags=("--permit-unconventional-http-version",), action="store_true",
    ),
    Setting(
        "casefold_http_method", PARSER, False, v.boolean,
        "Upper-case the method before handing it to the app.",
        flags=("--casefold-http-method",), action="store_true",
    ),
    Setting(
        "strip_header_spaces", PARSER, False, v.boolean,
        "Strip spaces between a header name and its colon (dangerous: request smuggling).",
        flags=("--strip-header-spaces",), action="store_true",
    ),
    Setting(
        "header_map", PARSER, "drop", v.choice("drop", "refuse", "dangerous"),
        """What to do with header names containing ``_``, which WSGI cannot tell from
``-``: ``drop`` them, ``refuse`` the request, or pass them (``dangerous``).""",
        flags=("--header-map",), meta="STRING",
    ),
    Setting(
        "permit_missing_host", PARSER, False, v.boolean,
        """Accept HTTP/1.1 requests without a ``Host`` header (RFC 9112 requires one; the
default refuses them with 400).""",
        flags=("--permit-missing-host",), action="store_true",
    ),
    Setting(
        "forwarded_allow_ips", SECURITY, "127.0.0.1,::1", v.string_list,
        """Peers (IPs, CIDRs, ``*``) trusted to set secure-scheme and forwarding headers.
Defaults to ``$FORWARDED_ALLOW_IPS`` when set.""",
        flags=("--forwarded-allow-ips",), meta="STRING", env="FORWARDED_ALLOW_IPS",
    ),
    Setting(
        "secure_scheme_headers", SECURITY,
        {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"},
        v.dict_of_strings,
        "Headers (and values) by which a trusted proxy says the request came over HTTPS.",
    ),
    Setting(
        "forwarder_headers", SECURITY, ["SCRIPT_NAME", "PATH_INFO"], v.string_list,
        "Environ keys a trusted proxy may set through headers (e.g. ``SCRIPT_NAME``).",
        flags=("--forwarder-headers",), meta="STRING",
    ),
    Setting(
        "proxy_protocol", SECURITY, "off", v.choice("off", "v1", "v2", "auto", "true", "false"),
        "Expect a PROXY protocol header (``v1``, ``v2`` or ``auto``) from peers in ``proxy_allow_ips``.",
        flags=("--proxy-protocol",), meta="MODE", nargs="?", const="auto",
    ),
    Setting(
        "proxy_allow_ips", SECURITY, "127.0.0.1,::1", v.string_list,
        "Peers (IPs, CIDRs, ``*``) allowed to send a PROXY protocol header.",
        flags=("--proxy-allow-from",), meta="STRING",
    ),
    # --- Server Mechanics ------------------------------------------------------------
    Setting(
        "preload_app", MECHANICS, False, v.boolean,
        "Load the app in the master before forking workers.",
        flags=("--preload",), action="store_true",
    ),
    Setting(
        "reload", MECHANICS, False, v.boolean,
        "Restart workers when the app's source files change (development).",
        flags=("--reload",), action="store_true",
    ),
    Setting(
        "daemon", MECHANICS, False, v.boolean,
        "Detach from the terminal and run in the background.",
        flags=("-D", "--daemon"), action="store_true",
    ),
    Setting(
        "raw_env", MECHANICS, [], v.appended_list,
        "Set an environment variable in the process: ``-e KEY=VALUE``, repeatable.",
        flags=("-e", "--env"), action="append", meta="ENV",
    ),
    Setting(
        "pidfile", MECHANICS, None, v.string,
        "Write the master's pid to this file.",
        flags=("-p", "--pid"), meta="FILE",
    ),
    Setting(
        "worker_tmp_dir", MECHANICS, None, v.string,
        "A directory for workers' temporary files.",
        flags=("--worker-tmp-dir",), meta="DIR",
    ),
    Setting(
        "user", MECHANICS, None, v.string,
        "Switch worker processes to this user (name or uid) after binding.",
        flags=("-u", "--user"), meta="USER",
    ),
    Setting(
        "group", MECHANICS, None, v.string,
        "Switch worker processes to this group (name or gid) after binding.",
        flags=("-g", "--group"), meta="GROUP",
    ),
    Setting(
        "umask", MECHANICS, 0, v.octal_umask,
        "The umask of the processes (files and unix sockets they create).",
        flags=("-m", "--umask"), meta="INT",
    ),
    Setting(
        "initgroups", MECHANICS, False, v.boolean,
        "Set the worker's supplementary groups from the user's groups.",
        flags=("--initgroups",), action="store_true",
    ),
    Setting(
        "chdir", MECHANICS, None, v.string,
        "Change to this directory before loading the app.",
        flags=("--chdir",), meta="DIR",
    ),
    Setting(
        "pythonpath", MECHANICS, None, v.string,
        "Comma-separated directories added to ``sys.path`` (e.g. ``/home/app,/opt/lib``).",
        flags=("--pythonpath",), meta="STRING",
    ),
    # --- Logging ---------------------------------------------------------------------
    Setting(
        "accesslog", LOGGING, None, v.string,
        "The access log file, ``-`` for stdout. Off by default.",
        flags=("--access-logfile",), meta="FILE",
    ),
    Setting(
        "access_log_format", LOGGING,
        '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"', v.string,
        "The access log line format, with Gunicorn's atoms.",
        flags=("--access-logformat",), meta="STRING",
    ),
    Setting(
        "errorlog", LOGGING, "-", v.string,
        "The error log file, ``-`` for stderr.",
        flags=("--error-logfile", "--log-file"), meta="FILE",
    ),
    Setting(
        "loglevel", LOGGING, "info", v.choice("debug", "info", "warning", "error", "critical"),
        "The error log level.",
        flags=("--log-level",), meta="LEVEL",
    ),
    Setting(
        "capture_output", LOGGING, False, v.boolean,
        "Redirect the app's stdout and stderr to the error log.",
        flags=("--capture-output",), action="store_true",
    ),
    Setting(
        "logconfig_dict", LOGGING, {}, v.any_dict,
        "A ``logging.config.dictConfig`` dictionary (config file only).",
    ),
    Setting(
        "log_format", LOGGING, "text", v.choice("text", "json"),
        "``json`` writes access and error logs as one JSON object per line.",
        flags=("--log-format",), meta="FORMAT",
    ),
    # --- Process Naming --------------------------------------------------------------
    Setting(
        "proc_name", PROCESS, None, v.string,
        "The process title base (needs ``setproctitle``); default: the app module.",
        flags=("-n", "--name"), meta="STRING",
    ),
    # --- SSL -------------------------------------------------------------------------
    Setting(
        "certfile", SSL, None, v.string,
        "The TLS certificate file; setting it turns TLS on.",
        flags=("--certfile",), meta="FILE",
    ),
    Setting(
        "keyfile", SSL, None, v.string,
        "The TLS private key file.",
        flags=("--keyfile",), meta="FILE",
    ),
    # --- Debugging -------------------------------------------------------------------
    Setting(
        "check_config", DEBUG, False, v.boolean,
        "Check the configuration and the app, then exit (0 if fine).",
        flags=("--check-config",), action="store_true",
    ),
    Setting(
        "print_config", DEBUG, False, v.boolean,
        "Print the effective configuration and where each value came from, then exit.",
        flags=("--print-config",), action="store_true",
    ),
]

BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
