"""Display names (Chinese, English) for the internal ids the workbench and inspector API show.

Inspectors read ``倒卖/回流药``, not ``drug_resale``. The names come from one place each:

* detectors (= synthetic scenarios): the detector registry's titles
  (:mod:`fraudscan.leads.registry`, ``title="倒卖/回流药 drug resale"``: Chinese, a space, English);
* rules: the rule files (``name`` / ``name_en`` of the newest version);
* subject types, ring member types and roles, explanation sources: this module (nothing else
  names them).

An id without a name is shown as itself, so a new detector is never hidden.
"""

from __future__ import annotations

from functools import cache
from typing import Any

SUBJECT_TYPES: dict[str, tuple[str, str]] = {
    "facility": ("定点医药机构", "Facility"),
    "staff": ("医务人员", "Medical staff"),
    "person": ("参保人", "Insured person"),
    "settlement": ("结算单据", "Settlement"),
    "ring": ("团伙", "Ring"),
}
NODE_TYPES: dict[str, tuple[str, str]] = {
    "person": ("参保人", "Insured person"),
    "staff": ("医务人员", "Medical staff"),
    "facility": ("定点医疗机构", "Facility"),
    "pharmacy": ("定点零售药店", "Pharmacy"),
    "village": ("村/社区", "Village"),
    "employer": ("工作单位", "Employer"),
}
ROLES: dict[str, tuple[str, str]] = {
    "patient": ("就诊人", "Patient"),
    "organiser": ("组织者", "Organiser"),
    "recruiter": ("招募人", "Recruiter"),
    "doctor": ("医生", "Doctor"),
    "hub": ("枢纽机构", "Hub facility"),
    "facility": ("医疗机构", "Facility"),
    "pharmacy": ("药店", "Pharmacy"),
    "group": ("人群", "Group"),
}
REASON_SOURCES: dict[str, tuple[str, str]] = {
    "shap": ("模型解释", "model explanation"),
    "evidence": ("检测证据", "detector evidence"),
}
FACILITY_TYPES: dict[str, tuple[str, str]] = {
    "general_hospital": ("综合医院", "General hospital"),
    "tcm_hospital": ("中医医院", "TCM hospital"),
    "specialist_hospital": ("专科医院", "Specialist hospital"),
    "community_health_centre": ("社区卫生服务中心", "Community health centre"),
    "township_health_centre": ("乡镇卫生院", "Township health centre"),
    "village_clinic": ("村卫生室", "Village clinic"),
    "dialysis_centre": ("血液透析中心", "Dialysis centre"),
    "rehabilitation_centre": ("康复医疗中心", "Rehabilitation centre"),
    "retail_pharmacy": ("定点零售药店", "Retail pharmacy"),
    "dual_channel_pharmacy": ("双通道药店", "Dual-channel pharmacy"),
    "other": ("其他", "Other"),
}
GRADE_SOURCES: dict[str, tuple[str, str]] = {
    "grading": ("信用评价", "credit grading"),
    "leads": ("按线索估算", "estimated from leads"),
}
# scenarios of the synthetic city that no screening detector reports (found by the graph step)
OTHER_SCENARIOS: dict[str, tuple[str, str]] = {
    "collusion_ring": ("团伙欺诈", "collusion ring"),
}


@cache
def detectors() -> dict[str, tuple[str, str]]:
    """Detector / scenario id → (zh, en), from the registry's titles."""
    from fraudscan.leads import all_detectors

    out = dict(OTHER_SCENARIOS)
    for name, d in all_detectors().items():
        zh, _, en = d.title.strip().partition(" ")
        out[name] = (zh, en.strip() or name)
    return out


@cache
def rules() -> dict[str, tuple[str, str]]:
    """Rule id → (zh, en) names of its newest version."""
    from fraudscan.rules.model import load_rules

    return {r.id: (r.name, r.name_en) for r in load_rules().latest()}


KINDS: dict[str, dict[str, tuple[str, str]]] = {
    "subject_type": SUBJECT_TYPES, "node_type": NODE_TYPES, "role": ROLES,
    "reason_source": REASON_SOURCES, "facility_type": FACILITY_TYPES,
    "grade_source": GRADE_SOURCES,
}


def _table(kind: str) -> dict[str, tuple[str, str]]:
    if kind == "detector":
        return detectors()
    if kind == "rule":
        return rules()
    return KINDS[kind]


def name(kind: str, key: Any, lang: str = "zh") -> str:
    """The display name of ``key`` (``""`` for None; the id itself when it has no name)."""
    if key is None:
        return ""
    pair = _table(kind).get(str(key))
    if pair is None:
        return str(key)
    return pair[1] if lang == "en" else pair[0]


def with_names(row: dict[str, Any], **fields: str) -> dict[str, Any]:
    """Add ``<field>_zh`` / ``<field>_en`` (``rule_id`` → ``rule_zh``) for ``field=kind``
    pairs; the ids stay as they are, for filters and links."""
    for f, kind in fields.items():
        v = row.get(f)
        base = f.removesuffix("_id")
        row[f"{base}_zh"] = None if v is None else name(kind, v, "zh")
        row[f"{base}_en"] = None if v is None else name(kind, v, "en")
    return row
