"""`make purge-expired [ENDPOINTS=endpoints.yml]`: delete what is older than the retention period, in every store.

The period is $RETENTION_DAYS, else `retention_days` of the endpoints file's tracker store, else 30 days. Run it daily
(cron or a systemd timer); see docs/security.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone

from weiquan.services import default_services
from weiquan.stores import retention


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", default=os.environ.get("ENDPOINTS") or "endpoints.yml")
    args = parser.parse_args(argv)
    endpoints = retention.load_endpoints(args.endpoints)
    services = default_services()
    cutoff, deleted = retention.purge_expired(endpoints, services.clock.now(), services.env)
    when = datetime.fromtimestamp(cutoff, timezone.utc).isoformat(timespec="seconds")
    print(f"retention {retention.retention_days(endpoints, services.env):g} days: deleting what is older than {when}")
    if not deleted:
        print(f"{args.endpoints} configures no store that keeps conversations; nothing to delete.")
    for store, count in deleted.items():
        print(f"{store}: {count} records deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
