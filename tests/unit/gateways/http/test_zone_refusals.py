"""`?tz=` naming a directory of the zone database (America, Asia, Etc) is refused with 422, not 500 (review 15)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.unit.gateways.http.test_property_routes import ANALYST


def test_a_zone_database_directory_is_refused_with_422(client: TestClient) -> None:
    for tz in ("America", "Asia", "Etc"):
        response = client.get("/funnel/periods", params={"tz": tz}, headers=ANALYST)
        assert response.status_code == 422, (tz, response.status_code, response.text[:200])
