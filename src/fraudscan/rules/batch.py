"""Batch screening: every rule version as set-wise SQL on DuckDB, written to ``rule_findings``.

The fee lines are joined once to their settlement, person, facility and catalogue row into a
temporary line-context table; each check template then compiles one rule version (its parameters,
knowledge items inlined as ``VALUES`` lists, its period of force) to one ``INSERT ... SELECT``.
The single-claim twin of each template is in :mod:`fraudscan.rules.checks`; both follow the
conventions written there and in docs/rules.md.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from fraudscan import schema
from fraudscan.rules.checks import (
    NEONATE_DAYS,
    PRICE_TOL,
    SECOND_LINE_WINDOW,
    SUSPENSION_MAX_DAYS,
)
from fraudscan.rules.model import Rule, RuleSet, load_rules
from fraudscan.workspace import Workspace

EPS = 1e-9

STAFF = "coalesce(l_staff, attending_staff_id)"
"""A line's staff: its own, else the claim's attending doctor (line column ``l_staff``,
settlement column ``attending_staff_id``)."""

DEPT = "coalesce(l_dept, department)"
"""A line's department: its own, else the claim's."""

FINDINGS_DDL = """
CREATE OR REPLACE TABLE rule_findings (
    rule_id VARCHAR, rule_version INTEGER, action VARCHAR, severity VARCHAR,
    settlement_id VARCHAR, line_id VARCHAR, person_id VARCHAR, facility_id VARCHAR,
    staff_id VARCHAR, service_date DATE, amount DOUBLE, message VARCHAR)
"""


@dataclass
class ScreenResult:
    """What a screening run did: findings per rule version and the time it took."""

    n_lines: int
    n_settlements: int
    n_findings: int
    seconds: float
    per_rule: pd.DataFrame
    steps: dict[str, float] = field(default_factory=dict)
    """Wall seconds of the shared set-up steps (context tables), by table name: with
    ``per_rule`` the profile of a run."""
    timeline: list[tuple[str, int, float, float]] = field(default_factory=list)
    """Every statement as (context table or rule versions, connection, start, end), seconds
    since the screen began: where the two connections wait or overlap."""

    @property
    def lines_per_second(self) -> float:
        return self.n_lines / self.seconds if self.seconds > 0 else float("inf")


def _q(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _list(xs: Iterable[str]) -> str:
    xs = list(xs)
    return "(" + ", ".join(_q(x) for x in xs) + ")" if xs else "(NULL)"


def _values(rows: Sequence[Sequence[object]], cols: Sequence[str]) -> str:
    def lit(v: object) -> str:
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, int | float):
            return repr(v)
        return _q(str(v))

    body = ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)
    return f"(VALUES {body}) AS k({', '.join(cols)})"


def _period(r: Rule, col: str) -> str:
    to = f"DATE '{r.effective_to.isoformat()}'" if r.effective_to else "DATE '9999-12-31'"
    return f"{col} BETWEEN DATE '{r.effective_from.isoformat()}' AND {to}"


def _classes(r: Rule, key: str = "classes") -> str:
    return f"item_class IN {_list(r.params.get(key, schema.ITEM_CLASSES))}"


def _in_set(col: str, v: str) -> str:
    """``v`` is one of the ``;``-separated values of catalogue column ``col`` (stored as
    ``;a;b;``): the same as ``list_contains(string_split(...), v)`` without carrying a list
    per line through the joins."""
    return f"(position(';' IN {v}) = 0 AND contains({col}, ';' || {v} || ';'))"


def _head(r: Rule) -> str:
    return (f"{_q(r.id)}, {r.version}, {_q(r.action)}, {_q(r.severity)}")


def _line_select(r: Rule, src: str, where: str, amount: str = "amount") -> str:
    return (f"SELECT {_head(r)}, settlement_id, line_id, person_id, facility_id, {STAFF}, d, "
            f"round({amount}, 2), {_q(r.message)} FROM {src} WHERE qty > 0 AND {_period(r, 'd')}"
            f" AND ({where})")


Cond = tuple[str, str, str]
"""A simple line check: (item gate over the catalogue columns, line condition, amount)."""


def _cond(gate: str, where: str, amount: str = "amount") -> Cond:
    """A simple line check. ``gate`` reads only the catalogue row (``true`` when the check
    does not depend on it): the fused scan evaluates it once per catalogue item, so the line
    condition runs only on the lines of items it can apply to."""
    return gate, where, amount


def _claim_select(r: Rule, src: str, where: str, amount: str = "s.total_amount") -> str:
    """A settlement-level check over ``_rs_s s`` (settlement, person and facility columns
    joined once, integer keys ``sk`` and ``pk``) rather than re-reading the source tables."""
    return (f"SELECT {_head(r)}, s.settlement_id, NULL, s.person_id, s.facility_id, "
            f"s.attending_staff_id, s.adm_d, round({amount}, 2), "
            f"{_q(r.message)} FROM {src} WHERE "
            f"{_period(r, 's.adm_d')} AND ({where})")


# ---------------------------------------------------------------------------------------------
# check templates → SQL
# ---------------------------------------------------------------------------------------------

_AGE_SQL = {
    "neonate": f"age_max_days <= {NEONATE_DAYS} AND (age > age_max_days OR "
               "age < coalesce(age_min_days, 0))",
    "child_only": f"age_max_days > {NEONATE_DAYS} AND coalesce(age_min_days, 0) = 0 "
                  "AND age > age_max_days",
    "child_band": f"age_max_days > {NEONATE_DAYS} AND coalesce(age_min_days, 0) > 0 "
                  "AND (age < age_min_days OR age > age_max_days)",
    "adult_only": "age_max_days IS NULL AND coalesce(age_min_days, 0) > 0 AND age < age_min_days",
    "any_non_neonate": "(age_min_days IS NOT NULL OR age_max_days IS NOT NULL) AND "
                       f"NOT coalesce(age_max_days <= {NEONATE_DAYS}, false) AND "
                       "(age < coalesce(age_min_days, 0) OR age > coalesce(age_max_days, "
                       "1000000000))",
}


def cond_item_sex(r: Rule) -> Cond:
    return _cond(f"{_classes(r)} AND sex_limit IS NOT NULL",
                 "sex IN ('1', '2') AND sex <> sex_limit")


def cond_item_age(r: Rule) -> Cond:
    return _cond(f"{_classes(r)} AND (age_min_days IS NOT NULL OR age_max_days IS NOT NULL)",
                 f"age IS NOT NULL AND ({_AGE_SQL[r.params['band']]})")


def cond_item_insurance(r: Rule) -> Cond:
    wi = "true" if r.params["group"] == "work_injury" else "false"
    return _cond(f"{_classes(r)} AND ins_l IS NOT NULL AND list_contains(ins_l, '410') = {wi}",
                 f"NOT {_in_set('ins_s', 'insurance_type')}")


def cond_item_facility_level(r: Rule) -> Cond:
    return _cond(f"{_classes(r)} AND min_facility_level IS NOT NULL",
                 "coalesce(level, 0) < min_facility_level")


def cond_item_care_mode(r: Rule) -> Cond:
    return _cond(f"{_classes(r)} AND care_l IS NOT NULL",
                 f"NOT {_in_set('care_s', 'medical_type')}")


def sql_item_indication(r: Rule) -> str:
    base = (f"qty > 0 AND {_period(r, 'd')} AND {_classes(r)} AND ind_l IS NOT NULL "
            "AND NOT appr")
    cand = f"(SELECT * FROM {_LKL} WHERE {base})"
    ok = (f"SELECT DISTINCT x.line_id FROM (SELECT line_id, sk, unnest(ind_l) AS p FROM {cand}) "
          "x JOIN _rs_dx dx ON dx.sk = x.sk AND starts_with(dx.code, x.p)")
    src = f"(SELECT * FROM (SELECT * FROM {cand} WHERE line_id NOT IN ({ok})) JOIN {_S} USING (sk))"
    return _line_select(r, src, "true")

def cond_item_department(r: Rule) -> Cond:
    return _cond(f"{_classes(r)} AND dept_l IS NOT NULL",
                 f"{DEPT} IS NOT NULL AND NOT {_in_set('dept_s', DEPT)}")


def cond_item_days_supply(r: Rule) -> Cond:
    return _cond(f"{_classes(r)} AND max_days_supply IS NOT NULL",
                 "days_supply IS NOT NULL AND days_supply > max_days_supply")


def cond_item_qty_per_day(r: Rule) -> Cond:
    per_day = "(qty / greatest(coalesce(days_supply, 1), 1))"
    return _cond(f"{_classes(r)} AND max_qty_per_day IS NOT NULL",
                 f"{per_day} > max_qty_per_day + {EPS}",
                 f"amount * (1 - max_qty_per_day / {per_day})")


def sql_item_frequency(r: Rule) -> str:
    dc = f"item_class IN {_list(r.params['day_classes'])}"
    sc = f"item_class IN {_list(r.params['stay_classes'])}"
    dayc = f"max_qty_per_day IS NOT NULL AND {dc}"
    stayc = f"max_per_stay IS NOT NULL AND {sc}"
    # the restricted lines (grouped on the integer keys: the item key ``ik`` stands for the
    # item); the settlement columns are joined to the few violating lines
    rl = (f"SELECT line_id, sk, ik, d, qty, amount, l_staff, max_qty_per_day, max_per_stay, "
          f"({dayc}) AS is_day, ({stayc}) AS is_stay FROM {_LK} WHERE ({dayc}) OR ({stayc})")
    # almost every (claim, item, day) has one line, which breaks the daily limit only if its
    # own quantity does: the days billed on two or more lines are found by sorting a hash of
    # the three keys (equal neighbours; a collision only adds a candidate), and only those
    # lines, the single lines over the limit and the (few) lines with a per-stay limit are
    # grouped exactly. Grouping every line cost 2-3x as much.
    dh = ("SELECT h FROM (SELECT h, lag(h) OVER (ORDER BY h) AS prev FROM (SELECT "
          "hash(sk, ik, d) AS h FROM rl WHERE is_day)) WHERE h = prev")
    cl = (f"SELECT * FROM rl WHERE is_stay OR (is_day AND (qty > max_qty_per_day + {EPS} OR "
          f"hash(sk, ik, d) IN ({dh})))")
    day = (f"SELECT sk, ik, d, (sum(qty) - any_value(max_qty_per_day)) / "
           f"sum(qty) AS f_day FROM cl WHERE is_day "
           f"GROUP BY sk, ik, d HAVING sum(qty) > any_value(max_qty_per_day) + {EPS}")
    stay = (f"SELECT sk, ik, (sum(qty) - any_value(max_per_stay)) / "
            f"sum(qty) AS f_stay FROM cl WHERE is_stay "
            f"GROUP BY sk, ik HAVING sum(qty) > any_value(max_per_stay) + {EPS}")
    hit = (f"WITH rl AS NOT MATERIALIZED ({rl}), cl AS MATERIALIZED ({cl}) "
           f"SELECT lc.*, coalesce(a.f_day, 0) AS f_day, coalesce(b.f_stay, 0) AS f_stay "
           f"FROM (SELECT * FROM cl WHERE qty > 0) lc "
           f"LEFT JOIN ({day}) a ON a.sk = lc.sk AND a.ik = lc.ik AND a.d = lc.d "
           f"LEFT JOIN ({stay}) b ON b.sk = lc.sk AND b.ik = lc.ik "
           "WHERE a.f_day IS NOT NULL OR b.f_stay IS NOT NULL")
    src = f"(SELECT * FROM ({hit}) JOIN {_S} USING (sk))"
    return _line_select(r, src, "greatest(f_day, f_stay) > 0",
                        "amount * greatest(f_day, f_stay)")

def cond_item_price_cap(r: Rule) -> Cond:
    cap = ("(CASE least(greatest(coalesce(level, 0), 1), 3) WHEN 1 THEN price_cap_lv1 "
           "WHEN 2 THEN price_cap_lv2 ELSE price_cap_lv3 END)")
    return _cond(f"{_classes(r)} AND (price_cap_lv1 IS NOT NULL OR price_cap_lv2 IS NOT NULL "
                 "OR price_cap_lv3 IS NOT NULL)",
                 f"{cap} IS NOT NULL AND unit_price > {cap} + {PRICE_TOL}",
                 f"(unit_price - {cap}) * qty")


def sql_item_course(r: Rule) -> str:
    # first use among this claim and the claims before it (admission time, settlement id):
    # what the single-claim path knows when it judges the claim
    src = (f"(SELECT *, min(d) OVER (PARTITION BY pk, ik ORDER BY adm_ts, "
           f"settlement_id) AS first_d FROM {_LC} WHERE course_days IS NOT NULL AND qty > 0)")
    return _line_select(r, src, f"{_classes(r)} AND date_diff('day', first_d, d) >= course_days")

def sql_item_period(r: Rule, periods: Sequence[int] = ()) -> str:
    # qty of the item in the period ending on the line's date, over this claim and the claims
    # before it (admission time, settlement id), as the single-claim path counts it
    pl = f"(SELECT * FROM {_LC} WHERE period_days IS NOT NULL AND max_per_period IS NOT NULL)"
    src = (f"(SELECT a.*, sum(b.qty) AS win FROM (SELECT * FROM {pl} WHERE qty > 0 AND "
           f"{_classes(r)}) a JOIN {pl} b ON b.pk = a.pk AND "
           "b.ik = a.ik AND b.d BETWEEN a.d - CAST(a.period_days - 1 AS INTEGER) "
           "AND a.d AND (b.adm_ts < a.adm_ts OR (b.adm_ts = a.adm_ts AND "
           "b.settlement_id <= a.settlement_id)) GROUP BY ALL)")
    return _line_select(r, src, f"win > max_per_period + {EPS}")

def sql_item_trace_missing(r: Rule) -> str:
    # "scanned" only for the lines that must be traced (an anti-join of those few lines
    # with trace_scans, not a mark join of every line)
    mts = r.params.get("medical_types")
    scope = f"medical_type IN {_list(mts)}" if mts is not None else "true"
    # an explicit ANTI JOIN: NOT EXISTS planned as a delim join (deduplicating the lines'
    # ids, then two joins) cost 3.5x as much; on lines with a line id the two agree
    src = (f"(SELECT * FROM (SELECT lc.* FROM (SELECT * FROM {_LK} WHERE trace_required AND "
           f"qty > 0 AND {_classes(r)} AND line_id IS NOT NULL) lc ANTI JOIN trace_scans t ON "
           f"t.line_id = lc.line_id) JOIN {_S} USING (sk) WHERE {scope})")
    return _line_select(r, src, _classes(r))


def sql_item_staff_status(r: Rule) -> str:
    # inner joins with the (small) registry of non-active or dead staff: the lines naming
    # such a staff member, and the lines naming none in claims whose attending doctor is one;
    # only those lines reach the condition, and no line scan carries the registry's columns
    reg = "staff_status, status_from, status_to, staff_death"
    own = f"SELECT lc.*, {reg} FROM _rs_lc lc JOIN _rs_st st ON st.staff_id = lc.l_staff"
    att = (f"SELECT lc.*, {reg} FROM (SELECT * FROM _rs_lc WHERE l_staff IS NULL) lc JOIN "
           "(SELECT s.sk, st.* FROM _rs_s s JOIN _rs_st st ON st.staff_id = s.attending_staff_id)"
           " a ON a.sk = lc.sk")
    src = f"(SELECT * FROM ({own} UNION ALL {att}) JOIN {_S} USING (sk))"
    return _line_select(r, src, "(staff_status IN ('suspended', 'terminated') AND (status_from IS "
                        "NULL OR d >= status_from) AND (status_to IS NULL OR d <= status_to)) OR "
                        "(staff_death IS NOT NULL AND d > staff_death)")


def cond_item_listed(r: Rule) -> Cond:
    # knowledge codes need no catalogue entry: the line context's item table ``_rs_cat``
    # holds a row for each (see ``item_table_sql``), so the code test is an item gate
    codes = _list(kp["code"] for kp in r.knowledge)
    return _cond(f"item_code IN {codes}", "internet" if r.params.get("internet_only") else "true")


def sql_pair_duplicate(r: Rule) -> str:
    k = _values([(kp["a"], kp["b"]) for kp in r.knowledge], ("a", "b"))
    a_codes = _list(kp["a"] for kp in r.knowledge)
    b_codes = _list(kp["b"] for kp in r.knowledge)
    src = (f"(SELECT lc.* FROM (SELECT * FROM _rs_kl WHERE item_code IN {b_codes}) lc JOIN "
           f"(SELECT DISTINCT p.settlement_id, p.d, k.b FROM (SELECT DISTINCT settlement_id, d, "
           f"item_code FROM _rs_kl WHERE qty > 0 AND item_code IN {a_codes}) p "
           f"JOIN {k} ON p.item_code = k.a) h ON h.settlement_id = lc.settlement_id AND "
           "h.d = lc.d AND h.b = lc.item_code)")
    return _line_select(r, src, "true")

def sql_pair_included(r: Rule) -> str:
    k = _values([(kp["service"], kp["consumable"]) for kp in r.knowledge], ("a", "b"))
    a_codes = _list(kp["service"] for kp in r.knowledge)
    b_codes = _list(kp["consumable"] for kp in r.knowledge)
    src = (f"(SELECT lc.* FROM (SELECT * FROM _rs_kl WHERE item_code IN {b_codes}) lc JOIN "
           f"(SELECT DISTINCT p.settlement_id, k.b FROM (SELECT DISTINCT settlement_id, "
           f"item_code FROM _rs_kl WHERE qty > 0 AND item_code IN {a_codes}) p "
           f"JOIN {k} ON p.item_code = k.a) h ON h.settlement_id = lc.settlement_id AND "
           "h.b = lc.item_code)")
    return _line_select(r, src, "true")

def sql_unbundle(r: Rule) -> str:
    parts = []
    for kp in r.knowledge:
        comps = _list(kp["components"])
        n = len(set(kp["components"]))
        parts.append(
            f"SELECT lc.* FROM _rs_kl lc JOIN (SELECT settlement_id, d FROM _rs_kl WHERE "
            f"qty > 0 AND item_code IN {comps} GROUP BY 1, 2 HAVING count(DISTINCT item_code) "
            f"= {n}) h USING (settlement_id, d) WHERE lc.item_code IN {comps}")
    src = ("(SELECT * FROM (" + " UNION ALL ".join(parts) + ") WHERE qty > 0 "
           "QUALIFY row_number() OVER (PARTITION BY line_id) = 1)")
    return _line_select(r, src, "true")


def sql_surgery_discount(r: Rule) -> str:
    rate = float(r.params["rate"])
    parts = []
    for kp in r.knowledge:
        parts.append(
            "SELECT *, row_number() OVER (PARTITION BY settlement_id, d ORDER BY "
            f"cat_price DESC, item_code, line_id) AS rn FROM _rs_kl "
            f"WHERE qty > 0 AND cat_price IS NOT NULL AND item_code IN {_list(kp['codes'])}")
    src = "(" + " UNION ALL ".join(parts) + ")"
    allowed = f"({rate} * cat_price)"
    return _line_select(r, src, f"rn >= 2 AND unit_price > {allowed} + {PRICE_TOL}",
                        f"(unit_price - {allowed}) * qty")

def sql_companion_missing(r: Rule) -> str:
    k = _values([(kp["item"], c) for kp in r.knowledge for c in kp["companions"]],
                ("item", "comp"))
    items = _list(kp["item"] for kp in r.knowledge)
    comps = _list(c for kp in r.knowledge for c in kp["companions"])
    src = (f"(SELECT * FROM _rs_kl lc WHERE item_code IN {items} AND NOT EXISTS (SELECT 1 FROM "
           f"(SELECT * FROM _rs_kl WHERE item_code IN {comps} AND qty > 0) o JOIN {k} ON "
           "o.item_code = k.comp WHERE k.item = lc.item_code AND "
           "o.settlement_id = lc.settlement_id))")
    return _line_select(r, src, "true")

def sql_duplicate_drug(r: Rule) -> str:
    excl = r.params.get("excluded_medical_types", [])
    grace = int(r.params.get("grace_days", 0))
    # the drug lines with only the settlement columns the checks read: joined with all of
    # them, the planner built its hash table on the settlements rather than on these lines
    base = (f"(SELECT lc.*, s.pk, s.adm_ts, s.settlement_id FROM (SELECT line_id, sk, ik, d, "
            f"days_supply, drug_group, qty, amount, l_staff FROM {_LK} WHERE qty > 0 AND "
            f"drug_group IS NOT NULL AND item_class IN {_list(schema.DRUG_CLASSES)}) lc JOIN "
            f"(SELECT sk, pk, adm_ts, settlement_id FROM _rs_s WHERE medical_type NOT IN "
            f"{_list(excl)}) s ON s.sk = lc.sk)")
    same_day = ("SELECT sk, d, drug_group FROM base GROUP BY ALL "
                "HAVING count(DISTINCT ik) > 1")
    supply = ("SELECT line_id FROM (SELECT line_id, d, max(d + CAST(days_supply AS INTEGER)) "
              "OVER (PARTITION BY pk, ik ORDER BY d, adm_ts, settlement_id, "
              "line_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end "
              f"FROM base WHERE days_supply > 0) WHERE prev_end - {grace} > d")
    src = (f"(WITH base AS MATERIALIZED {base} SELECT b.line_id, b.d, b.qty, b.amount, "
           "b.l_staff, s.settlement_id, s.person_id, s.facility_id, s.attending_staff_id FROM "
           f"(SELECT * FROM base WHERE (sk, d, drug_group) IN ({same_day}) OR line_id IN "
           f"({supply})) b JOIN _rs_s s ON s.sk = b.sk)")
    return _line_select(r, src, "true")

def sql_fee_outside_stay(r: Rule) -> str:
    # the one line check without an item gate, on its own so that the fused scan reads only
    # the lines of gated items: the lines of the stays (a join with the inpatient claims'
    # dates), then the settlement columns for the few lines outside them
    stays = (f"SELECT sk, adm_d AS a_d, dis_d AS b_d FROM _rs_s WHERE medical_type IN "
             f"{_list(r.params['medical_types'])}")
    src = (f"(SELECT * FROM (SELECT lc.* FROM _rs_lc lc JOIN ({stays}) x ON x.sk = lc.sk WHERE "
           f"NOT lc.dd AND (lc.d < x.a_d OR lc.d > x.b_d)) JOIN {_S} USING (sk))")
    return _line_select(r, src, "true")


def sql_second_line(r: Rule) -> str:
    window = int(r.params.get("window_days", SECOND_LINE_WINDOW))
    items = _list(kp["item"] for kp in r.knowledge)
    rows = [(kp["item"], c, None) for kp in r.knowledge for c in kp.get("first_line", ())]
    rows += [(kp["item"], None, g) for kp in r.knowledge for g in kp.get("first_line_groups", ())]
    k = _values(rows, ("item", "code", "grp"))
    codes = _list(x[1] for x in rows if x[1] is not None)
    groups = _list(x[2] for x in rows if x[2] is not None)
    # first-line uses of the persons that bill a second-line drug, tagged with that drug
    first = (f"SELECT DISTINCT u.person_id, u.d, u.adm_ts, u.settlement_id, k.item FROM "
             f"(SELECT person_id, d, adm_ts, settlement_id, item_code, drug_group FROM _rs_kl "
             f"WHERE qty > 0 AND (item_code IN {codes} OR drug_group IN {groups}) AND "
             f"person_id IN (SELECT person_id FROM _rs_kl WHERE item_code IN {items})) u "
             "JOIN " + k + " ON k.code = u.item_code OR k.grp = u.drug_group")
    src = (f"(SELECT * FROM _rs_kl lc WHERE item_code IN {items} AND NOT EXISTS ("
           f"SELECT 1 FROM ({first}) f WHERE f.person_id = lc.person_id AND "
           f"f.item = lc.item_code AND f.d < lc.d AND f.d >= lc.d - {window} AND "
           "(f.adm_ts < lc.adm_ts OR (f.adm_ts = lc.adm_ts AND "
           "f.settlement_id <= lc.settlement_id))))")
    return _line_select(r, src, "true")


def sql_trace_reused(r: Rule) -> str:
    # codes on two or more lines (min <> max: no distinct count), then the sales of each code
    # after its first in (admission time, settlement id, line id) order. Almost every code is
    # scanned once: repeated integer hashes (equal neighbours once sorted, cheaper than a
    # grouping with a group per scan) leave few candidates for the exact grouping on the text
    # code (a hash collision only adds a candidate)
    cand = ("SELECT h FROM (SELECT h, lag(h) OVER (ORDER BY h) AS prev FROM (SELECT "
            "hash(trace_code) AS h FROM trace_scans WHERE trace_code IS NOT NULL)) WHERE h = prev")
    # the scans of those candidates once (``tc``); the scanned lines of the repeated codes
    # joined once (``j``, with each line row's rowid), so the result rows are taken from the
    # line context by rowid rather than by a second probe on the text line id
    tc = ("SELECT trace_code, line_id FROM trace_scans WHERE trace_code IS NOT NULL AND "
          f"hash(trace_code) IN ({cand})")
    dup = "SELECT trace_code FROM tc GROUP BY 1 HAVING min(line_id) <> max(line_id)"
    j = ("SELECT t.trace_code, lc.rowid AS lr, lc.line_id, s.settlement_id, s.adm_ts FROM "
         f"(SELECT * FROM tc WHERE trace_code IN ({dup})) t JOIN _rs_lc lc ON lc.line_id = "
         "t.line_id JOIN _rs_s s ON s.sk = lc.sk WHERE lc.qty > 0")
    later = ("SELECT line_id FROM (SELECT line_id, row_number() OVER (PARTITION BY trace_code "
             "ORDER BY adm_ts, settlement_id, line_id) AS rn FROM (SELECT DISTINCT trace_code, "
             "line_id, settlement_id, adm_ts FROM j)) WHERE rn > 1")
    src = (f"(WITH tc AS MATERIALIZED ({tc}), j AS MATERIALIZED ({j}) SELECT * FROM (SELECT * "
           f"FROM _rs_lc WHERE rowid IN (SELECT lr FROM j WHERE line_id IN ({later}))) "
           f"JOIN {_S} USING (sk))")
    return _line_select(r, src, "true")

def _prefix_claims(r: Rule, codes_sql: str, cond: str, cols: Sequence[str],
                   rows: list[tuple[object, ...]]) -> str:
    """Claims with a code starting with a knowledge prefix (an equality join per prefix
    length, so no nested-loop join over all diagnoses); ``cond`` reads the knowledge row as
    ``h`` and the claim's settlement / person columns as ``s2``."""
    k = _values(rows, cols)
    prefixes = [str(row[cols.index("prefix")]) for row in rows]
    lens = sorted({len(p) for p in prefixes})
    # one scan keeps the codes whose first character starts some prefix; the joins per
    # prefix length read only those
    first = (f"left(code, 1) IN {_list(sorted({p[0] for p in prefixes}))}"
             if all(prefixes) else "true")
    hits = " UNION ALL ".join(
        f"SELECT c.sk, k.* FROM c JOIN (SELECT * FROM {k} WHERE "
        f"length(k.prefix) = {n}) k ON left(c.code, {n}) = k.prefix" for n in lens)
    where = (f"s.sk IN (WITH c AS MATERIALIZED (SELECT sk, code FROM ({codes_sql}) WHERE "
             f"{first}) SELECT s2.sk FROM ({hits}) h JOIN _rs_s s2 ON "
             f"s2.sk = h.sk WHERE {cond})")
    return _claim_select(r, "_rs_s s", where, "0.0")

def sql_diagnosis_sex(r: Rule) -> str:
    rows = [(kp["sex"], p) for kp in r.knowledge for p in kp["prefixes"]]
    return _prefix_claims(r, "SELECT sk, code FROM _rs_dx",
                          "s2.sex IN ('1', '2') AND s2.sex <> h.sex", ("sex", "prefix"), rows)


def sql_procedure_sex(r: Rule) -> str:
    rows = [(kp["sex"], p) for kp in r.knowledge for p in kp["prefixes"]]
    return _prefix_claims(r, "SELECT _rs_sk(settlement_id) AS sk, procedure_code AS code FROM "
                          "procedures WHERE settlement_id IS NOT NULL",
                          "s2.sex IN ('1', '2') AND s2.sex <> h.sex", ("sex", "prefix"), rows)


def sql_diagnosis_age(r: Rule) -> str:
    rows = [(p, int(kp["age_min_days"]), int(kp["age_max_days"]))
            for kp in r.knowledge for p in kp["prefixes"]]
    age = "date_diff('day', s2.birth_date, s2.adm_d)"
    return _prefix_claims(r, "SELECT sk, code FROM _rs_dx",
                          f"s2.birth_date IS NOT NULL AND ({age} < h.lo OR {age} > h.hi)",
                          ("prefix", "lo", "hi"), rows)


def sql_outpatient_in_stay(r: Rule) -> str:
    ip = _list(r.params["inpatient_types"])
    ex = _list(r.params.get("exempt_types", []))
    where = (f"s.medical_type NOT IN {ip} AND s.medical_type NOT IN {ex} AND s.sk "
             f"IN (SELECT o.sk FROM _rs_s o JOIN _rs_s t ON "
             f"t.pk = o.pk AND t.medical_type IN {ip} AND "
             "t.settlement_id <> o.settlement_id AND t.adm_ts < o.adm_ts AND "
             "o.adm_ts < t.dis_ts)")
    return _claim_select(r, "_rs_s s", where)


def sql_overlapping_stay(r: Rule) -> str:
    ip = _list(r.params["inpatient_types"])
    where = (f"s.medical_type IN {ip} AND s.sk IN (SELECT a.sk FROM "
             f"_rs_s a JOIN _rs_s t ON t.pk = a.pk AND "
             f"t.medical_type IN {ip} AND a.medical_type IN {ip} AND "
             "t.settlement_id <> a.settlement_id AND (t.adm_ts < a.adm_ts OR "
             "(t.adm_ts = a.adm_ts AND t.settlement_id < a.settlement_id)) AND "
             "t.adm_ts < a.dis_ts AND a.adm_ts < t.dis_ts)")
    return _claim_select(r, "_rs_s s", where)


def sql_after_death(r: Rule) -> str:
    where = ("s.death_date IS NOT NULL AND (s.adm_d > s.death_date OR s.sk IN ("
             "SELECT lc.sk FROM _rs_lc lc JOIN (SELECT sk, death_date FROM _rs_s WHERE "
             "death_date IS NOT NULL) x USING (sk) WHERE lc.d > x.death_date))")
    return _claim_select(r, "_rs_s s", where)


def sql_too_many_drugs(r: Rule) -> str:
    excl = _list(r.params.get("excluded_medical_types", []))
    mk = int(r.params["max_kinds"])
    # only settlements with more than max_kinds drug lines can break the limit: count them on
    # the integer keys alone (a few dozen per million settlements), then group those
    # settlements' lines by prescription, read from ``fee_lines`` (the line context holds no
    # prescription number: only this check reads it, for a few claims)
    drugs = f"SELECT ik FROM _rs_cat WHERE {_classes(r)}"
    busy = (f"SELECT b.sk, s.settlement_id FROM (SELECT sk FROM _rs_lc WHERE qty > 0 AND ik IN "
            f"({drugs}) GROUP BY 1 HAVING count(*) > {mk}) b JOIN _rs_s s ON s.sk = b.sk WHERE "
            f"s.medical_type NOT IN {excl}")
    rows = ("SELECT _rs_sk(settlement_id) AS sk, CAST(service_time AS DATE) AS d, "
            "_rs_ik(item_code) AS ik, prescription_no, amount FROM fee_lines WHERE qty > 0 AND "
            "settlement_id IN (SELECT settlement_id FROM busy)")
    lines = ("SELECT sk, nullif(prescription_no, '') AS rx, CASE WHEN "
             "nullif(prescription_no, '') IS NULL THEN d END AS rx_day, ik, amount "
             f"FROM ({rows}) JOIN _rs_catx USING (ik) WHERE {_classes(r)}")
    g = (f"SELECT sk, rx, rx_day, count(DISTINCT ik) AS n, sum(amount) AS amt "
         f"FROM ({lines}) GROUP BY 1, 2, 3")
    src = (f"_rs_s s JOIN (WITH busy AS MATERIALIZED ({busy}) SELECT sk, sum(amt) AS amt FROM "
           f"({g}) WHERE n > {mk} GROUP BY 1) v ON v.sk = s.sk")
    return _claim_select(r, src, "true", "v.amt")


def sql_split_admission(r: Rule) -> str:
    ip = _list(r.params["inpatient_types"])
    n = int(r.params.get("dx_prefix_len", 3))
    days = int(r.params["days"])
    where = (f"s.medical_type IN {ip} AND NOT coalesce(s.planned_readmission, false) AND "
             "nullif(s.main_diagnosis, '') IS NOT NULL AND s.sk IN (SELECT "
             "a.sk FROM _rs_s a JOIN _rs_s t ON t.pk = a.pk "
             f"AND t.facility_id = a.facility_id AND t.settlement_id <> a.settlement_id AND "
             f"t.medical_type IN {ip} AND nullif(t.main_diagnosis, '') IS NOT NULL AND "
             f"left(t.main_diagnosis, {n}) = left(a.main_diagnosis, {n}) AND "
             "t.dis_ts <= a.adm_ts AND date_diff('day', t.dis_d, a.adm_d) <= " + str(days)
             + ")")
    return _claim_select(r, "_rs_s s", where)


_SANCTION_WINDOW = ("s.settlement_restricted_until IS NOT NULL AND s.adm_d <= "
                    "s.settlement_restricted_until AND s.adm_d > s.settlement_restricted_until - "
                    f"{SUSPENSION_MAX_DAYS}")


def sql_person_suspended(r: Rule) -> str:
    # a restriction to named facilities is not a suspension: R48 judges it
    return _claim_select(r, "_rs_s s", f"{_SANCTION_WINDOW} AND s.restricted_fac IS NULL")


def sql_person_facility_restricted(r: Rule) -> str:
    where = (f"{_SANCTION_WINDOW} AND s.restricted_fac IS NOT NULL AND NOT "
             "coalesce(list_contains(s.restricted_fac, s.facility_id), false)")
    return _claim_select(r, "_rs_s s", where)


SIMPLE: dict[str, Callable[[Rule], Cond]] = {
    name[5:]: fn for name, fn in globals().items() if name.startswith("cond_") and callable(fn)
}
"""Checks that are a per-line condition over the line context: fused into one scan."""

SQL: dict[str, Callable[..., str]] = {
    name[4:]: fn for name, fn in globals().items() if name.startswith("sql_") and callable(fn)
}
for _name, _fn in SIMPLE.items():
    SQL[_name] = lambda r, f=_fn: _line_select(r, _LCL, f"({f(r)[0]}) AND ({f(r)[1]})", f(r)[2])


_ITEM_SCALARS = ("item_class", "cat_price", "price_cap_lv1", "price_cap_lv2", "price_cap_lv3",
                 "sex_limit", "age_min_days", "age_max_days", "min_facility_level",
                 "max_qty_per_day", "max_days_supply", "max_per_stay", "period_days",
                 "max_per_period", "course_days", "drug_group", "trace_required", "care_s",
                 "ins_s", "dept_s")
"""The scalar columns of the item table ``_rs_cat`` (those ``_rs_catx`` keeps)."""

_GATE_BITS = 62
"""Item gates per ``BIGINT`` mask column of the fused scan."""


@dataclass
class _Fused:
    """The simple rule versions compiled for one scan: a condition and a hit per version,
    the item gates as bit masks (mask column, expression) and the item columns read."""

    conds: list[str]
    cases: list[str]
    meta: list[tuple[object, ...]]
    masks: list[tuple[int, str]]
    used: list[str]

    @property
    def mask_columns(self) -> list[int]:
        return sorted({n for n, _ in self.masks})


def _fuse(rules: Sequence[Rule]) -> _Fused:
    cases, conds, meta, masks = [], [], [], []
    for i, r in enumerate(rules):
        gate, where, amount = SIMPLE[r.check](r)
        g = ""
        if gate != "true":
            # the gate as one bit of an integer mask per item row: a line carries one mask
            # column through the join instead of a boolean per rule
            n, bit = divmod(len(masks), _GATE_BITS)
            masks.append((n, f"CASE WHEN {gate} THEN {1 << bit} ELSE 0 END"))
            g = f"(_gm{n} & {1 << bit}) <> 0 AND "
        cond = f"({g}({where}) AND {_period(r, 'd')})"
        conds.append(cond)
        cases.append(f"CASE WHEN {cond} THEN {{'i': {i}, 'amt': CAST({amount} AS DOUBLE)}} END")
        meta.append((i, r.id, r.version, r.action, r.severity, r.message))
    text = " ".join(conds + cases)
    used = [c for c in _ITEM_SCALARS if re.search(rf"\b{c}\b", text)]
    return _Fused(conds, cases, meta, masks, used)


def gates_sql(rules: Sequence[Rule]) -> str:
    """``_rs_gates``: per item, the gates of the simple rule versions as bit masks and the
    scalar restrictions their conditions read (a few hundred rows). A context table rather
    than a subquery of the fused scan: DuckDB plans each ``IN`` list of a gate as a join, and
    inside the fused query those joins doubled its planning time (45 of 90 ms)."""
    f = _fuse(rules)
    bits = [f"CAST({' + '.join(e for n2, e in f.masks if n2 == n)} AS BIGINT) AS _gm{n}"
            for n in f.mask_columns]
    return (f"CREATE OR REPLACE TABLE _rs_gates AS SELECT {', '.join(['ik', *f.used, *bits])} "
            "FROM _rs_cat")


def fused_sql(rules: Sequence[Rule]) -> str:
    """One scan of the line context evaluating every simple rule version at once (reads
    ``_rs_gates``, :func:`gates_sql` of the same rules)."""
    f = _fuse(rules)
    m = _values(f.meta, ("i", "rule_id", "rule_version", "action", "severity", "message"))
    # only the settlement columns the conditions read (no text ids): gathering columns through
    # the joins for every line is what this scan costs; the ids are joined to the hits. The
    # item gates and restrictions come in one join by ``ik`` (every column it carries is
    # gathered for every line). When every check has an item gate, the lines of items with no
    # gate set (four in ten) are dropped by that join, before the settlement join
    if len(f.masks) == len(rules):
        any_gate = " OR ".join(f"_gm{n} <> 0" for n in f.mask_columns)
        gates = f"JOIN (SELECT * FROM _rs_gates WHERE {any_gate})"
    else:
        gates = "LEFT JOIN _rs_gates"
    sc = ("(SELECT sk, sex, birth_date, insurance_type, level, medical_type, internet, adm_d, "
          "dis_d, department FROM _rs_s)")
    src = (f"(SELECT *, date_diff('day', birth_date, d) AS age FROM _rs_lc JOIN {sc} USING (sk) "
           f"{gates} USING (ik))")
    # the OR of the conditions keeps the few violating lines; only those build the list of
    # hits (building and unnesting a list for every line was most of the scan's cost)
    hits = (f"SELECT sk, line_id, l_staff, d, unnest(list_filter([{', '.join(f.cases)}], "
            f"lambda x: x IS NOT NULL)) AS h FROM (SELECT * FROM {src} WHERE qty > 0 AND "
            f"({' OR '.join(f.conds)}))")
    return (f"SELECT k.rule_id, k.rule_version, k.action, k.severity, s.settlement_id, "
            f"x.line_id, s.person_id, s.facility_id, coalesce(x.l_staff, s.attending_staff_id), "
            f"x.d, round(x.h.amt, 2), k.message FROM ({hits}) x JOIN _rs_s s ON s.sk = x.sk "
            f"JOIN {m} ON k.i = x.h.i")

# ---------------------------------------------------------------------------------------------
# the context tables
# ---------------------------------------------------------------------------------------------
#
# Keys. Lines reach their settlement and item through 64-bit hashes of the ids, ``sk`` =
# ``_rs_sk(settlement_id)`` and ``ik`` = ``_rs_ik(item_code)``, computed while the line
# context is copied from ``fee_lines``: no join of every line with the settlements on a text
# id (that join, and carrying the settlement's text columns through it, was most of what the
# line context cost). The two hash functions are macros in the screen's database; after
# building the settlement and item tables the screen checks that the hash is one-to-one on
# their ids and starts again with a salted hash if it is not (``KEY_CHECKS``), so two
# settlements or two items never share a key. Since the keys need no other table, the line
# context is built independently of the settlement table. A fee line whose settlement id or
# item code is absent from those tables (import validation rejects such lines) could match
# an existing key only by a hash collision: probability (absent ids x present ids) / 2^64,
# 5e-6 for ten million of each.


def item_table_sql(rules: Iterable[Rule]) -> str:
    """``_rs_cat``: the catalogue's items with their restrictions, plus an empty row for each
    code a knowledge item names that the catalogue lacks, so every code a rule tests has a key
    and code tests are gates on this small table rather than text tests on every line."""
    codes = sorted(knowledge_codes(rules)[0] | listed_codes(rules))
    extra = ("" if not codes else
             " UNION ALL BY NAME SELECT _rs_ik(code) AS ik, code AS item_code FROM "
             f"{_values([(c,) for c in codes], ('code',))} WHERE code NOT IN (SELECT item_code "
             "FROM catalogue WHERE item_code IS NOT NULL)")
    return f"""
CREATE OR REPLACE TABLE _rs_cat AS
SELECT _rs_ik(item_code) AS ik, item_code, item_class,
       unit_price AS cat_price, price_cap_lv1, price_cap_lv2, price_cap_lv3, sex_limit,
       age_min_days, age_max_days, min_facility_level,
       string_split(care_modes, ';') AS care_l, string_split(insurance_types, ';') AS ins_l,
       string_split(indications, ';') AS ind_l, max_qty_per_day, max_days_supply, max_per_stay,
       period_days, max_per_period, course_days, string_split(departments, ';') AS dept_l,
       drug_group, coalesce(trace_required, false) AS trace_required,
       ';' || care_modes || ';' AS care_s, ';' || insurance_types || ';' AS ins_s,
       ';' || departments || ';' AS dept_s
FROM catalogue WHERE item_code IS NOT NULL{extra}
"""


_SETUP = ("""
CREATE OR REPLACE TABLE _rs_catx AS
SELECT * EXCLUDE (item_code, care_l, ins_l, ind_l, dept_l) FROM _rs_cat
""", """
CREATE OR REPLACE TABLE _rs_pid AS
SELECT DISTINCT person_id FROM settlements WHERE person_id IS NOT NULL
""", """
CREATE OR REPLACE TABLE _rs_pk AS
SELECT k.person_id, CAST(k.rowid AS INTEGER) AS pk, p.sex, p.death_date, p.birth_date,
       p.settlement_restricted_until,
       CASE WHEN p.restricted_facilities IS NOT NULL THEN nullif(list_filter(list_transform(
           string_split(p.restricted_facilities, ';'), lambda x: trim(x)), lambda x: x <> ''),
           []) END AS restricted_fac
FROM _rs_pid k
LEFT JOIN persons p ON p.person_id = k.person_id
""", """
CREATE OR REPLACE TABLE _rs_s AS
SELECT CASE WHEN s.settlement_id IS NOT NULL THEN _rs_sk(s.settlement_id) END AS sk,
       k.pk, s.settlement_id,
       s.attending_staff_id, s.department, s.person_id, s.facility_id, s.medical_type,
       s.insurance_type, s.admission_time AS adm_ts, s.discharge_time AS dis_ts,
       CAST(s.admission_time AS DATE) AS adm_d, CAST(s.discharge_time AS DATE) AS dis_d,
       s.main_diagnosis, s.planned_readmission, s.total_amount,
       k.sex, k.death_date, k.birth_date, k.settlement_restricted_until, k.restricted_fac,
       f.level, coalesce(f.internet_hospital, false) AS internet
FROM settlements s
LEFT JOIN _rs_pk k ON k.person_id = s.person_id
LEFT JOIN facilities f ON f.facility_id = s.facility_id
""", """
CREATE OR REPLACE TABLE _rs_lc AS
SELECT line_id, _rs_sk(settlement_id) AS sk, CAST(service_time AS DATE) AS d,
       _rs_ik(item_code) AS ik, qty, unit_price, amount, days_supply,
       staff_id AS l_staff, department AS l_dept,
       coalesce(approval_flag, false) AS appr, coalesce(discharge_drug, false) AS dd
FROM fee_lines WHERE settlement_id IS NOT NULL
""", """
CREATE OR REPLACE TABLE _rs_st AS
SELECT staff_id, qualification_status AS staff_status, status_from, status_to,
       death_date AS staff_death
FROM staff WHERE qualification_status <> 'active' OR death_date IS NOT NULL
""", """
CREATE OR REPLACE TABLE _rs_dx AS
SELECT _rs_sk(settlement_id) AS sk, diag_code AS code FROM diagnoses
WHERE settlement_id IS NOT NULL
UNION ALL
SELECT sk, main_diagnosis FROM _rs_s WHERE main_diagnosis IS NOT NULL AND sk IS NOT NULL
""")
"""The context tables besides ``_rs_cat`` (:func:`item_table_sql`), ``_rs_kl``
(:func:`knowledge_lines_sql`) and ``_rs_gates`` (:func:`gates_sql`); each is built once the
context tables it names exist."""

KEY_CHECKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "_rs_cat": ("_rs_ik", (
        "SELECT count(DISTINCT ik) = count(DISTINCT item_code) AND "
        "count(*) FILTER (WHERE ik = _rs_ik(NULL::VARCHAR)) = 0 FROM _rs_cat",)),
    "_rs_s": ("_rs_sk", (
        "SELECT count(DISTINCT sk) = count(settlement_id) FROM _rs_s",
        "SELECT count(DISTINCT sk) = count(DISTINCT settlement_id) FROM _rs_s")),
}
"""Per keyed table: its key macro and the checks that the key is one-to-one on the ids (the
first that holds passes; the second allows repeated ids, which only unvalidated data has)."""

_S = ("(SELECT * EXCLUDE (dis_ts, main_diagnosis, planned_readmission, total_amount, "
      "settlement_restricted_until, restricted_fac) FROM _rs_s)")
"""The settlement, person and facility columns a line query may read (joined by ``sk``)."""

_LC = (f"(SELECT *, date_diff('day', birth_date, d) AS age FROM _rs_lc JOIN {_S} USING (sk) "
       "LEFT JOIN _rs_catx USING (ik))")
"""Lines with their settlement, person, facility and scalar catalogue restrictions.
``_rs_lc`` itself holds only the line columns and the two keys, the settlement's ``sk`` and
the item's ``ik``: writing the settlement and catalogue columns into it for every line cost
more than joining them back by those keys in each query that reads them (the materialised
copy, not the join, is what the line context costs)."""

_LK = "(SELECT * FROM _rs_lc LEFT JOIN _rs_catx USING (ik))"
"""Lines with the scalar catalogue restrictions only: for the queries that filter or group
lines before they need the settlement columns (joined afterwards by ``sk``)."""

_LKL = "(SELECT * FROM _rs_lc LEFT JOIN (SELECT * EXCLUDE (item_code) FROM _rs_cat) USING (ik))"
"""The same with the catalogue's list restrictions."""

_LCL = (f"(SELECT *, date_diff('day', birth_date, d) AS age FROM _rs_lc JOIN {_S} USING (sk) "
        "LEFT JOIN _rs_cat USING (ik))")
"""Lines with every settlement and item column (one simple check on its own)."""


KNOWLEDGE_LINES = ("pair_duplicate", "pair_included", "unbundle", "companion_missing",
                   "surgery_discount", "second_line")
"""Checks that only look at lines of their knowledge codes: they read ``_rs_kl``."""


def knowledge_codes(rules: Iterable[Rule]) -> tuple[set[str], set[str]]:
    """The item codes and first-line drug groups named by the knowledge items of the
    :data:`KNOWLEDGE_LINES` checks."""
    codes: set[str] = set()
    groups: set[str] = set()
    for r in rules:
        if r.check not in KNOWLEDGE_LINES:
            continue
        for kp in r.knowledge:
            for key in ("a", "b", "service", "consumable", "bundle", "item"):
                if key in kp:
                    codes.add(kp[key])
            for key in ("components", "codes", "companions", "first_line"):
                codes.update(kp.get(key, ()))
            groups.update(kp.get("first_line_groups", ()))
    return codes, groups


def listed_codes(rules: Iterable[Rule]) -> set[str]:
    """The codes of the ``item_listed`` knowledge items (drugs off the list, internet-only
    exclusions)."""
    return {kp["code"] for r in rules if r.check == "item_listed" for kp in r.knowledge}


def knowledge_lines_sql(rules: Iterable[Rule]) -> str:
    """The lines billing any code named by a knowledge item (or of a first-line drug group):
    one scan, so the knowledge checks never scan the full line context."""
    codes, groups = knowledge_codes(rules)
    return ("CREATE OR REPLACE TABLE _rs_kl AS SELECT line_id, settlement_id, d, item_code, "
            "qty, unit_price, amount, l_staff, attending_staff_id, person_id, facility_id, "
            "adm_ts, cat_price, drug_group FROM (SELECT * FROM _rs_lc WHERE ik IN (SELECT ik "
            f"FROM _rs_cat WHERE item_code IN {_list(sorted(codes))} OR drug_group IN "
            f"{_list(sorted(groups))})) JOIN (SELECT ik, item_code, cat_price, drug_group FROM "
            "_rs_cat) USING (ik) JOIN _rs_s USING (sk)")


def rule_sql(r: Rule, con: duckdb.DuckDBPyConnection | None = None) -> str:
    """The ``SELECT`` producing the findings of one rule version ('' when nothing to check)."""
    fn = SQL[r.check]
    if r.check == "item_period":
        periods = [] if con is None else [
            int(x[0]) for x in con.execute(
                "SELECT DISTINCT period_days FROM catalogue WHERE period_days IS NOT NULL"
            ).fetchall()]
        return fn(r, periods)
    return fn(r)


_RS_DB = "_rs_db"
"""The in-memory database holding the screen's context tables while it runs: unlike TEMP
tables (private to one connection) a second connection (``con.cursor()``) sees them, so the
rule statements run from two connections at once."""

_SOURCES = re.compile(r"\b(settlements|fee_lines|persons|facilities|staff|catalogue|diagnoses|"
                      r"procedures|trace_scans)\b")
"""The canonical views, TEMP views of the caller's connection: a statement naming one runs on
that connection, the others on either."""


def screen_connection(con: duckdb.DuckDBPyConnection, rules: RuleSet | None = None,
                      *, table: str = "rule_findings") -> ScreenResult:
    """Screen the canonical views of ``con`` and (re)write ``table``."""
    rules = rules if rules is not None else load_rules()
    t0 = time.perf_counter()
    con.execute("SET enable_progress_bar = false")
    # findings are a set: no need to keep scan order through the joins and aggregations
    keep_order = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]  # type: ignore[index]
    db, sch, path = con.execute("SELECT current_database(), current_schema(), "  # type: ignore[misc]
                                "current_setting('search_path')").fetchone()
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"DETACH DATABASE IF EXISTS {_RS_DB}")
    con.execute(f"ATTACH ':memory:' AS {_RS_DB}")
    try:
        for salt in range(_SALTS):
            try:
                return _screen(con, rules, table, t0, f'"{db}"."{sch}"', salt)
            except _KeyCollision:  # start again with fresh context tables and a new salt
                con.execute(f'USE "{db}"."{sch}"')
                con.execute(f"DETACH DATABASE IF EXISTS {_RS_DB}")
                con.execute(f"ATTACH ':memory:' AS {_RS_DB}")
        raise RuntimeError(f"no collision-free hash keys after {_SALTS} salts")
    finally:
        con.execute(f'USE "{db}"."{sch}"')
        con.execute(f"SET search_path = {_q(path)}")
        con.execute(f"DETACH DATABASE IF EXISTS {_RS_DB}")
        con.execute(f"SET preserve_insertion_order = {str(bool(keep_order)).lower()}")


def _use_rs(con: duckdb.DuckDBPyConnection, home: str) -> None:
    """Create in the screen's database; resolve names there first, then in ``home``."""
    con.execute(f"USE {_RS_DB}")
    con.execute(f"SET search_path = '{_RS_DB}.main,{home.replace(chr(34), '')}'")


class _KeyCollision(Exception):
    """Two ids of a keyed context table share a hash key: the screen restarts salted."""


_SALTS = 8


def _define_keys(con: duckdb.DuckDBPyConnection, salt: int) -> None:
    """The key macros ``_rs_sk`` (settlement id) and ``_rs_ik`` (item code) for one salt."""
    expr = "hash(x)" if salt == 0 else f"hash(x, {salt})"
    for macro, _checks in KEY_CHECKS.values():
        con.execute(f"CREATE OR REPLACE MACRO {macro}(x) AS {expr}")


def _check_keys(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Raise :class:`_KeyCollision` unless the key of ``table`` is one-to-one on its ids (a
    collision of 64-bit hashes among a million ids has probability ~3e-8)."""
    if not any(con.execute(c).fetchone()[0] for c in KEY_CHECKS[table][1]):  # type: ignore[index]
        raise _KeyCollision(table)


@dataclass
class _Job:
    """One statement of a screen: a context table (``rules`` empty) or the findings of rule
    versions; it starts once the context tables it ``needs`` exist."""

    rules: list[Rule]
    sql: str
    needs: set[str]
    cost: int
    """A hint for the order: the longest statements start first, so none ends the run alone."""
    fn: Callable[[duckdb.DuckDBPyConnection], None] | None = None
    """Run instead of ``sql`` (which then only names the table it makes)."""

    @property
    def makes(self) -> str:
        return _made(self.sql)


_COST_HINTS = {"item_frequency": 8, "item_trace_missing": 8, "item_indication": 7,
               "duplicate_drug": 7, "trace_reused": 6, "too_many_drugs": 5, "item_period": 5,
               "diagnosis_sex": 3, "diagnosis_age": 3, "item_staff_status": 3, "item_course": 2}
"""Relative cost of the rule statements (measured on the synthetic world, docs/performance.md);
others count 1, the fused simple checks 20."""

_CONTEXT_ORDER = ("_rs_pid", "_rs_pk", "_rs_s", "_rs_cat", "_rs_catx", "_rs_gates", "_rs_lc",
                  "_rs_dx", "_rs_kl", "_rs_st")
"""The order the caller's connection builds the context tables in: the settlement table
first, so the second connection can start the claim-level rules while the line context is
copied."""


def _made(stmt: str) -> str:
    """The table a set-up statement creates."""
    return stmt.split(" AS", 1)[0].split()[-1]


def _screen(con: duckdb.DuckDBPyConnection, rules: RuleSet, table: str, t0: float, home: str,
            salt: int) -> ScreenResult:
    _use_rs(con, home)
    _define_keys(con, salt)
    steps: dict[str, float] = {}
    timeline: list[tuple[str, int, float, float]] = []
    simple = [r for r in rules if r.check in SIMPLE]
    context = {_made(stmt): stmt for stmt in
               (item_table_sql(rules), *_SETUP, knowledge_lines_sql(rules),
                *([gates_sql(simple)] if simple else []))}

    def needs(sql: str, makes: str = "") -> set[str]:
        return (set(re.findall(r"\b_rs_\w+", sql)) & set(context)) - {makes}

    # every statement is a job: the context tables, the fused simple checks, one per other
    # rule version. Two connections take them (a statement naming a canonical view only
    # ``con``, which sees the caller's TEMP views; the other ``con`` takes when it has none
    # ready): many statements use one core for most of their time (small inputs, windows,
    # few partitions), so one connection alone leaves the second core idle. Each connection
    # writes its own findings table; the result table is written once from both.
    order = [*(n for n in _CONTEXT_ORDER if n in context), *(n for n in context
                                                              if n not in _CONTEXT_ORDER)]
    jobs = [_Job([], context[name], needs(context[name], name), 10) for name in order]
    # the rule catalogue, written into the screen's database first (by the second connection,
    # idle at the start) and copied next to the findings at the end
    jobs.append(_Job([], "CREATE TABLE _rs_rules AS", set(), 30,
                     lambda c: write_rule_catalogue(c, rules, "_rs_rules")))
    if simple:
        sql = fused_sql(simple)
        jobs.append(_Job(simple, sql, needs(sql), 20))
    for r in rules:
        if r.check not in SIMPLE and (sql := rule_sql(r, con)):
            jobs.append(_Job([r], sql, needs(sql), _COST_HINTS.get(r.check, 1)))
    for i in (0, 1):
        con.execute(FINDINGS_DDL.replace("rule_findings", f"_rs_f{i}"))
    pinned = [j for j in jobs if _SOURCES.search(j.sql)]
    pinned = ([j for j in pinned if not j.rules]
              + sorted((j for j in pinned if j.rules), key=lambda j: -j.cost))
    shared = sorted((j for j in jobs if not _SOURCES.search(j.sql)), key=lambda j: -j.cost)
    done: set[str] = set()
    lock = threading.Lock()
    per: list[dict[str, object]] = []
    errors: list[BaseException] = []

    def take(i: int) -> _Job | None:
        """The next job whose context tables exist (the caller's connection takes its
        pinned jobs first); None when this connection has nothing left to do."""
        while True:
            with lock:
                if errors:
                    return None
                for queue in ((pinned, shared) if i == 0 else (shared,)):
                    for n, job in enumerate(queue):
                        if job.needs <= done:
                            return queue.pop(n)
                if not shared and (i == 1 or not pinned):
                    return None
            time.sleep(0.001)

    def run(c: duckdb.DuckDBPyConnection, i: int) -> None:
        try:
            while (job := take(i)) is not None:
                t1 = time.perf_counter()
                if not job.rules:
                    if job.fn is not None:
                        job.fn(c)
                    else:
                        c.execute(job.sql)
                    if job.makes in KEY_CHECKS:
                        _check_keys(c, job.makes)
                    t2 = time.perf_counter()
                    with lock:
                        steps[job.makes] = t2 - t1
                        done.add(job.makes)
                        timeline.append((job.makes, i, t1 - t0, t2 - t0))
                    continue
                c.execute(f"INSERT INTO _rs_f{i} {job.sql}")
                t2 = time.perf_counter()
                dt = (t2 - t1) / len(job.rules)
                with lock:
                    name = (job.rules[0].id if len(job.rules) == 1
                            else f"{len(job.rules)} simple rules")
                    timeline.append((name, i, t1 - t0, t2 - t0))
                    per.extend({"rule_id": r.id, "rule_version": r.version, "check": r.check,
                                "seconds": dt} for r in job.rules)
        except BaseException as e:  # re-raised by the caller
            with lock:
                errors.append(e)

    cur = con.cursor()
    try:
        _use_rs(cur, home)
        worker = threading.Thread(target=run, args=(cur, 1), daemon=True)
        worker.start()
        run(con, 0)
        worker.join()
    finally:
        cur.close()
    if errors:
        raise errors[0]
    t_end = time.perf_counter()
    n_lines = con.execute("SELECT count(*) FROM _rs_lc").fetchone()[0]  # type: ignore[index]
    n_settle = con.execute("SELECT count(*) FROM _rs_s").fetchone()[0]  # type: ignore[index]
    con.execute(f"USE {home}")
    # the findings and the rule catalogue replace the old ones together, or not at all
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {_RS_DB}._rs_f0 "
                    f"UNION ALL SELECT * FROM {_RS_DB}._rs_f1")
        con.execute(f"CREATE OR REPLACE TABLE rule_catalogue AS SELECT * FROM {_RS_DB}._rs_rules")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    counts = con.execute(f"SELECT rule_id, rule_version, count(*) AS findings, "
                         f"sum(amount) AS amount FROM {table} GROUP BY 1, 2").df()
    con.execute(f"DETACH DATABASE IF EXISTS {_RS_DB}")
    seconds = time.perf_counter() - t0
    order = {(r.id, r.version): n for n, r in enumerate(rules)}
    per.sort(key=lambda p: order[(p["rule_id"], p["rule_version"])])
    per_rule = pd.DataFrame(per).merge(counts, on=["rule_id", "rule_version"], how="left")
    per_rule["findings"] = per_rule["findings"].fillna(0).astype(int)
    per_rule["amount"] = per_rule["amount"].fillna(0.0)
    timeline.append(("findings table", 0, t_end - t0, seconds))
    return ScreenResult(int(n_lines), int(n_settle), int(per_rule["findings"].sum()), seconds,
                        per_rule, steps, sorted(timeline, key=lambda e: e[2]))


def write_rule_catalogue(con: duckdb.DuckDBPyConnection, rules: RuleSet,
                         table: str = "rule_catalogue") -> None:
    """The loaded rule versions as table ``rule_catalogue`` (for joins by inspectors)."""
    df = pd.DataFrame([{
        "rule_id": r.id, "rule_version": r.version, "name": r.name, "name_en": r.name_en,
        "rule_class": r.rule_class, "national_code": r.national_code, "check_kind": r.check,
        "scope": r.scope, "action": r.action, "severity": r.severity,
        "effective_from": r.effective_from, "effective_to": r.effective_to,
        "message": r.message, "message_en": r.message_en, "source": r.source,
    } for r in rules])
    con.register("_rs_rules_df", df)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _rs_rules_df")
    con.unregister("_rs_rules_df")


def screen(workspace: str | os.PathLike[str] | Workspace, rules: RuleSet | None = None,
           *, threads: int | None = None) -> ScreenResult:
    """Screen a workspace set-wise and write ``rule_findings`` into its DuckDB file."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.require()
    with ws.connect() as con:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        return screen_connection(con, rules)


def read_findings(workspace: str | os.PathLike[str] | Workspace) -> pd.DataFrame:
    """The ``rule_findings`` table of a screened workspace."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    with ws.connect(read_only=True) as con:
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        if "rule_findings" not in tables:
            from fraudscan.errors import FraudscanError

            raise FraudscanError(f"{ws.path}: no rule_findings table; run `fraudscan rules "
                                 "screen` first")
        return con.execute("SELECT * FROM rule_findings").df()
