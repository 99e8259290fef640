"""Keep learning from the shop's traffic: retrain, compare on the most recent held-out traffic, publish if not worse."""

from shoprank.retrain.loop import RetrainConfig, Verdict, parse_duration, retrain_once, watch

__all__ = ["RetrainConfig", "Verdict", "parse_duration", "retrain_once", "watch"]
