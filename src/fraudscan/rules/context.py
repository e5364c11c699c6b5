"""In-memory claim and reference data for the single-claim path.

The single-claim checker works on plain slotted objects keyed by canonical names (the same names
the batch SQL uses), so the two implementations of a check read alike. Reference data (catalogue,
facilities) are loaded once into dicts keyed by code, which is what keeps a 30-line check far
below a millisecond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from fraudscan import schema


def _none(v: Any) -> Any:
    """pandas / numpy missing values → None."""
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def _date(v: Any) -> date | None:
    v = _none(v)
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    return pd.Timestamp(v).date()


def _int(v: Any) -> int | None:
    v = _none(v)
    return None if v is None else int(v)


def _float(v: Any) -> float | None:
    v = _none(v)
    return None if v is None else float(v)


def _set(v: Any) -> frozenset[str] | None:
    v = _none(v)
    if v is None or str(v).strip() == "":
        return None
    return frozenset(x.strip() for x in str(v).split(";") if x.strip())


def _tuple(v: Any) -> tuple[str, ...] | None:
    s = _none(v)
    if s is None or str(s).strip() == "":
        return None
    return tuple(x.strip() for x in str(s).split(";") if x.strip())


@dataclass(slots=True)
class Item:
    """A catalogue row with its restriction columns parsed."""

    item_code: str
    item_class: str
    unit_price: float
    price_caps: tuple[float | None, float | None, float | None]
    sex_limit: str | None
    age_min_days: int | None
    age_max_days: int | None
    min_facility_level: int | None
    care_modes: frozenset[str] | None
    insurance_types: frozenset[str] | None
    indications: tuple[str, ...] | None
    max_qty_per_day: float | None
    max_days_supply: int | None
    max_per_stay: int | None
    period_days: int | None
    max_per_period: int | None
    course_days: int | None
    departments: frozenset[str] | None
    drug_group: str | None
    trace_required: bool

    @property
    def is_drug(self) -> bool:
        return self.item_class in schema.DRUG_CLASSES


def catalogue_index(df: pd.DataFrame) -> dict[str, Item]:
    """Catalogue frame → ``{item_code: Item}``."""
    out: dict[str, Item] = {}
    for r in df.to_dict("records"):
        out[str(r["item_code"])] = Item(
            item_code=str(r["item_code"]),
            item_class=str(r["item_class"]),
            unit_price=_float(r.get("unit_price")) or 0.0,
            price_caps=(_float(r.get("price_cap_lv1")), _float(r.get("price_cap_lv2")),
                        _float(r.get("price_cap_lv3"))),
            sex_limit=_none(r.get("sex_limit")),
            age_min_days=_int(r.get("age_min_days")),
            age_max_days=_int(r.get("age_max_days")),
            min_facility_level=_int(r.get("min_facility_level")),
            care_modes=_set(r.get("care_modes")),
            insurance_types=_set(r.get("insurance_types")),
            indications=_tuple(r.get("indications")),
            max_qty_per_day=_float(r.get("max_qty_per_day")),
            max_days_supply=_int(r.get("max_days_supply")),
            max_per_stay=_int(r.get("max_per_stay")),
            period_days=_int(r.get("period_days")),
            max_per_period=_int(r.get("max_per_period")),
            course_days=_int(r.get("course_days")),
            departments=_set(r.get("departments")),
            drug_group=_none(r.get("drug_group")),
            trace_required=bool(_none(r.get("trace_required")) or False),
        )
    return out


@dataclass(slots=True)
class Facility:
    facility_id: str
    level: int | None
    internet_hospital: bool


def facility_index(df: pd.DataFrame) -> dict[str, Facility]:
    return {
        str(r["facility_id"]): Facility(str(r["facility_id"]), _int(r.get("level")),
                                        bool(_none(r.get("internet_hospital")) or False))
        for r in df.to_dict("records")
    }


@dataclass(slots=True)
class Line:
    """One fee line / order of the claim being judged."""

    line_id: str
    service_date: date
    item_code: str
    qty: float
    unit_price: float
    amount: float
    days_supply: int | None = None
    staff_id: str | None = None
    department: str | None = None
    prescription_no: str | None = None
    approval_flag: bool = False
    discharge_drug: bool = False
    trace_codes: tuple[str, ...] = ()


@dataclass(slots=True)
class Claim:
    """One settlement (visit or stay) with its person, facility, diagnoses and lines."""

    settlement_id: str
    person_id: str
    facility_id: str
    medical_type: str
    insurance_type: str
    admission_time: datetime
    discharge_time: datetime
    sex: str | None = None
    birth_date: date | None = None
    facility_level: int | None = None
    internet_hospital: bool = False
    main_diagnosis: str | None = None
    department: str | None = None
    attending_staff_id: str | None = None
    planned_readmission: bool = False
    total_amount: float = 0.0
    diagnoses: tuple[str, ...] = ()
    procedures: tuple[str, ...] = ()
    lines: list[Line] = field(default_factory=list)

    @property
    def admission_date(self) -> date:
        return self.admission_time.date()

    @property
    def discharge_date(self) -> date:
        return self.discharge_time.date()

    @property
    def all_diagnoses(self) -> tuple[str, ...]:
        if self.main_diagnosis and self.main_diagnosis not in self.diagnoses:
            return (self.main_diagnosis, *self.diagnoses)
        return self.diagnoses


@dataclass(slots=True)
class Finding:
    """One rule hit: a row of ``rule_findings``."""

    rule_id: str
    rule_version: int
    action: str
    severity: str
    settlement_id: str
    line_id: str | None
    person_id: str
    facility_id: str
    staff_id: str | None
    service_date: date
    amount: float
    message: str

    def key(self) -> tuple[str, str, str | None]:
        return (self.rule_id, self.settlement_id, self.line_id)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in FINDING_COLUMNS}


FINDING_COLUMNS = ("rule_id", "rule_version", "action", "severity", "settlement_id", "line_id",
                   "person_id", "facility_id", "staff_id", "service_date", "amount", "message")
