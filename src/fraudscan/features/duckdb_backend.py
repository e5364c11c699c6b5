"""The default feature backend: DuckDB, embedded, nothing to start.

It works on a private in-memory connection over the workspace's Parquet files, so a build never
holds the lock on ``fraudscan.duckdb`` that the rule engine and other steps need. Staging models
become temporary tables (each is read by several subjects), output models views that are read once.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from fraudscan import schema
from fraudscan.features.engine import Backend, BuildInputs, FeatureError, Model, query_arrow


class DuckDBBackend(Backend):
    """Run feature models with DuckDB."""

    name = "duckdb"

    def __init__(self, threads: int | None = None, memory_limit: str | None = None) -> None:
        self.con = duckdb.connect()
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("SET enable_progress_bar = false")
        self.periods: tuple[str, ...] = ()

    def prepare(self, inputs: BuildInputs) -> None:
        ws = inputs.workspace
        self.periods = tuple(inputs.periods)
        for name, t in schema.TABLES.items():
            where = inputs.filters.get(name)
            if ws.has_table(name):
                path = str(ws.table_path(name)).replace("'", "''")
                src = f"SELECT * FROM read_parquet('{path}')"
            else:
                cols = ", ".join(
                    f"CAST(NULL AS {schema.DUCKDB_TYPES[c.dtype]}) AS {c.name}" for c in t.columns
                )
                src = f"SELECT {cols} WHERE false"
            sql = f"SELECT * FROM ({src}) t WHERE {where}" if where else src
            # restricted settlements are read by every other filter: materialise them once
            kind = "TABLE" if name == "settlements" else "VIEW"
            self.con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {sql}")
        for rel, table in (
            ("fs_meta", inputs.meta),
            ("fs_months", inputs.months),
            ("rule_findings", inputs.rule_findings),
        ):
            self.con.register(f"_arrow_{rel}", table)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {rel} AS SELECT * FROM _arrow_{rel}")
            self.con.unregister(f"_arrow_{rel}")

    def materialize(self, model: Model) -> None:
        try:
            for rel, sql in model.steps(self.periods):
                kind = "VIEW" if model.is_output and rel == model.name else "TABLE"
                self.con.execute(f"CREATE OR REPLACE TEMP {kind} {rel} AS {sql}")
        except duckdb.Error as e:
            raise FeatureError(f"feature model {model.name} ({model.path.name}) failed: {e}") from e

    def fetch(self, model: Model, periods: Sequence[str]) -> pa.Table:
        plist = ", ".join("'" + p.replace("'", "''") + "'" for p in periods)
        order = f"period, {model.key}" if model.key else "period"
        try:
            return query_arrow(self.con, (
                f"SELECT * FROM {model.name} WHERE period IN ({plist}) ORDER BY {order}"
            ))
        except duckdb.Error as e:
            raise FeatureError(f"feature model {model.name} ({model.path.name}) failed: {e}") from e

    def close(self) -> None:
        self.con.close()
