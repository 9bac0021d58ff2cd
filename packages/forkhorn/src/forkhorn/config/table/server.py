"""Rows: the config file itself, sockets, worker processes and server mechanics.

Names, flags and defaults are Gunicorn's; where forkhorn validates more strictly the doc
says so. Environment-derived defaults (``PORT``, ``WEB_CONCURRENCY``, ``SENDFILE``) are
read by the loader when a ``Config`` is built, never at import time.
"""

from __future__ import annotations

from forkhorn.config import validators as v
from forkhorn.config.setting import CONFIG_FILE, MECHANICS, SOCKET, WORKERS, Setting

# The rows are kept compact on purpose: one setting reads as one block.
# fmt: off
ROWS: list[Setting] = [
    # --- Config File -----------------------------------------------------------------
    Setting(
        "config", CONFIG_FILE, None, v.string,
        """The configuration file: ``PATH``, ``file:PATH`` or ``python:MODULE_NAME``.

When not given, ``./forkhorn.conf.py`` is read if it exists, else ``./gunicorn.conf.py``
if that exists (so a Gunicorn project switches by changing one word). Only meaningful on
the command line or in ``FORKHORN_CMD_ARGS`` (``GUNICORN_CMD_ARGS``).""",
        flags=("-c", "--config"), meta="CONFIG",
    ),
    Setting(
        "wsgi_app", CONFIG_FILE, None, v.string,
        """The WSGI application, ``MODULE:VARIABLE``, used when no ``APP_MODULE`` is given on
the command line.""",
    ),
    # --- Server Socket ---------------------------------------------------------------
    Setting(
        "bind", SOCKET, ["127.0.0.1:8000"], v.bind_list,
        """The sockets to bind: ``HOST``, ``HOST:PORT``, ``[IPV6]:PORT``, ``unix:PATH`` or
``fd://FD``. Give it several times to bind several. Default ``127.0.0.1:8000``, or
``0.0.0.0:$PORT`` when the ``PORT`` environment variable is set.""",
        flags=("-b", "--bind"), action="append", meta="ADDRESS",
        env="PORT", env_value=lambda port: [f"0.0.0.0:{port}"],
    ),
    Setting(
        "backlog", SOCKET, 2048, v.integer(1),
        "The maximum number of pending connections the kernel queues per socket.",
        flags=("--backlog",), meta="INT",
    ),
    # --- Worker Processes ------------------------------------------------------------
    Setting(
        "workers", WORKERS, 1, v.integer(1),
        """The number of worker processes. Defaults to ``$WEB_CONCURRENCY`` when set, else 1.""",
        flags=("-w", "--workers"), meta="INT", env="WEB_CONCURRENCY",
    ),
    Setting(
        "worker_class", WORKERS, "sync", v.class_or_string,
        """The worker class: a registered name (``forkhorn --list-workers``), a
``module:Class`` or dotted path, or Gunicorn's ``egg:DIST#NAME``.

The class is chosen before the config file runs (so that gevent and eventlet can patch
early): a literal ``worker_class = "gevent"`` in the config file is seen then; a computed
value is only seen after the file ran, too late for early patching.""",
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
        "max_worker_memory", WORKERS, 0, v.memory_size,
        """Replace a worker whose resident memory (RSS) has grown past this size. 0 (the
default) disables it. A forkhorn addition (uWSGI's ``reload-on-rss``).

A size in bytes, or with a unit: ``512M``, ``1.5G``, ``800MiB`` (K, M, G are powers of
1024). A non-zero value under 1 MiB is refused, since ``512`` alone means bytes.

The check reads ``/proc/self/statm`` (Linux; elsewhere the setting is ignored with a
warning) after a request, at most once a second, so the limit is soft: what a request
allocates is seen after it. A worker over the limit logs its RSS and the limit, then is
replaced like one that reached ``max_requests``: the replacement is started and ready
before the old worker stops accepting, and the old one finishes its in-flight requests;
no request fails. Set it well above the RSS of a fresh worker: a worker already over the
limit after its first request is not recycled (its replacement would be as big), and an
error says so.""",
        flags=("--max-worker-memory",), meta="SIZE",
    ),
    Setting(
        "timeout", WORKERS, 30, v.positive_int,
        """Seconds a worker may stay silent (or a request may run) before it is aborted and
replaced. 0 disables. A websocket (a request with ``Upgrade: websocket``) is exempt in the
gthread, gevent and eventlet workers: the app ends it.""",
        flags=("-t", "--timeout"), meta="INT",
    ),
    Setting(
        "graceful_timeout", WORKERS, 30, v.positive_int,
        "Seconds workers get to finish in-flight requests after a graceful stop or reload.",
        flags=("--graceful-timeout",), meta="INT",
    ),
    Setting(
        "keepalive", WORKERS, 2, v.positive_int,
        """Seconds an idle keep-alive connection is kept open (not the sync worker).
0 disables keep-alive.""",
        flags=("--keep-alive",), meta="INT",
    ),
    Setting(
        "header_timeout", WORKERS, 10.0, v.number(0),
        """Seconds a client has to send a complete request head, counted from its first
byte (on the sync worker: from the connection's accept, so a client that connects and
sends nothing is closed after this long too). Past it the server answers ``408 Request
Timeout`` and closes the connection when some of the head arrived, and closes silently
when none did. 0 disables (the sync worker then falls back to ``timeout``). A forkhorn
addition against slow-header ("slowloris") clients: Gunicorn has no such deadline.

Every worker class applies it. The common request (its head in one read) pays nothing
for it: the deadline is armed only when a read leaves the head incomplete. On gthread a
connection with an incomplete head goes back to the poller, so a trickling client holds
no thread.""",
        flags=("--header-timeout",), meta="SECONDS",
    ),
    Setting(
        "body_timeout", WORKERS, 30.0, v.number(0),
        """Seconds the server waits for the next piece of a request body while the app
reads it; also the grace period of ``min_body_rate``. Past it the read fails (the app
sees an ``OSError``; a response not started yet is ``408 Request Timeout``) and the
connection is closed. 0 disables both. A forkhorn addition.

Armed only when a read has to wait for the network: a body already received with its
head costs nothing.""",
        flags=("--body-timeout",), meta="SECONDS",
    ),
    Setting(
        "min_body_rate", WORKERS, 1024.0, v.number(0),
        """The slowest average rate, in bytes per second, at which a request body may
arrive once ``body_timeout`` seconds of grace are spent: having received ``n`` bytes,
a body may have taken at most ``body_timeout + n / min_body_rate`` seconds (checked after
each read), else the read fails with ``408`` as for ``body_timeout``. Stops clients that
trickle a body a byte at a time, which ``body_timeout`` alone would let through.
0 disables the rate check. A forkhorn addition (Kestrel's ``MinRequestBodyDataRate``).""",
        flags=("--min-body-rate",), meta="BYTES",
    ),
    Setting(
        "write_timeout", WORKERS, 30.0, v.number(0),
        """Seconds a response write may wait for the client to make room (to read). A
client that stops reading is disconnected after this long without progress, and the
app's iterable is still closed. 0 disables (a blocked write then lasts until the worker's
``timeout`` ends the request). A forkhorn addition.

Costs nothing while the client keeps up: the first send of a response never blocks; the
deadline is armed only when the client's socket buffer is full.""",
        flags=("--write-timeout",), meta="SECONDS",
    ),
    # --- Server Mechanics ------------------------------------------------------------
    Setting(
        "preload_app", MECHANICS, False, v.boolean,
        """Load the app in the master before forking workers. Like ``worker_class``, a
literal value in the config file is seen before the worker class patches.""",
        flags=("--preload",), action="store_true",
    ),
    Setting(
        "sendfile", MECHANICS, True, v.boolean,
        """Use ``os.sendfile`` for file responses (``wsgi.file_wrapper``). ``--no-sendfile``
turns it off; so does ``SENDFILE=0`` in the environment.""",
        flags=("--no-sendfile",), action="store_const", const=False, env="SENDFILE",
    ),
    Setting(
        "reuse_port", MECHANICS, False, v.boolean,
        "Set ``SO_REUSEPORT`` on listening sockets.",
        flags=("--reuse-port",), action="store_true",
    ),
    Setting(
        "chdir", MECHANICS, None, v.directory,
        """Change to this directory before loading the app (and put it first on
``sys.path``). Default: stay in the current directory.""",
        flags=("--chdir",), meta="DIR",
    ),
    Setting(
        "daemon", MECHANICS, False, v.boolean,
        "Detach from the terminal and run in the background.",
        flags=("-D", "--daemon"), action="store_true",
    ),
    Setting(
        "raw_env", MECHANICS, [], v.env_list,
        "Set an environment variable in the server's processes: ``-e KEY=VALUE``, repeatable.",
        flags=("-e", "--env"), action="append", meta="ENV",
    ),
    Setting(
        "pidfile", MECHANICS, None, v.string,
        """Write the master's pid to this file. (``-p no:NAME`` is not a pid file: it
blocks the plugin NAME, see ``--plugin``.)""",
        flags=("-p", "--pid"), meta="FILE",
    ),
    Setting(
        "worker_tmp_dir", MECHANICS, None, v.string,
        """Accepted for Gunicorn compatibility and otherwise unused: forkhorn's heartbeats live in
shared memory, not in temporary files, so no directory is needed.""",
        flags=("--worker-tmp-dir",), meta="DIR",
    ),
    Setting(
        "user", MECHANICS, None, v.user_id,
        """Switch worker processes to this user (name or uid) after binding; the value is
the uid. Default: stay the current user.""",
        flags=("-u", "--user"), meta="USER",
    ),
    Setting(
        "group", MECHANICS, None, v.group_id,
        """Switch worker processes to this group (name or gid) after binding; the value is
the gid. Default: stay the current group.""",
        flags=("-g", "--group"), meta="GROUP",
    ),
    Setting(
        "umask", MECHANICS, 0, v.octal_umask,
        "The umask of the processes (files and unix sockets they create), e.g. ``0o22``.",
        flags=("-m", "--umask"), meta="INT",
    ),
    Setting(
        "initgroups", MECHANICS, False, v.boolean,
        "Set the worker's supplementary groups from the user's groups.",
        flags=("--initgroups",), action="store_true",
    ),
    Setting(
        "tmp_upload_dir", MECHANICS, None, v.string,
        "A directory for temporary request data (accepted for Gunicorn compatibility).",
    ),
    Setting(
        "pythonpath", MECHANICS, None, v.string,
        """Comma-separated directories put first on ``sys.path`` (e.g. ``/home/app,/opt/lib``),
before the worker class and the app are imported; a relative one is read from ``chdir``.""",
        flags=("--pythonpath",), meta="STRING",
    ),
    Setting(
        "paste", MECHANICS, None, v.string,
        """Load the app from a PasteDeploy config file (``production.ini`` or
``production.ini#admin``); needs ``PasteDeploy`` installed. As with Gunicorn, the file
is found from where forkhorn is started (before ``chdir``), the app's modules in the
working directory, and the file's logging sections (``[loggers]``) set up the logs
unless ``logconfig`` is set. Its ``[server:*]`` sections are not read.""",
        flags=("--paste", "--paster"), meta="STRING",
    ),
    Setting(
        "raw_paste_global_conf", MECHANICS, [], v.env_list,
        "Global variables for the PasteDeploy file: ``--paste-global KEY=VALUE``, repeatable.",
        flags=("--paste-global",), action="append", meta="CONF",
    ),
]
# fmt: on
