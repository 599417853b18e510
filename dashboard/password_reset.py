"""Password reset by email for operators: "Forgot password?" on the dashboard's sign-in page.

As the end users' (oauth.endpoints.password_reset): one answer whether or not an operator has the
address (the same counts, `operator-reset:ip` and `operator-reset:account`, and one queued task);
a link valid for one hour, once. The new password ends every dashboard session of the operator
(Django checks each session's password hash); their API tokens are separate credentials and stay
(the account page lists and revokes them).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from infra.ratelimit import RateLimited
from projects import accounts, tasks
from projects.models import AccountToken

SENT = "If {email} is an operator account, we sent it a link to choose a new password. It works for one hour."
THROTTLED = "Too many attempts. Wait a few minutes and try again."
EXPIRED = "This link has expired or was already used. Ask for a new one."


def _page(request, template: str, context: dict, status: int = 200, refused: RateLimited | None = None):
    response = render(request, template, context, status=status)
    for name, value in (refused.headers if refused else {}).items():
        response[name] = value
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def forgot_password(request):
    if request.method == "GET":
        return _page(request, "dashboard/forgot_password.html", {})
    email = request.POST.get("email", "").strip().lower()[:254]
    try:
        tasks.ask_for_password_reset(request, None, email, settings.PUBLIC_URL)
    except RateLimited as refused:
        return _page(request, "dashboard/forgot_password.html", {"error": THROTTLED, "email": email}, 429, refused)
    return _page(request, "dashboard/forgot_password.html", {"notice": SENT.format(email=email)})


@never_cache
@require_http_methods(["GET", "POST"])
def reset_password(request):
    value = request.GET.get("token", "")
    token = AccountToken.find(AccountToken.Purpose.RESET, value, None)
    if token is None:
        return _page(request, "dashboard/reset_password.html", {"expired": EXPIRED}, 400)
    context = {"email": token.user.email}
    if request.method == "GET":
        return _page(request, "dashboard/reset_password.html", context)
    password = request.POST.get("password", "")
    try:
        validate_password(password, token.user)
    except ValidationError as exc:
        return _page(request, "dashboard/reset_password.html", {**context, "error": " ".join(exc.messages)}, 400)
    with transaction.atomic():
        token = AccountToken.spend(AccountToken.Purpose.RESET, value, None)
        if token is None:
            return _page(request, "dashboard/reset_password.html", {"expired": EXPIRED}, 400)
        accounts.reset_password(token, password, request)
    messages.success(request, "Your password is changed. Sign in with it.")
    return redirect("dashboard:login")
