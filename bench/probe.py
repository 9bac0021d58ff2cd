"""Find out what each interpreter under test can run, without importing anything here.

Invariants: every probe is a subprocess of the interpreter concerned (the driver's own
python may lack forkhorn, gevent or Gunicorn 23), bounded in time; a probe never raises:
it answers "not available" with the reason, which the report shows.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

PROBE_TIMEOUT_S = 60

_PLUGIN_CHECK = """
import importlib.metadata as md, importlib.util as u, sys
name = sys.argv[1]
eps = [e for e in md.entry_points(group="forkhorn.plugins") if e.name == name]
if not eps:
    print(f"no {name!r} entry point in group forkhorn.plugins")
elif u.find_spec(name) is None:
    print(f"{name} is not installed")
else:
    print("ok")
"""


@dataclass(frozen=True)
class Probe:
    ok: bool
    output: str


def run_python(python: str, args: list[str], timeout: float = PROBE_TIMEOUT_S) -> Probe:
    try:
        proc = subprocess.run([python, *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Probe(False, str(exc))
    return Probe(proc.returncode == 0, (proc.stdout + proc.stderr).strip())


def module_version(python: str, module: str) -> str:
    """``module.__version__`` in that interpreter, or "" when it does not import."""
    code = f"import {module}; print({module}.__version__)"
    probe = run_python(python, ["-c", code])
    return probe.output.splitlines()[-1] if probe.ok and probe.output else ""


def python_version(python: str) -> str:
    probe = run_python(python, ["-c", "import sys; print(sys.version.split()[0])"])
    return probe.output if probe.ok else ""


def importable(python: str, modules: list[str]) -> Probe:
    code = "import " + ", ".join(modules)
    probe = run_python(python, ["-W", "ignore", "-c", code])
    if probe.ok:
        return probe
    last = probe.output.splitlines()[-1] if probe.output else "failed"
    return Probe(False, f"{python}: cannot import {', '.join(modules)} ({last})")


@dataclass
class ForkhornInfo:
    """What ``<python> -m forkhorn`` offers: runnable?, its --help text, its worker list."""

    python: str
    runnable: bool = False
    reason: str = ""
    help_text: str = ""
    workers: set[str] = field(default_factory=set)
    version: str = ""

    def has_flag(self, flag: str) -> bool:
        return flag in self.help_text

    def worker_available(self, worker_class: str) -> Probe:
        if not self.runnable:
            return Probe(False, f"`{self.python} -m forkhorn` is not runnable")
        if worker_class in ("sync", "gthread") or worker_class in self.workers:
            return Probe(True, "")
        probe = run_python(self.python, ["-c", _PLUGIN_CHECK, worker_class])
        if probe.ok and probe.output.endswith("ok"):
            return Probe(True, "")
        return Probe(False, f"forkhorn-{worker_class} plugin not usable ({probe.output})")


def probe_forkhorn(python: str) -> ForkhornInfo:
    info = ForkhornInfo(python)
    helped = run_python(python, ["-m", "forkhorn", "--help"])
    if not helped.ok:
        tail = helped.output.splitlines()[-1] if helped.output else "no output"
        info.reason = f"`{python} -m forkhorn --help` failed: {tail}"
        return info
    info.runnable, info.help_text = True, helped.output
    info.version = module_version(python, "forkhorn")
    listed = run_python(python, ["-m", "forkhorn", "--list-workers"])
    if listed.ok:
        # Rows "NAME DISTRIBUTION VERSION SUMMARY": the first column, minus the header.
        names = {line.split()[0] for line in listed.output.splitlines() if line.strip()}
        info.workers = {name for name in names if name != "NAME"}
    return info
