"""Signal receivers of the oauth app, connected in `OAuthConfig.ready()` (so `models.py` imports nothing of its app).

- Introspection cache upkeep: cached answers die with their client (deleted or disabled) or end user,
  and are rebuilt when an end user's email or its verification changes.
- The open-registration quota: an open-registered client deleted gives its slot back.
"""

from django.conf import settings
from django.db.models import signals

from oauth.models import AccessToken, Application
from oauth.tokens import issue as tokens
from oauth.tokens import revoke
from projects.models import Project
from projects.signals import person_changed


def tombstone_client_tokens(sender, instance: Application, **kwargs) -> None:
    if kwargs.get("signal") is signals.pre_delete or instance.disabled_at is not None:
        revoke.gone_with(AccessToken.objects.filter(application_id=instance.pk))


def tombstone_end_user_tokens(sender, instance, **kwargs) -> None:
    if instance.project_id is not None:  # an end user: their tokens go by cascade
        revoke.gone_with(AccessToken.objects.filter(user_id=instance.pk))


def refill_person_answers(sender, user, **kwargs) -> None:
    """An end user's email or its verification changed: introspection answers are rebuilt."""
    if user.project_id is not None:
        tokens.refill(user.pk)


def release_open_client_slot(sender, instance: Application, origin=None, **kwargs) -> None:
    # In the deleting transaction, so the count never runs ahead of or behind the rows; not when
    # the whole project is being deleted.
    deleting_project = isinstance(origin, Project) or getattr(origin, "model", None) is Project
    if instance.registration_path == Application.Path.OPEN and not deleting_project:
        Project.release_open_client_slot(instance.project_id)


def connect() -> None:
    signals.pre_delete.connect(tombstone_client_tokens, sender=Application, dispatch_uid="oauth_forget_deleted_client")
    signals.post_save.connect(tombstone_client_tokens, sender=Application, dispatch_uid="oauth_forget_disabled_client")
    signals.pre_delete.connect(tombstone_end_user_tokens, sender=settings.AUTH_USER_MODEL,
                               dispatch_uid="oauth_forget_deleted_end_user")
    person_changed.connect(refill_person_answers, dispatch_uid="oauth_refill_person_answers")
    signals.post_delete.connect(release_open_client_slot, sender=Application,
                                dispatch_uid="oauth_release_open_client_slot")
