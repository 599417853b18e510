"""RFC 7591 §2 client metadata: every field checked, normalized, and judged against the way in.

One function, `validate(data, project, path)`, runs a short list of named checks in the RFC's
order and returns a `ClientMetadata`, or raises `InvalidRedirectUri` / `InvalidClientMetadata`
(RFC 7591 §3.2.2). Grant types, response types and the token endpoint auth method are narrowed
rather than refused (§3.2.1): what this client may not have is dropped and recorded in
`ClientMetadata.narrowed`, and the registration is refused only when nothing usable remains.
Unknown fields are ignored, as RFC 7591 §2 says. The same rules serve open and secret
registration, RFC 7592 updates, CIMD documents and `createclient`; only the policy of each way
in differs (`Policy`).
"""

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from oauth import grants
from oauth.clients import keys as client_keys
from oauth.clients import redirects
from oauth.clients.auth import CLIENT_AUTH_METHODS, ClientAuthMethod, holds_secret
from oauth.errors import InvalidClientMetadata, InvalidRedirectUri

MAX_URI_LENGTH = 2000
MAX_REDIRECT_URIS = 20
MAX_NAME_LENGTH = 200
MAX_SOFTWARE_ID_LENGTH = 200
MAX_SOFTWARE_VERSION_LENGTH = 100
MAX_CONTACTS = 10
MAX_CONTACT_LENGTH = 320

MAX_DROPPED_PER_FIELD = 20
MAX_DROPPED_VALUE_LENGTH = 200

DEFAULT_GRANT_TYPES = (grants.AUTHORIZATION_CODE, grants.REFRESH_TOKEN)
URI_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
ID_TOKEN_ALGS = ("RS256", "ES256")  # what OpenID Connect ID tokens are signed with (oauth.tokens.id_token)


@dataclass(frozen=True)
class Policy:
    """What one way in may register: `open` DCR is the narrowest, `secret` and `dashboard` the widest
    (which grants each way in may hold is in `oauth.grants`)."""

    path: str
    may_be_confidential: bool
    may_be_first_party: bool
    default_auth_method: str
    # RFC 7591 §3.2.1: a DCR client reads the values in force from the response; a CIMD client
    # gets no response, so it is never given an auth method it did not list.
    substitutes_auth_method: bool = True

    @classmethod
    def for_path(cls, path: str) -> "Policy":
        trusted = path in grants.TRUSTED_PATHS
        # RFC 7591 §2 defaults to client_secret_basic; open and CIMD clients can only be public.
        return cls(path, trusted, trusted, "client_secret_basic" if trusted else "none",
                   substitutes_auth_method=path != "cimd")


@dataclass
class ClientMetadata:
    """Normalized metadata: `metadata` is what is stored and echoed; the rest maps onto the model."""

    metadata: dict[str, Any] = field(default_factory=dict)
    first_party: bool = False
    keys: dict[str, Any] = field(default_factory=dict)  # `jwks` or `jwks_uri`, kept on their own columns
    # What was asked for and not granted (RFC 7591 §3.2.1), by field: [{"value", "reason"}, ...]
    # (redirect URIs also say their "index"); stored on the client and in its audit event.
    narrowed: dict[str, list[dict]] = field(default_factory=dict)

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
        return grants.toolkit_grant_of(self.metadata["grant_types"])

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
        client.narrowed = self.narrowed

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
    narrowed: dict[str, list[dict]] = {}
    out["redirect_uris"], dropped_redirects = check_redirect_uris(data.get("redirect_uris"))
    if dropped_redirects:
        narrowed["redirect_uris"] = [d.as_dict() for d in dropped_redirects][:MAX_DROPPED_PER_FIELD]
    method, dropped = narrow_auth_method(data, policy)
    if dropped:
        narrowed["token_endpoint_auth_method"] = dropped
    out["grant_types"], out["response_types"] = check_grants_and_responses(
        data, project, policy, method != "none", narrowed)
    out["token_endpoint_auth_method"] = method
    check_grants_fit_client(out)
    keys = check_client_keys(data, out["token_endpoint_auth_method"])
    out["application_type"] = check_application_type(data.get("application_type"), out["redirect_uris"],
                                                     out["grant_types"])
    scope = check_scope(data.get("scope"), project)
    if scope is not None:
        out["scope"] = scope
    out.update(check_descriptive_fields(data))
    out.update(check_id_token_alg(data, narrowed))
    first_party = check_first_party(data.get("first_party"), policy)
    if first_party:
        out["first_party"] = True
    if not out["redirect_uris"]:
        del out["redirect_uris"]
    return ClientMetadata(metadata=out, first_party=first_party, keys=keys, narrowed=narrowed)


# -- redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7, API.md "Redirect URIs"; rules in oauth.clients.redirects) ------

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


# -- grants, response types, client authentication: narrowed, not refused (RFC 7591 §3.2.1) ---------
# "The authorization server MAY reject or replace any of the client's requested metadata values
# submitted during the registration and substitute them with suitable values." Each narrowing
# function returns what is kept and what was dropped, with the reason; a registration is refused
# only when nothing usable remains.

def _string_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings.")
    return list(dict.fromkeys(value))


def printable(text: str, limit: int) -> str:
    """A client's string made safe to store and show: no control characters, no lone surrogates."""
    text = CONTROL_CHARS.sub("?", text[:limit])
    return text.encode("utf-8", "replace").decode("utf-8")


def _drop(value: str, reason: str) -> dict[str, str]:
    return {"value": printable(value, MAX_DROPPED_VALUE_LENGTH), "reason": reason}


def auth_method_refusal(method: str, data: dict, policy: Policy,
                        usable: Mapping[str, ClientAuthMethod] = CLIENT_AUTH_METHODS) -> str | None:
    """Why `method` cannot be this client's token_endpoint_auth_method, or None when it can."""
    spec = usable.get(method)
    if spec is None:
        return "not supported by this server"
    if spec.holds_secret and not policy.may_be_confidential:
        return "needs registration with a project secret (this way in registers public clients)"
    if spec.needs_keys and not (data.get("jwks") or data.get("jwks_uri")):
        return "needs jwks or jwks_uri"
    return None


def narrow_auth_method(data: dict, policy: Policy,
                       usable: Mapping[str, ClientAuthMethod] = CLIENT_AUTH_METHODS) -> tuple[str, list[dict]]:
    """The method in force: the requested one, else the client's first usable fallback (listed in
    `token_endpoint_auth_methods_supported`, as ChatGPT's document does), else for DCR the way
    in's default (the 201 response tells the client). A CIMD client never sees a response, so it
    gets no method it did not list."""
    requested = data.get("token_endpoint_auth_method")
    if requested is None:
        requested = policy.default_auth_method
    if not isinstance(requested, str):
        raise InvalidClientMetadata("token_endpoint_auth_method must be a string.")
    listed = data.get("token_endpoint_auth_methods_supported")
    fallbacks = [m for m in listed if isinstance(m, str)] if isinstance(listed, list) else []
    reason = auth_method_refusal(requested, data, policy, usable)
    if reason is None:
        return requested, []
    dropped = [_drop(requested, reason)]
    for method in fallbacks:
        if auth_method_refusal(method, data, policy, usable) is None:
            return method, dropped
    if policy.substitutes_auth_method:
        return policy.default_auth_method, dropped
    raise InvalidClientMetadata(f"token_endpoint_auth_method: {reason}; supported: {', '.join(usable)}.")


def narrow_grant_types(value: Any, project, policy: Policy, confidential: bool) -> tuple[list[str], list[dict]]:
    """The requested grant types this client may hold (`oauth.grants`); the others dropped."""
    requested = list(DEFAULT_GRANT_TYPES) if value is None else _string_list(value, "grant_types")
    kept, dropped = [], []
    for grant_type in requested:
        reason = grants.refusal(grant_type, project, policy.path, confidential)
        if reason is None:
            kept.append(grant_type)
        else:
            dropped.append(_drop(grant_type, reason))
    for grant_type in list(kept):
        needed = grants.find(grant_type).requires
        if needed and not set(needed) & set(kept):
            kept.remove(grant_type)
            dropped.append(_drop(grant_type, f"only issued with {' or '.join(needed)}"))
    return kept, dropped


def narrow_response_types(value: Any, grant_types: list[str]) -> tuple[list[str], list[dict]]:
    """RFC 7591 §2.1: `code` goes with `authorization_code`; no other response type is offered."""
    has_code_grant = grants.AUTHORIZATION_CODE in grant_types
    requested = (["code"] if has_code_grant else []) if value is None else _string_list(value, "response_types")
    kept, dropped = [], []
    for response_type in requested:
        if response_type != "code":
            dropped.append(_drop(response_type, "only the code response type is supported"))
        elif not has_code_grant:
            dropped.append(_drop(response_type, "goes only with the authorization_code grant"))
        else:
            kept.append(response_type)
    return kept, dropped


def check_grants_and_responses(data: dict, project, policy: Policy, confidential: bool,
                               narrowed: dict[str, list[dict]]) -> tuple[list[str], list[str]]:
    """Narrow grant_types and response_types together; refuse, naming the field, when the client
    loses the code flow it asked for, or is left with no grant at all."""
    kept, dropped_grants = narrow_grant_types(data.get("grant_types"), project, policy, confidential)
    types, dropped_types = narrow_response_types(data.get("response_types"), kept)
    if grants.AUTHORIZATION_CODE in kept and "code" not in types:
        # The client asked for the code grant but not for the response type that starts it.
        raise InvalidClientMetadata("response_types: authorization_code needs the code response type.")
    asked_for_code = data.get("grant_types") is None or grants.AUTHORIZATION_CODE in data["grant_types"]
    if asked_for_code and grants.AUTHORIZATION_CODE not in kept:
        raise InvalidClientMetadata("grant_types: authorization_code is not available to this client.")
    if not kept:
        usable = [g for g in grants.supported(project) if grants.refusal(g, project, policy.path, confidential) is None]
        raise InvalidClientMetadata(f"grant_types: none of the requested grant types can be used by this client "
                                    f"(usable: {', '.join(usable) or 'none'}).")
    for name, dropped in (("grant_types", dropped_grants), ("response_types", dropped_types)):
        if dropped:
            narrowed[name] = dropped[:MAX_DROPPED_PER_FIELD]
    return kept, types


def check_grants_fit_client(out: dict[str, Any]) -> None:
    if "authorization_code" in out["grant_types"] and not out["redirect_uris"]:
        raise InvalidRedirectUri("redirect_uris is required for the authorization_code grant.")


def check_client_keys(data: dict, method: str) -> dict[str, Any]:
    """RFC 7591 §2 `jwks` / `jwks_uri`, for private_key_jwt only (other clients' keys are ignored):
    exactly one of them; the URL https, the set public asymmetric keys (`oauth.clients.keys`)."""
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


def check_application_type(value: Any, redirect_uris: list[str], grant_types: list[str]) -> str:
    """web or native (OpenID DCR §2); when omitted, inferred from the redirect URIs, or, with none,
    from the grants: a client that only polls for device codes runs on the person's device.

    A `web` client registering a private-use scheme keeps it (Cursor sends exactly that): the
    URI is matched exactly, so the label changes nothing about where a code may go.
    """
    native = any(redirects.private_use_scheme(u) or redirects.is_loopback(u) for u in redirect_uris)
    if not redirect_uris and grants.DEVICE_CODE in grant_types:
        native = True
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


def check_id_token_alg(data: dict, narrowed: dict[str, list[dict]]) -> dict[str, str]:
    """RFC 7591 §2 / OIDC Registration §2 `id_token_signed_response_alg`: kept when we sign with it,
    else dropped (RFC 7591 §3.2.1: narrowed, not refused) and the client gets RS256."""
    value = data.get("id_token_signed_response_alg")
    if value is None:
        return {}
    if value in ID_TOKEN_ALGS:
        return {"id_token_signed_response_alg": value}
    shown = value[:200] if isinstance(value, str) else str(type(value).__name__)
    narrowed["id_token_signed_response_alg"] = [{"value": shown, "reason": f"ID tokens are signed with "
                                                 f"{' or '.join(ID_TOKEN_ALGS)}"}]
    return {}
