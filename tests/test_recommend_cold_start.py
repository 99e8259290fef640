"""The cold-start chain, end to end on a tiny shop (docs/recommend.md):

1. a new user (no events) gets trending items, diversified by the re-ranker as every batch run does;
2. a user with one or two events gets item-to-item neighbours of them, blended with the model;
3. a longer history gets the sequence model alone;
4. a new product (no events) is recommendable from its text at once.
"""

from __future__ import annotations

import pytest

from shoprank.cli._rerank import OVER_FETCH
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


def test_a_longer_history_gets_the_sequence_model(rec) -> None:  # noqa: ANN001
    history = [Event(f"l{i}", "long", f"p1-{i}", "purchase", T0 + i) for i in range(4)]
    out = rec.recommend("long", k=3, history=history)
    assert all("item2item" not in item.parts and "sequence" in item.parts for item in out)
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
