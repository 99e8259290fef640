"""``python -m tests.support.serve ARGS``: ``shoprank serve ARGS`` that also serves the fake engines' bundles.

For the tests and benches that start a real server process on a tiny shop (:func:`tests.support.fakes.tiny_shop`).
A bundle a real trainer publishes meanwhile is loaded by the production loader, as ``shoprank serve`` would.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The checkout: ``tests`` is importable from here."""


def command(*args: str) -> list[str]:
    """The argv of a server process: ``command("--home", H, "--port", P)``."""
    return [sys.executable, "-m", "tests.support.serve", *args]


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the checkout on ``PYTHONPATH``, whatever the cwd."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def main(argv: Sequence[str] | None = None) -> int:
    from shoprank.cli.main import main as cli
    from shoprank.serving import registry
    from tests.support.fakes import fake_or_real_loaders

    registry.DEFAULT_LOADERS.update(fake_or_real_loaders())
    return cli(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
