"""``OneShotHub``: eventlet's epoll hub, one ``epoll_ctl`` per wait instead of two.

eventlet's epoll hub registers a descriptor when a green thread starts waiting on it and
unregisters it when the wait ends: a keep-alive request, which waits once for the client's
next request, paid two ``epoll_ctl`` calls on top of its ``recv`` and ``send``
(``strace -c``: 4.1 system calls per request, where Gunicorn 23's eventlet worker, slower,
rarely waits at all).

This hub registers every wait with ``EPOLLONESHOT``: the kernel disarms the registration
when it reports the event, so the end of a wait costs nothing, and the next wait on the
same descriptor re-arms it with one ``EPOLL_CTL_MOD``.

Invariants:
- A registration is armed only while a listener waits on it, or until it fires once:
  a wait that ended without its event (a timeout) leaves it armed, and its one late
  event reaches no listener (the hub ignores it, as it ignores any event nobody waits for).
  Nothing is ever reported twice for nobody, so nothing spins.
- When one of a read and a write listener on the same descriptor fires, the registration
  is disarmed for both; ending that wait re-arms it for the listener left.
- ``_known`` holds the descriptors this epoll may still have: a closed descriptor leaves
  epoll by itself, so a recycled number's ``MOD`` fails (``ENOENT``) and becomes an
  ``ADD``; eventlet reports numbers that an ``accept`` recycles (``mark_as_reopened``),
  which makes that an ``ADD`` at once.

Imported only in a greened worker process, after fork (see ``patching``).
"""

from __future__ import annotations

from typing import Any

from eventlet.hubs import epolls, hub
from eventlet.patcher import original

READ = hub.READ
WRITE = hub.WRITE
_ONESHOT = original("select").EPOLLONESHOT


class OneShotHub(epolls.Hub):  # type: ignore[misc]
    @staticmethod
    def is_available() -> bool:
        return bool(epolls.is_available())

    def __init__(self, clock: Any = None) -> None:
        super().__init__(clock)
        self._known: set[int] = set()

    def add(self, evtype: str, fileno: int, cb: Any, tb: Any, mac: Any) -> Any:
        listener = hub.BaseHub.add(self, evtype, fileno, cb, tb, mac)
        self.register(fileno)
        return listener

    def remove(self, listener: Any) -> None:
        hub.BaseHub.remove(self, listener)
        fileno = listener.fileno
        if fileno in self.listeners[READ] or fileno in self.listeners[WRITE]:
            self.register(fileno)  # the other direction still waits: re-arm it

    def register(self, fileno: int, new: bool = False) -> None:
        """Arm ``fileno`` for what its listeners wait for; nothing when none waits.
        (``new``, from eventlet's signature, is not needed: ``_known`` says which.)"""
        mask = 0
        if fileno in self.listeners[READ]:
            mask = self.READ_MASK | self.EXC_MASK
        if fileno in self.listeners[WRITE]:
            mask |= self.WRITE_MASK | self.EXC_MASK
        if not mask:
            return
        mask |= _ONESHOT
        known = self._known
        try:
            if fileno in known:
                try:
                    self.poll.modify(fileno, mask)
                    return
                except FileNotFoundError:  # closed since: the number is a new descriptor
                    known.discard(fileno)
            try:
                self.poll.register(fileno, mask)
            except FileExistsError:  # registered before this hub's records say
                self.poll.modify(fileno, mask)
            known.add(fileno)
        except ValueError:  # a bad descriptor (eventlet issue 74): as eventlet's hub does
            self.remove_descriptor(fileno)
            raise

    def mark_as_reopened(self, fileno: int) -> None:
        self._known.discard(fileno)
        super().mark_as_reopened(fileno)

    def remove_descriptor(self, fileno: int) -> None:
        self._known.discard(fileno)
        super().remove_descriptor(fileno)
