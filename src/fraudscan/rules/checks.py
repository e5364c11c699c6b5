"""The single-claim implementation of every check template.

Each ``_k_<check>`` method judges one claim against one rule *version*, only for lines (or, for
claim-level checks, an admission date) that fall in the version's period. The set-wise SQL twin of
each method is in :mod:`fraudscan.rules.batch`; ``tests/test_rules_equivalence.py`` holds the two
together on a synthetic world.

Conventions shared with the batch path (docs/rules.md):
* only lines with ``qty > 0`` are flagged; sums (per day / stay / period) include refunds;
* a line's service date is the date of ``service_time``; a claim's is its admission date;
* ordering between claims is (admission time, settlement id, line id).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import TYPE_CHECKING

from fraudscan import schema
from fraudscan.rules.context import Claim, Facility, Finding, Item, Line
from fraudscan.rules.model import Rule, RuleSet

if TYPE_CHECKING:
    from fraudscan.rules.state import StateStore

Pairs = list[tuple[Line, Item | None]]
EPS = 1e-9
PRICE_TOL = 0.005
NEONATE_DAYS = 28
SECOND_LINE_WINDOW = 180
DRUGS = frozenset(schema.DRUG_CLASSES)


def age_band_violation(band: str, it: Item, age: int) -> bool:
    """Whether ``age`` (days) breaks the item's age limits, for items that ``band`` selects."""
    lo, hi = it.age_min_days, it.age_max_days
    if lo is None and hi is None:
        return False
    lo0 = lo or 0
    if band == "neonate":
        return hi is not None and hi <= NEONATE_DAYS and (age > hi or age < lo0)
    if band == "child_only":
        return hi is not None and hi > NEONATE_DAYS and lo0 == 0 and age > hi
    if band == "child_band":
        return hi is not None and hi > NEONATE_DAYS and lo0 > 0 and (age < lo0 or age > hi)
    if band == "adult_only":
        return hi is None and lo0 > 0 and age < lo0
    # any_non_neonate
    if hi is not None and hi <= NEONATE_DAYS:
        return False
    return age < lo0 or (hi is not None and age > hi)


class Checker:
    """Judges one claim at a time against a rule set, with reference data held in memory."""

    def __init__(
        self,
        rules: RuleSet,
        catalogue: dict[str, Item],
        facilities: dict[str, Facility] | None = None,
        state: StateStore | None = None,
    ):
        self.rules = rules
        self.catalogue = catalogue
        self.facilities = facilities or {}
        self.state = state
        self._classes = {id(r): frozenset(r.params.get("classes", schema.ITEM_CLASSES))
                         for r in rules}
        # (rule, check, item codes it can fire on or None): a per-line check whose every
        # finding needs a catalogue attribute (ITEM_GATES) is skipped outright when no line
        # of the claim has an item with it, so most claims visit only the rules that can apply
        self._plan: list[tuple[Rule, object, frozenset[str] | None]] = []
        gate_cache: dict[tuple[str, frozenset[str]], frozenset[str]] = {}
        for r in rules:
            fn = getattr(self, f"_k_{r.check}")
            pred = ITEM_GATES.get(r.check)
            codes = None
            if r.check in KNOWLEDGE_GATES:
                codes = KNOWLEDGE_GATES[r.check](r)
            elif pred is not None:
                cls = self._classes[id(r)]
                codes = gate_cache.get((r.check, cls))
                if codes is None:
                    codes = frozenset(k for k, it in catalogue.items()
                                      if it.item_class in cls and pred(it))
                    gate_cache[(r.check, cls)] = codes
            self._plan.append((r, fn, codes))
        self._second = {id(r): second_line_map(r, catalogue) for r in rules
                        if r.check == "second_line"}
        self.track: frozenset[str] = frozenset().union(
            *(codes for m in self._second.values() for codes in m.values()))
        """Item codes whose use the cross-claim state must record (first-line drugs)."""

    # -- entry point ------------------------------------------------------------------------
    def check(self, claim: Claim) -> list[Finding]:
        """All findings for ``claim`` (deterministic order: rule id, line id)."""
        if claim.facility_level is None or not claim.internet_hospital:
            fac = self.facilities.get(claim.facility_id)
            if fac is not None:
                if claim.facility_level is None:
                    claim.facility_level = fac.level
                claim.internet_hospital = claim.internet_hospital or fac.internet_hospital
        cat = self.catalogue
        pairs = [(ln, cat.get(ln.item_code)) for ln in claim.lines]
        out: list[Finding] = []
        codes = {ln.item_code for ln in claim.lines}
        for rule, fn, gate in self._plan:
            if gate is not None and gate.isdisjoint(codes):
                continue
            fn(rule, claim, pairs, out)  # type: ignore[operator]
        out.sort(key=lambda f: (f.rule_id, f.line_id or "", f.rule_version))
        return out

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _line(rule: Rule, c: Claim, ln: Line, amount: float, out: list[Finding]) -> None:
        out.append(Finding(rule.id, rule.version, rule.action, rule.severity, c.settlement_id,
                           ln.line_id, c.person_id, c.facility_id,
                           ln.staff_id or c.attending_staff_id, ln.service_date,
                           round(amount, 2), rule.message))

    @staticmethod
    def _claim(rule: Rule, c: Claim, amount: float, out: list[Finding]) -> None:
        out.append(Finding(rule.id, rule.version, rule.action, rule.severity, c.settlement_id,
                           None, c.person_id, c.facility_id, c.attending_staff_id,
                           c.admission_date, round(amount, 2), rule.message))

    def _items(self, rule: Rule, pairs: list[tuple[Line, Item | None]]
               ) -> Iterable[tuple[Line, Item]]:
        """Positive lines in the rule's period whose catalogue item is in its classes."""
        classes = self._classes[id(rule)]
        for ln, it in pairs:
            if it is not None and ln.qty > 0 and it.item_class in classes \
                    and rule.in_force(ln.service_date):
                yield ln, it

    # -- catalogue restrictions -------------------------------------------------------------
    def _k_item_sex(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if c.sex not in ("1", "2"):
            return
        for ln, it in self._items(rule, pairs):
            if it.sex_limit is not None and it.sex_limit != c.sex:
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_age(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if c.birth_date is None:
            return
        band = rule.params["band"]
        for ln, it in self._items(rule, pairs):
            if (it.age_min_days is not None or it.age_max_days is not None) and \
                    age_band_violation(band, it, (ln.service_date - c.birth_date).days):
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_insurance(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        wi = rule.params["group"] == "work_injury"
        for ln, it in self._items(rule, pairs):
            ins = it.insurance_types
            if ins is not None and ("410" in ins) == wi and c.insurance_type not in ins:
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_facility_level(self, rule: Rule, c: Claim, pairs: Pairs,
                               out: list[Finding]) -> None:
        lvl = c.facility_level or 0
        for ln, it in self._items(rule, pairs):
            if it.min_facility_level is not None and lvl < it.min_facility_level:
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_care_mode(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        for ln, it in self._items(rule, pairs):
            if it.care_modes is not None and c.medical_type not in it.care_modes:
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_indication(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        dxs = c.all_diagnoses
        for ln, it in self._items(rule, pairs):
            ind = it.indications
            if ind is None or ln.approval_flag:
                continue
            if not any(dx.startswith(p) for dx in dxs for p in ind):
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_department(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        for ln, it in self._items(rule, pairs):
            dept = ln.department or c.department
            if it.departments is not None and dept is not None and dept not in it.departments:
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_days_supply(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        for ln, it in self._items(rule, pairs):
            if it.max_days_supply is not None and ln.days_supply is not None \
                    and ln.days_supply > it.max_days_supply:
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_qty_per_day(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        for ln, it in self._items(rule, pairs):
            if it.max_qty_per_day is None:
                continue
            per_day = ln.qty / max(ln.days_supply or 1, 1)
            if per_day > it.max_qty_per_day + EPS:
                self._line(rule, c, ln, ln.amount * (1 - it.max_qty_per_day / per_day), out)

    def _k_item_frequency(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        day_cls = frozenset(rule.params["day_classes"])
        stay_cls = frozenset(rule.params["stay_classes"])
        day: dict[tuple[str, date], float] = defaultdict(float)
        stay: dict[str, float] = defaultdict(float)
        for ln, it in pairs:
            if it is None:
                continue
            if it.max_qty_per_day is not None and it.item_class in day_cls:
                day[(ln.item_code, ln.service_date)] += ln.qty
            if it.max_per_stay is not None and it.item_class in stay_cls:
                stay[ln.item_code] += ln.qty
        if not day and not stay:
            return
        for ln, it in pairs:
            if it is None or ln.qty <= 0 or not rule.in_force(ln.service_date):
                continue
            frac = 0.0
            if it.max_qty_per_day is not None and it.item_class in day_cls:
                s = day[(ln.item_code, ln.service_date)]
                if s > it.max_qty_per_day + EPS:
                    frac = (s - it.max_qty_per_day) / s
            if it.max_per_stay is not None and it.item_class in stay_cls:
                s = stay[ln.item_code]
                if s > it.max_per_stay + EPS:
                    frac = max(frac, (s - it.max_per_stay) / s)
            if frac > 0:
                self._line(rule, c, ln, ln.amount * frac, out)

    def _k_item_price_cap(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        lvl = min(max(c.facility_level or 0, 1), 3)
        for ln, it in self._items(rule, pairs):
            cap = it.price_caps[lvl - 1]
            if cap is not None and ln.unit_price > cap + PRICE_TOL:
                self._line(rule, c, ln, (ln.unit_price - cap) * ln.qty, out)

    def _k_item_course(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        first: dict[str, date] = {}
        for ln, it in pairs:
            if it is not None and it.course_days is not None and ln.qty > 0:
                f = first.get(ln.item_code)
                first[ln.item_code] = ln.service_date if f is None else min(f, ln.service_date)
        if not first:
            return
        if self.state is not None:
            for code in first:
                f = self.state.first_use(c.person_id, code, c.settlement_id)
                if f is not None and f < first[code]:
                    first[code] = f
        for ln, it in self._items(rule, pairs):
            if it.course_days is not None and \
                    (ln.service_date - first[ln.item_code]).days >= it.course_days:
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_period(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        for ln, it in self._items(rule, pairs):
            if it.period_days is None or it.max_per_period is None:
                continue
            lo = ln.service_date - timedelta(days=it.period_days - 1)
            hi = ln.service_date
            total = sum(o.qty for o in c.lines
                        if o.item_code == ln.item_code and lo <= o.service_date <= hi)
            if self.state is not None:
                total += self.state.usage_between(c.person_id, ln.item_code, lo, hi,
                                                  c.settlement_id)
            if total > it.max_per_period + EPS:
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_trace_missing(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        mts = rule.params.get("medical_types")
        if mts is not None and c.medical_type not in mts:
            return
        for ln, it in self._items(rule, pairs):
            if it.trace_required and not ln.trace_codes:
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_staff_status(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if self.state is None:
            return
        for ln, _it in pairs:
            if ln.qty <= 0 or not rule.in_force(ln.service_date):
                continue
            sid = ln.staff_id or c.attending_staff_id
            if sid is None:
                continue
            rec = self.state.staff(sid)
            if rec is None:
                continue
            status, frm, to, died = rec
            d = ln.service_date
            barred = status in ("suspended", "terminated") and (frm is None or d >= frm) and \
                (to is None or d <= to)
            if barred or (died is not None and d > died):
                self._line(rule, c, ln, ln.amount, out)

    def _k_item_listed(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if rule.params.get("internet_only") and not c.internet_hospital:
            return
        codes = _codes(rule, "code")
        for ln, _it in pairs:
            if ln.qty > 0 and ln.item_code in codes and rule.in_force(ln.service_date):
                self._line(rule, c, ln, ln.amount, out)

    # -- knowledge pairs and groups ---------------------------------------------------------
    def _k_pair_duplicate(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        on_day = _codes_on_day(c)
        bs = _pair_map(rule, "b", "a")
        for ln in c.lines:
            if ln.qty > 0 and ln.item_code in bs and rule.in_force(ln.service_date) \
                    and bs[ln.item_code] & on_day.get(ln.service_date, frozenset()):
                self._line(rule, c, ln, ln.amount, out)

    def _k_pair_included(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        present = {ln.item_code for ln in c.lines if ln.qty > 0}
        cons = _pair_map(rule, "consumable", "service")
        for ln in c.lines:
            if ln.qty > 0 and ln.item_code in cons and rule.in_force(ln.service_date) \
                    and cons[ln.item_code] & present:
                self._line(rule, c, ln, ln.amount, out)

    def _k_unbundle(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        on_day = _codes_on_day(c)
        flagged: set[str] = set()
        for kp in rule.knowledge:
            comps = set(kp["components"])
            for d, codes in on_day.items():
                if comps <= codes:
                    for ln in c.lines:
                        if ln.qty > 0 and ln.service_date == d and ln.item_code in comps \
                                and ln.line_id not in flagged and rule.in_force(d):
                            flagged.add(ln.line_id)
                            self._line(rule, c, ln, ln.amount, out)

    def _k_surgery_discount(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        rate = float(rule.params["rate"])
        for kp in rule.knowledge:
            codes = set(kp["codes"])
            groups: dict[date, list[tuple[float, str, str, Line]]] = defaultdict(list)
            for ln, it in pairs:
                if ln.qty > 0 and ln.item_code in codes and it is not None:
                    groups[ln.service_date].append((-it.unit_price, ln.item_code, ln.line_id,
                                                    ln))
            for d, g in groups.items():
                if len(g) < 2 or not rule.in_force(d):
                    continue
                g.sort(key=lambda t: t[:3])
                for negcp, _code, _lid, ln in g[1:]:
                    allowed = rate * -negcp
                    if ln.unit_price > allowed + PRICE_TOL:
                        self._line(rule, c, ln, (ln.unit_price - allowed) * ln.qty, out)

    def _k_companion_missing(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        present = {ln.item_code for ln in c.lines if ln.qty > 0}
        need = {kp["item"]: set(kp["companions"]) for kp in rule.knowledge}
        for ln in c.lines:
            if ln.qty > 0 and ln.item_code in need and rule.in_force(ln.service_date) \
                    and not need[ln.item_code] & present:
                self._line(rule, c, ln, ln.amount, out)

    # -- drugs across lines and claims ------------------------------------------------------
    def _k_duplicate_drug(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if c.medical_type in rule.params.get("excluded_medical_types", ()):
            return
        grace = int(rule.params.get("grace_days", 0))
        drug = [(ln, it) for ln, it in pairs
                if it is not None and ln.qty > 0 and it.item_class in DRUGS]
        if not drug:
            return
        groups: dict[tuple[date, str], set[str]] = defaultdict(set)
        for ln, it in drug:
            if it.drug_group is not None:
                groups[(ln.service_date, it.drug_group)].add(ln.item_code)
        flagged: set[str] = set()
        for ln, it in drug:
            if it.drug_group is not None and len(groups[(ln.service_date, it.drug_group)]) > 1:
                flagged.add(ln.line_id)
        supply = sorted(((ln.service_date, ln.line_id, ln) for ln, it in drug
                         if it.drug_group is not None and ln.days_supply is not None
                         and ln.days_supply > 0),
                        key=lambda t: t[:2])
        ends: dict[str, date] = {}
        excl = tuple(rule.params.get("excluded_medical_types", ()))
        for d, _lid, ln in supply:
            prev = ends.get(ln.item_code)
            if self.state is not None:
                st = self.state.supply_end_before(c.person_id, ln.item_code, d,
                                                  c.admission_time, c.settlement_id, excl)
                if st is not None and (prev is None or st > prev):
                    prev = st
            if prev is not None and (prev - timedelta(days=grace)) > d:
                flagged.add(ln.line_id)
            end = d + timedelta(days=ln.days_supply or 0)
            ends[ln.item_code] = end if prev is None or end > prev else prev
        for ln, _it in drug:
            if ln.line_id in flagged and rule.in_force(ln.service_date):
                self._line(rule, c, ln, ln.amount, out)

    def _k_fee_outside_stay(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if c.medical_type not in rule.params["medical_types"]:
            return
        a, b = c.admission_date, c.discharge_date
        for ln in c.lines:
            if ln.qty > 0 and not ln.discharge_drug and (ln.service_date < a or
                                                        ln.service_date > b) \
                    and rule.in_force(ln.service_date):
                self._line(rule, c, ln, ln.amount, out)

    def _k_second_line(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        need = self._second[id(rule)]
        hits = [ln for ln in c.lines if ln.qty > 0 and ln.item_code in need
                and rule.in_force(ln.service_date)]
        if not hits:
            return
        window = int(rule.params.get("window_days", SECOND_LINE_WINDOW))
        for ln in hits:
            first = need[ln.item_code]
            hi = ln.service_date - timedelta(days=1)
            lo = ln.service_date - timedelta(days=window)
            if any(o.qty > 0 and o.item_code in first and lo <= o.service_date <= hi
                   for o in c.lines):
                continue
            if self.state is not None and self.state.used_any(c.person_id, first, lo, hi,
                                                               c.settlement_id):
                continue
            self._line(rule, c, ln, ln.amount, out)

    def _k_trace_reused(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        first_in_claim: dict[str, str] = {}
        for ln in c.lines:
            if ln.qty > 0:
                for code in ln.trace_codes:
                    f = first_in_claim.get(code)
                    if f is None or ln.line_id < f:
                        first_in_claim[code] = ln.line_id
        if not first_in_claim:
            return
        me = (c.admission_time, c.settlement_id)
        for ln in c.lines:
            if ln.qty <= 0 or not ln.trace_codes or not rule.in_force(ln.service_date):
                continue
            hit = False
            for code in ln.trace_codes:
                if first_in_claim[code] < ln.line_id:
                    hit = True
                    break
                if self.state is not None:
                    other = self.state.trace_first(code, c.settlement_id)
                    if other is not None and other < me:
                        hit = True
                        break
            if hit:
                self._line(rule, c, ln, ln.amount, out)

    # -- claim-level ------------------------------------------------------------------------
    def _k_diagnosis_sex(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if c.sex in ("1", "2") and rule.in_force(c.admission_date) and \
                _prefix_hit(rule, c.all_diagnoses, lambda kp: kp["sex"] != c.sex):
            self._claim(rule, c, 0.0, out)

    def _k_procedure_sex(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if c.sex in ("1", "2") and rule.in_force(c.admission_date) and \
                _prefix_hit(rule, c.procedures, lambda kp: kp["sex"] != c.sex):
            self._claim(rule, c, 0.0, out)

    def _k_diagnosis_age(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if c.birth_date is None or not rule.in_force(c.admission_date):
            return
        age = (c.admission_date - c.birth_date).days
        if _prefix_hit(rule, c.all_diagnoses,
                       lambda kp: age < kp["age_min_days"] or age > kp["age_max_days"]):
            self._claim(rule, c, 0.0, out)

    def _k_outpatient_in_stay(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        ip = rule.params["inpatient_types"]
        if self.state is None or c.medical_type in ip or \
                c.medical_type in rule.params.get("exempt_types", ()) or \
                not rule.in_force(c.admission_date):
            return
        for st in self.state.stays(c.person_id):
            if st.settlement_id != c.settlement_id and st.medical_type in ip and \
                    st.admission_time < c.admission_time and \
                    (st.discharge_time is None or c.admission_time < st.discharge_time):
                self._claim(rule, c, c.total_amount, out)
                return

    def _k_overlapping_stay(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        ip = rule.params["inpatient_types"]
        if self.state is None or c.medical_type not in ip or not rule.in_force(c.admission_date):
            return
        me = (c.admission_time, c.settlement_id)
        for st in self.state.stays(c.person_id):
            if st.settlement_id != c.settlement_id and st.medical_type in ip and \
                    (st.admission_time, st.settlement_id) < me and \
                    st.admission_time < c.discharge_time and \
                    (st.discharge_time is None or c.admission_time < st.discharge_time):
                self._claim(rule, c, c.total_amount, out)
                return

    def _k_after_death(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if self.state is None or not rule.in_force(c.admission_date):
            return
        rec = self.state.person(c.person_id)
        died = rec[0] if rec else None
        if died is None:
            return
        if c.admission_date > died or any(ln.service_date > died for ln in c.lines):
            self._claim(rule, c, c.total_amount, out)

    def _k_too_many_drugs(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if c.medical_type in rule.params.get("excluded_medical_types", ()) or \
                not rule.in_force(c.admission_date):
            return
        classes = self._classes[id(rule)]
        groups: dict[str, set[str]] = defaultdict(set)
        amounts: dict[str, float] = defaultdict(float)
        for ln, it in pairs:
            if it is not None and ln.qty > 0 and it.item_class in classes:
                key = ln.prescription_no or f"@{ln.service_date.isoformat()}"
                groups[key].add(ln.item_code)
                amounts[key] += ln.amount
        over = [k for k, v in groups.items() if len(v) > rule.params["max_kinds"]]
        if over:
            self._claim(rule, c, sum(amounts[k] for k in over), out)

    def _k_split_admission(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        ip = rule.params["inpatient_types"]
        if self.state is None or c.medical_type not in ip or c.planned_readmission or \
                not c.main_diagnosis or not rule.in_force(c.admission_date):
            return
        n = int(rule.params.get("dx_prefix_len", 3))
        days = int(rule.params["days"])
        dx = c.main_diagnosis[:n]
        for st in self.state.stays(c.person_id):
            if st.settlement_id == c.settlement_id or st.medical_type not in ip or \
                    st.facility_id != c.facility_id or st.discharge_time is None or \
                    not st.main_diagnosis or st.main_diagnosis[:n] != dx:
                continue
            if st.discharge_time <= c.admission_time and \
                    (c.admission_date - st.discharge_time.date()).days <= days:
                self._claim(rule, c, c.total_amount, out)
                return

    def _k_person_suspended(self, rule: Rule, c: Claim, pairs: Pairs, out: list[Finding]) -> None:
        if self.state is None or not rule.in_force(c.admission_date):
            return
        rec = self.state.person(c.person_id)
        until = rec[1] if rec else None
        # a restriction to named facilities is not a suspension: R48 judges it
        if until is not None and until - timedelta(days=SUSPENSION_MAX_DAYS) < \
                c.admission_date <= until and not self.state.person_facilities(c.person_id):
            self._claim(rule, c, c.total_amount, out)

    def _k_person_facility_restricted(self, rule: Rule, c: Claim, pairs: Pairs,
                                      out: list[Finding]) -> None:
        if self.state is None or not rule.in_force(c.admission_date):
            return
        allowed = self.state.person_facilities(c.person_id)
        rec = self.state.person(c.person_id)
        until = rec[1] if rec else None
        if allowed and until is not None and c.facility_id not in allowed and \
                until - timedelta(days=SUSPENSION_MAX_DAYS) < c.admission_date <= until:
            self._claim(rule, c, c.total_amount, out)


ITEM_GATES: dict[str, Callable[[Item], bool]] = {
    "item_sex": lambda it: it.sex_limit is not None,
    "item_age": lambda it: it.age_min_days is not None or it.age_max_days is not None,
    "item_insurance": lambda it: it.insurance_types is not None,
    "item_facility_level": lambda it: it.min_facility_level is not None,
    "item_care_mode": lambda it: it.care_modes is not None,
    "item_indication": lambda it: it.indications is not None,
    "item_department": lambda it: it.departments is not None,
    "item_days_supply": lambda it: it.max_days_supply is not None,
    "item_qty_per_day": lambda it: it.max_qty_per_day is not None,
    "item_period": lambda it: it.period_days is not None and it.max_per_period is not None,
    "item_trace_missing": lambda it: bool(it.trace_required),
    "item_price_cap": lambda it: any(cap is not None for cap in it.price_caps),
    "item_course": lambda it: it.course_days is not None,
}
"""Per-line checks → the catalogue attribute every one of their findings needs (the check reads
only lines from ``_items`` and has no side effects, so a claim without such an item cannot fire
it). Keep in step with the ``_k_`` methods above."""

KNOWLEDGE_GATES: dict[str, Callable[[Rule], frozenset[str]]] = {
    "item_listed": lambda r: frozenset(kp["code"] for kp in r.knowledge),
    "pair_duplicate": lambda r: frozenset(kp["b"] for kp in r.knowledge),
    "pair_included": lambda r: frozenset(kp["consumable"] for kp in r.knowledge),
    "unbundle": lambda r: frozenset(c for kp in r.knowledge for c in kp["components"]),
    "surgery_discount": lambda r: frozenset(c for kp in r.knowledge for c in kp["codes"]),
    "companion_missing": lambda r: frozenset(kp["item"] for kp in r.knowledge),
}
"""Checks of knowledge lists → the item codes one of a claim's lines must carry for them to fire
(the flagged side of each pair or group), same use as :data:`ITEM_GATES`."""


SUSPENSION_MAX_DAYS = 365
"""Networked-settlement suspensions and restrictions to named facilities last 3-12 months
(Regulation Art. 41), so a settlement is in one when it falls in the 365 days up to
``settlement_restricted_until``."""


def second_line_map(rule: Rule, catalogue: dict[str, Item]) -> dict[str, frozenset[str]]:
    """Second-line item code → the first-line item codes (listed codes plus catalogue items of
    the listed drug groups) of one ``second_line`` rule version."""
    out: dict[str, set[str]] = defaultdict(set)
    for kp in rule.knowledge:
        groups = set(kp.get("first_line_groups", ()))
        out[kp["item"]] |= set(kp.get("first_line", ()))
        if groups:
            out[kp["item"]] |= {code for code, it in catalogue.items()
                                if it.drug_group in groups}
    return {k: frozenset(v) for k, v in out.items()}


def _codes(rule: Rule, key: str) -> frozenset[str]:
    return frozenset(kp[key] for kp in rule.knowledge)


def _pair_map(rule: Rule, flagged: str, other: str) -> dict[str, frozenset[str]]:
    m: dict[str, set[str]] = defaultdict(set)
    for kp in rule.knowledge:
        m[kp[flagged]].add(kp[other])
    return {k: frozenset(v) for k, v in m.items()}


def _codes_on_day(c: Claim) -> dict[date, set[str]]:
    on: dict[date, set[str]] = defaultdict(set)
    for ln in c.lines:
        if ln.qty > 0:
            on[ln.service_date].add(ln.item_code)
    return on


def _prefix_hit(rule: Rule, codes: Iterable[str], applies) -> bool:  # type: ignore[no-untyped-def]
    codes = tuple(codes)
    for kp in rule.knowledge:
        if applies(kp) and any(code.startswith(p) for code in codes for p in kp["prefixes"]):
            return True
    return False
