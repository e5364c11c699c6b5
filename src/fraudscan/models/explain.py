"""Reasons for what is returned to inspectors: SHAP contributions turned into sentences.

Computed only for the rows an inspector sees (a suspect list, one lead), never on the
pre-payment path. SHAP values are LightGBM's exact TreeSHAP (``pred_contrib``, the values
``shap.TreeExplainer`` gives for the same Booster, at a fraction of the cost); for a model
trained without labels the reasons are the largest peer z-scores. Each reason names the
indicator, the entity's value and the peer group's P95::

    平均住院日 14.2 天，同级同类机构 P95 为 9.1 天
    Average length of stay 14.2 days; P95 of peer facilities is 9.1 days
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudscan.models.base import HybridRiskModel

# feature (without __mean/__max) → (中文, English, 单位, unit, percent?)
LABELS: dict[str, tuple[str, str, str, str, bool]] = {
    "avg_los": ("平均住院日", "Average length of stay", "天", "days", False),
    "los_mean": ("平均住院日", "Average length of stay", "天", "days", False),
    "los_max": ("最长住院日", "Longest stay", "天", "days", False),
    "los_days": ("住院天数", "Length of stay", "天", "days", False),
    "bed_occupancy": ("床位使用率", "Bed occupancy", "", "", True),
    "cost_per_visit": ("次均费用", "Cost per visit", "元", "CNY", False),
    "cost_per_visit_growth": ("次均费用增长率", "Growth of cost per visit", "", "", True),
    "fund_share": ("统筹支付占比", "Fund share of cost", "", "", True),
    "self_pay_share": ("全自费占比", "Full self-pay share", "", "", True),
    "drug_share": ("药占比", "Drug share", "", "", True),
    "test_share": ("检查检验占比", "Test and imaging share", "", "", True),
    "consumable_share": ("耗材占比", "Consumables share", "", "", True),
    "transfer_rate": ("转诊率", "Transfer-out rate", "", "", True),
    "readmission_31d_rate": ("31天再住院率", "31-day readmission rate", "", "", True),
    "findings_per_100": ("每百人次规则违规数", "Rule findings per 100 settlements", "条",
                         "", False),
    "findings_amount_share": ("违规金额占基金支付比例", "Flagged amount ÷ fund paid", "", "",
                              True),
    "trace_coverage": ("追溯码扫码率", "Trace-code coverage", "", "", True),
    "trace_duplicates": ("重复追溯码次数", "Duplicate trace codes", "次", "", False),
    "max_settlements_10min": ("10分钟内最多结算笔数", "Most settlements in 10 minutes", "笔",
                              "", False),
    "elderly_share": ("65岁以上患者占比", "Share of patients 65+", "", "", True),
    "out_of_area_share": ("异地就医占比", "Out-of-area share", "", "", True),
    "settlements_growth": ("结算人次环比增长", "Month-on-month growth of settlements", "", "",
                           True),
    "fund_growth": ("基金支付环比增长", "Month-on-month growth of fund paid", "", "", True),
    "claims": ("结算人次", "Settlements", "次", "", False),
    "patients": ("就诊人数", "Patients", "人", "", False),
    "claims_per_patient": ("人次人头比", "Settlements per patient", "", "", False),
    "fund_total": ("基金支付总额", "Fund paid", "元", "CNY", False),
    "fund_mean": ("次均基金支付", "Fund paid per settlement", "元", "CNY", False),
    "fund_median": ("基金支付中位数", "Median fund paid per settlement", "元", "CNY", False),
    "fund_max": ("单次最高基金支付", "Largest fund payment", "元", "CNY", False),
    "fund_sd": ("基金支付标准差", "Spread of fund paid", "元", "CNY", False),
    "fund_per_patient": ("人均基金支付", "Fund paid per patient", "元", "CNY", False),
    "cost_mean": ("次均医疗费用", "Cost per settlement", "元", "CNY", False),
    "doctors": ("接诊医师数", "Attending doctors", "人", "", False),
    "claims_per_doctor": ("医师人均结算人次", "Settlements per doctor", "次", "", False),
    "dx_per_claim": ("次均诊断数", "Diagnoses per claim", "个", "", False),
    "px_per_claim": ("次均手术操作数", "Procedures per claim", "个", "", False),
    "surgical_share": ("手术病例占比", "Surgical share", "", "", True),
    "after_death_share": ("死亡后结算占比", "Share settled after death", "", "", True),
    "patient_facilities_mean": ("患者平均就诊机构数", "Facilities per patient", "家", "",
                                False),
    "n_rule_findings": ("规则违规条数", "Rule findings", "条", "", False),
    "rule_amount": ("规则违规金额", "Amount flagged by rules", "元", "CNY", False),
    "rule_amount_share": ("规则违规金额占比", "Rule-flagged share of fund", "", "", True),
    "n_leads": ("筛查线索数", "Screening leads", "条", "", False),
    "n_detectors": ("命中筛查模型数", "Screening models fired", "个", "", False),
    "max_lead_score": ("最高线索分", "Highest lead score", "", "", False),
    "lead_amount": ("线索涉及金额", "Amount in leads", "元", "CNY", False),
    "lead_amount_share": ("线索金额占比", "Lead amount ÷ fund paid", "", "", True),
    "n_rings": ("涉及团伙数", "Collusion rings", "个", "", False),
    "ring_score": ("团伙风险分", "Ring risk score", "", "", False),
    "staff_points": ("医保医师记分合计", "Staff payment-qualification points", "分", "points",
                     False),
    "suspended_staff": ("暂停/终止资格人员数", "Staff suspended or terminated", "人", "",
                        False),
    "visits_30d": ("30天就诊次数", "Visits in 30 days", "次", "", False),
    "visits_90d": ("90天就诊次数", "Visits in 90 days", "次", "", False),
    "visits_365d": ("一年就诊次数", "Visits in a year", "次", "", False),
    "facilities_30d": ("30天就诊机构数", "Facilities in 30 days", "家", "", False),
    "facilities_90d": ("90天就诊机构数", "Facilities in 90 days", "家", "", False),
    "pharmacies_30d": ("30天购药药店数", "Pharmacies in 30 days", "家", "", False),
    "pharmacies_90d": ("90天购药药店数", "Pharmacies in 90 days", "家", "", False),
    "fund_365d": ("一年基金支付", "Fund paid in a year", "元", "CNY", False),
    "possession_ratio_90d": ("90天药品持有率", "Days' supply ÷ 90 days", "", "", True),
    "resale_drug_share": ("易倒卖药品占比", "Resale-prone drug share", "", "", True),
    "patent_tcm_share": ("中成药占比", "Patent TCM share", "", "", True),
    "covisit_max_days": ("与同一人同日就诊天数", "Days seen with the same person", "天", "days",
                         False),
    "covisit_partners": ("结伴就诊人数", "Co-visit partners", "人", "", False),
    "fund_per_patient_m": ("人均基金支付", "Fund per patient", "元", "CNY", False),
    "item_similarity": ("患者项目相似度", "Item-list similarity across patients", "", "",
                        True),
    "findings_per_100_orders": ("每百条医嘱违规数", "Findings per 100 orders", "条", "",
                                False),
    "restricted_drug_share": ("限制类药品占比", "Restricted-drug share", "", "", True),
    "synchrony": ("同步就诊比例", "Synchronised visits", "", "", True),
    "density": ("关系密度", "Edge density", "", "", True),
    "lead_share": ("成员线索占比", "Members with leads", "", "", True),
    "rule_hit_share": ("成员违规占比", "Members with rule findings", "", "", True),
    "institution_overlap": ("机构重合度", "Institution overlap", "", "", True),
    "amount": ("涉及金额", "Amount involved", "元", "CNY", False),
    "size": ("团伙规模", "Ring size", "个", "members", False),
    "idle_days": ("空床日数", "Idle days", "天", "days", False),
    "items_per_day": ("日均项目数", "Items per day", "项", "", False),
    "cost_peer_ratio": ("费用与同病组中位数之比", "Cost ÷ peer median", "", "", False),
    "los_peer_ratio": ("住院日与同病组中位数之比", "Stay ÷ peer median", "", "", False),
    "max_jaccard": ("与他人项目相似度", "Similarity to another claim", "", "", True),
    "n_findings": ("规则违规条数", "Rule findings", "条", "", False),
    "findings_amount": ("违规金额", "Flagged amount", "元", "CNY", False),
    "claim_leads": ("列入筛查线索次数", "Screening leads listing the claim", "条", "", False),
    "claim_detectors": ("命中筛查模型数", "Screening models listing the claim", "个", "",
                        False),
    "claim_lead_score": ("最高线索分", "Highest lead score", "", "", False),
    "claim_risk_mean": ("病例平均风险", "Mean claim risk", "", "", False),
    "claim_risk_p90": ("病例风险P90", "Claim risk P90", "", "", False),
    "claim_risk_fund": ("风险加权基金支付", "Risk-weighted fund paid", "元", "CNY", False),
    "total_amount": ("医疗费总额", "Total cost", "元", "CNY", False),
    "fund_paid": ("基金支付", "Fund paid", "元", "CNY", False),
    "months_active": ("活跃月数", "Active months", "月", "months", False),
}
PEERS = {"facility": ("同级同类机构", "peer facilities"),
         "person": ("同险种同年龄段人员", "peer insured persons"),
         "staff": ("同科室同类人员", "peer staff"),
         "claim": ("同病组同级机构病例", "peer claims"),
         "ring": ("其他团伙", "other rings")}
AGG = {"mean": ("月均", "monthly mean"), "max": ("月最高", "monthly peak")}


@dataclass
class Reason:
    """One reason: the indicator, its value, the peer P95 and the sentences."""

    feature: str
    value: float
    peer_p95: float
    contribution: float
    zh: str
    en: str


def _fmt(v: float, pct: bool) -> str:
    if v is None or not np.isfinite(v):
        return "—"
    if pct:
        return f"{v * 100:.1f}%"
    a = abs(v)
    if a >= 1e4:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if float(v).is_integer():
        return f"{v:.0f}"
    return f"{v:.1f}" if a >= 1 else f"{v:.2f}"


def sentence(feature: str, value: float, p95: float, kind: str) -> tuple[str, str]:
    """The Chinese and English sentence for one indicator against its peers."""
    base, _, agg = feature.partition("__")
    zh, en, uz, ue, pct = LABELS.get(base, (base.replace("_", " "), base.replace("_", " "),
                                            "", "", False))
    if agg in AGG:
        zh, en = f"{zh}（{AGG[agg][0]}）", f"{en} ({AGG[agg][1]})"
    pz, pe = PEERS.get(kind, ("同类", "peers"))
    v, p = _fmt(value, pct), _fmt(p95, pct)
    uz_, ue_ = ("", "") if pct else (uz, f" {ue}" if ue else "")
    return (f"{zh} {v}{uz_}，{pz} P95 为 {p}{uz_}",
            f"{en[:1].upper()}{en[1:]} {v}{ue_}; P95 of {pe} is {p}{ue_}")


def explain(model: HybridRiskModel, X: pd.DataFrame, peer_groups: np.ndarray, kind: str,
            top: int = 3) -> list[list[Reason]]:
    """Top ``top`` reasons (largest positive contributions) for each row of ``X``."""
    if len(X) == 0:
        return []
    Xv = X[model.feature_names_].to_numpy(dtype=np.float64)
    contrib = model.contributions(Xv, peer_groups)
    out: list[list[Reason]] = []
    d = model.outlier_.directions_
    for i in range(len(X)):
        p95 = model.outlier_.peer_quantile(peer_groups[i])
        med = model.outlier_.stats_.get(str(peer_groups[i]), model.outlier_.stats_["__all__"])[0]
        # indicators on the suspicious side of the peer median first (a reason that reads
        # "low volume, peers' P95 is high" is true to the model but useless to an inspector)
        odd = np.where(d < 0, Xv[i] > med, Xv[i] < med)
        order = np.lexsort((-contrib[i], odd))
        reasons: list[Reason] = []
        for j in order:
            if len(reasons) >= top:
                break
            val = Xv[i, j]
            if contrib[i, j] <= 0 or not np.isfinite(val):
                continue
            zh, en = sentence(model.feature_names_[j], val, p95[j], kind)
            reasons.append(Reason(model.feature_names_[j], float(val), float(p95[j]),
                                  float(contrib[i, j]), zh, en))
        out.append(reasons)
    return out
