"""Rasa's SQL tracker store (SQLite or PostgreSQL), made safe with people's data and with a database that goes away.

`endpoints.yml` / `endpoints.production.yml`: `tracker_store: {type:
weiquan.stores.tracker_store.PrivateSQLTrackerStore, …}` with Rasa's SQL settings (dialect, url, port, db, username,
password, login_db, query) plus `retention_days`.

- **Masked before stored.** Every event is written through `weiquan.core.privacy.mask_event`: user and bot text, parse
  data and entity values, slot values and metadata keep no phone, ID-card or order number, e-mail or street address in
  clear. The tracker Rasa works with during a turn is never touched, so this turn's actions get the real values; the
  next turn starts from the stored, masked history (nothing in the dialogue reads an older turn's number or address).
- **Database down.** Rasa's store retries forever at start-up (the server never comes up) and, later, its fail-safe
  wrapper silently forgets the conversation. Here a failure logs one clear error (`tracker_store.unavailable`, again
  at most once a minute), the conversation goes on from this process's memory (masked, bounded), and the events are
  written once the database answers again (`tracker_store.recovered`). While it is down the database is tried again
  at most every `retry_after_s`, so a dead database does not slow every turn.
- **Retention.** `retention_days` (default 30; the environment variable `RETENTION_DAYS` wins) is what
  `make purge-expired` uses; `make forget` deletes one conversation. See weiquan/stores/retention.py.
"""
from __future__ import annotations

import itertools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore, create_engine_kwargs, validate_port
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.exc import SQLAlchemyError

from weiquan.core.privacy import mask_event
from weiquan.edge import logmask
from weiquan.services import default_services

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 30
RETENTION_ENV = "RETENTION_DAYS"
ERROR_EVERY_S = 60.0


def resolve_retention_days(configured: Any, environ: Mapping[str, str]) -> float:
    """The retention period in days: $RETENTION_DAYS, else the endpoints setting, else 30. Must be positive."""
    for source, value in ((RETENTION_ENV, environ.get(RETENTION_ENV)), ("retention_days", configured)):
        if value is None or str(value).strip() == "":
            continue
        try:
            days = float(value)
        except ValueError:
            raise ValueError(f"{source} must be a number of days, not {value!r}") from None
        if days <= 0:
            raise ValueError(f"{source} must be positive, not {value!r}")
        return days
    return float(DEFAULT_RETENTION_DAYS)


def masked_rows(events: Iterable[Any]) -> list[dict[str, Any]]:
    """Serialised, masked events, ready to be written or kept."""
    return [mask_event(event.as_dict()) for event in events]


@dataclass
class _Kept:
    """A conversation the database has not fully seen: its masked events, and where the unwritten ones start."""

    events: list[dict[str, Any]]
    unsaved_from: int


class PrivateSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore that masks personal data before writing and survives a database that is down."""

    def __init__(
        self,
        domain: Domain | None = None,
        dialect: str = "sqlite",
        host: str | None = None,
        port: int | None = None,
        db: str = "rasa.db",
        username: str | None = None,
        password: str | None = None,
        event_broker: EventBroker | None = None,
        login_db: str | None = None,
        query: dict | None = None,
        retention_days: Any = None,
        connect_timeout_s: float = 3.0,
        retry_after_s: float = 5.0,
        max_kept_conversations: int = 10_000,
        **kwargs: Any,
    ) -> None:
        # Not SQLTrackerStore.__init__: it loops forever while the database is unreachable.
        TrackerStore.__init__(self, domain, event_broker, **kwargs)
        logmask.install()
        self.retention_days = resolve_retention_days(retention_days, default_services().env)
        if dialect == "sqlite" and db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        url = self.get_db_url(dialect, host, validate_port(port), db, username, password, login_db, query)
        engine_kwargs = create_engine_kwargs(url)
        if dialect.startswith("postgresql"):
            connect_args = engine_kwargs.setdefault("connect_args", {})
            connect_args.setdefault("connect_timeout", max(1, round(connect_timeout_s)))
        self.engine = sa.create_engine(url, pool_pre_ping=True, **engine_kwargs)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self._db, self._login_db = db, login_db
        self._where = f"{dialect} database {db!r}" + (f" at {host}:{port}" if host else "")
        self._retry_after_s = retry_after_s
        self._max_kept = max_kept_conversations
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._stored_counts: OrderedDict[str, int] = OrderedDict()
        self._ready = False
        self._down_since: float | None = None
        self._last_try = 0.0
        self._last_error_log = 0.0
        if self._connect():
            logger.debug("tracker_store.connected to %s", self._where)

    # ------------------------------------------------------------------ database health

    def _connect(self) -> bool:
        """True when the database answers (creating the table the first time); logs and returns False otherwise."""
        now = time.monotonic()
        if self._down_since is not None and now - self._last_try < self._retry_after_s:
            return False
        self._last_try = now
        try:
            if self._login_db and not self._ready:
                self._create_database_and_update_engine(self._db, self.engine.url)
            # Also after an outage: the database may have come back empty.
            self.Base.metadata.create_all(self.engine)
            self._ready = True
        except SQLAlchemyError as error:
            self._failed(error)
            return False
        self._recovered()
        return True

    def _failed(self, error: Exception) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        self._last_try = now
        if now - self._last_error_log >= ERROR_EVERY_S:
            self._last_error_log = now
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            logger.error(
                "tracker_store.unavailable: cannot use the %s (%s: %s). Conversations go on from this process's "
                "memory (%d kept) and are written when the database answers again.",
                self._where, type(error).__name__, reason, len(self._kept),
            )

    def _recovered(self) -> None:
        if self._down_since is not None:
            logger.warning(
                "tracker_store.recovered: the %s answers again after %.0f s.",
                self._where, time.monotonic() - self._down_since,
            )
        self._down_since = None

    @property
    def available(self) -> bool:
        return self._down_since is None and self._ready

    # ------------------------------------------------------------------ reading

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> DialogueStateTracker | None:
        kept = self._kept.get(sender_id)
        if kept is not None:
            # The newest state of this conversation is here; the database has not seen all of it.
            return DialogueStateTracker.from_dict(sender_id, kept.events, self.domain.slots)
        if self.available or self._connect():
            try:
                tracker = await super()._retrieve(sender_id, fetch_events_from_all_sessions)
            except SQLAlchemyError as error:
                self._failed(error)
            else:
                if not fetch_events_from_all_sessions:
                    self._remember_count(sender_id, len(tracker.events) if tracker else 0)
                return tracker
        # Rasa starts this conversation afresh: none of the tracker it will save is in the database.
        self._remember_count(sender_id, 0)
        return None

    async def keys(self) -> Iterable[str]:
        stored = await super().keys() if (self.available or self._connect()) else []
        return list(dict.fromkeys([*stored, *self._kept]))

    # ------------------------------------------------------------------ writing

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """The new events of this turn to the event broker (analytics). Rasa finds them by loading the whole tracker
        from the database again on every save; this store knows how many events this turn's retrieve loaded, so it
        publishes the rest without that second load (the broker's cost to a turn: `make bench-load`). A turn the
        store did not load itself (or one kept in memory during an outage) goes Rasa's way."""
        sender_id = tracker.sender_id
        loaded = self._stored_counts.get(sender_id)
        if self.event_broker is None or loaded is None or sender_id in self._kept:
            await super().stream_events(tracker)
            return
        new_events = list(itertools.islice(tracker.events, loaded, len(tracker.events)))
        await self._stream_new_events(self.event_broker, new_events, sender_id)

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        sender_id = tracker.sender_id
        kept = self._kept.get(sender_id)
        if kept is not None:
            kept.events.extend(masked_rows(list(tracker.events)[len(kept.events):]))
            rows, base = kept.events[kept.unsaved_from:], None
        else:
            rows, base = None, self._stored_counts.get(sender_id)
        try:
            if not (self.available or self._connect()):
                raise _Down()
            with self.session_scope() as session:
                if rows is None:
                    stored = self._event_query(session, sender_id, fetch_events_from_all_sessions=False).count()
                    base = stored
                    rows = masked_rows(list(tracker.events)[stored:])
                self._add(session, sender_id, rows)
                session.commit()
        except (SQLAlchemyError, _Down) as error:
            if isinstance(error, SQLAlchemyError):
                self._failed(error)
            self._keep(sender_id, tracker, kept, base)
            return
        if kept is not None:
            del self._kept[sender_id]
            logger.info("tracker_store.written: %d events kept in memory for a conversation", len(rows))
        self._remember_count(sender_id, len(tracker.events))
        self._flush_kept()
        logger.debug("tracker_store.saved %d events", len(rows))

    def _add(self, session: Any, sender_id: str, rows: list[dict[str, Any]]) -> None:
        for data in rows:
            session.add(
                self.SQLEvent(
                    sender_id=sender_id,
                    type_name=data.get("event"),
                    timestamp=data.get("timestamp"),
                    intent_name=(data.get("parse_data") or {}).get("intent", {}).get("name"),
                    action_name=data.get("name"),
                    data=json.dumps(data),
                )
            )

    def _keep(self, sender_id: str, tracker: DialogueStateTracker, kept: _Kept | None, base: int | None) -> None:
        if kept is None:
            kept = _Kept(events=masked_rows(tracker.events), unsaved_from=base or 0)
            self._kept[sender_id] = kept
        self._kept.move_to_end(sender_id)
        while len(self._kept) > self._max_kept:
            _, dropped = self._kept.popitem(last=False)
            logger.error(
                "tracker_store.dropped: %d unwritten events of the oldest kept conversation (more than %d kept)",
                len(dropped.events) - dropped.unsaved_from, self._max_kept,
            )

    def _flush_kept(self, limit: int = 50) -> None:
        """Writes conversations kept during an outage whose buyers have not come back yet."""
        for sender_id in list(self._kept)[:limit]:
            kept = self._kept[sender_id]
            try:
                with self.session_scope() as session:
                    self._add(session, sender_id, kept.events[kept.unsaved_from:])
                    session.commit()
            except SQLAlchemyError as error:
                self._failed(error)
                return
            del self._kept[sender_id]
            self._remember_count(sender_id, len(kept.events))

    def _remember_count(self, sender_id: str, count: int) -> None:
        self._stored_counts[sender_id] = count
        self._stored_counts.move_to_end(sender_id)
        while len(self._stored_counts) > self._max_kept:
            self._stored_counts.popitem(last=False)


class _Down(Exception):
    """The database was found down a moment ago; not tried again yet."""
