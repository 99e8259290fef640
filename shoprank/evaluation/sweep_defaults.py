"""Defaults of the diversity sweep, importable without numpy (``shoprank --help`` stays instant)."""

DEFAULT_LAMBDAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)
DEFAULT_SAMPLE = {"recommend": 5000, "search": 1000}  # test users / held-out queries (0 = all)
