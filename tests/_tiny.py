# ruff: noqa: E501  (CSV fixtures read best one record per line)
"""A tiny hand-made canonical world (two persons, two facilities, two settlements) for tests.

Written by hand rather than by the synthetic generator so importer tests do not depend on it.
Every table is text, exactly as a CSV reader returns it; the world passes validation.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

TINY_CSV: dict[str, str] = {
    "persons": """person_id,sex,birth_date,insurance_type,insured_area,death_date
P001,1,1950-01-01,310,110101,
P002,2,1980-05-05,390,110102,
""",
    "facilities": """facility_id,facility_name,facility_type,level,admdvs,internet_hospital
F001,城东医院,general_hospital,3,110101,false
F002,康民药房,retail_pharmacy,0,110102,
""",
    "staff": """staff_id,facility_id,role,qualification_status,status_from,status_to
D001,F001,doctor,active,,
D002,F002,pharmacist,active,2023-01-01,2023-06-30
""",
    "catalogue": """item_code,item_name,item_class,grade,unit_price,valid_from,valid_to,trace_required
XL01001,阿莫西林胶囊,western_drug,A,10,2020-01-01,,true
001102000010000,诊察费,consultation,A,20,2020-01-01,2030-12-31,false
""",
    "settlements": """settlement_id,visit_id,person_id,facility_id,medical_type,insurance_type,admission_time,discharge_time,settle_time,main_diagnosis,attending_staff_id,total_amount,fund_paid,account_paid,cash_paid
S1,V1,P001,F001,21,310,2024-03-01 08:00:00,2024-03-05 10:00:00,2024-03-05 11:00:00,I10,D001,70,50,10,10
S2,V2,P002,F002,41,390,2024-03-10 09:00:00,2024-03-10 09:00:00,2024-03-10 09:05:00,J06.9,,30,20,5,5
""",
    "diagnoses": """settlement_id,seq,diag_code,is_main
S1,1,I10,1
S1,2,E11.9,0
S2,1,J06.9,1
""",
    "procedures": """settlement_id,seq,procedure_code,procedure_date,surgeon_staff_id
S1,1,0088.01,2024-03-02,D001
""",
    "fee_lines": """line_id,settlement_id,service_time,item_code,qty,unit_price,amount,staff_id
L1,S1,2024-03-01 09:00:00,XL01001,5,10,50,D001
L2,S1,2024-03-02 09:00:00,001102000010000,1,20,20,D001
L3,S2,2024-03-10 09:00:00,XL01001,3,10,30,D002
""",
    "trace_scans": """scan_id,line_id,facility_id,item_code,trace_code,scan_time
T1,L3,F002,XL01001,81234567890123456789,2024-03-10 09:00:00
""",
    "stock_movements": """movement_id,facility_id,item_code,movement_type,qty,unit_price,movement_time
M1,F002,XL01001,purchase,100,8,2024-01-01 08:00:00
""",
    "labels": """entity_type,entity_id,scenario,is_fraud,amount_at_risk,source,group_id
settlement,S1,phantom_bed,true,70,synthetic,
ring,R1,collusion_ring,true,,synthetic,R1
facility,F001,decoy,false,,synthetic,
""",
}


def tiny_tables() -> dict[str, pd.DataFrame]:
    """The tiny world as text frames (empty field → None), as the CSV reader gives them."""
    out = {}
    for name, text in TINY_CSV.items():
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).astype(object)
        out[name] = df.where(df != "", None)
    return out


def write_tiny(directory: Path, tables: dict[str, pd.DataFrame] | None = None,
               fmt: str = "csv") -> Path:
    """Write the tiny world (or edited tables) as canonical files; returns ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, df in (tables if tables is not None else tiny_tables()).items():
        if fmt == "csv":
            df.to_csv(directory / f"{name}.csv", index=False)
        else:
            df.to_parquet(directory / f"{name}.parquet", index=False)
    return directory
