"""Fixtures of the deployment tests: one set of certificates per run, and ``launch``,
which starts forkhorn, nginx or HAProxy and stops every one of them after the test."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from proxies import Certs, Process, make_certs


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed (run: bash ci/install-proxies.sh)")
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``launch(Forkhorn, worker, *args, **kw)`` / ``launch(Nginx, upstream, certs)``: the
    process, ready; stopped (its whole session killed) at the end of the test."""
    started: list[Process] = []

    def start(kind: type[Process], *args: Any, **kwargs: Any) -> Any:
        directory = tmp_path / f"{kind.__name__.lower()}-{len(started)}"
        directory.mkdir()
        # stops itself if it never gets ready
        process = kind(directory, *args, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()
