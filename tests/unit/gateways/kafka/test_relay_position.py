"""The relay moves its position only after the broker acknowledged the whole batch (producer stubbed)."""

from dataclasses import dataclass, field

import pytest

from domain.partitions import PARTITIONS
from gateways.kafka.relay import KafkaRelay, RelayStalled
from services.application import CrmApplication
from services.commands import RegisterCustomer
from services.storage.read_model_store import ReadModelStore
from services.settings import database_from_url
from tests.conftest import at


@dataclass
class _Future:
    ok: bool

    def succeeded(self) -> bool:
        return self.ok

    @property
    def exception(self) -> Exception | None:
        return None if self.ok else TimeoutError("no ack")


@dataclass
class _Producer:
    """Acknowledges sends until `fail_after` messages, then never again."""

    fail_after: int = 10**9
    sent: list = field(default_factory=list)

    def send(self, topic: str, key: bytes, value: bytes, headers: list, partition: int | None = None) -> _Future:
        self.sent.append((key, headers, partition))
        return _Future(len(self.sent) <= self.fail_after)

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def flush(self, timeout: float) -> None:
        pass


def test_an_unacknowledged_batch_leaves_the_position_where_it_was(crm: CrmApplication) -> None:
    for day in range(3):
        crm.register_customer(RegisterCustomer(f"客户{day}", "华东", "零售", "web"), at(day))
    store = ReadModelStore(database_from_url("memory://"))
    producer = _Producer(fail_after=crm.event_count() - 1)  # fails at a message of the batch
    relay = KafkaRelay(crm, store, producer)  # type: ignore[arg-type]

    with pytest.raises(RelayStalled, match="did not acknowledge"):
        relay.run_batch()

    assert relay.position() == 0
    producer.fail_after, sent_once = 10**9, len(producer.sent)
    assert relay.run_batch() == crm.event_count() and relay.position() == crm.event_count()
    assert len(producer.sent) == 2 * sent_once  # the failed batch was sent again, whole
