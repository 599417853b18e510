"""RFC 7591 §2 client metadata: every field checked, normalized, and judged against the way in.

One function, `validate(data, project, path)`, runs a short list of named checks in the RFC's
order and returns a `ClientMetadata`, or raises `InvalidRedirectUri` / `InvalidClientMetadata`
(RFC 7591 §3.2.2). Unknown fields are ignored, as RFC 7591 §2 says. The same rules serve open
and secret registration, RFC 7592 updates, CIMD documents and `createclient`; only the policy
of each way in differs (`Policy`).
"""

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import client_keys
from .client_auth import CLIENT_AUTH_METHODS, holds_secret
from .errors import InvalidClientMetadata, InvalidRedirectUri

MAX_URI_LENGTH = 2000
MAX_REDIRECT_URIS = 20
MAX_NAME_LENGTH = 200
MAX_SOFTWARE_ID_LENGTH = 200
MAX_SOFTWARE_VERSION_LENGTH = 100
MAX_CONTACTS = 10
MAX_CONTACT_LENGTH = 320

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
AUTH_METHODS = tuple(CLIENT_AUTH_METHODS)
SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", TOKEN_EXCHANGE)
FORBIDDEN_GRANT_TYPES = ("implicit", "password")
URI_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
# RFC 8252 §7.1: a reverse-domain-name scheme, e.g. com.example.app
PRIVATE_USE_SCHEME = re.compile(r"^[a-z][a-z0-9+\-]*(\.[a-z0-9+\-]+)+$")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Policy:
    """What one way in may register: `open` DCR is the narrowest, `secret` and `dashboard` the widest."""

    path: str
    may_be_confidential: bool
    may_use_client_credentials: bool
    may_be_first_party: bool
    default_auth_method: str

    @classmethod
    def for_path(cls, path: str) -> "Policy":
        trusted = path in ("secret", "dashboard")
        # RFC 7591 §2 defaults to client_secret_basic; open and CIMD clients can only be public.
        return cls(path, trusted, trusted, trusted, "client_secret_basic" if trusted else "none")


@dataclass
class ClientMetadata:
    """Normalized metadata: `metadata` is what is stored and echoed; the rest maps onto the model."""

    metadata: dict[str, Any] = field(default_factory=dict)
    first_party: bool = False
    keys: dict[str, Any] = field(default_factory=dict)  # `jwks` or `jwks_uri`, kept on their own columns

    @property
    def confidential(self) -> bool:
        return self.metadata["token_endpoint_auth_method"] != "none"

    @property
    def issues_secret(self) -> bool:
        return holds_secret(self.metadata["token_endpoint_auth_method"])

    @property
    def redirect_uris(self) -> list[str]:
        return self.metadata.get("redirect_uris", [])

    @property
    def toolkit_grant(self) -> str:
        grants = self.metadata["grant_types"]
        return "authorization-code" if "authorization_code" in grants else "client-credentials"

    def apply_to(self, client) -> None:
        """Set an Application's fields from this metadata (the caller saves it)."""
        client.name = self.metadata.get("client_name", "")
        client.redirect_uris = " ".join(self.redirect_uris)
        client.client_type = "confidential" if self.confidential else "public"
        client.authorization_grant_type = self.toolkit_grant
        client.metadata = self.metadata
        client.jwks, client.jwks_uri = self.keys.get("jwks"), self.keys.get("jwks_uri", "")
        client.fingerprint = self.fingerprint
        client.first_party = client.skip_authorization = self.first_party

    @property
    def fingerprint(self) -> str:
        """Same software, name and redirect URIs hash alike, so repeats group as one client."""
        parts = [self.metadata.get("software_id", ""), self.metadata.get("client_name", ""),
                 *sorted(self.redirect_uris)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def validate(data: Any, project, path: str) -> ClientMetadata:
    """Check RFC 7591 client metadata `data` for `project`, registered by way of `path`."""
    if not isinstance(data, dict):
        raise InvalidClientMetadata("The request body must be a JSON object.")
    policy = Policy.for_path(path)
    out: dict[str, Any] = {}
    out["redirect_uris"] = check_redirect_uris(data.get("redirect_uris"))
    out["grant_types"] = check_grant_types(data.get("grant_types"), policy)
    out["response_types"] = check_response_types(data.get("response_types"), out["grant_types"])
    out["token_endpoint_auth_method"] = check_auth_method(data.get("token_endpoint_auth_method"), policy)
    check_grants_fit_client(out)
    keys = check_client_keys(data, out["token_endpoint_auth_method"])
    out["application_type"] = check_application_type(data.get("application_type"), out["redirect_uris"])
    scope = check_scope(data.get("scope"), project)
    if scope is not None:
        out["scope"] = scope
    out.update(check_descriptive_fields(data))
    first_party = check_first_party(data.get("first_party"), policy)
    if first_party:
        out["first_party"] = True
    if not out["redirect_uris"]:
        del out["redirect_uris"]
    return ClientMetadata(metadata=out, first_party=first_party, keys=keys)


# -- redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7, API.md "Redirect URIs") ------------------------

def is_private_use_scheme(scheme: str) -> bool:
    return bool(PRIVATE_USE_SCHEME.match(scheme.lower()))


def is_loopback_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def check_redirect_uris(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(uri, str) for uri in value):
        raise InvalidRedirectUri("redirect_uris must be an array of strings.")
    if len(value) > MAX_REDIRECT_URIS:
        raise InvalidRedirectUri(f"At most {MAX_REDIRECT_URIS} redirect URIs may be registered.")
    for uri in value:
        check_redirect_uri(uri)
    return list(dict.fromkeys(value))


def check_redirect_uri(uri: str) -> None:
    """One redirect URI: https, loopback http on any port, or a private-use scheme; exact, no tricks."""
    if not uri or len(uri) > MAX_URI_LENGTH or CONTROL_CHARS.search(uri) or " " in uri:
        raise InvalidRedirectUri("A redirect URI is empty, too long or contains spaces.")
    if "#" in uri:
        raise InvalidRedirectUri("A redirect URI must not contain a fragment.")  # RFC 6749 §3.1.2
    if "*" in uri:
        raise InvalidRedirectUri("A redirect URI must not contain wildcards.")
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise InvalidRedirectUri("A redirect URI is malformed.") from None
    scheme = parts.scheme.lower()
    if parts.username is not None or parts.password is not None:
        raise InvalidRedirectUri("A redirect URI must not contain credentials.")
    if scheme == "https":
        if not host or not _valid_host(host):
            raise InvalidRedirectUri("An https redirect URI needs a host.")
    elif scheme == "http":
        # RFC 8252 §7.3: loopback on any port; plain http anywhere else is refused.
        if host not in LOOPBACK_HOSTS:
            raise InvalidRedirectUri("Plain http redirect URIs are allowed only on loopback.")
    elif is_private_use_scheme(scheme):
        # RFC 8252 §7.1: "com.example.app:/oauth2redirect" — a single slash, no authority.
        if parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
            raise InvalidRedirectUri("A private-use redirect URI has the form com.example.app:/path.")
    else:
        raise InvalidRedirectUri("A redirect URI must use https, loopback http or a private-use scheme.")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(re.fullmatch(r"[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?)*",
                                 host))


# -- grants, response types, client authentication -------------------------------------------------

def _string_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings.")
    return list(dict.fromkeys(value))


def check_grant_types(value: Any, policy: Policy) -> list[str]:
    grants = ["authorization_code", "refresh_token"] if value is None else _string_list(value, "grant_types")
    for grant in grants:
        if grant in FORBIDDEN_GRANT_TYPES:
            raise InvalidClientMetadata(f"The {grant} grant is not supported (OAuth 2.1).")
        if grant not in GRANT_TYPES:
            raise InvalidClientMetadata("grant_types contains an unsupported grant type.")
    if not grants:
        raise InvalidClientMetadata("grant_types must not be empty.")
    if "refresh_token" in grants and "authorization_code" not in grants:
        raise InvalidClientMetadata("refresh_token is only issued with authorization_code.")
    if ("client_credentials" in grants or TOKEN_EXCHANGE in grants) and not policy.may_use_client_credentials:
        raise InvalidClientMetadata("This grant type needs registration with a project secret.")
    return grants


def check_response_types(value: Any, grants: list[str]) -> list[str]:
    """RFC 7591 §2.1: `code` goes with `authorization_code`, and nothing else is offered."""
    default = ["code"] if "authorization_code" in grants else []
    types = default if value is None else _string_list(value, "response_types")
    if any(t != "code" for t in types):
        raise InvalidClientMetadata("Only the code response type is supported.")
    if ("code" in types) != ("authorization_code" in grants):
        raise InvalidClientMetadata("response_types code and grant_types authorization_code go together.")
    return types


def check_auth_method(value: Any, policy: Policy) -> str:
    method = policy.default_auth_method if value is None else value
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata("Unsupported token_endpoint_auth_method.")
    if holds_secret(method) and not policy.may_be_confidential:
        raise InvalidClientMetadata("Clients registered this way hold no secret: use token_endpoint_auth_method "
                                    "none or private_key_jwt.")
    return method


def check_grants_fit_client(out: dict[str, Any]) -> None:
    confidential = out["token_endpoint_auth_method"] != "none"
    if "client_credentials" in out["grant_types"] and not confidential:
        raise InvalidClientMetadata("client_credentials needs a confidential client.")
    if "authorization_code" in out["grant_types"] and not out["redirect_uris"]:
        raise InvalidRedirectUri("redirect_uris is required for the authorization_code grant.")


def check_client_keys(data: dict, method: str) -> dict[str, Any]:
    """RFC 7591 §2 `jwks` / `jwks_uri`, for private_key_jwt only (other clients' keys are ignored):
    exactly one of them; the URL https, the set public asymmetric keys (`oauth.client_keys`)."""
    if method != "private_key_jwt":
        return {}
    jwks, jwks_uri = data.get("jwks"), data.get("jwks_uri")
    if (jwks is None) == (jwks_uri is None):
        raise InvalidClientMetadata("private_key_jwt needs exactly one of jwks and jwks_uri.")
    if jwks_uri is not None:
        return {"jwks_uri": check_https_uri("jwks_uri", jwks_uri)}
    try:
        return {"jwks": client_keys.public_keyset(jwks)}
    except client_keys.KeySetError as exc:
        raise InvalidClientMetadata(f"jwks {exc}.") from None


def check_application_type(value: Any, redirect_uris: list[str]) -> str:
    """web or native (OpenID DCR §2); when omitted, inferred from the redirect URIs."""
    native_only = any(is_private_use_scheme(urlsplit(uri).scheme) for uri in redirect_uris)
    if value is None:
        return "native" if native_only or any(is_loopback_uri(u) for u in redirect_uris) else "web"
    if value not in ("web", "native"):
        raise InvalidClientMetadata("application_type must be web or native.")
    if value == "web" and native_only:
        raise InvalidRedirectUri("Private-use scheme redirect URIs are for native applications.")
    return value


# -- scope and descriptive fields --------------------------------------------------------------------

def check_scope(value: Any, project) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or CONTROL_CHARS.search(value):
        raise InvalidClientMetadata("scope must be a space-separated string.")
    scopes = list(dict.fromkeys(value.split()))
    unknown = [s for s in scopes if s not in project.scope_names]
    if unknown:
        raise InvalidClientMetadata("scope contains scopes this project does not offer.")
    return " ".join(scopes)


def _short_string(data: dict, name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or CONTROL_CHARS.search(value):
        raise InvalidClientMetadata(f"{name} must be a string of at most {limit} characters.")
    return value.strip() or None


def check_https_uri(name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_URI_LENGTH or CONTROL_CHARS.search(value) or " " in value:
        raise InvalidClientMetadata(f"{name} must be an https URL of at most {MAX_URI_LENGTH} characters.")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise InvalidClientMetadata(f"{name} is not a valid URL.") from None
    if parts.scheme != "https" or not host or not _valid_host(host) or parts.username is not None:
        raise InvalidClientMetadata(f"{name} must be an https URL.")
    return value


def check_descriptive_fields(data: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, limit in (("client_name", MAX_NAME_LENGTH), ("software_id", MAX_SOFTWARE_ID_LENGTH),
                        ("software_version", MAX_SOFTWARE_VERSION_LENGTH)):
        value = _short_string(data, name, limit)
        if value is not None:
            out[name] = value
    for name in URI_FIELDS:
        if data.get(name) is not None:
            out[name] = check_https_uri(name, data[name])
    if data.get("contacts") is not None:
        contacts = _string_list(data["contacts"], "contacts")
        if len(contacts) > MAX_CONTACTS or any(
            not c or len(c) > MAX_CONTACT_LENGTH or CONTROL_CHARS.search(c) for c in contacts
        ):
            raise InvalidClientMetadata(f"contacts holds at most {MAX_CONTACTS} short strings.")
        out["contacts"] = contacts
    return out


def check_first_party(value: Any, policy: Policy) -> bool:
    """Our extension field `first_party`: a client that skips consent, only with a project secret."""
    if value is None or value is False:
        return False
    if value is not True:
        raise InvalidClientMetadata("first_party must be a boolean.")
    if not policy.may_be_first_party:
        raise InvalidClientMetadata("Only clients registered with a project secret may be first-party.")
    return True
