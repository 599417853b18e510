"""mcpauth_rs: JWTs verified locally are refused once the issuer's revocation feed lists them, against our
real issuer (pytest-django's live server: real HTTP, real PostgreSQL and Redis)."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from mcpauth_rs import ResourceServer, TokenRejected
from mcpauth_rs import revocations as poller
from oauth.models import AccessToken
from oauth.tokens import feed, revoke
from oauth.tokens import issue as tokens
from projects.models import Project, ProjectSecret

pytestmark = pytest.mark.django_db(transaction=True)

MCP = "https://mcp.alpha.example/mcp"


@pytest.fixture
def issuer_url(live_server, settings):
    settings.PUBLIC_URL = live_server.url
    return f"{live_server.url}/p/alpha"


@pytest.fixture
def jwt_project(project_a):
    project_a.token_format = Project.TokenFormat.JWT
    project_a.save()
    return project_a


@pytest.fixture
def feed_secret(jwt_project):
    return ProjectSecret.issue(jwt_project, "MCP server", ["introspect"])[1]


def mint(project, client, user) -> str:
    return tokens.mint(project, project.issuer, client, user, scopes=["mcp:tools"], audience=[MCP])["access_token"]


def revoke_token(raw: str) -> None:
    revoke.access_token(AccessToken.objects.get(token_checksum=tokens.checksum(raw)))


def polling(issuer_url, secret, **options) -> ResourceServer:
    return ResourceServer(issuer_url, MCP, token_format="jwt", revocation_feed_secret=secret, **options)


def test_it_refuses_a_revoked_jwt_after_the_next_poll(issuer_url, jwt_project, feed_secret, public_client_a,
                                                      end_user_a):
    revoked, kept = mint(jwt_project, public_client_a, end_user_a), mint(jwt_project, public_client_a, end_user_a)
    rs = polling(issuer_url, feed_secret, revocation_poll_seconds=3600)
    assert rs.verify(revoked).subject == end_user_a.subject  # the first verify reads the feed

    revoke_token(revoked)
    # Within the poll interval the revocation is not known yet: the documented trade-off.
    assert rs.verify(revoked).subject == end_user_a.subject
    rs.revocations.poll()

    with pytest.raises(TokenRejected, match="revocation feed"):
        rs.verify(revoked)
    assert rs.verify(kept).subject == end_user_a.subject


def test_it_polls_on_verify_once_the_interval_has_passed(issuer_url, jwt_project, feed_secret, public_client_a,
                                                         end_user_a):
    token = mint(jwt_project, public_client_a, end_user_a)
    rs = polling(issuer_url, feed_secret, revocation_poll_seconds=0)
    rs.verify(token)

    revoke_token(token)

    with pytest.raises(TokenRejected, match="revocation feed"):
        rs.verify(token)


def test_it_refuses_it_from_every_thread(issuer_url, jwt_project, feed_secret, public_client_a, end_user_a):
    token = mint(jwt_project, public_client_a, end_user_a)
    revoke_token(token)
    rs = polling(issuer_url, feed_secret, revocation_poll_seconds=0)

    def attempt(_):
        try:
            rs.verify(token)
        except TokenRejected as exc:
            return str(exc)
        return "accepted"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(32)))

    assert set(outcomes) == {"jti listed in the issuer's revocation feed"}


def test_it_reads_every_page_in_one_poll(issuer_url, jwt_project, feed_secret, public_client_a, end_user_a,
                                         monkeypatch):
    monkeypatch.setattr(feed, "PAGE", 2)  # the live server runs in this process
    minted = [mint(jwt_project, public_client_a, end_user_a) for _ in range(5)]
    for token in minted:
        revoke_token(token)
    rs = polling(issuer_url, feed_secret)

    rs.revocations.poll()

    assert len(rs.revocations) == 5
    for token in minted:
        with pytest.raises(TokenRejected, match="revocation feed"):
            rs.verify(token)


def test_it_forgets_entries_once_their_token_has_expired(issuer_url, jwt_project, feed_secret, public_client_a,
                                                         end_user_a, monkeypatch):
    token = mint(jwt_project, public_client_a, end_user_a)
    revoke_token(token)
    rs = polling(issuer_url, feed_secret)
    rs.revocations.poll()
    assert len(rs.revocations) == 1
    later = poller.time.time() + jwt_project.access_token_ttl + 1

    monkeypatch.setattr(poller.time, "time", lambda: later)
    rs.revocations.poll()

    assert len(rs.revocations) == 0


def test_a_feed_it_cannot_read_refuses_nothing_and_is_retried(issuer_url, jwt_project, project_b, public_client_a,
                                                              end_user_a, caplog):
    token = mint(jwt_project, public_client_a, end_user_a)
    revoke_token(token)
    rs = polling(issuer_url, project_b.registration_secret, revocation_poll_seconds=0)  # another project's secret

    assert rs.verify(token).subject == end_user_a.subject  # only the signature and claims are checked
    assert "revocation feed" in caplog.text and "401" in caplog.text
    assert len(rs.revocations) == 0
