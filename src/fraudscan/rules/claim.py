"""The pre-payment API: requests and responses shaped like the national 3101 / 3102 interfaces.

Request: ``{"trig_scen", "rule_ids", "patient_dtos": [{patient, "fsi_encounter_dtos": [{encounter,
"fsi_diagnose_dtos", "fsi_order_dtos", "fsi_operation_dtos"}]}]}`` with the NHSA field names of
BRIEF §1.5, plus a few fields the national 3101 lacks but the fee-detail upload (2204/2301)
carries: ``setl_id``, ``prd_days``, ``hosp_appr_flag``, ``dscg_tkdrug_flag``, ``drug_trac_codg``
(a list, like ``drugtracinfo[]``), ``days_rinp_flag_31``, ``medins_internet_flag``.
Unknown fields are accepted and ignored, so a full national request passes unchanged.

Response: ``{"decision": "block" | "warn" | "pass", "result": [...]}`` where each result is one
rule hit on one encounter with the 3101 output fields (``rule_id``, ``rule_name``, ``vola_cont``,
``vola_amt``, ``sev_deg``, ``judge_result_detail_dtos[]`` with ``rx_id`` per violating line).
docs/rules.md documents every field.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fraudscan.errors import FraudscanError
from fraudscan.rules.context import Claim, Finding, Line
from fraudscan.rules.model import ACTION_RANK, SEV_DEG, RuleSet


class ClaimRequestError(FraudscanError):
    """A malformed check request; the message names the source and the field path."""


def _flag(v: Any) -> bool:
    if v is None or v == "":
        return False
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "y", "yes"):
        return True
    if s in ("0", "false", "n", "no"):
        return False
    raise ValueError(f"expected a flag 0/1, got {v!r}")


class _M(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class Diagnosis(_M):
    """``fsi_diagnose_dtos[]``."""

    dise_codg: str = Field(min_length=1)
    dise_name: str | None = None
    maindise_flag: bool = False
    dias_srt_no: int | None = None
    inout_dise_type: str | None = None

    _f = field_validator("maindise_flag", mode="before")(_flag)


class Operation(_M):
    """``fsi_operation_dtos[]``."""

    oprn_code: str = Field(min_length=1)
    main_oprn_flag: bool = False
    oprn_date: datetime | None = None
    oper_dr_code: str | None = None

    _f = field_validator("main_oprn_flag", mode="before")(_flag)


class Order(_M):
    """``fsi_order_dtos[]``: one order / fee line."""

    rx_id: str = Field(min_length=1)
    hilist_code: str = Field(min_length=1)
    hilist_name: str | None = None
    cnt: float
    pric: float = Field(ge=0)
    sumamt: float | None = None
    rxno: str | None = None
    drord_begn_date: datetime | None = None
    drord_dept_codg: str | None = None
    drord_dr_codg: str | None = None
    prd_days: int | None = Field(default=None, ge=0)
    hosp_appr_flag: bool = False
    dscg_tkdrug_flag: bool = False
    drug_trac_codg: list[str] = Field(default_factory=list)
    curr_drord_flag: str | None = None

    _f = field_validator("hosp_appr_flag", "dscg_tkdrug_flag", mode="before")(_flag)

    @field_validator("drug_trac_codg", mode="before")
    @classmethod
    def _codes(cls, v: Any) -> Any:
        if v is None or v == "":
            return []
        if isinstance(v, str):
            return [c for c in v.replace(",", ";").split(";") if c]
        return v


class Encounter(_M):
    """``fsi_encounter_dtos[]``: one visit or stay."""

    mdtrt_id: str = Field(min_length=1)
    setl_id: str | None = None
    medins_id: str = Field(min_length=1)
    medins_name: str | None = None
    medins_type: str | None = None
    medins_lv: int | None = None
    medins_internet_flag: bool = False
    adm_date: datetime
    dscg_date: datetime | None = None
    dscg_main_dise_codg: str | None = None
    dr_codg: str | None = None
    adm_dept_codg: str | None = None
    med_type: str = Field(min_length=1)
    insutype: str = Field(min_length=1)
    medfee_sumamt: float | None = None
    days_rinp_flag_31: bool = False
    fsi_diagnose_dtos: list[Diagnosis] = Field(default_factory=list)
    fsi_order_dtos: list[Order] = Field(default_factory=list)
    fsi_operation_dtos: list[Operation] = Field(default_factory=list)

    _f = field_validator("medins_internet_flag", "days_rinp_flag_31", mode="before")(_flag)

    @field_validator("medins_lv", mode="before")
    @classmethod
    def _lv(cls, v: Any) -> Any:
        return None if v in ("", None) else v


class Patient(_M):
    """``patient_dtos[]``."""

    patn_id: str = Field(min_length=1)
    patn_name: str | None = None
    gend: Literal["1", "2", "9"]
    brdy: date
    poolarea: str | None = None
    curr_mdtrt_id: str | None = None
    fsi_encounter_dtos: list[Encounter] = Field(min_length=1)


class CheckRequest(_M):
    """The 3101/3102 request body (``data``)."""

    syscode: str | None = None
    trig_scen: str | None = None
    rule_ids: list[str] | None = None
    task_id: str | None = None
    patient_dtos: list[Patient] = Field(min_length=1)


class ResultDetail(BaseModel):
    """``judge_result_detail_dtos[]``: one line involved in a hit."""

    jrd_id: str
    rx_id: str
    vola_item_type: str = "1"
    vola_amt: float


class JudgeResult(BaseModel):
    """One rule hit on one encounter (3101 output ``result[]``)."""

    jr_id: str
    rule_id: str
    rule_version: int
    rule_name: str
    rule_name_en: str
    rule_class: str
    national_code: str | None
    vola_cont: str
    vola_cont_en: str
    patn_id: str
    mdtrt_id: str
    setl_id: str
    vola_amt: float
    vola_amt_stas: str = "1"
    sev_deg: str
    severity: str
    action: str
    vola_evid: str
    vola_bhvr_type: str
    task_id: str | None = None
    judge_result_detail_dtos: list[ResultDetail] = Field(default_factory=list)


class CheckResponse(BaseModel):
    """Overall decision plus the hits; ``decision`` is the strongest action (post → pass)."""

    decision: Literal["block", "warn", "pass"]
    result: list[JudgeResult] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------


def parse_request(data: dict | str | bytes | CheckRequest, source: str = "request"
                  ) -> CheckRequest:
    """Validate a request; errors name ``source`` and the exact field path."""
    if isinstance(data, CheckRequest):
        return data
    try:
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise ClaimRequestError(f"{source}: line {e.lineno}, column {e.colno}: not valid "
                                        f"JSON: {e.msg}") from None
        if isinstance(data, dict) and "data" in data and "patient_dtos" not in data:
            data = data["data"]  # the national envelope {"infno": "3101", "input": {"data"}}
        if isinstance(data, dict) and "input" in data and "patient_dtos" not in data:
            data = data["input"].get("data", data["input"])
        return CheckRequest.model_validate(data)
    except ValidationError as e:
        probs = []
        for err in e.errors()[:5]:
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            probs.append(f"{loc.lstrip('.') or '(root)'}: {err['msg']}")
        more = f" (+{e.error_count() - 5} more)" if e.error_count() > 5 else ""
        raise ClaimRequestError(f"{source}: " + "; ".join(probs) + more) from None


def load_request(path: str | Path) -> CheckRequest:
    """Read and validate a request JSON file."""
    p = Path(path)
    if not p.is_file():
        raise ClaimRequestError(f"{p}: no such file")
    return parse_request(p.read_text(encoding="utf-8"), str(p))


def claims_from_request(req: CheckRequest) -> list[tuple[Patient, Encounter, Claim]]:
    """The encounters to judge (the patient's ``curr_mdtrt_id``, else all) as claims."""
    out = []
    for p in req.patient_dtos:
        encs = [e for e in p.fsi_encounter_dtos
                if p.curr_mdtrt_id is None or e.mdtrt_id == p.curr_mdtrt_id]
        if not encs:
            raise ClaimRequestError(f"patient {p.patn_id}: curr_mdtrt_id {p.curr_mdtrt_id!r} "
                                    "matches no encounter")
        for e in encs:
            out.append((p, e, encounter_claim(p, e)))
    return out


def encounter_claim(p: Patient, e: Encounter) -> Claim:
    """One encounter of a request as the checker's :class:`Claim`."""
    seen: set[str] = set()
    lines = []
    for o in e.fsi_order_dtos:
        if o.rx_id in seen:
            raise ClaimRequestError(f"encounter {e.mdtrt_id}: duplicate rx_id {o.rx_id!r}")
        seen.add(o.rx_id)
        when = o.drord_begn_date or e.adm_date
        amount = o.sumamt if o.sumamt is not None else round(o.cnt * o.pric, 2)
        lines.append(Line(o.rx_id, when.date(), o.hilist_code, o.cnt, o.pric, amount,
                          o.prd_days, o.drord_dr_codg, o.drord_dept_codg, o.rxno,
                          o.hosp_appr_flag, o.dscg_tkdrug_flag, tuple(o.drug_trac_codg)))
    dx = sorted(e.fsi_diagnose_dtos, key=lambda d: (not d.maindise_flag, d.dias_srt_no or 0))
    main = e.dscg_main_dise_codg or next((d.dise_codg for d in dx if d.maindise_flag), None)
    total = e.medfee_sumamt if e.medfee_sumamt is not None else \
        round(sum(ln.amount for ln in lines), 2)
    return Claim(
        settlement_id=e.setl_id or e.mdtrt_id, person_id=p.patn_id, facility_id=e.medins_id,
        medical_type=e.med_type, insurance_type=e.insutype, admission_time=e.adm_date,
        discharge_time=e.dscg_date or e.adm_date, sex=p.gend, birth_date=p.brdy,
        facility_level=e.medins_lv, internet_hospital=e.medins_internet_flag,
        main_diagnosis=main, department=e.adm_dept_codg, attending_staff_id=e.dr_codg,
        planned_readmission=e.days_rinp_flag_31, total_amount=total,
        diagnoses=tuple(d.dise_codg for d in dx),
        procedures=tuple(o.oprn_code for o in e.fsi_operation_dtos), lines=lines,
    )


def decision_of(findings: list[Finding]) -> str:
    """block if any block finding, else warn if any warn, else pass."""
    best = max((ACTION_RANK[f.action] for f in findings), default=0)
    return {3: "block", 2: "warn"}.get(best, "pass")


def build_response(rules: RuleSet, judged: list[tuple[Patient, Encounter, Claim,
                                                     list[Finding]]],
                   task_id: str | None = None) -> CheckResponse:
    """Group findings per (encounter, rule) into 3101-shaped results."""
    results: list[JudgeResult] = []
    allf: list[Finding] = []
    for p, e, c, fs in judged:
        allf.extend(fs)
        by_rule: dict[tuple[str, int], list[Finding]] = {}
        for f in fs:
            by_rule.setdefault((f.rule_id, f.rule_version), []).append(f)
        for (rid, ver), group in by_rule.items():
            r = next(x for x in rules.by_id[rid] if x.version == ver)
            details = [ResultDetail(jrd_id=f"{e.mdtrt_id}-{rid}-{f.line_id}", rx_id=f.line_id,
                                    vola_amt=f.amount) for f in group if f.line_id is not None]
            results.append(JudgeResult(
                jr_id=f"{e.mdtrt_id}-{rid}", rule_id=rid, rule_version=ver, rule_name=r.name,
                rule_name_en=r.name_en, rule_class=r.rule_class, national_code=r.national_code,
                vola_cont=r.message, vola_cont_en=r.message_en, patn_id=p.patn_id,
                mdtrt_id=e.mdtrt_id, setl_id=c.settlement_id,
                vola_amt=round(sum(f.amount for f in group), 2), sev_deg=SEV_DEG[r.severity],
                severity=r.severity, action=r.action, vola_evid=r.basis or r.rule_class,
                vola_bhvr_type=r.check, task_id=task_id, judge_result_detail_dtos=details))
    return CheckResponse(decision=decision_of(allf), result=results)  # type: ignore[arg-type]


def claim_to_request(c: Claim, *, patn_name: str | None = None) -> dict[str, Any]:
    """A :class:`Claim` as a 3101 request dict (used by tests, fixtures and benchmarks)."""
    def ts(v: datetime | date) -> str:
        return v.isoformat(sep=" ") if isinstance(v, datetime) else v.isoformat()

    enc: dict[str, Any] = {
        "mdtrt_id": c.settlement_id, "setl_id": c.settlement_id, "medins_id": c.facility_id,
        "medins_lv": c.facility_level, "medins_internet_flag": "1" if c.internet_hospital else "0",
        "adm_date": ts(c.admission_time), "dscg_date": ts(c.discharge_time),
        "dscg_main_dise_codg": c.main_diagnosis, "dr_codg": c.attending_staff_id,
        "adm_dept_codg": c.department, "med_type": c.medical_type, "insutype": c.insurance_type,
        "medfee_sumamt": c.total_amount,
        "days_rinp_flag_31": "1" if c.planned_readmission else "0",
        "fsi_diagnose_dtos": [{"dise_codg": d, "maindise_flag": "1" if i == 0 else "0",
                               "dias_srt_no": i + 1} for i, d in enumerate(c.diagnoses)],
        "fsi_operation_dtos": [{"oprn_code": o, "main_oprn_flag": "1" if i == 0 else "0"}
                               for i, o in enumerate(c.procedures)],
        "fsi_order_dtos": [],
    }
    for ln in c.lines:
        o: dict[str, Any] = {"rx_id": ln.line_id, "hilist_code": ln.item_code, "cnt": ln.qty,
                             "pric": ln.unit_price, "sumamt": ln.amount,
                             "drord_begn_date": ts(ln.service_date)}
        for k, v in (("prd_days", ln.days_supply), ("drord_dr_codg", ln.staff_id),
                     ("drord_dept_codg", ln.department), ("rxno", ln.prescription_no)):
            if v is not None:
                o[k] = v
        if ln.approval_flag:
            o["hosp_appr_flag"] = "1"
        if ln.discharge_drug:
            o["dscg_tkdrug_flag"] = "1"
        if ln.trace_codes:
            o["drug_trac_codg"] = list(ln.trace_codes)
        enc["fsi_order_dtos"].append(o)
    return {"trig_scen": "2", "patient_dtos": [{
        "patn_id": c.person_id, "patn_name": patn_name, "gend": c.sex or "9",
        "brdy": c.birth_date.isoformat() if c.birth_date else None,
        "curr_mdtrt_id": c.settlement_id, "fsi_encounter_dtos": [enc]}]}


def requests_to_tables(requests: list[CheckRequest | dict], *, line_id_sep: str = "/"
                       ) -> dict[str, Any]:
    """Canonical ``settlements``, ``fee_lines``, ``diagnoses``, ``procedures`` and
    ``trace_scans`` frames for the encounters of 3101 requests (all encounters, not just the
    current one), so a set of requests can be screened in batch. Fee-line ids are
    ``setl_id + line_id_sep + rx_id`` to make them unique across claims.
    """
    import pandas as pd

    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "settlements", "fee_lines", "diagnoses", "procedures", "trace_scans")}
    for raw in requests:
        req = parse_request(raw)
        for p in req.patient_dtos:
            for e in p.fsi_encounter_dtos:
                c = encounter_claim(p, e)
                sid = c.settlement_id
                rows["settlements"].append({
                    "settlement_id": sid, "visit_id": e.mdtrt_id, "person_id": c.person_id,
                    "facility_id": c.facility_id, "medical_type": c.medical_type,
                    "insurance_type": c.insurance_type, "admission_time": c.admission_time,
                    "discharge_time": c.discharge_time, "settle_time": c.discharge_time,
                    "main_diagnosis": c.main_diagnosis, "department": c.department,
                    "attending_staff_id": c.attending_staff_id,
                    "planned_readmission": c.planned_readmission,
                    "total_amount": c.total_amount, "fund_paid": c.total_amount,
                    "account_paid": 0.0, "cash_paid": 0.0})
                for i, d in enumerate(c.diagnoses):
                    rows["diagnoses"].append({"settlement_id": sid, "seq": i + 1,
                                              "diag_code": d, "is_main": i == 0})
                for i, op in enumerate(c.procedures):
                    rows["procedures"].append({"settlement_id": sid, "seq": i + 1,
                                               "procedure_code": op})
                for ln in c.lines:
                    lid = f"{sid}{line_id_sep}{ln.line_id}"
                    rows["fee_lines"].append({
                        "line_id": lid, "settlement_id": sid,
                        "service_time": datetime.combine(ln.service_date, datetime.min.time()),
                        "item_code": ln.item_code, "qty": ln.qty, "unit_price": ln.unit_price,
                        "amount": ln.amount, "days_supply": ln.days_supply,
                        "staff_id": ln.staff_id, "department": ln.department,
                        "prescription_no": ln.prescription_no,
                        "approval_flag": ln.approval_flag, "discharge_drug": ln.discharge_drug})
                    for j, code in enumerate(ln.trace_codes):
                        rows["trace_scans"].append({
                            "scan_id": f"{lid}#{j}", "line_id": lid,
                            "facility_id": c.facility_id, "item_code": ln.item_code,
                            "trace_code": code,
                            "scan_time": datetime.combine(ln.service_date, datetime.min.time())})
    return {k: pd.DataFrame(v) for k, v in rows.items()}
