"""The project's workflows. ``nox`` with no arguments runs the whole test suite.

Each package is tested in its own virtualenv: the core alone (no plugin installed, plugin
autoload off), then each plugin package beside the core. gevent and eventlet never share a
venv, because each monkey-patches the interpreter in its own way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CORE = "packages/forkhorn"
GEVENT = "packages/forkhorn-gevent"
EVENTLET = "packages/forkhorn-eventlet"
TEST_DEPS = [
    "pytest>=8",
    "pytest-timeout>=2.2",
    "hypothesis>=6.100",
    "requests>=2.31",
    "prometheus_client>=0.20",  # only to parse our /metrics output in the tests
    "pyyaml>=6",  # only to check the Kubernetes manifest in docs/deploy
    "flask-sock>=0.7",  # a websocket app taking the connection over (gunicorn.socket)
    "PasteDeploy>=3",  # --paste, as Pyramid projects run
]
DEPLOY_TESTS = f"{CORE}/tests/deploy"
RELIABILITY_JSONL = ROOT / ".nox" / "reliability.jsonl"

nox.options.sessions = [
    "lint",
    "types",
    "tests-core",
    "tests-gevent",
    "tests-eventlet",
    "wheels",
    "docs",
]
nox.options.error_on_missing_interpreters = True


def _install_proxies(session: nox.Session) -> None:
    """nginx, HAProxy, curl and openssl from Debian for the deployment tests (root in CI);
    without root the install fails and those tests skip, saying why."""
    session.run("bash", "ci/install-proxies.sh", external=True, success_codes=[0, 1])


def _pytest(session: nox.Session, *paths: str, env: dict[str, str] | None = None) -> None:
    session.run(
        "python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-ra", *paths, *session.posargs,
        env=env,
    )  # fmt: skip


@nox.session(name="tests-core")
def tests_core(session: nox.Session) -> None:
    """The core package alone: no plugin distribution installed, plugin autoload off."""
    session.install("-e", CORE, *TEST_DEPS)
    _install_proxies(session)
    # the short reliability suite; the slow one runs in `nox -s reliability`
    _pytest(session, f"{CORE}/tests", "bench/test_harness.py", "-m", "not slow")


def _tests_plugin(session: nox.Session, package: str, worker: str) -> None:
    """A plugin package's own tests, then the deployment tests with its worker only."""
    session.install("-e", CORE, "-e", package, *TEST_DEPS)
    _install_proxies(session)
    _pytest(session, f"{package}/tests")
    _pytest(session, DEPLOY_TESTS, env={"FORKHORN_DEPLOY_WORKERS": worker})


@nox.session(name="tests-gevent")
def tests_gevent(session: nox.Session) -> None:
    """forkhorn-gevent beside the core, in a venv of its own."""
    _tests_plugin(session, GEVENT, "gevent")


@nox.session(name="tests-eventlet")
def tests_eventlet(session: nox.Session) -> None:
    """forkhorn-eventlet beside the core, in a venv of its own (never beside gevent)."""
    _tests_plugin(session, EVENTLET, "eventlet")


def _reliability_env() -> dict[str, str]:
    return {
        "FORKHORN_RELIABILITY_RESULTS": str(RELIABILITY_JSONL),
        "FORKHORN_RELIABILITY_RESULTS_MD": str(ROOT / "docs" / "reliability-results.md"),
    }


@nox.session
def reliability(session: nox.Session) -> None:
    """The whole fault-injection and load suite (minutes); rewrites docs/reliability-results.md."""
    session.install("-e", CORE, *TEST_DEPS)
    RELIABILITY_JSONL.parent.mkdir(exist_ok=True)
    RELIABILITY_JSONL.unlink(missing_ok=True)
    _pytest(session, f"{CORE}/tests/reliability", env=_reliability_env())
    session.notify("reliability-gevent")
    session.notify("reliability-eventlet")


def _reliability_plugin(session: nox.Session, package: str) -> None:
    # The plugin's reliability scenarios are part of its conformance suite
    # (forkhorn.testing.suite); the rest of that suite runs along, it is short.
    session.install("-e", CORE, "-e", package, *TEST_DEPS)
    _pytest(session, f"{package}/tests/test_conformance.py", env=_reliability_env())


@nox.session(name="reliability-gevent")
def reliability_gevent(session: nox.Session) -> None:
    """The gevent worker's reliability scenarios (with its conformance suite), in its own venv."""
    _reliability_plugin(session, GEVENT)


@nox.session(name="reliability-eventlet")
def reliability_eventlet(session: nox.Session) -> None:
    """The eventlet worker's reliability scenarios (with its conformance suite), in its own venv."""
    _reliability_plugin(session, EVENTLET)


def _venv(session: nox.Session, venv: Path, *requirements: str) -> str:
    """``venv``, made if missing, with ``requirements`` pip-installed in it: for what cannot
    share the session's own venv. Returns its python."""
    python = venv / "bin" / "python"
    if not python.exists():
        session.run("python", "-m", "venv", str(venv))
    session.run(str(python), "-m", "pip", "install", "-q", *requirements, external=True)
    return str(python)


@nox.session
def wheels(session: nox.Session) -> None:
    """Build the three wheels, install each extra from them into a fresh venv, serve a request."""
    session.install("build")
    dist = Path(tempfile.mkdtemp(prefix="forkhorn-dist-"))
    try:
        for package in (CORE, GEVENT, EVENTLET):
            session.run("python", "-m", "build", "--wheel", "--outdir", str(dist), package)
        for extra in ("gevent", "eventlet"):
            venv = dist / f"venv-{extra}"
            python = _venv(session, venv, "--find-links", str(dist), f"forkhorn[{extra}]")
            session.run(str(venv / "bin" / "forkhorn"), "--list-workers", external=True)
            session.run(python, "ci/smoke_roundtrip.py", "--worker-class", extra, external=True)
    finally:
        shutil.rmtree(dist, ignore_errors=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff==0.17.6")  # pinned: each release formats a little differently
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def types(session: nox.Session) -> None:
    """mypy over the three packages."""
    session.install("mypy", "-e", CORE, "pytest")
    session.run(
        "mypy",
        f"{CORE}/src/forkhorn",
        f"{GEVENT}/src/forkhorn_gevent",
        f"{EVENTLET}/src/forkhorn_eventlet",
    )


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, with warnings as errors."""
    session.install("-e", CORE, "mkdocs>=1.6", "mkdocs-material>=9.5")
    session.run("python", "docs/gen_reference.py")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", "site", env={"NO_MKDOCS_2_WARNING": "1"}
    )


@nox.session(reuse_venv=True)
def bench(session: nox.Session) -> None:
    """forkhorn against Gunicorn, same run, same worker class: `nox -s bench -- --quick`."""
    session.run("bash", "ci/install-wrk.sh", external=True)
    # The venvs are kept between runs (every run brings them in line with the requirement
    # files), so a quick run is not mostly pip. forkhorn is installed as users install it
    # and as Gunicorn is, from wheels whose bytecode pip compiles: an editable install under
    # PYTHONDONTWRITEBYTECODE recompiles every forkhorn module at each start (0.1-0.2 s
    # here), and start-up is measured. The wheels are built once per run, with the venv's
    # own hatchling (an isolated build costs about 5 s per package), and reinstalled
    # (--force-reinstall), so the figures are this tree's.
    session.install("hatchling>=1.18", "-r", "bench/requirements.txt")
    venvs = Path(session.virtualenv.location).parent
    wheels = venvs / "bench-wheels"  # this run's only
    shutil.rmtree(wheels, ignore_errors=True)
    session.run("python", "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                "--wheel-dir", str(wheels), CORE, GEVENT, EVENTLET)  # fmt: skip
    core, gevent, eventlet_worker = (
        str(next(wheels.glob(f"{name}-*.whl")))
        for name in ("forkhorn", "forkhorn_gevent", "forkhorn_eventlet")
    )
    session.install(core, gevent)  # their dependencies, on a first run
    session.install("--no-deps", "--force-reinstall", core, gevent)
    # Gunicorn 23 (the eventlet peer) and forkhorn's eventlet worker each need a venv apart.
    gunicorn23 = _venv(
        session, venvs / "bench-gunicorn23", "-r", "bench/requirements-gunicorn23.txt"
    )
    eventlet = _venv(session, venvs / "bench-forkhorn-eventlet", core, eventlet_worker)
    session.run(eventlet, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
                core, eventlet_worker, external=True)  # fmt: skip
    session.run(
        "python",
        "bench/run.py",
        "--gunicorn23-python",
        gunicorn23,
        "--forkhorn-eventlet-python",
        eventlet,
        *session.posargs,
        env={"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")},
    )
