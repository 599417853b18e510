"""Re-encrypt every signing key under the first KEY_ENCRYPTION_KEY: the middle step of rotating it
(`KEY_ENCRYPTION_KEY=new,old` everywhere, then this, then `KEY_ENCRYPTION_KEY=new`)."""

from cryptography.fernet import InvalidToken
from django.core.management.base import CommandError
from django.db import transaction

from projects.models import SigningKey

from ._base import JsonCommand


class Command(JsonCommand):
    help = ("Re-encrypt every project's signing keys (current and retired) under the first key of "
            "KEY_ENCRYPTION_KEY; keys, kids and published JWKS are unchanged.")

    def handle(self, *args, **options):
        done, unreadable = 0, []
        with transaction.atomic():  # all or nothing: a half-done run leaves nothing to untangle
            for key in SigningKey.objects.select_related("project").select_for_update(of=("self",)).order_by("pk"):
                try:
                    key.reencrypt()
                except InvalidToken:
                    unreadable.append(f"{key.project.slug}/{key.kid}")
                    continue
                done += 1
            if unreadable:
                raise CommandError("not encrypted under any key of KEY_ENCRYPTION_KEY (add the key they were "
                                   f"encrypted with after a comma): {', '.join(unreadable)}; nothing changed")
        self.emit(options, {"reencrypted": done}, f"{done} signing keys re-encrypted under the first KEY_ENCRYPTION_KEY")
