"""Rows: HTTP parsing limits and leniencies, trusted proxies, TLS.

The parser (``forkhorn.http``) reads these through ``ParserLimits.from_config``. Limits of
0 mean what each row says, as in Gunicorn. TLS rows never import ``ssl``: the
defaults are the numbers of ``ssl.PROTOCOL_TLS`` (2) and ``ssl.CERT_NONE`` (0).
"""

from __future__ import annotations

from forkhorn.config import validators as v
from forkhorn.config.setting import PARSER, SECURITY, SSL, Setting

# The rows are kept compact on purpose: one setting reads as one block.
# fmt: off
ROWS: list[Setting] = [
    # --- Security: limits ------------------------------------------------------------
    Setting(
        "limit_request_line", SECURITY, 4094, v.integer(0),
        """The maximum size of the request line in bytes (414 above it). 0 means the
largest we allow (8190).""",
        flags=("--limit-request-line",), meta="INT",
    ),
    Setting(
        "limit_request_fields", SECURITY, 100, v.integer(0),
        """The maximum number of header fields (431 above it). 0 means the largest we
allow (32768).""",
        flags=("--limit-request-fields",), meta="INT",
    ),
    Setting(
        "limit_request_field_size", SECURITY, 8190, v.integer(0),
        """The maximum size of one header field line (431 above it), at most 32760.
0 means 8190, Gunicorn's default.""",
        flags=("--limit-request-field_size", "--limit-request-field-size"), meta="INT",
    ),
    Setting(
        "limit_request_body", SECURITY, 0, v.positive_int,
        "The maximum request body size in bytes (413 above it). 0 means unlimited. forkhorn's.",
        flags=("--limit-request-body",), meta="INT",
    ),
    # --- HTTP parsing leniencies -----------------------------------------------------
    Setting(
        "permit_obsolete_folding", PARSER, False, v.boolean,
        "Accept obsolete line folding (obs-fold) in header values, unfolding it to one space.",
        flags=("--permit-obsolete-folding",), action="store_true",
    ),
    Setting(
        "permit_unconventional_http_method", PARSER, False, v.boolean,
        """Accept any token as a method (lower case, very long, with ``#``...); by default
methods are 3-20 upper-case letters.""",
        flags=("--permit-unconventional-http-method",), action="store_true",
    ),
    Setting(
        "permit_unconventional_http_version", PARSER, False, v.boolean,
        "Accept HTTP/1.x versions other than 1.0 and 1.1 (answered as HTTP/1.1).",
        flags=("--permit-unconventional-http-version",), action="store_true",
    ),
    Setting(
        "casefold_http_method", PARSER, False, v.boolean,
        "Upper-case the method before handing it to the app.",
        flags=("--casefold-http-method",), action="store_true",
    ),
    Setting(
        "strip_header_spaces", PARSER, False, v.boolean,
        "Strip spaces between a header name and its colon (dangerous: request smuggling).",
        flags=("--strip-header-spaces",), action="store_true",
    ),
    Setting(
        "header_map", PARSER, "drop", v.choice("drop", "refuse", "dangerous"),
        """What to do with header names containing ``_``, which WSGI cannot tell from
``-``: ``drop`` them, ``refuse`` the request, or pass them (``dangerous``).""",
        flags=("--header-map",), meta="STRING",
    ),
    Setting(
        "permit_missing_host", PARSER, False, v.boolean,
        """Accept HTTP/1.1 requests without a ``Host`` header (RFC 9112 requires one; the
default refuses them with 400). forkhorn's.""",
        flags=("--permit-missing-host",), action="store_true",
    ),
    # --- Trusted proxies -------------------------------------------------------------
    Setting(
        "forwarded_allow_ips", SECURITY, "127.0.0.1,::1,unix", v.peer_list,
        """Peers (IPs, CIDR networks, ``*``, and ``unix`` for peers on a unix socket) trusted
to set secure-scheme and forwarding headers. Defaults to ``$FORWARDED_ALLOW_IPS`` when set.
Like Gunicorn, the default trusts unix-socket peers (a local proxy such as nginx); drop
``unix`` from the list to stop trusting them.""",
        flags=("--forwarded-allow-ips",), meta="STRING", env="FORWARDED_ALLOW_IPS",
    ),
    Setting(
        "secure_scheme_headers", SECURITY,
        {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"},
        v.header_dict,
        """Headers (and values) by which a trusted proxy says the request came over HTTPS
(config file only). Names are matched case-insensitively.""",
    ),
    Setting(
        "forwarder_headers", SECURITY, "SCRIPT_NAME,PATH_INFO", v.string_list,
        """Environ keys a trusted proxy may set through headers (e.g. ``SCRIPT_NAME``),
comma-separated.""",
        flags=("--forwarder-headers",), meta="STRING",
    ),
    Setting(
        "proxy_protocol", SECURITY, "off", v.proxy_protocol,
        """Expect a PROXY protocol header from peers in ``proxy_allow_ips``: ``v1``, ``v2``,
``auto`` (either), or ``off``. The bare flag means ``auto``.""",
        flags=("--proxy-protocol",), meta="MODE", nargs="?", const="auto",
    ),
    Setting(
        "proxy_allow_ips", SECURITY, "127.0.0.1,::1,unix", v.peer_list,
        """Peers (IPs, CIDR networks, ``*``, ``unix``) allowed to send a PROXY protocol
header. Like Gunicorn, unix-socket peers are allowed by default.""",
        flags=("--proxy-allow-from",), meta="STRING",
    ),
    # --- SSL -------------------------------------------------------------------------
    Setting(
        "certfile", SSL, None, v.string,
        "The TLS certificate file; setting it turns TLS on.",
        flags=("--certfile",), meta="FILE",
    ),
    Setting(
        "keyfile", SSL, None, v.string,
        "The TLS private key file.",
        flags=("--keyfile",), meta="FILE",
    ),
    Setting(
        "ssl_version", SSL, 2, v.ssl_version,
        """Deprecated and ignored, as in Gunicorn: shape the TLS context with the
``ssl_context`` hook instead.""",
        flags=("--ssl-version",), meta="STRING",
    ),
    Setting(
        "cert_reqs", SSL, 0, v.integer(0, 2),
        """Whether a client certificate is required: 0 (``CERT_NONE``), 1 (``CERT_OPTIONAL``)
or 2 (``CERT_REQUIRED``).""",
        flags=("--cert-reqs",), meta="INT",
    ),
    Setting(
        "ca_certs", SSL, None, v.string,
        "The CA certificates file used to verify client certificates.",
        flags=("--ca-certs",), meta="FILE",
    ),
    Setting(
        "suppress_ragged_eofs", SSL, True, v.boolean,
        "Treat a TLS connection closed without ``close_notify`` as a normal end of stream.",
        flags=("--suppress-ragged-eofs",), action="store_true",
    ),
    Setting(
        "do_handshake_on_connect", SSL, False, v.boolean,
        """Accepted for Gunicorn compatibility: forkhorn always completes the TLS handshake
as soon as a connection is accepted (clocked like a request), whatever this says.""",
        flags=("--do-handshake-on-connect",), action="store_true",
    ),
    Setting(
        "ciphers", SSL, None, v.string,
        "The TLS cipher list (OpenSSL syntax); default: Python's.",
        flags=("--ciphers",), meta="CIPHERS",
    ),
]
# fmt: on
