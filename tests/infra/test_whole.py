"""Django's complete answers reach the server as one `bytes` in a list (infra.whole), closed at once.

Through the WSGI application the server runs (`mcpauth_service.wsgi.application`): a JSON answer, a
page and an error are a list of one body, and Django's `request_finished` has run before the server
gets it (the response is closed, as the server would close it); a static file still streams.
"""

from __future__ import annotations

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from mcpauth_service.wsgi import application
from tests.infra.test_documents import environ


@pytest.fixture(autouse=True)
def _one_connection():
    # As Django's test client does: the test's transaction keeps its connection across requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def finished():
    seen: list[bool] = []

    def note(sender, **kwargs):
        seen.append(True)

    request_finished.connect(note, dispatch_uid="test_whole")
    yield seen
    request_finished.disconnect(dispatch_uid="test_whole")


def call(path: str, **extra: str):
    answer: list = []
    chunks = application(environ(path, **extra), lambda status, headers, exc_info=None: answer.extend([status, headers]))
    return answer[0], dict(answer[1]), chunks


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "status"), [
    ("/p/alpha/.well-known/oauth-authorization-server?x=1", "200"),  # a query string: Django answers it
    ("/p/alpha/oauth/token", "405"),  # GET on the token endpoint: a JSON error
    ("/p/nobody/.well-known/oauth-authorization-server", "404"),
])
def test_a_complete_answer_is_one_body_in_a_list_and_already_finished(project_a, finished, path, status):
    path, _, query = path.partition("?")
    code, headers, chunks = call(path, QUERY_STRING=query)
    assert code.startswith(status)
    assert type(chunks) is list and len(chunks) == 1 and isinstance(chunks[0], bytes)
    assert int(headers["Content-Length"]) == len(chunks[0])
    assert finished == [True]  # closed before the server sent a byte; the server has nothing to close


@pytest.mark.django_db
def test_a_static_file_still_streams(finished):
    code, headers, chunks = call("/static/dashboard/app.css")
    assert code.startswith("200")
    assert type(chunks) is not list
    assert finished == []  # the server closes it after the last chunk
    chunks.close()
    assert finished == [True]
