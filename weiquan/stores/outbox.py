"""Operator messages until the buyer has seen them: what the console can honestly say about delivery.

An operator's message is written here (masked) before the console hands it to Rasa. It is marked delivered only when
the buyer's side acknowledged it:

- the widget: the browser's socket.io acknowledgement of that `bot_uttered` (weiquan/edge/channels/socketio.py);
- WeChat: the customer-service message API accepted it (weiquan/edge/channels/wechat.py);
- REST: a reply to the buyer's own request carried it (weiquan/edge/channels/rest.py).

Until then it is *stored*, and the buyer's channel delivers it when the buyer returns: the widget when its socket asks
for its session again, WeChat and REST with the answer to the buyer's next message. The console reads the status right
after Rasa has passed the message on (weiquan/handoff/service.py `send`).

It lives in the hand-off store's database (HANDOFF_STORE_URL, PostgreSQL from DB_* in production, else SQLite), in
the table `handoff_outbox`, and is registered for `make forget` / `make purge-expired` (weiquan/stores/retention.py).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from weiquan.core.contracts import Delivery, OperatorMessage
from weiquan.core.privacy import mask

logger = logging.getLogger(__name__)

metadata = sa.MetaData()
outbox = sa.Table(
    "handoff_outbox",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),  # an OperatorMessage as JSON, masked
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float),
)


@dataclass(frozen=True)
class Pending:
    id: str
    sender_id: str
    channel: str
    message: OperatorMessage
    created_at: float


def _configure_sqlite(dbapi_connection: Any, _: Any) -> None:
    # The Rasa server and the console write to the same file: WAL lets readers go on while one writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class OperatorOutbox:
    """The outbox on SQLite or PostgreSQL (any SQLAlchemy URL of those two)."""

    name = "operator_outbox"  # as make forget / purge-expired report it

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = sa.create_engine(url, connect_args={"timeout": 10}, future=True)
            sa.event.listen(self.engine, "connect", _configure_sqlite)
        elif parsed.get_backend_name() == "postgresql":
            # A database that does not answer costs a channel at most this long (pending_for then says "none").
            self.engine = sa.create_engine(url, pool_pre_ping=True, pool_size=3, max_overflow=3, future=True,
                                           connect_args={"connect_timeout": 3})
        else:
            raise ValueError("the operator outbox needs a sqlite:// or postgresql:// URL")
        for attempt in (1, 2):  # two processes starting together may race on CREATE TABLE
            try:
                metadata.create_all(self.engine, checkfirst=True)
                break
            except (IntegrityError, OperationalError, ProgrammingError):
                if attempt == 2:
                    raise

    def add(self, message_id: str, sender_id: str, channel: str, message: OperatorMessage, now: float) -> None:
        kept: OperatorMessage = {**message, "text": mask(message["text"])}
        with self.engine.begin() as tx:
            tx.execute(outbox.insert().values(id=message_id, sender_id=sender_id, channel=channel,
                                              message=json.dumps(kept, ensure_ascii=False), created_at=now))

    def mark_delivered(self, message_id: str, now: float) -> bool:
        """True when this call marked it (it was stored until now)."""
        with self.engine.begin() as tx:
            done = tx.execute(outbox.update().where(outbox.c.id == message_id)
                              .where(outbox.c.delivered_at.is_(None)).values(delivered_at=now))
        return done.rowcount == 1

    def status(self, message_id: str) -> Delivery | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(outbox.c.delivered_at).where(outbox.c.id == message_id)).first()
        if row is None:
            return None
        return Delivery.STORED if row.delivered_at is None else Delivery.DELIVERED

    def pending(self, sender_id: str) -> list[Pending]:
        """What the buyer has not seen yet, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(outbox).where(outbox.c.sender_id == sender_id).where(outbox.c.delivered_at.is_(None))
                .order_by(outbox.c.created_at, outbox.c.id)
            ).all()
        return [Pending(row.id, row.sender_id, row.channel, json.loads(row.message), row.created_at) for row in rows]

    def discard(self, message_id: str) -> None:
        """A message Rasa never took (it could not be reached): nothing to deliver later."""
        with self.engine.begin() as tx:
            tx.execute(outbox.delete().where(outbox.c.id == message_id))

    # ------------------------------------------------------------------ retention

    def forget(self, sender_id: str) -> int:
        with self.engine.begin() as tx:
            return tx.execute(outbox.delete().where(outbox.c.sender_id == sender_id)).rowcount

    def purge_before(self, when: datetime) -> int:
        cutoff = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
        with self.engine.begin() as tx:
            return tx.execute(outbox.delete().where(outbox.c.created_at < cutoff)).rowcount

    def close(self) -> None:
        self.engine.dispose()


# ---------------------------------------------------------------------- what the channels call

OutboxSource = Callable[[], "OperatorOutbox | None"]  # opened on first use (the database may come up later)


def pending_for(source: OutboxSource | None, sender_id: str, channel: str) -> list[Pending]:
    """Operator messages a conversation of `channel` has not been given yet; none when the outbox cannot be read (a
    store that is down must not stop the conversation)."""
    if source is None:
        return []
    try:
        outbox = source()
        return [m for m in outbox.pending(sender_id) if m.channel == channel] if outbox is not None else []
    except Exception:  # noqa: BLE001
        logger.exception("outbox.unavailable")
        return []


def settle(source: OutboxSource | None, delivery_ids: Iterable[str], now: float) -> None:
    """Marks operator messages delivered; a store that is down costs the console's status, never the message."""
    ids = list(delivery_ids)
    if source is None or not ids:
        return
    try:
        outbox = source()
        if outbox is None:
            return
        for delivery_id in ids:
            outbox.mark_delivered(delivery_id, now)
    except Exception:  # noqa: BLE001
        logger.exception("outbox.not_recorded")
