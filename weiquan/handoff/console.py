"""The operator console: `python -m weiquan.handoff.console --port 8090` (started by `make run`).

A small aiohttp server with two faces:

- the page (`/`, `static/`): plain HTML/JS/CSS, served with a strict Content-Security-Policy; every text reaches the
  page through `textContent`. It asks for the operator token once (or takes it from the URL fragment `#token=…`,
  which never reaches a server) and keeps it in sessionStorage;
- the JSON API (`/api/…`), used by the page and by other tools; every call needs `Authorization: Bearer
  <OPERATOR_TOKEN>` (compared in constant time), otherwise 401. docs/handoff.md documents it.

The analytics page (`/analytics`, `GET /api/analytics?days=N`, `GET /api/analytics.csv?days=N`) reads the analytics
store the event broker fills (weiquan/analytics/, docs/analytics.md), never the live trackers.

The console talks to Rasa's HTTP API with RASA_API_TOKEN (`weiquan.handoff.rasa_api`) and to the hand-off store;
a background sweep keeps the queue up to date and gives waiting conversations back to the bot after the wait.
While a page is connected to `/api/events` (live updates), operators count as online.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from weiquan.analytics import feedback, figures, review
from weiquan.analytics.store import AnalyticsStore, url_from_endpoints
from weiquan.core.clock import BEIJING
from weiquan.core.domain import domain
from weiquan.core.texts import load_text_file
from weiquan.handoff.rasa_api import HttpRasaApi
from weiquan.handoff.service import HandoffError, HandoffService
from weiquan.services import default_services
from weiquan.stores.handoff import OPERATOR

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
ANALYTICS_TEXTS = Path(review.__file__).with_name("texts.yml")
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/static/console.css": ("console.css", "text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
    "/analytics": ("analytics.html", "text/html; charset=utf-8"),
    # Built by `npm run build` in widget/ (chart.js bundled in from npm, nothing from a CDN).
    "/static/analytics.js": ("analytics.js", "text/javascript; charset=utf-8"),
}
CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
MIN_TOKEN_CHARS = 16
MAX_BODY_BYTES = 16 * 1024
MAX_DAYS = 366
REVIEW_DAYS = 30  # the inbox looks this far back unless ?days= says otherwise
SERVICE_KEY = web.AppKey("service", HandoffService)
STOPPING_KEY = web.AppKey("stopping", asyncio.Event)
SWEEP_KEY = web.AppKey("sweep", asyncio.Task)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda value: json.dumps(value, ensure_ascii=False))


def error_response(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": code, "message": message}, status=status)


def token_matches(header: str | None, token: str) -> bool:
    scheme, _, provided = (header or "").partition(" ")
    # compare_digest on bytes of any length: the time does not depend on how much of the token was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(provided.strip().encode(), token.encode())


def domain_intents() -> frozenset[str]:
    """The intents an operator may give a reviewed message: domain.yml's."""
    return frozenset(item if isinstance(item, str) else next(iter(item)) for item in domain()["intents"])


def create_app(
    service: HandoffService,
    token: str,
    *,
    sweep_interval_s: float = 2.0,
    poll_interval_s: float = 1.0,
    heartbeat_s: float = 10.0,
    analytics: AnalyticsStore | None = None,
    intents: frozenset[str] | None = None,
    widget_origins: frozenset[str] = frozenset(),
) -> web.Application:
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"OPERATOR_TOKEN must have at least {MIN_TOKEN_CHARS} characters")

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            if not token_matches(request.headers.get("Authorization"), token):
                response: web.StreamResponse = error_response(401, "unauthorized", "需要正确的客服令牌。")
                response.headers["WWW-Authenticate"] = 'Bearer realm="weiquan-console"'
            else:
                try:
                    response = await handler(request)
                except HandoffError as error:
                    response = error_response(error.status, error.code, error.message)
            response.headers["Cache-Control"] = "no-store"
        else:
            response = await handler(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    intents = domain_intents() if intents is None else intents
    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY_BYTES)
    app[SERVICE_KEY] = service
    app[STOPPING_KEY] = asyncio.Event()
    files = {path: ((STATIC_DIR / name).read_bytes(), kind) for path, (name, kind) in STATIC_FILES.items()}

    async def static(request: web.Request) -> web.Response:
        body, kind = files[request.path]
        return web.Response(body=body, headers={"Content-Type": kind, "Cache-Control": "no-cache"})

    async def health(_: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def conversations(request: web.Request) -> web.Response:
        status = request.query.get("status", "waiting")
        try:
            return json_response(service.listing(status))
        except ValueError:
            return error_response(400, "bad_status", "status 只能是 waiting、active 或 all。")

    async def read_body(request: web.Request, required: bool) -> dict[str, Any]:
        if not required and not await request.read():
            return {}
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise HandoffError(400, "bad_json")
        return body

    async def detail(request: web.Request) -> web.Response:
        return json_response(await service.detail(request.match_info["sender_id"]))

    async def take_over(request: web.Request) -> web.Response:
        body = await read_body(request, required=False)
        operator = body.get("operator") if isinstance(body.get("operator"), str) else None
        return json_response(await service.take_over(request.match_info["sender_id"], operator))

    async def send(request: web.Request) -> web.Response:
        body = await read_body(request, required=True)
        return json_response(await service.send(request.match_info["sender_id"], body.get("text")))

    async def release(request: web.Request) -> web.Response:
        await read_body(request, required=False)
        return json_response(await service.release(request.match_info["sender_id"]))

    async def events(request: web.Request) -> web.StreamResponse:
        """Server-sent events: `changed` whenever the queue changes; open streams mean an operator is online."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no",
                                               "Cache-Control": "no-store"})
        await response.prepare(request)
        stopping = request.app[STOPPING_KEY]
        last_version: int | None = None
        last_beat = 0.0
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            while not stopping.is_set():
                now = service.now()
                if now - last_beat >= heartbeat_s:
                    service.store.touch(OPERATOR, now)
                    await response.write(b": online\n\n")
                    last_beat = now
                version = service.store.version()
                if version != last_version:
                    await response.write(f"event: changed\ndata: {version}\n\n".encode())
                    last_version = version
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stopping.wait(), poll_interval_s)
        return response

    def period(request: web.Request, default: str = "7") -> tuple[AnalyticsStore, date, float, float]:
        """The analytics store and the chosen period: its first day, and its start and end as timestamps."""
        if analytics is None:
            raise HandoffError(503, "analytics_off")
        try:
            days = int(request.query.get("days", default))
        except ValueError:
            days = 0
        if not 1 <= days <= MAX_DAYS:
            raise HandoffError(400, "bad_days", max_days=MAX_DAYS)
        first = service.today() - timedelta(days=days - 1)
        start = datetime(first.year, first.month, first.day, tzinfo=BEIJING).timestamp()
        return analytics, first, start, start + days * 86_400

    def period_figures(request: web.Request) -> dict[str, Any]:
        store, first, start, end = period(request)
        days = round((end - start) / 86_400)
        events = store.events(start, end)
        result = figures.compute(events, first, days, BEIJING, lost=store.lost(start, end))
        result["new_families"] = review.families(events, store.reviews())
        return result

    def review_items(request: web.Request) -> tuple[AnalyticsStore, list[dict[str, Any]]]:
        store, _, start, end = period(request, default=str(REVIEW_DAYS))
        return store, review.inbox(store.events(start, end), decided=[r.key for r in store.reviews()])

    async def review_list(request: web.Request) -> web.Response:
        _, items = review_items(request)
        return json_response({"items": items, "intents": sorted(intents)})

    async def review_decide(request: web.Request) -> web.Response:
        """`{"intent": …}` confirms or corrects, `{"dismiss": true}` dismisses, `{"family": "<short name>"}` puts the
        message in a new other-problem family (stored as out_of_scope, docs/analytics.md)."""
        body = await read_body(request, required=True)
        intent, family = body.get("intent"), None
        if body.get("dismiss") is True:
            intent = None
        elif "family" in body:
            try:
                family = review.family_name(body["family"])
            except ValueError:
                return error_response(400, "bad_family", load_text_file(ANALYTICS_TEXTS).text(
                    "errors.bad_family", max_chars=review.MAX_FAMILY_CHARS))
            intent = review.FAMILY_INTENT
        elif not isinstance(intent, str) or intent not in intents:
            raise HandoffError(400, "bad_review")
        store, items = review_items(request)
        item = next((item for item in items if item["id"] == request.match_info["item_id"]), None)
        if item is None:
            raise HandoffError(404, "review_not_found")
        store.decide(item["id"], item["text"], item["guess"], intent, service.now(), family=family)
        return json_response({"id": item["id"], "intent": intent, "dismissed": intent is None, "family": family})

    async def analytics_json(request: web.Request) -> web.Response:
        return json_response(period_figures(request))

    async def analytics_csv(request: web.Request) -> web.Response:
        result = period_figures(request)
        name = f"weiquan-analytics-{result['from']}-{result['to']}.csv"
        return web.Response(text=figures.to_csv(result), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})

    feedback_gate = feedback.rate_gate(time.monotonic)

    async def rate(request: web.Request) -> web.Response:
        """A buyer's 👍/👎 from the widget (weiquan/analytics/feedback.py): no token, only from the widget's origins."""
        origin = request.headers.get("Origin", "")
        if origin not in widget_origins:
            return web.Response(status=403)
        cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if analytics is None:
            return web.Response(status=503, headers=cors)
        if (request.content_length or 0) > feedback.MAX_BODY_BYTES:
            return web.Response(status=413, headers=cors)
        try:
            raw = await request.content.read(feedback.MAX_BODY_BYTES + 1)
            if len(raw) > feedback.MAX_BODY_BYTES:
                return web.Response(status=413, headers=cors)
            body = json.loads(raw.decode("utf-8"))
            sender = body.get("sender_id") if isinstance(body, dict) else None
            refused = feedback_gate.check(str(sender), request.remote)
            if refused is not None:
                return web.Response(status=429, headers={**cors, "Retry-After": str(refused.retry_after_s)})
            feedback.record(body, analytics, service.now())
        except (ValueError, feedback.BadFeedback):
            return web.Response(status=400, headers=cors)
        return web.Response(status=204, headers=cors)

    for path in files:
        app.router.add_get(path, static)
    app.router.add_post("/feedback", rate)
    app.router.add_get("/api/analytics", analytics_json)
    app.router.add_get("/api/analytics.csv", analytics_csv)
    app.router.add_get("/api/review", review_list)
    app.router.add_post("/api/review/{item_id}", review_decide)
    app.router.add_get("/healthz", health)
    app.router.add_get("/api/conversations", conversations)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/conversations/{sender_id:.+}", detail)
    app.router.add_post("/api/conversations/{sender_id:.+}/takeover", take_over)
    app.router.add_post("/api/conversations/{sender_id:.+}/messages", send)
    app.router.add_post("/api/conversations/{sender_id:.+}/release", release)

    async def sweep_forever() -> None:
        stopping = app[STOPPING_KEY]
        while not stopping.is_set():
            try:
                await service.sweep()
            except Exception:  # noqa: BLE001 - a broken sweep must not stop the console; it is retried
                logger.exception("handoff.sweep_failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), sweep_interval_s)

    async def start_sweep(app: web.Application) -> None:
        app[SWEEP_KEY] = asyncio.create_task(sweep_forever())

    async def stop(app: web.Application) -> None:
        app[STOPPING_KEY].set()  # ends the event streams and the sweep

    async def cleanup(app: web.Application) -> None:
        await app[SWEEP_KEY]
        await service.rasa.close()

    # aiohttp 3.9 types its signals as lists of handlers of handlers; these are plain async handlers.
    app.on_startup.append(start_sweep)  # type: ignore[arg-type]
    app.on_shutdown.append(stop)  # type: ignore[arg-type]
    app.on_cleanup.append(cleanup)  # type: ignore[arg-type]
    return app


def main(argv: list[str] | None = None) -> int:
    services = default_services()  # the console process's composition root
    env = services.env
    parser = argparse.ArgumentParser(description="the operator console (hand-off to a person)")
    parser.add_argument("--host", default=env.get("CONSOLE_HOST", "127.0.0.1"),
                        help="interface to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=int(env.get("CONSOLE_PORT", "8090")))
    parser.add_argument("--rasa-url", default=env.get("RASA_URL", "http://127.0.0.1:5005"),
                        help="Rasa's HTTP API, reached privately (default: loopback)")
    parser.add_argument("--endpoints", default=env.get("ENDPOINTS") or "endpoints.yml",
                        help="where the analytics store is (its event_broker section)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s - %(message)s")
    token = env.get("OPERATOR_TOKEN", "")
    rasa_token = env.get("RASA_API_TOKEN", "")
    if len(token) < MIN_TOKEN_CHARS or not rasa_token:
        print(f"set OPERATOR_TOKEN (at least {MIN_TOKEN_CHARS} characters) and RASA_API_TOKEN "
              "(`make run` generates both)", file=sys.stderr)
        return 2
    service = HandoffService(services.handoff_store(), HttpRasaApi(args.rasa_url, rasa_token), services.handoff,
                             services.clock, outbox=services.outbox())
    endpoints = yaml.safe_load(Path(args.endpoints).read_text(encoding="utf-8")) or {}
    analytics_url = url_from_endpoints(endpoints, env)
    analytics = AnalyticsStore(analytics_url) if analytics_url else None
    origins = frozenset(env.get("WIDGET_ALLOWED_ORIGINS", "").split())
    app = create_app(service, token, analytics=analytics, widget_origins=origins)
    web.run_app(app, host=args.host, port=args.port, print=None, shutdown_timeout=5, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
