"""Token endpoint client authentication methods (RFC 7591 §2, RFC 8414 §2): one list everyone reads.

Discovery's `token_endpoint_auth_methods_supported` and the client-metadata checks that narrow a
registration's `token_endpoint_auth_method` read `SUPPORTED_AUTH_METHODS`. A method that is not
listed here is dropped from a registration (the client's listed fallback, or the way in's
default, takes its place), so adding one (`private_key_jwt`, RFC 7523) is its verifier plus one
entry whose `needs_keys` is true. Narrowing reads only `holds_secret` and `needs_keys` of an
entry, so the registry of verifiers (`oauth.client_auth.CLIENT_AUTH_METHODS`, with the same
attribute names) can take this list's place.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class AuthMethod:
    """`holds_secret`: we issue the client a shared secret, so only trusted ways in may register it;
    `needs_keys`: the client proves itself with its own keys, so its metadata must carry `jwks` or
    `jwks_uri`."""

    name: str
    holds_secret: bool = False
    needs_keys: bool = False


AUTH_METHODS: tuple[AuthMethod, ...] = (
    AuthMethod("none"),
    AuthMethod("client_secret_basic", holds_secret=True),
    AuthMethod("client_secret_post", holds_secret=True),
)
SUPPORTED_AUTH_METHODS: dict[str, AuthMethod] = {method.name: method for method in AUTH_METHODS}
