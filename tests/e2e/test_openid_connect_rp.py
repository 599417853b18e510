"""An OpenID Connect relying party we did not write, unmodified: panva's `oauth4webapi` under Node 20
(tests/e2e/ts/oidc_rp.mjs) against the issuer as shipped, for RS256 and ES256 ID tokens: discovery,
dynamic registration, the code flow with `openid` + PKCE + nonce + max_age, ID token validation
(signature from our JWKS), userinfo, and a refresh with a new ID token (OpenID Connect Core §12.2)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading

import httpx2
import pytest

from .conftest import PASSWORD, REDIRECT_URI
from .test_typescript_sdk import NODE_SECONDS, TS
from .user_agent import EndUser

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def relying_party(issuer: str, alg: str) -> subprocess.Popen:
    node = shutil.which("node")
    if node is None or not (TS / "node_modules" / "oauth4webapi").is_dir():
        pytest.fail("Node 20 and `npm ci --prefix tests/e2e/ts` are needed (make test and .ci/run do both)")
    return subprocess.Popen([node, str(TS / "oidc_rp.mjs"), issuer, REDIRECT_URI, alg], cwd=TS, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def converse(process: subprocess.Popen, user: EndUser) -> dict:
    """Answer each sign-in the relying party asks for with the end user's redirect query."""
    watchdog = threading.Timer(NODE_SECONDS, process.kill)
    watchdog.start()
    try:
        for line in process.stdout:
            message = json.loads(line)
            if "authorize" in message:
                process.stdin.write(json.dumps(user.authorize(message["authorize"], REDIRECT_URI)) + "\n")
                process.stdin.flush()
            elif "done" in message:
                return message["done"]
            else:
                pytest.fail(f"oauth4webapi refused our answer: {message}")
        pytest.fail(f"the relying party ended without an answer:\n{process.stderr.read()}")
    finally:
        watchdog.cancel()
        process.wait(timeout=30)


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

    done = converse(relying_party(issuer, alg), EndUser(email, PASSWORD))

    assert done["header"]["alg"] == alg
    claims = done["claims"]
    assert claims["iss"] == issuer and claims["aud"] == done["clientId"] and claims["sub"] == subject
    assert claims["email"] == email and claims["name"] == "Eve Oidc" and "email_verified" not in claims
    assert isinstance(claims["auth_time"], int) and claims["nonce"]
    assert done["userinfo"] == {"sub": subject, "email": email, "name": "Eve Oidc"}
    refreshed = done["refreshedClaims"]
    assert refreshed["sub"] == subject and refreshed["auth_time"] == claims["auth_time"] and "nonce" not in refreshed
    keys = httpx2.get(f"{issuer}/.well-known/jwks.json", timeout=30).json()["keys"]
    assert done["header"]["kid"] in {k["kid"] for k in keys if k["alg"] == alg}
