"""The settings table: Gunicorn's names are all there, every row is documented and valid."""

from __future__ import annotations

import pytest
from forkhorn.config import Config
from forkhorn.config.hooks import hook_names
from forkhorn.config.setting import SECTIONS, Setting
from forkhorn.config.settings import BY_NAME, GUNICORN_ONLY, SETTINGS

# The Gunicorn settings a gunicorn.conf.py may set (besides the hooks), by name.
GUNICORN_SETTINGS = [
    "bind",
    "backlog",
    "workers",
    "worker_class",
    "threads",
    "worker_connections",
    "max_requests",
    "max_requests_jitter",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "limit_request_line",
    "limit_request_fields",
    "limit_request_field_size",
    "reload",
    "reload_engine",
    "reload_extra_files",
    "spew",
    "check_config",
    "print_config",
    "preload_app",
    "sendfile",
    "reuse_port",
    "chdir",
    "daemon",
    "raw_env",
    "pidfile",
    "worker_tmp_dir",
    "user",
    "group",
    "umask",
    "initgroups",
    "tmp_upload_dir",
    "secure_scheme_headers",
    "forwarded_allow_ips",
    "forwarder_headers",
    "header_map",
    "accesslog",
    "disable_redirect_access_to_syslog",
    "access_log_format",
    "errorlog",
    "loglevel",
    "capture_output",
    "logger_class",
    "logconfig",
    "logconfig_dict",
    "logconfig_json",
    "syslog_addr",
    "syslog",
    "syslog_prefix",
    "syslog_facility",
    "enable_stdio_inheritance",
    "statsd_host",
    "dogstatsd_tags",
    "statsd_prefix",
    "proc_name",
    "default_proc_name",
    "pythonpath",
    "paste",
    "raw_paste_global_conf",
    "strip_header_spaces",
    "permit_unconventional_http_method",
    "permit_unconventional_http_version",
    "casefold_http_method",
    "permit_obsolete_folding",
    "proxy_protocol",
    "proxy_allow_ips",
    "keyfile",
    "certfile",
    "ssl_version",
    "cert_reqs",
    "ca_certs",
    "suppress_ragged_eofs",
    "do_handshake_on_connect",
    "ciphers",
    "wsgi_app",
    "config",
]

GUNICORN_HOOKS = [
    "on_starting",
    "on_reload",
    "when_ready",
    "pre_fork",
    "post_fork",
    "post_worker_init",
    "worker_int",
    "worker_abort",
    "pre_exec",
    "pre_request",
    "post_request",
    "child_exit",
    "worker_exit",
    "nworkers_changed",
    "on_exit",
    "ssl_context",
]

# Gunicorn's flags for the settings above, which users type today.
GUNICORN_FLAGS = {
    "bind": ("-b", "--bind"),
    "workers": ("-w", "--workers"),
    "worker_class": ("-k", "--worker-class"),
    "timeout": ("-t", "--timeout"),
    "pidfile": ("-p", "--pid"),
    "daemon": ("-D", "--daemon"),
    "raw_env": ("-e", "--env"),
    "user": ("-u", "--user"),
    "group": ("-g", "--group"),
    "umask": ("-m", "--umask"),
    "proc_name": ("-n", "--name"),
    "config": ("-c", "--config"),
    "enable_stdio_inheritance": ("-R", "--enable-stdio-inheritance"),
    "accesslog": ("--access-logfile",),
    "errorlog": ("--error-logfile", "--log-file"),
    "keepalive": ("--keep-alive",),
    "proxy_allow_ips": ("--proxy-allow-from",),
    "sendfile": ("--no-sendfile",),
    "preload_app": ("--preload",),
    "limit_request_field_size": ("--limit-request-field_size",),
    "reload_extra_files": ("--reload-extra-file",),
    "paste": ("--paste", "--paster"),
    "raw_paste_global_conf": ("--paste-global",),
    "logconfig": ("--log-config",),
    "syslog_addr": ("--log-syslog-to",),
    "statsd_host": ("--statsd-host",),
}

GUNICORN_DEFAULTS = {
    "bind": ["127.0.0.1:8000"],
    "backlog": 2048,
    "workers": 1,
    "worker_class": "sync",
    "threads": 1,
    "worker_connections": 1000,
    "max_requests": 0,
    "timeout": 30,
    "graceful_timeout": 30,
    "keepalive": 2,
    "limit_request_line": 4094,
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,
    "umask": 0,
    "loglevel": "info",
    "errorlog": "-",
    "accesslog": None,
    "proxy_protocol": "off",
    # Gunicorn trusts unix-socket peers without listing them; forkhorn lists them as "unix"
    "forwarded_allow_ips": ["127.0.0.1", "::1", "unix"],
    "header_map": "drop",
    "forwarder_headers": ["SCRIPT_NAME", "PATH_INFO"],
    "syslog_addr": "udp://localhost:514",
    "syslog_facility": "user",
    "suppress_ragged_eofs": True,
    "cert_reqs": 0,
    "reload_engine": "auto",
    "sendfile": True,
    "access_log_format": '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
    "secure_scheme_headers": {
        "X-FORWARDED-PROTOCOL": "ssl",
        "X-FORWARDED-PROTO": "https",
        "X-FORWARDED-SSL": "on",
    },
}


@pytest.mark.parametrize("name", GUNICORN_SETTINGS)
def test_every_gunicorn_setting_is_in_the_table(name: str) -> None:
    assert name in BY_NAME


def test_every_gunicorn_hook_is_a_hook() -> None:
    assert set(GUNICORN_HOOKS) <= set(hook_names())


def test_hooks_and_unsupported_names_are_not_settings() -> None:
    assert not set(hook_names()) & set(BY_NAME)
    assert not GUNICORN_ONLY.keys() & set(BY_NAME)


@pytest.mark.parametrize(("name", "flags"), sorted(GUNICORN_FLAGS.items()))
def test_gunicorn_flags_are_kept(name: str, flags: tuple[str, ...]) -> None:
    assert set(flags) <= set(BY_NAME[name].flags)


@pytest.mark.parametrize(("name", "default"), sorted(GUNICORN_DEFAULTS.items()))
def test_defaults_match_gunicorn(name: str, default: object) -> None:
    assert getattr(Config(), name) == default


def test_every_row_is_documented_and_placed() -> None:
    for setting in SETTINGS:
        assert setting.doc.strip(), setting.name
        assert setting.summary().endswith("."), setting.name
        assert setting.section in SECTIONS, setting.name


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_the_help_summary_is_a_whole_sentence(setting: Setting) -> None:
    # "e.g." does not end the sentence --help shows
    summary = setting.summary()
    assert summary.count("(") == summary.count(")"), summary
    assert summary.count("``") % 2 == 0, summary
    assert not summary.endswith(("e.g.", "i.e.")), summary


def test_flags_are_unique() -> None:
    seen: dict[str, str] = {}
    for setting in SETTINGS:
        for flag in setting.flags:
            assert flag not in seen, f"{flag} used by {seen.get(flag)} and {setting.name}"
            seen[flag] = setting.name


def test_names_are_unique() -> None:
    assert len(BY_NAME) == len(SETTINGS)
