"""RFC 7517 JSON Web Key Set of one project: the current key and recently retired ones."""

import json
import threading
import time

from cachetools import TTLCache
from django.http import HttpResponse

from infra import documents, localcache
from oauth.endpoints.decorator import oauth_endpoint
from projects.models import SigningKey

# (project, the shared generation) → rendered key set: any change (a rotation, a key made on first use
# of an algorithm) moves the generation on. Retired keys drop out with time (the TTL); the least
# recently used project makes room when full.
MEMO_SECONDS = 30
_memo: TTLCache[tuple[int, int], bytes] = TTLCache(maxsize=1024, ttl=MEMO_SECONDS, timer=time.monotonic)
_memo_lock = threading.Lock()  # a worker's threads share the memo


def key_set(project) -> dict:
    return {"keys": [k.public_jwk for k in SigningKey.objects.published(project)]}


def _rendered(project) -> bytes:
    generation = localcache.generation()  # read before the project was: any change since retires it
    if generation is None:  # unknown (the shared cache is unreachable): nothing kept is trusted
        return json.dumps(key_set(project)).encode()
    key = (project.pk, generation)
    with _memo_lock:
        body = _memo.get(key)
    if body is None:
        body = json.dumps(key_set(project)).encode()
        with _memo_lock:
            _memo[key] = body
    return body


@oauth_endpoint(methods=("GET",), cache="public, max-age=300")
def jwks(request):
    documents.keep(request, MEMO_SECONDS)  # a retired key leaves the set with time, not with a change
    return HttpResponse(_rendered(request.project), content_type="application/jwk-set+json")
