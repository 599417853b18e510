"""The mcpauth trusted-subject exchange (API.md): `POST {issuer}/api/oauth/token/exchange`.

A project secret holding `exchange` mints tokens for `{client_id, subject, scopes, resource?}`,
bounded by the client's scopes and the project's lifetimes, and audited. (RFC 8693 token exchange
at the token endpoint is the grant `oauth.grants.token_exchange`.)
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse

from oauth.clients.credentials import require_secret
from oauth.clients.lookup import load_client
from oauth.clients.scopes import allowed_scopes
from oauth.endpoints.decorator import oauth_endpoint, read_json_object
from oauth.endpoints.parsing import JSON_BODY
from oauth.errors import InvalidClient, InvalidRequest, InvalidScope
from oauth.models import Application
from oauth.tokens import issue as tokens
from projects.models import AuditEvent, User


def find_client(request: HttpRequest, body: dict[str, Any]) -> Application:
    client_id = body.get("client_id")
    client = load_client(request.project, client_id, request) if isinstance(client_id, str) else None
    if client is None:
        raise InvalidClient("Unknown client.", reason="exchange for unknown or disabled client")
    return client


def end_user(project, body: dict[str, Any]) -> User:
    """The project's end user with this `subject`, created on first sight (the operator vouches for it)."""
    subject = body.get("subject")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 255:
        raise InvalidRequest("subject must be a non-empty string of at most 255 characters.")
    user = User.objects.filter(project=project, subject=subject).first()
    if user is not None:
        return user
    try:
        with transaction.atomic():
            return User.objects.create_end_user(project, subject=subject)
    except IntegrityError:  # created concurrently
        return User.objects.get(project=project, subject=subject)


def bounded_scopes(client: Application, project, body: dict[str, Any]) -> list[str]:
    allowed = allowed_scopes(client, project)
    scopes = body.get("scopes")
    if scopes is None:
        return allowed
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise InvalidRequest("scopes must be a list of strings.")
    if not set(scopes).issubset(allowed):
        raise InvalidScope("A requested scope is not allowed for this client.")
    return list(dict.fromkeys(scopes))


def requested_resource(body: dict[str, Any]) -> list[str]:
    resource = body.get("resource")
    if resource is None or resource == "":
        return []
    if not isinstance(resource, str):
        raise InvalidRequest("resource must be a string.")
    return [resource]


@oauth_endpoint(("POST",), body=JSON_BODY)
def exchange(request: HttpRequest) -> JsonResponse:
    secret = require_secret(request, "exchange")
    body = read_json_object(request)
    project = request.project
    client = find_client(request, body)
    scopes = bounded_scopes(client, project, body)
    audience = tokens.resolve_audience(project, requested_resource(body), None)
    user = end_user(project, body)
    issued = tokens.mint(project, request.issuer, client, user, scopes=scopes, audience=audience)
    AuditEvent.record(project, "token.exchanged", actor=f"secret:{secret.prefix}", client_id=client.client_id,
                      request=request, subject=user.subject, scope=issued["scope"], resource=audience)
    return JsonResponse(issued)
