"""The storefront page, end to end in headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from shoprank.keys import KeyStore
from tests.support.fakes import tiny_shop
from tests.support.serving import threaded_server

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                       "(apt-get install chromium; .ci/run installs it)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    tiny_shop(tmp_path, "tiny")
    key, _ = KeyStore(tmp_path).create("storefront", "tiny")
    with threaded_server(tmp_path) as (_, port):
        yield f"http://127.0.0.1:{port}", key, tmp_path


@contextmanager
def _browser() -> Iterator[Any]:
    """Headless Debian chromium (flags that keep it off the closed network), closed afterwards."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


def test_search_click_and_recommendations(server: tuple[str, str, Path]) -> None:
    url, key, home = server
    with _browser() as browser:
        page = browser.new_page()
        page.goto(f"{url}/#key={key}")
        page.wait_for_function("document.querySelector('#shop').value === 'tiny'")
        assert "key=" not in page.url  # the key leaves the address bar for localStorage
        page.fill("#user", "u2")
        page.click("#settings button[type=submit]")
        page.fill("#q", "drill")
        page.press("#q", "Enter")
        first = page.locator("#results li").first
        first.wait_for()
        assert "Drill" in first.inner_text() and "matches drill" in first.inner_text()
        assert page.locator("#facets button").count() > 0
        assert "2 results" in page.inner_text("#results-summary")
        page.locator("#for-you li").first.wait_for()  # u2 bought garden things
        assert "Garden" in page.inner_text("#for-you")
        clicked = first.get_attribute("data-id")
        first.locator("button").click()
        page.wait_for_function("document.querySelector('#click-status').textContent.includes('Click recorded')")
        page.locator("#similar li").first.wait_for()
        page.locator("#together li").first.wait_for()  # filled by its own request, maybe after #similar
        assert page.locator("#together li").count() > 0
        assert page.locator("#open-warning").is_hidden()
    from shoprank.shops import Shop

    with Shop("tiny", home).store() as store:
        clicks = [e for e in store.user_events("u2") if e.type == "click"]
    assert [(e.item_id, e.query, e.position) for e in clicks] == [(clicked, "drill", 0)]


def test_key_hint_prices_sorting_scores_and_did_you_mean(server: tuple[str, str, Path]) -> None:
    url, key, _ = server
    with _browser() as browser:
        page = browser.new_page(locale="en-US")
        page.goto(url)
        page.locator("#key-hint").wait_for()  # no key: the page says what to do instead of staying empty
        assert "needs an API key" in page.inner_text("#key-hint")
        assert "shoprank keys create --scope storefront" in page.inner_text("#key-hint")
        page.fill("#key", key)
        page.click("#settings button[type=submit]")
        page.wait_for_function("document.querySelector('#shop').value === 'tiny'")
        assert page.locator("#key-hint").is_hidden()

        page.fill("#q", "puzzle")
        page.select_option("#sort", "price_desc")
        page.press("#q", "Enter")
        page.wait_for_function("document.querySelectorAll('#results li').length === 8")
        ids = page.eval_on_selector_all("#results li", "items => items.map(li => li.dataset.id)")
        assert ids == ["toys-4-1", "toys-3-0", "toys-2-1", "toys-2-0", "toys-1-1", "toys-1-0", "toys-0-1",
                       "toys-0-0"]  # dearest first; the two out-of-stock puzzles hidden
        first = page.inner_text("#results li >> nth=0")
        assert "€124.00" in first  # the price with its currency
        assert page.locator("#results .score").count() == 0  # score internals are not for shoppers

        page.check("#debug")
        page.click("#settings button[type=submit]")
        page.wait_for_function("document.querySelectorAll('#results .score').length === 8")
        assert "score" in page.inner_text("#results li >> nth=0")

        page.select_option("#sort", "relevance")
        page.fill("#q", "sprinkel")
        page.press("#q", "Enter")
        page.wait_for_function("!document.querySelector('#did-you-mean').hidden")
        assert page.inner_text("#did-you-mean") == "Showing results for “sprinkler”."
        assert "Sprinkler" in page.inner_text("#results li >> nth=0")


def test_a_query_nothing_matches_shows_the_no_results_state(server: tuple[str, str, Path]) -> None:
    url, key, _ = server
    with _browser() as browser:
        page = browser.new_page(locale="en-US")
        page.goto(f"{url}/#key={key}")
        page.wait_for_function("document.querySelector('#shop').value === 'tiny'")
        page.fill("#q", "puzzle")
        page.press("#q", "Enter")
        page.wait_for_function("document.querySelectorAll('#results li').length > 0")
        assert page.locator("#no-match").is_hidden()
        page.fill("#q", "xyzzy qwerty")
        page.press("#q", "Enter")
        page.wait_for_function("!document.querySelector('#no-match').hidden")
        assert page.inner_text("#results-summary") == "No products match “xyzzy qwerty”."
        assert page.locator("#results li").count() == 0 and page.locator("#facets .facet").count() == 0
        assert "Check the spelling" in page.inner_text("#no-match")
        assert page.locator("#next").is_disabled()


def test_help_box_answers_hands_over_and_lists_products(server: tuple[str, str, Path]) -> None:
    from shoprank.answers.examples import tiny_answers
    from shoprank.shops import Shop

    url, key, home = server
    tiny_answers(Shop("tiny", home))  # published while the server runs: picked up on the first question
    with _browser() as browser:
        page = browser.new_page()
        page.goto(f"{url}/#key={key}")
        page.wait_for_function("document.querySelector('#shop').value === 'tiny'")
        page.fill("#help-q", "I'd like my money back")
        page.click("#help-form button[type=submit]")
        page.wait_for_selector("#help-answer .answer")
        assert "return any item within 30 days" in page.inner_text("#help-answer")
        assert "returns" in page.inner_text("#help-answer .meta")
        page.fill("#help-q", "sing me a song")
        page.press("#help-q", "Enter")
        page.wait_for_selector("#help-answer .handoff")
        assert "a person from our team" in page.inner_text("#help-answer")
        page.fill("#help-q", "have you got a drill for sale")
        page.click("#help-form button[type=submit]")
        page.locator("#help-products li").first.wait_for()
        assert "Drill" in page.inner_text("#help-products")


def test_analytics_page_plots_sentiment_and_lists_alerts(server: tuple[str, str, Path]) -> None:
    from shoprank.data.ingest import ingest_rows
    from shoprank.sentiment.examples import review_history
    from shoprank.shops import Shop

    url, key, home = server
    rows, _ = review_history(["tools-0-0", "tools-0-1"], burst_product="tools-0-0")
    with Shop("tiny", home).store() as store:
        ingest_rows(store, "reviews", enumerate(rows, 1))
    with _browser() as browser:
        page = browser.new_page()
        page.goto(f"{url}/analytics#key={key}")
        page.locator("#plot path.share").wait_for()
        assert "key=" not in page.url
        assert page.locator("#plot rect.bar").count() >= 26  # one bar per week with reviews
        assert page.locator("#plot .alert-mark").count() >= 1
        assert "labels from the rating" in page.inner_text("#trend-summary")
        assert "product:tools-0-0" in page.inner_text("#alerts")
        page.fill("#product", "tools-0-1")  # the quiet product: a plot, no alert
        page.click("#settings button[type=submit]")
        page.wait_for_function("document.querySelector('#trend-summary').textContent.includes('0 alerts')")
        assert page.locator("#plot path.share").count() == 1
        assert page.locator("#alerts tr").count() == 0


def test_analytics_page_plots_searches_clicks_and_queries_that_found_nothing(
        server: tuple[str, str, Path]) -> None:
    import httpx

    url, key, home = server
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
        answers = [c.get("/shops/tiny/search", params={"q": q}).json() for q in ("drill", "drill", "saw", "xylophone")]
        posted = c.post("/shops/tiny/events", json={"events": [
            {"event_id": "click-1", "user_id": "u1", "item_id": answers[0]["hits"][1]["id"], "type": "click",
             "timestamp": time.time(), "request_id": answers[0]["request_id"]}]})
        assert posted.json()["attributed"] == 1
        deadline = time.monotonic() + 10  # the server writes impressions off the request path
        while c.get("/shops/tiny/analytics").json()["searches"] < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    with _browser() as browser:
        page = browser.new_page()
        page.goto(f"{url}/analytics#key={key}")
        page.wait_for_function("document.querySelector('#search-summary').textContent.startsWith('4 searches')")
        assert "1 found nothing (25.0%)" in page.inner_text("#search-summary")
        assert page.locator("#days-plot rect.day-bar").count() == 1
        assert page.locator("#days-plot path.zero-rate").count() == 1
        ctr = page.locator("#position-plot rect.ctr-bar")
        assert ctr.count() == 2 and ctr.nth(1).get_attribute("data-value") == "0.333333"  # 1 click in 3 answers
        assert page.locator("#top-queries tr").first.inner_text().split("\t")[:2] == ["drill", "2"]
        assert page.inner_text("#zero-queries").split("\t")[0] == "xylophone"
        page.locator("#trend-summary").wait_for()  # the sentiment part of the page still loads beside it


def test_search_box_suggests_logged_queries_and_products_with_the_keyboard(server: tuple[str, str, Path]) -> None:
    import httpx

    url, key, _ = server
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        for _ in range(2):  # a query searched twice that found something becomes a suggestion
            assert c.get("/shops/tiny/search", params={"q": "drill"}).json()["hits"]
        deadline = time.monotonic() + 10
        while c.get("/shops/tiny/analytics").json()["searches"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    with _browser() as browser:
        page = browser.new_page()
        page.goto(f"{url}/#key={key}")
        page.wait_for_function("document.querySelector('#shop').value === 'tiny'")
        page.locator("#q").press_sequentially("dri")
        options = page.locator("#suggestions li")
        options.first.wait_for()
        assert options.first.get_attribute("data-kind") == "query" and options.first.inner_text().startswith("drill")
        assert any("Drill" in t for t in options.all_inner_texts()[1:])  # product titles after the query
        page.press("#q", "ArrowDown")
        assert options.first.get_attribute("aria-selected") == "true"
        page.press("#q", "ArrowDown")
        second = options.nth(1).inner_text().split("\n")[0].replace("product", "").strip()
        page.press("#q", "Enter")  # takes the highlighted suggestion and searches it
        page.locator("#results li").first.wait_for()
        assert page.input_value("#q") == second and page.locator("#suggestions").is_hidden()
        page.fill("#q", "")
        page.locator("#q").press_sequentially("hsoe")  # a typo still finds the hoses
        options.first.wait_for()
        assert "Hose" in page.inner_text("#suggestions")
        page.press("#q", "Escape")
        assert page.locator("#suggestions").is_hidden()
