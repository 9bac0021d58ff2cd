"""Start ``forkhorn`` from the current environment on an example app and serve one request.

Used by the ``wheels`` nox session against wheels installed into a fresh venv: it proves the
installed console script, the worker class's plugin and a real HTTP round-trip all work.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker-class", default="sync")
    args = parser.parse_args()
    port = free_port()
    forkhorn = Path(sys.executable).parent / "forkhorn"
    command = [
        str(forkhorn),
        "-w",
        "2",
        "-k",
        args.worker_class,
        "-b",
        f"127.0.0.1:{port}",
        "--chdir",
        str(EXAMPLES),
        "hello:app",
    ]
    server = subprocess.Popen(command, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    body = response.read()
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("smoke: the server never answered", file=sys.stderr)
                    return 1
                time.sleep(0.1)
        if body != b"Hello, World!\n":
            print(f"smoke: unexpected body {body!r}", file=sys.stderr)
            return 1
        print(f"smoke: {args.worker_class} worker served {body!r}")
        return 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


if __name__ == "__main__":
    sys.exit(main())
