"""Test-wide settings: no test writes to the project's own var/ stores."""
from __future__ import annotations

from pathlib import Path

import pytest

from weiquan.services import default_services


@pytest.fixture(autouse=True)
def handoff_store_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hand-off store follows HANDOFF_STORE_URL; without it, it would be var/handoff.db of the checkout."""
    monkeypatch.setenv("HANDOFF_STORE_URL", f"sqlite:///{tmp_path / 'handoff.db'}")
    default_services.cache_clear()  # the composition root reads the environment once: once per test here
