"""Tiny hand-made worlds for the screening-model and graph tests.

:class:`World` writes canonical tables with a few honest patients as background; each
``scenario_*`` function adds one fraud pattern (``positive=True``) or its near miss
(``positive=False``) and returns the world plus the settlement ids a detector must report.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from fraudscan.workspace import Workspace

D0 = date(2025, 3, 3)  # a Monday

CATALOGUE = [
    # code, class, price, extra
    ("BED01", "bed", 50.0, {}),
    ("NUR01", "nursing", 30.0, {}),
    ("CON01", "consultation", 20.0, {}),
    ("LAB01", "lab", 80.0, {}),
    ("LAB02", "lab", 120.0, {}),
    *[(f"LAB{k:02d}", "lab", 30.0 + 5 * k, {}) for k in range(3, 10)],
    ("IMG01", "imaging", 300.0, {}),
    ("IMG02", "imaging", 500.0, {}),
    ("DRG01", "western_drug", 15.0, {"trace_required": True, "resale_prone": True,
                                     "drug_group": "A10"}),
    ("DRG02", "western_drug", 8.0, {"drug_group": "C09"}),
    ("DRG03", "western_drug", 40.0, {"drug_group": "J01"}),
    ("DRG04", "western_drug", 25.0, {"drug_group": "N02"}),
    ("TCM01", "patent_tcm", 30.0, {}),
    ("TCM02", "patent_tcm", 12.0, {}),
    ("TRT01", "treatment", 100.0, {}),
    ("TRT02", "treatment", 60.0, {}),
    ("SUR01", "surgery", 2000.0, {}),
    ("CNS01", "consumable", 10.0, {}),
    ("REH01", "rehabilitation", 60.0, {"max_qty_per_day": 1.0}),
    ("REH02", "rehabilitation", 40.0, {"max_qty_per_day": 1.0}),
    ("REH03", "rehabilitation", 45.0, {"max_qty_per_day": 1.0}),
    ("REH04", "rehabilitation", 50.0, {"max_qty_per_day": 1.0}),
    ("REH05", "rehabilitation", 55.0, {"max_qty_per_day": 1.0}),
    ("DIA01", "dialysis", 400.0, {}),
]
PRICE = {c: p for c, _, p, _ in CATALOGUE}

FACILITIES = [
    # id, type, level, beds
    ("H1", "general_hospital", 3, 200),
    ("H2", "township_health_centre", 1, 10),
    ("H3", "general_hospital", 2, 80),
    ("C1", "community_health_centre", 1, 0),
    ("C2", "village_clinic", 0, 0),
    ("C3", "community_health_centre", 1, 0),
    ("C4", "village_clinic", 0, 0),
    ("P1", "retail_pharmacy", 0, 0),
    ("P2", "retail_pharmacy", 0, 0),
    ("D1", "dialysis_centre", 1, 0),
    ("R1", "rehabilitation_centre", 1, 20),
]

TREATED_DAY = [("BED01", 1), ("NUR01", 1), ("DRG03", 2), ("TRT01", 1)]
"""An honest inpatient day: bed, nursing, antibiotics, treatment."""


def at(d: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, minute)


@dataclass
class World:
    """Accumulates rows of the canonical tables and writes them as a workspace."""

    persons: list[dict] = field(default_factory=list)
    staff: list[dict] = field(default_factory=list)
    settlements: list[dict] = field(default_factory=list)
    diagnoses: list[dict] = field(default_factory=list)
    fee_lines: list[dict] = field(default_factory=list)
    trace_scans: list[dict] = field(default_factory=list)
    stock: list[dict] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        for fid, *_ in FACILITIES:
            self.staff.append({"staff_id": f"DR{fid}", "facility_id": fid, "role": "doctor",
                               "qualification_status": "active"})
        for i in range(12):  # honest background: one ordinary stay and visits each
            p = self.person(village=f"V{i % 4}", employer=f"E{i % 3}")
            self.stay(p, "H1", D0 + timedelta(days=3 * i), 5, "J18", TREATED_DAY)
            self.visit(p, "C1", at(D0 + timedelta(days=40 + i), 9 + i % 8), "I10",
                       [("DRG02", 10)])

    def nid(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):05d}"

    def person(self, *, village: str | None = None, employer: str | None = None,
               death: date | None = None, birth: date = date(1955, 5, 1)) -> str:
        pid = self.nid("PS")
        self.persons.append({"person_id": pid, "sex": "1", "birth_date": birth,
                             "insurance_type": "390", "insured_area": "640100",
                             "village": village, "employer": employer, "death_date": death})
        return pid

    def _settle(self, pid: str, fid: str, mtype: str, t0: datetime, t1: datetime, dx: str,
                total: float, **extra: object) -> str:
        sid = self.nid("S")
        fund = round(total * 0.7, 2)
        row = {"settlement_id": sid, "visit_id": "V" + sid, "person_id": pid, "facility_id": fid,
               "medical_type": mtype, "insurance_type": "390", "admission_time": t0,
               "discharge_time": t1, "settle_time": t1, "main_diagnosis": dx,
               "attending_staff_id": extra.pop("staff", f"DR{fid}"), "total_amount": total,
               "fund_paid": fund, "account_paid": 0.0, "cash_paid": round(total - fund, 2)}
        row.update(extra)
        self.settlements.append(row)
        self.diagnoses.append({"settlement_id": sid, "seq": 1, "diag_code": dx, "is_main": True})
        return sid

    def _line(self, sid: str, t: datetime, code: str, qty: float, **extra: object) -> str:
        lid = self.nid("L")
        self.fee_lines.append({"line_id": lid, "settlement_id": sid, "service_time": t,
                               "item_code": code, "qty": qty, "unit_price": PRICE[code],
                               "amount": round(qty * PRICE[code], 2), **extra})
        return lid

    def stay(self, pid: str, fid: str, adm: date, los: int, dx: str,
             day_items: list[tuple[str, float]] | None = None,
             days: list[list[tuple[str, float]]] | None = None, **extra: object) -> str:
        """An inpatient stay of ``los`` nights billing ``day_items`` every day (or ``days``)."""
        plan = days if days is not None else [day_items or TREATED_DAY] * los
        total = sum(PRICE[c] * q for items in plan for c, q in items)
        sid = self._settle(pid, fid, "21", at(adm, 10), at(adm + timedelta(days=los), 10), dx,
                           round(total, 2), **extra)
        for k, items in enumerate(plan):
            for code, qty in items:
                self._line(sid, at(adm + timedelta(days=k), 11), code, qty)
        return sid

    def visit(self, pid: str, fid: str, t: datetime, dx: str, items: list[tuple[str, float]],
              mtype: str = "11", total: float | None = None, **extra: object) -> str:
        amt = sum(PRICE[c] * q for c, q in items)
        sid = self._settle(pid, fid, mtype, t, t + timedelta(minutes=10), dx,
                           round(total if total is not None else amt, 2), **extra)
        for code, qty in items:
            self._line(sid, t, code, qty, days_supply=int(qty * 3) if code.startswith("DRG")
                       else None)
        return sid

    def label(self, entity_type: str, entity_id: str, scenario: str, is_fraud: bool = True,
              group_id: str | None = None) -> None:
        self.labels.append({"entity_type": entity_type, "entity_id": entity_id,
                            "scenario": scenario, "is_fraud": is_fraud, "source": "synthetic",
                            "group_id": group_id})

    def write(self, path: Path, *, fee_lines: bool = True) -> Workspace:
        cat = pd.DataFrame([{"item_code": c, "item_name": c, "item_class": k, "grade": "A",
                             "unit_price": p, "valid_from": date(2020, 1, 1), **x}
                            for c, k, p, x in CATALOGUE])
        fac = pd.DataFrame([{"facility_id": f, "facility_name": f, "facility_type": t,
                             "level": lv, "beds": b or None} for f, t, lv, b in FACILITIES])
        tables: dict[str, pd.DataFrame] = {
            "persons": pd.DataFrame(self.persons),
            "facilities": fac,
            "staff": pd.DataFrame(self.staff),
            "catalogue": cat,
            "settlements": pd.DataFrame(self.settlements),
            "diagnoses": pd.DataFrame(self.diagnoses),
            "labels": pd.DataFrame(self.labels, columns=["entity_type", "entity_id", "scenario",
                                                         "is_fraud", "source", "group_id"]),
        }
        if fee_lines:
            tables["fee_lines"] = pd.DataFrame(self.fee_lines)
            if self.trace_scans:
                tables["trace_scans"] = pd.DataFrame(self.trace_scans)
        if self.stock:
            tables["stock_movements"] = pd.DataFrame(self.stock)
        ws = Workspace(path)
        ws.write_tables(tables, source="test")
        return ws


# -------------------------------------------------------------------------------------------
# One function per scenario: (world, settlement ids the detector must report)
# -------------------------------------------------------------------------------------------

def scenario_phantom_bed(w: World, positive: bool) -> list[str]:
    p = w.person()
    idle = [("BED01", 1), ("NUR01", 1)]
    days = [TREATED_DAY, TREATED_DAY] + [idle if positive else TREATED_DAY] * 8
    return [w.stay(p, "H3", D0, 10, "M54", days=days)]


def scenario_fake_admission(w: World, positive: bool) -> list[str]:
    out = []
    hotel = [("BED01", 1), ("NUR01", 1), ("CON01", 1)]
    for i in range(4):
        p = w.person(village="VX")
        items = hotel if positive else [*hotel, ("DRG03", 3), ("TRT01", 2)]
        out.append(w.stay(p, "H2", D0 + timedelta(days=i), 5, "M47", items))
    return out


def scenario_split_admission(w: World, positive: bool) -> list[str]:
    p = w.person()
    a = w.stay(p, "H1", D0, 6, "I63")
    b = w.stay(p, "H1", D0 + timedelta(days=6 + 5), 6, "I63",
               planned_readmission=not positive)
    return [a, b]


def scenario_low_indication_admission(w: World, positive: bool) -> list[str]:
    p = w.person()
    battery = [(f"LAB{k:02d}", 1) for k in range(1, 10)] + [("IMG01", 1), ("IMG02", 1)]
    hotel = [("BED01", 1), ("NUR01", 1)]
    days = [battery + hotel, hotel, hotel] if positive \
        else [[*battery[:6], *hotel], hotel, hotel]
    return [w.stay(p, "H3", D0, 3, "I10", days=days)]


def scenario_group_admission(w: World, positive: bool) -> list[str]:
    out = []
    for i in range(80):  # H2's ordinary admissions, from many employers, over the year
        w.stay(w.person(employer=f"E{i}"), "H2", D0 + timedelta(days=4 * i), 4, "J20")
    for i in range(6):
        p = w.person(employer="EG")
        gap = 1 if positive else 12
        out.append(w.stay(p, "H2", D0 + timedelta(days=gap * i), 4, "J20"))
    return out


def scenario_templated_items(w: World, positive: bool) -> list[str]:
    out = []
    template = [("BED01", 1), ("NUR01", 1), ("LAB01", 1), ("IMG01", 1), ("DRG01", 1),
                ("DRG02", 1), ("TCM01", 1), ("TRT02", 1)]
    others = ["DRG03", "DRG04", "TRT01", "LAB02", "IMG02", "CNS01", "SUR01", "REH01"]
    for i, dx in enumerate(["K29", "M54", "I10", "J20"]):
        p = w.person()
        items = template if positive else [*template[:4], (others[i], 1), (others[i + 4], 1)]
        out.append(w.stay(p, "H3", D0 + timedelta(days=7 * i), 3, dx, items))
    return out


def scenario_bed_overuse(w: World, positive: bool) -> list[str]:
    out = []
    n = 14 if positive else 6  # H2 has 10 beds
    for _ in range(n):
        p = w.person()
        out.append(w.stay(p, "H2", D0, 25, "J18"))
    return out


def scenario_drug_resale(w: World, positive: bool) -> list[str]:
    p, q = w.person(), w.person()
    s1 = w.visit(p, "P1", at(D0, 10), "E11", [("DRG01", 3)], mtype="41")
    lines = [x for x in w.fee_lines if x["settlement_id"] == s1]
    s2 = w.visit(q, "P2", at(D0 + timedelta(days=20), 10), "E11", [("DRG01", 3)], mtype="41")
    lines2 = [x for x in w.fee_lines if x["settlement_id"] == s2]
    for k in range(3):  # three boxes of one buyer sold again (min_reappearing_codes)
        code = f"8{k:019d}"
        w.trace_scans.append({"scan_id": w.nid("T"), "line_id": lines[0]["line_id"],
                              "facility_id": "P1", "item_code": "DRG01", "trace_code": code,
                              "scan_time": at(D0, 10)})
        w.trace_scans.append({"scan_id": w.nid("T"), "line_id": lines2[0]["line_id"],
                              "facility_id": "P2", "item_code": "DRG01",
                              "trace_code": code if positive else f"9{k:019d}",
                              "scan_time": at(D0 + timedelta(days=20), 10)})
    return [s1]


def scenario_item_switching(w: World, positive: bool) -> list[str]:
    out = []
    for i in range(30):
        p = w.person()
        out.append(w.visit(p, "P1", at(D0 + timedelta(days=i), 10), "E11", [("TCM01", 2)],
                           mtype="41"))
    bought = 20 if positive else 70
    w.stock.append({"movement_id": w.nid("M"), "facility_id": "P1", "item_code": "TCM01",
                    "movement_type": "purchase", "qty": float(bought), "unit_price": 20.0,
                    "movement_time": at(D0 - timedelta(days=5))})
    w.stock.append({"movement_id": w.nid("M"), "facility_id": "P1", "item_code": "TCM02",
                    "movement_type": "purchase", "qty": 60.0, "unit_price": 10.0,
                    "movement_time": at(D0 - timedelta(days=5))})
    return out[:3]


def scenario_doctor_shopping(w: World, positive: bool) -> list[str]:
    p = w.person()
    facs = ["C1", "C2", "C3", "C4", "H3"] if positive else ["C1", "C1", "C2", "C2", "C1"]
    return [w.visit(p, f, at(D0 + timedelta(days=4 * i), 10), "M54", [("DRG04", 10)])
            for i, f in enumerate(facs)]


def scenario_group_visits(w: World, positive: bool) -> list[str]:
    out = []
    for day in range(10):  # the clinic's ordinary days: two patients a day
        for h in (9, 15):
            out_p = w.person()
            w.visit(out_p, "C2", at(D0 + timedelta(days=day), h), "J06", [("DRG02", 1)])
    people = [w.person(village="VB") for _ in range(12)]
    for month in range(2):  # the same cards, twice
        for i, p in enumerate(people):
            t = at(D0 + timedelta(days=3 + 30 * month), 10, 3 * i) if positive \
                else at(D0 + timedelta(days=i + 30 * month), 11, 0)
            out.append(w.visit(p, "C2", t, "J06", [("DRG02", 1)]))
    return out


def scenario_dialysis_overbilling(w: World, positive: bool) -> list[str]:
    p = w.person()
    sessions = [0, 1, 2, 3, 4] if positive else [0, 2, 4]
    out = []
    for week in range(4):
        for d in sessions:
            out.append(w.visit(p, "D1", at(D0 + timedelta(days=7 * week + d), 8), "N18",
                               [("DIA01", 1)], mtype="14"))
    return out


def scenario_rehab_overbilling(w: World, positive: bool) -> list[str]:
    p = w.person()
    day = [("BED01", 1), ("REH01", 3), ("REH02", 2)] if positive \
        else [("BED01", 1), ("REH01", 1), ("REH02", 1)]
    return [w.stay(p, "R1", D0, 5, "I69", day)]


def scenario_card_cashout(w: World, positive: bool) -> list[str]:
    out = []
    for i in range(12):
        p = w.person()
        for k in range(3):
            total = 200.0 if positive else 187.35
            out.append(w.visit(p, "P2", at(D0 + timedelta(days=i + 40 * k), 14), "R69",
                               [("DRG02", 3)], mtype="41", total=total))
    return out


def scenario_care_after_death(w: World, positive: bool) -> list[str]:
    death = D0 - timedelta(days=30) if positive else D0 + timedelta(days=30)
    p = w.person(death=death)
    return [w.visit(p, "C1", at(D0, 9), "I10", [("DRG02", 10)])]


def scenario_drg_upcoding(w: World, positive: bool) -> list[str]:
    out = []
    for fid, severe_share in (("H1", 0.2), ("H3", 0.25), ("R1", 0.2),
                              ("H2", 0.8 if positive else 0.3)):
        for i in range(10):
            p = w.person()
            suffix = "3" if i < severe_share * 10 else "5"
            sid = w.stay(p, fid, D0 + timedelta(days=i), 4, "J18", drg_code=f"ES2{suffix}")
            if fid == "H2":
                out.append(sid)
    return [s for s in out if any(x["settlement_id"] == s and x["drg_code"].endswith("3")
                                  for x in w.settlements)]


SCENARIOS = {
    name.removeprefix("scenario_"): fn for name, fn in globals().items()
    if name.startswith("scenario_")
}

TEST_CONFIG = {
    "drg_upcoding": {"min_stays": 10},
    "bed_overuse": {"min_patient_days": 10},
    "group_visits": {"min_persons": 8},
}
"""Overrides for worlds this small (peers and volumes are tiny)."""


def ring_world(w: World, positive: bool = True, ring: str = "RING1", n: int = 6,
               village: str = "VR", facility: str = "H2", start: date = D0) -> list[str]:
    """A collusion ring: ``n`` villagers admitted together to ``facility`` three times a year.

    The near miss admits the same villagers at the same facility, but weeks apart.
    """
    people = [w.person(village=village) for _ in range(n)]
    for k in range(3):
        for i, p in enumerate(people):
            gap = (i % 2) if positive else 9 * i
            w.stay(p, facility, start + timedelta(days=60 * k + gap), 4, "M47",
                   [("BED01", 1), ("NUR01", 1), ("CON01", 1)])
    if positive:
        for p in people:
            w.label("person", p, "collusion_ring", group_id=ring)
        w.label("facility", facility, "collusion_ring", group_id=ring)
        w.label("ring", ring, "collusion_ring", group_id=ring)
    return people
