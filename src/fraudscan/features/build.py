"""Incremental, month-partitioned feature builds and reading their results.

Outputs live in the workspace as one Parquet file per subject and month::

    W/features/<subject>/<YYYY-MM>.parquet
    W/features/_state.json          fingerprint each month was built from

(and, best effort, as views ``features_<subject>`` in ``W/fraudscan.duckdb``). They are files rather
than tables of the DuckDB file because that file is deleted whenever canonical tables are
rewritten, which would turn every appended month into a full rebuild.

A month's *fingerprint* hashes its own rows (settlements settled in it, their lines, diagnoses,
procedures, trace scans, rule findings and persons) together with the same for the 12 months
before it (every feature looks back at most 365 days), the dimension tables (facilities, staff,
catalogue) and the SQL definitions. A build recomputes only months whose fingerprint changed or
that are new, so appending a month computes that month alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudscan.features.engine import (
    BuildInputs,
    FeatureError,
    Model,
    definitions_hash,
    get_backend,
    load_models,
    normalize,
    query_arrow,
    subjects,
)
from fraudscan.workspace import Workspace, attach_views, write_parquet

FEATURES_DIR = "features"
STATE_FILE = "_state.json"
LOOKBACK_MONTHS = 12
"""Months of history every month's features may read (365-day windows, month-over-month)."""

ENGINE_VERSION = "1"
"""Bump when the orchestration changes results, to rebuild every month."""

RULE_FINDING_COLUMNS = {
    "rule_id": "VARCHAR",
    "action": "VARCHAR",
    "severity": "VARCHAR",
    "settlement_id": "VARCHAR",
    "line_id": "VARCHAR",
    "person_id": "VARCHAR",
    "facility_id": "VARCHAR",
    "staff_id": "VARCHAR",
    "service_date": "DATE",
    "amount": "DOUBLE",
    "message": "VARCHAR",
}


@dataclass
class BuildResult:
    """What a build did."""

    backend: str
    months_built: list[str]
    months_skipped: list[str]
    months_removed: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rows = ", ".join(f"{k} {v:,}" for k, v in self.rows.items())
        return (
            f"{self.backend}: built {len(self.months_built)} month(s)"
            f"{' (' + ', '.join(self.months_built) + ')' if self.months_built else ''}, "
            f"{len(self.months_skipped)} up to date, {len(self.months_removed)} removed"
            f"{'; rows ' + rows if rows else ''} in {self.seconds:.1f} s"
        )


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def _ws(workspace: Workspace | str | os.PathLike[str]) -> Workspace:
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    return ws.require()


def features_path(ws: Workspace) -> Path:
    return ws.path / FEATURES_DIR


def _month_start(period: str) -> date:
    y, m = (int(x) for x in period.split("-"))
    return date(y, m, 1)


def _add_months(d: date, n: int) -> date:
    k = d.year * 12 + d.month - 1 + n
    return date(k // 12, k % 12 + 1, 1)


def _period(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def read_rule_findings(ws: Workspace) -> pa.Table:
    """The rule engine's ``rule_findings`` from the workspace DuckDB file, or an empty table."""
    empty_cols = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in RULE_FINDING_COLUMNS.items())
    con = _con()
    try:
        if ws.db_path.exists():
            path = str(ws.db_path).replace("'", "''")
            try:
                con.execute(f"ATTACH '{path}' AS wsdb (READ_ONLY)")
            except duckdb.Error as e:
                raise FeatureError(
                    f"cannot read {ws.db_path} (is another fraudscan step writing it?): {e}"
                ) from e
            have = {
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = 'wsdb' "
                    "AND table_name = 'rule_findings'"
                ).fetchall()
            }
            if have:
                cols = ", ".join(
                    f"CAST({c} AS {t}) AS {c}" if c in have else f"CAST(NULL AS {t}) AS {c}"
                    for c, t in RULE_FINDING_COLUMNS.items()
                )
                return query_arrow(con, (f"SELECT {cols} FROM wsdb.rule_findings"))
        return query_arrow(con, (f"SELECT {empty_cols} WHERE false"))
    finally:
        con.close()


def _own_fingerprints(
    ws: Workspace, findings: pa.Table
) -> tuple[dict[str, str], set[str], str]:
    """Per-month hash of the month's own rows, the months with settlements, the dimensions' hash."""
    con = _con()
    try:
        attach_views(con, ws)
        con.register("rule_findings", findings)
        con.execute(
            "CREATE TEMP TABLE sp AS SELECT settlement_id, person_id, "
            "strftime(settle_time, '%Y-%m') AS period, hash(s) AS h FROM settlements s"
        )
        parts = {
            "settlements": "SELECT period, count(*) AS n, bit_xor(h) AS h FROM sp GROUP BY 1",
            "fee_lines": "SELECT sp.period, count(*), bit_xor(hash(x)) FROM fee_lines x "
            "JOIN sp USING (settlement_id) GROUP BY 1",
            "diagnoses": "SELECT sp.period, count(*), bit_xor(hash(x)) FROM diagnoses x "
            "JOIN sp USING (settlement_id) GROUP BY 1",
            "procedures": "SELECT sp.period, count(*), bit_xor(hash(x)) FROM procedures x "
            "JOIN sp USING (settlement_id) GROUP BY 1",
            "trace_scans": "SELECT strftime(scan_time, '%Y-%m'), count(*), bit_xor(hash(x)) "
            "FROM trace_scans x GROUP BY 1",
            "rule_findings": "SELECT coalesce(sp.period, strftime(x.service_date, '%Y-%m')), "
            "count(*), bit_xor(hash(x)) FROM rule_findings x "
            "LEFT JOIN sp USING (settlement_id) GROUP BY 1",
            "persons": "SELECT m.period, count(*), bit_xor(hash(x)) FROM persons x JOIN "
            "(SELECT DISTINCT period, person_id FROM sp) m USING (person_id) GROUP BY 1",
        }
        per: dict[str, list[str]] = {}
        for name, sql in parts.items():
            for period, n, h in con.execute(sql).fetchall():
                if period is not None:
                    per.setdefault(period, []).append(f"{name}:{n}:{h}")
        dims = []
        for name in ("facilities", "staff", "catalogue"):
            n, h = con.execute(f"SELECT count(*), bit_xor(hash(x)) FROM {name} x").fetchone()
            dims.append(f"{name}:{n}:{h}")
        own = {p: hashlib.sha256("|".join(sorted(v)).encode()).hexdigest() for p, v in per.items()}
        settled = {p for p, v in per.items() if any(x.startswith("settlements:") for x in v)}
        return own, settled, "|".join(dims)
    finally:
        con.close()


def month_fingerprints(
    ws: Workspace, models: Sequence[Model], findings: pa.Table
) -> dict[str, str]:
    """Fingerprint of every month with settlements (see the module docstring)."""
    own, settled, dims = _own_fingerprints(ws, findings)
    glob = f"{ENGINE_VERSION}|{definitions_hash(models)}|{dims}"
    out = {}
    for p in sorted(settled):
        start = _month_start(p)
        window = [_period(_add_months(start, -k)) for k in range(LOOKBACK_MONTHS, -1, -1)]
        h = hashlib.sha256(glob.encode())
        for w in window:
            h.update(f"{w}={own.get(w, '')};".encode())
        out[p] = h.hexdigest()[:20]
    return out


def _read_state(ws: Workspace) -> dict:
    p = features_path(ws) / STATE_FILE
    if not p.is_file():
        return {"months": {}}
    return json.loads(p.read_text(encoding="utf-8"))


def _write_state(ws: Workspace, state: dict) -> None:
    p = features_path(ws) / STATE_FILE
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, p)


def _rows(ws: Workspace, name: str) -> int:
    return pq.ParquetFile(ws.table_path(name)).metadata.num_rows if ws.has_table(name) else 0


def _inputs(ws: Workspace, target: Sequence[str], findings: pa.Table) -> BuildInputs:
    start = _add_months(_month_start(min(target)), -LOOKBACK_MONTHS)
    end = _add_months(_month_start(max(target)), 1)
    ts = f"TIMESTAMP '{start.isoformat()} 00:00:00'", f"TIMESTAMP '{end.isoformat()} 00:00:00'"
    in_settlements = "settlement_id IN (SELECT settlement_id FROM settlements)"
    filters = {
        "settlements": f"settle_time >= {ts[0]} AND settle_time < {ts[1]}",
        "fee_lines": in_settlements,
        "diagnoses": in_settlements,
        "procedures": in_settlements,
        "trace_scans": f"scan_time >= {ts[0]} AND scan_time < {ts[1]}",
    }
    months = []
    d = start
    while d < end:
        nxt = _add_months(d, 1)
        months.append({
            "period": _period(d),
            "prev_period": _period(_add_months(d, -1)),
            "month_start": d,
            "month_end": date.fromordinal(nxt.toordinal() - 1),
            "days_in_month": (nxt - d).days,
        })
        d = nxt
    months_t = pa.Table.from_pylist(
        months,
        schema=pa.schema([
            ("period", pa.string()),
            ("prev_period", pa.string()),
            ("month_start", pa.date32()),
            ("month_end", pa.date32()),
            ("days_in_month", pa.int64()),
        ]),
    )
    meta = pa.table({
        "has_fee_lines": [_rows(ws, "fee_lines") > 0],
        "has_catalogue": [_rows(ws, "catalogue") > 0 and _rows(ws, "fee_lines") > 0],
        "has_trace_scans": [_rows(ws, "trace_scans") > 0],
        "has_procedures": [_rows(ws, "procedures") > 0],
    })
    # findings of settlements in the window (and settlement-less findings dated in it)
    con = _con()
    try:
        con.register("f", findings)
        sp = str(ws.table_path("settlements")).replace("'", "''")
        restricted = query_arrow(con, (
            f"SELECT f.* FROM f WHERE f.settlement_id IN (SELECT settlement_id FROM "
            f"read_parquet('{sp}') WHERE settle_time >= {ts[0]} AND settle_time < {ts[1]}) "
            f"OR (f.settlement_id IS NULL AND f.service_date >= DATE '{start}' "
            f"AND f.service_date < DATE '{end}')"
        ))
    finally:
        con.close()
    return BuildInputs(
        workspace=ws,
        start=start,
        end=end,
        filters=filters,
        meta=meta,
        months=months_t,
        rule_findings=restricted,
        periods=tuple(sorted(set(target))),
    )


def _write_partition(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write_parquet(table, tmp)
    os.replace(tmp, path)


def build(
    workspace: Workspace | str | os.PathLike[str],
    backend: str = "duckdb",
    *,
    months: Sequence[str] | None = None,
    full: bool = False,
    features_dir: str | os.PathLike[str] | None = None,
    backend_options: dict[str, object] | None = None,
    register_views: bool = True,
) -> BuildResult:
    """Build the features of a workspace, recomputing only new or changed months.

    ``months`` rebuilds exactly those months (they must have settlements); ``full`` rebuilds
    every month. Returns which months were built, skipped and removed, and rows per subject.
    """
    t0 = time.perf_counter()
    ws = _ws(workspace)
    models = load_models(features_dir)
    outputs = subjects(models)
    findings = read_rule_findings(ws)
    fps = month_fingerprints(ws, models, findings)
    state = _read_state(ws)
    built_before: dict[str, dict] = state.get("months", {})
    out_dir = features_path(ws)

    def complete(p: str) -> bool:
        return all((out_dir / s / f"{p}.parquet").is_file() for s in outputs)

    if months:
        unknown = sorted(set(months) - set(fps))
        if unknown:
            raise FeatureError(
                f"no settlements in month(s) {', '.join(unknown)}; months with data: "
                f"{', '.join(sorted(fps)) or 'none'}"
            )
        target = sorted(set(months))
    elif full:
        target = sorted(fps)
    else:
        target = sorted(
            p for p, fp in fps.items()
            if built_before.get(p, {}).get("fingerprint") != fp or not complete(p)
        )
    removed = sorted(set(built_before) - set(fps))
    result = BuildResult(
        backend=backend,
        months_built=target,
        months_skipped=sorted(set(fps) - set(target)),
        months_removed=removed,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    if target:
        inputs = _inputs(ws, target, findings)
        with get_backend(backend, **(backend_options or {})) as engine:
            engine.prepare(inputs)
            for m in models:
                engine.materialize(m)
            written: dict[str, pa.Table] = {}
            for subject, m in outputs.items():
                table = normalize(engine.fetch(m, target))
                _check_columns(m, table)
                written[subject] = table
        # write only after every subject computed, so a failure leaves old partitions intact
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        for subject, table in written.items():
            periods = table.column("period")
            for p in target:
                part = table.filter(pc.equal(periods, p))
                _write_partition(out_dir / subject / f"{p}.parquet", part)
            result.rows[subject] = table.num_rows
        for p in target:
            built_before[p] = {"fingerprint": fps[p], "built_at": now, "backend": backend}
    for p in removed:
        for s in outputs:
            (out_dir / s / f"{p}.parquet").unlink(missing_ok=True)
        built_before.pop(p, None)
    state = {"months": built_before, "subjects": sorted(outputs), "engine": ENGINE_VERSION}
    _write_state(ws, state)
    if register_views and (target or removed):
        try:
            _register_views(ws, list(outputs))
        except (duckdb.Error, OSError) as e:
            result.warnings.append(f"views in {ws.db_path.name} not updated: {e}")
    result.seconds = time.perf_counter() - t0
    return result


def _check_columns(m: Model, table: pa.Table) -> None:
    want = list(m.output_columns())
    got = table.column_names
    if got != want:
        raise FeatureError(
            f"{m.path.name}: output columns differ from its '-- column' documentation: "
            f"undocumented {sorted(set(got) - set(want))}, missing {sorted(set(want) - set(got))}"
            + ("" if set(got) != set(want) else " (order differs)")
        )


def _register_views(ws: Workspace, names: Sequence[str]) -> None:
    """Views ``features_<subject>`` in the workspace DuckDB file, for SQL users."""
    con = duckdb.connect(str(ws.db_path))
    try:
        for s in names:
            glob = str(features_path(ws) / s / "*.parquet").replace("'", "''")
            con.execute(
                f"CREATE OR REPLACE VIEW features_{s} AS SELECT * FROM read_parquet('{glob}')"
            )
    finally:
        con.close()


def built_months(workspace: Workspace | str | os.PathLike[str]) -> dict[str, dict]:
    """Months built so far with their fingerprint, time and backend."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    return _read_state(ws).get("months", {})


def load(
    workspace: Workspace | str | os.PathLike[str],
    subject: str,
    *,
    months: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Built features of one subject as pandas, optionally for some months or entity ids."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    known = subjects(load_models())
    if subject not in known:
        raise FeatureError(f"unknown subject {subject!r}; known: {', '.join(sorted(known))}")
    files = sorted((features_path(ws) / subject).glob("*.parquet"))
    if months:
        files = [f for f in files if f.stem in set(months)]
    if not files:
        raise FeatureError(
            f"no {subject} features built in {ws.path}"
            + (f" for {', '.join(months)}" if months else "")
            + "; run `fraudscan features build`"
        )
    table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")
    df = table.to_pandas()
    if ids:
        key = known[subject].key
        df = df[df[key].isin(list(ids))].reset_index(drop=True)
    return df
