"""Re-encrypt everything encrypted with KEY_ENCRYPTION_KEY under its first key: the middle step of
rotating it (`KEY_ENCRYPTION_KEY=new,old` everywhere, then this, then `KEY_ENCRYPTION_KEY=new`).

What is encrypted is declared by each app beside its model (`projects.keys.encrypted_columns`):
signing keys, webhook secrets, upstream identity providers' client secrets.
"""

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.management.base import CommandError
from django.db import transaction

from projects import keys

from ._base import JsonCommand


class Command(JsonCommand):
    help = ("Re-encrypt every value encrypted with KEY_ENCRYPTION_KEY (signing keys, webhook secrets, identity "
            "providers' client secrets) under its first key; keys, kids and published JWKS are unchanged.")

    def handle(self, *args, **options):
        done: dict[str, int] = {}
        unreadable: list[str] = []
        with transaction.atomic():  # all or nothing: a half-done run leaves nothing to untangle
            for label, fields in sorted(keys.ENCRYPTED_COLUMNS.items()):
                model = apps.get_model(label)
                done[label] = 0
                for row in model.objects.select_for_update().order_by("pk").only("pk", *fields):
                    changed = {}
                    for field in fields:
                        value = getattr(row, field)
                        if not value:
                            continue
                        try:
                            changed[field] = keys.reencrypt(value)
                        except InvalidToken:
                            unreadable.append(f"{label} {row.pk} ({field})")
                    if changed:
                        model.objects.filter(pk=row.pk).update(**changed)
                        done[label] += 1
            if unreadable:
                raise CommandError("not encrypted under any key of KEY_ENCRYPTION_KEY (add the key they were "
                                   f"encrypted with after a comma): {', '.join(unreadable)}; nothing changed")
        total = sum(done.values())
        self.emit(options, {"reencrypted": total, "by_model": done},
                  f"{total} rows re-encrypted under the first KEY_ENCRYPTION_KEY: "
                  + ", ".join(f"{label} {n}" for label, n in done.items()))
