"""The operations behind the console's JSON API, and the sweep that keeps the queue honest.

Every move is first written to the store (compare-and-set, so two operators or an operator and the timer cannot both
win), then carried out on Rasa; when Rasa cannot be reached the store is put back and the caller gets a 502.

- take over: waiting → active; Rasa gets `pause` (again, in case a new session cleared it) and the status line
  "客服已接入" through the user's channel;
- send: only while active; a `bot` event marked as the operator's (`metadata.handoff = "operator"`, and
  `custom.kind = "operator"` so the widget marks it) goes out through the user's channel and stays in the transcript;
  on WeChat only within 48 hours of the user's last message (the customer-service message API refuses later ones).
  The message is first written to the outbox (weiquan/stores/outbox.py); the answer says `delivered` only when the
  buyer's side acknowledged it while Rasa passed it on (a widget socket, WeChat's API), else `stored`: the channel
  shows it when the buyer returns;
- release: waiting or active → closed; Rasa gets `resume`, then runs `action_handoff_resume`;
- sweep (every couple of seconds): the console's heartbeat; for each open hand-off the summary and last user message
  from the tracker (a threat in it marks the hand-off: threats come first in the queue); what users write while
  waiting kept as left messages; an active hand-off whose operator has written nothing for `HANDOFF_IDLE_MINUTES`
  goes back to the queue (the user is told, with `utter_handoff_requeued`) for `HANDOFF_REQUEUE_WAIT_MINUTES`; a
  waiting hand-off past its deadline goes back to the bot (which says so).
"""
from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from weiquan.core.clock import BEIJING, Clock
from weiquan.core.contracts import DELIVERY_ID, Delivery, OperatorMessage, SendResult
from weiquan.handoff import state, summary
from weiquan.handoff.rasa_api import RasaApi, RasaError
from weiquan.handoff.settings import HandoffSettings
from weiquan.handoff.state import Handoff, Status, TransitionError
from weiquan.stores.handoff import SERVICE, HandoffStore
from weiquan.stores.outbox import OperatorOutbox

logger = logging.getLogger(__name__)

RESUME_ACTION = "action_handoff_resume"
CONNECTED_RESPONSE = "utter_handoff_connected"
REQUEUED_RESPONSE = "utter_handoff_requeued"
MAX_REPLY_CHARS = 1000
MAX_SENDER_CHARS = 255
WECHAT_WINDOW_S = 48 * 3600
LISTS = {"waiting": (Status.WAITING,), "active": (Status.ACTIVE,), "all": None}


class HandoffError(Exception):
    """An answer the console gives with an HTTP status and a Chinese explanation (texts.yml `errors`)."""

    def __init__(self, status: int, code: str, **variables: Any) -> None:
        self.status = status
        self.code = code
        self.message = summary.texts()["errors"][code].format(**variables)
        super().__init__(f"{status} {code}")


def iso(moment: float | None) -> str | None:
    return datetime.fromtimestamp(moment, BEIJING).isoformat(timespec="seconds") if moment else None


class HandoffService:
    def __init__(self, store: HandoffStore, rasa: RasaApi, settings: HandoffSettings, clock: Clock,
                 outbox: OperatorOutbox | None = None) -> None:
        self.store = store
        self.rasa = rasa
        self.settings = settings
        self.now = clock.now
        self.today = clock.today
        self.outbox = outbox  # without one (tests of other moves), nothing can be known delivered: `stored`

    # ------------------------------------------------------------------ reading

    def entry(self, handoff: Handoff) -> dict[str, Any]:
        since = {Status.WAITING: handoff.waiting_since, Status.ACTIVE: handoff.taken_at,
                 Status.CLOSED: handoff.closed_at}[handoff.status]
        shown = handoff.summary or summary.summarize({}, self.today())
        return {
            "sender_id": handoff.sender_id,
            "channel": handoff.channel,
            "status": handoff.status.value,
            "since": iso(since),
            "summary": summary.with_safety(shown) if handoff.safety_at is not None else shown,
            "last_user_message": handoff.last_user_message,
            "last_user_at": iso(handoff.last_user_at),
            "requested_at": iso(handoff.requested_at),
            "deadline_at": iso(handoff.deadline_at) if handoff.status is Status.WAITING else None,
            "offline": handoff.offline,
            "operator": handoff.operator,
            "ending": handoff.ending.value if handoff.ending else None,
            "left_messages": len(self.store.left_messages(handoff.sender_id)),
            "safety_at": iso(handoff.safety_at),
            "requeued_at": iso(handoff.requeued_at),
        }

    def listing(self, status: str) -> list[dict[str, Any]]:
        if status not in LISTS:
            raise ValueError(status)
        return [self.entry(handoff) for handoff in self.store.handoffs(LISTS[status])]

    async def detail(self, sender_id: str) -> dict[str, Any]:
        handoff = self._get(sender_id)
        result = self.entry(handoff)
        result["left"] = [{"text": m.text, "at": iso(m.sent_at)} for m in self.store.left_messages(sender_id)]
        try:
            tracker = await self.rasa.tracker(sender_id)
        except RasaError:
            result["transcript"], result["rasa_reachable"] = [], False
            return result
        result["transcript"] = [{**line.as_dict(), "at": iso(line.at)} for line in summary.lines(tracker)]
        result["rasa_reachable"] = True
        result["paused"] = bool(tracker.get("paused"))
        return result

    def _get(self, sender_id: str) -> Handoff:
        handoff = self.store.get(sender_id) if 0 < len(sender_id) <= MAX_SENDER_CHARS else None
        if handoff is None:
            raise HandoffError(404, "not_found")
        return handoff

    # ------------------------------------------------------------------ moves

    async def take_over(self, sender_id: str, operator: str | None = None) -> dict[str, Any]:
        handoff = self._get(sender_id)
        try:
            taken = state.take_over(handoff, self.now(), (operator or "").strip()[:64] or None)
        except TransitionError:
            raise HandoffError(409, "not_waiting") from None
        if not self.store.replace(taken, expected=Status.WAITING):
            raise HandoffError(409, "not_waiting")
        try:
            connected = await self.rasa.response(CONNECTED_RESPONSE)
            await self.rasa.append(sender_id, [{"event": "pause"}, status_event(connected, CONNECTED_RESPONSE)],
                                   handoff.channel)
        except RasaError as error:
            logger.warning("handoff.takeover_failed: %s", error)
            self.store.replace(handoff, expected=Status.ACTIVE)
            raise HandoffError(502, "rasa_down") from None
        return self.entry(taken)

    async def send(self, sender_id: str, text: Any) -> SendResult:
        if not isinstance(text, str) or not text.strip():
            raise HandoffError(400, "empty_text")
        text = text.strip()
        if len(text) > MAX_REPLY_CHARS:
            raise HandoffError(413, "too_long", limit=MAX_REPLY_CHARS)
        handoff = self._get(sender_id)
        if handoff.status is not Status.ACTIVE:
            raise HandoffError(409, "not_active")
        try:
            if handoff.channel == "wechat":
                last = summary.last_user_line(await self.rasa.tracker(sender_id))
                if last is None or last.at is None or self.now() - last.at > WECHAT_WINDOW_S:
                    raise HandoffError(409, "wechat_window")
            message_id = uuid.uuid4().hex
            event = operator_event(text, handoff.operator, message_id)
            if self.outbox is not None:  # first: the channel settles this entry while Rasa passes the message on
                self.outbox.add(message_id, sender_id, handoff.channel, operator_message(event), self.now())
            try:
                await self.rasa.append(sender_id, [event], handoff.channel)
            except RasaError:
                if self.outbox is not None:
                    self.outbox.discard(message_id)  # not in the transcript either: nothing to show later
                raise
        except RasaError as error:
            logger.warning("handoff.send_failed: %s", error)
            raise HandoffError(502, "rasa_down") from None
        delivery = (self.outbox.status(message_id) if self.outbox is not None else None) or Delivery.STORED
        return {"sent": True, "delivery": delivery.value, "message_id": message_id}

    async def release(self, sender_id: str) -> dict[str, Any]:
        handoff = self._get(sender_id)
        try:
            released = state.release(handoff, self.now())
        except TransitionError:
            raise HandoffError(409, "not_open") from None
        with contextlib.suppress(RasaError):  # keep what the user left since the last sweep
            await self._sync(handoff, self.now())
        if not self.store.replace(released, expected=handoff.status):
            raise HandoffError(409, "not_open")
        try:
            await self._give_back(handoff)
        except RasaError as error:
            logger.warning("handoff.release_failed: %s", error)
            self.store.replace(handoff, expected=Status.CLOSED)
            raise HandoffError(502, "rasa_down") from None
        return self.entry(released)

    async def _give_back(self, handoff: Handoff) -> None:
        await self.rasa.append(handoff.sender_id, [{"event": "resume"}], None)
        await self.rasa.execute(handoff.sender_id, RESUME_ACTION, handoff.channel)

    # ------------------------------------------------------------------ the sweep

    async def sweep(self) -> None:
        now = self.now()
        self.store.touch(SERVICE, now)
        for handoff in self.store.handoffs(Status.open()):
            try:
                tracker = await self._sync(handoff, now)
            except RasaError as error:
                logger.warning("handoff.sweep: %s", error)
                return
            if handoff.status is Status.WAITING and now >= handoff.deadline_at:
                await self._time_out(handoff, now)
            elif handoff.status is Status.ACTIVE and now >= operator_last_seen(handoff, tracker) + self.settings.idle_s:
                await self._requeue(handoff, now)

    async def _sync(self, handoff: Handoff, now: float) -> dict[str, Any]:
        """Summary and last user message from the tracker (a threat marks the hand-off); what the user wrote while
        waiting, as left messages. Returns the tracker."""
        tracker = await self.rasa.tracker(handoff.sender_id)
        last = summary.last_user_line(tracker)
        read = summary.summarize(tracker, self.today())
        self.store.note_activity(handoff.sender_id, last.text if last else None, last.at if last else None, read)
        if read["safety"] and handoff.safety_at is None:
            self.store.flag_safety(handoff.sender_id, now)
        if handoff.status is Status.WAITING:
            for line in summary.user_lines_since(tracker, handoff.waiting_since):
                self.store.add_left_message(handoff.sender_id, line.text, line.at or now)
        return tracker

    async def _requeue(self, handoff: Handoff, now: float) -> None:
        """The operator wrote nothing for a while: back to the queue, and the user is told."""
        requeued = state.requeue(handoff, now, self.settings.requeue_wait_s)
        if not self.store.replace(requeued, expected=Status.ACTIVE):
            return  # released or cancelled meanwhile
        try:
            line = await self.rasa.response(REQUEUED_RESPONSE)
            await self.rasa.append(handoff.sender_id, [status_event(line, REQUEUED_RESPONSE)], handoff.channel)
        except RasaError as error:  # the user was not told: the operator keeps it until the next sweep tries again
            logger.warning("handoff.requeue_failed: %s", error)
            self.store.replace(handoff, expected=Status.WAITING)

    async def _time_out(self, handoff: Handoff, now: float) -> None:
        closed = state.time_out(handoff, now)
        if not self.store.replace(closed, expected=Status.WAITING):
            return  # an operator took it meanwhile
        try:
            await self._give_back(handoff)
        except RasaError as error:  # try again on the next sweep
            logger.warning("handoff.timeout_failed: %s", error)
            self.store.replace(replace(handoff, updated_at=now), expected=Status.CLOSED)


def operator_last_seen(handoff: Handoff, tracker: dict[str, Any]) -> float:
    """When the operator last did something: took the conversation over, or wrote in it since."""
    taken = handoff.taken_at or handoff.requested_at
    written = [line.at for line in summary.lines(tracker) if line.speaker == "operator" and line.at]
    return max([taken, *written])


def status_event(response: dict[str, Any], name: str) -> dict[str, Any]:
    """A status line from the domain ("客服已接入"), as a `bot` event the channels render like any bot message."""
    data = {key: response[key] for key in ("buttons", "custom") if response.get(key)}
    return {"event": "bot", "text": response.get("text") or "", "data": data,
            "metadata": {"handoff": "status", "response": name}}


def operator_event(text: str, operator: str | None, message_id: str | None = None) -> dict[str, Any]:
    label = summary.texts()["operator_label"]
    metadata = {"handoff": summary.OPERATOR, "operator": operator or ""}
    if message_id is not None:
        metadata[DELIVERY_ID] = message_id
    return {"event": "bot", "text": text, "data": {"custom": {"kind": "operator", "label": label}},
            "metadata": metadata}


def operator_message(event: dict[str, Any]) -> OperatorMessage:
    """What a channel shows for an operator's `bot` event (the outbox keeps it until the buyer has seen it)."""
    return {"text": event["text"], "custom": event["data"]["custom"]}
