"""Test-only worker classes, passed to the server by dotted path (``-k module:Class``)."""

from __future__ import annotations

import select
import socket

from forkhorn.workers.base import Worker

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"


class RawWorker(Worker):
    """Answers every connection with a fixed response, on raw sockets (no HTTP layer)."""

    def run(self) -> None:
        socks = [listener.sock for listener in self.sockets]
        while self.alive:
            self.notify()
            waiting: list[socket.socket | int] = [*socks, self.PIPE[0]]
            ready, _, _ = select.select(waiting, [], [], self.timeout)
            for sock in ready:
                if sock is self.PIPE[0] or not isinstance(sock, socket.socket):
                    continue
                try:
                    client, _ = sock.accept()
                except BlockingIOError:
                    continue
                self.serve_drained(self.sockets[0], client, None)

    def serve_drained(self, listener, client, addr):  # type: ignore[no-untyped-def]
        client.settimeout(5)
        try:
            client.recv(65536)
            client.sendall(RESPONSE)
        finally:
            client.close()
        self.count_request()


class BootFailureWorker(Worker):
    """Fails during its own initialisation: the master must halt with exit status 3."""

    def init_process(self) -> None:
        raise RuntimeError("cannot boot on purpose")

    def run(self) -> None:  # pragma: no cover - never reached
        pass


class EagerLoadWorker(Worker):
    """Loads the app before the base class's set-up, its own way: an ``AppImportError``
    reaches the master's fork wrapper instead of ``Worker.init_process``'s handler."""

    def init_process(self) -> None:
        self.app.wsgi()
        super().init_process()

    def run(self) -> None:  # pragma: no cover - the app never loads in the tests
        pass
