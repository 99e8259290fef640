"""Experiment runners that sit above the pipelines: they load published bundles, ask the served cascade and
measure with :mod:`shoprank.evaluation` (sweeps of a knob on validation data, the choice of a default)."""
