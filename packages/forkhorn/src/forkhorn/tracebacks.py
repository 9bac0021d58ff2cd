"""Tracebacks of the user's own code (a config file, an app module) without forkhorn's.

When a config file or an app module raises while forkhorn loads it, the frames above the
user's code are forkhorn's loader and importlib's bootstrap: noise to someone fixing their
own file. ``format_user_error`` drops those leading frames and keeps every frame from the
first one that is neither. A ``SyntaxError`` or ``ImportError`` may have no frame of the
user's (the compiler or the import system raised it in the loader: a typo, a module that
is not there): it is shown without a traceback, a ``SyntaxError`` as Python shows one
(file, line and caret). Any other exception with no frame of the user's is a bug of
forkhorn's: it keeps every frame.

Imported only on those error paths, not at start-up.
"""

from __future__ import annotations

import importlib
import os
import traceback
from types import TracebackType

#: forkhorn's own files and importlib's (``import_module``; the bootstrap is frozen)
_LOADER_DIRS = tuple(
    os.path.dirname(os.path.abspath(module_file)) + os.sep
    for module_file in (__file__, importlib.__file__)
    if module_file  # (a frozen importlib has none: an empty name would mean the cwd's parent)
)


def _is_loader_frame(tb: TracebackType) -> bool:
    filename = tb.tb_frame.f_code.co_filename
    return filename.startswith(_LOADER_DIRS) or filename.startswith("<frozen importlib")


def format_user_error(exc: BaseException) -> str:
    """``exc`` formatted like ``traceback.format_exception``, from the user's first frame."""
    tb = exc.__traceback__
    while tb is not None and _is_loader_frame(tb):
        tb = tb.tb_next
    if tb is None and not isinstance(exc, (SyntaxError, ImportError)):
        tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb))
