"""A local HTTPS stand-in for the upstream providers we cannot reach from here (GitHub, Google,
Microsoft Entra ID) and for the attack tests' misbehaving OpenID provider.

It speaks their documented endpoints and answers: OpenID Connect discovery, JWKS, the token
endpoint (client authentication, PKCE S256, single-use codes, `redirect_uri` match) with a signed
ID token; GitHub's `/login/oauth/access_token`, `GET /user` and `GET /user/emails`. The person's
side of `/authorize` is `approve()`: what the upstream's own sign-in page would do, it checks the
request and answers the redirect back to us. `tamper` changes the next ID token's claims (attacks).
"""

import base64
import hashlib
import json
import secrets
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from jwcrypto import jwk, jwt

from tests.oauth.clients.test_cimd import _cert_pair

TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class StandIn:
    def __init__(self, tmp_path, kind: str = "oidc", client_id: str = "upstream-client", client_secret: str = "upstream-secret"):
        self.kind, self.client_id, self.client_secret = kind, client_id, client_secret
        self.ca_path, cert, key = _cert_pair(tmp_path)
        self.key = jwk.JWK.generate(kty="RSA", size=2048, kid="standin-1")
        self.codes: dict[str, dict] = {}
        self.tamper: dict = {}
        self.send_iss = True
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                status, body = server.get(urlsplit(self.path).path, self.headers)
                self._answer(status, body)

            def do_POST(self):
                server.hits.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = server.token(form, self.headers)
                self._answer(status, body)

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    # -- where things are ------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """OpenID: the issuer; Microsoft: the `common` issuer template's tenant-specific form."""
        if self.kind == "microsoft":
            return f"{self.base}/{TENANT_ID}/v2.0"
        return self.base

    def settings(self) -> dict:
        """What settings.IDENTITY_UPSTREAMS says for this kind, pointed here."""
        return {"github": {"authorize": f"{self.base}/login/oauth/authorize",
                           "token": f"{self.base}/login/oauth/access_token", "api": f"{self.base}/api"},
                "google": {"issuer": self.base},
                "microsoft": {"issuer": self.base + "/{tenant}/v2.0"}}

    def discovery(self, tenant: str) -> dict:
        issuer = f"{self.base}/{{tenantid}}/v2.0" if tenant in ("common", "organizations") else self.issuer
        prefix = f"{self.base}/{tenant}" if self.kind == "microsoft" else self.base
        document = {
            "issuer": issuer, "authorization_endpoint": f"{prefix}/authorize", "token_endpoint": f"{prefix}/token",
            "jwks_uri": f"{self.base}/jwks", "userinfo_endpoint": f"{self.base}/userinfo",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
        }
        if self.kind == "oidc":
            document["authorization_response_iss_parameter_supported"] = True
        return document

    # -- GET ---------------------------------------------------------------------------------------

    def get(self, path: str, headers) -> tuple[int, object]:
        if path.endswith("/.well-known/openid-configuration"):
            tenant = path.split("/")[1] if self.kind == "microsoft" else ""
            return 200, self.discovery(tenant)
        if path == "/jwks":
            return 200, {"keys": [self.key.export_public(as_dict=True)]}
        if path in ("/api/user", "/api/user/emails"):
            person = self._bearer(headers)
            if person is None:
                return 401, {"message": "Bad credentials"}
            if path == "/api/user":
                return 200, {"login": person["login"], "id": person["id"], "name": person["name"], "email": None}
            return 200, [{"email": "other@example.org", "primary": False, "verified": True, "visibility": None},
                         {"email": person["email"], "primary": True, "verified": person["email_verified"],
                          "visibility": "private"}]
        return 404, {"error": "not_found"}

    def _bearer(self, headers):
        value = headers.get("Authorization", "")
        return self.tokens.get(value.removeprefix("Bearer ")) if value.startswith("Bearer ") else None

    tokens: dict[str, dict] = {}

    # -- the person's side of /authorize -------------------------------------------------------------

    def approve(self, authorize_url: str, *, subject: str = "upstream-user-1", email: str = "eve@example.com",
                email_verified: bool = True, name: str = "Eve") -> dict[str, str]:
        """What the upstream's sign-in page does for a person who says yes: the redirect's query."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        assert query["client_id"] == self.client_id and query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert "prompt" not in query and "max_age" not in query
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"redirect_uri": query["redirect_uri"], "challenge": query["code_challenge"],
                            "nonce": query.get("nonce"), "scope": query.get("scope", ""),
                            "person": {"sub": subject, "email": email, "email_verified": email_verified, "name": name,
                                       "login": subject, "id": abs(hash(subject)) % 10**8}}
        answer = {"code": code, "state": query["state"]}
        if self.send_iss and self.kind == "oidc":
            answer["iss"] = self.issuer
        return answer

    def refuse(self, authorize_url: str) -> dict[str, str]:
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        return {"error": "access_denied", "state": query["state"]}

    # -- the token endpoint ------------------------------------------------------------------------

    def token(self, form: dict, headers) -> tuple[int, object]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        if client_id != self.client_id or secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        issued = self.codes.pop(form.get("code", ""), None)
        if issued is None or form.get("redirect_uri") != issued["redirect_uri"] or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        if s256(form.get("code_verifier", "")) != issued["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        access_token = secrets.token_urlsafe(24)
        self.tokens[access_token] = issued["person"]
        if self.kind == "github":
            return 200, {"access_token": access_token, "token_type": "bearer", "scope": "read:user,user:email"}
        return 200, {"access_token": access_token, "token_type": "Bearer", "expires_in": 3600,
                     "id_token": self.id_token(issued)}

    def id_token(self, issued: dict) -> str:
        person, now = issued["person"], int(time.time())
        claims = {"iss": self.issuer, "sub": person["sub"], "aud": self.client_id, "iat": now, "exp": now + 300,
                  "nonce": issued["nonce"], "email": person["email"], "email_verified": person["email_verified"],
                  "name": person["name"]}
        if self.kind == "microsoft":
            claims["tid"] = TENANT_ID
        for name, value in self.tamper.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = self.tamper_key if hasattr(self, "tamper_key") else self.key
        token = jwt.JWT(header={"alg": "RS256", "kid": key.kid}, claims=claims)
        token.make_signed_token(key)
        return token.serialize()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def callback_query(answer: dict) -> str:
    return urlencode(answer)
