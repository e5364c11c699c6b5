"""A fraudscan workspace: one directory holding the canonical tables, a DuckDB file and outputs.

Layout::

    W/
      workspace.json      what is in it (source, created, row counts, fingerprint)
      tables/NAME.parquet the canonical tables of :mod:`fraudscan.schema`
      fraudscan.duckdb    derived tables (rule findings, features, ...) written by later steps
      rejects/            rows refused by a lenient import, with their reasons

The Parquet files are the source of truth. :meth:`Workspace.connect` opens the DuckDB file and
exposes each canonical table as a temporary view over its Parquet file, so SQL written against
table names works whatever the workspace's location.

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
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fraudscan import schema
from fraudscan.errors import FraudscanError

DB_FILE = "fraudscan.duckdb"
META_FILE = "workspace.json"
TABLES_DIR = "tables"
REJECTS_DIR = "rejects"


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


def write_parquet(t: pa.Table, path: Path) -> None:
    """Write Parquet deterministically (same table, same bytes)."""
    pq.write_table(t, path, compression="zstd", row_group_size=1 << 20, write_statistics=True)


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
        for name in self.present_tables():
            h.update(name.encode())
            with open(self.table_path(name), "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()[:16]

    # -- reading ----------------------------------------------------------------------------
    def read_arrow(self, name: str, columns: list[str] | None = None) -> pa.Table:
        if not self.has_table(name):
            t = schema.table(name)
            if t.optional or name == "labels":
                return t.arrow_schema().empty_table().select(columns or t.column_names)
            raise WorkspaceError(f"{self.path}: table {name} is missing")
        return pq.read_table(self.table_path(name), columns=columns)

    def read_table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Read a canonical table as pandas (an absent optional table reads as empty)."""
        return self.read_arrow(name, columns).to_pandas()

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
        refers to the old data, so it is removed when the canonical data change.
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


def attach_views(con: duckdb.DuckDBPyConnection, ws: Workspace) -> None:
    """Create a temporary view per canonical table of ``ws`` on connection ``con``."""
    for name, t in schema.TABLES.items():
        if ws.has_table(name):
            path = str(ws.table_path(name)).replace("'", "''")
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet('{path}')"
            )
        else:
            cols = ", ".join(
                f"CAST(NULL AS {schema.DUCKDB_TYPES[c.dtype]}) AS {c.name}" for c in t.columns
            )
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {cols} WHERE false")


def _version() -> str:
    from fraudscan import __version__

    return __version__
