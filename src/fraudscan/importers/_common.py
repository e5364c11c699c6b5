"""Shared by the importers: strict CSV reading and landing validated tables in a workspace."""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from fraudscan.errors import DataError
from fraudscan.validation import ValidationResult, validate_tables, write_rejects
from fraudscan.workspace import Workspace

Step = Callable[[str], None]
"""Progress callback: called with a short description at each step of an import."""


def _noop(_: str) -> None:
    return None


@dataclass
class ImportReport:
    """What an import did, stored under ``import`` in workspace.json and printed by the CLI."""

    source: str
    files: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"source": self.source, "files": self.files, "rows": self.rows,
                "rejected": self.rejected, "ignored_columns": self.ignored_columns}


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _raw_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def _bad_utf8_row(path: Path) -> tuple[int | None, str | None, str]:
    """Find the first data row that is not UTF-8 and its field (only on the error path)."""
    lines = _raw_bytes(path).split(b"\n")
    header = next(csv.reader([lines[0].decode("utf-8", "replace").lstrip("\ufeff")]), [])
    for i, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            text = line.decode("utf-8", "replace")
            cells = next(csv.reader([text]), [])
            col = next((k for k, c in enumerate(cells) if "\ufffd" in c), None)
            fld = header[col].strip() if col is not None and col < len(header) and i else None
            what = f"byte {line[e.start:e.start + 1]!r} at column {e.start + 1}"
            return (i or None), fld, what
    return None, None, "invalid data"


def read_csv_text(path: Path, *, display: str | None = None,
                  na_values: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a UTF-8 CSV with a header row, every column as text, keeping leading zeros.

    Empty fields (and ``na_values``) become nulls. A row with more or fewer fields than the
    header, or bytes that are not UTF-8, raise :class:`DataError` naming the file and data row.
    """
    name = display or path.name
    try:
        with _open_text(path) as f:
            header = next(csv.reader(f), None)
    except UnicodeDecodeError:
        row, fld, what = _bad_utf8_row(path)
        raise DataError(f"not UTF-8 text ({what}); save the file as UTF-8",
                        file=name, row=row, field=fld) from None
    if not header or not any(h.strip() for h in header):
        raise DataError("the file is empty or has no header row", file=name)
    header = [h.strip() for h in header]
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise DataError(f"column(s) {', '.join(dups)} appear more than once in the header",
                        file=name, field=dups[0])
    invalid: list[tuple[int | None, str, str | None]] = []

    def on_invalid(r: pacsv.InvalidRow) -> str:
        # A short row is missing its last fields: name the first one that is absent.
        absent = header[r.actual_columns] if r.actual_columns < len(header) else None
        invalid.append((r.number, f"expected {r.expected_columns} fields, got "
                                  f"{r.actual_columns}", absent))
        return "skip"

    def read(threads: bool) -> pa.Table:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=threads,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid,
                                             newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=True, null_values=["", *na_values],
                quoted_strings_can_be_null=True),
        )

    try:
        t = read(True)
        if invalid and invalid[0][0] is None:
            invalid.clear()
            t = read(False)
    except pa.ArrowInvalid as e:
        msg = str(e)
        if "UTF8" in msg or "utf8" in msg.lower():
            row, fld, what = _bad_utf8_row(path)
            raise DataError(f"not UTF-8 text ({what}); save the file as UTF-8",
                            file=name, row=row, field=fld) from None
        raise DataError(f"malformed CSV: {msg}", file=name) from None
    if invalid:
        number, what, absent = invalid[0]
        # Arrow counts the header as row 1 of the file; data rows are counted without it.
        row = number - 1 if number else None
        more = f" ({len(invalid)} such rows)" if len(invalid) > 1 else ""
        raise DataError(f"malformed CSV row: {what}{more}", file=name, row=row, field=absent)
    df = t.to_pandas().astype(object)
    return df.where(df.notna(), None)


def read_table_file(path: Path, *, display: str | None = None) -> pd.DataFrame:
    """Read ``NAME.csv`` (text) or ``NAME.parquet`` (typed) for validation."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pandas()
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"cannot read Parquet: {e}", file=display or path.name) from None
    return read_csv_text(path, display=display)


def land(
    raw: Mapping[str, pd.DataFrame],
    out: str | os.PathLike[str],
    *,
    source: str,
    report: ImportReport,
    lenient: bool,
    files: Mapping[str, str] | None = None,
    fields: Mapping[str, Mapping[str, str]] | None = None,
    rows: Mapping[str, np.ndarray] | None = None,
    step: Step = _noop,
) -> Workspace:
    """Validate ``raw`` and write it atomically to the workspace ``out`` with its rejects.

    Strict: a problem raises before anything is written. Lenient: the clean rows land and the
    refused ones go to ``rejects/rejects.parquet``; a stale rejects file from an earlier import is
    removed so it never describes other data.
    """
    step("validating")
    result: ValidationResult = validate_tables(
        dict(raw), files=dict(files or {}), lenient=lenient, fields=fields, rows=rows)
    ws = Workspace(out)
    report.rows = result.row_counts
    report.rejected = result.rejected_counts
    step("writing workspace")
    ws.path.mkdir(parents=True, exist_ok=True)
    staged = write_rejects(ws.path, result.rejects)
    final = ws.rejects_dir / "rejects.parquet"
    try:
        ws.write_tables(result.tables, source=source, extra_meta={"import": report.as_dict()})
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    if staged is not None:
        os.replace(staged, final)
    elif final.exists():
        final.unlink()
    return ws
