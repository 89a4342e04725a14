"""WeChat customer-service message API (客服消息), used when an answer misses the 5-second passive-reply window.

`CustomerServiceApi` is the small interface the channel depends on; `WeChatCustomerServiceApi` is the real aiohttp
client; `FakeCustomerServiceApi` records what would have been sent (tests inject it).

Access token: fetched from `/cgi-bin/stable_token` in normal mode (repeated calls within the validity return the same
token and never invalidate it, so several replicas can each fetch and cache it), cached until `expires_in` minus a
margin, refreshed once on "token invalid/expired" errors. Customer-service messages reach a buyer only within 48 hours
of the buyer's last message, and only for accounts with the customer-service permission (verified service accounts;
personal subscription accounts have none — leave WECHAT_APP_SECRET empty there).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.weixin.qq.com"
# errcodes meaning "this access_token is no good": invalid credential, invalid token, token expired.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})


class CustomerServiceError(Exception):
    """The API refused a call (errcode from WeChat) or could not be reached (errcode -1)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class CustomerServiceApi(Protocol):
    """Pushes a text message to a follower outside the passive-reply window."""

    async def send_text(self, openid: str, content: str) -> None:
        """Sends one text message (at most 2048 UTF-8 bytes); raises `CustomerServiceError` on failure."""

    async def close(self) -> None:
        """Releases network resources."""


class WeChatCustomerServiceApi:
    """Real client: aiohttp, stable access_token cached until shortly before it expires."""

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        now: Callable[[], float],
        timeout_s: float = 5.0,
        refresh_margin_s: float = 300.0,
    ) -> None:
        self._app_id = app_id
        self._app_secret = app_secret
        self._base_url = base_url.rstrip("/")
        self._now = now
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._refresh_margin_s = refresh_margin_s
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock: asyncio.Lock | None = None
        self._session: aiohttp.ClientSession | None = None
        self.token_fetches = 0  # observable in tests and logs

    async def send_text(self, openid: str, content: str) -> None:
        body = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        for attempt in (1, 2):
            token = await self.access_token()
            result = await self._post("/cgi-bin/message/custom/send", body, params={"access_token": token})
            errcode = int(result.get("errcode", 0) or 0)
            if errcode == 0:
                return
            if errcode in TOKEN_ERRORS and attempt == 1:
                self._invalidate(token)
                continue
            raise CustomerServiceError(errcode, str(result.get("errmsg", "")))

    async def access_token(self) -> str:
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        async with self._token_lock:  # one fetch at a time; waiters reuse its result
            if self._token and self._now() < self._token_expires_at:
                return self._token
            result = await self._post(
                "/cgi-bin/stable_token",
                {"grant_type": "client_credential", "appid": self._app_id, "secret": self._app_secret},
            )
            token = result.get("access_token")
            if not isinstance(token, str) or not token:
                raise CustomerServiceError(int(result.get("errcode", -1) or -1), str(result.get("errmsg", "")))
            self.token_fetches += 1
            expires_in = float(result.get("expires_in", 7200) or 7200)
            self._token = token
            self._token_expires_at = self._now() + max(expires_in - self._refresh_margin_s, expires_in / 2)
            return token

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _invalidate(self, token: str) -> None:
        if self._token == token:
            self._token = None
            self._token_expires_at = 0.0

    async def _post(self, path: str, body: dict[str, Any], params: dict[str, str] | None = None) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        # ensure_ascii=False: Chinese goes out as UTF-8, as WeChat's examples do.
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            async with self._session.post(
                self._base_url + path,
                params=params,
                data=data,
                headers={"Content-Type": "application/json; charset=utf-8"},
            ) as response:
                response.raise_for_status()
                result = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise CustomerServiceError(-1, f"{path}: {type(error).__name__}") from error
        if not isinstance(result, dict):
            raise CustomerServiceError(-1, f"{path}: unexpected response")
        return result


class FakeCustomerServiceApi:
    """Offline stand-in: records (openid, content) pairs; `fail_with` makes every call fail with that errcode."""

    def __init__(self, fail_with: int | None = None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail_with = fail_with
        self.closed = False
        self._changed = asyncio.Event()

    async def send_text(self, openid: str, content: str) -> None:
        if self.fail_with is not None:
            raise CustomerServiceError(self.fail_with, "fake failure")
        self.sent.append((openid, content))
        self._changed.set()

    async def close(self) -> None:
        self.closed = True

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[tuple[str, str]]:
        """Waits until at least `count` messages were sent (pushes run in the background)."""

        async def _wait() -> None:
            while len(self.sent) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(_wait(), timeout_s)
        return list(self.sent)
