from __future__ import annotations

import pytest

from shoprank.datasets import atomic, import_rows, load_dataset
from shoprank.store import SQLiteStore

# Counts from the data folder's README: (products, events, users, judgments, queries)
EXPECTED = {
    "multicpr-zh": {"judgments": 500, "queries": 167},
    "crowdflower": {"products": 9_913, "queries": 261},
    "homedepot": {"products": 54_667, "judgments": 59_497, "queries": 9_470},
    "amazon-games": {"products": 16_859, "users": 50_546},
}
FOLDERS = {"multicpr-zh": "multicpr_zh", "crowdflower": "crowdflower", "homedepot": "homedepot",
           "amazon-games": "amazon_games"}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_import_real_dataset_counts(name, data_root, tmp_path):
    rows = load_dataset(name, data_root / FOLDERS[name])
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        import_rows(store, rows)
        counts = store.counts()
    for key, value in EXPECTED[name].items():
        assert counts[key] == value, key
    if name == "crowdflower":
        assert len(rows.judgments) == 10_158  # 145 (query, product) pairs are judged twice; the last grade wins
    if name == "amazon-games":
        assert 430_000 < counts["events"] < 450_000


def test_atomic_sequences_keep_order(tmp_path):
    (tmp_path / "x.inter").write_text("user_id:token\titem_id_list:token_seq\titem_id:token\nu1\t3 1 2\t9\n")
    (tmp_path / "x.item").write_text("item_id:token\ttitle:token_seq\n1\tone\n2\ttwo\n3\tthree\n9\tnine\n")
    rows = atomic.load(tmp_path / "x.inter", tmp_path / "x.item")
    with SQLiteStore(tmp_path / "s.sqlite") as store:
        import_rows(store, rows)
        assert [e.item_id for e in store.user_events("u1")] == ["3", "1", "2", "9"]
        assert store.get_product("9").title == "nine"


def test_atomic_items_with_recbole_field_names(tmp_path):
    """ml-100k's ``.item`` names its title ``movie_title`` and its genres ``class``."""
    (tmp_path / "m.item").write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                                     "1\tToy Story\t1995\tAnimation Comedy\n")
    [(line, product)] = atomic.load_items(tmp_path / "m.item")
    assert (line, product["title"], product["category"]) == (2, "Toy Story", "Animation Comedy")
    assert product["release_year"] == "1995" and "movie_title" not in product


def test_missing_folder_names_where_the_set_is_published(tmp_path):
    with pytest.raises(FileNotFoundError, match="kaggle.com"):
        load_dataset("homedepot", tmp_path)
