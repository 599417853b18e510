"""Signals of the projects app (it imports nothing of oauth/: the layers above listen)."""

from django.dispatch import Signal

# A person's email or its verification changed (projects.accounts.changed); `user` is the row.
person_changed = Signal()
