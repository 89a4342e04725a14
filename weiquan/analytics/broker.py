"""Rasa's event broker for analytics: every event of every turn, masked, into the analytics store.

`endpoints.yml`:

    event_broker:
      type: weiquan.analytics.broker.MaskingSQLBroker
      db: var/analytics.db        # a SQLite path or an SQLAlchemy URL; $ANALYTICS_DB wins

Rasa's tracker store hands the broker each new event of a turn (`publish`, synchronous, inside the turn). Here:

- **masked first**, with the tracker store's own masking (`weiquan.core.privacy.mask_event`); the sender id stays as
  it is, as in the tracker store, so `make forget` finds the conversation;
- **never in the buyer's way**: a database that fails is caught; the event is counted as lost (logged once a minute,
  `analytics.lost`), and the count is written into the store when it answers again, so the analytics page shows it.
  While the database is known to be down it is tried again at most every `retry_after_s`, so a dead database does not
  slow every turn.
"""
from __future__ import annotations

import logging
import time
from asyncio import AbstractEventLoop
from collections.abc import Mapping
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig

from weiquan.analytics.store import DEFAULT_DB, ENV_DB, AnalyticsStore, database_url
from weiquan.core.privacy import mask_event

logger = logging.getLogger(__name__)

ERROR_EVERY_S = 60.0


def masked(event: Mapping[str, Any]) -> dict[str, Any]:
    """One published event as it may be stored: masked, with the sender id kept."""
    sender_id = event.get("sender_id")
    row = mask_event({key: value for key, value in event.items() if key != "sender_id"})
    row["sender_id"] = sender_id
    return row


class MaskingSQLBroker(EventBroker):
    """Masks each event and writes it into the analytics store; a failure costs an event, never a turn."""

    def __init__(self, store: AnalyticsStore, retry_after_s: float = 5.0) -> None:
        self.store = store
        self.retry_after_s = retry_after_s
        self.written = 0
        self.lost = 0  # since this process started
        self._unreported = 0  # lost events not yet written into the store
        self._failed_at: float | None = None  # the last failure; tried again retry_after_s later
        self._last_error_log = 0.0

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: AbstractEventLoop | None = None
    ) -> MaskingSQLBroker:
        from weiquan.services import default_services

        settings = broker_config.kwargs or {}
        db = default_services().env.get(ENV_DB) or str(settings.get("db") or DEFAULT_DB)
        return cls(AnalyticsStore(database_url(db)), retry_after_s=float(settings.get("retry_after_s", 5.0)))

    def publish(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        if self._failed_at is not None and now - self._failed_at < self.retry_after_s:
            self._count_lost(1, None)
            return
        try:
            self.store.add_events([masked(event)])
            if self._unreported:
                self.store.add_loss(self._unreported, float(event.get("timestamp") or 0.0))
                self._unreported = 0
        except Exception as error:  # noqa: BLE001 - whatever the database does, the buyer's turn goes on
            self._failed_at = now
            self._count_lost(1, error)
            return
        if self._failed_at is not None:
            logger.warning("analytics.recovered: the analytics store answers again (%d events lost)", self.lost)
        self._failed_at = None
        self.written += 1

    def _count_lost(self, count: int, error: Exception | None) -> None:
        self.lost += count
        self._unreported += count
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_EVERY_S:
            self._last_error_log = now
            reason = f" ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})" if error else ""
            logger.error("analytics.lost: the analytics store does not answer%s; %d events lost so far", reason,
                         self.lost)

    def is_ready(self) -> bool:
        return True

    async def close(self) -> None:
        self.store.engine.dispose()
