"""The statistics of experiment reports: intervals, fixed-horizon p-values for reading, and the sequential
tests that decide, which stay valid however often the report is read.

* A/B: the mixture sequential probability ratio test (mSPRT, Johari, Pekelis & Walsh, "Always valid
  inference", 2017) on the difference of two click-through rates, normal approximation with the pooled
  variance; the mixing distribution over the effect is N(0, τ²). The always-valid p-value is the running
  minimum of 1/Λ over every sample point, so peeking at any time keeps the false-positive rate at most α.
* Interleaving: the sign test on per-answer preferences, and its sequential form, a Beta(1, 1) mixture
  over P(A preferred) against 1/2 (also always valid).
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054
TAU = 0.02
"""Default mixing scale of the mSPRT: the size of click-through difference the test is most sensitive to (two
points), fixed, not tuned; ``python -m bench.sequential_test`` measures its false positives and power."""
BURN_IN = 300
"""Answers each arm needs before the sequential test is read (the normal approximation needs some)."""


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference(xa: int, na: int, xb: int, nb: int, z: float = Z95) -> tuple[float, float, float, float]:
    """B - A: (difference, low, high, two-sided fixed-horizon p-value of a z-test). For reading only: a
    fixed-horizon p-value read repeatedly is not valid; :func:`msprt_p` decides."""
    if na == 0 or nb == 0:
        return 0.0, -1.0, 1.0, 1.0
    pa, pb = xa / na, xb / nb
    diff = pb - pa
    se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    pooled = (xa + xb) / (na + nb)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    p = 1.0 if se0 == 0 else math.erfc(abs(diff) / se0 / math.sqrt(2))
    return diff, diff - z * se, diff + z * se, p


def _log_lambda(diff: np.ndarray, var: np.ndarray, tau: float) -> np.ndarray:
    t2 = tau * tau
    return 0.5 * np.log(var / (var + t2)) + diff * diff * t2 / (2 * var * (var + t2))


def msprt_path(arm: np.ndarray, clicked: np.ndarray, tau: float = TAU, burn_in: int = BURN_IN
               ) -> tuple[np.ndarray, np.ndarray]:
    """log Λ of the mSPRT after each answer (``arm`` 0/1 and ``clicked`` 0/1 per answer, in time order), from
    the answer on which both arms hold ``burn_in``: (answer indices, log Λ there)."""
    arm = np.asarray(arm, dtype=np.int8)
    clicked = np.asarray(clicked, dtype=np.float64)
    nb = np.cumsum(arm == 1)
    na = np.arange(1, len(arm) + 1) - nb
    xb = np.cumsum(clicked * (arm == 1))
    xa = np.cumsum(clicked) - xb
    pooled = (xa + xb) / np.maximum(na + nb, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = pooled * (1 - pooled) * (1 / na + 1 / nb)
    ok = np.flatnonzero((na >= burn_in) & (nb >= burn_in) & (var > 0))
    diff = xb[ok] / nb[ok] - xa[ok] / na[ok]
    return ok, _log_lambda(diff, var[ok], tau)


def msprt_p(arm: np.ndarray, clicked: np.ndarray, tau: float = TAU, burn_in: int = BURN_IN) -> float:
    """The always-valid p-value of "CTR of arm 1 equals CTR of arm 0" after every answer so far:
    p = min(1, 1 / max Λ), Λ evaluated after every answer once both arms hold ``burn_in`` answers."""
    _, log_lambda = msprt_path(arm, clicked, tau, burn_in)
    best = float(np.max(log_lambda)) if len(log_lambda) else 0.0
    return float(min(1.0, math.exp(-best))) if best > 0 else 1.0


def sample_needed(xa: int, na: int, xb: int, nb: int, alpha: float, tau: float = TAU) -> int | None:
    """Answers per arm still needed for the mSPRT to decide at ``alpha`` if the observed difference and rates
    held; 0 when it would decide now, None when there is no difference to detect yet."""
    if na == 0 or nb == 0:
        return None
    diff = xb / nb - xa / na
    pooled = (xa + xb) / (na + nb)
    if diff == 0 or pooled in (0.0, 1.0):
        return None
    s2 = 2 * pooled * (1 - pooled)
    target = math.log(1 / alpha)

    def decides(n: float) -> bool:
        var = np.array([s2 / n])
        return float(_log_lambda(np.array([diff]), var, tau)[0]) >= target

    low, high = 1.0, 1.0
    while not decides(high):
        high *= 2
        if high > 1e12:
            return None
    while high - low > 1:
        mid = (low + high) / 2
        low, high = (low, mid) if decides(mid) else (mid, high)
    return max(0, math.ceil(high) - min(na, nb), BURN_IN - min(na, nb))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test p-value of ``wins`` against ``losses`` (ties left out)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2 * tail)


def sign_path(outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log Λ of the sequential sign test (Beta(1, 1) mixture over P(A preferred) against 1/2) after each decided
    comparison of ``outcomes`` (+1 A, -1 B, 0 tie): (indices into ``outcomes``, log Λ there)."""
    from scipy.special import betaln

    outcomes = np.asarray(outcomes)
    where = np.flatnonzero(outcomes != 0)
    decided = outcomes[where]
    wins = np.cumsum(decided > 0)
    n = np.arange(1, len(decided) + 1)
    return where, betaln(wins + 1, n - wins + 1) + n * math.log(2)


def sequential_sign_p(outcomes: np.ndarray) -> float:
    """Always-valid p-value of P(A preferred) = 1/2 from a sequence of preferences (+1 A, -1 B, 0 tie)."""
    _, log_lambda = sign_path(outcomes)
    best = float(np.max(log_lambda)) if len(log_lambda) else 0.0
    return float(min(1.0, math.exp(-best))) if best > 0 else 1.0
