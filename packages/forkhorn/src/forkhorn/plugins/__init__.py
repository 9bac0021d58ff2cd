"""The plugin system: pluggy hooks (``hookspec``), the manager, and the worker registry."""
