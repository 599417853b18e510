"""Statements on hot paths, built once per process instead of by the ORM's compiler per request.

Building an INSERT is more than half of the CPU of `Model.save()` for a new row (~200 µs for a
client's 24 columns), yet the statement is the same every time for a given model; and on the
token endpoint each statement is also a round trip. So the hot paths write through here:

- `insert(row)`: `row.save()` for a new row: each value from its field's `pre_save` (defaults,
  `auto_now`, the toolkit's client-secret hashing and token checksums) and `get_db_prep_save`,
  and `pre_save`/`post_save` sent, so receivers see no difference;
- `issue(access, refresh, claim=...)`: new token rows and the code or refresh token they spend,
  in one statement on PostgreSQL: the spend is a conditional claim, so of two concurrent
  redemptions exactly one writes anything (save signals are sent for the new rows, as by insert);
- `select_one(model, **where)`: one row by a unique lookup, built with `Model.from_db`; foreign
  keys named in `deferred` come back holding only their pk (other attributes load on first use,
  as deferred fields do), so a read does not pay for a join it may not need;
- `update(model, pk, **values)`: as `filter(pk=pk).update(**values)` (no signals, like it).

Only plain models (no multi-table parents) with an auto-increment primary key.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models.signals import post_save, pre_save

M = TypeVar("M", bound=models.Model)

_inserts: dict[tuple[str, type], tuple[str, list[models.Field]]] = {}
_selects: dict[tuple[str, type, tuple[str, ...], bool], tuple[str, list[str], list]] = {}


def _relaxer(connection, relax_commit: bool) -> str:
    """An expression that turns off the flush at commit for the transaction evaluating it
    (`synchronous_commit = off`, local to that transaction; PostgreSQL only), or ''."""
    if relax_commit and connection.vendor == "postgresql":
        return "set_config('synchronous_commit', 'off', true)"
    return ""


def _insert_sql(connection, model: type[models.Model]) -> tuple[str, list[models.Field]]:
    key = (connection.alias, model)
    if key not in _inserts:
        meta, quote = model._meta, connection.ops.quote_name
        fields = _insertable(model)
        returning, _ = connection.ops.return_insert_columns([meta.pk])
        sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))}) {returning}")
        _inserts[key] = (sql, fields)
    return _inserts[key]


def _insertable(model: type[models.Model]) -> list[models.Field]:
    meta = model._meta
    assert not meta.parents and meta.auto_field is not None, f"{model.__name__}: not a plain model with an auto pk"
    return [f for f in meta.concrete_fields if f is not meta.auto_field and not f.generated]


def _saving(rows_: tuple[models.Model, ...], using: str) -> None:
    for row in rows_:
        pre_save.send(sender=type(row), instance=row, raw=False, using=using, update_fields=None)


def _saved(rows_: tuple[models.Model, ...], using: str) -> None:
    for row in rows_:
        row._state.adding, row._state.db = False, using
        post_save.send(sender=type(row), instance=row, created=True, update_fields=None, raw=False, using=using)


def insert(row: M, using: str = DEFAULT_DB_ALIAS) -> M:
    """INSERT `row` (not yet saved) and set its primary key: `row.save()` for a new row."""
    connection = connections[using]
    _saving((row,), using)
    sql, fields = _insert_sql(connection, type(row))
    params = [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row.pk = cursor.fetchone()[0]
    _saved((row,), using)
    return row


def _field(model: type[models.Model], name: str) -> models.Field:
    return model._meta.pk if name == "pk" else model._meta.get_field(name)


def _select_sql(connection, model: type[models.Model], where: tuple[str, ...],
                for_update: bool) -> tuple[str, list[str], list]:
    key = (connection.alias, model, where, for_update)
    if key not in _selects:
        meta, quote = model._meta, connection.ops.quote_name
        fields = meta.concrete_fields
        conditions = " AND ".join(f"{quote(_field(model, name).column)} = %s" for name in where)
        lock = " FOR UPDATE" if for_update and connection.features.has_select_for_update else ""
        sql = (f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(meta.db_table)} "
               f"WHERE {conditions}{lock}")
        # The compiler's converters, backend first then field (JSON decoding, SQLite datetimes, ...).
        converters = []
        for i, field in enumerate(fields):
            col = field.cached_col
            found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if found:
                converters.append((i, found, col))
        _selects[key] = (sql, [f.attname for f in fields], converters)
    return _selects[key]


def select_one(model: type[M], *, deferred: tuple[str, ...] = (), for_update: bool = False,
               using: str = DEFAULT_DB_ALIAS, **where: Any) -> M | None:
    """The one row of `model` matching `where` (unique lookups only), or None; `for_update` locks
    it until commit (inside a transaction).

    Each foreign key named in `deferred` is set to an instance of its model holding only the pk:
    reading any other field of it loads that row then.
    """
    connection = connections[using]
    sql, attnames, converters = _select_sql(connection, model, tuple(where), for_update)
    params = [_field(model, name).get_db_prep_value(value, connection) for name, value in where.items()]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    if found is None:
        return None
    values = list(found)
    for i, functions, col in converters:
        for convert in functions:
            values[i] = convert(values[i], col, connection)
    row = model.from_db(using, attnames, values)
    for name in deferred:
        field = model._meta.get_field(name)
        pk = getattr(row, field.attname)
        if pk is not None:
            related = field.related_model.from_db(using, [field.related_model._meta.pk.attname], [pk])
            setattr(row, name, related)
    return row


_updates: dict[tuple[str, type, tuple[str, ...]], tuple[str, list[models.Field]]] = {}


def update(model: type[models.Model], pk: Any, using: str = DEFAULT_DB_ALIAS, **values: Any) -> int:
    """`UPDATE … SET <values> WHERE pk = %s` (as `filter(pk=pk).update(**values)`); the rows changed."""
    connection = connections[using]
    key = (connection.alias, model, tuple(values))
    if key not in _updates:
        meta, quote = model._meta, connection.ops.quote_name
        fields = [meta.get_field(name) for name in values]
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
        _updates[key] = (f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s",
                         fields)
    sql, fields = _updates[key]
    params = [f.get_db_prep_save(value, connection) for f, value in zip(fields, values.values(), strict=True)]
    params.append(model._meta.pk.get_db_prep_value(pk, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


_issues: dict[tuple, tuple[str, list[models.Field], list[models.Field], list[models.Field]]] = {}


def _cast(connection, field: models.Field) -> str:
    return f"CAST(%s AS {field.cast_db_type(connection)})"


def issue(access: models.Model, refresh: models.Model | None = None, *, link: str = "access_token",
          claim: tuple[type[models.Model], Any, str, dict[str, Any]] | None = None,
          relax_commit: bool = False, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Store `access` and, linked to it by `refresh.<link>`, `refresh`, in one atomic step; with
    `claim = (model, pk, guard, values)`, only if `UPDATE model SET values WHERE pk = pk AND guard
    IS NULL` changes the row (a code not yet redeemed, a refresh token not yet rotated). Returns
    False, having written nothing, when the claim found the row already spent.

    On PostgreSQL this is one statement (a data-modifying WITH), its own transaction when run in
    autocommit mode, so a redemption or a rotation costs one round trip and concurrent ones
    serialize on the claimed row. `relax_commit` ends that transaction's wait for the disk flush.
    Elsewhere (SQLite) the same statements run in order inside one transaction.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=using):
            if claim is not None:
                model, pk, guard, values = claim
                if model._default_manager.using(using).filter(pk=pk, **{f"{guard}__isnull": True}).update(**values) != 1:
                    return False
            insert(access, using)
            if refresh is not None:
                setattr(refresh, link, access)
                insert(refresh, using)
        return True
    new_rows = (access,) if refresh is None else (access, refresh)
    _saving(new_rows, using)
    claim_model, claim_pk, guard, claim_values = claim if claim is not None else (None, None, "", {})
    key = (connection.alias, type(access), type(refresh), link, claim_model, guard, tuple(claim_values),
           relax_commit)
    if key not in _issues:
        _issues[key] = _issue_sql(connection, type(access), type(refresh) if refresh is not None else None, link,
                                  claim_model, guard, tuple(claim_values), relax_commit)
    sql, claim_fields, access_fields, refresh_fields = _issues[key]
    params = [f.get_db_prep_save(value, connection)
              for f, value in zip(claim_fields, claim_values.values(), strict=True)]
    if claim_model is not None:
        params.append(claim_model._meta.pk.get_db_prep_value(claim_pk, connection))
    params += [f.get_db_prep_save(f.pre_save(access, True), connection) for f in access_fields]
    if refresh is not None:
        params += [f.get_db_prep_save(f.pre_save(refresh, True), connection) for f in refresh_fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    if found is None:
        return False
    access.pk = found[0]
    if refresh is not None:
        refresh.pk = found[1]
        setattr(refresh, link, access)
    _saved(new_rows, using)
    return True


def _issue_sql(connection, access_model, refresh_model, link, claim_model, guard, claim_names, relax_commit):
    quote = connection.ops.quote_name
    parts = []
    claim_fields: list[models.Field] = []
    condition = ""
    if claim_model is not None:
        meta = claim_model._meta
        claim_fields = [meta.get_field(name) for name in claim_names]
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in claim_fields)
        parts.append(f"claimed AS (UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s "
                     f"AND {quote(meta.get_field(guard).column)} IS NULL RETURNING 1)")
        condition = " WHERE EXISTS (SELECT 1 FROM claimed)"
    relax = _relaxer(connection, relax_commit)
    meta = access_model._meta
    access_fields = _insertable(access_model)
    access_insert = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in access_fields)}) "
                     f"SELECT {', '.join(_cast(connection, f) for f in access_fields)}{condition} "
                     f"RETURNING {quote(meta.pk.column)}")
    refresh_fields: list[models.Field] = []
    if refresh_model is None:
        sql = f"{'WITH ' + ', '.join(parts) + ' ' if parts else ''}{access_insert}{', ' + relax if relax else ''}"
        return sql, claim_fields, access_fields, refresh_fields
    parts.append(f"access_row AS ({access_insert})")
    rmeta = refresh_model._meta
    link_field = rmeta.get_field(link)
    columns = _insertable(refresh_model)
    refresh_fields = [f for f in columns if f is not link_field]
    access_pk = quote(meta.pk.column)
    selected = [f"access_row.{access_pk}" if f is link_field else _cast(connection, f) for f in columns]
    sql = (f"WITH {', '.join(parts)} INSERT INTO {quote(rmeta.db_table)} ({', '.join(quote(f.column) for f in columns)}) "
           f"SELECT {', '.join(selected)} FROM access_row "
           f"RETURNING {quote(link_field.column)}, {quote(rmeta.pk.column)}{', ' + relax if relax else ''}")
    return sql, claim_fields, access_fields, refresh_fields
