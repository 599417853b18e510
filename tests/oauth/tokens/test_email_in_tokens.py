"""`Project.email_in_tokens` (issue 20): introspection answers and JWT access tokens carry `email`
and `email_verified: true` only when the project opts in AND the address is verified."""

import base64
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from oauth.tokens import issue as tokens
from projects import accounts
from projects.models import Project, User
from tests.token_support import basic, make_code, post_form, redeem

pytestmark = pytest.mark.django_db
EMAIL = {"email": "eve@example.com", "email_verified": True}


def set_policy(project, **fields):
    Project.objects.filter(pk=project.pk).update(**fields)
    project.refresh_from_db()
    project.forget_cached()


def verify(user):
    User.objects.filter(pk=user.pk).update(email_verified_at=timezone.now())


def issue(client, app, user) -> str:
    code, verifier = make_code(app, user)
    return redeem(client, app, code, verifier).json()["access_token"]


def introspect(client, project, token) -> dict:
    return post_form(client, f"/p/{project.slug}/oauth/introspect", {"token": token},
                     HTTP_AUTHORIZATION=f"Bearer {project.registration_secret}").json()


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def email_of(answer: dict) -> dict:
    return {k: answer[k] for k in ("email", "email_verified") if k in answer}


def test_tokens_say_nothing_about_email_by_default(client, project_a, public_client_a, end_user_a):
    verify(end_user_a)
    set_policy(project_a, token_format="jwt")
    token = issue(client, public_client_a, end_user_a)
    assert email_of(jwt_claims(token)) == {}
    assert email_of(introspect(client, project_a, token)) == {}


def test_an_unverified_email_is_never_in_a_token(client, project_a, public_client_a, end_user_a):
    set_policy(project_a, email_in_tokens=True, token_format="jwt")
    token = issue(client, public_client_a, end_user_a)
    assert email_of(jwt_claims(token)) == {}
    assert email_of(introspect(client, project_a, token)) == {}


def test_a_verified_email_is_in_tokens_when_the_project_opts_in(client, project_a, public_client_a, end_user_a):
    verify(end_user_a)
    set_policy(project_a, email_in_tokens=True, token_format="jwt")
    token = issue(client, public_client_a, end_user_a)
    assert email_of(jwt_claims(token)) == EMAIL
    answer = introspect(client, project_a, token)
    assert email_of(answer) == EMAIL and answer["iss"] == "http://127.0.0.1:8000/p/alpha" and answer["active"]


def test_opaque_tokens_introspect_with_the_email_too(client, project_a, public_client_a, end_user_a):
    verify(end_user_a)
    set_policy(project_a, email_in_tokens=True)
    assert email_of(introspect(client, project_a, issue(client, public_client_a, end_user_a))) == EMAIL


def test_turning_the_setting_on_or_off_changes_cached_answers_at_once(client, project_a, public_client_a,
                                                                     end_user_a):
    verify(end_user_a)
    token = issue(client, public_client_a, end_user_a)
    assert email_of(introspect(client, project_a, token)) == {}
    assert tokens.cached_answer(tokens.checksum(token)) is not None  # warm
    set_policy(project_a, email_in_tokens=True)
    assert email_of(introspect(client, project_a, token)) == EMAIL
    set_policy(project_a, email_in_tokens=False)
    assert email_of(introspect(client, project_a, token)) == {}


def test_a_verification_is_seen_by_the_next_introspection(client, project_a, public_client_a, end_user_a):
    set_policy(project_a, email_in_tokens=True)
    token = issue(client, public_client_a, end_user_a)
    assert email_of(introspect(client, project_a, token)) == {}  # cached: unverified
    accounts.mark_verified(end_user_a)
    assert email_of(introspect(client, project_a, token)) == EMAIL


def test_another_projects_secret_learns_nothing(client, project_a, project_b, public_client_a, end_user_a):
    verify(end_user_a)
    set_policy(project_a, email_in_tokens=True)
    set_policy(project_b, email_in_tokens=True)
    token = issue(client, public_client_a, end_user_a)
    introspect(client, project_a, token)  # warm
    assert introspect(client, project_b, token) == {"active": False}


def test_a_client_credentials_token_has_no_email(client, project_a, confidential_client_a):
    set_policy(project_a, email_in_tokens=True)
    response = post_form(client, "/p/alpha/oauth/token", {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))
    assert email_of(introspect(client, project_a, response.json()["access_token"])) == {}


def test_setproject_takes_the_email_settings(project_a):
    out = StringIO()
    call_command("setproject", "alpha", "--set", "email_in_tokens=true", "--set", "require_verified_email=true",
                 "--json", stdout=out)
    shown = json.loads(out.getvalue())
    assert shown["email_in_tokens"] is True and shown["require_verified_email"] is True
    project_a.refresh_from_db()
    assert project_a.email_in_tokens and project_a.require_verified_email
