"""An OpenID Connect relying party we did not write, unmodified: panva's `oauth4webapi` under Node 20
(tests/e2e/ts/oidc_rp.mjs) against the issuer as shipped, for RS256 and ES256 ID tokens: discovery,
dynamic registration, the code flow with `openid` + PKCE + nonce + max_age, ID token validation
(signature from our JWKS), userinfo, and a refresh with a new ID token (OpenID Connect Core §12.2)."""

from __future__ import annotations

import httpx2
import pytest

from .conftest import PASSWORD, REDIRECT_URI
from .node import converse, node_script
from .test_typescript_sdk import TS
from .user_agent import EndUser

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def oidc_project(issuer, slug: str) -> tuple[str, str, str]:
    """A project with OpenID Connect turned on by the operator command line, and an end user."""
    project = issuer.manage("createproject", "--owner", issuer.operator, "--name", "E2E OIDC", "--slug", slug,
                            "--resource", "http://127.0.0.1:9/mcp")
    assert issuer.manage("setproject", slug, "--set", "openid=true")["openid"] is True
    email = f"eve@{slug}.example"
    subject = issuer.create_end_user(slug, email)
    issuer.shell(f"from projects.models import User; User.objects.filter(subject={subject!r}).update(name='Eve Oidc')")
    return project["issuer"], email, subject


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_oauth4webapi_signs_in_with_openid_connect(issuer, alg):
    issuer, email, subject = oidc_project(issuer, f"e2e-oidc-{alg.lower()}")

    rp = node_script(TS, "oauth4webapi", "oidc_rp.mjs", issuer, REDIRECT_URI, alg)
    done = converse(rp, EndUser(email, PASSWORD), "oauth4webapi relying party")

    assert done["header"]["alg"] == alg
    claims = done["claims"]
    assert claims["iss"] == issuer and claims["aud"] == done["clientId"] and claims["sub"] == subject
    # createenduser: the operator vouches for the address, so it is verified
    assert claims["email"] == email and claims["name"] == "Eve Oidc" and claims["email_verified"] is True
    assert isinstance(claims["auth_time"], int) and claims["nonce"]
    assert done["userinfo"] == {"sub": subject, "email": email, "email_verified": True, "name": "Eve Oidc"}
    refreshed = done["refreshedClaims"]
    assert refreshed["sub"] == subject and refreshed["auth_time"] == claims["auth_time"] and "nonce" not in refreshed
    keys = httpx2.get(f"{issuer}/.well-known/jwks.json", timeout=30).json()["keys"]
    assert done["header"]["kid"] in {k["kid"] for k in keys if k["alg"] == alg}
