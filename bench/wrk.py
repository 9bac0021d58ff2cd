"""Run ``wrk`` and parse its text report into numbers.

Invariants: one wrk thread (``-t1``, BENCHMARKS.md), ``--latency`` always on so p50/p99 are
printed; the wrk process never outlives :func:`run_wrk` (killed on timeout). Parsing is
strict about the lines the verdict depends on (``Requests/sec``, the latency distribution):
a report without them raises :class:`WrkError` instead of silently giving zeros.
Error lines (``Socket errors``, ``Non-2xx or 3xx responses``) are only printed by wrk when
non-zero, so their absence means zero.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_PCT = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_TOTAL = re.compile(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class WrkError(RuntimeError):
    """wrk could not run, or printed a report we cannot read."""


@dataclass(frozen=True)
class WrkResult:
    """The figures of one wrk run (latencies in milliseconds)."""

    rps: float
    requests: int
    p50_ms: float
    p99_ms: float
    socket_errors: int
    socket_detail: dict[str, int]
    non_2xx: int

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def wrk_version() -> str:
    """First line of ``wrk -v`` ("wrk 4.1.0 [epoll] ..."), or "" when wrk is missing."""
    if shutil.which("wrk") is None:
        return ""
    proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    text = (proc.stdout + proc.stderr).strip()
    return text.splitlines()[0] if text else ""


def build_command(
    url: str,
    connections: int,
    seconds: int,
    close: bool = False,
    script: str | None = None,
) -> list[str]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    if script:
        cmd += ["-s", script]
    return [*cmd, url]


def run_wrk(cmd: list[str], seconds: int) -> tuple[WrkResult, str]:
    """Run one wrk command; returns the parsed result and the raw report."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired as exc:  # subprocess.run killed it already
        raise WrkError(f"wrk did not finish in {seconds + 30}s: {' '.join(cmd)}") from exc
    except FileNotFoundError as exc:
        raise WrkError("wrk is not installed (bash ci/install-wrk.sh)") from exc
    if proc.returncode != 0:
        raise WrkError(f"wrk exited {proc.returncode}: {proc.stderr.strip() or proc.stdout}")
    return parse_report(proc.stdout), proc.stdout


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_report(text: str) -> WrkResult:
    """Parse wrk's ``--latency`` text report."""
    rps = _RPS.search(text)
    pcts = {m.group(1): _to_ms(m.group(2), m.group(3)) for m in _PCT.finditer(text)}
    total = _TOTAL.search(text)
    if rps is None or total is None or "50" not in pcts or "99" not in pcts:
        raise WrkError(f"unreadable wrk report:\n{text}")
    sock = _SOCKET.search(text)
    names = ("connect", "read", "write", "timeout")
    detail = {n: int(sock.group(i + 1)) if sock else 0 for i, n in enumerate(names)}
    non2xx = _NON2XX.search(text)
    return WrkResult(
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        p50_ms=pcts["50"],
        p99_ms=pcts["99"],
        socket_errors=sum(detail.values()),
        socket_detail=detail,
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
    )
