"""`python manage.py resetmfa --email E`: an operator who lost every factor (docs/operators.md)."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from mfa import factors
from projects.models import AuditEvent
from tests.conftest import PASSWORD
from tests.mfa.support import enrol_totp

pytestmark = pytest.mark.django_db


def test_it_removes_every_factor_of_that_operator_only(alice, bob):
    enrol_totp(alice)
    factors.new_recovery_codes(alice)
    enrol_totp(bob)
    out = io.StringIO()
    call_command("resetmfa", "--email", "Alice@Example.com", stdout=out)
    assert "alice@example.com" in out.getvalue()
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert not StaticDevice.objects.filter(user=alice).exists() and not StaticToken.objects.filter(device__user=alice)
    assert TOTPDevice.objects.filter(user=bob).exists()
    event = AuditEvent.objects.get(kind="operator.mfa_reset")
    assert event.actor == "manage.py resetmfa" and event.detail["member"] == "alice@example.com"
    response = Client().post("/login", {"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"  # the password alone again


def test_it_refuses_an_unknown_operator(end_user_a):
    with pytest.raises(CommandError, match="no operator"):
        call_command("resetmfa", "--email", "nobody@example.com")
    with pytest.raises(CommandError, match="no operator"):  # an end user is no operator
        call_command("resetmfa", "--email", end_user_a.email)
