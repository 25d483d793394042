"""End to end: the funnel dashboard in a real headless Chromium, against the API on a demo log.

It types a token, moves the time slider, and checks the numbers on the page against the API for the
same instant; then opens a stuck deal's audit trail. A screenshot is saved to build/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from services.application import CrmApplication
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support.api_server import running_api

CHROMIUM = "/usr/bin/chromium"
TOKEN = "e2e-analyst-token"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = database_from_url(f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'crm.sqlite3'}")
    app = CrmApplication(database)
    app.ensure_default_pipelines()
    DemoHistory(app, DemoSettings(seed=5, leads=900, days=400)).run()
    with closing(ReadModelStore(database)) as store:
        projector_for(app, store).catch_up()  # as `crm demo` does: the API's queries read what was applied
    app.close()
    with running_api(database, {TOKEN: ("分析师", "analyst")}) as url:
        yield url


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{server}/dashboard")
        yield page
        browser.close()


def _api_funnel(server: str, instant: str) -> dict:
    response = httpx.get(f"{server}/funnel", params={"pipeline": "sales", "as_of": instant, "stuck_days": "30"},
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return response.json()


def _shown_rows(page: Page) -> list[list[str]]:
    return [[cell.strip() for cell in row.locator("td").all_inner_texts()]
            for row in page.locator("#stages tbody tr").all()]


def _expected_rows(report: dict) -> list[list[str]]:
    def pct(value: float | None, note: str | None) -> str:
        if value is None:
            return f"n/a ({note.split(':')[0]})" if note else "–"
        return f"{value * 100:.1f}%"

    return [[row["label"], str(row["items"]), str(row["reached"]), pct(row["conversion_to_next"], row["conversion_note"])]
            for row in report["rows"]]


def _load(page: Page, previous: str | None = None) -> str:
    page.wait_for_function("prev => document.body.dataset.loadedAsOf && document.body.dataset.loadedAsOf !== prev",
                           arg=previous, timeout=15000)
    return page.evaluate("document.body.dataset.loadedAsOf")


def test_the_page_shows_the_same_funnel_as_the_api_as_the_slider_moves(page: Page, server: str) -> None:
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    now = _load(page)
    shown = [[r[0], r[1], r[3], r[4]] for r in _shown_rows(page)]
    assert shown == _expected_rows(_api_funnel(server, now))
    assert page.locator("#chart .funnellayer .point").count() == len(shown)  # plotly drew one bar per stage

    page.locator("#as-of").fill("-200")  # move the slider 200 days back
    page.locator("#as-of").press("ArrowLeft")  # and one more day, by keyboard
    earlier = _load(page, now)

    assert page.locator("#as-of-days").inner_text() == "201 days ago"
    shown_earlier = [[r[0], r[1], r[3], r[4]] for r in _shown_rows(page)]
    assert shown_earlier == _expected_rows(_api_funnel(server, earlier))
    assert shown_earlier != shown
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)


def test_a_stuck_deal_opens_its_audit_trail(page: Page, server: str) -> None:
    rows = page.locator("#stuck tbody tr")
    if rows.count() == 0:
        page.fill("#stuck-days", "3")
        page.click("button[type=submit]")
        page.wait_for_function("document.querySelectorAll('#stuck tbody tr').length > 0", timeout=15000)
    deal_id = rows.first.locator("td").first.inner_text()
    rows.first.click()
    page.wait_for_function("document.querySelectorAll('#audit li').length > 0", timeout=15000)

    history = httpx.get(f"{server}/deals/{deal_id}/history", params={"limit": 500},
                        headers={"Authorization": f"Bearer {TOKEN}"}).json()
    entries = history["items"] if isinstance(history, dict) else history
    assert page.locator("#audit li").count() == len(entries)
    assert "Opened" in page.locator("#audit li").first.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-audit.png"), full_page=True)
