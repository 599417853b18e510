"""The authorization code grant (RFC 6749 §4.1, RFC 7636 PKCE S256, OAuth 2.1 §4.1) at the token endpoint.

oauthlib's `AuthorizationCodeGrant` runs the steps; `AuthorizationCodeHooks` are the validator's
answers: a code is single use, kept after redemption so that a replay revokes what it issued.
"""

from django.db import transaction
from oauthlib.oauth2 import AuthorizationCodeGrant
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError

from activity import record as activity
from infra import rows
from oauth.backend import django_request, own, project_of
from oauth.models import Grant
from oauth.tokens import dpop, id_token, revoke
from oauth.tokens import issue as tokens
from projects.models import AuditEvent


def factory(request_validator):
    """oauthlib's grant, behind OpenID Connect's dispatcher (`oauth.tokens.id_token`); both grants
    behind it bind their tokens to the client's DPoP key (`oauth.tokens.dpop`, RFC 9449 §5)."""
    plain = dpop.constrain(AuthorizationCodeGrant(request_validator, post_token=[tokens.bind_audience]))
    dispatcher = id_token.code_grant(request_validator, plain, post_token=[tokens.bind_audience])
    dpop.constrain(dispatcher.oidc_grant)
    return dispatcher


class AuthorizationCodeHooks:
    """The validator's authorization-code hooks (a mixin of `oauth.validator.Validator`)."""

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        """A redeemed code is a replay (RFC 6749 §4.1.2: revoke what it issued).

        In a project with OpenID Connect on, the dispatcher has just read the code's row
        (`get_authorization_code_scopes`, `request.code_row`): it is used when it is this client's.
        """
        grant = own(request, "code_row")
        if grant is None or grant.code != code or grant.application_id != client.pk:
            grant = rows.select_one(Grant, deferred=("user",), code=code, application_id=client.pk)
        if grant is None:
            return False
        grant.application = client
        if grant.redeemed_at is not None:
            self._code_replayed(grant, request)
            return False
        if grant.is_expired() or grant.code_challenge_method != Grant.CODE_CHALLENGE_S256:
            return False
        request.grant_instance = grant
        request.scopes = grant.scope.split()
        request.user = grant.user
        return True

    def _code_replayed(self, grant: Grant, request) -> None:
        with transaction.atomic():
            revoke.family(grant.token_family, reason="code_replay")
            AuditEvent.record(project_of(request), "token.code_replayed", client_id=grant.application.client_id,
                              request=django_request(request), grant=grant.pk, family=str(grant.token_family or ""))
        activity.record(project_of(request), activity.DETECTED, "code_replay", client_id=grant.application.client_id)

    def _grant(self, code, request) -> Grant:
        grant = own(request, "grant_instance", None)
        return grant if grant is not None and grant.code == code else Grant.objects.get(code=code, application=request.client)

    def get_code_challenge(self, code, request):
        return self._grant(code, request).code_challenge or None

    def get_code_challenge_method(self, code, request):
        return self._grant(code, request).code_challenge_method or None

    def get_default_redirect_uri(self, client_id, request, *args, **kwargs):
        """OAuth 2.1 §4.1.3: with PKCE a client may omit redirect_uri; it is then the code's own."""
        grant = own(request, "grant_instance", None)
        return grant.redirect_uri if grant is not None else super().get_default_redirect_uri(client_id, request)

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs):
        """RFC 6749 §5.2: a redirect_uri that differs from the authorization request's is
        `invalid_grant` (oauthlib would answer its own `invalid_request` for a False here)."""
        if not self._grant(code, request).redirect_uri_allowed(redirect_uri):
            raise InvalidGrantError("redirect_uri does not match the one of the authorization request.",
                                    request=request)
        return True

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        return self._grant(code, request).nonce or None

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        """Nothing left to do: `_save_bearer_token` spent the code (kept, not deleted, with the
        family it started) in the statement that stored the tokens."""
