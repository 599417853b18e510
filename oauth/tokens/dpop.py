"""DPoP at the token endpoint (RFC 9449 §5, §8): sender-constrained access and refresh tokens.

Per project (`Project.dpop`): `off` ignores proofs; `allowed` binds the tokens of a client that
sends a proof; `required` also refuses public clients that send none. `Project.dpop_nonce` makes
every proof carry a nonce we issued (§8). The steps, in order:

1. `read_proof` (before oauthlib): the `DPoP` header passes `mcpauth_rs.dpop.verify_proof`
   (§4.3: typ, alg, public jwk, signature, htm, htu, iat), then the nonce, then its `jti` is
   recorded in the shared cache (`cache.add`, atomic in Redis and in the embedded cache table,
   so a proof is accepted once across all workers);
2. `bind` (an oauthlib post_token validator, after client authentication): the public-client
   requirement, the refresh token's own key (§5), and `cnf.jkt` for the new tokens;
3. `token_type` (a token modifier) answers `"token_type": "DPoP"`; `add_nonce` hands out the
   next nonce on success.
"""

import hmac
import logging
import re
import urllib.parse

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from mcpauth_rs.dpop import ALGORITHMS, NonceSigner, ProofRejected, first_use, verify_proof
from oauth.backend import django_request, own, project_of
from oauth.errors import InvalidDpopProof, InvalidGrant, InvalidRequest, UseDpopNonce
from oauth.models import Application
from projects.models import Project

logger = logging.getLogger("mcpauth.oauth")
HEADER = "HTTP_DPOP"


def enabled(project: Project) -> bool:
    return project.dpop != Project.Dpop.OFF


def metadata(project: Project) -> dict:
    """RFC 9449 §5.1 `dpop_signing_alg_values_supported`, only where the project accepts proofs."""
    return {"dpop_signing_alg_values_supported": list(ALGORITHMS)} if enabled(project) else {}


def nonces(project: Project) -> NonceSigner:
    """The project's nonces: stateless, so every worker issues and accepts the same ones."""
    return NonceSigner(settings.SECRET_KEY.encode(), scope=f"dpop-nonce:{project.pk}")


JKT = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 JWK thumbprint (RFC 7638), unpadded


def check_jkt_parameter(project: Project, value: str | None) -> str | None:
    """§10: the authorization request's `dpop_jkt`, the thumbprint of the key the client will redeem
    the code with; ignored where the project takes no proofs (as the proofs themselves are)."""
    if not value or not enabled(project):
        return None
    if not JKT.fullmatch(value):
        raise InvalidRequest("dpop_jkt must be the base64url SHA-256 JWK thumbprint of the client's DPoP key "
                             "(RFC 7638, 43 characters).")
    return value


def target_uri(request: HttpRequest) -> str:
    """The URI the client called, as the issuer's public origin plus the path (behind any proxy)."""
    issuer = urllib.parse.urlsplit(request.issuer)
    return f"{issuer.scheme}://{issuer.netloc}{request.path}"


def read_proof(request: HttpRequest) -> None:
    """Step 1 above: `request.dpop_proof` is the verified proof, or None (no header, or DPoP off)."""
    request.dpop_proof = None
    project = request.project
    if not enabled(project) or HEADER not in request.META:
        return
    url = target_uri(request)
    try:
        proof = verify_proof(request.META[HEADER], method=request.method, url=url)
    except ProofRejected as exc:
        raise InvalidDpopProof(reason=str(exc)) from None
    signer = nonces(project)
    if project.dpop_nonce and not signer.accepts(proof.nonce):
        raise UseDpopNonce(signer.current(), reason="proof without a current nonce")
    if not first_use(cache, proof, url):
        raise InvalidDpopProof("The DPoP proof was already used; sign a new one for each request.",
                               reason="jti replayed")
    request.dpop_proof = proof


def bind(request) -> None:
    """Step 2 above, for the authorization_code, refresh_token and client_credentials grants."""
    proof = getattr(django_request(request), "dpop_proof", None)
    project = project_of(request)
    public = request.client.client_type == Application.CLIENT_PUBLIC
    if proof is None and public and project.dpop == Project.Dpop.REQUIRED:
        raise InvalidRequest("This project requires DPoP for public clients: send a DPoP proof (RFC 9449).",
                             reason="public client without a DPoP proof")
    code = own(request, "grant_instance", None) if request.grant_type == "authorization_code" else None
    # §10: a code whose authorization request named a key (`dpop_jkt`) is redeemed only with that key.
    if code is not None and code.dpop_jkt and (proof is None or not hmac.compare_digest(code.dpop_jkt, proof.jkt)):
        raise InvalidGrant("The authorization code is bound to the DPoP key named by dpop_jkt; "
                           "sign the proof with that key.", reason="code redeemed with another key")
    previous = own(request, "refresh_token_instance", None) if request.grant_type == "refresh_token" else None
    bound_to = previous.dpop_jkt if previous is not None else ""
    # §5: a refresh token bound to a key is only good with a proof by that same key.
    if bound_to and (proof is None or not hmac.compare_digest(bound_to, proof.jkt)):
        raise InvalidGrant("The refresh token is bound to another DPoP key.", reason="refresh with another key")
    if proof is None:
        return
    request.token_claims = {**own(request, "token_claims", {}), "cnf": {"jkt": proof.jkt}}
    # Only a public client's refresh token is bound (§5); a confidential client authenticates instead.
    request.refresh_token_jkt = bound_to or (proof.jkt if public else "")


def constrain(grant):
    """Makes `grant` (an oauthlib grant) DPoP-aware: `bind` after its other post-token checks, and
    `token_type` on its answer. The token endpoint's authorization_code (both grants behind the
    OpenID dispatcher), refresh_token and client_credentials grants are made so (`oauth.grants`)."""
    grant.custom_validators.post_token.append(bind)
    grant.register_token_modifier(token_type)
    return grant


def token_type(token: dict, *args) -> dict:
    """oauthlib token modifier: a token bound by `bind` is a DPoP token (RFC 9449 §5)."""
    if getattr(django_request(), "dpop_proof", None) is not None:
        token["token_type"] = "DPoP"
    return token


def add_nonce(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """§8.2: the nonce to use next, on every answer of a project that asks for nonces."""
    project = getattr(request, "project", None)
    if project is not None and enabled(project) and project.dpop_nonce:
        response["DPoP-Nonce"] = nonces(project).current()
    return response
