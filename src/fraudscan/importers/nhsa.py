"""Import national-platform (医疗保障信息平台) style CSV exports with NHSA field names.

One CSV file per interface table (:data:`NHSA_FILES`). Column names are the NHSA fields that
:mod:`fraudscan.schema` records for each canonical column (``Column.nhsa``), so the mapping is
derived from the schema rather than kept as a second list; a canonical column without a national
field is given under its canonical name. Extra NHSA columns are ignored and listed in the import
report; a missing required column fails naming the file and field.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from fraudscan import schema
from fraudscan.errors import DataError
from fraudscan.importers._common import ImportReport, Step, _noop, land, read_csv_text
from fraudscan.workspace import Workspace

NHSA_FILES: dict[str, str] = {
    "persons": "psninfo.csv",
    "facilities": "fixmedins.csv",
    "staff": "doctors.csv",
    "catalogue": "catalogue.csv",
    "settlements": "setlinfo.csv",
    "diagnoses": "diseinfo.csv",
    "procedures": "oprninfo.csv",
    "fee_lines": "feedetail.csv",
    "stock_movements": "stock.csv",
    "labels": "labels.csv",
}
"""Canonical table → NHSA export file (1101, 1201, doctors, 1312, 2207/2304, diseinfo, oprninfo,
2204/2301, 3501-3507, labels). Trace scans come from ``drug_trac_codg`` of ``feedetail.csv``."""

TRACE_FIELD = "drug_trac_codg"
"""Fee-line field holding one or more drug trace codes, ``;``-separated (→ trace_scans)."""

VISIT_FIELD = "mdtrt_id"
"""Fee lines may name their visit (``mdtrt_id``) instead of the settlement (``setl_id``)."""

GRADE_CODES = {"01": "A", "02": "B", "03": "C"}
"""``chrgitm_lv`` dictionary: 01 class A, 02 class B, 03 class C (A/B/C are accepted too)."""


def nhsa_field(col: schema.Column) -> str:
    """The NHSA field name of a canonical column (its canonical name where there is none)."""
    return col.nhsa or col.name


def field_map(table: schema.Table) -> dict[str, str]:
    """Canonical column → NHSA field of one table, checked to be one-to-one."""
    out = {c.name: nhsa_field(c) for c in table.columns}
    seen: dict[str, str] = {}
    for canon, nh in out.items():
        if nh in seen:
            raise AssertionError(f"schema: {table.name}.{canon} and {seen[nh]} share NHSA "
                                 f"field {nh}")
        seen[nh] = canon
    return out


def _rename(df: pd.DataFrame, table: schema.Table, file: str,
            report: ImportReport, extra_known: tuple[str, ...] = ()) -> pd.DataFrame:
    fmap = field_map(table)
    inverse = {nh: canon for canon, nh in fmap.items()}
    ignored = [c for c in df.columns if c not in inverse and c not in extra_known]
    if ignored:
        report.ignored_columns[file] = ignored
    keep = [c for c in df.columns if c in inverse]
    return df[keep].rename(columns=inverse)


def _trace_scans(lines: pd.DataFrame, codes: pd.Series, settlements: pd.DataFrame,
                 rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """One trace-scan row per code in ``drug_trac_codg`` (``;``-separated) of each fee line."""
    has = codes.notna().to_numpy()
    if not has.any():
        return pd.DataFrame(columns=schema.TRACE_SCANS.column_names), np.zeros(0, dtype=int)
    split = codes[has].astype(str).str.split(";")
    pos = np.repeat(np.flatnonzero(has), split.str.len().to_numpy())
    code = pd.Series([c.strip() for parts in split for c in parts], dtype=object)
    nonempty = code.ne("").to_numpy()
    pos, code = pos[nonempty], code[nonempty].reset_index(drop=True)
    k = pd.Series(pos).groupby(pos).cumcount().to_numpy() + 1
    line_id = lines["line_id"].to_numpy(dtype=object)[pos]
    fac = settlements.drop_duplicates("settlement_id").set_index("settlement_id")["facility_id"] \
        if {"settlement_id", "facility_id"} <= set(settlements.columns) else pd.Series(dtype=object)
    sid = lines["settlement_id"].to_numpy(dtype=object)[pos] if "settlement_id" in lines \
        else np.full(len(pos), None, dtype=object)
    out = pd.DataFrame({
        "scan_id": [f"{lid}#{n}" for lid, n in zip(line_id, k, strict=True)],
        "line_id": line_id,
        "facility_id": pd.Series(sid, dtype=object).map(fac).to_numpy(dtype=object),
        "item_code": lines["item_code"].to_numpy(dtype=object)[pos]
        if "item_code" in lines else None,
        "trace_code": code.to_numpy(dtype=object),
        "scan_time": lines["service_time"].to_numpy(dtype=object)[pos]
        if "service_time" in lines else None,
    })
    return out.astype(object).where(out.notna(), None), rows[pos]


def import_nhsa(
    directory: str | os.PathLike[str],
    out: str | os.PathLike[str],
    lenient: bool = False,
    *,
    step: Step = _noop,
) -> Workspace:
    """Map NHSA-style exports onto the canonical tables, validate and write them atomically."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory} is not a directory")
    report = ImportReport(source=f"nhsa:{directory.resolve()}")
    raw: dict[str, pd.DataFrame] = {}
    files: dict[str, str] = {}
    fields: dict[str, dict[str, str]] = {}
    rows: dict[str, np.ndarray] = {}
    for name, fname in NHSA_FILES.items():
        path = directory / fname
        table = schema.TABLES[name]
        if not path.is_file():
            if name in schema.REQUIRED_TABLES:
                raise DataError(f"required file {fname} ({name}) is missing", file=str(directory))
            continue
        step(f"reading {fname}")
        df = read_csv_text(path)
        files[name] = fname
        fields[name] = field_map(table)
        report.files[name] = fname
        if name == "fee_lines":
            trace = df[TRACE_FIELD] if TRACE_FIELD in df.columns else None
            extra = (TRACE_FIELD, VISIT_FIELD) if "setl_id" not in df.columns else (TRACE_FIELD,)
            visit = df[VISIT_FIELD] if VISIT_FIELD in df.columns else None
            df = _rename(df, table, fname, report, extra_known=extra)
            if "settlement_id" not in df.columns and visit is not None:
                by_visit = raw["settlements"].dropna(subset=["visit_id"]) \
                    .drop_duplicates("visit_id").set_index("visit_id")["settlement_id"] \
                    if {"visit_id", "settlement_id"} <= set(raw["settlements"].columns) \
                    else pd.Series(dtype=object)
                mapped = visit.map(by_visit)
                df.insert(1, "settlement_id", mapped.where(mapped.notna(), visit))
                fields[name] = {**fields[name], "settlement_id": VISIT_FIELD}
            raw[name] = df
            if trace is not None:
                scans, scan_rows = _trace_scans(df, trace, raw["settlements"],
                                                np.arange(1, len(df) + 1))
                raw["trace_scans"], rows["trace_scans"] = scans, scan_rows
                files["trace_scans"] = fname
                fields["trace_scans"] = {"line_id": "feedetl_sn",
                                         "facility_id": "fixmedins_code",
                                         "item_code": "med_list_codg",
                                         "trace_code": TRACE_FIELD,
                                         "scan_time": "fee_ocur_time"}
                report.files["trace_scans"] = fname
            continue
        df = _rename(df, table, fname, report)
        if name == "catalogue" and "grade" in df.columns:
            df["grade"] = df["grade"].map(lambda g: GRADE_CODES.get(g, g) if g else g)
        raw[name] = df
    return land(raw, out, source=report.source, report=report, lenient=lenient, files=files,
                fields=fields, rows=rows, step=step)
