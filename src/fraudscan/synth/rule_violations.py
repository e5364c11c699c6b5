"""Inject rule-level violations into a synthetic world, labelled with the rule id.

Called by :func:`fraudscan.synth.build_tables` after the clean world and the fraud scenarios are
built. For every rule of the shipped packs it corrupts a handful of clean claims (settlements
with no fraud label on themselves, their lines or their person): it appends violating fee lines,
diagnoses, procedures or whole settlements, keeps the money consistent (line amount = qty x price,
lines sum to the settlement total, total = fund + account + cash) and writes ``labels`` rows with
``scenario`` = the rule id (entity ``fee_line`` for line rules, ``settlement`` for claim and
cross-claim rules).

Every in-claim injection is verified with the single-claim checker before it is kept: it must add
findings of its own rule and of no other. A few catalogue items that the clean catalogue lacks
(the knowledge codes of pair / group rules, a sex-limited consumable, a child-band drug, ...) are
appended, marked ``restriction_text`` "rule test item".
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraudscan.rules.checks import Checker
from fraudscan.rules.context import Claim, Finding, Item, Line, catalogue_index, facility_index
from fraudscan.rules.engine import claims_from_tables
from fraudscan.rules.model import DRUG, NON_DRUG, Rule, RuleSet, load_rules
from fraudscan.rules.state import StateStore

IP = ("21", "52")
_POOL_MIN = 20_000
"""Candidate claims (whole persons) sampled at least, whatever the world's size."""
_POOL_PER_CASE = 15
"""... and this many per case to inject (``per_rule`` x rules)."""
_POOL_RARE = 300
"""Persons with internet-hospital claims, dead persons, and persons with a stay and few
claims, each added to the pool at most."""
SCENARIO_SOURCE = "synthetic"

# extra catalogue rows: code -> (name, class, price, restrictions)
_TEST_ITEMS: dict[str, tuple[str, str, float, dict[str, Any]]] = {
    "C0000000000000000301": ("一次性使用阴道扩张器", "consumable", 6.0, {"sex_limit": "2"}),
    "C0000000000000000302": ("新生儿脐带夹", "consumable", 4.0, {"age_max_days": 28}),
    "XJ01CAA906A001010100906": ("阿莫西林颗粒(3-12岁)", "western_drug", 11.0,
                                {"age_min_days": 1095, "age_max_days": 4380}),
    "219900000000907": ("产科彩色多普勒超声(生育保险)", "imaging", 160.0,
                        {"insurance_types": "510"}),
    "XB01ACA908A001010100908": ("疗程限7天注射剂", "western_drug", 20.0, {"course_days": 7}),
    "129900000000910": ("小儿推拿", "treatment", 30.0, {"age_max_days": 5110}),
    "XM03BXA911A001010100911": ("工伤专用肌松药", "western_drug", 40.0,
                                {"insurance_types": "410"}),
    "XG02ADA912A001010100912": ("米索前列醇片(生育保险)", "western_drug", 15.0,
                                {"insurance_types": "510"}),
    "XL01XXA913A001010100913": ("二级及以上医院用药", "western_drug", 80.0,
                                {"min_facility_level": 2}),
    "259900000000909": ("周期限次检测(30天1次)", "lab", 30.0,
                        {"period_days": 30, "max_per_period": 1}),
}
_KNOWLEDGE_CLASS = {
    "R17": "western_drug", "R23": "herbal_piece", "R24": "consultation", "R25": "treatment",
    "R26": "lab", "R30": "surgery", "R42": "western_drug", "R20": "western_drug",
}
_KNOWLEDGE_PRICE = {"R17": 18.0, "R23": 12.0, "R24": 20.0, "R25": 60.0, "R26": 6.0,
                    "R30": 2000.0, "R42": 90.0, "R20": 45.0}


def _knowledge_items(rules: RuleSet) -> dict[str, tuple[str, str, float, dict[str, Any]]]:
    out: dict[str, tuple[str, str, float, dict[str, Any]]] = {}
    for r in rules.latest():
        for kp in r.knowledge:
            codes: list[str] = []
            for k in ("code", "a", "b", "bundle", "item"):
                if k in kp:
                    codes.append(kp[k])
            codes += kp.get("components", []) + kp.get("codes", []) + kp.get("companions", [])
            codes += kp.get("first_line", [])
            if "service" in kp:
                codes += [kp["service"], kp["consumable"]]
            for i, c in enumerate(codes):
                if c in out:
                    continue
                cls = _KNOWLEDGE_CLASS.get(r.id, "treatment")
                if c.startswith("C"):
                    cls = "consumable"
                elif c.startswith("X") and cls not in ("western_drug",):
                    cls = "western_drug"
                elif c[0].isdigit() and cls in ("western_drug", "herbal_piece"):
                    cls = "imaging"
                price = _KNOWLEDGE_PRICE.get(r.id, 30.0)
                if r.id == "R30":
                    price = 3000.0 - 400.0 * (i % 4)
                out[c] = (kp.get("name") or kp.get("note") or f"{r.name}知识点", cls, price, {})
    return out


class _Injector:
    def __init__(self, tables: dict[str, pd.DataFrame], rng: np.random.Generator,
                 config: Any):
        self.t = dict(tables)
        self.rng = rng
        self.rules = load_rules(shipped=True)
        self.rate = float(getattr(config, "rule_violation_rate", 0.002))
        self.labels: list[dict[str, Any]] = []
        self.new_lines: list[dict[str, Any]] = []
        self.new_scans: list[dict[str, Any]] = []
        self.new_dx: list[dict[str, Any]] = []
        self.new_proc: list[dict[str, Any]] = []
        self.new_settlements: list[dict[str, Any]] = []
        self.added: dict[str, float] = {}
        self.n = 0
        self._append_catalogue()
        self.cat = catalogue_index(self.t["catalogue"])
        c = self.t["catalogue"]
        self.valid = dict(zip(c["item_code"], zip(
            pd.to_datetime(c["valid_from"]).dt.date,
            [None if pd.isna(v) else pd.Timestamp(v).date() for v in c["valid_to"]],
            strict=True), strict=True))
        self._pool()
        # the checker only ever sees claims of pooled persons: register just those
        per = self.t["persons"]
        self.registry = StateStore(":memory:")
        self.registry.load_registries(per[per["person_id"].isin(list(self.P_by_person))],
                                      self.t["staff"])
        self.checker = Checker(self.rules, self.cat, facility_index(self.t["facilities"]),
                               self.registry)

    # -- setup ------------------------------------------------------------------------------
    def _append_catalogue(self) -> None:
        cat = self.t["catalogue"]
        have = set(cat["item_code"])
        vf = pd.to_datetime(cat["valid_from"]).min()
        rows = []
        for code, (name, cls, price, extra) in {**_knowledge_items(self.rules),
                                                **_TEST_ITEMS}.items():
            if code in have:
                continue
            svc = cls not in ("western_drug", "patent_tcm", "herbal_piece", "consumable")
            rows.append({"item_code": code, "item_name": name, "item_class": cls,
                         "grade": "A", "unit": "次", "unit_price": price,
                         "price_cap_lv1": round(price * 0.85, 2) if svc else None,
                         "price_cap_lv2": round(price * 0.93, 2) if svc else None,
                         "price_cap_lv3": price if svc else None,
                         "trace_required": False, "resale_prone": False, "high_value": False,
                         "restriction_text": "rule test item", "valid_from": vf, **extra})
        if rows:
            add = pd.DataFrame(rows)
            self.t["catalogue"] = pd.concat([cat, add], ignore_index=True)

    def _pool(self) -> None:
        """The candidate claims: clean claims (no fraud label on them, their lines or their
        person) of a random sample of clean persons, whole persons at a time (so cross-claim
        checks see every claim of a sampled person), plus a few persons of the rarer kinds
        some rules need (internet-hospital claims, deaths). Everything per claim that a rule
        filters on is a column of ``self.P`` (one row per candidate claim), so candidate pools
        are boolean masks; ``Claim`` objects are built once for the sample only."""
        t = self.t
        lab = t.get("labels", pd.DataFrame(columns=["entity_type", "entity_id", "is_fraud"]))
        lab = lab[lab["is_fraud"].astype(bool)]
        s = t["settlements"]
        fl = t["fee_lines"]
        bad_s = set(lab.loc[lab["entity_type"] == "settlement", "entity_id"])
        bad_s |= set(fl.loc[fl["line_id"].isin(lab.loc[lab["entity_type"] == "fee_line",
                                                        "entity_id"]), "settlement_id"])
        bad_p = set(lab.loc[lab["entity_type"] == "person", "entity_id"])
        bad_p |= set(s.loc[s["settlement_id"].isin(bad_s), "person_id"])
        clean = s[~s["person_id"].isin(bad_p)]
        self.per_rule = max(3, math.ceil(self.rate * len(s) / max(len(self.rules), 1)))
        self.end = pd.Timestamp(s["discharge_time"].max()).date()
        self.persons = t["persons"].set_index("person_id")

        # sample whole clean persons until the pool holds enough claims for every rule
        n_of = clean.groupby("person_id", sort=True).size()
        pids = n_of.index.to_numpy()
        order = self.rng.permutation(len(pids))
        want = max(_POOL_MIN, _POOL_PER_CASE * self.per_rule * len(self.rules))
        cum = np.cumsum(n_of.to_numpy()[order])
        take = set(pids[order[: int(np.searchsorted(cum, want)) + 1]])
        fac = t["facilities"]
        net = set(fac.loc[fac.get("internet_hospital", pd.Series(False, index=fac.index))
                          .fillna(False).astype(bool), "facility_id"])
        rare = np.unique(clean.loc[clean["facility_id"].isin(net), "person_id"].to_numpy())
        dead = self.persons.index[self.persons["death_date"].notna()].to_numpy()
        dead = np.intersect1d(dead, pids)
        # short-history persons with a stay: R43 / R34 need one with no other claim near it
        n_all = s["person_id"].value_counts()
        stay = clean.loc[clean["medical_type"].astype(str) == "21", "person_id"]
        few = np.unique(stay[stay.map(n_all).to_numpy() <= 6].to_numpy())
        for xs in (rare, dead, few):
            if len(xs):
                take |= set(xs[self.rng.permutation(len(xs))[:_POOL_RARE]])
        pool = clean[clean["person_id"].isin(take)]

        pe = self.persons
        P = pd.DataFrame({
            "sid": pool["settlement_id"].to_numpy(), "pid": pool["person_id"].to_numpy(),
            "fid": pool["facility_id"].to_numpy(),
            "mt": pool["medical_type"].astype(str).to_numpy(),
            "adm": pd.to_datetime(pool["admission_time"]).to_numpy(),
            "dis": pd.to_datetime(pool["discharge_time"]).to_numpy()})
        P = P.sort_values(["adm", "sid"], kind="stable").reset_index(drop=True)
        P["ip"] = P["mt"].isin(IP)
        P["stay_d"] = (P["dis"].dt.normalize() - P["adm"].dt.normalize()).dt.days
        P["stay_full_d"] = (P["dis"] - P["adm"]).dt.days
        P["dis_d"] = P["dis"].dt.date
        P["has_birth"] = P["pid"].map(pe["birth_date"]).notna().to_numpy()
        P["sex"] = P["pid"].map(pe["sex"]).astype(object).to_numpy()
        P["net"] = P["fid"].isin(net)
        P["n_all"] = P["pid"].map(n_all).fillna(0).astype(int)
        P["n_lines"] = P["sid"].map(fl["settlement_id"].value_counts()).fillna(0).astype(int)
        self.P = P
        self.P_sid = P["sid"].to_numpy()
        self.P_pos = {s: i for i, s in enumerate(self.P_sid.tolist())}
        self.P_by_person = P.groupby("pid", sort=False).indices
        self.claims: dict[str, Claim] = {c.settlement_id: c for c in claims_from_tables(
            t, list(self.P_sid))}
        self.used: set[str] = set()
        self.used_persons: set[str] = set()
        st = t["staff"]
        self.active_staff = st[(st["qualification_status"] == "active")
                               & st["death_date"].isna()].groupby("facility_id")["staff_id"] \
            .agg(list).to_dict()

    # -- helpers ----------------------------------------------------------------------------
    def _lid(self) -> str:
        self.n += 1
        return f"LRV{self.n:08d}"

    def _trace(self) -> str:
        self.n += 1
        return f"99{self.n:018d}"

    def _price(self, it: Item, c: Claim) -> float:
        lvl = min(max(c.facility_level or 0, 1), 3)
        cap = it.price_caps[lvl - 1]
        return round(min(it.unit_price, cap) if cap is not None else it.unit_price, 2)

    def _line(self, c: Claim, code: str, *, qty: float = 1.0, price: float | None = None,
              day: date | None = None, **kw: Any) -> Line:
        it = self.cat[code]
        p = self._price(it, c) if price is None else price
        base = c.lines[0] if c.lines else None
        ln = Line(self._lid(), day or c.admission_date, code, qty, p, round(qty * p, 2),
                  staff_id=base.staff_id if base else c.attending_staff_id,
                  department=base.department if base else c.department)
        if it.trace_required:
            ln.trace_codes = (self._trace(),)
        for k, v in kw.items():
            setattr(ln, k, v)
        return ln

    def _valid(self, ln: Line) -> bool:
        lo, hi = self.valid[ln.item_code]
        return lo <= ln.service_date and (hi is None or ln.service_date <= hi)

    def _free(self) -> np.ndarray:
        """Pool rows whose claim and person are still unused (a loop over the few used ids,
        not over the pool)."""
        m = np.ones(len(self.P), dtype=bool)
        pos = self.P_pos
        m[[pos[s] for s in self.used if s in pos]] = False
        for p in self.used_persons:
            ix = self.P_by_person.get(p)
            if ix is not None:
                m[ix] = False
        return m

    def _candidates(self, mask: Any = None) -> list[str]:
        """Ids of the unused candidate claims (in admission order) where ``mask`` (a boolean
        array over ``self.P`` or a function of ``self.P`` returning one) holds."""
        m = self._free()
        if mask is not None:
            m &= np.asarray(mask(self.P) if callable(mask) else mask, dtype=bool)
        return self.P_sid[m].tolist()

    def _pick(self, xs: list[Any]) -> Any:
        return xs[int(self.rng.integers(0, len(xs)))]

    def _age(self, c: Claim, d: date | None = None) -> int:
        return ((d or c.admission_date) - c.birth_date).days if c.birth_date else -1

    def _diff(self, c: Claim, c2: Claim) -> list[Finding]:
        before = {f.key() for f in self.checker.check(c)}
        return [f for f in self.checker.check(c2) if f.key() not in before]

    # -- committing -------------------------------------------------------------------------
    def _commit_lines(self, c: Claim, lines: list[Line], hour: int = 10) -> None:
        for ln in lines:
            when = datetime.combine(ln.service_date, time(hour, 30))
            if ln.service_date == c.admission_date:
                when = c.admission_time + timedelta(minutes=5)
            self.new_lines.append({
                "line_id": ln.line_id, "settlement_id": c.settlement_id, "service_time": when,
                "item_code": ln.item_code, "qty": ln.qty, "unit_price": ln.unit_price,
                "amount": ln.amount, "days_supply": ln.days_supply, "staff_id": ln.staff_id,
                "department": ln.department, "prescription_no": ln.prescription_no,
                "approval_flag": ln.approval_flag, "discharge_drug": ln.discharge_drug})
            for code in ln.trace_codes:
                self.new_scans.append({"scan_id": f"T{ln.line_id}", "line_id": ln.line_id,
                                       "facility_id": c.facility_id, "item_code": ln.item_code,
                                       "trace_code": code, "scan_time": when})
            self.added[c.settlement_id] = self.added.get(c.settlement_id, 0.0) + ln.amount

    def _label(self, rule_id: str, etype: str, eid: str, amount: float, d: date) -> None:
        self.labels.append({"entity_type": etype, "entity_id": eid, "scenario": rule_id,
                            "is_fraud": True, "amount_at_risk": round(abs(amount), 2),
                            "source": SCENARIO_SOURCE, "group_id": f"rule-{rule_id}",
                            "period": d.strftime("%Y-%m")})

    def _label_findings(self, fs: list[Finding]) -> None:
        for f in fs:
            if f.line_id is not None:
                self._label(f.rule_id, "fee_line", f.line_id, f.amount, f.service_date)
            else:
                self._label(f.rule_id, "settlement", f.settlement_id, f.amount,
                            f.service_date)

    def _use(self, c: Claim) -> None:
        self.used.add(c.settlement_id)
        self.used_persons.add(c.person_id)

    # -- in-claim line injections ------------------------------------------------------------
    def add_lines(self, rule: Rule, claim_pred, make, tries: int = 400) -> int:  # type: ignore[no-untyped-def]
        """Append lines built by ``make(claim) -> lines | None``; keep if only ``rule`` fires."""
        pool = self._candidates(claim_pred)
        done = 0
        for _ in range(tries):
            if done >= self.per_rule or not pool:
                break
            c = self.claims[pool.pop(int(self.rng.integers(0, len(pool))))]
            if c.person_id in self.used_persons:
                continue
            new = make(c)
            if not new:
                continue
            extra_dx = ()
            if isinstance(new, tuple):
                new, extra_dx = new
            if not all(self._valid(ln) for ln in new):
                continue
            c2 = replace(c, lines=[*c.lines, *new], diagnoses=(*c.diagnoses, *extra_dx))
            fs = self._diff(c, c2)
            if not fs or any(f.rule_id != rule.id for f in fs):
                continue
            if not rule.in_force(fs[0].service_date):
                continue
            self._commit_lines(c, new)
            self._label_findings(fs)
            self._use(c)
            self.claims[c.settlement_id] = c2
            done += 1
        return done

    def _items(self, pred) -> list[Item]:  # type: ignore[no-untyped-def]
        return [it for it in self.cat.values() if pred(it)]

    def catalogue_rule(self, rule: Rule) -> int:
        """Line rules read from catalogue restrictions: pick an item whose restriction the
        claim breaks (the checker rejects items that would break anything else)."""
        classes = set(rule.params.get("classes", DRUG + NON_DRUG))
        chk = rule.check
        r = rule

        def make(c: Claim) -> list[Line] | None:
            def broken(it: Item) -> bool:
                if it.item_class not in classes:
                    return False
                if chk == "item_sex":
                    return it.sex_limit is not None and c.sex in ("1", "2") and \
                        it.sex_limit != c.sex
                if chk == "item_age":
                    from fraudscan.rules.checks import age_band_violation
                    return c.birth_date is not None and age_band_violation(
                        r.params["band"], it, self._age(c))
                if chk == "item_insurance":
                    ins = it.insurance_types
                    return ins is not None and (("410" in ins) ==
                                                (r.params["group"] == "work_injury")) and \
                        c.insurance_type not in ins
                if chk == "item_facility_level":
                    return it.min_facility_level is not None and \
                        (c.facility_level or 0) < it.min_facility_level
                if chk == "item_care_mode":
                    return it.care_modes is not None and c.medical_type not in it.care_modes
                if chk == "item_indication":
                    return it.indications is not None and not any(
                        dx.startswith(p) for dx in c.all_diagnoses for p in it.indications)
                if chk in ("item_days_supply", "item_qty_per_day"):
                    col = it.max_days_supply if chk == "item_days_supply" else it.max_qty_per_day
                    return col is not None
                if chk == "item_frequency":
                    return it.max_qty_per_day is not None and \
                        it.item_class in r.params["day_classes"]
                if chk == "item_price_cap":
                    lvl = min(max(c.facility_level or 0, 1), 3)
                    return it.price_caps[lvl - 1] is not None
                if chk == "item_department":
                    return it.departments is not None
                if chk == "item_trace_missing":
                    return it.trace_required
                return False

            present = {ln.item_code for ln in c.lines}
            cands = [it for it in self.cat.values() if it.item_code not in present and broken(it)]
            if not cands:
                return None
            it = self._pick(cands)
            ln = self._line(c, it.item_code)
            if chk == "item_days_supply":
                ln.days_supply = (it.max_days_supply or 0) + 5
            elif chk == "item_qty_per_day" or chk == "item_frequency":
                ln.qty = math.floor(it.max_qty_per_day or 0) + 1
            elif chk == "item_price_cap":
                lvl = min(max(c.facility_level or 0, 1), 3)
                ln.unit_price = round((it.price_caps[lvl - 1] or 0) * 1.2 + 1, 2)
            elif chk == "item_department":
                ln.department = "A99"
            elif chk == "item_trace_missing":
                ln.trace_codes = ()
            ln.amount = round(ln.qty * ln.unit_price, 2)
            return [ln]

        return self.add_lines(rule, lambda P: P["has_birth"], make)

    # -- rule-specific recipes --------------------------------------------------------------
    def knowledge_rule(self, rule: Rule) -> int:
        kps = list(rule.knowledge)

        def make(c: Claim) -> list[Line] | None:
            kp = self._pick(kps)
            if rule.check == "item_listed":
                if rule.params.get("internet_only") and not c.internet_hospital:
                    return None
                return [self._line(c, kp["code"])]
            if rule.check == "pair_duplicate":
                return [self._line(c, kp["a"]), self._line(c, kp["b"])]
            if rule.check == "pair_included":
                return [self._line(c, kp["service"]), self._line(c, kp["consumable"])]
            if rule.check == "unbundle":
                return [self._line(c, x) for x in kp["components"]]
            if rule.check == "surgery_discount":
                if c.medical_type not in IP:
                    return None
                return [self._line(c, x) for x in kp["codes"][:2]]
            if rule.check == "companion_missing":
                return [self._line(c, kp["item"])]
            return None

        pred = (lambda P: P["net"]) if rule.params.get("internet_only") else None
        return self.add_lines(rule, pred, make)

    def r36_staff(self, rule: Rule) -> int:
        st = self.t["staff"]
        sus = st[st["qualification_status"].isin(("suspended", "terminated"))]
        if sus.empty:
            return 0
        rows = list(sus.itertuples(index=False))

        def make(c: Claim) -> list[Line] | None:
            d = c.admission_date
            ok = [r for r in rows if pd.notna(r.status_from)
                  and pd.Timestamp(r.status_from).date() <= d
                  and (pd.isna(r.status_to) or d <= pd.Timestamp(r.status_to).date())]
            present = {ln.item_code for ln in c.lines}
            codes = [x for x in self.plain if x not in present]
            if not ok or not codes:
                return None
            ln = self._line(c, self._pick(codes), prescription_no=f"RRV{self.n:07d}")
            ln.staff_id = self._pick(ok).staff_id
            return [ln]

        return self.add_lines(rule, lambda P: ~P["ip"], make)

    def r32_outside(self, rule: Rule) -> int:
        def make(c: Claim) -> list[Line] | None:
            if not c.lines:
                return None
            base = c.lines[0]
            return [self._line(c, base.item_code, price=base.unit_price,
                               day=c.discharge_date + timedelta(days=2))]
        last = self.end - timedelta(days=2)
        return self.add_lines(rule, lambda P: P["ip"] & (P["dis_d"] <= last), make)

    def r37_duplicate(self, rule: Rule) -> int:
        groups: dict[str, list[str]] = {}
        for it in self.cat.values():
            if it.drug_group:
                groups.setdefault(it.drug_group, []).append(it.item_code)

        def make(c: Claim) -> list[Line] | None:
            for ln in c.lines:
                it = self.cat.get(ln.item_code)
                if it is not None and it.drug_group and ln.days_supply:
                    others = [x for x in groups[it.drug_group] if x != ln.item_code
                              and self.cat[x].indications == it.indications]
                    if others:
                        new = self._line(c, self._pick(others), day=ln.service_date,
                                         days_supply=ln.days_supply)
                        new.prescription_no = ln.prescription_no
                        return [new]
            return None
        return self.add_lines(rule, lambda P: ~P["ip"], make)

    @property
    def plain(self) -> list[str]:
        """Drugs without any restriction (safe filler lines)."""
        return [it.item_code for it in self.cat.values()
                 if it.item_class in ("western_drug", "patent_tcm") and not it.trace_required
                 and it.sex_limit is None and it.age_min_days is None
                 and it.age_max_days is None and it.min_facility_level is None
                 and it.care_modes is None and it.insurance_types is None
                 and it.indications is None and it.drug_group is None
                 and it.max_qty_per_day is None and it.course_days is None
                 and it.period_days is None and it.departments is None]

    def r39_kinds(self, rule: Rule) -> int:
        plain = self.plain

        def make(c: Claim) -> list[Line] | None:
            present = {ln.item_code for ln in c.lines}
            codes = [x for x in plain if x not in present]
            if len(codes) < rule.params["max_kinds"] + 1:
                return None
            pick = self.rng.choice(len(codes), rule.params["max_kinds"] + 1, replace=False)
            rx = f"RRV{self.n:07d}"
            return [self._line(c, codes[i], prescription_no=rx) for i in pick]
        return self.add_lines(rule, lambda P: ~P["ip"], make)

    def r40_trace(self, rule: Rule) -> int:
        sc = self.t["trace_scans"]
        # a random sample of the scans is enough to draw from (200 tries at most)
        keep = np.sort(self.rng.permutation(len(sc))[:5000])
        sc = sc.iloc[keep]
        fl = self.t["fee_lines"]
        fl = fl.loc[fl["line_id"].isin(set(sc["line_id"])), ["line_id", "settlement_id", "qty"]]
        sc = sc.merge(fl, on="line_id")
        sc = sc[sc["qty"] > 0]
        s = self.t["settlements"].set_index("settlement_id")["admission_time"]
        sc = sc.assign(adm=s.reindex(sc["settlement_id"]).to_numpy())
        if sc.empty:
            return 0
        done = 0
        for _ in range(200):
            if done >= self.per_rule:
                break
            row = sc.iloc[int(self.rng.integers(0, len(sc)))]
            later = self._candidates((self.P["adm"] > row["adm"]) & ~self.P["ip"]
                                     & (self.P["sid"] != row["settlement_id"]))
            if not later:
                continue
            c = self.claims[self._pick(later)]
            ln = self._line(c, row["item_code"], prescription_no=f"RRV{self.n:07d}")
            ln.trace_codes = (row["trace_code"],)
            if not self._valid(ln):
                continue
            c2 = replace(c, lines=[*c.lines, ln])
            if self._diff(c, c2):
                continue
            self._commit_lines(c, [ln])
            self._label(rule.id, "fee_line", ln.line_id, ln.amount, ln.service_date)
            self._use(c)
            self.claims[c.settlement_id] = c2
            done += 1
        return done

    def r20_second_line(self, rule: Rule) -> int:
        """A second-line drug (never billed by the clean world) for a person with no use of its
        first-line drugs at all in the world, so no window or claim order can excuse it."""
        from fraudscan.rules.checks import second_line_map

        need = second_line_map(rule, self.cat)
        first = frozenset().union(*need.values())
        fl = self.t["fee_lines"]
        sids = set(fl.loc[fl["item_code"].isin(first), "settlement_id"])
        s = self.t["settlements"]
        users = set(s.loc[s["settlement_id"].isin(sids), "person_id"])
        codes = sorted(need)

        def make(c: Claim) -> list[Line] | None:
            return [self._line(c, self._pick(codes))]
        return self.add_lines(rule, lambda P: ~P["pid"].isin(users), make)

    def r21_course(self, rule: Rule) -> int:
        codes = [c for c, it in self.cat.items() if it.course_days and
                 self.t["catalogue"].set_index("item_code").loc[c, "restriction_text"]
                 == "rule test item"]
        if not codes:
            return 0
        code = codes[0]
        n = self.cat[code].course_days or 0

        def make(c: Claim) -> list[Line] | None:
            return [self._line(c, code), self._line(c, code,
                                                     day=c.admission_date + timedelta(days=n))]
        return self.add_lines(rule, lambda P: P["ip"] & (P["stay_d"] >= n), make)

    def r28_period(self, rule: Rule) -> int:
        codes = [c for c, it in self.cat.items() if it.period_days and
                 self.t["catalogue"].set_index("item_code").loc[c, "restriction_text"]
                 == "rule test item"]
        if not codes:
            return 0
        code = codes[0]

        def make(c: Claim) -> list[Line] | None:
            return [self._line(c, code), self._line(c, code,
                                                     day=c.admission_date + timedelta(days=1))]
        return self.add_lines(rule, lambda P: P["ip"] & (P["stay_d"] >= 1), make)

    def r27_stay(self, rule: Rule) -> int:
        """Per-stay variant of R27: an item with max_per_stay billed once more."""
        def make(c: Claim) -> list[Line] | None:
            for ln in c.lines:
                it = self.cat.get(ln.item_code)
                if it is not None and it.max_per_stay is not None and ln.qty > 0:
                    used = sum(x.qty for x in c.lines if x.item_code == ln.item_code)
                    extra = it.max_per_stay - used + 1
                    day = min(ln.service_date + timedelta(days=1), c.discharge_date)
                    return [self._line(c, ln.item_code, qty=max(extra, 1.0),
                                       price=ln.unit_price, day=day)]
            return None
        return self.add_lines(rule, lambda P: P["ip"], make)

    # -- claim-level (diagnoses, procedures) ------------------------------------------------
    def dx_rule(self, rule: Rule) -> int:
        def make(c: Claim) -> tuple[list[Line], tuple[str, ...]] | None:
            if rule.check == "diagnosis_sex":
                kps = [kp for kp in rule.knowledge if kp["sex"] != c.sex]
                if not kps or c.sex not in ("1", "2"):
                    return None
                p = self._pick(self._pick(kps)["prefixes"])
            else:
                age = self._age(c)
                kps = [kp for kp in rule.knowledge
                       if age < kp["age_min_days"] or age > kp["age_max_days"]]
                if not kps:
                    return None
                p = self._pick(self._pick(kps)["prefixes"])
            code = p if "." in p else (p + "0.0" if len(p) < 3 else p + ".0")
            return [], (code,)

        done = 0
        pool = self._candidates(lambda P: P["has_birth"])
        for _ in range(300):
            if done >= self.per_rule or not pool:
                break
            c = self.claims[pool.pop(int(self.rng.integers(0, len(pool))))]
            got = make(c)
            if got is None:
                continue
            _, dx = got
            c2 = replace(c, diagnoses=(*c.diagnoses, *dx))
            fs = self._diff(c, c2)
            if len(fs) != 1 or fs[0].rule_id != rule.id:
                continue
            seq = len(c.diagnoses) + 1
            self.new_dx.append({"settlement_id": c.settlement_id, "seq": seq,
                                "diag_code": dx[0], "is_main": False})
            self._label_findings([replace(fs[0], amount=c.total_amount)])
            self._use(c)
            self.claims[c.settlement_id] = c2
            done += 1
        return done

    def proc_rule(self, rule: Rule) -> int:
        done = 0
        pool = self._candidates(lambda P: P["ip"] & P["sex"].isin(("1", "2")))
        for _ in range(300):
            if done >= self.per_rule or not pool:
                break
            c = self.claims[pool.pop(int(self.rng.integers(0, len(pool))))]
            kps = [kp for kp in rule.knowledge if kp["sex"] != c.sex]
            code = self._pick(self._pick(kps)["prefixes"]) + ".0100"
            c2 = replace(c, procedures=(*c.procedures, code))
            fs = self._diff(c, c2)
            if len(fs) != 1 or fs[0].rule_id != rule.id:
                continue
            self.new_proc.append({"settlement_id": c.settlement_id,
                                  "seq": len(c.procedures) + 1, "procedure_code": code,
                                  "procedure_date": c.admission_date})
            self._label_findings([replace(fs[0], amount=c.total_amount)])
            self._use(c)
            self.claims[c.settlement_id] = c2
            done += 1
        return done

    # -- new settlements (cross-claim rules) -------------------------------------------------
    def _new_settlement(self, template: Claim, person: str, facility: str, med_type: str,
                        adm: datetime, dis: datetime, main_dx: str | None = None,
                        planned: bool = False) -> Claim | None:
        """A copy of ``template``'s lines moved to another person / place / time."""
        self.n += 1
        sid = f"SRV{self.n:07d}"
        staff = self.active_staff.get(facility)
        if not staff:
            return None
        pe = self.persons.loc[person]
        fac = self.checker.facilities.get(facility)
        c = Claim(settlement_id=sid, person_id=person, facility_id=facility,
                  medical_type=med_type, insurance_type=str(pe["insurance_type"]),
                  admission_time=adm, discharge_time=dis, sex=str(pe["sex"]),
                  birth_date=pd.Timestamp(pe["birth_date"]).date(),
                  facility_level=fac.level if fac else None,
                  internet_hospital=fac.internet_hospital if fac else False,
                  main_diagnosis=main_dx if main_dx is not None else template.main_diagnosis,
                  department=template.department, attending_staff_id=staff[0],
                  planned_readmission=planned, diagnoses=template.diagnoses)
        if main_dx is not None:
            c.diagnoses = (main_dx,)
        shift = adm.date() - template.admission_date
        for ln in template.lines:
            it = self.cat.get(ln.item_code)
            if it is None or ln.qty <= 0:
                continue
            d = ln.service_date + shift
            lo, hi = self.valid[ln.item_code]
            if d > dis.date() or d < lo or (hi is not None and d > hi):
                continue
            new = self._line(c, ln.item_code, qty=ln.qty, day=d, days_supply=ln.days_supply,
                             prescription_no=None, staff_id=staff[0],
                             department=ln.department)
            c.lines.append(new)
        if not c.lines:
            return None
        c.total_amount = round(sum(ln.amount for ln in c.lines), 2)
        return c

    def _commit_settlement(self, c: Claim) -> None:
        self.new_settlements.append({
            "settlement_id": c.settlement_id, "visit_id": "V" + c.settlement_id[1:],
            "person_id": c.person_id, "facility_id": c.facility_id,
            "medical_type": c.medical_type, "insurance_type": c.insurance_type,
            "admission_time": c.admission_time, "discharge_time": c.discharge_time,
            "settle_time": c.discharge_time, "main_diagnosis": c.main_diagnosis,
            "department": c.department, "attending_staff_id": c.attending_staff_id,
            "planned_readmission": c.planned_readmission, "total_amount": c.total_amount,
            "fund_paid": c.total_amount, "account_paid": 0.0, "cash_paid": 0.0,
            "full_self_pay": 0.0, "out_of_area": False, "voucher_type": "01"})
        for i, d in enumerate(c.diagnoses):
            self.new_dx.append({"settlement_id": c.settlement_id, "seq": i + 1,
                                "diag_code": d, "is_main": i == 0})
        self._commit_lines(c, c.lines)
        self.added.pop(c.settlement_id, None)

    def _quiet(self, c: Claim, allow: str) -> bool:
        return all(f.rule_id == allow for f in self.checker.check(c))

    def _others_in(self, person: str, lo: datetime, hi: datetime, skip: str) -> bool:
        # the pool holds every settlement of a sampled (clean) person
        sub = self.P.iloc[self.P_by_person.get(person, [])]
        sub = sub[sub["sid"] != skip]
        return bool(((sub["adm"] < hi) & (sub["dis"] > lo)).any())

    def cross_rule(self, rule: Rule) -> int:
        done = 0
        P = self.P
        ip_fac = sorted(set(P.loc[P["ip"], "fid"]))
        ph_fac = sorted(set(P.loc[P["mt"] == "41", "fid"]))
        op_templates = [c for c in (self.claims[s] for s in
                                    P.loc[(P["mt"] == "11") & (P["n_lines"] <= 4), "sid"])
                        if len(c.lines) <= 4]
        ph_templates = [self.claims[s] for s in P.loc[P["mt"] == "41", "sid"]]
        long_ip = (P["ip"] & (P["stay_full_d"] >= 3)).to_numpy()
        short_ip = ((P["mt"] == "21") & (P["n_all"] <= 6)).to_numpy()
        for _ in range(300):
            if done >= self.per_rule:
                break
            new: Claim | None = None
            target: Claim | None = None
            if rule.check == "outpatient_in_stay":
                stays = self._candidates(long_ip)
                if not stays or not ph_templates or not ph_fac:
                    break
                target = self.claims[self._pick(stays)]
                when = datetime.combine(target.admission_date + timedelta(days=1), time(10))
                new = self._new_settlement(self._pick(ph_templates), target.person_id,
                                           self._pick(ph_fac), "41", when,
                                           when + timedelta(minutes=5))
            elif rule.check in ("overlapping_stay", "split_admission"):
                stays = self._candidates(short_ip)
                if not stays:
                    break
                target = self.claims[self._pick(stays)]
                if rule.check == "overlapping_stay":
                    others = [f for f in ip_fac if f != target.facility_id]
                    if not others or (target.discharge_time - target.admission_time).days < 2:
                        continue
                    adm = target.admission_time + timedelta(days=1)
                    fac = self._pick(others)
                else:
                    fac = target.facility_id
                    gap = int(self.rng.integers(2, 8))
                    adm = datetime.combine(target.discharge_date + timedelta(days=gap),
                                           time(9))
                    v = self.rules.version_on(rule.id, adm.date())
                    if v is None or gap > int(v.params["days"]):
                        continue
                dis = adm + timedelta(days=2)
                if dis.date() > self.end or self._others_in(
                        target.person_id, adm, dis + timedelta(days=40), target.settlement_id):
                    continue
                main = target.main_diagnosis if rule.check == "split_admission" else None
                new = self._new_settlement(target, target.person_id, fac, "21", adm, dis,
                                           main_dx=main)
            elif rule.check == "after_death":
                pe = self.persons
                dd = pd.to_datetime(pe["death_date"])
                ok = dd.notna() & (dd <= pd.Timestamp(self.end - timedelta(days=5))) \
                    & pe.index.isin(list(self.P_by_person)) & ~pe.index.isin(self.used_persons)
                dead = pe.index[ok.to_numpy()].tolist()
                if not dead or not op_templates:
                    break
                person = self._pick(dead)
                tpl = self._pick(op_templates)
                when = datetime.combine(pd.Timestamp(pe.loc[person, "death_date"]).date()
                                        + timedelta(days=3), time(9))
                new = self._new_settlement(tpl, person, tpl.facility_id, "11", when,
                                           when + timedelta(minutes=30))
                target = None
            if new is None or not self._quiet(new, rule.id):
                continue
            self._commit_settlement(new)
            self._label(rule.id, "settlement", new.settlement_id, new.total_amount,
                        new.admission_date)
            if target is not None:
                self._use(target)
            self.used_persons.add(new.person_id)
            done += 1
        return done

    def r47_suspended(self, rule: Rule) -> int:
        done = 0
        # every settlement of a pooled person is in the pool (clean persons, whole)
        persons = [p for p in self.P_by_person if p not in self.used_persons]
        restricted: dict[str, date] = {}
        for _ in range(100):
            if done >= self.per_rule or not persons:
                break
            p = persons.pop(int(self.rng.integers(0, len(persons))))
            cs = [self.claims[s] for s in self.P_sid[self.P_by_person[p]]]
            until = max(c.admission_date for c in cs) + timedelta(days=30)
            if pd.notna(self.persons.loc[p, "death_date"]):
                continue
            restricted[p] = until
            for c in cs:
                if until - timedelta(days=365) < c.admission_date <= until:
                    self._label(rule.id, "settlement", c.settlement_id, c.total_amount,
                                c.admission_date)
                    self.used.add(c.settlement_id)
            self.used_persons.add(p)
            done += 1
        if restricted:
            self.t["persons"] = self._restrict_until(self.t["persons"], restricted)
        return done

    def r48_facilities(self, rule: Rule) -> int:
        """Restrict a clean person's fund payment to one of the facilities they used: their
        settlements elsewhere in the restriction window are the violations, those at the named
        facility the near misses."""
        done = 0
        persons = [p for p in self.P_by_person if p not in self.used_persons]
        restricted: dict[str, tuple[date, str]] = {}
        for _ in range(200):
            if done >= self.per_rule or not persons:
                break
            p = persons.pop(int(self.rng.integers(0, len(persons))))
            if pd.notna(self.persons.loc[p, "death_date"]):
                continue
            cs = [self.claims[s] for s in self.P_sid[self.P_by_person[p]]]
            until = max(c.admission_date for c in cs) + timedelta(days=30)
            inside = [c for c in cs if until - timedelta(days=365) < c.admission_date <= until]
            facs = sorted({c.facility_id for c in inside})
            if len(facs) < 2:
                continue
            allowed = facs[int(self.rng.integers(0, len(facs)))]
            for c in inside:
                if c.facility_id != allowed:
                    self._label(rule.id, "settlement", c.settlement_id, c.total_amount,
                                c.admission_date)
                    self.used.add(c.settlement_id)
            restricted[p] = (until, allowed)
            self.used_persons.add(p)
            done += 1
        if restricted:
            per = self._restrict_until(self.t["persons"],
                                       {k: v[0] for k, v in restricted.items()})
            fac = per["person_id"].map({k: v[1] for k, v in restricted.items()})
            per["restricted_facilities"] = fac.where(fac.notna(), per["restricted_facilities"])
            self.t["persons"] = per
        return done

    @staticmethod
    def _restrict_until(persons: pd.DataFrame, until: dict[str, date]) -> pd.DataFrame:
        """A copy of ``persons`` whose settlement is restricted until the given dates."""
        per = persons.copy()
        col = pd.to_datetime(per["settlement_restricted_until"])
        new = pd.to_datetime(per["person_id"].map(
            {k: pd.Timestamp(v) for k, v in until.items()}))
        per["settlement_restricted_until"] = new.where(new.notna(), col)
        return per

    # -- driver -----------------------------------------------------------------------------
    def run(self) -> dict[str, pd.DataFrame]:
        try:
            return self._run()
        finally:
            self.registry.close()

    def _run(self) -> dict[str, pd.DataFrame]:
        dispatch = {
            "item_listed": self.knowledge_rule, "pair_duplicate": self.knowledge_rule,
            "pair_included": self.knowledge_rule, "unbundle": self.knowledge_rule,
            "surgery_discount": self.knowledge_rule, "companion_missing": self.knowledge_rule,
            "item_staff_status": self.r36_staff, "fee_outside_stay": self.r32_outside,
            "duplicate_drug": self.r37_duplicate, "too_many_drugs": self.r39_kinds,
            "trace_reused": self.r40_trace, "item_course": self.r21_course,
            "second_line": self.r20_second_line,
            "item_period": self.r28_period, "diagnosis_sex": self.dx_rule,
            "diagnosis_age": self.dx_rule, "procedure_sex": self.proc_rule,
            "outpatient_in_stay": self.cross_rule, "overlapping_stay": self.cross_rule,
            "split_admission": self.cross_rule, "after_death": self.cross_rule,
            "person_suspended": self.r47_suspended,
            "person_facility_restricted": self.r48_facilities,
        }
        self.counts: dict[str, int] = {}
        for rule in self.rules.latest():
            fn = dispatch.get(rule.check, self.catalogue_rule)
            self.counts[rule.id] = fn(rule)
            if rule.check == "item_frequency":
                self.counts[rule.id] += self.r27_stay(rule)
        return self._assemble()

    def _assemble(self) -> dict[str, pd.DataFrame]:
        t = self.t

        def cat(name: str, rows: list[dict[str, Any]]) -> None:
            if not rows:
                return
            if name not in t:
                t[name] = pd.DataFrame(rows)
                return
            base = t[name]
            add = pd.DataFrame(rows)
            for col in add.columns:
                if col in base and str(base[col].dtype).startswith("datetime"):
                    add[col] = pd.to_datetime(add[col]).astype(base[col].dtype)
            t[name] = pd.concat([base, add[[c for c in add.columns if c in base.columns]]],
                                ignore_index=True)

        s = t["settlements"].copy()
        if self.added:
            inc = s["settlement_id"].map(self.added).fillna(0.0)
            s["total_amount"] = (s["total_amount"] + inc).round(2)
            s["fund_paid"] = (s["fund_paid"] + inc).round(2)
        t["settlements"] = s
        cat("settlements", self.new_settlements)
        cat("fee_lines", self.new_lines)
        cat("trace_scans", self.new_scans)
        cat("diagnoses", self.new_dx)
        cat("procedures", self.new_proc)
        if self.labels:
            lab = pd.DataFrame(self.labels).drop_duplicates(
                ["entity_type", "entity_id", "scenario"])
            t["labels"] = pd.concat([t["labels"], lab], ignore_index=True) \
                if "labels" in t else lab
        return t


def inject(tables: dict[str, pd.DataFrame], rng: np.random.Generator, config: Any
           ) -> dict[str, pd.DataFrame]:
    """Add a handful of labelled violations of every shipped rule to a clean world."""
    return _Injector(tables, rng, config).run()
