"""Command receipts: written in the same transaction as the command's events, on every store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.application import ConcurrencyConflict, CrmApplication
from services.command_receipts import Receipt
from services.commands import RegisterCustomer
from services.settings import database_from_url
from tests.conftest import at


@pytest.fixture(params=["memory", "sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CrmApplication]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    application = CrmApplication(database_from_url(url))
    yield application
    application.close()


def _receipt(key: str, body: bytes = b'{"ok":true}') -> Receipt:
    return Receipt("李娜", key, "print-1", 201, body, {"location": "/customers/x"})


def _register(view: CrmApplication) -> None:
    view.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="上海某某"), at(0))


def test_a_staged_command_writes_nothing_until_it_commits_with_its_receipt(app: CrmApplication) -> None:
    view = app.staged()
    _register(view)
    assert app.event_count() == 0 and app.receipt("李娜", "k1") is None

    view.commit(_receipt("k1"))

    assert app.event_count() == 1
    assert app.receipt("李娜", "k1") == _receipt("k1")


def test_a_second_receipt_for_one_key_rolls_its_events_back(app: CrmApplication) -> None:
    first, second = app.staged(), app.staged()
    _register(first)
    _register(second)
    first.commit(_receipt("k2"))

    with pytest.raises(ConcurrencyConflict):
        second.commit(_receipt("k2", b'{"other":true}'))

    assert app.event_count() == 1  # the second customer was never written
    assert app.receipt("李娜", "k2") == _receipt("k2")


def test_a_refusal_is_kept_once_and_its_key_then_answers_with_it(app: CrmApplication) -> None:
    refusal = Receipt("李娜", "k3", "print-1", 422, b'{"error":"no"}', {})

    assert app.keep_refusal(refusal) is None
    assert app.keep_refusal(Receipt("李娜", "k3", "print-1", 422, b'{"error":"other"}', {})) == refusal
    view = app.staged()
    _register(view)
    with pytest.raises(ConcurrencyConflict):
        view.commit(_receipt("k3"))
    assert app.event_count() == 0


def test_keys_are_per_principal(app: CrmApplication) -> None:
    app.keep_refusal(Receipt("李娜", "k4", "p", 404, b"{}", {}))
    assert app.receipt("王伟", "k4") is None


def test_closing_a_staged_view_leaves_the_application_open(app: CrmApplication) -> None:
    view = app.staged()
    view.close()
    del view
    _register(app)
    assert app.event_count() == 1


def test_pruning_forgets_only_receipts_older_than_asked(app: CrmApplication) -> None:
    day = 86_400 * 1_000_000
    app.keep_refusal(Receipt("李娜", "old", "p", 404, b"{}", {}, recorded_at=_now() - 8 * day))
    app.keep_refusal(Receipt("李娜", "new", "p", 404, b"{}", {}, recorded_at=_now() - 6 * day))

    assert app.prune_receipts(timedelta(days=7)) == 1
    assert app.receipt("李娜", "old") is None and app.receipt("李娜", "new") is not None


def _now() -> int:
    return time.time_ns() // 1000
