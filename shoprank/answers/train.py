"""Training the answer matcher on a shop's FAQ (and past conversations).

1. Split: every entry with at least ``min_questions_for_val`` questions gives one question in ten (at least
   one) to validation; past conversations are split the same way. Conversations no entry answered are
   out-of-scope questions: with at least ``min_reject`` of them, ``reject_share`` train a "none of these"
   prototype (the reject class) and the rest validate; with fewer, all validate.
2. Optionally warm the encoder up on public intent sets (CLINC150, BANKING77; see intents.py): a
   classification pass over their intents with a throw-away head.
3. Fine-tune MiniLM with a cosine classifier over the entries and the reject prototype, when there is one
   (prototypes start at each class's mean question vector), cross-entropy, the shared training controls,
   early stopping on validation accuracy over the entries.
   With the frozen multilingual E5 encoder only the prototypes are trained.
4. Calibrate: one softmax temperature fitted on validation (least negative log-likelihood).
5. Hand-over threshold on the calibrated top probability, chosen on validation: with out-of-scope examples,
   the threshold that maximises ``(1 - oos_share) * answered-correctly + oos_share * out-of-scope handed
   over`` (``oos_share``: the stated share of questions the FAQ does not cover); without them, the threshold
   that hands over ``max_handoff`` of the answerable validation questions.
6. Refit: train again from the start on every question (validation's in-scope ones too) for the epochs (or
   prototype steps) validation chose; the temperature and threshold stay those of the validated matcher.
7. Small English FAQs (``e5_max_per_entry``): a frozen-E5 matcher is trained the same way and blended with
   the MiniLM one (weighted calibrated log-probabilities), the blend calibrated and thresholded on validation,
   and kept only where validation answers more questions right with it than with MiniLM alone.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shoprank.answers.model import (
    ENCODERS,
    AnswerModel,
    BlendedMatcher,
    Matcher,
    MatcherParams,
    load_encoder,
    normalize,
    softmax,
)
from shoprank.answers.records import PLACEHOLDER, Conversation, FaqEntry
from shoprank.training.loop import TrainConfig, fit, freeze_transformer, make_optimizer, set_dropout

OUT_OF_SCOPE = -1
"""The label of a validation question no entry answers."""


@dataclass
class AnswerTrainConfig:
    """How ``shoprank train answers`` trains. Defaults suit 3 to a few hundred questions per entry."""

    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=4, batch_size=32, learning_rate=8e-5, patience=1, warmup_ratio=0.1))
    encoder: str = "auto"  # minilm | e5 | auto (e5 when most questions are Chinese, Japanese or Korean)
    base_model: str | None = None  # a local MiniLM-style folder; default all-MiniLM-L6-v2
    max_length: int = 32  # tokens; customer questions are short (BANKING77: 95% under 27)
    fine_tune: bool = True  # False: train the prototypes only, over the frozen encoder
    min_steps: int = 150  # few questions: run at least this many optimiser steps (more epochs)
    scale: float = 20.0  # cosine * scale are the logits during training
    head_learning_rate: float = 2e-3  # the prototypes learn faster than the encoder
    val_share: float = 0.1
    min_questions_for_val: int = 3
    oos_share: float = 0.2  # stated share of questions the FAQ does not cover (threshold choice)
    max_handoff: float = 0.05  # without out-of-scope examples: answerable validation questions handed over
    warmup_epochs: int = 1  # passes over the public intent sets, when given
    reject_share: float = 0.5  # out-of-scope examples that train the reject prototype (the rest validate)
    min_reject: int = 20  # fewer out-of-scope examples than this: all of them validate, no reject prototype
    answer_as_question: bool = True  # each entry's answer text (placeholders dropped) trains as one more question
    refit: bool = True  # after validation chose the epochs, temperature and threshold: train again on every question
    refit_max_questions: int = 5000  # more training questions than this: no refit (it doubles training time)
    e5_weight: float = 0.5  # MiniLM matchers: blended with a frozen-E5 matcher at this weight (0: MiniLM alone)
    e5_max_per_entry: float = 20.0  # ... when entries have at most this many training questions on average
    progress: bool = True

    def __post_init__(self) -> None:
        if self.encoder not in (*ENCODERS, "auto"):
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)} or auto, got {self.encoder!r}")
        if not 0 < self.val_share < 1:
            raise ValueError("val_share must lie strictly between 0 and 1")
        if not 0 <= self.oos_share < 1 or not 0 <= self.max_handoff < 1 or not 0 <= self.reject_share < 1:
            raise ValueError("oos_share, max_handoff and reject_share are shares: they must lie in [0, 1)")
        if self.min_questions_for_val < 2:
            raise ValueError("min_questions_for_val must be at least 2 (one stays for training)")
        if self.max_length < 8:
            raise ValueError("max_length must be at least 8 tokens")
        if not 0 <= self.e5_weight < 1:
            raise ValueError("e5_weight is the E5 matcher's share of a blend: it must lie in [0, 1)")


@dataclass
class LabelledQuestions:
    texts: list[str]
    labels: list[int]  # entry index, or OUT_OF_SCOPE

    def __len__(self) -> int:
        return len(self.texts)


def mostly_cjk(texts: Sequence[str]) -> bool:
    from shoprank.text.chinese import has_cjk

    return bool(texts) and sum(has_cjk(t) for t in texts) > len(texts) / 2


def split_questions(entries: Sequence[FaqEntry], conversations: Sequence[Conversation], config: AnswerTrainConfig
                    ) -> tuple[list[str], LabelledQuestions, LabelledQuestions]:
    """(entry ids, training questions, validation questions) with a fixed seed."""
    rng = random.Random(config.train.seed)
    ids = [e.id for e in entries]
    index = {e: i for i, e in enumerate(ids)}
    pools: dict[int, list[str]] = {i: list(e.questions) for i, e in enumerate(entries)}
    oos: list[str] = []
    for c in conversations:
        if c.faq_id is None:
            oos.append(c.question)
        elif c.faq_id in index:
            pools[index[c.faq_id]].append(c.question)
        else:
            raise ValueError(f"a conversation names the FAQ entry {c.faq_id!r}, which the FAQ does not hold")
    train, val = LabelledQuestions([], []), LabelledQuestions([], [])
    for i, questions in pools.items():
        questions = list(dict.fromkeys(questions))
        rng.shuffle(questions)
        n_val = max(1, round(config.val_share * len(questions))) if len(questions) >= config.min_questions_for_val \
            else 0
        for j, q in enumerate(questions):
            part = val if j < n_val else train
            part.texts.append(q)
            part.labels.append(i)
    if config.answer_as_question:  # an answer text shared by two entries, or another's question, teaches nothing
        texts = [answer_question(entry.answer) for entry in entries]
        shared = {t for t, n in Counter(texts).items() if n > 1}
        owner = {q: i for i, questions in pools.items() for q in questions}
        for i, text in enumerate(texts):
            if text and text not in shared and owner.get(text, i) == i and text not in pools[i]:
                train.texts.append(text)
                train.labels.append(i)
    for q in oos:
        val.texts.append(q)
        val.labels.append(OUT_OF_SCOPE)
    return ids, train, val


def answer_question(answer: str) -> str:
    """An answer text as a training example of its entry: placeholders dropped, underscores read as spaces
    (an answer that is an intent's name, ``card_arrival``, reads "card arrival"), whitespace collapsed."""
    return " ".join(PLACEHOLDER.sub(" ", answer).replace("_", " ").split())


# fitting ---------------------------------------------------------------------------------------


def split_out_of_scope(questions: Sequence[str], config: AnswerTrainConfig) -> tuple[list[str], list[str]]:
    """(reject training questions, out-of-scope validation questions), seeded; see the module's docstring."""
    pool = list(dict.fromkeys(questions))
    if len(pool) < config.min_reject or config.reject_share <= 0:
        return [], pool
    random.Random(config.train.seed + 1).shuffle(pool)
    n = min(len(pool) - 1, round(config.reject_share * len(pool)))
    return pool[:n], pool[n:]


def centroids(vectors: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, vectors.shape[1]), np.float32)
    np.add.at(out, labels, vectors)
    return normalize(out)  # (n, d)


def _accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    from shoprank.evaluation.metrics import accuracy

    return accuracy(scores.argmax(axis=1), labels) if len(labels) else 0.0


def fine_tune_classifier(
    st_model: Any,
    train: LabelledQuestions,
    prototypes: np.ndarray,
    config: AnswerTrainConfig,
    validate: Callable[[np.ndarray], float] | None = None,
    desc: str = "answers",
    planned_epochs: int | None = None,
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Cross-entropy over cosine logits, encoder and prototypes together; returns the best prototypes.

    ``validate(prototypes)`` scores the model as it is now (higher is better); the best state is kept.
    ``planned_epochs``: the learning-rate schedule (warm-up, linear decay) spans this many epochs even where
    training stops sooner (a refit that repeats the first epochs of a longer, early-stopped run)."""
    import torch
    import torch.nn.functional as F

    tc = config.train
    rng = random.Random(tc.seed)
    torch.manual_seed(tc.seed)
    st_model.max_seq_length = config.max_length
    freeze_transformer(st_model[0].auto_model, tc.freeze)
    set_dropout(st_model, tc.dropout)
    weight = torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(prototypes, dtype=np.float32)))
    labels = torch.tensor(train.labels)
    steps_per_epoch = max(1, math.ceil(len(train) / tc.batch_size))
    epochs = planned_epochs_for(config, len(train))
    optimizer, scheduler = make_optimizer(st_model, tc, steps_per_epoch * max(epochs, planned_epochs or 0))
    optimizer.add_param_group({"params": [weight], "weight_decay": 0.0, "lr": config.head_learning_rate})
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, scheduler.lr_lambdas[0])  # the same warm-up, every group
    model = torch.nn.Module()  # the encoder, then the prototypes: what is clipped, validated and kept
    model.encoder = st_model
    model.head = torch.nn.Module()
    model.head.weight = weight

    def batches(epoch: int) -> Iterator[list[int]]:
        order = _length_buckets(train.texts, tc.batch_size, rng)
        for b in range(steps_per_epoch):
            yield order[b * tc.batch_size : (b + 1) * tc.batch_size]

    def loss_step(rows: list[int]) -> torch.Tensor:
        features = st_model.preprocess([train.texts[i] for i in rows])
        q = F.normalize(st_model(features)["sentence_embedding"], dim=1)  # (b, d)
        logits = config.scale * q @ F.normalize(weight, dim=1).T  # (b, entries)
        return F.cross_entropy(logits, labels[rows])

    result = fit(model, batches, loss_step, tc, steps_per_epoch=steps_per_epoch, epochs=epochs,
                 evaluate=(lambda: validate(weight.detach().numpy().copy())) if validate is not None else None,
                 metric="val/accuracy", optimizer=(optimizer, scheduler), desc=desc, progress=config.progress)
    return normalize(weight.detach().numpy().copy()), result.history


def planned_epochs_for(config: AnswerTrainConfig, questions: int) -> int:
    """The epochs :func:`fine_tune_classifier` plans for ``questions``: ``epochs``, more to reach ``min_steps``."""
    steps_per_epoch = max(1, math.ceil(questions / config.train.batch_size))
    return max(config.train.epochs, math.ceil(config.min_steps / steps_per_epoch))


def _length_buckets(texts: Sequence[str], batch_size: int, rng: random.Random) -> list[int]:
    """A shuffled order in which each batch holds texts of similar length (less padding, same epoch)."""
    order = list(range(len(texts)))
    rng.shuffle(order)
    chunk = batch_size * 8
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(texts[i]))
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return [i for batch in batches for i in batch]


def train_prototypes(vectors: np.ndarray, labels: np.ndarray, prototypes: np.ndarray, config: AnswerTrainConfig,
                     val: tuple[np.ndarray, np.ndarray] | None = None, steps: int = 300,
                     entries: int | None = None) -> tuple[np.ndarray, int]:
    """The prototypes alone over fixed question vectors (frozen encoder): full-batch Adam on cross-entropy, through
    the shared loop (one epoch of ``steps`` full batches, validated every 25 steps, the best prototypes kept).
    ``entries``: how many of the prototypes are entries (validation accuracy is over them; the rest reject).
    Returns the prototypes and the step they are from (``steps`` without validation)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(config.train.seed)
    x = torch.from_numpy(vectors)
    y = torch.from_numpy(labels.astype(np.int64))
    weight = torch.nn.Parameter(torch.from_numpy(prototypes.copy()))
    model = torch.nn.Module()
    model.weight = weight
    optimizer = torch.optim.Adam([weight], lr=1e-2)
    constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    controls = dataclasses.replace(config.train, epochs=1, patience=steps, max_grad_norm=math.inf, log_dir=None)

    def evaluate() -> float:
        assert val is not None
        return _accuracy(val[0] @ normalize(weight.detach().numpy()[:entries]).T, val[1])

    result = fit(model, lambda epoch: iter(range(steps)),
                 lambda _: F.cross_entropy(config.scale * x @ F.normalize(weight, dim=1).T, y), controls,
                 steps_per_epoch=steps, evaluate=evaluate if val is not None else None, metric="val/accuracy",
                 eval_every=25, optimizer=(optimizer, constant), desc="prototypes", progress=False)
    return normalize(weight.detach().numpy()), best_step(result.history, "val/accuracy", steps)


def best_step(history: Sequence[dict[str, float]], metric: str, default: int) -> int:
    """The step of the first best validation score in a :func:`fit` history (``default`` without any)."""
    scored = [h for h in history if metric in h]
    if not scored:
        return default
    top = max(h[metric] for h in scored)
    return int(next(h["step"] for h in scored if h[metric] == top))


MIN_CALIBRATION_QUESTIONS = 20
"""Fewer validation questions than this: the temperature stays 1 (a handful would push it to an extreme)."""


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature in [0.25, 10] with the least negative log-likelihood of the true entries."""
    if len(labels) < MIN_CALIBRATION_QUESTIONS:
        return 1.0
    best, best_nll = 1.0, math.inf
    for t in np.exp(np.linspace(math.log(0.25), math.log(10.0), 81)):
        p = softmax(scores / t)[np.arange(len(labels)), labels]
        nll = float(-np.log(np.maximum(p, 1e-12)).mean())
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def choose_threshold(conf_in: np.ndarray, correct_in: np.ndarray, conf_oos: np.ndarray, oos_share: float,
                     max_handoff: float) -> tuple[float, dict[str, float]]:
    """The hand-over threshold on validation (see the module's docstring) and what it gives there."""
    if len(conf_in) == 0:
        return 0.0, {}
    if len(conf_oos) == 0:
        threshold = float(np.quantile(conf_in, max_handoff)) if max_handoff > 0 else 0.0
        return threshold, {"val_handoff_in_scope": float((conf_in < threshold).mean()),
                           "val_answered_correctly": float((correct_in & (conf_in >= threshold)).mean())}
    candidates = np.unique(np.concatenate([[0.0], conf_in, conf_oos, [1.0]]))
    best, best_value = 0.0, -1.0
    for t in candidates:
        answered = float((correct_in & (conf_in >= t)).mean())
        caught = float((conf_oos < t).mean())
        value = (1 - oos_share) * answered + oos_share * caught
        if value > best_value + 1e-12:
            best, best_value = float(t), value
    return best, {"val_answered_correctly": float((correct_in & (conf_in >= best)).mean()),
                  "val_oos_recall": float((conf_oos < best).mean()), "val_objective": best_value}


# the whole recipe ------------------------------------------------------------------------------


@dataclass
class TrainReport:
    encoder: str
    entries: int
    train_questions: int
    val_questions: int
    val_out_of_scope: int
    temperature: float
    threshold: float
    val: dict[str, float]
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    train: dict[str, Any] = field(default_factory=dict)  # the training controls used (TrainConfig.to_dict)
    reject_questions: int = 0  # out-of-scope questions the reject prototype trained on
    refit: dict[str, Any] = field(default_factory=dict)  # the refit on every question, when there was one
    blend: dict[str, Any] = field(default_factory=dict)  # the E5 partner of a blended matcher, when there is one


def _train_one(
    entry_ids: list[str],
    train: LabelledQuestions,
    val: LabelledQuestions,
    config: AnswerTrainConfig,
    warmup: LabelledQuestions | None = None,
    encoder: Any = None,
    train_vectors: np.ndarray | None = None,
    reject: Sequence[str] = (),
) -> tuple[AnswerModel, TrainReport, np.ndarray]:
    """One matcher (see :func:`train_matcher`), with its logits of the validation questions before any refit."""
    from shoprank.training.loop import seed_everything

    if not entry_ids or not len(train):
        raise ValueError("the FAQ has no questions to train on; give each entry 3 or more example questions")
    started = time.perf_counter()
    seed_everything(config.train.seed)
    kind = config.encoder
    if kind == "auto":
        kind = "e5" if mostly_cjk(train.texts) else "minilm"
    if encoder is None:
        encoder = load_encoder(kind, config.base_model, config.max_length)
    reject = list(dict.fromkeys(reject))
    n_entries, n_classes = len(entry_ids), len(entry_ids) + bool(reject)
    model = AnswerModel(encoder, np.zeros((n_classes, 1), np.float32),
                        MatcherParams(encoder=kind, entry_ids=list(entry_ids), scale=config.scale,
                                      max_length=config.max_length, reject=bool(reject)))
    fit_set = LabelledQuestions(train.texts + reject, train.labels + [n_entries] * len(reject))
    labels = np.asarray(fit_set.labels)
    val_in = np.asarray([i for i, y in enumerate(val.labels) if y != OUT_OF_SCOPE], dtype=np.int64)
    val_labels = np.asarray(val.labels)[val_in] if len(val_in) else np.zeros(0, np.int64)
    val_texts_in = [val.texts[i] for i in val_in]
    history: list[dict[str, float]] = []
    if kind == "minilm" and warmup is not None and len(warmup):
        warm = dataclasses.replace(config, min_steps=0, train=dataclasses.replace(
            config.train, epochs=config.warmup_epochs, patience=0))
        n = int(max(warmup.labels)) + 1
        start = centroids(model.encode(warmup.texts), np.asarray(warmup.labels), n)
        fine_tune_classifier(encoder.model, warmup, start, warm, desc="warm-up on intent sets")
    if train_vectors is None or (warmup is not None and len(warmup)):
        train_vectors = model.encode(train.texts)
    vectors = np.concatenate([train_vectors, model.encode(reject)]) if reject else train_vectors  # before tuning
    prototypes = centroids(vectors, labels, n_classes)
    tuned = kind == "minilm" and config.fine_tune
    refit = config.refit and len(val_in) > 0 and len(train) <= config.refit_max_questions
    fresh = copy.deepcopy(encoder) if refit and tuned else None  # the refit starts where this fit starts
    if tuned:

        def validate(weights: np.ndarray) -> float:  # accuracy over the entries (the reject prototype never answers)
            return _accuracy(model.encode(val_texts_in) @ normalize(weights[:n_entries]).T, val_labels)

        prototypes, history = fine_tune_classifier(encoder.model, fit_set, prototypes, config,
                                                   validate if len(val_in) else None)
        chosen = best_step(history, "val/accuracy", 0)
    frozen_val = None if tuned or not len(val) else model.encode(val.texts)  # a frozen encoder's, encoded once
    if not tuned:
        val_pair = (frozen_val[val_in], val_labels) if frozen_val is not None and len(val_in) else None
        prototypes, chosen = train_prototypes(vectors, labels, prototypes, config, val_pair, entries=n_entries)
    model.prototypes = normalize(prototypes)
    report_val: dict[str, float] = {}
    if not len(val):
        val_logits = np.zeros((0, n_classes), np.float32)
    else:  # before any refit
        val_logits = model.scores(frozen_val) if frozen_val is not None else model.logits(val.texts)
    temperature, threshold, report_val = calibrate(model, val_logits, val, config)
    refit_note: dict[str, Any] = {}
    if refit:  # validation has chosen what it chooses; now every question trains, for as long as validation said
        every = LabelledQuestions(fit_set.texts + val_texts_in, fit_set.labels + [int(y) for y in val_labels])
        refit_note = {"refit_questions": len(every), "refit_steps_validated": chosen}
        if tuned:
            assert fresh is not None
            model.encoder = fresh
            spe = max(1, math.ceil(len(fit_set) / config.train.batch_size))
            epochs = max(1, round(chosen / spe))
            again = dataclasses.replace(config, min_steps=0, train=dataclasses.replace(
                config.train, epochs=epochs, patience=0))
            # the fresh encoder is where this fit started: its vectors of the fit set are ``vectors``
            start = centroids(np.concatenate([vectors, model.encode(val_texts_in)]), np.asarray(every.labels),
                              n_classes)
            # the validated run's schedule, epoch for epoch: planned over as many epochs, stopped where it stopped
            prototypes, _ = fine_tune_classifier(fresh.model, every, start, again, None, desc="answers, refit",
                                                 planned_epochs=planned_epochs_for(config, len(fit_set)))
            refit_note["refit_epochs"] = epochs
        else:
            assert frozen_val is not None
            all_vectors = np.concatenate([vectors, frozen_val[val_in]])
            start = centroids(all_vectors, np.asarray(every.labels), n_classes)
            prototypes, _ = train_prototypes(all_vectors, np.asarray(every.labels), start, config, None,
                                             steps=max(1, chosen), entries=n_entries)
        model.prototypes = normalize(prototypes)
    model.params.temperature = temperature
    model.params.threshold = threshold
    model.params.notes = {"oos_share": config.oos_share, "max_handoff": config.max_handoff,
                          "warmup_questions": len(warmup) if warmup is not None else 0,
                          "reject_questions": len(reject), **refit_note}
    report = TrainReport(encoder=kind, entries=len(entry_ids), train_questions=len(train),
                         val_questions=int((np.asarray(val.labels) != OUT_OF_SCOPE).sum()) if len(val) else 0,
                         val_out_of_scope=int((np.asarray(val.labels) == OUT_OF_SCOPE).sum()) if len(val) else 0,
                         temperature=temperature, threshold=model.params.threshold, val=report_val,
                         seconds=time.perf_counter() - started, history=history, train=config.train.to_dict(),
                         reject_questions=len(reject), refit=refit_note)
    return model, report, val_logits


def calibrate(model: Matcher, val_logits: np.ndarray, val: LabelledQuestions, config: AnswerTrainConfig
              ) -> tuple[float, float, dict[str, float]]:
    """(temperature, hand-over threshold, what they give on validation) from a matcher's validation logits."""
    if not len(val):
        return 1.0, 0.0, {}
    is_in = np.asarray(val.labels) != OUT_OF_SCOPE
    temperature = fit_temperature(val_logits[is_in], np.asarray(val.labels)[is_in])
    probs = model.entry_probabilities(val_logits, temperature)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(val.labels)
    threshold, report_val = choose_threshold(conf[is_in], correct[is_in], conf[~is_in], config.oos_share,
                                             config.max_handoff)
    if is_in.any():
        report_val["val_accuracy"] = float(correct[is_in].mean())
    return temperature, float(min(max(threshold, 0.0), 1.0)), report_val


def train_matcher(
    entry_ids: list[str],
    train: LabelledQuestions,
    val: LabelledQuestions,
    config: AnswerTrainConfig,
    warmup: LabelledQuestions | None = None,
    encoder: Any = None,
    train_vectors: np.ndarray | None = None,
    reject: Sequence[str] = (),
) -> tuple[Matcher, TrainReport]:
    """Fit, calibrate and threshold a matcher; ``val`` may hold OUT_OF_SCOPE questions (and may be empty).

    ``encoder``: an already loaded encoder to start from (trained in place; with a refit the matcher serves a
    copy trained again from where it started); ``train_vectors``: its
    vectors of the training questions, when the caller has them (they start the prototypes); ``reject``:
    training questions no entry answers (they train the reject prototype; none: no reject prototype).
    A MiniLM matcher with ``config.e5_weight > 0``, validation questions and at most ``e5_max_per_entry``
    training questions an entry on average is blended with a frozen-E5 matcher trained on the same questions
    (:class:`~shoprank.answers.model.BlendedMatcher`): both calibrated on validation, the blend calibrated and
    thresholded again on it, and kept only where its validation accuracy beats MiniLM's alone."""
    model, report, val_logits = _train_one(entry_ids, train, val, config, warmup, encoder, train_vectors, reject)
    if (report.encoder != "minilm" or config.e5_weight <= 0 or not report.val_questions
            or len(train) > config.e5_max_per_entry * len(entry_ids)):
        return model, report
    e5_config = dataclasses.replace(config, encoder="e5", e5_weight=0.0)
    partner, partner_report, partner_logits = _train_one(entry_ids, train, val, e5_config, reject=reject)
    blend = BlendedMatcher([model, partner], [1 - config.e5_weight, config.e5_weight])
    logits = blend.blend([val_logits, partner_logits])
    blend.temperature, blend.threshold, blended_val = calibrate(blend, logits, val, config)
    # validation decides: the blend only where it answers more validation questions right than MiniLM alone
    kept = blended_val.get("val_accuracy", 0.0) > report.val.get("val_accuracy", 0.0)
    report.seconds += partner_report.seconds
    report.blend = {"weights": {"minilm": 1 - config.e5_weight, "e5": config.e5_weight}, "kept": kept,
                    "val": {"minilm": report.val, "e5": partner_report.val, "blend": blended_val},
                    "e5_seconds": partner_report.seconds}
    if not kept:
        return model, report
    report.val, report.temperature, report.threshold = blended_val, blend.temperature, blend.threshold
    return blend, report


def train_answers(entries: Sequence[FaqEntry], conversations: Sequence[Conversation], config: AnswerTrainConfig,
                  warmup: LabelledQuestions | None = None, extra_out_of_scope: Sequence[str] = ()
                  ) -> tuple[Matcher, TrainReport]:
    """A shop's matcher from its FAQ entries and past conversations."""
    if not entries:
        raise ValueError("the shop has no FAQ; ingest one first: shoprank ingest faq FILE --shop S")
    ids, train, val = split_questions(entries, conversations, config)
    oos = [q for q, y in zip(val.texts, val.labels, strict=True) if y == OUT_OF_SCOPE] + list(extra_out_of_scope)
    reject, oos_val = split_out_of_scope(oos, config)
    inside = [(q, y) for q, y in zip(val.texts, val.labels, strict=True) if y != OUT_OF_SCOPE]
    val = LabelledQuestions([q for q, _ in inside] + oos_val, [y for _, y in inside] + [OUT_OF_SCOPE] * len(oos_val))
    return train_matcher(ids, train, val, config, warmup, reject=reject)
