"""Helpers for the OpenID Connect tests: turn it on, walk the hosted sign-in and consent pages, redeem
the code, and check an ID token against the project's published JWKS (jwcrypto, as a relying party would)."""

import json
from urllib.parse import urlsplit

from jwcrypto import jwk, jws, jwt

from dashboard import policy
from tests.authz import LOOPBACK_REDIRECT, VERIFIER, authorize_path, query_of
from tests.conftest import PASSWORD
from tests.token_support import post_form, token_url


def turn_on_openid(project) -> None:
    """As the dashboard, the API and `setproject` do: validated, saved, keys made."""
    policy.change_settings(project, {"openid": True}, actor="test")
    project.refresh_from_db()


def sign_in_on_the_page(browser, response, email: str) -> object:
    """From a redirect to the hosted sign-in page, sign in with the form; the response after it."""
    assert response.status_code == 302, response.content
    location = response["Location"]
    assert urlsplit(location).path.endswith("/oauth/signin"), location
    return browser.post(location, {"email": email, "password": PASSWORD})


def allow_on_the_consent_page(browser, response) -> object:
    location = response["Location"]
    assert urlsplit(location).path.endswith("/oauth/consent"), location
    return browser.post(location, {"decision": "allow"})


def code_of(response) -> str:
    assert response.status_code == 302, response.content
    params = query_of(response["Location"])
    assert "code" in params, params
    return params["code"]


def authorize_with_sign_in(browser, project, app, user, **params) -> str:
    """The whole front channel: authorize, sign in on the page, allow; the code."""
    response = browser.get(authorize_path(project, app, **params))
    response = sign_in_on_the_page(browser, response, user.email)
    if urlsplit(response["Location"]).path.endswith("/oauth/consent"):
        response = allow_on_the_consent_page(browser, response)
    return code_of(response)


def redeem_code(http, app, code: str):
    return post_form(http, token_url(app.project), {
        "grant_type": "authorization_code", "code": code, "code_verifier": VERIFIER,
        "redirect_uri": LOOPBACK_REDIRECT, "client_id": app.client_id})


def verified_claims(http, project, id_token: str) -> tuple[dict, dict]:
    """(header, claims) of `id_token`, its signature checked with the key of the project's JWKS it names."""
    keys = json.loads(http.get(f"/p/{project.slug}/.well-known/jwks.json").content)["keys"]
    header = _header(id_token)
    (key,) = [k for k in keys if k["kid"] == header["kid"]]
    checked = jwt.JWT(jwt=id_token, key=jwk.JWK(**key), algs=[key["alg"]])
    return header, json.loads(checked.claims)


def _header(token: str) -> dict:
    parsed = jws.JWS()
    parsed.deserialize(token)
    return parsed.jose_header
