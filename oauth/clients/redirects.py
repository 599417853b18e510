"""Redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1): what a client may register, and
how a requested one is matched.

Registration (`problem`, `partition`): `https` with a host; `http` on loopback only
(127.0.0.1, [::1], localhost); a private-use scheme for native apps (RFC 8252 §7.1), the
single-word ones real clients use (`cursor:`, `vscode:`) as well as reverse-DNS ones
(`com.example.app:/cb`). Never a scheme a browser runs or reads locally (`javascript:`,
`data:`, `file:`, ...), never a fragment, user information or wildcard. One unacceptable URI
among several is dropped with its reason (RFC 7591 §3.2.1 lets the server replace values);
the caller decides what to refuse and what to record.

Matching (`matches`): simple string comparison of the whole URI, case-sensitive, without any
normalisation (OAuth 2.1 §2.3.1, RFC 9700 §4.1.3). The one exception is the port of a loopback
redirect (RFC 8252 §7.3: "MUST allow any port to be specified at the time of the request"), and
only the port: the host literal, path and query must still be equal character for character.
"""

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

MAX_URI_LENGTH = 2000
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")
# Schemes a browser executes, reads locally or keeps to itself: never a place to send a code.
NEVER_SCHEMES = ("javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "view-source")
# Registered schemes of other protocols: not an app's callback either.
OTHER_PROTOCOL_SCHEMES = ("ftp", "ws", "wss", "mailto", "tel", "sms", "urn", "ssh", "telnet", "ldap")
NOT_PRIVATE_USE = ("http", "https", *NEVER_SCHEMES, *OTHER_PROTOCOL_SCHEMES)
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")  # RFC 3986 §3.1
CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
# `http://` + a loopback host as written + an optional port, then the rest (path, query), if the
# authority ends there. Case-sensitive on purpose: "HTTP://LOCALHOST/cb" is not this registration.
LOOPBACK = re.compile(r"http://(127\.0\.0\.1|\[::1\]|localhost)(?::[0-9]{1,5})?(?=[/?]|\Z)(.*)", re.DOTALL)
HTTP_OFF_LOOPBACK = "uses http, which is allowed only as http://127.0.0.1, http://[::1] or http://localhost (any port)"
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?)*")


class Dropped(NamedTuple):
    """A redirect URI left out of a registration: its position in `redirect_uris`, itself, and why."""

    index: int
    uri: str
    reason: str

    def as_dict(self) -> dict:
        """For an audit event or a stored client (the URI cut short: it is the client's input)."""
        return {"value": self.uri[:200], "reason": self.reason, "index": self.index}

    def describe(self) -> str:
        return f"redirect_uris[{self.index}] {self.reason}"


# -- registration ------------------------------------------------------------------------------------

def problem(uri: str) -> str | None:
    """Why `uri` may not be registered as a redirect URI, in words for a developer; None if it may."""
    if not uri or len(uri) > MAX_URI_LENGTH or CONTROL_OR_SPACE.search(uri):
        return f"is empty, longer than {MAX_URI_LENGTH} characters, or contains spaces or control characters"
    if "#" in uri:
        return "has a fragment (RFC 6749 §3.1.2 forbids one)"
    if "*" in uri:
        return "contains a wildcard (redirect URIs are matched exactly)"
    scheme, colon, _ = uri.partition(":")
    if not colon or not SCHEME.fullmatch(scheme):
        return "has no scheme"
    scheme = scheme.lower()
    if scheme in NEVER_SCHEMES:
        return f"uses the {scheme}: scheme, which is never allowed"
    if scheme in OTHER_PROTOCOL_SCHEMES:
        return f"uses the {scheme}: scheme, which is not an app's callback"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URI (malformed host or port)"
    if parts.username is not None or parts.password is not None:
        return "carries user information (user@host)"
    if scheme == "https":
        return None if parts.hostname and valid_host(parts.hostname) else "is https without a valid host name"
    if scheme == "http":
        # RFC 8252 §7.3 (loopback, any port) and §8.3 ("localhost"); plain http anywhere else is refused.
        return None if LOOPBACK.fullmatch(uri) else HTTP_OFF_LOOPBACK
    if len(uri) == len(scheme) + 1:
        return "has nothing after its scheme"
    return None  # RFC 8252 §7.1: a private-use scheme of a native app


def partition(uris: list[str]) -> tuple[list[str], list[Dropped]]:
    """The URIs that may be registered (duplicates once, in order) and those dropped, with why."""
    kept: list[str] = []
    dropped: list[Dropped] = []
    for index, uri in enumerate(uris):
        reason = problem(uri)
        if reason is not None:
            dropped.append(Dropped(index, uri, reason))
        elif uri not in kept:
            kept.append(uri)
    return kept, dropped


def valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(HOST_NAME.fullmatch(host))


# -- kinds of redirect URI -----------------------------------------------------------------------------

def is_loopback(uri: str) -> bool:
    """http on 127.0.0.1, [::1] or localhost (RFC 8252 §7.3, §8.3), with or without a port."""
    return LOOPBACK.fullmatch(uri) is not None


def private_use_scheme(uri: str) -> str | None:
    """The scheme of a native app's private-use URI (RFC 8252 §7.1), e.g. `cursor`; else None."""
    scheme, colon, _ = uri.partition(":")
    if not colon or not SCHEME.fullmatch(scheme) or scheme.lower() in NOT_PRIVATE_USE:
        return None
    return scheme


# -- matching -----------------------------------------------------------------------------------------

def matches(requested: str, registered: list[str]) -> bool:
    """Is `requested` one of `registered`? Simple string comparison; a loopback port may differ."""
    if requested in registered:
        return True
    loopback = LOOPBACK.fullmatch(requested)
    if loopback is None:
        return False
    # RFC 8252 §7.3: the same loopback host as written, the same path and query; any port.
    return any((m := LOOPBACK.fullmatch(uri)) is not None and m.groups() == loopback.groups() for uri in registered)
