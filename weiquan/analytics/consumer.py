"""The analytics consumer (`python -m weiquan.analytics.consumer`): reads the masked events the Rasa servers publish to
RabbitMQ (MaskingRabbitBroker) and writes them into the analytics store (PostgreSQL in `make run-production`).

- Each message is acknowledged **after** its batch is written: while the database is away nothing is acknowledged,
  the batch is tried again every `retry_after_s` (`analytics.unavailable` in the log, at most once a minute), and a
  consumer that dies meanwhile leaves the messages to RabbitMQ, which hands them to the next one.
- Events are masked once more before they are written (the same masking; a no-op on what the broker masked), so a
  publisher that forgot to mask cannot put a personal number into the store.
- A message that is not a JSON object is rejected (not requeued) and logged.
- A loss report (weiquan/analytics/rabbit.py) goes into `analytics_losses`: the page shows it.
- RabbitMQ that goes away: the connection is re-opened (aio-pika's robust connection); what was not acknowledged is
  delivered again.

It listens on `--port` (loopback unless `--host`) for `GET /healthz`: its counts and whether it is connected, for
the supervisor and Kubernetes' probes.

Settings: the endpoints file (`--endpoints`, `$ENDPOINTS`, default endpoints.production.yml) gives the queue and where
the analytics store is (`event_broker`; weiquan/analytics/store.py, `url_from_endpoints`); `RABBITMQ_URL` the broker.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aio_pika
import yaml
from aiohttp import web

from weiquan.analytics.broker import ERROR_EVERY_S, masked
from weiquan.analytics.rabbit import LOSS, settings
from weiquan.analytics.store import AnalyticsStore, url_from_endpoints

logger = logging.getLogger(__name__)


class Consumer:
    def __init__(self, url: str, queue: str, store: AnalyticsStore, batch: int = 200, wait_s: float = 0.2,
                 retry_after_s: float = 2.0) -> None:
        self.url = url
        self.queue = queue
        self.store = store
        self.batch = batch
        self.wait_s = wait_s
        self.retry_after_s = retry_after_s
        self.written = 0
        self.losses = 0  # lost events reported by the brokers and written into the store
        self.rejected = 0
        self.retries = 0
        self.connected = False
        self._last_error_log = 0.0

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected, "queue": self.queue, "written": self.written,
                "losses": self.losses, "rejected": self.rejected, "retries": self.retries}

    async def run(self, stop: asyncio.Event) -> None:
        connection = await aio_pika.connect_robust(self.url, reconnect_interval=self.retry_after_s)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.batch)
            queue = await channel.declare_queue(self.queue, durable=True)
            inbox: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
            tag = await queue.consume(inbox.put)
            self.connected = True
            connection.reconnect_callbacks.add(lambda *_: setattr(self, "connected", True))
            connection.close_callbacks.add(lambda *_: setattr(self, "connected", False))
            while not stop.is_set():
                messages = await self._collect(inbox, stop)
                if messages:
                    await self._handle(messages, stop)
            await queue.cancel(tag)
        finally:
            self.connected = False
            await connection.close()

    async def _collect(self, inbox: asyncio.Queue, stop: asyncio.Event) -> list[Any]:
        try:
            first = await asyncio.wait_for(inbox.get(), 0.5)
        except asyncio.TimeoutError:
            return []
        messages = [first]
        deadline = time.monotonic() + self.wait_s
        while len(messages) < self.batch and not stop.is_set():
            try:
                messages.append(await asyncio.wait_for(inbox.get(), max(0.0, deadline - time.monotonic())))
            except asyncio.TimeoutError:
                break
        return messages

    async def _handle(self, messages: list[Any], stop: asyncio.Event) -> None:
        events: list[dict[str, Any]] = []
        losses: list[dict[str, Any]] = []
        keep = []
        for message in messages:
            row = parse(message.body)
            if row is None:
                self.rejected += 1
                logger.error("analytics.rejected: a message that is not an event (%d bytes)", len(message.body))
                await _settle(message.reject(requeue=False))
                continue
            (losses if row.get("event") == LOSS else events).append(row)
            keep.append(message)
        while True:
            try:
                await asyncio.to_thread(self._write, events, losses)
                break
            except Exception as error:  # noqa: BLE001 - the database is away: nothing is acknowledged, try again
                self.retries += 1
                self._unavailable(error, len(keep))
                if stop.is_set():
                    return  # not acknowledged: RabbitMQ hands them to the next consumer
                await asyncio.sleep(self.retry_after_s)
        for message in keep:
            await _settle(message.ack())

    def _write(self, events: list[dict[str, Any]], losses: list[dict[str, Any]]) -> None:
        self.store.add_events([masked(event) for event in events])
        for loss in losses:
            self.store.add_loss(int(loss.get("count") or 0), float(loss.get("timestamp") or 0.0))
        self.written += len(events)
        self.losses += sum(int(loss.get("count") or 0) for loss in losses)

    def _unavailable(self, error: Exception, count: int) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_EVERY_S:
            self._last_error_log = now
            reason = str(error).splitlines()[0] if str(error) else ""
            logger.error("analytics.unavailable: cannot write into the analytics store (%s: %s); %d messages wait "
                         "unacknowledged", type(error).__name__, reason, count)


def parse(body: bytes) -> dict[str, Any] | None:
    try:
        row = json.loads(body)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("event"), str) else None


async def _settle(acknowledgement: Any) -> None:
    try:
        await acknowledgement
    except Exception as error:  # noqa: BLE001 - the channel closed: RabbitMQ delivers the message again
        logger.warning("analytics.ack: %s (the message will be delivered again)", error)


async def serve(consumer: Consumer, host: str, port: int) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response(consumer.status())

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        while not stop.is_set():
            try:
                await consumer.run(stop)
            except Exception as error:  # noqa: BLE001 - RabbitMQ not there yet: wait and connect again
                consumer.connected = False
                logger.error("analytics.rabbitmq: %s: %s; trying again in %.0f s", type(error).__name__, error,
                             consumer.retry_after_s)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), consumer.retry_after_s)
    finally:
        await runner.cleanup()


def build(endpoints: Mapping[str, Any], env: Mapping[str, str]) -> Consumer:
    url = url_from_endpoints(endpoints, env)
    if url is None:
        raise SystemExit("the endpoints file has no analytics event_broker: nothing to consume")
    rabbit_url, queue = settings(endpoints.get("event_broker") or {}, env)
    return Consumer(rabbit_url, queue, AnalyticsStore(url))


def main(argv: list[str] | None = None) -> int:
    from weiquan.services import default_services

    env = default_services().env
    parser = argparse.ArgumentParser(description="RabbitMQ → the analytics store (docs/analytics.md)")
    parser.add_argument("--endpoints", default=env.get("ENDPOINTS") or "endpoints.production.yml")
    parser.add_argument("--host", default=env.get("CONSUMER_HOST", "127.0.0.1"), help="where /healthz listens")
    parser.add_argument("--port", type=int, default=8095)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s - %(message)s")
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    endpoints = yaml.safe_load(Path(args.endpoints).read_text(encoding="utf-8")) or {}
    consumer = build(endpoints, env)
    logger.info("analytics consumer: queue %s → %s", consumer.queue, consumer.store.engine.url.render_as_string())
    asyncio.run(serve(consumer, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
