"""forkhorn: a pre-fork WSGI HTTP/1.1 server in the line of Gunicorn."""

__version__ = "0.1.0"
SERVER_SOFTWARE = f"forkhorn/{__version__}"

__all__ = ["SERVER_SOFTWARE", "__version__"]
