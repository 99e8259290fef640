"""Impressions: the record, the store, ingestion from files, and attributing events to them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoprank.data.attribution import attribute
from shoprank.data.impressions import Impression, parse_impression
from shoprank.data.ingest import IngestError, ingest_file
from shoprank.data.records import Event, RecordError, parse_event
from shoprank.store.sqlite import SQLiteStore

T0 = 1_700_000_000.0


def shown(request_id: str, items: list[str], *, page: int = 1, query: str | None = "drill", t: float = T0,
          surface: str = "search") -> Impression:
    offset = (page - 1) * len(items)
    return Impression(request_id, t, surface, tuple(items), tuple(range(offset, offset + len(items))),
                      user_id="u1", query=query, model_version="v1", page=page)


def click(item: str, request_id: str | None, position: int | None = None, type_: str = "click",
          event_id: str | None = None) -> Event:
    return Event(event_id or f"e-{item}-{request_id}-{position}-{type_}", "u1", item, type_, T0 + 5,
                 position=position, request_id=request_id)


def test_parse_impression_positions_from_page_and_explicit() -> None:
    imp = parse_impression({"request_id": "r1", "timestamp": T0, "surface": "search", "items": ["a", "b", "c"],
                            "page": 2, "query": " cordless  drill "})
    assert imp.positions == (3, 4, 5) and imp.items == ("a", "b", "c") and imp.query == "cordless  drill"
    csv_like = parse_impression({"request_id": "r2", "timestamp": "2024-01-01T00:00:00Z", "surface": "similar",
                                 "items": "x|y", "positions": "[7, 9]", "item_id": "p0"})
    assert csv_like.positions == (7, 9) and csv_like.item_id == "p0" and csv_like.position_of("y") == 9
    assert parse_impression({"request_id": "r3", "timestamp": T0, "surface": "bought-together",
                             "items": '["q"]', "offset": 20}).positions == (20,)


@pytest.mark.parametrize(("raw", "field"), [
    ({"timestamp": T0, "surface": "search", "items": ["a"]}, "request_id"),
    ({"request_id": "r", "timestamp": T0, "surface": "search", "items": []}, "items"),
    ({"request_id": "r", "timestamp": T0, "surface": "search"}, "items"),
    ({"request_id": "r", "timestamp": T0, "surface": "banner", "items": ["a"]}, "surface"),
    ({"request_id": "r", "timestamp": T0, "surface": "search", "items": ["a", ""]}, "items[1]"),
    ({"request_id": "r", "timestamp": T0, "surface": "search", "items": ["a", "b"], "positions": [0]},
     "positions"),
    ({"request_id": "r", "timestamp": T0, "surface": "search", "items": ["a", "b"], "positions": [1, 1]},
     "positions"),
    ({"request_id": "r", "timestamp": T0, "surface": "search", "items": ["a"], "page": 0}, "page"),
    ({"request_id": "r", "surface": "search", "items": ["a"]}, "timestamp"),
])
def test_parse_impression_names_the_bad_field(raw: dict, field: str) -> None:
    with pytest.raises(RecordError) as info:
        parse_impression(raw)
    assert info.value.field == field


def test_store_impressions_round_trip_duplicates_range_and_retention(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    first = [shown("r1", ["a", "b"]), shown("r2", ["c"], page=3, t=T0 + 10, surface="recommendations"),
             shown("r1", ["z"])]
    result = store.append_impressions(first)
    assert (result.stored, result.duplicates) == (2, 1)
    assert store.append_impressions([shown("r2", ["q"])]).duplicates == 1  # a retried request id is kept once
    got = store.get_impressions(["r1", "r2", "nope"])
    assert set(got) == {"r1", "r2"} and got["r1"] == first[0] and got["r2"].positions == (2,)
    assert [i.request_id for i in store.iter_impressions()] == ["r1", "r2"]
    assert [i.request_id for i in store.iter_impressions(since=T0 + 1)] == ["r2"]
    assert [i.request_id for i in store.iter_impressions(until=T0 + 1)] == ["r1"]
    assert [i.request_id for i in store.iter_impressions(surfaces=["search"])] == ["r1"]
    assert store.counts()["impressions"] == 2
    assert store.delete_impressions_before(T0 + 1) == 1
    assert list(store.get_impressions(["r1", "r2"])) == ["r2"]
    store.close()


def test_attribution_fills_position_and_query_and_counts_the_rest(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.append_impressions([shown("r1", ["a", "b", "c"], page=2)])  # positions 3, 4, 5
    events = [click("b", "r1"),  # attributed at 4, query from the impression
              click("c", "r1", position=5, type_="purchase"),  # attributed (position agrees)
              click("a", "r1", position=0),  # forged position: disagrees with the impression
              click("a", "r1", position=99),  # beyond the shown list
              click("x", "r1"),  # not shown in it
              click("a", "other-shop-request"),  # unknown here
              click("a", "r1", type_="view"),  # views are not attributed
              click("a", None)]
    stored, report = attribute(events, store.get_impressions)
    assert report.attributed == 2
    assert report.unattributed == {"position_mismatch": 1, "position_beyond_list": 1, "item_not_shown": 1,
                                   "unknown_request": 1, "type_not_attributed": 1}
    assert (stored[0].position, stored[0].query, stored[0].request_id) == (4, "drill", "r1")
    assert stored[1].position == 5 and stored[1].request_id == "r1"
    assert all(e.request_id is None for e in stored[2:])
    assert stored[2].position == 0  # what the event said is kept, only the claim is dropped
    assert store.append_events(stored).stored == len(events)  # nothing lost
    by_id = {e.event_id: e for e in store.iter_events()}
    assert by_id[stored[0].event_id].request_id == "r1" and by_id[stored[2].event_id].request_id is None
    assert store.user_events("u1")[-1].request_id in ("r1", None)
    store.close()


def test_event_request_id_is_validated() -> None:
    raw = {"user_id": "u", "item_id": "i", "type": "click", "timestamp": T0}
    assert parse_event({**raw, "request_id": "abc"}).request_id == "abc"
    assert parse_event(raw).request_id is None
    with pytest.raises(RecordError) as info:
        parse_event({**raw, "request_id": "a\x01b"})
    assert info.value.field == "request_id"


def test_ingest_impressions_jsonl_csv_parquet_and_bad_rows(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    jsonl = tmp_path / "imp.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in [
        {"request_id": "j1", "timestamp": T0, "surface": "search", "items": ["a", "b"], "query": "drill"},
        {"request_id": "j2", "timestamp": T0 + 1, "surface": "similar", "items": ["c"], "item_id": "a"},
    ]) + "\n")
    assert ingest_file(store, "impressions", jsonl).stored == 2
    csv = tmp_path / "imp.csv"
    csv.write_text('request_id,timestamp,surface,items,page\nc1,2024-01-01T00:00:00Z,search,a|b,2\n'
                   'c2,2024-01-01T00:00:01Z,search,"[""b""]",1\n')
    assert ingest_file(store, "impressions", csv).stored == 2
    assert store.get_impressions(["c1"])["c1"].positions == (2, 3)
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "imp.parquet"
    pq.write_table(pa.table({"request_id": ["p1"], "timestamp": [T0], "surface": ["recommendations"],
                             "items": [["a", "c"]], "user_id": ["u9"]}), parquet)
    assert ingest_file(store, "impressions", parquet).stored == 1
    assert store.get_impressions(["p1"])["p1"].items == ("a", "c")

    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(r) for r in [
        {"request_id": "b1", "timestamp": T0, "surface": "search", "items": ["a"]},
        {"request_id": "b2", "timestamp": T0, "surface": "search", "items": []},
        {"request_id": "b3", "timestamp": T0, "surface": "search", "items": ["a"], "positions": [-1]},
    ]) + "\n")
    with pytest.raises(IngestError) as info:
        ingest_file(store, "impressions", bad)
    found = {(e.line, e.field) for e in info.value.errors}
    assert found == {(2, "items"), (3, "positions[0]")}
    assert store.get_impressions(["b1"]) == {}  # nothing half-stored
    missing = tmp_path / "nocol.csv"
    missing.write_text("request_id,timestamp,surface\nr,1700000000,search\n")
    with pytest.raises(IngestError, match="items"):
        ingest_file(store, "impressions", missing)
    store.close()


def test_ingest_events_attributes_against_stored_impressions(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.append_impressions([shown("r1", ["a", "b"])])
    events = tmp_path / "ev.jsonl"
    events.write_text("\n".join(json.dumps(r) for r in [
        {"user_id": "u1", "item_id": "b", "type": "click", "timestamp": T0 + 1, "request_id": "r1"},
        {"user_id": "u1", "item_id": "b", "type": "click", "timestamp": T0 + 2, "request_id": "missing"},
    ]) + "\n")
    report = ingest_file(store, "events", events)
    assert report.stored == 2
    assert report.summary()["attribution"] == {"attributed": 1, "unattributed": 1,
                                               "unattributed_by_reason": {"unknown_request": 1}}
    attributed = [e for e in store.iter_events() if e.request_id]
    assert [(e.position, e.query) for e in attributed] == [(1, "drill")]
    store.close()
