"""The REST channel with input checks: POST /webhooks/rest/webhook {"sender": "...", "message": "..."}.

Rasa's own RestInput answers a body that is not a JSON object with a 500 and a body without "message" with an empty
list. This one answers both with a 400 that says what is wrong, refuses over-long messages with a 413, and otherwise
behaves like Rasa's (same URL, same reply format), except that each bot message comes back as one entry.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from weiquan.channels.render import render_rest

MAX_MESSAGE_CHARS = 2000  # far above any real message; the widget and WeChat cap lower with a friendly reply
MAX_SENDER_CHARS = 128


def bad_request(status: int, error: str, **details: Any) -> HTTPResponse:
    return response.json({"error": error, **details}, status=status)


def check_body(body: Any) -> tuple[str, str] | HTTPResponse:
    """(sender, message) from a request body, or the 4xx answer that explains what is wrong."""
    if not isinstance(body, dict):
        return bad_request(400, "the body must be a JSON object with 'sender' and 'message'")
    sender, message = body.get("sender"), body.get("message")
    if not isinstance(message, str):
        return bad_request(400, "'message' must be a string")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
        return bad_request(400, f"'sender' must be a non-empty string of at most {MAX_SENDER_CHARS} characters")
    if len(message) > MAX_MESSAGE_CHARS:
        return bad_request(413, "message too long", max_chars=MAX_MESSAGE_CHARS)
    return sender, message


class WholeMessageCollector(CollectingOutputChannel):
    """Keeps each bot message whole, as Rasa hands it over (text, buttons and card together); channels render them.

    Rasa's collector splits text at blank lines and files `custom` as a separate entry without text.
    """

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        await self._persist_message({"recipient_id": recipient_id, **message})


class GuardedRestInput(RestInput):
    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = json.loads(request.body or b"")
            except (ValueError, UnicodeDecodeError):
                return bad_request(400, "the body is not valid JSON")
            checked = check_body(body)
            if isinstance(checked, HTTPResponse):
                return checked
            sender, message = checked
            metadata = body.get("metadata")
            collector = WholeMessageCollector()
            await on_new_message(
                UserMessage(message, collector, sender, input_channel=self.name(),
                            metadata=metadata if isinstance(metadata, dict) else None)
            )
            return response.json(
                [{"recipient_id": sender, **render_rest(message)} for message in collector.messages]
            )

        return hook
