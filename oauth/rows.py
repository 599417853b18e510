"""Token-path statements with their SQL built once per process instead of on every request.

A token request reads or writes three or four rows. Django's ORM recompiles the same statement
every time (about 200-300 µs of CPU per row here, more than the statement costs the database),
so the token endpoint's few statements go through this module:

- `insert(row)`: `INSERT … RETURNING pk` with the model's own field preparation (`pre_save` for
  auto_now fields and token checksums, `get_db_prep_save` for JSON, UUIDs and datetimes);
- `select_for_update(model, **where)`: one row, locked, built with `Model.from_db`; foreign keys
  named in `deferred` come back as instances holding only their pk (any other attribute loads
  on first use, as a deferred field does), so a lock does not pay for a join it may not need.

Both take `relax_commit=True` to also end the transaction's need for a disk flush at commit
(PostgreSQL `set_config('synchronous_commit', 'off', true)`, evaluated by the same statement, so
it costs no round trip; a lone INSERT in autocommit mode is its own transaction). See
`oauth.token` for when the token endpoint uses it and `durable()` for taking it back.

Model signals are not sent for these rows: nothing listens for token rows, and
tests/test_rows.py fails if a receiver is ever connected to one of them.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models

M = TypeVar("M", bound=models.Model)

_inserts: dict[tuple[str, type, bool], tuple[str, list[models.Field]]] = {}
_selects: dict[tuple[str, type, tuple[str, ...], bool], tuple[str, list[str], list]] = {}


def _relaxer(connection, relax_commit: bool) -> str:
    """The expression that turns off this transaction's commit flush (PostgreSQL only), or ''."""
    if relax_commit and connection.vendor == "postgresql":
        return "set_config('synchronous_commit', 'off', true)"
    return ""


def durable(using: str = DEFAULT_DB_ALIAS) -> None:
    """Give this transaction back the server's synchronous commit (after a `relax_commit` statement)."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO DEFAULT")


def _insert_sql(connection, model: type[models.Model], relax_commit: bool) -> tuple[str, list[models.Field]]:
    key = (connection.alias, model, relax_commit)
    if key not in _inserts:
        meta, quote = model._meta, connection.ops.quote_name
        fields = [f for f in meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
        returning, _ = connection.ops.return_insert_columns([meta.pk])
        relax = _relaxer(connection, relax_commit)
        sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))}) {returning}{', ' + relax if relax else ''}")
        _inserts[key] = (sql, fields)
    return _inserts[key]


def insert(row: M, using: str = DEFAULT_DB_ALIAS, *, relax_commit: bool = False) -> M:
    """Insert a new `row` (as `row.save()` would, without signals); sets its pk and returns it."""
    connection = connections[using]
    sql, fields = _insert_sql(connection, type(row), relax_commit)
    params = [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row.pk = cursor.fetchone()[0]
    row._state.adding, row._state.db = False, using
    return row


def _select_sql(connection, model: type[models.Model], where: tuple[str, ...],
                relax_commit: bool) -> tuple[str, list[str], list]:
    key = (connection.alias, model, where, relax_commit)
    if key not in _selects:
        meta, quote = model._meta, connection.ops.quote_name
        fields = meta.concrete_fields
        conditions = " AND ".join(f"{quote(meta.get_field(name).column)} = %s" for name in where)
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        relax = _relaxer(connection, relax_commit)
        columns = [quote(f.column) for f in fields] + ([relax] if relax else [])
        sql = (f"SELECT {', '.join(columns)} FROM {quote(meta.db_table)} "
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


def select_for_update(model: type[M], *, deferred: tuple[str, ...] = (), using: str = DEFAULT_DB_ALIAS,
                      relax_commit: bool = False, **where: Any) -> M | None:
    """The one row of `model` matching `where` (unique lookups only), locked until commit, or None.

    Run it inside a transaction. Each foreign key named in `deferred` is set to an instance of
    its model holding only the pk: reading any other field of it loads that row then.
    """
    connection = connections[using]
    sql, attnames, converters = _select_sql(connection, model, tuple(where), relax_commit)
    params = [model._meta.get_field(name).get_db_prep_value(value, connection) for name, value in where.items()]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    if found is None:
        return None
    values = list(found[:len(attnames)])
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


_linked: dict[tuple, tuple[str, list[models.Field], list[models.Field], list[models.Field]]] = {}


def insert_linked(first: models.Model, second: models.Model, link: str, *,
                  spend: tuple[type[models.Model], Any, dict[str, Any]] | None = None,
                  using: str = DEFAULT_DB_ALIAS) -> None:
    """Insert `first`, then `second` whose foreign key `link` points at it, and apply `spend`
    (model, pk, values: one UPDATE by pk) — a single statement on PostgreSQL (a data-modifying
    WITH), so a token pair and the code or refresh token it spends cost one round trip.
    Elsewhere the same three statements run in order. Run it inside a transaction."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        if spend is not None:
            update(spend[0], spend[1], using=using, **spend[2])
        insert(first, using)
        setattr(second, link, first)
        insert(second, using)
        return
    spend_model, spend_pk, spend_values = spend if spend is not None else (None, None, {})
    key = (connection.alias, type(first), type(second), link, spend_model, tuple(spend_values))
    if key not in _linked:
        quote = connection.ops.quote_name
        parts = []
        spend_fields: list[models.Field] = []
        if spend_model is not None:
            meta = spend_model._meta
            spend_fields = [meta.get_field(name) for name in spend_values]
            assignments = ", ".join(f"{quote(f.column)} = %s" for f in spend_fields)
            parts.append(f"spent AS (UPDATE {quote(meta.db_table)} SET {assignments} "
                         f"WHERE {quote(meta.pk.column)} = %s)")
        first_sql, first_fields = _insert_sql(connection, type(first), False)
        parts.append(f"first_row AS ({first_sql})")
        meta = type(second)._meta
        link_field = meta.get_field(link)
        second_fields = [f for f in meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
        first_pk = quote(type(first)._meta.pk.column)
        values = [f"(SELECT {first_pk} FROM first_row)" if f is link_field else "%s" for f in second_fields]
        sql = (f"WITH {', '.join(parts)} INSERT INTO {quote(meta.db_table)} "
               f"({', '.join(quote(f.column) for f in second_fields)}) VALUES ({', '.join(values)}) "
               f"RETURNING {quote(meta.pk.column)}, {quote(link_field.column)}")
        _linked[key] = (sql, spend_fields, first_fields, [f for f in second_fields if f is not link_field])
    sql, spend_fields, first_fields, second_fields = _linked[key]
    params = [f.get_db_prep_save(value, connection) for f, value in zip(spend_fields, spend_values.values(),
                                                                        strict=True)]
    if spend_model is not None:
        params.append(spend_model._meta.pk.get_db_prep_value(spend_pk, connection))
    params += [f.get_db_prep_save(f.pre_save(first, True), connection) for f in first_fields]
    params += [f.get_db_prep_save(f.pre_save(second, True), connection) for f in second_fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        second.pk, first.pk = cursor.fetchone()
    for row in (first, second):
        row._state.adding, row._state.db = False, using
    setattr(second, link, first)
