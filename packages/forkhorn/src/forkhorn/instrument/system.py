"""What the kernel tells the master about its workers and listeners (Linux; None elsewhere).

* ``rss_bytes(pid)``: resident memory from ``/proc/<pid>/statm`` (second field, pages).
* ``listen_queue(sock)``: ``(queued, limit)`` of a listening TCP socket from ``TCP_INFO``:
  for a socket in the LISTEN state Linux reports the accept queue's current length in
  ``tcpi_unacked`` and its capacity (the ``backlog`` given to ``listen``, capped by
  ``somaxconn``) in ``tcpi_sacked`` (what ``ss -lnt`` shows as Recv-Q / Send-Q).
  Unix sockets expose nothing comparable without netlink: None.

Read at scrape time only, never on a request path.
"""

from __future__ import annotations

import os
import socket
import struct

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# struct tcp_info: 8 one-byte fields, then u32 rto, ato, snd_mss, rcv_mss, unacked, sacked
_TCP_INFO_HEAD = struct.Struct("=8B6I")
_TCP_LISTEN = 10


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            fields = handle.read().split()
        return int(fields[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def listen_queue(sock: socket.socket) -> tuple[int, int] | None:
    option = getattr(socket, "TCP_INFO", None)
    if option is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, option, _TCP_INFO_HEAD.size)
    except OSError:
        return None
    if len(raw) < _TCP_INFO_HEAD.size:
        return None
    fields = _TCP_INFO_HEAD.unpack(raw)
    if fields[0] != _TCP_LISTEN:
        return None
    return fields[12], fields[13]
