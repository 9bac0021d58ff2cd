"""Metrics: StatsD (``statsd``), the per-worker shared counters (``board``), the Prometheus
exposition (``prometheus``) served by the master (``httpd``, ``master``), and what the
kernel tells about processes and listeners (``system``).

Hot-path rule: a worker's only per-request cost is the access-log fan-out
(``forkhorn.logging.Logger.access``) into the sinks that are on; nothing runs for a sink
that is off. Submodules are imported by whoever needs them, never here.
"""
