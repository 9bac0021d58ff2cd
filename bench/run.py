#!/usr/bin/env python3
"""forkhorn's benchmark driver: forkhorn vs Gunicorn, same worker class, same run.

Usage (from the repository root; see bench/README.md)::

    python bench/run.py [--quick] [--worker-classes sync,gthread] [--workloads hello,...]
        [--forkhorn-python PY] [--forkhorn-eventlet-python PY]
        [--gunicorn-python PY] [--gunicorn23-python PY]

Invariants:
- For each worker class, forkhorn then Gunicorn are started one after the other (2 workers,
  127.0.0.1, free port) and measured idle (start to first 200, then worker RSS before the
  next one starts); then, per workload, both are warmed up and loaded with ``wrk -t1`` in
  turn (order flipped on each ``--repeat``), so host noise hits both sides alike; only one
  server is under load at any time. Both are stopped before the next class; no server
  outlives this process, even on TERM (see bench/servers.py).
- The async classes also run hello beside 1,000 idle keep-alive connections, on a
  forkhorn server of their own (``idle_connections``); the observability pair runs last.
- In a full run, bare pre-fork loops take their turn beside the sync and gevent workers
  (``bench/reference_sync.py`` on hello with ``Connection: close``,
  ``bench/reference_gevent.py`` on hello and the 10 ms sleep): what pure Python does on
  this host with no HTTP, reported apart, never judged against a target.
- Exit status: 0 when the harness worked, even if a speed target failed (the report says);
  1 when a forkhorn run had non-2xx responses or socket errors, or forkhorn failed to serve
  (unless ``--no-fail-on-errors``); 2 when the harness itself broke (wrk missing or
  unreadable, Gunicorn failing, nothing to compare).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/run.py` puts bench/, not the repo, on the path
    sys.path.insert(0, str(REPO))

from bench import probe, report  # noqa: E402
from bench.servers import (  # noqa: E402
    IdleConnections,
    Server,
    ServerError,
    ServerSpec,
    free_port,
    http_status,
)
from bench.workloads import (  # noqa: E402
    ASYNC_CLASSES,
    FULL_WORKLOADS,
    IDLE_CONNECTIONS,
    QUICK_WORKLOADS,
    WORKLOADS,
    Workload,
    target_for,
)
from bench.wrk import WrkError, build_command, run_wrk, wrk_version  # noqa: E402

ALL_CLASSES = ("sync", "gthread", "gevent", "eventlet")
RESULTS = REPO / "bench" / "results"
THREADS = 8
#: interleaved runs per side of the observability pair (full mode): its two sides differ
#: by a few microseconds per request, less than one run's noise on a shared host
OBSERVABILITY_REPEAT = 5
#: the same for the idle-connections pair (without / with), full mode
IDLE_REPEAT = 3
#: worker class -> (bare loop module, the workloads it runs beside that class), full mode:
#: those BENCHMARKS.md gives its own minimal pure-Python loop's figures for
REFERENCES = {
    "sync": ("bench.reference_sync", ("hello-close",)),
    "gevent": ("bench.reference_gevent", ("hello", "sleep")),
}
#: interleaved wrk runs per server and workload (full mode): one 5 s run moves 20% on a
#: shared host (BENCHMARKS.md), the median of three interleaved ones much less
FULL_REPEAT = 3
MICROBENCH_DIR = REPO / "packages" / "forkhorn" / "tests" / "http"
MICROBENCH_CODE = "import sys; sys.path.insert(0, sys.argv[1]); import microbench; "
MICROBENCH_CODE += "print(microbench.bench_parse(int(sys.argv[2])))"


@dataclass
class Context:
    args: argparse.Namespace
    workloads: list[Workload]
    duration: int
    warmup: int
    logdir: Path
    env: dict[str, str]
    forkhorn: probe.ForkhornInfo
    results: report.Results = field(default_factory=report.Results)
    forkhorn_eventlet: probe.ForkhornInfo | None = None
    startup_samples: int = 1
    repeat: int = 1

    def say(self, text: str) -> None:
        print(text, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 s runs, fewer workloads (< 1 min)")
    ap.add_argument("--duration", type=int, help="seconds per wrk run (default 5, quick 1)")
    ap.add_argument("--warmup", type=int, help="warm-up seconds (default 1)")
    ap.add_argument(
        "--worker-classes",
        "--workers-classes",
        dest="classes",
        default=",".join(ALL_CLASSES),
        help="comma list (default: all four)",
    )
    ap.add_argument("--workloads", help=f"comma list of {', '.join(WORKLOADS)}")
    ap.add_argument("--forkhorn-python", default=sys.executable)
    ap.add_argument(
        "--forkhorn-eventlet-python",
        default="",
        help="python with forkhorn + forkhorn-eventlet (default: --forkhorn-python)",
    )
    ap.add_argument(
        "--gunicorn-python",
        default=sys.executable,
        help="python with gunicorn==27.0.1 (and gevent)",
    )
    ap.add_argument(
        "--gunicorn23-python",
        default="",
        help="python with gunicorn==23.0.0 + eventlet (eventlet comparison)",
    )
    ap.add_argument(
        "--out",
        help="directory for latest.md/.json/.png (default bench/results; with --quick, "
        "bench/results/quick, so a short run never replaces the full run the docs show)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        help="wrk runs per server and workload, the median kept (default 3, quick 1)",
    )
    ap.add_argument(
        "--startup-samples", type=int, help="starts per server for the median (default 3, quick 1)"
    )
    ap.add_argument("--skip-observability", action="store_true")
    ap.add_argument(
        "--skip-idle",
        action="store_true",
        help="skip the gevent/eventlet run beside 1,000 idle keep-alive connections",
    )
    ap.add_argument(
        "--skip-reference",
        action="store_true",
        help="skip the bare loops run beside forkhorn's sync and gevent workers (full mode)",
    )
    ap.add_argument("--skip-microbench", action="store_true")
    ap.add_argument(
        "--no-fail-on-errors",
        action="store_true",
        help="exit 0 even when forkhorn had non-2xx/socket errors",
    )
    args = ap.parse_args(argv)
    bad = [c for c in args.classes.split(",") if c not in ALL_CLASSES]
    unknown = [w for w in (args.workloads or "").split(",") if w and w not in WORKLOADS]
    if bad or unknown:
        ap.error(f"unknown worker classes {bad} / workloads {unknown}")
    return args


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FORKHORN_DISABLE_PLUGIN_AUTOLOAD", None)  # the gevent/eventlet plugins must load
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def build_context(args: argparse.Namespace) -> Context:
    keys = args.workloads.split(",") if args.workloads else None
    keys = keys or list(QUICK_WORKLOADS if args.quick else FULL_WORKLOADS)
    duration = args.duration or (1 if args.quick else 5)
    warmup = 1 if args.warmup is None else args.warmup
    logdir = Path(tempfile.mkdtemp(prefix="forkhorn-bench-"))
    samples = args.startup_samples or (1 if args.quick else 3)
    return Context(
        args,
        [WORKLOADS[k] for k in keys],
        duration,
        warmup,
        logdir,
        server_env(),
        probe.probe_forkhorn(args.forkhorn_python),
        startup_samples=max(1, samples),
        repeat=max(1, args.repeat or (1 if args.quick else FULL_REPEAT)),
    )


def gunicorn_for(ctx: Context, worker_class: str) -> tuple[str, list[str]]:
    """(python, modules it must import) of the Gunicorn compared with this class."""
    if worker_class == "eventlet":
        return ctx.args.gunicorn23_python, ["gunicorn", "eventlet"]
    return ctx.args.gunicorn_python, ["gunicorn"] + (["gevent"] if worker_class == "gevent" else [])


def forkhorn_for(ctx: Context, worker_class: str) -> probe.ForkhornInfo:
    """The forkhorn install for this class (eventlet may live in its own venv)."""
    python = ctx.args.forkhorn_eventlet_python
    if worker_class != "eventlet" or not python or python == ctx.forkhorn.python:
        return ctx.forkhorn
    if ctx.forkhorn_eventlet is None:
        ctx.forkhorn_eventlet = probe.probe_forkhorn(python)
    return ctx.forkhorn_eventlet


def specs_for(ctx: Context, worker_class: str) -> list[ServerSpec] | str:
    """The servers to run for this class, or the reason the whole class is skipped.

    Without its Gunicorn there is nothing to compare with: the class is skipped. Without
    forkhorn, Gunicorn still runs alone (useful while forkhorn is being built) and the
    forkhorn side is listed as skipped.
    """
    python, modules = gunicorn_for(ctx, worker_class)
    if not python:
        return "no --gunicorn23-python given (gunicorn 23.0.0 + eventlet venv)"
    found = probe.importable(python, modules)
    if not found.ok:
        return f"gunicorn side unavailable: {found.output}"
    threads = THREADS if worker_class == "gthread" else 0
    specs = [ServerSpec("gunicorn", python, "gunicorn", worker_class, threads=threads)]
    info = forkhorn_for(ctx, worker_class)
    ours = info.worker_available(worker_class)
    if not ours.ok:
        ctx.results.skip(f"forkhorn {worker_class}", ours.output)
        ctx.say(f"  forkhorn side skipped: {ours.output}")
        return specs
    return [ServerSpec("forkhorn", info.python, "forkhorn", worker_class, threads=threads), *specs]


def load(ctx: Context, srv: Server, work: Workload, seconds: int) -> report.Run:
    spec = srv.spec
    run = report.Run(spec.label, spec.worker_class, work.key)
    cmd = build_command(srv.url + work.path, work.connections, seconds, work.close, work.script)
    try:
        run.result, run.raw = run_wrk(cmd, seconds)
    except WrkError as exc:
        run.error = str(exc)
        if srv.proc is not None and srv.proc.poll() is not None:
            run.error += f"\nserver exited: {srv.log_tail()}"
    return run


def warm(ctx: Context, servers: list[Server], work: Workload) -> None:
    for srv in servers:
        load(ctx, srv, work, ctx.warmup)  # the warm-up's figures are thrown away


def compare(
    ctx: Context, servers: list[Server], work: Workload, repeat: int = 0
) -> list[report.Run]:
    """One representative run per server (same order as ``servers``) on one workload, the
    median of ``repeat`` runs each (default ``--repeat``).

    The servers take turns, and the order flips on every repetition, so a machine that gets
    busier or quieter during the run shifts both sides alike (BENCHMARKS.md: shared hosts).
    """
    if ctx.warmup and not ctx.args.quick:
        warm(ctx, servers, work)
    samples: list[list[report.Run]] = [[] for _ in servers]
    for rep in range(repeat or ctx.repeat):
        order = list(enumerate(servers))
        for i, srv in order if rep % 2 == 0 else order[::-1]:
            samples[i].append(load(ctx, srv, work, ctx.duration))
    return [representative(runs) for runs in samples]


def representative(runs: list[report.Run]) -> report.Run:
    """The median run by req/s; a run with errors wins, so no failure is ever hidden."""
    failed = [run for run in runs if run.failed()]
    ranked = sorted(runs, key=lambda run: run.result.rps if run.result else 0.0)
    chosen = failed[0] if failed else ranked[len(ranked) // 2]
    chosen.samples = [run.result.rps for run in runs if run.result]
    return chosen


def startup_samples(ctx: Context, spec: ServerSpec, log: Path) -> list[float]:
    """Start-to-first-200 of extra bare start/stop cycles (start-up time is noisy)."""
    samples = []
    for _ in range(ctx.startup_samples - 1):
        with Server(spec, REPO, log, ctx.env) as srv:
            samples.append(srv.startup_s)
    return samples


def start_measured(ctx: Context, spec: ServerSpec, stack: ExitStack) -> Server | None:
    """Start a server for the class (stopped with ``stack``), recording start-up and idle RSS."""
    log = ctx.logdir / f"{spec.label}-{spec.worker_class}.log"
    figures = report.ServerFigures(spec.label, spec.worker_class)
    ctx.results.servers.append(figures)
    try:
        starts = startup_samples(ctx, spec, log)
        srv = stack.enter_context(Server(spec, REPO, log, ctx.env))
    except ServerError as exc:
        figures.error = str(exc)
        ctx.say(f"  {spec.label} {spec.worker_class}: FAILED TO SERVE: {exc}")
        return None
    starts.append(srv.startup_s)
    figures.startup_s = statistics.median(starts)
    figures.idle_rss_kib = srv.idle_worker_rss_kib()
    ctx.say(
        f"  {spec.label:8} {spec.worker_class:8} start to first 200 "
        f"{figures.startup_s:.3f}s (median of {len(starts)}), "
        f"idle worker RSS {figures.idle_rss_kib / 1024:.1f} MiB"
    )
    return srv


def bench_class(ctx: Context, worker_class: str) -> None:
    ctx.say(f"[{worker_class}]")
    specs = specs_for(ctx, worker_class)
    if isinstance(specs, str):
        ctx.results.skip(f"worker class {worker_class}", specs)
        ctx.say(f"  skipped: {specs}")
        return
    ours = next((spec for spec in specs if spec.label == "forkhorn"), None)
    with ExitStack() as stack:
        # Idle measures are taken one server at a time, before the other one starts.
        started = [start_measured(ctx, spec, stack) for spec in specs]
        servers = [srv for srv in started if srv is not None]
        reference = start_reference(ctx, ours, stack)
        if ctx.warmup and ctx.args.quick:
            warm(ctx, servers, WORKLOADS["hello"])
        for work in class_workloads(ctx, worker_class):
            takers = servers
            if reference is not None and work.key in REFERENCES[worker_class][1]:
                takers = [*servers, reference]  # it takes its turn in the same rotation
            for run in compare(ctx, takers, work):
                kept_in = ctx.results.reference if run.server == "reference" else ctx.results.runs
                kept_in.append(run)
                ctx.say(f"  {run.server:9} {worker_class:8} {work.key:12} {run.summary()}")
    if ours is None or worker_class not in ASYNC_CLASSES or ctx.args.skip_idle:
        return
    if ctx.args.quick:  # it would take --quick past a minute
        ctx.results.skip(f"forkhorn {worker_class} beside idle connections", "--quick")
        return
    idle_connections(ctx, ours)


def start_reference(ctx: Context, ours: ServerSpec | None, stack: ExitStack) -> Server | None:
    """For forkhorn's sync or gevent class in a full run, the class's bare loop
    (``REFERENCES``; stopped with ``stack``), run with forkhorn's Python; None when it does
    not apply or did not start (listed as skipped: it is context, not a peer, and a run
    does not fail for it)."""
    if ours is None or ours.worker_class not in REFERENCES or ctx.args.skip_reference:
        return None
    module, workloads = REFERENCES[ours.worker_class]
    what = f"bare {ours.worker_class} loop (reference)"
    if ctx.args.quick:  # more runs would take --quick past a minute
        ctx.results.skip(what, "--quick")
        return None
    if not any(work.key in workloads for work in ctx.workloads):
        return None
    spec = ServerSpec("reference", ours.python, module, ours.worker_class)
    log = ctx.logdir / f"reference-{ours.worker_class}.log"
    try:
        return stack.enter_context(Server(spec, REPO, log, ctx.env))
    except ServerError as exc:
        ctx.results.skip(what, str(exc))
        ctx.say(f"  reference {ours.worker_class} loop skipped: {exc}")
        return None


def class_workloads(ctx: Context, worker_class: str) -> list[Workload]:
    """The workloads run for ``worker_class``: every one that applies to it, or, for a
    ``--quick`` run without ``--workloads``, those the targets judge for it (a short run
    is for checking the targets: under a minute for the four classes)."""
    works = [work for work in ctx.workloads if work.applies_to(worker_class)]
    if ctx.args.quick and not ctx.args.workloads:
        works = [work for work in works if target_for(work.key, worker_class).judged]
    return works


def idle_connections(ctx: Context, spec: ServerSpec) -> None:
    """Hello keep-alive without and with IDLE_CONNECTIONS idle keep-alive connections held
    open beside it, on a forkhorn async server of its own (keep-alive long enough to keep
    them, worker connections to hold them), the two taking turns (median of each)."""
    extra = ("--keep-alive", "60", "--worker-connections", str(2 * IDLE_CONNECTIONS))
    spec = ServerSpec(spec.label, spec.python, spec.module, spec.worker_class, extra=extra)
    repeat = max(ctx.repeat, IDLE_REPEAT)
    check = report.IdleCheck(spec.worker_class, IDLE_CONNECTIONS, repeat)
    ctx.results.idle.append(check)
    hello = WORKLOADS["hello"]
    log = ctx.logdir / f"idle-{spec.worker_class}.log"
    samples: dict[str, list[report.Run]] = {"without": [], "with": []}
    served, kept = [], []
    try:
        with Server(spec, REPO, log, ctx.env) as srv:
            if ctx.warmup:
                warm(ctx, [srv], hello)
            for _ in range(repeat):
                samples["without"].append(load(ctx, srv, hello, ctx.duration))
                with IdleConnections(srv.port, IDLE_CONNECTIONS) as idle:
                    samples["with"].append(load(ctx, srv, hello, ctx.duration))
                    served.append(idle.served)
                    kept.append(idle.still_open())
    except (ServerError, OSError) as exc:
        check.error = str(exc)
        ctx.say(f"  forkhorn {spec.worker_class} idle connections: FAILED: {exc}")
        return
    check.runs = {label: representative(runs) for label, runs in samples.items()}
    check.served, check.kept = min(served), min(kept)
    for label, run in check.runs.items():
        run.workload = f"hello ({label} {IDLE_CONNECTIONS} idle connections)"
        ctx.say(f"  forkhorn {spec.worker_class:8} {label:7} idle: {run.summary()}")
    ctx.say(f"  idle connections served {check.served}, still open after the run {check.kept}")


def observability(ctx: Context) -> None:
    ctx.say("[observability: forkhorn gthread, hello keep-alive, access log + metrics]")
    info = ctx.forkhorn
    if not info.runnable or not info.has_flag("--access-logfile"):
        reason = info.reason or "forkhorn --help shows no --access-logfile"
        ctx.results.skip("observability overhead", reason)
        ctx.say(f"  skipped: {reason}")
        return
    access_log = ctx.logdir / "access.log"
    on_flags = ["--access-logfile", str(access_log)]
    metrics_port = free_port() if info.has_flag("--metrics-bind") else 0
    if metrics_port:
        on_flags += ["--metrics-bind", f"127.0.0.1:{metrics_port}"]
    else:
        ctx.results.skip("metrics in the observability run", "forkhorn has no --metrics-bind")
    repeat = ctx.repeat if ctx.args.quick else max(ctx.repeat, OBSERVABILITY_REPEAT)
    obs = report.Observability(metrics=bool(metrics_port), repeat=repeat)
    ctx.results.observability = obs
    with ExitStack() as stack:
        servers: dict[str, Server] = {}
        for label, extra in (("off", []), ("on", on_flags)):
            spec = ServerSpec(
                "forkhorn", info.python, "forkhorn", "gthread", threads=THREADS, extra=tuple(extra)
            )
            log = ctx.logdir / f"observability-{label}.log"
            try:
                servers[label] = stack.enter_context(Server(spec, REPO, log, ctx.env))
            except ServerError as exc:
                obs.runs[label] = report.Run("forkhorn", "gthread", "hello", error=str(exc))
        observe(ctx, obs, servers)
        if metrics_port and "on" in servers:
            obs.metrics_status = http_status(metrics_port, "/metrics", timeout=5.0)
    obs.access_log_lines = count_lines(access_log)


def observe(ctx: Context, obs: report.Observability, servers: dict[str, Server]) -> None:
    if ctx.warmup and ctx.args.quick:
        warm(ctx, list(servers.values()), WORKLOADS["hello"])
    runs = compare(ctx, list(servers.values()), WORKLOADS["hello"], obs.repeat)
    for label, run in zip(servers, runs, strict=True):
        obs.runs[label] = run
    for label, run in sorted(obs.runs.items()):
        run.workload = f"hello (observability {label})"
        ctx.say(f"  forkhorn gthread hello, observability {label:3}: {run.summary()}")


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def microbench(ctx: Context) -> None:
    ctx.say("[parser microbenchmark]")
    if not (MICROBENCH_DIR / "microbench.py").exists():
        reason = f"{MICROBENCH_DIR / 'microbench.py'} does not exist yet"
        ctx.results.skip("parser microbenchmark", reason)
        ctx.say(f"  skipped: {reason}")
        return
    n = 20_000 if ctx.args.quick else 200_000
    args = ["-c", MICROBENCH_CODE, str(MICROBENCH_DIR), str(n)]
    result = probe.run_python(ctx.forkhorn.python, args, timeout=300)
    try:
        rate = float(result.output.splitlines()[-1]) if result.ok else None
    except (ValueError, IndexError):
        rate = None
    if rate is None:
        ctx.results.skip("parser microbenchmark", f"bench_parse failed: {result.output[-300:]}")
    else:
        ctx.results.microbench = {"requests": n, "parse_per_s": rate}
    ctx.say(f"  bench_parse({n}): {result.output.splitlines()[-1] if result.output else '?'}")


def record_meta(ctx: Context, argv: list[str]) -> None:
    a = ctx.args
    ctx.results.meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": "python bench/run.py " + " ".join(argv),
        "cpus": os.cpu_count(),
        "kernel": os.uname().release,
        "loadavg_at_start": round(os.getloadavg()[0], 2),  # > 0.5 here: a busy, noisy host
        "wrk": wrk_version(),
        "duration_s": ctx.duration,
        "warmup_s": ctx.warmup,
        "repeat": ctx.repeat,
        "forkhorn": f"{ctx.forkhorn.version or '?'} (python {probe.python_version(a.forkhorn_python)})",
        "gunicorn": probe.module_version(a.gunicorn_python, "gunicorn"),
        "gunicorn23": probe.module_version(a.gunicorn23_python, "gunicorn")
        if a.gunicorn23_python
        else "",
        "logs": str(ctx.logdir),
    }


def _terminate(signum: int, frame: object) -> None:
    # Turn TERM (e.g. a CI timeout) into an exception so every `with Server` stops its server.
    raise SystemExit(128 + signum)


def results_dir(args: argparse.Namespace) -> Path:
    """``--out``, else ``bench/results``; ``bench/results/quick`` for ``--quick``, so a
    short run never replaces the full run the docs show."""
    if args.out:
        return Path(args.out)
    return RESULTS / "quick" if args.quick else RESULTS


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _terminate)
    args = parse_args(argv)
    ctx = build_context(args)
    record_meta(ctx, argv)
    if not ctx.results.meta["wrk"]:
        print("wrk is not installed: run `bash ci/install-wrk.sh`", file=sys.stderr)
        return 2
    if not ctx.forkhorn.runnable:
        ctx.say(f"WARNING: forkhorn is not runnable: {ctx.forkhorn.reason}")
        ctx.results.skip("forkhorn", ctx.forkhorn.reason)
    for worker_class in args.classes.split(","):
        bench_class(ctx, worker_class)
    if not args.skip_observability:
        observability(ctx)
    if not args.skip_microbench:
        microbench(ctx)
    ctx.results.meta["loadavg_at_end"] = round(os.getloadavg()[0], 2)
    status = report.exit_status(ctx.results, fail_on_errors=not args.no_fail_on_errors)
    if status == 0 and not report.has_errors(ctx.results):
        shutil.rmtree(ctx.logdir, ignore_errors=True)  # server logs are kept only to diagnose
        ctx.results.meta["logs"] = "(removed: no errors)"
    text = report.write_all(ctx.results, results_dir(args))
    print("\n" + text)
    return status


if __name__ == "__main__":
    sys.exit(main())
