"""Counterfactual click-through of a new ranking, estimated from the lists another ranking served.

Under the position-based model a product clicked at logged position k would be clicked at position k' of
the new ranking with ``theta[k'] / theta[k]`` times the probability. With ``w`` that ratio for every logged
(list, product) pair (0 when the new ranking puts the product below ``cutoff``) and ``c`` its click:

* IPS    = sum(w * c) / lists
* SNIPS  = sum(w * c) / sum(w) * pairs / lists  (self-normalised: equals the logged figure for the logged
  ranking, and is bounded by the best reordering of what was shown)

both in clicks per served list. Products the new ranking shows that the log never showed carry no
evidence; ``coverage`` is the share of the new top-``cutoff`` places the log can speak for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from shoprank.learning.clicklog import ClickLog
from shoprank.learning.propensity import Propensities


@dataclass(frozen=True)
class ClickEstimate:
    lists: int
    logged: float  # clicks per served list as logged
    ips: float
    snips: float
    coverage: float

    def to_dict(self) -> dict[str, float]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def estimate_clicks(log: ClickLog, rankings: Mapping[str, Sequence[str]], propensities: Propensities,
                    cutoff: int = 20) -> ClickEstimate:
    """``rankings``: the new ranking of each list's query (by normalised query), best first."""
    wc = w_sum = pairs = clicks = 0.0
    covered = places = 0
    lists = 0
    for served in log.lists:
        ranking = rankings.get(served.query)
        if ranking is None:
            continue
        lists += 1
        new_pos = {pid: i for i, pid in enumerate(ranking[:cutoff])}
        logged = set(served.items)
        places += min(cutoff, len(ranking))
        covered += sum(1 for pid in ranking[:cutoff] if pid in logged)
        old_theta = propensities.at(list(served.positions)) if served.positions else np.zeros(0)
        for pid, c, t_old in zip(served.items, served.clicked, old_theta, strict=True):
            k = new_pos.get(pid)
            w = float(propensities.at(k)) / float(t_old) if k is not None else 0.0
            wc += w * c
            w_sum += w
            pairs += 1
            clicks += c
    if lists == 0:
        return ClickEstimate(0, float("nan"), float("nan"), float("nan"), float("nan"))
    snips = wc / w_sum * pairs / lists if w_sum > 0 else 0.0
    return ClickEstimate(lists, clicks / lists, wc / lists, snips, covered / places if places else 0.0)
