from __future__ import annotations

import json
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shoprank.cli.main import main
from shoprank.data.ingest import IngestError, ingest_file
from shoprank.shops import Shop, list_shops
from shoprank.store import SQLiteStore

NOW = int(time.time())


@pytest.fixture
def store(tmp_path):
    with SQLiteStore(tmp_path / "s.sqlite") as s:
        yield s


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def events(n, start=0):
    return [{"event_id": f"e{i}", "user_id": f"u{i % 3}", "item_id": f"p{i % 5}", "type": "view",
             "timestamp": NOW - 1000 + i} for i in range(start, start + n)]


def test_csv_products_with_column_mapping(store, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("sku,name,price\n1,Hammer,9.99\n2,Saw,19\n")
    report = ingest_file(store, "products", path, mapping={"id": "sku", "title": "name"})
    assert (report.read, report.stored) == (2, 2)
    assert store.get_product("1").title == "Hammer"


def test_csv_missing_column_is_refused_before_reading(store, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,name\n1,Hammer\n")
    with pytest.raises(IngestError) as info:
        ingest_file(store, "products", path)
    assert info.value.errors[0].field == "title"
    assert "--map title=COLUMN" in str(info.value)
    assert store.counts()["products"] == 0


def test_every_bad_row_is_reported_and_nothing_stored(store, tmp_path):
    rows = [
        {"id": "ok", "title": "fine", "price": 1},
        {"id": "neg", "title": "negative", "price": -5},
        {"id": "x" * 10_240, "title": "huge id"},
        '{"id": "broken", "title": ',
    ]
    with pytest.raises(IngestError) as info:
        ingest_file(store, "products", write_jsonl(tmp_path / "p.jsonl", rows))
    found = {(e.line, e.field) for e in info.value.errors}
    assert found == {(2, "price"), (3, "id"), (4, "<json>")}
    assert "line 2: field 'price'" in str(info.value)
    assert store.counts()["products"] == 0


def test_skip_invalid_stores_valid_rows_and_writes_rejects(store, tmp_path):
    rows = events(3) + [{"event_id": "bad", "user_id": "u", "item_id": "p", "type": "teleport", "timestamp": NOW}]
    rejects = tmp_path / "rejects.jsonl"
    report = ingest_file(store, "events", write_jsonl(tmp_path / "e.jsonl", rows), skip_invalid=True,
                         rejects_path=rejects)
    assert (report.stored, report.rejected) == (3, 1)
    assert json.loads(rejects.read_text()) == {"line": 4, "field": "type", "error": report.errors[0].message}


def test_duplicate_event_ids_are_stored_once(store, tmp_path):
    path = write_jsonl(tmp_path / "e.jsonl", events(4) + events(2))
    report = ingest_file(store, "events", path)
    assert (report.read, report.stored, report.duplicates) == (6, 4, 2)
    assert ingest_file(store, "events", path).stored == 0
    assert store.counts()["events"] == 4


def test_parquet_events(store, tmp_path):
    path = tmp_path / "e.parquet"
    pq.write_table(pa.Table.from_pylist(events(5)), path)
    assert ingest_file(store, "events", path).stored == 5


def test_cli_ingest_and_shops(home, tmp_path, capsys):
    products = write_jsonl(tmp_path / "p.jsonl", [{"id": f"p{i}", "title": f"Product {i}"} for i in range(5)])
    assert main(["ingest", "products", str(products), "--shop", "demo", "--quiet"]) == 0
    path = write_jsonl(tmp_path / "e.jsonl", events(5))
    assert main(["ingest", "events", str(path), "--shop", "demo", "--quiet"]) == 0
    assert "stored 5" in capsys.readouterr().out
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"event_id": "z", "user_id": "u", "item_id": "p",
                                               "type": "view", "timestamp": 5}])
    assert main(["ingest", "events", str(bad), "--shop", "demo", "--quiet"]) == 1
    assert "line 1: field 'timestamp'" in capsys.readouterr().err
    assert main(["shops", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [{"shop": "demo", "products": 5, "events": 5, "users": 3, "judgments": 0, "queries": 0,
                      "impressions": 0}]


def test_shops_are_isolated(home):
    with Shop("a").store() as a, Shop("b").store() as b:
        a.append_events([])
        assert b.counts()["events"] == 0
    assert [s.name for s in list_shops()] == ["a", "b"]
    with pytest.raises(ValueError, match="not valid"):
        Shop("../escape")
