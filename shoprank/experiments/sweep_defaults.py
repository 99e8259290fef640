"""Defaults of the diversity sweep, importable without numpy (``shoprank --help`` stays instant)."""

DEFAULT_LAMBDAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)
DEFAULT_SAMPLE = {"recommend": 2000, "search": 500}  # users / judged queries measured (0 = all)
