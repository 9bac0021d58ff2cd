"""forkhorn's HTTP/1.1 layer, sans-IO: bytes in, requests or typed errors out.

``parser`` (request heads), ``body`` (Content-Length and chunked decoders), ``proxy``
(PROXY protocol v1/v2), ``peers`` (trusted peer matching), ``forwarded`` (the scheme a
trusted proxy declares), ``errors`` (the one error hierarchy, each error with its status).
No module here touches a socket; every worker class shares them.
"""
