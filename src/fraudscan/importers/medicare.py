"""Import the Medicare "Healthcare Provider Fraud Detection" claims (inpatient, labelled).

US data with US codes, mapped onto the canonical tables so the pipeline can be checked on data
nobody on the team generated: providers → facilities, physicians → staff, beneficiaries →
persons, inpatient claims → settlements with their diagnoses and procedures, provider labels →
facility labels. There are no fee lines, trace scans or catalogue rows. ``NA`` means missing;
claims without a physician keep a null doctor rather than being dropped.
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

PATTERNS = {
    "inpatient": ("Train_Inpatientdata*.csv", "Train_Inpatientdata*.csv.gz"),
    "beneficiary": ("Train_Beneficiarydata*.csv", "Train_Beneficiarydata*.csv.gz"),
    "labels": ("labels*.csv", "labels*.csv.gz"),
}
PHYSICIAN_COLUMNS = ("AttendingPhysician", "OperatingPhysician", "OtherPhysician")
N_DIAGNOSES = 10
N_PROCEDURES = 6
SCENARIO = "potential_fraud"
INSURANCE_TYPE = "999"
MEDICAL_TYPE = "21"


def _find(directory: Path, kind: str, required: bool = True) -> Path | None:
    hits = sorted({p for pat in PATTERNS[kind] for p in directory.glob(pat)})
    if not hits:
        if required:
            raise DataError(f"no {' or '.join(PATTERNS[kind])} file found", file=str(directory))
        return None
    if len(hits) > 1:
        raise DataError(f"more than one {kind} file: {', '.join(p.name for p in hits)}",
                        file=str(directory))
    return hits[0]


def _need(df: pd.DataFrame, cols: list[str], file: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"required column(s) missing: {', '.join(missing)}", file=file,
                        field=missing[0])


def _most_common(keys: pd.Series, values: pd.Series) -> pd.Series:
    """For each key, its most frequent value (ties: the smallest value, for determinism)."""
    df = pd.DataFrame({"k": keys, "v": values}).dropna()
    n = df.groupby(["k", "v"], sort=True).size().rename("n").reset_index()
    n = n.sort_values(["k", "n", "v"], ascending=[True, False, True], kind="stable")
    return n.drop_duplicates("k").set_index("k")["v"]


def _long(claims: pd.DataFrame, prefix: str, count: int) -> pd.DataFrame:
    """Wide code columns → one row per present code with its position as ``seq``."""
    parts = []
    for i in range(1, count + 1):
        col = f"{prefix}{i}"
        if col not in claims.columns:
            continue
        sel = claims[col].notna().to_numpy()
        parts.append(pd.DataFrame({"settlement_id": claims["ClaimID"].to_numpy()[sel],
                                   "seq": i, "code": claims[col].to_numpy()[sel],
                                   "row": np.flatnonzero(sel)}))
    return pd.concat(parts, ignore_index=True).sort_values(["row", "seq"], kind="stable")


def import_medicare(
    directory: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    step: Step = _noop,
) -> Workspace:
    """Map the Medicare provider-fraud files in ``directory`` onto workspace ``out``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory} is not a directory")
    ip_path = _find(directory, "inpatient")
    bene_path = _find(directory, "beneficiary")
    label_path = _find(directory, "labels", required=False)
    assert ip_path is not None and bene_path is not None
    step(f"reading {ip_path.name}")
    ip = read_csv_text(ip_path, na_values=("NA",))
    _need(ip, ["BeneID", "ClaimID", "ClaimEndDt", "Provider", "InscClaimAmtReimbursed",
               "AdmissionDt", "DischargeDt", "DeductibleAmtPaid", *PHYSICIAN_COLUMNS],
          ip_path.name)
    step(f"reading {bene_path.name}")
    bene = read_csv_text(bene_path, na_values=("NA",))
    _need(bene, ["BeneID", "DOB", "DOD", "Gender", "State", "County"], bene_path.name)

    step("mapping")
    state = bene["State"].str.zfill(2)
    persons = pd.DataFrame({
        "person_id": bene["BeneID"],
        "sex": bene["Gender"],
        "birth_date": bene["DOB"],
        "insurance_type": INSURANCE_TYPE,
        "insured_area": state + bene["County"].str.zfill(3),
        "death_date": bene["DOD"],
    })
    bene_state = pd.Series(state.to_numpy(), index=bene["BeneID"].to_numpy())
    bene_state = bene_state[~bene_state.index.duplicated()]
    provider_state = _most_common(ip["Provider"], ip["BeneID"].map(bene_state))
    providers = pd.Series(ip["Provider"].dropna().unique()).sort_values(ignore_index=True)
    facilities = pd.DataFrame({
        "facility_id": providers,
        "facility_name": providers,
        "facility_type": "general_hospital",
        "level": None,
        "admdvs": providers.map(provider_state).to_numpy(dtype=object),
    })
    phys = pd.concat([ip[c] for c in PHYSICIAN_COLUMNS], ignore_index=True)
    prov = pd.concat([ip["Provider"]] * len(PHYSICIAN_COLUMNS), ignore_index=True)
    main_facility = _most_common(phys, prov)
    staff = pd.DataFrame({
        "staff_id": main_facility.index.to_numpy(dtype=object),
        "facility_id": main_facility.to_numpy(dtype=object),
        "role": "doctor",
        "qualification_status": "active",
    })
    fund = pd.to_numeric(ip["InscClaimAmtReimbursed"], errors="coerce")
    cash = pd.to_numeric(ip["DeductibleAmtPaid"].fillna("0"), errors="coerce")
    main_dx = ip.get("ClmDiagnosisCode_1")
    if "ClmAdmitDiagnosisCode" in ip:
        main_dx = ip["ClmAdmitDiagnosisCode"] if main_dx is None \
            else main_dx.where(main_dx.notna(), ip["ClmAdmitDiagnosisCode"])
    # Unparseable amounts stay as their text so validation reports them at their row.
    settlements = pd.DataFrame({
        "settlement_id": ip["ClaimID"],
        "visit_id": ip["ClaimID"],
        "person_id": ip["BeneID"],
        "facility_id": ip["Provider"],
        "medical_type": MEDICAL_TYPE,
        "insurance_type": INSURANCE_TYPE,
        "admission_time": ip["AdmissionDt"],
        "discharge_time": ip["DischargeDt"],
        "settle_time": ip["ClaimEndDt"],
        "main_diagnosis": main_dx,
        "drg_code": ip.get("DiagnosisGroupCode"),
        "attending_staff_id": ip["AttendingPhysician"],
        "total_amount": (fund + cash).astype(object).where((fund + cash).notna(), None),
        "fund_paid": fund.astype(object).where(fund.notna(), ip["InscClaimAmtReimbursed"]),
        "account_paid": 0.0,
        "cash_paid": cash.astype(object).where(cash.notna(), ip["DeductibleAmtPaid"]),
    })
    dx = _long(ip, "ClmDiagnosisCode_", N_DIAGNOSES)
    diagnoses = pd.DataFrame({"settlement_id": dx["settlement_id"], "seq": dx["seq"],
                              "diag_code": dx["code"], "is_main": dx["seq"] == 1})
    px = _long(ip, "ClmProcedureCode_", N_PROCEDURES)
    procedures = pd.DataFrame({
        "settlement_id": px["settlement_id"], "seq": px["seq"], "procedure_code": px["code"],
        "surgeon_staff_id": ip["OperatingPhysician"].to_numpy(dtype=object)[px["row"]],
    })
    raw = {"persons": persons, "facilities": facilities, "staff": staff,
           "catalogue": pd.DataFrame(columns=schema.CATALOGUE.column_names),
           "settlements": settlements, "diagnoses": diagnoses, "procedures": procedures}
    files = {"persons": bene_path.name, "facilities": ip_path.name, "staff": ip_path.name,
             "catalogue": "(none)", "settlements": ip_path.name,
             "diagnoses": ip_path.name, "procedures": ip_path.name}
    rows = {"diagnoses": dx["row"].to_numpy() + 1, "procedures": px["row"].to_numpy() + 1,
            # facilities and staff are derived from claims: row = first claim naming them
            "facilities": providers.map(_first_row(ip["Provider"])).to_numpy(),
            "staff": staff["staff_id"].map(_first_row_any(ip)).to_numpy()}
    fields = {
        "persons": {"person_id": "BeneID", "sex": "Gender", "birth_date": "DOB",
                    "insured_area": "State/County", "death_date": "DOD"},
        "facilities": {"facility_id": "Provider"},
        "staff": {"staff_id": "AttendingPhysician/OperatingPhysician/OtherPhysician",
                  "facility_id": "Provider"},
        "settlements": {"settlement_id": "ClaimID", "visit_id": "ClaimID",
                        "person_id": "BeneID", "facility_id": "Provider",
                        "admission_time": "AdmissionDt", "discharge_time": "DischargeDt",
                        "settle_time": "ClaimEndDt", "main_diagnosis": "ClmDiagnosisCode_1",
                        "drg_code": "DiagnosisGroupCode",
                        "attending_staff_id": "AttendingPhysician",
                        "total_amount": "InscClaimAmtReimbursed+DeductibleAmtPaid",
                        "fund_paid": "InscClaimAmtReimbursed", "cash_paid": "DeductibleAmtPaid"},
        "diagnoses": {"settlement_id": "ClaimID", "diag_code": "ClmDiagnosisCode_N"},
        "procedures": {"settlement_id": "ClaimID", "procedure_code": "ClmProcedureCode_N",
                       "surgeon_staff_id": "OperatingPhysician"},
    }
    report = ImportReport(source=f"medicare:{directory.resolve()}",
                          files={"inpatient": ip_path.name, "beneficiary": bene_path.name})
    if label_path is not None:
        step(f"reading {label_path.name}")
        lab = read_csv_text(label_path, na_values=("NA",))
        _need(lab, ["Provider", "PotentialFraud"], label_path.name)
        flag = lab["PotentialFraud"].str.strip().str.lower().map({"yes": "1", "no": "0"})
        raw["labels"] = pd.DataFrame({
            "entity_type": "facility", "entity_id": lab["Provider"], "scenario": SCENARIO,
            # Anything but Yes/No stays as text so validation reports it at its row.
            "is_fraud": flag.where(flag.notna(), lab["PotentialFraud"]),
            "source": "external",
        })
        files["labels"] = label_path.name
        fields["labels"] = {"entity_id": "Provider", "is_fraud": "PotentialFraud"}
        report.files["labels"] = label_path.name
    return land(raw, out, source=report.source, report=report, lenient=False, files=files,
                fields=fields, rows=rows, step=step)


def _first_row(s: pd.Series) -> pd.Series:
    """Value → 1-based data row of its first occurrence."""
    s = s.dropna()
    first = s[~s.duplicated()]
    return pd.Series(first.index.to_numpy() + 1, index=first.to_numpy())


def _first_row_any(ip: pd.DataFrame) -> pd.Series:
    """Physician id → 1-based data row of the first claim naming them in any role."""
    parts = [_first_row(ip[c]) for c in PHYSICIAN_COLUMNS]
    both = pd.concat(parts)
    return both.groupby(level=0).min()
