"""Reminder delivery latency: from the instant a threshold passes to the reminder's CloudEvent being polled from
`crm.reminders` — the reminder process (`ReminderProcess.follow`, its default poll), the outbox relay
(`KafkaRelay.follow`) and a consumer, each in a thread of the benchmark process, on a fresh PostgreSQL log."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack, closing
from datetime import datetime, timezone
from typing import Any

from domain.base import Meta
from domain.reminder_rules import Reminder
from gateways.kafka.relay import KafkaRelay, producer_for
from projections.funnel import percentile
from services.application import CrmApplication
from services.commands import OpenDeal, RegisterCustomer, SetStageReminders
from services.reminder_process import POLL, ReminderProcess
from services.settings import database_from_url
from services.storage.read_model_store import ReadModelStore
from tests.benchmarks.delivery import Watcher
from tests.benchmarks.harness import Bench, Metric, log

TARGET_P99_MS = 1000
THRESHOLD_SECONDS = 2.0  # each deal is due this long after it was opened
SETTLE_SECONDS = 15


def open_at_rate(app: CrmApplication, rate: int, seconds: int) -> list[datetime]:
    """Deals opened at a steady rate (so reminders fall due at that rate): when each was opened."""
    meta = Meta(actor="benchmark")
    customer = app.register_customer(RegisterCustomer("压测客户", "华东", "制造业", "web", company="压测有限公司"), meta)
    opened, started = [], time.perf_counter()
    for n in range(rate * seconds):
        time.sleep(max(0.0, started + n / rate - time.perf_counter()))
        app.open_deal(OpenDeal(customer, f"提醒压测 {n}", "1000", owner="benchmark"), Meta.now("benchmark"))
        opened.append(datetime.now(timezone.utc))
    return opened


def measure(bench: Bench) -> list[Metric]:
    app = CrmApplication(database_from_url(bench.database()))
    app.ensure_default_pipelines()
    app.set_stage_reminders(SetStageReminders("sales", "lead", [THRESHOLD_SECONDS / 86_400]), Meta.now("benchmark"))
    events, reminders = bench.topic(), bench.topic()
    rate, seconds = bench.plan.delivery_rate, bench.plan.delivery_seconds
    with ExitStack() as running:  # closed in reverse: threads stopped first, then stores, producer and app
        running.callback(app.close)
        relay_store, process_store = (running.enter_context(closing(ReadModelStore(app.database))) for _ in "ab")
        relay = KafkaRelay(app, relay_store, producer_for(bench.bootstrap), events, reminders_topic=reminders)
        running.callback(relay.producer.close)
        watcher, stop = Watcher(bench.bootstrap, reminders), threading.Event()
        threads = [watcher, threading.Thread(target=relay.follow, args=(stop,), daemon=True),
                   threading.Thread(target=ReminderProcess(app, process_store).follow, args=(stop,), daemon=True)]
        for thread in threads:
            thread.start()
            running.callback(thread.join)
        running.callback(lambda: (stop.set(), watcher.stop.set()))
        log(f"reminder delivery: {rate} deals/s for {seconds} s, each due {THRESHOLD_SECONDS} s after opening")
        opened = open_at_rate(app, rate, seconds)
        deadline = time.monotonic() + THRESHOLD_SECONDS + SETTLE_SECONDS
        while len(watcher.seen) < len(opened) and time.monotonic() < deadline:
            time.sleep(0.05)
        emitted = [e for _, e in app.read_log() if isinstance(e, Reminder.Emitted)]
        reminded = {f"{e.originator_id}:1": e.due_at for e in emitted}
        recorded = {f"{e.originator_id}:1": e.timestamp for e in emitted}  # when the log recorded it
    offset = time.time() - time.perf_counter()  # the watcher notes perf_counter: to wall-clock seconds
    measured = [(watcher.seen[ce_id] + offset - due.timestamp()) * 1000
                for ce_id, due in reminded.items() if ce_id in watcher.seen]
    lost = len(opened) - len(measured)
    emitting = [(recorded[key] - due).total_seconds() * 1000 for key, due in reminded.items()]
    publishing = [(watcher.seen[key] + offset - recorded[key].timestamp()) * 1000 for key in reminded
                  if key in watcher.seen]
    p50, p99 = percentile(measured, 0.5), percentile(measured, 0.99)
    details: dict[str, Any] = {
        "reminders": len(opened), "rate_per_s": rate, "lost": lost, "threshold_s": THRESHOLD_SECONDS,
        "p50_ms": round(p50 or 0, 1), "p99_ms": round(p99 or 0, 1), "max_ms": round(max(measured, default=0), 1),
        "process_poll_s": POLL,
        "due_to_recorded_ms": {"p50": round(percentile(emitting, 0.5) or 0, 1),
                               "p99": round(percentile(emitting, 0.99) or 0, 1)},
        "recorded_to_polled_ms": {"p50": round(percentile(publishing, 0.5) or 0, 1),
                                  "p99": round(percentile(publishing, 0.99) or 0, 1)},
        "path": "threshold passes (due_at) → ReminderProcess.follow, waiting for the next due threshold (or "
                f"{POLL} s for new events), catches its read model up, checks the item's events, saves "
                "Reminder.Emitted → KafkaRelay.follow (polls "
                "every 50 ms) → broker (acks=all) → KafkaConsumer.poll of crm.reminders, all in threads"}
    return [Metric("reminder_delivery_latency", round(p99 or 0, 1), "ms (p99)", None, None, None,
                   f"p99 < {TARGET_P99_MS} ms, none lost", p99 is not None and p99 < TARGET_P99_MS and lost == 0,
                   details)]
