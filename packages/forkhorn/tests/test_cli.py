"""The command line, through real ``python -m forkhorn`` processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
CLEAN_ENV = (
    "FORKHORN_CMD_ARGS",
    "GUNICORN_CMD_ARGS",
    "PORT",
    "WEB_CONCURRENCY",
    "FORWARDED_ALLOW_IPS",
    "SENDFILE",
    "FORKHORN_PLUGINS",
    "FORKHORN_DISABLE_PLUGINS",
)


def child_environ(cwd: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without the variables forkhorn reads, plugins off, ``cwd``
    importable."""
    environ = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    environ["FORKHORN_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    environ["PYTHONPATH"] = os.pathsep.join([str(cwd), environ.get("PYTHONPATH", "")])
    environ.update(env or {})
    return environ


def command_and_environ(
    args: tuple[str, ...], cwd: Path, env: dict[str, str] | None, script: bool
) -> tuple[list[str], dict[str, str]]:
    """``python -m forkhorn ARGS`` with ``cwd`` on ``PYTHONPATH``; with ``script``, the
    ``forkhorn`` console script as a user's shell runs it, ``cwd`` on neither (``-m`` would
    put it on ``sys.path`` itself), so that forkhorn has to find the project's modules."""
    environ = child_environ(cwd, env)
    if not script:
        return [sys.executable, "-m", "forkhorn", *args], environ
    environ["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    return [str(Path(sys.executable).with_name("forkhorn")), *args], environ


def forkhorn(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    script: bool = False,
) -> subprocess.CompletedProcess[str]:
    command, environ = command_and_environ(args, cwd, env, script)
    return subprocess.run(
        command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout
    )


@contextlib.contextmanager
def running_forkhorn(
    *args: str, cwd: Path, script: bool = False, **popen: Any
) -> Iterator[subprocess.Popen[Any]]:
    """A server started with ``args``, stopped (TERM, then KILL) when the block ends."""
    command, environ = command_and_environ(args, cwd, None, script)
    proc = subprocess.Popen(command, cwd=cwd, env=environ, **popen)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def read_until_listening(stream: Any, timeout: float = 20) -> tuple[int, list[str]]:
    """A starting server's log lines up to its "Listening at" one: its port, and the lines."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not (lines and "Listening at" in lines[-1]) and time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break  # the server exited
        lines.append(line)
    assert lines and "Listening at" in lines[-1], lines
    return int(lines[-1].rsplit(":", 1)[1].split()[0]), lines


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> str:
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with a WSGI app module and helper plugins/workers for the CLI."""
    (tmp_path / "webapp.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '2')])\n"
        "    return [b'ok']\n"
        "def create_app(greeting='hi'):\n"
        "    return app\n"
    )
    (tmp_path / "raising_app.py").write_text("raise RuntimeError('the app is broken')\n")
    # A worker class whose patch_master records what the master had imported by then.
    (tmp_path / "recorder.py").write_text(
        textwrap.dedent("""
        import json, os, sys
        from forkhorn.workers.sync import SyncWorker

        class RecordingWorker(SyncWorker):
            @classmethod
            def patch_master(cls, preload):
                with open(os.environ["RECORD_FILE"], "w") as f:
                    json.dump({"modules": sorted(sys.modules), "preload": preload}, f)
    """)
    )
    (tmp_path / "recorder_plugin.py").write_text(
        textwrap.dedent("""
        from forkhorn.plugins.hookspec import hookimpl

        @hookimpl
        def forkhorn_register_workers(registry):
            registry.add("recorder", "recorder:RecordingWorker", "records sys.modules")
            registry.add("broken", "no_such_module_for_forkhorn:Worker", "cannot import")
    """)
    )
    (tmp_path / "rival_plugin.py").write_text(
        textwrap.dedent("""
        from forkhorn.plugins.hookspec import hookimpl

        @hookimpl
        def forkhorn_register_workers(registry):
            registry.add("recorder", "rival:Worker", "claims the same name")
    """)
    )
    return tmp_path


def test_version(project: Path) -> None:
    result = forkhorn("--version", cwd=project)
    assert result.returncode == 0
    assert result.stdout.strip() == "forkhorn (version 0.1.0)"


def test_help_lists_worker_names_from_the_registry(project: Path) -> None:
    result = forkhorn("--help", cwd=project)
    assert result.returncode == 0
    assert "gthread, sync" in " ".join(result.stdout.split())
    assert "--worker-class" in result.stdout and "--bind" in result.stdout
    with_plugin = forkhorn("--plugin", "recorder_plugin", "--help", cwd=project)
    assert "broken, gthread, recorder, sync" in " ".join(with_plugin.stdout.split())


def test_list_workers(project: Path) -> None:
    result = forkhorn("--list-workers", cwd=project)
    assert result.returncode == 0
    rows = [line.split(None, 3) for line in result.stdout.splitlines()]
    assert rows[0] == ["NAME", "DISTRIBUTION", "VERSION", "SUMMARY"]
    assert [row[:3] for row in rows[1:]] == [
        ["gthread", "forkhorn", "0.1.0"],
        ["sync", "forkhorn", "0.1.0"],
    ]


def test_blocking_plugins_from_cli_and_env(project: Path) -> None:
    for args, env in ((["-p", "no:builtin"], {}), ([], {"FORKHORN_DISABLE_PLUGINS": "builtin"})):
        result = forkhorn(*args, "--list-workers", cwd=project, env=env)
        assert result.returncode == 0
        assert result.stdout.splitlines()[1:] == []
    loaded = forkhorn("--list-workers", cwd=project, env={"FORKHORN_PLUGINS": "recorder_plugin"})
    assert "recorder" in loaded.stdout


def test_dash_p_is_still_the_pid_file(project: Path) -> None:
    result = forkhorn("-p", "app.pid", "--print-config", cwd=project)
    assert result.returncode == 0
    assert re.search(r"^pidfile\s+= 'app.pid'  \(command line\)$", result.stdout, re.M)


def test_unknown_worker_lists_names_and_closest(project: Path) -> None:
    assert_one_line_error(
        forkhorn("-k", "snyc", "webapp:app", cwd=project),
        2,
        "unknown worker class 'snyc'",
        "gthread, sync",
        "Did you mean 'sync'?",
    )


@pytest.mark.parametrize("name", ["gevent", "eventlet"])
def test_optional_worker_not_installed_names_the_pip_line(project: Path, name: str) -> None:
    assert_one_line_error(
        forkhorn("-k", name, "webapp:app", cwd=project), 2, f"pip install 'forkhorn[{name}]'"
    )


def test_failing_worker_import_is_a_chained_error(project: Path) -> None:
    result = forkhorn("--plugin", "recorder_plugin", "-k", "broken", "webapp:app", cwd=project)
    assert_one_line_error(
        result,
        1,
        "worker 'broken' from recorder_plugin",
        "import of 'no_such_module_for_forkhorn' failed",
    )


def test_two_plugins_claiming_one_name(project: Path) -> None:
    result = forkhorn(
        "--plugin", "recorder_plugin", "--plugin", "rival_plugin", "--list-workers", cwd=project
    )
    assert_one_line_error(
        result, 1, "'recorder' is claimed by both", "recorder_plugin", "rival_plugin"
    )


@pytest.mark.parametrize(
    ("args", "env", "config", "needle"),
    [
        (["-w", "abc"], {}, None, "invalid value for workers (from command line)"),
        (
            [],
            {"FORKHORN_CMD_ARGS": "--timeout soon"},
            None,
            "invalid value for timeout (from env FORKHORN_CMD_ARGS)",
        ),
        (
            [],
            {"WEB_CONCURRENCY": "lots"},
            None,
            "invalid value for workers (from env WEB_CONCURRENCY)",
        ),
        ([], {"PORT": "http"}, None, "invalid value for bind (from env PORT)"),
        ([], {}, "loglevel = 'loud'\n", "invalid value for loglevel (from config file"),
        ([], {}, "def post_fork(server):\n    pass\n", "post_fork(server, worker)"),
        (["--log-level", "loud"], {}, None, "debug, info, warning, error, critical"),
        (["--chdir", "/no/such/dir"], {}, None, "existing directory"),
        (["-c", "missing.conf.py"], {}, None, "does not exist"),
        (["-c", "."], {}, None, "is a directory, not a file"),
        (["--keyfile", "key.pem"], {}, None, "a keyfile needs a certfile"),
        (["--certfile", "missing.pem"], {}, None, "certfile (from command line): 'missing.pem'"),
        (["--certfile", "webapp.py", "--ca-certs", "no-ca.pem"], {}, None, "'no-ca.pem' is not"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(
    project: Path, args: list[str], env: dict[str, str], config: str | None, needle: str
) -> None:
    if config is not None:
        (project / "forkhorn.conf.py").write_text(config)
    assert_one_line_error(forkhorn(*args, "webapp:app", cwd=project, env=env), 2, needle)


def test_unknown_flag_is_argparse_usage_error(project: Path) -> None:
    result = forkhorn("--no-such-flag", "webapp:app", cwd=project)
    assert result.returncode == 2
    assert "usage: forkhorn" in result.stderr and "unrecognized arguments" in result.stderr
    env_result = forkhorn("webapp:app", cwd=project, env={"FORKHORN_CMD_ARGS": "--nope"})
    assert env_result.returncode == 2 and "FORKHORN_CMD_ARGS: unrecognized" in env_result.stderr


def test_config_file_that_raises_shows_its_traceback(project: Path) -> None:
    (project / "forkhorn.conf.py").write_text("workers = 2\nraise ValueError('conf bug')\n")
    result = forkhorn("webapp:app", cwd=project)
    assert result.returncode == 1
    assert "Failed to read config file:" in result.stderr
    assert "Traceback" in result.stderr and "ValueError: conf bug" in result.stderr
    # the user's frame, not the loader's or importlib's above it
    assert 'forkhorn.conf.py", line 2, in <module>' in result.stderr
    assert "loader.py" not in result.stderr and "importlib" not in result.stderr


def test_a_python_config_module_that_is_not_there_is_two_lines(project: Path) -> None:
    result = forkhorn("-c", "python:no_such_conf_module", "webapp:app", cwd=project)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Failed to read config file: python:no_such_conf_module",
        "ModuleNotFoundError: No module named 'no_such_conf_module'",
    ]


def test_config_file_with_a_syntax_error_shows_where_as_python_does(project: Path) -> None:
    (project / "forkhorn.conf.py").write_text("workers = 2\nif True\n    bind = 'x'\n")
    result = forkhorn("webapp:app", cwd=project)
    assert result.returncode == 1
    assert "Failed to read config file:" in result.stderr
    assert 'forkhorn.conf.py", line 2' in result.stderr
    assert result.stderr.rstrip().endswith("SyntaxError: expected ':'")
    assert "Traceback" not in result.stderr and "loader.py" not in result.stderr


def test_no_app_is_a_usage_error(project: Path) -> None:
    assert_one_line_error(forkhorn(cwd=project), 2, "No application module specified")


def test_print_config_shows_each_source(project: Path) -> None:
    (project / "gunicorn.conf.py").write_text(
        "workers = 3\ntimeout = 10\nkeepalive = 7\ndef post_fork(server, worker):\n    pass\n"
    )
    result = forkhorn(
        "--print-config",
        "--keep-alive",
        "9",
        "webapp:app",
        cwd=project,
        env={"FORKHORN_CMD_ARGS": "--timeout 20", "PORT": "5001"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    conf = project / "gunicorn.conf.py"
    assert re.search(rf"^workers\s+= 3  \(config file {re.escape(str(conf))}\)$", out, re.M)
    assert re.search(r"^timeout\s+= 20  \(env FORKHORN_CMD_ARGS\)$", out, re.M)
    assert re.search(r"^keepalive\s+= 9  \(command line\)$", out, re.M)
    assert re.search(r"^bind\s+= \['0.0.0.0:5001'\]  \(env PORT\)$", out, re.M)
    assert re.search(r"^backlog\s+= 2048  \(default\)$", out, re.M)
    assert re.search(r"^post_fork\s+= <hook>  \(config-file\)$", out, re.M)
    assert re.search(r"^default_proc_name\s+= 'webapp:app'", out, re.M)


@pytest.mark.parametrize(
    ("env", "timeout", "source"),
    [
        # a Gunicorn deployment's variable is read as it is
        ({"GUNICORN_CMD_ARGS": "--timeout 17"}, 17, "env GUNICORN_CMD_ARGS"),
        # ours, when set, is the only one read: options are not mixed from both
        (
            {"GUNICORN_CMD_ARGS": "--timeout 17", "FORKHORN_CMD_ARGS": "--timeout 23"},
            23,
            "env FORKHORN_CMD_ARGS",
        ),
        ({"GUNICORN_CMD_ARGS": "--timeout 17", "FORKHORN_CMD_ARGS": ""}, 30, "default"),
    ],
)
def test_gunicorn_cmd_args_is_read_when_forkhorn_cmd_args_is_not_set(
    project: Path, env: dict[str, str], timeout: int, source: str
) -> None:
    result = forkhorn("--print-config", "webapp:app", cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^timeout\s+= {timeout}  \({source}\)$", result.stdout, re.M)


def test_a_bad_gunicorn_cmd_args_is_named_in_the_error(project: Path) -> None:
    result = forkhorn("webapp:app", cwd=project, env={"GUNICORN_CMD_ARGS": "--timeout soon"})
    assert_one_line_error(result, 2, "invalid value for timeout (from env GUNICORN_CMD_ARGS)")
    unbalanced = forkhorn("webapp:app", cwd=project, env={"GUNICORN_CMD_ARGS": "--name 'x"})
    assert_one_line_error(unbalanced, 2, "GUNICORN_CMD_ARGS: No closing quotation")


def test_gunicorn_options_for_features_forkhorn_lacks_are_ignored_with_a_warning(
    project: Path,
) -> None:
    # a Gunicorn 27 command line (and its GUNICORN_CMD_ARGS) starts as it is: flags and
    # options with values alike, each named once on stderr
    result = forkhorn(
        "--no-control-socket", "--root-path", "/api", "--dirty-app", "a:b", "--dirty-app",
        "c:d", "-w", "3", "--print-config", "webapp:app", cwd=project,
        env={"GUNICORN_CMD_ARGS": "--enable-backlog-metric --timeout 17"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert re.search(r"^workers\s+= 3  \(command line\)$", result.stdout, re.M)
    assert re.search(r"^timeout\s+= 17  \(env GUNICORN_CMD_ARGS\)$", result.stdout, re.M)
    warned = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warned == [
        f"forkhorn: warning: {flag} is a Gunicorn option forkhorn does not implement; ignored"
        for flag in ("--enable-backlog-metric (in GUNICORN_CMD_ARGS)", "--no-control-socket",
                     "--root-path", "--dirty-app")
    ]  # fmt: skip
    # an option that takes a value still needs one
    missing = forkhorn("--root-path", cwd=project)
    assert missing.returncode == 2
    assert "argument --root-path: expected one argument" in missing.stderr
    assert "--root-path" not in forkhorn("--help", cwd=project).stdout


def test_a_gunicorn_only_setting_in_a_config_file_is_ignored_with_a_warning(
    project: Path,
) -> None:
    (project / "gunicorn.conf.py").write_text("dirty_workers = 2\nworkers = 3\n")
    result = forkhorn("--print-config", "webapp:app", cwd=project)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^workers\s+= 3  \(config file \S+gunicorn\.conf\.py\)$", result.stdout, re.M)
    [warning] = [line for line in result.stderr.splitlines() if "warning" in line]
    assert re.fullmatch(
        r"forkhorn: warning: dirty_workers \(in \S+gunicorn\.conf\.py\) is a Gunicorn "
        r"setting forkhorn does not implement; ignored",
        warning,
    )


PASTE_APP = """
import logging

def make_app(global_conf, greeting="hello"):
    def app(environ, start_response):
        logging.getLogger("pasteapp").warning("serving %s", environ["PATH_INFO"])
        body = f"{greeting} {global_conf['who']}".encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    return app
"""

# a Pyramid-style ini: apps, a server section for another server, and logging sections
PASTE_INI = """
[app:main]
paste.app_factory = pasteapp:make_app

[app:admin]
paste.app_factory = pasteapp:make_app
greeting = admin

[server:main]
use = egg:waitress#main

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stdout,)
formatter = generic

[formatter_generic]
format = FROM-INI %(levelname)s [%(name)s] %(message)s
"""


def test_a_paste_deploy_file_is_served_with_its_logging_sections(tmp_path: Path) -> None:
    # As with Gunicorn: the app's modules are found in the working directory (not on
    # PYTHONPATH here, and the console script does not put it on sys.path), the file's
    # [loggers] set up the logs, and the file is found from where the server was started
    # (--chdir comes later).
    (tmp_path / "pasteapp.py").write_text(PASTE_APP)
    (tmp_path / "app.ini").write_text(PASTE_INI)
    with running_forkhorn("--paste", "app.ini#admin", "--paste-global", "who=world",
                          "-b", "127.0.0.1:0", cwd=tmp_path, script=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          ) as proc:  # fmt: skip
        port, lines = read_until_listening(proc.stdout)
        assert lines[-1].startswith("FROM-INI INFO [forkhorn.error] Listening at: http://")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/x", timeout=10) as response:
            assert response.read() == b"admin world"
        served = ""
        deadline = time.monotonic() + 20
        while "[pasteapp]" not in served and time.monotonic() < deadline:
            served = proc.stdout.readline()
        assert served == "FROM-INI WARNING [pasteapp] serving /x\n"
    # with --chdir, the ini is still read from the start directory (the app's module from
    # the new working directory)
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "pasteapp.py").rename(site / "pasteapp.py")
    moved = forkhorn("--paste", "app.ini#admin", "--chdir", "site", "--check-config",
                     cwd=tmp_path)  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    missing = forkhorn("--paste", "nowhere.ini", cwd=tmp_path)
    assert_one_line_error(missing, 2, "invalid value for paste", "nowhere.ini' is not a file")


def test_check_config_loads_the_app(project: Path) -> None:
    assert forkhorn("--check-config", "webapp:create_app('x')", cwd=project).returncode == 0


def test_check_config_with_wsgi_app_setting(project: Path) -> None:
    (project / "forkhorn.conf.py").write_text("wsgi_app = 'webapp:app'\n")
    assert forkhorn("--check-config", cwd=project).returncode == 0


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("no_such_app_module", "Failed to find module 'no_such_app_module'."),
        ("webapp:nope", "Failed to find attribute 'nope' in 'webapp'."),
    ],
)
def test_check_config_app_errors_are_one_line_exit_4(project: Path, uri: str, needle: str) -> None:
    assert_one_line_error(forkhorn("--check-config", uri, cwd=project), 4, needle)


def test_check_config_app_that_raises_shows_its_traceback(project: Path) -> None:
    result = forkhorn("--check-config", "raising_app:app", cwd=project)
    assert result.returncode == 4
    assert "Traceback" in result.stderr and "raising_app.py" in result.stderr
    assert "RuntimeError: the app is broken" in result.stderr.strip().splitlines()[-1]
    assert "application.py" not in result.stderr and "importlib" not in result.stderr


GUNICORN_CONF = """
import multiprocessing

bind = "127.0.0.1:0"
workers = multiprocessing.cpu_count() * 2 + 1
worker_class = "gthread"
threads = 2
accesslog = "-"
errorlog = "-"
loglevel = "warning"
timeout = 45
raw_env = ["APP_MODE=test"]
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
forwarded_allow_ips = "127.0.0.1,10.0.0.0/8"
logconfig_dict = {"version": 1, "disable_existing_loggers": False}
wsgi_app = "webapp:app"

def on_starting(server):
    pass

def post_fork(server, worker):
    pass

def post_request(worker, req, environ, resp):
    pass
"""


def test_spew_prints_every_line_the_master_and_its_workers_run(project: Path) -> None:
    spewed = project / "spew.txt"
    with spewed.open("w") as sink, running_forkhorn(
        "--spew", "-b", "127.0.0.1:0", "webapp:app", cwd=project, stdout=sink,
        stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        port, _ = read_until_listening(proc.stderr, timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as response:
            assert response.read() == b"ok"
    lines = spewed.read_text().splitlines()
    assert "forkhorn.arbiter.arbiter:" in "\n".join(lines)  # the master
    assert "webapp:3:     return [b'ok']" in lines  # the app's line, in the forked worker


def test_gunicorn_conf_py_loads_unchanged_with_dash_c(project: Path) -> None:
    (project / "gunicorn.conf.py").write_text(GUNICORN_CONF)
    result = forkhorn("-c", "gunicorn.conf.py", "--check-config", cwd=project)
    assert result.returncode == 0, result.stderr
    printed = forkhorn("-c", "gunicorn.conf.py", "--print-config", cwd=project)
    assert re.search(r"^worker_class\s+= 'gthread'", printed.stdout, re.M)
    assert re.search(r"^on_starting\s+= <hook>", printed.stdout, re.M)


@pytest.mark.parametrize("config", ["gunicorn.conf.py", "python:deployconf"])
def test_a_config_file_imports_the_projects_modules_from_the_start_directory(
    tmp_path: Path, config: str
) -> None:
    # Gunicorn puts the working directory on sys.path before it reads the config file. The
    # console script does not (python -m would), and the project is not on PYTHONPATH here.
    (tmp_path / "webapp.py").write_text("def app(environ, start_response):\n    return []\n")
    (tmp_path / "projectsettings.py").write_text("WORKERS = 7\n")
    config_source = "from projectsettings import WORKERS\nworkers = WORKERS\n"
    (tmp_path / "gunicorn.conf.py").write_text(config_source)
    (tmp_path / "deployconf.py").write_text(config_source)
    result = forkhorn("-c", config, "--print-config", "webapp:app", cwd=tmp_path, script=True)
    assert result.returncode == 0, result.stderr
    where = re.escape(config.removeprefix("python:"))
    assert re.search(rf"^workers\s+= 7\s+\(config file \S*{where}\)", result.stdout, re.M)


PROJECT_WORKER = """
from forkhorn.workers.sync import SyncWorker
class ProjectWorker(SyncWorker):
    pass
"""

PROJECT_LOGGER = """
from forkhorn.logging import Logger
class ProjectLogger(Logger):
    def info(self, msg, *args, **kwargs):
        super().info("PROJECT " + msg, *args, **kwargs)
"""


def test_a_worker_class_and_a_logger_class_from_the_project_serve(tmp_path: Path) -> None:
    # Named as modules of the start directory, through the console script, the project not
    # on PYTHONPATH: Gunicorn finds them there.
    (tmp_path / "webapp.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '2')])\n"
        "    return [b'ok']\n"
    )
    (tmp_path / "projectworker.py").write_text(PROJECT_WORKER)
    (tmp_path / "projectlogger.py").write_text(PROJECT_LOGGER)
    with running_forkhorn("-k", "projectworker.ProjectWorker",
                          "--logger-class", "projectlogger.ProjectLogger",
                          "-b", "127.0.0.1:0", "webapp:app", cwd=tmp_path, script=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          ) as proc:  # fmt: skip
        port, lines = read_until_listening(proc.stdout)
        assert "PROJECT Listening at: http://" in lines[-1], lines
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.read() == b"ok"
    out = proc.stdout.read()  # the rest of the log, once stopped
    assert "PROJECT Using worker: projectworker.ProjectWorker" in "".join(lines) + out


@pytest.mark.parametrize(
    "args",
    [
        ["--chdir", "site", "-k", "siteworker.ProjectWorker"],
        ["--pythonpath", "lib", "--chdir", "site", "-k", "libworker.ProjectWorker"],
        ["-c", "site.conf.py"],  # chdir and worker_class as literals of the config file
    ],
)
def test_a_worker_class_is_found_in_chdir_and_on_pythonpath(
    tmp_path: Path, args: list[str]
) -> None:
    # Gunicorn imports the worker class once both are applied; a relative pythonpath
    # entry is read from chdir.
    site = tmp_path / "site"
    (site / "lib").mkdir(parents=True)
    (site / "webapp.py").write_text("def app(environ, start_response):\n    return []\n")
    (site / "siteworker.py").write_text(PROJECT_WORKER)
    (site / "lib" / "libworker.py").write_text(PROJECT_WORKER)
    (tmp_path / "site.conf.py").write_text(
        "chdir = 'site'\nworker_class = 'siteworker.ProjectWorker'\n"
    )
    result = forkhorn(*args, "--check-config", "webapp:app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_patch_master_runs_before_logging_and_ssl_are_imported(project: Path) -> None:
    record = project / "record.json"
    (project / "forkhorn.conf.py").write_text(
        "import logging, ssl  # the config file runs only after patch_master\n"
        "worker_class = 'recorder:RecordingWorker'\n"
        "preload_app = True\n"
    )
    result = forkhorn("--check-config", "webapp:app", cwd=project, env={"RECORD_FILE": str(record)})
    assert result.returncode == 0, result.stderr
    recorded = json.loads(record.read_text())
    assert recorded["preload"] is True  # the literal was read from the file without running it
    assert "logging" not in recorded["modules"]
    assert "ssl" not in recorded["modules"]
    assert "webapp" not in recorded["modules"]


def test_registered_name_from_plugin_is_patched_early(project: Path) -> None:
    record = project / "record.json"
    result = forkhorn(
        "--plugin",
        "recorder_plugin",
        "-k",
        "recorder",
        "--check-config",
        "webapp:app",
        cwd=project,
        env={"RECORD_FILE": str(record)},
    )
    assert result.returncode == 0, result.stderr
    recorded = json.loads(record.read_text())
    assert recorded["preload"] is False and "logging" not in recorded["modules"]


def test_serves_a_request_through_the_cli(project: Path) -> None:
    """``python -m forkhorn APP`` reaches ``Arbiter(app).run()``: a real round-trip."""
    sock = project / "s.sock"
    with running_forkhorn(
        "-b",
        "127.0.0.1:0",
        "-b",
        f"unix:{sock}",
        "webapp:app",
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        port = None
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
            port = int(found.group(1)) if found else None
        assert port, "the server did not report its port"
        body = b""
        while time.monotonic() < deadline and body != b"ok":
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    body = response.read()
            except OSError:
                time.sleep(0.1)
        assert body == b"ok"


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def wait_until(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_hup_rereads_the_config_file(project: Path) -> None:
    conf = project / "forkhorn.conf.py"
    conf.write_text(f"bind = 'unix:{project / 's.sock'}'\nworkers = 1\n")
    with running_forkhorn(
        "webapp:app", cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        assert wait_until(lambda: len(children_of(proc.pid)) == 1, 20)
        conf.write_text(f"bind = 'unix:{project / 's.sock'}'\nworkers = 3\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: len(children_of(proc.pid)) == 3, 20)


def test_a_class_that_is_not_a_forkhorn_worker_is_one_line(project: Path) -> None:
    result = forkhorn("-k", "collections.OrderedDict", "--check-config", "webapp:app", cwd=project)
    assert_one_line_error(result, 1, "collections.OrderedDict is not a forkhorn worker")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--log-file", "no/such/dir/error.log"], "No such file or directory"),
        (["--access-logfile", "no/such/dir/access.log"], "No such file or directory"),
        (["--log-config", "missing.ini"], "logconfig file 'missing.ini' not found"),
        (["--logger-class", "no_such_module.Logger"], "logger_class 'no_such_module.Logger'"),
    ],
)
def test_logs_that_cannot_be_set_up_are_one_line_and_exit_1(
    project: Path, args: list[str], needle: str
) -> None:
    result = forkhorn(*args, "-b", "127.0.0.1:0", "webapp:app", cwd=project, timeout=20)
    assert_one_line_error(result, 1, "cannot set up logging", needle)


def test_tls_files_are_found_relative_to_chdir(project: Path) -> None:
    (project / "site").mkdir()
    (project / "site" / "cert.pem").write_text("(only looked for)")
    args = ("--chdir", "site", "--pythonpath", str(project), "--certfile", "cert.pem")
    assert forkhorn(*args, "--check-config", "webapp:app", cwd=project).returncode == 0
