"""After the end-to-end run, no log holds a secret or a buyer's identity in clear (docs/security.md).

This module runs last (`zz`): it scans every log file the session's servers wrote under pytest's temporary folder —
the Rasa servers at DEBUG level, the action servers, the consoles, HAProxy and every process of run-production — for:

- a token: the operator token, Rasa's API token, the REST token (the ones the tests set, and any value after
  `token=`, `Bearer` or `--auth-token` whatever it is);
- a WeChat secret: the token, the EncodingAESKey, the AppSecret;
- a mobile number in clear;
- a whole OpenID: every OpenID the tests used, and anything shaped like one (28 characters starting with "o").

So that it never passes on an empty folder, it first runs one stack of its own with every secret set, at DEBUG level:
REST with its token, WeChat in safe mode, the widget, and a hand-off through the console (which calls Rasa's API with
its token), each carrying a phone number. After a full `make test-e2e` it covers what every other module's servers
wrote too. The supervisor's terminal output (`run*.out`) is not a log file: `make run` prints the console's address
with its token there on purpose.
"""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_privacy_e2e import widget_conversation
from tests.e2e.test_production_drills import REST_TOKEN as DRILL_REST_TOKEN
from tests.e2e.test_wechat_e2e import OPENIDS_USED, WeChatUser
from weiquan.ops.handoff_harness import OPERATOR_TOKEN, RASA_API_TOKEN, HandoffBot, eventually, http_json, running
from weiquan.ops.harness import WECHAT_AES_KEY, WECHAT_APP_SECRET, WECHAT_TOKEN

pytestmark = pytest.mark.e2e

SCAN_REST_TOKEN = "scan-rest-token-4b1d9e0f7a2c"
PHONE = "13712345679"
SECRETS = {
    "operator token": OPERATOR_TOKEN,
    "Rasa API token": RASA_API_TOKEN,
    "REST token": SCAN_REST_TOKEN,
    "REST token (drills)": DRILL_REST_TOKEN,
    "WeChat token": WECHAT_TOKEN,
    "WeChat EncodingAESKey": WECHAT_AES_KEY,
    "WeChat AppSecret": WECHAT_APP_SECRET,
}
PATTERNS = {
    "a token in a query string": re.compile(r"[?&](?:access_)?token=(?![*$%{])[^&\s\"'<>]{6,}"),
    "a Bearer token": re.compile(r"(?i)\bbearer\s+(?![*$<{])[A-Za-z0-9._~+/=-]{8,}"),
    "Rasa's --auth-token": re.compile(r"--auth-token[= ](?![*$<{])\S{6,}"),
    "a mobile number": re.compile(r"(?<![\d+.])1[3-9]\d{9}(?![\d.])"),
    "a whole OpenID": re.compile(r"(?<![A-Za-z0-9_-])o[A-Za-z0-9_-]{27}(?![A-Za-z0-9_-])"),
}


@pytest.fixture(scope="module")
def loud_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HandoffBot]:
    """Action server, Rasa (API on, token) and the console, both servers at DEBUG, REST behind its token."""
    bot = HandoffBot(workdir=tmp_path_factory.mktemp("log-scan"), rasa_args=["--debug"], action_args=["--debug"],
                     extra_env={"REST_TOKEN": SCAN_REST_TOKEN, "HANDOFF_OPERATORS": "on"})
    with running(bot):
        yield bot


def rest(bot: HandoffBot, sender: str, text: str) -> list[dict]:
    status, answer = http_json("POST", f"{bot.url}/webhooks/rest/webhook", {"sender": sender, "message": text},
                               headers={"Authorization": f"Bearer {SCAN_REST_TOKEN}"})
    assert status == 200, answer
    return answer


def log_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.log") if path.is_file())


def test_no_log_of_the_run_holds_a_token_a_secret_a_phone_number_or_a_whole_openid(
        loud_stack: HandoffBot, tmp_path_factory: pytest.TempPathFactory) -> None:
    sender = f"scan-{uuid.uuid4().hex[:8]}"
    assert rest(loud_stack, sender, f"卖家天天打我电话{PHONE}骂我")
    wechat = WeChatUser(loud_stack, openid=f"scan-{uuid.uuid4().hex}", safe=True)
    assert wechat.say(f"我的手机{PHONE}被卖家发到网上了")
    asyncio.run(widget_conversation(loud_stack, [f"卖家一直打{PHONE}骚扰我"]))
    rest(loud_stack, sender, "转人工")  # the console takes over and writes: Rasa's API, with its token
    eventually(lambda: loud_stack.console("GET", "/api/conversations?status=waiting")[1], what="the queue")
    assert loud_stack.console("POST", f"/api/conversations/{sender}/takeover")[0] == 200
    assert loud_stack.console("POST", f"/api/conversations/{sender}/messages", {"text": "你好，我是客服"})[0] == 200
    assert loud_stack.console("POST", f"/api/conversations/{sender}/release")[0] == 200
    time.sleep(1)  # the last lines reach the files

    files = log_files(tmp_path_factory.getbasetemp())
    own = [path for path in files if loud_stack.workdir in path.parents]
    assert {path.name for path in own} >= {"rasa.log", "actions.log", "console.log"}
    texts = {path: path.read_text(encoding="utf-8", errors="replace") for path in files}
    ours = "\n".join(texts[path] for path in own)
    assert "processor.message.parse" in ours and "wechat.on" in ours  # DEBUG really was on, WeChat was live
    assert wechat.openid[:6] + "…" in ours  # the OpenID is in the logs, shortened

    found = []
    for path, text in texts.items():
        where = path.relative_to(tmp_path_factory.getbasetemp())
        for name, secret in SECRETS.items():
            if secret in text:
                found.append(f"{where}: the {name}")
        for name, pattern in PATTERNS.items():
            for match in pattern.finditer(text):
                found.append(f"{where}: {name}: …{text[max(0, match.start() - 60):match.end() + 20]!r}…")
        for openid in OPENIDS_USED:
            if openid in text:
                found.append(f"{where}: the whole OpenID {openid}")
    assert not found, "\n".join(found[:30])
    print(f"\nscanned {len(files)} log files ({sum(map(len, texts.values())) // 1024} KiB) of this session")
