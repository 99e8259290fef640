"""Position-bias propensities estimated from the click log itself.

Under the position-based model a shopper clicks a product at position k with probability
``P(examined at k) * P(relevant)``: ``theta[k] * gamma[q, d]``. Two estimators of ``theta``:

* :func:`fit_pbm_em`: the EM algorithm of Wang et al. (WSDM 2018) with one relevance per (query, product).
  ``theta`` is identifiable when products appear at several positions for one query: the small
  randomisation of served results (:mod:`shoprank.learning.randomise`) or several model versions.
* :func:`harvest`: intervention harvesting (Agarwal et al., WSDM 2019): a (query, product) shown at position
  k by one list and at k' by another gives the ratio ``theta[k] / theta[k']`` from click-through rates; the
  ratios of every pair of positions are solved for ``log theta`` by weighted least squares.

Both return :class:`Propensities` relative to the first position (``theta[0] == 1``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.learning.clicklog import ClickLog

METHODS = ("em", "harvest", "none")


@dataclass
class Propensities:
    """``theta[k]``: examination probability at position k relative to position 0 (positions past the end
    take the last value). ``floor`` bounds inverse-propensity weights at ``1 / floor``."""

    theta: np.ndarray
    method: str = "none"
    floor: float = 0.05
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.theta = np.asarray(self.theta, np.float64)
        if self.theta.ndim != 1 or not len(self.theta):
            raise ValueError("propensities need at least one position")
        if not 0 < self.floor <= 1:
            raise ValueError(f"floor must lie in (0, 1], got {self.floor}")

    @classmethod
    def uniform(cls, positions: int = 1) -> Propensities:
        """No correction: every position examined alike (naive click training)."""
        return cls(np.ones(positions), "none")

    def at(self, positions: np.ndarray | list[int] | int) -> np.ndarray:
        idx = np.minimum(np.asarray(positions, np.int64), len(self.theta) - 1)
        return np.maximum(self.theta[idx], self.floor)

    def weight(self, positions: np.ndarray | list[int] | int) -> np.ndarray:
        """Inverse-propensity weights, at most ``1 / floor``."""
        return 1.0 / self.at(positions)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "floor": self.floor, "theta": [round(float(t), 5) for t in self.theta],
                "info": self.info}

    def save(self, folder: Path) -> None:
        (folder / "propensities.json").write_text(json.dumps({"format": 1, **self.to_dict()}))

    @classmethod
    def load(cls, folder: Path) -> Propensities:
        raw = json.loads((folder / "propensities.json").read_text())
        return cls(np.asarray(raw["theta"]), raw["method"], raw["floor"], raw.get("info", {}))


def _records(log: ClickLog, max_position: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(position, (query, product) index, clicked) of every shown product of the complete lists."""
    keys: dict[tuple[str, str], int] = {}
    pos, key, click = [], [], []
    for served in log.lists:
        if not served.complete:
            continue
        for pid, p, c in zip(served.items, served.positions, served.clicked, strict=True):
            if p >= max_position:
                continue
            pos.append(p)
            key.append(keys.setdefault((served.query, pid), len(keys)))
            click.append(c)
    return np.asarray(pos, np.int64), np.asarray(key, np.int64), np.asarray(click, np.float64), len(keys)


def fit_pbm_em(log: ClickLog, max_position: int = 20, iterations: int = 1000, tol: float = 1e-6,
               floor: float = 0.05, prior: tuple[float, float] = (0.0, 0.0)) -> Propensities:
    """EM of the position-based model over the log's complete lists (positions below ``max_position``).

    ``prior``: Beta pseudo-counts (relevant, not) of each (query, product) relevance; (0, 0) is maximum
    likelihood, which needs many impressions per pair (with one or two, prefer :func:`harvest`)."""
    pos, key, click, n_keys = _records(log, max_position)
    if not len(pos) or click.sum() == 0:
        raise ValueError("the click log has no clicks on listed impressions: propensities cannot be estimated")
    positions = int(pos.max()) + 1
    theta = 1.0 / np.sqrt(1.0 + np.arange(positions))
    gamma = np.full(n_keys, 0.5)
    n_pos = np.bincount(pos, minlength=positions).astype(np.float64)
    n_key = np.bincount(key, minlength=n_keys).astype(np.float64)
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007 - the count is reported
        t, g = theta[pos], gamma[key]
        denom = np.maximum(1.0 - t * g, 1e-12)
        examined = np.where(click > 0, 1.0, t * (1.0 - g) / denom)
        relevant = np.where(click > 0, 1.0, (1.0 - t) * g / denom)
        new_theta = np.bincount(pos, examined, positions) / np.maximum(n_pos, 1.0)
        gamma = (np.bincount(key, relevant, n_keys) + prior[0]) / (n_key + prior[0] + prior[1])
        change = float(np.abs(new_theta - theta).max())
        theta = new_theta
        if change < tol:
            break
    relative = theta / theta[0] if theta[0] > 0 else theta
    return Propensities(np.clip(relative, 0.0, None), "em", floor,
                        {"iterations": done, "shown": int(len(pos)), "clicks": int(click.sum()),
                         "pairs": n_keys, "impressions_per_position": n_pos.astype(int).tolist()})


def decreasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The closest non-increasing sequence in weighted least squares (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, length]
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([np.full(n, v) for v, _, n in blocks])


def harvest(log: ClickLog, max_position: int = 20, floor: float = 0.05, min_pairs: int = 5,
            monotone: bool = True) -> Propensities:
    """Intervention harvesting: the same (query, product) at different positions in different lists.

    ``monotone``: examination never rises further down the list, so the estimate is smoothed to the closest
    non-increasing one (weighted by the clicks seen at each position; the raw one is in ``info``)."""
    pos, key, click, n_keys = _records(log, max_position)
    if not len(pos):
        raise ValueError("the click log has no listed impressions: propensities cannot be estimated")
    positions = int(pos.max()) + 1
    shown = np.zeros((n_keys, positions))
    clicks = np.zeros((n_keys, positions))
    np.add.at(shown, (key, pos), 1.0)
    np.add.at(clicks, (key, pos), click)
    at = shown > 0
    multi = at.sum(axis=1) >= 2
    shown, clicks, at = shown[multi], clicks[multi], at[multi]
    rate = np.divide(clicks, shown, out=np.zeros_like(clicks), where=at)
    rows, weights, targets = [], [], []
    for k in range(positions):
        for j in range(k + 1, positions):
            both = at[:, k] & at[:, j]
            n = int(both.sum())
            if n < min_pairs:
                continue
            ck, cj = rate[both, k].sum(), rate[both, j].sum()
            if ck <= 0 or cj <= 0:
                continue
            row = np.zeros(positions)
            row[k], row[j] = 1.0, -1.0
            rows.append(row)
            targets.append(np.log(ck / cj))
            weights.append(np.sqrt(n))
    if not rows:
        raise ValueError("no (query, product) was shown at two positions with clicks at both: nothing to harvest; "
                         "serve with a little randomisation or compare model versions that served the same queries")
    a = np.asarray(rows) * np.asarray(weights)[:, None]
    b = np.asarray(targets) * np.asarray(weights)
    anchor = np.zeros(positions)
    anchor[0] = 1e3  # log theta[0] = 0
    solution, *_ = np.linalg.lstsq(np.vstack([a, anchor]), np.append(b, 0.0), rcond=None)
    connected = np.zeros(positions, bool)  # positions reachable from position 0 through harvested pairs
    connected[0] = True
    pairs = [tuple(np.flatnonzero(row)) for row in rows]
    grew = True
    while grew:
        grew = False
        for k, j in pairs:
            if connected[k] != connected[j]:
                connected[k] = connected[j] = True
                grew = True
    theta = np.exp(solution)  # solution: log theta, with log theta[0] = 0
    theta[0] = 1.0
    for k in range(1, positions):  # a position no pair reaches takes the one above it
        if not connected[k]:
            theta[k] = theta[k - 1]
    support = np.bincount(pos, click, positions) + 1.0  # clicks seen at each position
    raw = theta.copy()
    if monotone:
        theta = decreasing(theta, support)
        theta = theta / theta[0]
    return Propensities(np.clip(theta, 0.0, None), "harvest", floor,
                        {"pairs": len(rows), "products_at_two_positions": int(multi.sum()),
                         "unsmoothed": [round(float(t), 4) for t in raw]})


def estimate(log: ClickLog, method: str = "em", max_position: int = 20, floor: float = 0.05) -> Propensities:
    """Propensities by ``method`` (``em``, ``harvest`` or ``none``)."""
    if method == "em":
        return fit_pbm_em(log, max_position, floor=floor)
    if method == "harvest":
        return harvest(log, max_position, floor=floor)
    if method == "none":
        return Propensities(np.ones(max_position), "none", floor)
    raise ValueError(f"unknown propensity method {method!r}; valid: {', '.join(METHODS)}")
