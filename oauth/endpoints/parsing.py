"""Strict request parsing for the machine endpoints (RFC 6749 §3.1, RFC 8259, RFC 9110 §15.5).

Every OAuth JSON endpoint (`oauth.endpoints.decorator.oauth_endpoint`) and the management API
(`dashboard.api.ManagementView`) run `check_request` with the endpoint's `Body` before anything
reads the request: the path, the query string, the media type, the size and the syntax of the
body are checked here, so the views only ever see input that Django, oauthlib, DRF and the
database can take. Each refusal is one error of the RFC shape:

- a body of another media type → 415; a form body in a charset other than UTF-8, or a
  multipart one without a boundary or with a file → 400;
- a body over the endpoint's limit, or with too many fields → 413, before it is read;
- a chunked body (no Content-Length) → 411;
- a parameter given twice (RFC 6749 §3.1: "Request and response parameters MUST NOT be included
  more than once"), in the query or the form body, or a JSON key given twice → 400;
- invalid UTF-8, NUL bytes (PostgreSQL text cannot hold them), lone surrogates (no UTF-8 encoding
  exists for them), JSON nested deeper than `MAX_JSON_DEPTH`, a top level that is not an object,
  `NaN`/`Infinity` → 400.
"""

import json
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.utils.http import parse_header_parameters

from oauth.errors import InvalidRequest, OAuthError

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"  # what many HTTP clients send for a dict of fields; no files
JSON = "application/json"
MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 100
MAX_JSON_DEPTH = 32
# RFC 8707 §2 (`resource`) and RFC 8693 §2.1 (`audience`) may be sent more than once.
REPEATABLE = frozenset({"resource", "audience"})
# NUL anywhere, or half of a UTF-16 surrogate pair: neither can be stored nor encoded as UTF-8.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
CONTROL = re.compile("[\x00-\x1f\x7f]")


class UnsupportedMediaType(InvalidRequest):
    status = 415


class PayloadTooLarge(InvalidRequest):
    status = 413


class LengthRequired(InvalidRequest):
    status = 411
    description = "Send the body with a Content-Length (chunked bodies are not accepted)."


@dataclass(frozen=True)
class Body:
    """What an endpoint accepts: its media types (none: it reads no body) and its size limit.

    `malformed` is the error for a body that is not the JSON object expected (RFC 7591 §3.2.2
    registration answers `invalid_client_metadata` there).
    """

    media_types: tuple[str, ...] = ()
    max_bytes: int = MAX_BODY_BYTES
    repeatable: frozenset[str] = REPEATABLE
    malformed: type[OAuthError] = InvalidRequest


NO_BODY = Body()
FORM_BODY = Body((FORM, MULTIPART))
JSON_BODY = Body((JSON,))


def check_request(request: HttpRequest, body: Body) -> None:
    """Refuse what the endpoint cannot take (see the module docstring); return quietly otherwise."""
    check_path(request)
    check_headers(request)
    # WSGI hands the query string over as latin-1: these are its bytes.
    query = request.META.get("QUERY_STRING", "").encode("latin-1", "replace")
    names = [name for name, _ in parse_fields(query, "query string")]
    if body.media_types and has_body(request):
        media_type = check_media_type(request, body)
        raw = read_body(request, body.max_bytes)
        if media_type == FORM:  # kept for the view (`checked_form`): parsed once
            request.checked_form = parse_fields(raw, "body", too_many=PayloadTooLarge)
            names += [name for name, _ in request.checked_form]
        elif media_type == MULTIPART:
            names += multipart_field_names(request)
        else:  # kept for the view (`checked_json`): a JSON body is decoded and walked once
            request.checked_json = decode_json(raw, body.malformed)
    refuse_repeated(names, body.repeatable)


def check_path(request: HttpRequest) -> None:
    if CONTROL.search(request.path):
        raise InvalidRequest("The path must not contain control characters.")


def check_headers(request: HttpRequest) -> None:
    if "\x00" in request.META.get("HTTP_AUTHORIZATION", ""):
        raise InvalidRequest("The Authorization header must not contain NUL characters.")


def has_body(request: HttpRequest) -> bool:
    """True when the request carries a body; an empty one is as good as none, whatever its type."""
    if request.META.get("HTTP_TRANSFER_ENCODING"):
        raise LengthRequired()
    return content_length(request) > 0


def content_length(request: HttpRequest) -> int:
    raw = request.META.get("CONTENT_LENGTH") or "0"
    if not raw.isdigit():
        raise InvalidRequest("The Content-Length header is malformed.")
    return int(raw)


def check_media_type(request: HttpRequest, body: Body) -> str:
    """RFC 9110 §15.5.16: a body of a media type the endpoint does not take is a 415."""
    header = request.META.get("CONTENT_TYPE", "")
    if header in body.media_types:  # the usual case, bare (no parameter): nothing to parse
        return header
    media_type, params = parse_header_parameters(header)
    media_type = media_type.lower()
    expected = " or ".join(body.media_types)
    if media_type not in body.media_types:
        raise UnsupportedMediaType(f"The body must be {expected}.", reason=f"media type {media_type[:100]!r}")
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise InvalidRequest(f"The body must be {expected} in UTF-8.", reason=f"charset {charset[:40]!r}")
    return media_type


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The body, refused with 413 before it is read when Content-Length says it is over `limit`."""
    if content_length(request) > limit:
        raise PayloadTooLarge(f"The body must be at most {limit} bytes.")
    return request.body


def parse_fields(raw: bytes, where: str, *, too_many: type[OAuthError] = InvalidRequest) -> list[tuple[str, str]]:
    """`application/x-www-form-urlencoded` pairs, raw and percent-encoded bytes strict UTF-8, without NUL."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise InvalidRequest(f"The {where} must be percent-encoded UTF-8.") from None
    except ValueError:  # more than MAX_FIELDS
        raise too_many(f"The {where} has more than {MAX_FIELDS} parameters.") from None
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise InvalidRequest("Parameters must not contain NUL characters.")
    return pairs


def multipart_field_names(request: HttpRequest) -> list[str]:
    """The fields of a `multipart/form-data` body (RFC 7578), parsed by Django; no files."""
    try:
        fields, files = request.POST, request.FILES
    except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent):
        raise PayloadTooLarge(f"The body has more than {MAX_FIELDS} parameters.") from None
    except (MultiPartParserError, UnicodeDecodeError, ValueError):  # no or a bad boundary, broken parts
        raise InvalidRequest("The multipart/form-data body is malformed.") from None
    if files:
        raise InvalidRequest("Files are not accepted here.")
    pairs = [(name, value) for name, values in fields.lists() for value in values]
    if len(pairs) > MAX_FIELDS:
        raise PayloadTooLarge(f"The body has more than {MAX_FIELDS} parameters.")
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise InvalidRequest("Parameters must not contain NUL characters.")
    return [name for name, _ in pairs]


def refuse_repeated(names: list[str], repeatable: frozenset[str]) -> None:
    """RFC 6749 §3.1: parameters sent without a value are treated as omitted; none may repeat."""
    seen: set[str] = set()
    for name in names:
        if name in seen and name not in repeatable:
            raise InvalidRequest(f"The {name[:64]} parameter is repeated.")
        seen.add(name)


# --- JSON -----------------------------------------------------------------------------------------

class _Refused(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Refused("A JSON object has a key twice.")
    return obj


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("Numbers must be finite.")
    return value


def _constant(name: str) -> None:
    raise _Refused(f"{name} is not JSON.")


def decode_json(raw: bytes, malformed: type[OAuthError] = InvalidRequest) -> dict[str, Any]:
    """A JSON object (RFC 8259) with unique keys, finite numbers, no NUL, no lone surrogate, at most
    `MAX_JSON_DEPTH` levels deep; anything else is `malformed`."""
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys, parse_float=_finite,
                           parse_constant=_constant)
    except _Refused as exc:
        raise malformed(str(exc)) from None
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested far too deep
        raise malformed("The body must be a JSON object in UTF-8.") from None
    if not isinstance(value, dict):
        raise malformed("The body must be a JSON object.")
    check_json_value(value, malformed)
    return value


def check_json_value(value: Any, malformed: type[OAuthError] = InvalidRequest) -> None:
    """Walk the decoded value (iteratively: depth is what is being bounded)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str) and UNSTORABLE.search(item):
            raise malformed("Strings must not contain NUL characters or unpaired surrogates.")
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise malformed(f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
