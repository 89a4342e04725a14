"""Wait until every URL given answers, so `make run` prints its URLs only once they work."""
from __future__ import annotations

import sys
import time
import urllib.request

TIMEOUT_S = 300


def wait_all(urls: list[str]) -> int:
    deadline = time.monotonic() + TIMEOUT_S
    for url in urls:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    print(f"{url} did not answer within {TIMEOUT_S} s; see var/*.log", file=sys.stderr)
                    return 1
                time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(wait_all(sys.argv[1:]))
