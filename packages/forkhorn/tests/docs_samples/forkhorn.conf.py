# forkhorn.conf.py: read from the current directory when no -c is given.
# Module globals named like settings are settings; functions named like hooks are hooks.
import os

bind = ["127.0.0.1:8000", "unix:/tmp/myapp.sock"]
workers = int(os.environ.get("MYAPP_WORKERS", "2"))

# Literal values: seen before the file runs, so the worker class is chosen (and may
# monkey-patch) before anything heavy is imported.
worker_class = "gthread"
threads = 4

accesslog = "-"
timeout = 60


def when_ready(server):
    server.log.info("myapp is ready on %s", ", ".join(map(str, server.listeners)))
