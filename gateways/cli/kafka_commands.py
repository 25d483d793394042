"""`crm relay` (log → Kafka) and `crm inbound` (Kafka → commands)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Annotated

import typer
from kafka.errors import KafkaError

from gateways.cli.common import console, crm_application, fail, read_store
from gateways.kafka.inbound import (DLQ_TOPIC, INBOUND_GROUP, INBOUND_TOPIC, InboundConsumer, InboundStalled,
                                    consumer_for)
from gateways.kafka.relay import TOPIC, KafkaRelay, RelayStalled, producer_for
from services.healing import log_to_stderr

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
) -> None:
    """Publish every event of the log to Kafka as CloudEvents, from the stored position on. While following,
    database restarts and broker outages are retried with growing pauses (logged on stderr)."""
    log_to_stderr()
    with crm_application() as crm, read_store(crm) as store:
        try:
            publisher = KafkaRelay(crm, store, producer_for(bootstrap), topic=topic)
            if once:
                published = 0
                while count := publisher.run_batch():
                    published += count
                console.print(f"Published {published:,} events to {topic}; position {publisher.position():,}.")
                return
        except (KafkaError, RelayStalled) as error:
            raise fail(f"Kafka at {bootstrap}: {error}") from None
        console.print(f"Relaying to {topic} from position {publisher.position():,}; Ctrl-C to stop.")
        publisher.follow(_stop_on_signals())


def inbound(
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    topic: Annotated[str, typer.Option(help="Topic to consume.")] = INBOUND_TOPIC,
    dlq: Annotated[str, typer.Option(help="Dead-letter topic for refused messages.")] = DLQ_TOPIC,
    group: Annotated[str, typer.Option(help="Kafka consumer group (its offsets say what is done).")] = INBOUND_GROUP,
    once: Annotated[bool, typer.Option("--once", help="Handle the messages the topic holds now, then exit "
                                                      "(for scripts).")] = False,
) -> None:
    """Turn touches and campaign responses from other systems into commands; refused ones go to the DLQ.
    Database restarts and broker outages are retried with growing pauses (logged on stderr)."""
    log_to_stderr()
    with crm_application() as crm:
        try:
            worker = InboundConsumer(crm, consumer_for(bootstrap, topic, group), producer_for(bootstrap), dlq_topic=dlq)
        except KafkaError as error:
            raise fail(f"Kafka at {bootstrap}: {error}") from None
        try:
            if once:
                worker.drain(_stop_on_signals())
                console.print(f"Handled {worker.handled:,} messages from {topic}; {worker.dead:,} dead-lettered "
                              f"to {dlq}.")
                return
            console.print(f"Consuming {topic} (dead letters to {dlq}); Ctrl-C to stop.")
            worker.run(_stop_on_signals())
        except InboundStalled as error:
            raise fail(f"Kafka at {bootstrap}: {error}") from None
        finally:
            worker.consumer.close()
