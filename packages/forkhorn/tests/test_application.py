"""App loading: APP_MODULE forms, factories with literal args, and clear failures."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from forkhorn.application import (
    AppImportError,
    WSGIApplication,
    adopt_paste_file,
    apply_paths,
    import_app,
    parse_app_uri,
)
from forkhorn.config import Config
from forkhorn.plugins.manager import build_plugin_manager

APP_SOURCE = """
def application(environ, start_response):
    return [b"default"]

def app(environ, start_response):
    return [b"app"]

def create_app(name="plain", debug=False, *, extra=None):
    def made(environ, start_response):
        return [repr((name, debug, extra)).encode()]
    return made

def broken_factory():
    raise KeyError("inside the factory")

not_callable = 42
nothing = None
"""


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package ``fhapp_pkg`` with ``fhapp_pkg.web`` (the app) and some broken modules."""
    pkg = tmp_path / "fhapp_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "web.py").write_text(textwrap.dedent(APP_SOURCE))
    (pkg / "raises.py").write_text("x = 1\nraise ZeroDivisionError('app bug')\n")
    (pkg / "missing_dep.py").write_text("import fh_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [n for n in sys.modules if n.startswith("fhapp_pkg")]:
        del sys.modules[name]


def call(app: object) -> bytes:
    assert callable(app)
    return b"".join(app({}, lambda *a: None))


@pytest.mark.parametrize(
    ("uri", "body"),
    [
        ("fhapp_pkg.web", b"default"),
        ("fhapp_pkg.web:app", b"app"),
        ("fhapp_pkg.web:create_app()", b"('plain', False, None)"),
        ("fhapp_pkg.web:create_app('x', debug=True)", b"('x', True, None)"),
        ("fhapp_pkg.web:create_app(extra={'a': [1, 2]})", b"('plain', False, {'a': [1, 2]})"),
    ],
)
def test_app_module_forms(app_dir: Path, uri: str, body: bytes) -> None:
    assert call(import_app(uri)) == body


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("fhapp_nope", "Failed to find module 'fhapp_nope'."),
        ("fhapp_pkg.nope:app", "Failed to find module 'fhapp_pkg.nope'."),
        ("fhapp_pkg.web:nope", "Failed to find attribute 'nope' in 'fhapp_pkg.web'."),
        (
            "fhapp_pkg.web:not_callable",
            "Application object 'fhapp_pkg.web:not_callable' must be callable.",
        ),
        ("fhapp_pkg.web:nothing", "it is None"),
        (
            "fhapp_pkg.web:create_app(__import__('os'))",
            "Failed to parse arguments as literal values",
        ),
        ("fhapp_pkg.web:obj.attr", "Failed to parse 'obj.attr'"),
        ("fhapp_pkg.web:create_app(1, 2, 3)", "Failed to call 'create_app'"),
        (":app", "expected MODULE"),
    ],
)
def test_one_line_failures(app_dir: Path, uri: str, message: str) -> None:
    with pytest.raises(AppImportError) as info:
        import_app(uri)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_an_app_that_raises_shows_its_own_traceback(app_dir: Path) -> None:
    with pytest.raises(AppImportError) as info:
        import_app("fhapp_pkg.raises:app")
    assert (
        str(info.value)
        == "Failed to load application 'fhapp_pkg.raises:app': ZeroDivisionError: app bug"
    )
    text = info.value.report()
    assert "Traceback" in text and "raises.py" in text and "ZeroDivisionError: app bug" in text
    assert text.splitlines()[-1] == (
        "Failed to load application 'fhapp_pkg.raises:app': ZeroDivisionError: app bug"
    )
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_a_missing_dependency_of_the_app_is_the_apps_bug(app_dir: Path) -> None:
    with pytest.raises(AppImportError) as info:
        import_app("fhapp_pkg.missing_dep")
    text = info.value.report()
    assert "missing_dep.py" in text  # the traceback points into the app
    assert "No module named 'fh_no_such_dependency'" in text.splitlines()[-1]


def test_a_factory_that_raises_shows_its_traceback(app_dir: Path) -> None:
    with pytest.raises(AppImportError) as info:
        import_app("fhapp_pkg.web:broken_factory()")
    assert "inside the factory" in str(info.value) and "Traceback" in info.value.report()


def test_parse_app_uri() -> None:
    assert parse_app_uri("a.b") == ("a.b", "application", None, {})
    assert parse_app_uri("a.b:make(1, x='y')") == ("a.b", "make", (1,), {"x": "y"})


def test_wsgi_loads_once_and_reload_forgets(app_dir: Path) -> None:
    cfg = Config()
    fresh = Config()
    fresh.set("workers", 5)
    app = WSGIApplication(
        cfg,
        build_plugin_manager(autoload=False),
        "fhapp_pkg.web:app",
        reloader=lambda: (fresh, "fhapp_pkg.web"),
    )
    assert app.callable is None
    first = app.wsgi()
    assert app.wsgi() is first
    assert app.callable is first  # Gunicorn's name for it: hooks read worker.app.callable
    app.reload()
    assert app.cfg is fresh and app.app_uri == "fhapp_pkg.web"
    assert app.callable is None
    assert call(app.wsgi()) == b"default"


def test_a_failed_reload_keeps_the_running_config() -> None:
    cfg = Config()

    def bad_reload() -> tuple[Config, str | None]:
        raise ValueError("bad config")

    app = WSGIApplication(cfg, build_plugin_manager(autoload=False), "x", reloader=bad_reload)
    with pytest.raises(ValueError):
        app.reload()
    assert app.cfg is cfg and app.app_uri == "x"


def test_no_app_given() -> None:
    app = WSGIApplication(Config(), build_plugin_manager(autoload=False), None)
    with pytest.raises(AppImportError, match="No application module specified"):
        app.wsgi()


def test_resolve_worker_class_applies_the_threads_rule() -> None:
    cfg = Config()
    cfg.set("worker_class", "collections:OrderedDict")
    app = WSGIApplication(cfg, build_plugin_manager(autoload=False), None)
    from collections import OrderedDict

    assert app.resolve_worker_class() is OrderedDict


def test_apply_paths_chdir_then_pythonpath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(os.getcwd())  # restored after the test
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "lib").mkdir()
    cfg = Config()
    cfg.set("chdir", str(tmp_path))
    cfg.set("pythonpath", "lib, /opt/x")
    apply_paths(cfg)
    assert os.getcwd() == str(tmp_path)
    assert sys.path[:3] == ["/opt/x", str(tmp_path / "lib"), str(tmp_path)]


def test_resolve_worker_class_takes_a_class_set_in_a_config_file() -> None:
    from forkhorn.workers.gthread import ThreadWorker

    cfg = Config()
    cfg.set("worker_class", ThreadWorker)  # `worker_class = ThreadWorker` in a config file
    app = WSGIApplication(cfg, build_plugin_manager(autoload=False), None)
    assert app.resolve_worker_class() is ThreadWorker


def test_a_relative_paste_file_is_found_from_the_start_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a SIGHUP reload reads the settings again after chdir moved the working directory:
    # the paste file is still the one next to where the server was started
    (tmp_path / "app.ini").write_text("[app:main]\nuse = egg:nothing\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = Config()
    cfg.set("paste", "app.ini#main", source="command line")
    assert adopt_paste_file(cfg, str(tmp_path)) == f"{tmp_path}/app.ini#main"
    assert cfg.paste == f"{tmp_path}/app.ini#main"
    assert cfg.source("logconfig") == "default"  # no [loggers] in this one
