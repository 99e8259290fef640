"""The app factory: ``create_app(home)`` gives an ASGI app serving every shop of a home folder."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from shoprank import __version__
from shoprank.keys import KeyStore
from shoprank.serving import (
    admin_routes,
    analytics_routes,
    answer_routes,
    experiment_routes,
    read_routes,
    rules_routes,
    sentiment_routes,
    settings_routes,
    suggest_routes,
    synonym_routes,
    write_routes,
)
from shoprank.serving.config import ServingConfig
from shoprank.serving.errors import install_error_handlers
from shoprank.serving.impressions import ImpressionLog
from shoprank.serving.metrics import Metrics
from shoprank.serving.middleware import ServingMiddleware
from shoprank.serving.registry import EngineRegistry, Loader
from shoprank.shops import Shop

log = logging.getLogger("shoprank.serving")
STATIC = Path(__file__).resolve().parent / "static"

DESCRIPTION = """Search and recommendations for the shops of one home folder.

Send an API key as `Authorization: Bearer KEY` (`shoprank keys create`). Errors are always
`{"error": {"code", "message", "field"}}`. See docs/api.md for the full contract."""


def create_app(
    home: str | Path,
    *,
    open_access: bool = False,
    config: ServingConfig | None = None,
    loaders: dict[str, Loader] | None = None,
    keys: KeyStore | None = None,
    threads: bool = False,
) -> FastAPI:
    """An app serving the shops of ``home``.

    ``open_access`` lets requests without a key do everything (a local demo only; the page warns about it).
    ``loaders`` maps "search" / "recommend" to a function ``shop -> engine`` (default: the real engines; with
    other loaders no baseline bundles are built).
    Engines are loaded at start-up (``config.preload``, via the lifespan) or on a shop's first request.
    ``threads`` lets the app set the engines' thread counts (``config.engine_threads``): a server process
    does (``run``), an app embedded in another program or a test does not.
    """
    config = config or ServingConfig()
    registry = EngineRegistry(home, loaders, engine_concurrency=config.engine_concurrency,
                              engine_threads=config.engine_threads if threads else 0,
                              engine_queue_seconds=config.engine_queue_ms / 1000 if config.engine_queue_ms else None,
                              baseline=config.baseline and loaders is None,
                              baseline_embed=config.baseline_embeddings)
    metrics = Metrics()
    impressions = ImpressionLog(
        lambda name: Shop(name, home).store(create=False), metrics.count, capacity=config.impression_queue,
        batch=config.impression_batch, flush_seconds=config.impression_flush_ms / 1000,
        retention_days=config.impression_retention_days, shops=lambda: [s.name for s in registry.loaded()])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        impressions.start()
        if config.preload:
            threading.Thread(target=registry.load_all, name="shoprank-preload", daemon=True).start()
        else:
            registry.ready.set()
        registry.start_watching(config.watch_seconds, config.sync_seconds)
        try:
            yield
        finally:
            impressions.close()
            registry.close()
            token = getattr(app.state, "local_token", None)
            if token and getattr(app.state, "local_owner", False):
                # here, not after server.run(): uvicorn re-raises SIGTERM once the shutdown is done
                from shoprank import local

                local.withdraw(home, token)

    app = FastAPI(title="shoprank", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # /docs below serves Swagger UI from packaged files
    app.state.registry = registry
    app.state.metrics = metrics
    app.state.impressions = impressions
    app.state.config = config
    app.state.keys = keys or KeyStore(home)
    app.state.open_access = open_access
    install_error_handlers(app)
    app.include_router(admin_routes.router)
    app.include_router(read_routes.router)
    app.include_router(write_routes.router)
    app.include_router(rules_routes.router)
    app.include_router(settings_routes.router)
    app.include_router(answer_routes.router)
    app.include_router(sentiment_routes.router)
    app.include_router(analytics_routes.router)
    app.include_router(experiment_routes.router)
    app.include_router(suggest_routes.router)
    app.include_router(synonym_routes.router)

    @app.get("/", include_in_schema=False)
    def storefront() -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _offline_docs(app)
    app.add_middleware(ServingMiddleware, config=config, metrics=metrics)
    return app


def _offline_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the files of the ``swagger-ui-bundle`` package (no CDN, works offline)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.responses import HTMLResponse

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # the page still says where the schema is
        assets = None
    else:
        assets = Path(str(swagger_ui_path))
        app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        if assets is None:
            return HTMLResponse("<!doctype html><title>shoprank API</title><p>The interactive documentation needs "
                                "the <code>swagger-ui-bundle</code> package (pip install swagger-ui-bundle). The "
                                "schema is at <a href=\"/openapi.json\">/openapi.json</a>; docs/api.md describes it.")
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="shoprank API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def build_server(
    home: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_access: bool = False,
    *,
    config: ServingConfig | None = None,
    access_log: bool = False,
    log_level: str = "info",
) -> tuple[Any, FastAPI]:
    """A uvicorn server for ``home`` (not yet running) and its app."""
    import importlib.util

    import uvicorn

    from shoprank.serving.protocol import http_protocol

    app = create_app(home, open_access=open_access, config=config, threads=True)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fast_loop = importlib.util.find_spec("uvloop") is not None
    fast_http = importlib.util.find_spec("httptools") is not None
    server = uvicorn.Server(uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=access_log,
        loop="uvloop" if fast_loop else "asyncio", http=http_protocol(fast_http),
        timeout_graceful_shutdown=10,
    ))
    return server, app


WORKER_SPEC = "SHOPRANK_SERVE_WORKER"
"""The environment variable that tells a worker process of ``shoprank serve --workers N`` what to serve."""


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn calls this factory in each process it starts)."""
    spec = json.loads(os.environ[WORKER_SPEC])
    logging.basicConfig(level=spec["log_level"].upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(spec["home"], open_access=spec["open_access"], config=ServingConfig(**spec["config"]),
                     threads=True)
    app.state.local_token = spec["local_token"]  # the parent announced it and withdraws it
    return app


def _run_workers(home: str | Path, host: str, port: int, open_access: bool, config: ServingConfig,
                 access_log: bool, log_level: str) -> None:
    """``config.workers`` processes on one listening socket, supervised (and restarted) by uvicorn."""
    import importlib.util

    import uvicorn

    from shoprank import local

    token = local.announce(home, host, port)
    os.environ[WORKER_SPEC] = json.dumps({"home": str(home), "open_access": open_access, "config": asdict(config),
                                          "local_token": token, "log_level": log_level})
    fast_http = importlib.util.find_spec("httptools") is not None
    try:
        uvicorn.run("shoprank.serving.app:worker_app", factory=True, workers=config.workers, host=host, port=port,
                    log_level=log_level, access_log=access_log, timeout_graceful_shutdown=10,
                    loop="uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio",
                    http="shoprank.serving.protocol:" + ("JsonHttpToolsProtocol" if fast_http else "JsonH11Protocol"))
    finally:
        local.withdraw(home, token)


def run(
    home: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_access: bool = False,
    *,
    config: ServingConfig | None = None,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Serve ``home`` with uvicorn until interrupted (``shoprank serve`` calls this)."""
    from shoprank import local

    config = config or ServingConfig()
    if config.workers > 1:
        _run_workers(home, host, port, open_access, config, access_log, log_level)
        return
    server, app = build_server(home, host, port, open_access, config=config, access_log=access_log,
                               log_level=log_level)
    app.state.local_token = local.announce(home, host, port)  # so CLI queries reuse this server's engines
    app.state.local_owner = True
    try:
        server.run()
    finally:
        local.withdraw(home, app.state.local_token)
