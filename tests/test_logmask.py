"""Personal numbers never reach a log line."""
from __future__ import annotations

import logging

import pytest

from weiquan import logmask


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("我电话13812345678", "我电话138****5678"),
        ("身份证110101199003071234", "身份证110101********1234"),
        ("身份证11010119900307123X", "身份证110101********123X"),
        ("订单号2345678901234567", "订单号2345****4567"),
        ("交易成功15天了，12分", "交易成功15天了，12分"),
        ("电话 138 1234 5678", "电话 138 1234 5678"),  # spaced digits are not a single number; left as typed
    ],
)
def test_mask(text: str, masked: str) -> None:
    assert logmask.mask(text) == masked


def test_installed_filter_masks_records_with_args(caplog: pytest.LogCaptureFixture) -> None:
    root = logging.getLogger()
    logmask.install(root)
    logmask.install(root)  # a second call adds nothing
    logging.getLogger("weiquan.test").warning("user said %s", "我的手机13912345678")
    assert "139****5678" in caplog.text and "13912345678" not in caplog.text
    for handler in root.handlers:
        assert sum(isinstance(f, logmask.MaskingFilter) for f in handler.filters) == 1
        handler.filters = [f for f in handler.filters if not isinstance(f, logmask.MaskingFilter)]
