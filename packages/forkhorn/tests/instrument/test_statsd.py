"""The StatsD client: Gunicorn's names, batching into datagrams, never raising."""

from __future__ import annotations

import socket

import pytest
from forkhorn.instrument.statsd import MAX_UDP_PACKET, StatsdClient, normalize_prefix


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    yield sock
    sock.close()


@pytest.mark.parametrize(
    ("given", "expected"),
    [("", ""), ("app", "app."), ("app.", "app."), ("a.b..", "a.b."), (".", "")],
)
def test_prefix(given, expected):
    assert normalize_prefix(given) == expected


def test_metrics_arrive_batched(listener):
    client = StatsdClient(f"127.0.0.1:{listener.getsockname()[1]}", "p", "a:b,c")
    client.increment("forkhorn.requests")
    client.gauge("forkhorn.workers", 3)
    client.timing("forkhorn.request.duration", 1.5)
    client.increment("x", 2, sample_rate=0.5)
    client.flush()
    packet = listener.recv(65536).decode()
    assert packet.split("\n") == [
        "p.forkhorn.requests:1|c|#a:b,c",
        "p.forkhorn.workers:3|g|#a:b,c",
        "p.forkhorn.request.duration:1.500|ms|#a:b,c",
        "p.x:2|c|@0.5|#a:b,c",
    ]


def test_a_full_batch_leaves_at_once_within_the_packet_size(listener):
    client = StatsdClient(f"127.0.0.1:{listener.getsockname()[1]}")
    for _ in range(200):
        client.request("200", 0.5)
    first = listener.recv(65536)
    assert len(first) <= MAX_UDP_PACKET
    assert first.startswith(b"forkhorn.requests:1|c\nforkhorn.request.duration:0.500|ms\n")
    entry = b"forkhorn.requests:1|c\nforkhorn.request.duration:0.500|ms\n"
    entry += b"forkhorn.request.status.200:1|c\n"
    # as many whole requests as fit: the datagram left only when the next would not
    assert first + b"\n" == entry * (MAX_UDP_PACKET // len(entry))
    client.close()


def test_unix_datagram_socket(tmp_path):
    path = str(tmp_path / "statsd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5.0)
    try:
        client = StatsdClient(f"unix:{path}")
        client.increment("forkhorn.log.error")
        client.flush()
        assert server.recv(1024) == b"forkhorn.log.error:1|c"
    finally:
        server.close()


def test_nobody_listening_never_raises(tmp_path):
    client = StatsdClient(f"unix:{tmp_path}/nobody.sock")
    client.increment("x")
    client.flush()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # now closed: ICMP port unreachable makes later sends fail
    client = StatsdClient(f"127.0.0.1:{port}")
    for _ in range(3):
        client.increment("x")
        client.flush()
