"""Operator authentication: only users that belong to no project can sign in to the dashboard."""

from django.contrib.auth.backends import ModelBackend

from .models import User


class OperatorBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        login = (email or username or "").strip().lower()
        user = User.objects.filter(username=login, project__isnull=True).first()
        if user is None:
            User().set_password(password)  # same work either way: no user enumeration by timing
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def get_user(self, user_id):
        user = User.objects.filter(pk=user_id, project__isnull=True).first()
        return user if user is not None and self.user_can_authenticate(user) else None
