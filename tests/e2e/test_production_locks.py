"""weiquan.stores.lockstore.AtomicRedisLockStore against the real Redis: tickets stay unique when several Rasa servers
take them for one conversation at the same moment (Rasa's own RedisLockStore hands out duplicates then), and a Redis
outage is an error that names itself, not a turn run without a lock.
"""
from __future__ import annotations

import concurrent.futures
import logging
import uuid

import pytest
from rasa.core.lock_store import LockError, RedisLockStore

from weiquan.stores.lockstore import AtomicRedisLockStore

pytestmark = pytest.mark.e2e
REDIS_DB = 10


def hammer(stores: list[RedisLockStore], conversation: str, per_store: int) -> list[int]:
    def take(store: RedisLockStore) -> list[int]:
        return [store.issue_ticket(conversation, 60) for _ in range(per_store)]

    with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
        return [ticket for tickets in pool.map(take, stores) for ticket in tickets]


def test_tickets_are_unique_across_servers() -> None:
    stores = [AtomicRedisLockStore(host="127.0.0.1", port=6379, db=REDIS_DB, key_prefix="locktest") for _ in range(6)]
    conversation = f"race-{uuid.uuid4().hex[:8]}"
    try:
        tickets = hammer(stores, conversation, 40)
        assert len(tickets) == 240
        assert len(set(tickets)) == 240, "two servers got the same ticket"
        lock = stores[0].get_lock(conversation)
        assert lock is not None and len(lock.tickets) == 240
        for ticket in tickets:
            stores[ticket % 6].cleanup(conversation, ticket)
        assert stores[0].get_lock(conversation) is None  # the last cleanup removed the lock
    finally:
        stores[0].delete_lock(conversation)


def test_built_from_the_endpoint_config_like_rasa_does() -> None:
    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import EndpointConfig

    config = EndpointConfig(url="127.0.0.1", type="weiquan.stores.lockstore.AtomicRedisLockStore", port="6379",
                            db=str(REDIS_DB), key_prefix="weiquan")
    store = LockStore.create(config)
    assert isinstance(store, AtomicRedisLockStore)
    assert store.key_prefix.startswith("weiquan:")


def test_redis_unreachable_is_a_named_error(caplog: pytest.LogCaptureFixture) -> None:
    store = AtomicRedisLockStore(host="127.0.0.1", port=1, db=REDIS_DB, socket_timeout=1)  # nothing listens on :1
    with caplog.at_level(logging.ERROR), pytest.raises(LockError):
        store.issue_ticket("nobody", 60)
    assert "lock_store.unavailable" in caplog.text
