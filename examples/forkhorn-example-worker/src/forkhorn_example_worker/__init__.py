"""An example third-party forkhorn worker (see README.md)."""
