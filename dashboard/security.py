"""Operators' second factors: the Security page (enrol TOTP and passkeys, recovery codes) and the
second step of signing in (docs/operators.md).

After a right password, an operator with a factor is not signed in yet: the session only holds
who is pending (`PENDING`, five minutes). A TOTP code, a recovery code or a passkey then signs them
in and marks the session verified (`django_otp.login`, read by `OTPMiddleware`). Every wrong answer
counts against `operator-mfa:account` and `operator-mfa:ip` (infra.ratelimit), a right one is
forgiven. Changing one's factors needs a second factor from the last ten minutes (`FRESH_SECONDS`):
the same page asks for it again.
"""

import json
import logging
import time

import django_otp
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from infra import ratelimit
from infra.ratelimit import RateLimited
from infra.security import client_ip
from mfa import factors, passkeys
from mfa.models import Passkey
from projects.models import AuditEvent, User

from .decorators import operator_required

log = logging.getLogger(__name__)

PENDING = "mfa.pending"
VERIFIED_AT = "mfa.verified_at"
PENDING_SECONDS = 300
FRESH_SECONDS = 600
BACKEND = "projects.auth.OperatorBackend"
THROTTLED = "Too many attempts. Wait a few minutes and try again."
WRONG_CODE = "That code is not right, or it was used already."


# --- the second step -----------------------------------------------------------------------------

def start_second_step(request, user: User, next_url: str):
    """The password was right and `user` has a factor: ask for it before signing in."""
    request.session.cycle_key()
    request.session[PENDING] = {"user": user.pk, "until": time.time() + PENDING_SECONDS, "next": next_url}
    return redirect("dashboard:login_verify")


def second_step_user(request) -> User | None:
    """Who the second step is for: the operator signed in (confirming again), or the pending one."""
    if request.user.is_authenticated and request.user.is_operator:
        return request.user
    pending = request.session.get(PENDING) or {}
    if pending.get("until", 0) < time.time():
        return None
    return User.objects.filter(pk=pending.get("user"), project__isnull=True, is_active=True).first()


def mfa_checks(request, user: User) -> list:
    return [ratelimit.check("operator-mfa:account", str(user.pk)),
            ratelimit.check("operator-mfa:ip", client_ip(request) or "unknown")]


def next_url(request) -> str:
    target = request.session.get(PENDING, {}).get("next") or request.GET.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("dashboard:home")


def finish(request, user: User, device) -> str:
    """Sign in (if pending) and mark the session verified by `device`; where to go next."""
    target = next_url(request)
    if not request.user.is_authenticated:
        login(request, user, backend=BACKEND)
    request.session.pop(PENDING, None)
    django_otp.login(request, device)
    request.session[VERIFIED_AT] = time.time()
    return target


def recently_verified(request) -> bool:
    return request.user.is_verified() and request.session.get(VERIFIED_AT, 0) > time.time() - FRESH_SECONDS


def confirm_first(request):
    """Send the operator to confirm with a second factor, then back to the Security page."""
    messages.info(request, "Confirm it is you with your second factor to change your security settings.")
    return redirect(reverse("dashboard:login_verify") + "?next=" + reverse("dashboard:security"))


def _verify_page(request, user, error="", status=200, refused=None):
    found = factors.factors_of(user)
    context = {"error": error, "has_totp": bool(found.totp), "has_passkeys": bool(found.passkeys),
               "passkeys_available": passkeys.available(), "recovery_left": found.recovery_left,
               "confirming": request.user.is_authenticated}
    response = render(request, "dashboard/login_verify.html", context, status=status)
    for name, value in (refused.headers if refused else {}).items():
        response[name] = value
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def login_verify(request):
    user = second_step_user(request)
    if user is None:
        messages.info(request, "Sign in again: the second step waits five minutes at most.")
        return redirect("dashboard:login")
    if request.method == "GET":
        return _verify_page(request, user)
    try:
        attempt = ratelimit.hit(*mfa_checks(request, user))
    except RateLimited as refused:
        return _verify_page(request, user, THROTTLED, 429, refused)
    device = factors.verify_code(user, request.POST.get("code", "")[:64])
    if device is None:
        return _verify_page(request, user, WRONG_CODE, 400)
    attempt.forgive()
    target = finish(request, user, device)
    if isinstance(device, StaticDevice):
        left = device.token_set.count()
        AuditEvent.record(None, "operator.recovery_code_used", actor=user.email, request=request, left=left)
        messages.warning(request, f"You used a recovery code; {left} left. Generate new ones on the Security page.")
    return redirect(target)


def _json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@never_cache
@require_POST
def passkey_login_options(request):
    user = second_step_user(request)
    if user is None or not passkeys.available():
        return JsonResponse({"error": "Sign in again."}, status=400)
    return JsonResponse(json.loads(passkeys.authentication_options(request.session, user)))


@never_cache
@require_POST
def passkey_login(request):
    user = second_step_user(request)
    if user is None:
        return JsonResponse({"error": "Sign in again."}, status=400)
    try:
        attempt = ratelimit.hit(*mfa_checks(request, user))
    except RateLimited as refused:
        return JsonResponse({"error": THROTTLED}, status=429, headers=refused.headers)
    try:
        passkey = passkeys.authenticate(request.session, user, _json_body(request).get("credential") or {})
    except passkeys.PasskeyRefused as exc:
        log.info("passkey refused", extra={"reason": str(exc)})
        return JsonResponse({"error": "That passkey was not accepted. Try again."}, status=400)
    attempt.forgive()
    return JsonResponse({"redirect": finish(request, user, passkey)})


# --- the Security page ---------------------------------------------------------------------------

def _security_page(request, status=200, **extra):
    user = request.user
    pending = factors.pending_totp(user)
    context = {"factors": factors.factors_of(user), "pending": pending,
               "passkeys_available": passkeys.available(), "public_url": settings.PUBLIC_URL, **extra}
    if pending is not None:
        context |= {"qr_svg": factors.totp_qr_svg(pending), "secret": factors.totp_secret(pending)}
    return render(request, "dashboard/security.html", context, status=status)


def _audit(request, kind: str, **detail) -> None:
    AuditEvent.record(None, kind, actor=request.user.email, request=request, **detail)


def _verified_now(request, device) -> None:
    """A factor just proved itself: this session counts as verified by it."""
    django_otp.login(request, device)
    request.session[VERIFIED_AT] = time.time()


@never_cache
@operator_required
@require_http_methods(["GET", "POST"])
def security(request):
    if request.method == "GET":
        return _security_page(request)
    action = request.POST.get("action", "")
    if factors.has_factor(request.user) and not recently_verified(request):
        return confirm_first(request)
    if action == "totp_start" and not factors.factors_of(request.user).totp:  # one app per operator
        factors.start_totp(request.user)
        return _security_page(request)
    if action == "totp_confirm":
        return _confirm_totp(request)
    if action == "recovery":
        return _new_recovery_codes(request)
    return redirect("dashboard:security")


def _confirm_totp(request):
    device = factors.pending_totp(request.user)
    if device is None:
        return redirect("dashboard:security")
    if not factors.confirm_totp(device, request.POST.get("code", "")[:64]):
        return _security_page(request, 400, totp_error=WRONG_CODE)
    _verified_now(request, device)
    _audit(request, "operator.mfa_added", factor="totp")
    messages.success(request, "Authenticator app added. From now on, signing in asks for a code from it.")
    return redirect("dashboard:security")


def _new_recovery_codes(request):
    if not factors.has_factor(request.user):
        messages.error(request, "Add an authenticator app or a passkey first.")
        return redirect("dashboard:security")
    codes = factors.new_recovery_codes(request.user)
    _audit(request, "operator.recovery_codes_regenerated", count=len(codes))
    return _security_page(request, recovery_codes=codes)


@operator_required
@require_POST
def factor_remove(request, kind: str, pk: int):
    if not recently_verified(request):
        return confirm_first(request)
    model = {"totp": TOTPDevice, "passkey": Passkey}.get(kind)
    if model is None:
        raise Http404("no such kind of factor")
    device = get_object_or_404(model, pk=pk, user=request.user)
    device.delete()
    if not factors.has_factor(request.user):  # recovery codes stand in for a factor; none is left
        StaticDevice.objects.filter(user=request.user).delete()
    _audit(request, "operator.mfa_removed", factor=kind, name=device.name)
    messages.success(request, f"“{device.name}” was removed.")
    return redirect("dashboard:security")


@never_cache
@operator_required
@require_POST
def passkey_options(request):
    if not passkeys.available():
        return JsonResponse({"error": "Passkeys need PUBLIC_URL with a host name, not an IP address."}, status=400)
    if factors.has_factor(request.user) and not recently_verified(request):
        return JsonResponse({"error": "Confirm it is you first.", "redirect": confirm_first(request).url}, status=403)
    return JsonResponse(json.loads(passkeys.registration_options(request.session, request.user)))


@never_cache
@operator_required
@require_POST
def passkey_add(request):
    body = _json_body(request)
    name = str(body.get("name") or "").strip()[:64] or "Passkey"
    try:
        passkey = passkeys.register(request.session, request.user, name, body.get("credential") or {})
    except passkeys.PasskeyRefused as exc:
        log.info("passkey registration refused", extra={"reason": str(exc)})
        return JsonResponse({"error": "The passkey could not be added. Try again."}, status=400)
    _verified_now(request, passkey)
    _audit(request, "operator.mfa_added", factor="passkey", name=name)
    messages.success(request, f"Passkey “{name}” added.")
    return JsonResponse({"redirect": reverse("dashboard:security")})
