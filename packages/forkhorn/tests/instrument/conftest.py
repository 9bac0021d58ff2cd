"""Real-server fixtures for the metrics tests: the arbiter tests' ``start_server`` serving
``instrument_apps`` (see ``tests/real_servers.py``)."""

from __future__ import annotations

from pathlib import Path

from real_servers import public_helpers, serve_fixture

# Re-export the arbiter helpers (LoadClient, free_port, wait_for, start_server, ...).
globals().update({k: v for k, v in public_helpers().items() if k not in globals()})

serve = serve_fixture(Path(__file__).parent, "instrument_apps:app")
