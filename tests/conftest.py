"""Shared personas: two operators with a project each, a third with none; each project with an
end user. Later fixtures add clients (public and confidential) to these same projects."""

import pytest
from django.conf import settings
from django.core.cache import cache

from projects.models import Project, User

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _clean_cache():
    """Redis outlives the tests: emptied around each one. The embedded default's cache is a table of
    the test database (infra.cache.DatabaseCache), emptied with it: each test's transaction
    is rolled back, or its tables flushed."""
    if not settings.REDIS_URL:
        yield
        return
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(db):
    return User.objects.create_operator("alice@example.com", PASSWORD)


@pytest.fixture
def bob(db):
    return User.objects.create_operator("bob@example.com", PASSWORD)


@pytest.fixture
def carol(db):
    """An operator with no project at all."""
    return User.objects.create_operator("carol@example.com", PASSWORD)


def _project(owner, slug, resources):
    project, secret = Project.objects.create_project(owner=owner, name=f"Project {slug.upper()}", slug=slug,
                                                     resources=resources)
    project.registration_secret = secret  # plaintext, shown once at creation: kept for the tests
    return project


@pytest.fixture
def project_a(alice):
    return _project(alice, "alpha", ["https://mcp.alpha.example/mcp", "https://files.alpha.example/mcp"])


@pytest.fixture
def project_b(bob):
    return _project(bob, "bravo", ["https://mcp.bravo.example/mcp"])


@pytest.fixture
def end_user_a(project_a):
    return User.objects.create_end_user(project_a, "eve@example.com", PASSWORD)


@pytest.fixture
def end_user_b(project_b):
    return User.objects.create_end_user(project_b, "eve@example.com", PASSWORD)


pytest_plugins = ["tests.browser"]


# --- Clients of each project (tokens engineer) ---------------------------------------------------
CLIENT_REDIRECT_URI = "http://127.0.0.1/callback"


def _public_client(project, name="Public MCP client"):
    from oauth.models import Application

    return Application.objects.create(
        project=project, name=name, client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=f"{CLIENT_REDIRECT_URI} https://client.example/callback",
        registration_path=Application.Path.OPEN, skip_authorization=False,
        metadata={"client_name": name, "grant_types": ["authorization_code", "refresh_token"],
                  "token_endpoint_auth_method": "none"},
    )


def _confidential_client(project, name="Confidential backend"):
    """Secret-registered, may use authorization_code and client_credentials; `.plain_secret` kept."""
    from oauth.models import Application
    from projects import secrets

    plain = secrets.generate(secrets.CLIENT_SECRET_PREFIX)
    client = Application.objects.create(
        project=project, name=name, client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE, client_secret=plain,
        redirect_uris="https://backend.example/callback", registration_path=Application.Path.SECRET,
        metadata={"client_name": name, "token_endpoint_auth_method": "client_secret_basic",
                  "grant_types": ["authorization_code", "refresh_token", "client_credentials"]},
    )
    client.plain_secret = plain
    return client


@pytest.fixture
def public_client_a(project_a):
    return _public_client(project_a)


@pytest.fixture
def confidential_client_a(project_a):
    return _confidential_client(project_a)


@pytest.fixture
def public_client_b(project_b):
    return _public_client(project_b)


@pytest.fixture
def confidential_client_b(project_b):
    return _confidential_client(project_b)


@pytest.fixture(autouse=True)
def _clean_local_cache():
    """Projects kept in process (infra.localcache) do not outlive a test's rolled-back rows."""
    from projects.models import local_cache

    local_cache.clear()
    yield
    local_cache.clear()


def pytest_collection_modifyitems(config, items):
    """Tests of PostgreSQL- or Redis-specific behaviour skip, saying why, in the embedded default.

    `.ci/run` always provides both, so in CI every one of them runs.
    """
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    on_redis = bool(settings.REDIS_URL)
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL (.ci/run does)"))
        if "redis" in item.keywords and not on_redis:
            item.add_marker(pytest.mark.skip(reason="needs Redis: set REDIS_URL (.ci/run does)"))
