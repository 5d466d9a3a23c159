"""gunicorn settings read from the project folder (Procfile, `make run`, the tests).

Only one hook: tell the app how many worker processes gunicorn starts, so
create_app can refuse in-memory rate limits that every worker would count apart.
"""

import os


def on_starting(server) -> None:
    """Pass the worker count (-w, or WEB_CONCURRENCY read by gunicorn) to the workers."""
    os.environ["GUNICORN_WORKERS"] = str(server.cfg.workers)
