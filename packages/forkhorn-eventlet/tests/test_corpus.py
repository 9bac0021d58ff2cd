"""Gunicorn's request corpus over a real socket: the worker answers what the parser decides.

Only the cases that need no special settings are sent (one server, one connection each):
a valid case gets one ``200`` per request it holds (the echo app reads every body); an
invalid case gets its status line and then the connection is closed, or a silent close
when the corpus says there is nothing to answer. HTTP/1.1 without Host is refused by
default (forkhorn is stricter than Gunicorn there), so the server runs with
``--permit-missing-host``. The parser itself is tested case by case, in every chunking, by
the core's ``tests/http/test_corpus.py``; this checks the transport around it.
"""

from __future__ import annotations

import base64
import json
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "forkhorn/tests/http/data/gunicorn-requests.json"
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
#: valid in Gunicorn, refused by forkhorn on purpose (the reasons: EXCEPTIONS in the core's
#: tests/http/test_corpus.py): the status answered instead of the 200s
DELIBERATELY_REFUSED = {
    "valid/009": 400,  # Transfer-Encoding: identity beside Content-Length
    "valid/099": 400,  # the input ends before Content-Length says
    "valid/rfc9112_target_absolute_userinfo_01": 400,  # userinfo in the target
}


def default_cases() -> list[dict[str, Any]]:
    if not CORPUS.exists():
        return []
    return [case for case in json.loads(CORPUS.read_text())["cases"] if not case.get("settings")]


def exchange(port: int, raw: bytes) -> list[int]:
    """Send ``raw``, half-close, read until the server closes: the statuses it answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return [int(status) for status in STATUS_LINE.findall(data)]


@pytest.mark.skipif(not default_cases(), reason="the corpus has not been generated")
def test_the_corpus_over_a_socket(start_server: Any) -> None:
    server = start_server("-w", "1", "--permit-missing-host", app="testapp:echo_app")
    cases = default_cases()
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda case: exchange(server.port, base64.b64decode(case["raw_b64"])), cases)
        )
    wrong = []
    for case, statuses in zip(cases, answers, strict=True):
        if case["name"] in DELIBERATELY_REFUSED:
            expected, statuses = [DELIBERATELY_REFUSED[case["name"]]], statuses[-1:]
        elif case["expect"] == "requests":
            expected = [200] * len(case["requests"])
        else:
            expected = [] if case["status"] is None else [case["status"]]
            statuses = statuses[-1:] if expected else [s for s in statuses if s != 200]
        if statuses != expected:
            wrong.append((case["name"], statuses, expected))
    assert not wrong, wrong
    assert len(cases) > 100
