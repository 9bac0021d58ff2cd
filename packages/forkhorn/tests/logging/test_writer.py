"""``LineWriter``: buffered, flushed on time, and no line lost across reopen, even with
threads writing while the file is rotated."""

from __future__ import annotations

import os
import threading
import time

from forkhorn.logging import writer as writer_module
from forkhorn.logging.writer import LineWriter


def test_lines_wait_in_the_buffer_until_flush(tmp_path):
    path = tmp_path / "a.log"
    out = LineWriter(str(path))
    out.write("one")
    assert path.read_text() == ""
    out.flush()
    assert path.read_text() == "one\n"
    out.close()


def test_flush_if_due_flushes_at_most_once_per_interval(tmp_path, monkeypatch):
    path = tmp_path / "a.log"
    out = LineWriter(str(path))
    out.flush_if_due()  # due at once the first time
    out.write("x")
    out.flush_if_due()
    assert path.read_text() == ""
    monkeypatch.setattr(writer_module, "FLUSH_INTERVAL", 0.0)
    out._next_flush = time.monotonic() - 1
    out.flush_if_due()
    assert path.read_text() == "x\n"
    out.close()


def test_rotation_under_threads_loses_no_line(tmp_path):
    path = tmp_path / "a.log"
    out = LineWriter(str(path))
    sink = out.sink(lambda *args: b"line " + b"x" * 100 + b"\n")
    stop = threading.Event()
    counts = [0] * 4

    def write(slot: int) -> None:
        while not stop.is_set():
            sink({}, "200 OK", [], 0, 0.0)
            counts[slot] += 1

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        for number in range(20):
            time.sleep(0.01)
            os.rename(path, tmp_path / f"a.log.{number}")
            out.reopen()
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    out.close()
    total = sum(
        len(file.read_text().splitlines()) for file in tmp_path.iterdir() if file.name[0] == "a"
    )
    assert total == sum(counts) > 0


def test_stdout_target_uses_a_pipe(tmp_path):
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as stream:
        out = LineWriter("-", stream=stream)  # type: ignore[arg-type]
        assert not out.line_buffered and not out.is_file
        out.write("to stdout")
        out.reopen()  # a stream is flushed, not reopened
        out.close()
    assert os.read(read_fd, 100) == b"to stdout\n"
    os.close(read_fd)
