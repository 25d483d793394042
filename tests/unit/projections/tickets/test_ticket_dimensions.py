"""The ticket report grouped and filtered by owner, priority, the customer's dimensions and properties as of
an instant: each group is the report filtered to its value, and the groups' ticket counts add up."""

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from domain.errors import DomainError
from projections.tickets import TicketQueries
from services.application import CrmApplication
from services.commands import ChangeCustomerProperties
from tests.unit.projections.tickets import test_queries
from tests.unit.projections.tickets.test_queries import _built, h, when

history = test_queries.history  # the fixture: its history of four tickets of customers A and B

ADDS_UP = ("backlog.total", "first_response.count", "resolution.count", "csat.overall.ratings", "funnel.feedback",
           "funnel.resolved", "funnel.surveyed", "funnel.satisfied")


@pytest.fixture
def queries(crm: CrmApplication, history: dict[str, UUID]) -> TicketQueries:
    """A's size is large from h10 and small from h60 (by when K3's customer B becomes large at h70)."""
    crm.change_customer_properties(ChangeCustomerProperties(history["a"], {"account_size": "large"}), h(10))
    crm.change_customer_properties(ChangeCustomerProperties(history["a"], {"account_size": "small"}), h(60))
    crm.change_customer_properties(ChangeCustomerProperties(history["b"], {"account_size": "large"}), h(70))
    return TicketQueries(_built(crm), crm.keys.unseal_all_marks)


def _figure(report: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        report = report[part]
    return report


def _sla_total(report: dict[str, Any]) -> int:
    return sum(report["sla"]["first_response_breaches"].values()) + sum(report["sla"]["resolution_breaches"].values())


Groups = Callable[[str], dict[Any, dict[str, Any]]]


@pytest.mark.parametrize("by", ["owner", "priority", "region", "industry", "channel", "account_size"])
@pytest.mark.parametrize("hours", [30, 65, 200])
def test_groups_add_up_to_the_plain_report(queries: TicketQueries, by: str, hours: float) -> None:
    plain = queries.report(when(hours)).to_dict()
    groups = [g for g in queries.grouped(when(hours), by).to_dict()["groups"]]
    for path in ADDS_UP:
        assert sum(_figure(g, path) for g in groups) == _figure(plain, path), path
    assert sum(_sla_total(g) for g in groups) == _sla_total(plain)
    assert sum(len(g["sla"]["breaching"]) for g in groups) == len(plain["sla"]["breaching"])


@pytest.mark.parametrize("hours", [30, 65, 200])
def test_each_property_group_is_the_filtered_report(queries: TicketQueries, hours: float) -> None:
    for group in queries.grouped(when(hours), "account_size").to_dict()["groups"]:
        value = group.pop("key")["account_size"]
        if value is not None:
            assert group == queries.report(when(hours), [("account_size", value)]).to_dict()


def test_the_property_is_taken_as_of_the_instant(queries: TicketQueries) -> None:
    def sizes(hours: float) -> dict[Any, int]:
        return {g["key"]["account_size"]: g["funnel"]["feedback"]
                for g in queries.grouped(when(hours), "account_size").to_dict()["groups"]}

    assert sizes(30) == {"large": 2}  # K1, K2 of A (large); B has no size yet and no ticket
    assert sizes(65) == {"small": 2, None: 1}  # A small now; K3 of B, no size yet
    assert sizes(100) == {"large": 2, "small": 2}  # B large from h70: K3, K4


def test_owner_is_the_assignee_as_of_the_instant_and_groups_carry_their_csat(queries: TicketQueries) -> None:
    groups = {g["key"]["owner"]: g for g in queries.grouped(when(200), "owner").to_dict()["groups"]}
    assert list(groups) == ["吴艳", "周涛", "赵磊", None]
    assert groups["吴艳"]["csat"]["overall"] == {"ratings": 2, "average": 3.0, "satisfied_share": 0.5}
    assert groups[None]["csat"]["overall"]["satisfied_share"] is None  # K4: no ratings, rate null
    assert groups[None]["funnel"]["steps"][1]["conversion"] == 0.0


def test_region_and_a_filter_together(queries: TicketQueries) -> None:
    report = queries.grouped(when(200), "region", [("account_size", "large")]).to_dict()
    assert [(g["key"], g["funnel"]["feedback"]) for g in report["groups"]] == [({"region": "华南"}, 2)]
    assert report["properties"] == {"account_size": "large"}


def test_an_unknown_axis_is_refused(queries: TicketQueries) -> None:
    with pytest.raises(DomainError):
        queries.grouped(when(200), "No Such")
