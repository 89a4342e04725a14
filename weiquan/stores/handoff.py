"""Where hand-offs live: the queue and statuses, the messages users leave, presence heartbeats.

`HandoffStore` is the interface the console, the actions and the data-retention tools use. `SqlHandoffStore`
implements it with SQLAlchemy Core on SQLite (`make run`: var/handoff.db) or PostgreSQL (several servers: the same
database as Rasa's tracker store; the tables are prefixed `handoff_`). The action server and the console share it.

Every write that changes what an operator sees bumps a version counter, which the console's live updates watch.
Moves between states are compare-and-set (`replace(..., expected=...)`), so a console timing a conversation out and
an operator taking it over at the same moment cannot both win.

Order of the open hand-offs: waiting before active; within each, those where the user reported a threat to their
safety first (`safety_at`, set by `flag_safety`), then the oldest request first.

Columns added after the first release (`safety_at`, `requeued_at`) are added to an existing table at start-up.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from weiquan.core.contracts import HandoffSummary
from weiquan.handoff.state import Ending, Handoff, Status

logger = logging.getLogger(__name__)

SERVICE = "service"  # heartbeat of the console's sweep
OPERATOR = "operator"  # heartbeat of an open console page
VERSION = "version"
MAX_CLOSED_LISTED = 100


@dataclass(frozen=True)
class LeftMessage:
    sender_id: str
    text: str
    sent_at: float


class HandoffStore(Protocol):
    def get(self, sender_id: str) -> Handoff | None: ...

    def handoffs(self, statuses: Collection[Status] | None = None) -> list[Handoff]:
        """Waiting first, then active (each: threats first, then oldest first), then the most recently closed."""

    def create(self, handoff: Handoff) -> Handoff:
        """Stores a new hand-off unless one is open for that conversation; returns the one that is open."""

    def replace(self, handoff: Handoff, expected: Status) -> bool:
        """Compare-and-set: writes `handoff` only if the stored status is still `expected`."""

    def note_activity(
        self, sender_id: str, last_user_message: str | None, last_user_at: float | None,
        summary: HandoffSummary | None,
    ) -> bool:
        """Keeps the list's summary and last user message up to date; True when something changed."""

    def flag_safety(self, sender_id: str, now: float) -> bool:
        """Marks an open hand-off as one with a threat to the user's safety (the first time is kept); True when it
        was not marked before."""

    def add_left_message(self, sender_id: str, text: str, sent_at: float) -> bool:
        """Keeps a message the user left while nobody was available (once per sender and time)."""

    def left_messages(self, sender_id: str) -> list[LeftMessage]: ...

    def touch(self, key: str, now: float) -> None:
        """Records a heartbeat (`SERVICE`, `OPERATOR`)."""

    def seen(self, key: str) -> float | None: ...

    def version(self) -> int: ...

    def forget(self, sender_id: str) -> int:
        """Deletes everything stored about one conversation; returns the number of rows deleted."""

    def purge_before(self, when: datetime) -> int:
        """Deletes hand-offs closed before `when` and left messages sent before it; open hand-offs stay."""


metadata = sa.MetaData()
queue = sa.Table(
    "handoff_queue",
    metadata,
    sa.Column("sender_id", sa.String(255), primary_key=True),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("requested_at", sa.Float, nullable=False),
    sa.Column("deadline_at", sa.Float, nullable=False),
    sa.Column("offline", sa.Boolean, nullable=False, default=False),
    sa.Column("taken_at", sa.Float),
    sa.Column("operator", sa.String(64)),
    sa.Column("closed_at", sa.Float),
    sa.Column("ending", sa.String(16)),
    sa.Column("last_user_message", sa.Text),
    sa.Column("last_user_at", sa.Float),
    sa.Column("summary", sa.Text),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("safety_at", sa.Float),
    sa.Column("requeued_at", sa.Float),
)
ADDED_COLUMNS = ("safety_at", "requeued_at")  # nullable columns a table created by an earlier version lacks
left = sa.Table(
    "handoff_left_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("sent_at", sa.Float, nullable=False),
    sa.UniqueConstraint("sender_id", "sent_at", name="handoff_left_once"),
)
meta = sa.Table(
    "handoff_meta",
    metadata,
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)


def _row(handoff: Handoff) -> dict[str, Any]:
    return {
        "sender_id": handoff.sender_id,
        "channel": handoff.channel,
        "status": handoff.status.value,
        "requested_at": handoff.requested_at,
        "deadline_at": handoff.deadline_at,
        "offline": handoff.offline,
        "taken_at": handoff.taken_at,
        "operator": handoff.operator,
        "closed_at": handoff.closed_at,
        "ending": handoff.ending.value if handoff.ending else None,
        "last_user_message": handoff.last_user_message,
        "last_user_at": handoff.last_user_at,
        "summary": _json(handoff.summary),
        "updated_at": handoff.updated_at,
        "safety_at": handoff.safety_at,
        "requeued_at": handoff.requeued_at,
    }


def _json(value: HandoffSummary | None) -> str | None:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value is not None else None


def _handoff(row: Any) -> Handoff:
    data = dict(row._mapping)
    return Handoff(
        sender_id=data["sender_id"],
        channel=data["channel"],
        status=Status(data["status"]),
        requested_at=data["requested_at"],
        deadline_at=data["deadline_at"],
        offline=bool(data["offline"]),
        taken_at=data["taken_at"],
        operator=data["operator"],
        closed_at=data["closed_at"],
        ending=Ending(data["ending"]) if data["ending"] else None,
        last_user_message=data["last_user_message"],
        last_user_at=data["last_user_at"],
        summary=json.loads(data["summary"]) if data["summary"] else None,
        updated_at=data["updated_at"],
        safety_at=data["safety_at"],
        requeued_at=data["requeued_at"],
    )


def _configure_sqlite(dbapi_connection: Any, _: Any) -> None:
    # The action server and the console write to the same file: WAL lets readers go on while one writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class SqlHandoffStore:
    """`HandoffStore` on SQLite or PostgreSQL (any SQLAlchemy URL of those two)."""

    name = "handoff"  # as make forget / purge-expired report it (weiquan/stores/retention.py)

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = sa.create_engine(url, connect_args={"timeout": 10}, future=True)
            sa.event.listen(self.engine, "connect", _configure_sqlite)
        elif parsed.get_backend_name() == "postgresql":
            self.engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, future=True)
        else:
            raise ValueError("the hand-off store needs a sqlite:// or postgresql:// URL")
        self._create_tables()

    def _create_tables(self) -> None:
        for attempt in (1, 2):  # two processes starting together may race on CREATE TABLE
            try:
                metadata.create_all(self.engine, checkfirst=True)
                break
            except (IntegrityError, OperationalError, ProgrammingError):
                if attempt == 2:
                    raise
        self._add_missing_columns()
        with self._tx() as tx:
            tx.execute(self._insert(meta).values(key=VERSION, value=0).on_conflict_do_nothing())

    def _add_missing_columns(self) -> None:
        """A queue table from before `safety_at`/`requeued_at` gets them (nullable: old rows read as never)."""
        for attempt in (1, 2):  # another process may add the same column at the same moment
            present = {column["name"] for column in sa.inspect(self.engine).get_columns(queue.name)}
            missing = [name for name in ADDED_COLUMNS if name not in present]
            if not missing:
                return
            try:
                with self._tx() as tx:
                    for name in missing:
                        kind = queue.c[name].type.compile(dialect=self.engine.dialect)
                        tx.execute(sa.text(f"ALTER TABLE {queue.name} ADD COLUMN {name} {kind}"))
            except (OperationalError, ProgrammingError):
                if attempt == 2:
                    raise

    def _insert(self, table: sa.Table) -> Any:
        """INSERT with ON CONFLICT (SQLite ≥ 3.24 and PostgreSQL both have it)."""
        return (sqlite_insert if self.engine.dialect.name == "sqlite" else postgresql_insert)(table)

    def _tx(self) -> Any:
        return self.engine.begin()

    @staticmethod
    def _bump(tx: Connection) -> None:
        tx.execute(meta.update().where(meta.c.key == VERSION).values(value=meta.c.value + 1))

    # ------------------------------------------------------------------ reads

    def get(self, sender_id: str) -> Handoff | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(queue).where(queue.c.sender_id == sender_id)).first()
        return _handoff(row) if row else None

    def handoffs(self, statuses: Collection[Status] | None = None) -> list[Handoff]:
        wanted = {status.value for status in (statuses or list(Status))}
        open_wanted = sorted(wanted - {Status.CLOSED.value})
        with self.engine.connect() as connection:
            open_rows = connection.execute(
                sa.select(queue).where(queue.c.status.in_(open_wanted)).order_by(queue.c.requested_at)
            ).all() if open_wanted else []
            closed_rows = connection.execute(
                sa.select(queue).where(queue.c.status == Status.CLOSED.value)
                .order_by(queue.c.updated_at.desc()).limit(MAX_CLOSED_LISTED)
            ).all() if Status.CLOSED.value in wanted else []
        handoffs = sorted((_handoff(row) for row in open_rows),
                          key=lambda h: (h.status is not Status.WAITING, h.safety_at is None, h.requested_at))
        return handoffs + [_handoff(row) for row in closed_rows]

    def left_messages(self, sender_id: str) -> list[LeftMessage]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(left.c.sender_id, left.c.text, left.c.sent_at)
                .where(left.c.sender_id == sender_id).order_by(left.c.sent_at)
            ).all()
        return [LeftMessage(sender_id=row.sender_id, text=row.text, sent_at=row.sent_at) for row in rows]

    def seen(self, key: str) -> float | None:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()

    def version(self) -> int:
        return int(self.seen(VERSION) or 0)

    # ------------------------------------------------------------------ writes

    def create(self, handoff: Handoff) -> Handoff:
        for _ in range(5):
            with self._tx() as tx:
                row = tx.execute(sa.select(queue).where(queue.c.sender_id == handoff.sender_id)).first()
                if row is not None and Status(row.status) in Status.open():
                    return _handoff(row)
                if row is None:
                    written = tx.execute(self._insert(queue).values(**_row(handoff)).on_conflict_do_nothing())
                else:  # reopen the conversation's closed record, unless another process reopened it meanwhile
                    written = tx.execute(queue.update().where(queue.c.sender_id == handoff.sender_id)
                                         .where(queue.c.status == Status.CLOSED.value).values(**_row(handoff)))
                if written.rowcount == 1:
                    self._bump(tx)
                    return handoff
        raise RuntimeError(f"could not store the hand-off of {handoff.sender_id!r}")

    def replace(self, handoff: Handoff, expected: Status) -> bool:
        with self._tx() as tx:
            written = tx.execute(queue.update().where(queue.c.sender_id == handoff.sender_id)
                                 .where(queue.c.status == expected.value).values(**_row(handoff)))
            if written.rowcount != 1:
                return False
            self._bump(tx)
            return True

    def note_activity(
        self, sender_id: str, last_user_message: str | None, last_user_at: float | None,
        summary: HandoffSummary | None,
    ) -> bool:
        values: dict[str, Any] = {"summary": _json(summary)}
        if last_user_at is not None:
            values |= {"last_user_message": last_user_message, "last_user_at": last_user_at}
        with self._tx() as tx:
            row = tx.execute(sa.select(queue.c.summary, queue.c.last_user_message, queue.c.last_user_at)
                             .where(queue.c.sender_id == sender_id)).first()
            if row is None:
                return False
            before = {"summary": row.summary, "last_user_message": row.last_user_message,
                      "last_user_at": row.last_user_at}
            if all(before[key] == value for key, value in values.items()):
                return False
            tx.execute(queue.update().where(queue.c.sender_id == sender_id).values(**values))
            self._bump(tx)
            return True

    def flag_safety(self, sender_id: str, now: float) -> bool:
        with self._tx() as tx:
            written = tx.execute(queue.update().where(queue.c.sender_id == sender_id)
                                 .where(queue.c.status.in_([status.value for status in Status.open()]))
                                 .where(queue.c.safety_at.is_(None)).values(safety_at=now, updated_at=now))
            if written.rowcount != 1:
                return False
            self._bump(tx)
            return True

    def add_left_message(self, sender_id: str, text: str, sent_at: float) -> bool:
        with self._tx() as tx:
            written = tx.execute(self._insert(left).values(sender_id=sender_id, text=text, sent_at=sent_at)
                                 .on_conflict_do_nothing())
            if written.rowcount != 1:
                return False
            self._bump(tx)
            return True

    def touch(self, key: str, now: float) -> None:
        with self._tx() as tx:
            statement = self._insert(meta).values(key=key, value=now)
            tx.execute(statement.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": now}))

    # ------------------------------------------------------------------ retention

    def forget(self, sender_id: str) -> int:
        with self._tx() as tx:
            deleted = tx.execute(queue.delete().where(queue.c.sender_id == sender_id)).rowcount
            deleted += tx.execute(left.delete().where(left.c.sender_id == sender_id)).rowcount
            if deleted:
                self._bump(tx)
        return deleted

    def purge_before(self, when: datetime) -> int:
        cutoff = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
        with self._tx() as tx:
            deleted = tx.execute(queue.delete().where(queue.c.status == Status.CLOSED.value)
                                 .where(queue.c.closed_at < cutoff)).rowcount
            deleted += tx.execute(left.delete().where(left.c.sent_at < cutoff)).rowcount
            if deleted:
                self._bump(tx)
        return deleted

    def close(self) -> None:
        self.engine.dispose()
