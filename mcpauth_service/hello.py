"""A hello-world view for `make bench`: the ceiling a Django view reaches on the same server.

Routed only when `BENCH_HELLO=true`; never enabled in a deployment.
"""

from django.http import HttpResponse

BODY = b"Hello, world!"


def hello(request) -> HttpResponse:
    return HttpResponse(BODY, content_type="text/plain")
