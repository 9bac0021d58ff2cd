"""Worker processes: the contract (``base``) and the built-in classes ``sync`` and ``gthread``."""
