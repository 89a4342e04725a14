"""Mask personal numbers in every log line the Rasa server writes.

Rasa's DEBUG logs print user text, and buyers paste phone numbers, ID-card numbers and order numbers. The filter is
attached to the root handlers when the server builds its channels (see weiquan/channels/rest.py), after Rasa has
configured logging. Conversations themselves stay whole in the tracker store: nothing the user said is lost.
"""
from __future__ import annotations

import logging
import re

MASKS = (
    (re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?!\d)"), r"\1********\2"),  # ID card: 18 characters
    (re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)"), r"\1****\2"),  # mobile phone
    (re.compile(r"(?<!\d)(\d{4})\d{7,11}(\d{4})(?!\d)"), r"\1****\2"),  # order numbers and other long digit runs
)


def mask(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Attach the filter once to every handler of `logger` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(existing, MaskingFilter) for existing in handler.filters):
            handler.addFilter(MaskingFilter())
