"""Operator login handoff (API.md "Authorization", login mode `handoff`): the operator's own login
page vouches for the end user, over a project secret holding `handoff`.

The browser is sent to `project.login_url?authorization_request={id}`. The operator's backend may
`GET {issuer}/api/oauth/authorization-requests/{id}`, then `POST .../complete` with
`{"subject", "scope"?, "claims"?}` or `POST .../deny`, and sends the browser to the returned
`redirect_to`. A request lives 10 minutes and is completed or denied once.
"""

import json
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse

from oauth.clients.credentials import require_secret
from oauth.endpoints.authorize import continue_url, deny
from oauth.endpoints.consent import redirect_host, verified_domain
from oauth.endpoints.decorator import oauth_endpoint, read_json_object
from oauth.endpoints.parsing import JSON_BODY
from oauth.endpoints.signin import client_name
from oauth.errors import AccessDenied, InvalidRequest, InvalidScope, NotFound
from oauth.models import AuthorizationRequest
from projects.models import AuditEvent, Project, User

USED = "This authorization request has expired or was already completed."
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def load(request: HttpRequest, authorization_id: str) -> AuthorizationRequest:
    """The project's request `authorization_id`, still waiting for the operator's decision."""
    request.secret = require_secret(request, "handoff")
    pending = None
    if REQUEST_ID.fullmatch(authorization_id):
        pending = (AuthorizationRequest.objects.filter(project=request.project, pk=authorization_id)
                   .select_related("client").first())
    if pending is None:
        raise NotFound("No such authorization request.")
    live = AuthorizationRequest.objects.live(request.project).filter(pk=pending.pk, user__isnull=True)
    if not live.exists() or pending.client.disabled_at is not None:
        raise InvalidRequest(USED)
    return pending


@oauth_endpoint(methods=("GET",), cors=False)
def authorization_request(request: HttpRequest, authorization_id: str) -> JsonResponse:
    pending = load(request, authorization_id)
    return JsonResponse({
        "id": pending.pk,
        "client_id": pending.client.client_id,
        "client_name": client_name(pending.client),
        "redirect_host": redirect_host(pending.redirect_uri),
        "verified_domain": verified_domain(pending.client),
        "scopes": pending.scopes,
        "resource": pending.resource,
        "expires_at": pending.expires_at.isoformat(),
    })


@oauth_endpoint(methods=("POST",), cors=False, body=JSON_BODY)
def complete(request: HttpRequest, authorization_id: str) -> JsonResponse:
    pending = load(request, authorization_id)
    body = read_json_object(request)
    subject, scopes, claims = check_subject(body), check_narrowing(body, pending), check_claims(body)
    user = end_user(request.project, subject)
    with transaction.atomic():
        # Single use: only the first complete (or deny) finds the request still unclaimed.
        claimed = AuthorizationRequest.objects.live(request.project).filter(pk=pending.pk, user__isnull=True).update(
            user=user, claims=claims, params={**pending.params, "scopes": scopes})
        if not claimed:
            raise InvalidRequest(USED)
        pending.refresh_from_db()
        redirect_to = continue_url(request, pending, absolute=True)
    audit(request, pending, "handoff.completed", subject=subject, scopes=scopes)
    return JsonResponse({"redirect_to": redirect_to})


@oauth_endpoint(methods=("POST",), cors=False, body=JSON_BODY)
def deny_request(request: HttpRequest, authorization_id: str) -> JsonResponse:
    pending = load(request, authorization_id)
    redirect_to = deny(pending, unclaimed=True)
    audit(request, pending, "handoff.denied")
    return JsonResponse({"redirect_to": redirect_to})


def audit(request: HttpRequest, pending: AuthorizationRequest, kind: str, **detail: Any) -> None:
    AuditEvent.record(request.project, kind, actor=f"secret {request.secret.prefix}",
                      client_id=pending.client.client_id, request=request, **detail)


def check_subject(body: dict[str, Any]) -> str:
    subject = body.get("subject")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 255 or "\x00" in subject:
        raise InvalidRequest("subject must be a non-empty string of at most 255 characters.")
    return subject


def check_narrowing(body: dict[str, Any], pending: AuthorizationRequest) -> list[str]:
    """The operator may narrow the requested scopes, never widen them (RFC 6749 §3.3)."""
    if body.get("scope") is None:
        return pending.scopes
    if not isinstance(body["scope"], str):
        raise InvalidRequest("scope must be a space-separated string.")
    narrowed = list(dict.fromkeys(body["scope"].split()))
    if not narrowed or not set(narrowed) <= set(pending.scopes):
        raise InvalidScope("scope may only narrow the requested scopes.")
    return [s for s in pending.scopes if s in narrowed]


def check_claims(body: dict[str, Any]) -> dict[str, Any]:
    claims = body.get("claims", {})
    if claims is None:
        return {}
    encoded = json.dumps(claims)
    # PostgreSQL's jsonb has no room for NUL characters.
    if not isinstance(claims, dict) or len(encoded) > 8192 or "\\u0000" in encoded:
        raise InvalidRequest("claims must be a JSON object (at most 8 KB).")
    return claims


def end_user(project: Project, subject: str) -> User:
    """The end user the operator vouches for: get-or-create by (project, subject)."""
    user = User.objects.filter(project=project, subject=subject).first()
    if user is None:
        try:
            with transaction.atomic():
                user = User.objects.create_end_user(project, subject=subject)
        except IntegrityError:  # created concurrently by another completion
            user = User.objects.get(project=project, subject=subject)
    if not user.is_active:
        raise AccessDenied("This end user is disabled.")
    return user
