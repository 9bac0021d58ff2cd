"""``formatdate(t)``: the HTTP ``Date`` form (RFC 9110 IMF-fixdate) of a POSIX time.

Why not ``email.utils.formatdate``: importing ``email.utils`` costs every worker's start-up
the ``email`` package (charsets, quoted-printable, address parsing) for one line of output.
The names are fixed English ones, as HTTP requires, whatever the locale.
"""

from __future__ import annotations

import time

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def formatdate(timeval: float) -> str:
    """``Sun, 06 Nov 1994 08:49:37 GMT`` (always GMT, the only zone HTTP allows)."""
    t = time.gmtime(timeval)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )
