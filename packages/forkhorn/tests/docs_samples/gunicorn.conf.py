# A production gunicorn.conf.py, as it is commonly written. forkhorn runs it unchanged:
# tests/test_docs.py starts forkhorn with this very file.
import multiprocessing
import os

# --- sockets and workers
bind = os.environ.get("BIND", "127.0.0.1:8000")
backlog = 2048
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = 2
worker_connections = 1000
timeout = 30
graceful_timeout = 30
keepalive = 5
max_requests = 1000
max_requests_jitter = 50

# --- limits and proxies
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
forwarded_allow_ips = "127.0.0.1"

# --- logging
errorlog = "-"
loglevel = "info"
accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'
proc_name = "myapp"


# --- server hooks: plain functions, called positionally as in Gunicorn
def on_starting(server):
    server.log.info("on_starting: master starting")


def when_ready(server):
    server.log.info("when_ready: server is ready, spawning workers")


def pre_fork(server, worker):
    pass


def post_fork(server, worker):
    server.log.info("post_fork: worker spawned (pid: %s)", worker.pid)


def post_worker_init(worker):
    worker.log.info("post_worker_init: worker %s ready", worker.pid)


def worker_int(worker):
    worker.log.info("worker_int: worker received INT or QUIT")


def worker_abort(worker):
    worker.log.info("worker_abort: worker received SIGABRT")


def pre_exec(server):
    server.log.info("pre_exec: forked child, re-executing")


def pre_request(worker, req):
    worker.log.debug("%s %s", req.method, req.path)


def post_request(worker, req, environ, resp):
    pass


def child_exit(server, worker):
    server.log.info("child_exit: worker %s exited", worker.pid)


def worker_exit(server, worker):
    server.log.info("worker_exit: worker %s exiting", worker.pid)


def nworkers_changed(server, new_value, old_value):
    server.log.info("nworkers_changed: %s -> %s", old_value, new_value)


def on_exit(server):
    server.log.info("on_exit: master exiting")
