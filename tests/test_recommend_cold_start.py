"""The cold-start chain, end to end on a tiny shop (docs/recommend.md):

1. a new user (no events) gets trending items, diversified by the re-ranker as every batch run does;
2. a user with one or two events gets item-to-item neighbours of them, through the ranking stage;
3. a longer history gets the ranking stage over every candidate source;
4. a new product (no events) is recommendable from its text at once.
"""

from __future__ import annotations

import pytest

from shoprank.cascade import OVER_FETCH
from shoprank.data.records import Event, Product
from shoprank.rerank import VARIETY_REASON, RerankConfig, Reranker
from shoprank.shops import Shop
from tests.test_recommend_service import T0, make_shop, train


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from shoprank.recommend import Recommender

    shop = make_shop(tmp_path_factory.mktemp("home"))
    train(shop)
    return Recommender.load(shop)


def topic(item_id: str) -> str:
    return item_id.split("-")[0]


def test_a_new_user_gets_trending_items_with_diversity(rec) -> None:  # noqa: ANN001
    candidates = rec.recommend("stranger", k=OVER_FETCH * 5)
    assert candidates and all("trending" in item.parts for item in candidates)
    assert all(item.reasons[0].startswith("popular") for item in candidates)
    plain = candidates[:5]
    products = {item.id: rec.store.get_product(item.id) for item in candidates}
    vectors = {item.id: rec.art.text_vectors[rec.catalogue.index[item.id]] for item in candidates}
    diverse = Reranker(RerankConfig(diversity=0.9, page_size=5)).rerank(candidates, products, vectors, rng=0)[:5]
    assert {item.id for item in diverse} <= {item.id for item in candidates}  # only reorders what it is given
    assert diverse[0].id == plain[0].id  # the most trending item keeps the first place
    assert len({topic(i.id) for i in diverse}) >= len({topic(i.id) for i in plain})
    moved = [item for item in diverse if item.id not in {p.id for p in plain}]
    assert all(VARIETY_REASON in item.reasons for item in moved)


@pytest.mark.parametrize("n_events", [1, 2])
def test_one_or_two_events_get_item_to_item_neighbours(rec, n_events: int) -> None:  # noqa: ANN001
    history = [Event(f"s{i}", "short", f"p3-{i}", "view", T0 + i) for i in range(n_events)]
    out = rec.recommend("short", k=4, history=history)
    assert all("item2item" in item.parts for item in out)
    assert sum(topic(item.id) == "p3" for item in out) >= 3
    assert not {item.id for item in out} & {e.item_id for e in history}


def test_a_longer_history_gets_the_ranking_stage(rec) -> None:  # noqa: ANN001
    history = [Event(f"l{i}", "long", f"p1-{i}", "purchase", T0 + i) for i in range(4)]
    out = rec.recommend("long", k=3, history=history)
    assert all("ranker" in item.parts and "sequence" in item.parts for item in out)
    assert all(topic(item.id) == "p1" for item in out[:2])


def test_a_new_product_is_recommendable_from_its_text_at_once(tmp_path) -> None:  # noqa: ANN001
    from shoprank.recommend import Recommender

    shop: Shop = make_shop(tmp_path)
    train(shop)
    with shop.store() as store:  # no events, stored after training
        store.upsert_products([Product(id="brand-new", title="tetris block edition deluxe", category="Games")])
    fresh = Recommender.load(shop)
    assert "brand-new" in fresh.catalogue.index
    assert "brand-new" in [item.id for item in fresh.similar("p4-1", k=5)]
    history = [Event(f"t{i}", "fan", f"p4-{i}", "purchase", T0 + i) for i in range(5)]
    out = fresh.recommend("fan", k=5, history=history)
    assert "brand-new" in [item.id for item in out]
    assert any("new:" in reason for item in out if item.id == "brand-new" for reason in item.reasons)


def test_place_last_moves_one_item_to_place_k() -> None:
    import numpy as np

    from shoprank.recommend.evaluate import place_last

    ranks = np.array([3.0, 10.0, 12.0, 40.0, 25.0, 7.0])
    item_ranks = np.array([30.0, 30.0, 30.0, 30.0, 25.0, 5.0])  # the last row's item is already in the top 10
    is_target = np.array([False, False, False, False, True, False])
    # above place 10: stays; at 10: pushed to 11; between 10 and the moved item: down one; below it: stays;
    # the target itself: lands on 10; an item already in the top 10 moves nothing
    assert place_last(ranks, item_ranks, is_target, k=10).tolist() == [3.0, 11.0, 13.0, 40.0, 10.0, 7.0]
    assert place_last(ranks, np.zeros(6), is_target, k=10).tolist() == ranks.tolist()  # no item: no change


def test_cold_slot_gives_a_cold_item_close_to_the_history_the_last_place(rec) -> None:  # noqa: ANN001
    from shoprank.recommend.interactions import history_arrays

    history = [Event(f"k{i}", "slot", f"p4-{i}", "purchase", T0 + i) for i in range(4)]
    rec.add_products([Product(id="new-tetris", title="falling block puzzle", category="Games")])
    items, _ = history_arrays(history, rec.catalogue)
    candidate, cosine = rec.cold_slot([items])
    expected = rec.catalogue.id_of(int(candidate[0]))
    assert rec.art.counts[candidate[0]] <= 2 and expected.startswith(("p4-", "new-tetris"))  # same topic's text
    rec.art.params["cold_slot_threshold"] = None
    ranker, rec.stage.ranker = rec.stage.ranker, None  # the sequence model's order: the cold item ranks low
    try:
        ranked = [i.id for i in rec.recommend("slot", k=40, history=history)]
        k = ranked.index(expected)  # a list just too short to hold it
        assert k >= 2, "the model alone ranks the cold item too high for this test"
        plain = rec.recommend("slot", k=k, history=history)
        rec.art.params["cold_slot_threshold"] = float(cosine[0])
        out = rec.recommend("slot", k=k, history=history)
        over = rec.recommend("slot", k=k + 3, history=history, slot_at=k)  # over-fetching for a re-ranker
        rec.art.params["cold_slot_threshold"] = float(cosine[0]) + 0.01  # not close enough: the slot stays empty
        strict = rec.recommend("slot", k=k, history=history)
    finally:
        rec.art.params["cold_slot_threshold"] = None
        rec.stage.ranker = ranker
    assert [i.id for i in out[:-1]] == ranked[:k - 1] and out[-1].id == expected
    assert "cold_slot" in out[-1].parts and out[-1].reasons[0].startswith("new here")
    assert out[-1].score == plain[-1].score  # takes the displaced item's score: the list stays in order
    assert [i.id for i in over] == ranked[:k - 1] + [expected, ranked[k - 1], *ranked[k + 1:k + 3]]
    assert [i.id for i in strict] == [i.id for i in plain]


def test_the_evaluation_applies_the_cold_slot_as_served(rec) -> None:  # noqa: ANN001
    import numpy as np

    from shoprank.recommend.evaluate import K, run_scorer
    from shoprank.recommend.interactions import Sequences, history_arrays

    users = ["u1", "u6", "u11"]
    hist, types = zip(*(history_arrays(rec.store.user_events(u, 50), rec.catalogue) for u in users), strict=True)
    seqs = Sequences(users, list(hist), list(types))
    targets = np.array([rec.catalogue.index["new-tetris"] if "new-tetris" in rec.catalogue.index else 1] * 3)
    rec.art.params["cold_slot_threshold"] = 0.0
    try:
        _, top = run_scorer(lambda h, rows: rec.score_batch(h, [types[i] for i in rows]), seqs, targets,
                            last_slot=rec.cold_slot_items)
        served = [[rec.catalogue.index[i.id] for i in rec.recommend(u, k=K)] for u in users]
    finally:
        rec.art.params["cold_slot_threshold"] = None
    assert [list(row) for row in top] == served
