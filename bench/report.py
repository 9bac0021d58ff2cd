"""What a benchmark run measured, checked against the targets, written as Markdown/JSON/PNG.

Invariants: the report is computed from the recorded runs only (no measuring here); every
figure has its target and a verdict next to it ("PASS", "FAIL", or "—" when BENCHMARKS.md
sets none); a forkhorn run with any non-2xx response or socket error is a FAIL whatever its
speed. Files written: ``latest.md``, ``latest.json``, ``latest.png`` (the plot is skipped
with a note when matplotlib is missing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.workloads import (
    IDLE_MIN_RATIO,
    OBSERVABILITY_MIN_RATIO,
    WORKLOADS,
    target_for,
)
from bench.wrk import WrkResult

# "forkhorn <= gunicorn" for RSS and start-up: a ratio that shows as 1.00 counts as equal.
EQUAL_WITHIN = 1.005


@dataclass
class Run:
    """One measured wrk run of one server on one workload."""

    server: str
    worker_class: str
    workload: str
    result: WrkResult | None = None
    raw: str = ""
    error: str = ""
    samples: list[float] = field(default_factory=list)  # req/s of every repetition

    def summary(self) -> str:
        r = self.result
        if r is None:
            return f"ERROR: {self.error}"
        return (
            f"{r.rps:>10,.0f} req/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  "
            f"non-2xx {r.non_2xx}  socket errors {r.socket_errors}"
        )

    def failed(self) -> bool:
        return self.result is None or self.result.errors > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "worker_class": self.worker_class,
            "workload": self.workload,
            "error": self.error,
            "result": self.result.to_json() if self.result else None,
            "samples_rps": self.samples,
            "wrk": self.raw,
        }


@dataclass
class ServerFigures:
    server: str
    worker_class: str
    startup_s: float = 0.0
    idle_rss_kib: float = 0.0
    error: str = ""


@dataclass
class Observability:
    """The off/on pair; ``problems`` says why an "on" run did not really have both on."""

    metrics: bool
    repeat: int = 1  # interleaved runs per side, the median kept
    runs: dict[str, Run] = field(default_factory=dict)
    access_log_lines: int = 0
    metrics_status: int = 0

    def problems(self) -> list[str]:
        found = []
        if not self.metrics:
            found.append("no --metrics-bind in forkhorn: access log only")
        elif self.metrics_status != 200:
            found.append(f"metrics bind answered {self.metrics_status or 'nothing'} on /metrics")
        if not self.access_log_lines:
            found.append("the access log stayed empty")
        return found

    def note(self) -> str:
        problems = self.problems()
        if problems:
            return "; ".join(problems)
        return (
            f"access log ({self.access_log_lines:,} lines) + metrics (/metrics 200);"
            f" median of {self.repeat} interleaved run(s) each"
        )

    def ratio(self) -> float | None:
        return _rate_ratio(self.runs.get("on"), self.runs.get("off"))


@dataclass
class IdleCheck:
    """Hello keep-alive on one forkhorn async server without and with ``count`` idle
    keep-alive connections held open beside it (``runs``: "without", "with")."""

    worker_class: str
    count: int
    repeat: int = 1
    runs: dict[str, Run] = field(default_factory=dict)
    served: int = 0  # idle connections answered 200 (the fewest of the repetitions)
    kept: int = 0  # of them, still open after the loaded run (the fewest)
    error: str = ""

    def ratio(self) -> float | None:
        return _rate_ratio(self.runs.get("with"), self.runs.get("without"))

    def failed(self) -> bool:
        """The check broke or a run had errors (whatever the rates)."""
        return bool(self.error) or any(run.failed() for run in self.runs.values())


def _rps(run: Run | None) -> float | None:
    return run.result.rps if run and run.result else None


def _rate_ratio(run: Run | None, base: Run | None) -> float | None:
    """req/s of ``run`` over ``base``'s (None when either has no figure)."""
    rps, base_rps = _rps(run), _rps(base)
    return rps / base_rps if rps is not None and base_rps else None


@dataclass
class Results:
    meta: dict[str, Any] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    servers: list[ServerFigures] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    observability: Observability | None = None
    idle: list[IdleCheck] = field(default_factory=list)
    microbench: dict[str, float] | None = None
    #: the bare loops' runs (bench/reference_sync.py, bench/reference_gevent.py), beside forkhorn's
    reference: list[Run] = field(default_factory=list)

    def skip(self, what: str, reason: str) -> None:
        self.skipped.append((what, reason))

    def run(self, server: str, worker_class: str, workload: str) -> Run | None:
        for run in self.runs:
            if (run.server, run.worker_class, run.workload) == (server, worker_class, workload):
                return run
        return None

    def figures(self, server: str, worker_class: str) -> ServerFigures | None:
        for fig in self.servers:
            if (fig.server, fig.worker_class) == (server, worker_class):
                return fig
        return None

    def classes(self) -> list[str]:
        return list(dict.fromkeys(f.worker_class for f in self.servers))


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours and theirs else None


def throughput_rows(res: Results) -> list[dict[str, Any]]:
    rows = []
    for worker_class in res.classes():
        for key in dict.fromkeys(r.workload for r in res.runs if r.worker_class == worker_class):
            rows.append(_throughput_row(res, worker_class, key))
    return rows


def _throughput_row(res: Results, worker_class: str, key: str) -> dict[str, Any]:
    ours, theirs = res.run("forkhorn", worker_class, key), res.run("gunicorn", worker_class, key)
    o = ours.result if ours else None
    t = theirs.result if theirs else None
    ratio = _ratio(o.rps if o else None, t.rps if t else None)
    target = target_for(key, worker_class)
    verdict = target.check(o.rps, ratio) if o else ("FAIL" if ours else "—")
    if ours and ours.failed():
        verdict = "FAIL (errors)"
    server = res.figures("forkhorn", worker_class)
    if server and server.error:
        verdict = "FAIL (did not serve)"
    return {
        "worker_class": worker_class,
        "workload": key,
        "title": WORKLOADS[key].title,
        "forkhorn": o.to_json() if o else None,
        "gunicorn": t.to_json() if t else None,
        "forkhorn_error": ours.error if ours else "",
        "gunicorn_error": theirs.error if theirs else "",
        "ratio": ratio,
        "target": target.describe(),
        "result": verdict,
    }


def server_rows(res: Results) -> list[dict[str, Any]]:
    rows = []
    for worker_class in res.classes():
        ours, theirs = res.figures("forkhorn", worker_class), res.figures("gunicorn", worker_class)
        row: dict[str, Any] = {"worker_class": worker_class}
        for name in ("idle_rss_kib", "startup_s"):
            mine = getattr(ours, name) if ours and not ours.error else None
            peer = getattr(theirs, name) if theirs and not theirs.error else None
            ratio = _ratio(mine, peer)
            verdict = "—" if ratio is None else ("PASS" if ratio <= EQUAL_WITHIN else "FAIL")
            row[name] = {"forkhorn": mine, "gunicorn": peer, "ratio": ratio, "result": verdict}
        rows.append(row)
    return rows


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "—" if value is None else format(value, fmt)


def _times(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}x"


def _lat(r: dict[str, Any] | None) -> str:
    return "—" if r is None else f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}"


def _errs(r: dict[str, Any] | None, error: str) -> str:
    if r is None:
        return "run failed" if error else "—"
    if not (r["non_2xx"] or r["socket_errors"]):
        return "0"
    return f"{r['non_2xx']} non-2xx, {r['socket_errors']} socket"


def _section(
    heading: str, columns: list[str], align: str, lines: list[str], intro: str = ""
) -> list[str]:
    """One Markdown section of the report: ``## heading``, an optional paragraph, a table
    (``align``: one letter per column, ``l`` or ``r``) with ``lines`` as its rows, and the
    blank line that ends it."""
    assert len(columns) == len(align), (columns, align)
    rule = "|".join("---:" if side == "r" else "---" for side in align)
    head = [f"## {heading}", "", *([intro, ""] if intro else [])]
    return [*head, f"| {' | '.join(columns)} |", f"|{rule}|", *lines, ""]


def _throughput_md(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        fh, gu = r["forkhorn"], r["gunicorn"]
        lines.append(
            f"| {r['worker_class']} | {r['title']} | {_num(fh and fh['rps'])} "
            f"| {_num(gu and gu['rps'])} | {_times(r['ratio'])} | {r['target']} "
            f"| {r['result']} | {_lat(fh)} | {_lat(gu)} | {_errs(fh, r['forkhorn_error'])} "
            f"| {_errs(gu, r['gunicorn_error'])} |"
        )
    columns = [
        "worker", "workload", "forkhorn", "gunicorn", "ratio", "target", "result",
        "p50 / p99 ms forkhorn", "p50 / p99 ms gunicorn", "errors forkhorn", "errors gunicorn",
    ]  # fmt: skip
    return _section("Throughput (req/s, wrk -t1, 2 workers)", columns, "llrrrllrrll", lines)


def _server_md(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        m, s = r["idle_rss_kib"], r["startup_s"]
        mib = [None if v is None else v / 1024 for v in (m["forkhorn"], m["gunicorn"])]
        lines.append(
            f"| {r['worker_class']} | {_num(mib[0], '.1f')} | {_num(mib[1], '.1f')} "
            f"| {_num(m['ratio'], '.2f')} | {m['result']} | {_num(s['forkhorn'], '.2f')} "
            f"| {_num(s['gunicorn'], '.2f')} | {_num(s['ratio'], '.2f')} | {s['result']} |"
        )
    columns = [
        "worker", "idle RSS MiB forkhorn", "gunicorn", "ratio", "result",
        "start to first 200 s forkhorn", "gunicorn", "ratio", "result",
    ]  # fmt: skip
    return _section(
        "Idle worker memory and start-up (target: forkhorn <= gunicorn)",
        columns,
        "lrrrlrrrl",
        lines,
        intro="Mean VmRSS of the 2 workers after start, before any load; start to first 200 "
        "is the median over the starts made (a ratio that shows as 1.00 counts as equal).",
    )


def observability_row(res: Results) -> dict[str, Any] | None:
    obs = res.observability
    if obs is None:
        return None
    ratio = obs.ratio()
    failed = any(run.failed() for run in obs.runs.values())
    verdict = "FAIL" if failed or ratio is None or ratio < OBSERVABILITY_MIN_RATIO else "PASS"
    if verdict == "PASS" and obs.problems():
        verdict = "INCOMPLETE"
    rps = {k: v.result.rps if v.result else None for k, v in obs.runs.items()}
    return {
        "off_rps": rps.get("off"),
        "on_rps": rps.get("on"),
        "ratio": ratio,
        "target": f">= {OBSERVABILITY_MIN_RATIO:g} of off",
        "result": verdict,
        "note": obs.note(),
        "errors": {k: v.error or (v.result and v.result.errors) for k, v in obs.runs.items()},
    }


def idle_rows(res: Results) -> list[dict[str, Any]]:
    rows = []
    for check in res.idle:
        ratio = check.ratio()
        kept_all = check.served == check.count and check.kept == check.count
        ok = not check.failed() and kept_all and ratio is not None and ratio >= IDLE_MIN_RATIO
        with_idle = check.runs.get("with")
        rows.append({
            "worker_class": check.worker_class,
            "idle_connections": check.count,
            "without_rps": _rps(check.runs.get("without")),
            "with_rps": _rps(with_idle),
            "ratio": ratio,
            "with_latency": with_idle.result.to_json() if with_idle and with_idle.result else None,
            "served": check.served,
            "kept": check.kept,
            "repeat": check.repeat,
            "target": f">= {IDLE_MIN_RATIO:g} of without, every idle connection kept",
            "result": "PASS" if ok else "FAIL",
            "error": check.error,
        })  # fmt: skip
    return rows


def _idle_md(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        f"| {r['worker_class']} | {_num(r['without_rps'])} | {_num(r['with_rps'])} "
        f"| {_num(r['ratio'], '.2f')} | {_lat(r['with_latency'])} "
        f"| {r['served']:,} / {r['kept']:,} | {r['target']} | {r['result']} |"
        for r in rows
    ]
    columns = [
        "worker", "without req/s", "with req/s", "with / without", "p50 / p99 ms with",
        "idle served / still open", "target", "result",
    ]  # fmt: skip
    return _section(
        f"Idle keep-alive connections (forkhorn, hello keep-alive c50 beside "
        f"{rows[0]['idle_connections']:,} idle ones)",
        columns,
        "lrrrrrll",
        lines,
        intro="Each idle connection sent one request, read its 200 and stays open "
        "(`--keep-alive 60 --worker-connections 2000`); the rate is the median of the "
        "interleaved runs.",
    )


def reference_rows(res: Results) -> list[dict[str, Any]]:
    """forkhorn's rate beside the bare loop's, per worker class and workload both ran."""
    rows = []
    for loop in res.reference:
        ours = res.run("forkhorn", loop.worker_class, loop.workload)
        rows.append({
            "worker_class": loop.worker_class,
            "workload": loop.workload,
            "title": WORKLOADS[loop.workload].title,
            "reference_rps": _rps(loop),
            "forkhorn_rps": _rps(ours),
            "share": _rate_ratio(ours, loop),
            "reference_error": loop.error,
        })  # fmt: skip
    return rows


def _reference_md(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = []
    for r in rows:
        loop = _num(r["reference_rps"]) if r["reference_rps"] else f"error: {r['reference_error']}"
        share = _num(r["share"], ".2f")
        lines.append(
            f"| {r['worker_class']} | {r['title']} | {loop} | {_num(r['forkhorn_rps'])} | {share} |"
        )
    return _section(
        "Ceiling: bare pre-fork loops, same run",
        ["worker", "workload", "bare loop req/s", "forkhorn req/s", "forkhorn / loop"],
        "llrrr",
        lines,
        intro="Two processes of pure Python and no HTTP: `bench/reference_sync.py` accepts, "
        "makes one `recv` and one `send` of a fixed response, and closes; "
        "`bench/reference_gevent.py` makes one `recv`, the 10 ms sleep on `/sleep`, and one "
        "`send` per request. Each takes its turn with the servers of its class above. "
        "BENCHMARKS.md's reference machine ran such a loop at 28,000 req/s with "
        "`Connection: close`, and on gevent at 48,000 req/s keep-alive and 16,000 req/s on "
        "the sleep; what they do here says how fast this host is.",
    )


def _extras_md(res: Results) -> list[str]:
    out: list[str] = _idle_md(idle_rows(res)) + _reference_md(reference_rows(res))
    obs = observability_row(res)
    if obs:
        out += _section(
            "Observability overhead (forkhorn gthread, hello keep-alive, c50)",
            ["off req/s", "on req/s", "on / off", "target", "result", "note"],
            "rrrlll",
            [
                f"| {_num(obs['off_rps'])} | {_num(obs['on_rps'])} "
                f"| {_num(obs['ratio'], '.2f')} | {obs['target']} | {obs['result']} "
                f"| {obs['note']} |"
            ],
        )
    if res.microbench:
        mb = res.microbench
        out += [
            "## Parser microbenchmark",
            "",
            f"`bench_parse({int(mb['requests'])})`: {mb['parse_per_s']:,.0f} requests parsed/s",
            "",
        ]
    if res.skipped:
        out += ["## Skipped", ""] + [f"- {what}: {why}" for what, why in res.skipped] + [""]
    if errors := _errors(res):
        out += ["## Errors", "", *errors, ""]
    return out


def has_errors(res: Results) -> bool:
    return bool(_errors(res)) or any(run.failed() for run in res.runs)


def _errors(res: Results) -> list[str]:
    """One Markdown list item per failure (continuation lines indented to stay in the item)."""
    runs = res.runs + (list(res.observability.runs.values()) if res.observability else [])
    runs += [run for check in res.idle for run in check.runs.values()]
    items = [(f"{r.server} {r.worker_class} {r.workload}", r.error) for r in runs if r.error]
    items += [(f"forkhorn {c.worker_class} idle connections", c.error) for c in res.idle if c.error]
    items += [(f"{f.server} {f.worker_class}", f.error) for f in res.servers if f.error]
    return ["- " + f"{what}: {error}".replace("\n", "\n  ") for what, error in items]


def markdown(res: Results) -> str:
    meta = res.meta
    head = [
        "# forkhorn benchmark",
        "",
        f"{meta.get('date', '')}; {meta.get('cpus')} CPUs, kernel {meta.get('kernel')}; "
        f"{meta.get('wrk')}; {meta.get('duration_s')} s per run, warm-up {meta.get('warmup_s')} s, "
        f"median of {meta.get('repeat', 1)} interleaved run(s); load average "
        f"{meta.get('loadavg_at_start')} at start, {meta.get('loadavg_at_end')} at end.",
        f"forkhorn {meta.get('forkhorn')}; gunicorn {meta.get('gunicorn')}"
        + (f"; gunicorn {meta['gunicorn23']} for eventlet" if meta.get("gunicorn23") else "")
        + ".",
        "",
        f"Command: `{meta.get('command', '')}`",
        "",
    ]
    body = [*_throughput_md(throughput_rows(res)), *_server_md(server_rows(res))]
    return "\n".join(head + body + _extras_md(res))


def to_json(res: Results) -> dict[str, Any]:
    return {
        "meta": res.meta,
        "throughput": throughput_rows(res),
        "servers": server_rows(res),
        "observability": observability_row(res),
        "idle_connections": idle_rows(res),
        "reference": reference_rows(res),
        "microbench": res.microbench,
        "skipped": [{"what": w, "reason": r} for w, r in res.skipped],
        "runs": [r.to_json() for r in res.runs],
    }


def plot(res: Results, path: Path) -> str:
    """Grouped bars of req/s per workload, one panel per worker class; returns a note."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib missing: no plot"
    rows = throughput_rows(res)
    classes = list(dict.fromkeys(r["worker_class"] for r in rows))
    if not classes:
        return "nothing measured: no plot"
    ncols = min(len(classes), 2)  # a 2-wide grid stays readable at docs page width
    nrows = -(-len(classes) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 4 * nrows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, worker_class in zip(flat, classes, strict=False):
        _panel(ax, [r for r in rows if r["worker_class"] == worker_class], worker_class)
    for ax in flat[len(classes) :]:
        ax.set_visible(False)
    fig.suptitle("forkhorn vs Gunicorn, same worker class (req/s, higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return ""


def _panel(ax: Any, rows: list[dict[str, Any]], worker_class: str) -> None:
    xs = range(len(rows))
    fh = [r["forkhorn"]["rps"] if r["forkhorn"] else 0 for r in rows]
    gu = [r["gunicorn"]["rps"] if r["gunicorn"] else 0 for r in rows]
    ax.bar([x - 0.2 for x in xs], fh, 0.4, label="forkhorn", color="#2a7ab0")
    ax.bar([x + 0.2 for x in xs], gu, 0.4, label="gunicorn", color="#b0b0b0")
    for x, r, top in zip(xs, rows, (max(a, b) for a, b in zip(fh, gu, strict=False)), strict=False):
        if r["ratio"]:
            ax.annotate(f"{r['ratio']:.1f}x", (x, top), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([r["workload"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, max([*fh, *gu, 1]) * 1.15)  # room for the ratio labels
    ax.set_title(worker_class)
    ax.set_ylabel("req/s")
    ax.legend(fontsize=8)


def write_all(res: Results, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    note = plot(res, out / "latest.png")
    text = markdown(res) + (f"\n{note}\n" if note else "")
    (out / "latest.md").write_text(text)
    (out / "latest.json").write_text(json.dumps(to_json(res), indent=2) + "\n")
    return text + f"\nWritten: {out / 'latest.md'}, latest.json" + ("" if note else ", latest.png")


def exit_status(res: Results, fail_on_errors: bool) -> int:
    if any(r.server == "gunicorn" and r.error for r in res.runs):
        return 2
    if any(f.server == "gunicorn" and f.error for f in res.servers):
        return 2
    if not any(f.server == "forkhorn" for f in res.servers):
        return 2  # nothing compared: forkhorn unavailable for every class
    ours_failed = any(r.server == "forkhorn" and r.failed() for r in res.runs)
    ours_failed = ours_failed or any(f.server == "forkhorn" and f.error for f in res.servers)
    obs = res.observability
    ours_failed = ours_failed or bool(obs and any(r.failed() for r in obs.runs.values()))
    ours_failed = ours_failed or any(check.failed() for check in res.idle)
    return 1 if ours_failed and fail_on_errors else 0
