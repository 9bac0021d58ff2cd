"""The WSGI layer: environ (``environ``), ``wsgi.input`` (``input``), start_response and the
response serializer (``response``), and the blocking connection handler every worker class
uses (``handler``). Nothing here is imported until a worker needs it."""
