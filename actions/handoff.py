"""handoff: a person from our team takes the conversation over; the bot pauses until it is handed back.

- `action_request_human`: the user asked for a person (any time, also in the middle of the form). When the console
  runs, the conversation joins the queue and Rasa pauses it (`ConversationPaused`): from then on the bot runs no form,
  ruling or fallback, and every message is kept in the transcript. When nobody is online the user is invited to
  leave a message. When no console runs at all nobody could answer, so the bot does not pause: it says so, points to
  Taobao's own service, and the form (if any) goes on.
- `action_handoff_resume`: the console runs it (after `resume`) when the conversation goes back to the bot: say so,
  undo what was filled in while paused, ask the pending form question again.
- `action_handoff_safety`: a threat typed while paused (waiting for or talking to a person). Rasa predicts nothing
  while paused; weiquan/ops/paused.py runs this one action for that message. The 110 advice goes to the user at once,
  the hand-off is marked (the console puts it first and flags it), the conversation stays paused.
- `action_handoff_cancel`: the user no longer wants a person (「不用人工了」). While paused weiquan/ops/paused.py runs
  it: the hand-off ends, the bot takes the conversation back as after a release. Without a hand-off (by rule): a
  short answer.
- `action_session_start`: Rasa's own, plus the hand-off: a new session clears the pause, so after an expired session
  the pause is asserted again while a person still has the conversation; after `/restart` the hand-off ends.
"""
from __future__ import annotations

import logging

from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    ActiveLoop,
    ConversationPaused,
    ConversationResumed,
    EventType,
    SessionStarted,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint import FORM
from actions.presenter import Presenter
from weiquan.core.domain import form_slots, question
from weiquan.handoff import pause, state, summary
from weiquan.handoff.settings import Availability, availability
from weiquan.handoff.state import Ending, Handoff
from weiquan.services import Services, default_services
from weiquan.stores.handoff import OPERATOR, SERVICE, HandoffStore

logger = logging.getLogger(__name__)


class HandoffWiring:
    """Shared by the hand-off actions: the services (clock, rules, hand-off settings and store), built once by the
    composition root; tests hand in their own. A mixin, not an Action: the SDK registers only the concrete actions."""

    def __init__(self, services: Services | None = None) -> None:
        self.services = services or default_services()
        self.settings = self.services.handoff
        self.now = self.services.clock.now

    @property
    def store(self) -> HandoffStore:
        return self.services.handoff_store()

    def current(self, sender_id: str) -> Handoff | None:
        """The conversation's hand-off; None when the store cannot be read (the bot then carries on alone)."""
        try:
            return self.store.get(sender_id)
        except Exception:  # noqa: BLE001 - a broken store must never break a conversation
            logger.exception("handoff.store_unreadable")
            return None


class ActionRequestHuman(HandoffWiring, Action):
    def name(self) -> str:
        return "action_request_human"

    def available(self) -> Availability:
        try:
            return availability(self.settings, self.now(), self.store.seen(SERVICE), self.store.seen(OPERATOR))
        except Exception:  # noqa: BLE001
            logger.exception("handoff.store_unreadable")
            return Availability(service_up=False, operators_online=False)

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if (pause.latest_user_metadata(tracker.events).get("wechat") or {}).get("transfer_customer_service"):
            # WeChat's own customer service takes the user (the channel replies with transfer_customer_service).
            dispatcher.utter_message(response="utter_handoff_wechat_transfer")
            return []
        now, available = self.now(), self.available()
        if not available.service_up:
            presenter = Presenter(self.services.rules, self.services.clock.today())
            presenter.utter(dispatcher, ("utter_handoff_unavailable", "utter_handoff_how"), presenter.rule_variables())
            return []
        conversation = {"slots": tracker.slots, "events": tracker.events}
        handoff = self.store.create(state.request(
            self.current(tracker.sender_id), tracker.sender_id, tracker.get_latest_input_channel() or "",
            now, self.settings.wait_s, offline=not available.operators_online))
        last = summary.last_user_line(conversation)
        read = summary.summarize(conversation, self.services.clock.today())
        self.store.note_activity(handoff.sender_id, last.text if last else None, last.at if last else None, read)
        if read["safety"]:  # a threat reported before asking for a person: first in the queue from the start
            self.store.flag_safety(handoff.sender_id, now)
        dispatcher.utter_message(response="utter_handoff_nobody" if handoff.offline else "utter_handoff_waiting")
        # Paused, the bot predicts nothing more; it is listening, so a later `/restart` finds the state it expects.
        return [ConversationPaused(), ActionExecuted("action_listen")]


class ActionHandoffResume(HandoffWiring, Action):
    def name(self) -> str:
        return "action_handoff_resume"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        handoff = self.current(tracker.sender_id)
        if handoff is None or handoff.ending is not Ending.TIMEOUT:
            dispatcher.utter_message(response="utter_handoff_released")
        elif handoff.offline:
            dispatcher.utter_message(response="utter_handoff_timeout_offline")
        else:
            dispatcher.utter_message(response="utter_handoff_timeout_busy")
            dispatcher.utter_message(response="utter_handoff_offer")
        return [*back_to_the_bot(dispatcher, tracker), ActionExecuted("action_listen")]


def back_to_the_bot(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """The bot takes a paused conversation back: what was filled in while paused is undone, and the pending form
    question is asked again."""
    events: list[EventType] = [SlotSet(name, value) for name, value in
                               pause.restored_slots(tracker.events, tracker.slots).items()]
    pending = tracker.get_slot("requested_slot")
    if tracker.active_loop.get("name") == FORM and pending in form_slots():
        dispatcher.utter_message(response=question(pending))
        # The request for a person was an unhappy path the form never came back from (it rejected the message,
        # then the bot paused): mark the form active afresh so the next answer is validated as usual.
        events.append(ActiveLoop(FORM))
    # The bot then listens again: the user's next message is handled as if it answered the question just asked.
    return events


class ActionHandoffSafety(HandoffWiring, Action):
    """Only ever run while paused (weiquan/ops/paused.py); outside a hand-off the rules run action_advise_safety."""

    def name(self) -> str:
        return "action_handoff_safety"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        presenter = Presenter(self.services.rules, self.services.clock.today())
        presenter.utter(dispatcher, ("utter_safety_police_first",), presenter.rule_variables())
        handoff = self.current(tracker.sender_id)
        if handoff is not None and handoff.is_open:
            try:
                self.flag(tracker)
                dispatcher.utter_message(response="utter_handoff_safety_flagged")
            except Exception:  # noqa: BLE001 - the advice is out already; the console's sweep marks it from the slot
                logger.exception("handoff.safety_flag_failed")
        # Still paused, and listening: a later `/restart` or hand-back finds the state it expects.
        return [SlotSet("safety_threat", True), SlotSet("safety_advised", True), ActionExecuted("action_listen")]

    def flag(self, tracker: Tracker) -> None:
        """The console sees the threat at once: the hand-off is marked (first in the queue) and its summary says so."""
        now = self.now()
        self.store.flag_safety(tracker.sender_id, now)
        conversation = {"slots": {**tracker.slots, "safety_threat": True}, "events": tracker.events}
        last = summary.last_user_line(conversation)
        self.store.note_activity(tracker.sender_id, last.text if last else None, last.at if last else None,
                                 summary.summarize(conversation, self.services.clock.today()))


class ActionHandoffCancel(HandoffWiring, Action):
    def name(self) -> str:
        return "action_handoff_cancel"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        handoff = self.current(tracker.sender_id)
        if handoff is not None and handoff.is_open:
            try:  # lost to an operator's release at the same moment: closed all the same
                self.store.replace(state.cancel(handoff, self.now()), expected=handoff.status)
            except Exception:  # noqa: BLE001 - the user still gets the bot back; the wait times out in the store
                logger.exception("handoff.cancel_not_stored")
        elif not tracker.is_paused():
            dispatcher.utter_message(response="utter_handoff_cancel_none")
            return []  # by rule: in the form, the form asks its question again
        dispatcher.utter_message(response="utter_handoff_cancelled")
        if not tracker.is_paused():  # an open hand-off the bot was not paused for (a rule ran this): nothing to undo
            return []
        # Paused (weiquan/ops/paused.py ran this): resume, as after a release. Also when the store has no open
        # hand-off any more: the user wants the bot back, and nothing else would ever resume it.
        return [ConversationResumed(), *back_to_the_bot(dispatcher, tracker), ActionExecuted("action_listen")]


class ActionSessionStart(HandoffWiring, Action):
    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events: list[EventType] = [SessionStarted()]
        if (domain.get("session_config") or {}).get("carry_over_slots_to_new_session"):
            events += [SlotSet(name, value) for name, value in tracker.slots.items() if value is not None]
        handoff = self.current(tracker.sender_id)
        if handoff is not None and handoff.is_open:
            if pause.follows_restart(tracker.events):
                self.store.replace(state.end(handoff, self.now()), expected=handoff.status)
                dispatcher.utter_message(response="utter_handoff_ended")
            else:  # the session expired while a person has the conversation: keep the bot out of it
                events.append(ConversationPaused())
        return [*events, ActionExecuted("action_listen")]
