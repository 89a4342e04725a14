"""The hand-off's states and the allowed moves between them. Pure: no I/O, the time is passed in.

    (none | closed) --request--> waiting --take_over--> active
    active --requeue (no operator message for a while)--> waiting   with a new, shorter deadline
    waiting --time_out (deadline passed)--> closed          the bot takes the conversation back
    waiting | active --release--> closed                    the operator hands it back
    waiting | active --end--> closed                        the user restarted the conversation
    waiting | active --cancel--> closed                     the user said they no longer need a person

A threat typed during an open hand-off marks it (the store's `flag_safety`): the console puts it first.

A conversation has at most one hand-off record (its latest); asking again while one is open keeps the open one.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from weiquan.core.contracts import HandoffSummary


class Status(str, Enum):
    WAITING = "waiting"  # the bot is paused; no operator has taken it yet
    ACTIVE = "active"  # an operator has the conversation
    CLOSED = "closed"  # the bot has it again

    @classmethod
    def open(cls) -> frozenset[Status]:
        return frozenset({cls.WAITING, cls.ACTIVE})


class Ending(str, Enum):
    """Why a hand-off closed; the bot's words on taking the conversation back depend on it."""

    RELEASED = "released"  # an operator handed it back
    TIMEOUT = "timeout"  # nobody took it within the wait
    RESTARTED = "restarted"  # the user started the conversation over
    CANCELLED = "cancelled"  # the user said they no longer need a person (不用人工了)


class TransitionError(Exception):
    """A move the current state does not allow (the console answers 409)."""

    def __init__(self, move: str, status: Status | None) -> None:
        super().__init__(f"cannot {move} a hand-off that is {status.value if status else 'absent'}")
        self.move = move
        self.status = status


@dataclass(frozen=True)
class Handoff:
    sender_id: str
    channel: str  # Rasa's input channel name: socketio, rest, wechat …
    status: Status
    requested_at: float  # epoch seconds
    deadline_at: float  # a hand-off still waiting then goes back to the bot
    offline: bool  # nobody was available when the user asked: they were invited to leave a message
    taken_at: float | None = None
    operator: str | None = None
    closed_at: float | None = None
    ending: Ending | None = None
    last_user_message: str | None = None
    last_user_at: float | None = None
    summary: HandoffSummary | None = None
    updated_at: float = 0.0
    safety_at: float | None = None  # when a threat to the user's safety was first seen during this hand-off
    requeued_at: float | None = None  # when it last went back to the queue because its operator wrote nothing

    @property
    def is_open(self) -> bool:
        return self.status in Status.open()

    @property
    def waiting_since(self) -> float:
        """When the current wait began: the request, or the last requeue."""
        return self.requeued_at if self.requeued_at is not None else self.requested_at


def request(
    existing: Handoff | None, sender_id: str, channel: str, now: float, wait_s: float, offline: bool
) -> Handoff:
    """A new hand-off waiting for an operator; an open one is kept as it is (its place in the queue too)."""
    if existing is not None and existing.is_open:
        return existing
    return Handoff(
        sender_id=sender_id,
        channel=channel or "unknown",
        status=Status.WAITING,
        requested_at=now,
        deadline_at=now + wait_s,
        offline=offline,
        summary=existing.summary if existing else None,
        updated_at=now,
    )


def take_over(handoff: Handoff | None, now: float, operator: str | None = None) -> Handoff:
    if handoff is None or handoff.status is not Status.WAITING:
        raise TransitionError("take over", handoff.status if handoff else None)
    return replace(handoff, status=Status.ACTIVE, taken_at=now, operator=operator or None, updated_at=now)


def release(handoff: Handoff | None, now: float) -> Handoff:
    if handoff is None or not handoff.is_open:
        raise TransitionError("release", handoff.status if handoff else None)
    return replace(handoff, status=Status.CLOSED, closed_at=now, ending=Ending.RELEASED, updated_at=now)


def requeue(handoff: Handoff | None, now: float, wait_s: float) -> Handoff:
    """An operator took the conversation and then wrote nothing: it waits for another one, keeping its place (the
    time it was asked for), until `wait_s` from now; then it times out like any waiting conversation."""
    if handoff is None or handoff.status is not Status.ACTIVE:
        raise TransitionError("requeue", handoff.status if handoff else None)
    return replace(handoff, status=Status.WAITING, taken_at=None, operator=None, deadline_at=now + wait_s,
                   requeued_at=now, updated_at=now)


def time_out(handoff: Handoff | None, now: float) -> Handoff:
    if handoff is None or handoff.status is not Status.WAITING or now < handoff.deadline_at:
        raise TransitionError("time out", handoff.status if handoff else None)
    return replace(handoff, status=Status.CLOSED, closed_at=now, ending=Ending.TIMEOUT, updated_at=now)


def end(handoff: Handoff | None, now: float) -> Handoff:
    if handoff is None or not handoff.is_open:
        raise TransitionError("end", handoff.status if handoff else None)
    return replace(handoff, status=Status.CLOSED, closed_at=now, ending=Ending.RESTARTED, updated_at=now)


def cancel(handoff: Handoff | None, now: float) -> Handoff:
    if handoff is None or not handoff.is_open:
        raise TransitionError("cancel", handoff.status if handoff else None)
    return replace(handoff, status=Status.CLOSED, closed_at=now, ending=Ending.CANCELLED, updated_at=now)

