"""Every read-model table has one typed row (`projections/<name>/rows.py`) naming exactly its columns, so the
handlers that build rows and the table definitions cannot drift apart."""

from __future__ import annotations

import pytest

from projections.base import ReadModel
from projections.funnel import FunnelReadModel
from projections.funnel import rows as funnel
from projections.tables import Table
from projections.timeline import TimelineReadModel
from projections.timeline import rows as timeline

ROW_TYPES: dict[type[ReadModel], dict[Table, type]] = {
    FunnelReadModel: {funnel.CUSTOMERS: funnel.CustomerRow, funnel.ITEMS: funnel.ItemRow,
                      funnel.INTERVALS: funnel.IntervalRow, funnel.VERSIONS: funnel.VersionRow,
                      funnel.PIPELINES: funnel.PipelineRow, funnel.TALLIES: funnel.TallyRow,
                      funnel.CHANGES: funnel.ChangeRow},
    TimelineReadModel: {timeline.CUSTOMERS: timeline.CustomerRow, timeline.LEADS: timeline.LeadRow,
                        timeline.DEALS: timeline.DealRow, timeline.TICKETS: timeline.TicketRow,
                        timeline.CAMPAIGNS: timeline.CampaignRow, timeline.ENTRIES: timeline.EntryRow,
                        timeline.COUNTER: timeline.CounterRow},
}


@pytest.mark.parametrize("model", list(ROW_TYPES), ids=lambda model: model.name)
def test_each_table_has_a_typed_row_of_exactly_its_columns(model: type[ReadModel]) -> None:
    row_types = ROW_TYPES[model]

    assert list(row_types) == list(model.tables)
    for table, row_type in row_types.items():
        assert row_type.__required_keys__ == set(table.column_names), table.name  # type: ignore[attr-defined]
