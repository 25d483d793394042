"""Fuzzing the HTTP API from its own OpenAPI document (schemathesis), on the real PostgreSQL.

Every operation gets schemathesis' coverage cases and generated cases, valid and invalid, sent one at a
time with an admin token to an API whose log holds a few real aggregates: valid generated ids are often
swapped for theirs, so that commands reach the domain. Every answer must be below 500 and conform to the
documented responses, and a refused request (4xx) must not have recorded an event. Then hand-made hostile
requests: huge numbers, NUL bytes, invalid UTF-8, deep nesting, 10 MB bodies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateways.http.app import create_app
from gateways.http.tokens import TokenRegistry
from services.application import CrmApplication
from services.commands import (AddTag, AssignLead, AssignTicket, CaptureLead, ChangeStage, ContactLead, LaunchCampaign,
                               OpenDeal, OpenTicket, PlanCampaign, QualifyLead, RecordCost, RegisterCustomer,
                               ResolveTicket, WinDeal)
from services.settings import database_from_url
from tests.support.api_server import bearer, running_api
from tests.conftest import at

from tests.support import running_services as services

TOKEN = "fuzz-admin-token"
ADMIN = bearer(TOKEN)
GENERATED_PER_OPERATION = 50  # plus schemathesis' coverage cases: about 6,400 requests in all
SEEDED: dict[str, list[str]] = {}  # parameter name → values of real aggregates; filled by the `fuzzed` fixture


@dataclass
class Fuzzed:
    """The API under fuzzing: its base URL and the application on the same log."""

    base: str
    crm: CrmApplication
    session: requests.Session


def seed(crm: CrmApplication) -> dict[str, list[str]]:
    """A few real aggregates of every kind, in Chinese; returns the values path parameters and ids may take."""
    customer = crm.register_customer(RegisterCustomer("张三", "华东", "制造业", "web", company="华为技术有限公司",
                                                      email="zhangsan@example.cn", phone="+86 138 0000 0000"), at(0))
    crm.add_tag(AddTag(customer, "重要客户"), at(0.1))
    other = crm.register_customer(RegisterCustomer("李四", "华南", "零售", "referral"), at(0.2))
    lead = crm.capture_lead(CaptureLead("王五", "华北", "互联网", "search_ads", company="腾讯",
                                        contact="wangwu@example.cn"), at(1))
    crm.assign_lead(AssignLead(lead, "李娜", "manual"), at(1.1))
    qualified = crm.capture_lead(CaptureLead("赵六", "华东", "电商", "event", company="阿里巴巴"), at(1.2))
    crm.assign_lead(AssignLead(qualified, "李娜", "region"), at(1.3))
    crm.contact_lead(ContactLead(qualified, "phone", "电话沟通需求"), at(1.4))
    crm.qualify_lead(QualifyLead(qualified, "预算充足"), at(1.5))
    deal = crm.open_deal(OpenDeal(customer, "ERP 系统升级", "120000.50",
                                  owner="李娜"), at(2))
    crm.change_stage(ChangeStage(deal, "needs_analysis", "客户确认需求"), at(2.5))
    won = crm.open_deal(OpenDeal(other, "门店收银", 8000, owner="王芳"), at(2.6))
    crm.win_deal(WinDeal(won, "签约"), at(3))
    campaign = crm.plan_campaign(PlanCampaign("春季展会", "event", "50000"), at(-5))
    crm.launch_campaign(LaunchCampaign(campaign), at(-4))
    crm.record_cost(RecordCost(campaign, "12000", "展位费"), at(-3))
    planned = crm.plan_campaign(PlanCampaign("双十一预热", "social", 20000), at(-2))
    ticket = crm.open_ticket(OpenTicket(customer, "发票开错了", "email", priority="high"), at(4))
    crm.assign_ticket(AssignTicket(ticket, "赵磊"), at(4.1))
    resolved = crm.open_ticket(OpenTicket(other, "无法登录", "phone", priority="urgent"), at(4.2))
    crm.resolve_ticket(ResolveTicket(resolved, "重置密码"), at(4.3))
    return {
        "customer_id": [str(customer), str(other)], "lead_id": [str(lead), str(qualified)],
        "deal_id": [str(deal), str(won)], "campaign_id": [str(campaign), str(planned)],
        "ticket_id": [str(ticket), str(resolved)], "key": ["sales", "marketing", "service"],
        "stage": ["needs_analysis", "proposal", "captured"], "tag": ["重要客户", "vip"],
    }


def _valid(name: str, value: Any) -> bool:
    """Whether `value` is a valid `name`, so that swapping in a seeded one keeps a case as valid as it was."""
    if not isinstance(value, str):
        return False
    if name.endswith("_id"):
        try:
            UUID(value)
        except ValueError:
            return False
        return True
    return re.fullmatch(r"[a-z][a-z0-9_]{0,39}", value) is not None


def _aimed(values: Any) -> st.SearchStrategy[Any]:
    """`values` (path parameters or a body) with each valid id or key either a seeded one or kept."""
    if not isinstance(values, dict):
        return st.just(values)
    return st.fixed_dictionaries({
        name: st.sampled_from([*SEEDED[name], value]) if name in SEEDED and _valid(name, value) else st.just(value)
        for name, value in values.items()})


def _openapi() -> dict[str, Any]:
    """The API's OpenAPI document (from an app on an in-memory log: it does not depend on the data)."""
    return create_app(database_from_url("memory://"), TokenRegistry([])).openapi()


schema = schemathesis.openapi.from_dict(_openapi())
schema.config.update(headers=ADMIN)  # every case is sent as the admin: roles are tested elsewhere


@schema.hook
def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any]) -> Any:
    return _aimed(path_parameters)


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> Any:
    return _aimed(body)


@pytest.fixture(scope="module")
def fuzzed(postgres_url: str) -> Iterator[Fuzzed]:
    """The API with an admin token on a fresh PostgreSQL database holding a few real aggregates."""
    with services.temporary_database(postgres_url) as url:
        crm = CrmApplication(database_from_url(url))
        try:
            crm.ensure_default_pipelines(at(-30, "setup"))
            SEEDED.update(seed(crm))
            with (running_api(crm.database, {TOKEN: ("管理员", "admin")}, follow_log=True) as base,  # as `crm serve`
                  requests.Session() as session):
                yield Fuzzed(base, crm, session)
        finally:
            SEEDED.clear()
            crm.close()


@schema.parametrize()
@settings(max_examples=GENERATED_PER_OPERATION, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_5xx_documented_answers_and_refusals_write_nothing(
        case: schemathesis.Case, fuzzed: Fuzzed) -> None:
    before = fuzzed.crm.event_count()
    response = case.call(base_url=fuzzed.base, session=fuzzed.session)
    written = fuzzed.crm.event_count() - before

    reproduce = f"{response.status_code} {response.text[:500]}\n{case.as_curl_command()}"
    assert response.status_code < 500, reproduce
    if response.status_code >= 400:
        assert response.json()["error"], reproduce
        assert written == 0, f"{written} event(s) recorded by a refused request: {reproduce}"
    # Valid-by-schema requests may rightly be refused (unknown ids, business rules, header text): no 2xx demanded.
    case.validate_response(response, excluded_checks=[positive_data_acceptance], headers=ADMIN)


def customer(member: bytes) -> bytes:
    """A valid customer registration (in Chinese) plus one more JSON `member`, as raw bytes."""
    return '{"name": "张三", "region": "华东", "industry": "制造业", "channel": "web", '.encode() + member + b"}"


def campaign(budget: bytes) -> bytes:
    return '{"name": "春季展会", "channel": "event", "budget": '.encode() + budget + b"}"


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    pytest.param("POST", "/campaigns", campaign(b"1" + b"0" * 20), 422, id="21-digit-integer-amount"),
    pytest.param("POST", "/campaigns", campaign(b"1" + b"0" * 5000), 400, id="5001-digit-number"),
    pytest.param("POST", "/campaigns", campaign(b"1e400"), 422, id="float-beyond-double"),
    pytest.param("POST", "/campaigns", campaign(b"NaN"), 422, id="NaN"),
    pytest.param("PUT", "/deals/{deal_id}/amount", b'{"amount": "1", "expected_version": %s}' % (b"9" * 30), 409,
                 id="30-digit-expected-version"),
    pytest.param("GET", "/reports/campaigns?offset=" + "9" * 21, None, 422, id="21-digit-offset"),
    pytest.param("POST", "/customers", customer(rb'"company": "\u0000"'), 422, id="escaped-NUL"),
    pytest.param("POST", "/customers", customer(b'"company": "\x00"'), 400, id="raw-NUL-byte"),
    pytest.param("GET", "/funnel?region=%00", None, 422, id="NUL-in-query"),
    pytest.param("POST", "/customers", customer(b'"company": "\xff\xfe"'), 400, id="invalid-UTF-8"),
    pytest.param("POST", "/customers", customer(rb'"company": "\ud800"'), 422, id="lone-surrogate"),
    pytest.param("POST", "/customers", b"[" * 30000 + b"]" * 30000, 400, id="array-30000-deep"),
    pytest.param("POST", "/customers", customer(b'"more": ' + b'{"a": ' * 900 + b"1" + b"}" * 900), 422,
                 id="unknown-member-900-deep"),
    pytest.param("POST", "/customers", customer(b'"occurred_at": "9999-12-31T23:59:59-01:00"'), 422,
                 id="time-past-year-9999-in-UTC"),
    pytest.param("POST", "/customers", customer(b'"occurred_at": 1772355600'), 422, id="time-as-Unix-seconds"),
    pytest.param("POST", "/customers", b"x" * 10 * 1024 * 1024, 413, id="10-MB-body"),
    pytest.param("POST", "/customers", [b"x" * 1024 * 1024] * 10, 413, id="10-MB-chunked-body"),
])
def test_hostile_requests_are_refused_with_a_json_error_and_write_nothing(
        fuzzed: Fuzzed, method: str, path: str, body: Any, status: int) -> None:
    before = fuzzed.crm.event_count()
    url = fuzzed.base + path.format(deal_id=SEEDED["deal_id"][0])
    content = iter(body) if isinstance(body, list) else body  # an iterator is sent chunked, without a length
    response = httpx.request(method, url, content=content, headers={**ADMIN, "Content-Type": "application/json"},
                             timeout=60)

    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]
    assert fuzzed.crm.event_count() == before
