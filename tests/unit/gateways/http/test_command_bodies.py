"""A command's HTTP body is derived from the command: its own fields, typed and limited as the command says."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateways.http.routes import customer_routes, deal_routes, pipeline_routes
from gateways.http.schemas import CommandBody, VersionedBody, body_of
from services.commands import ChangeStage, RenameStage


def test_a_body_holds_business_time_then_the_commands_own_fields_in_order() -> None:
    assert list(deal_routes.ChangeStageBody.model_fields) == ["occurred_at", "expected_version", "stage", "reason"]
    assert list(customer_routes.RegisterCustomerBody.model_fields) == [
        "occurred_at", "name", "company", "region", "industry", "channel", "email", "phone", "campaign_id", "source",
        "external_id"]


def test_only_a_versioned_body_takes_expected_version_and_no_body_takes_the_address_or_an_id() -> None:
    assert issubclass(deal_routes.ChangeStageBody, VersionedBody)
    assert not issubclass(customer_routes.TagBody, VersionedBody) and issubclass(customer_routes.TagBody, CommandBody)
    for refused in ({"expected_version": 1}, {"customer_id": "0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e01"}):
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            customer_routes.TagBody.model_validate({"tag": "vip", **refused})
    customer = {"name": "张三", "region": "华东", "industry": "零售", "channel": "web"}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        customer_routes.RegisterCustomerBody.model_validate({**customer, "id": "0b4c5a9e-6a61-4a43-9b37-5b0e0e0e0e01"})


def test_fields_from_the_url_are_left_out_and_the_schema_keeps_its_name() -> None:
    body = body_of(RenameStage, "RenameStage", from_url=("stage",))

    assert (body.__name__, list(body.model_fields)) == ("RenameStage", ["occurred_at", "label"])
    assert pipeline_routes.RenameStageBody.model_json_schema()["title"] == "RenameStage"


def test_the_commands_limits_are_the_bodys_limits() -> None:
    body = body_of(ChangeStage, versioned=True)

    with pytest.raises(ValidationError, match="String should match pattern"):
        body.model_validate({"stage": "Not A Key"})
    assert body.model_validate({"stage": "proposal"}).fields() == {"stage": "proposal", "reason": ""}
