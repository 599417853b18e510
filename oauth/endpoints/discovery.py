"""RFC 8414 authorization server metadata (also served as the OIDC discovery document).

Served at `{issuer}/.well-known/oauth-authorization-server`, the OIDC form, and the RFC 8414
path-inserted locations on the origin. The document depends only on the project row and the
issuer, so it is built once per project generation and served from memory afterwards.
"""

import functools
import json

from django.http import HttpResponse

from infra import documents
from oauth import grants
from oauth.clients import auth as client_auth
from oauth.endpoints.decorator import oauth_endpoint
from oauth.tokens import dpop, id_token

ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag"  # draft-ietf-oauth-identity-assertion-authz-grant


def build_metadata(project, issuer: str) -> dict:
    doc = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "registration_endpoint": f"{issuer}/api/oauth/register",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": project.scope_names,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grants.supported(project),  # the registry in oauth.grants
        "code_challenge_methods_supported": ["S256"],
        # One registry (oauth.clients.auth) authenticates clients at all three endpoints.
        "token_endpoint_auth_methods_supported": client_auth.method_names(),
        "token_endpoint_auth_signing_alg_values_supported": client_auth.signing_algs(),
        "revocation_endpoint_auth_methods_supported": client_auth.method_names(),
        "revocation_endpoint_auth_signing_alg_values_supported": client_auth.signing_algs(),
        "introspection_endpoint_auth_methods_supported": [*client_auth.method_names(authenticated_only=True),
                                                          "bearer"],
        "introspection_endpoint_auth_signing_alg_values_supported": client_auth.signing_algs(),
        "client_id_metadata_document_supported": project.cimd_enabled,
        "authorization_response_iss_parameter_supported": True,
        "resource_indicators_supported": True,
        **id_token.discovery_fields(project, issuer),  # OpenID Connect Discovery §3, only when the project has it on
    }
    if not project.registration_enabled:
        del doc["registration_endpoint"]
    if grants.DEVICE_CODE in doc["grant_types_supported"]:  # RFC 8628 §4
        doc["device_authorization_endpoint"] = f"{issuer}/oauth/device_authorization"
    if project.token_format == project.TokenFormat.JWT:  # non-standard: the feed lists revoked JWTs only
        doc["mcpauth_revocation_feed_endpoint"] = f"{issuer}/oauth/revocations"
    if grants.JWT_BEARER in doc["grant_types_supported"]:  # ID-JAG (oauth.grants.jwt_bearer)
        doc["authorization_grant_profiles_supported"] = [ID_JAG_PROFILE]
    return doc | dpop.metadata(project)


@functools.lru_cache(maxsize=1024)
def _rendered(project_id: int, generation: float, issuer: str, project) -> bytes:
    # Keyed by the project's updated_at: any settings change starts a new generation.
    return json.dumps(build_metadata(project, issuer)).encode()


KEEP_SECONDS = 60  # kept in front of Django while nothing changes (infra.documents), at most this long


@oauth_endpoint(methods=("GET",), cache="public, max-age=60")
def metadata(request):
    documents.keep(request, KEEP_SECONDS)
    project = request.project
    body = _rendered(project.pk, project.updated_at.timestamp(), request.issuer, project)
    return HttpResponse(body, content_type="application/json")
