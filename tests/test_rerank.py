from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shoprank.rerank as rr
from shoprank.data.records import Product
from shoprank.rerank import (
    EXPLORE_REASON,
    VARIETY_REASON,
    Pin,
    RerankConfig,
    Reranker,
    Rule,
    RuleError,
    RuleSet,
    cap_categories,
    category_cap_for,
    diversify,
    explore,
    exposure_from_events,
    load_config,
    load_rules,
    mmr,
    normalise_query,
    place_pins,
    rerank,
    save_config,
    save_rules,
)
from shoprank.rerank.diversity import mmr_order
from shoprank.rerank.explore import explore_positions
from shoprank.results import ScoredItem, SearchFilters


def items(*pairs: tuple[str, float]) -> list[ScoredItem]:
    return [ScoredItem(i, s) for i, s in pairs]


def ranked(n: int) -> list[ScoredItem]:
    return [ScoredItem(f"p{i}", float(n - i)) for i in range(n)]


def ids(result: list[ScoredItem]) -> list[str]:
    return [item.id for item in result]


def product(pid: str, category: str = "Tools", brand: str = "Acme", price: float | None = 10.0,
            in_stock: bool = True, created_at: float | None = None) -> Product:
    return Product(id=pid, title=pid, category=category, brand=brand, price=price, in_stock=in_stock,
                   created_at=created_at)


def test_public_surface():
    assert sorted(rr.__all__) == sorted([
        "DEFAULT_DIVERSITY", "DEFAULT_EXPLORE_SHARE", "EXPLORE_REASON", "MAX_EXPLORE_SHARE", "VARIETY_REASON",
        "Pin", "RerankConfig", "Reranker", "Rule", "RuleError", "RuleSet", "cap_categories", "category_cap_for",
        "diversify", "explore", "exposure_from_events", "load_config", "load_rules", "mmr", "normalise_query",
        "place_pins", "rerank", "save_config", "save_rules",
    ])
    assert all(hasattr(rr, name) for name in rr.__all__)


# diversity: MMR on a 2-D example worked by hand ------------------------------------------------
# A=(1,0) score 1.0, B=(0.8,0.6) score 0.8, C=(0,1) score 0.6.
# Normalised relevance: A=1, B=0.5, C=0. cos(A,B)=0.8, cos(A,C)=0, cos(B,C)=0.6.
# Step 1 picks A (the best relevance, no penalty yet).
# Step 2: B = (1-λ)·0.5 − λ·0.8, C = 0 − λ·0 = 0. B wins while 0.5 − 1.3λ > 0, i.e. λ < 5/13 ≈ 0.385.
HAND = items(("A", 1.0), ("B", 0.8), ("C", 0.6))
HAND_VECTORS = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])


def test_mmr_hand_example_high_lambda_lifts_the_different_item():
    out = mmr(HAND, HAND_VECTORS, 0.5, page_size=1)
    assert ids(out) == ["A", "C", "B"]
    # λ=0.5: A = 0.5·1 = 0.5; then C = 0, B = 0.25 − 0.4 = −0.15; then B = 0.25 − 0.5·max(0.8, 0.6) = −0.15
    assert [round(item.parts["mmr"], 6) for item in out] == [0.5, 0.0, -0.15]
    assert VARIETY_REASON in out[1].reasons and VARIETY_REASON not in out[0].reasons
    assert VARIETY_REASON not in out[2].reasons


def test_mmr_hand_example_low_lambda_keeps_relevance_order():
    picks, values = mmr_order(np.array([1.0, 0.8, 0.6]), HAND_VECTORS, 0.25)
    assert picks == [0, 1, 2]
    # λ=0.25: A = 0.75; B = 0.375 − 0.2 = 0.175 (C = 0); C = 0 − 0.25·max(0, 0.6) = −0.15
    assert np.allclose(values, [0.75, 0.175, -0.15])
    assert ids(mmr(HAND, HAND_VECTORS, 0.25)) == ["A", "B", "C"]


def test_mmr_crossover_is_where_the_hand_sum_says():
    assert ids(mmr(HAND, HAND_VECTORS, 5 / 13 - 0.01)) == ["A", "B", "C"]
    assert ids(mmr(HAND, HAND_VECTORS, 5 / 13 + 0.01)) == ["A", "C", "B"]


def test_lambda_zero_is_identity_even_out_of_score_order():
    shuffled = items(("x", 0.1), ("y", 5.0), ("z", 2.0))
    vectors = np.eye(3)
    assert ids(mmr(shuffled, vectors, 0.0)) == ["x", "y", "z"]
    assert ids(diversify(shuffled, vectors, ["a", "a", "a"], 0.0, category_cap=1, page_size=1)) == ["x", "y", "z"]


def test_mmr_top_k_leaves_the_rest_in_input_order():
    four = items(("A", 1.0), ("B", 0.9), ("C", 0.5), ("D", 0.4))
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert ids(mmr(four, vectors, 0.5, top_k=2)) == ["A", "C", "B", "D"]


def test_mmr_does_not_touch_its_input():
    before = [ScoredItem(i.id, i.score) for i in HAND]
    mmr(HAND, HAND_VECTORS, 0.9, page_size=1)
    assert HAND == before


def test_mmr_checks_its_arguments():
    with pytest.raises(ValueError, match="between 0"):
        mmr(HAND, HAND_VECTORS, 1.5)
    with pytest.raises(ValueError, match="one row per item"):
        mmr(HAND, HAND_VECTORS[:2], 0.5)
    with pytest.raises(ValueError, match="twice"):
        mmr(HAND + HAND[:1], np.ones((4, 2)), 0.5)


# diversity: category cap ----------------------------------------------------------------------
def test_category_cap_on_the_first_page():
    cats = ["drills", "drills", "drills", "saws", "drills", "saws"]
    out = cap_categories(ranked(6), cats, 2, page_size=4)
    # page 1: p0, p1 (drills, now full), p3 (saws), p5 (saws); p2 and p4 wait for page 2
    assert ids(out) == ["p0", "p1", "p3", "p5", "p2", "p4"]
    assert [VARIETY_REASON in item.reasons for item in out] == [False, False, False, True, False, False]


def test_category_cap_fills_a_page_it_cannot_diversify():
    out = cap_categories(ranked(4), ["a", "a", "a", "b"], 1, page_size=3)
    assert ids(out) == ["p0", "p3", "p1", "p2"]  # only two categories: the best held-back item fills place 3


def test_empty_category_is_not_capped():
    assert ids(cap_categories(ranked(3), ["", "", ""], 1, page_size=3)) == ["p0", "p1", "p2"]


def test_cap_follows_the_knob():
    assert category_cap_for(0.0, 10) == 10
    assert category_cap_for(0.3, 10) == 7
    assert category_cap_for(0.9, 10) == 1
    assert category_cap_for(1.0, 10) == 1


# rules ----------------------------------------------------------------------------------------
def test_pin_goes_to_its_position():
    rules = RuleSet((Rule(12, "pin", query="drill", products=("p7",), position=2),))
    out = rules.apply(ranked(10), {}, query="Drill ")
    assert ids(out)[1] == "p7"
    assert out[1].reasons == ["pinned by rule 12"]
    assert ids(out) == ["p0", "p7", "p1", "p2", "p3", "p4", "p5", "p6", "p8", "p9"]
    assert ids(rules.apply(ranked(10), {}, query="hammer")) == ids(ranked(10))


def test_pins_conflicting_and_past_the_end():
    pins = [Pin(1, "p3", 1), Pin(1, "p4", 2), Pin(9, "p0", 3), Pin(1, "missing", 4), Pin(2, "p3", 5)]
    out = place_pins(ranked(5), pins)
    assert ids(out) == ["p3", "p4", "p1", "p2", "p0"]


def test_hide_removes_out_of_stock_by_default():
    products = {"p0": product("p0"), "p1": product("p1", in_stock=False), "p2": product("p2")}
    assert ids(RuleSet().apply(ranked(3), products)) == ["p0", "p2"]
    assert ids(RuleSet(hide_out_of_stock=False).apply(ranked(3), products)) == ["p0", "p1", "p2"]


def test_hide_rule_and_filters():
    products = {
        "p0": product("p0", brand="Bosch", price=120.0),
        "p1": product("p1", brand="Makita", price=80.0),
        "p2": product("p2", brand="Makita", price=20.0, category="Tools > Accessories"),
        "p3": product("p3", brand="Bosch", price=5.0),
    }
    hide_bosch = Rule(4, "hide", brand="Bosch", query="saw", match="contains")
    shop = RuleSet((hide_bosch,), filters=SearchFilters(price_min=10))
    assert ids(shop.apply(ranked(4), products)) == ["p0", "p1", "p2"]
    assert ids(shop.apply(ranked(4), products, query="circular saw")) == ["p1", "p2"]
    request = SearchFilters(brand="makita", price_max=50)
    assert ids(shop.apply(ranked(4), products, filters=request)) == ["p2"]


def test_boost_and_bury_move_only_their_targets():
    products = {f"p{i}": product(f"p{i}", brand="Makita" if i == 8 else "Acme") for i in range(10)}
    rules = RuleSet((
        Rule(3, "boost", query="drill", match="contains", brand="makita", amount=0.5),
        Rule(5, "bury", products=("p0",), amount=0.25),
    ))
    out = rules.apply(ranked(10), products, query="cordless drill")
    # scores 10..1, spread 9: p8 2 -> 6.5 (between p3=7 and p4=6); p0 10 -> 7.75 (between p2=8 and p3)
    assert ids(out) == ["p1", "p2", "p0", "p3", "p8", "p4", "p5", "p6", "p7", "p9"]
    assert out[4].reasons == ["boosted by rule 3"] and out[4].score == pytest.approx(6.5)
    assert out[4].parts["rule:3"] == pytest.approx(4.5)
    assert out[2].reasons == ["buried by rule 5"]
    assert ids(rules.apply(ranked(10), products, query="drills"))[0] == "p1"  # whole words: boost is off


def test_rule_context_by_category():
    rules = RuleSet((Rule(1, "pin", category="Power Tools", products=("p2",), position=1),))
    assert ids(rules.apply(ranked(3), {}, category="Tools > Power Tools"))[0] == "p2"
    tools = {f"p{i}": product(f"p{i}", category="Tools > Power Tools") for i in range(3)}
    assert ids(rules.apply(ranked(3), tools, filters=SearchFilters(category="power tools")))[0] == "p2"
    assert rules.apply(ranked(3), {}, filters=SearchFilters(category="power tools")) == []  # unknown: filtered
    assert ids(rules.apply(ranked(3), {}))[0] == "p0"


def test_query_normalisation_and_cjk_contains():
    assert normalise_query("  Cordless-DRILL!! ") == "cordless drill"
    rule = Rule(1, "hide", query="电钻", match="contains", products=("p0",))
    assert rule.applies(normalise_query("无线电钻套装"), None)


@pytest.mark.parametrize("raw, field", [
    ({"id": 1, "action": "shove", "products": ["a"]}, "action"),
    ({"id": 1, "action": "pin", "products": ["a"]}, "position"),
    ({"id": 1, "action": "boost", "products": ["a"]}, "amount"),
    ({"id": 1, "action": "boost", "products": ["a"], "amount": -1}, "amount"),
    ({"id": 1, "action": "hide"}, "products"),
    ({"id": 0, "action": "hide", "products": ["a"]}, "id"),
    ({"id": 1, "action": "hide", "products": ["a"], "colour": "red"}, "colour"),
    ({"id": 1, "action": "hide", "products": ["a"], "query": "  !! "}, "query"),
    ({"action": "hide", "products": ["a"]}, "id"),
])
def test_bad_rules_name_their_field(raw, field):
    with pytest.raises(RuleError) as err:
        Rule.from_dict(raw)
    assert err.value.field == field


def test_ruleset_json_round_trip_and_editing():
    text = json.dumps({
        "version": 1,
        "hide_out_of_stock": True,
        "filters": {"price_min": 1.0},
        "rules": [
            {"id": 12, "action": "pin", "query": "drill", "products": ["p-123"], "position": 1},
            {"id": 3, "action": "boost", "query": "drill", "match": "contains", "brand": "Makita", "amount": 0.2},
            {"id": 7, "action": "bury", "category": "Power Tools", "target_category": "Accessories", "amount": 0.5},
            {"id": 9, "action": "hide", "products": ["p-55"], "note": "recalled"},
        ],
    })
    rules = RuleSet.from_json(text)
    assert [r.id for r in rules.rules] == [3, 7, 9, 12]
    assert RuleSet.from_json(rules.to_json()) == rules
    assert rules.get(12).products == ("p-123",)
    assert rules.next_id() == 13
    edited = rules.with_rule(Rule(9, "hide", products=("p-56",))).without(3)
    assert [r.id for r in edited.rules] == [7, 9, 12] and edited.get(9).products == ("p-56",)
    with pytest.raises(RuleError, match="unique"):
        RuleSet((Rule(1, "hide", products=("a",)), Rule(1, "hide", products=("b",))))
    with pytest.raises(KeyError):
        rules.without(99)


def test_rules_and_config_saved_with_the_shop(tmp_path):
    from shoprank.store import SQLiteStore

    with SQLiteStore(tmp_path / "s.sqlite") as store:
        assert load_rules(store) == RuleSet()
        assert load_config(store) == RerankConfig()
        rules = RuleSet((Rule(1, "pin", products=("p2",), position=1),), hide_out_of_stock=False)
        save_rules(store, rules)
        save_config(store, RerankConfig(diversity=0.5, category_cap=2, explore_share=0.1))
        assert load_rules(store) == rules
        reranker = Reranker.from_store(store)
        assert reranker.config.diversity == 0.5 and reranker.rules == rules
        assert Reranker.from_store(store, diversity=0.0).config.diversity == 0.0  # --diversity 0 turns it off


def test_config_checks_and_evaluation():
    with pytest.raises(ValueError, match="between 0"):
        RerankConfig(diversity=-0.1)
    with pytest.raises(ValueError, match="explore share"):
        RerankConfig(explore_share=0.9)
    with pytest.raises(ValueError, match="valid names"):
        RerankConfig.from_dict({"diversty": 0.2})
    cfg = RerankConfig(explore_share=0.2)
    assert cfg.for_evaluation().explore_share == 0.0
    assert cfg.for_evaluation(explore=True).explore_share == 0.2
    assert RerankConfig().explore_share == 0.0
    assert RerankConfig.from_dict(cfg.to_dict()) == cfg


# exploration ----------------------------------------------------------------------------------
def test_explore_positions_are_bounded_and_spread():
    assert explore_positions(0.1, 10) == [5]
    assert explore_positions(0.2, 10) == [3, 6]
    assert explore_positions(0.1, 5) == []
    with pytest.raises(ValueError, match="explore share"):
        explore_positions(0.5, 10)


def test_explore_takes_a_rare_item_from_below_the_page():
    exposure = {f"p{i}": (50, 1000) for i in range(20)}
    exposure["p17"] = (0, 0)  # the only item rarely shown
    out = explore(ranked(20), exposure, share=0.1, page_size=10, rng=0)
    assert ids(out)[5] == "p17" and out[5].reasons == [EXPLORE_REASON]
    assert ids(out)[:5] == ["p0", "p1", "p2", "p3", "p4"]
    assert ids(out)[6:11] == ["p5", "p6", "p7", "p8", "p9"]
    assert 0.0 <= out[5].parts["explore"] <= 1.0


def test_thompson_sampling_prefers_the_better_click_rate_and_is_seeded():
    exposure = {"p10": (9, 10), "p11": (0, 10)}
    wins = sum(ids(explore(ranked(12), exposure, share=0.1, rng=seed))[5] == "p10" for seed in range(50))
    assert wins >= 45
    first = explore(ranked(30), {}, share=0.2, rng=7)
    assert ids(first) == ids(explore(ranked(30), {}, share=0.2, rng=7))


def test_exposure_from_events():
    from shoprank.data.records import Event

    events = [Event(f"e{i}", "u", item, kind, 1.0e9 + i) for i, (item, kind) in enumerate(
        [("a", "view"), ("a", "click"), ("a", "view"), ("b", "purchase"), ("b", "rating")])]
    assert exposure_from_events(events) == {"a": (1, 3), "b": (1, 2)}
    assert exposure_from_events(events, shown=["view"]) == {"a": (1, 3), "b": (1, 1)}


# the pipeline ---------------------------------------------------------------------------------
def test_pipeline_known_answer():
    products = {
        "a1": product("a1", category="Tools > Drills"),
        "a2": product("a2", category="Tools > Drills"),
        "a3": product("a3", category="Tools > Drills", in_stock=False),
        "b1": product("b1", category="Tools > Saws"),
        "c1": product("c1", category="Garden"),
    }
    vectors = {"a1": np.array([1.0, 0.0]), "a2": np.array([1.0, 0.05]), "a3": np.array([1.0, 0.0]),
               "b1": np.array([0.0, 1.0]), "c1": np.array([0.7, 0.7])}
    given_items = items(("a1", 5.0), ("a2", 4.9), ("a3", 4.8), ("b1", 3.0), ("c1", 1.0))
    rules = RuleSet((Rule(12, "pin", query="drill", products=("c1",), position=1),))
    cfg = RerankConfig(diversity=0.5, page_size=2, depth=2)
    out = rerank(given_items, products, vectors, "drill", cfg, rules=rules)
    assert ids(out) == ["c1", "a1", "b1", "a2"]  # a3 out of stock; c1 pinned; b1 lifted over the near-copy a2
    assert out[0].reasons == ["pinned by rule 12"]
    assert out[2].reasons == [VARIETY_REASON]
    assert out[1].reasons == [] and out[3].reasons == []
    assert ids(rerank(given_items, products, vectors, "drill", RerankConfig(diversity=0.0))) == ["a1", "a2", "b1", "c1"]


def test_pipeline_vector_function_and_missing_vectors():
    calls = []

    def embed(batch):
        calls.append(list(batch))
        return np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])

    cfg = RerankConfig(diversity=0.9, page_size=2, depth=2)
    assert ids(rerank(ranked(3), {}, embed, config=cfg)) == ["p0", "p2", "p1"]
    assert calls == [["p0", "p1", "p2"]]
    assert ids(rerank(ranked(3), {}, {}, config=cfg)) == ["p0", "p1", "p2"]  # no vectors: nothing to diversify


def test_pipeline_explores_new_products_only_when_asked():
    now = 2.0e9
    products = {f"p{i}": product(f"p{i}", category=f"c{i}", created_at=now - 400 * 86400) for i in range(20)}
    products["p15"] = product("p15", category="c15", created_at=now - 86400)  # new this week
    exposure = {f"p{i}": (10, 500) for i in range(20)}
    reranker = Reranker(RerankConfig(diversity=0.0, explore_share=0.1), exposure=exposure)
    out = reranker.rerank(ranked(20), products, now=now, rng=1)
    assert ids(out)[5] == "p15" and EXPLORE_REASON in out[5].reasons
    off = Reranker(reranker.config.for_evaluation(), exposure=exposure)
    assert ids(off.rerank(ranked(20), products, now=now, rng=1)) == ids(ranked(20))


# properties: a re-ranker only reorders and filters -------------------------------------------
@st.composite
def scenarios(draw):
    n = draw(st.integers(0, 25))
    scores = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=n, max_size=n))
    given_items = [ScoredItem(f"p{i}", s, {"ranker": s}, ["from ranker"]) for i, s in enumerate(scores)]
    products = {
        f"p{i}": product(f"p{i}", category=draw(st.sampled_from(["A", "B", "A > X", ""])),
                         brand=draw(st.sampled_from(["m", "n"])), in_stock=draw(st.booleans()))
        for i in range(n) if draw(st.booleans()) or n < 3
    }
    vectors = {f"p{i}": np.array(draw(st.lists(st.floats(-1, 1), min_size=3, max_size=3))) for i in range(n)}
    pid = st.sampled_from([f"p{i}" for i in range(max(n, 1))])
    rule = st.one_of(
        st.builds(lambda k, p, pos: Rule(k, "pin", products=(p,), position=pos),
                  st.integers(1, 50), pid, st.integers(1, 30)),
        st.builds(lambda k, p, a, act: Rule(k, act, products=(p,), amount=a),
                  st.integers(1, 50), pid, st.floats(0.01, 2), st.sampled_from(["boost", "bury"])),
        st.builds(lambda k, b: Rule(k, "hide", brand=b), st.integers(1, 50), st.sampled_from(["m", "n"])),
    )
    rules = draw(st.lists(rule, max_size=4, unique_by=lambda r: r.id))
    config = RerankConfig(
        diversity=draw(st.floats(0, 1)), page_size=draw(st.integers(1, 6)), depth=draw(st.integers(6, 30)),
        category_cap=draw(st.none() | st.integers(1, 4)), explore_share=draw(st.sampled_from([0.0, 0.1, 0.3])),
    )
    return given_items, products, vectors, RuleSet(tuple(rules)), config, draw(st.integers(0, 2**32 - 1))


def hidden(item_id, products, rules):
    p = products.get(item_id)
    if p is not None and not p.in_stock:
        return True
    return any(r.action == "hide" and r.targets(item_id, p) for r in rules.rules)


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_rerank_only_reorders_and_filters(case):
    given_items, products, vectors, rules, config, seed = case
    snapshot = [(i.id, i.score, dict(i.parts), list(i.reasons)) for i in given_items]
    out = rerank(given_items, products, vectors, "q", config, rules=rules, rng=seed)
    out_ids = ids(out)
    assert len(out_ids) == len(set(out_ids))  # no duplicates
    assert set(out_ids) == {i.id for i in given_items if not hidden(i.id, products, rules)}  # subset: only hidden go
    by_id = {i.id: i for i in given_items}
    for item in out:
        boosts = sum(v for k, v in item.parts.items() if k.startswith("rule:"))
        assert item.score == pytest.approx(by_id[item.id].score + boosts)  # scores change only by rules
        assert item.parts["ranker"] == by_id[item.id].parts["ranker"] and item.reasons[0] == "from ranker"
    assert [(i.id, i.score, i.parts, i.reasons) for i in given_items] == snapshot  # input untouched
    again = rerank(given_items, products, vectors, "q", config, rules=rules, rng=seed)
    assert ids(again) == out_ids  # seeded: repeatable


def copied_steps(given_items, products, vectors, rules, config, seed):
    """The pipeline as its public steps, each on its own copies: what one shared copy must reproduce."""
    kept = rules.filter(given_items, products, query="q")
    adjusted = rules.adjust(kept, products, query="q")
    pins = rules.pins("q", None)
    pinned = {pin.item_id for pin in pins}
    free = [item for item in adjusted if item.id not in pinned]
    if config.diversity > 0 and free:
        matrix = np.stack([vectors[item.id] for item in free])
        categories = [" > ".join(products[i.id].category_path).casefold() if i.id in products else "" for i in free]
        free = diversify(free, matrix, categories, config.diversity, category_cap=config.category_cap,
                         page_size=config.page_size, top_k=config.depth)
    if config.explore_share > 0 and free:
        free = explore(free, {}, share=config.explore_share, page_size=config.page_size, depth=config.depth,
                       prior=config.explore_prior, rng=seed)
    return place_pins(free + [item for item in adjusted if item.id in pinned], pins)


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_rerank_one_copy_matches_the_steps_on_their_own_copies(case):
    given_items, products, vectors, rules, config, seed = case
    out = rerank(given_items, products, vectors, "q", config, rules=rules, rng=seed)
    reference = copied_steps(given_items, products, vectors, rules, config, seed)
    assert [(i.id, i.score, i.parts, i.reasons) for i in out] == [
        (i.id, i.score, i.parts, i.reasons) for i in reference]


def test_steps_without_copy_change_the_callers_items_in_place():
    mine = [ScoredItem(f"p{i}", float(10 - i), {}, []) for i in range(10)]
    rules = RuleSet((Rule(1, "boost", products=("p9",), amount=5.0),))
    adjusted = rules.adjust(mine, {}, copy=False)
    assert adjusted[0] is mine[9] and mine[9].parts == {"rule:1": pytest.approx(45.0)}
    pinned = place_pins(adjusted, [Pin(1, "p5", 7)], copy=False)
    assert pinned[0] is mine[5] and mine[5].reasons == ["pinned by rule 7"]
    copied = place_pins(mine, [Pin(1, "p3", 8)])
    assert copied[0] is not mine[3] and "pinned by rule 8" not in mine[3].reasons


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_lambda_zero_without_rules_keeps_the_order(case):
    given_items, products, vectors, _, config, _ = case
    in_stock = [i for i in given_items if not hidden(i.id, products, RuleSet())]
    cfg = RerankConfig(diversity=0.0, page_size=config.page_size, category_cap=config.category_cap)
    out = rerank(in_stock, products, vectors, None, cfg)
    assert ids(out) == ids(in_stock)
    assert all(item.reasons == ["from ranker"] for item in out)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False), max_size=20), st.floats(0, 1), st.integers(1, 5),
       st.integers(1, 4))
def test_diversify_is_a_permutation(scores, lam, page_size, cap):
    given_items = [ScoredItem(f"p{i}", s) for i, s in enumerate(scores)]
    rng = np.random.default_rng(len(scores))
    vectors = rng.normal(size=(len(scores), 2))
    categories = [f"c{i % 3}" for i in range(len(scores))]
    out = diversify(given_items, vectors, categories, lam, category_cap=cap, page_size=page_size)
    assert sorted(ids(out)) == sorted(ids(given_items))
    if given_items and 0 < lam < 1:  # the most relevant item (the first of equals) never moves
        assert out[0].id == max(given_items, key=lambda i: (i.score, -int(i.id[1:]))).id


def test_the_top_item_stays_first_when_normalising_rounds_scores_together() -> None:
    # 1.8e-102 beats 0.0, but (s - min) / spread rounds both to 1.0: the first pick reads the scores themselves
    items = [ScoredItem("p0", 0.0), ScoredItem("p1", 1.8e-102), ScoredItem("p2", -1.0)]
    vectors = np.random.default_rng(3).normal(size=(3, 2))
    out = diversify(items, vectors, ["c0", "c1", "c2"], 0.1, category_cap=1, page_size=1)
    assert out[0].id == "p1"


# randomisation ----------------------------------------------------------------------------------
def test_randomise_swaps_neighbours_of_the_first_twenty_places_only_and_is_seeded():
    n = 30
    catalogue = {f"p{i}": product(f"p{i}") for i in range(n)}
    shuffled = Reranker(RerankConfig(randomise=1.0)).rerank(ranked(n), catalogue, rng=3)
    order = ids(shuffled)
    assert sorted(order) == sorted(ids(ranked(n))) and order[20:] == [f"p{i}" for i in range(20, n)]
    assert all(abs(order.index(f"p{i}") - i) <= 1 for i in range(20)) and order[:20] != ids(ranked(20))
    assert order == ids(Reranker(RerankConfig(randomise=1.0)).rerank(ranked(n), catalogue, rng=3))
    draws = {tuple(ids(Reranker(RerankConfig(randomise=0.5)).rerank(ranked(n), catalogue, rng=s))) for s in range(8)}
    assert len(draws) > 1  # shoppers (seeds) see different swaps
    assert not Reranker(RerankConfig(randomise=0.5)).only_filters()
    with pytest.raises(ValueError, match="randomisation rate"):
        RerankConfig(randomise=1.5)
    cfg = RerankConfig(randomise=0.3)
    assert cfg.for_evaluation().randomise == 0.0 and RerankConfig.from_dict(cfg.to_dict()) == cfg


def test_randomise_is_off_for_evaluation_requests(tmp_path):
    from shoprank.rerank.shop import ShopReranking
    from shoprank.shops import Shop

    with Shop("r", tmp_path).store() as store:
        save_config(store, RerankConfig(randomise=0.5))
        reranking = ShopReranking(store)
        assert reranking.for_request(explore=True).config.randomise == 0.5
        assert reranking.for_request(explore=False).config.randomise == 0.0  # evaluation repeats
        assert reranking.for_request(rules_only=True).config.randomise == 0.0  # similar items, sorted answers


def test_request_seeds_follow_the_five_minute_window_unless_it_is_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from shoprank.rerank import shop

    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    monkeypatch.delenv(shop.SEED_WINDOW_ENV, raising=False)
    first = shop.request_seed("drill", "u1")
    assert shop.request_seed("drill", "u1") == first != shop.request_seed("drill", "u2")
    clock[0] += shop.SEED_WINDOW_S
    assert shop.request_seed("drill", "u1") != first  # the next window draws again
    monkeypatch.setenv(shop.SEED_WINDOW_ENV, "7")
    pinned = shop.request_seed("drill", "u1")
    clock[0] += 10 * shop.SEED_WINDOW_S
    assert shop.request_seed("drill", "u1") == pinned  # pinned: the same draw however late
    monkeypatch.setenv(shop.SEED_WINDOW_ENV, "soon")
    with pytest.raises(ValueError, match="SHOPRANK_SEED_WINDOW must be a whole number"):
        shop.pinned_seed_window()
