"""A worker class written from scratch on forkhorn's worker contract.

The docs' worked example (Writing a worker plugin); tests/test_docs.py serves requests with
it and stops it with TERM. ``forkhorn -k select_worker:SelectWorker myapp:app``.
"""

from __future__ import annotations

import os
import select

from forkhorn.workers.base import Worker
from forkhorn.wsgi.handler import Connection, ConnectionHandler


class SelectWorker(Worker):
    """One connection at a time, waiting in ``select`` on the listeners and the signal pipe."""

    def run(self) -> None:
        # Built once per process: the parser limits, hooks and access log are looked up here.
        handler = ConnectionHandler(self, keepalive=False)
        listeners = [listener.sock for listener in self.sockets]
        wakeup = self.PIPE[0]  # every signal writes a byte here: TERM wakes select at once
        while self.alive:
            self.notify()  # heartbeat: must happen at least every self.timeout seconds
            if self.ppid != os.getppid():
                return  # the master is gone
            ready, _, _ = select.select([*listeners, wakeup], [], [], self.timeout)
            for sock in ready:
                if sock == wakeup:
                    os.read(wakeup, 4096)
                    continue
                try:
                    client, addr = sock.accept()
                except BlockingIOError:
                    continue  # another worker accepted this connection first
                client.setblocking(True)
                # parses, calls the app, writes the response, counts the request
                handler.serve(Connection(client, addr, sock.getsockname()))
                if not self.alive:
                    break
