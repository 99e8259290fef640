"""The leave-one-out full-ranking harness: every model and peer on one split, one table.

Protocol (../shared/datasets/README.md): train on each user's sequence without its last two
items; validate on the second-to-last, test on the last; rank ALL items, excluding those
already in the user's history; NDCG@10, HR@10, MRR. Also: the same restricted to cold test
items (at most ``cold_max`` occurrences in training), catalogue coverage@10 and intra-list
diversity@10 (1 - mean pairwise cosine of the items' text vectors).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from shoprank.cascade.base import top_k_rows
from shoprank.evaluation.metrics import catalog_coverage, intra_list_diversity, loo_metrics, rank_of_target
from shoprank.recommend.interactions import Sequences

K = 10


@dataclass
class LooViews:
    """The leave-one-out split (:class:`shoprank.data.splits.LooSplit`, the one protocol) as index sequences and
    target arrays, event types aligned. Users with fewer than 3 events are trained on, never tested."""

    n_items: int
    train: Sequences  # what models learn from: evaluated users without their last two events, others whole
    valid_histories: Sequences
    valid_targets: np.ndarray
    test_histories: Sequences  # evaluated users without their last event
    test_targets: np.ndarray
    train_counts: np.ndarray = field(init=False)  # occurrences of each item in ``train``

    def __post_init__(self) -> None:
        flat = np.concatenate(self.train.items) if len(self.train) else np.zeros(0, dtype=np.int64)
        self.train_counts = np.bincount(flat, minlength=self.n_items + 1)


def leave_one_out(seqs: Sequences, n_items: int) -> LooViews:
    """The shared protocol (``shoprank.data.splits.leave_one_out``) applied to index sequences, types kept aligned."""
    from shoprank.data.splits import leave_one_out as shared_loo

    # split positions 0..n-1 of every sequence, then take items and types at those positions
    loo = shared_loo({row: range(len(s)) for row, s in enumerate(seqs.items)})
    tested = list(loo.test)

    def view(rows: list[int], positions: dict[int, list[int]]) -> Sequences:
        return Sequences([seqs.users[r] for r in rows], [seqs.items[r][list(positions[r])] for r in rows],
                         [seqs.types[r][list(positions[r])] for r in rows])

    untested = [r for r in loo.train if r not in loo.test]
    return LooViews(
        n_items=n_items,
        train=view(tested + untested, {r: list(loo.train[r]) for r in loo.train}),
        valid_histories=view(tested, {r: list(loo.valid_history[r]) for r in tested}),
        valid_targets=np.array([seqs.items[r][loo.valid[r]] for r in tested], dtype=np.int64),
        test_histories=view(tested, {r: list(loo.test_history[r]) for r in tested}),
        test_targets=np.array([seqs.items[r][loo.test[r]] for r in tested], dtype=np.int64),
    )


def mask_seen(scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """Set the score of padding (column 0) and of every item in each history to -inf, in place."""
    scores[:, 0] = -np.inf
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    if len(rows):
        scores[rows, np.concatenate(histories)] = -np.inf
    return scores


def validation_ndcg(scores: np.ndarray, histories: Sequences, targets: np.ndarray) -> float:
    """NDCG@10 of full-catalogue ``scores`` with seen items masked (the early-stopping metric)."""
    ranks = rank_of_target(mask_seen(scores, histories.items), targets, ties="average")
    return loo_metrics(ranks, K)[f"ndcg@{K}"]


@dataclass
class ModelResult:
    name: str
    ranks: np.ndarray  # test rank of each user's target
    top: np.ndarray  # (n_users, K) item indices recommended, 0 where fewer than K could be
    seconds: float
    note: str = ""


def place_last(ranks: np.ndarray, item_ranks: np.ndarray, is_target: np.ndarray, k: int = K) -> np.ndarray:
    """The targets' ranks once an item outside the top ``k`` (its rank ``item_ranks``; 0 where there is none)
    is moved to place ``k``: the target itself lands there, a target at ``k`` or below it but above the moved
    item goes down one place, the rest stay."""
    moved = item_ranks > k
    shifted = np.where(ranks < k, ranks, np.where(ranks < item_ranks, ranks + 1, ranks))
    return np.where(moved, np.where(is_target, float(k), shifted), ranks)


def run_scorer(score: Callable[[Sequence[np.ndarray], np.ndarray], np.ndarray], histories: Sequences,
               targets: np.ndarray, batch_size: int = 1024,
               last_slot: Callable[[Sequence[np.ndarray]], np.ndarray] | None = None,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of the targets and top-K lists for ``score(histories, rows) -> (b, n_items + 1)``, in batches.

    ``last_slot(histories) -> (b,)`` item indices (0: none): an item that takes place K when it is not
    already in the top K (the recommender's cold slot), applied to the ranks and lists as served."""
    ranks = np.empty(len(targets), dtype=np.float64)
    top = np.empty((len(targets), K), dtype=np.int64)
    for start in range(0, len(targets), batch_size):
        rows = np.arange(start, min(start + batch_size, len(targets)))
        hist = histories.items[start:rows[-1] + 1]
        s = mask_seen(np.array(score(hist, rows), dtype=np.float32), hist)
        ranks[rows] = rank_of_target(s, targets[rows], ties="average")
        best = top_k_rows(s, K)
        top[rows] = np.where(np.isfinite(np.take_along_axis(s, best, axis=1)), best, 0)  # 0: fewer than K left
        if last_slot is not None:
            items = np.asarray(last_slot(hist), dtype=np.int64)
            item_ranks = np.where(items > 0, rank_of_target(s, items, ties="average"), 0.0)
            ranks[rows] = place_last(ranks[rows], item_ranks, items == targets[rows])
            top[rows, K - 1] = np.where(item_ranks > K, items, top[rows, K - 1])
    return ranks, top


def summarise(result: ModelResult, split: LooViews, item_vectors: np.ndarray | None,
              cold_max: int = 2) -> dict[str, float | str | int]:
    """The table row of one model: overall, cold-item, coverage and diversity figures."""
    overall = loo_metrics(result.ranks, K)
    cold = split.train_counts[split.test_targets] <= cold_max
    cold_m = loo_metrics(result.ranks[cold], K) if cold.any() else {f"ndcg@{K}": 0.0, f"hr@{K}": 0.0, "mrr": 0.0}
    row: dict[str, float | str | int] = {
        "model": result.name,
        f"ndcg@{K}": overall[f"ndcg@{K}"],
        f"hr@{K}": overall[f"hr@{K}"],
        "mrr": overall["mrr"],
        f"cold_ndcg@{K}": cold_m[f"ndcg@{K}"],
        f"cold_hr@{K}": cold_m[f"hr@{K}"],
        "cold_users": int(cold.sum()),
        f"coverage@{K}": catalog_coverage([[i for i in t if i] for t in result.top.tolist()], split.n_items),
        "seconds": round(result.seconds, 1),
    }
    if item_vectors is not None:
        row[f"ild@{K}"] = float(np.mean([intra_list_diversity(item_vectors[t[t > 0]]) for t in result.top]))
    if result.note:
        row["note"] = result.note
    return row


COLUMNS = ("model", f"ndcg@{K}", f"hr@{K}", "mrr", f"cold_ndcg@{K}", f"cold_hr@{K}", f"coverage@{K}", f"ild@{K}",
           "seconds")


def format_table(rows: Sequence[dict[str, object]], columns: Sequence[str] = COLUMNS) -> str:
    """A markdown table of the result rows, the ``columns`` they have."""
    cols = [c for c in columns if any(c in r for r in rows)]
    from shoprank.evaluation.tables import markdown_table

    return markdown_table(cols, [[str(r.get(c, "")) if c == "seconds" else r.get(c, "") for c in cols] for r in rows])


def timed(name: str, fit: Callable[[], None], score: Callable[[Sequence[np.ndarray], np.ndarray], np.ndarray],
          split: LooViews, note: str = "") -> ModelResult:
    started = time.perf_counter()
    fit()
    ranks, top = run_scorer(score, split.test_histories, split.test_targets)
    return ModelResult(name, ranks, top, time.perf_counter() - started, note)
