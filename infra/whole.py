"""Django's answers handed to the WSGI server whole: one `bytes` in a list, not the response object.

A WSGI server sends an iterable answer chunk by chunk. granian (the shipped server) sends a list in one
call (`response_bytes`), but for any other iterable it wraps it and goes back into Python for every
chunk and for the final StopIteration, each time taking the GIL from the Rust side: on a worker whose
eight threads are all busy, that is a GIL hand-off per step of every answer. Django's `HttpResponse`
(every page and JSON answer here) is such an iterable, although its body is already complete in memory.

`WholeAnswers` wraps Django's WSGI application: a non-streaming `HttpResponse` becomes
`[response.content]`, and the response is closed at once (Django's `request_finished`: connections
returned, per-request state reset), as the server would have closed it after the last chunk.
Streaming answers (`StreamingHttpResponse`, `FileResponse`: static files) go through unchanged.
"""

from __future__ import annotations

from django.http import HttpResponse


class WholeAnswers:
    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        response = self.application(environ, start_response)
        if not isinstance(response, HttpResponse):
            return response
        try:
            return [response.content]
        finally:
            response.close()
