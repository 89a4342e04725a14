"""RabbitMQ between the Rasa servers and the analytics store (`make run-production`, deploy/): the settings, the
publisher the broker's writer thread uses, and the message format the consumer reads.

- **Settings**: `RABBITMQ_URL` (`amqp://user:password@host:5672/vhost`; a secret, from the environment only, never
  in a file) and the queue, `queue` in the `event_broker` section (`RABBITMQ_QUEUE` overrides it).
- **Messages**: one masked event per message, as JSON, persistent, on a durable queue. A loss report is a message of
  its own, `{"event": "analytics_lost", "count": n, "timestamp": t}`: the consumer writes it into `analytics_losses`.
- **Publishing** is done by the broker's writer thread only (weiquan/analytics/broker.py, MaskingRabbitBroker), on an
  event loop of that thread, with publisher confirms: a batch counts as delivered once RabbitMQ has confirmed every
  message of it. Any failure (refused, closed, no confirm within `timeout_s`) drops the connection and raises; the
  broker keeps the batch and tries again.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import aio_pika

ENV_URL = "RABBITMQ_URL"
ENV_QUEUE = "RABBITMQ_QUEUE"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"  # RabbitMQ's own default account, which answers on loopback only
DEFAULT_QUEUE = "weiquan_analytics"
LOSS = "analytics_lost"


def settings(section: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, str]:
    """(RabbitMQ URL, queue name) from the environment and the endpoints file's `event_broker` section."""
    return (env.get(ENV_URL) or DEFAULT_URL,
            env.get(ENV_QUEUE) or str(section.get("queue") or DEFAULT_QUEUE))


def loss_message(count: int, at: float) -> dict[str, Any]:
    return {"event": LOSS, "count": int(count), "timestamp": float(at)}


class RabbitPublisher:
    """What MaskingRabbitBroker writes into: `add_events` / `add_loss` publish and raise while RabbitMQ is away."""

    def __init__(self, url: str, queue: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.queue = queue
        self.timeout_s = timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: Any = None
        self._channel: Any = None

    def add_events(self, rows: Iterable[Mapping[str, Any]]) -> int:
        bodies = [json.dumps(dict(row), ensure_ascii=False).encode("utf-8") for row in rows]
        self._run(self._publish(bodies))
        return len(bodies)

    def add_loss(self, count: int, at: float) -> None:
        self._run(self._publish([json.dumps(loss_message(count, at)).encode("utf-8")]))

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_running():
            self._loop.run_until_complete(self._drop())
            self._loop.close()
            self._loop = None

    # ------------------------------------------------------------------ on the writer thread's own loop

    def _run(self, coroutine: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coroutine)

    async def _publish(self, bodies: list[bytes]) -> None:
        try:
            await asyncio.wait_for(self._publish_all(bodies), self.timeout_s)
        except BaseException:
            await self._drop()
            raise

    async def _publish_all(self, bodies: list[bytes]) -> None:
        if self._connection is None or self._connection.is_closed:
            self._connection = await aio_pika.connect(self.url, timeout=self.timeout_s)
            self._channel = await self._connection.channel(publisher_confirms=True)
            await self._channel.declare_queue(self.queue, durable=True)
        exchange = self._channel.default_exchange
        await asyncio.gather(*(
            exchange.publish(aio_pika.Message(body, content_type="application/json",
                                              delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                             routing_key=self.queue)
            for body in bodies))

    async def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):  # a connection that is going away anyway
                await asyncio.wait_for(connection.close(), 2)
