"""Experiments through the HTTP API on the tiny shop: definitions checked whole, sticky assignment, the
variant on every answer and impression, one running per surface, stop, and a restart that keeps it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from shoprank.abtest.assign import assign
from shoprank.keys import KeyStore
from shoprank.shops import Shop
from tests.support.fakes import publish_fake_bundle, tiny_shop
from tests.test_analytics import client, fake_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def two_versions(home: Path) -> tuple[str, str]:
    shop = tiny_shop(home)
    from shoprank.bundles import latest_version

    old = latest_version(shop.models_path, "search")
    assert old is not None
    new = publish_fake_bundle(shop, "search", personal=0.0)
    return old, new


AB = {"kind": "ab", "surface": "search", "traffic": {"A": 0.5, "B": 0.5}}


async def test_ab_experiment_end_to_end(tmp_path: Path) -> None:
    old, new = two_versions(tmp_path)
    key, _ = KeyStore(tmp_path).create("admin")
    app = fake_app(tmp_path)
    body = {**AB, "variants": {"A": {"search_model": old}, "B": {"search_model": "latest", "diversity": 0}}}
    async with client(app, key) as c:
        created = await c.put("/shops/tiny/experiments/ranker", json=body)
        again = await c.put("/shops/tiny/experiments/ranker", json=body)
        second = await c.put("/shops/tiny/experiments/other", json=body)
        recommend = await c.put("/shops/tiny/experiments/recs", json={
            **AB, "surface": "recommend", "variants": {"A": {}, "B": {"rules": False}}})
        seen: dict[str, str] = {}
        answers = []
        for n in range(40):
            answer = (await c.get("/shops/tiny/search", params={"q": "drill", "user_id": f"shopper{n}"})).json()
            repeat = (await c.get("/shops/tiny/search", params={"q": "saw", "user_id": f"shopper{n}"})).json()
            assert answer["experiment"] == "ranker" and repeat["variant"] == answer["variant"]  # sticky
            seen[answer["variant"]] = answer["model_version"]
            answers.append(answer)
        anonymous = (await c.get("/shops/tiny/search", params={"q": "drill", "session_id": "s1"})).json()
        recs = (await c.get("/shops/tiny/users/u1/recommendations")).json()
        clicks = [{"event_id": f"c{n}", "user_id": f"shopper{n}", "item_id": a["hits"][0]["id"], "type": "click",
                   "timestamp": time.time(), "request_id": a["request_id"]} for n, a in enumerate(answers) if n % 2]
        assert (await c.post("/shops/tiny/events", json={"events": clicks})).json()["attributed"] == 20
        assert app.state.impressions.flush()
        report = (await c.get("/shops/tiny/experiments/ranker")).json()
        listed = (await c.get("/shops/tiny/experiments")).json()
        stopped = await c.post("/shops/tiny/experiments/ranker/stop")
        after = (await c.get("/shops/tiny/search", params={"q": "drill", "user_id": "shopper1"})).json()
        readable = await c.get("/shops/tiny/experiments/ranker")
        missing = await c.get("/shops/tiny/experiments/nope")
        restarted_later = await c.put("/shops/tiny/experiments/other", json=body)  # the surface is free now
    app.state.impressions.close()
    app.state.registry.close()
    assert (created.status_code, again.status_code, recommend.status_code) == (201, 200, 201)
    assert second.status_code == 409 and "'ranker'" in second.json()["error"]["message"]
    assert seen == {"A": old, "B": new}  # each variant answers with its own model
    assert anonymous["variant"] in ("A", "B") and recs["experiment"] == "recs"
    assert report["variants"]["A"]["impressions"] + report["variants"]["B"]["impressions"] == 81  # 80 + session
    assert report["variants"]["A"]["clicks"] + report["variants"]["B"]["clicks"] == 20
    assert {"difference", "interval", "p_value", "always_valid_p", "winner", "sample_needed"} <= set(report)
    assert report["winner"] is None  # 81 answers decide nothing
    assert [e["name"] for e in listed["experiments"]] == ["ranker", "recs"]
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    assert "experiment" not in after and readable.json()["state"] == "stopped"
    assert missing.status_code == 404 and restarted_later.status_code == 201
    with Shop("tiny", tmp_path).store() as store:
        stored = store.get_impressions([answers[0]["request_id"]])[answers[0]["request_id"]]
    assert (stored.experiment, stored.variant) == ("ranker", answers[0]["variant"])


@pytest.mark.parametrize(("change", "field"), [
    ({"traffic": {"A": 0.5, "B": 0.6}}, "traffic"),
    ({"traffic": {"A": 1.0}}, "traffic"),
    ({"variants": {"A": {"search_model": "v-does-not-exist"}, "B": {}}}, "variants.A.search_model"),
    ({"variants": {"A": {}, "B": {"diversity": 2}}}, "variants.B.diversity"),
    ({"variants": {"A": {}, "B": {"colour": "red"}}}, "variants.B.colour"),
    ({"variants": {"A": {}}}, "variants"),
    ({"kind": "bandit"}, "kind"),
    ({"surface": "similar"}, "surface"),
    ({"variants": {"A": {"search_model": "baseline"}, "B": {}}}, "variants.A.search_model"),
])
async def test_bad_definitions_are_refused_naming_the_field(tmp_path: Path, change: dict[str, Any],
                                                            field: str) -> None:
    two_versions(tmp_path)
    key, _ = KeyStore(tmp_path).create("admin")
    app = fake_app(tmp_path)
    async with client(app, key) as c:
        r = await c.put("/shops/tiny/experiments/x", json={**AB, "variants": {"A": {}, "B": {}}, **change})
        listed = (await c.get("/shops/tiny/experiments")).json()
    app.state.registry.close()
    assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
    assert listed["experiments"] == []  # nothing half-stored


async def test_a_variant_named_twice_and_a_shop_without_the_model(tmp_path: Path) -> None:
    tiny_shop(tmp_path, recommend=False)
    key, _ = KeyStore(tmp_path).create("admin")
    app = fake_app(tmp_path)
    async with client(app, key) as c:
        twice = await c.put("/shops/tiny/experiments/x", content=b'{"surface": "search", "variants": '
                            b'{"A": {}, "A": {}, "B": {}}, "traffic": {"A": 0.5, "B": 0.5}}',
                            headers={"Content-Type": "application/json"})
        no_model = await c.put("/shops/tiny/experiments/y", json={**AB, "surface": "recommend",
                                                                   "variants": {"A": {}, "B": {}}})
        bad_name = await c.put("/shops/tiny/experiments/-x", json={**AB, "variants": {"A": {}, "B": {}}})
    app.state.registry.close()
    assert twice.status_code == 422 and twice.json()["error"]["field"] == "variants"
    assert no_model.status_code == 422 and no_model.json()["error"]["field"] == "surface"
    assert bad_name.status_code == 422 and bad_name.json()["error"]["field"] == "name"


async def test_a_running_experiment_survives_a_restart(tmp_path: Path) -> None:
    two_versions(tmp_path)
    key, _ = KeyStore(tmp_path).create("admin")
    app = fake_app(tmp_path)
    async with client(app, key) as c:
        started = await c.put("/shops/tiny/experiments/x", json={**AB, "variants": {"A": {}, "B": {}}})
        assert started.status_code == 201
        before = (await c.get("/shops/tiny/search", params={"q": "drill", "user_id": "u9"})).json()["variant"]
    app.state.registry.close()
    app = fake_app(tmp_path)  # a new process on the same home
    async with client(app, key) as c:
        after = (await c.get("/shops/tiny/search", params={"q": "drill", "user_id": "u9"})).json()
    app.state.registry.close()
    assert after["experiment"] == "x" and after["variant"] == before


def test_assignment_is_sticky_balanced_and_independent_across_experiments() -> None:
    units = [f"user{n}" for n in range(8000)]
    first = [assign("salt-1", u, ["A", "B"], [0.5, 0.5]) for u in units]
    second = [assign("salt-2", u, ["A", "B"], [0.5, 0.5]) for u in units]
    assert first == [assign("salt-1", u, ["A", "B"], [0.5, 0.5]) for u in units]
    assert abs(first.count("A") / 8000 - 0.5) < 0.03
    both = sum(1 for a, b in zip(first, second, strict=True) if a == b == "A") / 8000
    assert abs(both - 0.25) < 0.03  # P(A in one and A in the other) = 1/4: independent
    skewed = [assign("salt-3", u, ["A", "B", "C"], [0.8, 0.1, 0.1]) for u in units]
    assert abs(skewed.count("A") / 8000 - 0.8) < 0.03


def test_the_cli_starts_shows_and_stops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from shoprank.cli.main import main

    old, _ = two_versions(tmp_path)
    home = ["--shop", "tiny", "--home", str(tmp_path)]
    definition = json.dumps({**AB, "variants": {"A": {"search_model": old}, "B": {}}})
    assert main(["experiments", "start", "cli-test", *home, "--definition", definition]) == 0
    assert "started: cli-test" in capsys.readouterr().out
    assert main(["experiments", "start", "second", *home, "--definition", definition]) == 1
    assert "'cli-test' is running on search" in capsys.readouterr().err
    bad = json.dumps({**AB, "variants": {"A": {}, "B": {}}, "traffic": {"A": 0.2, "B": 0.2}})
    assert main(["experiments", "start", "bad", *home, "--definition", bad]) == 1
    assert "traffic: the shares sum to 0.4" in capsys.readouterr().err
    assert main(["experiments", "show", "cli-test", *home]) == 0
    shown = capsys.readouterr().out
    assert "winner: none yet" in shown and "always-valid p" in shown
    assert main(["experiments", "stop", "cli-test", *home]) == 0
    assert main(["experiments", "list", *home]) == 0
    assert "stopped" in capsys.readouterr().out.splitlines()[-1]


async def test_a_variant_serving_another_version_sees_products_written_after_it_loaded(tmp_path: Path) -> None:
    old, new = two_versions(tmp_path)
    key, _ = KeyStore(tmp_path).create("admin")
    app = fake_app(tmp_path)
    body = {**AB, "variants": {"A": {"search_model": old}, "B": {"search_model": "latest"}}}
    async with client(app, key) as c:
        assert (await c.put("/shops/tiny/experiments/fresh", json=body)).status_code == 201

        async def ask(q: str) -> dict[str, dict[str, Any]]:
            by_variant: dict[str, dict[str, Any]] = {}
            for n in range(20):
                answer = (await c.get("/shops/tiny/search", params={"q": q, "user_id": f"shopper{n}"})).json()
                by_variant.setdefault(answer["variant"], answer)
            return by_variant

        await ask("drill")  # variant A's engine (the old version) is loaded now
        put = await c.put("/shops/tiny/products", json={"products": [
            {"id": "zz-1", "title": "zyzzyva drill press", "category": "Tools", "brand": "acme", "price": 9}]})
        found = await ask("zyzzyva")
        gone = await c.delete("/shops/tiny/products/zz-1")
        after = await ask("zyzzyva")
    app.state.impressions.close()
    app.state.registry.close()
    assert put.status_code == 200 and gone.status_code in (200, 204)
    assert {v: a["model_version"] for v, a in found.items()} == {"A": old, "B": new}
    assert all([h["id"] for h in a["hits"]] == ["zz-1"] for a in found.values()), found
    assert all(not a["hits"] for a in after.values()), after
