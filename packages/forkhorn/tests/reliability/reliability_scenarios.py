"""The scenarios every worker class goes through, each reporting its figures.

Called by the core suite for sync and gthread, and by the worker kit
(``forkhorn.testing.suite``, run by the gevent and eventlet packages' ``test_conformance.py``)
for theirs (``autoload=True``: their worker is found through its
entry point, as a user's ``-k gevent`` finds it).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import time
from functools import partial

from forkhorn.testing.processes import polls_listeners
from reliability_load import LoadClient, Slowloris, percentile
from reliability_support import Server, Servers, report, socket_count, wait_for

#: arguments per worker class (cooperative workers need none)
WORKER_ARGS = {"gthread": ("--threads", "4")}


def hup_under_load(
    servers: Servers, worker: str, hups: int, keepalive: bool, autoload: bool = False
) -> None:
    """HUP every 0.25 s under load: no request may be lost (a keep-alive connection closed
    before a response started is retried, and counted as ``retried``)."""
    args = WORKER_ARGS.get(worker, ())
    server = servers.start(*args, worker=worker, workers=2, autoload=autoload)
    first = set(server.workers())
    with LoadClient(server.port, threads=4, keepalive=keepalive) as load:
        load.wait_requests(50)
        for _ in range(hups):
            server.signal(signal.SIGHUP)
            time.sleep(0.25)
        now = server.wait_workers(2)
        time.sleep(0.5)  # the last retired workers finish and are reaped
        load.wait_requests(50)
    lost = load.lost + load.refused
    mode = "keep-alive" if keepalive else "close"
    met = report(f"{hups} HUP reloads under load ({mode})", worker,
                 "requests lost: 0", lost == 0, hups=hups,
                 **load.figures())  # fmt: skip
    assert met, load.failures
    # a reload retires workers with TERM: none may be mistaken for hung and aborted
    assert "WORKER TIMEOUT" not in server.log(), server.log()[-3000:]
    assert not first & set(now), "the workers were not replaced"


def sigkill_under_load(servers: Servers, worker: str, kills: int, autoload: bool = False) -> None:
    """Kill a random worker every second: its replacement must accept within 1 s, and
    only the connections the killed worker held may fail."""
    args = WORKER_ARGS.get(worker, ())
    server = servers.start(*args, worker=worker, workers=2, autoload=autoload)
    idle_sockets = socket_count(server.workers()[0])  # the listener(s)
    clients = 4
    per_worker = 1 if worker == "sync" else clients  # what one worker can hold here
    replacement: list[float] = []
    in_flight = 0
    rng = random.Random(10)
    with LoadClient(server.port, threads=clients) as load:
        load.wait_requests(50)
        for _ in range(kills):
            before = server.workers()
            victim = rng.choice(before)
            try:
                held = socket_count(victim) - idle_sockets
            except OSError:
                held = 0
            in_flight += min(per_worker, held + 1)  # +1: one more accept may race the kill
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            (pid,) = wait_for(partial(_new_workers, server, before), 5, "a replacement")
            # accepting: it answered, or (epoll workers, whose accepts the kernel may hand to
            # the older worker for a while) its epoll set holds the listeners
            accepting = wait_for(
                partial(_accepting_since, load, server, pid), 5, "the replacement to accept", 0.002
            )
            replacement.append(accepting - killed_at)
            time.sleep(1.0)
        load.wait_requests(50)
    figures = load.figures()
    met = max(replacement) < 1.0 and load.lost <= in_flight and load.refused == 0
    report("SIGKILL of a random worker under load", worker,
           "replaced and accepting < 1 s; failed <= the killed worker's connections", met,
           kills=kills, max_replacement_s=round(max(replacement), 3),
           mean_replacement_s=round(sum(replacement) / kills, 3),
           killed_in_flight_bound=in_flight, **figures)  # fmt: skip
    assert met, (replacement, in_flight, figures, load.failures)


def _new_workers(server: Server, before: list[int]) -> set[int]:
    return set(server.workers()) - set(before)


def _accepting_since(load: LoadClient, server: Server, pid: int) -> float | None:
    """When ``pid`` answered first, or now if it polls the listeners; None: not yet."""
    answered = load.first_seen.get(pid)
    if answered is not None:
        return answered
    return time.monotonic() if polls_listeners(pid, server.pid) else None


def term_with_full_backlog(servers: Servers, worker: str, autoload: bool = False) -> None:
    """Slow requests from many more clients than the workers serve at once: the kernel's
    queue is full of connections when TERM arrives; every one must be answered."""
    args = WORKER_ARGS.get(worker, ())
    server = servers.start(*args, "--backlog", "128", worker=worker, workers=2,
                           autoload=autoload)  # fmt: skip
    with LoadClient(server.port, threads=48, path="/sleep?0.05") as load:
        load.wait_requests(40)
        time.sleep(1.0)
        queued = load.in_flight
        stopped_at = time.monotonic()
        server.signal(signal.SIGTERM)
        status = server.proc.wait(timeout=60)
        stop_time = time.monotonic() - stopped_at
        time.sleep(0.2)
    figures = load.figures()
    met = load.lost == 0 and status == 0
    report("TERM under load, full backlog", worker,
           "requests lost: 0; every queued request answered; exit 0", met,
           in_flight_at_term=queued, exit_status=status, stop_s=round(stop_time, 2),
           **figures)  # fmt: skip
    assert met, (status, figures, load.failures)
    # requests were waiting when TERM came (about all 48 clients in practice), or the
    # scenario tested nothing
    assert queued > 2, f"only {queued} requests in flight at TERM"


def slowloris_latency(
    servers: Servers, worker: str, count: int = 500, autoload: bool = False
) -> None:
    """``count`` trickling connections stay open while one client measures the latency of
    ordinary requests for 5 s. The deadlines that would end them are set far away: the
    header deadline, and the keep-alive one (the cooperative workers apply it to a
    connection whose first head is still arriving)."""
    args = WORKER_ARGS.get(worker, ())
    deadlines = ("--header-timeout", "120", "--keep-alive", "120")
    server = servers.start(*args, *deadlines, worker=worker, workers=2,
                           autoload=autoload)  # fmt: skip
    with Slowloris(server.port, count, interval=1.0) as loris:
        time.sleep(1.0)  # every connection accepted and trickling
        with LoadClient(server.port, threads=1, pause=0.01) as load:
            time.sleep(5.0)
        still_open = loris.open
    p50, p99 = percentile(load.latencies, 0.5), percentile(load.latencies, 0.99)
    met = p99 < 0.1 and load.lost == 0 and load.refused == 0 and still_open == count
    report(f"{count} slowloris connections + a normal client", worker,
           "normal client p99 < 100 ms", met, slowloris_open=still_open,
           requests=load.ok, p50_ms=round(p50 * 1000, 1), p99_ms=round(p99 * 1000, 1),
           max_ms=round(max(load.latencies or [0]) * 1000, 1),
           lost=load.lost)  # fmt: skip
    assert met, (p99, still_open, load.figures(), load.failures)


def graceful_stop_serves_a_late_request(
    servers: Servers, worker: str, *args: str, autoload: bool = False
) -> None:
    """A connection the worker accepted whose request had not arrived (or not been read)
    yet was closed by the graceful stop: the regression behind requests lost on HUP."""
    server = servers.start(*args, worker=worker, workers=1, autoload=autoload)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as late:
        time.sleep(0.3)  # accepted by the worker, no request yet
        server.signal(signal.SIGTERM)
        time.sleep(0.3)  # the worker is in its graceful stop
        late.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        answer = late.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert server.proc.wait(timeout=30) == 0
