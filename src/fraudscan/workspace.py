"""A fraudscan workspace: one directory holding the canonical tables, a DuckDB file and outputs.

Layout::

    W/
      workspace.json      what is in it (source, created, row counts, fingerprint)
      tables/NAME.parquet the canonical tables of :mod:`fraudscan.schema`
      fraudscan.duckdb    derived tables (rule findings, features, ...) written by later steps
      rejects/            rows refused by a lenient import, with their reasons
      status/NAME.parquet status side-tables: sanction statuses over persons / staff / facilities

The Parquet files are the source of truth. :meth:`Workspace.connect` opens the DuckDB file and
exposes each canonical table as a temporary view over its Parquet file, so SQL written against
table names works whatever the workspace's location.

Statuses set by sanctions (a person's settlement suspension, a doctor's points, a suspended
agreement) live in ``status/`` side-tables, not in the canonical files: they change often and
must not invalidate the derived state (rule findings, leads, rings) the way new data does.
Every reader still sees them in place — :meth:`Workspace.read_table` and the DuckDB views of
``persons``, ``staff`` and ``facilities`` overlay the side-table's columns (:data:`STATUS_COLUMNS`)
on the rows it names, so rules and models read the same column names and values as before.

Writes of canonical tables are atomic: :meth:`Workspace.write_tables` stages every file in a
sibling directory and swaps it in with renames, so a failed import leaves the workspace as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudscan import schema
from fraudscan.errors import FraudscanError

DB_FILE = "fraudscan.duckdb"
META_FILE = "workspace.json"
TABLES_DIR = "tables"
REJECTS_DIR = "rejects"
STATUS_DIR = "status"
STATUS_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "persons": ("person_id", ("settlement_restricted_until", "restricted_facilities")),
    "staff": ("staff_id", ("qualification_status", "status_from", "status_to",
                           "points_this_year")),
    "facilities": ("facility_id", ("agreement_status",)),
}
"""Canonical table → (key, columns a status side-table may override)."""


class WorkspaceError(FraudscanError):
    """A workspace is missing, incomplete or cannot be written."""


def to_arrow(df: pd.DataFrame | pa.Table, table: schema.Table) -> pa.Table:
    """Cast a frame to the canonical Arrow schema of ``table`` (columns in schema order).

    Missing optional columns are added as nulls; unknown columns are an error so nothing is
    dropped silently.
    """
    if isinstance(df, pa.Table):
        df = df.to_pandas()
    unknown = [c for c in df.columns if c not in table.column_names]
    if unknown:
        raise WorkspaceError(f"{table.name}: unknown columns {unknown}")
    arrays = []
    n = len(df)
    for col in table.columns:
        typ = col.arrow_type()
        if col.name not in df.columns:
            arrays.append(pa.nulls(n, type=typ))
            continue
        s = df[col.name]
        if col.dtype == "date":
            s = pd.to_datetime(s).dt.date
        elif col.dtype == "timestamp":
            s = pd.to_datetime(s).astype("datetime64[s]")
        elif col.dtype == "string":
            s = s.astype("object").where(s.notna(), None)
        arrays.append(pa.array(s, type=typ, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=table.arrow_schema())


PARQUET_ROW_GROUP = 122_880
"""Rows per Parquet row group: DuckDB's own row-group size. DuckDB reads a Parquet file with
one thread per row group, so a big table written as one group (the earlier 2^20 rows) was
read on one core, and smaller groups with statistics let filters skip groups."""


def write_parquet(t: pa.Table, path: Path) -> None:
    """Write Parquet deterministically (same table, same bytes)."""
    pq.write_table(t, path, compression="zstd", row_group_size=PARQUET_ROW_GROUP,
                   write_statistics=True)


class Workspace:
    """Handle on a workspace directory."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).resolve()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    # -- layout -----------------------------------------------------------------------------
    @property
    def tables_dir(self) -> Path:
        return self.path / TABLES_DIR

    @property
    def db_path(self) -> Path:
        return self.path / DB_FILE

    @property
    def rejects_dir(self) -> Path:
        return self.path / REJECTS_DIR

    @property
    def status_dir(self) -> Path:
        return self.path / STATUS_DIR

    def status_path(self, name: str) -> Path:
        if name not in STATUS_COLUMNS:
            raise WorkspaceError(f"{name} has no status side-table")
        return self.status_dir / f"{name}.parquet"

    def table_path(self, name: str) -> Path:
        schema.table(name)
        return self.tables_dir / f"{name}.parquet"

    def exists(self) -> bool:
        return self.tables_dir.is_dir()

    def require(self) -> Workspace:
        """Raise a clear error unless this is a workspace with the required tables."""
        if not self.exists():
            raise WorkspaceError(
                f"{self.path} is not a fraudscan workspace (no {TABLES_DIR}/ directory); "
                "create one with `fraudscan synth` or `fraudscan import`"
            )
        missing = [n for n in schema.REQUIRED_TABLES if not self.has_table(n)]
        if missing:
            raise WorkspaceError(f"{self.path}: missing tables {missing}")
        return self

    def has_table(self, name: str) -> bool:
        return self.table_path(name).is_file()

    def present_tables(self) -> list[str]:
        return [n for n in schema.TABLES if self.has_table(n)]

    # -- metadata ---------------------------------------------------------------------------
    def metadata(self) -> dict:
        p = self.path / META_FILE
        if not p.is_file():
            return {}
        return json.loads(p.read_text(encoding="utf-8"))

    def _write_metadata(self, meta: dict) -> None:
        p = self.path / META_FILE
        tmp = p.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                       encoding="utf-8")
        os.replace(tmp, p)

    def fingerprint(self) -> str:
        """Content hash of the canonical tables (for tracking which data a model saw)."""
        h = hashlib.sha256()
        files = [(n, self.table_path(n)) for n in self.present_tables()]
        # statuses are model inputs too (staff points), so they belong to the data a model saw
        files += [(f"status/{n}", self.status_path(n)) for n in STATUS_COLUMNS
                  if self.status_path(n).is_file()]
        for name, path in files:
            h.update(name.encode())
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()[:16]

    # -- reading ----------------------------------------------------------------------------
    def read_arrow(self, name: str, columns: list[str] | None = None, *,
                   with_status: bool = True) -> pa.Table:
        """Read a canonical table; ``with_status`` overlays its status side-table."""
        if not self.has_table(name):
            t = schema.table(name)
            if t.optional or name == "labels":
                return t.arrow_schema().empty_table().select(columns or t.column_names)
            raise WorkspaceError(f"{self.path}: table {name} is missing")
        st = self.read_status(name) if with_status and name in STATUS_COLUMNS else None
        if st is None or st.num_rows == 0:
            return pq.read_table(self.table_path(name), columns=columns)
        key, cols = STATUS_COLUMNS[name]
        if columns is not None and not set(cols) & set(columns):
            return pq.read_table(self.table_path(name), columns=columns)
        need = None if columns is None else list(dict.fromkeys([key, *columns]))
        t = _overlay(pq.read_table(self.table_path(name), columns=need), st, key, cols)
        return t if columns is None else t.select(columns)

    def read_table(self, name: str, columns: list[str] | None = None, *,
                   with_status: bool = True) -> pd.DataFrame:
        """Read a canonical table as pandas (an absent optional table reads as empty).

        Statuses from ``status/`` are applied unless ``with_status`` is false (the imported
        values, which :func:`fraudscan.outcomes.apply_sanctions` starts from).
        """
        return self.read_arrow(name, columns, with_status=with_status).to_pandas()

    # -- status side-tables -----------------------------------------------------------------
    def read_status(self, name: str) -> pa.Table | None:
        """The status side-table of ``name`` (None when there is none)."""
        p = self.status_path(name)
        return pq.read_table(p) if p.is_file() else None

    def write_status(self, name: str, df: pd.DataFrame | None) -> None:
        """Replace the status side-table of ``name`` (``None`` or empty removes it).

        ``df`` holds the key and the status columns of :data:`STATUS_COLUMNS` (all of them:
        a null is a value, e.g. no end date). Canonical tables and the DuckDB file are left
        alone, so rule findings, leads and rings stay valid.
        """
        p = self.status_path(name)
        if df is None or len(df) == 0:
            p.unlink(missing_ok=True)
            return
        key, cols = STATUS_COLUMNS[name]
        t = schema.table(name)
        missing = [c for c in (key, *cols) if c not in df.columns]
        if missing:
            raise WorkspaceError(f"status of {name}: missing columns {missing}")
        df = df[[key, *cols]].drop_duplicates(key, keep="last")
        arrow = to_arrow(df, t).select([key, *cols])
        self.status_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.status_dir / f".{name}.{uuid.uuid4().hex[:6]}.parquet"
        write_parquet(arrow, tmp)
        os.replace(tmp, p)

    def row_counts(self) -> dict[str, int]:
        return {
            n: pq.ParquetFile(self.table_path(n)).metadata.num_rows for n in self.present_tables()
        }

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the workspace's DuckDB with a view per canonical table; closes on exit.

        Absent optional tables appear as empty views with the canonical columns, so SQL can
        always name them.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        if read_only and not self.db_path.exists():
            read_only = False
        con = duckdb.connect(str(self.db_path), read_only=read_only)
        try:
            attach_views(con, self)
            yield con
        finally:
            con.close()

    # -- writing ----------------------------------------------------------------------------
    def write_tables(
        self,
        tables: Mapping[str, pd.DataFrame | pa.Table],
        *,
        source: str,
        replace_all: bool = True,
        extra_meta: Mapping[str, object] | None = None,
    ) -> None:
        """Atomically write canonical tables.

        With ``replace_all`` the new set replaces every canonical table (tables not given are
        removed); otherwise only the given tables are replaced. Derived state in the DuckDB file
        refers to the old data, so it is removed when the canonical data change — statuses
        belong in :meth:`write_status`, which keeps it. Status side-tables survive a re-import
        and stay on top of the new data.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:8]
        staging = self.path / f".staging-{token}"
        staging.mkdir()
        try:
            if not replace_all and self.tables_dir.is_dir():
                for name in self.present_tables():
                    if name not in tables:
                        shutil.copy2(self.table_path(name), staging / f"{name}.parquet")
            for name, data in tables.items():
                t = schema.table(name)
                at = data if isinstance(data, pa.Table) and data.schema == t.arrow_schema() \
                    else to_arrow(data, t)
                write_parquet(at, staging / f"{name}.parquet")
            old = self.path / f".old-{token}"
            if self.tables_dir.exists():
                os.replace(self.tables_dir, old)
            os.replace(staging, self.tables_dir)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        for p in (self.db_path, self.db_path.with_name(DB_FILE + ".wal")):
            if p.exists():
                p.unlink()
        meta = {
            "source": source,
            "written_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "row_counts": self.row_counts(),
            "fingerprint": self.fingerprint(),
            "fraudscan_version": _version(),
        }
        if extra_meta:
            meta.update(extra_meta)
        self._write_metadata(meta)


def _overlay(t: pa.Table, st: pa.Table, key: str, cols: tuple[str, ...]) -> pa.Table:
    """``t`` with ``cols`` replaced by ``st``'s values on the rows whose ``key`` it holds."""
    pos = pd.Index(st.column(key).to_pandas().astype(str)).get_indexer(
        t.column(key).to_pandas().astype(str))
    hit = pos >= 0
    if not hit.any():
        return t
    take = pa.array(np.where(hit, pos, 0))
    mask = pa.array(hit)
    for c in cols:
        if c not in t.column_names:
            continue
        i = t.column_names.index(c)
        new = st.column(c).take(take).cast(t.schema.field(c).type)
        t = t.set_column(i, t.schema.field(c), pc.if_else(mask, new, t.column(c)))
    return t


def _quote(p: Path) -> str:
    return str(p).replace("'", "''")


def attach_views(con: duckdb.DuckDBPyConnection, ws: Workspace) -> None:
    """Create a temporary view per canonical table of ``ws`` on connection ``con``.

    ``persons``, ``staff`` and ``facilities`` carry their status side-table when there is one.
    """
    for name, t in schema.TABLES.items():
        if ws.has_table(name):
            path = _quote(ws.table_path(name))
            src = f"SELECT * FROM read_parquet('{path}')"
            if name in STATUS_COLUMNS and ws.status_path(name).is_file():
                key, cols = STATUS_COLUMNS[name]
                sp = _quote(ws.status_path(name))
                repl = ", ".join(f"CASE WHEN s.__status_key IS NULL THEN b.{c} ELSE s.{c} END "
                                 f"AS {c}" for c in cols)
                src = (f"SELECT b.* REPLACE ({repl}) FROM read_parquet('{path}') b "
                       f"LEFT JOIN (SELECT {key} AS __status_key, {', '.join(cols)} "
                       f"FROM read_parquet('{sp}')) s ON CAST(b.{key} AS VARCHAR) = "
                       "s.__status_key")
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {src}")
        else:
            cols = ", ".join(
                f"CAST(NULL AS {schema.DUCKDB_TYPES[c.dtype]}) AS {c.name}" for c in t.columns
            )
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {cols} WHERE false")


def _version() -> str:
    from fraudscan import __version__

    return __version__
