"""How long personal data stays, and deleting it: one conversation on request, and everything past the retention period.

`make forget SENDER=<id>` (scripts/forget.py) and `make purge-expired` (scripts/purge_expired.py) read an endpoints
file (`ENDPOINTS`, default endpoints.yml, so the same command works with endpoints.production.yml) and hand the work
to every registered store.

**Registering a store** (the hand-off store, say): add one line to `STORES` below naming a function that returns the
store, e.g. `"weiquan.services:retention_handoff_store"`. The function is called with the parsed endpoints file if it
takes a required argument, with nothing otherwise, and returns None when that store is not configured. The store
needs `forget(sender_id) -> int` (what it deleted) and either `purge(before: float) -> int` (seconds since the epoch)
or `purge_before(when: datetime) -> int`; a `name` is optional. The retention period is the same for every store:
`retention_days(endpoints)`.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from weiquan.stores.tracker_store import resolve_retention_days

SECONDS_PER_DAY = 86_400

# Every store that keeps personal data, as "module:function". One line per store.
STORES: tuple[str, ...] = (
    "weiquan.stores.retention:conversation_store",
    "weiquan.services:retention_handoff_store",  # hand-off queue, left messages (HANDOFF_STORE_URL / DB_* / SQLite)
    "weiquan.services:retention_outbox",  # operator messages not yet seen (the hand-off store's database)
    "weiquan.analytics.store:retention_store",  # masked events for the analytics page (event_broker in endpoints)
)


class DataStore(Protocol):
    name: str

    def forget(self, sender_id: str) -> int: ...

    def purge(self, before: float) -> int: ...


def load_endpoints(path: str | Path) -> dict[str, Any]:
    """The endpoints file as Rasa reads it (${VAR} expanded from the environment)."""
    from rasa.shared.utils.io import read_config_file

    return read_config_file(str(path)) or {}


def retention_days(endpoints: Mapping[str, Any], env: Mapping[str, str]) -> float:
    return resolve_retention_days((endpoints.get("tracker_store") or {}).get("retention_days"), env)


@dataclass
class _Adapted:
    """A store with `forget` and `purge_before(datetime)`, seen as a DataStore."""

    store: Any
    name: str

    def forget(self, sender_id: str) -> int:
        return self.store.forget(sender_id)

    def purge(self, before: float) -> int:
        return self.store.purge_before(datetime.fromtimestamp(before, timezone.utc))


def _open(factory: Any, endpoints: Mapping[str, Any]) -> Any:
    required = [p for p in inspect.signature(factory).parameters.values()
                if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return factory(endpoints) if required else factory()


def registered_stores(endpoints: Mapping[str, Any]) -> list[DataStore]:
    stores: list[DataStore] = []
    for entry in STORES:
        module, _, function = entry.partition(":")
        store = _open(getattr(importlib.import_module(module), function), endpoints)
        if store is None:
            continue
        if not hasattr(store, "purge"):
            store = _Adapted(store, getattr(store, "name", type(store).__name__))
        stores.append(store)
    return stores


def forget(endpoints: Mapping[str, Any], sender_id: str) -> dict[str, int]:
    """Deletes everything stored about one conversation; {store name: items deleted}."""
    if not sender_id:
        raise ValueError("no conversation id given")
    return {store.name: store.forget(sender_id) for store in registered_stores(endpoints)}


def purge_expired(endpoints: Mapping[str, Any], now: float, env: Mapping[str, str]) -> tuple[float, dict[str, int]]:
    """Deletes what is older than the retention period; (cut-off as seconds since the epoch, {store: items deleted})."""
    cutoff = now - retention_days(endpoints, env) * SECONDS_PER_DAY
    return cutoff, {store.name: store.purge(cutoff) for store in registered_stores(endpoints)}


# ---------------------------------------------------------------------- the tracker store's conversations


@dataclass
class SQLConversations:
    """Rasa's `events` table (SQLite or PostgreSQL), whichever SQL tracker store wrote it."""

    engine: sa.engine.Engine
    name: str = "conversations"

    @property
    def table(self) -> sa.Table:
        from rasa.core.tracker_store import SQLTrackerStore

        return SQLTrackerStore.SQLEvent.__table__

    def _exists(self) -> bool:
        return sa.inspect(self.engine).has_table(self.table.name)

    def forget(self, sender_id: str) -> int:
        if not self._exists():
            return 0
        with self.engine.begin() as connection:
            return connection.execute(sa.delete(self.table).where(self.table.c.sender_id == sender_id)).rowcount

    def purge(self, before: float) -> int:
        """Deletes conversations idle since before `before`, and the earlier sessions of the others that ended then.

        The session a buyer is in stays whole (sessions expire after a day without messages; see domain.yml).
        """
        if not self._exists():
            return 0
        events = self.table
        other = events.alias("other")
        latest_session = (
            sa.select(sa.func.max(other.c.timestamp))
            .where(other.c.sender_id == events.c.sender_id, other.c.type_name == "session_started")
            .scalar_subquery()
        )
        idle = (
            sa.select(events.c.sender_id)
            .group_by(events.c.sender_id)
            .having(sa.func.max(events.c.timestamp) < before)
            .scalar_subquery()
        )
        with self.engine.begin() as connection:
            deleted = connection.execute(sa.delete(events).where(events.c.sender_id.in_(idle))).rowcount
            deleted += connection.execute(
                sa.delete(events).where(events.c.timestamp < before, events.c.timestamp < latest_session)
            ).rowcount
        return deleted


def conversation_store(endpoints: Mapping[str, Any]) -> SQLConversations | None:
    """The tracker store's conversations; None when conversations are kept in memory only (nothing to delete)."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.utils.common import class_from_module_path

    config = dict(endpoints.get("tracker_store") or {})
    kind = str(config.get("type") or "")
    if not kind:
        return None
    is_sql = kind.lower() == "sql"
    if not is_sql:
        try:
            is_sql = issubclass(class_from_module_path(kind), SQLTrackerStore)
        except (ImportError, AttributeError, TypeError):
            is_sql = False
    if not is_sql:
        raise NotImplementedError(f"forget and purge know SQL tracker stores (SQLite, PostgreSQL), not {kind!r}")
    dialect = config.get("dialect", "sqlite")
    port = config.get("port")
    url = SQLTrackerStore.get_db_url(
        dialect,
        config.get("url"),
        int(port) if port is not None and port != "" else None,
        config.get("db", "rasa.db"),
        config.get("username"),
        config.get("password"),
        None,  # login_db is where Rasa connects to create `db`; the events live in `db`
        config.get("query"),
    )
    return SQLConversations(sa.create_engine(url))
