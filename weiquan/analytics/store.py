"""The analytics store: masked Rasa events as the event broker publishes them, plus the operators' review decisions.

One SQL database (SQLite for `make run`), four tables of its own:

- `analytics_events`: one row per published event (sender id, type, timestamp, the masked event as JSON);
- `analytics_losses`: events the broker could not write (counted while the database was away, written when it
  answers again), so the analytics page can say how many are missing;
- `analytics_reviews`: what an operator decided about a message of the review inbox (keyed by its masked text);
- `analytics_review_families`: the new "other problem" family an operator put a reviewed message in (its short
  Chinese name); such a message is also an `out_of_scope` review. A table of its own, so that stores created before
  families existed gain it with `create_all` (no migration of `analytics_reviews`).

It is registered with `make forget` / `make purge-expired` (weiquan/stores/retention.py, `retention_store`).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ENV_DB = "ANALYTICS_DB"  # a path of a SQLite file, or an SQLAlchemy URL; wins over the endpoints file
DEFAULT_DB = "var/analytics.db"

metadata = sa.MetaData()
events_table = sa.Table(
    "analytics_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("type_name", sa.String(64), nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False, index=True),
    sa.Column("data", sa.Text, nullable=False),
)
losses_table = sa.Table(
    "analytics_losses", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("timestamp", sa.Float, nullable=False, index=True),
    sa.Column("count", sa.Integer, nullable=False),
)
reviews_table = sa.Table(
    "analytics_reviews", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("guess", sa.String(128), nullable=True),
    sa.Column("intent", sa.String(128), nullable=True),  # None: dismissed
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("exported", sa.Boolean, nullable=False, default=False),
)
families_table = sa.Table(
    "analytics_review_families", metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # analytics_reviews.key
    sa.Column("family", sa.String(64), nullable=False),
)


def database_url(db: str) -> str:
    """An SQLAlchemy URL from a SQLite path or a URL."""
    if "://" in db:
        return db
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def url_from_endpoints(endpoints: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """The analytics store's URL: $ANALYTICS_DB, else the `event_broker` section's `dialect` (the database of DB_*,
    `make run-production`), else its `db`; None when no analytics broker is configured."""
    broker = endpoints.get("event_broker") or {}
    if not broker or "analytics" not in str(broker.get("type", "")):
        return None
    if env.get(ENV_DB):
        return database_url(env[ENV_DB])
    if broker.get("dialect"):  # production: the conversations' own database, from DB_* as the tracker store reads it
        return sa.engine.URL.create(
            str(broker["dialect"]), username=env.get("DB_USER") or None, password=env.get("DB_PASSWORD") or None,
            host=env.get("DB_HOST") or None, port=int(env["DB_PORT"]) if env.get("DB_PORT") else None,
            database=env.get("DB_NAME") or None).render_as_string(hide_password=False)
    return database_url(str(broker.get("db") or DEFAULT_DB))


@dataclass
class Review:
    key: str
    text: str
    guess: str | None
    intent: str | None
    timestamp: float
    exported: bool
    family: str | None = None  # a new "other problem" family (then intent is out_of_scope)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL lets the console read while the broker writes; synchronous=NORMAL makes a commit cost no fsync (an
    operating-system crash may lose the last commits of analytics, never a conversation: the tracker store is apart)."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class AnalyticsStore:
    name = "analytics"

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            # A short busy wait: the broker (Rasa's process) and the console (its own) share the file. Connections are
            # kept (SQLAlchemy opens a new one per transaction for a SQLite file by default: most of a write's cost).
            kwargs["connect_args"] = {"timeout": 2, "check_same_thread": False}
            kwargs["poolclass"] = sa.pool.QueuePool
        self.engine = sa.create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._created = False

    def _ensure(self) -> None:
        if not self._created:
            metadata.create_all(self.engine)
            self._created = True

    # ------------------------------------------------------------------ writing (the broker)

    def add_events(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Writes masked events (each with its `sender_id`); raises when the database does not answer."""
        values = [
            {"sender_id": str(row.get("sender_id") or ""), "type_name": str(row.get("event") or ""),
             "timestamp": float(row.get("timestamp") or 0.0),
             "data": json.dumps(dict(row), ensure_ascii=False)}
            for row in rows
        ]
        if not values:
            return 0
        self._ensure()
        with self.engine.begin() as connection:
            connection.execute(events_table.insert(), values)
        return len(values)

    def latest_bot_message(self, sender_id: str) -> dict[str, Any] | None:
        """The newest stored bot message of a conversation (what a rating rates), or None."""
        self._ensure()
        query = (sa.select(events_table.c.data)
                 .where(events_table.c.sender_id == sender_id, events_table.c.type_name == "bot")
                 .order_by(events_table.c.timestamp.desc(), events_table.c.id.desc()).limit(1))
        with self.engine.connect() as connection:
            row = connection.execute(query).fetchone()
        return json.loads(row[0]) if row else None

    def latest_event(self, sender_id: str, type_name: str) -> dict[str, Any] | None:
        """The newest stored event of a type in a conversation (e.g. its last rating), or None."""
        self._ensure()
        query = (sa.select(events_table.c.data)
                 .where(events_table.c.sender_id == sender_id, events_table.c.type_name == type_name)
                 .order_by(events_table.c.timestamp.desc(), events_table.c.id.desc()).limit(1))
        with self.engine.connect() as connection:
            row = connection.execute(query).fetchone()
        return json.loads(row[0]) if row else None

    def add_loss(self, count: int, at: float) -> None:
        self._ensure()
        with self.engine.begin() as connection:
            connection.execute(losses_table.insert(), [{"timestamp": at, "count": count}])

    # ------------------------------------------------------------------ reading (the console)

    def events(self, start: float, end: float) -> list[dict[str, Any]]:
        """The events stored with a timestamp in [start, end), oldest first, each with its `sender_id`."""
        self._ensure()
        query = (sa.select(events_table.c.sender_id, events_table.c.data)
                 .where(events_table.c.timestamp >= start, events_table.c.timestamp < end)
                 .order_by(events_table.c.timestamp, events_table.c.id))
        with self.engine.connect() as connection:
            rows = connection.execute(query).fetchall()
        return [{**json.loads(data), "sender_id": sender} for sender, data in rows]

    def lost(self, start: float, end: float) -> int:
        self._ensure()
        query = sa.select(sa.func.coalesce(sa.func.sum(losses_table.c.count), 0)).where(
            losses_table.c.timestamp >= start, losses_table.c.timestamp < end)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0)

    # ------------------------------------------------------------------ review decisions

    def decide(self, key: str, text: str, guess: str | None, intent: str | None, at: float,
               family: str | None = None) -> None:
        """Records an operator's decision (intent None: dismissed; a family: a new "other problem" family, stored
        with the intent given, out_of_scope); a later decision replaces an earlier one."""
        self._ensure()
        with self.engine.begin() as connection:
            connection.execute(reviews_table.delete().where(reviews_table.c.key == key))
            connection.execute(families_table.delete().where(families_table.c.key == key))
            connection.execute(reviews_table.insert(), [{"key": key, "text": text, "guess": guess, "intent": intent,
                                                         "timestamp": at, "exported": False}])
            if family:
                connection.execute(families_table.insert(), [{"key": key, "family": family}])

    def reviews(self) -> list[Review]:
        self._ensure()
        query = (sa.select(reviews_table, families_table.c.family)
                 .select_from(reviews_table.outerjoin(families_table, reviews_table.c.key == families_table.c.key))
                 .order_by(reviews_table.c.timestamp))
        with self.engine.connect() as connection:
            rows = connection.execute(query).fetchall()
        return [Review(row.key, row.text, row.guess, row.intent, row.timestamp, bool(row.exported), row.family)
                for row in rows]

    def mark_exported(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if not keys:
            return
        self._ensure()
        with self.engine.begin() as connection:
            connection.execute(reviews_table.update().where(reviews_table.c.key.in_(keys)).values(exported=True))

    # ------------------------------------------------------------------ retention (weiquan/stores/retention.py)

    def forget(self, sender_id: str) -> int:
        self._ensure()
        with self.engine.begin() as connection:
            return connection.execute(events_table.delete().where(events_table.c.sender_id == sender_id)).rowcount

    def purge(self, before: float) -> int:
        self._ensure()
        with self.engine.begin() as connection:
            deleted = connection.execute(events_table.delete().where(events_table.c.timestamp < before)).rowcount
            connection.execute(losses_table.delete().where(losses_table.c.timestamp < before))
        return deleted


def retention_store(endpoints: Mapping[str, Any]) -> AnalyticsStore | None:
    """The analytics store as `make forget` and `make purge-expired` reach it; None when no broker is configured."""
    from weiquan.services import default_services

    url = url_from_endpoints(endpoints, default_services().env)
    return AnalyticsStore(url) if url else None
