"""When the action server is down, slow or failing, the buyer hears a short apology within 3 s and can go on later.

Rasa 3.6's `RemoteAction` waits up to 5 minutes for the action server (`DEFAULT_REQUEST_TIMEOUT`, passed on every
call), and when the call fails it logs an exception and says nothing: the buyer is left without an answer. Rasa has no
setting for either, but every call goes through the action endpoint's `request()`, so the Rasa server's action endpoint
is replaced, once the agent is loaded, by `GuardedActionEndpoint`, which

- bounds each call to `timeout_s` (`ACTION_TIMEOUT_S`, default 1.5 s; or `timeout:` under `action_endpoint:`);
- answers a refused, timed-out or failed (HTTP 5xx) call as the action server would, with the response
  `utter_system_unavailable` (domain.yml, system section) and no events, so Rasa utters the apology and carries on;
- for a form's validation action, also sets this turn's slot candidates back to empty: nothing unchecked gets into
  the form, which asks its question again — once the action server is back, the answer is taken as usual;
- apologises once per turn: later calls in the same turn fail at once, silently.

A 400 from the action server is an action rejecting itself (`ActionExecutionRejection`): that goes to Rasa unchanged.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import aiohttp
from rasa.utils.endpoints import ClientResponseError, EndpointConfig

from weiquan.edge import logmask
from weiquan.services import default_services

logger = logging.getLogger(__name__)

APOLOGY_RESPONSE = "utter_system_unavailable"
DEFAULT_TIMEOUT_S = 1.5
TIMEOUT_ENV = "ACTION_TIMEOUT_S"
REQUESTED_SLOT = "requested_slot"


def action_timeout_s(configured: Any, env: Mapping[str, str]) -> float:
    """$ACTION_TIMEOUT_S, else the endpoint's `timeout`, else 1.5 s."""
    for value in (env.get(TIMEOUT_ENV), configured):
        if value is not None and value != "":
            timeout = float(value)
            if timeout <= 0:
                raise ValueError(f"the action timeout must be positive, not {value!r}")
            return timeout
    return DEFAULT_TIMEOUT_S


def _turn_key(body: dict[str, Any]) -> str:
    tracker = body.get("tracker") or {}
    latest = tracker.get("latest_message") or {}
    return f"{tracker.get('sender_id')}:{latest.get('message_id')}"


def _candidates_of_this_turn(body: dict[str, Any]) -> list[str]:
    """Slots set since the buyer's last message: what a form's validation action would have checked."""
    names: list[str] = []
    for event in reversed((body.get("tracker") or {}).get("events") or []):
        if event.get("event") == "user":
            break
        if event.get("event") == "slot" and event.get("name") != REQUESTED_SLOT and event.get("name") not in names:
            names.append(event["name"])
    return names


class GuardedActionEndpoint(EndpointConfig):
    """The configured action endpoint with a time limit and an apology instead of silence."""

    def __init__(self, wrapped: EndpointConfig, timeout_s: float | None = None, memory_s: float = 120.0) -> None:
        kwargs = dict(wrapped.kwargs)
        configured = kwargs.pop("timeout", None)
        super().__init__(wrapped.url, wrapped.params, wrapped.headers, wrapped.basic_auth, wrapped.token,
                         wrapped.token_name, wrapped.cafile, **kwargs)
        self.type = wrapped.type
        self.timeout_s = timeout_s if timeout_s is not None else action_timeout_s(configured, default_services().env)
        self._memory_s = memory_s
        self._failed_turns: OrderedDict[str, float] = OrderedDict()

    async def request(
        self,
        method: str = "post",
        subpath: str | None = None,
        content_type: str | None = "application/json",
        compress: bool = False,
        **kwargs: Any,
    ) -> Any:
        body = kwargs.get("json")
        if not isinstance(body, dict) or "next_action" not in body:
            return await super().request(method, subpath, content_type, compress, **kwargs)
        action, turn = str(body["next_action"]), _turn_key(body)
        if self._failed_recently(turn):
            return self._stand_in(body, apologise=False)
        kwargs["timeout"] = aiohttp.ClientTimeout(total=self.timeout_s)
        started = time.monotonic()
        try:
            return await super().request(method, subpath, content_type, compress, **kwargs)
        except ClientResponseError as error:
            if error.status < 500:
                raise
            reason = f"it answered HTTP {error.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            reason = f"no answer ({type(error).__name__})" if not isinstance(error, aiohttp.ClientConnectionError) \
                else f"cannot connect ({type(error).__name__})"
        logger.error(
            "action_server.unavailable: %s at %s for %s after %.1f s (limit %.1f s); the buyer gets %s.",
            reason, self.url, action, time.monotonic() - started, self.timeout_s, APOLOGY_RESPONSE,
        )
        self._remember_failure(turn)
        return self._stand_in(body, apologise=True)

    def _stand_in(self, body: dict[str, Any], apologise: bool) -> dict[str, Any]:
        """What the action server would answer if it could only apologise."""
        events: list[dict[str, Any]] = []
        if str(body.get("next_action", "")).startswith("validate_"):
            events = [{"event": "slot", "name": name, "value": None} for name in _candidates_of_this_turn(body)]
        return {"events": events, "responses": [{"response": APOLOGY_RESPONSE}] if apologise else []}

    def _failed_recently(self, turn: str) -> bool:
        now = time.monotonic()
        while self._failed_turns and next(iter(self._failed_turns.values())) < now - self._memory_s:
            self._failed_turns.popitem(last=False)
        return turn in self._failed_turns

    def _remember_failure(self, turn: str) -> None:
        self._failed_turns[turn] = time.monotonic()
        self._failed_turns.move_to_end(turn)
        while len(self._failed_turns) > 10_000:
            self._failed_turns.popitem(last=False)


def guard_action_endpoint(app: Any) -> None:
    """Puts the guard in front of the loaded agent's action endpoint (idempotent; a no-op without an agent)."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    endpoint = getattr(agent, "action_endpoint", None)
    if agent is None or endpoint is None or isinstance(endpoint, GuardedActionEndpoint):
        return
    guarded = GuardedActionEndpoint(endpoint)
    agent.action_endpoint = guarded
    if getattr(agent, "processor", None) is not None:
        agent.processor.action_endpoint = guarded
    logger.info("action_server.guarded: calls to %s time out after %.1f s with an apology", guarded.url,
                guarded.timeout_s)


async def on_server_start(app: Any, _loop: Any = None) -> None:
    """Sanic `after_server_start` listener for the channels' blueprints (the agent is loaded by then): the guard, and
    log masking once more in case logging was configured anew since our package was imported."""
    logmask.install()
    guard_action_endpoint(app)
