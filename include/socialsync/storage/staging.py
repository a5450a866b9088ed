"""Staged bulk upserts: a transaction's rows gather in temporary tables, then one set-based upsert per table."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter
from types import TracebackType
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Index,
    Insert,
    MetaData,
    String,
    Table,
    case,
    delete,
    func,
    insert,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable, DropIndex

SEQ = "seq"  # the order rows were staged in: the last version of a key wins, as row-by-row upserts would
BUFFER_ROWS = 1000  # rows a session holds in memory, all tables together, before they go to the server
# A PostgreSQL stage of fewer rows is read as it is: a hash of a few hundred rows beats the index and
# the ANALYZE a quiet profile's normalize paid for each of its tables.
INDEXED_ROWS = 1000

_metadata = MetaData()
_USED = "socialsync.stages_used"  # Connection.info key: (transaction, stage names used in it)
_lock = threading.Lock()  # task threads may stage the same table for the first time at once


def staging_table(table: Table) -> Table:
    """The temporary twin of ``table``: its columns, all nullable and unconstrained, plus ``seq``.

    It stays with the database session: created by the first transaction that needs it, emptied by
    every commit on PostgreSQL (``ON COMMIT DELETE ROWS``) and by the session itself on SQLite (no
    such clause). A table dropped and created again for every job cost a quiet profile's normalize
    a dozen catalog writes.
    """
    name = f"stage_{table.name}"
    with _lock:
        if name in _metadata.tables:
            return _metadata.tables[name]
        if SEQ in table.c:
            raise ValueError(f"{table.name} has a column named {SEQ!r}, which staging needs for itself")
        stage = Table(name, _metadata, *(Column(c.name, c.type) for c in table.columns),
                      Column(SEQ, BigInteger, nullable=False),
                      prefixes=["TEMPORARY"], postgresql_on_commit="DELETE ROWS")
        # "Is this key staged?" (deletions, the last version of a key) must stay an index lookup: the
        # planner knows little of rows loaded in this transaction and picks nested loops. Built once
        # the rows are in (see ``StagedUpserts._ready``): cheaper than keeping it up during the load.
        # On PostgreSQL only a stage of ``INDEXED_ROWS`` or more gets it, for its session alone.
        Index(f"ix_{name}_key", *(stage.c[c.name] for c in table.primary_key.columns))
        return stage


class _Stage:
    """One table's stage in one session: how its rows are written, rows waiting, the next seq."""

    def __init__(self, table: Table, stage: Table, columns: list[str], dialect: Dialect) -> None:
        self.table, self.stage, self.columns = table, stage, columns
        self.key = [c.name for c in table.primary_key.columns]
        self.key_of = _getter(self.key)
        self.values_of = _getter(columns)
        self.postgres = dialect.name == "postgresql"
        convert = _copy_converter if self.postgres else _bind_converter
        self.converters = [convert(table.c[c], dialect) for c in columns]
        preparer = dialect.identifier_preparer
        if self.postgres:
            names = ", ".join(preparer.quote(c) for c in [*columns, SEQ])
            self.load = f"COPY {preparer.format_table(stage)} ({names}) FROM STDIN"
        else:
            compiled = insert(stage).compile(dialect=dialect, column_keys=[*columns, SEQ])
            if list(compiled.positiontup or ()) != [*columns, SEQ]:
                raise RuntimeError(f"unexpected parameter order staging {table.name}: {compiled.positiontup}")
            self.load = compiled.string
        self.pending: list[Any] = []
        self.seq = 0
        self.staged = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self.seq += 1
        values = self.values_of(row)
        if not self.postgres:
            self.pending.append((*(v if c is None else c(v) for c, v in zip(self.converters, values, strict=True)),
                                 self.seq))
            return
        try:  # a str column's value goes as it is: no call per field
            fields = [(_NULL if v is None else v) if c is None else c(v)
                      for c, v in zip(self.converters, values, strict=True)]
            fields.append(str(self.seq))
            self.pending.append(_copy_line(fields))
        except TypeError:  # not a str after all (an int in a text column): say it as one
            fields = [_text(v) if c is None else c(v) for c, v in zip(self.converters, values, strict=True)]
            fields.append(str(self.seq))
            self.pending.append(_copy_line(fields))

    def send(self, conn: Connection) -> None:
        if not self.pending:
            return
        # The DBAPI connection under the SQLAlchemy one: same session, same transaction.
        raw = conn.connection.dbapi_connection
        if raw is None:
            raise RuntimeError("the connection is closed")
        cursor = raw.cursor()
        try:
            if self.postgres and hasattr(cursor, "copy_expert"):  # psycopg2 (the suite, the bench)
                cursor.copy_expert(self.load, _Lines(self.pending))
            elif self.postgres:  # psycopg 3: what Airflow's PostgresHook connects with in the tasks
                with cursor.copy(self.load) as stream:
                    for line in self.pending:
                        stream.write(line)
            else:
                cursor.executemany(self.load, self.pending)
        finally:
            cursor.close()
        self.staged += len(self.pending)
        self.pending = []


class StagedUpserts:
    """Upserts of one transaction, staged and merged: ``append`` pages of rows, then ``merge`` once.

    PostgreSQL receives the rows through ``COPY`` and SQLite through one prepared ``executemany``
    statement; ``merge`` then runs one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` per table
    with the last staged version of each key, so nothing compiles a statement per page. With
    ``newer`` (a column name), a stored row is only replaced by one whose ``newer`` is at least its own.

    Use it inside a transaction (``engine.begin()``), one session at a time per connection; as a
    context manager it leaves the stages empty when the block ends well. Memory holds at most
    ``buffer_rows`` rows (and the last page appended), however many are staged.
    """

    def __init__(self, conn: Connection, newer: str | None = None, buffer_rows: int = BUFFER_ROWS) -> None:
        self.conn = conn
        self.newer = newer
        self.buffer_rows = buffer_rows
        self._postgres = conn.dialect.name == "postgresql"
        self._stages: dict[str, Table] = {}
        self._loads: dict[str, _Stage] = {}
        self._pending = 0  # rows appended and not sent yet, all tables together
        self._ready_stages: set[str] = set()
        self._indexed: list[Index] = []  # PostgreSQL indexes built for this session alone
        self._existing: set[str] | None = None  # temporary tables the database session holds

    def __enter__(self) -> StagedUpserts:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        # After a failure the transaction rolls back and takes the staged rows with it. SQLite keeps
        # a temporary table's rows across commits, so a good ending empties what it used.
        if kind is None and not self._postgres:
            for stage in self._stages.values():
                self.conn.execute(delete(stage))
        # A big stage's index goes with its session: kept, it would slow every later COPY into the stage.
        if kind is None:
            for index in self._indexed:
                self.conn.execute(DropIndex(index, if_exists=True))

    def append(self, table: Table, rows: Iterable[Mapping[str, Any]]) -> int:
        """Stage ``rows`` for ``table``; returns how many distinct keys they hold (rows offered).

        Every row of a table in one session carries the columns its first row did.
        """
        load = self._loads.get(table.name)
        unique: dict[Any, Mapping[str, Any]] = {}
        key_of = load.key_of if load is not None else _getter([c.name for c in table.primary_key.columns])
        for row in rows:
            unique[key_of(row)] = row
        if not unique:
            return 0
        if load is None:
            load = self._load(table, next(iter(unique.values())))
        for row in unique.values():
            load.add(row)
        self._pending += len(unique)
        if self._pending >= self.buffer_rows:
            self._send()
        return len(unique)

    def holds(self, table: Table) -> bool:
        """Whether any row of ``table`` was appended in this session."""
        load = self._loads.get(table.name)
        return load is not None and bool(load.staged or load.pending)

    def staged(self, table: Table) -> Table:
        """``table``'s stage with every appended row in it, for set-based statements against it."""
        stage = self._stage(table)
        self._send()
        self._ready(stage)
        return stage

    def merge(self) -> None:
        """Upsert the last staged version of every key into its table: one statement per table."""
        self._send()
        for load in self._loads.values():
            if load.staged:
                self._ready(load.stage)
                self.conn.execute(_merge_statement(load, self.newer, self._postgres))

    def _send(self) -> None:
        for load in self._loads.values():
            load.send(self.conn)
        self._pending = 0

    def _ready(self, stage: Table) -> None:
        """Index a stage (and on PostgreSQL, analyze it) once its rows are in, before statements read it.

        An empty stage (a pass that saw nothing of its table) is left as it is: there is nothing to look
        up, and a quiet profile's normalize would otherwise pay an index and an ANALYZE per such table.
        """
        load = self._loads.get(stage.name.removeprefix("stage_"))
        if stage.name in self._ready_stages or load is None or not load.staged:
            return
        self._ready_stages.add(stage.name)
        if self._postgres and load.staged < INDEXED_ROWS:
            return
        for index in stage.indexes:
            self.conn.execute(CreateIndex(index, if_not_exists=True))
            if self._postgres:
                self._indexed.append(index)
        if self._postgres:
            # Autovacuum never analyzes temporary tables: without numbers the planner takes a stage
            # of thousands of rows for a few and rescans it for every row it checks.
            self.conn.execute(text(f"ANALYZE {self.conn.dialect.identifier_preparer.format_table(stage)}"))

    def _stage(self, table: Table) -> Table:
        stage = self._stages.get(table.name)
        if stage is None:
            stage = staging_table(table)
            existing = self._temporary_tables()  # its query begins the transaction, if nothing had
            used = self._used_in_this_transaction()
            if stage.name not in existing:
                self.conn.execute(CreateTable(stage, if_not_exists=True))
            elif not self._postgres or stage.name in used:
                # What an earlier session of this transaction left (on SQLite, of this connection). On
                # PostgreSQL every commit and rollback empties the stage: a new transaction needs no delete.
                self.conn.execute(delete(stage))
            used.add(stage.name)
            self._stages[table.name] = stage
        return stage

    def _used_in_this_transaction(self) -> set[str]:
        """The stages sessions of the connection's current transaction have used (kept on the connection)."""
        transaction = self.conn.get_transaction()
        held = self.conn.info.get(_USED)
        if held is None or held[0] is not transaction:
            held = self.conn.info[_USED] = (transaction, set())
        return held[1]

    def _temporary_tables(self) -> set[str]:
        """The temporary tables of the database session, read once a session (a rolled back transaction
        takes the tables it created with it, so no cache outlives the transaction)."""
        if self._existing is None:
            self._existing = set(self.conn.scalars(text(
                "SELECT relname FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind = 'r'"
                if self._postgres else "SELECT name FROM sqlite_temp_master WHERE type = 'table'")))
        return self._existing

    def _load(self, table: Table, first: Mapping[str, Any]) -> _Stage:
        unknown = [c for c in first if c not in table.c]
        if unknown:
            raise KeyError(f"{table.name} has no column(s) {unknown}")
        columns = [c.name for c in table.columns if c.name in first]
        load = _Stage(table, self._stage(table), columns, self.conn.dialect)
        self._loads[table.name] = load
        return load


class _Lines:
    """COPY lines as the file psycopg2 reads from, a piece at a time: no second copy of the buffer."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = iter(lines)

    def read(self, size: int = -1) -> str:
        piece: list[str] = []
        length = 0
        for line in self._lines:
            piece.append(line)
            length += len(line)
            if 0 <= size <= length:
                break
        return "".join(piece)


def _getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return itemgetter(*names)


_MERGES: dict[tuple[Any, ...], Insert] = {}


def _merge_statement(load: _Stage, newer: str | None, postgres: bool) -> Insert:
    """The upsert of ``load``'s stage into its table, built once per table, columns and dialect: the same
    statement object each job, so SQLAlchemy neither builds it again nor computes its cache key again."""
    key = (id(load.table), load.table.name, load.stage.name, tuple(load.columns), newer, postgres)
    stmt = _MERGES.get(key)
    if stmt is None:
        stmt = _MERGES[key] = _build_merge(load, newer, postgres)  # a race builds the same statement twice
    return stmt


def _build_merge(load: _Stage, newer: str | None, postgres: bool) -> Insert:
    table, stage, columns = load.table, load.stage, load.columns
    latest = select(func.max(stage.c[SEQ])).group_by(*(stage.c[k] for k in load.key))
    # The WHERE also spares SQLite's parser from reading ON CONFLICT as a join constraint.
    rows = select(*(stage.c[c] for c in columns)).where(stage.c[SEQ].in_(latest))
    stmt = (postgresql.insert if postgres else sqlite.insert)(table).from_select(columns, rows)
    updates = {c: stmt.excluded[c] for c in columns if c not in load.key}
    if not updates:
        return stmt.on_conflict_do_nothing(index_elements=load.key)
    # A NULL in a column that is ``kept_when_null`` (a page that does not say) keeps what is held.
    kept = set(table.info.get("kept_when_null", ()))
    chosen = {c: func.coalesce(value, table.c[c]) if c in kept else value for c, value in updates.items()}
    earliest = [c for c in table.info.get("earliest", ()) if c in updates]
    if not earliest:
        where = table.c[newer] <= stmt.excluded[newer] if newer else None
        return stmt.on_conflict_do_update(index_elements=load.key, set_=chosen, where=where)
    # A table that keeps when a row was first seen: that column takes the earlier of the two whatever
    # the order jobs are replayed in; the others follow the ``newer`` rule.
    fresh = table.c[newer] <= stmt.excluded[newer] if newer else true()
    set_: dict[str, Any] = {}
    for c, value in updates.items():
        if c in earliest:
            set_[c] = case((table.c[c] <= value, table.c[c]), else_=value)
        else:
            set_[c] = case((fresh, chosen[c]), else_=table.c[c])
    return stmt.on_conflict_do_update(index_elements=load.key, set_=set_)


def _memo(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` remembering its last answer: rows of a page share values (synced_at, deleted)."""
    last_value: Any = None
    last_result: Any = None

    def remembered(value: Any) -> Any:
        nonlocal last_value, last_result
        if value is last_value and type(value) in _IMMUTABLE:
            return last_result
        last_value, last_result = value, convert(value)
        return last_result

    return remembered


def _bind_converter(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The type's own bind step, what a bound parameter would go through (None: the value as it is)."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return None if process is None else _memo(process)


# --- COPY's text format -------------------------------------------------------------------------
# A row's fields are joined with NUL and escaped in one go (four replaces per row, not per field),
# then NUL becomes the tab. NUL cannot be in PostgreSQL text, and a lone surrogate cannot be
# encoded for the server at all, so neither can come from data: a row that holds either fails.
_FIELD = "\x00"
_NULL = "\udfff"
_IMMUTABLE = frozenset({bool, int, float, Decimal, datetime, date, str})


def _escape(text: str) -> str:
    # Backslash first: the escapes the others add must not be escaped again.
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


_BY_TYPE: dict[type, Callable[[Any], str]] = {
    bool: lambda v: "t" if v else "f",
    int: int.__repr__,
    float: float.__repr__,  # shortest text that reads back as the same double
    Decimal: str,
    datetime: datetime.isoformat,  # an aware value keeps its offset; UtcDateTime hands over naive UTC
    date: date.isoformat,
    dict: json.dumps,
    list: json.dumps,
}


def _text(value: Any) -> str:
    """A bound value as COPY text, before escaping (``_NULL`` for SQL NULL)."""
    if value is None:
        return _NULL
    if type(value) is str:
        return value
    format_ = _BY_TYPE.get(type(value))
    return format_(value) if format_ is not None else str(value)


def _copy_converter(column: Column[Any], dialect: Dialect) -> Callable[[Any], str] | None:
    """How a value of ``column`` becomes COPY text: None when a str goes as it is (or None is NULL).

    Other values go through the type's bind step first (UtcDateTime to naive UTC, JSON to its
    text), so staged rows hold exactly what row-by-row statements stored.
    """
    impl = column.type.dialect_impl(dialect)
    if isinstance(impl, JSON):
        # JSON as its text, whatever the driver's bind step wraps it in (psycopg 3 hands back a
        # ``Jsonb`` adapter object, not text); the same serializer the row-by-row statements use.
        serialize = dialect._json_serializer or json.dumps  # type: ignore[attr-defined]
        return lambda value: _NULL if value is None else serialize(value)
    process = impl.bind_processor(dialect)
    if process is None:
        return None if isinstance(impl, String) else _memo(_text)
    return _memo(lambda value: _text(process(value)))


def _copy_line(fields: list[str]) -> str:
    line = _FIELD.join(fields)
    nulls = fields.count(_NULL)
    if line.count(_FIELD) != len(fields) - 1 or line.count(_NULL) != nulls:
        raise ValueError("a text value holds a NUL character or a lone surrogate, which PostgreSQL cannot store")
    line = _escape(line).replace(_FIELD, "\t")
    return (line.replace(_NULL, "\\N") if nulls else line) + "\n"
