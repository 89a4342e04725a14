"""The few calls to Rasa's HTTP API the console makes. Rasa runs with `--enable-api --auth-token $RASA_API_TOKEN`;
the console reaches it on loopback (or a private network) and never exposes it.

- read a conversation: `GET /conversations/{id}/tracker`;
- pause, resume, and send an operator's message: `POST /conversations/{id}/tracker/events` with
  `output_channel=<the user's channel>&execute_side_effects=true`, so a `bot` event is stored *and* delivered through
  that channel's output (our socket.io channel emits to the user's room, across replicas through Redis);
- hand the conversation back: `POST /conversations/{id}/execute` with `action_handoff_resume` (the one action the
  bot runs then: it restores what it knew and re-asks its pending question; no policy runs);
- the texts of the hand-off's status lines: `GET /domain` (the running model's responses).

`FakeRasa` is an offline stand-in for tests: it keeps trackers in memory and applies pause/resume/bot events; a
buyer in `reachable` acknowledges operator messages as a live widget socket or WeChat's API would (the outbox).
"""
from __future__ import annotations

import asyncio
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from weiquan.core.clock import Clock
from weiquan.core.contracts import DELIVERY_ID
from weiquan.stores.outbox import OperatorOutbox


class RasaError(Exception):
    """Rasa could not be reached or refused a call."""


class RasaApi(Protocol):
    async def tracker(self, sender_id: str) -> dict[str, Any]: ...

    async def append(self, sender_id: str, events: list[dict[str, Any]], output_channel: str | None) -> None: ...

    async def execute(self, sender_id: str, action: str, output_channel: str | None) -> None: ...

    async def response(self, name: str) -> dict[str, Any]:
        """The first variation of a domain response: text, buttons, custom."""

    async def close(self) -> None: ...


class HttpRasaApi:
    def __init__(self, base_url: str, token: str, timeout_s: float = 30.0) -> None:
        if not token:
            raise ValueError("RASA_API_TOKEN is empty: start Rasa with --enable-api --auth-token and give it here")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._responses: dict[str, Any] | None = None

    async def _call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        query = {"token": self._token, **params}
        try:
            async with self._session.request(method, f"{self.base_url}{path}", params=query, json=body,
                                             headers={"Accept": "application/json"}) as reply:
                if reply.status >= 400:
                    raise RasaError(f"{method} {path.split('?')[0]}: HTTP {reply.status}")
                return await reply.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise RasaError(f"{method}: {type(error).__name__}") from error

    @staticmethod
    def _conversation(sender_id: str) -> str:
        return f"/conversations/{quote(sender_id, safe='')}"

    async def tracker(self, sender_id: str) -> dict[str, Any]:
        return await self._call("GET", f"{self._conversation(sender_id)}/tracker")

    async def append(self, sender_id: str, events: list[dict[str, Any]], output_channel: str | None) -> None:
        params = {"execute_side_effects": "true", "output_channel": output_channel} if output_channel else {}
        await self._call("POST", f"{self._conversation(sender_id)}/tracker/events", events, **params)

    async def execute(self, sender_id: str, action: str, output_channel: str | None) -> None:
        params = {"output_channel": output_channel} if output_channel else {}
        await self._call("POST", f"{self._conversation(sender_id)}/execute", {"name": action}, **params)

    async def response(self, name: str) -> dict[str, Any]:
        if self._responses is None:
            domain = await self._call("GET", "/domain")
            self._responses = domain.get("responses") or {}
        variations = self._responses.get(name) or []
        if not variations:
            raise RasaError(f"the model has no response {name}")
        return dict(variations[0])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class FakeRasa:
    """Trackers in memory; `pause`/`resume`/`bot` events applied as Rasa would; `delivered` is what users saw."""

    def __init__(self, clock: Clock, responses: dict[str, dict[str, Any]] | None = None,
                 outbox: OperatorOutbox | None = None) -> None:
        self.clock = clock
        self.trackers: dict[str, dict[str, Any]] = {}
        self.delivered: list[tuple[str, str | None, dict[str, Any]]] = []
        self.outbox = outbox
        self.reachable: set[str] = set()  # buyers whose channel acknowledges what it is given
        self.executed: list[tuple[str, str, str | None]] = []
        self.responses = responses or {}
        self.down = False

    def conversation(self, sender_id: str, channel: str = "socketio") -> dict[str, Any]:
        return self.trackers.setdefault(
            sender_id, {"sender_id": sender_id, "slots": {}, "events": [], "paused": False,
                        "latest_input_channel": channel})

    def user_says(self, sender_id: str, text: str, at: float | None = None) -> None:
        self.conversation(sender_id)["events"].append(
            {"event": "user", "text": text, "timestamp": self.clock.now() if at is None else at})

    def _check(self) -> None:
        if self.down:
            raise RasaError("connection refused")

    async def tracker(self, sender_id: str) -> dict[str, Any]:
        self._check()
        return self.conversation(sender_id)

    async def append(self, sender_id: str, events: list[dict[str, Any]], output_channel: str | None) -> None:
        self._check()
        tracker = self.conversation(sender_id)
        for event in events:
            tracker["events"].append({"timestamp": self.clock.now(), **event})
            if event["event"] == "pause":
                tracker["paused"] = True
            elif event["event"] == "resume":
                tracker["paused"] = False
            elif event["event"] == "bot":
                self.delivered.append((sender_id, output_channel, event))
                delivery_id = (event.get("metadata") or {}).get(DELIVERY_ID)
                if self.outbox is not None and delivery_id and sender_id in self.reachable:
                    self.outbox.mark_delivered(delivery_id, self.clock.now())

    async def execute(self, sender_id: str, action: str, output_channel: str | None) -> None:
        self._check()
        self.executed.append((sender_id, action, output_channel))

    async def response(self, name: str) -> dict[str, Any]:
        self._check()
        return dict(self.responses.get(name) or {"text": name})

    async def close(self) -> None:
        return None
