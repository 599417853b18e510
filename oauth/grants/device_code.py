"""Device authorization grant (RFC 8628): its codes, the token endpoint's grant and validator hooks.

Built on the toolkit's device grant support: its model (`AbstractDeviceGrant`, swapped as
`oauth.DeviceGrant` with a project), oauthlib's `DeviceCodeGrant` and its `validate_device_code`
hook. What differs from the toolkit's defaults:

- every lookup is within one project: a device code by its digest and the polling client, a
  user code by its digest and the project (`projects.secrets.digest`; the codes are never stored);
- user codes are 8 letters from RFC 8628 §6.1's consonants, shown `XXXX-XXXX`;
- a client polling faster than its interval gets `slow_down`, and the interval grows by 5 s
  (§3.5), counted on the row so every worker agrees;
- a device code is redeemed once, like an authorization code: the statement that stores the
  tokens spends it (`rows.spend`), durably, and a replay revokes the tokens it issued.

The verification page and the device authorization endpoint are in `oauth.endpoints.device`.
"""

import json
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from oauthlib.oauth2 import DeviceCodeGrant
from oauthlib.oauth2.rfc6749.errors import UnauthorizedClientError

from infra import rows
from oauth import grants
from oauth.backend import django_request, own, project_of
from oauth.errors import InvalidGrant, InvalidRequest
from oauth.models import DeviceGrant
from oauth.tokens import dpop, revoke
from oauth.tokens import issue as tokens
from projects import secrets as digests
from projects.models import AuditEvent

GRANT_TYPE = grants.DEVICE_CODE
# RFC 8628 §6.1: consonants only (no vowels, so no words), none easily mistaken for another.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8  # 20^8: ~34.5 bits, with guessing throttled (§5.1)
EXPIRES_IN = 600  # seconds a device code and its user code live
INTERVAL = 5  # RFC 8628 §3.2: the default polling interval
SLOW_DOWN_STEP = 5  # §3.5: "the interval MUST be increased by 5 seconds"
POLL_LEEWAY = timedelta(milliseconds=500)  # a poll sent on time may arrive a little early


def enabled(project) -> bool:
    """Whether `project` offers the grant (its switch, through the one registry)."""
    return grants.find(GRANT_TYPE).enabled(project)


# --- user codes ---------------------------------------------------------------------------------
def generate_user_code() -> str:
    """A new user code as shown to the person: `XXXX-XXXX`."""
    code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    return shown(code)


def shown(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize_user_code(text: str) -> str | None:
    """What the person typed, as stored: upper case, without the dash or spaces (§6.1: "the
    authorization server SHOULD ... ignore ... punctuation"); None when it cannot be a user code."""
    code = "".join(ch for ch in text.upper() if ch not in "- \t")[:64]
    if len(code) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in code):
        return None
    return code


def user_code_digest(code: str, key: str | None = None) -> str:
    return digests.digest(f"user_code:{code}", key)


def device_code_digest(device_code: str, key: str | None = None) -> str:
    return digests.digest(f"device_code:{device_code}", key)


# --- issuing (the device authorization endpoint) ------------------------------------------------
def store(project, client, response: dict, scopes: list[str], resource: str) -> DeviceGrant:
    """Keep what the device authorization response handed out, as digests (RFC 8628 §3.2)."""
    return DeviceGrant.objects.create(
        project=project, application=client, client_id=client.client_id,
        device_code=device_code_digest(response["device_code"]),
        user_code=user_code_digest(normalize_user_code(response["user_code"]) or ""),
        scope=" ".join(scopes), resource=[resource] if resource else [], interval=response["interval"],
        expires=timezone.now() + timedelta(seconds=response["expires_in"]),
    )


def pending_by_user_code(project, code: str) -> DeviceGrant | None:
    """The project's live, undecided device grant whose user code is `code` (normalized)."""
    candidates = [user_code_digest(code, key) for key in digests.digest_keys()]  # DIGEST_KEY_FALLBACKS too
    return (DeviceGrant.objects.filter(project=project, user_code__in=candidates,
                                       status=DeviceGrant.AUTHORIZATION_PENDING, expires__gt=timezone.now(),
                                       application__disabled_at__isnull=True)
            .select_related("application").first())


# --- the person's decision (oauth.authorize's finish and deny) ---------------------------------
def decide(pending, status: str) -> None:
    """Record the person's decision on the device grant of `pending` (an AuthorizationRequest),
    once, while it is undecided and alive; InvalidRequest otherwise."""
    values = {"status": status}
    if status == DeviceGrant.AUTHORIZED:
        values |= {"user": pending.user, "scope": " ".join(pending.scopes)}  # handoff may narrow them
    decided = DeviceGrant.objects.filter(
        pk=pending.params["device_grant"], project_id=pending.project_id, status=DeviceGrant.AUTHORIZATION_PENDING,
        expires__gt=timezone.now(), redeemed_at__isnull=True).update(**values)
    if not decided:
        raise InvalidRequest("This device code has expired or was already used.")


def done_url(pending, status: str) -> str:
    """Where the browser goes once the person decided: the verification page, saying so."""
    result = "approved" if status == DeviceGrant.AUTHORIZED else "denied"
    return f"{pending.params['issuer']}/device?result={result}"


# --- the token endpoint -------------------------------------------------------------------------
def factory(request_validator) -> "DeviceCode":
    # DPoP binds device-flow tokens as it does the code flow's (a project requiring DPoP of public
    # clients requires it here too: the device grant is a public client's grant).
    return dpop.constrain(DeviceCode(request_validator, post_token=[tokens.bind_audience]))


class DeviceCode(DeviceCodeGrant):
    """oauthlib's RFC 8628 §3.4 grant, offered only where the project's switch is on."""

    def validate_grant_type(self, request) -> None:
        if not enabled(project_of(request)):
            raise UnauthorizedClientError("The device authorization grant is not enabled for this project.",
                                          request=request)
        super().validate_grant_type(request)

    def create_token_response(self, request, token_handler):
        # oauthlib's device grant applies no token modifiers: DPoP's token_type is applied here.
        headers, body, status = super().create_token_response(request, token_handler)
        if status == 200:
            body = json.dumps(dpop.token_type(json.loads(body)))
        return headers, body, status


class DeviceCodeHooks:
    """The OAuth2Validator hooks of the device grant (mixed into `oauth.validator.Validator`)."""

    def validate_device_code(self, client_id, code, request, *args, **kwargs) -> str | None:
        """RFC 8628 §3.5: the state of `code` for the polling client, as oauthlib's status names."""
        row = None
        for key in digests.digest_keys() if isinstance(code, str) else ():  # DIGEST_KEY, then its fallbacks
            row = rows.select_one(DeviceGrant, deferred=("user",), device_code=device_code_digest(code, key),
                                  application_id=request.client.pk)
            if row is not None:
                break
        if row is None:
            return None
        row.application = request.client
        if row.redeemed_at is not None:
            self._device_code_replayed(row, request)
            return None
        if row.expires <= timezone.now():
            return DeviceCodeGrant.DEVICE_CODE_EXPIRED
        if row.status == DeviceGrant.DENIED:
            return DeviceCodeGrant.DEVICE_CODE_DENIED
        if row.status == DeviceGrant.AUTHORIZED:
            request.device_grant_instance = row
            request.user, request.scopes = row.user, row.scope.split()
            return DeviceCodeGrant.DEVICE_CODE_AUTHORIZED
        if polled_too_fast(row):
            return DeviceCodeGrant.DEVICE_CODE_SLOW_DOWN
        return DeviceCodeGrant.DEVICE_CODE_PENDING

    def _device_code_replayed(self, row: DeviceGrant, request) -> None:
        """Like a replayed code (RFC 6749 §4.1.2): what the device code issued is revoked."""
        with transaction.atomic():
            revoke.family(row.token_family, reason="device_code_replay")
            AuditEvent.record(project_of(request), "token.device_code_replayed", client_id=row.client_id,
                              request=django_request(request), device_grant=row.pk)

    def _device_spend(self, request, now) -> rows.Guard | None:
        """The guard that spends the device code in the statement storing its tokens, or None."""
        row = own(request, "device_grant_instance", None)
        if row is None:
            return None
        return rows.spend(DeviceGrant, row.pk, "redeemed_at", redeemed_at=now,
                          token_family=own(request, "token_family", None))

    def _device_claim_lost(self, request) -> None:
        """A concurrent poll redeemed the device code first: a replay (see `validate_device_code`).
        Returns when the lost claim was not a device code's."""
        row = own(request, "device_grant_instance", None)
        if row is None:
            return
        spent = rows.select_one(DeviceGrant, pk=row.pk)
        if spent is not None:
            self._device_code_replayed(spent, request)
        raise InvalidGrant(reason="device code redeemed concurrently")


def polled_too_fast(row: DeviceGrant) -> bool:
    """Record this poll; True (and the interval raised by 5 s) when it came before the interval
    had passed since the previous one. One conditional UPDATE on the row read: a concurrent poll
    that changed `polled_at` first makes this one too fast by definition."""
    now = timezone.now()
    early = row.polled_at is not None and now < row.polled_at + timedelta(seconds=row.interval) - POLL_LEEWAY
    step = SLOW_DOWN_STEP if early else 0
    updated = DeviceGrant.objects.filter(pk=row.pk, polled_at=row.polled_at).update(
        polled_at=now, interval=F("interval") + step)
    return early or not updated

