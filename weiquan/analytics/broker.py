"""Rasa's event broker for analytics: every event of every turn, masked, into the analytics store.

`endpoints.yml`:

    event_broker:
      type: weiquan.analytics.broker.MaskingSQLBroker
      db: var/analytics.db        # a SQLite path or an SQLAlchemy URL; $ANALYTICS_DB wins

Rasa's tracker store hands the broker each new event of a turn (`publish`, synchronous, inside the turn). `publish`
only puts the event in a queue; a writer thread of its own masks and writes them in batches, so the turn waits for no
database:

- **masked first**, with the tracker store's own masking (`weiquan.core.privacy.mask_event`); the sender id stays as
  it is, as in the tracker store, so `make forget` finds the conversation;
- **never in the buyer's way**: a database that fails is caught and logged (`analytics.unavailable`, at most once a
  minute); the events wait in memory and are written when it answers again (tried every `retry_after_s`). Beyond
  `max_buffered` waiting events the oldest are dropped and **counted as lost** (`analytics.lost`); the count is
  written into the store once it answers, so the analytics page shows it. Events still waiting when the server stops
  (after `close_timeout_s`) are lost too, and logged.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from asyncio import AbstractEventLoop
from collections import deque
from collections.abc import Mapping
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from weiquan.analytics.store import DEFAULT_DB, ENV_DB, AnalyticsStore, database_url
from weiquan.core.privacy import mask_event

logger = logging.getLogger(__name__)

ERROR_EVERY_S = 60.0
BATCH = 500
# The writer wakes this often and writes what has come since, so that one transaction carries several turns and no
# publish wakes it in the middle of a turn: writing each turn's events as they came made a turn cost 1.28x, then
# 1.16x once the writes were cheap (bench-load, c=1 p50).
LINGER_S = 0.25


def masked(event: Mapping[str, Any]) -> dict[str, Any]:
    """One published event as it may be stored: masked, with the sender id kept."""
    sender_id = event.get("sender_id")
    row = mask_event({key: value for key, value in event.items() if key != "sender_id"})
    row["sender_id"] = sender_id
    return row


class MaskingSQLBroker(EventBroker):
    """Queues each event; a writer thread masks it and writes it into the analytics store. Never raises in a turn.

    `store` needs `add_events(rows)` and `add_loss(count, at)` (both raise when it is away): the analytics store here,
    RabbitMQ for MaskingRabbitBroker (weiquan/analytics/rabbit.py)."""

    target = "the analytics store"

    def __init__(self, store: Any, retry_after_s: float = 5.0, max_buffered: int = 100_000,
                 close_timeout_s: float = 5.0, linger_s: float = LINGER_S) -> None:
        self.store = store
        self.linger_s = linger_s
        self.retry_after_s = retry_after_s
        self.max_buffered = max_buffered
        self.close_timeout_s = close_timeout_s
        self.written = 0
        self.lost = 0  # since this process started
        self._unreported = 0  # lost events not yet written into the store
        self._queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue()
        self._waiting: deque[dict[str, Any]] = deque()  # masked, not yet written
        self._pending = 0  # published, not yet written or lost
        self._settled = threading.Condition()
        self._last_error_log = 0.0
        self._thread = threading.Thread(target=self._write_forever, name="analytics-broker", daemon=True)
        self._thread.start()

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: AbstractEventLoop | None = None
    ) -> MaskingSQLBroker:
        from weiquan.services import default_services

        settings = broker_config.kwargs or {}
        db = default_services().env.get(ENV_DB) or str(settings.get("db") or DEFAULT_DB)
        return cls(AnalyticsStore(database_url(db)), retry_after_s=float(settings.get("retry_after_s", 5.0)))

    # ------------------------------------------------------------------ in the turn

    def publish(self, event: dict[str, Any]) -> None:
        with self._settled:
            self._pending += 1
        self._queue.put(event)

    def is_ready(self) -> bool:
        return True

    # ------------------------------------------------------------------ the writer thread

    def _take(self, block: bool) -> bool:
        """Moves queued events (masked) into the waiting list; False when asked to stop."""
        try:
            event = self._queue.get(block=block, timeout=self.retry_after_s if block else None)
        except queue.Empty:
            return True
        while True:
            if event is None:
                return False
            try:
                self._waiting.append(masked(event))
            except Exception:  # noqa: BLE001 - an event that cannot be masked is not stored in clear
                self._count_lost(1, "an event could not be masked")
                self._done(1)
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return True

    def _write_forever(self) -> None:
        running = True
        while running or self._waiting:
            if self.linger_s and running:
                # On a clock of its own, not woken by each publish: a woken writer contends for the GIL in the middle
                # of the buyer's turn. Events of several turns then go in one transaction.
                time.sleep(self.linger_s)
                running = self._take(block=False)
            else:
                running = self._take(block=not self._waiting) and running
            if not self._waiting:
                continue
            if not self._write():
                if not running:
                    break
                time.sleep(self.retry_after_s)
        if self._waiting:
            self._count_lost(len(self._waiting), "the server stopped while the analytics store was away")
            self._done(len(self._waiting))
            self._waiting.clear()

    def _write(self) -> bool:
        batch = [self._waiting[index] for index in range(min(BATCH, len(self._waiting)))]
        try:
            self.store.add_events(batch)
            if self._unreported:
                self.store.add_loss(self._unreported, float(batch[-1].get("timestamp") or 0.0))
                self._unreported = 0
        except Exception as error:  # noqa: BLE001 - whatever the database does, the conversation goes on
            self._unavailable(error)
            overflow = len(self._waiting) - self.max_buffered
            for _ in range(max(0, overflow)):
                self._waiting.popleft()
            if overflow > 0:
                self._count_lost(overflow, f"more than {self.max_buffered} events waiting")
                self._done(overflow)
            return False
        for _ in batch:
            self._waiting.popleft()
        self.written += len(batch)
        self._done(len(batch))
        return True

    def _done(self, count: int) -> None:
        with self._settled:
            self._pending -= count
            self._settled.notify_all()

    def _unavailable(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_EVERY_S:
            self._last_error_log = now
            reason = str(error).splitlines()[0] if str(error) else ""
            logger.error("analytics.unavailable: cannot write into %s (%s: %s); %d events wait",
                         self.target, type(error).__name__, reason, len(self._waiting))

    def _count_lost(self, count: int, why: str) -> None:
        self.lost += count
        self._unreported += count
        logger.error("analytics.lost: %d events (%s); %d lost since start", count, why, self.lost)

    # ------------------------------------------------------------------ tests and shutdown

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Waits until every published event is written (or lost); True when that happened in time."""
        with self._settled:
            return self._settled.wait_for(lambda: self._pending <= 0, timeout_s)

    async def close(self) -> None:
        self._queue.put(None)
        self._thread.join(self.close_timeout_s)
        self._close_store()

    def _close_store(self) -> None:
        self.store.engine.dispose()


class MaskingRabbitBroker(MaskingSQLBroker):
    """The same queue and writer thread, publishing the masked events to RabbitMQ (`make run-production`, deploy/);
    `python -m weiquan.analytics.consumer` writes them into the analytics store. Personal data never reaches RabbitMQ
    in clear. While RabbitMQ is away the events wait (buffered, then delivered) or are counted lost, as above; the
    count travels as a message of its own (weiquan/analytics/rabbit.py) and reaches the store with the events.

    `endpoints.production.yml`:

        event_broker:
          type: weiquan.analytics.broker.MaskingRabbitBroker
          queue: weiquan_analytics      # $RABBITMQ_QUEUE wins; the URL (a secret) only from $RABBITMQ_URL
    """

    target = "RabbitMQ"

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: AbstractEventLoop | None = None
    ) -> MaskingRabbitBroker:
        from weiquan.analytics.rabbit import RabbitPublisher, settings
        from weiquan.services import default_services

        section = broker_config.kwargs or {}
        url, queue_name = settings(section, default_services().env)
        return cls(RabbitPublisher(url, queue_name), retry_after_s=float(section.get("retry_after_s", 2.0)),
                   max_buffered=int(section.get("max_buffered", 100_000)))

    def _write_forever(self) -> None:
        try:
            super()._write_forever()
        finally:
            self.store.close()  # on this thread: the connection lives on this thread's own event loop

    def _close_store(self) -> None:
        pass
