"""The accuracy–diversity trade-off of the re-ranker: one row of metrics per λ, and the default it suggests.

Recommendations (:func:`sweep_recommend`): for each sampled leave-one-out test user the published bundle
scores the whole catalogue exactly as the evaluation harness does (``Recommender.score_batch``, seen items
masked); the top ``over_fetch × 10`` go through the shop's re-ranker at λ (its rules, exploration off) and
the first 10 are measured: NDCG@10 and HR@10 of the held-out item, intra-list diversity@10 (1 − mean
pairwise cosine of the items' text vectors), category coverage@10 (distinct categories / 10), catalogue
coverage@10 (distinct items over all sampled users / catalogue) and novelty (mean −log2 of the share of
training users who had the item).

Search (:func:`sweep_search`): the held-out judged queries of the latest search bundle (the split it
recorded), the online ranking (``SearchEngine.search``, no cross-encoder) over-fetched the same way;
NDCG@10 with the judged grades, HR@10 = a judged-relevant product in the first 10, novelty from the share
of training queries that judged the product, the search stack's product vectors.

Every figure comes from :mod:`shoprank.evaluation.metrics`. Nothing is trained: a shop without a published
bundle raises :class:`~shoprank.bundles.BundleError` naming the command to run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shoprank.cli._rerank import OVER_FETCH  # the batch commands' over-fetch: the sweep measures what they run

if TYPE_CHECKING:
    import numpy as np

K = 10
MAX_NDCG_LOSS = 0.01  # the default may lose at most 1 % relative NDCG@10 ...
MIN_ILD_GAIN = 0.15  # ... and must raise intra-list diversity@10 by at least 15 %
from shoprank.evaluation.sweep_defaults import DEFAULT_LAMBDAS, DEFAULT_SAMPLE  # noqa: E402

UNITS = {"recommend": ("users", "test_users", "test users"), "search": ("queries", "test_queries", "held-out queries")}

Report = Callable[[str], None]


@dataclass(frozen=True)
class SweepRow:
    """The first 10 after re-ranking at ``lam``, averaged over the sample (catalogue coverage: pooled)."""

    lam: float
    ndcg: float
    hr: float
    ild: float
    category_coverage: float
    catalogue_coverage: float
    novelty: float
    seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {"lambda": self.lam, f"ndcg@{K}": self.ndcg, f"hr@{K}": self.hr, f"ild@{K}": self.ild,
                f"category_coverage@{K}": self.category_coverage, f"catalogue_coverage@{K}": self.catalogue_coverage,
                "novelty": self.novelty, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SweepRow:
        return cls(lam=float(raw["lambda"]), ndcg=float(raw[f"ndcg@{K}"]), hr=float(raw[f"hr@{K}"]),
                   ild=float(raw[f"ild@{K}"]), category_coverage=float(raw[f"category_coverage@{K}"]),
                   catalogue_coverage=float(raw[f"catalogue_coverage@{K}"]), novelty=float(raw["novelty"]),
                   seconds=float(raw.get("seconds", 0.0)))


@dataclass
class SweepResult:
    """One sweep: the rows (λ ascending, λ = 0 first) and what they were measured on."""

    task: str  # "recommend" or "search"
    shop: str
    bundle: str
    sampled: int  # test users / held-out queries measured
    available: int  # of this many
    items: int  # catalogue size
    rows: list[SweepRow]
    ranker_ndcg: float  # NDCG@10 of the ranker's own first 10, no re-ranking (λ = 0 equals it when no rule acts)
    seed: int = 0
    over_fetch: int = OVER_FETCH
    harness_ndcg: float | None = None  # recommendations: full-catalogue rank, ties averaged (the harness figure)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return UNITS[self.task][2]

    def to_dict(self) -> dict[str, Any]:
        size, total, _ = UNITS[self.task]
        out = {"task": self.task, "shop": self.shop, "bundle": self.bundle, size: self.sampled, total: self.available,
               "items": self.items, "seed": self.seed, "over_fetch": self.over_fetch, "k": K,
               f"ranker_ndcg@{K}": self.ranker_ndcg, "rows": [r.to_dict() for r in self.rows],
               "seconds": self.seconds, **self.extra}
        if self.harness_ndcg is not None:
            out[f"harness_ndcg@{K}_on_sample"] = self.harness_ndcg
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SweepResult:
        task = raw.get("task") or ("recommend" if "users" in raw else "search")
        size, total, _ = UNITS[task]
        ranker = raw.get(f"ranker_ndcg@{K}", raw.get(f"harness_ndcg@{K}_on_sample", raw["rows"][0][f"ndcg@{K}"]))
        return cls(task=task, shop=raw["shop"], bundle=raw["bundle"], sampled=int(raw[size]),
                   available=int(raw[total]), items=int(raw["items"]),
                   rows=[SweepRow.from_dict(r) for r in raw["rows"]],
                   ranker_ndcg=float(ranker), seed=int(raw.get("seed", 0)),
                   over_fetch=int(raw.get("over_fetch", OVER_FETCH)),
                   harness_ndcg=raw.get(f"harness_ndcg@{K}_on_sample"), seconds=float(raw.get("seconds", 0.0)))


@dataclass(frozen=True)
class Choice:
    """The default λ the rule picks (None when no λ qualifies) and one line that says why, with the numbers."""

    lam: float | None
    reason: str


def parse_lambdas(text: str | Sequence[float]) -> list[float]:
    """``"0.1,0.3"`` -> ``[0.0, 0.1, 0.3]``: sorted, unique, λ = 0 (the baseline) always included."""
    raw = text.split(",") if isinstance(text, str) else list(text)
    values = set()
    for part in raw:
        try:
            lam = float(part)
        except ValueError:
            raise ValueError(f"--lambdas takes numbers separated by commas, like 0,0.1,0.2; got {part!r}") from None
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"every λ must lie between 0 (off) and 1, got {lam:g}")
        values.add(lam)
    return sorted({0.0, *values})


def _relative(value: float, base: float) -> float:
    return value / base - 1.0 if base > 0 else (0.0 if value == base else math.inf)


def choose_default(rows: Sequence[SweepRow], max_ndcg_loss: float = MAX_NDCG_LOSS,
                   min_ild_gain: float = MIN_ILD_GAIN) -> Choice:
    """The λ > 0 with the most intra-list diversity among those losing at most ``max_ndcg_loss`` relative
    NDCG@10 and gaining at least ``min_ild_gain`` relative ILD@10 against λ = 0; or None and why not."""
    base = next((r for r in rows if r.lam == 0), None)
    if base is None:
        raise ValueError("the sweep has no λ = 0 row to compare against")
    candidates = [r for r in rows if r.lam > 0]
    ok = [r for r in candidates
          if r.ndcg >= (1 - max_ndcg_loss) * base.ndcg and r.ild >= (1 + min_ild_gain) * base.ild and r.ild > base.ild]
    if ok:
        best = max(ok, key=lambda r: (r.ild, -r.lam))
        return Choice(best.lam, f"λ = {best.lam:g}: NDCG@10 {best.ndcg:.4f} vs {base.ndcg:.4f} "
                                f"({_relative(best.ndcg, base.ndcg):+.1%}), intra-list diversity@10 {best.ild:.4f} "
                                f"vs {base.ild:.4f} ({_relative(best.ild, base.ild):+.1%})")
    rule = f"no λ keeps NDCG@10 within {max_ndcg_loss:.0%} while raising ILD@10 by {min_ild_gain:.0%}"
    if not candidates:
        return Choice(None, f"{rule}: only λ = 0 was measured")
    lines = [f"λ = {r.lam:g}: NDCG@10 {_relative(r.ndcg, base.ndcg):+.1%}, ILD@10 {_relative(r.ild, base.ild):+.1%}"
             for r in candidates]
    within = [r for r in candidates if r.ndcg >= (1 - max_ndcg_loss) * base.ndcg]
    if within:
        most = max(within, key=lambda r: r.ild)
        rule += (f" (within the NDCG budget the most ILD@10 is {_relative(most.ild, base.ild):+.1%}, "
                 f"at λ = {most.lam:g})")
    return Choice(None, f"{rule}: " + "; ".join(lines))


def _sample_rows(n: int, sample: int, seed: int) -> np.ndarray:
    import numpy as np

    if not sample or sample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, sample, False))


def _score_top(rec: Any, split: Any, rows: np.ndarray, depth: int,
               progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each sampled user's full-catalogue target rank (ties averaged) and top ``depth`` (indices, scores)."""
    import numpy as np
    from tqdm.auto import tqdm

    from shoprank.evaluation.metrics import rank_of_target
    from shoprank.recommend.evaluate import mask_seen

    hist, types = split.test_histories.items, split.test_histories.types
    ranks = np.empty(len(rows))
    top = np.empty((len(rows), depth), np.int64)
    top_scores = np.empty((len(rows), depth))
    depth_ = min(depth, split.n_items)  # argpartition needs depth < n_items + 1
    with tqdm(total=len(rows), desc="scoring users", unit=" users", disable=not progress, leave=False) as bar:
        for start in range(0, len(rows), 512):
            batch = rows[start:start + 512]
            h = [hist[r] for r in batch]
            s = mask_seen(np.array(rec.score_batch(h, [types[r] for r in batch])[:, :split.n_items + 1],
                                   dtype=np.float32), h)
            ranks[start:start + len(batch)] = rank_of_target(s, split.test_targets[batch], ties="average")
            part = np.argpartition(-s, depth_, axis=1)[:, :depth_]
            order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
            best = np.take_along_axis(part, order, axis=1)
            top[start:start + len(batch)] = 0
            top_scores[start:start + len(batch)] = -np.inf
            top[start:start + len(batch), :depth_] = best
            top_scores[start:start + len(batch), :depth_] = np.take_along_axis(s, best, axis=1)
            bar.update(len(batch))
    return ranks, top, top_scores


def _rows_per_lambda(rerankers: Mapping[float, Any], n_lists: int,
                     page_of: Callable[[Any, int], tuple[list[str], Callable[..., Any], Callable[[str], str]]],
                     accuracy: Callable[[Sequence[Sequence[str]]], tuple[float, float]],
                     probability: Mapping[str, float], unseen: float, n_items: int, progress: bool) -> list[SweepRow]:
    """One :class:`SweepRow` per λ: ``page_of(reranker, i)`` re-ranks list ``i`` and returns its first K with
    the vectors and category of its items; ``accuracy(pages)`` gives (NDCG@K, HR@K) of all the pages."""
    import numpy as np
    from tqdm.auto import tqdm

    from shoprank.evaluation.metrics import catalog_coverage, category_coverage, intra_list_diversity, novelty

    results = []
    with tqdm(total=len(rerankers) * n_lists, desc="re-ranking per λ", unit=" lists", disable=not progress,
              leave=False) as bar:
        for lam, reranker in rerankers.items():
            reranker.config = reranker.config.for_evaluation()
            t0 = time.perf_counter()
            ild, cat, nov, pages = [], [], [], []
            for i in range(n_lists):
                page, vectors, category = page_of(reranker, i)
                ild.append(intra_list_diversity(vectors(page)) if page else 0.0)
                cat.append(category_coverage([category(pid) for pid in page]))
                nov.append(novelty(page, probability, unseen_probability=unseen))
                pages.append(page)
                bar.update()
            ndcg, hr = accuracy(pages)
            results.append(SweepRow(lam, ndcg, hr, float(np.mean(ild)), float(np.mean(cat)),
                                    catalog_coverage(pages, n_items), float(np.mean(nov)),
                                    round(time.perf_counter() - t0, 1)))
    return results


def sweep_recommend(shop: Any, lambdas: Sequence[float] = DEFAULT_LAMBDAS, sample: int = DEFAULT_SAMPLE["recommend"],
                    seed: int = 0, over_fetch: int = OVER_FETCH, progress: bool = False,
                    report: Report | None = None) -> SweepResult:
    """The sweep over ``lambdas`` on a fixed random sample of ``sample`` leave-one-out test users (0 = all)."""
    import numpy as np

    from shoprank.bundles import BundleError
    from shoprank.evaluation.metrics import (
        item_probabilities,
        loo_metrics,
    )
    from shoprank.recommend.pipeline import read_log
    from shoprank.recommend.service import Recommender
    from shoprank.rerank import Reranker
    from shoprank.results import ScoredItem

    say = report or (lambda line: None)
    lambdas = parse_lambdas(lambdas)
    started = time.perf_counter()
    rec = Recommender.load(shop)  # BundleError naming 'shoprank train recommend' when there is none
    log = read_log(shop)
    split = log.split()
    if rec.catalogue.ids[:split.n_items] != list(log.catalogue.ids):
        raise BundleError(f"recommend bundle {rec.version} does not match the shop's catalogue (products were "
                          f"added or removed since): run 'shoprank train recommend --shop {shop.name}' first")
    n_test = len(split.test_targets)
    if not n_test:
        raise ValueError(f"shop {shop.name!r} has no user with 3 or more events: nothing to hold out")
    rows = _sample_rows(n_test, sample, seed)
    say(f"{len(rows):,} of {n_test:,} test users, {split.n_items:,} items, recommend bundle {rec.version}")
    ranks, top, top_scores = _score_top(rec, split, rows, over_fetch * K, progress)

    with shop.store(create=False) as store:
        products = {p.id: p for p in store.iter_products()}
        rerankers = {lam: Reranker.from_store(store, diversity=lam) for lam in lambdas}
    text = np.asarray(rec.art.text_vectors[:split.n_items + 1], dtype=np.float64)
    index, ids_of = rec.catalogue.index, rec.catalogue.ids

    def vectors(ids: Sequence[str]) -> np.ndarray:
        return text[[index[i] for i in ids]]

    train_users = np.zeros(split.n_items + 1)
    for seq in split.train.items:
        train_users[np.unique(seq)] += 1
    counts = {ids_of[i - 1]: float(c) for i, c in enumerate(train_users) if i and c > 0}
    probability = item_probabilities(counts, n_users=len(split.train))
    unseen = 1.0 / len(split.train)
    category = {pid: p.category.casefold() for pid, p in products.items()}
    candidates = [[ScoredItem(ids_of[i - 1], float(s)) for i, s in zip(top[u], top_scores[u], strict=True)
                   if np.isfinite(s)] for u in range(len(rows))]
    targets = [ids_of[split.test_targets[r] - 1] for r in rows]

    def target_ranks(pages: Sequence[Sequence[str]]) -> np.ndarray:
        out = np.full(len(pages), K + 1.0)  # K + 1: the target is not in the first K
        for u, page in enumerate(pages):
            if targets[u] in page:
                out[u] = page.index(targets[u]) + 1
        return out

    ranker_ndcg = loo_metrics(target_ranks([[item.id for item in c[:K]] for c in candidates]), K)[f"ndcg@{K}"]

    def page_of(reranker: Any, u: int) -> tuple[list[str], Callable[..., Any], Callable[[str], str]]:
        page = [item.id for item in reranker.rerank(candidates[u], products, vectors, None, rng=0)[:K]]
        return page, vectors, lambda pid: category.get(pid, "")

    def accuracy(pages: Sequence[Sequence[str]]) -> tuple[float, float]:
        loo = loo_metrics(target_ranks(pages), K)
        return loo[f"ndcg@{K}"], loo[f"hr@{K}"]

    results = _rows_per_lambda(rerankers, len(rows), page_of, accuracy, probability, unseen, split.n_items, progress)
    return SweepResult("recommend", shop.name, rec.version, int(len(rows)), int(n_test), int(split.n_items),
                       results, ranker_ndcg, seed=seed, over_fetch=over_fetch,
                       harness_ndcg=loo_metrics(ranks, K)[f"ndcg@{K}"],
                       seconds=round(time.perf_counter() - started, 1))


def sweep_search(shop: Any, lambdas: Sequence[float] = DEFAULT_LAMBDAS, sample: int = DEFAULT_SAMPLE["search"],
                 seed: int = 0, over_fetch: int = OVER_FETCH, progress: bool = False,
                 report: Report | None = None) -> SweepResult:
    """The sweep over ``lambdas`` on a fixed random sample of ``sample`` held-out judged queries (0 = all)."""
    import random

    import numpy as np
    from tqdm.auto import tqdm

    from shoprank.bundles import BundleError, open_bundle
    from shoprank.evaluation.metrics import (
        item_probabilities,
        ndcg_at_k,
    )
    from shoprank.rerank import Reranker
    from shoprank.rerank.context import search_context
    from shoprank.search import SearchEngine
    from shoprank.search.data import SPLIT_SEED, load_search_data

    say = report or (lambda line: None)
    lambdas = parse_lambdas(lambdas)
    started = time.perf_counter()
    engine = SearchEngine.load(shop)  # BundleError naming 'shoprank train search' when there is none
    params = open_bundle(shop.models_path, "search", engine.version).params
    if not params.get("holdout"):
        raise BundleError(f"search bundle {engine.version} was trained on every query (--holdout 0): nothing is "
                          f"held out to measure on; run 'shoprank train search --shop {shop.name} --holdout 0.2'")
    with shop.store(create=False) as store:
        data = load_search_data(store, test_share=params["holdout"], seed=params.get("split_seed", SPLIT_SEED))
        rerankers = {lam: Reranker.from_store(store, diversity=lam) for lam in lambdas}
    test = data.query_set(data.test)
    queries = [q for q in test.queries() if max(test.gains[q].values()) > 0]
    n_test = len(queries)
    if not n_test:
        raise ValueError(f"search bundle {engine.version} holds out no query with a relevant judged product")
    if sample and sample < n_test:
        chosen = set(random.Random(seed).sample(queries, sample))
        queries = [q for q in queries if q in chosen]
    n_live = engine.stack.catalog.n_live
    say(f"{len(queries):,} of {n_test:,} held-out queries, {n_live:,} products, search bundle {engine.version}")
    ranked = {q: engine.search(q, k=over_fetch * K)[0]
              for q in tqdm(queries, desc="searching", unit=" queries", disable=not progress, leave=False)}
    train_queries = {j.query for j in data.train}
    judged: dict[str, float] = {}
    for j in data.train:
        judged[j.product_id] = judged.get(j.product_id, 0.0) + 1.0
    probability = {p: min(v, 1.0) for p, v in item_probabilities(judged, n_users=len(train_queries)).items()}
    unseen = 1.0 / len(train_queries)
    context = {q: search_context(engine.stack, [item.id for item in items]) for q, items in ranked.items()}
    ranker_ndcg = float(np.mean([ndcg_at_k([item.id for item in items[:K]], test.gains[q], K)
                                 for q, items in ranked.items()]))

    lists = list(ranked.items())

    def page_of(reranker: Any, i: int) -> tuple[list[str], Callable[..., Any], Callable[[str], str]]:
        q, items = lists[i]
        products, vectors = context[q]
        page = [item.id for item in reranker.rerank(items, products, vectors, q, rng=0)[:K]]
        return page, vectors, lambda pid: products[pid].category.casefold() if pid in products else ""

    def accuracy(pages: Sequence[Sequence[str]]) -> tuple[float, float]:
        pairs = list(zip(pages, [test.gains[q] for q, _ in lists], strict=True))
        return (float(np.mean([ndcg_at_k(list(page), g, K) for page, g in pairs])),
                float(np.mean([any(g.get(pid, 0.0) > 0 for pid in page) for page, g in pairs])))

    results = _rows_per_lambda(rerankers, len(lists), page_of, accuracy, probability, unseen, n_live, progress)
    return SweepResult("search", shop.name, engine.version, len(queries), n_test, int(n_live), results, ranker_ndcg,
                       seed=seed, over_fetch=over_fetch, seconds=round(time.perf_counter() - started, 1))


SWEEPS: dict[str, Callable[..., SweepResult]] = {"recommend": sweep_recommend, "search": sweep_search}
