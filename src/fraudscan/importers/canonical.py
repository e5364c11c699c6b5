"""Import a directory of canonical files (``TABLE.csv`` or ``TABLE.parquet``)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa

from fraudscan import schema
from fraudscan.errors import DataError
from fraudscan.importers._common import ImportReport, Step, _noop, land, read_table_file
from fraudscan.workspace import Workspace, write_parquet

SUFFIXES = (".csv", ".parquet")


def find_canonical_files(directory: Path) -> dict[str, Path]:
    """Map table name → file; other tables' names, or a table given twice, are errors."""
    if not directory.is_dir():
        raise DataError(f"{directory} is not a directory")
    found: dict[str, Path] = {}
    for p in sorted(directory.iterdir()):
        if p.suffix not in SUFFIXES or not p.is_file() or p.name.startswith("."):
            continue
        name = p.stem
        if name not in schema.TABLES:
            raise DataError(f"unknown table {name!r}; canonical files are named "
                            f"TABLE.csv or TABLE.parquet with TABLE one of "
                            f"{', '.join(schema.TABLES)}", file=p.name)
        if name in found:
            raise DataError(f"table {name} is given twice ({found[name].name} and {p.name})",
                            file=p.name)
        found[name] = p
    missing = [n for n in schema.REQUIRED_TABLES if n not in found]
    if missing:
        raise DataError(f"required table(s) missing: {', '.join(missing)} "
                        f"(expected {missing[0]}.csv or {missing[0]}.parquet)",
                        file=str(directory))
    return found


def import_canonical(
    directory: str | os.PathLike[str],
    out: str | os.PathLike[str],
    lenient: bool = False,
    *,
    step: Step = _noop,
) -> Workspace:
    """Validate canonical files and write them to workspace ``out`` in one atomic step.

    CSV is read as text (codes keep their leading zeros; empty field = null); Parquet keeps its
    types and is cast to the schema the same way.
    """
    directory = Path(directory)
    found = find_canonical_files(directory)
    raw: dict[str, pd.DataFrame] = {}
    for name, path in found.items():
        step(f"reading {path.name}")
        raw[name] = read_table_file(path)
    files = {n: p.name for n, p in found.items()}
    report = ImportReport(source=f"canonical:{directory.resolve()}", files=files)
    return land(raw, out, source=report.source, report=report, lenient=lenient, files=files,
                step=step)


def _csv_frame(t: pa.Table, table: schema.Table) -> pd.DataFrame:
    """A canonical table as text in the canonical CSV conventions (ISO dates, true/false)."""
    df = t.to_pandas()
    for col in table.columns:
        s = df[col.name]
        if col.dtype == "date":
            df[col.name] = pd.to_datetime(s).dt.strftime("%Y-%m-%d")
        elif col.dtype == "timestamp":
            df[col.name] = pd.to_datetime(s).dt.strftime("%Y-%m-%d %H:%M:%S")
        elif col.dtype == "bool":
            df[col.name] = s.map({True: "true", False: "false"})
        elif col.dtype == "int":
            df[col.name] = s.astype("Int64")
    return df


def export_canonical(
    workspace: str | os.PathLike[str] | Workspace,
    directory: str | os.PathLike[str],
    fmt: str = "csv",
) -> dict[str, Path]:
    """Write a workspace's tables as canonical files that :func:`import_canonical` reads back.

    Each file is written under a temporary name and renamed, so no half-written file is left.
    """
    if fmt not in ("csv", "parquet"):
        raise DataError(f"unknown format {fmt!r}; use csv or parquet")
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.require()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name in ws.present_tables():
        t = ws.read_arrow(name)
        final = directory / f"{name}.{fmt}"
        tmp = directory / f".{name}.{fmt}.tmp"
        if fmt == "csv":
            _csv_frame(t, schema.TABLES[name]).to_csv(tmp, index=False, encoding="utf-8")
        else:
            write_parquet(t, tmp)
        os.replace(tmp, final)
        written[name] = final
    return written
