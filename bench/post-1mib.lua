-- wrk script for the "1 MiB POST echoed" workload: every request is a POST to the
-- URL's path with a 1 MiB body (wrk adds Content-Length itself when a body is set).
wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
