"""DPoP at the token endpoint (RFC 9449 §4.3, §5, §6, §8), per project: `dpop=off|allowed|required`
and `dpop_nonce`; and the switch itself through setproject, the management API and the dashboard."""

import base64
import json
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st
from jwcrypto import jwk, jwt

from dashboard import policy
from dashboard.forms import as_form_data
from dashboard.models import OperatorToken
from oauth.models import AccessToken, Grant, RefreshToken
from oauth.tokens import dpop, jwt_tokens
from oauth.tokens import issue as tokens
from projects.models import Project, ProjectSecret
from tests import fuzz_support  # noqa: F401 - loads the hypothesis profile (ci or fuzz)
from tests.authz import LOOPBACK_REDIRECT, VERIFIER, authorize_path, first_party_client, query_of, sign_in_as
from tests.dpop_support import DpopKey
from tests.oidc_support import turn_on_openid
from tests.token_support import basic, introspect, make_code, post_form, token_url

pytestmark = pytest.mark.django_db


def allow(project, mode="allowed", nonce=False) -> Project:
    project.dpop, project.dpop_nonce = mode, nonce
    project.save()
    return project


def endpoint(project) -> str:
    return f"{project.issuer}/oauth/token"


def client_credentials(http, client, proof=None):
    headers = {"HTTP_AUTHORIZATION": basic(client)}
    if proof is not None:
        headers["HTTP_DPOP"] = proof
    return post_form(http, token_url(client.project), {"grant_type": "client_credentials"}, **headers)


def with_proof(http, client, form, proof=None):
    """A token request of `client` (Basic for a confidential one, client_id for a public one)."""
    headers = {"HTTP_DPOP": proof} if proof is not None else {}
    if client.client_type == "confidential":
        headers["HTTP_AUTHORIZATION"] = basic(client)
    else:
        form = {**form, "client_id": client.client_id}
    return post_form(http, token_url(client.project), form, **headers)


def redeem(http, client, code, verifier, proof=None):
    redirect_uri = client.redirect_uris.split()[0]
    return with_proof(http, client, {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                     "redirect_uri": redirect_uri}, proof)


def refresh(http, client, refresh_token, proof=None):
    return with_proof(http, client, {"grant_type": "refresh_token", "refresh_token": refresh_token}, proof)


def refused(response, status, error):
    assert response.status_code == status, response.content
    assert response.json()["error"] == error
    assert "access_token" not in response.json()


@pytest.fixture
def secret_a(project_a):
    return ProjectSecret.issue(project_a, "rs", ["introspect"])[1]


@pytest.fixture
def key():
    return DpopKey()


# --- binding (§5, §6) ------------------------------------------------------------------------------
def test_it_binds_the_access_token_to_the_proof_key_and_says_so(client, project_a, confidential_client_a, key,
                                                                secret_a):
    allow(project_a)
    response = client_credentials(client, confidential_client_a, key.proof("POST", endpoint(project_a)))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "DPoP"
    row = AccessToken.objects.get(application=confidential_client_a)
    assert row.claims["cnf"] == {"jkt": key.jkt}
    answer = introspect(client, project_a, body["access_token"], secret_a).json()
    assert answer["active"] is True and answer["cnf"] == {"jkt": key.jkt} and answer["token_type"] == "DPoP"


def test_a_jwt_access_token_carries_cnf_jkt(client, project_a, confidential_client_a, key):
    allow(project_a)
    Project.objects.filter(pk=project_a.pk).update(token_format="jwt")
    project_a.refresh_from_db()
    response = client_credentials(client, confidential_client_a, key.proof("POST", endpoint(project_a)))
    assert response.status_code == 200 and response.json()["token_type"] == "DPoP"
    assert jwt_tokens.verify(project_a, response.json()["access_token"])["cnf"] == {"jkt": key.jkt}


def test_without_a_proof_a_token_stays_a_bearer_token(client, project_a, confidential_client_a, secret_a):
    allow(project_a)
    body = client_credentials(client, confidential_client_a).json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in AccessToken.objects.get(application=confidential_client_a).claims
    assert "cnf" not in introspect(client, project_a, body["access_token"], secret_a).json()


def test_a_public_clients_refresh_token_is_bound_to_the_same_key(client, project_a, public_client_a, end_user_a,
                                                                 key):
    allow(project_a)
    code, verifier = make_code(public_client_a, end_user_a)
    first = redeem(client, public_client_a, code, verifier, key.proof("POST", endpoint(project_a)))
    assert first.status_code == 200 and first.json()["token_type"] == "DPoP"
    assert RefreshToken.objects.get(application=public_client_a).dpop_jkt == key.jkt

    second = refresh(client, public_client_a, first.json()["refresh_token"],
                     key.proof("POST", endpoint(project_a)))

    assert second.status_code == 200 and second.json()["token_type"] == "DPoP"
    assert set(RefreshToken.objects.filter(application=public_client_a).values_list("dpop_jkt", flat=True)) == {key.jkt}


def test_it_refuses_to_refresh_a_bound_refresh_token_with_another_key_or_none(client, project_a, public_client_a,
                                                                              end_user_a, key):
    allow(project_a)
    code, verifier = make_code(public_client_a, end_user_a)
    tokens = redeem(client, public_client_a, code, verifier, key.proof("POST", endpoint(project_a))).json()

    other = refresh(client, public_client_a, tokens["refresh_token"],
                    DpopKey().proof("POST", endpoint(project_a)))
    bare = refresh(client, public_client_a, tokens["refresh_token"])

    refused(other, 400, "invalid_grant")
    refused(bare, 400, "invalid_grant")
    assert RefreshToken.objects.get(application=public_client_a).revoked is None  # still the holder's to use
    assert refresh(client, public_client_a, tokens["refresh_token"],
                   key.proof("POST", endpoint(project_a))).status_code == 200


def test_a_confidential_clients_refresh_token_is_not_bound(client, project_a, confidential_client_a, end_user_a,
                                                           key):
    allow(project_a)
    code, verifier = make_code(confidential_client_a, end_user_a)
    first = redeem(client, confidential_client_a, code, verifier, key.proof("POST", endpoint(project_a)))
    assert first.status_code == 200 and first.json()["token_type"] == "DPoP"
    assert RefreshToken.objects.get(application=confidential_client_a).dpop_jkt == ""
    second = refresh(client, confidential_client_a, first.json()["refresh_token"],
                     DpopKey().proof("POST", endpoint(project_a)))
    assert second.status_code == 200 and second.json()["token_type"] == "DPoP"


def test_an_openid_connect_code_exchange_is_bound_too(client, project_a, public_client_a, end_user_a, key,
                                                      secret_a):
    """Both grants behind the authorization_code dispatcher bind: OpenID Connect's (an ID token
    comes back) as well as the plain one, and so does the refresh that adds a new ID token."""
    allow(project_a)
    turn_on_openid(project_a)
    code, verifier = make_code(public_client_a, end_user_a, scope="openid mcp:tools offline_access")
    first = redeem(client, public_client_a, code, verifier, key.proof("POST", endpoint(project_a)))
    assert first.status_code == 200, first.content
    assert first.json()["token_type"] == "DPoP" and "id_token" in first.json()
    answer = introspect(client, project_a, first.json()["access_token"], secret_a).json()
    assert answer["cnf"] == {"jkt": key.jkt} and answer["token_type"] == "DPoP"
    assert RefreshToken.objects.get(application=public_client_a).dpop_jkt == key.jkt

    refused(refresh(client, public_client_a, first.json()["refresh_token"]), 400, "invalid_grant")
    second = refresh(client, public_client_a, first.json()["refresh_token"], key.proof("POST", endpoint(project_a)))

    assert second.status_code == 200, second.content
    assert second.json()["token_type"] == "DPoP" and "id_token" in second.json()
    assert AccessToken.objects.get(token_checksum=tokens.checksum(second.json()["access_token"])).claims["cnf"] == \
        {"jkt": key.jkt}


# --- the proof's checks (§4.3) ---------------------------------------------------------------------
def test_it_refuses_a_replayed_proof(client, project_a, confidential_client_a, key):
    allow(project_a)
    proof = key.proof("POST", endpoint(project_a))
    assert client_credentials(client, confidential_client_a, proof).status_code == 200
    refused(client_credentials(client, confidential_client_a, proof), 400, "invalid_dpop_proof")
    assert AccessToken.objects.filter(application=confidential_client_a).count() == 1


@pytest.mark.parametrize("change", [
    pytest.param({"method": "GET"}, id="htm"),
    pytest.param({"url": "https://elsewhere.example/p/alpha/oauth/token"}, id="htu-host"),
    pytest.param({"url_suffix": "/oauth/introspect"}, id="htu-path"),
    pytest.param({"iat": time.time() - 3600}, id="iat-old"),
    pytest.param({"iat": time.time() + 3600}, id="iat-future"),
    pytest.param({"header": {"typ": "JWT"}}, id="typ"),
    pytest.param({"claims": {"jti": None}}, id="no-jti"),
    pytest.param({"header": {"jwk": {}}}, id="empty-jwk"),
    pytest.param({"header": {"jwk": {"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA"}}}, id="odd-jwk"),
    pytest.param({"url": "http://testserver:99999/p/alpha/oauth/token"}, id="htu-port-out-of-range"),
    pytest.param({"url": "http://[::1/p/alpha/oauth/token"}, id="htu-unparsable"),
])
def test_it_refuses_a_proof_for_another_request_or_time(client, project_a, confidential_client_a, key, change):
    allow(project_a)
    url = change.get("url") or (project_a.issuer + change["url_suffix"] if "url_suffix" in change else endpoint(project_a))
    proof = key.proof(change.get("method", "POST"), url, iat=change.get("iat"), header=change.get("header"),
                      claims=change.get("claims"))
    refused(client_credentials(client, confidential_client_a, proof), 400, "invalid_dpop_proof")
    assert not AccessToken.objects.filter(application=confidential_client_a).exists()


def test_it_ignores_the_query_of_htu(client, project_a, confidential_client_a, key):
    allow(project_a)
    proof = key.proof("POST", endpoint(project_a) + "?x=1#y")
    assert client_credentials(client, confidential_client_a, proof).status_code == 200


def test_it_refuses_a_proof_signed_by_another_key_than_its_jwk(client, project_a, confidential_client_a, key):
    allow(project_a)
    proof = key.proof("POST", endpoint(project_a), header={"jwk": DpopKey().key.export_public(as_dict=True)})
    refused(client_credentials(client, confidential_client_a, proof), 400, "invalid_dpop_proof")


def test_it_refuses_a_private_jwk_a_symmetric_alg_and_garbage(client, project_a, confidential_client_a, key):
    allow(project_a)
    private = key.proof("POST", endpoint(project_a), header={"jwk": json.loads(key.key.export_private())})
    refused(client_credentials(client, confidential_client_a, private), 400, "invalid_dpop_proof")
    refused(client_credentials(client, confidential_client_a, "not.a.proof"), 400, "invalid_dpop_proof")
    refused(client_credentials(client, confidential_client_a, "x" * 9000), 400, "invalid_dpop_proof")
    secret = jwk.JWK.generate(kty="oct", size=256)
    hs = jwt.JWT(header={"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": secret["k"]}},
                 claims={"jti": "a", "htm": "POST", "htu": endpoint(project_a), "iat": int(time.time())})
    hs.make_signed_token(secret)
    refused(client_credentials(client, confidential_client_a, hs.serialize()), 400, "invalid_dpop_proof")


def test_an_rsa_key_works_too(client, project_a, confidential_client_a):
    allow(project_a)
    rsa = DpopKey(kty="RSA", alg="PS256")
    response = client_credentials(client, confidential_client_a, rsa.proof("POST", endpoint(project_a)))
    assert response.status_code == 200 and response.json()["token_type"] == "DPoP"


# --- nonces (§8) -----------------------------------------------------------------------------------
def test_a_project_asking_for_nonces_answers_use_dpop_nonce_then_accepts_it(client, project_a,
                                                                           confidential_client_a, key):
    allow(project_a, nonce=True)
    first = client_credentials(client, confidential_client_a, key.proof("POST", endpoint(project_a)))
    refused(first, 400, "use_dpop_nonce")
    nonce = first["DPoP-Nonce"]
    assert nonce and not AccessToken.objects.filter(application=confidential_client_a).exists()

    second = client_credentials(client, confidential_client_a, key.proof("POST", endpoint(project_a), nonce=nonce))

    assert second.status_code == 200 and second.json()["token_type"] == "DPoP"
    assert second["DPoP-Nonce"]


def test_a_nonce_of_another_project_or_made_up_is_refused(client, project_a, project_b, confidential_client_a,
                                                          key):
    allow(project_a, nonce=True)
    allow(project_b, nonce=True)
    for nonce in (dpop.nonces(project_b).current(), "made-up"):
        response = client_credentials(client, confidential_client_a,
                                      key.proof("POST", endpoint(project_a), nonce=nonce))
        refused(response, 400, "use_dpop_nonce")
        assert response["DPoP-Nonce"] == dpop.nonces(project_a).current()


# --- per-project policy ----------------------------------------------------------------------------
def test_required_refuses_a_public_client_without_a_proof(client, project_a, public_client_a, end_user_a):
    allow(project_a, "required")
    code, verifier = make_code(public_client_a, end_user_a)
    refused(redeem(client, public_client_a, code, verifier), 400, "invalid_request")
    assert not AccessToken.objects.filter(application=public_client_a).exists()


def test_required_still_lets_a_confidential_client_use_bearer_tokens(client, project_a, confidential_client_a):
    allow(project_a, "required")
    assert client_credentials(client, confidential_client_a).json()["token_type"] == "Bearer"


def test_off_ignores_proofs_and_advertises_nothing(client, project_a, confidential_client_a, key):
    allow(project_a, "off")
    response = client_credentials(client, confidential_client_a, "not even a proof")
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"
    assert "cnf" not in AccessToken.objects.get(application=confidential_client_a).claims
    metadata = client.get(f"/p/{project_a.slug}/.well-known/oauth-authorization-server").json()
    assert "dpop_signing_alg_values_supported" not in metadata


def test_metadata_lists_the_proof_algorithms_when_dpop_is_on(client, project_a, project_b):
    allow(project_a, "required")
    metadata = client.get(f"/p/{project_a.slug}/.well-known/oauth-authorization-server").json()
    assert "ES256" in metadata["dpop_signing_alg_values_supported"]
    assert "HS256" not in metadata["dpop_signing_alg_values_supported"]
    other = client.get(f"/p/{project_b.slug}/.well-known/oauth-authorization-server").json()
    assert "dpop_signing_alg_values_supported" not in other  # project B stays off


def test_cors_lets_browsers_send_proofs_and_read_nonces(client, project_a):
    response = client.options(token_url(project_a))
    assert "DPoP" in response["Access-Control-Allow-Headers"]
    assert "DPoP-Nonce" in response["Access-Control-Expose-Headers"]


# --- the switch: setproject, management API, dashboard --------------------------------------------
def setproject(*args) -> dict:
    out = StringIO()
    call_command("setproject", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_setproject_sets_dpop_and_nonces(project_a):
    result = setproject("alpha", "--set", "dpop=required", "--set", "dpop_nonce=true")
    project_a.refresh_from_db()
    assert (project_a.dpop, project_a.dpop_nonce) == ("required", True)
    assert (result["dpop"], result["dpop_nonce"]) == ("required", True)


def test_setproject_refuses_an_unknown_dpop_mode(project_a):
    with pytest.raises(CommandError, match="dpop"):
        setproject("alpha", "--set", "dpop=sometimes")
    project_a.refresh_from_db()
    assert project_a.dpop == "off"


def test_the_management_api_reads_and_patches_dpop(client, project_a, project_b, alice):
    token = OperatorToken.issue(alice, "script")[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    response = client.patch("/api/v1/projects/alpha", {"dpop": "allowed", "dpop_nonce": True},
                            content_type="application/json", **auth)
    assert response.status_code == 200 and response.json()["dpop"] == "allowed"
    bad = client.patch("/api/v1/projects/alpha", {"dpop": "on"}, content_type="application/json", **auth)
    assert bad.status_code == 400 and "dpop" in bad.json()["fields"]
    foreign = client.patch("/api/v1/projects/bravo", {"dpop": "allowed"}, content_type="application/json", **auth)
    assert foreign.status_code in (403, 404)
    project_a.refresh_from_db()
    project_b.refresh_from_db()
    assert (project_a.dpop, project_a.dpop_nonce, project_b.dpop) == ("allowed", True, "off")


def test_the_dashboard_settings_page_offers_and_saves_the_switch(client, project_a, alice):
    client.force_login(alice)
    url = reverse("dashboard:settings", args=["alpha"])
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="dpop"' in page.content and b'name="dpop_nonce"' in page.content
    form = as_form_data(policy.form_values(project_a, {"dpop": "required"}, {}))

    assert client.post(url, form).status_code == 302

    project_a.refresh_from_db()
    assert project_a.dpop == "required"


# --- generated proofs ---------------------------------------------------------------------------------
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40),
                      st.sampled_from(["dpop+jwt", "ES256", "RS256", "none", "HS256", "EC", "RSA", "OKP", "oct",
                                       "P-256", "POST", "GET", "http://testserver/p/alpha/oauth/token"]))
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)
HEADER_KEYS = st.sampled_from(["typ", "alg", "jwk", "kid", "crit", "x5c"])
CLAIM_KEYS = st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce", "exp"])


def b64_json(value) -> str:
    raw = json.dumps(value, allow_nan=True).encode() if not isinstance(value, bytes) else value
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@st.composite
def proofs(draw) -> str:
    """A DPoP header: odd JOSE parts, sometimes a valid signature by a real key over odd claims."""
    header = draw(st.dictionaries(HEADER_KEYS, JSON_VALUE, max_size=4))
    claims = draw(st.one_of(st.dictionaries(CLAIM_KEYS, JSON_VALUE, max_size=6), JSON_VALUE))
    if draw(st.booleans()) and isinstance(claims, dict):
        key = DpopKey()
        token = jwt.JWT(header={"alg": "ES256", "typ": "dpop+jwt", "jwk": key.key.export_public(as_dict=True)},
                        claims=claims)
        token.make_signed_token(key.key)
        return token.serialize()
    tail = draw(st.sampled_from(["", "AAAA", "!!", "A" * 86, "a.b"]))
    return f"{b64_json(header)}.{b64_json(claims)}.{tail}"


def test_no_generated_proof_gets_a_5xx_or_a_token(client, project_a, confidential_client_a):
    allow(project_a, nonce=True)  # with a nonce required, no generated proof can be acceptable

    @given(proof=proofs())
    def check(proof):
        response = client_credentials(client, confidential_client_a, proof)
        assert response.status_code == 400, response.content
        assert response.json()["error"] in ("invalid_dpop_proof", "use_dpop_nonce")

    check()
    assert not AccessToken.objects.filter(application=confidential_client_a).exists()


# --- dpop_jkt: the authorization code bound to a key (§10) ------------------------------------------

def authorized_code(http, project, client, user, **params):
    """A code from the real authorize endpoint for a signed-in end user (first-party: no consent)."""
    sign_in_as(http, user)
    response = http.get(authorize_path(project, client, **params))
    assert response.status_code == 302, response.content
    return query_of(response["Location"]), VERIFIER


@pytest.fixture
def first_party_a(project_a):
    return first_party_client(project_a)


def redeem_loopback(http, client, code, verifier, proof=None):
    return with_proof(http, client, {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                     "redirect_uri": LOOPBACK_REDIRECT}, proof)


def test_a_code_requested_with_dpop_jkt_is_redeemed_with_that_key(client, project_a, first_party_a, end_user_a, key):
    allow(project_a)
    query, verifier = authorized_code(client, project_a, first_party_a, end_user_a, dpop_jkt=key.jkt)
    assert Grant.objects.get(code=query["code"]).dpop_jkt == key.jkt

    response = redeem_loopback(client, first_party_a, query["code"], verifier, key.proof("POST", endpoint(project_a)))

    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "DPoP"
    assert AccessToken.objects.get(application=first_party_a).claims["cnf"] == {"jkt": key.jkt}


@pytest.mark.parametrize("proof_key", ["other", "none"])
def test_a_code_bound_by_dpop_jkt_is_refused_without_a_proof_by_that_key(client, project_a, first_party_a,
                                                                          end_user_a, key, proof_key):
    allow(project_a)
    query, verifier = authorized_code(client, project_a, first_party_a, end_user_a, dpop_jkt=key.jkt)
    proof = DpopKey().proof("POST", endpoint(project_a)) if proof_key == "other" else None

    refused(redeem_loopback(client, first_party_a, query["code"], verifier, proof), 400, "invalid_grant")
    assert not AccessToken.objects.filter(application=first_party_a).exists()


def test_a_malformed_dpop_jkt_is_an_invalid_request_at_the_client(client, project_a, first_party_a, end_user_a):
    allow(project_a)
    query, _ = authorized_code(client, project_a, first_party_a, end_user_a, dpop_jkt="not-a-thumbprint")

    assert query["error"] == "invalid_request"
    assert "dpop_jkt" in query["error_description"]
    assert not Grant.objects.filter(application=first_party_a).exists()


def test_dpop_jkt_is_ignored_where_the_project_takes_no_proofs(client, project_a, first_party_a, end_user_a, key):
    query, verifier = authorized_code(client, project_a, first_party_a, end_user_a, dpop_jkt=key.jkt)

    assert Grant.objects.get(code=query["code"]).dpop_jkt == ""
    response = redeem_loopback(client, first_party_a, query["code"], verifier)
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"

