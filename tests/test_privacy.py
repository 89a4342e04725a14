"""weiquan.core.privacy finds and masks personal data; weiquan.edge.logmask puts every log line of a process through
it."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from weiquan.core import privacy
from weiquan.ops.harness import ROOT


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("我电话13812345678", "我电话138****5678"),
        ("电话 138 1234 5678", "电话 138****5678"),
        ("+86 138-1234-5678", "+86 138****5678"),
        ("座机0571-88886666", "座机0571-****6666"),
        ("身份证110101199003071234", "身份证110101********1234"),
        ("身份证11010119900307123X", "身份证110101********123X"),
        ("订单号2345678901234567", "订单号2345****4567"),
        ("订单号123456789012345678", "订单号1234****5678"),  # 18 digits without a birth date: an order number
        ("邮箱zhang.san@example.com", "邮箱z***@example.com"),
        ("浙江省杭州市西湖区文三路477号华星大厦5楼", "浙江省杭州市西湖区[地址]"),
        ("我住在朝阳区建国路88号", "我住在朝阳区[地址]"),
        ("幸福小区3栋2单元501室", "[地址]"),
        ("地址：5号楼3单元402", "地址：[地址]"),
        ("上海市浦东新区张江镇碧波路690号", "上海市浦东新区张江镇[地址]"),
        ("北京市东城区建国门外大街1号院3号楼", "北京市东城区[地址]"),
        ("南京西路1266弄5号", "[地址]"),
        ("河北省保定市东闾乡张庄村3组", "河北省保定市东闾乡[地址]"),
        ("建国路八十八号", "[地址]"),
    ],
)
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert privacy.mask(text) == masked
    assert privacy.mask(masked) == masked  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "交易成功15天了，卖家扣了12分",
        "上个月15号交易成功的",
        "6月1号确认收货，3号开始打电话",
        "1号2号都打了电话",
        "双十一那天",
        "卖家知道我家住哪，说要上门",
        "我住三楼",
        "天猫超市买的",
        "2024-06-01 12:00",
        "12345678901",  # not a mobile number (12…)
        "用了旺旺举证号",
        '"confidence": 0.99851234560566',  # a float's decimals are no order number
    ],
)
def test_ordinary_buyer_text_is_left_alone(text: str) -> None:
    assert privacy.mask(text) == text


def test_find_names_the_kind_of_each_piece() -> None:
    kinds = [kind for kind, _ in privacy.find("手机13812345678，订单2345678901234567，住文三路477号")]
    assert kinds == ["long_number", "mobile", "address"]


def test_phone_entity_value_keeps_the_first_three_and_last_four_digits() -> None:
    assert privacy.mask_phone("13812345678") == "138****5678"


def test_mask_event_masks_text_entities_slots_and_metadata_but_not_identifiers() -> None:
    event = {
        "event": "user",
        "timestamp": 1.5,
        "text": "订单2345678901234567，电话13812345678",
        "message_id": "2345678901234567890abc",
        "parse_data": {
            "text": "订单2345678901234567",
            "intent": {"name": "inform"},
            "entities": [{"entity": "order_id", "value": "2345678901234567"}],
        },
        "metadata": {"customData": {"address": "幸福小区3栋2单元501室"}},
    }
    original = json.dumps(event, ensure_ascii=False)
    masked = json.dumps(privacy.mask_event(event), ensure_ascii=False)
    assert json.dumps(event, ensure_ascii=False) == original  # the input is not changed
    for clear in ("2345678901234567,", "13812345678", "幸福小区3栋"):
        assert clear.rstrip(",") not in masked.replace('"2345678901234567890abc"', "")
    assert '"message_id": "2345678901234567890abc"' in masked
    assert '"name": "inform"' in masked and "2345****4567" in masked and "[地址]" in masked


def test_masking_a_long_log_line_stays_cheap() -> None:
    line = ("卖家天天打电话骂我，" * 2000) + "13812345678" + ("幸福小区3栋2单元501室，" * 200)
    started = time.perf_counter()
    masked = privacy.mask(line)
    assert "13812345678" not in masked and "501室" not in masked
    assert time.perf_counter() - started < 5.0  # no runaway backtracking (typically ~20 ms)


# ---------------------------------------------------------------------- logmask, in a process set up like Rasa's

RASA_LIKE_PROCESS = textwrap.dedent(
    """
    import logging, sys, warnings
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog
    import structlog

    configure_logging_and_warnings(logging.DEBUG)
    configure_structlog(logging.DEBUG)
    early = structlog.get_logger()
    early.debug("cached.before.install", text="warm-up")  # a logger cached before our code loads

    from weiquan.edge import logmask
    logmask.install()  # what the channels' start-up listener and the tracker store do when Rasa starts

    handler = logging.StreamHandler(sys.stderr)  # a handler added after start-up
    logging.getLogger("late").addHandler(handler)
    secret = ("我电话13912345678，住文三路477号，订单2345678901234567，身份证110101199003071234，"
              "微信o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
    early.debug("processor.message.parse", parse_data_text=secret, parse_data_entities=[{"value": secret}])
    structlog.get_logger().info("other", tracker=object(), user_text=secret)
    logging.getLogger("rasa.core.processor").debug("Received user message '%s'", secret)
    logging.getLogger("late").warning(f"late handler {secret}")
    try:
        raise ValueError(secret)
    except ValueError:
        logging.getLogger("sanic.error").exception("Exception occurred while handling uri")
    warnings.warn(f"Failed to parse arguments in line '/inform{{\\"x\\": \\"{secret}\\"}}'")
    """
)


async def test_the_action_server_masks_its_logs_before_it_starts(monkeypatch) -> None:
    """rasa-sdk's plugin hook (rasa_sdk_plugins/) puts a start-up listener on the action server's app."""
    import logging

    from rasa_sdk.plugin import plugin_manager

    class App:  # records what rasa-sdk's hook registers on the action server's Sanic app
        listeners: list = []

        def register_listener(self, listener, event: str) -> None:
            self.listeners.append((event, listener))

    monkeypatch.setattr(logging, "_logRecordFactory", logging.getLogRecordFactory())  # restored after the test
    app = App()
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    [(event, listener)] = app.listeners
    assert event == "before_server_start"
    await listener(app)
    record = logging.getLogger("rasa_sdk.executor").makeRecord("x", logging.DEBUG, "f", 1, "电话 %s", ("13912345678",),
                                                                  None)
    assert record.getMessage() == "电话 139****5678"


def test_every_log_line_of_a_rasa_like_process_is_masked(tmp_path) -> None:
    script = tmp_path / "process.py"
    script.write_text(RASA_LIKE_PROCESS, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "processor.message.parse" in output and "Exception occurred" in output and "late handler" in output
    clear = ("13912345678", "文三路", "477号", "2345678901234567", "110101199003071234", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
    escaped = tuple(json.dumps(value)[1:-1] for value in clear)  # as structlog's JSON renderer writes Chinese
    for value in clear + escaped:
        assert value not in output, f"{value!r} in clear:\n{output}"
    assert "139****5678" in output and "2345****4567" in output
    assert "o6_bmj…" in output or "o6_bmj\\u2026" in output  # an OpenID shortened, as the channels write it
