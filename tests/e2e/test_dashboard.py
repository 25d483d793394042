"""End to end: the dashboard in a real headless Chromium, against the API on a demo log in Asia/Shanghai.

It types a token, moves the time slider, and checks the numbers on the page against the API for the
same instant; then opens a stuck deal's audit trail. Beside the demo, a small known history
(tests/support/dashboard_history.py) gives the forecast panel numbers and a target line known to the cent, and
the reminder process, run once, open reminders of a deal and a ticket: shown by name and customer, a click opens
the item's audit trail. Screenshots are saved to build/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from services.application import CrmApplication
from services.reminder_process import ReminderProcess
from services.demo.sample_data import DemoHistory, DemoSettings
from services.projection_runtime.registry import projector_for
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.support.api_server import running_api
from tests.support.dashboard_history import (BEST_CASE_TITLE, CAMPAIGN, COMPETITOR, CUSTOMER, LOSS_REASON, OWNER,
                                             SLIPPED_TITLE, TICKET_SUBJECT, KnownHistory, add_campaign_history,
                                             add_known_history)

CHROMIUM = "/usr/bin/chromium"
TOKEN = "e2e-analyst-token"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
ZONE = "Asia/Shanghai"  # the installation's zone: periods and every displayed time are Shanghai's
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, KnownHistory]]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CRM_TIME_ZONE", ZONE)
        database = database_from_url(f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'crm.sqlite3'}")
        app = CrmApplication(database)
        app.ensure_default_pipelines()
        DemoHistory(app, DemoSettings(seed=5, leads=900, days=400)).run()
        history = replace(add_known_history(app, ZoneInfo(ZONE)), campaign=add_campaign_history(app))
        with closing(ReadModelStore(database)) as store:
            projector_for(app, store).catch_up()  # as `crm demo` does: the API's queries read what was applied
            ReminderProcess(app, store).run_step()  # as `crm reminders run` would, once
            projector_for(app, store).catch_up()
        app.close()
        with running_api(database, {TOKEN: ("分析师", "analyst")}) as url:
            yield url, history


@pytest.fixture(scope="module")
def server(known: tuple[str, KnownHistory]) -> str:
    return known[0]


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


def _api(server: str, path: str, **params: str) -> dict:
    response = httpx.get(f"{server}{path}", params=params, headers={"Authorization": f"Bearer {TOKEN}"})
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
    # On a busy machine the -200 may load first (the page waits 150 ms for the slider to rest): wait for -201's.
    page.wait_for_function("() => document.getElementById('as-of-days').textContent === '201 days ago' && "
                           "document.body.dataset.loadedAsOf === document.getElementById('as-of-label').dataset.instant",
                           timeout=15000)
    earlier = page.evaluate("document.body.dataset.loadedAsOf")

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
    deal_id = rows.first.get_attribute("data-item-id")
    page.wait_for_function("document.querySelector('#stuck tbody tr').dataset.named", timeout=15000)
    deal = _api(server, f"/deals/{deal_id}")
    customer = _api(server, f"/customers/{deal['customer_id']}")
    assert rows.first.locator("td").first.inner_text() == deal["title"]  # by name and customer, not by id
    assert rows.first.locator("td").nth(1).inner_text() == customer["company"]
    rows.first.click()
    page.wait_for_function("id => document.getElementById('audit').dataset.item === id", arg=deal_id, timeout=15000)

    entries = _api(server, f"/deals/{deal_id}/history", limit="500")["items"]
    assert page.locator("#audit li").count() == len(entries)
    assert "Opened" in page.locator("#audit li").first.inner_text()
    assert page.locator("#audit-title").inner_text() == f"{deal['title']} · {customer['company']}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-audit.png"), full_page=True)


def _forecast_loaded(page: Page, grain: str, by: str) -> str:
    """Wait for the forecast panel to show `grain` and `by`; the instant it asked for."""
    page.wait_for_function("want => (document.getElementById('forecast').dataset.loaded || '').endsWith(want)",
                           arg=f" {grain} {by}", timeout=15000)
    return page.locator("#forecast").get_attribute("data-loaded").split(" ")[0]


def _forecast_rows(page: Page) -> dict[tuple[str, str], list[str]]:
    return {(row.get_attribute("data-period"), row.get_attribute("data-group")):
            [cell.strip() for cell in row.locator("td").all_inner_texts()][2:]
            for row in page.locator("#forecast-table tbody tr").all()}


def _money(cents: int | None) -> str:
    return "–" if cents is None else f"{cents / 100:,.0f}"


def test_the_forecast_panel_shows_a_known_history_with_its_target_line(page: Page, known: tuple[str, KnownHistory]
                                                                       ) -> None:
    server, history = known
    before = page.evaluate("document.body.dataset.loadedAsOf")
    page.locator("#as-of").fill("0")  # the slider back to now (the funnel's test moved it)
    _load(page, before)
    page.select_option("#forecast-by", "owner")
    instant = _forecast_loaded(page, "quarter", "owner")
    page.select_option("#forecast-group", OWNER)

    shown = _forecast_rows(page)
    previous, current = history.previous.label, history.current.label
    assert shown == {  # 赵敏's quarters, known to the cent (tests/support/dashboard_history.py)
        (previous, OWNER): ["1", "120,000", "0", "0", "0", "200,000", "60.0%", "80,000"],
        (current, OWNER): ["2", "0", "80,000", "50,000", "104,300", "300,000", "0.0%", "300,000"],
        (history.next.label, OWNER): ["1", "0", "0", "0", "8,700", "–", "–", "–"]}  # pushed there, 29 %
    traces = page.evaluate("document.getElementById('forecast-chart').data.map(t => [t.name, t.x, t.y])")
    target = next(trace for trace in traces if "target" in trace[0])
    assert target[1:] == [[previous, current, history.next.label], [200000, 300000, None]]  # the target line
    assert [t[2] for t in traces if "closed won" in t[0]] == [[120000, 0, 0]]
    assert ZONE in page.locator("#forecast-caption").inner_text()
    assert page.locator(f"#forecast-table tr[data-period='{current}'] td").first.get_attribute("title") == \
        f"2026-10-01 00:00 {ZONE} – 2027-01-01 00:00 {ZONE}".replace("2026-10-01", history.current.first.isoformat()) \
        .replace("2027-01-01", history.current.next().first.isoformat())

    page.select_option("#forecast-group", "")  # all owners: each owner's rows and each quarter's total
    api = _api(server, "/forecast", as_of=instant)  # not grouped: the totals
    totals = {key: row for key, row in _forecast_rows(page).items() if key[1] == "Σ"}
    assert totals == {(row["period"], "Σ"): [str(row["deals"]), *map(_money, (
        row["closed_won_cents"], row["commit_cents"], row["best_case_cents"], row["weighted_pipeline_cents"],
        row["target_cents"])), "–" if row["attainment_percent"] is None else f"{row['attainment_percent']}%",
        _money(row["gap_cents"])] for row in api["rows"]}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-forecast.png"), full_page=True)

    page.select_option("#forecast-grain", "month")
    month = _forecast_loaded(page, "month", "owner")
    assert len(page.locator("#forecast-table tbody tr").all()) == \
        len(_api(server, "/forecast", as_of=month, grain="month", by="owner")["rows"]) + \
        len({row["period"] for row in _api(server, "/forecast", as_of=month, grain="month")["rows"]})


def _open_trail(page: Page, name: str, item_id: str) -> list[str]:
    page.locator("#reminders tbody tr", has_text=name).first.click()
    page.wait_for_function("id => document.getElementById('audit').dataset.item === id", arg=item_id, timeout=15000)
    return page.locator("#audit li").all_inner_texts()


def test_a_reminder_is_shown_by_name_and_a_click_opens_its_audit_trail(page: Page, known: tuple[str, KnownHistory]
                                                                       ) -> None:
    server, history = known
    page.wait_for_function("document.getElementById('reminders-panel').dataset.loadedAsOf", timeout=15000)
    rows = [[cell.strip() for cell in row.locator("td").all_inner_texts()]
            for row in page.locator("#reminders tbody tr").all()]
    deal_row = next(row for row in rows if row[0] == BEST_CASE_TITLE)
    assert deal_row[1:5] == [CUSTOMER, "sales / negotiation", "14d", OWNER] and deal_row[5].endswith(ZONE)
    assert not any(str(history.best_case) in cell for row in rows for cell in row)  # by name, never by id

    trail = _open_trail(page, BEST_CASE_TITLE, str(history.best_case))
    deal_history = _api(server, f"/deals/{history.best_case}/history", limit="500")["items"]
    assert len(trail) == len(deal_history) == 2
    assert "Opened" in trail[0] and trail[0].split(" · ")[1] == OWNER
    assert "StageChanged proposal → negotiation · 客户要求折扣" in trail[1] and ZONE in trail[1]
    assert page.locator("#audit-title").inner_text() == f"{BEST_CASE_TITLE} · {CUSTOMER}"

    ticket_trail = _open_trail(page, TICKET_SUBJECT, str(history.ticket))
    assert len(ticket_trail) == 2 and all(ZONE in entry for entry in ticket_trail)  # opened, assigned
    assert page.locator("#audit-title").inner_text() == f"{TICKET_SUBJECT} · {CUSTOMER}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-reminders.png"), full_page=True)


def test_slippage_shows_the_deal_pushed_last_week_and_opens_its_trail(page: Page, known: tuple[str, KnownHistory]
                                                                      ) -> None:
    server, history = known
    page.wait_for_function("document.getElementById('slippage-panel').dataset.loaded", timeout=15000)
    rows = page.locator("#slippage tbody tr")
    shown = [[cell.strip() for cell in row.locator("td").all_inner_texts()] for row in rows.all()]
    close = (history.current.end - timedelta(hours=12)).astimezone(ZoneInfo(ZONE)).date()
    assert [SLIPPED_TITLE, CUSTOMER, OWNER, f"{close} → {history.next.first + timedelta(days=14)}",
            f"{history.current.label} → {history.next.label}", "推迟 / pushed", "30,000 CNY"] in shown
    assert "推迟 / pushed 1" in page.locator("#slippage-counts").inner_text()

    page.locator("#slippage tbody tr", has_text=SLIPPED_TITLE).click()
    page.wait_for_function("id => document.getElementById('audit').dataset.item === id", arg=str(history.slipped),
                           timeout=15000)
    assert any("ExpectedCloseChanged" in entry and "客户预算推迟" in entry
               for entry in page.locator("#audit li").all_inner_texts())


def test_win_loss_by_competitor_shows_the_lost_deal_and_its_reason(page: Page, known: tuple[str, KnownHistory]
                                                                   ) -> None:
    server, _ = known
    page.select_option("#winloss-by", "competitor")
    page.wait_for_function("(document.getElementById('winloss-panel').dataset.loaded || '').endsWith(' competitor')",
                           timeout=15000)
    instant = page.locator("#winloss-panel").get_attribute("data-loaded").split(" ")[0]
    shown = {row[0]: row[1:] for row in ([cell.strip() for cell in tr.locator("td").all_inner_texts()]
                                         for tr in page.locator("#winloss tbody tr").all())}
    assert shown[COMPETITOR] == ["0", "0", "1", "60,000", "0.0%", f"{LOSS_REASON} (1)"]
    api = _api(server, "/winloss", as_of=instant, by="competitor")
    assert len(shown) == len(api["groups"])
    totals = api["totals"]
    assert f"won {totals['won']} " in page.locator("#winloss-caption").inner_text()
    reasons = page.evaluate("document.getElementById('winloss-chart').data.find(t => t.orientation === 'h').y")
    assert LOSS_REASON in reasons
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-inspection.png"), full_page=True)


def test_the_backtest_chart_shows_each_methods_forecast_and_interval_against_what_closed(
        page: Page, known: tuple[str, KnownHistory]) -> None:
    server, _ = known
    page.wait_for_function("document.getElementById('backtest-panel').dataset.loaded", timeout=15000)
    _, made, grain = page.locator("#backtest-panel").get_attribute("data-loaded").split(" ")
    api = _api(server, "/forecast/backtest", as_of=made, grain=grain, periods="6", level="80")
    shown = {row.get_attribute("data-method"): [cell.strip() for cell in row.locator("td").all_inner_texts()]
             for row in page.locator("#backtest tbody tr").all()}
    assert list(shown) == [method["method"] for method in api["methods"]]
    for method in api["methods"]:
        errors = method["errors"]
        if method["available"] and errors and errors["mae_cents"] is not None:
            assert shown[method["method"]][3] == _money(errors["mae_cents"])  # each method's error, as the API's
        elif not method["available"]:
            assert shown[method["method"]][1] == f"n/a ({method['reason']})"
    traces = page.evaluate("document.getElementById('backtest-chart').data"
                           ".map(t => [t.name, t.meta || null, t.x, t.y, t.fill || null])")
    actual = next(trace for trace in traces if "actual" in trace[0])
    assert actual[2][-len(api["actuals"]):] == [row["period"] for row in api["actuals"]]
    available = [method for method in api["methods"] if method["available"]]
    assert available, "the demo history lets at least one method forecast"
    for method in available:
        line = next(trace for trace in traces if trace[1] == method["method"])
        assert line[3] == [None if p["forecast_cents"] is None else p["forecast_cents"] / 100 for p in method["periods"]]
    bands = sum(1 for method in available if any(p["lower_cents"] is not None for p in method["periods"]))
    assert sum(1 for trace in traces if trace[4] == "tonexty") == bands  # an interval band per method that has one
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#backtest-panel").screenshot(path=str(SCREENSHOTS / "dashboard-backtest.png"))


def test_the_campaign_panel_compares_variants_and_attributes_by_every_model(page: Page,
                                                                           known: tuple[str, KnownHistory]) -> None:
    server, history = known
    page.wait_for_function("document.querySelectorAll('#campaign option').length > 0", timeout=15000)
    page.select_option("#campaign", str(history.campaign))
    page.wait_for_function("id => (document.getElementById('campaign-panel').dataset.variantsLoaded || '')"
                           ".includes(id)", arg=str(history.campaign), timeout=15000)
    variants = [[cell.strip() for cell in row.locator("td").all_inner_texts()]
                for row in page.locator("#variants tbody tr").all()]
    assert [row[2:4] + row[7:8] for row in variants] == [["200", "12", "6.0%"], ["200", "30", "15.0%"]]
    assert variants[0][:2] == ["A · 原文案", "春季八折"] and variants[1][:2] == ["B · 新文案", "买一送一"]
    (comparison,) = [[cell.strip() for cell in row.locator("td").all_inner_texts()]
                     for row in page.locator("#comparisons tbody tr").all()]
    api = _api(server, f"/campaigns/{history.campaign}/variants")["comparisons"][0]
    low, high = (f"{bound * 100:.1f}" for bound in api["interval"])
    assert comparison[:3] == ["B vs A", "9.0 pp", f"[{low}, {high}] pp"]
    assert comparison[6] == api["verdict"] == "variant wins"

    page.select_option("#attribution-by", "variant")
    page.wait_for_function("(document.getElementById('campaign-panel').dataset.attributionLoaded || '')"
                           ".endsWith(' variant')", timeout=15000)
    credited = {row.get_attribute("data-key"): [cell.strip() for cell in row.locator("td").all_inner_texts()][1:]
                for row in page.locator("#attribution tbody tr").all()}
    assert credited[f"{CAMPAIGN} · B"] == ["90,000"] * 6  # its only touch: every model credits it all
    assert f"{CAMPAIGN} · A" not in credited
    models = page.evaluate("document.getElementById('attribution-chart').data.map(t => t.name)")
    assert models == ["first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#campaign-panel").screenshot(path=str(SCREENSHOTS / "dashboard-campaign.png"))
