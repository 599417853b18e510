"""RFC 7591 §2 client metadata: every field checked, normalized, and judged against the way in.

One function, `validate(data, project, path)`, runs a short list of named checks in the RFC's
order and returns a `ClientMetadata`, or raises `InvalidRedirectUri` / `InvalidClientMetadata`
(RFC 7591 §3.2.2). Unknown fields are ignored, as RFC 7591 §2 says. The same rules serve open
and secret registration, RFC 7592 updates, CIMD documents and `createclient`; only the policy
of each way in differs (`Policy`).
"""

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import client_keys, redirects
from .client_auth import CLIENT_AUTH_METHODS, holds_secret
from .errors import InvalidClientMetadata, InvalidRedirectUri

MAX_URI_LENGTH = 2000
MAX_REDIRECT_URIS = 20
MAX_NAME_LENGTH = 200
MAX_SOFTWARE_ID_LENGTH = 200
MAX_SOFTWARE_VERSION_LENGTH = 100
MAX_CONTACTS = 10
MAX_CONTACT_LENGTH = 320

AUTH_METHODS = tuple(CLIENT_AUTH_METHODS)
SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", TOKEN_EXCHANGE)
FORBIDDEN_GRANT_TYPES = ("implicit", "password")
URI_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
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
    # What was asked for but left out (RFC 7591 §3.2.1), by field: [{"index", "uri", "reason"}, ...];
    # the caller records it (audit event) so the dashboard can show it.
    dropped: dict[str, list[dict]] = field(default_factory=dict)

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
    out["redirect_uris"], dropped_redirects = check_redirect_uris(data.get("redirect_uris"))
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
    dropped = {"redirect_uris": [d.as_dict() for d in dropped_redirects]} if dropped_redirects else {}
    return ClientMetadata(metadata=out, first_party=first_party, keys=keys, dropped=dropped)


# -- redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7, API.md "Redirect URIs"; rules in oauth.redirects) ------

def check_redirect_uris(value: Any) -> tuple[list[str], list[redirects.Dropped]]:
    """The redirect URIs to register and those dropped; refused only when none is left (RFC 7591 §3.2.1)."""
    if value is None:
        return [], []
    if not isinstance(value, list) or not all(isinstance(uri, str) for uri in value):
        raise InvalidRedirectUri("redirect_uris must be an array of strings.")
    if len(value) > MAX_REDIRECT_URIS:
        raise InvalidRedirectUri(f"At most {MAX_REDIRECT_URIS} redirect URIs may be registered.")
    kept, dropped = redirects.partition(value)
    if dropped and not kept:
        raise InvalidRedirectUri("No acceptable redirect URI: " + "; ".join(d.describe() for d in dropped) + ".")
    return kept, dropped


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
    """web or native (OpenID DCR §2); when omitted, inferred from the redirect URIs.

    A `web` client registering a private-use scheme keeps it (Cursor sends exactly that): the
    URI is matched exactly, so the label changes nothing about where a code may go.
    """
    native = any(redirects.private_use_scheme(u) or redirects.is_loopback(u) for u in redirect_uris)
    if value is None:
        return "native" if native else "web"
    if value not in ("web", "native"):
        raise InvalidClientMetadata("application_type must be web or native.")
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
    if parts.scheme != "https" or not host or not redirects.valid_host(host) or parts.username is not None:
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
