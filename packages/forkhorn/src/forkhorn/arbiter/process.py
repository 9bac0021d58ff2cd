"""Process-level options: daemonizing, privileges, environment, process titles, and the
rule that decides whether a SIGWINCH is a terminal resize.

Invariants: nothing here runs at import; ``setproctitle`` is optional (absent: titles are
simply not set); privileges are dropped group first, then supplementary groups, then user,
because after ``setuid`` the process may no longer change its groups.
"""

from __future__ import annotations

import os
import pwd
from typing import Any

from forkhorn.config.validators import group_id, user_id


def drop_privileges(user: int | str | None, group: int | str | None, initgroups: bool) -> None:
    """In a worker, after the sockets were bound by the (privileged) master. ``user`` and
    ``group`` are the settings' values (ids already; a name is resolved as the setting
    does)."""
    uid = user_id(user)
    gid = group_id(group)
    if gid is None and uid is not None:
        gid = pwd.getpwuid(uid).pw_gid
    if gid is not None and gid != os.getgid():
        os.setgid(gid)
    if os.geteuid() == 0 and gid is not None:
        # The master's supplementary groups (root's group 0) must not follow the worker:
        # ``initgroups`` gives it the user's groups, otherwise only its own group remains.
        name = None
        if initgroups and uid is not None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = None
        if name is not None:
            os.initgroups(name, gid)
        else:
            os.setgroups([gid])
    if uid is not None and uid != os.getuid():
        os.setuid(uid)


def apply_raw_env(raw_env: list[str]) -> None:
    """``-e KEY=VALUE`` settings into this process's environment (inherited by workers)."""
    for item in raw_env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid raw_env entry {item!r}: expected KEY=VALUE")
        os.environ[key] = value


def daemonize(keep_stdio: bool = False) -> None:
    """Detach: double fork, new session, stdio to /dev/null (Gunicorn's behaviour).

    ``keep_stdio`` (``--enable-stdio-inheritance``): stdout and stderr stay where they are
    unless they are a terminal, so ``forkhorn -D -R app > out.log 2>&1`` keeps writing to
    ``out.log``; stdin goes to /dev/null all the same."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd == 0 or not keep_stdio or os.isatty(fd):  # (False for a closed fd too)
            os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)


def set_process_title(title: str) -> None:
    try:
        from setproctitle import setproctitle  # type: ignore[import-not-found]
    except ImportError:
        return
    setproctitle(title)


def winch_may_be_terminal_resize() -> bool:
    """True when a SIGWINCH we receive may just mean "the terminal window was resized".

    The kernel sends a resize SIGWINCH only to the foreground process group of a terminal.
    So: no controlling terminal (systemd, containers, daemon mode, a new session) or a
    process group that is not that terminal's foreground group (started with ``&``, by a
    supervisor) means the signal was sent on purpose and WINCH must stop the workers.
    Only a master in the foreground of its terminal ignores it.
    """
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False  # no controlling terminal: nobody can resize us
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def apply_start_options(cfg: Any) -> None:
    """``umask`` and ``raw_env`` in the master, before anything forks. (``chdir`` and
    ``pythonpath`` are applied by the CLI before the app can be loaded.)"""
    os.umask(int(getattr(cfg, "umask", 0) or 0))
    apply_raw_env(list(getattr(cfg, "raw_env", None) or []))
