"""Where a report's figures come from: the date and the commit they were measured on, printed in every report."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def commit() -> str:
    """The checked-out commit (short), with "+ uncommitted changes" when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return head + (" + uncommitted changes" if dirty else "")


def stamp() -> str:
    """'2026-12-07 09:12, commit 0123456789' — for a report's first lines."""
    return f"{time.strftime('%Y-%m-%d %H:%M')}, commit {commit()}"
