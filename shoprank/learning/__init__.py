"""Learning from behaviour: the click log, position-bias propensities, debiased labels, counterfactual estimates."""

from __future__ import annotations

from shoprank.learning.clicklog import OUTCOMES, ClickLog, ServedList, build_click_log, load_click_log
from shoprank.learning.labels import GRADES, BehaviourConfig, behaviour_gains, propensities_for, pseudo_judgments
from shoprank.learning.propensity import Propensities, estimate, fit_pbm_em, harvest
from shoprank.learning.snips import ClickEstimate, estimate_clicks

__all__ = [
    "GRADES", "OUTCOMES", "BehaviourConfig", "ClickEstimate", "ClickLog", "Propensities", "ServedList",
    "behaviour_gains", "build_click_log", "estimate", "estimate_clicks", "fit_pbm_em", "harvest", "load_click_log",
    "propensities_for", "pseudo_judgments",
]
