"""A Redis lock store whose ticket operations are atomic across Rasa servers.

Rasa 3.6's open-source `RedisLockStore` changes a conversation's ticket lock as get → modify → set. Two Rasa replicas
that receive a message of the same conversation at the same moment can both read "no lock", both issue ticket 0 and
both run the turn at once (the atomic lock store is Rasa Pro only). The proxy routes each conversation to one replica,
so this rarely happens; it still happens when a client or a retry reaches another replica, and during a fail-over.

`AtomicRedisLockStore` keeps Rasa's lock format and algorithm and wraps every read-modify-write in a Redis optimistic
transaction (WATCH the key, MULTI/EXEC the write, retry when another server changed the key in between). Use it in
endpoints.production.yml:

    lock_store:
      type: weiquan.stores.lockstore.AtomicRedisLockStore
      url: …

When Redis is unreachable the error is logged with what it means for the user and raised as Rasa's `LockError`, so
the channel answers with an error instead of running a turn unlocked.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore

logger = logging.getLogger(__name__)
T = TypeVar("T")


class AtomicRedisLockStore(RedisLockStore):
    """RedisLockStore with WATCH/MULTI transactions around every change of a lock."""

    def __init__(self, endpoint_config: Any = None, **kwargs: Any) -> None:
        # Rasa builds a lock store named by module path with `endpoint_config=` (url, port, db, key_prefix, …).
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs}
        for name in ("port", "db"):
            if name in kwargs:
                kwargs[name] = int(kwargs[name])
        super().__init__(**kwargs)

    def _key(self, conversation_id: str) -> str:
        return self.key_prefix + conversation_id

    def _atomically(self, conversation_id: str, change: Callable[[TicketLock | None], tuple[TicketLock | None, T]]
                    ) -> T:
        """Run change(lock) → (new lock or None to delete, result) as one transaction on the lock's key."""
        key = self._key(conversation_id)
        result: list[T] = []

        def transaction(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(key)
            lock = TicketLock.from_dict(json.loads(raw)) if raw else None
            new, value = change(lock)
            pipe.multi()
            if new is None:
                pipe.delete(key)
            else:
                pipe.set(key, new.dumps())
            result[:] = [value]

        try:
            self.red.transaction(transaction, key)
        except redis.exceptions.RedisError as error:
            logger.error("lock_store.unavailable: Redis did not answer (%s); conversation %s cannot be locked, the "
                         "message is refused instead of being handled twice", error, conversation_id)
            raise LockError(f"Redis lock store unavailable: {error}") from error
        return result[0]

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def change(lock: TicketLock | None) -> tuple[TicketLock, int]:
            lock = lock or self.create_lock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        return self._atomically(conversation_id, change)

    def update_lock(self, conversation_id: str) -> None:
        def change(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is not None:
                lock.remove_expired_tickets()
            return lock, None

        self._atomically(conversation_id, change)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def change(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._atomically(conversation_id, change)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finish this ticket and delete the lock if nobody waits, in one transaction."""

        def change(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            return (lock if lock.is_someone_waiting() else None), None

        self._atomically(conversation_id, change)

    def get_lock(self, conversation_id: str) -> TicketLock | None:
        try:
            return super().get_lock(conversation_id)
        except redis.exceptions.RedisError as error:
            logger.error("lock_store.unavailable: Redis did not answer (%s) while waiting for conversation %s",
                         error, conversation_id)
            raise LockError(f"Redis lock store unavailable: {error}") from error
