"""Framework adapters, shipped as ``chatauth.integrations``: ``django``, ``flask``,
``starlette`` (which FastAPI uses too). Each is a thin translation of the framework's
concepts -- who the user is, where the settings are, where the result goes -- to the core."""
