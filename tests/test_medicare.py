"""The Medicare provider-fraud importer: mapping details on a hand-made sample, and the required
figures on the real files when ../shared/data is there (they are never copied into the repo)."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudscan.cli import app
from fraudscan.errors import DataError
from fraudscan.importers import import_medicare
from fraudscan.workspace import Workspace

REAL = Path(__file__).parents[1] / "../shared/data/medicare-provider-fraud"

DX = ",".join(f'"ClmDiagnosisCode_{i}"' for i in range(1, 11))
PX = ",".join(f'"ClmProcedureCode_{i}"' for i in range(1, 7))
INPATIENT = (
    '"BeneID","ClaimID","ClaimStartDt","ClaimEndDt","Provider","InscClaimAmtReimbursed",'
    '"AttendingPhysician","OperatingPhysician","OtherPhysician","AdmissionDt",'
    f'"ClmAdmitDiagnosisCode","DeductibleAmtPaid","DischargeDt","DiagnosisGroupCode",{DX},{PX}\n'
    '"B1","C1",2009-04-12,2009-04-18,"PRV1",26000,"PHY1",NA,NA,2009-04-12,"7866",1068,'
    '2009-04-18,"201","0389","4019",NA,NA,NA,NA,NA,NA,NA,NA,7092,NA,NA,NA,NA,NA\n'
    '"B2","C2",2009-08-31,2009-09-02,"PRV1",5000,NA,"PHY2",NA,2009-08-31,"6186",NA,'
    '2009-09-02,"750",NA,"2948",NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA\n'
    '"B2","C3",2009-09-17,2009-09-20,"PRV2",3000,"PHY1","PHY2","PHY3",2009-09-17,"V5789",1068,'
    '2009-09-20,"883","29623",NA,NA,NA,NA,NA,NA,NA,NA,NA,"0331",NA,NA,NA,NA,NA\n'
    '"B3","C4",2009-10-01,2009-10-03,"PRV2",1000,"PHY1",NA,NA,2009-10-01,"486",0,'
    '2009-10-03,"193","486",NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA\n'
)
BENEFICIARY = (
    '"BeneID","DOB","DOD","Gender","Race","RenalDiseaseIndicator","State","County"\n'
    '"B1",1943-01-01,NA,1,1,"0",39,230\n'
    '"B2",1936-09-01,2009-12-01,2,1,"0",5,30\n'
    '"B3",1950-02-01,NA,2,1,"Y",5,1\n'
    '"B4",1960-02-01,NA,1,2,"0",10,200\n'
)
LABELS = "Provider,PotentialFraud\nPRV1,Yes\nPRV2,No\n"


def _write_sample(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    with gzip.open(d / "Train_Inpatientdata-1.csv.gz", "wt", encoding="utf-8") as f:
        f.write(INPATIENT)
    (d / "Train_Beneficiarydata-1.csv").write_text(BENEFICIARY, encoding="utf-8")
    (d / "labels_train.csv").write_text(LABELS, encoding="utf-8")
    return d


def test_medicare_sample_mapping(tmp_path: Path) -> None:
    d = _write_sample(tmp_path / "mc")
    res = CliRunner().invoke(app, ["import", "medicare", str(d), "--out", str(tmp_path / "ws")])
    assert res.exit_code == 0, res.output
    ws = Workspace(tmp_path / "ws")
    assert ws.row_counts()["persons"] == 4
    p = ws.read_table("persons").set_index("person_id")
    assert p.loc["B2", "sex"] == "2" and str(p.loc["B2", "death_date"]) == "2009-12-01"
    assert p.loc["B3", "insured_area"] == "05001"
    assert set(p.insurance_type) == {"999"}
    f = ws.read_table("facilities").set_index("facility_id")
    assert list(f.index) == ["PRV1", "PRV2"]
    assert f.loc["PRV1", "facility_type"] == "general_hospital"
    assert f.loc["PRV2", "admdvs"] == "05" and f.level.isna().all()
    s = ws.read_table("staff").set_index("staff_id")
    assert s.facility_id.to_dict() == {"PHY1": "PRV2", "PHY2": "PRV1", "PHY3": "PRV2"}
    assert set(s.role) == {"doctor"}
    st = ws.read_table("settlements").set_index("settlement_id")
    assert len(st) == 4  # the claim without an attending physician is kept
    assert pd.isna(st.loc["C2", "attending_staff_id"])
    assert st.loc["C2", "cash_paid"] == 0 and st.loc["C2", "total_amount"] == 5000
    assert st.loc["C1", "total_amount"] == 27068 and st.loc["C1", "account_paid"] == 0
    assert st.loc["C1", "main_diagnosis"] == "0389"
    assert st.loc["C2", "main_diagnosis"] == "6186"  # no ClmDiagnosisCode_1: admit dx
    assert st.loc["C1", "drg_code"] == "201" and st.loc["C1", "medical_type"] == "21"
    assert str(st.loc["C1", "settle_time"]) == "2009-04-18 00:00:00"
    dx = ws.read_table("diagnoses")
    assert dx[dx.settlement_id == "C1"].diag_code.tolist() == ["0389", "4019"]
    assert dx[dx.settlement_id == "C2"].seq.tolist() == [2]
    assert dx.is_main.sum() == 3
    px = ws.read_table("procedures").set_index("settlement_id")
    assert px.loc["C3", "procedure_code"] == "0331"
    assert px.loc["C3", "surgeon_staff_id"] == "PHY2"
    lab = ws.read_table("labels").set_index("entity_id")
    assert lab.is_fraud.to_dict() == {"PRV1": True, "PRV2": False}
    assert set(lab.scenario) == {"potential_fraud"} and set(lab.source) == {"external"}
    assert set(lab.entity_type) == {"facility"}
    assert ws.row_counts().get("fee_lines", 0) == 0 and ws.row_counts()["catalogue"] == 0


def test_medicare_bad_amount_is_reported_at_its_row(tmp_path: Path) -> None:
    d = _write_sample(tmp_path / "mc")
    text = INPATIENT.replace('"PRV2",1000,', '"PRV2",lots,')
    with gzip.open(d / "Train_Inpatientdata-1.csv.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    with pytest.raises(DataError, match="row 4, field InscClaimAmtReimbursed: cannot read "
                                        "'lots' as a number"):
        import_medicare(d, tmp_path / "ws")


def test_medicare_missing_file(tmp_path: Path) -> None:
    d = _write_sample(tmp_path / "mc")
    (d / "Train_Beneficiarydata-1.csv").unlink()
    with pytest.raises(DataError, match="Train_Beneficiarydata"):
        import_medicare(d, tmp_path / "ws")


def test_medicare_real_files_figures(tmp_path: Path) -> None:
    if not REAL.is_dir():
        pytest.skip(f"Medicare files not present at {REAL.resolve()} (../shared/data)")
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, ["import", "medicare", str(REAL), "--out", str(tmp_path / "w")])
    elapsed = time.perf_counter() - t0
    assert res.exit_code == 0, res.output
    ws = Workspace(tmp_path / "w")
    n = ws.row_counts()
    assert n["facilities"] == 2_092
    assert n["settlements"] == 40_474
    assert n["persons"] == 138_556
    assert n["labels"] == 1_464
    assert int(ws.read_table("labels").is_fraud.sum()) == 308
    st = ws.read_table("settlements", ["attending_staff_id"])
    assert st.attending_staff_id.isna().sum() == 112  # NA physicians kept as nulls
    dx = ws.read_table("diagnoses", ["diag_code"]).diag_code
    assert dx.str.startswith("0").any()  # leading zeros kept
    assert elapsed < 60, elapsed
