"""The project's OAuth2Validator (RFC 6749, 7636, 7009, 8707): the toolkit's, scoped to one tenant.

Set as OAUTH2_PROVIDER["OAUTH2_VALIDATOR_CLASS"]. It overrides only the hooks where mcpauth's
policy differs from the toolkit's defaults:

- clients are found through `oauth.clients.lookup.load_client(project, ...)`, never globally, and
  authenticated by the method they registered (`oauth.clients.auth.CLIENT_AUTH_METHODS`);
- grant types come from the grant's spec (`oauth.grants`) and the client's registration, scopes
  from the client and the project's catalog;
- each grant's own hooks live beside it (`oauth.grants.authorization_code`: codes are single use
  and kept after redemption so a replay revokes what they issued; `oauth.grants.refresh_token`:
  refresh tokens rotate on every use, a spent one replayed after the grace window revokes its family);
- lifetimes, audience and token values come from `oauth.tokens.issue`.

The token endpoint runs without an enclosing transaction. The code or refresh token is read
plainly, checked, and then spent by the same statement that stores the new tokens
(`infra.rows.write`): a conditional claim, so of concurrent uses exactly one writes anything, and
a loser learns it from the claim and is handled as a replay (or, for a refresh token inside the
grace window, gets sibling tokens). That statement is its own transaction. One that spends a code or
a refresh token always commits with the disk flush, so a database crash cannot bring a spent one back
(single use is durable before the tokens are returned); one that spends nothing (client_credentials,
token exchange, grace-window siblings) commits without waiting for it when TOKEN_ASYNC_COMMIT is on.
Revocations run in their own transactions, flushed.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from oauth2_provider.oauth2_validators import GRANT_TYPE_MAPPING, OAuth2Validator

from activity import record as activity
from infra import rows
from oauth import grants
from oauth.clients import auth as client_auth
from oauth.clients import redirects
from oauth.clients.lookup import load_client
from oauth.clients.scopes import allowed_scopes
from oauth.tokens import issue as tokens
from oauth.tokens import revoke
from oauth.tokens.id_token import OpenIDConnectValidator, auth_time_of
from projects.models import AuditEvent

from .backend import django_request, own, project_of
from .errors import InvalidGrant
from .models import AccessToken, Application, Grant, RefreshToken


class Validator(OpenIDConnectValidator, *grants.validator_hooks(), OAuth2Validator):
    """Each grant's hooks (its mixin, `oauth.grants.<grant>`) on the toolkit's validator; here only
    what every grant shares: finding and authenticating the client, scopes, storing and revoking."""

    # --- clients ------------------------------------------------------------------------------
    def _load_application(self, client_id, request):
        """Toolkit hook: the usable client `client_id` of this request's project, cached on the request."""
        project = project_of(request)
        cached = request.client
        if isinstance(cached, Application) and project is not None and cached.client_id == client_id \
                and cached.project_id == project.pk:
            return cached
        request.client = None
        if project is None or not isinstance(client_id, str):
            return None
        try:
            request.client = load_client(project, client_id, django_request(request))
        except ValueError:  # e.g. a NUL byte PostgreSQL refuses to compare: no such client
            return None
        return request.client

    def client_authentication_required(self, request, *args, **kwargs):
        """Any credential presented is checked; without one, only a `none` client may go on."""
        if client_auth.presented_method(request) is not None:
            return True
        client = self._load_application(request.client_id, request)
        return client is None or client_auth.registered_method(client) != "none"

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs):
        """RFC 6749 §3.1.2.3, OAuth 2.1 §2.3.1: simple string comparison, only a loopback port may vary."""
        return isinstance(redirect_uri, str) and redirects.matches(redirect_uri, request.client.redirect_uris.split())

    def authenticate_client(self, request, *args, **kwargs):
        """RFC 6749 §2.3: by the method the client registered (`oauth.clients.auth`)."""
        return client_auth.authenticate(request, self._load_application)

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        """No credential: only a client registered with `none` (a public client) is let through."""
        client = self._load_application(client_id, request)
        return client is not None and client_auth.registered_method(client) == "none"

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        """The grant's spec (`oauth.grants`) decides who may use it; the client must have registered it."""
        spec = grants.find(grant_type)
        if spec is None or grant_type not in GRANT_TYPE_MAPPING:
            return False
        if spec.confidential and client.client_type != Application.CLIENT_CONFIDENTIAL:
            return False
        if client.registration_path not in spec.paths:
            return False
        if grant_type == grants.REFRESH_TOKEN and client.allows_grant_type(grants.JWT_BEARER):
            return True  # refresh tokens an enterprise issuer allows (oauth.grants.jwt_bearer)
        return client.allows_grant_type(*GRANT_TYPE_MAPPING[grant_type])

    # --- scopes -------------------------------------------------------------------------------
    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        project = project_of(request)
        if request.grant_type == "client_credentials" and set(scopes) & set(project.openid_scope_names):
            return False  # OpenID Connect scopes are about an end user; a client alone has none
        return set(scopes).issubset(allowed_scopes(client, project))

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        project = project_of(request)
        return [s for s in allowed_scopes(request.client, project) if s not in project.openid_scope_names]

    # --- issuing ------------------------------------------------------------------------------
    def save_bearer_token(self, token, request, *args, **kwargs):
        """No savepoint around it (the toolkit nests one): `rows.write` is a single statement."""
        return self._save_bearer_token(token, request, *args, **kwargs)

    def _save_bearer_token(self, token, request, *args, **kwargs):
        """Store what oauthlib generated (checksums only, the project's lifetimes, the bound audience)
        and spend the code or refresh token it came from, in one statement (`rows.write`)."""
        now = timezone.now()
        previous = own(request, "refresh_token_instance", None)
        grant = own(request, "grant_instance", None) if request.grant_type == "authorization_code" else None
        rotating = previous is not None and previous.revoked is None  # else a grace-window sibling
        user = None if request.grant_type == "client_credentials" else request.user
        scope = token.get("scope", " ".join(request.scopes or []))
        audience = own(request, "audience", [])
        if token.get("refresh_token"):
            request.token_family = previous.token_family if previous is not None else uuid.uuid4()
        guard = None
        if grant is not None:
            guard = rows.spend(Grant, grant.pk, "redeemed_at", redeemed_at=now,
                               token_family=own(request, "token_family", None))
        elif rotating:
            guard = rows.spend(RefreshToken, previous.pk, "revoked", revoked=now, updated=now)
        else:
            guard = self._device_spend(request, now)  # RFC 8628: a device code, spent as a code is

        def rows_for(source):
            access = tokens.access_token_row(
                token["access_token"], client=request.client, user=user, scope=scope, audience=audience,
                expires=now + timedelta(seconds=token["expires_in"]), claims=own(request, "token_claims", {}),
                source_refresh_token=source)
            refresh = None
            if token.get("refresh_token"):
                refresh = tokens.refresh_token_row(token["refresh_token"], client=request.client, user=user,
                                                   scope=scope, audience=audience, family=request.token_family,
                                                   assertion_iss=own(request, "token_claims", {}).get("assertion_iss"),
                                                   dpop_jkt=own(request, "refresh_token_jkt", ""))
                refresh.auth_time = auth_time_of(request)  # OpenID Connect Core §12.2
            return access, refresh

        # Spending a code or refresh token is flushed before the response (durable single use).
        if not rows.write(*rows_for(previous if rotating else None), link="access_token", guard=guard,
                          relax_commit=settings.TOKEN_ASYNC_COMMIT and guard is None):
            self._device_claim_lost(request)
            self._lost_claim(request, grant, previous)
            # Still here: a concurrent refresh rotated the token inside the grace window; siblings.
            rows.write(*rows_for(None), link="access_token", relax_commit=settings.TOKEN_ASYNC_COMMIT)
        tokens.touch_client(request.client)
        self._count_issued(request, user, previous)
        if previous is not None:
            self._refreshed(previous, request)

    def _count_issued(self, request, user, previous: RefreshToken | None) -> None:
        """One count by grant type; a redeemed code or a refresh is also a step of the grant's timeline."""
        project, http = project_of(request), django_request(request)
        kind = {"authorization_code": "token.code_redeemed", "refresh_token": "token.refreshed"}.get(request.grant_type)
        event = None
        if kind is not None and user is not None:
            family = previous.token_family if previous is not None else own(request, "token_family")
            # the user's pk, not their `sub`: reading it would load the row (the timeline maps it)
            event = activity.event(project, kind, client_id=request.client.client_id, request=http,
                                   user=user.pk, family=str(family or ""))
        activity.record(project, activity.ISSUED, request.grant_type, client_id=request.client.client_id, event=event)

    def _lost_claim(self, request, grant: Grant | None, previous: RefreshToken | None) -> None:
        """A concurrent request spent the code or refresh token between our read and our write.

        Raises InvalidGrant as a replay would be answered (revoking what the code issued, or the
        refresh family past the grace window); returns for a refresh inside the grace window.
        """
        if grant is not None:
            spent = rows.select_one(Grant, pk=grant.pk)
            if spent is not None:  # else swept meanwhile: nothing left to revoke
                spent.application = grant.application
                self._code_replayed(spent, request)
            raise InvalidGrant(reason="code redeemed concurrently")
        spent = rows.select_one(RefreshToken, pk=previous.pk)
        if spent is None or spent.revoked is None:  # swept meanwhile
            raise InvalidGrant(reason="refresh token gone")
        if not self._within_grace(spent):
            spent.application = previous.application
            self._refresh_reused(spent, request)
            raise InvalidGrant(reason="refresh token spent concurrently")

    # --- revocation (RFC 7009) ----------------------------------------------------------------
    def revoke_token(self, token, token_type_hint, request, *args, **kwargs):
        """Only the authenticated client's own tokens; unknown ones are silently fine (§2.2)."""
        client = request.client
        if not isinstance(client, Application):
            return
        digest = tokens.checksum(token)
        access = rows.select_one(AccessToken, token_checksum=digest, application_id=client.pk)
        if access is not None:
            revoke.access_token(access, self._revoked_event(request, "access_token", access))
            activity.record(client.project, activity.REVOKED, "endpoint", client_id=client.client_id)
            return
        refresh = rows.select_one(RefreshToken, token_checksum=digest, application_id=client.pk)
        if refresh is not None:
            with transaction.atomic():  # the family and the event together
                revoke.refresh_token(refresh)
                rows.insert(self._revoked_event(request, "refresh_token", refresh))
            activity.record(client.project, activity.REVOKED, "endpoint", client_id=client.client_id)

    def _revoked_event(self, request, kind: str, row) -> AuditEvent:
        """With the end user's pk (no query): the step that ends their grant's timeline."""
        family = getattr(row, "token_family", None)
        return AuditEvent.new(request.client.project, "token.revoked", client_id=request.client.client_id,
                              request=django_request(request), token_type=kind,
                              **({"user": row.user_id} if row.user_id else {}),
                              **({"family": str(family)} if family else {}))
