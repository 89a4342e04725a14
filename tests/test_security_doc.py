"""docs/security.md's table names the test behind each claim: every file and test it names exists, so the table cannot
point at a test that was renamed or deleted."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMED = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`|`::(\w+)`")


def test_every_test_the_security_table_names_exists() -> None:
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    table = text.split("## The tests behind each claim", 1)[1]
    named = 0
    for row in (line for line in table.splitlines() if line.startswith("| ") and "tests/" in line):
        current = None
        for path, name, same_file in NAMED.findall(row):
            current = path or current
            assert current and (ROOT / current).is_file(), f"{current}: no such file ({row[:60]}…)"
            function = name or same_file
            if function:
                source = (ROOT / current).read_text(encoding="utf-8")
                assert re.search(rf"^(async )?def {function}\(", source, re.MULTILINE), f"{current}::{function}"
                named += 1
    assert named >= 25
