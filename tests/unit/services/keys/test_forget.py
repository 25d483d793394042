"""Right to be forgotten without breaking history: personal data is sealed with a per-person key, and
forgetting destroys the key — the data reads "(forgotten)" everywhere, while every count stays intact."""

import copy
import time
import sqlite3
from pathlib import Path
from uuid import UUID

import orjson
import pytest
from typer.testing import CliRunner

from domain.customer import Customer
from domain.errors import DomainError
from domain.lead import Lead
from gateways.cli.main import app as cli
from gateways.kafka.cloudevents import encode
from services.application import CrmApplication
from services.commands import (AssignLead, CaptureLead, ChangeContactDetails, ContactLead, ConvertLead, ForgetCustomer,
                               LogTouch, QualifyLead, RegisterCustomer, WinDeal)
from services.projection_runtime.registry import projector_for, summaries
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at

PERSONAL = ("王小明", "xiaoming@example.com", "13912345678", "聊到孩子在杭州上学")


@pytest.fixture
def crm_file(tmp_path: Path) -> CrmApplication:
    app = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'crm.db'}"))
    app.ensure_default_pipelines(at(-1))
    return app


def _person(app: CrmApplication) -> tuple[UUID, UUID, UUID]:
    """A lead captured with a name and phone, converted; then a touch and new contact details."""
    lead = app.capture_lead(CaptureLead(PERSONAL[0], "华东", "互联网", "web", company="杭州云启科技", contact=PERSONAL[2]), at(0))
    app.assign_lead(AssignLead(lead, "李娜", "manual"), at(1))
    app.contact_lead(ContactLead(lead, "phone", "首次沟通"), at(1))
    app.qualify_lead(QualifyLead(lead, "预算明确"), at(2))
    customer, deal = app.convert_lead(ConvertLead(lead, "云服务", "80000", "CNY", phone=PERSONAL[2]), at(3))
    app.log_touch(LogTouch(customer, "visit", "outbound", PERSONAL[3]), at(4))
    app.change_contact_details(ChangeContactDetails(customer, PERSONAL[1], PERSONAL[2]), at(5))
    app.win_deal(WinDeal(deal), at(6))
    return lead, customer, deal


def _raw_log(path: str) -> str:
    connection = sqlite3.connect(path)
    text = "\n".join(state.decode() for (state,) in connection.execute("SELECT state FROM stored_events"))
    connection.close()
    return text


def test_personal_data_is_never_stored_in_the_clear(crm_file: CrmApplication) -> None:
    _person(crm_file)

    raw = _raw_log(crm_file.database.sqlite_path)

    assert not any(value in raw for value in (*PERSONAL, "杭州云启科技", "首次沟通", "预算明确", "云服务"))
    assert "华东" in raw and "pii:v1:" in raw  # a region is a segment, not personal data; the rest is sealed


def test_before_forgetting_everyone_with_access_reads_the_data(crm_file: CrmApplication) -> None:
    lead, customer, _ = _person(crm_file)

    assert crm_file.get(Customer, customer).email == PERSONAL[1]
    assert crm_file.get(Lead, lead).name == PERSONAL[0]
    touch = crm_file.history(customer)[1]
    assert touch.summary == PERSONAL[3]


def test_forgetting_makes_the_data_unreadable_everywhere_but_keeps_every_count(crm_file: CrmApplication) -> None:
    lead, customer, deal = _person(crm_file)
    store = ReadModelStore(crm_file.database)
    projector_for(crm_file, store).catch_up()
    before = summaries(crm_file, store, at(30).occurred_at)

    crm_file.forget_customer(ForgetCustomer(customer), at(10, "dpo"))
    projector_for(crm_file, store).catch_up()
    after = summaries(crm_file, store, at(30).occurred_at)

    fresh = CrmApplication(crm_file.database)  # another process, with no keys in its cache
    events = [e for _, e in fresh.read_log()]
    texts = orjson.dumps([vars(e) for e in events], default=str).decode()
    assert not any(value in texts for value in PERSONAL)
    assert fresh.get(Lead, lead).name == "(forgotten)" and fresh.get(Customer, customer).name == "(forgotten)"
    timeline = orjson.dumps(after["timeline"]).decode()
    assert not any(value in timeline for value in PERSONAL) and "(forgotten)" in timeline
    assert after["funnel"] == before["funnel"] and after["campaigns"] == before["campaigns"]
    assert after["tickets"] == before["tickets"]
    registered = next(n for n in fresh.recorder.select_notifications(1, 100) if "Registered" in n.topic)
    _, data = encode(fresh.mapper.to_sealed_event(registered), 1)  # what the relay publishes, before and after
    assert fresh.keys.unseal(orjson.loads(data)["name"]) == "(forgotten)"
    fresh.close()
    store.close()


def test_a_rebuild_after_forgetting_equals_the_incremental_read_models(crm_file: CrmApplication) -> None:
    _, customer, _ = _person(crm_file)
    store = ReadModelStore(crm_file.database)
    projector = projector_for(crm_file, store)
    projector.catch_up()
    crm_file.forget_customer(ForgetCustomer(customer), at(10, "dpo"))
    projector.catch_up()
    incremental = summaries(crm_file, store, at(30).occurred_at)

    projector.rebuild()

    assert summaries(crm_file, store, at(30).occurred_at) == incremental
    store.close()


def test_other_people_are_not_affected(crm_file: CrmApplication) -> None:
    _, customer, _ = _person(crm_file)
    other = crm_file.register_customer(RegisterCustomer("李雷", "华北", "教育", "event",
                                                        email="lilei@example.com"), at(0))

    crm_file.forget_customer(ForgetCustomer(customer), at(10, "dpo"))

    assert crm_file.get(Customer, other).email == "lilei@example.com"


def test_forgetting_twice_is_refused(crm_file: CrmApplication) -> None:
    _, customer, _ = _person(crm_file)
    crm_file.forget_customer(ForgetCustomer(customer), at(10, "dpo"))

    with pytest.raises(DomainError, match="has been forgotten"):
        crm_file.forget_customer(ForgetCustomer(customer), at(11, "dpo"))


def test_crm_customer_forget(crm_file: CrmApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    _, customer, _ = _person(crm_file)
    monkeypatch.setenv("CRM_DATABASE_URL", crm_file.database.url)
    runner = CliRunner()

    first = runner.invoke(cli, ["customer", "forget", str(customer)])
    again = runner.invoke(cli, ["customer", "forget", str(customer)])

    assert first.exit_code == 0 and "forgotten" in first.output
    assert again.exit_code == 1 and "has been forgotten" in again.output
    assert CrmApplication(crm_file.database).get(Customer, customer).name == "(forgotten)"


def test_personal_text_survives_copies_with_its_seal(crm_file: CrmApplication) -> None:
    _, customer, _ = _person(crm_file)
    name = crm_file.get(Customer, customer).name

    duplicate = copy.deepcopy(name)

    assert duplicate == name and duplicate.sealed == name.sealed


def test_events_read_in_a_batch_open_as_they_do_one_by_one_and_create_no_key(crm_file: CrmApplication) -> None:
    _, customer, _ = _person(crm_file)
    _person(crm_file)
    crm_file.forget_customer(ForgetCustomer(customer), at(7))
    stored = crm_file.recorder.select_notifications(1, 100)
    keys = crm_file.keys.store.query("SELECT COUNT(*) FROM crm_personal_keys")

    reader = CrmApplication(crm_file.database)  # a cold key cache, as in a rebuild
    batch = reader.mapper.to_domain_events(stored)
    assert [vars(e) for e in batch] == [vars(crm_file.mapper.to_domain_event(s)) for s in stored]
    assert "(forgotten)" in [getattr(e, "name", None) for e in batch]
    assert crm_file.keys.store.query("SELECT COUNT(*) FROM crm_personal_keys") == keys


def test_after_forgetting_no_string_of_the_person_is_in_the_database_file_export_http_or_kafka_messages(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The SQLite version of tests/integration/test_forget_everywhere.py: the whole database file is searched."""
    from fastapi.testclient import TestClient

    from gateways.http.app import create_app
    from services.history.exporter import export_history
    from tests.support.forgetting import leaked, record_person, record_someone_else
    from tests.unit.gateways.http.conftest import auth, registry

    caplog.set_level("DEBUG")
    database = database_from_url(f"sqlite:///{tmp_path / 'crm.db'}")
    api = create_app(database, registry())
    with TestClient(api) as client:
        crm: CrmApplication = api.state.crm
        ids = {name: str(value) for name, value in record_person(crm).items()}
        other = record_someone_else(crm)
        store = ReadModelStore(database)
        projector_for(crm, store).catch_up()
        crm.forget_customer(ForgetCustomer(UUID(ids["customer"])), at(20, "dpo"))
        projector_for(crm, store).catch_up()
        answers = [client.get(path, headers=auth("admin")).text for path in (
            f"/customers/{ids['customer']}", f"/customers/{ids['customer']}/timeline", f"/leads/{ids['lead']}",
            f"/deals/{ids['deal']}", f"/deals/{ids['deal']}/history", f"/tickets/{ids['ticket']}",
            "/reports/tickets?as_of=2026-12-31T00:00:00Z")]
        with (tmp_path / "history.jsonl").open("wb") as out:
            export_history(crm, out)
        published = [encode(crm.mapper.to_sealed_event(n), n.id)[1]
                     for n in crm.recorder.select_notifications(1, 1000)]
        other_timeline = client.get(f"/customers/{other}/timeline", headers=auth("admin")).text
        store.close()

    files = b"".join(path.read_bytes() for path in tmp_path.glob("crm.db*"))  # the database, its WAL and journal
    found = [*leaked(files, "database file"), *leaked("\n".join(answers), "HTTP"),
             *leaked((tmp_path / "history.jsonl").read_bytes(), "export"), *leaked(b"\n".join(published), "Kafka"),
             *leaked("\n".join(r.getMessage() for r in caplog.records), "logs")]
    assert found == []
    assert "李先生询价" in other_timeline and "tag added: 李家常客" in other_timeline  # the living read as before
    assert "registered 李雷 (李氏茶行)" in other_timeline and "(forgotten)" in answers[1]


@pytest.mark.parametrize("batch", [2, 1000])  # a deal's later events in other batches than its opening, or not
def test_an_imported_persons_deals_and_tickets_are_forgotten_with_them(tmp_path: Path, batch: int) -> None:
    from services.history import importer
    from services.history.exporter import export_history
    from tests.support.forgetting import leaked, record_person

    source = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'source.db'}"))
    source.ensure_default_pipelines(at(-1))
    ids = record_person(source)
    with (tmp_path / "history.jsonl").open("wb") as out:
        export_history(source, out)
    target = CrmApplication(database_from_url(f"sqlite:///{tmp_path / 'target.db'}"))
    importer.import_history(target, tmp_path / "history.jsonl", batch=batch)

    target.forget_customer(ForgetCustomer(ids["customer"]), at(20, "dpo"))

    fresh = CrmApplication(target.database)
    texts = orjson.dumps([vars(e) for _, e in fresh.read_log()], default=str)
    assert leaked(texts, "imported log") == [] and b"(forgotten)" in texts
    assert leaked((tmp_path / "target.db").read_bytes(), "target file") == []


def test_a_key_made_before_its_records_person_is_known_is_bound_when_the_person_comes(tmp_path: Path) -> None:
    """Import workers encode chunks in any order: a deal's later event may make its key before its Opened
    line names the customer."""
    from services.keys.key_store import KeyStore

    keys = KeyStore(ReadModelStore(database_from_url(f"sqlite:///{tmp_path / 'keys.db'}")))
    customer, deal, other_deal = "c" * 8 + "-0000-4000-8000-000000000001", "d" * 8 + "-0000-4000-8000-000000000002", \
        "e" * 8 + "-0000-4000-8000-000000000003"
    keys.ensure({deal: None, other_deal: None})
    sealed = keys.seal(deal, "甄家仓库改造")
    keys.evict([deal])  # as after a chunk
    keys.ensure({deal: customer, customer: None})
    keys.evict([deal])
    keys.ensure({deal: None})  # a later chunk without the person does not unbind it

    destroyed = keys.destroy([customer])

    assert destroyed == sorted([customer, deal]) and keys.unseal(sealed) == "(forgotten)"
    assert keys.key(other_deal) is not None  # bound to no one forgotten


def test_a_key_table_from_before_keys_were_bound_to_people_gets_the_column_and_keeps_its_keys(tmp_path: Path) -> None:
    from services.keys.key_store import KeyStore

    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE crm_personal_keys (subject_id TEXT, secret TEXT, PRIMARY KEY (subject_id))")
    connection.execute("INSERT INTO crm_personal_keys VALUES ('old-customer', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=')")
    connection.commit()
    connection.close()

    keys = KeyStore(ReadModelStore(database_from_url(f"sqlite:///{path}")))
    keys.ensure({"deal-1": "old-customer"})
    KeyStore(keys.store)  # a second start finds the column

    assert keys.key("old-customer") == bytes(32)
    assert keys.destroy(["old-customer"]) == ["deal-1", "old-customer"]


def test_another_process_stops_opening_a_forgotten_persons_data_within_a_second(tmp_path: Path) -> None:
    from services.keys.key_store import KeyStore

    url = f"sqlite:///{tmp_path / 'keys.db'}"
    serving = KeyStore(ReadModelStore(database_from_url(url)), recheck=0.2)  # e.g. an API worker, keys cached
    forgetting = KeyStore(ReadModelStore(database_from_url(url)))  # e.g. `crm customer forget`
    customer = "c" * 8 + "-0000-4000-8000-000000000001"
    sealed = serving.seal(customer, "王小明")
    assert serving.unseal(sealed) == "王小明"

    forgetting.destroy([customer])
    time.sleep(0.25)

    assert serving.unseal(sealed) == "(forgotten)"  # not after the cache's 60 s
