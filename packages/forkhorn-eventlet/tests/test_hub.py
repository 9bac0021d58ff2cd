"""``OneShotHub``: one ``epoll_ctl`` per wait, and no wait lost for it.

Each scenario runs on real socket pairs in a thread of its own, whose hub is a
``OneShotHub`` (eventlet's hubs are per thread: the test process's own stays untouched).
The ``epoll_ctl`` calls are counted on the hub's real epoll object. The shared worker
suite (``test_conformance.py``) runs every worker behaviour on this hub too.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import eventlet
import eventlet.hubs
import pytest
from eventlet.hubs import trampoline
from forkhorn_eventlet.hub import OneShotHub

#: no scenario waits longer than this for an event that must come
WAIT = 2.0


class CountingEpoll:
    """The hub's epoll, its ``epoll_ctl`` calls counted."""

    def __init__(self, epoll: Any) -> None:
        self.epoll = epoll
        self.calls: list[str] = []
        self.reported: dict[int, int] = {}  # fd: how many polls reported it

    def register(self, fd: int, mask: int) -> None:
        self.calls.append("add")
        self.epoll.register(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        self.calls.append("mod")
        self.epoll.modify(fd, mask)

    def unregister(self, fd: int) -> None:
        self.calls.append("del")
        self.epoll.unregister(fd)

    def poll(self, *args: Any) -> Any:
        events = self.epoll.poll(*args)
        for fd, _ in events:
            self.reported[fd] = self.reported.get(fd, 0) + 1
        return events


def in_own_hub(scenario: Callable[[CountingEpoll], Any]) -> Any:
    """Run ``scenario(epoll)`` in a new thread on a fresh ``OneShotHub``; its result."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        eventlet.hubs.use_hub(OneShotHub)
        hub = eventlet.hubs.get_hub()
        assert isinstance(hub, OneShotHub)
        hub.poll = counting = CountingEpoll(hub.poll)
        try:
            outcome["result"] = scenario(counting)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the scenario hung: a wait was never woken"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def nonblocking_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def test_each_wait_costs_one_epoll_ctl() -> None:
    """A keep-alive connection's pattern: wait for the client, read, answer; 20 times.
    eventlet's own hub pays an ADD and a DEL per wait (40 calls)."""

    def scenario(epoll: CountingEpoll) -> tuple[list[bytes], list[str]]:
        a, b = nonblocking_pair()
        got = []
        with a, b:
            for n in range(20):
                eventlet.spawn_after(0.001, b.send, b"%d;" % n)
                trampoline(a, read=True, timeout=WAIT)
                got.append(a.recv(16))
        return got, epoll.calls

    got, calls = in_own_hub(scenario)
    assert got == [b"%d;" % n for n in range(20)]
    assert calls == ["add"] + ["mod"] * 19


def test_a_wait_that_timed_out_leaves_no_stray_wakeup() -> None:
    """The timed-out wait's registration stays armed; its one late event reaches nobody,
    and the next wait on the descriptor still wakes."""

    def scenario(epoll: CountingEpoll) -> tuple[bytes, int]:
        a, b = nonblocking_pair()
        c, d = nonblocking_pair()
        with a, b, c, d:
            with pytest.raises(eventlet.Timeout):
                trampoline(a, read=True, timeout=0.01, timeout_exc=eventlet.Timeout)
            # another connection's wait keeps the hub polling (with no wait, it sleeps)
            other = eventlet.spawn(trampoline, c, read=True, timeout=WAIT)
            b.send(b"late")
            # the late event is reported once, for no listener (a level-triggered
            # registration would be reported at every poll)
            for _ in range(20):
                eventlet.sleep(0.001)
            strays = epoll.reported.get(a.fileno(), 0)
            trampoline(a, read=True, timeout=WAIT)
            data = a.recv(16)
            other.kill()
            return data, strays

    data, strays = in_own_hub(scenario)
    assert data == b"late"
    assert strays == 1


def test_read_and_write_waits_on_one_descriptor_both_wake() -> None:
    """The read event disarms the registration for both directions; ending the read
    wait re-arms it for the writer, who wakes once the peer drains."""

    def scenario(epoll: CountingEpoll) -> list[str]:
        a, b = nonblocking_pair()
        woke: list[str] = []
        with a, b:
            try:
                while True:
                    a.send(b"x" * 65536)  # until a's send buffer is full
            except BlockingIOError:
                pass

            def wait(kind: str) -> None:
                if kind == "read":
                    trampoline(a, read=True, timeout=WAIT)
                else:
                    trampoline(a, write=True, timeout=WAIT)
                woke.append(kind)

            reader = eventlet.spawn(wait, "read")
            writer = eventlet.spawn(wait, "write")
            eventlet.sleep(0.01)  # both wait now
            b.send(b"r")
            reader.wait()
            deadline = time.monotonic() + WAIT
            while not writer.dead and time.monotonic() < deadline:  # drain: a gets room
                try:
                    b.recv(1 << 20)
                except BlockingIOError:
                    eventlet.sleep(0.005)
            writer.wait()  # raises the writer's Timeout if it was never woken
        return woke

    assert in_own_hub(scenario) == ["read", "write"]


def test_a_recycled_descriptor_number_is_registered_anew() -> None:
    """Closing a descriptor drops its epoll registration in the kernel; a new socket
    that gets the same number must still be waited on (MOD fails, ADD follows)."""

    def scenario(epoll: CountingEpoll) -> tuple[bytes, list[str]]:
        a, b = nonblocking_pair()
        number = a.fileno()
        eventlet.spawn_after(0.001, b.send, b"1")
        trampoline(a, read=True, timeout=WAIT)
        a.close()
        b.close()
        c, d = nonblocking_pair()
        with c, d:
            if c.fileno() != number:  # the lowest free number: the one just closed
                pytest.skip(f"the new socket got {c.fileno()}, not {number}")
            eventlet.spawn_after(0.001, d.send, b"2")
            trampoline(c, read=True, timeout=WAIT)
            return c.recv(16), epoll.calls

    data, calls = in_own_hub(scenario)
    assert data == b"2"
    assert calls == ["add", "mod", "add"]
