"""Stage 2 of "recommended for you": LambdaMART over the union of the candidate sources.

The standard two-stage recipe. The sequence model and the item tables learn from each user's log without its
last two events; the ranker learns which candidate is the next one from the second-to-last event (the
validation target), with the history before it, on users split in two (one part fits the trees, the other
stops them early); the last event stays for the test. A history the ranker never learnt for (none at all)
gets the trending source's list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from shoprank.cascade.base import Candidates
from shoprank.recommend import features as feats
from shoprank.recommend.sources import Histories, Source

DEPTHS = {"sequence": 150, "covisit": 60, "item2item": 40, "text": 30, "cold": 20, "trending": 20}
"""Candidates each source adds to the union (a few hundred in all)."""


@dataclass
class StageConfig:
    """How deep each source reaches and how the ranker is fitted. Depths were checked on validation recall."""

    depths: dict[str, int] = field(default_factory=lambda: dict(DEPTHS))
    max_users: int = 30_000  # validation users the ranker learns from (sampled; all when fewer)
    stop_share: float = 0.2  # of them, the share kept aside to stop the trees early (and choose the cold slot)
    short_share: float = 0.15  # users also given again with only their latest 1 and 2 events (short histories)
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.depths) - set(DEPTHS)
        if unknown or any(k < 1 for k in self.depths.values()):
            raise ValueError(f"depths must map sources among {', '.join(DEPTHS)} to at least 1, got {self.depths}")
        if not 0 < self.stop_share < 1 or not 0 <= self.short_share <= 1:
            raise ValueError("stop_share must lie in (0, 1) and short_share in [0, 1]")
        if self.max_users < 2 or self.batch_size < 1:
            raise ValueError("max_users must be at least 2 and batch_size at least 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Ranked:
    """The stage's answer for a batch: ids (b, C) best first (-1 padded), the ranker's scores, and each
    source's score of every listed item (name -> (b, C), NaN where it has none)."""

    ids: np.ndarray
    scores: np.ndarray
    parts: dict[str, np.ndarray]

    def candidates(self, k: int) -> Candidates:
        return Candidates(self.ids[:, :k].copy(), self.scores[:, :k].copy())


class RankingStage:
    """Sources -> candidate union -> features -> ranker. ``ranker`` None ranks by the sequence score."""

    def __init__(self, sources: Sequence[Source], items: feats.ItemTable, ranker: Any = None,
                 config: StageConfig | None = None) -> None:
        self.sources = list(sources)
        self.items = items
        self.ranker = ranker
        self.config = config or StageConfig()
        self.names = [s.name for s in self.sources]
        if "trending" not in self.names:
            raise ValueError("the ranking stage needs a 'trending' source for users with no history")

    @property
    def feature_names(self) -> list[str]:
        return feats.feature_names(self.names)

    def candidates(self, histories: Histories) -> tuple[np.ndarray, np.ndarray]:
        """The candidate union (b, C; -1 padded) and its feature tensor (b, C, F)."""
        dense = {s.name: s.score(histories) for s in self.sources}
        tops = {s.name: s.top(dense[s.name], self.config.depths.get(s.name, DEPTHS[s.name])).ids
                for s in self.sources}
        cands = feats.union(list(tops.values()))
        for source in self.sources:
            source.refine(histories, dense[source.name], cands)
        ranks = feats.source_ranks(cands, tops, len(self.items.counts))
        return cands, feats.build(histories, cands, dense, ranks, self.items)

    def rank(self, histories: Histories) -> Ranked:
        """Every candidate of each history, ranked (empty histories: the trending list)."""
        cands, x = self.candidates(histories)
        b, c, f = x.shape
        valid = cands >= 0
        scores = np.full((b, c), -np.inf, dtype=np.float32)
        if self.ranker is not None and valid.any():
            scores[valid] = self.ranker.predict(x[valid])
        else:
            scores[valid] = np.nan_to_num(x[..., self.names.index("sequence") * 2][valid], nan=-1e9)
        empty = histories.lengths() == 0
        if empty.any():  # no history: the trending list, in its own order
            col = self.names.index("trending") * 2
            scores[empty] = np.where(valid[empty], np.nan_to_num(x[empty][..., col], nan=-1e9), -np.inf)
        seq = np.nan_to_num(x[..., self.names.index("sequence") * 2], nan=-1e9, neginf=-1e9)
        order = np.lexsort((-seq, -scores), axis=1)  # ties of the ranker: the sequence model decides
        ids = np.take_along_axis(cands, order, axis=1)
        scores = np.take_along_axis(scores, order, axis=1)
        ids = np.where(np.isfinite(scores), ids, -1)
        scores = strictly_falling(scores)  # any reader sorting them gets this order
        parts = {name: np.take_along_axis(x[..., 2 * j], order, axis=1) for j, name in enumerate(self.names)}
        return Ranked(ids, scores, parts)

    def rank_batches(self, histories: Histories, depth: int) -> Candidates:
        """:meth:`rank` over many histories in batches, the best ``depth`` of each: (ids, scores)."""
        ids = np.full((len(histories), depth), -1, dtype=np.int64)
        scores = np.full((len(histories), depth), -np.inf, dtype=np.float32)
        step = self.config.batch_size
        for start in range(0, len(histories), step):
            got = self.rank(histories.slice(start, start + step)).candidates(depth)
            w = got.ids.shape[1]
            ids[start:start + len(got.ids), :w] = got.ids
            scores[start:start + len(got.ids), :w] = got.scores
        return Candidates(ids, scores)


def strictly_falling(scores: np.ndarray) -> np.ndarray:
    """float32 rows made strictly falling with the least change, as this loop over the columns would make them:
    ``s[:, j] = minimum(s[:, j], nextafter(s[:, j - 1], -inf))``. On the floats' order-preserving integer keys the
    next float down is one key less, so the loop is a running minimum of ``key + j`` (minus ``j``): one pass."""
    s = np.asarray(scores, dtype=np.float32)
    if s.ndim != 2 or s.shape[1] < 2 or np.isnan(s).any():  # NaN: the loop's own propagation
        out = s.copy()
        for j in range(1, out.shape[-1]):
            out[..., j] = np.minimum(out[..., j], np.nextafter(out[..., j - 1], np.float32(-np.inf)))
        return out
    bits = s.view(np.int32).astype(np.int64)
    key = np.where(bits >= 0, bits, -(bits & 0x7FFFFFFF))  # -0.0 and +0.0 share a key, as nextafter treats them
    col = np.arange(s.shape[1], dtype=np.int64)
    low = -0x7F800000  # the key of -inf: the loop never goes below it
    got = np.maximum(np.minimum.accumulate(key + col, axis=1) - col, low)
    moved = np.where(got >= 0, got, (-got) | 0x80000000).astype(np.uint32).view(np.float32)
    return np.where(got == key, s, moved)


def _sample(n: int, config: StageConfig) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(config.seed)
    rows = rng.permutation(n)[:config.max_users]
    cut = max(1, int(round(len(rows) * config.stop_share)))
    return np.sort(rows[cut:]), np.sort(rows[:cut])


def _examples(stage: RankingStage, histories: Histories, targets: np.ndarray, progress: bool,
              ) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray]:
    """Feature rows, labels and group sizes of the users whose target is among their candidates; and for every
    user whether it was (the union's recall)."""
    from tqdm import tqdm

    xs, ys, groups = [], [], []
    hit = np.zeros(len(targets), dtype=bool)
    step = stage.config.batch_size
    for start in tqdm(range(0, len(targets), step), desc="ranker features", disable=not progress, leave=False):
        h = histories.slice(start, start + step)
        cands, x = stage.candidates(h)
        t = targets[start:start + len(h)]
        for r in range(len(h)):
            keep = cands[r] >= 0
            label = (cands[r][keep] == t[r]).astype(np.float32)
            if label.any():
                hit[start + r] = True
                xs.append(x[r][keep])
                ys.append(label)
                groups.append(int(keep.sum()))
    if not xs:
        f = len(stage.feature_names)
        return np.zeros((0, f), np.float32), np.zeros(0, np.float32), [], hit
    return np.concatenate(xs), np.concatenate(ys), groups, hit


def _with_short(histories: Histories, targets: np.ndarray, share: float, seed: int) -> tuple[Histories, np.ndarray]:
    """``histories`` plus a ``share`` of them again cut to their latest 1 and latest 2 events."""
    rng = np.random.default_rng(seed + 1)
    picked = np.flatnonzero(rng.random(len(targets)) < share)
    items, types, tg = list(histories.items), list(histories.types), list(targets)
    for keep in (1, 2):
        for i in picked:
            if len(histories.items[i]) > keep:
                items.append(histories.items[i][-keep:])
                types.append(histories.types[i][-keep:])
                tg.append(targets[i])
    return Histories(items, types), np.asarray(tg, dtype=np.int64)


def fit_stage(stage: RankingStage, histories: Histories, targets: np.ndarray, *, progress: bool = True,
              fusion: Any = None) -> tuple[dict[str, Any], np.ndarray]:
    """Fit ``stage``'s LambdaMART on validation ``targets`` with ``histories`` that exclude them; returns a
    summary (users, the union's recall...) and the rows of the users kept aside to stop it early.
    ``fusion``: a FusionConfig."""
    from shoprank.ranking.fusion import FusionConfig, FusionRanker

    cfg = stage.config
    fit_rows, stop_rows = _sample(len(targets), cfg)

    def part(rows: np.ndarray) -> tuple[Histories, np.ndarray]:
        return Histories([histories.items[i] for i in rows], [histories.types[i] for i in rows]), targets[rows]

    fit_h, fit_t = _with_short(*part(fit_rows), cfg.short_share, cfg.seed)
    stop_h, stop_t = part(stop_rows)
    x, y, g, fit_hit = _examples(stage, fit_h, fit_t, progress)
    vx, vy, vg, stop_hit = _examples(stage, stop_h, stop_t, progress)
    if not g or not vg:
        raise ValueError("no validation target is among its user's candidates: too little data to fit a ranker")
    ranker = FusionRanker(stage.feature_names, fusion or FusionConfig(threads=1, n_estimators=300,
                                                                       min_data_in_leaf=50))
    ranker.fit(x, y, g, valid=(vx, vy, vg))
    stage.ranker = ranker
    summary = {"fit_users": len(fit_rows), "fit_groups": len(g), "stop_users": len(stop_rows),
               "fit_rows": int(len(x)), "union_recall_valid": float(stop_hit.mean()),
               "mean_candidates": float(np.mean(vg)), "best_iteration": ranker.best_iteration,
               "importance": dict(list(ranker.importance().items())[:12])}
    return summary, stop_rows


COLD_SLOT_THRESHOLDS = (None, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7)  # None: no cold slot
SLOT_TOLERANCE = 0.01  # thresholds within 1% of the best validation NDCG@10 count as equal: cold HR@10 decides


def choose_cold_slot(rec: Any, histories: Histories, targets: np.ndarray, counts: np.ndarray,
                     ) -> tuple[float | None, dict[str, dict[str, float]]]:
    """The cold-slot threshold, on validation users the ranker did not learn from, scored through the served
    path (``rec.score_batch`` then the slot as :meth:`Recommender.recommend` places it): the best NDCG@10 wins;
    among thresholds within ``SLOT_TOLERANCE`` of it, the best HR@10 on cold targets (<= 2 training
    occurrences). Returns the threshold and every threshold's validation figures."""
    from shoprank.evaluation.metrics import loo_metrics, rank_of_target
    from shoprank.recommend.evaluate import K, mask_seen, place_last

    ranks = np.zeros((len(COLD_SLOT_THRESHOLDS), len(targets)))
    step = 1024
    for start in range(0, len(targets), step):
        h = histories.items[start:start + step]
        t = histories.types[start:start + step]
        tg = targets[start:start + len(h)]
        s = mask_seen(rec.score_batch(h, t), h)
        base = rank_of_target(s, tg, ties="average")
        items, sims = rec.cold_slot(h)
        item_ranks = np.where(items > 0, rank_of_target(s, items, ties="average"), 0.0)
        for q, th in enumerate(COLD_SLOT_THRESHOLDS):
            on = sims >= th if th is not None else np.zeros(len(h), dtype=bool)
            ranks[q, start:start + len(h)] = place_last(base, np.where(on, item_ranks, 0.0), items == tg, K)
    cold = counts[targets] <= 2
    found = {}
    for q, th in enumerate(COLD_SLOT_THRESHOLDS):
        m = loo_metrics(ranks[q], K)
        found[str(th)] = {"ndcg@10": m[f"ndcg@{K}"], "hr@10": m[f"hr@{K}"], "mrr": m["mrr"],
                          "cold_hr@10": loo_metrics(ranks[q][cold], K)[f"hr@{K}"] if cold.any() else 0.0}
    top = max(v["ndcg@10"] for v in found.values())
    best = max((k for k, v in found.items() if v["ndcg@10"] >= (1 - SLOT_TOLERANCE) * top),
               key=lambda k: (found[k]["cold_hr@10"], found[k]["ndcg@10"]))
    return (None if best == "None" else float(best)), found


def fit_ranking(art: Any, valid_histories: Any, valid_targets: np.ndarray, counts: np.ndarray, *,
                config: StageConfig | None = None, progress: bool = True) -> dict[str, Any]:
    """Fit the ranking stage of ``art`` (RecArtifacts, its model and tables already built) on the validation view
    and choose its cold-slot threshold on the users the ranker kept aside; records both in ``art``. Returns the
    summary (also in ``art.params["ranker"]``)."""
    import time

    from shoprank.recommend.service import Recommender

    started = time.perf_counter()
    config = config or StageConfig()
    art.ranker = None
    art.params["ranking_stage"] = config.to_dict()
    art.params["cold_slot_threshold"] = None
    rec = Recommender(art)
    hist = Histories(list(valid_histories.items), list(valid_histories.types))
    summary, stop_rows = fit_stage(rec.stage, hist, valid_targets, progress=progress)
    art.ranker = rec.stage.ranker
    stop = Histories([hist.items[i] for i in stop_rows], [hist.types[i] for i in stop_rows])
    threshold, slots = choose_cold_slot(rec, stop, valid_targets[stop_rows], counts)
    art.params["cold_slot_threshold"] = threshold
    summary.update(cold_slot_threshold=threshold, cold_slot_valid=slots,
                   valid_ndcg_at_10=slots[str(threshold)]["ndcg@10"], seconds=time.perf_counter() - started)
    art.params["ranker"] = summary
    return summary
