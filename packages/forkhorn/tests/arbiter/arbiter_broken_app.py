"""An app module that cannot be imported: workers exit with APP_LOAD_ERROR."""

raise RuntimeError("this app is broken on purpose")
