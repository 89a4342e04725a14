"""Serve the widget's demo page: `python scripts/serve_widget.py --port 8080 --server http://localhost:5005`.

Serves a fixed list of files (the demo page from widget/demo, the built widget from widget/dist) and a generated
/config.js that tells the page where the Rasa server is. Every response carries a Content-Security-Policy that allows
only this origin plus the Rasa server (http and ws), so the page loads nothing from anywhere else. Standard library
only; for a real site, embed widget/dist on your own pages instead (docs/widget.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
WIDGET = ROOT / "widget"
FILES = {
    "/": (WIDGET / "demo" / "index.html", "text/html; charset=utf-8"),
    "/index.html": (WIDGET / "demo" / "index.html", "text/html; charset=utf-8"),
    "/demo.css": (WIDGET / "demo" / "demo.css", "text/css; charset=utf-8"),
    "/weiquan-widget.js": (WIDGET / "dist" / "weiquan-widget.js", "text/javascript; charset=utf-8"),
    "/weiquan-widget.css": (WIDGET / "dist" / "weiquan-widget.css", "text/css; charset=utf-8"),
    "/favicon.svg": (WIDGET / "demo" / "favicon.svg", "image/svg+xml"),
}


def server_origin(url: str) -> str:
    """The Rasa server's origin (scheme://host[:port]); refuses anything that could smuggle text into the CSP."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"--server must look like http://localhost:5005, got {url!r}")
    if parts.query or parts.fragment or parts.username or any(c in url for c in " ;,'\""):
        raise ValueError(f"--server must be a bare origin, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(rasa_origin: str, feedback_origin: str = "") -> str:
    socket_origin = rasa_origin.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    extra = f" {feedback_origin}" if feedback_origin and feedback_origin != rasa_origin else ""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' {rasa_origin} {socket_origin}{extra}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def feedback_target(url: str) -> tuple[str, str]:
    """(the console's POST /feedback URL, its origin) for the buyers' 👍/👎; empty: no ratings on the page."""
    if not url:
        return "", ""
    parts = urlsplit(url)
    origin = server_origin(f"{parts.scheme}://{parts.netloc}")
    if parts.path != "/feedback" or parts.query or parts.fragment:
        raise ValueError(f"--feedback-url must be the console's /feedback, got {url!r}")
    return f"{origin}/feedback", origin


def config_js(rasa_origin: str, feedback_url: str = "") -> bytes:
    config: dict[str, object] = {"serverUrl": rasa_origin, "open": True}
    if feedback_url:
        config["feedbackUrl"] = feedback_url
    return f"window.WeiquanWidgetConfig = {json.dumps(config)};\n".encode()


class Handler(BaseHTTPRequestHandler):
    server_version = "weiquan-widget"
    sys_version = ""

    def __init__(self, *args: object, rasa_origin: str, quiet: bool, feedback: tuple[str, str] = ("", ""),
                 **kwargs: object) -> None:
        self.rasa_origin = rasa_origin
        self.feedback_url, self.feedback_origin = feedback
        self.quiet = quiet
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, head_only: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", content_security_policy(self.rasa_origin, self.feedback_origin))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _respond(self, head_only: bool) -> None:
        path = urlsplit(self.path).path
        if path == "/config.js":
            body = config_js(self.rasa_origin, self.feedback_url)
            self._send(HTTPStatus.OK, body, "text/javascript; charset=utf-8", head_only)
            return
        entry = FILES.get(path)
        if entry is None or not entry[0].is_file():
            self._send(HTTPStatus.NOT_FOUND, "找不到这个页面\n".encode(), "text/plain; charset=utf-8", head_only)
            return
        file, content_type = entry
        self._send(HTTPStatus.OK, file.read_bytes(), content_type, head_only)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._respond(head_only=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(head_only=True)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        if not self.quiet:
            super().log_message(format, *args)


def make_server(host: str, port: int, rasa_url: str, quiet: bool = False,
                feedback_url: str = "") -> ThreadingHTTPServer:
    handler = partial(Handler, rasa_origin=server_origin(rasa_url), quiet=quiet, feedback=feedback_target(feedback_url))
    return ThreadingHTTPServer((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    parser.add_argument(
        "--server",
        default=os.environ.get("WEIQUAN_RASA_URL", "http://localhost:5005"),
        help="the Rasa server's URL as the browser sees it (env WEIQUAN_RASA_URL)",
    )
    parser.add_argument("--feedback-url", default="",
                        help="the operator console's /feedback: the widget then offers 👍/👎 under a ruling")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    if not (WIDGET / "dist" / "weiquan-widget.js").is_file():
        print("widget/dist/weiquan-widget.js is missing: run `npm ci && npm run build` in widget/", file=sys.stderr)
        return 1
    httpd = make_server(args.host, args.port, args.server, args.quiet, args.feedback_url)
    print(f"widget demo: http://{args.host}:{args.port}/ (Rasa server {server_origin(args.server)})", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
