"""End-to-end fixtures: the real action server and Rasa server (weiquan/ops/harness.py), on free loopback ports."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from weiquan.ops.harness import Bot, running_bot


@pytest.fixture(scope="session")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    yield from running_bot(Bot(workdir=tmp_path_factory.mktemp("bot")))


# --- issue 12: servers at DEBUG with the project's own tracker store (masking, outage-proof) --------------------------


@pytest.fixture(scope="session")
def debug_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    """Both servers at DEBUG level (the most they ever log) with the project's SQLite tracker store."""
    bot = Bot(workdir=tmp_path_factory.mktemp("debug-bot"), rasa_args=["--debug"], action_args=["--debug"])
    bot.store = "sqlite"  # type: ignore[attr-defined]
    yield from running_bot(bot)
