"""Closed-loop load over Rasa's REST channel with aiohttp (locust needs a newer python-socketio than the widget allows).

Each virtual user plays one conversation after another, each with a fresh sender, and sends the next message only
when the previous answer arrived (closed loop). Every turn's latency and outcome is kept.
"""
from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp


@dataclass
class LevelResult:
    concurrency: int
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    conversations: int = 0

    @property
    def turns(self) -> int:
        return len(self.latencies_ms)

    @property
    def turns_per_s(self) -> float:
        return self.turns / self.duration_s if self.duration_s else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
        return ordered[index]

    def as_dict(self) -> dict[str, float | int | dict[str, int]]:
        return {"c": self.concurrency, "turns": self.turns, "turns_per_s": round(self.turns_per_s, 2),
                "p50_ms": round(self.percentile(50), 1), "p95_ms": round(self.percentile(95), 1),
                "p99_ms": round(self.percentile(99), 1), "errors": self.errors, "error_kinds": self.error_kinds,
                "conversations": self.conversations, "duration_s": round(self.duration_s, 1)}


async def _turn(session: aiohttp.ClientSession, url: str, sender: str, text: str) -> tuple[float, str | None]:
    start = time.perf_counter()
    try:
        async with session.post(url, json={"sender": sender, "message": text}) as response:
            body = await response.read()
            elapsed = (time.perf_counter() - start) * 1000
            if response.status != 200:
                return elapsed, f"http {response.status}"
            replies = json.loads(body)
            if not isinstance(replies, list) or not replies:
                return elapsed, "empty reply"
            return elapsed, None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
        return (time.perf_counter() - start) * 1000, type(error).__name__


async def run_level(url: str, conversation: list[str], concurrency: int, duration_s: float, prefix: str,
                    warmup_conversations: int = 1, token: str = "") -> LevelResult:
    """`concurrency` users for `duration_s` seconds; turns that END inside the window count. `token`: the REST
    token, sent as the site's backend sends it (Authorization: Bearer …)."""
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers=headers) as session:
        for _ in range(warmup_conversations):
            sender = f"{prefix}-warm-{uuid.uuid4().hex[:8]}"
            for text in conversation:
                await _turn(session, url, sender, text)
        result = LevelResult(concurrency, duration_s)
        started = time.perf_counter()
        deadline = started + duration_s

        async def user(number: int) -> None:
            while time.perf_counter() < deadline:
                sender = f"{prefix}-c{concurrency}-u{number}-{uuid.uuid4().hex[:8]}"
                for text in conversation:
                    elapsed, error = await _turn(session, url, sender, text)
                    if time.perf_counter() > deadline:
                        return
                    if error:
                        result.errors += 1
                        result.error_kinds[error] = result.error_kinds.get(error, 0) + 1
                    else:
                        result.latencies_ms.append(elapsed)
                result.conversations += 1

        await asyncio.gather(*(user(n) for n in range(concurrency)))
        result.duration_s = min(time.perf_counter(), deadline) - started
        return result


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (from /proc)."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return round(total, 1)
