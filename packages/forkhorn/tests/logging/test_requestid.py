"""Request ids: a sane header value is kept, anything else is replaced by a generated id."""

from __future__ import annotations

import os
import re
import threading

import pytest
from forkhorn.config import Config
from forkhorn.logging.requestid import ENVIRON_KEY, RequestIds


def ids(header: str = "X-Request-ID") -> RequestIds:
    cfg = Config()
    cfg.set("request_id_header", header)
    return RequestIds(cfg)


@pytest.mark.parametrize(
    "given", ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "a/b:c@d+e=f", "x" * 128]
)
def test_valid_header_is_taken(given):
    environ = {"HTTP_X_REQUEST_ID": given}
    assert ids().request_id_for(environ) == given
    assert environ[ENVIRON_KEY] == given


@pytest.mark.parametrize(
    "given", ["", "x" * 129, "has space", 'quo"te', "back\\slash", "\x01", "caf\xe9", "a\r\nb"]
)
def test_invalid_header_is_replaced(given):
    environ = {"HTTP_X_REQUEST_ID": given}
    generated = ids().request_id_for(environ)
    assert generated != given and re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", generated)
    assert environ[ENVIRON_KEY] == generated


@pytest.mark.parametrize(
    ("peer", "kept"), [("127.0.0.1", True), ("", True), ("203.0.113.9", False)]
)
def test_header_is_honoured_only_from_trusted_peers(peer, kept):
    # default forwarded_allow_ips: 127.0.0.1, ::1 and unix-socket peers (REMOTE_ADDR "")
    environ = {"HTTP_X_REQUEST_ID": "from-the-peer", "REMOTE_ADDR": peer}
    assert (ids().request_id_for(environ) == "from-the-peer") is kept


def test_a_computed_id_is_stable_for_the_request():
    generator = ids()
    environ: dict = {}
    assert generator.request_id_for(environ) == generator.request_id_for(environ)


def test_other_header_or_none():
    assert ids("X-Trace").request_id_for({"HTTP_X_TRACE": "t1"}) == "t1"
    assert ids("").request_id_for({"HTTP_X_REQUEST_ID": "r1"}) != "r1"


def test_generated_ids_are_unique_across_threads_and_forks():
    generator = ids()
    seen: list[str] = []

    def work() -> None:
        seen.extend(generator.generate() for _ in range(2000))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == len(seen) == 8000
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child renews its prefix as a worker does after the fork
        generator.after_fork()
        os.write(write_fd, generator.generate().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_fd, 100).decode()
    os.close(read_fd)
    os.close(write_fd)
    assert child.split("-")[0] != generator.generate().split("-")[0]
