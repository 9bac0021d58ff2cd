"""The eventlet worker for forkhorn."""
