"""Statements on hot paths, built once per process instead of by the ORM's compiler per request.

Building an INSERT is more than half of the CPU of `Model.save()` for a new row (~200 µs for a
client's 24 columns), yet the statement is the same every time for a given model; and on the
token endpoint each statement is also a round trip. So the hot paths write through here:

- `insert(row)`: `row.save()` for a new row: each value from its field's `pre_save` (defaults,
  `auto_now`, the toolkit's client-secret hashing and token checksums) and `get_db_prep_save`,
  and `pre_save`/`post_save` sent, so receivers see no difference;
- `write(first, second, guard=...)`: two new rows (a token pair, a client and its audit event),
  in one statement on PostgreSQL, and only if the guard (`spend(...)`: a code not yet redeemed;
  the project's open-client slot) changes its row, so of concurrent writers exactly as many
  succeed as the guard allows (save signals are sent for the new rows, as by insert);
- `fetch(model, shape, *params)`: the rows of a `values_list` queryset whose SQL is compiled
  once per process (on PostgreSQL) and then run with only its parameters;
- `select_one(model, **where)`: one row by a unique lookup (a `fetch`), built with
  `Model.from_db`; foreign keys named in `deferred` come back holding only their pk (other
  attributes load on first use, as deferred fields do), so a read does not pay for a join;
- `delete(model, pk)`: one `DELETE` without Django's collector, for a row nothing refers to.

Only plain models (no multi-table parents) with an auto-increment primary key.

Why our own: no library spends a code and inserts a token pair in one statement. The callers, all
on hot paths: oauth.validator (codes and refresh tokens: `select_one`, `spend`, `write`),
oauth.tokens.issue (client_credentials and exchanged tokens: `write`; an introspection answer on a
cache miss: `fetch`), oauth.tokens.revoke (`fetch`, `delete`), projects.models with
oauth.endpoints.registration (a client and its audit event under the open-client slot: `Guard`,
`write`; `AuditEvent.record`: `insert`).

`fetch` leans on Django's SQL compiler, which is public in name but not documented
(`Query.get_compiler`, `SQLCompiler.as_sql`, `select`, `col_count`, `get_converters`,
`apply_converters`); so Django's minor version is pinned in pyproject.toml and tests/test_rows.py is
the canary an upgrade must pass (each statement stores and reads exactly what the ORM would).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from django.db.models import QuerySet
from django.db.models.signals import post_save, pre_save

M = TypeVar("M", bound=models.Model)

_inserts: dict[tuple[str, type], tuple[str, list[models.Field]]] = {}


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


@dataclass(frozen=True)
class Guard:
    """An `UPDATE … WHERE …` (or a `DELETE`, `removal`) that must change exactly one row for a `write` to happen."""

    sql: str
    params: tuple = ()


def removal(model: type[models.Model], pk: Any, using: str = DEFAULT_DB_ALIAS) -> Guard:
    """The guard `DELETE FROM model WHERE pk = pk`: what `write` inserts goes in only with the
    removal of that row (a revoked token and its audit event), for a row no other row refers to."""
    connection = connections[using]
    table, column = (connection.ops.quote_name(n) for n in (model._meta.db_table, model._meta.pk.column))
    return Guard(f"DELETE FROM {table} WHERE {column} = %s", (model._meta.pk.get_db_prep_value(pk, connection),))


_spends: dict[tuple, tuple[str, list[models.Field]]] = {}


def spend(model: type[models.Model], pk: Any, unset: str, using: str = DEFAULT_DB_ALIAS, **values: Any) -> Guard:
    """The guard `UPDATE model SET values WHERE pk = pk AND unset IS NULL`: a code not yet
    redeemed, a refresh token not yet rotated."""
    connection = connections[using]
    key = (connection.alias, model, unset, tuple(values))
    if key not in _spends:
        meta, quote = model._meta, connection.ops.quote_name
        fields = [meta.get_field(name) for name in values]
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
        _spends[key] = (f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s "
                        f"AND {quote(meta.get_field(unset).column)} IS NULL", fields)
    sql, fields = _spends[key]
    params = [f.get_db_prep_save(value, connection) for f, value in zip(fields, values.values(), strict=True)]
    return Guard(sql, (*params, model._meta.pk.get_db_prep_value(pk, connection)))


_writes: dict[tuple, tuple[str, list[models.Field], list[models.Field]]] = {}


def _cast(connection, field: models.Field) -> str:
    return f"CAST(%s AS {field.cast_db_type(connection)})"


def write(first: models.Model, second: models.Model | None = None, *, link: str | None = None,
          guard: Guard | None = None, relax_commit: bool = False, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Insert `first` and `second` (whose foreign key `link`, if given, is set to `first`) in one
    atomic step, and only if `guard` changes its one row. Returns False, having written nothing,
    when the guard changed none (the code was spent, the cap reached).

    On PostgreSQL this is one statement (a data-modifying WITH), its own transaction when run in
    autocommit mode: one round trip, and concurrent writers serialize on the guard's row (a
    waiting UPDATE re-checks its WHERE). `relax_commit` ends that transaction's wait for the
    disk flush. Elsewhere (SQLite) the same statements run in order inside one transaction.
    """
    connection = connections[using]
    new_rows = (first,) if second is None else (first, second)
    if connection.vendor != "postgresql":
        with transaction.atomic(using=using):
            if guard is not None:
                with connection.cursor() as cursor:
                    cursor.execute(guard.sql, list(guard.params))
                    if cursor.rowcount != 1:
                        return False
            insert(first, using)
            if second is not None:
                if link:
                    setattr(second, link, first)
                insert(second, using)
        return True
    _saving(new_rows, using)
    key = (connection.alias, type(first), type(second), link, guard.sql if guard else "", relax_commit)
    if key not in _writes:
        _writes[key] = _write_sql(connection, type(first), type(second) if second is not None else None, link,
                                  guard.sql if guard else "", relax_commit)
    sql, first_fields, second_fields = _writes[key]
    params = list(guard.params) if guard is not None else []
    params += [f.get_db_prep_save(f.pre_save(first, True), connection) for f in first_fields]
    if second is not None:
        params += [f.get_db_prep_save(f.pre_save(second, True), connection) for f in second_fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    if found is None:
        return False
    first.pk = found[0]
    if second is not None:
        second.pk = found[1]
        if link:
            setattr(second, link, first)
    _saved(new_rows, using)
    return True


def _write_sql(connection, first_model, second_model, link, guard_sql, relax_commit):
    quote = connection.ops.quote_name
    parts = []
    condition = ""
    if guard_sql:
        parts.append(f"guarded AS ({guard_sql} RETURNING 1)")
        condition = " WHERE EXISTS (SELECT 1 FROM guarded)"
    relax = _relaxer(connection, relax_commit)
    meta = first_model._meta
    first_fields = _insertable(first_model)
    first_pk = quote(meta.pk.column)
    first_insert = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in first_fields)}) "
                    f"SELECT {', '.join(_cast(connection, f) for f in first_fields)}{condition} RETURNING {first_pk}")
    if second_model is None:
        sql = f"{'WITH ' + ', '.join(parts) + ' ' if parts else ''}{first_insert}{', ' + relax if relax else ''}"
        return sql, first_fields, []
    parts.append(f"first_row AS ({first_insert})")
    smeta = second_model._meta
    link_field = smeta.get_field(link) if link else None
    columns = _insertable(second_model)
    selected = [f"first_row.{first_pk}" if f is link_field else _cast(connection, f) for f in columns]
    sql = (f"WITH {', '.join(parts)} INSERT INTO {quote(smeta.db_table)} ({', '.join(quote(f.column) for f in columns)}) "
           f"SELECT {', '.join(selected)} FROM first_row "
           f"RETURNING (SELECT {first_pk} FROM first_row), {quote(smeta.pk.column)}{', ' + relax if relax else ''}")
    return sql, first_fields, [f for f in columns if f is not link_field]


# Reads on hot paths (every token request, cold introspection, revocation) cost several times more
# CPU to build and compile as querysets than to run. On PostgreSQL each shape is compiled once per
# database alias and then run with only its parameters; its values are converted as the ORM would.
_compiled: dict[tuple[Callable, str], tuple[str, Any, dict]] = {}


def fetch(model: type[models.Model], shape: Callable[..., QuerySet], *params: Any) -> list[tuple]:
    """The rows of `shape(*params)`, a `values_list` of `model` whose SQL parameters are `params` in order."""
    alias = router.db_for_read(model)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return list(shape(*params).using(alias))
    key = (shape, alias)
    if key not in _compiled:
        compiler = shape(*params).query.get_compiler(alias)
        sql, compiled_params = compiler.as_sql()
        if list(compiled_params) != list(params):
            raise ImproperlyConfigured(f"{shape.__qualname__} must take exactly its arguments as SQL parameters")
        converters = compiler.get_converters([col for col, _, _ in compiler.select[:compiler.col_count]])
        _compiled[key] = (sql, compiler, converters)
    sql, compiler, converters = _compiled[key]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    return [tuple(row) for row in compiler.apply_converters(found, converters)] if converters else found


_one_shapes: dict[tuple[type[models.Model], tuple[str, ...]], tuple[Callable[..., QuerySet], list[str]]] = {}


def select_one(model: type[M], *, deferred: tuple[str, ...] = (), **where: Any) -> M | None:
    """The one row of `model` matching `where` (a unique lookup), built with `Model.from_db`, or None.

    Each foreign key named in `deferred` is set to an instance of its model holding only the pk:
    reading any other field of it loads that row then.
    """
    names = tuple(where)
    known = _one_shapes.get((model, names))
    if known is None:
        attnames = [f.attname for f in model._meta.concrete_fields]

        def shape(*values: Any) -> QuerySet:
            rows_ = model._default_manager.all()
            for name, value in zip(names, values, strict=True):  # one filter() each: SQL parameters in order
                rows_ = rows_.filter(**{name: value})
            return rows_.values_list(*attnames)[:1]

        known = _one_shapes[(model, names)] = (shape, attnames)
    shape, attnames = known
    found = fetch(model, shape, *where.values())
    if not found:
        return None
    using = router.db_for_read(model)
    row = model.from_db(using, attnames, found[0])
    for name in deferred:
        field = model._meta.get_field(name)
        pk = getattr(row, field.attname)
        if pk is not None:
            setattr(row, name, field.related_model.from_db(using, [field.related_model._meta.pk.attname], [pk]))
    return row


def delete(model: type[models.Model], pk: Any) -> None:
    """One `DELETE` by pk, without Django's collector (its `SELECT`, its cascades and `SET_NULL`
    updates, its signals): only for a row no other row refers to."""
    connection = connections[router.db_for_write(model)]
    table, column = (connection.ops.quote_name(n) for n in (model._meta.db_table, model._meta.pk.column))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", [pk])
