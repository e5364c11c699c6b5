"""Validation on import: one test per kind of bad input, strict and lenient, plus properties.

Each case edits the tiny world (tests/_tiny.py), imports it strictly into a workspace that already
holds the good world (which must stay unchanged) and leniently into a fresh one (whose rejects
table must hold the row with its reason).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from _tiny import tiny_tables, write_tiny
from fraudscan.cli import app
from fraudscan.errors import DataError
from fraudscan.importers import import_canonical
from fraudscan.validation import (
    Problem,
    ValidationError,
    validate_tables,
    validate_workspace,
)
from fraudscan.workspace import Workspace

Tables = dict[str, pd.DataFrame]


def _set(table: str, row: int, col: str, value: object) -> Callable[[Tables], None]:
    """Edit: put ``value`` into data row ``row`` (1-based) of ``table``."""

    def edit(t: Tables) -> None:
        t[table].loc[row - 1, col] = value

    return edit


def _append_copy(table: str, row: int, **changes: object) -> Callable[[Tables], None]:
    def edit(t: Tables) -> None:
        new = t[table].iloc[[row - 1]].copy()
        for k, v in changes.items():
            new[k] = v
        t[table] = pd.concat([t[table], new], ignore_index=True)

    return edit


@dataclass(frozen=True)
class Case:
    id: str
    edit: Callable[[Tables], None]
    file: str
    row: int | None
    field: str | None
    message: str
    table: str = ""
    schema_level: bool = False
    dependants: tuple[tuple[str, int], ...] = ()
    """Rows (table, row) a lenient import must also reject because they depend on the bad row."""


CASES = [
    Case("missing_required_column",
         lambda t: t.update(settlements=t["settlements"].drop(columns="total_amount")),
         "settlements.csv", None, "total_amount", "required column is missing",
         schema_level=True),
    Case("unknown_column", lambda t: t["persons"].insert(1, "nickname", "x"),
         "persons.csv", None, "nickname", "unknown column", schema_level=True),
    Case("unparseable_date", _set("persons", 2, "birth_date", "1980-13-45"),
         "persons.csv", 2, "birth_date", "cannot read '1980-13-45' as a date",
         dependants=(("settlements", 2), ("diagnoses", 3), ("fee_lines", 3))),
    Case("non_numeric_amount", _set("settlements", 1, "fund_paid", "fifty"),
         "settlements.csv", 1, "fund_paid", "cannot read 'fifty' as a number",
         dependants=(("diagnoses", 1), ("diagnoses", 2), ("procedures", 1), ("fee_lines", 1),
                     ("fee_lines", 2), ("labels", 1))),
    Case("code_not_in_choices", _set("persons", 1, "sex", "M"),
         "persons.csv", 1, "sex", "'M' is not an allowed code (one of 1, 2, 9)",
         dependants=(("settlements", 1), ("fee_lines", 2))),
    Case("duplicate_primary_key", _append_copy("facilities", 1, facility_name="别名医院"),
         "facilities.csv", 3, "facility_id",
         "duplicate key facility_id='F001' (first seen in row 1)"),
    Case("duplicate_row", _append_copy("persons", 1),
         "persons.csv", 3, "person_id", "duplicate row: identical to row 1"),
    Case("dangling_foreign_key", _set("settlements", 2, "person_id", "P999"),
         "settlements.csv", 2, "person_id", "'P999' not found in persons.csv",
         dependants=(("fee_lines", 3), ("trace_scans", 1), ("diagnoses", 3))),
    Case("discharge_before_admission",
         _set("settlements", 1, "discharge_time", "2024-02-28 10:00:00"),
         "settlements.csv", 1, "discharge_time",
         "discharge_time 2024-02-28 10:00:00 is before admission_time 2024-03-01 08:00:00"),
    Case("settled_before_discharge", _set("settlements", 1, "settle_time", "2024-03-04 23:00:00"),
         "settlements.csv", 1, "settle_time", "(settled before discharge)"),
    Case("amounts_not_adding_up", _set("settlements", 2, "cash_paid", "3.5"),
         "settlements.csv", 2, "total_amount",
         "30.00 ≠ fund_paid + account_paid + cash_paid = 28.50",
         dependants=(("fee_lines", 3), ("trace_scans", 1))),
    Case("line_amount_not_qty_times_price", _set("fee_lines", 3, "unit_price", "11"),
         "fee_lines.csv", 3, "amount", "30.00 ≠ qty × unit_price = 3 × 11.00 = 33.00",
         dependants=(("trace_scans", 1),)),
    Case("lines_not_summing_to_settlement",
         lambda t: (_set("fee_lines", 1, "qty", "6")(t), _set("fee_lines", 1, "amount", "60")(t)),
         "settlements.csv", 1, "total_amount",
         "70.00 ≠ sum of its 2 fee line(s) in fee_lines.csv = 80.00",
         dependants=(("fee_lines", 1), ("fee_lines", 2), ("labels", 1))),
    Case("item_code_not_in_catalogue", _set("fee_lines", 2, "item_code", "999999"),
         "fee_lines.csv", 2, "item_code", "'999999' not found in catalogue.csv"),
    Case("item_code_not_valid_on_date", _set("catalogue", 2, "valid_to", "2023-12-31"),
         "fee_lines.csv", 2, "item_code",
         "is valid in catalogue.csv from 2020-01-01 to 2023-12-31, not on 2024-03-02"),
    Case("duplicate_visit_id", _set("settlements", 2, "visit_id", "V1"),
         "settlements.csv", 2, "visit_id", "visit 'V1' has more than one settlement "
         "(also in row 1)"),
    Case("label_for_unknown_entity", _set("labels", 1, "entity_id", "S9"),
         "labels.csv", 1, "entity_id", "settlement 'S9' not found in settlements.csv"),
    Case("negative_amount", _set("catalogue", 1, "unit_price", "-10"),
         "catalogue.csv", 1, "unit_price", "-10 is below the minimum 0",
         dependants=(("fee_lines", 1), ("fee_lines", 3), ("trace_scans", 1),
                     ("stock_movements", 1))),
    Case("empty_required_value", _set("persons", 2, "insured_area", None),
         "persons.csv", 2, "insured_area", "required value is missing"),
    Case("status_to_before_status_from", _set("staff", 2, "status_to", "2022-12-31"),
         "staff.csv", 2, "status_to", "status_to 2022-12-31 is before status_from 2023-01-01"),
    Case("death_before_birth", _set("persons", 1, "death_date", "1949-12-31"),
         "persons.csv", 1, "death_date", "death_date 1949-12-31 is before birth_date"),
    Case("non_integer", _set("diagnoses", 2, "seq", "1.5"),
         "diagnoses.csv", 2, "seq", "cannot read '1.5' as an integer"),
    Case("bad_flag", _set("diagnoses", 1, "is_main", "maybe"),
         "diagnoses.csv", 1, "is_main", "cannot read 'maybe' as a flag"),
]


def _good_workspace(tmp_path: Path) -> Workspace:
    return import_canonical(write_tiny(tmp_path / "good"), tmp_path / "ws")


def _bad_dir(tmp_path: Path, case: Case) -> Path:
    t = tiny_tables()
    case.edit(t)
    return write_tiny(tmp_path / "bad", t)


def _snapshot(ws: Workspace) -> tuple[str, dict]:
    return ws.fingerprint(), ws.metadata()


def _matches(p: Problem, case: Case) -> bool:
    return (p.file, p.row, p.field) == (case.file, case.row, case.field) \
        and case.message in p.message


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_strict_names_file_row_field_and_writes_nothing(
        tmp_path: Path, case: Case) -> None:
    ws = _good_workspace(tmp_path)
    before = _snapshot(ws)
    with pytest.raises(ValidationError) as exc:
        import_canonical(_bad_dir(tmp_path, case), ws.path)
    assert any(_matches(p, case) for p in exc.value.problems), exc.value.problems
    where = f"{case.file}, " + (f"row {case.row}, " if case.row else "") + f"field {case.field}"
    assert where in str(exc.value)
    assert _snapshot(ws) == before
    assert not ws.rejects_dir.exists()
    assert not list(ws.path.glob(".staging-*"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_lenient_rejects_row_with_reason(tmp_path: Path, case: Case) -> None:
    bad = _bad_dir(tmp_path, case)
    if case.schema_level:
        with pytest.raises(ValidationError, match=case.message):
            import_canonical(bad, tmp_path / "ws", lenient=True)
        assert not Workspace(tmp_path / "ws").exists()
        return
    ws = import_canonical(bad, tmp_path / "ws", lenient=True)
    rej = pq.read_table(ws.rejects_dir / "rejects.parquet").to_pandas()
    assert list(rej.columns) == ["table", "file", "row", "field", "reason", "record"]
    hit = rej[(rej.file == case.file) & (rej.row == case.row) & (rej.field == case.field)]
    assert hit.reason.str.contains(case.message, regex=False).any(), rej
    record = json.loads(hit.record.iloc[0])
    assert isinstance(record, dict) and record
    table = hit.table.iloc[0]
    counts = ws.metadata()["import"]["rejected"]
    for dep_table, dep_row in case.dependants:
        assert ((rej.table == dep_table) & (rej.row == dep_row)).any(), (dep_table, dep_row)
    # Exactly the rejected rows are missing from the workspace.
    edited = tiny_tables()
    case.edit(edited)
    for name, df in edited.items():
        assert ws.row_counts().get(name, 0) == len(df) - counts.get(name, 0), name
    assert counts[table] == rej[rej.table == table].row.nunique()


def test_malformed_csv_row(tmp_path: Path) -> None:
    d = write_tiny(tmp_path / "in")
    text = (d / "staff.csv").read_text(encoding="utf-8").splitlines()
    text[2] += ",extra"
    (d / "staff.csv").write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"staff.csv, row 2: malformed CSV row: expected 6 "
                                        r"fields, got 7"):
        import_canonical(d, tmp_path / "ws")
    assert not (tmp_path / "ws").exists()


def test_short_csv_row_names_first_missing_field(tmp_path: Path) -> None:
    d = write_tiny(tmp_path / "in")
    text = (d / "persons.csv").read_text(encoding="utf-8").splitlines()
    text[1] = "P001,1,1950-01-01"
    (d / "persons.csv").write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        import_canonical(d, tmp_path / "ws", lenient=True)
    assert (exc.value.file, exc.value.row, exc.value.field) == \
        ("persons.csv", 1, "insurance_type")


def test_bad_encoding_names_file_row_field(tmp_path: Path) -> None:
    d = write_tiny(tmp_path / "in")
    text = (d / "facilities.csv").read_text(encoding="utf-8")
    (d / "facilities.csv").write_bytes(text.encode("gbk"))
    ws = _good_workspace(tmp_path)
    before = _snapshot(ws)
    with pytest.raises(DataError) as exc:
        import_canonical(d, ws.path)
    assert (exc.value.file, exc.value.row, exc.value.field) == \
        ("facilities.csv", 1, "facility_name")
    assert "not UTF-8" in str(exc.value)
    assert _snapshot(ws) == before


def test_unknown_table_file_fails(tmp_path: Path) -> None:
    d = write_tiny(tmp_path / "in")
    (d / "claims.csv").write_text("a\n1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"claims\.csv: unknown table 'claims'"):
        import_canonical(d, tmp_path / "ws", lenient=True)


def test_unknown_table_in_validate_tables() -> None:
    t = tiny_tables()
    t["claims"] = pd.DataFrame({"a": ["1"]})
    with pytest.raises(ValidationError, match="unknown table 'claims'"):
        validate_tables(t, lenient=True)


def test_error_message_lists_first_20_and_count() -> None:
    t = tiny_tables()
    t["persons"] = pd.concat([t["persons"]] * 15, ignore_index=True)
    with pytest.raises(ValidationError) as exc:
        validate_tables(t, files={"persons": "persons.csv"})
    msg = str(exc.value)
    assert msg.startswith("28 problem(s) in the input, nothing was written (first 20 listed):")
    assert msg.count("\n") == 20
    assert "persons.csv, row 3, field person_id: duplicate row: identical to row 1" in msg


def test_problem_str_format() -> None:
    p = Problem("settlements.csv", 17, "total_amount",
                "120.00 ≠ fund_paid + account_paid + cash_paid = 118.50", "settlements")
    assert str(p) == ("settlements.csv, row 17, field total_amount: 120.00 ≠ fund_paid + "
                      "account_paid + cash_paid = 118.50")


def test_validate_workspace_ok_and_problems(tmp_path: Path) -> None:
    ws = _good_workspace(tmp_path)
    rep = validate_workspace(ws)
    assert rep.ok and rep.row_counts["settlements"] == 2
    runner = CliRunner()
    assert runner.invoke(app, ["validate", str(ws.path)]).exit_code == 0
    s = ws.read_table("settlements")
    s.loc[1, "cash_paid"] = 99.0
    ws.write_tables({"settlements": s}, source="test", replace_all=False)
    rep = validate_workspace(str(ws.path))
    assert not rep.ok
    assert str(rep.problems[0]) == ("tables/settlements.parquet, row 2, field total_amount: "
                                    "30.00 ≠ fund_paid + account_paid + cash_paid = 124.00")
    res = runner.invoke(app, ["validate", str(ws.path)])
    assert res.exit_code == 1
    assert "tables/settlements.parquet, row 2, field total_amount" in res.output


def test_validate_not_a_workspace_exits_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["validate", str(tmp_path / "nope")])
    assert res.exit_code == 2


# ---------------------------------------------------------------------------------------------
# Properties of the parsers
# ---------------------------------------------------------------------------------------------

code = st.text(alphabet=string.digits + "ABX", min_size=1, max_size=8)
day = st.dates(min_value=pd.Timestamp("1900-01-01").date(),
               max_value=pd.Timestamp("2099-12-31").date())


@st.composite
def persons_frames(draw: st.DrawFn) -> pd.DataFrame:
    ids = draw(st.lists(code, min_size=1, max_size=12, unique=True))
    ids = [i for i in ids if i not in ("P001", "P002")] or ["0001"]
    n = len(ids)
    births = draw(st.lists(day, min_size=n, max_size=n))
    return pd.DataFrame({
        "person_id": ids,
        "sex": draw(st.lists(st.sampled_from(["1", "2", "9"]), min_size=n, max_size=n)),
        "birth_date": [b.isoformat() for b in births],
        "insurance_type": draw(st.lists(st.sampled_from(["310", "390", "999"]), min_size=n,
                                        max_size=n)),
        "insured_area": draw(st.lists(code, min_size=n, max_size=n)),
        "death_date": [None] * n,
    }, dtype=object)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(persons_frames())
def test_valid_generated_frame_round_trips(extra: pd.DataFrame) -> None:
    t = tiny_tables()
    t["persons"] = pd.concat([t["persons"], extra], ignore_index=True)
    out = validate_tables(t).tables["persons"].to_pandas()
    assert out["person_id"].tolist() == t["persons"]["person_id"].tolist()
    assert out["insured_area"].tolist() == t["persons"]["insured_area"].tolist()
    assert [d.isoformat() for d in out["birth_date"]] == t["persons"]["birth_date"].tolist()
    # And again from its own typed output: same values.
    t2 = dict(t, persons=out)
    again = validate_tables(t2).tables["persons"].to_pandas()
    pd.testing.assert_frame_equal(again, out)


CORRUPTIBLE = {
    "settlements": ["medical_type", "insurance_type", "admission_time", "total_amount",
                    "fund_paid", "account_paid", "cash_paid", "settle_time"],
    "persons": ["sex", "birth_date", "insurance_type", "death_date"],
    "fee_lines": ["service_time", "qty", "unit_price", "amount"],
    "catalogue": ["item_class", "grade", "unit_price", "trace_required"],
}


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_single_corrupted_cell_is_reported_at_its_row_and_field(data: st.DataObject) -> None:
    table = data.draw(st.sampled_from(sorted(CORRUPTIBLE)))
    col = data.draw(st.sampled_from(CORRUPTIBLE[table]))
    t = tiny_tables()
    row = data.draw(st.integers(1, len(t[table])))
    junk = data.draw(st.sampled_from(["??", "n/a", "2024-02-30", "1,5", "abc", "-"]))
    t[table].loc[row - 1, col] = junk
    with pytest.raises(ValidationError) as exc:
        validate_tables(t, files={table: f"{table}.csv"})
    located = {(p.file, p.row, p.field) for p in exc.value.problems}
    assert located == {(f"{table}.csv", row, col)}, exc.value.problems
