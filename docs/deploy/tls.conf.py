"""forkhorn.conf.py: TLS served by forkhorn itself, with mutual TLS (tested by the
deployment tests, which override the paths and the bind address on the command line)."""

bind = ["0.0.0.0:8443"]
certfile = "/etc/forkhorn/tls/server.crt"
keyfile = "/etc/forkhorn/tls/server.key"
# Mutual TLS: clients must present a certificate signed by this CA (2 = CERT_REQUIRED).
ca_certs = "/etc/forkhorn/tls/clients-ca.crt"
cert_reqs = 2


def ssl_context(config, default_ssl_context_factory):
    """Start from the context the settings above describe, then tighten it."""
    import ssl  # here, not at the top: the master must not import ssl (gevent, eventlet)

    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context
