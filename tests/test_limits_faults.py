"""Rasa's own RemoteAction, with the guarded action endpoint, against a fake action server that is down, slow, broken
or fine: the buyer gets domain.yml's apology in time, and a form's unchecked values stay out.
The same against the real servers is tests/e2e/test_faults.py."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
import pytest_asyncio
from aiohttp import web
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from weiquan.edge.faults import APOLOGY_RESPONSE, GuardedActionEndpoint, guard_action_endpoint
from weiquan.ops.harness import ROOT, free_port

DOMAIN = Domain.load(str(ROOT / "domain.yml"))
APOLOGY = DOMAIN.responses[APOLOGY_RESPONSE][0]["text"]


class FakeActionServer:
    def __init__(self) -> None:
        self.mode = "ok"
        self.calls: list[str] = []
        self.release = asyncio.Event()

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body["next_action"])
        if self.mode == "slow":
            await self.release.wait()
        if self.mode == "broken":
            return web.Response(status=500, text="Traceback …")
        if self.mode == "reject":
            return web.json_response({"action_name": body["next_action"], "error": "no"}, status=400)
        return web.json_response({"events": [], "responses": [{"text": "动作服务器的回答"}]})


@pytest_asyncio.fixture
async def action_server() -> AsyncIterator[tuple[FakeActionServer, str]]:
    fake = FakeActionServer()
    app = web.Application()
    app.router.add_post("/webhook", fake.webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield fake, f"http://127.0.0.1:{port}/webhook"
    fake.release.set()
    await asyncio.sleep(0.1)
    await runner.cleanup()


def tracker_in_form(sender: str = "buyer", text: str = "淘宝") -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    for event in (
        ActionExecuted("action_listen"),
        UserUttered(text, {"name": "inform", "confidence": 1.0}, message_id=f"m-{time.monotonic_ns()}"),
        SlotSet("platform", "taobao"),
        SlotSet("requested_slot", "platform"),
    ):
        tracker.update(event)
    return tracker


async def run(action: str, endpoint: EndpointConfig, tracker: DialogueStateTracker) -> tuple[list, float]:
    started = time.monotonic()
    events = await RemoteAction(action, endpoint).run(
        CollectingOutputChannel(), TemplatedNaturalLanguageGenerator(DOMAIN.responses), tracker, DOMAIN
    )
    return events, time.monotonic() - started


def said(events: list) -> list[str]:
    return [event.text for event in events if isinstance(event, BotUttered)]


async def test_a_working_action_server_is_used_as_before(action_server) -> None:
    fake, url = action_server
    events, _ = await run("action_assess_complaint", GuardedActionEndpoint(EndpointConfig(url)), tracker_in_form())
    assert said(events) == ["动作服务器的回答"]


async def test_a_server_that_is_down_gets_the_apology_at_once() -> None:
    endpoint = GuardedActionEndpoint(EndpointConfig(f"http://127.0.0.1:{free_port()}/webhook"), timeout_s=1.5)
    events, elapsed = await run("action_assess_complaint", endpoint, tracker_in_form())
    assert said(events) == [APOLOGY] and elapsed < 3.0  # not the 300 s Rasa would wait


async def test_a_slow_server_gets_the_apology_within_the_limit(action_server) -> None:
    fake, url = action_server
    fake.mode = "slow"
    endpoint = GuardedActionEndpoint(EndpointConfig(url), 0.5)
    events, elapsed = await run("action_assess_complaint", endpoint, tracker_in_form())
    assert said(events) == [APOLOGY] and elapsed < 3.0  # the 0.5 s limit plus the turn, on a busy machine


async def test_a_broken_action_gets_the_apology_and_a_rejection_passes_through(action_server) -> None:
    fake, url = action_server
    endpoint = GuardedActionEndpoint(EndpointConfig(url))
    fake.mode = "broken"
    events, _ = await run("action_assess_complaint", endpoint, tracker_in_form())
    assert said(events) == [APOLOGY]
    fake.mode = "reject"
    with pytest.raises(ActionExecutionRejection):
        await run("action_assess_complaint", endpoint, tracker_in_form())


async def test_a_failed_form_validation_takes_none_of_this_turns_values(action_server) -> None:
    fake, url = action_server
    fake.mode = "broken"
    events, _ = await run("validate_complaint_form", GuardedActionEndpoint(EndpointConfig(url)), tracker_in_form())
    assert said(events) == [APOLOGY]
    assert [(e.key, e.value) for e in events if isinstance(e, SlotSet)] == [("platform", None)]  # not requested_slot


async def test_one_apology_per_turn_and_the_next_turn_tries_again(action_server) -> None:
    fake, url = action_server
    endpoint = GuardedActionEndpoint(EndpointConfig(url), 0.5)
    fake.mode = "slow"
    tracker = tracker_in_form()
    first, _ = await run("validate_complaint_form", endpoint, tracker)
    second, _ = await run("action_assess_complaint", endpoint, tracker)  # same turn
    assert said(first) == [APOLOGY] and said(second) == []
    assert fake.calls == ["validate_complaint_form"]  # the second call did not wait for the server again
    fake.mode = "ok"
    events, _ = await run("action_assess_complaint", endpoint, tracker_in_form())  # a new message: back to normal
    assert said(events) == ["动作服务器的回答"]


def test_the_guard_replaces_the_loaded_agents_endpoint_once() -> None:
    original = EndpointConfig("http://actions:5055/webhook", token="t", timeout=3)
    agent = SimpleNamespace(action_endpoint=original, processor=SimpleNamespace(action_endpoint=original))
    app = SimpleNamespace(ctx=SimpleNamespace(agent=agent))
    guard_action_endpoint(app)
    guarded = agent.action_endpoint
    assert isinstance(guarded, GuardedActionEndpoint) and agent.processor.action_endpoint is guarded
    assert guarded.url == original.url and guarded.token == "t" and guarded.timeout_s == 3
    guard_action_endpoint(app)
    assert agent.action_endpoint is guarded
    guard_action_endpoint(SimpleNamespace(ctx=SimpleNamespace()))  # no agent yet: nothing to do
