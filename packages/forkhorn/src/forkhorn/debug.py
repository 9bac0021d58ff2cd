"""``--spew``: print every line the server executes, as Gunicorn's ``--spew`` does.

Installed with ``sys.settrace`` in the master before the arbiter starts, so the workers
forked from it trace too (their main thread; threads started later do not). Each line
goes to stdout as ``module:line: source``. The server slows down many times over: a
tool for finding where a process hangs or loops, not for serving.
"""

from __future__ import annotations

import linecache
import sys
from types import FrameType
from typing import Any


def spew() -> None:
    """Trace every line executed from now on, in this process and its forks."""
    sys.settrace(_trace_line)


def _trace_line(frame: FrameType, event: str, arg: Any) -> Any:
    if event == "line":
        module = frame.f_globals.get("__name__", "?")
        source = linecache.getline(frame.f_code.co_filename, frame.f_lineno).rstrip()
        sys.stdout.write(f"{module}:{frame.f_lineno}: {source}\n")
    return _trace_line
