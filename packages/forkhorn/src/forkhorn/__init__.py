"""forkhorn: a pre-fork WSGI HTTP/1.1 server in the line of Gunicorn."""

__version__ = "0.1.0"
SERVER_SOFTWARE = f"forkhorn/{__version__}"

__all__ = ["__version__", "SERVER_SOFTWARE"]
