"""Shared personas: two operators with a project each, a third with none; each project with an
end user. Later fixtures add clients (public and confidential) to these same projects."""

import pytest
from django.core.cache import cache

from projects.models import Project, User

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _clean_cache():
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
