"""RFC 7517 JSON Web Key Set of one project: the current key and recently retired ones."""

import json
import threading
import time

from cachetools import TTLCache
from django.http import HttpResponse

from oauth.endpoints.decorator import oauth_endpoint
from projects.models import SigningKey

# (project, its updated_at) → rendered key set. Retired keys drop out with time (the TTL), not with a
# project change; the least recently used project makes room when full.
MEMO_SECONDS = 30
_memo: TTLCache[tuple[int, float], bytes] = TTLCache(maxsize=1024, ttl=MEMO_SECONDS, timer=time.monotonic)
_memo_lock = threading.Lock()  # a worker's threads share the memo


def key_set(project) -> dict:
    return {"keys": [k.public_jwk for k in SigningKey.objects.published(project)]}


def _rendered(project) -> bytes:
    key = (project.pk, project.updated_at.timestamp())
    with _memo_lock:
        body = _memo.get(key)
    if body is None:
        body = json.dumps(key_set(project)).encode()
        with _memo_lock:
            _memo[key] = body
    return body


@oauth_endpoint(methods=("GET",), cache="public, max-age=300")
def jwks(request):
    return HttpResponse(_rendered(request.project), content_type="application/jwk-set+json")
