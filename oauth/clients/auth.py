"""Client authentication (RFC 6749 §2.3, RFC 7591 §2 `token_endpoint_auth_method`): one registry.

`CLIENT_AUTH_METHODS` maps each method a client may register to the object that checks it. The
token, revocation and introspection endpoints (through `Validator.authenticate_client`),
discovery (`*_auth_methods_supported`, `*_auth_signing_alg_values_supported`) and client
metadata validation all read this one dict; adding a method is one module and one line here.

A request is authenticated by the method it presents, and only if that method is the one the
client registered (RFC 7591 §2). One tolerance is kept from before the registry: a client
registered with `client_secret_basic` may send its secret as `client_secret_post` and the other
way round, since both prove the same shared secret. A client registered with `private_key_jwt`
can never use a secret, nor a secret client an assertion. Presenting two methods in one request
is refused (RFC 6749 §2.3: "MUST NOT use more than one authentication method in each request").
"""

import base64
import binascii
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import unquote_plus

from django.contrib.auth.hashers import check_password, identify_hasher
from django.utils.crypto import constant_time_compare

from oauth.clients.hashers import HmacSecretHasher
from oauth.clients.private_key_jwt import PrivateKeyJwt
from oauth.errors import InvalidClient

SHARED_SECRET_METHODS = ("client_secret_basic", "client_secret_post")
SECRET_HASHER = HmacSecretHasher()  # stateless: one per process


class ClientAuthMethod(Protocol):
    """One way a client proves who it is at the token endpoint (a `token_endpoint_auth_method`).

    The shape every entry of CLIENT_AUTH_METHODS has; subclass it, or match it (`PrivateKeyJwt`).
    """

    name = ""
    holds_secret = False  # registration issues a client_secret for clients of this method
    needs_keys = False  # the client proves itself with its own keys: its metadata carries jwks or jwks_uri
    signing_algs: tuple[str, ...] = ()  # JWS algorithms, for *_auth_signing_alg_values_supported
    accepted_as: tuple[str, ...] = ()  # registered methods this presented method also satisfies

    def presented(self, request) -> bool:
        """Whether the (oauthlib) request carries this method's credential."""
        return False

    def claimed_client_id(self, request) -> str | None:
        """The client_id the credential names, before anything is checked."""
        return request.client_id

    def authenticate(self, client, request) -> bool:
        """Check the credential for `client`: False, or InvalidClient with a description, when it fails."""
        raise NotImplementedError


class NoneMethod(ClientAuthMethod):
    """`none`: a public client identifies itself by client_id alone (PKCE protects its codes)."""

    name = "none"

    def authenticate(self, client, request) -> bool:
        return True


def secret_matches(presented: str, stored: str) -> bool:
    """The presented secret against the stored digest (or a secret stored in clear by the toolkit).

    Our own format (`oauth.clients.hashers`, every secret this server stores) is verified by its
    hasher directly: Django's `check_password` would identify the hasher twice and ask whether the
    digest must be upgraded, for the same answer.
    """
    if stored.startswith(SECRET_HASHER.algorithm + "$"):
        return SECRET_HASHER.verify(presented, stored)
    try:
        identify_hasher(stored)
    except ValueError:  # hash_client_secret=False: the toolkit keeps it as is
        return constant_time_compare(presented, stored)
    return check_password(presented, stored)


def basic_credentials(request) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: `Authorization: Basic` of form-urlencoded client_id:client_secret, or None.

    Read once per request (dispatch asks three times: presented, claimed client_id, secret): the
    answer is kept on the request, with the header it was read from.
    """
    header = request.headers.get("Authorization") or ""
    kept = vars(request).get(_BASIC_KEPT)
    if kept is not None and kept[0] == header:
        return kept[1]
    credentials = _parse_basic(header)
    vars(request)[_BASIC_KEPT] = (header, credentials)
    return credentials


_BASIC_KEPT = "mcpauth_basic_credentials"  # an attribute of the request, so it dies with it


def _parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ("", "")  # presented, but unreadable: authenticates no one
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(secret)


class ClientSecretBasic(ClientAuthMethod):
    name = "client_secret_basic"
    holds_secret = True
    accepted_as = SHARED_SECRET_METHODS

    def presented(self, request) -> bool:
        return basic_credentials(request) is not None

    def claimed_client_id(self, request) -> str | None:
        credentials = basic_credentials(request)
        return credentials[0] if credentials else None

    def authenticate(self, client, request) -> bool:
        credentials = basic_credentials(request)
        return credentials is not None and secret_matches(credentials[1], client.client_secret)


class ClientSecretPost(ClientAuthMethod):
    name = "client_secret_post"
    holds_secret = True
    accepted_as = SHARED_SECRET_METHODS

    def presented(self, request) -> bool:
        # An empty client_secret (some public clients send one) is no credential, as the toolkit has it.
        return bool(request.client_secret)

    def authenticate(self, client, request) -> bool:
        return secret_matches(request.client_secret, client.client_secret)


CLIENT_AUTH_METHODS: dict[str, ClientAuthMethod] = {
    method.name: method
    for method in (NoneMethod(), ClientSecretBasic(), ClientSecretPost(), PrivateKeyJwt())
}


# -- what discovery and client metadata read -------------------------------------------------------

def method_names(*, authenticated_only: bool = False) -> list[str]:
    return [name for name in CLIENT_AUTH_METHODS if not (authenticated_only and name == "none")]


def signing_algs() -> list[str]:
    """Every JWS algorithm some method accepts (RFC 8414 `*_auth_signing_alg_values_supported`)."""
    return list(dict.fromkeys(alg for method in CLIENT_AUTH_METHODS.values() for alg in method.signing_algs))


def holds_secret(method_name: Any) -> bool:
    method = CLIENT_AUTH_METHODS.get(method_name) if isinstance(method_name, str) else None
    return method is not None and method.holds_secret


def registered_method(client) -> str:
    """The client's registered token_endpoint_auth_method; rows without one follow their client type."""
    metadata = client.metadata if isinstance(client.metadata, dict) else {}
    method = metadata.get("token_endpoint_auth_method")
    public = client.client_type != "confidential"
    if method in CLIENT_AUTH_METHODS and (method == "none") == public:
        return method
    return "none" if public else "client_secret_basic"


# -- dispatch --------------------------------------------------------------------------------------

def presented_method(request) -> ClientAuthMethod | None:
    """The one method whose credential the request carries, None for none; two → invalid_client."""
    presented = [method for method in CLIENT_AUTH_METHODS.values() if method.presented(request)]
    if len(presented) > 1:
        raise InvalidClient("Use exactly one client authentication method per request.",
                            reason="several client credentials presented: " + ", ".join(m.name for m in presented))
    return presented[0] if presented else None


def authenticate(request, load: Callable[[str, Any], Any]) -> bool:
    """Authenticate the client of an oauthlib request with the credential it presents.

    `load(client_id, request)` finds the project's client and sets `request.client`. False (or
    InvalidClient with a description) when nothing usable is presented, the client is unknown,
    the credential is not the client's registered method, or it does not verify.
    """
    method = presented_method(request)
    if method is None:
        return False
    client_id = method.claimed_client_id(request)
    if not client_id or (request.client_id and request.client_id != client_id):
        return False  # a body client_id naming another client than the credential does
    client = load(client_id, request)
    if client is None:
        return False
    registered = registered_method(client)
    if registered != method.name and registered not in method.accepted_as:
        raise InvalidClient(f"This client is registered for {registered} authentication, not {method.name}.",
                            reason=f"client {client.pk} presented {method.name}")
    return method.authenticate(client, request)
