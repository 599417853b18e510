"""Races on real PostgreSQL: concurrent code redemptions and refreshes, each thread its own connection."""

import threading

import pytest
from django.db import connection
from django.test import Client

from oauth.models import AccessToken, Grant, RefreshToken
from tests.token_support import introspect, make_code, redeem, refresh

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def concurrently(n, call):
    """Run `call()` in n threads released together; return their responses."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        try:
            barrier.wait()
            results[i] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_redemptions_of_one_code_exactly_one_succeeds(public_client_a, end_user_a, project_a):
    code, verifier = make_code(public_client_a, end_user_a)

    responses = concurrently(4, lambda: redeem(Client(), public_client_a, code, verifier))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 400, 400, 400]
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)
    assert Grant.objects.get(code=code).redeemed_at is not None
    # The code was presented more than once: what it issued is revoked (RFC 6749 §4.1.2).
    assert not AccessToken.objects.exists()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()


def test_two_refreshes_inside_the_grace_window_both_get_working_tokens(public_client_a, end_user_a, project_a):
    code, verifier = make_code(public_client_a, end_user_a)
    issued = redeem(Client(), public_client_a, code, verifier).json()

    responses = concurrently(2, lambda: refresh(Client(), public_client_a, issued["refresh_token"]))

    assert [r.status_code for r in responses] == [200, 200]
    bodies = [r.json() for r in responses]
    assert bodies[0]["access_token"] != bodies[1]["access_token"]
    http = Client()
    for body in bodies:
        assert introspect(http, project_a, body["access_token"], project_a.registration_secret).json()["active"]
    for body in bodies:
        assert refresh(http, public_client_a, body["refresh_token"]).status_code == 200


def test_two_refreshes_outside_the_grace_window_revoke_the_family(public_client_a, end_user_a, project_a, settings):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0}
    code, verifier = make_code(public_client_a, end_user_a)
    issued = redeem(Client(), public_client_a, code, verifier).json()

    responses = concurrently(2, lambda: refresh(Client(), public_client_a, issued["refresh_token"]))

    assert sorted(r.status_code for r in responses) == [200, 400]
    loser = next(r for r in responses if r.status_code == 400)
    assert loser.json()["error"] == "invalid_grant"
    winner = next(r for r in responses if r.status_code == 200).json()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert not AccessToken.objects.exists()
    assert introspect(Client(), project_a, winner["access_token"], project_a.registration_secret).json() == {
        "active": False}
    assert refresh(Client(), public_client_a, winner["refresh_token"]).json()["error"] == "invalid_grant"


def test_concurrent_polls_of_an_approved_device_code_redeem_it_once(project_a, end_user_a):
    from oauth.models import DeviceGrant
    from tests.device_support import device_client, poll, start

    app = device_client(project_a)
    device_code = start(Client(), app).json()["device_code"]
    DeviceGrant.objects.filter(project=project_a).update(status=DeviceGrant.AUTHORIZED, user=end_user_a)

    responses = concurrently(4, lambda: poll(Client(), app, device_code))

    assert sorted(r.status_code for r in responses) == [200, 400, 400, 400]
    # A loser read it before it was spent (its claim lost) or after (a replay): invalid_grant either way.
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)
    assert DeviceGrant.objects.get(project=project_a).redeemed_at is not None
    assert not AccessToken.objects.exists()  # presented more than once: what it issued is revoked
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
