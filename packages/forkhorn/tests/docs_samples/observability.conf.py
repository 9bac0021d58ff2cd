# Logs as JSON lines with request ids, Prometheus metrics from the master, StatsD.
# (docs/guides/logging.md includes this file; tests/test_docs.py checks it.)
bind = "127.0.0.1:8000"
workers = 2

accesslog = "-"  # the access log on standard output, the error log on standard error
log_format = "json"  # one JSON object per line, in both logs
request_id_header = "X-Request-ID"  # taken from the proxy when it is a sane token

metrics_bind = "127.0.0.1:9100"  # Prometheus scrapes http://127.0.0.1:9100/metrics
statsd_host = "localhost:8125"
statsd_prefix = "myapp"
