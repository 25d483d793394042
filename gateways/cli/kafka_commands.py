"""`crm relay` (log → Kafka) and `crm inbound` (Kafka → commands)."""

from __future__ import annotations

import os
import signal
import threading
from contextlib import ExitStack
from typing import Annotated

import typer
from kafka.errors import KafkaError

from domain.partitions import PARTITIONS
from gateways.cli.common import console, crm_application, fail, read_store, start_logging
from gateways.kafka.inbound import (DLQ_ACK_SECONDS, DLQ_TOPIC, INBOUND_GROUP, INBOUND_TOPIC, InboundConsumer,
                                    InboundStalled, consumer_for, ensure_dlq_topic)
from gateways.kafka.relay import (REMINDERS_TOPIC, SEGMENTS_TOPIC, TOPIC, KafkaRelay, RelayStalled, TopicMismatch, check_topic_holds_history,
                                  ensure_events_topic, producer_for)
from services.application import CrmApplication
from services.healing import TRANSIENT_DATABASE_ERRORS, start_when_ready
from services.sharding.router import ShardedApplication
from services.storage.schema_lock import advisory_lock

Bootstrap = Annotated[str, typer.Option(envvar="CRM_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers.")]
DEFAULT_BOOTSTRAP = os.environ.get("CRM_KAFKA_BOOTSTRAP", "127.0.0.1:59092")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def relay(
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    topic: Annotated[str, typer.Option(help="Topic to publish to.")] = TOPIC,
    once: Annotated[bool, typer.Option("--once", help="Publish what is in the log, then exit.")] = False,
    shard: Annotated[int, typer.Option(min=0, help="With CRM_SHARD_URLS: the shard whose log to publish (run one "
                                                   "relay per shard; 0 is the default shard).")] = 0,
    from_start: Annotated[bool, typer.Option("--from-start", help="Publish the whole log again from its first "
                                             "event (the topic was recreated and lost it).")] = False,
    reminders_topic: Annotated[str, typer.Option(help="Topic that gets each reminder once more, keyed by its "
                                                      "item (crm reminders run emits them).")] = REMINDERS_TOPIC,
    segments_topic: Annotated[str, typer.Option(help="Topic that gets each segment change once more, keyed by its "
                                                     "customer (crm segments run records them).")] = SEGMENTS_TOPIC,
) -> None:
    """Publish every event of the log to Kafka as CloudEvents, each in its record's home partition, from the
    stored position on. Without --once, database restarts and broker outages are waited out with growing
    pauses (logged on stderr)."""
    start_logging()
    if once:
        _relay_once(bootstrap, topic, shard, from_start, (reminders_topic, segments_topic))
        return
    stop = _stop_on_signals()
    with ExitStack() as stack:
        try:
            publisher = start_when_ready(
                "relay", lambda opened: _open_relay(opened, bootstrap, topic, shard, from_start,
                                                    (reminders_topic, segments_topic)), stack, stop,
                (KafkaError, *TRANSIENT_DATABASE_ERRORS))
        except TopicMismatch as error:
            raise fail(str(error)) from None
        if publisher is not None:
            console.print(f"Relaying to {topic} from position {publisher.position():,}; Ctrl-C to stop.")
            publisher.follow(stop)


def _open_relay(opened: ExitStack, bootstrap: str, topic: str, shard: int = 0, from_start: bool = False,
                copies: tuple[str, str] = (REMINDERS_TOPIC, SEGMENTS_TOPIC)) -> KafkaRelay:
    """`copies`: the topics of reminders and of segment changes (each again, by its item's or customer's home
    partition)."""
    for made in (topic, *copies):
        ensure_events_topic(bootstrap, made)  # 64 partitions, one per home partition
    crm = opened.enter_context(crm_application())
    log, partitions = _shard_log(crm, shard)
    store = opened.enter_context(read_store(crm))  # the default shard's: the relays' positions live there
    with advisory_lock(crm.database):  # its CREATE TABLE IF NOT EXISTS races a follower's started alike
        relay = KafkaRelay(log, store, producer_for(bootstrap), topic=topic,
                           new_producer=lambda: producer_for(bootstrap), shard=shard, partitions=partitions,
                           reminders_topic=copies[0], segments_topic=copies[1])
    if from_start:
        relay.start_over()
    check_topic_holds_history(bootstrap, topic, relay.position())
    return relay


def _shard_log(crm: CrmApplication | ShardedApplication, shard: int) -> tuple[CrmApplication, list[int]]:
    """The application of `shard`'s log and the home partitions it owns (where its reference events go)."""
    if not isinstance(crm, ShardedApplication):
        if shard:
            raise fail(f"--shard {shard} needs CRM_SHARD_URLS (without it there is one log, shard 0)")
        return crm, list(range(PARTITIONS))
    if shard >= len(crm.apps):
        raise fail(f"--shard {shard}: CRM_SHARD_URLS lists {len(crm.apps)} shards (0 … {len(crm.apps) - 1})")
    return crm.apps[shard], [p for p, owner in sorted(crm.shard_map.items()) if owner == shard]


def _relay_once(bootstrap: str, topic: str, shard: int = 0, from_start: bool = False,
                copies: tuple[str, str] = (REMINDERS_TOPIC, SEGMENTS_TOPIC)) -> None:
    """For scripts: a fault ends the run with a message and exit status 1 (the script decides to retry)."""
    with ExitStack() as opened:
        try:
            publisher = _open_relay(opened, bootstrap, topic, shard, from_start, copies)
            published = 0
            while count := publisher.run_batch():
                published += count
        except (KafkaError, RelayStalled) as error:
            raise fail(f"Kafka at {bootstrap}: {error}") from None
        except TopicMismatch as error:
            raise fail(str(error)) from None
        console.print(f"Published {published:,} events to {topic}; position {publisher.position():,}.")


def inbound(
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    topic: Annotated[str, typer.Option(help="Topic to consume.")] = INBOUND_TOPIC,
    dlq: Annotated[str, typer.Option(help="Dead-letter topic for refused messages.")] = DLQ_TOPIC,
    group: Annotated[str, typer.Option(help="Kafka consumer group (its offsets say what is done).")] = INBOUND_GROUP,
    once: Annotated[bool, typer.Option("--once", help="Handle the messages the topic holds now, then exit "
                                                      "(for scripts).")] = False,
    ack_timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the broker to acknowledge a dead "
                                                           "letter or an offset commit before retrying.")] = DLQ_ACK_SECONDS,
) -> None:
    """Turn touches and campaign responses from other systems into commands; refused ones go to the DLQ.
    Database restarts and broker outages are waited out with growing pauses (logged on stderr)."""
    start_logging()
    stop = _stop_on_signals()
    with ExitStack() as stack:
        if once:
            try:
                worker = _open_inbound(stack, bootstrap, topic, dlq, group, ack_timeout)
                worker.drain(stop)
            except (KafkaError, InboundStalled) as error:
                raise fail(f"Kafka at {bootstrap}: {error}") from None
            console.print(f"Handled {worker.handled:,} messages from {topic}; {worker.dead:,} dead-lettered to {dlq}.")
            return
        worker = start_when_ready("inbound", lambda opened: _open_inbound(opened, bootstrap, topic, dlq, group, ack_timeout),
                                  stack, stop, (KafkaError, *TRANSIENT_DATABASE_ERRORS))
        if worker is not None:
            console.print(f"Consuming {topic} (dead letters to {dlq}); Ctrl-C to stop.")
            worker.run(stop)


def _open_inbound(opened: ExitStack, bootstrap: str, topic: str, dlq: str, group: str,
                  ack_timeout: float = DLQ_ACK_SECONDS) -> InboundConsumer:
    ensure_dlq_topic(bootstrap, dlq)  # with its retention: a dead letter is kept a week, not the broker's default
    crm = opened.enter_context(crm_application())
    consumer = consumer_for(bootstrap, topic, group)
    opened.callback(consumer.close)
    return InboundConsumer(crm, consumer, producer_for(bootstrap), dlq_topic=dlq,
                           new_producer=lambda: producer_for(bootstrap), ack_seconds=ack_timeout)
