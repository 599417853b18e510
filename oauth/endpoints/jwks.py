"""RFC 7517 JSON Web Key Set of one project: the current key and recently retired ones."""

import json
import time

from django.http import HttpResponse

from oauth.endpoints.decorator import oauth_endpoint
from projects.models import SigningKey

_MEMO_SECONDS = 30  # retired keys drop out with time, not with a project change
_memo: dict[tuple[int, float], tuple[float, bytes]] = {}


def key_set(project) -> dict:
    return {"keys": [k.public_jwk for k in SigningKey.objects.published(project)]}


def _rendered(project) -> bytes:
    key = (project.pk, project.updated_at.timestamp())
    hit = _memo.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    body = json.dumps(key_set(project)).encode()
    if len(_memo) > 1024:
        _memo.clear()
    _memo[key] = (now + _MEMO_SECONDS, body)
    return body


@oauth_endpoint(methods=("GET",), cache="public, max-age=300")
def jwks(request):
    return HttpResponse(_rendered(request.project), content_type="application/jwk-set+json")
