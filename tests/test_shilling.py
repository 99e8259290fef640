"""Shilling defences on tiny logs with known answers, and a tiny end-to-end run of bench/shilling.py's arms."""

from __future__ import annotations

import numpy as np
import pytest

from shoprank.data.records import Event
from shoprank.recommend.defences import DAY, Defences, apply_defences, burst_accounts, dedup, rate_limit
from shoprank.recommend.interactions import Catalogue

HOUR = 3600.0
T0 = 1_600_000_000.0


def ev(user: str, item: str, t: float, type_: str = "purchase") -> Event:
    return Event(event_id=f"{user}:{item}:{t}", user_id=user, item_id=item, type=type_, timestamp=T0 + t)


def steady_log(days: int = 10, rng_seed: int = 0) -> list[Event]:
    """One account signing up every hour for ``days`` days, each with 6 events an hour apart over 40 items."""
    rng = np.random.default_rng(rng_seed)
    events = []
    for u in range(days * 24):
        start = u * HOUR
        for k, item in enumerate(rng.choice(40, 6, replace=False)):
            events.append(ev(f"g{u}", f"i{item}", start + k * HOUR))
    return sorted(events, key=lambda e: e.timestamp)


def removed_users(before: list[Event], after: list[Event]) -> set[str]:
    kept = {(e.user_id, e.item_id, e.timestamp) for e in after}
    return {e.user_id for e in before if (e.user_id, e.item_id, e.timestamp) not in kept}


def test_dedup_keeps_the_first_of_each_user_item_type() -> None:
    log = [ev("u", "a", 0), ev("u", "a", 10), ev("u", "a", 20, "view"), ev("v", "a", 30), ev("u", "b", 40)]
    kept, dropped = dedup(log)
    assert dropped == [log[1]]
    assert kept == [log[0], log[2], log[3], log[4]]


def test_rate_limit_cuts_a_fast_user_and_keeps_an_ordinary_one() -> None:
    fast = [ev("bot", f"i{k}", k * 2.0) for k in range(12)]  # 12 events in 24 s
    slow = [ev("human", f"i{k}", k * HOUR) for k in range(12)]
    later = [ev("bot", "z", 24 + 301.0)]  # the window has passed: allowed again
    kept, dropped = rate_limit(sorted(fast + slow + later, key=lambda e: e.timestamp), cap=5, window_s=300)
    assert dropped == fast[5:]
    assert [e for e in kept if e.user_id == "human"] == slow
    assert later[0] in kept


def test_a_burst_of_new_accounts_is_left_out_and_a_lone_new_user_kept() -> None:
    log = steady_log()
    end = max(e.timestamp for e in log) - T0
    shills = [ev(f"s{u}", item, end - 1800 + u * 10 + k) for u in range(30) for k, item in enumerate(["i1", "i2",
                                                                                                      "target"])]
    lone = [ev("newbie", "i3", end - 5 * HOUR), ev("newbie", "i4", end - 4 * HOUR)]
    events = sorted(log + shills + lone, key=lambda e: e.timestamp)
    config = Defences(stages=("new_accounts",))
    assert burst_accounts(events, config) == {f"s{u}" for u in range(30)}
    kept, report = apply_defences(events, config)
    assert removed_users(events, kept) == {f"s{u}" for u in range(30)}
    assert report.removed["new_accounts"].events == 90 and report.removed["new_accounts"].users == 30
    assert report.events_out == len(log) + len(lone)


def test_sign_ups_at_the_usual_rate_are_no_burst() -> None:
    log = steady_log()  # one new account an hour, also in the last day: nothing is dropped
    kept, report = apply_defences(log, Defences())
    assert kept == log
    assert all(r.events == 0 for r in report.removed.values())


def test_item_velocity_cuts_new_accounts_pushing_one_item_and_nothing_else() -> None:
    log = steady_log()
    end = max(e.timestamp for e in log) - T0
    # 15 new accounts, one every hour of the last day (no burst), each buying "pushed" and a popular item
    pushers = [ev(f"p{u}", item, end - 20 * HOUR + u * HOUR + k * 60) for u in range(15)
               for k, item in enumerate(["pushed", "i5"])]
    events = sorted(log + pushers, key=lambda e: e.timestamp)
    kept, report = apply_defences(events, Defences())
    dropped = [e for e in events if e not in kept]
    assert {e.item_id for e in dropped} == {"pushed"} and len(dropped) == 15
    assert report.removed["item_velocity"].flagged == ["pushed"]
    assert report.removed["new_accounts"].events == 0
    assert sum(e.item_id == "i5" for e in kept) == sum(e.item_id == "i5" for e in events)


def test_a_young_log_has_no_new_accounts_to_dampen() -> None:
    launch = [ev(f"u{u}", f"i{u % 5}", u * 10.0) for u in range(100)]  # a shop's first hour: everyone is new
    kept, report = apply_defences(launch, Defences())
    assert kept == launch and report.events_out == 100


def test_old_accounts_buying_an_item_are_not_a_velocity_burst() -> None:
    log = steady_log()
    end = max(e.timestamp for e in log) - T0
    old_buyers = [ev(f"g{u}", "hit", end - 2 * HOUR + u) for u in range(30)]  # accounts from the first days
    events = sorted(log + old_buyers, key=lambda e: e.timestamp)
    kept, _ = apply_defences(events, Defences())
    assert len(kept) == len(events)


def test_defence_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown defences"):
        Defences(stages=("captcha",))
    with pytest.raises(ValueError, match="rate_cap"):
        Defences(rate_cap=0)
    assert Defences.from_dict(Defences(rate_cap=7).to_dict()) == Defences(rate_cap=7)


def test_log_of_reports_what_the_defences_removed() -> None:
    from shoprank.recommend.pipeline import log_of

    log = [ev("u", "a", 0), ev("u", "a", 10), ev("u", "b", 20)]
    shop_log = log_of(Catalogue(), log, Defences())
    assert shop_log.fingerprint["events"] == 3 and shop_log.fingerprint["events_trained"] == 2
    assert shop_log.fingerprint["defences_removed"]["dedup"]["events"] == 1
    assert [len(s) for s in shop_log.seqs.items] == [2]
    assert "defences" not in log_of(Catalogue(), log).fingerprint


# -- bench/shilling.py on a tiny shop ------------------------------------------------------------------------

def tiny_shop(n_users: int = 200, n_items: int = 80) -> tuple[Catalogue, list[Event], np.ndarray]:
    from shoprank.recommend.text import hash_encode

    rng = np.random.default_rng(3)
    catalogue = Catalogue()
    for i in range(n_items):
        catalogue.add(f"i{i}", f"item {i} genre{i % 7}")
    p = 1.0 / np.arange(1, n_items + 1)
    events = []
    for u in range(n_users):
        start = rng.uniform(0, 10 * DAY)  # sign-ups end 4+ hours before the log does: none in the fakes' burst
        for k, item in enumerate(rng.choice(n_items, int(rng.integers(5, 10)), replace=False, p=p / p.sum())):
            events.append(ev(f"g{u}", f"i{item}", start + k * HOUR))
    vectors = np.vstack([np.zeros((1, 16), np.float32), hash_encode(catalogue.texts, 16)])
    return catalogue, sorted(events, key=lambda e: e.timestamp), vectors


def test_fake_users_share_shape_and_differ_in_items() -> None:
    from bench.shilling import fake_users, prepare

    catalogue, events, vectors = tiny_shop()
    setup = prepare(catalogue, events, vectors, seed=0)
    attack, control = fake_users(setup, 20, "attack", seed=5), fake_users(setup, 20, "control", seed=5)
    assert [(e.user_id, e.timestamp) for e in attack] == [(e.user_id, e.timestamp) for e in control]
    targets = {catalogue.id_of(int(t)) for t in setup.targets}
    by_user: dict[str, list[str]] = {}
    for e in attack:
        by_user.setdefault(e.user_id, []).append(e.item_id)
    for items in by_user.values():
        pushed = [i for i in items if i in targets]
        assert 2 <= len(pushed) <= 6 and len(pushed) % 2 == 0  # 1-3 targets, each sent twice
        assert not set(items[-2:]) & targets  # pushed before the held-out events
    assert min(e.timestamp for e in attack) >= setup.end - 2 * HOUR


def test_tiny_arms_end_to_end() -> None:
    from bench.shilling import prepare, run_arms, uplift

    catalogue, events, vectors = tiny_shop()
    setup = prepare(catalogue, events, vectors, seed=0)
    defences = Defences(burst_min_accounts=5, burst_ratio=2.0)  # 10 fake accounts in 2 h against ~1 sign-up an hour
    ablation = Defences(stages=("dedup",))
    rows = run_arms(setup, (0.05,), profile="demo", threads=1, defences=defences, ablation=ablation, progress=False,
                    overrides={"epochs": 1, "d_model": 16, "n_layers": 1, "negatives": 0, "eval_users": 0})
    assert [(r["arm"], r["defences"]) for r in rows] == [
        ("clean", "off"), ("control 5%", "off"), ("attack 5%", "off"),
        ("clean", "on"), ("control 5%", "on"), ("attack 5%", "on"),
        ("clean", "ablation"), ("control 5%", "ablation"), ("attack 5%", "ablation")]
    on = [r for r in rows if r["defences"] == "on"]
    assert all(r["fake_events_kept"] == 0 and r["genuine_events_dropped"] == 0 for r in on)
    assert all(r["same_log_as"] == "clean, defences off" for r in on)
    assert uplift(rows, 0.05, "on") == 0.0
    dedup_only = [r for r in rows if r["defences"] == "ablation"]
    assert dedup_only[0]["same_log_as"] == "clean, defences off"
    for r in dedup_only[1:]:  # each fake user sent 1-3 events twice
        assert r["removed"]["dedup"]["users"] == r["fake_users"]
        assert r["fake_users"] <= r["removed"]["dedup"]["events"] <= 3 * r["fake_users"]
    for r in rows:
        assert 0.0 <= r["ndcg@10"] <= r["hr@10"] <= 1.0 and 0.0 <= r["target_hr@10"] <= 1.0
    attack_on = on[2]["removed_alone"]
    assert attack_on["new_accounts"]["fake_dropped"] == on[2]["fake_events"]
    assert all(v["genuine_dropped"] == 0 for v in attack_on.values())


def test_train_recommend_reports_defences_and_can_turn_them_off(tmp_path, capsys: pytest.CaptureFixture[str],
                                                                ) -> None:  # noqa: ANN001
    from shoprank.cli.main import main
    from tests.test_recommend_service import make_shop

    shop = make_shop(tmp_path)
    with shop.store() as store:  # u0 sends its last purchase again
        last = store.user_events("u0")[-1]
        store.append_events([Event("again", last.user_id, last.item_id, last.type, last.timestamp + 1)])
    args = ["train", "recommend", "--shop", "tiny", "--home", str(tmp_path), "--encoder", "hash:64", "--epochs",
            "1", "--threads", "1", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "defences   dedup          dropped 1 events (1 users, 1 items)" in out
    assert "defences   new_accounts   dropped 0 events" in out
    assert main([*args[:4], "--home", str(tmp_path), "--blend-only"]) == 0  # same defences, same log: allowed
    capsys.readouterr()
    assert main([*args, "--no-defences"]) == 0
    assert "defences" not in capsys.readouterr().out
