"""A small hand-made world for feature tests: 6 facilities, ~150 persons, a few months of claims.

Each month is generated from its own seed, so a world with one more month has exactly the same
rows for the earlier months (what the incremental-build test needs). It holds the patterns the
features look for: templated stays, readmissions, idle bed days, a settlement burst, duplicate
trace codes, resale-prone drugs and co-visiting pairs.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from fraudscan.workspace import Workspace

FACILITIES = pd.DataFrame({
    "facility_id": ["F1", "F2", "F3", "F4", "PH1", "PH2"],
    "facility_name": ["一院", "二院", "社区", "中医院", "药房一", "药房二"],
    "facility_type": ["general_hospital", "general_hospital", "community_health_centre",
                      "tcm_hospital", "retail_pharmacy", "retail_pharmacy"],
    "level": [3, 2, 1, 2, 0, 0],
    "district": ["A", "A", "B", "B", "A", "B"],
    "beds": [40, 20, 10, None, None, None],
})

STAFF = pd.DataFrame({
    "staff_id": ["D11", "D12", "D21", "D22", "D31", "D41", "P51", "P61"],
    "facility_id": ["F1", "F1", "F2", "F2", "F3", "F4", "PH1", "PH2"],
    "role": ["doctor"] * 6 + ["pharmacist"] * 2,
    "department": ["IM", "SU", "IM", "IM", "GP", "TCM", "PH", "PH"],
    "qualification_status": ["active"] * 8,
})

# item_code, class, price, resale_prone, indications, trace_required
ITEMS = [
    ("W01", "western_drug", 12.0, False, None, True),
    ("W02", "western_drug", 30.0, True, None, True),
    ("W03", "western_drug", 55.0, False, "E11", True),
    ("W04", "western_drug", 8.0, False, None, False),
    ("C01", "patent_tcm", 40.0, False, None, True),
    ("C02", "patent_tcm", 25.0, True, "I10", True),
    ("H01", "herbal_piece", 5.0, False, None, False),
    ("B01", "bed", 60.0, False, None, False),
    ("N01", "nursing", 30.0, False, None, False),
    ("K01", "consultation", 20.0, False, None, False),
    ("L01", "lab", 45.0, False, None, False),
    ("L02", "lab", 80.0, False, None, False),
    ("I01", "imaging", 150.0, False, None, False),
    ("I02", "imaging", 400.0, False, None, False),
    ("T01", "treatment", 70.0, False, None, False),
    ("S01", "surgery", 1500.0, False, None, False),
    ("R01", "rehabilitation", 90.0, False, None, False),
    ("M01", "consumable", 35.0, False, None, False),
    ("M02", "consumable", 600.0, False, None, False),
    ("O01", "other", 10.0, False, None, False),
]
CATALOGUE = pd.DataFrame({
    "item_code": [i[0] for i in ITEMS],
    "item_name": [f"item {i[0]}" for i in ITEMS],
    "item_class": [i[1] for i in ITEMS],
    "grade": ["A"] * len(ITEMS),
    "unit_price": [i[2] for i in ITEMS],
    "resale_prone": [i[3] for i in ITEMS],
    "indications": [i[4] for i in ITEMS],
    "trace_required": [i[5] for i in ITEMS],
    "valid_from": [date(2020, 1, 1)] * len(ITEMS),
})
PRICE = {i[0]: i[2] for i in ITEMS}
DRUGS = ["W01", "W02", "W03", "W04", "C01", "C02", "H01"]
TEMPLATE = ["W03", "C01", "L02", "I02", "T01", "M02", "R01"]
DX = ["I10", "E11.9", "J18.0", "K35.8", "M54.5", "I63.9"]
N_PERSONS = 150


def persons(n: int = N_PERSONS) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "person_id": [f"P{i:04d}" for i in range(n)],
        "sex": rng.choice(["1", "2"], n),
        "birth_date": [date(1935 + int(y), 1 + int(m), 15)
                       for y, m in zip(rng.integers(0, 80, n), rng.integers(0, 12, n),
                                       strict=True)],
        "insurance_type": rng.choice(["310", "390"], n),
        "insured_area": rng.choice(["110101", "110102"], n),
    })


def _month(period: str, seed: int) -> dict[str, list[dict]]:
    """Claims of one month, from a seed derived from the month alone."""
    y, m = (int(x) for x in period.split("-"))
    rng = np.random.default_rng(seed * 1000 + y * 12 + m)
    first = datetime(y, m, 1)
    days = (date(y + m // 12, m % 12 + 1, 1) - date(y, m, 1)).days
    out: dict[str, list[dict]] = {"settlements": [], "fee_lines": [], "diagnoses": [],
                                  "trace_scans": [], "procedures": []}
    k = 0

    def add(person: str, fac: str, staff: str | None, mt: str, adm: datetime, dis: datetime,
            dx: str, lines: list[tuple[str, float, int, datetime]], dway: str = "1",
            settle: datetime | None = None, planned: bool = False) -> None:
        nonlocal k
        k += 1
        sid = f"S{period.replace('-', '')}{k:04d}"
        total = round(sum(PRICE[c] * q for c, q, _, _ in lines), 2)
        fund = round(total * float(rng.uniform(0.5, 0.85)), 2)
        acct = round((total - fund) * 0.3, 2)
        out["settlements"].append({
            "settlement_id": sid, "visit_id": "V" + sid[1:], "person_id": person,
            "facility_id": fac, "medical_type": mt, "insurance_type": "310",
            "admission_time": adm, "discharge_time": dis, "settle_time": settle or dis,
            "main_diagnosis": dx, "attending_staff_id": staff, "discharge_way": dway,
            "drg_code": None, "planned_readmission": planned, "total_amount": total,
            "fund_paid": fund, "account_paid": acct, "cash_paid": round(total - fund - acct, 2),
            "full_self_pay": round(total * 0.05, 2), "out_of_area": bool(rng.random() < 0.1),
        })
        out["diagnoses"].append({"settlement_id": sid, "seq": 1, "diag_code": dx,
                                 "is_main": True})
        for j, (code, qty, supply, when) in enumerate(lines):
            lid = f"{sid}-{j:02d}"
            out["fee_lines"].append({
                "line_id": lid, "settlement_id": sid, "service_time": when, "item_code": code,
                "qty": qty, "unit_price": PRICE[code], "amount": round(PRICE[code] * qty, 2),
                "days_supply": supply if code in DRUGS else None, "staff_id": staff,
            })
            if code in DRUGS and fac.startswith("PH") and rng.random() < 0.8:
                # a few boxes reuse a code seen before: resold drugs
                dup = rng.random() < 0.1
                code_no = f"TC{int(rng.integers(0, 30)):04d}" if dup else f"TC{lid}"
                out["trace_scans"].append({
                    "scan_id": f"X{lid}", "line_id": lid, "facility_id": fac, "item_code": code,
                    "trace_code": code_no, "scan_time": when,
                })

    hospital_staff = {"F1": ["D11", "D12"], "F2": ["D21", "D22"], "F3": ["D31"], "F4": ["D41"]}
    for i in range(28):  # stays
        fac = ["F1", "F1", "F2", "F3", "F4"][i % 5]
        person = f"P{int(rng.integers(0, N_PERSONS)):04d}"
        adm = first + timedelta(days=int(rng.integers(0, days - 10)), hours=9)
        los = int(rng.integers(1, 9))
        dis = adm + timedelta(days=los, hours=1)
        staff = hospital_staff[fac][i % len(hospital_staff[fac])]
        lines = []
        for d in range(los + 1):
            when = adm + timedelta(days=d)
            lines += [("B01", 1, 0, when), ("N01", 1, 0, when)]
            if d % 3 == 0:  # active days; the others are idle bed days
                for code in rng.choice(["W01", "W03", "C01", "L01", "L02", "I01", "T01", "M01"],
                                       3, replace=False):
                    lines.append((str(code), float(rng.integers(1, 4)), 7, when))
        if fac == "F2" and i % 2 == 0:  # templated records
            lines += [(c, 1.0, 5, adm) for c in TEMPLATE]
        add(person, fac, staff, "21", adm, dis, str(rng.choice(DX)), lines,
            dway=str(rng.choice(["1", "1", "1", "2", "3"])))
    for i in range(3):  # readmissions to F1 within 31 days (same person twice in the month)
        person = f"P{i:04d}"
        adm = first + timedelta(days=1 + i, hours=8)
        add(person, "F1", "D11", "21", adm, adm + timedelta(days=2), "I10",
            [("B01", 1, 0, adm), ("K01", 1, 0, adm), ("W01", 2, 10, adm)])
        adm2 = adm + timedelta(days=10)
        add(person, "F1", "D11", "21", adm2, adm2 + timedelta(days=3), "I10",
            [("B01", 1, 0, adm2), ("L01", 1, 0, adm2)], planned=(i == 2))
    for i in range(70):  # outpatient visits
        fac = ["F1", "F2", "F3", "F4"][i % 4]
        person = f"P{int(rng.integers(0, N_PERSONS)):04d}"
        t = first + timedelta(days=int(rng.integers(0, days)), hours=int(rng.integers(8, 17)))
        lines = [("K01", 1, 0, t)] + [
            (str(c), 1.0, 7, t) for c in rng.choice(["W01", "W04", "C02", "L01", "I01", "H01"],
                                                     2, replace=False)]
        add(person, fac, hospital_staff[fac][0], "11", t, t, str(rng.choice(DX)), lines)
    for i in range(40):  # pharmacy purchases
        fac = "PH1" if i % 3 else "PH2"
        person = f"P{int(rng.integers(0, 40)):04d}"
        t = first + timedelta(days=int(rng.integers(0, days)), hours=int(rng.integers(8, 20)))
        lines = [(str(c), float(rng.integers(1, 4)), 30, t)
                 for c in rng.choice(["W02", "C02", "W01", "C01"], 2, replace=False)]
        add(person, fac, "P51" if fac == "PH1" else "P61", "41", t, t, "I10", lines)
    burst = first + timedelta(days=12, hours=10)
    for i in range(8):  # a burst: 8 settlements in 7 minutes at PH1, a pair co-visiting
        t = burst + timedelta(minutes=i)
        add(f"P{100 + i % 2:04d}", "PH1", "P51", "41", t, t, "I10", [("W02", 2.0, 30, t)])
    out["procedures"] = [
        {"settlement_id": s["settlement_id"], "seq": 1, "procedure_code": "0088.01"}
        for s in out["settlements"] if s["medical_type"] == "21"
    ][:5]
    return out


def make_world(
    path: str | Path,
    months: tuple[str, ...] = ("2025-01", "2025-02", "2025-03"),
    *,
    seed: int = 1,
    optional: bool = True,
) -> Workspace:
    """Write the world for ``months`` to ``path``; without ``optional`` it is Medicare-like
    (no fee lines, trace scans, procedures or catalogue rows)."""
    parts: dict[str, list[dict]] = {}
    for p in months:
        for name, rows in _month(p, seed).items():
            parts.setdefault(name, []).extend(rows)
    tables: dict[str, pd.DataFrame] = {
        "persons": persons(),
        "facilities": FACILITIES,
        "staff": STAFF,
        "catalogue": CATALOGUE if optional else CATALOGUE.iloc[0:0],
        "settlements": pd.DataFrame(parts["settlements"]),
        "diagnoses": pd.DataFrame(parts["diagnoses"]),
    }
    if optional:
        for name in ("fee_lines", "trace_scans", "procedures"):
            tables[name] = pd.DataFrame(parts[name])
    ws = Workspace(path)
    ws.write_tables(tables, source="test")
    return ws


def write_rule_findings(ws: Workspace, every: int = 7) -> pd.DataFrame:
    """Put a ``rule_findings`` table (as the rule engine writes it) in the workspace DuckDB file."""
    s = ws.read_table("settlements")
    hit = s.iloc[::every]
    df = pd.DataFrame({
        "rule_id": ["R01" if i % 2 else "R07" for i in range(len(hit))],
        "rule_version": 1,
        "action": "warn",
        "severity": "suspicious",
        "settlement_id": hit["settlement_id"].to_numpy(),
        "line_id": None,
        "person_id": hit["person_id"].to_numpy(),
        "facility_id": hit["facility_id"].to_numpy(),
        "staff_id": hit["attending_staff_id"].to_numpy(),
        "service_date": pd.to_datetime(hit["settle_time"]).dt.date.to_numpy(),
        "amount": (hit["total_amount"] * 0.1).round(2).to_numpy(),
        "message": "test finding",
    })
    con = duckdb.connect(str(ws.db_path))
    try:
        con.register("df", df)
        con.execute("CREATE OR REPLACE TABLE rule_findings AS SELECT * FROM df")
    finally:
        con.close()
    return df
