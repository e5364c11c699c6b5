"""Validation of canonical tables on import and of existing workspaces.

Every importer funnels its tables through :func:`validate_tables`, so the checks of the data model
(``docs/data-model.md``) are written once. The checks are vectorised with pandas: they find the
offending rows with column operations and only build messages for those rows, so a million
settlements validate in seconds.

Row numbers
-----------
``Problem.row`` is the 1-based number of the *data row* in the source file, header not counted:
row 1 is the first record under the header (line 2 of a CSV file), and for Parquet tables it is
the position of the row plus one. Importers that build one canonical table from another file
(e.g. trace scans from the ``drug_trac_codg`` of fee lines) pass the source file's row numbers.

Strict and lenient
------------------
Strict (the default): any problem raises :class:`ValidationError` and nothing is written.
Lenient: each rejected row, and every row that depends on it through a foreign key (transitively:
the fee lines and diagnoses of a rejected settlement, the trace scans of those fee lines, labels
on any of them), is removed and listed in :attr:`ValidationResult.rejects`. Schema-level problems
(an unknown table, a missing required table or column, an unknown column) always raise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from fraudscan import schema
from fraudscan.errors import DataError

MAX_LISTED = 20
"""How many problems the message of a :class:`ValidationError` lists."""

REJECTS_COLUMNS = ("table", "file", "row", "field", "reason", "record")

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}

LABEL_TARGETS: dict[str, tuple[str, str]] = {
    "fee_line": ("fee_lines", "line_id"),
    "settlement": ("settlements", "settlement_id"),
    "person": ("persons", "person_id"),
    "staff": ("staff", "staff_id"),
    "facility": ("facilities", "facility_id"),
}
"""Which table and key a label's ``entity_id`` must exist in (``ring`` ids are free)."""


@dataclass(frozen=True)
class Problem:
    """One problem with the input, located by file, data row (1-based, header not counted) and
    field so that the person who owns the file can fix it."""

    file: str
    row: int | None
    field: str | None
    message: str
    table: str = ""

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"field {self.field}")
        return f"{', '.join(where)}: {self.message}"


class ValidationError(DataError):
    """The input failed validation; ``problems`` holds every problem found."""

    def __init__(self, problems: list[Problem], *, max_listed: int = MAX_LISTED):
        self.problems = problems
        n = len(problems)
        head = f"{n:,} problem(s) in the input, nothing was written"
        if n > max_listed:
            head += f" (first {max_listed} listed)"
        lines = [head + ":"] + [f"  {p}" for p in problems[:max_listed]]
        super().__init__("\n".join(lines))
        first = problems[0] if problems else None
        self.file = first.file if first else None
        self.row = first.row if first else None
        self.field = first.field if first else None


@dataclass
class ValidationResult:
    """Typed, checked tables ready for :meth:`Workspace.write_tables`, and what was refused."""

    tables: dict[str, pa.Table]
    problems: list[Problem]
    rejects: pd.DataFrame
    """One row per problem of a rejected row: table, file, row, field, reason, record (JSON)."""
    rejected_counts: dict[str, int] = field(default_factory=dict)
    """Rows left out per table (lenient mode; tables without rejects are left out)."""

    @property
    def row_counts(self) -> dict[str, int]:
        return {k: v.num_rows for k, v in self.tables.items()}


@dataclass
class ValidationReport:
    """Outcome of re-checking a workspace: ``ok`` is true when there is no problem."""

    problems: list[Problem]
    row_counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------------------------------
# Internal state
# ---------------------------------------------------------------------------------------------


@dataclass
class _Issue:
    """A batch of problems of one check: row positions (0-based) with one message each."""

    table: str
    field: str
    positions: np.ndarray
    messages: list[str]


@dataclass
class _Frame:
    table: schema.Table
    file: str
    raw: pd.DataFrame
    rows: np.ndarray
    fields: dict[str, str]
    typed: dict[str, pd.Series] = field(default_factory=dict)

    def disp(self, col: str) -> str:
        """The field name as the source file spells it."""
        return self.fields.get(col, col)


def _short(v: object, n: int = 40) -> str:
    s = str(v)
    return repr(s if len(s) <= n else s[: n - 1] + "…")


def _fmt(x: float) -> str:
    return f"{x:,.2f}"


def _mismatch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where two amounts differ by more than the schema's absolute and relative tolerance."""
    tol = np.maximum(schema.AMOUNT_TOLERANCE, schema.AMOUNT_REL_TOLERANCE * np.abs(a))
    with np.errstate(invalid="ignore"):
        return np.abs(a - b) > tol


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def _null_mask(s: pd.Series) -> np.ndarray:
    """Missing values: nulls and, for text input, empty strings (CSV has no other null)."""
    m = s.isna().to_numpy()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        m = m | s.eq("").fillna(False).to_numpy(dtype=bool)
    return m


def _as_text(s: pd.Series) -> pd.Series:
    """Text as an object column of ``str`` (nulls kept), the fastest form for parsing."""
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return s
    if s.dtype != object and pd.api.types.is_string_dtype(s.dtype):
        return s.astype(object)
    return s.astype(str).astype(object).where(s.notna(), None)


def _parse_column(
    fr: _Frame, col: schema.Column, issues: list[_Issue]
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Cast one raw column to its schema type; unparseable values become issues and nulls.

    Returns the typed column, where the input was null and where it could not be read.
    """
    n = len(fr.raw)
    if col.name not in fr.raw.columns:
        return pd.Series([None] * n, dtype=object), np.ones(n, dtype=bool), np.zeros(n, bool)
    s = fr.raw[col.name].reset_index(drop=True)
    null = _null_mask(s)
    bad = np.zeros(n, dtype=bool)
    kind = ""
    if null.all():
        empty = {"string": object, "int": "Int64", "float": "float64", "bool": "boolean"}
        out = pd.Series([None] * n, dtype=empty.get(col.dtype, "datetime64[s]"))
    elif col.dtype == "string":
        out = _as_text(s).where(~null, None)
    elif col.dtype in ("int", "float"):
        if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
            v = pd.to_numeric(s, errors="coerce").astype("float64")
        else:
            v = pd.to_numeric(_as_text(s).where(~null, None), errors="coerce").astype("float64")
        vals = v.to_numpy()
        bad = ~null & ~np.isfinite(vals)
        kind = "a number"
        if col.dtype == "int":
            with np.errstate(invalid="ignore"):
                frac = ~bad & ~null & (np.floor(vals) != vals)
            bad |= frac
            kind = "an integer"
            vals = np.where(bad | null, np.nan, vals)
            out = pd.Series(vals).round().astype("Int64")
        else:
            out = pd.Series(np.where(bad | null, np.nan, vals), dtype="float64")
    elif col.dtype == "bool":
        if pd.api.types.is_bool_dtype(s.dtype):
            out = s.astype("boolean")
        else:
            t = _as_text(s).str.strip().str.lower()
            mapped = pd.Series(pd.NA, index=t.index, dtype="boolean")
            mapped[t.isin(_TRUE | {"1.0"}).to_numpy(dtype=bool)] = True
            mapped[t.isin(_FALSE | {"0.0"}).to_numpy(dtype=bool)] = False
            bad = ~null & mapped.isna().to_numpy()
            out = mapped.where(~(bad | null), pd.NA)
        kind = "a flag (1/0, true/false)"
    else:  # date, timestamp
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            v = pd.to_datetime(s)
            if getattr(v.dt, "tz", None) is not None:
                v = v.dt.tz_localize(None)
        else:
            v = pd.to_datetime(_as_text(s).where(~null, None), format="ISO8601",
                               errors="coerce")
        bad = ~null & v.isna().to_numpy()
        if col.dtype == "date":
            v = v.dt.normalize()
            kind = "a date (YYYY-MM-DD)"
        else:
            kind = "a date-time (YYYY-MM-DD HH:MM:SS)"
        out = v.where(~pd.Series(bad), pd.NaT)
    if bad.any():
        pos = np.flatnonzero(bad)
        raw_vals = s.iloc[pos].tolist()
        issues.append(_Issue(fr.table.name, col.name, pos,
                             [f"cannot read {_short(x)} as {kind}" for x in raw_vals]))
    return out, null, bad


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def _schema_problems(frames: dict[str, _Frame], files: Mapping[str, str]) -> list[Problem]:
    out: list[Problem] = []
    for name in schema.REQUIRED_TABLES:
        if name not in frames:
            out.append(Problem(files.get(name, f"{name}"), None, None,
                               f"required table {name} is missing", name))
    for fr in frames.values():
        cols = list(fr.raw.columns)
        for c in cols:
            if c not in fr.table.column_names:
                out.append(Problem(fr.file, None, fr.disp(str(c)),
                                   f"unknown column for table {fr.table.name}", fr.table.name))
        dups = sorted({str(c) for c in cols if cols.count(c) > 1})
        for c in dups:
            out.append(Problem(fr.file, None, fr.disp(c), "column appears more than once",
                               fr.table.name))
        for col in fr.table.columns:
            if col.required and col.name not in cols:
                out.append(Problem(fr.file, None, fr.disp(col.name), "required column is missing",
                                   fr.table.name))
    return out


def _row_checks(fr: _Frame, issues: list[_Issue]) -> None:
    """Types, required values, codes, minimums, primary key and duplicate rows of one table."""
    t = fr.table
    name = t.name
    missing: dict[str, np.ndarray] = {}
    for col in t.columns:
        fr.typed[col.name], absent, unreadable = _parse_column(fr, col, issues)
        missing[col.name] = absent | unreadable
        if col.required and col.name in fr.raw.columns and absent.any():
            pos = np.flatnonzero(absent)
            issues.append(_Issue(name, col.name, pos,
                                 ["required value is missing"] * len(pos)))
        s = fr.typed[col.name]
        if col.choices is not None:
            bad = s.notna().to_numpy() & ~s.isin(col.choices).to_numpy()
            if bad.any():
                pos = np.flatnonzero(bad)
                allowed = ", ".join(col.choices)
                issues.append(_Issue(name, col.name, pos, [
                    f"{_short(v)} is not an allowed code (one of {allowed})"
                    for v in s.iloc[pos]]))
        if col.min_value is not None:
            vals = s.astype("float64").to_numpy()
            with np.errstate(invalid="ignore"):
                bad = vals < col.min_value
            if bad.any():
                pos = np.flatnonzero(bad)
                issues.append(_Issue(name, col.name, pos, [
                    f"{v:g} is below the minimum {col.min_value:g}" for v in vals[pos]]))
    # Primary key and exact duplicate rows.
    key = pd.DataFrame({k: fr.typed[k] for k in t.primary_key})
    key_complete = ~np.logical_or.reduce([missing[k] for k in t.primary_key])
    dup = key.duplicated(keep="first").to_numpy() & key_complete
    if dup.any():
        first_pos = _first_positions(key)
        full = fr.raw.reset_index(drop=True).astype(str)
        same = full.duplicated(keep="first").to_numpy()
        pos = np.flatnonzero(dup)
        msgs = []
        for p in pos:
            f = fr.rows[first_pos[p]]
            if same[p]:
                msgs.append(f"duplicate row: identical to row {f}")
            else:
                kv = ", ".join(f"{fr.disp(k)}={_short(key.iat[p, i])}"
                               for i, k in enumerate(t.primary_key))
                msgs.append(f"duplicate key {kv} (first seen in row {f})")
        issues.append(_Issue(name, t.primary_key[-1], pos, msgs))


def _first_positions(key: pd.DataFrame) -> np.ndarray:
    """For every row, the position of the first row with the same key."""
    codes = key.groupby(list(key.columns), sort=False, dropna=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(codes))).groupby(codes).transform("min").to_numpy()
    return first


def _date_order(fr: _Frame, issues: list[_Issue], early: str, late: str, *,
                by_date: bool = False, what: str = "") -> None:
    a, b = fr.typed[early], fr.typed[late]
    if by_date:
        a, b = a.dt.normalize(), b.dt.normalize()
    bad = (b < a).fillna(False).to_numpy(dtype=bool)
    if bad.any():
        pos = np.flatnonzero(bad)
        fmt = "%Y-%m-%d" if by_date or fr.table.column(late).dtype == "date" \
            else "%Y-%m-%d %H:%M:%S"
        msgs = [
            f"{fr.disp(late)} {b.iat[p]:{fmt}} is before {fr.disp(early)} {a.iat[p]:{fmt}}"
            + (f" ({what})" if what else "")
            for p in pos
        ]
        issues.append(_Issue(fr.table.name, late, pos, msgs))


def _table_checks(fr: _Frame, issues: list[_Issue]) -> None:
    """Checks within one row or one table: date order, amounts, one settlement per visit."""
    name = fr.table.name
    ty = fr.typed
    if name == "persons":
        _date_order(fr, issues, "birth_date", "death_date")
    elif name == "staff":
        _date_order(fr, issues, "status_from", "status_to")
    elif name == "catalogue":
        _date_order(fr, issues, "valid_from", "valid_to")
    elif name == "settlements":
        _date_order(fr, issues, "admission_time", "discharge_time")
        _date_order(fr, issues, "discharge_time", "settle_time", by_date=True,
                    what="settled before discharge")
        parts = ty["fund_paid"].to_numpy() + ty["account_paid"].to_numpy() \
            + ty["cash_paid"].to_numpy()
        total = ty["total_amount"].to_numpy()
        bad = _mismatch(total, parts)
        if bad.any():
            pos = np.flatnonzero(bad)
            f = " + ".join(fr.disp(c) for c in ("fund_paid", "account_paid", "cash_paid"))
            issues.append(_Issue(name, "total_amount", pos, [
                f"{_fmt(total[p])} ≠ {f} = {_fmt(parts[p])}" for p in pos]))
        visit = ty["visit_id"]
        dup = visit.notna().to_numpy() & visit.duplicated(keep="first").to_numpy()
        if dup.any():
            first = _first_positions(visit.to_frame())
            pos = np.flatnonzero(dup)
            issues.append(_Issue(name, "visit_id", pos, [
                f"visit {_short(visit.iat[p])} has more than one settlement "
                f"(also in row {fr.rows[first[p]]})" for p in pos]))
    elif name == "fee_lines":
        qty, price, amount = (ty[c].to_numpy() for c in ("qty", "unit_price", "amount"))
        expect = qty * price
        bad = _mismatch(amount, expect)
        if bad.any():
            pos = np.flatnonzero(bad)
            issues.append(_Issue(name, "amount", pos, [
                f"{_fmt(amount[p])} ≠ {fr.disp('qty')} × {fr.disp('unit_price')} = "
                f"{qty[p]:g} × {_fmt(price[p])} = {_fmt(expect[p])}" for p in pos]))


def _key_index(fr: _Frame, col: str, exclude: np.ndarray | None = None) -> pd.Series:
    """Map key value → source row of its first occurrence (optionally skipping some rows)."""
    s = fr.typed[col]
    rows = pd.Series(fr.rows, index=s.index)
    keep = s.notna().to_numpy()
    if exclude is not None:
        keep = keep & ~exclude
    s, rows = s[keep], rows[keep]
    first = ~s.duplicated(keep="first").to_numpy()
    return pd.Series(rows.to_numpy()[first], index=s.to_numpy()[first])


def _cross_checks(frames: dict[str, _Frame], issues: list[_Issue]) -> None:
    """Checks across tables: foreign keys, fee lines vs settlements and catalogue, labels."""
    for name, fr in frames.items():
        for fk in fr.table.foreign_keys:
            s = fr.typed[fk.column]
            ref = frames.get(fk.ref_table)
            present = s.notna().to_numpy()
            if not present.any():
                continue
            if ref is None:
                bad = present
                where = f"{fk.ref_table} (table not supplied)"
            else:
                bad = present & ~s.isin(ref.typed[fk.ref_column].dropna().unique()).to_numpy()
                where = ref.file
            if bad.any():
                pos = np.flatnonzero(bad)
                ref_field = ref.disp(fk.ref_column) if ref else fk.ref_column
                issues.append(_Issue(name, fk.column, pos, [
                    f"{_short(v)} not found in {where} ({ref_field})" for v in s.iloc[pos]]))
    fl, st, cat = frames.get("fee_lines"), frames.get("settlements"), frames.get("catalogue")
    if fl is not None and st is not None and len(fl.raw):
        sums = pd.DataFrame({"s": fl.typed["settlement_id"], "a": fl.typed["amount"]}) \
            .groupby("s", sort=False)["a"].agg(["sum", "size", "count"])
        # A settlement with an unreadable line amount is not compared (that line is reported).
        sums.loc[sums["count"] < sums["size"], "sum"] = np.nan
        sid = st.typed["settlement_id"]
        line_sum = sid.map(sums["sum"]).to_numpy(dtype="float64")
        line_n = sid.map(sums["size"]).to_numpy(dtype="float64")
        total = st.typed["total_amount"].to_numpy()
        bad = _mismatch(total, line_sum)
        if bad.any():
            pos = np.flatnonzero(bad)
            issues.append(_Issue("settlements", "total_amount", pos, [
                f"{_fmt(total[p])} ≠ sum of its {int(line_n[p])} fee line(s) in {fl.file} = "
                f"{_fmt(line_sum[p])}" for p in pos]))
    if fl is not None and cat is not None and len(fl.raw):
        c = pd.DataFrame({k: cat.typed[k] for k in ("item_code", "valid_from", "valid_to")})
        c = c[c["item_code"].notna()].drop_duplicates("item_code").set_index("item_code")
        code = fl.typed["item_code"]
        day = fl.typed["service_time"].dt.normalize()
        vf, vt = code.map(c["valid_from"]), code.map(c["valid_to"])
        bad = ((day < vf) | (day > vt)).fillna(False).to_numpy(dtype=bool)
        if bad.any():
            pos = np.flatnonzero(bad)
            msgs = []
            for p in pos:
                to = f"{vt.iat[p]:%Y-%m-%d}" if pd.notna(vt.iat[p]) else "open end"
                msgs.append(f"{_short(code.iat[p])} is valid in {cat.file} from "
                            f"{vf.iat[p]:%Y-%m-%d} to {to}, not on {day.iat[p]:%Y-%m-%d}")
            issues.append(_Issue("fee_lines", "item_code", pos, msgs))
    lab = frames.get("labels")
    if lab is not None and len(lab.raw):
        et, eid = lab.typed["entity_type"], lab.typed["entity_id"]
        for etype, (tname, kcol) in LABEL_TARGETS.items():
            sel = (et == etype).fillna(False).to_numpy(dtype=bool) & eid.notna().to_numpy()
            if not sel.any():
                continue
            target = frames.get(tname)
            keys = target.typed[kcol].dropna().unique() if target is not None else []
            bad = sel & ~eid.isin(keys).to_numpy()
            if bad.any():
                pos = np.flatnonzero(bad)
                where = target.file if target is not None else f"{tname} (table not supplied)"
                issues.append(_Issue("labels", "entity_id", pos, [
                    f"{etype} {_short(v)} not found in {where}" for v in eid.iloc[pos]]))


def _propagate(frames: dict[str, _Frame], rejected: dict[str, np.ndarray],
               issues: list[_Issue]) -> None:
    """Lenient mode: reject rows that refer to rejected rows, in dependency order."""
    for name, fr in frames.items():
        refs: list[tuple[str, pd.Series, str, str]] = [
            (fk.column, fr.typed[fk.column], fk.ref_table, fk.ref_column)
            for fk in fr.table.foreign_keys
        ]
        if name == "labels":
            et = fr.typed["entity_type"]
            for etype, (tname, kcol) in LABEL_TARGETS.items():
                refs.append(("entity_id", fr.typed["entity_id"].where(et == etype), tname, kcol))
        for col, s, tname, kcol in refs:
            ref = frames.get(tname)
            if ref is None or not rejected[tname].any():
                continue
            gone = _key_index(ref, kcol)
            kept = _key_index(ref, kcol, exclude=rejected[tname])
            gone = gone[~gone.index.isin(kept.index)]
            rej_rows = _key_index(ref, kcol, exclude=~rejected[tname])
            hit = s.isin(gone.index).to_numpy() & ~rejected[name]
            if hit.any():
                pos = np.flatnonzero(hit)
                issues.append(_Issue(name, col, pos, [
                    f"refers to {_short(v)}, rejected in {ref.file} row {rej_rows.get(v, '?')}"
                    for v in s.iloc[pos]]))
                rejected[name][pos] = True


def _to_arrow(fr: _Frame, keep: np.ndarray) -> pa.Table:
    arrays = []
    for col in fr.table.columns:
        s = fr.typed[col.name][keep]
        if col.dtype == "date":
            arr = pa.array(s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]"),
                           type=pa.date32(), from_pandas=True)
        elif col.dtype == "timestamp":
            arr = pa.array(s.to_numpy(dtype="datetime64[ns]").astype("datetime64[s]"),
                           type=pa.timestamp("s"), from_pandas=True)
        elif col.dtype == "string":
            arr = pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        else:
            arr = pa.array(s, type=col.arrow_type(), from_pandas=True)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=fr.table.arrow_schema())


def _record_json(fr: _Frame, pos: int) -> str:
    rec = fr.raw.iloc[pos]
    out = {fr.disp(str(k)): (None if (v is None or (isinstance(v, float) and np.isnan(v)))
                             else str(v)) for k, v in rec.items()}
    return json.dumps(out, ensure_ascii=False, sort_keys=False)


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def check_tables(
    raw: Mapping[str, pd.DataFrame],
    *,
    files: Mapping[str, str] | None = None,
    fields: Mapping[str, Mapping[str, str]] | None = None,
    rows: Mapping[str, np.ndarray] | None = None,
    lenient: bool = False,
) -> ValidationResult:
    """Parse and check tables without raising for row problems (see :func:`validate_tables`).

    Schema-level problems raise :class:`ValidationError` whatever the mode.
    """
    files = dict(files or {})
    unknown = [n for n in raw if n not in schema.TABLES]
    if unknown:
        raise ValidationError([
            Problem(files.get(n, n), None, None,
                    f"unknown table {n!r}; known tables: {', '.join(schema.TABLES)}", n)
            for n in unknown])
    frames: dict[str, _Frame] = {}
    for name in schema.TABLES:
        if name not in raw:
            continue
        df = raw[name]
        r = np.asarray(rows[name]) if rows and name in rows else np.arange(1, len(df) + 1)
        frames[name] = _Frame(schema.TABLES[name], files.get(name, name), df, r,
                              dict((fields or {}).get(name, {})))
        files.setdefault(name, name)
    fatal = _schema_problems(frames, files)
    if fatal:
        raise ValidationError(fatal)
    issues: list[_Issue] = []
    for fr in frames.values():
        _row_checks(fr, issues)
        _table_checks(fr, issues)
    _cross_checks(frames, issues)
    rejected = {n: np.zeros(len(fr.raw), dtype=bool) for n, fr in frames.items()}
    for iss in issues:
        rejected[iss.table][iss.positions] = True
    if lenient:
        _propagate(frames, rejected, issues)
    order = {n: i for i, n in enumerate(schema.TABLES)}
    flat: list[tuple[int, int, int, Problem, int]] = []
    for k, iss in enumerate(issues):
        fr = frames[iss.table]
        for p, msg in zip(iss.positions.tolist(), iss.messages, strict=True):
            flat.append((order[iss.table], int(fr.rows[p]), k,
                         Problem(fr.file, int(fr.rows[p]), fr.disp(iss.field), msg, iss.table),
                         p))
    flat.sort(key=lambda x: x[:3])
    problems = [x[3] for x in flat]
    recs = [{"table": pr.table, "file": pr.file, "row": pr.row, "field": pr.field,
             "reason": pr.message, "record": _record_json(frames[pr.table], p)}
            for *_, pr, p in flat] if lenient else []
    rejects = pd.DataFrame(recs, columns=list(REJECTS_COLUMNS))
    tables = {n: _to_arrow(fr, ~rejected[n]) for n, fr in frames.items()}
    counts = {n: int(m.sum()) for n, m in rejected.items() if m.any()} if lenient else {}
    return ValidationResult(tables=tables, problems=problems, rejects=rejects,
                            rejected_counts=counts)


def validate_tables(
    raw: dict[str, pd.DataFrame],
    *,
    files: dict[str, str] | None = None,
    lenient: bool = False,
    fields: Mapping[str, Mapping[str, str]] | None = None,
    rows: Mapping[str, np.ndarray] | None = None,
) -> ValidationResult:
    """Parse raw tables (text from CSV or typed values) to the schema types and check them.

    ``files`` names the source file of each table for messages; ``fields`` maps a table's
    canonical column names to the names its source file uses (NHSA imports); ``rows`` gives the
    source row number of each row where it is not simply position + 1. Strict mode raises
    :class:`ValidationError` on any problem; lenient mode drops the bad rows and their dependants
    and returns them in ``rejects``.
    """
    result = check_tables(raw, files=files, fields=fields, rows=rows, lenient=lenient)
    if result.problems and not lenient:
        raise ValidationError(result.problems)
    return result


def validate_workspace(path_or_ws: str | os.PathLike[str] | object) -> ValidationReport:
    """Re-check the Parquet tables of a workspace with the same checks as an import."""
    from fraudscan.workspace import TABLES_DIR, Workspace

    ws = path_or_ws if isinstance(path_or_ws, Workspace) else Workspace(
        Path(path_or_ws))  # type: ignore[arg-type]
    ws.require()
    raw = {n: ws.read_table(n) for n in ws.present_tables()}
    files = {n: f"{TABLES_DIR}/{n}.parquet" for n in raw}
    try:
        result = check_tables(raw, files=files)
    except ValidationError as e:
        return ValidationReport(problems=e.problems, row_counts=ws.row_counts())
    return ValidationReport(problems=result.problems, row_counts=ws.row_counts())


def write_rejects(ws_path: Path, rejects: pd.DataFrame) -> Path | None:
    """Stage the rejects table next to its final place; returns the staged file (or None)."""
    if rejects.empty:
        return None
    d = ws_path / "rejects"
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".rejects-{os.getpid()}.parquet.tmp"
    t = pa.Table.from_pandas(rejects.astype({"row": "Int64"}), preserve_index=False)
    import pyarrow.parquet as pq

    pq.write_table(t, tmp, compression="zstd")
    return tmp
