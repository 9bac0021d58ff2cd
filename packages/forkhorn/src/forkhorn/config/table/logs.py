"""Rows: logging, statsd, process naming and debugging switches.

The logger (``forkhorn.logging``) reads these; ``logconfig*`` and ``syslog*`` follow
Gunicorn's meaning. ``check_config`` and ``print_config`` are acted on by the CLI before
the arbiter exists. ``metrics_bind`` is read by the master (``forkhorn.instrument``).
"""

from __future__ import annotations

from forkhorn.config import validators as v
from forkhorn.config.setting import DEBUG, LOGGING, PROCESS, Setting

# The rows are kept compact on purpose: one setting reads as one block.
# fmt: off
ROWS: list[Setting] = [
    # --- Logging ---------------------------------------------------------------------
    Setting(
        "accesslog", LOGGING, None, v.string,
        "The access log file, ``-`` for stdout. Off by default.",
        flags=("--access-logfile",), meta="FILE",
    ),
    Setting(
        "disable_redirect_access_to_syslog", LOGGING, False, v.boolean,
        "Do not send access log lines to syslog when ``syslog`` is on.",
        flags=("--disable-redirect-access-to-syslog",), action="store_true",
    ),
    Setting(
        "access_log_format", LOGGING,
        '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"', v.string,
        "The access log line format, with Gunicorn's atoms (``%(h)s``, ``%(r)s``, ...).",
        flags=("--access-logformat",), meta="STRING",
    ),
    Setting(
        "errorlog", LOGGING, "-", v.string,
        "The error log file, ``-`` for stderr.",
        flags=("--error-logfile", "--log-file"), meta="FILE",
    ),
    Setting(
        "loglevel", LOGGING, "info", v.choice("debug", "info", "warning", "error", "critical"),
        "The error log level: debug, info, warning, error or critical.",
        flags=("--log-level",), meta="LEVEL",
    ),
    Setting(
        "capture_output", LOGGING, False, v.boolean,
        "Redirect the app's stdout and stderr to the error log.",
        flags=("--capture-output",), action="store_true",
    ),
    Setting(
        "logger_class", LOGGING, "forkhorn.logging.Logger", v.class_or_string,
        """The logger class (a class or its dotted path); ``simple`` means the default.""",
        flags=("--logger-class",), meta="STRING",
    ),
    Setting(
        "logconfig", LOGGING, None, v.string,
        "A ``logging.config.fileConfig`` file; it overrides the other logging settings.",
        flags=("--log-config",), meta="FILE",
    ),
    Setting(
        "logconfig_dict", LOGGING, {}, v.any_dict,
        "A ``logging.config.dictConfig`` dictionary (config file only).",
    ),
    Setting(
        "logconfig_json", LOGGING, None, v.string,
        "A JSON file holding a ``logging.config.dictConfig`` dictionary.",
        flags=("--log-config-json",), meta="FILE",
    ),
    Setting(
        "syslog_addr", LOGGING, "udp://localhost:514", v.string,
        """Where syslog messages go: ``unix://PATH#TYPE``, ``udp://HOST:PORT`` or
``tcp://HOST:PORT``.""",
        flags=("--log-syslog-to",), meta="SYSLOG_ADDR",
    ),
    Setting(
        "syslog", LOGGING, False, v.boolean,
        "Send the error log (and the access log) to syslog.",
        flags=("--log-syslog",), action="store_true",
    ),
    Setting(
        "syslog_prefix", LOGGING, None, v.string,
        "The program name in syslog lines (default: the process name).",
        flags=("--log-syslog-prefix",), meta="SYSLOG_PREFIX",
    ),
    Setting(
        "syslog_facility", LOGGING, "user", v.string,
        "The syslog facility name.",
        flags=("--log-syslog-facility",), meta="SYSLOG_FACILITY",
    ),
    Setting(
        "enable_stdio_inheritance", LOGGING, False, v.boolean,
        """With ``--daemon``, keep stdout and stderr where they point unless they are a
terminal, so that ``forkhorn -D -R app > out.log 2>&1`` goes on writing to ``out.log``
(stdin goes to /dev/null all the same).""",
        flags=("-R", "--enable-stdio-inheritance"), action="store_true",
    ),
    Setting(
        "statsd_host", LOGGING, None, v.statsd_address,
        "Send metrics to this statsd server, ``HOST:PORT`` or ``unix:PATH``.",
        flags=("--statsd-host",), meta="STATSD_ADDR",
    ),
    Setting(
        "dogstatsd_tags", LOGGING, "", v.string,
        "Comma-separated ``key:value`` tags added to every statsd metric (DogStatsD).",
        flags=("--dogstatsd-tags",), meta="DOGSTATSD_TAGS",
    ),
    Setting(
        "statsd_prefix", LOGGING, "", v.string,
        "A prefix for statsd metric names.",
        flags=("--statsd-prefix",), meta="STATSD_PREFIX",
    ),
    Setting(
        "log_format", LOGGING, "text", v.choice("text", "json"),
        """``text`` (Gunicorn's formats) or ``json``: access and error logs as one JSON object
per line. Access fields: ``time`` (ISO 8601), ``level``, ``logger``, ``pid``,
``remote_addr``, ``method``, ``path``, ``query``, ``protocol``, ``status``, ``bytes``,
``duration_ms``, ``user_agent``, ``referer``, ``request_id``; error fields: ``time``,
``level``, ``logger``, ``pid``, ``message`` and ``exception``. Client values are escaped
(ASCII-only JSON). forkhorn's own setting.""",
        flags=("--log-format",), meta="FORMAT",
    ),
    Setting(
        "request_id_header", LOGGING, "X-Request-ID", v.string,
        """The request header whose value becomes the request id (``forkhorn.request_id``
in the environ, ``request_id`` in JSON access lines, ``%({forkhorn.request_id}e)s`` in the
text format) when a peer in ``forwarded_allow_ips`` sends it as a token of 1 to 128
characters (letters, digits and ``._~:/@+=!#$%&*^|-``); otherwise, or when this is empty,
an id is generated.
forkhorn's own setting.""",
        flags=("--request-id-header",), meta="HEADER",
        short="The request header taken as the request id when it is a sane token.",
    ),
    Setting(
        "metrics_bind", LOGGING, None, v.metrics_address,
        """Serve Prometheus metrics (text format 0.0.4) at ``http://ADDRESS/metrics`` from the
master, aggregated over all workers: requests by method and status, a latency histogram,
requests in flight, workers, restarts, timeouts, memory per worker and listener backlogs.
``HOST:PORT`` or ``unix:PATH``; off by default. Keep it on a private address.
forkhorn's own setting.""",
        flags=("--metrics-bind",), meta="ADDRESS",
        short="Serve Prometheus metrics from the master at HOST:PORT or unix:PATH (off).",
    ),
    # --- Process Naming --------------------------------------------------------------
    Setting(
        "proc_name", PROCESS, None, v.string,
        """The process title base (needs ``setproctitle``); default ``default_proc_name``
(the app module).""",
        flags=("-n", "--name"), meta="STRING",
    ),
    Setting(
        "default_proc_name", PROCESS, "forkhorn", v.string,
        "The process title base when ``proc_name`` is unset; the CLI sets it to APP_MODULE.",
    ),
    # --- Debugging -------------------------------------------------------------------
    Setting(
        "reload", DEBUG, False, v.boolean,
        """Restart workers when the app's source files change (development). An app that
fails to load (a syntax error mid-edit) is answered with a 500 showing the error, and
the worker restarts once the file is fixed.""",
        flags=("--reload",), action="store_true",
    ),
    Setting(
        "reload_engine", DEBUG, "auto", v.choice("auto", "poll", "inotify"),
        "How ``reload`` watches files: ``auto``, ``poll`` or ``inotify``.",
        flags=("--reload-engine",), meta="STRING",
    ),
    Setting(
        "reload_extra_files", DEBUG, [], v.existing_files,
        "More files (or glob patterns) whose change triggers a reload; repeatable.",
        flags=("--reload-extra-file",), action="append", meta="FILES",
    ),
    Setting(
        "spew", DEBUG, False, v.boolean,
        """Trace every line the server executes (very verbose): each goes to stdout as
``module:line: source``, from the master and from its workers' main threads. For finding
where a process hangs or loops; the server runs many times slower.""",
        flags=("--spew",), action="store_true",
    ),
    Setting(
        "check_config", DEBUG, False, v.boolean,
        "Check the configuration and load the app, then exit (0 if fine).",
        flags=("--check-config",), action="store_true",
    ),
    Setting(
        "print_config", DEBUG, False, v.boolean,
        "Print the effective configuration and where each value came from, then exit.",
        flags=("--print-config",), action="store_true",
    ),
]
# fmt: on
