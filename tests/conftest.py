"""Shared personas: two operators with a project each, a third with none; each project with an
end user. Later fixtures add clients (public and confidential) to these same projects."""

import pytest
from django.conf import settings
from django.test.utils import override_settings

from projects.models import Project, User

PASSWORD = "correct horse battery staple"


def pytest_configure(config):
    """Each pytest-xdist worker (gw0, gw1, ...) has its own test database (pytest-django adds the
    suffix) and its own Redis keyspace: its cache prefix carries the worker's name, set before the
    first cache call builds the backend. In a single process nothing changes."""
    # No webhook dispatcher thread in the test process (importing mcpauth_service.wsgi starts one in
    # the embedded default): tests/webhooks drive the dispatcher themselves.
    settings.WEBHOOK_SWEEP_SECONDS = 0
    # No activity writer thread either (activity/record.py): what a test records stays pending until a
    # reader flushes it (activity.queries, the rollup, the timelines, or the test: record.flush()), in
    # the test's own transaction, and is discarded after the test (_discard_pending_activity).
    settings.ACTIVITY_FLUSH_SECONDS = 0
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker and settings.REDIS_URL:
        settings.CACHES["default"]["KEY_PREFIX"] = f"{settings.CACHES['default'].get('KEY_PREFIX', '')}-{worker}"


def own_redis_keys(pattern: str = "*") -> list[bytes]:
    """This process's cache keys in Redis whose name after the prefix matches `pattern` (a glob), and
    no other worker's, server's or engineer's: the Redis database is shared, the keyspace is not."""
    from django.core.cache import cache

    assert cache.key_prefix == settings.CACHES["default"]["KEY_PREFIX"]  # the backend saw the worker's prefix
    return list(_redis().scan_iter(match=f"{cache.key_prefix}:{pattern}", count=1000))


_clients: list = []


def _redis():
    if not _clients:
        import redis

        _clients.append(redis.Redis.from_url(settings.REDIS_URL))
    return _clients[0]


def _clear_own_keyspace() -> None:
    """`cache.clear()` would FLUSHDB: every key of every worker and server on this Redis database."""
    keys = own_redis_keys()
    if keys:
        _redis().delete(*keys)


@pytest.fixture(autouse=True)
def _clean_cache():
    """Redis outlives the tests: this process's keys are emptied around each one. The embedded
    default's cache is a table of the test database (infra.cache.DatabaseCache), emptied
    with it: each test's transaction is rolled back, or its tables flushed."""
    if not settings.REDIS_URL:
        yield
        return
    _clear_own_keyspace()
    yield
    _clear_own_keyspace()


@pytest.fixture(autouse=True)
def _discard_pending_activity():
    """Counts and events a test recorded but never flushed do not reach the next test."""
    from activity import record

    record.discard()
    yield
    record.discard()


@pytest.fixture(autouse=True)
def _fast_password_hasher(request):
    """People's passwords are hashed with MD5 in tests (Django's advice for test speed): PBKDF2 costs
    ~0.3 s of CPU per hash, and most tests create operators and end users. The shipped hashers stay
    behind it, so a PBKDF2 hash made by a server process still verifies. A test marked
    `real_password_hasher` runs with the settings as shipped (it checks what production stores)."""
    if request.node.get_closest_marker("real_password_hasher"):
        yield
        return
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher",
                                             *settings.PASSWORD_HASHERS]):
        yield


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


pytest_plugins = ["tests.browser", "tests.mail_support"]  # browser; SMTP server (inbox)


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
    if hasattr(config, "workerinput"):
        # pytest-xdist hands out work in collection order: the long groups (one stack each, minutes)
        # go first, so they start at once on different workers instead of ending the run alone.
        items.sort(key=lambda item: item.get_closest_marker("xdist_group") is None)


def pytest_collection_finish(session):
    """Under pytest-xdist, refuse a run that would silently lose tests: the controller hands out work
    by test id, so tests sharing an id run once between them, and `--dist loadgroup` only keeps a
    group on one worker when its ids carry the `@group` suffix. Both hold on pytest 9.1 (pinned in
    pyproject.toml); pytest 9.2 ignores the id changes schemathesis and pytest-xdist make."""
    config = session.config
    if not hasattr(config, "workerinput"):
        return
    ids = [item.nodeid for item in session.items]
    shared = sorted({nodeid for nodeid in ids if ids.count(nodeid) > 1})
    if shared:
        raise pytest.UsageError(f"{len(shared)} test ids are shared by several tests (pytest-xdist would "
                                f"run one of each): {shared[:3]}")
    if config.getoption("loadgroup", False):
        ungrouped = [item.nodeid for item in session.items if (mark := item.get_closest_marker("xdist_group"))
                     and not item.nodeid.endswith("@" + (mark.args[0] if mark.args else mark.kwargs["name"]))]
        if ungrouped:
            raise pytest.UsageError(f"--dist loadgroup would split these groups across workers: {ungrouped[:3]}")
