"""The refresh token grant (RFC 6749 §6, OAuth 2.1 §4.3) at the token endpoint.

oauthlib's `RefreshTokenGrant` runs the steps; `RefreshTokenHooks` are the validator's answers:
refresh tokens rotate on every use; a spent token replayed after the grace window
(REFRESH_TOKEN_GRACE_PERIOD_SECONDS) revokes its whole family; a refresh never widens scope.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from oauth2_provider.settings import oauth2_settings

from activity import record as activity
from infra import rows
from oauth.backend import django_request, project_of
from oauth.models import AccessToken, RefreshToken
from oauth.tokens import dpop, id_token, revoke
from oauth.tokens import issue as tokens
from projects.models import AuditEvent
from webhooks import emit


def factory(request_validator):
    """oauthlib's OpenID refresh grant: the plain one, plus a new ID token for OpenID Connect (§12.2);
    a refresh token bound to a DPoP key needs a proof by that key (`oauth.tokens.dpop`, RFC 9449 §5)."""
    return dpop.constrain(id_token.refresh_grant(request_validator, post_token=[tokens.bind_audience]))


class RefreshTokenHooks:
    """The validator's refresh-token hooks (a mixin of `oauth.validator.Validator`)."""

    def rotate_refresh_token(self, request):
        return True  # every use, every client (OAuth 2.1 §4.3.1)

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        # One row: values are random 256-bit strings (the toolkit's key is checksum and revoked time).
        row = rows.select_one(RefreshToken, deferred=("user",), token_checksum=tokens.checksum(refresh_token),
                              application_id=client.pk)
        if row is None:
            return False
        row.application = client
        if row.revoked is not None and not self._within_grace(row):
            self._refresh_reused(row, request)
            return False
        if row.revoked is None and tokens.refresh_token_expired(row, project_of(request)):
            return False
        request.user = row.user
        request.refresh_token = refresh_token
        request.refresh_token_instance = row
        if row.assertion_iss:  # a family an enterprise ID-JAG started (oauth.grants.jwt_bearer)
            request.token_claims = {"assertion_iss": row.assertion_iss}
        return True

    def _within_grace(self, row: RefreshToken) -> bool:
        """A spent token stays usable briefly, only if it was rotated (not revoked on purpose)."""
        grace = timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
        if row.revoked <= timezone.now() - grace:
            return False
        return AccessToken.objects.filter(source_refresh_token=row).exists()

    def _refresh_reused(self, row: RefreshToken, request) -> None:
        with transaction.atomic():
            revoke.family(row.token_family, reason="refresh_reuse")
            AuditEvent.record(project_of(request), "token.refresh_reuse_detected",
                              client_id=row.application.client_id, request=django_request(request),
                              family=str(row.token_family))
            emit(project_of(request), "token.reuse_detected",
                 {"client_id": row.application.client_id, "subject": row.user.subject if row.user_id else None})
        activity.record(project_of(request), activity.DETECTED, "refresh_reuse", client_id=row.application.client_id)

    def _refreshed(self, previous: RefreshToken, request) -> None:
        """After the new tokens are stored: a family an ID-JAG started is audited with its issuer."""
        if previous.assertion_iss:
            AuditEvent.record(project_of(request), "token.refreshed_for_assertion",
                              client_id=request.client.client_id, request=django_request(request),
                              assertion_iss=previous.assertion_iss, family=str(previous.token_family))

    def get_original_scopes(self, refresh_token, request, *args, **kwargs):
        return request.refresh_token_instance.scope.split()

    def is_within_original_scope(self, request_scopes, refresh_token, request, *args, **kwargs):
        return False  # a refresh never widens scope
