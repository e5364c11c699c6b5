"""The canonical and NHSA importers end to end through the CLI, and the canonical round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _tiny import tiny_tables, write_tiny
from fraudscan import schema
from fraudscan.cli import app
from fraudscan.importers import import_nhsa
from fraudscan.importers.nhsa import NHSA_FILES, field_map
from fraudscan.validation import ValidationError
from fraudscan.workspace import Workspace

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.output


def _tables(ws: Workspace) -> dict[str, pd.DataFrame]:
    return {n: ws.read_table(n) for n in ws.present_tables()}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_import_canonical_cli(tmp_path: Path, fmt: str) -> None:
    d = write_tiny(tmp_path / "in", fmt=fmt)
    code, out = _invoke("import", "canonical", str(d), "--out", str(tmp_path / "ws"))
    assert code == 0, out
    ws = Workspace(tmp_path / "ws")
    assert ws.row_counts() == {n: len(df) for n, df in tiny_tables().items()}
    assert "settlements" in out and "rejected" in out
    cat = ws.read_table("catalogue").set_index("item_code")
    assert "001102000010000" in cat.index  # leading zeros kept
    proc = ws.read_table("procedures")
    assert proc.procedure_code.tolist() == ["0088.01"]
    s = ws.read_table("settlements")
    assert str(s.admission_time.iloc[0]) == "2024-03-01 08:00:00"
    assert ws.metadata()["source"].startswith("canonical:")


def test_import_canonical_cli_lenient_prints_rejects(tmp_path: Path) -> None:
    t = tiny_tables()
    t["settlements"].loc[0, "cash_paid"] = "11"
    d = write_tiny(tmp_path / "in", t)
    code, out = _invoke("import", "canonical", str(d), "--out", str(tmp_path / "ws"),
                        "--lenient")
    assert code == 0, out
    assert "row(s) rejected" in out
    ws = Workspace(tmp_path / "ws")
    rej = ws.metadata()["import"]["rejected"]
    # the settlement and everything hanging off it: 2 diagnoses, 1 procedure, 2 lines, 1 label
    assert rej == {"settlements": 1, "diagnoses": 2, "procedures": 1, "fee_lines": 2,
                   "labels": 1}
    assert ws.row_counts()["settlements"] == 1


def test_import_canonical_cli_strict_failure_exit_2(tmp_path: Path) -> None:
    t = tiny_tables()
    t["settlements"].loc[1, "cash_paid"] = "3.5"
    d = write_tiny(tmp_path / "in", t)
    code, out = _invoke("import", "canonical", str(d), "--out", str(tmp_path / "ws"))
    assert code == 2
    assert ("settlements.csv, row 2, field total_amount: 30.00 ≠ fund_paid + account_paid + "
            "cash_paid = 28.50") in out
    assert not Workspace(tmp_path / "ws").exists()


def test_missing_required_table(tmp_path: Path) -> None:
    t = tiny_tables()
    del t["diagnoses"]
    d = write_tiny(tmp_path / "in", t)
    code, out = _invoke("import", "canonical", str(d), "--out", str(tmp_path / "ws"))
    assert code == 2 and "diagnoses" in out


def test_export_import_round_trip(tmp_path: Path) -> None:
    d = write_tiny(tmp_path / "in")
    assert _invoke("import", "canonical", str(d), "--out", str(tmp_path / "w1"))[0] == 0
    for fmt in ("csv", "parquet"):
        code, out = _invoke("export", "canonical", str(tmp_path / "w1"),
                            str(tmp_path / f"exp-{fmt}"), "--format", fmt)
        assert code == 0, out
        assert _invoke("import", "canonical", str(tmp_path / f"exp-{fmt}"), "--out",
                       str(tmp_path / f"w-{fmt}"))[0] == 0
        a, b = _tables(Workspace(tmp_path / "w1")), _tables(Workspace(tmp_path / f"w-{fmt}"))
        assert a.keys() == b.keys()
        for name in a:
            pd.testing.assert_frame_equal(a[name], b[name], obj=f"{fmt}:{name}")


def test_help_for_each_command() -> None:
    for cmd in (["import", "canonical"], ["import", "nhsa"], ["import", "medicare"],
                ["export", "canonical"]):
        code, out = _invoke(*cmd, "--help")
        assert code == 0 and "Usage" in out


# ---------------------------------------------------------------------------------------------
# NHSA exports
# ---------------------------------------------------------------------------------------------

NHSA_NAMES = {
    # written out by hand (not derived from the schema) so the test checks the derivation
    "persons": {"person_id": "psn_no", "sex": "gend", "birth_date": "brdy",
                "insurance_type": "insutype", "insured_area": "insuplc_admdvs",
                "death_date": "die_date"},
    "facilities": {"facility_id": "fixmedins_code", "facility_name": "fixmedins_name",
                   "facility_type": "fixmedins_type", "level": "hosp_lv",
                   "admdvs": "medins_admdvs"},
    "staff": {"staff_id": "bilg_dr_codg", "facility_id": "fixmedins_code"},
    "catalogue": {"item_code": "hilist_code", "item_name": "hilist_name",
                  "item_class": "med_chrgitm_type", "grade": "chrgitm_lv",
                  "unit_price": "hilist_pric", "valid_from": "begndate", "valid_to": "enddate"},
    "settlements": {"settlement_id": "setl_id", "visit_id": "mdtrt_id", "person_id": "psn_no",
                    "facility_id": "fixmedins_code", "medical_type": "med_type",
                    "insurance_type": "insutype", "admission_time": "begntime",
                    "discharge_time": "endtime", "settle_time": "setl_time",
                    "main_diagnosis": "dscg_maindiag_code", "attending_staff_id": "atddr_no",
                    "total_amount": "medfee_sumamt", "fund_paid": "fund_pay_sumamt",
                    "account_paid": "acct_pay", "cash_paid": "psn_cash_pay"},
    "diagnoses": {"settlement_id": "setl_id", "seq": "diag_srt_no", "diag_code": "diag_code",
                  "is_main": "maindiag_flag"},
    "procedures": {"settlement_id": "setl_id", "procedure_code": "oprn_oprt_code",
                   "procedure_date": "oprn_oprt_date", "surgeon_staff_id": "oper_dr_code"},
    "fee_lines": {"line_id": "feedetl_sn", "settlement_id": "setl_id",
                  "service_time": "fee_ocur_time", "item_code": "med_list_codg", "qty": "cnt",
                  "unit_price": "pric", "amount": "det_item_fee_sumamt",
                  "staff_id": "bilg_dr_codg"},
    "stock_movements": {"movement_id": "fixmedins_bchno", "facility_id": "fixmedins_code",
                        "item_code": "med_list_codg", "movement_type": "inv_chg_type",
                        "qty": "cnt", "unit_price": "pric", "movement_time": "inv_chg_time"},
    "labels": {},
}


def write_nhsa(d: Path, *, by_visit: bool = False) -> Path:
    """The tiny world as NHSA exports: NHSA names, 01/02 grades, extra columns, trace codes."""
    d.mkdir(parents=True, exist_ok=True)
    t = tiny_tables()
    t["catalogue"]["grade"] = ["01", "02"]
    t["settlements"]["psn_name"] = ["张三", "李四"]  # extra national field: ignored, reported
    t["fee_lines"]["drug_trac_codg"] = [None, None, "81234567890123456789;81234567890123456790"]
    if by_visit:
        t["fee_lines"]["setl_id"] = None
        t["fee_lines"] = t["fee_lines"].drop(columns="settlement_id").drop(columns="setl_id")
        t["fee_lines"]["mdtrt_id"] = ["V1", "V1", "V2"]
    for name, df in t.items():
        if name == "trace_scans":
            continue
        df.rename(columns=NHSA_NAMES[name]).to_csv(d / NHSA_FILES[name], index=False)
    return d


def test_field_map_is_derived_from_schema() -> None:
    for name, names in NHSA_NAMES.items():
        fm = field_map(schema.TABLES[name])
        for canon, nh in names.items():
            assert fm[canon] == nh


@pytest.mark.parametrize("by_visit", [False, True], ids=["setl_id", "mdtrt_id"])
def test_import_nhsa_cli(tmp_path: Path, by_visit: bool) -> None:
    d = write_nhsa(tmp_path / "in", by_visit=by_visit)
    code, out = _invoke("import", "nhsa", str(d), "--out", str(tmp_path / "ws"))
    assert code == 0, out
    assert "ignored columns in setlinfo.csv: psn_name" in out
    ws = Workspace(tmp_path / "ws")
    counts = ws.row_counts()
    assert counts["settlements"] == 2 and counts["fee_lines"] == 3
    assert counts["trace_scans"] == 2
    scans = ws.read_table("trace_scans")
    assert scans.line_id.tolist() == ["L3", "L3"]
    assert scans.facility_id.tolist() == ["F002", "F002"]
    assert scans.trace_code.tolist() == ["81234567890123456789", "81234567890123456790"]
    assert ws.read_table("catalogue").grade.tolist() == ["A", "B"]
    assert ws.read_table("fee_lines").settlement_id.tolist() == ["S1", "S1", "S2"]
    assert ws.metadata()["import"]["ignored_columns"] == {"setlinfo.csv": ["psn_name"]}


def test_nhsa_missing_required_field_names_file_and_field(tmp_path: Path) -> None:
    d = write_nhsa(tmp_path / "in")
    df = pd.read_csv(d / "feedetail.csv", dtype=str)
    df.drop(columns="det_item_fee_sumamt").to_csv(d / "feedetail.csv", index=False)
    with pytest.raises(ValidationError, match=r"feedetail\.csv, field det_item_fee_sumamt: "
                                              r"required column is missing"):
        import_nhsa(d, tmp_path / "ws")


def test_nhsa_bad_value_uses_nhsa_names(tmp_path: Path) -> None:
    d = write_nhsa(tmp_path / "in")
    df = pd.read_csv(d / "setlinfo.csv", dtype=str, keep_default_na=False)
    df.loc[1, "psn_cash_pay"] = "3.5"
    df.to_csv(d / "setlinfo.csv", index=False)
    with pytest.raises(ValidationError) as exc:
        import_nhsa(d, tmp_path / "ws")
    assert str(exc.value.problems[0]) == (
        "setlinfo.csv, row 2, field medfee_sumamt: 30.00 ≠ fund_pay_sumamt + acct_pay + "
        "psn_cash_pay = 28.50")


def test_nhsa_lenient_rejects_trace_scans_of_rejected_line(tmp_path: Path) -> None:
    d = write_nhsa(tmp_path / "in")
    df = pd.read_csv(d / "feedetail.csv", dtype=str, keep_default_na=False)
    df.loc[2, "cnt"] = "x"
    df.to_csv(d / "feedetail.csv", index=False)
    ws = import_nhsa(d, tmp_path / "ws", lenient=True)
    rej = pq.read_table(ws.rejects_dir / "rejects.parquet").to_pandas()
    first = rej.iloc[0]
    assert (first.file, first.row, first.field) == ("feedetail.csv", 3, "cnt")
    scans = rej[rej.table == "trace_scans"]
    assert scans.file.unique().tolist() == ["feedetail.csv"]
    assert scans.row.tolist() == [3, 3]
    assert ws.metadata()["import"]["rejected"] == {"fee_lines": 1, "trace_scans": 2}
    assert json.loads(scans.record.iloc[1])["drug_trac_codg"] == "81234567890123456790"
    assert "trace_scans" not in ws.row_counts() or ws.row_counts()["trace_scans"] == 0


def test_nhsa_missing_required_file(tmp_path: Path) -> None:
    d = write_nhsa(tmp_path / "in")
    (d / "psninfo.csv").unlink()
    code, out = _invoke("import", "nhsa", str(d), "--out", str(tmp_path / "ws"))
    assert code == 2 and "psninfo.csv" in out
