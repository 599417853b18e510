"""Signed webhooks (Standard Webhooks, https://www.standardwebhooks.com): a project's backend learns
what its issuer did — a client registered, a grant created or revoked, a secret issued.

`emit(project, type, data)` is the one call an event site makes: it only inserts rows in the outbox
(`Delivery`), in the caller's transaction, for the project's enabled webhooks subscribed to `type`.
Nothing is sent on the request path; the dispatcher (`webhooks.delivery.deliver_due`, run by Celery
beat, or by a background thread of each web process in the embedded default) signs and posts them.
"""

from typing import Any

from webhooks.events import EVENTS  # noqa: F401 - the list every reader follows


def emit(project: Any, type: str, data: dict) -> int:
    """Queue `type` with `data` (never a token, secret or password) for `project` (a Project or its
    primary key); returns how many deliveries were queued."""
    from webhooks import outbox

    return outbox.emit(project, type, data)
