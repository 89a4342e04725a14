"""The golden file of what crosses a process (tests/golden/contracts.json), written by tests/test_contracts.py from
the real producers (the presenter, the form, the hand-off service, the summary) and read by every consumer's test:
tests/test_render.py, the widget's own checks (widget/test/) and the browser test. Regenerate with
`UPDATE_GOLDEN=1 pytest tests/test_contracts.py` after a deliberate change of shape, and commit the file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GOLDEN_FILE = Path(__file__).with_name("contracts.json")


def golden() -> dict[str, Any]:
    return json.loads(GOLDEN_FILE.read_text(encoding="utf-8"))
