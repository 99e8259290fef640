"""Review records: validation naming line and field, whole-batch storage, unknown products stored and flagged."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from shoprank.data.ingest import IngestError, ingest_file, ingest_rows
from shoprank.data.records import RecordError, parse_product, parse_review
from shoprank.store.base import ReviewSentiment
from shoprank.store.sqlite import SQLiteStore

NOW = time.time() - 60


def review(**over: object) -> dict:
    return {"review_id": "r1", "product_id": "p1", "text": "Lovely", "timestamp": NOW, "rating": 5, **over}


def test_parse_review_normalises_and_keeps_optional_fields() -> None:
    r = parse_review(review(title="  Nice ", user_id=7, language="en", rating="4"))
    assert (r.review_id, r.product_id, r.user_id, r.rating, r.title, r.language) == ("r1", "p1", "7", 4.0, "Nice", "en")
    assert r.full_text() == "Nice. Lovely"
    assert parse_review(review(rating=None)).rating is None


@pytest.mark.parametrize(("over", "field"), [
    ({"text": ""}, "text"), ({"text": "   "}, "text"), ({"text": "x" * 1_000_000}, "text"),
    ({"rating": 0}, "rating"), ({"rating": 6}, "rating"), ({"rating": "five"}, "rating"),
    ({"timestamp": None}, "timestamp"), ({"timestamp": "yesterday"}, "timestamp"),
    ({"review_id": ""}, "review_id"), ({"product_id": None}, "product_id"),
])
def test_bad_reviews_name_their_field(over: dict, field: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse_review(review(**over))
    assert caught.value.field == field


def test_a_bad_line_refuses_the_file_and_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    rows = [review(review_id="a"), review(review_id="b", rating=9), review(review_id="c", text="")]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(IngestError) as caught:
            ingest_file(store, "reviews", path)
        assert [(e.line, e.field) for e in caught.value.errors] == [(2, "rating"), (3, "text")]
        assert list(store.iter_reviews()) == []  # nothing half-stored


def test_unknown_products_are_stored_and_flagged_and_ids_upsert(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        store.upsert_products([parse_product({"id": "p1", "title": "Drill"})])
        report = ingest_rows(store, "reviews", enumerate([review(review_id="a"), review(review_id="b",
                                                                                       product_id="ghost")], 1))
        assert report.summary() == {"kind": "reviews", "read": 2, "stored": 2, "updated": 0, "duplicates": 0,
                                    "rejected": 0, "flagged": 1}
        assert store.unknown_product_reviews() == ["b"]
        store.put_review_sentiment([ReviewSentiment("a", "v1", 2, 0.9, ("quality",))])
        again = ingest_rows(store, "reviews", enumerate([review(review_id="a", text="Broke", rating=1)], 1))
        assert (again.stored, again.updated) == (0, 1)
        assert [r.text for r in store.iter_reviews(product_id="p1")] == ["Broke"]
        assert store.review_sentiment("v1") == {}  # an edited review is scored again


def test_reviews_come_back_in_time_order(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        store.upsert_reviews([parse_review(review(review_id=i, timestamp=NOW - t)) for i, t in
                              (("x", 10), ("y", 30), ("z", 20))])
        assert [r.review_id for r in store.iter_reviews()] == ["y", "z", "x"]
        assert [r.review_id for r in store.iter_reviews(since=NOW - 25)] == ["z", "x"]


def test_alerts_are_unique_by_scope_and_time(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        alert = {"scope": "product:p1", "at": "2026-01-01T00:00:00Z", "at_epoch": 1767225600.0, "negative_share": 0.5,
                 "baseline_share": 0.1}
        assert store.add_alerts([alert]) == [alert]
        assert store.add_alerts([alert]) == []
        store.mark_alert("product:p1", 1767225600.0, False, 3, "HTTP 500")
        [listed] = store.list_alerts()
        assert (listed["scope"], listed["delivered"], listed["attempts"], listed["delivery_error"]) == (
            "product:p1", False, 3, "HTTP 500")
