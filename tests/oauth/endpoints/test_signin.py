"""Hosted sign-in for a project's end users (API.md "Authorization", login mode `hosted`)."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone

from infra import ratelimit
from oauth.endpoints import signin
from oauth.models import AuthorizationRequest, Grant
from projects.models import Project, User
from tests.authz import authorize_path, first_party_client, query_of
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def start(client, project, app) -> str:
    """Begin an authorization signed out; the sign-in page's path."""
    response = client.get(authorize_path(project, app))
    assert response["Location"].startswith(f"/p/{project.slug}/oauth/signin?request=")
    return response["Location"]


def post(client, path: str, email: str, password: str):
    return client.post(path, {"email": email, "password": password})


def test_it_shows_the_form_with_the_contract_labels(client, project_a, public_client_a):
    response = client.get(start(client, project_a, public_client_a))
    html = response.content.decode()
    assert response.status_code == 200
    assert '<label for="email">Email</label>' in html
    assert '<label for="password">Password</label>' in html
    assert '<button class="primary" type="submit">Sign in</button>' in html
    assert "Project ALPHA" in html and "Public MCP client" in html
    assert "/oauth/signup" not in html
    assert response["X-Frame-Options"] == "DENY"


def test_it_links_to_sign_up_when_the_project_allows_it(client, project_a, public_client_a):
    Project.objects.filter(pk=project_a.pk).update(signup_enabled=True)
    path = start(client, project_a, public_client_a)
    html = client.get(path).content.decode()
    assert f'href="{path.replace("signin", "signup")}"' in html


def test_it_signs_an_end_user_in_and_continues_to_consent(client, project_a, public_client_a, end_user_a):
    path = start(client, project_a, public_client_a)
    before = client.session.session_key
    response = post(client, path, "Eve@Example.com", PASSWORD)
    pending = AuthorizationRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/p/alpha/oauth/consent?request={pending.pk}"
    assert pending.user == end_user_a
    session = client.session
    assert session[f"enduser:{project_a.pk}"] == end_user_a.pk
    assert session.session_key != before  # rotated on sign-in
    assert SESSION_KEY not in session  # never a Django-auth login


def test_it_goes_straight_back_to_a_first_party_client(client, project_a, end_user_a):
    app = first_party_client(project_a)
    response = post(client, start(client, project_a, app), "eve@example.com", PASSWORD)
    assert set(query_of(response["Location"])) == {"code", "state", "iss"}
    assert Grant.objects.get(application=app).user == end_user_a


def test_it_refuses_a_wrong_password(client, project_a, public_client_a, end_user_a):
    response = post(client, start(client, project_a, public_client_a), "eve@example.com", "wrong password")
    assert response.status_code == 400
    assert signin.BAD_CREDENTIALS in response.content.decode()
    assert f"enduser:{project_a.pk}" not in client.session
    assert AuthorizationRequest.objects.get().user is None


def test_it_refuses_an_end_user_of_another_project(client, project_a, public_client_a, project_b):
    User.objects.create_end_user(project_b, "only-bravo@example.com", PASSWORD)
    response = post(client, start(client, project_a, public_client_a), "only-bravo@example.com", PASSWORD)
    assert response.status_code == 400
    assert f"enduser:{project_a.pk}" not in client.session


def test_it_refuses_an_operator(client, project_a, public_client_a, alice):
    response = post(client, start(client, project_a, public_client_a), "alice@example.com", PASSWORD)
    assert response.status_code == 400


def test_it_refuses_a_disabled_end_user(client, project_a, public_client_a, end_user_a):
    User.objects.filter(pk=end_user_a.pk).update(is_active=False)
    response = post(client, start(client, project_a, public_client_a), "eve@example.com", PASSWORD)
    assert response.status_code == 400


def test_an_end_user_cannot_sign_in_to_the_dashboard(client, end_user_a):
    response = client.post("/login", {"email": "eve@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert SESSION_KEY not in client.session


def test_an_end_user_session_is_not_a_dashboard_session(client, project_a, public_client_a, end_user_a):
    post(client, start(client, project_a, public_client_a), "eve@example.com", PASSWORD)
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response["Location"]


ACCOUNT_LIMIT = ratelimit.LIMITS["signin:account"].default[0].limit  # 5 failures per 15 minutes
IP_LIMIT = ratelimit.LIMITS["signin:ip"].default[0].limit  # 20 failures per 15 minutes


def test_it_throttles_failures_per_account(client, project_a, public_client_a, end_user_a):
    path = start(client, project_a, public_client_a)
    for _ in range(ACCOUNT_LIMIT):
        assert post(client, path, "eve@example.com", "wrong password").status_code == 400
    response = post(client, path, "eve@example.com", PASSWORD)  # even the right password now waits
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 901
    assert response["RateLimit-Policy"] == '"signin:account/15m";q=5;w=900'
    assert response["RateLimit"] == f'"signin:account/15m";r=0;t={retry_after}'
    assert signin.THROTTLED in response.content.decode()
    assert '<label for="email">Email</label>' in response.content.decode()  # the form, with the message
    assert f"enduser:{project_a.pk}" not in client.session


def test_an_unknown_account_is_throttled_exactly_like_an_existing_one(project_a, public_client_a, end_user_a):
    answers = {}
    for email in ("eve@example.com", "nobody@example.com"):
        browser = Client()
        path = start(browser, project_a, public_client_a)
        statuses = [post(browser, path, email, "wrong password").status_code for _ in range(ACCOUNT_LIMIT + 1)]
        last = post(browser, path, email, "wrong password")
        page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", last.content.decode())
        answers[email] = (statuses, last.status_code, last["RateLimit-Policy"],
                          page.replace(email, "EMAIL").replace(path.split("request=")[1], "REQUEST"))
    assert answers["eve@example.com"] == answers["nobody@example.com"]
    assert answers["eve@example.com"][0] == [400] * ACCOUNT_LIMIT + [429]


def test_a_right_password_does_not_count_against_the_account(client, project_a, public_client_a, end_user_a):
    for _ in range(ACCOUNT_LIMIT + 2):
        browser = Client()
        assert post(browser, start(browser, project_a, public_client_a), "eve@example.com", PASSWORD).status_code == 302
    path = start(client, project_a, public_client_a)
    assert post(client, path, "eve@example.com", "wrong password").status_code == 400


def test_it_throttles_failures_per_address(client, project_a, public_client_a, end_user_a):
    path = start(client, project_a, public_client_a)
    for n in range(IP_LIMIT):
        assert post(client, path, f"nobody{n}@example.com", "wrong password").status_code == 400
    response = post(client, path, "eve@example.com", PASSWORD)
    assert response.status_code == 429
    assert response["RateLimit"].startswith('"signin:ip/15m";r=0;t=')


def test_a_project_sets_its_own_sign_in_limits(client, project_a, public_client_a, end_user_a, project_b,
                                               public_client_b, end_user_b):
    project_a.rate_limits = {"signin:account": [[2, 600]]}
    project_a.save()
    path = start(client, project_a, public_client_a)
    assert [post(client, path, "eve@example.com", "wrong").status_code for _ in range(3)] == [400, 400, 429]
    assert client.post(path, {"email": "eve@example.com", "password": "x"})["RateLimit-Policy"] == \
        '"signin:account/10m";q=2;w=600'
    other = Client()  # bravo keeps the default 5
    path_b = start(other, project_b, public_client_b)
    assert [post(other, path_b, "eve@example.com", "wrong").status_code for _ in range(3)] == [400, 400, 400]


def test_one_accounts_failures_do_not_lock_another(client, project_a, public_client_a, end_user_a):
    User.objects.create_end_user(project_a, "frank@example.com", PASSWORD)
    path = start(client, project_a, public_client_a)
    for _ in range(ACCOUNT_LIMIT):
        post(client, path, "frank@example.com", "wrong password")
    assert post(client, path, "eve@example.com", PASSWORD).status_code == 302


def test_rate_limits_off_never_throttles_sign_in(client, project_a, public_client_a, end_user_a, settings):
    settings.RATE_LIMITS_ENABLED = False
    path = start(client, project_a, public_client_a)
    for _ in range(ACCOUNT_LIMIT + 3):
        assert post(client, path, "eve@example.com", "wrong password").status_code == 400
    assert post(client, path, "eve@example.com", PASSWORD).status_code == 302


def test_it_refuses_an_expired_request(client, project_a, public_client_a, end_user_a):
    path = start(client, project_a, public_client_a)
    AuthorizationRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = post(client, path, "eve@example.com", PASSWORD)
    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert f"enduser:{project_a.pk}" not in client.session


def test_it_refuses_a_request_started_in_another_browser(client, project_a, public_client_a, end_user_a):
    path = start(client, project_a, public_client_a)
    response = post(Client(), path, "eve@example.com", PASSWORD)
    assert response.status_code == 400
    assert AuthorizationRequest.objects.get().user is None


def test_it_is_csrf_protected(project_a, public_client_a, end_user_a):
    browser = Client(enforce_csrf_checks=True)
    response = post(browser, start(browser, project_a, public_client_a), "eve@example.com", PASSWORD)
    assert response.status_code == 403
    assert AuthorizationRequest.objects.get().user is None


def test_it_is_not_there_in_handoff_mode(client, project_a, public_client_a):
    path = start(client, project_a, public_client_a)
    project_a.login_mode, project_a.login_url = "handoff", "https://login.alpha.example/"
    project_a.save()  # and forget the cached row
    assert client.get(path).status_code == 404


# --- Sign-up ---------------------------------------------------------------------------------------


def test_sign_up_is_off_by_default(client, project_a, public_client_a):
    path = start(client, project_a, public_client_a).replace("signin", "signup")
    assert client.get(path).status_code == 404
    assert post(client, path, "new@example.com", PASSWORD).status_code == 404
    assert not User.objects.filter(email="new@example.com").exists()


@pytest.mark.real_password_hasher
def test_sign_up_creates_an_end_user_of_the_project(client, project_a, public_client_a):
    Project.objects.filter(pk=project_a.pk).update(signup_enabled=True)
    path = start(client, project_a, public_client_a).replace("signin", "signup")
    response = post(client, path, "New@Example.com", PASSWORD)
    user = User.objects.get(email="new@example.com")
    assert response.status_code == 302 and "/oauth/consent?request=" in response["Location"]
    assert user.project == project_a and user.subject.startswith("usr_")
    assert user.password.startswith("pbkdf2_sha256$") and user.check_password(PASSWORD)
    assert client.session[f"enduser:{project_a.pk}"] == user.pk


def test_sign_up_refuses_a_taken_email(client, project_a, public_client_a, end_user_a):
    Project.objects.filter(pk=project_a.pk).update(signup_enabled=True)
    path = start(client, project_a, public_client_a).replace("signin", "signup")
    response = post(client, path, "eve@example.com", "another long password")
    assert response.status_code == 400
    assert User.objects.filter(project=project_a, email="eve@example.com").count() == 1


def test_sign_up_refuses_a_weak_password(client, project_a, public_client_a):
    Project.objects.filter(pk=project_a.pk).update(signup_enabled=True)
    path = start(client, project_a, public_client_a).replace("signin", "signup")
    assert post(client, path, "new@example.com", "short").status_code == 400
    assert not User.objects.filter(email="new@example.com").exists()


def test_it_answers_a_nul_byte_in_the_email_as_bad_credentials(client, project_a, public_client_a, end_user_a):
    response = post(client, start(client, project_a, public_client_a), "eve@example.com\x00", PASSWORD)
    assert response.status_code == 400


def test_sign_up_attempts_are_limited_per_address(client, project_a, public_client_a):
    Project.objects.filter(pk=project_a.pk).update(signup_enabled=True)
    project_a.forget_cached()
    path = start(client, project_a, public_client_a).replace("signin", "signup")
    for n in range(IP_LIMIT):
        assert post(client, path, f"new{n}@example.com", "short").status_code == 400
    response = post(client, path, "last@example.com", PASSWORD)
    assert response.status_code == 429 and "Retry-After" in response and "RateLimit" in response
    assert signin.THROTTLED in response.content.decode()
    assert not User.objects.filter(email="last@example.com").exists()
