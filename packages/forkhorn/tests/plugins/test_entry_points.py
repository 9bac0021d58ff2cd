"""Entry points for real: the example third-party worker and the gevent/eventlet plugin
distributions installed into a throwaway venv, plus hand-made distributions (a ``.dist-info``
on ``PYTHONPATH``) for the failure cases. One venv per test session."""

from __future__ import annotations

import importlib.util
import os
import site
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
EXAMPLE = REPO / "examples" / "forkhorn-example-worker"
SIBLINGS = [REPO / "packages" / "forkhorn-gevent", REPO / "packages" / "forkhorn-eventlet"]
CLEAN_ENV = (
    "FORKHORN_CMD_ARGS",
    "FORKHORN_PLUGINS",
    "FORKHORN_DISABLE_PLUGINS",
    "FORKHORN_DISABLE_PLUGIN_AUTOLOAD",
    "PYTHONPATH",
    "PORT",
    "WEB_CONCURRENCY",
)


@pytest.fixture(scope="session")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv seeing the forkhorn under test, with the plugin distributions installed.

    It sees the test process's own environment through a ``.pth`` calling
    ``site.addsitedir`` (so editable installs resolve), not through
    ``system_site_packages``: from inside a venv (nox's), that would be the base
    interpreter's site-packages, with whatever forkhorn happens to be installed there.
    """
    home = tmp_path_factory.mktemp("plugin-venv")
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    own_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()  # fmt: skip
    parents = [path for path in site.getsitepackages() if Path(path).is_dir()]
    lines = "".join(f"import site; site.addsitedir({path!r})\n" for path in parents)
    (Path(own_site) / "forkhorn-under-test.pth").write_text(lines)

    def pip(*args: str) -> None:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
            check=True,
            timeout=180,
            capture_output=True,
        )

    if importlib.util.find_spec("hatchling") is None:
        pip("hatchling")
    # --no-deps: gevent and eventlet themselves stay uninstalled (their import is lazy).
    pip("--no-deps", "--no-build-isolation", str(EXAMPLE), *map(str, SIBLINGS))
    return python


def forkhorn(
    python: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    environ.update(env or {})
    return subprocess.run(
        [str(python), "-m", "forkhorn", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def workers_listed(result: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    assert result.returncode == 0, result.stderr
    return {row.split()[0]: row.split()[1:3] for row in result.stdout.splitlines()[1:]}


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "webapp.py").write_text("def app(environ, start_response):\n    return [b'']\n")
    return tmp_path


def test_installed_workers_are_listed_with_their_distributions(
    venv_python: Path, app_dir: Path
) -> None:
    listed = workers_listed(forkhorn(venv_python, "--list-workers", cwd=app_dir))
    assert listed == {
        "eventlet": ["forkhorn-eventlet", "0.1.0"],
        "example": ["forkhorn-example-worker", "0.1.0"],
        "gevent": ["forkhorn-gevent", "0.1.0"],
        "gevent_pywsgi": ["forkhorn-gevent", "0.1.0"],  # Gunicorn's names for the same
        "gevent_wsgi": ["forkhorn-gevent", "0.1.0"],
        "gthread": ["forkhorn", "0.1.0"],
        "sync": ["forkhorn", "0.1.0"],
    }


def test_autoload_off_and_named_plugins(venv_python: Path, app_dir: Path) -> None:
    off = {"FORKHORN_DISABLE_PLUGIN_AUTOLOAD": "1"}
    assert set(workers_listed(forkhorn(venv_python, "--list-workers", cwd=app_dir, env=off))) == {
        "gthread",
        "sync",
    }
    named = forkhorn(venv_python, "--plugin", "example", "--list-workers", cwd=app_dir, env=off)
    assert workers_listed(named)["example"] == ["forkhorn-example-worker", "0.1.0"]
    env_named = forkhorn(
        venv_python, "--list-workers", cwd=app_dir, env={**off, "FORKHORN_PLUGINS": "gevent"}
    )
    assert set(workers_listed(env_named)) == {
        "gevent", "gevent_pywsgi", "gevent_wsgi", "gthread", "sync",
    }  # fmt: skip


def test_blocking_an_installed_plugin(venv_python: Path, app_dir: Path) -> None:
    blocked = forkhorn(
        venv_python,
        "-p",
        "no:example",
        "--list-workers",
        cwd=app_dir,
        env={"FORKHORN_DISABLE_PLUGINS": "gevent"},
    )
    assert set(workers_listed(blocked)) == {"eventlet", "gthread", "sync"}


@pytest.mark.parametrize("spec", ["example", "egg:forkhorn-example-worker#example"])
def test_the_example_worker_is_usable(venv_python: Path, app_dir: Path, spec: str) -> None:
    result = forkhorn(venv_python, "-k", spec, "--check-config", "webapp:app", cwd=app_dir)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(importlib.util.find_spec("eventlet") is not None, reason="eventlet installed")
def test_missing_eventlet_names_the_distribution_and_the_import(
    venv_python: Path, app_dir: Path
) -> None:
    result = forkhorn(venv_python, "-k", "eventlet", "--check-config", "webapp:app", cwd=app_dir)
    assert result.returncode == 1
    assert "forkhorn-eventlet 0.1.0" in result.stderr
    assert "No module named 'eventlet'" in result.stderr
    assert "pip install 'forkhorn[eventlet]'" in result.stderr


def make_distribution(site: Path, name: str, version: str, entry: str, module_source: str) -> None:
    """A minimal installed distribution: a ``.dist-info`` with an entry point, and its module."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    plugin_name, _, module = entry.partition("=")
    (info / "entry_points.txt").write_text(f"[forkhorn.plugins]\n{plugin_name} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(module_source))


def test_a_plugin_that_fails_to_import_names_its_distribution(
    venv_python: Path, app_dir: Path
) -> None:
    site = app_dir / "site"
    make_distribution(
        site,
        "fh-broken-plugin",
        "1.2.3",
        "broken=fh_broken_plugin",
        "import fh_missing_dependency\n",
    )
    result = forkhorn(venv_python, "--list-workers", cwd=app_dir, env={"PYTHONPATH": str(site)})
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[0]
    assert "plugin 'broken' (fh_broken_plugin) from fh-broken-plugin 1.2.3 failed to load" in line
    assert "No module named 'fh_missing_dependency'" in line
    unblocked = forkhorn(
        venv_python, "-p", "no:broken", "--list-workers", cwd=app_dir, env={"PYTHONPATH": str(site)}
    )
    assert "example" in workers_listed(unblocked)


def test_two_distributions_claiming_one_name(venv_python: Path, app_dir: Path) -> None:
    site = app_dir / "site"
    make_distribution(
        site,
        "fh-rival-worker",
        "2.0",
        "rival=fh_rival_plugin",
        """
        from forkhorn.plugins.hookspec import hookimpl

        @hookimpl
        def forkhorn_register_workers(registry):
            registry.add("example", "fh_rival_plugin:Worker", "a second 'example'")
    """,
    )
    result = forkhorn(venv_python, "--list-workers", cwd=app_dir, env={"PYTHONPATH": str(site)})
    assert result.returncode == 1
    assert "'example' is claimed by both" in result.stderr
    assert "forkhorn-example-worker 0.1.0" in result.stderr
    assert "fh-rival-worker 2.0" in result.stderr


def test_the_venv_sees_the_same_forkhorn(venv_python: Path) -> None:
    out = subprocess.run(
        [str(venv_python), "-c", "import forkhorn; print(forkhorn.__file__)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    import forkhorn

    assert Path(out.strip()) == Path(forkhorn.__file__)
    assert sys.prefix != str(venv_python.parent.parent)
