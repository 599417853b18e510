"""The issuer's revocation feed (mcpauth `GET {issuer}/oauth/revocations`), polled by a resource server
that verifies JWT access tokens locally, so that it refuses revoked ones within its poll interval.

The trade-off: a JWT verified against the JWKS alone stays good until `exp` after its revocation;
with this feed it stops working at most `poll_seconds` (plus one poll's duration) after it; with
introspection (`check_revocation=True`), at once, at the price of a round trip per token.

Polling happens on `verify` once the interval has passed: one caller polls while the others go on
with what is known (thread-safe). A feed that cannot be read is logged and tried again at the next
interval; what was learnt is kept (revoked tokens stay refused). Entries are forgotten once their
token has expired: `exp` refuses it then anyway.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("mcpauth_rs")

MAX_PAGES_PER_POLL = 100  # the issuer sends at most 1000 entries a page

Fetch = Callable[[str, dict[str, str]], tuple[int, Any]]  # (url, headers) -> (status, JSON document)


class RevocationFeed:
    """The `jti`s the issuer listed as revoked, kept up to date every `poll_seconds`."""

    def __init__(self, endpoint: Callable[[], str], secret: str, fetch: Fetch, *, poll_seconds: float = 30.0):
        self._endpoint = endpoint  # resolved lazily (issuer metadata) on the first poll
        self._headers = {"Authorization": f"Bearer {secret}"}
        self._fetch = fetch
        self.poll_seconds = poll_seconds
        self._revoked: dict[str, int] = {}  # jti -> exp
        self._cursor: str | None = None
        self._polled_at: float | None = None  # time.monotonic() of the last attempt
        self._read_once = False  # a first poll has ended (read or not)
        self._state = threading.Lock()  # guards _revoked, _cursor, _polled_at, _read_once
        self._polling = threading.Lock()  # one poller at a time

    def is_revoked(self, jti: Any) -> bool:
        """True when the issuer listed `jti` (polling first if the interval has passed)."""
        self.poll_if_due()
        if not isinstance(jti, str):
            return False
        with self._state:
            return jti in self._revoked

    def poll_if_due(self) -> None:
        with self._state:
            due = self._polled_at is None or time.monotonic() - self._polled_at >= self.poll_seconds
            first = not self._read_once
        if not due:
            return
        # The first poll is waited for by every caller (nothing is known yet); later ones are made by
        # whichever caller gets there first, while the others use what is known.
        if self._polling.acquire(blocking=first):
            try:
                with self._state:  # another caller may have polled while this one waited
                    still_due = not self._read_once if first else \
                        time.monotonic() - (self._polled_at or 0.0) >= self.poll_seconds
                if still_due:
                    self.poll()
            finally:
                self._polling.release()

    def poll(self) -> None:
        """Read the feed from the last cursor to its end now, and forget entries past `exp`."""
        with self._state:
            self._polled_at = time.monotonic()
            cursor = self._cursor
        try:
            self._read_from(cursor)
        finally:
            with self._state:
                self._read_once = True
        self._forget_expired()

    def _read_from(self, cursor: str | None) -> None:
        for _ in range(MAX_PAGES_PER_POLL):
            page = self._page(cursor)
            if page is None:
                return
            entries, cursor = page
            with self._state:
                for jti, exp in entries:
                    self._revoked[jti] = exp
                self._cursor = cursor
            if not entries:
                return

    def _page(self, cursor: str | None) -> tuple[list[tuple[str, int]], str] | None:
        url = self._endpoint()
        if cursor is not None:
            url += "?" + urllib.parse.urlencode({"since": cursor})
        status, document = self._fetch(url, self._headers)
        if status != 200 or not isinstance(document, dict) or not isinstance(document.get("next"), str) \
                or not isinstance(document.get("revoked"), list):
            logger.warning("revocation feed at %s answered HTTP %s", url, status)
            return None
        entries = [(e["jti"], e["exp"]) for e in document["revoked"]
                   if isinstance(e, dict) and isinstance(e.get("jti"), str) and isinstance(e.get("exp"), int)]
        return entries, document["next"]

    def _forget_expired(self) -> None:
        now = time.time()
        with self._state:
            for jti in [jti for jti, exp in self._revoked.items() if exp <= now]:
                del self._revoked[jti]

    def __len__(self) -> int:
        with self._state:
            return len(self._revoked)
