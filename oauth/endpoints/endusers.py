"""End users' sessions at an issuer: who is signed in for which project, and which requests are theirs.

End users are never Django-auth-logged-in (the dashboard's backend loads operators only). Their
identity lives in the session under a per-project key, so an end user of project A is nobody at
project B or at the dashboard. Pending authorization requests are bound to the browser session
that started them, so a leaked request id is useless in another browser.
"""

import hmac
import time

from django.http import HttpRequest

from projects.models import Project, User

REMEMBERED_REQUESTS = 20  # pending authorizations one browser may juggle per project


def _user_key(project: Project) -> str:
    return f"enduser:{project.pk}"


def _auth_time_key(project: Project) -> str:
    return f"enduser-at:{project.pk}"


def _hash_key(project: Project) -> str:
    return f"enduser-hash:{project.pk}"


def _requests_key(project: Project) -> str:
    return f"authz:{project.pk}"


def current_end_user(request: HttpRequest) -> User | None:
    """The end user signed in to `request.project` in this browser, if any (active, same project)."""
    pk = request.session.get(_user_key(request.project))
    if pk is None:
        return None
    user = User.objects.filter(pk=pk, project=request.project, is_active=True).first()
    # As Django's own sessions: a changed password (a reset) ends every session made before it.
    if user is None or not hmac.compare_digest(str(request.session.get(_hash_key(request.project), "")),
                                               user.get_session_auth_hash()):
        return None
    return user


def sign_in(request: HttpRequest, user: User) -> None:
    """Sign `user` in to their project in this browser, on a fresh session key (no fixation)."""
    assert user.project_id == request.project.pk, "an end user signs in to their own project only"
    request.session.cycle_key()
    request.session[_user_key(request.project)] = user.pk
    request.session[_hash_key(request.project)] = user.get_session_auth_hash()
    request.session[_auth_time_key(request.project)] = int(time.time())  # OpenID Connect `auth_time`


def authenticated_at(request: HttpRequest) -> int | None:
    """When the end user signed in to `request.project` in this browser (seconds), if known."""
    value = request.session.get(_auth_time_key(request.project))
    return value if isinstance(value, int) else None


def bind_request(request: HttpRequest, authorization_id: str) -> None:
    """Remember that this browser started the pending authorization `authorization_id`."""
    key = _requests_key(request.project)
    ids = [i for i in request.session.get(key, []) if i != authorization_id]
    request.session[key] = [*ids, authorization_id][-REMEMBERED_REQUESTS:]


def latest_request(request: HttpRequest) -> str | None:
    """The pending authorization this browser started last at `request.project`, if any."""
    ids = request.session.get(_requests_key(request.project), [])
    return ids[-1] if ids else None


def owns_request(request: HttpRequest, authorization_id: str) -> bool:
    return authorization_id in request.session.get(_requests_key(request.project), [])
