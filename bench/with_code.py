"""Run a bench module against another version of the shoprank package (the "before" of a before/after).

    git archive main shoprank | tar -x -C /tmp/before
    python -m bench.with_code /tmp/before bench.index_memory --home H --shop S

A bench module puts its own checkout first on ``sys.path``, so neither PYTHONPATH nor the working directory
decides which shoprank it imports. This imports the package from the given folder first (every later
``shoprank.*`` import then resolves inside it), says where it came from, and runs the module as ``python -m``
would, with the remaining arguments.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        raise SystemExit("usage: python -m bench.with_code FOLDER_HOLDING_shoprank MODULE [ARGS...]")
    folder = Path(args[0]).resolve()
    if not (folder / "shoprank" / "__init__.py").is_file():
        raise SystemExit(f"{folder} holds no shoprank package (git archive REV shoprank | tar -x -C {folder})")
    for name in [m for m in sys.modules if m == "shoprank" or m.startswith("shoprank.")]:
        del sys.modules[name]
    sys.path.insert(0, str(folder))
    import shoprank

    if Path(shoprank.__file__).resolve().parent != folder / "shoprank":
        raise SystemExit(f"shoprank came from {shoprank.__file__}, not {folder}")
    print(f"shoprank from {folder / 'shoprank'}", flush=True)
    sys.argv = args[1:]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
