"""`save()` of a new row without the ORM's SQL compiler, for rows written on hot paths.

Building the INSERT is more than half of the CPU of `Model.save()` for a new row (for a client,
some 24 columns, ~200 µs), yet the statement is the same every time for a given model. `insert`
keeps it per model and does the rest as `save()` does: each value comes from its field's
`pre_save` (defaults, `auto_now`, the toolkit's client-secret hashing) and `get_db_prep_save`,
and `pre_save`/`post_save` are sent, so receivers see no difference. Only for plain models
(no multi-table parents) with an auto-increment primary key, on the default database.
"""

import functools

from django.db import connection, models
from django.db.models.signals import post_save, pre_save


def insert(row: models.Model) -> None:
    """INSERT `row` (not yet saved) and set its primary key: `row.save()` for a new row."""
    model = row.__class__
    pre_save.send(sender=model, instance=row, raw=False, using=connection.alias, update_fields=None)
    fields, sql = _statement(model)
    values = [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row.pk = cursor.fetchone()[0]
    row._state.adding = False
    row._state.db = connection.alias
    post_save.send(sender=model, instance=row, created=True, update_fields=None, raw=False, using=connection.alias)


@functools.cache
def _statement(model: type[models.Model]) -> tuple[list[models.Field], str]:
    meta = model._meta
    assert not meta.parents and meta.auto_field is not None, f"{model.__name__}: not a plain model with an auto pk"
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field and not f.generated]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES ({placeholders}) RETURNING {qn(meta.pk.column)}"
    return fields, sql
