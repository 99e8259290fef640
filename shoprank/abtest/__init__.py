"""Online experiments: A/B tests with a sequential test that stays valid under peeking, and team-draft
interleaving; definitions kept in the shop's store, reports read from the impression log."""

from __future__ import annotations

from shoprank.abtest.book import (
    ExperimentConflict,
    load_experiments,
    running_on,
    start_experiment,
    stop_experiment,
)
from shoprank.abtest.config import Experiment, ExperimentError, Variant, parse_experiment
from shoprank.abtest.report import experiment_report

__all__ = ["Experiment", "ExperimentConflict", "ExperimentError", "Variant", "experiment_report",
           "load_experiments", "parse_experiment", "running_on", "start_experiment", "stop_experiment"]
