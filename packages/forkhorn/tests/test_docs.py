"""The documentation tells the truth: every setting, hook, signal, exit status and access-log
atom the code defines is documented, and every code sample is run.

Conventions the docs follow (and these tests enforce):

- Python, TOML and INI samples are never typed into a page: they are included with
  ``--8<--`` from a tested file (``examples/``, ``tests/docs_samples/``, ``docs/deploy/``).
- A ``console`` block is executed: each ``$ forkhorn ...`` command runs in
  ``tests/docs_samples`` (shown there as ``/srv/myapp``) and every output line the page
  shows must appear in the real output.
- A ``sh`` block is parsed: each ``forkhorn`` command in it must be accepted by the real
  command-line parser, values included.

The servers started here run in their own session and are killed, with their workers, at
the end of each test.
"""

from __future__ import annotations

import configparser
import functools
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from forkhorn.cli import build_parser, parse_command_line
from forkhorn.config.config import Config, ConfigError
from forkhorn.config.settings import SETTINGS
from forkhorn.plugins import hookspec
from forkhorn.testing.servers import free_port

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs"
SAMPLES = Path(__file__).resolve().parent / "docs_samples"
SHOWN_SAMPLES_DIR = "/srv/myapp"  # how the pages show tests/docs_samples
#: pages written by hand (the generated ones are checked through gen_reference)
GENERATED = {
    "reference/settings.md",
    "reference/hooks.md",
    "reference/exit-codes.md",
    "reference/metrics.md",
}
#: settings whose validator looks at this machine (files, users): parsed, not validated
MACHINE_DEPENDENT = {"chdir", "reload_extra_files", "user", "group"}
CLEAN_ENV = (
    "FORKHORN_CMD_ARGS",
    "FORKHORN_PLUGINS",
    "FORKHORN_DISABLE_PLUGINS",
    "PORT",
    "WEB_CONCURRENCY",
    "FORWARDED_ALLOW_IPS",
    "SENDFILE",
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
)
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```",
    re.MULTILINE | re.DOTALL,
)
#: ``--8<-- "path"`` on one line, or the block form: ``--8<--``, one path per line, ``--8<--``
#: (used inside Python fences, which ``ruff format`` would otherwise rewrite)
SNIPPET = re.compile(
    r'^[ \t]*--8<-- "(?P<path>[^":]+)(?::[^"]*)?"[ \t]*$'
    r"|^[ \t]*--8<--[ \t]*\n(?P<paths>(?:[ \t]*[^\s-][^\n]*\n)+)[ \t]*--8<--[ \t]*$",
    re.MULTILINE,
)


def included_paths(text: str) -> list[str]:
    paths = []
    for match in SNIPPET.finditer(text):
        if match["path"]:
            paths.append(match["path"])
        else:
            paths += [line.strip().split(":")[0] for line in match["paths"].splitlines()]
    return paths


# --- helpers -------------------------------------------------------------------------


def gen_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hand_written_pages() -> dict[str, str]:
    pages = {}
    for path in sorted(DOCS.rglob("*.md")):
        name = path.relative_to(DOCS).as_posix()
        if name not in GENERATED and not name.startswith("_generated/"):
            pages[name] = path.read_text()
    return pages


def code_blocks(lang: str) -> list[tuple[str, str]]:
    return [
        (page, match["body"])
        for page, text in hand_written_pages().items()
        for match in FENCE.finditer(text)
        if match["lang"] == lang
    ]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without forkhorn's variables; the samples importable, autoload off."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env["FORKHORN_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SAMPLES), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


def forkhorn_commands(text: str) -> list[list[str]]:
    """The argument lists of every ``forkhorn``/``python -m forkhorn`` command in a block."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip().removeprefix("$ ")
        for segment in re.split(r"\s(?:\|\|?|&&|;)\s", line):
            try:
                words = shlex.split(segment, comments=True)
            except ValueError:
                continue
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
                words.pop(0)
            if words and Path(words[0]).name == "forkhorn":
                found.append(words[1:])
            elif words[:3] == ["python", "-m", "forkhorn"]:
                found.append(words[3:])
    return found


def check_command_line(args: list[str], where: str) -> None:
    parser = build_parser()
    try:
        parsed = parse_command_line(parser, args)
    except SystemExit as exc:
        raise AssertionError(f"{where}: forkhorn {shlex.join(args)} is refused") from exc
    cfg = Config()
    for name, value in parsed.values.items():
        if name in MACHINE_DEPENDENT:
            continue
        try:
            cfg.set(name, value, source="docs")
        except ConfigError as exc:
            raise AssertionError(f"{where}: forkhorn {shlex.join(args)}: {exc}") from None


def http_get(address: Any, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes]:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: docs\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@contextmanager
def running(
    argv: list[str], cwd: Path, env: dict[str, str], log: Path, pass_fds: tuple[int, ...] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own session; whatever is left of it is killed on the way out."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=10)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # workers that outlived their master
        except ProcessLookupError:
            pass


def wait_booted(log: Path, workers: int) -> None:
    """Every worker is past its fork. (A TERM that reaches a worker between its fork and
    the reset of its signal handlers is lost, and the stop then waits graceful_timeout.)"""
    wait_for(lambda: log.read_text().count("Booting worker") >= workers, 15, "the workers")


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=15)


# --- reference pages generated from the code -------------------------------------------


def test_every_setting_has_a_doc_and_an_entry_on_the_settings_page() -> None:
    page = gen_reference().settings_page()
    assert len(SETTINGS) >= 80
    for setting in SETTINGS:
        assert setting.doc.strip(), setting.name
        assert f"### `{setting.name}` {{ #{setting.name.replace('_', '-')} }}" in page
        for flag in setting.flags:
            assert f"`{flag}" in page, (setting.name, flag)
        if setting.env:
            assert f"Environment: `{setting.env}`" in page


def test_a_setting_without_a_doc_stops_the_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = gen_reference()
    undocumented = SETTINGS[0].__class__("new_setting", "Server Socket", 1, int, "  ")
    monkeypatch.setattr(gen, "SETTINGS", [*SETTINGS, undocumented])
    with pytest.raises(gen.UndocumentedError, match="new_setting"):
        gen.settings_page()


def test_every_hook_has_a_docstring_and_an_entry_on_the_hooks_page() -> None:
    from forkhorn.config.hooks import hook_names

    page = gen_reference().hooks_page()
    hooks = [name for name in vars(hookspec) if name.startswith("forkhorn_")]
    assert len(hooks) >= 17
    for name in hooks:
        assert (getattr(hookspec, name).__doc__ or "").strip(), name
        assert f"## `{name}`" in page
    for name in hook_names():  # the config-file spelling of each server hook
        assert f"def {name}(" in page


def test_a_hook_without_a_docstring_stops_the_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = gen_reference()

    def forkhorn_new_hook(server: Any) -> None:
        pass

    monkeypatch.setattr(gen, "hook_functions", lambda: [("forkhorn_new_hook", forkhorn_new_hook)])
    with pytest.raises(gen.UndocumentedError, match="forkhorn_new_hook"):
        gen.hooks_page()


def test_every_exit_status_constant_is_on_the_exit_codes_page() -> None:
    import forkhorn.__main__ as cli_main
    from forkhorn.workers import base

    page = gen_reference().exit_codes_page()
    for module in (cli_main, base):
        for attr, value in vars(module).items():
            if attr.endswith("_ERROR") and isinstance(value, int):
                assert f"| {value} | `{attr}`" in page, attr


def test_the_generator_writes_every_generated_file() -> None:
    gen = gen_reference()
    assert gen.main() == 0
    for name in GENERATED:
        assert (DOCS / name).read_text().startswith("# ")
    assert "permit_obsolete_folding" in (DOCS / "_generated" / "leniency.md").read_text()
    assert (DOCS / "assets" / "generated" / "bench-latest.png").stat().st_size > 0


def _exposition_families(text: str) -> dict[str, set[str]]:
    """family name -> the sample names seen for it, from Prometheus text."""
    families: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            families.setdefault(line.split()[2], set())
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            family = name if name in families else re.sub(r"_(bucket|sum|count)$", "", name)
            assert family in families, f"sample {name} outside any # TYPE family"
            families[family].add(name)
    return families


def _metric_rows(page: str, section: str) -> set[str]:
    part = page.partition(f"## {section}")[2].partition("\n## ")[0]
    return _table_rows(part)


def test_every_prometheus_family_the_master_serves_is_on_the_metrics_page() -> None:
    """The master's real exposition of an empty board (no worker, no request yet): every
    family it writes is a row of the generated page, and every row is a family."""
    from types import SimpleNamespace

    from forkhorn.instrument.master import MasterInstruments

    cfg = Config()
    arbiter = SimpleNamespace(
        cfg=cfg, log=None, workers={}, listeners=[], num_workers=0, pid=os.getpid()
    )
    families = _exposition_families(MasterInstruments(arbiter).render().decode())
    assert len(families) >= 10
    documented = _metric_rows(gen_reference().metrics_page(), "Prometheus")
    assert set(families) == documented, set(families) ^ documented


def test_a_statsd_metric_without_a_description_stops_the_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gen = gen_reference()
    real = gen.statsd_metrics()
    monkeypatch.setattr(gen, "statsd_metrics", lambda: [*real, ("forkhorn.new", "counter")])
    with pytest.raises(gen.UndocumentedError, match=r"forkhorn\.new"):
        gen.metrics_page()


def test_the_metrics_a_running_server_exports_are_documented(tmp_path: Path) -> None:
    """A real server with StatsD (to a UDP socket here) and the metrics bind on: every
    name it sends or serves after a request is on the metrics page."""
    page = gen_reference().metrics_page()
    port, metrics_port = free_port(), free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(0.5)
        argv = [
            sys.executable, "-m", "forkhorn", "-w", "1", "-b", f"127.0.0.1:{port}",
            "--statsd-host", f"127.0.0.1:{statsd.getsockname()[1]}",
            "--metrics-bind", f"127.0.0.1:{metrics_port}", "myapp:app",
        ]  # fmt: skip
        lines: list[str] = []

        def received(name: str) -> bool:
            try:
                lines.extend(statsd.recv(65536).decode().splitlines())
            except TimeoutError:
                pass
            return any(line.startswith(name + ":") for line in lines)

        with running(argv, tmp_path, clean_env(), tmp_path / "server.log") as proc:
            assert wait_for(lambda: http_get(("127.0.0.1", port)), 15, "the app")[0] == 200
            wait_for(lambda: received("forkhorn.requests"), 15, "the StatsD request lines")
            wait_for(lambda: received("forkhorn.workers"), 15, "the StatsD workers gauge")
            status, body = wait_for(
                lambda: http_get(("127.0.0.1", metrics_port), "/metrics"), 15, "the metrics"
            )
            assert status == 200
            stop(proc)
    text = body.decode()
    families = _exposition_families(text)
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:  # pragma: no cover - a test extra
        pass
    else:  # the names the reference parser sees are the families read here
        parsed = {family.name for family in text_string_to_metric_families(text)}
        assert {re.sub(r"_total$", "", name) for name in families} == parsed
    assert 'forkhorn_requests_total{method="GET",status="200"} 1' in text
    served = {name for name, samples in families.items() if samples}
    assert served - {"forkhorn_requests_total"}  # more than the request counter
    assert set(families) <= _metric_rows(page, "Prometheus"), set(families)
    sent = {re.sub(r"\.\d{3}$", ".<code>", line.split(":")[0]) for line in lines if line}
    assert sent <= _metric_rows(page, "StatsD"), sent - _metric_rows(page, "StatsD")


def test_json_log_samples_have_the_fields_the_formatters_write() -> None:
    """Each line of a ``json`` block is one JSON object with exactly the real formatter's
    fields, in its order (access lines) or a subset of them (error lines)."""
    import logging

    from forkhorn.logging.jsonlog import JsonAccessFormatter, JsonErrorFormatter

    access = json.loads(JsonAccessFormatter().format({}, "200 OK", [], 0, 0.0))
    try:
        raise ValueError("x")
    except ValueError:
        record = logging.LogRecord("forkhorn.error", logging.ERROR, "f", 1, "m", (), sys.exc_info())
    error = json.loads(JsonErrorFormatter().format(record))
    checked = 0
    for page, body in code_blocks("json"):
        for line in body.splitlines():
            shown = json.loads(line)
            if shown["logger"] == "forkhorn.access":
                assert list(shown) == list(access), f"{page}: {line}"
            else:
                assert set(shown) <= set(error) and list(shown) == [
                    key for key in error if key in shown
                ], f"{page}: {line}"
            checked += 1
    assert checked >= 2


# --- hand-written reference pages checked against the code -----------------------------


def _table_rows(text: str) -> set[str]:
    """The backquoted names in the first column of every table row of ``text``."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


def test_every_master_signal_handler_has_a_row() -> None:
    from forkhorn.arbiter.arbiter import Arbiter
    from forkhorn.arbiter.workerset import HANDLED_SIGNALS

    master, _, _ = (DOCS / "reference" / "signals.md").read_text().partition("## Workers")
    handlers = {
        name.removeprefix("handle_").upper() for name in dir(Arbiter) if name.startswith("handle_")
    }
    assert set(HANDLED_SIGNALS) <= handlers
    assert handlers <= _table_rows(master), handlers - _table_rows(master)


def test_every_worker_signal_has_a_row() -> None:
    from forkhorn.workers import base

    installed = {"TERM", "INT", "QUIT", "ABRT", "USR1"}
    for group in ("_DEFAULT_SIGNALS", "_IGNORED_SIGNALS"):
        installed |= {name.removeprefix("SIG") for name in getattr(base, group, ())}
    installed.discard("CHLD")  # the default action of SIGCHLD is to ignore it
    workers = (DOCS / "reference" / "signals.md").read_text().partition("## Workers")[2]
    assert installed <= _table_rows(workers), installed - _table_rows(workers)


def test_every_access_log_atom_is_documented(tmp_path: Path) -> None:
    """Every one-letter atom the formatter fills is on the page, and every atom on the page
    is filled (``l`` is always ``-``, as in Gunicorn)."""
    from forkhorn.logging import Logger

    letters = [chr(c) for c in [*range(ord("a"), ord("z") + 1), *range(ord("A"), ord("Z") + 1)]]
    fmt = "|".join(f"{letter}=%({letter})s" for letter in letters)
    braces = "|%({user-agent}i)s|%({content-type}o)s|%({wsgi.url_scheme}e)s"
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", fmt + braces)
    environ = {
        "REMOTE_ADDR": "192.0.2.1",
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/p",
        "QUERY_STRING": "q=1",
        "RAW_URI": "/p?q=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": "http://r/",
        "HTTP_USER_AGENT": "agent/1",
        "HTTP_AUTHORIZATION": "Basic dXNlcjpwdw==",
        "wsgi.url_scheme": "https",
    }
    log = Logger(cfg)
    try:
        log.access(environ, "200 OK", [("Content-Type", "text/plain")], 5, 1.5)
    finally:
        close = getattr(log, "close", None)  # flushes a buffered access log
        if close is not None:
            close()
        for handler in [*log.access_log.handlers, *log.error_log.handlers]:
            handler.close()
    line = (tmp_path / "access.log").read_text().strip()
    fields = line.split("|")
    filled = {f[0] for f in fields[: len(letters)] if f.split("=", 1)[1] != "-"}
    assert fields[len(letters) :] == ["agent/1", "text/plain", "https"]
    documented = {
        name[2:-2]
        for name in _table_rows((DOCS / "reference" / "access-log.md").read_text())
        if name.startswith("%(")
    }
    documented_letters = {atom for atom in documented if len(atom) == 1}
    assert filled <= documented_letters, filled - documented_letters
    assert documented_letters - {"l"} <= filled, documented_letters - {"l"} - filled
    assert {"{name}i", "{name}o", "{name}e"} <= documented


def test_every_forkhorn_environment_variable_is_documented() -> None:
    page = (DOCS / "reference" / "command-line.md").read_text()
    source = REPO / "packages" / "forkhorn" / "src" / "forkhorn"
    names = set()
    for path in source.rglob("*.py"):
        names |= set(re.findall(r"\bFORKHORN_[A-Z_]*[A-Z]\b", path.read_text()))
    assert names
    for name in names:
        assert f"`{name}`" in page, name
    for setting in SETTINGS:
        if setting.env:
            assert f"`{setting.env}`" in page, setting.env


# --- every sample is tested or included from a tested file ----------------------------


@pytest.mark.parametrize("lang", ["python", "toml", "ini", "yaml"])
def test_code_samples_are_included_from_tested_files(lang: str) -> None:
    for page, body in code_blocks(lang):
        assert SNIPPET.fullmatch(body.strip()), (
            f"{page}: a {lang} sample typed into the page; include a tested file with --8<--"
        )


def test_every_included_file_exists() -> None:
    for page, text in hand_written_pages().items():
        for path in included_paths(text):
            if path.startswith("docs/_generated/"):
                continue  # written by gen_reference (checked above)
            assert (REPO / path).is_file(), f"{page}: {path}"


def test_the_performance_page_leaves_out_only_the_results_title() -> None:
    include = '--8<-- "bench/results/latest.md:3:"'
    assert include in (DOCS / "performance.md").read_text()
    title, blank, *_ = (REPO / "bench" / "results" / "latest.md").read_text().splitlines()
    assert title.startswith("# ") and not blank.strip()


def test_command_lines_in_the_docs_are_accepted() -> None:
    checked = 0
    for lang in ("sh", "console"):
        for page, body in code_blocks(lang):
            if "error:" in body:
                continue  # an example of a refused command (run by the console test)
            for args in forkhorn_commands(body):
                check_command_line(args, page)
                checked += 1
    assert checked >= 10


def _console_examples() -> list[Any]:
    examples = []
    for n, (page, body) in enumerate(code_blocks("console")):
        command, *output = body.rstrip("\n").split("\n")
        assert command.startswith("$ "), f"{page}: a console block starts with '$ command'"
        examples.append(pytest.param(page, command[2:], output, id=f"{page}-{n}"))
    return examples


def _normalise(line: str) -> str:
    line = re.sub(r"\b\d+\.\d+\.\d+\b", "X.Y.Z", line)
    return re.sub(r"\s+", " ", line.strip())


@pytest.mark.parametrize(("page", "command", "output"), _console_examples())
def test_console_examples_match_real_output(page: str, command: str, output: list[str]) -> None:
    words = shlex.split(command.split(" | ")[0])
    env = clean_env()
    while re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert words[0] == "forkhorn", f"{page}: only forkhorn commands are run"
    result = subprocess.run(
        [sys.executable, "-m", "forkhorn", *words[1:]],
        cwd=SAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    real = (result.stdout + result.stderr).replace(str(SAMPLES), SHOWN_SAMPLES_DIR)
    real_lines = {_normalise(line) for line in real.splitlines()}
    for line in output:
        assert _normalise(line) in real_lines, f"{page}: {line!r} not in:\n{real}"
    if any("error:" in line for line in output):
        assert result.returncode != 0
    else:
        assert result.returncode == 0, real


# --- the samples, run for real ---------------------------------------------------------


def test_first_app_and_its_factory_are_served(tmp_path: Path) -> None:
    for app, body in [
        ("myapp:app", b"Hello from forkhorn\n"),
        ('myapp:create_app("Bonjour")', b"Bonjour from forkhorn\n"),
    ]:
        port = free_port()
        argv = [sys.executable, "-m", "forkhorn", "-w", "2", "-b", f"127.0.0.1:{port}", app]
        # a directory without a config file, importing myapp from PYTHONPATH
        with running(argv, tmp_path, clean_env(), tmp_path / "server.log") as proc:
            get = functools.partial(http_get, ("127.0.0.1", port))
            assert wait_for(get, 15, "the app") == (200, body)
            wait_booted(tmp_path / "server.log", 2)
            assert stop(proc) == 0


def check_config(config: str) -> subprocess.CompletedProcess[str]:
    """``forkhorn -c <config> --check-config myapp:app``, run in the samples directory."""
    argv = [sys.executable, "-m", "forkhorn", "-c", config, "--check-config", "myapp:app"]
    return subprocess.run(
        argv, cwd=SAMPLES, env=clean_env(), capture_output=True, text=True, timeout=60
    )


def test_the_gunicorn_conf_passes_check_config() -> None:
    result = check_config("gunicorn.conf.py")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr


def test_the_gunicorn_conf_is_picked_up_serves_and_stops_on_term(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "gunicorn.conf.py", tmp_path / "gunicorn.conf.py")
    port = free_port()
    env = clean_env(BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2")
    log = tmp_path / "server.log"
    with running([sys.executable, "-m", "forkhorn", "myapp:app"], tmp_path, env, log) as proc:
        assert wait_for(lambda: http_get(("127.0.0.1", port)), 15, "the app")[0] == 200
        wait_for(lambda: log.read_text().count("post_worker_init:") == 2, 10, "two workers")
        assert stop(proc) == 0
    text = log.read_text()
    for line in [
        "on_starting: master starting",
        "nworkers_changed: None -> 2",
        "when_ready: server is ready",
        "post_fork: worker spawned",
        "Using worker: gthread",
        '"GET / HTTP/1.1" 200 20',
        "worker_exit: worker",
        "child_exit: worker",
        "on_exit: master exiting",
    ]:
        assert line in text, f"{line!r} not in:\n{text}"


def test_the_worker_written_from_scratch_serves_and_stops_on_term(tmp_path: Path) -> None:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "forkhorn",
        "-k",
        "select_worker:SelectWorker",
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "myapp:app",
    ]
    log = tmp_path / "server.log"
    with running(argv, tmp_path, clean_env(), log) as proc:
        for _ in range(5):
            assert wait_for(lambda: http_get(("127.0.0.1", port)), 15, "the app")[0] == 200
        wait_booted(log, 2)
        assert stop(proc) == 0
    assert "Using worker: select_worker:SelectWorker" in log.read_text()


def test_the_observability_conf_passes_check_config() -> None:
    result = check_config("observability.conf.py")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower()
    cfg = Config()
    namespace: dict[str, Any] = {}
    exec((SAMPLES / "observability.conf.py").read_text(), namespace)
    for name, value in namespace.items():
        if not name.startswith("__"):
            cfg.set(name, value, source="docs")
    assert cfg.log_format == "json" and cfg.metrics_bind == "127.0.0.1:9100"


def test_the_slow_request_logger_class_logs_and_warns(tmp_path: Path) -> None:
    from forkhorn.logging import make_logger

    cfg = Config()
    cfg.set("logger_class", "slow_logger.SlowRequestLogger")
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("errorlog", str(tmp_path / "error.log"))
    sys.path.insert(0, str(SAMPLES))
    try:
        log = make_logger(cfg)
    finally:
        sys.path.remove(str(SAMPLES))
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/slow", "REMOTE_ADDR": "192.0.2.1"}
    try:
        log.access(environ, "200 OK", [], 5, 0.2)
        log.access(environ, "200 OK", [], 5, 2.5)
    finally:
        log.close()
        for handler in [*log.error_log.handlers, *log.access_log.handlers]:
            handler.close()
    assert type(log).__name__ == "SlowRequestLogger"
    assert (tmp_path / "access.log").read_text().count('"GET /slow') == 2
    warnings = [
        line for line in (tmp_path / "error.log").read_text().splitlines() if "slow" in line
    ]
    assert len(warnings) == 1 and "GET /slow took 2.5 s" in warnings[0]


SYSTEMD_WRAPPER = (  # what systemd does: the socket on fd 3, LISTEN_PID = the service's pid
    "import os, sys; fd = int(sys.argv[1])\n"
    "if fd != 3: os.dup2(fd, 3); os.close(fd)\n"
    "os.environ['LISTEN_PID'] = str(os.getpid()); os.environ['LISTEN_FDS'] = '1';"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DOCS / "deploy" / name).read_text())
    return unit


def test_the_systemd_units_parse_and_run_under_socket_activation(tmp_path: Path) -> None:
    socket_unit, service = _unit("myapp.socket"), _unit("myapp.service")
    assert socket_unit["Socket"]["ListenStream"].startswith("/")
    assert service["Unit"]["Requires"] == "myapp.socket"
    unit = service["Service"]
    assert unit["Type"] == "notify" and unit["NotifyAccess"] == "all"
    assert unit["KillMode"] == "mixed"
    assert int(unit["TimeoutStopSec"]) > Config().graceful_timeout
    argv = shlex.split(unit["ExecStart"])
    assert Path(argv[0]).name == "forkhorn"
    check_command_line(argv[1:], "myapp.service")
    args = argv[1:]
    args[args.index("--pid") + 1] = str(tmp_path / "forkhorn.pid")

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "myapp.sock"))
    listener.listen(16)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(15)
    env = clean_env(
        NOTIFY_SOCKET=str(tmp_path / "notify.sock"),
        WATCHDOG_USEC=str(int(unit["WatchdogSec"]) * 1_000_000),
    )
    command = [
        sys.executable,
        "-c",
        SYSTEMD_WRAPPER,
        str(listener.fileno()),
        "-m",
        "forkhorn",
        *args,
    ]
    messages: list[str] = []

    def wait_message(state: str) -> None:
        while not any(state in message for message in messages):
            messages.append(notify.recv(4096).decode())

    try:
        with running(
            command, SAMPLES, env, tmp_path / "server.log", pass_fds=(listener.fileno(),)
        ) as proc:
            listener.close()
            wait_message("READY=1")
            assert http_get(str(tmp_path / "myapp.sock")) == (200, b"Hello from forkhorn\n")
            messages.clear()
            reload = shlex.split(unit["ExecReload"].replace("$MAINPID", str(proc.pid)))
            subprocess.run(reload, check=True, timeout=10)
            wait_message("RELOADING=1")
            wait_message("READY=1")
            assert http_get(str(tmp_path / "myapp.sock"), timeout=10)[0] == 200
            assert stop(proc) == 0
            wait_message("STOPPING=1")
    finally:
        listener.close()
        notify.close()


# --- the site builds ---------------------------------------------------------------------


def test_the_site_builds_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    assert gen_reference().main() == 0
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr
