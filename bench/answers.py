"""Answer matching on public intent sets, beside the baselines (protocols: ../shared/datasets/README.md).

    python -m bench.answers --sets banking77 --shots full          # BANKING77, all 10,003 training questions
    python -m bench.answers --sets banking77 --shots 1,5,10 --seeds 5
    python -m bench.answers --sets clinc150                       # in-scope accuracy, out-of-scope recall
    python -m bench.answers --sets atec --atec-train 8000         # Chinese question pairs: F1, AUC

Every method trains on the same training questions; validation questions (one in ten of each intent, or
CLINC150's val + oos_val) pick the logistic regression's C, early stopping, the temperature and the hand-over
threshold; the test questions are read once. "ours" is exactly what ``shoprank train answers`` does: on
CLINC150 its reject prototype ("none of these") trains on ``oos_train`` (``ours_noreject``: without it).
Writes bench/results/answers_<set>.json.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import random
import statistics
import time
from typing import Any

import numpy as np

from bench.common import table, write_json
from shoprank.answers.baselines import BM25Nearest, EncoderNearest, TfidfLogistic
from shoprank.answers.intents import banking77, clinc150, warmup_questions
from shoprank.answers.model import AnswerModel, BlendedMatcher, load_encoder, softmax
from shoprank.answers.records import FaqEntry
from shoprank.answers.train import (
    OUT_OF_SCOPE,
    AnswerTrainConfig,
    LabelledQuestions,
    choose_threshold,
    split_questions,
    train_matcher,
)
from shoprank.evaluation.metrics import accuracy, auc, expected_calibration_error, f1_binary, macro_f1
from shoprank.training.loop import TrainConfig


def pick_c(train: LabelledQuestions, val: LabelledQuestions, chars: bool = False) -> TfidfLogistic:
    """TF-IDF + LR with C chosen on the validation questions (10 when there are none)."""
    inside = [i for i, y in enumerate(val.labels) if y != OUT_OF_SCOPE]
    if not inside:
        return TfidfLogistic(10.0, chars).fit(train.texts, train.labels)
    best, best_acc = None, -1.0
    for c in (1.0, 10.0, 100.0):
        model = TfidfLogistic(c, chars).fit(train.texts, train.labels)
        acc = accuracy(model.scores([val.texts[i] for i in inside]).argmax(1), np.asarray(val.labels)[inside])
        if acc > best_acc:
            best, best_acc = model, acc
    assert best is not None
    return best


def closed_set(scores: np.ndarray, labels: np.ndarray, probs: np.ndarray | None = None) -> dict[str, float]:
    pred = scores.argmax(1)
    out = {"accuracy": accuracy(pred, labels), "macro_f1": macro_f1(pred, labels)}
    if probs is not None:
        out["ece"] = expected_calibration_error(probs.max(1), pred == labels)
    return out


def config_for(seed: int, epochs: int | None, answer_examples: bool = True) -> AnswerTrainConfig:
    """What ``shoprank train answers`` runs (its defaults), with this run's seed and, when given, epochs;
    ``answer_examples=False`` is ``--no-answer-examples`` (the answers, here the intent names, not trained on)."""
    shipped = AnswerTrainConfig()
    train = dataclasses.replace(shipped.train, seed=seed, **({"epochs": epochs} if epochs else {}))
    return dataclasses.replace(shipped, train=train, progress=True, answer_as_question=answer_examples)


# BANKING77 ----------------------------------------------------------------------------------------


def banking_entries(shots: int | None, seed: int) -> list[FaqEntry]:
    """BANKING77's training split as a FAQ: an entry an intent, its name the answer, ``shots`` of its questions
    sampled with ``seed`` (all of them without)."""
    texts, intents = banking77("train")
    names = sorted(set(intents))
    rng = random.Random(seed)
    by_intent: dict[str, list[str]] = {n: [] for n in names}
    for t, i in zip(texts, intents, strict=True):
        by_intent[i].append(t)
    entries = []
    for n in names:
        questions = list(by_intent[n])
        if shots:
            questions = rng.sample(questions, shots)
        entries.append(FaqEntry(id=n, answer=n, questions=tuple(questions)))
    return entries


def banking_run(shots: int | None, seed: int, methods: set[str], cache: dict[str, Any], epochs: int,
                answer_examples: bool = True
                ) -> dict[str, dict[str, float]]:
    test_texts, test_intents = banking77("test")
    entries = banking_entries(shots, seed)
    config = config_for(seed, epochs, answer_examples)
    ids, train, val = split_questions(entries, [], config)
    index = {n: i for i, n in enumerate(ids)}
    y_test = np.asarray([index[i] for i in test_intents])
    out: dict[str, dict[str, float]] = {}
    if "baselines" in methods:
        t0 = time.perf_counter()
        out["tfidf_lr"] = {**closed_set(pick_c(train, val).scores(test_texts), y_test),
                           "seconds": time.perf_counter() - t0}
        out["bm25_nearest"] = closed_set(BM25Nearest().fit(train.texts, train.labels).scores(test_texts), y_test)
        print(f"  baselines: {out}", flush=True)
    base = cache.setdefault("base", load_encoder("minilm", None, config.max_length))
    base_train = base_model_encode(base, train.texts)
    if "untuned" in methods:
        if "test_vectors" not in cache:
            cache["test_vectors"] = base_model_encode(base, test_texts)
        nearest = EncoderNearest(lambda x: base_model_encode(base, x))
        nearest.vectors, nearest.labels, nearest.n = base_train, np.asarray(train.labels), len(ids)
        out["untuned_nearest"] = closed_set(nearest.scores_from(cache["test_vectors"]), y_test)
        frozen, report = train_matcher(ids, train, val, dataclasses.replace(config, fine_tune=False, e5_weight=0.0),
                                       encoder=base, train_vectors=base_train)
        assert isinstance(frozen, AnswerModel)  # the untuned MiniLM alone
        s = frozen.scores(cache["test_vectors"])
        out["untuned_prototypes"] = {**closed_set(s, y_test, softmax(s / frozen.temperature)),
                                     "seconds": report.seconds}
        print(f"  untuned: {out}", flush=True)
    for name, warm in (("ours", False), ("ours_warmup", True)):
        if name not in methods:
            continue
        encoder = copy.deepcopy(warmed(cache) if warm else base)
        model, report = train_matcher(ids, train, val, config, encoder=encoder,
                                      train_vectors=None if warm else base_train)
        members = model.members if isinstance(model, BlendedMatcher) else [model]
        if any(m.params.encoder == "e5" for m in members) and "e5_test_vectors" not in cache:
            cache["e5_test_vectors"] = next(m for m in members if m.params.encoder == "e5").encode(test_texts)
        own = [m.scores(cache["e5_test_vectors"] if m.params.encoder == "e5" else m.encode(test_texts))
               for m in members]  # E5 is frozen: its vectors of the test questions are the same every seed
        s = model.blend(own) if isinstance(model, BlendedMatcher) else own[0]
        out[name] = {**closed_set(s, y_test, model.entry_probabilities(s)), "seconds": report.seconds,
                     "val_accuracy": report.val.get("val_accuracy", float("nan")), "blend": report.blend,
                     "members": {m.params.encoder: closed_set(z, y_test)["accuracy"]
                                 for m, z in zip(members, own, strict=True)} if len(members) > 1 else {}}
        print(f"  {name}: {out[name]}", flush=True)
    return out


def base_model_encode(encoder: Any, texts: list[str]) -> np.ndarray:
    from shoprank.answers.model import normalize

    return normalize(np.asarray(encoder.encode_queries(texts), np.float32))


def warmed(cache: dict[str, Any]) -> Any:
    """MiniLM after one classification pass over CLINC150 (30 questions of each of its 150 intents)."""
    if "warm" not in cache:
        from shoprank.answers.train import centroids, fine_tune_classifier

        encoder = copy.deepcopy(cache["base"])
        warm = warmup_questions(["clinc150"], per_intent=30)
        t0 = time.perf_counter()
        config = AnswerTrainConfig(train=TrainConfig(epochs=1, batch_size=32, learning_rate=8e-5, patience=0),
                                   min_steps=0)
        start = centroids(base_model_encode(encoder, warm.texts), np.asarray(warm.labels), max(warm.labels) + 1)
        fine_tune_classifier(encoder.model, warm, start, config, desc="warm-up on CLINC150")
        cache["warm_seconds"] = time.perf_counter() - t0
        cache["warm"] = encoder
    return cache["warm"]


def bench_banking(args: argparse.Namespace, methods: set[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    cache: dict[str, Any] = {}
    for shot in args.shots.split(","):
        shots = None if shot == "full" else int(shot)
        seeds = [0] if shots is None else list(range(args.seeds))
        runs = []
        for seed in seeds:
            print(f"BANKING77 {shot}-shot seed {seed}", flush=True)
            runs.append(banking_run(shots, seed, methods, cache, args.epochs, not args.no_answer_examples))
        summary = {}
        for method in runs[0]:
            accs = [r[method]["accuracy"] for r in runs]
            f1s = [r[method]["macro_f1"] for r in runs]
            summary[method] = {"accuracy": statistics.mean(accs), "accuracy_sd": statistics.pstdev(accs),
                               "macro_f1": statistics.mean(f1s), "runs": runs and [r[method] for r in runs]}
        results[shot] = summary
        rows = [[m, f"{v['accuracy']:.4f} ± {v['accuracy_sd']:.4f}", f"{v['macro_f1']:.4f}"]
                for m, v in summary.items()]
        print(f"\nBANKING77 {shot} ({len(seeds)} seed(s))\n" + table(["method", "accuracy", "macro-F1"], rows))
        write_json(f"answers_banking77{args.tag}", {"args": vars(args), "results": results, "partial": True})
    if "warm_seconds" in cache:
        results["warmup_seconds"] = cache["warm_seconds"]
    return results


# CLINC150 ----------------------------------------------------------------------------------------


def bench_clinc(args: argparse.Namespace, methods: set[str]) -> dict[str, Any]:
    tr_t, tr_i = clinc150("train")
    names = sorted(set(tr_i))
    index = {n: i for i, n in enumerate(names)}
    if args.clinc_per_intent:  # a sample of each intent's training questions (CPU time), the same for all methods
        rng = random.Random(0)
        keep: dict[str, list[int]] = {}
        for j, intent in enumerate(tr_i):
            keep.setdefault(intent, []).append(j)
        rows = sorted(j for js in keep.values() for j in rng.sample(js, min(len(js), args.clinc_per_intent)))
        tr_t, tr_i = [tr_t[j] for j in rows], [tr_i[j] for j in rows]
    train = LabelledQuestions(tr_t, [index[i] for i in tr_i])

    def part(name: str, oos: str) -> LabelledQuestions:
        t, i = clinc150(name)
        o, _ = clinc150(oos)
        return LabelledQuestions(t + o, [index[x] for x in i] + [OUT_OF_SCOPE] * len(o))

    val, test = part("val", "oos_val"), part("test", "oos_test")
    # the protocol's val split chooses the threshold and never trains: no refit (a shop's own validation
    # questions, split from its FAQ, do train the refit: with 15,000 training questions there is none anyway)
    config = dataclasses.replace(config_for(0, args.clinc_epochs), refit=False)
    reject = clinc150("oos_train")[0] if config.reject_share > 0 else []  # train the reject prototype
    y_val, y_test = np.asarray(val.labels), np.asarray(test.labels)

    def evaluate(score_val: np.ndarray, score_test: np.ndarray, threshold: float | None = None) -> dict[str, float]:
        inside_t = y_test != OUT_OF_SCOPE
        conf_t = score_test.max(1)
        if threshold is None:  # chosen on validation (a trained matcher brings its own, chosen the same way)
            inside_v, conf_v = y_val != OUT_OF_SCOPE, score_val.max(1)
            correct_v = score_val.argmax(1) == y_val
            threshold, _ = choose_threshold(conf_v[inside_v], correct_v[inside_v], conf_v[~inside_v],
                                            config.oos_share, config.max_handoff)
        correct_t = score_test.argmax(1) == y_test
        return {"in_scope_accuracy": float((correct_t & (conf_t >= threshold))[inside_t].mean()),
                "oos_recall": float((conf_t < threshold)[~inside_t].mean()),
                "closed_set_accuracy": float(correct_t[inside_t].mean()), "threshold": float(threshold)}

    out: dict[str, Any] = {}
    if "baselines" in methods:
        lr = pick_c(train, val)
        out["tfidf_lr"] = evaluate(lr.scores(val.texts), lr.scores(test.texts))
        bm = BM25Nearest().fit(train.texts, train.labels)
        out["bm25_nearest"] = evaluate(bm.scores(val.texts), bm.scores(test.texts))
        print(out, flush=True)
    base = load_encoder("minilm", None, config.max_length)
    t0 = time.perf_counter()
    base_train = base_model_encode(base, train.texts)  # computed once: the nearest example and both prototypes
    out["encode_train_seconds"] = time.perf_counter() - t0
    print(f"encoded {len(train)} training questions in {out['encode_train_seconds']:.0f} s", flush=True)
    if "untuned" in methods:
        vv, vt = base_model_encode(base, val.texts), base_model_encode(base, test.texts)
        nearest = EncoderNearest(lambda x: base_model_encode(base, x))
        nearest.vectors, nearest.labels, nearest.n = base_train, np.asarray(train.labels), len(names)
        out["untuned_nearest"] = evaluate(nearest.scores_from(vv), nearest.scores_from(vt))
        frozen, _ = train_matcher(names, train, val, dataclasses.replace(config, fine_tune=False, e5_weight=0.0),
                                  encoder=base, train_vectors=base_train, reject=reject)
        assert isinstance(frozen, AnswerModel)  # the untuned MiniLM alone
        out["untuned_prototypes"] = evaluate(frozen.entry_probabilities(frozen.scores(vv)),
                                             frozen.entry_probabilities(frozen.scores(vt)), frozen.threshold)
        print(out, flush=True)
    for method in ("ours", "ours_noreject"):
        if method not in methods:
            continue
        model, report = train_matcher(names, train, val, config, encoder=copy.deepcopy(base),
                                      train_vectors=base_train, reject=reject if method == "ours" else ())
        probs = model.probabilities(test.texts)
        inside = y_test != OUT_OF_SCOPE
        out[method] = {**evaluate(probs, probs, model.threshold), "seconds": report.seconds,
                       "temperature": model.temperature, "val": report.val, "blend": report.blend,
                       "ece_in_scope": expected_calibration_error(probs[inside].max(1),
                                                                  probs[inside].argmax(1) == y_test[inside])}
    rows = [[m, v["in_scope_accuracy"], v["oos_recall"], v["closed_set_accuracy"]] for m, v in out.items()
            if isinstance(v, dict)]
    print("\nCLINC150 (threshold on val + oos_val, oos_share "
          f"{config.oos_share})\n" + table(["method", "in-scope acc", "OOS recall", "closed-set acc"], rows))
    return out


# ATEC --------------------------------------------------------------------------------------------


def atec_split(seed: int = 0) -> dict[str, tuple[list[str], list[str], np.ndarray]]:
    import csv

    from shoprank.datasets.base import data_root

    with (data_root() / "atec_afqmc" / "atec_nlp_sim_train.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if len(r) == 4]
    order = np.random.default_rng(seed).permutation(len(rows))
    cut1, cut2 = int(0.8 * len(rows)), int(0.9 * len(rows))
    parts = {"train": order[:cut1], "val": order[cut1:cut2], "test": order[cut2:]}
    return {k: ([rows[i][1] for i in v], [rows[i][2] for i in v], np.asarray([int(rows[i][3]) for i in v]))
            for k, v in parts.items()}


def pair_scores(score: np.ndarray, y_val: np.ndarray, test_score: np.ndarray, y_test: np.ndarray
                ) -> dict[str, float]:
    """F1 of "same" with the threshold that maximises it on validation; AUC needs none."""
    best_t, best_f1 = 0.0, -1.0
    for t in np.quantile(score, np.linspace(0.5, 0.995, 100)):
        f1 = f1_binary(score >= t, y_val == 1)
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return {"f1": f1_binary(test_score >= best_t, y_test == 1), "auc": auc(test_score, y_test),
            "val_f1": best_f1, "threshold": best_t}


def bench_atec(args: argparse.Namespace, methods: set[str]) -> dict[str, Any]:
    data = atec_split(0)
    rng = np.random.default_rng(0)
    a_tr, b_tr, y_tr = data["train"]
    keep = rng.permutation(len(y_tr))[: args.atec_train]
    a_tr, b_tr, y_tr = [a_tr[i] for i in keep], [b_tr[i] for i in keep], y_tr[keep]
    (a_v, b_v, y_v), (a_t, b_t, y_t) = data["val"], data["test"]
    if args.atec_eval:  # a sample of the validation and test pairs (CPU time), the same for every method
        kv, kt = rng.permutation(len(y_v))[: args.atec_eval], rng.permutation(len(y_t))[: args.atec_eval]
        a_v, b_v, y_v = [a_v[i] for i in kv], [b_v[i] for i in kv], y_v[kv]
        a_t, b_t, y_t = [a_t[i] for i in kt], [b_t[i] for i in kt], y_t[kt]
    out: dict[str, Any] = {"train_pairs": len(y_tr), "val_pairs": len(y_v), "test_pairs": len(y_t)}
    if "baselines" in methods:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True).fit(a_tr + b_tr)
        import scipy.sparse as sp

        def feats(a: list[str], b: list[str]) -> Any:
            x, z = vec.transform(a), vec.transform(b)
            return sp.hstack([abs(x - z), x.multiply(z)]).tocsr()

        best = None
        for c in (0.1, 1.0, 10.0):
            lr = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(feats(a_tr, b_tr), y_tr)
            result = pair_scores(lr.predict_proba(feats(a_v, b_v))[:, 1], y_v, lr.predict_proba(feats(a_t, b_t))[:, 1],
                                 y_t)
            if best is None or result["val_f1"] > best["val_f1"]:
                best = {**result, "c": c}
        out["tfidf_lr"] = best
        from shoprank.answers.baselines import BM25Index

        def bm25(a: list[str], b: list[str]) -> np.ndarray:
            index = BM25Index(a_tr + b_tr)  # document statistics from the training sentences
            qa, qb = index.query_vectors(a), index.query_vectors(b)
            # BM25 of each sentence against the other, as a document indexed with the training statistics
            da, db = _bm25_docs(index, a), _bm25_docs(index, b)
            s_ab = np.asarray(qa.multiply(db).sum(1)).ravel()
            s_ba = np.asarray(qb.multiply(da).sum(1)).ravel()
            return (s_ab + s_ba) / 2

        out["bm25"] = pair_scores(bm25(a_v, b_v), y_v, bm25(a_t, b_t), y_t)
        print(out, flush=True)
    encoders = [e for e in ("minilm", "e5") if f"untuned_{e}" in methods or f"head_{e}" in methods]
    for kind in encoders:
        enc = load_encoder(kind, None, 48)
        t0 = time.perf_counter()
        vec_v = [base_model_encode(enc, a_v), base_model_encode(enc, b_v)]
        vec_t = [base_model_encode(enc, a_t), base_model_encode(enc, b_t)]
        out[f"untuned_{kind}"] = pair_scores((vec_v[0] * vec_v[1]).sum(1), y_v, (vec_t[0] * vec_t[1]).sum(1), y_t)
        out[f"untuned_{kind}"]["encode_seconds"] = time.perf_counter() - t0
        print(out, flush=True)
        if f"head_{kind}" in methods:
            from sklearn.linear_model import LogisticRegression

            vec_tr = [base_model_encode(enc, a_tr), base_model_encode(enc, b_tr)]

            def pf(u: list[np.ndarray]) -> np.ndarray:
                return np.hstack([u[0] * u[1], np.abs(u[0] - u[1]), (u[0] * u[1]).sum(1, keepdims=True)])

            best = None
            for c in (0.1, 1.0, 10.0):
                lr = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(pf(vec_tr), y_tr)
                r = pair_scores(lr.predict_proba(pf(vec_v))[:, 1], y_v, lr.predict_proba(pf(vec_t))[:, 1], y_t)
                if best is None or r["val_f1"] > best["val_f1"]:
                    best = {**r, "c": c}
            out[f"head_{kind}"] = best
            print(out, flush=True)
    if "tuned_minilm" in methods:
        out["tuned_minilm"] = atec_fine_tune(a_tr, b_tr, y_tr, (a_v, b_v, y_v), (a_t, b_t, y_t))
    rows = [[m, v["f1"], v["auc"]] for m, v in out.items() if isinstance(v, dict)]
    print(f"\nATEC ({len(y_tr)} training pairs)\n" + table(["method", "F1 (same)", "AUC"], rows))
    return out


def _bm25_docs(index: Any, texts: list[str]) -> Any:
    """Texts as BM25-weighted document rows (n, terms) under the index's statistics."""
    import scipy.sparse as sp

    rows, cols, vals = [], [], []
    lengths = []
    for i, t in enumerate(texts):
        toks = index.analyzer(t)
        lengths.append(len(toks))
        counts: dict[int, int] = {}
        for tok in toks:
            j = index.vocab.get(tok)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        for j, c in counts.items():
            rows.append(i)
            cols.append(j)
            vals.append(c)
    tf = np.asarray(vals, np.float64)
    length = np.asarray(lengths, np.float64)[rows] if rows else np.zeros(0)
    avgdl = max(float(np.mean(lengths)), 1e-9) if lengths else 1.0
    w = tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / avgdl)) * index.idf[cols] if rows else tf
    return sp.csr_matrix((w, (rows, cols)), shape=(len(texts), len(index.idf)))


def atec_fine_tune(a: list[str], b: list[str], y: np.ndarray, val: tuple[Any, ...], test: tuple[Any, ...]
                   ) -> dict[str, float]:
    """MiniLM (its vocabulary holds CJK characters) fine-tuned on the pairs: scaled cosine, binary
    cross-entropy, the shared training controls; best epoch on validation AUC."""
    import torch
    import torch.nn.functional as F

    from shoprank.training.loop import make_optimizer, seed_everything

    seed_everything(0)
    enc = load_encoder("minilm", None, 48)
    model = enc.model
    tc = TrainConfig(epochs=1, batch_size=32, learning_rate=5e-5)
    steps = len(y) // tc.batch_size
    optimizer, scheduler = make_optimizer(model, tc, steps * tc.epochs)
    scale, bias = torch.nn.Parameter(torch.tensor(10.0)), torch.nn.Parameter(torch.tensor(-7.0))
    optimizer.add_param_group({"params": [scale, bias], "weight_decay": 0.0, "lr": 1e-2})
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, scheduler.lr_lambdas[0])
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    order = np.random.default_rng(0).permutation(len(y))
    model.train()
    for s in tqdm(range(steps), desc="ATEC MiniLM fine-tuning", mininterval=5):
        rows = order[s * tc.batch_size : (s + 1) * tc.batch_size]
        u = F.normalize(model(model.preprocess([a[i] for i in rows]))["sentence_embedding"], dim=1)
        v = F.normalize(model(model.preprocess([b[i] for i in rows]))["sentence_embedding"], dim=1)
        logit = scale * (u * v).sum(1) + bias
        loss = F.binary_cross_entropy_with_logits(logit, torch.tensor(y[rows], dtype=torch.float32))
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    model.eval()
    seconds = time.perf_counter() - t0

    def cos(p: tuple[Any, ...]) -> np.ndarray:
        return (base_model_encode(enc, p[0]) * base_model_encode(enc, p[1])).sum(1)

    return {**pair_scores(cos(val), val[2], cos(test), test[2]), "train_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="banking77,clinc150,atec")
    parser.add_argument("--shots", default="full,1,5,10", help="BANKING77: full and/or examples per intent")
    parser.add_argument("--seeds", type=int, default=5, help="few-shot seeds (the protocol's 5)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="BANKING77 fine-tuning epochs (early-stopped; default: what shoprank train answers runs)")
    parser.add_argument("--clinc-epochs", type=int, default=2)
    parser.add_argument("--clinc-per-intent", type=int, default=0,
                        help="CLINC150: train on this many of each intent's 100 training questions (0: all)")
    parser.add_argument("--atec-train", type=int, default=8000, help="ATEC training pairs sampled (0: all)")
    parser.add_argument("--atec-eval", type=int, default=0,
                        help="ATEC: score this many sampled validation and test pairs (0: all 3,935 of each)")
    parser.add_argument("--methods", default="baselines,untuned,ours,ours_warmup,untuned_minilm,untuned_e5,"
                        "head_e5,tuned_minilm")
    parser.add_argument("--no-answer-examples", action="store_true",
                        help="BANKING77: every method trains on the k questions alone (the protocol's strict "
                             "k-shot); by default each FAQ answer, the intent's name, trains too, as in "
                             "shoprank train answers")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="", help="suffix of the result file")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    methods = set(args.methods.split(","))
    for name in args.sets.split(","):
        started = time.perf_counter()
        if name == "banking77":
            result = bench_banking(args, methods)
        elif name == "clinc150":
            result = bench_clinc(args, methods)
        elif name == "atec":
            if args.atec_train == 0:
                args.atec_train = 10**9
            result = bench_atec(args, methods)
        else:
            raise SystemExit(f"unknown set {name!r}; valid: banking77, clinc150, atec")
        path = write_json(f"answers_{name}{args.tag}", {"args": vars(args), "results": result,
                                                        "seconds": time.perf_counter() - started})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
