"""Shared test setup: core tests never see plugins installed beside the core."""

from __future__ import annotations

import os

os.environ.setdefault("FORKHORN_DISABLE_PLUGIN_AUTOLOAD", "1")
