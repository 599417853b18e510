"""Settings come from the environment through typed helpers; unsafe deployments are refused."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from mcpauth_service import checks
from mcpauth_service.env import env_bool, env_int, env_url


def test_a_weak_secret_key_is_an_error_when_debug_is_off():
    with override_settings(DEBUG=False, SECRET_KEY="short"):
        assert [e.id for e in checks.check_secret_key(None)] == ["mcpauth.E001"]


def test_the_placeholder_key_is_an_error_when_debug_is_off(settings):
    with override_settings(DEBUG=False, SECRET_KEY=settings.INSECURE_SECRET_KEY):
        assert [e.id for e in checks.check_secret_key(None)] == ["mcpauth.E001"]


def test_a_real_key_passes():
    with override_settings(DEBUG=False, SECRET_KEY="x" * 60):
        assert checks.check_secret_key(None) == []


def test_relaxing_the_outbound_guard_announces_itself():
    with override_settings(DEBUG=False, OUTBOUND_ALLOW_PRIVATE_ADDRESSES=True):
        assert [w.id for w in checks.check_outbound_guard(None)] == ["mcpauth.W001"]


@pytest.mark.parametrize("reader,value", [(env_bool, "maybe"), (env_int, "ten"), (env_url, "ftp://x")])
def test_env_helpers_fail_loudly(monkeypatch, reader, value):
    monkeypatch.setenv("MCPAUTH_TEST_VALUE", value)
    with pytest.raises(ImproperlyConfigured):
        reader("MCPAUTH_TEST_VALUE")


def test_env_url_drops_a_trailing_slash(monkeypatch):
    monkeypatch.setenv("MCPAUTH_TEST_VALUE", "https://auth.example/")
    assert env_url("MCPAUTH_TEST_VALUE") == "https://auth.example"
