"""The HTTP service: search, recommendations, events and catalogue writes for every shop of a home folder.

``create_app(home)`` builds the app (tested in-process); ``run(home, host, port)`` serves it with uvicorn.
"""

from __future__ import annotations

from shoprank.serving.app import build_server, create_app, run
from shoprank.serving.config import ServingConfig
from shoprank.serving.demo import demo_key, demo_serve
from shoprank.serving.examples import example_requests

__all__ = ["ServingConfig", "build_server", "create_app", "demo_key", "demo_serve", "example_requests", "run"]
