"""`shoprank train search`: fine-tune the bi-encoder and the cross-encoder, index, fit the fusion rankers.

The shop's judged queries (minus the held-out test share) are split by query once more:

* ``model`` queries train the bi-encoder and the cross-encoder,
* ``valid`` queries drive early stopping (NDCG@10) and the fusion rankers' early stopping, and calibrate
  the result set's dense threshold (:mod:`shoprank.search.calibration`),
* ``fusion`` queries train LambdaMART, so no feature value it learns from came from a model
  fitted on the same query.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.cascade.base import top_k
from shoprank.data.splits import split_by_query
from shoprank.encoders.biencoder import BiEncoderTrainConfig, QueryExample
from shoprank.encoders.distil import DistilConfig
from shoprank.evaluation.metrics import ndcg_at_k
from shoprank.ranking.features import FEATURES
from shoprank.ranking.fusion import FusionConfig, FusionRanker
from shoprank.search.data import QuerySet, SearchData
from shoprank.search.publish import DOC_TOWERS
from shoprank.search.stack import FAST_FEATURES, SearchStack, StackConfig, product_text
from shoprank.training.loop import TrainConfig
from shoprank.training.profiles import resolve

Report = Callable[[str], None]


@dataclass
class SearchTrainConfig:
    profile: str = "full"
    stack: StackConfig = field(default_factory=StackConfig)
    biencoder: BiEncoderTrainConfig | None = field(default_factory=BiEncoderTrainConfig)
    cross: TrainConfig | None = field(default_factory=lambda: TrainConfig(
        epochs=2, batch_size=32, learning_rate=4e-5, patience=1, freeze="none"))
    cross_max_length: int = 64
    cross_eval_every: int = 0
    mined_negatives: int = 2  # BM25 hard negatives per training query (label 0 for the cross-encoder)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    fusion_share: float = 0.2  # of the training queries: train LambdaMART only
    valid_share: float = 0.1  # of the training queries: validation only
    max_model_queries: int | None = None  # the quick profile trains on a sample
    max_fusion_queries: int | None = None
    max_valid_queries: int = 400  # validation of the encoders (each check re-scores them all)
    max_fusion_valid_queries: int | None = None  # early stopping of LambdaMART (features are cheap: all of them)
    max_biencoder_examples: int | None = None  # sample of positive pairs (CPU budgets)
    max_cross_pairs: int | None = None  # sample of labelled pairs (CPU budgets)
    doc_tower: str = "base"  # base model, distilled (a shallower tower made from it) or tuned (both towers tuned)
    distil: DistilConfig = field(default_factory=DistilConfig)  # the distilled tower's layers and training
    tower_distill: float = 0.0  # tuned tower: weight of the margin-MSE term against the cross-encoder's scores
    tower_valid_products: int = 3000  # tuned tower: products besides the judged ones its validation ranks
    seed: int = 0

    def __post_init__(self) -> None:
        if self.doc_tower not in DOC_TOWERS:
            raise ValueError(f"doc_tower must be one of {', '.join(DOC_TOWERS)}, got {self.doc_tower!r}")
        if self.tower_distill < 0 or self.tower_valid_products < 0:
            raise ValueError("tower_distill and tower_valid_products must be 0 or more")


def split_training(data: SearchData, config: SearchTrainConfig) -> Any:
    """The training queries split by query: ``train`` (the encoders), ``test`` (LambdaMART) and ``valid`` (early
    stopping, and every knob chosen after training: the diversity sweep reads the same queries)."""
    return split_by_query(data.train, test_share=config.fusion_share, valid_share=config.valid_share,
                          seed=config.seed + 1)


_ENCODER_TRAIN = {"epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "freeze": "lower"}

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {  # 2,000 query-encoder pairs, 1,000 cross-encoder pairs, lower layers frozen, 150 fusion queries
        "stack": {"rerank_top": 10},
        "biencoder_train": _ENCODER_TRAIN,
        "cross": {"epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "freeze": "lower", "patience": 0},
        "run": {"cross_max_length": 40, "mined_negatives": 1, "max_model_queries": 1500, "max_fusion_queries": 150,
                "max_valid_queries": 80, "max_fusion_valid_queries": 80, "max_biencoder_examples": 2000,
                "max_cross_pairs": 1000},
    },
    "demo": {  # quick, with product texts cut at 16 tokens for the vectors
        "base": "quick",
        "stack": {"doc_max_length": 16},
    },
    "full": {  # 6,000 query-encoder pairs, 20,000 cross-encoder pairs (every layer), every fusion query
        "stack": {"rerank_top": 10},
        "biencoder_train": _ENCODER_TRAIN,
        "biencoder": {"eval_every": 60},
        "cross": {"epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "freeze": "none", "patience": 1},
        "run": {"cross_max_length": 40, "cross_eval_every": 150, "mined_negatives": 1, "max_fusion_queries": None,
                "max_valid_queries": 100, "max_biencoder_examples": 6000, "max_cross_pairs": 20000},
    },
}


def profile_config(name: str, language: str = "en") -> SearchTrainConfig:
    """A training profile of :data:`PROFILES` (:mod:`shoprank.training.profiles`), sized for a 2-core CPU machine.

    ``quick``: a few minutes once the catalogue's base vectors are cached. ``full``: one epoch with validation
    every 60-150 steps for early stopping, every fusion query (~21 minutes on Home Depot). ``demo``: ``quick``
    with product texts cut at 16 tokens for the vectors (title and brand, mostly): embedding the catalogue is
    most of a CPU's training time, and this halves it (``shoprank demo``).
    Chinese shops use the frozen multilingual e5 encoder and no cross-encoder (MiniLM is English)."""
    p = resolve(PROFILES, name)
    stack = StackConfig(language=language, encoder="e5" if language == "zh" else "biencoder", **p["stack"])
    config = SearchTrainConfig(
        profile=name, stack=stack,
        biencoder=BiEncoderTrainConfig(train=TrainConfig(**p["biencoder_train"]), **p.get("biencoder", {})),
        cross=TrainConfig(**p["cross"]), **p["run"],
    )
    if language == "zh":
        config.biencoder = None
        config.cross = None
    return config


def distilled_tower(products: Sequence[Any], encoder: Any, config: SearchTrainConfig, cache: Path | None,
                    progress: bool, report: Report) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """A shallower document tower distilled from ``encoder``'s (:mod:`shoprank.encoders.distil`) on a sample of
    the catalogue's texts, and every product's vector from it: (tower, vectors, what the summary records)."""
    import atexit
    import shutil
    import tempfile

    from shoprank.encoders.biencoder import BiEncoder
    from shoprank.encoders.distil import distil_doc_tower
    from shoprank.search.vectors import cache_file

    source = getattr(getattr(encoder, "fast_docs", None), "source", None)
    if config.stack.encoder != "biencoder" or source is None:
        raise ValueError("a distilled document tower is made from a bi-encoder loaded from a model folder "
                         f"(this stack's encoder is {config.stack.encoder!r})")
    length = config.stack.doc_max_length
    texts = [product_text(p) for p in products]
    distil = replace(config.distil, max_length=length)
    cached = cache_file(cache, texts, length) if cache is not None else None
    teacher = np.load(cached) if cached is not None and cached.is_file() else None  # the base vectors, if made
    if teacher is not None and len(teacher) != len(texts):
        teacher = None
    work = Path(tempfile.mkdtemp(prefix="shoprank-doc-tower-"))
    atexit.register(shutil.rmtree, work, True)
    report(f"distilling a {len(distil.layers)}-layer document tower (layers {', '.join(map(str, distil.layers))} of "
           f"the base encoder) on {min(distil.max_texts, len(texts)):,} product texts")
    found = distil_doc_tower(Path(source), texts, work / "doc_tower", distil, teacher_vectors=teacher,
                             progress=progress)
    report(f"  validation cosine to the base encoder's vectors {found.cosine_before:.4f} untrained -> "
           f"{found.cosine:.4f}; embedding {len(texts):,} products with it")
    tower = BiEncoder.load(work / "doc_tower", max_length=length)
    vectors = tower.encode_docs(texts, progress)
    return tower, vectors, {"kind": "distilled", "layers": found.layers, "teacher_layers": found.teacher_layers,
                            "texts": found.texts, "valid_cosine": found.cosine, "valid_cosine_before":
                            found.cosine_before, "seconds": found.seconds}


@dataclass
class SubCatalogValidation:
    """Mean NDCG@k of a tower that embeds both sides, over a fixed sub-catalogue: every product judged for a
    validation query and a seeded sample of the others (re-embedding the whole catalogue at each check would
    cost minutes). Products are embedded by PyTorch at every check, so each check compares like with like."""

    queries: list[str]
    gains: list[dict[str, float]]
    texts: list[str]  # the sub-catalogue's product texts
    ids: list[str]
    k: int = 10

    @classmethod
    def build(cls, stack: SearchStack, qset: QuerySet, queries: Sequence[str], others: int, seed: int
              ) -> SubCatalogValidation:
        queries = [q for q in queries if max(qset.gains[q].values()) > 0]
        rows = {stack.catalog.row_of[pid] for q in queries for pid in qset.gains[q] if pid in stack.catalog.row_of}
        rest = sorted(set(range(len(stack.catalog.ids))) - rows)
        rows |= set(random.Random(seed).sample(rest, min(others, len(rest))))
        ordered = sorted(rows)
        return cls(list(queries), [dict(qset.gains[q]) for q in queries],
                   [product_text(stack.catalog.products[r]) for r in ordered], [stack.catalog.ids[r] for r in ordered])

    def __call__(self, tower: Any) -> float:
        if not self.queries:
            return 0.0
        docs = tower.model.encode(self.texts, batch_size=128, convert_to_numpy=True, normalize_embeddings=True)
        return DenseValidation(self.queries, self.gains, np.asarray(docs, np.float32), self.ids, self.k)(tower)


def tuned_tower(stack: SearchStack, examples: Sequence[QueryExample], valid_q: QuerySet, valid_queries: Sequence[str],
                config: SearchTrainConfig, progress: bool, report: Report) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """Both towers fine-tuned: one model embeds queries and products, trained contrastively on the encoder
    queries' (query, product, negatives) with in-batch negatives and, with ``tower_distill`` > 0 and a
    cross-encoder, a margin-MSE term against the cross-encoder's scores; then every product is embedded again
    with it. Returns (tower, vectors, what the summary records); the query tower starts from it."""
    import atexit
    import shutil
    import tempfile

    from shoprank.encoders.biencoder import BiEncoder, PairExample, fine_tune_biencoder

    started = time.perf_counter()
    length = config.stack.doc_max_length
    products = stack.catalog.products
    text_of = {r: product_text(products[r]) for ex in examples for r in (ex.positive, *ex.negatives)}
    pairs = [PairExample(ex.query, text_of[ex.positive], [text_of[r] for r in ex.negatives]) for ex in examples]
    distill = config.tower_distill if stack.cross is not None else 0.0
    if distill > 0:
        with_negatives = [p for p in pairs if p.negatives]
        report(f"  scoring {len(with_negatives):,} (query, product, negatives) examples with the cross-encoder "
               "for the margin-MSE term")
        queries = [p.query for p in with_negatives for _ in range(1 + len(p.negatives))]
        texts = [t for p in with_negatives for t in (p.positive, *p.negatives)]
        scores = stack.cross.score(queries, texts, progress)
        at = 0
        for p in with_negatives:
            p.teacher = [float(s) for s in scores[at : at + 1 + len(p.negatives)]]
            at += 1 + len(p.negatives)
    validate = SubCatalogValidation.build(stack, valid_q, valid_queries, config.tower_valid_products, config.seed)
    tower = BiEncoder.load(None, max_length=length)
    train = replace(config.biencoder, max_length=length, distill_weight=distill)
    report(f"fine-tuning one tower for queries and products on {len(pairs):,} examples"
           + (f" (margin-MSE weight {distill:g} against the cross-encoder)" if distill > 0 else "")
           + f"; validation over {len(validate.ids):,} products")
    history = fine_tune_biencoder(tower, pairs, train, validate, progress, eval_before=True)
    scores = [h["val/ndcg@10"] for h in history if "val/ndcg@10" in h]
    work = Path(tempfile.mkdtemp(prefix="shoprank-doc-tower-"))
    atexit.register(shutil.rmtree, work, True)
    tower.save(work / "doc_tower")
    tower = BiEncoder.load(work / "doc_tower", max_length=length)  # from a folder: the ONNX document tower
    report(f"  validation NDCG@10 over the sub-catalogue {scores[0]:.4f} untuned -> {max(scores):.4f}; "
           f"embedding {len(products):,} products with it")
    vectors = tower.encode_docs([product_text(p) for p in products], progress)
    return tower, vectors, {"kind": "tuned", "examples": len(pairs), "distill_weight": distill,
                            "valid_products": len(validate.ids), "valid_ndcg@10_before": round(scores[0], 4),
                            "valid_ndcg@10": round(max(scores), 4), "seconds": round(time.perf_counter() - started, 1)}


# helpers shared with evaluation ------------------------------------------------------------------


def judged_ndcg(qset: QuerySet, queries: Sequence[str], score: Callable[[str, list[str]], np.ndarray],
                k: int = 10) -> float:
    """Mean NDCG@k of ordering each query's judged products by ``score(query, ids)``."""
    values = []
    for q in queries:
        ids = list(qset.gains[q])
        s = score(q, ids)
        ranked = [ids[i] for i in np.argsort(-s, kind="stable")]
        values.append(ndcg_at_k(ranked, qset.gains[q], k))
    return float(np.mean(values)) if values else 0.0


def mined_negatives(stack: SearchStack, query: str, judged: set[str], n: int, rng: random.Random,
                    window: tuple[int, int] = (10, 60)) -> list[int]:
    """Rows BM25 ranks in ``window`` that nobody judged: likely but unconfirmed non-matches."""
    if n <= 0:
        return []
    scores = stack.bm25.score(stack.tokens(query))
    top = np.argsort(-scores)[: window[1]]
    pool = [int(r) for r in top[window[0]:] if scores[r] > 0 and stack.catalog.ids[r] not in judged]
    return rng.sample(pool, min(n, len(pool)))


@dataclass
class DenseValidation:
    """Mean full-catalogue NDCG@k of a query tower against fixed product vectors (the query encoder's early
    stopping). A plain object, so that a Ray worker can run it."""

    queries: list[str]
    gains: list[dict[str, float]]  # per query: product id -> grade
    vectors: np.ndarray  # (n_products, d), the frozen document tower's
    ids: list[str]  # product id of each row
    k: int = 10

    def __call__(self, tower: Any) -> float:
        if not self.queries:
            return 0.0
        qv = tower.encode_queries(self.queries)
        values = []
        for gains, v in zip(self.gains, qv, strict=True):
            scores = self.vectors @ v
            ranked = [self.ids[r] for r in top_k(scores, self.k)]
            values.append(ndcg_at_k(ranked, gains, self.k))
        return float(np.mean(values))


@dataclass
class JudgedValidation:
    """Mean NDCG@10 of a cross-encoder ordering each validation query's judged products (its early stopping);
    picklable for a Ray worker."""

    queries: list[str]
    gains: list[dict[str, float]]
    texts: dict[str, str]  # product id -> text

    def __call__(self, ranker: Any) -> float:
        values = []
        for q, gains in zip(self.queries, self.gains, strict=True):
            ids = list(gains)
            s = ranker.score([q] * len(ids), [self.texts[i] for i in ids])
            values.append(ndcg_at_k([ids[i] for i in np.argsort(-s, kind="stable")], gains, 10))
        return float(np.mean(values)) if values else 0.0


@dataclass
class FusionRows:
    x: list[np.ndarray] = field(default_factory=list)
    gains: list[np.ndarray] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)

    def add(self, feats: np.ndarray, gains: np.ndarray) -> None:
        if len(feats) and gains.max() > 0:  # a query with nothing relevant teaches LambdaMART nothing
            self.x.append(feats)
            self.gains.append(gains)
            self.groups.append(len(feats))

    def arrays(self, columns: list[str]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        idx = [FEATURES.index(c) for c in columns]
        return np.concatenate(self.x)[:, idx], np.concatenate(self.gains), self.groups


def fusion_rows(stack: SearchStack, qset: QuerySet, queries: Sequence[str], progress: bool = False,
                desc: str = "features", models: Sequence[str] = ("fast", "full", "rerank")) -> dict[str, FusionRows]:
    """Features for the three fusion models; the cross-encoder scores what each would score online."""
    from tqdm.auto import tqdm

    out = {"fast": FusionRows(), "full": FusionRows(), "rerank": FusionRows()}
    vectors = stack.encode_queries(list(queries))
    for q, qvec in tqdm(list(zip(queries, vectors, strict=True)), desc=desc, disable=not progress):
        tokens = stack.tokens(q)
        judged = qset.gains[q]
        cand = stack.candidates(tokens, qvec)
        gains = np.asarray([judged.get(stack.catalog.ids[r], 0.0) for r in cand.rows], np.float32)
        feats = stack.features(q, tokens, cand.rows, cand.dense)
        out["fast"].add(feats, gains)
        if stack.cross is None:
            continue
        if "full" in models and "fast" in stack.fusion and len(cand.rows):
            top = top_k(stack.score("fast", feats), stack.config.rerank_top)
            ce = np.full(len(cand.rows), np.nan, np.float32)
            ce[top] = stack.cross_scores(q, cand.rows[top])
            out["full"].add(stack.features(q, tokens, cand.rows, cand.dense, ce), gains)
        rows = stack.catalog.rows(list(judged))
        rows = rows[rows >= 0]
        if "rerank" in models and len(rows) >= 2:
            jg = np.asarray([judged[stack.catalog.ids[r]] for r in rows], np.float32)
            ce = stack.cross_scores(q, rows)
            out["rerank"].add(stack.features(q, tokens, rows, stack.dense.cosine(qvec, rows), ce), jg)
    return out


# the training run ----------------------------------------------------------------------------------


def _sample(queries: list[str], limit: int | None, seed: int) -> list[str]:
    if limit is None or len(queries) <= limit:
        return queries
    return sorted(random.Random(seed).sample(queries, limit), key=queries.index)


def tune_fusion(train: FusionRows, valid: FusionRows, base: FusionConfig, trials: int, columns: list[str],
                seed: int = 0) -> tuple[FusionConfig, float]:
    """Optuna search of LambdaMART's hyper-parameters; the objective is validation NDCG@10."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    x, g, groups = train.arrays(columns)
    valid_arrays = valid.arrays(columns)

    def objective(trial: Any) -> float:
        config = replace(
            base,
            num_leaves=trial.suggest_int("num_leaves", 7, 127, log=True),
            learning_rate=trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            min_data_in_leaf=trial.suggest_int("min_data_in_leaf", 5, 200, log=True),
            feature_fraction=trial.suggest_float("feature_fraction", 0.4, 1.0),
            lambda_l2=trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
        )
        ranker = FusionRanker(columns, config).fit(x, g, groups, valid=valid_arrays)
        return float(ranker.booster.best_score["valid_0"]["ndcg@10"])

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return replace(base, **study.best_params), float(study.best_value)


def train_search(data: SearchData, config: SearchTrainConfig, progress: bool = True,
                 report: Report = print, tune: int = 0, encoder: Any = None, cache_dir: Path | None = None,
                 log_dir: Path | None = None, held_out: bool = False, ray: Any = None
                 ) -> tuple[SearchStack, dict[str, Any]]:
    """Train the whole stack on ``data.train`` (never on ``data.test``); returns it with a summary.

    ``tune``: Optuna trials for the fusion rankers' hyper-parameters on the validation queries;
    ``encoder``: the text encoder to start from (default: the configuration's); ``cache_dir``: where the
    base encoder's product vectors are cached; ``log_dir``: TensorBoard event files of both encoders;
    ``held_out``: report the held-out queries' counterfactual click estimate and NDCG (``summary["held_out"]``);
    ``ray``: a :class:`~shoprank.cluster.RayConfig`: the catalogue is embedded and both encoders trained
    data-parallel on its workers (``summary["ray"]`` says so)."""
    if ray is None:
        return _train_search(data, config, progress, report, tune, encoder, cache_dir, log_dir, held_out, None)
    from shoprank.cluster import cluster

    with cluster(ray):  # one cluster for the embedding and both trainings
        stack, summary = _train_search(data, config, progress, report, tune, encoder, cache_dir, log_dir, held_out,
                                       ray)
    summary["ray"] = ray.describe()
    return stack, summary


def _train_search(data: SearchData, config: SearchTrainConfig, progress: bool, report: Report, tune: int,
                  encoder: Any, cache_dir: Path | None, log_dir: Path | None, held_out: bool, ray: Any
                  ) -> tuple[SearchStack, dict[str, Any]]:
    from shoprank.search.stack import load_encoder

    on_ray = f" on Ray with {ray.workers} workers ({ray.where})" if ray is not None else None

    timings: dict[str, float] = {}
    summary: dict[str, Any] = {"profile": config.profile, "timings": timings, "labels": data.labels,
                               "train": {"query_encoder": config.biencoder.to_dict() if config.biencoder else None,
                                         "cross_encoder": config.cross.to_dict() if config.cross else None}}
    if data.behaviour:
        summary["behaviour"] = data.behaviour
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 1)
        clock = now
        report(f"  {name}: {timings[name]:.1f} s")

    if log_dir is not None:  # TensorBoard event files, one folder per model
        if config.cross is not None:
            config.cross = replace(config.cross, log_dir=str(log_dir / "cross_encoder"))
        if config.biencoder is not None:
            config.biencoder = replace(config.biencoder,
                                       train=replace(config.biencoder.train, log_dir=str(log_dir / "query_encoder")))
    parts = split_training(data, config)
    model_q = data.query_set(parts.train)
    fusion_q = data.query_set(parts.test)
    valid_q = data.query_set(parts.valid)
    model_queries = _sample(model_q.queries(), config.max_model_queries, config.seed)
    fusion_queries = _sample(fusion_q.queries(), config.max_fusion_queries, config.seed)
    valid_queries = _sample(valid_q.evaluable(), config.max_valid_queries, config.seed)
    fusion_valid = _sample(valid_q.evaluable(), config.max_fusion_valid_queries, config.seed)
    summary["queries"] = {"model": len(model_queries), "fusion": len(fusion_queries), "valid": len(valid_queries),
                          "fusion_valid": len(fusion_valid), "held_out_test": len(data.test_queries)}
    report(f"training queries: {len(model_queries)} for the encoders, {len(fusion_queries)} for fusion, "
           f"{len(valid_queries)} for validating the encoders, {len(fusion_valid)} for validating fusion; "
           f"{summary['queries']['held_out_test']} held out for testing")

    encoder = encoder if encoder is not None else load_encoder(config.stack)  # the document tower
    from shoprank.search.vectors import base_vectors

    stack = SearchStack.build(data.products, encoder, config.stack, vectors=np.zeros((len(data.products), 1)))
    lap("lexical index")
    rng = random.Random(config.seed)
    top_gain = data.top_gain
    examples: list[QueryExample] = []
    pairs = []
    from shoprank.encoders.cross_encoder import LabeledPair

    by_id = {p.id: p for p in data.products}
    row_of = stack.catalog.row_of
    for q in model_queries:
        judged = model_q.gains[q]
        mined_rows = mined_negatives(stack, q, set(judged), config.mined_negatives, rng)
        low = [row_of[pid] for pid, g in judged.items() if g < 0.25 * top_gain and pid in row_of]
        for pid, gain in judged.items():
            if pid not in by_id:
                continue
            pairs.append(LabeledPair(q, product_text(by_id[pid]), gain / top_gain))
            if gain >= 0.5 * top_gain:
                examples.append(QueryExample(q, row_of[pid], low + mined_rows))
        pairs.extend(LabeledPair(q, product_text(stack.catalog.products[r]), 0.0) for r in mined_rows)
    if config.max_biencoder_examples is not None and len(examples) > config.max_biencoder_examples:
        examples = rng.sample(examples, config.max_biencoder_examples)
    if config.max_cross_pairs is not None and len(pairs) > config.max_cross_pairs:
        pairs = rng.sample(pairs, config.max_cross_pairs)
    summary["training_pairs"] = {"query_encoder": len(examples), "cross_encoder": len(pairs)}

    if config.cross is not None and pairs:
        from shoprank.encoders.cross_encoder import CrossEncoderRanker, fine_tune_cross_encoder

        cross = CrossEncoderRanker.from_pretrained(None, config.cross_max_length, config.cross.dropout)
        stack.config = replace(stack.config, cross_max_length=config.cross_max_length)

        judged_ids = {pid for q in valid_queries for pid in valid_q.gains[q]}
        validate_cross = JudgedValidation(list(valid_queries), [dict(valid_q.gains[q]) for q in valid_queries],
                                          {pid: product_text(by_id[pid]) for pid in judged_ids})

        report(f"fine-tuning the cross-encoder on {len(pairs):,} pairs" + (on_ray or ""))
        if ray is not None:
            from shoprank.cluster.training import fine_tune_cross_encoder_on_ray

            history, where = fine_tune_cross_encoder_on_ray(cross, pairs, config.cross, validate_cross, ray,
                                                            config.cross_eval_every)
        else:
            history, where = fine_tune_cross_encoder(cross, pairs, config.cross, validate_cross, progress,
                                                     config.cross_eval_every), None
        summary["cross_encoder"] = {"valid_ndcg@10": max([h["val/ndcg@10"] for h in history if "val/ndcg@10" in h],
                                                         default=0.0), **({"ray": where} if where else {})}
        stack.cross = cross
        lap("cross-encoder fine-tuning")

    cache = cache_dir if config.stack.encoder == "biencoder" else None
    doc_tower = encoder  # what embeds the products, and new ones once the bundle serves
    if config.doc_tower == "distilled":
        doc_tower, vectors, summary["doc_tower"] = distilled_tower(data.products, encoder, config, cache, progress,
                                                                   report)
    elif config.doc_tower == "tuned":
        if config.stack.encoder != "biencoder" or config.biencoder is None or not examples:
            raise ValueError("a tuned document tower needs the MiniLM bi-encoder, fine-tuning and judged encoder "
                             "queries with a relevant product")
        doc_tower, vectors, summary["doc_tower"] = tuned_tower(stack, examples, valid_q, valid_queries, config,
                                                               progress, report)
    else:
        report(f"embedding {len(data.products):,} products with the base encoder (cached per catalogue)" +
               (on_ray or ""))
        docs = encoder
        if ray is not None and config.stack.encoder == "biencoder":
            from shoprank.cluster.embedding import EncoderSpec, RayDocEncoder

            docs = RayDocEncoder(encoder, EncoderSpec("docs", None, config.stack.doc_max_length), ray)
        vectors = base_vectors(data.products, docs, config.stack.doc_max_length, cache, progress)
    from shoprank.retrieval.dense import DenseIndex

    stack.dense = DenseIndex(vectors.shape[1], config.stack.index_kind).build(vectors)
    lap("product vectors")
    if config.stack.encoder == "biencoder" and config.biencoder is not None and examples and hasattr(encoder, "model"):
        from shoprank.encoders.biencoder import BiEncoder, DualEncoder, fine_tune_query_encoder

        valid_full = [q for q in valid_queries if max(valid_q.gains[q].values()) > 0]
        validate_query_tower = DenseValidation(valid_full, [dict(valid_q.gains[q]) for q in valid_full],
                                               stack.dense.vectors, list(stack.catalog.ids))

        start = doc_tower.fast_docs.source if config.doc_tower == "tuned" else None  # from the tuned tower
        tower = BiEncoder.load(start, max_length=config.stack.doc_max_length)
        report(f"fine-tuning the query encoder on {len(examples):,} (query, product) pairs against the "
               "frozen product vectors" + (on_ray or ""))
        if ray is not None:
            from shoprank.cluster.training import fine_tune_query_encoder_on_ray

            history, where = fine_tune_query_encoder_on_ray(tower, examples, stack.dense.vectors, config.biencoder,
                                                            validate_query_tower, ray)
        else:
            history, where = fine_tune_query_encoder(tower, examples, stack.dense.vectors, config.biencoder,
                                                     validate_query_tower, progress), None
        scores = [h["val/ndcg@10"] for h in history if "val/ndcg@10" in h]
        summary["query_encoder"] = {"valid_full_ndcg@10_before": round(scores[0], 4) if scores else None,
                                    "valid_full_ndcg@10": round(max(scores), 4) if scores else None,
                                    **({"ray": where} if where else {})}
        stack.encoder = DualEncoder(tower, doc_tower, ship_docs=doc_tower is not encoder)
        stack.config = replace(stack.config, encoder="dual")
        lap("query encoder fine-tuning")
    elif doc_tower is not encoder:  # the untuned query tower over the distilled product tower
        from shoprank.encoders.biencoder import BiEncoder, DualEncoder

        stack.encoder = DualEncoder(BiEncoder.load(None, max_length=config.stack.doc_max_length), doc_tower,
                                    ship_docs=True)
        stack.config = replace(stack.config, encoder="dual")

    if data.stats is not None:  # fusion rows see popularity and click-through counted without their own queries
        from shoprank.data.splits import normalise_query
        from shoprank.learning.labels import item_stats

        own = data.test_queries | {normalise_query(q) for q in fusion_q.queries()}
        stack.stats = item_stats(data.stat_events, data.train_log, data.propensities, own)
    train_rows = fusion_rows(stack, fusion_q, fusion_queries, progress, "fusion features", ["fast"])
    valid_rows = fusion_rows(stack, valid_q, fusion_valid, progress, "validation features", ["fast"])
    if tune > 0 and train_rows["fast"].groups and valid_rows["fast"].groups:
        report(f"tuning LambdaMART with {tune} Optuna trials on the validation queries")
        config.fusion, best = tune_fusion(train_rows["fast"], valid_rows["fast"], config.fusion, tune, FAST_FEATURES,
                                          config.seed)
        summary["tuned"] = {"valid_ndcg@10": round(best, 4), "fusion": asdict(config.fusion)}
        lap("tuning")
    fast = FusionRanker(FAST_FEATURES, config.fusion).fit(*train_rows["fast"].arrays(FAST_FEATURES),
                                                          valid=valid_rows["fast"].arrays(FAST_FEATURES))
    stack.fusion["fast"] = fast
    if stack.cross is not None:  # the full model needs the fast model's order: collect again
        models = ["full", "rerank"]
        train_rows = fusion_rows(stack, fusion_q, fusion_queries, progress, "fusion features (cross-encoder)", models)
        valid_rows = fusion_rows(stack, valid_q, fusion_valid, progress, "validation features (cross-encoder)",
                                 models)
        for name in ("full", "rerank"):
            if train_rows[name].groups and valid_rows[name].groups:
                stack.fusion[name] = FusionRanker(list(FEATURES), config.fusion).fit(
                    *train_rows[name].arrays(list(FEATURES)), valid=valid_rows[name].arrays(list(FEATURES)))
    summary["fusion"] = {name: {"trees": r.best_iteration, "top_features": list(r.importance())[:6]}
                         for name, r in stack.fusion.items()}
    if data.stats is not None:
        stack.stats = data.stats  # serving counts every training query's behaviour
    lap("fusion rankers")
    from shoprank.search.calibration import calibrate_training

    summary["matching"] = calibrate_training(stack, valid_q, 0.75 * top_gain)  # the result set's dense threshold
    lap("dense threshold")
    if held_out:
        from shoprank.search.held_out import held_out_report

        summary["held_out"] = held_out_report(stack, data)
        lap("held-out report")
    summary["seconds"] = round(sum(timings.values()), 1)
    return stack, summary
