"""Loading: defaults < env defaults < config file < FORKHORN_CMD_ARGS < argv; config files."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
from forkhorn.config import ConfigError
from forkhorn.config.loader import (
    ConfigFileError,
    load_config,
    locate_config,
    read_config_file,
    scan_literals,
)

# A realistic gunicorn.conf.py, as found in the wild: it must load unchanged.
GUNICORN_CONF = """
import multiprocessing
import os

bind = ["0.0.0.0:8080", "unix:/tmp/app.sock"]
workers = multiprocessing.cpu_count() * 2 + 1
worker_class = "gthread"
threads = 4
worker_connections = 1000
timeout = 60
graceful_timeout = 30
keepalive = 5
max_requests = 1000
max_requests_jitter = 50
preload_app = True
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'
proc_name = "myapp"
raw_env = ["DJANGO_SETTINGS_MODULE=myapp.settings", "MODE=prod"]
forwarded_allow_ips = "10.0.0.0/8,127.0.0.1"
secure_scheme_headers = {"X-Forwarded-Proto": "https"}
limit_request_line = 8190
umask = 0o007
daemon = False
sendfile = True
http_protocols = ["h1"]          # Gunicorn 25+: not implemented by forkhorn, ignored
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
}
_private_helper = object()


def on_starting(server):
    server.log.info("starting")


def post_fork(server, worker):
    server.log.info("Worker spawned (pid: %s)", worker.pid)


def pre_request(worker, req):
    worker.log.debug("%s %s", req.method, req.path)


def post_request(worker, req, environ):   # Gunicorn's 3-argument form
    pass


def worker_int(worker):
    worker.log.info("worker received INT or QUIT signal")


def when_ready(server):
    server.log.info("Server is ready. Spawning workers")
"""


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_realistic_gunicorn_conf_loads_unchanged(tmp_path: Path) -> None:
    location = write(tmp_path / "gunicorn.conf.py", GUNICORN_CONF)
    loaded = load_config(location, [], {})
    cfg = loaded.cfg
    assert cfg.bind == ["0.0.0.0:8080", "unix:/tmp/app.sock"]
    assert cfg.workers == (os.cpu_count() or 1) * 2 + 1
    assert cfg.worker_class == "gthread" and cfg.threads == 4
    assert cfg.preload_app is True and cfg.accesslog == "-"
    assert cfg.secure_scheme_headers == {"X-FORWARDED-PROTO": "https"}
    assert cfg.env == {"DJANGO_SETTINGS_MODULE": "myapp.settings", "MODE": "prod"}
    assert cfg.logconfig_dict["version"] == 1
    assert cfg.umask == 0o007
    assert cfg.source("workers") == f"config file {location}"
    assert set(loaded.hooks) == {
        "on_starting",
        "post_fork",
        "pre_request",
        "post_request",
        "worker_int",
        "when_ready",
    }
    assert loaded.unsupported == ["http_protocols"]


def test_precedence_default_env_file_cmdargs_argv(tmp_path: Path) -> None:
    location = write(tmp_path / "c.py", "workers = 3\ntimeout = 10\nbacklog = 64\n")
    loaded = load_config(
        location,
        [
            ("env FORKHORN_CMD_ARGS", {"timeout": "20", "backlog": "128"}),
            ("command line", {"backlog": "256"}),
        ],
        {"WEB_CONCURRENCY": "9", "PORT": "5000"},
    )
    cfg = loaded.cfg
    assert (cfg.bind, cfg.source("bind")) == (["0.0.0.0:5000"], "env PORT")
    assert (cfg.workers, cfg.source("workers")) == (3, f"config file {location}")
    assert (cfg.timeout, cfg.source("timeout")) == (20, "env FORKHORN_CMD_ARGS")
    assert (cfg.backlog, cfg.source("backlog")) == (256, "command line")
    assert cfg.source("keepalive") == "default"


def test_web_concurrency_is_used_without_a_config_value() -> None:
    assert load_config(None, [], {"WEB_CONCURRENCY": "4"}).cfg.workers == 4


def test_bad_value_in_config_file_names_setting_and_file(tmp_path: Path) -> None:
    location = write(tmp_path / "c.py", "workers = 'lots'\n")
    with pytest.raises(ConfigError) as info:
        load_config(location, [], {})
    assert str(info.value) == (
        f"invalid value for workers (from config file {location}): "
        "expected a whole number, got 'lots'"
    )


def test_config_file_that_raises_keeps_the_users_exception(tmp_path: Path) -> None:
    location = write(tmp_path / "c.py", "workers = 1 / 0\n")
    with pytest.raises(ConfigFileError) as info:
        read_config_file(location)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert str(info.value) == f"Failed to read config file: {location}"


def test_missing_config_file_is_a_bad_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(str(tmp_path / "nope.py"))


def test_python_module_and_file_prefix_locations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "myconf_for_forkhorn.py", "workers = 6\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_config("python:myconf_for_forkhorn", [], {}).cfg.workers == 6
    finally:
        sys.modules.pop("myconf_for_forkhorn", None)
    location = write(tmp_path / "other.conf", "workers = 7\n")  # no .py: still Python
    assert load_config(f"file:{location}", [], {}).cfg.workers == 7


def test_default_config_file_lookup(tmp_path: Path) -> None:
    assert locate_config(None, str(tmp_path)) is None
    write(tmp_path / "gunicorn.conf.py", "")
    assert locate_config(None, str(tmp_path)) == str(tmp_path / "gunicorn.conf.py")
    write(tmp_path / "forkhorn.conf.py", "")
    assert locate_config(None, str(tmp_path)) == str(tmp_path / "forkhorn.conf.py")
    assert locate_config("x.py", str(tmp_path)) == "x.py"


def test_scan_literals_reads_without_running(tmp_path: Path) -> None:
    location = write(
        tmp_path / "c.py",
        """
        raise SystemExit("never run")
        worker_class = "gevent"
        preload_app: bool = True
        threads = int("4")
        """,
    )
    found = scan_literals(location, ("worker_class", "preload_app", "threads"))
    assert found == {"worker_class": "gevent", "preload_app": True}


def test_scan_literals_last_assignment_wins_and_computed_hides_literal(tmp_path: Path) -> None:
    location = write(
        tmp_path / "c.py",
        """
        worker_class = "sync"
        worker_class = "gthread"
        preload_app = True
        preload_app = bool(1)
        """,
    )
    assert scan_literals(location, ("worker_class", "preload_app")) == {"worker_class": "gthread"}


def test_scan_literals_ignores_unreadable_and_python_locations(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.py", "worker_class = (\n")
    assert scan_literals(bad, ("worker_class",)) == {}
    assert scan_literals("python:os", ("worker_class",)) == {}
    assert scan_literals(None, ("worker_class",)) == {}
