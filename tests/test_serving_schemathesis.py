"""Scenario 6 of the reliability list: schemathesis fuzzes every endpoint against the app's own OpenAPI schema.

In-process (ASGI), with an admin key, over a tiny shop with fake engines; a few examples per operation so the
whole file runs in about a minute (``SHOPRANK_FUZZ_EXAMPLES=500`` for a long hunt). The only check is the one
that matters here: never a 5xx.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from shoprank.keys import KeyStore
from shoprank.serving import ServingConfig, create_app
from tests.support.fakes import FAKE_LOADERS, tiny_shop

EXAMPLES = int(os.environ.get("SHOPRANK_FUZZ_EXAMPLES", "15"))
"""Examples per operation and test; raise it for a longer hunt."""


def _app() -> tuple[Any, str, Path]:
    """Built at import: schemathesis reads the schema when the module is collected."""
    home = Path(tempfile.mkdtemp(prefix="shoprank-schemathesis-"))
    tiny_shop(home, "tiny")
    key, _ = KeyStore(home).create("admin")
    app = create_app(home, config=ServingConfig(watch_seconds=0), loaders=FAKE_LOADERS)
    return app, key, home


APP, KEY, HOME = _app()
atexit.register(shutil.rmtree, HOME, True)  # also when the module is collected but its tests deselected
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def loaded() -> Iterator[None]:
    APP.state.registry.load_all()
    yield
    APP.state.registry.close()


def call(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=[not_a_server_error])


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_endpoint_answers_5xx(case: Any) -> None:
    call(case)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_endpoint_of_a_real_shop_answers_5xx(case: Any) -> None:
    if "shop" in (case.path_parameters or {}):
        case.path_parameters["shop"] = "tiny"  # a shop that exists, so the calls reach past its 404
    call(case)
