"""Generate the parts of the site whose source of truth is the code. Run before ``mkdocs build``.

Writes (all git-ignored, see ``docs/.gitignore``):

- ``docs/reference/settings.md``: every row of the settings table (``forkhorn.config.settings``),
  grouped by section in the CLI's section order, with flags, environment variable and default;
- ``docs/reference/hooks.md``: every hook of ``forkhorn.plugins.hookspec``, from its docstring;
- ``docs/reference/exit-codes.md``: the exit-status constants of the CLI and the worker contract;
- ``docs/reference/metrics.md``: every Prometheus family and StatsD metric, found by running
  the real exporters (``render`` on a snapshot of a real metrics board; the real ``Logger``
  and master tick sending StatsD lines to a local UDP socket), not by copying names;
- ``docs/_generated/*.md``: fragments the hand-written pages include with ``--8<--``
  (the leniency switches, the Gunicorn-only settings);
- ``docs/assets/generated/bench-latest.png``: the plot of the latest benchmark run.

Invariant: a setting or hook without documentation, or an exit-status constant without a
description here, stops the generation with an error (``tests/test_docs.py`` runs it too).
Only the standard library and forkhorn are imported, so the docs build stays light.
"""

from __future__ import annotations

import inspect
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forkhorn.config.setting import PARSER, SECTIONS, Setting
from forkhorn.config.settings import GUNICORN_ONLY, SETTINGS
from forkhorn.plugins import hookspec

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
REFERENCE = DOCS / "reference"
FRAGMENTS = DOCS / "_generated"
ASSETS = DOCS / "assets" / "generated"
BENCH_PLOT = ROOT / "bench" / "results" / "latest.png"

#: the CLI's exit statuses and the master's, by the module constant that defines them
EXIT_CODE_MODULES = ("forkhorn.__main__", "forkhorn.workers.base")
EXIT_CODE_MEANINGS = {
    "ENVIRONMENT_ERROR": (
        "The environment is broken: a plugin or the chosen worker class failed to import "
        "or is not a forkhorn worker (a class built on Gunicorn's, say), two plugins claim "
        "one worker name, or the config file raised (its traceback is "
        "shown). The master also exits 1 when start-up fails: the logs cannot be set up "
        "(a log file that cannot be opened, a bad `logconfig`), a socket cannot be bound, "
        "the pidfile names a running server, `on_starting` or `when_ready` raised, "
        "`--reload` was combined with `--preload`."
    ),
    "USAGE_ERROR": (
        "A usage error: an unknown option, a bad value for a setting (from any source: one "
        "line naming the setting and what it accepts), an unknown worker name, no app given."
    ),
    "WORKER_BOOT_ERROR": (
        "A worker failed before it finished booting (anything but loading the app). The "
        "master stops with this status instead of forking new workers forever."
    ),
    "APP_LOAD_ERROR": (
        "The WSGI app could not be loaded: in a worker (the master then stops with this "
        'status: "App failed to load."), or in the master with `--check-config` or '
        "`--preload`."
    ),
}


class UndocumentedError(Exception):
    """Something the code defines has no documentation; the message says what."""


# --- helpers ---------------------------------------------------------------------------


def rst_to_md(text: str) -> str:
    """The table's docs are written with reST literals (````x````); Markdown wants ```x```."""
    return inspect.cleandoc(text).replace("``", "`")


def anchor(name: str) -> str:
    return name.replace("_", "-")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def default_text(setting: Setting) -> str:
    value = setting.default
    if setting.name == "bind":
        return "`['127.0.0.1:8000']`"
    if isinstance(value, str) and not value:
        return "`''`"
    return f"`{value!r}`"


def flags_text(setting: Setting) -> str:
    if not setting.flags:
        return "config file only"
    takes_value = setting.action not in ("store_true", "store_const")
    meta = f" {setting.meta}" if setting.meta and takes_value else ""
    if setting.nargs == "?":
        meta = f" [{setting.meta}]"
    return ", ".join(f"`{flag}{meta}`" for flag in setting.flags)


def by_section(settings: Iterable[Setting]) -> dict[str, list[Setting]]:
    grouped: dict[str, list[Setting]] = {section: [] for section in SECTIONS}
    for setting in settings:
        grouped.setdefault(setting.section, []).append(setting)
    return {section: rows for section, rows in grouped.items() if rows}


# --- settings --------------------------------------------------------------------------


def settings_page() -> str:
    missing = [s.name for s in SETTINGS if not s.doc.strip()]
    if missing:
        raise UndocumentedError(f"settings without a doc in the table: {', '.join(missing)}")
    lines = [
        "# Settings",
        "",
        "Every setting forkhorn has, generated from the settings table",
        "(`forkhorn/config/table/`). The names, flags and defaults are Gunicorn's; a",
        "description ending in *forkhorn's* marks an addition. Set a setting in a config",
        "file (`name = value`),",
        "in `FORKHORN_CMD_ARGS` or on the command line; see",
        "[Configuration](../guides/configuration.md) for which source wins.",
        "",
        "A setting marked *config file only* has no flag. Where an environment variable is",
        "named, it replaces the default (and nothing else).",
        "",
    ]
    sections = by_section(SETTINGS)
    for section, rows in sections.items():
        lines += [f"## {section}", "", "| setting | command line | default |", "|---|---|---|"]
        for setting in rows:
            env = f" (env `{setting.env}`)" if setting.env else ""
            lines.append(
                f"| [`{setting.name}`](#{anchor(setting.name)}) | {cell(flags_text(setting))}"
                f" | {cell(default_text(setting))}{env} |"
            )
        lines.append("")
        for setting in rows:
            lines += [f"### `{setting.name}` {{ #{anchor(setting.name)} }}", ""]
            lines.append(f"- Command line: {flags_text(setting)}")
            if setting.env:
                lines.append(f"- Environment: `{setting.env}`")
            lines += [f"- Default: {default_text(setting)}", "", rst_to_md(setting.doc), ""]
    lines += [
        "## Gunicorn settings forkhorn ignores { #gunicorn-only }",
        "",
        "A config file may set these Gunicorn settings: forkhorn prints a warning naming",
        "each and goes on (it does not implement HTTP/2, ASGI, the dirty arbiters, the control",
        "socket or uWSGI). On the command line they are unknown options.",
        "",
        gunicorn_only_fragment(),
        "",
    ]
    return "\n".join(lines)


def leniency_fragment() -> str:
    """The HTTP parsing switches, as a table the migration guide includes."""
    lines = ["| setting | flag | default | what it relaxes |", "|---|---|---|---|"]
    for setting in SETTINGS:
        if setting.section != PARSER:
            continue
        link = f"[`{setting.name}`](reference/settings.md#{anchor(setting.name)})"
        lines.append(
            f"| {link} | {cell(flags_text(setting))} | {cell(default_text(setting))}"
            f" | {cell(rst_to_md(setting.doc))} |"
        )
    return "\n".join(lines)


def gunicorn_only_fragment() -> str:
    return ", ".join(f"`{name}`" for name in sorted(GUNICORN_ONLY))


# --- hooks -----------------------------------------------------------------------------


def hook_functions() -> list[tuple[str, Any]]:
    """Every hook, in the order ``hookspec.py`` declares them (roughly a server's life)."""
    return [
        (name, function)
        for name, function in vars(hookspec).items()
        if name.startswith("forkhorn_") and inspect.isfunction(function)
    ]


def _call_form(name: str, function: Any) -> str:
    return f"{name}({', '.join(inspect.signature(function).parameters)})"


def hooks_page() -> str:
    from forkhorn.config.hooks import hook_specs

    config_hooks = hook_specs()
    functions = hook_functions()
    missing = [name for name, function in functions if not (function.__doc__ or "").strip()]
    if missing:
        raise UndocumentedError(f"hooks without a docstring in hookspec.py: {', '.join(missing)}")
    lines = [
        "# Hooks",
        "",
        "Every hook, generated from the docstrings of `forkhorn/plugins/hookspec.py`.",
        "",
        "- A **plugin** implements `forkhorn_<name>` with `@hookimpl`",
        "  (`from forkhorn.plugins.hookspec import hookimpl`). Hooks are called with keyword",
        "  arguments, so an implementation may take any subset of them, by name.",
        "- A **config file** (`gunicorn.conf.py` included) defines a plain function `<name>`",
        "  taking the arguments positionally, as in Gunicorn; any parameter names work. Its",
        "  arity is checked when the file loads.",
        "",
        "| hook | config-file function | summary |",
        "|---|---|---|",
    ]
    for name, function in functions:
        short = name.removeprefix("forkhorn_")
        config_form = (
            f"`{_call_form(short, function)}`" if short in config_hooks else "(plugins only)"
        )
        summary = rst_to_md(function.__doc__).split("\n\n")[0].replace("\n", " ")
        lines.append(f"| [`{name}`](#{anchor(name)}) | {config_form} | {cell(summary)} |")
    lines.append("")
    for name, function in functions:
        short = name.removeprefix("forkhorn_")
        marker = "@hookimpl" if not _firstresult(function) else "@hookimpl  # firstresult hook"
        lines += [f"## `{name}` {{ #{anchor(name)} }}", "", "```python", marker]
        lines.append(f"def {_call_form(name, function)}: ...")
        if short in config_hooks:
            lines += ["", "# in a config file", f"def {_call_form(short, function)}: ..."]
        lines += ["```", "", rst_to_md(function.__doc__), ""]
    return "\n".join(lines)


def _firstresult(function: Any) -> bool:
    options = getattr(function, "forkhorn_spec", None) or {}
    return bool(options.get("firstresult"))


# --- exit codes ------------------------------------------------------------------------


def exit_codes() -> list[tuple[int, str, str]]:
    """(status, constant, module) for every ``*_ERROR`` int constant of the modules."""
    import importlib

    found: dict[tuple[int, str], list[str]] = {}
    for module_name in EXIT_CODE_MODULES:
        module = importlib.import_module(module_name)
        for attr, value in vars(module).items():
            if attr.endswith("_ERROR") and isinstance(value, int) and not isinstance(value, bool):
                found.setdefault((value, attr), []).append(module_name)
    undescribed = sorted({attr for _, attr in found} - set(EXIT_CODE_MEANINGS))
    if undescribed:
        raise UndocumentedError(
            f"exit-status constants without a description in docs/gen_reference.py: "
            f"{', '.join(undescribed)}"
        )
    return [(value, attr, ", ".join(modules)) for (value, attr), modules in sorted(found.items())]


def exit_codes_page() -> str:
    lines = [
        "# Exit codes",
        "",
        "The exit status of `forkhorn` (the master process), generated from the constants",
        "of `forkhorn/__main__.py` and `forkhorn/workers/base.py`. They are Gunicorn's: a",
        "supervisor that knew Gunicorn's codes reads forkhorn's the same way.",
        "",
        "| status | constant | meaning |",
        "|---:|---|---|",
        "| 0 | | A clean stop (TERM, INT, QUIT), or `--check-config`, `--print-config`,"
        " `--list-workers`, `--help`, `--version` that found nothing wrong. |",
    ]
    for value, attr, modules in exit_codes():
        lines.append(f"| {value} | `{attr}` (`{modules}`) | {cell(EXIT_CODE_MEANINGS[attr])} |")
    lines += [
        "",
        "A worker that exits with 3 or 4 makes the master stop with the same status: a",
        "broken deployment halts with a clear message instead of forking in a loop. A worker",
        "killed by a signal (or by the master after `timeout`) is replaced and logged; it does",
        "not change the master's status.",
        "",
    ]
    return "\n".join(lines)


# --- metrics ---------------------------------------------------------------------------


def prometheus_families() -> list[tuple[str, str, str, list[str]]]:
    """(name, type, help, label names) of every family the exposition writes, in its order.

    ``render`` runs on a snapshot of a real ``MetricsBoard`` with one request recorded, one
    worker, the master's memory and one listener backlog, so that every family has a sample
    and its labels show; families without samples still have their ``# TYPE`` line."""
    from forkhorn.instrument.board import MetricsBoard
    from forkhorn.instrument.prometheus import BacklogSample, Snapshot, WorkerSample, render

    board = MetricsBoard(capacity=1)
    try:
        region = board.region(0)
        assert region is not None
        region.begin()
        region.record("GET", "200 OK", 0.01)
        region.end()
        snapshot = Snapshot(
            totals=board.totals([0]),
            workers=[WorkerSample(pid=1, age=1, state="ready", rss_bytes=1)],
            wanted_workers=1,
            master_rss_bytes=1,
            backlogs=[BacklogSample("http://127.0.0.1:8000", 0, 128)],
            version="0",
        )
        text = render(snapshot).decode("utf-8")
    finally:
        del region
        board.close()
    families: dict[str, list[Any]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            families[name] = [name, "", help_text, []]
        elif line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE ") :].partition(" ")
            families.setdefault(name, [name, "", "", []])[1] = kind
        elif line and not line.startswith("#"):
            sample = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ", line)
            if sample is None:
                raise UndocumentedError(f"unparsable exposition line {line!r}")
            name = sample[1]
            family = name if name in families else re.sub(r"_(bucket|sum|count)$", "", name)
            labels = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', sample[2] or "")
            for label in labels:
                if label not in families[family][3]:
                    families[family][3].append(label)
    missing = [name for name, kind, help_text, _ in families.values() if not (kind and help_text)]
    if missing:
        raise UndocumentedError(f"metric families without # HELP or # TYPE: {missing}")
    return [(name, kind, help_text, labels) for name, kind, help_text, labels in families.values()]


STATSD_TYPES = {"c": "counter", "g": "gauge", "ms": "timer (ms)", "h": "histogram"}


def statsd_metrics() -> list[tuple[str, str]]:
    """(name, StatsD type) of every metric the server sends on its own, captured from a
    local UDP socket: the built-in ``Logger`` with ``statsd_host`` set (one request through
    its access sinks, one line at each counted level) and the master's tick."""
    import socket
    import tempfile
    from types import SimpleNamespace

    from forkhorn.config.config import Config
    from forkhorn.instrument.master import MasterInstruments
    from forkhorn.logging import Logger

    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener,
        tempfile.TemporaryDirectory() as tmp,
    ):
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        cfg = Config()
        cfg.set("statsd_host", f"127.0.0.1:{listener.getsockname()[1]}")
        cfg.set("errorlog", str(Path(tmp) / "error.log"))
        log = Logger(cfg)
        try:
            log.access({"REQUEST_METHOD": "GET"}, "200 OK", [], 2, 0.01)
            for level in ("warning", "error", "critical", "exception"):
                getattr(log, level)("docs: %s", level)
            arbiter = SimpleNamespace(cfg=cfg, log=log, workers={})
            MasterInstruments(arbiter).tick()  # the workers gauge, then a flush
            log.flush()
            data = b""
            listener.setblocking(False)
            while True:
                try:
                    data += listener.recv(65536) + b"\n"
                except BlockingIOError:
                    break
        finally:
            log.close()
            for handler in [*log.error_log.handlers, *log.access_log.handlers]:
                handler.close()
    found: dict[str, str] = {}
    for line in data.decode("ascii").splitlines():
        if not line:
            continue
        name, _, rest = line.partition(":")
        kind = rest.split("|")[1]
        name = re.sub(r"\.200$", ".<code>", name)
        found.setdefault(name, STATSD_TYPES.get(kind, kind))
    if "forkhorn.requests" not in found:
        raise UndocumentedError("no StatsD line captured: the metric names cannot be listed")
    return sorted(found.items())


def metrics_page() -> str:
    from forkhorn.instrument.board import BUCKETS, METHOD_LABELS, STATUS_LABELS

    lines = [
        "# Metrics",
        "",
        "Every metric forkhorn exports, generated by running the exporters of",
        "`forkhorn/instrument/` (not copied by hand). How to turn them on, and what to do",
        "with them: [Logging and metrics](../guides/logging.md#metrics).",
        "",
        "## Prometheus { #prometheus }",
        "",
        "Served by the master at `http://ADDRESS/metrics` when",
        "[`metrics_bind`](settings.md#metrics-bind) is set (text exposition format 0.0.4),",
        "summed over all workers; counters of a worker that exited are kept, so they never go",
        "down while the master lives.",
        "",
        "| metric | type | labels | meaning |",
        "|---|---|---|---|",
    ]
    for name, kind, help_text, labels in prometheus_families():
        label_text = ", ".join(f"`{label}`" for label in labels) or "none"
        lines.append(f"| `{name}` | {kind} | {label_text} | {cell(help_text)} |")
    lines += [
        "",
        "Label values:",
        "",
        "- `method`: " + ", ".join(f"`{m}`" for m in METHOD_LABELS) + " (any other method",
        "  counts as `other`);",
        "- `status`: the code for "
        + ", ".join(f"`{s}`" for s in STATUS_LABELS if s.isdigit())
        + "; any other code counts in its class ("
        + ", ".join(f"`{s}`" for s in STATUS_LABELS if not s.isdigit() and s != "other")
        + "), and a status that is not a number as `other`;",
        "- `le` (the duration histogram's buckets, in seconds): "
        + ", ".join(f"`{b!r}`" for b in map(float, BUCKETS))
        + ", `+Inf`;",
        "- `state` (`forkhorn_workers`): every state always has a sample, 0 when no worker is",
        "  in it;",
        "- `pid`, `age` (`forkhorn_worker_resident_memory_bytes`): the worker's pid and its",
        "  spawn number (Gunicorn's `worker.age`: it grows with each worker the master",
        "  starts, so the highest is the youngest);",
        "- `listener` (`forkhorn_listen_backlog*`): the listening address; only TCP",
        "  listeners on Linux have these samples.",
        "",
        "A `forkhorn_requests_total` sample appears with its first request. Memory samples",
        "are read from `/proc` at scrape time (Linux; absent elsewhere).",
        "",
        "## StatsD { #statsd }",
        "",
        "Sent when [`statsd_host`](settings.md#statsd-host) is set, each name behind",
        "[`statsd_prefix`](settings.md#statsd-prefix) and followed by the",
        "[`dogstatsd_tags`](settings.md#dogstatsd-tags). These are Gunicorn's names, with",
        "`forkhorn.` where Gunicorn has `gunicorn.`.",
        "",
        "| metric | type | sent |",
        "|---|---|---|",
    ]
    sent_when = {
        "forkhorn.requests": "by a worker, per request",
        "forkhorn.request.duration": "by a worker, per request: the request time",
        "forkhorn.request.status.<code>": "by a worker, per request: its status code",
        "forkhorn.workers": "by the master at each turn of its loop (at least once a second): the "
        "number of workers",
    }
    for name, kind in statsd_metrics():
        if name.startswith("forkhorn.log."):
            level = name.rsplit(".", 1)[1]
            when = f"per error-log message at the `{level}` level (even when `loglevel` hides it)"
            if level == "exception":
                when = "per logged exception (a traceback in the error log)"
        elif name in sent_when:
            when = sent_when[name]
        else:
            raise UndocumentedError(f"StatsD metric {name} has no description in gen_reference")
        lines.append(f"| `{name}` | {kind} | {when} |")
    lines.append("")
    return "\n".join(lines)


# --- the latest benchmark ------------------------------------------------------------


def copy_bench_plot() -> None:
    ASSETS.mkdir(parents=True, exist_ok=True)
    target = ASSETS / "bench-latest.png"
    if BENCH_PLOT.exists():
        shutil.copyfile(BENCH_PLOT, target)
    else:
        raise UndocumentedError(f"{BENCH_PLOT} is missing: run `nox -s bench` first")


def main() -> int:
    REFERENCE.mkdir(exist_ok=True)
    FRAGMENTS.mkdir(exist_ok=True)
    try:
        (REFERENCE / "settings.md").write_text(settings_page())
        (REFERENCE / "hooks.md").write_text(hooks_page())
        (REFERENCE / "exit-codes.md").write_text(exit_codes_page())
        (REFERENCE / "metrics.md").write_text(metrics_page())
        (FRAGMENTS / "leniency.md").write_text(leniency_fragment() + "\n")
        (FRAGMENTS / "gunicorn-only.md").write_text(gunicorn_only_fragment() + "\n")
        copy_bench_plot()
    except UndocumentedError as exc:
        print(f"gen_reference: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
