"""The gevent worker for forkhorn."""
