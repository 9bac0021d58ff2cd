"""``Config`` and the validators: canonical values, one-line errors naming the setting."""

from __future__ import annotations

import os

import pytest
from forkhorn.config import Config, ConfigError


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("workers", "3", 3),
        ("workers", 4, 4),
        ("preload_app", "true", True),
        ("preload_app", "off", False),
        ("umask", "022", 0o22),
        ("umask", "0o27", 0o27),
        ("umask", "0x12", 0x12),
        ("bind", "0.0.0.0:80", ["0.0.0.0:80"]),
        ("bind", ["unix:/tmp/s", "[::1]:8000", "fd://3"], ["unix:/tmp/s", "[::1]:8000", "fd://3"]),
        ("forwarded_allow_ips", "10.0.0.0/8, 127.0.0.1", ["10.0.0.0/8", "127.0.0.1"]),
        ("forwarded_allow_ips", "*", ["*"]),
        ("proxy_protocol", True, "auto"),
        ("proxy_protocol", "false", "off"),
        ("proxy_protocol", "V2", "v2"),
        ("secure_scheme_headers", {"X-Forwarded-Proto": "https"}, {"X-FORWARDED-PROTO": "https"}),
        ("raw_env", ["A=1", "B=x=y"], ["A=1", "B=x=y"]),
        ("statsd_host", "localhost", "localhost:8125"),
        ("user", "0", 0),
        ("user", "root", 0),
        ("group", 0, 0),
        ("loglevel", "DEBUG", "debug"),
        ("worker_class", "gevent", "gevent"),
        ("cert_reqs", "2", 2),
        ("metrics_bind", " 127.0.0.1:9100 ", "127.0.0.1:9100"),
        ("metrics_bind", "[::1]:9100", "[::1]:9100"),
        ("metrics_bind", "unix:/run/metrics.sock", "unix:/run/metrics.sock"),
        ("metrics_bind", "", None),
    ],
)
def test_values_are_made_canonical(name: str, raw: object, expected: object) -> None:
    cfg = Config()
    cfg.set(name, raw)
    assert getattr(cfg, name) == expected


@pytest.mark.parametrize(
    ("name", "raw", "accepted"),
    [
        ("workers", "abc", "whole number"),
        ("workers", "0", ">= 1"),
        ("timeout", "-1", ">= 0"),
        ("preload_app", "maybe", "true or false"),
        ("loglevel", "loud", "debug, info, warning, error, critical"),
        ("header_map", "keep", "drop, refuse, dangerous"),
        ("bind", "localhost:http", "port number"),
        ("bind", "::1:80", "[IPV6]:PORT"),
        ("forwarded_allow_ips", "10.0.0.1/8", "IP addresses or networks"),
        ("raw_env", ["NOEQUALS"], "KEY=VALUE"),
        ("umask", "rw", "umask"),
        ("user", "no-such-user-forkhorn", "existing user"),
        ("chdir", "/no/such/dir", "existing directory"),
        ("secure_scheme_headers", ["X"], "dict"),
        ("proxy_protocol", "v3", "off, v1, v2, auto"),
        ("cert_reqs", "3", "<= 2"),
        ("reload_extra_files", ["/no/such/file"], "does not exist"),
        ("metrics_bind", "fd://3", "HOST:PORT or unix:PATH"),
        ("metrics_bind", "localhost", "with a port number"),
        ("metrics_bind", "::1:9100", "[IPV6]:PORT"),
    ],
)
def test_bad_values_name_the_setting_and_what_is_accepted(
    name: str, raw: object, accepted: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Config().set(name, raw, source="command line")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"invalid value for {name} (from command line)")
    assert accepted in message


def test_unknown_setting() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'wrokers'"):
        Config().set("wrokers", 1)


def test_sources_are_recorded() -> None:
    cfg = Config()
    assert cfg.source("workers") == "default"
    cfg.set("workers", 2, source="config file x.py")
    assert cfg.source("workers") == "config file x.py"


def test_environment_replaces_defaults_only() -> None:
    cfg = Config()
    cfg.apply_environment(
        {"WEB_CONCURRENCY": "5", "PORT": "5000", "FORWARDED_ALLOW_IPS": "*", "SENDFILE": "0"}
    )
    assert cfg.workers == 5
    assert cfg.bind == ["0.0.0.0:5000"]
    assert cfg.forwarded_allow_ips == ["*"]
    assert cfg.sendfile is False
    assert cfg.source("workers") == "env WEB_CONCURRENCY"


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(
        ConfigError, match=r"invalid value for workers \(from env WEB_CONCURRENCY\)"
    ):
        Config().apply_environment({"WEB_CONCURRENCY": "many"})


def test_derived_values() -> None:
    cfg = Config()
    assert cfg.proc_name == "forkhorn"
    cfg.set("default_proc_name", "app:app")
    assert cfg.proc_name == "app:app"
    cfg.set("proc_name", "web")
    assert cfg.proc_name == "web"
    cfg.set("raw_env", ["A=1", "B=2=3"])
    assert cfg.env == {"A": "1", "B": "2=3"}
    assert not cfg.is_ssl
    cfg.set("certfile", "/x.pem")
    assert cfg.is_ssl and cfg.ssl_options["certfile"] == "/x.pem"


@pytest.mark.parametrize(
    ("worker_class", "threads", "expected"),
    [
        ("sync", 1, "sync"),
        ("sync", 4, "gthread"),
        ("gunicorn.workers.sync.SyncWorker", 2, "gthread"),
        ("gevent", 4, "gevent"),
    ],
)
def test_sync_with_threads_is_gthread(worker_class: str, threads: int, expected: str) -> None:
    cfg = Config()
    cfg.set("worker_class", worker_class)
    cfg.set("threads", threads)
    assert cfg.worker_class_str == expected


def test_chdir_is_made_absolute(tmp_path: object) -> None:
    cfg = Config()
    cfg.set("chdir", str(tmp_path))
    assert os.path.isabs(cfg.chdir)


def test_config_does_not_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "7")
    monkeypatch.setenv("PORT", "9")
    cfg = Config()
    assert cfg.workers == 1 and cfg.bind == ["127.0.0.1:8000"]
