"""The Recommender service on a tiny shop: save -> load -> same scores, live history, cold items, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from shoprank.bundles import BundleError
from shoprank.data.records import Event, Product
from shoprank.shops import Shop

TOPICS = ("zelda sword", "mario kart", "halo rifle", "fifa football", "tetris block")
T0 = 1_600_000_000.0


def product(topic: int, n: int) -> Product:
    return Product(id=f"p{topic}-{n}", title=f"{TOPICS[topic]} edition {n}", category="Games")


def make_shop(home, n_users: int = 120, seed: int = 0) -> Shop:  # noqa: ANN001
    """Five topics of eight products; each user buys several products of one topic, in order."""
    rng = np.random.default_rng(seed)
    shop = Shop("tiny", home)
    events = []
    for u in range(n_users):
        topic = u % len(TOPICS)
        start = int(rng.integers(0, 3))
        for step, n in enumerate(range(start, start + 5)):
            events.append(Event(f"e{u}-{step}", f"u{u}", f"p{topic}-{n}", "purchase" if step else "view",
                                T0 + u * 100 + step))
    with shop.store() as store:
        store.upsert_products([product(t, n) for t in range(len(TOPICS)) for n in range(8)])
        store.append_events(events)
    return shop


def train(shop: Shop) -> dict:
    from shoprank.recommend.pipeline import train_recommender

    return train_recommender(shop, "quick", encoder="hash:64", threads=1, progress=False, d_model=32, n_layers=1,
                             n_heads=1, epochs=12, batch_size=16, learning_rate=5e-3, patience=12, eval_users=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    shop = make_shop(tmp_path_factory.mktemp("home"))
    train(shop)
    return shop


def test_load_without_a_bundle_raises(tmp_path) -> None:  # noqa: ANN001
    from shoprank.recommend import Recommender

    with pytest.raises(BundleError, match="train recommend"):
        Recommender.load(make_shop(tmp_path, n_users=3))


def test_save_load_same_scores(trained: Shop) -> None:
    from shoprank.recommend import Recommender

    a, b = Recommender.load(trained), Recommender.load(trained)
    assert a.version == b.version
    hist, types = [np.array([1, 2, 3])], [np.array([1, 4, 1])]
    np.testing.assert_array_equal(a.score_batch(hist, types), b.score_batch(hist, types))
    assert [r.id for r in a.recommend("u0")] == [r.id for r in b.recommend("u0")]


def test_recommends_the_users_topic_and_excludes_history(trained: Shop) -> None:
    from shoprank.recommend import Recommender

    rec = Recommender.load(trained)
    history = {e.item_id for e in trained.store().user_events("u0")}
    out = rec.recommend("u0", k=3)
    assert len(out) == 3 and not {r.id for r in out} & history
    assert all(r.id.startswith("p0-") for r in out[:2])  # u0 buys topic 0 (p0-7 was never bought)
    assert all(r.reasons and "sequence" in r.parts for r in out)
    assert not {r.id for r in rec.recommend("u0", k=3, exclude={out[0].id})} & {out[0].id}


def test_new_events_change_the_next_answer_without_retraining(trained: Shop) -> None:
    from shoprank.recommend import Recommender

    rec = Recommender.load(trained)
    before = rec.recommend("newcomer", k=5)
    assert all("trending" in r.parts for r in before) and "popular" in before[0].reasons[0]
    with trained.store() as store:
        store.append_events([Event(f"n{i}", "newcomer", f"p3-{i}", "purchase", T0 + 10**6 + i) for i in range(4)])
    after = rec.recommend("newcomer", k=3)
    assert all(r.id.startswith("p3-") for r in after)
    assert "you bought" in after[0].reasons[0]


def test_short_history_blends_item_to_item(trained: Shop) -> None:
    from shoprank.recommend import Recommender

    rec = Recommender.load(trained)
    history = [Event("x", "short", "p2-1", "view", T0)]
    out = rec.recommend("short", k=4, history=history)
    assert all("item2item" in r.parts for r in out)
    assert sum(r.id.startswith("p2-") for r in out) >= 3


def test_similar_and_bought_together(trained: Shop) -> None:
    from shoprank.recommend import Recommender

    rec = Recommender.load(trained)
    similar = rec.similar("p1-3", k=5)
    assert all(r.id.startswith("p1-") and r.id != "p1-3" for r in similar)
    together = rec.bought_together("p4-3", k=3)
    assert together and all(r.id.startswith("p4-") for r in together)
    assert "bought with" in together[0].reasons[0]
    with pytest.raises(KeyError):
        rec.similar("nope")


def test_cold_item_added_after_training_is_recommended(trained: Shop) -> None:
    from shoprank.recommend import Recommender

    rec = Recommender.load(trained)
    history = [Event(f"c{i}", "fan", f"p0-{i}", "purchase", T0 + i) for i in range(5)]
    fresh = Product(id="new-zelda", title="zelda sword edition deluxe", category="Games")
    assert rec.add_products([fresh]) == 1
    assert "new-zelda" in [r.id for r in rec.recommend("fan", k=5, history=history)]
    assert "new-zelda" in [r.id for r in rec.similar("p0-1", k=5)]
    with trained.store() as store:  # stored after training: a fresh load picks it up by itself
        store.upsert_products([Product(id="new-halo", title="halo rifle edition deluxe", category="Games")])
    history = [Event(f"h{i}", "fan2", f"p2-{i}", "purchase", T0 + i) for i in range(5)]
    assert "new-halo" in [r.id for r in Recommender.load(trained).recommend("fan2", k=5, history=history)]


def test_lazy_reasons_give_the_cascades_pages_of_the_eager_list(trained: Shop) -> None:
    """The cascade explains only the page (``recommend_lazily``): every page, re-ranked or not, with and without
    history, is the one the eagerly explained list gives, parts and reasons included."""
    from shoprank.cascade import Cascade, Request
    from shoprank.recommend import Recommender
    from shoprank.rerank.shop import ShopReranking

    rec = Recommender.load(trained)

    class Eager:  # the same engine without the lazy door
        def __getattr__(self, name: str) -> object:
            if name == "recommend_lazily":
                raise AttributeError(name)
            return getattr(rec, name)

    with trained.store() as store:
        reranking = ShopReranking(store)
        lazy, eager = (Cascade(recommend=e, reranking=reranking, store=store) for e in (rec, Eager()))
        pages = 0
        for user in ("u0", "u7", "u33", "nobody"):
            for per_page, diversity in ((3, None), (5, 0.6), (10, 0.0)):
                ask = Request("recommend", user_id=user, per_page=per_page, diversity=diversity, explore=True, seed=7)
                a, b = lazy.run_one(ask), eager.run_one(ask)
                assert [(i.id, i.score, i.parts, i.reasons) for i in a.items] == \
                    [(i.id, i.score, i.parts, i.reasons) for i in b.items]
                assert a.items and all(i.reasons for i in a.items) and a.total == b.total
                pages += 1
        assert pages == 12
    got = rec.recommend_lazily("u0", k=5)
    assert all(not i.reasons and not i.parts for i in got.items)  # nothing explained until asked
    assert got.explain(got.items) == rec.recommend("u0", k=5)


def test_the_rerank_context_follows_changed_and_deleted_products(trained: Shop) -> None:
    from shoprank.recommend import Recommender

    rec = Recommender.load(trained)
    products, _ = rec.context(["p1-1", "p1-2", "no-such"])
    assert set(products) == {"p1-1", "p1-2"} and products["p1-1"].in_stock
    gone = Product(id="p1-1", title="mario kart edition 1", category="Games", in_stock=False)
    rec.add_products([gone])  # a changed record (the server passes every upsert on)
    assert rec.context(["p1-1"])[0]["p1-1"].in_stock is False
    rec.forget_products(["p1-2"])
    with trained.store() as store:
        store.delete_products(["p1-2"])
    assert "p1-2" not in rec.context(["p1-2"])[0]


def test_the_recommendation_cpu_bench_times_the_served_path(trained: Shop) -> None:
    from bench.recommend_cpu import compare, run

    result = run(str(trained.home), trained.name, users=5)
    assert result["users"] == 5 and result["items"] >= 40  # earlier tests may have added products
    assert result["total"]["median_ms"] > 0
    stages = result["stages_mean_ms"]
    assert stages["ranking stage (all of it)"] >= stages["source sequence"] > 0
    answers = result["answers"]
    assert len(answers) == 5 and all(len(ids) == len(scores) > 0 for ids, scores in answers.values())
    nudged = {user: [ids, [scores[0] + 1e-9, *scores[1:]]] for user, (ids, scores) in answers.items()}
    assert compare(answers, run(str(trained.home), trained.name, users=5)["answers"]) == {
        "users": 5, "same_ids": 5, "same_ids_and_scores": 5}  # the served path is deterministic
    assert compare(answers, nudged) == {"users": 5, "same_ids": 5, "same_ids_and_scores": 0}
