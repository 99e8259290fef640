"""One set of training profiles for every trainer (shoprank.training.profiles)."""

from __future__ import annotations

import pytest

from shoprank.training.profiles import PROFILE_NAMES, check_profile, resolve


def test_a_profile_starts_from_its_base_and_changes_only_what_it_names() -> None:
    table = {"quick": {"train": {"epochs": 30, "lr": 2e-3}, "text": {"max_length": 64}},
             "demo": {"base": "quick", "train": {"epochs": 6}},
             "full": {"train": {"epochs": 15}}}
    assert resolve(table, "demo") == {"train": {"epochs": 6, "lr": 2e-3}, "text": {"max_length": 64}}
    assert resolve(table, "full") == {"train": {"epochs": 15}}
    assert table["quick"]["train"]["epochs"] == 30  # resolving copies, never edits the table


def test_unknown_profiles_missing_entries_and_loops_are_refused() -> None:
    with pytest.raises(ValueError, match="valid profiles: demo, quick, full"):
        check_profile("huge")
    with pytest.raises(ValueError, match="defines no full profile"):
        resolve({"demo": {}, "quick": {}}, "demo")
    with pytest.raises(ValueError, match="loop: demo -> quick -> demo"):
        resolve({"demo": {"base": "quick"}, "quick": {"base": "demo"}, "full": {}}, "demo")


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_search_and_recommendations_know_the_same_profiles(name: str) -> None:
    from shoprank.recommend.training import profile_config as recommend_profile
    from shoprank.search.train import profile_config as search_profile

    assert search_profile(name).profile == name
    assert recommend_profile(name, 5, 0).profile == name


def test_the_cli_offers_exactly_the_profiles_that_exist() -> None:
    from shoprank.cli.main import build_parser

    parser = build_parser()
    for argv in (["train", "search", "--shop", "s", "--profile", "huge"],
                 ["train", "recommend", "--shop", "s", "--profile", "huge"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    args = parser.parse_args(["train", "recommend", "--shop", "s", "--profile", "demo"])
    assert args.profile == "demo"
