"""`make forget SENDER=<id> [ENDPOINTS=endpoints.yml]`: delete one conversation from every store that holds it.

The conversation id is the REST `sender`, the widget's session id, or the buyer's WeChat OpenID. The id comes from
the SENDER environment variable (make passes it) or the command line.
"""
from __future__ import annotations

import argparse
import os
import sys

from weiquan.stores import retention


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", default=os.environ.get("ENDPOINTS") or "endpoints.yml")
    parser.add_argument("sender", nargs="?", default=os.environ.get("SENDER", ""))
    args = parser.parse_args(argv)
    if not args.sender.strip():
        parser.error("give the conversation id: make forget SENDER=<id>")
    deleted = retention.forget(retention.load_endpoints(args.endpoints), args.sender)
    if not deleted:
        print(f"{args.endpoints} configures no store that keeps conversations; nothing to delete.")
    for store, count in deleted.items():
        print(f"{store}: {count} records of conversation {args.sender!r} deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
