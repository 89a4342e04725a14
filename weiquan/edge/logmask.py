"""Every log line of the process goes through `weiquan.core.privacy.mask`: phone, ID-card and order numbers, e-mail and
street addresses never reach a log file in clear. WeChat OpenIDs are shortened to their first six characters
(`oAbCdE…`): enough to tell buyers apart in a log, not enough to address one (the conversation id stays whole in the
store, where `make forget` needs it).

Rasa's DEBUG lines carry the user's text (`processor.message.parse … parse_data_text=…`, slot values, tracker states),
and they come two ways: structlog events rendered to JSON (which escapes Chinese as \\uXXXX, so the text must be masked
before rendering) and plain `logging` records. `install()` covers both, and warnings too:

- a structlog processor placed just before the renderer masks every value of the event (tracebacks included);
- a log-record factory masks each record's message, arguments, traceback and stack text when the record is made, so
  every handler sees the masked record, including handlers added after start-up (Sanic's, Rasa's file handlers);
- `warnings.showwarning` masks the warning text (Rasa's regex-message warnings quote what the user typed).

`install()` is idempotent and runs at start-up, never on import: in the Rasa server when the channels start
(weiquan/edge/faults.py) and when the tracker store is created (weiquan/stores/tracker_store.py); in the action server
through
rasa-sdk's plugin hook (rasa_sdk_plugins/). Each is after the CLI configured logging.
"""
from __future__ import annotations

import logging
import re
import traceback
import warnings
from collections.abc import Callable, MutableMapping
from typing import Any

from weiquan.core.privacy import mask, mask_data

_KEPT_STRUCTLOG_KEYS = frozenset({"level", "timestamp", "logger", "logger_name"})
_PLAIN_TYPES = (str, int, float, bool, type(None), dict, list, tuple)
# A WeChat OpenID: 28 characters of [A-Za-z0-9_-] starting with "o" (Rasa's DEBUG lines name the conversation id).
_OPENID = re.compile(r"(?<![A-Za-z0-9_-])(o[A-Za-z0-9_-]{5})[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])")


def mask_line(text: str) -> str:
    """A log text with personal data masked and OpenIDs shortened."""
    return _OPENID.sub(r"\1…", mask(text)) if text else text


def _mask_log_data(value: Any) -> Any:
    if isinstance(value, str):
        return mask_line(value)
    if isinstance(value, dict):
        return {key: _mask_log_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_log_data(item) for item in value]
    return value


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Masks a record in place: message (with its arguments merged in), traceback and stack text."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed format string: keep the pieces, masked
        message = f"{record.msg} {record.args}"
    masked = mask_line(message)
    if masked != message or record.args:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = mask_line("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = mask_line(record.stack_info)
    return record


class MaskingFilter(logging.Filter):
    """For a handler that receives records made elsewhere (e.g. unpickled from a socket)."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def _masking_record_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(previous(*args, **kwargs))

    factory.masks_personal_data = True  # type: ignore[attr-defined]
    return factory


def mask_structlog_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: a masked copy of every value (an object the renderer would `repr` is masked as its repr)."""
    masked: dict[str, Any] = {}
    for key, value in event_dict.items():
        if key in _KEPT_STRUCTLOG_KEYS:
            masked[key] = value
        elif isinstance(value, _PLAIN_TYPES):
            masked[key] = _mask_log_data(mask_data(_plain(value)))
        else:
            masked[key] = mask_line(repr(value))
    return masked


def _plain(value: Any) -> Any:
    """JSON-like data with anything else turned into its repr (as structlog's JSON renderer would)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, _PLAIN_TYPES):
        return value
    return repr(value)


def _install_structlog() -> None:
    try:
        import structlog
    except ImportError:  # the action server may run without it
        return
    processors = structlog.get_config()["processors"]
    if mask_structlog_event in processors:
        return
    if isinstance(processors, list):
        # In place: loggers cached on first use hold this very list.
        processors.insert(max(len(processors) - 1, 0), mask_structlog_event)
    else:
        items = list(processors)
        structlog.configure(processors=[*items[:-1], mask_structlog_event, *items[-1:]])


def _install_warnings() -> None:
    show = warnings.showwarning
    if getattr(show, "masks_personal_data", False):
        return

    def showwarning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    file: Any = None, line: str | None = None) -> None:
        show(mask_line(str(message)), category, filename, lineno, file, line)

    showwarning.masks_personal_data = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


def install() -> None:
    """Masks every log record, structlog event and warning of this process from now on (idempotent)."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "masks_personal_data", False):
        logging.setLogRecordFactory(_masking_record_factory(factory))
    _install_structlog()
    _install_warnings()
