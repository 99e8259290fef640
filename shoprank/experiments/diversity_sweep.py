"""The accuracy–diversity trade-off of the re-ranker: one row of metrics per λ, and the default it suggests.

Every list is what the shop serves: its cascade (:mod:`shoprank.cascade`) asked at λ, exploration off. A
default λ is chosen on validation data only (``part="valid"``, the default); ``part="test"`` reads the
held-out figure of the λ that ships.

Recommendations (:func:`sweep_recommend`): for each sampled leave-one-out user, the cascade asked with the
user's history (without the validation target, or without the test target); the first 10 are measured:
NDCG@10 and HR@10 of the held-out item, intra-list diversity@10 (1 − mean
pairwise cosine of the items' text vectors), category coverage@10 (distinct categories / 10), catalogue
coverage@10 (distinct items over all sampled users / catalogue) and novelty (mean −log2 of the share of
training users who had the item).

Search (:func:`sweep_search`): the validation queries of the latest search bundle (its profile's split of the
training queries) or its held-out test queries (the split it recorded), asked of the cascade; NDCG@10
with the judged grades, HR@10 = a judged-relevant product in the first 10, novelty from the share
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

from shoprank.cascade.cascade import OVER_FETCH  # the cascade's over-fetch: the sweep measures what it serves

if TYPE_CHECKING:
    import numpy as np

K = 10
MAX_NDCG_LOSS = 0.01  # the default may lose at most 1 % relative NDCG@10 ...
MIN_ILD_GAIN = 0.15  # ... and must raise intra-list diversity@10 by at least 15 %
from shoprank.experiments.sweep_defaults import DEFAULT_LAMBDAS, DEFAULT_SAMPLE  # noqa: E402

UNITS = {"recommend": ("users", "test_users", "users"), "search": ("queries", "test_queries", "queries")}

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
        """What was sampled, with the part its targets came from: "users (validation targets)"."""
        part = self.extra.get("part")
        words = {"valid": "validation", "test": "held-out test"}.get(part, part) if part else None
        return UNITS[self.task][2] + (f" ({words} targets)" if words else "")

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

    from shoprank.cascade.base import top_k_rows
    from shoprank.evaluation.metrics import rank_of_target
    from shoprank.recommend.evaluate import mask_seen

    hist, types = split.test_histories.items, split.test_histories.types
    ranks = np.empty(len(rows))
    top = np.empty((len(rows), depth), np.int64)
    top_scores = np.empty((len(rows), depth))
    depth_ = min(depth, split.n_items + 1)
    with tqdm(total=len(rows), desc="scoring users", unit=" users", disable=not progress, leave=False) as bar:
        for start in range(0, len(rows), 512):
            batch = rows[start:start + 512]
            h = [hist[r] for r in batch]
            s = mask_seen(np.array(rec.score_batch(h, [types[r] for r in batch])[:, :split.n_items + 1],
                                   dtype=np.float32), h)
            ranks[start:start + len(batch)] = rank_of_target(s, split.test_targets[batch], ties="average")
            best = top_k_rows(s, depth_)
            top[start:start + len(batch)] = 0
            top_scores[start:start + len(batch)] = -np.inf
            top[start:start + len(batch), :depth_] = best
            top_scores[start:start + len(batch), :depth_] = np.take_along_axis(s, best, axis=1)
            bar.update(len(batch))
    return ranks, top, top_scores


def _rows_per_lambda(lambdas: Sequence[float], n_lists: int,
                     page_of: Callable[[float, int], tuple[list[str], Callable[..., Any], Callable[[str], str]]],
                     accuracy: Callable[[Sequence[Sequence[str]]], tuple[float, float]],
                     probability: Mapping[str, float], unseen: float, n_items: int, progress: bool) -> list[SweepRow]:
    """One :class:`SweepRow` per λ: ``page_of(λ, i)`` answers request ``i`` at λ and returns its first K with
    the vectors and category of its items; ``accuracy(pages)`` gives (NDCG@K, HR@K) of all the pages."""
    import numpy as np
    from tqdm.auto import tqdm

    from shoprank.evaluation.metrics import catalog_coverage, category_coverage, intra_list_diversity, novelty

    results = []
    with tqdm(total=len(lambdas) * n_lists, desc="answers per λ", unit=" lists", disable=not progress,
              leave=False) as bar:
        for lam in lambdas:
            t0 = time.perf_counter()
            ild, cat, nov, pages = [], [], [], []
            for i in range(n_lists):
                page, vectors, category = page_of(lam, i)
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


PARTS = ("valid", "test")
"""What a sweep measures on: ``valid`` (the default; the only part a default λ may be chosen on) or ``test``
(the figure reported for the λ that ships, read once)."""


def _check_part(part: str) -> None:
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")


def history_events(items: np.ndarray, types: np.ndarray, ids_of: Sequence[str]) -> tuple[Any, ...]:
    """A history of item and type indices as the events the cascade takes (``Request.history``), oldest first."""
    from shoprank.data.records import Event
    from shoprank.recommend.interactions import TYPE_INDEX

    names = {v: k for k, v in TYPE_INDEX.items()}
    return tuple(Event(f"h{n}", "", ids_of[int(i) - 1], names.get(int(t), "view"), float(n))
                 for n, (i, t) in enumerate(zip(items, types, strict=True)))


def sweep_recommend(shop: Any, lambdas: Sequence[float] = DEFAULT_LAMBDAS, sample: int = DEFAULT_SAMPLE["recommend"],
                    seed: int = 0, progress: bool = False,
                    report: Report | None = None, part: str = "valid") -> SweepResult:
    """The sweep over ``lambdas`` on a fixed random sample of ``sample`` leave-one-out users (0 = all): their
    validation targets (``part="valid"``, histories without them) or their test targets. Every list is the
    served one: the shop's cascade asked with the user's history at each λ (exploration off)."""
    import numpy as np

    from shoprank.bundles import BundleError
    from shoprank.cascade import Request
    from shoprank.cascade.load import load_cascade
    from shoprank.evaluation.metrics import item_probabilities, loo_metrics
    from shoprank.recommend.pipeline import read_log
    from shoprank.rerank.context import recommend_vectors

    _check_part(part)
    say = report or (lambda line: None)
    lambdas = parse_lambdas(lambdas)
    started = time.perf_counter()
    cascade = load_cascade(shop, ("recommend",))  # BundleError naming 'shoprank train recommend' when there is none
    rec = cascade.recommend
    log = read_log(shop)
    split = log.split()
    if rec.catalogue.ids[:split.n_items] != list(log.catalogue.ids):
        raise BundleError(f"recommend bundle {rec.version} does not match the shop's catalogue (products were "
                          f"added or removed since): run 'shoprank train recommend --shop {shop.name}' first")
    histories = split.valid_histories if part == "valid" else split.test_histories
    all_targets = split.valid_targets if part == "valid" else split.test_targets
    n_users = len(all_targets)
    if not n_users:
        raise ValueError(f"shop {shop.name!r} has no user with 3 or more events: nothing to hold out")
    rows = _sample_rows(n_users, sample, seed)
    say(f"{len(rows):,} of {n_users:,} users ({part} targets), {split.n_items:,} items, recommend bundle "
        f"{rec.version}")
    ids_of = rec.catalogue.ids
    asks = [history_events(histories.items[r], histories.types[r], ids_of) for r in rows]
    targets = [ids_of[all_targets[r] - 1] for r in rows]
    with shop.store(create=False) as store:
        products = {p.id: p for p in store.iter_products()}
    vectors = recommend_vectors(rec)
    train_users = np.zeros(split.n_items + 1)
    for seq in split.train.items:
        train_users[np.unique(seq)] += 1
    counts = {ids_of[i - 1]: float(c) for i, c in enumerate(train_users) if i and c > 0}
    probability = item_probabilities(counts, n_users=len(split.train))
    unseen = 1.0 / len(split.train)
    category = {pid: p.category.casefold() for pid, p in products.items()}

    def page_of(lam: float, u: int) -> tuple[list[str], Callable[..., Any], Callable[[str], str]]:
        ask = Request("recommend", user_id=histories.users[rows[u]], history=asks[u], per_page=K, diversity=lam)
        return cascade.run_one(ask).ids, vectors, lambda pid: category.get(pid, "")

    def target_ranks(pages: Sequence[Sequence[str]]) -> np.ndarray:
        out = np.full(len(pages), K + 1.0)  # K + 1: the target is not in the first K
        for u, page in enumerate(pages):
            if targets[u] in page:
                out[u] = page.index(targets[u]) + 1
        return out

    def accuracy(pages: Sequence[Sequence[str]]) -> tuple[float, float]:
        loo = loo_metrics(target_ranks(pages), K)
        return loo[f"ndcg@{K}"], loo[f"hr@{K}"]

    ranker_pages = [cascade.recommend.recommend("", k=K, history=list(asks[u])) for u in range(len(rows))]
    ranker_ndcg = accuracy([[item.id for item in page] for page in ranker_pages])[0]
    results = _rows_per_lambda(lambdas, len(rows), page_of, accuracy, probability, unseen, split.n_items, progress)
    return SweepResult("recommend", shop.name, rec.version, int(len(rows)), int(n_users), int(split.n_items),
                       results, ranker_ndcg, seed=seed,
                       seconds=round(time.perf_counter() - started, 1), extra={"part": part})


def validation_queries(shop: Any, params: Mapping[str, Any], data: Any) -> Any:
    """The validation judgments the search bundle was trained with (its profile's split of the training
    queries): the queries a knob set after training may be chosen on."""
    from shoprank.search.train import profile_config, split_training

    config = profile_config(str(params.get("profile", "quick")), str(params.get("language", "en")))
    return split_training(data, config).valid


def sweep_search(shop: Any, lambdas: Sequence[float] = DEFAULT_LAMBDAS, sample: int = DEFAULT_SAMPLE["search"],
                 seed: int = 0, progress: bool = False,
                 report: Report | None = None, part: str = "valid") -> SweepResult:
    """The sweep over ``lambdas`` on a fixed random sample of ``sample`` judged queries with a relevant product
    (0 = all): the bundle's validation queries (``part="valid"``) or its held-out test queries. Every list is the
    served one: the shop's cascade asked at each λ (exploration off)."""
    import random

    import numpy as np

    from shoprank.bundles import BundleError, open_bundle
    from shoprank.cascade import Request
    from shoprank.cascade.load import load_cascade
    from shoprank.evaluation.metrics import item_probabilities, ndcg_at_k
    from shoprank.search.data import SPLIT_SEED, load_search_data

    _check_part(part)
    say = report or (lambda line: None)
    lambdas = parse_lambdas(lambdas)
    started = time.perf_counter()
    cascade = load_cascade(shop, ("search",))  # BundleError naming 'shoprank train search' when there is none
    engine = cascade.search
    params = open_bundle(shop.models_path, "search", engine.version).params
    if not params.get("holdout"):
        raise BundleError(f"search bundle {engine.version} was trained on every query (--holdout 0): nothing is "
                          f"held out to measure on; run 'shoprank train search --shop {shop.name} --holdout 0.2'")
    with shop.store(create=False) as store:
        data = load_search_data(store, test_share=params["holdout"], seed=params.get("split_seed", SPLIT_SEED))
    judged = data.query_set(validation_queries(shop, params, data) if part == "valid" else data.test)
    queries = [q for q in judged.queries() if max(judged.gains[q].values()) > 0]
    n_queries = len(queries)
    if not n_queries:
        raise ValueError(f"search bundle {engine.version} has no {part} query with a relevant judged product")
    if sample and sample < n_queries:
        chosen = set(random.Random(seed).sample(queries, sample))
        queries = [q for q in queries if q in chosen]
    n_live = engine.stack.catalog.n_live
    say(f"{len(queries):,} of {n_queries:,} {part} queries, {n_live:,} products, search bundle {engine.version}")
    train_queries = {j.query for j in data.train}
    counts: dict[str, float] = {}
    for j in data.train:
        counts[j.product_id] = counts.get(j.product_id, 0.0) + 1.0
    probability = {p: min(v, 1.0) for p, v in item_probabilities(counts, n_users=len(train_queries)).items()}
    unseen = 1.0 / len(train_queries)
    ranker_ndcg = float(np.mean([ndcg_at_k([pid for pid, _ in engine.search_ids(q, K)], judged.gains[q], K)
                                 for q in queries]))

    def page_of(lam: float, i: int) -> tuple[list[str], Callable[..., Any], Callable[[str], str]]:
        page = cascade.run_one(Request("search", queries[i], per_page=K, diversity=lam))
        products, vectors = engine.context(page.ids)
        return page.ids, vectors, lambda pid: products[pid].category.casefold() if pid in products else ""

    def accuracy(pages: Sequence[Sequence[str]]) -> tuple[float, float]:
        pairs = list(zip(pages, [judged.gains[q] for q in queries], strict=True))
        return (float(np.mean([ndcg_at_k(list(page), g, K) for page, g in pairs])),
                float(np.mean([any(g.get(pid, 0.0) > 0 for pid in page) for page, g in pairs])))

    results = _rows_per_lambda(lambdas, len(queries), page_of, accuracy, probability, unseen, n_live, progress)
    return SweepResult("search", shop.name, engine.version, len(queries), n_queries, int(n_live), results,
                       ranker_ndcg, seed=seed, seconds=round(time.perf_counter() - started, 1),
                       extra={"part": part})


SWEEPS: dict[str, Callable[..., SweepResult]] = {"recommend": sweep_recommend, "search": sweep_search}
