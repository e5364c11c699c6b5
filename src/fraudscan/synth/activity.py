"""Twelve months of clean activity: visits, stays, refills, dialysis, fee lines and their checks.

Everything is vectorised over settlements and lines; Python loops run only over kinds,
districts and catalogue items. Settlements and lines are built as internal frames with integer
keys (person, facility, staff and catalogue *row numbers*, times in seconds since the period
start) and turned into canonical tables by :mod:`fraudscan.synth.finalize`.

:func:`sanitize` enforces every catalogue restriction on generated lines by dropping lines that
would break one (and capping prices and quantities), which is what keeps clean data free of rule
violations whatever the clinical model proposes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fraudscan.schema import INSURANCE_TYPES, MEDICAL_TYPES
from fraudscan.synth.catalogue import variants_of
from fraudscan.synth.clinical import (
    CC,
    CHRONIC,
    HERBS,
    INPATIENT,
    KINDS,
    MCC,
    NEONATAL,
    OUTPATIENT,
    PHARMACY_OTC,
    Kind,
)
from fraudscan.synth.config import SynthConfig
from fraudscan.synth.world import DEPARTMENTS, DISTRICTS, World

DAY = 86_400
HOUR = 3_600
BIG = 10**9
S_COLS = ("sid", "person", "fac", "med_type", "ins", "adm", "dis", "dx1", "dx2", "dx3", "dept",
          "staff", "kind", "drg", "planned", "dway", "proc")
L_COLS = ("lid", "sid", "t", "item", "qty", "price", "ds", "rx", "dd", "stock", "traced")


def _bits(values: pd.Series, vocab: tuple[str, ...]) -> np.ndarray:
    """Bit mask per row of the ;-separated codes in ``values`` (0 = unrestricted)."""
    out = np.zeros(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if isinstance(v, str) and v:
            for code in v.split(";"):
                out[i] |= 1 << vocab.index(code)
    return out


@dataclass
class Ctx:
    """Shared state of one generation: the world, lookup arrays and everything produced so far."""

    cfg: SynthConfig
    world: World
    cat: pd.DataFrame
    rng: np.random.Generator
    settlements: list[pd.DataFrame] = field(default_factory=list)
    lines: list[pd.DataFrame] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    extra_scans: list[pd.DataFrame] = field(default_factory=list)
    decoy_pharmacy: int = -1
    sid_next: int = 0
    lid_next: int = 0
    new_deaths: list[int] = field(default_factory=list)
    bed_overuse: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        w, cat, cfg = self.world, self.cat, self.cfg
        start = np.datetime64(cfg.start, "D")
        p = w.persons
        self.n_days = cfg.days
        self.p_sex = p["sex"].to_numpy().astype("U1")
        self.p_birth = (p["birth_date"].to_numpy().astype("datetime64[D]") - start).astype(
            np.int64)
        death = p["death_date"].to_numpy().astype("datetime64[D]")
        self.p_death = np.where(np.isnat(death), BIG, (death - start).astype(np.int64))
        self.p_district = pd.Index(DISTRICTS).get_indexer(p["district"])
        self.p_ins = p["insurance_type"].to_numpy().astype("U3")
        self.p_age0 = -self.p_birth / 365.0
        f = w.facilities
        self.f_level = f["level"].to_numpy().astype(np.int64)
        self.f_type = f["facility_type"].to_numpy().astype(str)
        self.f_district = pd.Index(DISTRICTS).get_indexer(f["district"])
        self.f_size = f["_size"].to_numpy().astype(float)
        self.f_depts = [tuple(d.split(";")) if d else () for d in f["_depts"]]
        self.f_pharmacy = np.isin(self.f_type, ("retail_pharmacy", "dual_channel_pharmacy"))
        self.f_used = np.zeros(len(f), dtype=bool)
        self.f_decoy = np.zeros(len(f), dtype=bool)
        self.p_busy = np.zeros(len(p), dtype=bool)
        st = w.staff
        frm = st["status_from"].to_numpy().astype("datetime64[D]")
        to = st["status_to"].to_numpy().astype("datetime64[D]")
        self.s_from = np.where(np.isnat(frm), BIG, (frm - start).astype(np.int64))
        self.s_to = np.where(np.isnat(to), BIG, (to - start).astype(np.int64))
        # staff pools per (facility, department) and pharmacists per pharmacy
        self.pool_key: dict[tuple[int, str], int] = {}
        flat: list[int] = []
        offs: list[int] = []
        cnts: list[int] = []
        for key in sorted(w.fac_depts):
            members = w.fac_depts[key]
            self.pool_key[key] = len(offs)
            offs.append(len(flat))
            cnts.append(len(members))
            flat.extend(members.tolist())
        ph = st[st["role"] == "pharmacist"]
        for fi, grp in ph.groupby("_fi", sort=True):
            self.pool_key[(int(fi), "")] = len(offs)
            offs.append(len(flat))
            cnts.append(len(grp))
            flat.extend(grp.index.tolist())
        self.pool_flat = np.asarray(flat, dtype=np.int64)
        self.pool_off = np.asarray(offs, dtype=np.int64)
        self.pool_cnt = np.asarray(cnts, dtype=np.int64)
        # catalogue arrays
        self.var = variants_of(cat)
        self.c_code = cat["item_code"].to_numpy(dtype=object)  # shared str objects
        self.c_class = cat["item_class"].to_numpy().astype(str)
        self.c_sex = cat["sex_limit"].fillna("").to_numpy().astype("U1")
        self.c_amin = cat["age_min_days"].astype("float64").fillna(-1).to_numpy()
        self.c_amax = cat["age_max_days"].astype("float64").fillna(np.inf).to_numpy()
        self.c_level = cat["min_facility_level"].astype("float64").fillna(0).to_numpy()
        self.c_care = _bits(cat["care_modes"], MEDICAL_TYPES)
        self.c_ins = _bits(cat["insurance_types"], INSURANCE_TYPES)
        self.c_dept = _bits(cat["departments"], DEPARTMENTS)
        self.c_price = cat["unit_price"].to_numpy().astype(float)
        caps = cat[["price_cap_lv1", "price_cap_lv1", "price_cap_lv2", "price_cap_lv3"]]
        self.c_cap = caps.astype("float64").fillna(np.inf).to_numpy()
        self.c_qday = cat["max_qty_per_day"].astype("float64").fillna(np.inf).to_numpy()
        self.c_ds = cat["max_days_supply"].astype("float64").fillna(np.inf).to_numpy()
        self.c_stay = cat["max_per_stay"].astype("float64").fillna(np.inf).to_numpy()
        self.c_period = cat["period_days"].astype("float64").fillna(0).to_numpy()
        self.c_permax = cat["max_per_period"].astype("float64").fillna(0).to_numpy()
        self.c_course = cat["course_days"].astype("float64").fillna(np.inf).to_numpy()
        self.c_trace = cat["trace_required"].to_numpy().astype(bool)
        self.c_resale = cat["resale_prone"].to_numpy().astype(bool)
        self.c_drug = np.isin(self.c_class, ("western_drug", "patent_tcm", "herbal_piece"))
        self.c_ind = cat["indications"].to_numpy()
        code_pos = pd.Index(cat["item_code"])
        succ = cat["_successor"]
        self.c_succ = np.where(succ.notna(), code_pos.get_indexer(succ.fillna("")), -1)
        self.switch_s = (np.datetime64(cfg.switch_date, "D") - start).astype(np.int64) * DAY
        self._ind_cache: dict[str, np.ndarray] = {}

    # -- ids --------------------------------------------------------------------------------
    def sids(self, n: int) -> np.ndarray:
        out = np.arange(self.sid_next, self.sid_next + n, dtype=np.int64)
        self.sid_next += n
        return out

    def lids(self, n: int) -> np.ndarray:
        out = np.arange(self.lid_next, self.lid_next + n, dtype=np.int64)
        self.lid_next += n
        return out

    # -- helpers ----------------------------------------------------------------------------
    def pick(self, key: str | tuple[str, ...], n: int) -> np.ndarray:
        """``n`` catalogue rows drawn among the variants of one or several template keys."""
        keys = (key,) if isinstance(key, str) else key
        pool = np.concatenate([self.var[k] for k in keys])
        return pool[self.rng.integers(0, len(pool), size=n)]

    def facilities_for(self, kind: Kind) -> tuple[np.ndarray, np.ndarray]:
        """Facilities that can host ``kind`` and the department used at each."""
        cand, dept = [], []
        for fi in range(len(self.f_level)):
            if self.f_pharmacy[fi] or self.f_level[fi] < kind.min_level:
                continue
            if kind.fac_types and self.f_type[fi] not in kind.fac_types:
                continue
            if kind.setting == "ip" and self.f_type[fi] == "village_clinic":
                continue
            d = next((d for d in kind.depts if d in self.f_depts[fi]), None)
            if d is None:
                continue
            cand.append(fi)
            dept.append(d)
        return np.asarray(cand, dtype=np.int64), np.asarray(dept, dtype=object)

    def choose_facility(self, cand: np.ndarray, persons: np.ndarray,
                        weight: np.ndarray | None = None, home: float = 5.0) -> np.ndarray:
        """Facility per person among ``cand``, preferring the person's own district."""
        out = np.empty(len(persons), dtype=np.int64)
        base = self.f_size[cand] if weight is None else weight
        dist = self.p_district[persons]
        for d in range(len(DISTRICTS)):
            m = dist == d
            if not m.any():
                continue
            w = base * np.where(self.f_district[cand] == d, home, 1.0)
            out[m] = cand[self.rng.choice(len(cand), size=int(m.sum()), p=w / w.sum())]
        return out

    def assign_staff(self, fac: np.ndarray, dept: np.ndarray, adm: np.ndarray,
                     dis: np.ndarray) -> np.ndarray:
        """An attending doctor (or pharmacist) per settlement, never one sanctioned then."""
        keys = [(int(f), d if isinstance(d, str) else "") for f, d in zip(fac, dept,
                                                                          strict=True)]
        codes, uniq = pd.factorize(pd.Series(keys, dtype=object))
        gid = np.asarray([self.pool_key.get(k, -1) for k in uniq], dtype=np.int64)[codes]
        if (gid < 0).any():
            raise RuntimeError("settlement at a facility/department without staff")
        off, cnt = self.pool_off[gid], self.pool_cnt[gid]
        staff = self.pool_flat[off + (self.rng.random(len(gid)) * cnt).astype(np.int64)]
        a_day, d_day = adm // DAY, dis // DAY
        bad = (self.s_from[staff] <= d_day) & (a_day <= self.s_to[staff])
        staff[bad] = self.pool_flat[off[bad]]
        return staff

    def season_days(self, n: int, winter: bool) -> np.ndarray:
        """Day offsets with a winter respiratory peak for ``winter`` kinds."""
        if not winter:
            return self.rng.integers(0, self.n_days, size=n)
        doy = (np.arange(self.n_days) + self.cfg.start.timetuple().tm_yday - 1) % 365
        w = 1.0 + 0.9 * np.cos(2 * np.pi * (doy - 15) / 365.0)
        return self.rng.choice(self.n_days, size=n, p=w / w.sum())

    def indication_ok(self, items: np.ndarray, dx: np.ndarray) -> np.ndarray:
        """Whether each item's indication list admits the diagnosis beside it."""
        ok = np.ones(len(items), dtype=bool)
        restricted = np.flatnonzero(pd.notna(self.c_ind))
        sel = np.isin(items, restricted)
        if not sel.any():
            return ok
        it, dd = items[sel], dx[sel]
        res = np.zeros(len(it), dtype=bool)
        dds = pd.Series(dd, dtype=object).fillna("")
        for i in np.unique(it):
            m = it == i
            prefixes = tuple(str(self.c_ind[i]).split(";"))
            res[m] = dds[m].str.startswith(prefixes).to_numpy()
        ok[sel] = res
        return ok


def new_settlements(ctx: Ctx, **cols: object) -> pd.DataFrame:
    """A settlement frame with fresh ids; columns not given get neutral defaults."""
    n = len(next(iter(cols.values())))  # type: ignore[arg-type]
    df = pd.DataFrame({"sid": ctx.sids(n), "row": np.arange(n)})
    defaults: dict[str, object] = {"dx1": None, "dx2": None, "dx3": None, "dept": None,
                                   "staff": -1, "kind": "", "drg": None, "planned": False,
                                   "dway": None, "proc": None}
    for c in S_COLS[1:]:
        v = cols.get(c, defaults.get(c))
        df[c] = v
    for extra in ("fix1", "fix2", "fixq", "fixds"):
        df[extra] = cols.get(extra, -1 if extra != "fixds" else 0)
    df["origin"] = cols.get("origin", "clean")
    return df


# ---------------------------------------------------------------------------------------------
# Clean settlement skeletons
# ---------------------------------------------------------------------------------------------

def _age_factor(age: np.ndarray, table: tuple[tuple[float, float], ...]) -> np.ndarray:
    out = np.ones(len(age))
    for upper, f in reversed(table):
        out[age < upper] = f
    return out


def _choose_kind(ctx: Ctx, persons: np.ndarray, kinds: tuple[Kind, ...]) -> np.ndarray:
    """Kind index per entry, among kinds whose age band and sex fit the person."""
    age = ctx.p_age0[persons] + 0.5
    sex = ctx.p_sex[persons]
    w = np.zeros((len(persons), len(kinds)))
    for j, k in enumerate(kinds):
        ok = (age >= k.age[0]) & (age < k.age[1])
        if k.sex:
            ok &= sex == k.sex
        w[:, j] = ok * k.weight
    tot = w.sum(axis=1)
    cum = np.cumsum(w, axis=1)
    u = ctx.rng.random(len(persons)) * tot
    idx = (cum <= u[:, None]).sum(axis=1)
    idx[tot == 0] = -1
    return np.minimum(idx, len(kinds) - 1) * (tot > 0) - (tot == 0)


def _skeleton(ctx: Ctx, persons: np.ndarray, kind: Kind, days: np.ndarray,
              fac: np.ndarray | None = None, ins: np.ndarray | None = None) -> pd.DataFrame:
    """Settlements of one kind for ``persons`` starting on ``days``."""
    rng = ctx.rng
    cand, cdept = ctx.facilities_for(kind)
    if fac is None:
        fac = ctx.choose_facility(cand, persons)
    dept = cdept[pd.Index(cand).get_indexer(fac)] if len(cand) else np.full(len(fac), None)
    n = len(persons)
    if kind.setting == "ip":
        los = np.clip(np.round(rng.lognormal(np.log(kind.los[0]), kind.los[1], n)), 1, 60)
        los = los.astype(np.int64)
        adm = days * DAY + 8 * HOUR + rng.integers(0, 9 * HOUR, n)
        dis = (days + los) * DAY + 9 * HOUR + rng.integers(0, 2 * HOUR, n)
    else:
        adm = days * DAY + 8 * HOUR + rng.integers(0, 9 * HOUR, n)
        dis = adm + rng.integers(10 * 60, 50 * 60, n)
    dx1 = np.asarray(kind.dx, dtype=object)[rng.integers(0, len(kind.dx), n)]
    dx2 = np.full(n, None, dtype=object)
    dx3 = np.full(n, None, dtype=object)
    if kind.sec_dx:
        adult = ctx.p_age0[persons] >= 18
        u = rng.random(n)
        sec = np.asarray(kind.sec_dx, dtype=object)
        dx2 = np.where(adult & (u < 0.45), sec[rng.integers(0, len(sec), n)], None)
        dx3 = np.where(adult & (u < 0.12), sec[rng.integers(0, len(sec), n)], None)
        dx3 = np.where(dx3 == dx2, None, dx3)
        mcc = adult & (rng.random(n) < 0.03)
        dx3 = np.where(mcc, np.asarray(MCC, dtype=object)[rng.integers(0, len(MCC), n)], dx3)
    if ins is None:
        ins = ctx.p_ins[persons].astype(object)
        if kind.med_type == "52":
            ins = np.where(ins == "310", "510", ins)
    drg = None
    if kind.drg:
        drg = np.asarray(_drg(kind.drg, dx2, dx3), dtype=object)
    return new_settlements(
        ctx, person=persons, fac=fac, med_type=kind.med_type, ins=np.asarray(ins, dtype=object),
        adm=adm, dis=dis, dx1=dx1, dx2=dx2, dx3=dx3, dept=dept, kind=kind.name, drg=drg,
        dway=np.where(rng.random(n) < 0.96, "1", "4") if kind.setting == "ip" else None,
        proc=kind.procedure)


def _drg(base: str, dx2: np.ndarray, dx3: np.ndarray) -> np.ndarray:
    """CHS-DRG style suffix: 1 with an MCC, 3 with a CC, 5 with neither."""
    s2 = pd.Series(dx2, dtype=object)
    s3 = pd.Series(dx3, dtype=object)
    mcc = s2.isin(MCC) | s3.isin(MCC)
    cc = s2.isin(CC) | s3.isin(CC)
    return (base + np.where(mcc, "1", np.where(cc, "3", "5")).astype(object)).astype(object)


def outpatient_skeletons(ctx: Ctx) -> pd.DataFrame:
    """Acute outpatient and emergency visits with a winter peak."""
    rng, cfg = ctx.rng, ctx.cfg
    n = len(ctx.p_sex)
    rate = cfg.outpatient_rate * _age_factor(
        ctx.p_age0, ((5, 2.0), (14, 1.2), (45, 0.7), (65, 1.0), (200, 1.6)))
    visits = rng.poisson(rate)
    persons = np.repeat(np.arange(n), visits)
    k = _choose_kind(ctx, persons, OUTPATIENT)
    out = []
    for j, kind in enumerate(OUTPATIENT):
        pj = persons[k == j]
        if len(pj):
            out.append(_skeleton(ctx, pj, kind, ctx.season_days(len(pj), kind.winter)))
    return pd.concat(out, ignore_index=True)


def pharmacy_skeletons(ctx: Ctx) -> pd.DataFrame:
    """Over-the-counter purchases (med_type 41) by adults at retail pharmacies."""
    rng = ctx.rng
    n = len(ctx.p_sex)
    rate = ctx.cfg.pharmacy_rate * (ctx.p_age0 >= 16) * _age_factor(
        ctx.p_age0, ((40, 0.8), (65, 1.1), (200, 1.4)))
    k = rng.poisson(rate)
    persons = np.repeat(np.arange(n), k)
    cand = np.flatnonzero(ctx.f_type == "retail_pharmacy")
    w = ctx.f_size[cand].copy()
    if ctx.decoy_pharmacy >= 0:
        w[cand == ctx.decoy_pharmacy] *= 8.0
    fac = ctx.choose_facility(cand, persons, weight=w)
    m = len(persons)
    days = ctx.season_days(m, winter=rng.random() < 2)  # mild winter effect on OTC too
    adm = days * DAY + 8 * HOUR + rng.integers(0, 13 * HOUR, m)
    return new_settlements(ctx, person=persons, fac=fac, med_type="41",
                           ins=ctx.p_ins[persons].astype(object), adm=adm,
                           dis=adm + rng.integers(60, 600, m), kind="pharm_otc")


def chronic_skeletons(ctx: Ctx) -> pd.DataFrame:
    """Monthly refills of chronic patients at one hospital or pharmacy each (days_supply 30)."""
    rng, cfg = ctx.rng, ctx.cfg
    age = ctx.p_age0
    prob = cfg.chronic_share * np.clip((age - 40) / 30, 0, 1.6) * (age >= 40)
    chronic = np.flatnonzero(rng.random(len(age)) < prob)
    k = _choose_kind(ctx, chronic, CHRONIC)
    out = []
    for j, kind in enumerate(CHRONIC):
        pj = chronic[k == j]
        if not len(pj):
            continue
        m = len(pj)
        # fixed drugs: one or two distinct slots, fixed brand
        nslots = len(kind.drugs)
        nd = rng.integers(kind.n_drugs[0], kind.n_drugs[1] + 1, m)
        order = np.argsort(rng.random((m, nslots)), axis=1)
        fix1 = np.array([ctx.var[kind.drugs[s][0]][0] for s in range(nslots)])[order[:, 0]]
        variant = rng.integers(0, 3, m)
        fix1 = _variant_shift(ctx, fix1, variant)
        fix2 = np.full(m, -1)
        if nslots > 1:
            f2 = np.array([ctx.var[kind.drugs[s][0]][0] for s in range(nslots)])[order[:, 1]]
            fix2 = np.where(nd >= 2, _variant_shift(ctx, f2, variant), -1)
        at_pharmacy = (rng.random(m) < 0.45) & (kind.name != "ch_cml")
        cand, _cdept = ctx.facilities_for(kind)
        hosp = ctx.choose_facility(cand, pj)
        ptype = np.where(ctx.c_resale[fix1], "dual_channel_pharmacy", "retail_pharmacy")
        phar = np.empty(m, dtype=np.int64)
        for t in ("dual_channel_pharmacy", "retail_pharmacy"):
            mm = ptype == t
            if mm.any():
                phar[mm] = ctx.choose_facility(np.flatnonzero(ctx.f_type == t), pj[mm])
        fac = np.where(at_pharmacy, phar, hosp)
        # refill schedule: first within 30 days, then every 30-33 days
        n_ref = cfg.days // 30 + 1
        gaps = np.concatenate([rng.integers(0, 30, (m, 1)), rng.integers(30, 34, (m, n_ref))],
                              axis=1)
        days = np.cumsum(gaps, axis=1)
        ok = days < ctx.n_days - 1
        rows = np.repeat(np.arange(m), ok.sum(axis=1))
        d = days[ok]
        sk = _skeleton(ctx, pj[rows], kind, d, fac=fac[rows])
        sk["med_type"] = np.where(at_pharmacy[rows], "41", "14")
        sk["dept"] = np.where(at_pharmacy[rows], None, sk["dept"].to_numpy())
        sk["fix1"], sk["fix2"] = fix1[rows], fix2[rows]
        sk["fixq"] = _boxes(ctx, fix1[rows])
        sk["fixds"] = 30
        out.append(sk)
    return pd.concat(out, ignore_index=True)


def _variant_shift(ctx: Ctx, first: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """Row of the ``variant``-th maker of the template whose first row is ``first``."""
    keys = ctx.cat["_key"].to_numpy()
    out = first.copy()
    for f in np.unique(first):
        rows = ctx.var[keys[f]]
        m = first == f
        out[m] = rows[np.minimum(variant[m], len(rows) - 1)]
    return out


def _boxes(ctx: Ctx, items: np.ndarray) -> np.ndarray:
    """Boxes for a 30-day supply: 1 for pricey or pen/inhaler items, else 2-3."""
    pricey = ctx.c_price[items] > 50
    return np.where(pricey, 1, 2 + (ctx.rng.random(len(items)) < 0.5))


def dialysis_skeletons(ctx: Ctx) -> pd.DataFrame:
    """Maintenance haemodialysis 2-3 times a week on a fixed weekly pattern."""
    rng, cfg = ctx.rng, ctx.cfg
    adults = np.flatnonzero(ctx.p_age0 >= 30)
    pts = adults[rng.random(len(adults)) < cfg.dialysis_share * len(ctx.p_age0) / max(
        1, len(adults))]
    if len(pts) == 0:
        pts = adults[:1]
    cand = np.flatnonzero(np.array(["A03.06" in d for d in ctx.f_depts]))
    w = ctx.f_size[cand] * np.where(ctx.f_type[cand] == "dialysis_centre", 3.0, 1.0)
    fac = ctx.choose_facility(cand, pts, weight=w)
    patterns = np.array([[0, 2, 4], [1, 3, 5], [0, 3, -1]])
    pat = rng.choice(3, size=len(pts), p=[0.45, 0.35, 0.2])
    wd0 = cfg.start.weekday()
    dow = (np.arange(ctx.n_days) + wd0) % 7
    onday = (dow[None, :, None] == patterns[pat][:, None, :]).any(axis=2)
    rows, days = np.nonzero(onday)
    shift = rng.choice([7 * HOUR, 12 * HOUR], size=len(pts))
    adm = days * DAY + shift[rows]
    m = len(rows)
    s = new_settlements(ctx, person=pts[rows], fac=fac[rows], med_type="14",
                        ins=ctx.p_ins[pts[rows]].astype(object), adm=adm,
                        dis=adm + 4 * HOUR + rng.integers(0, 1800, m), dx1="N18.5",
                        dept="A03.06", kind="dialysis")
    return s


def inpatient_skeletons(ctx: Ctx) -> pd.DataFrame:
    """Stays (general, maternity, neonatal, work injury) before overlap/readmission cleaning."""
    rng, cfg = ctx.rng, ctx.cfg
    n = len(ctx.p_sex)
    age = ctx.p_age0
    rate = cfg.admission_rate * _age_factor(
        age, ((1, 1.2), (14, 0.5), (45, 0.45), (60, 0.9), (75, 2.0), (200, 3.2)))
    k = rng.poisson(rate)
    persons = np.repeat(np.arange(n), k)
    general = tuple(x for x in INPATIENT if x.med_type == "21" and x.weight > 0)
    kk = _choose_kind(ctx, persons, general)
    out = []
    for j, kind in enumerate(general):
        pj = persons[kk == j]
        if len(pj):
            out.append(_skeleton(ctx, pj, kind, ctx.season_days(len(pj), kind.winter)))
    # maternity
    women = np.flatnonzero((ctx.p_sex == "2") & (age >= 21) & (age < 41))
    moms = women[rng.random(len(women)) < 0.045]
    cs = rng.random(len(moms)) < 0.4
    for kind, sel in ((KINDS["ip_delivery"], ~cs), (KINDS["ip_caesarean"], cs)):
        if sel.any():
            out.append(_skeleton(ctx, moms[sel], kind,
                                 rng.integers(0, ctx.n_days - 8, int(sel.sum()))))
    # neonatal jaundice in the first days of life
    babies = np.flatnonzero((ctx.p_birth >= 0) & (rng.random(n) < 0.15))
    if len(babies):
        out.append(_skeleton(ctx, babies, NEONATAL, ctx.p_birth[babies] + rng.integers(
            2, 6, len(babies))))
    # work injuries of employees settled by work-injury insurance
    workers = np.flatnonzero((ctx.p_ins == "310") & (age >= 20) & (age < 58))
    inj = workers[rng.random(len(workers)) < 0.004]
    if len(inj):
        out.append(_skeleton(ctx, inj, KINDS["ip_work_injury"],
                             rng.integers(0, ctx.n_days - 10, len(inj)),
                             ins=np.full(len(inj), "410", dtype=object)))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Settlement-level cleaning
# ---------------------------------------------------------------------------------------------

def clean_settlements(ctx: Ctx, s: pd.DataFrame) -> pd.DataFrame:
    """Drop what clean data may not contain: care outside life, overlaps, readmissions, R33."""
    p = s["person"].to_numpy()
    a_day = s["adm"].to_numpy() // DAY
    d_day = s["dis"].to_numpy() // DAY
    keep = (a_day >= ctx.p_birth[p]) & (d_day < ctx.p_death[p]) & (d_day < ctx.n_days)
    keep &= (a_day >= ctx.p_birth[p] + 28) | (s["kind"].to_numpy() == "ip_neonatal")
    s = s[keep]
    ip = s["med_type"].isin(("21", "52")).to_numpy()
    stays = s[ip].sort_values(["person", "adm"], kind="stable")
    for _ in range(6):
        cm = stays.groupby("person", sort=False)["dis"].cummax()
        prev_end = cm.groupby(stays["person"], sort=False).shift(1).fillna(-1).to_numpy()
        over = stays["adm"].to_numpy() <= prev_end + DAY  # at least one clear day between
        prev_fac = stays.groupby("person", sort=False)["fac"].shift(1).fillna(-1).to_numpy()
        prev_dis = stays.groupby("person", sort=False)["dis"].shift(1).fillna(-BIG).to_numpy()
        prev_ch = stays.groupby("person", sort=False)["dx1"].shift(1).fillna("").str[:1]
        readm = ((prev_fac == stays["fac"].to_numpy())
                 & (stays["adm"].to_numpy() - prev_dis <= 16 * DAY)
                 & (prev_ch.to_numpy() == stays["dx1"].str[:1].to_numpy()))
        bad = over | readm
        if not bad.any():
            break
        stays = stays[~bad]
    other = s[~ip]
    other = drop_during_stays(other, stays)
    return pd.concat([stays, other], ignore_index=True).sort_values("sid", kind="stable")


def drop_during_stays(other: pd.DataFrame, stays: pd.DataFrame) -> pd.DataFrame:
    """Remove non-inpatient settlements dated on any day of the same person's stays."""
    if not len(stays) or not len(other):
        return other
    st = pd.DataFrame({"person": stays["person"].to_numpy(),
                       "a": stays["adm"].to_numpy() // DAY,
                       "d": stays["dis"].to_numpy() // DAY})
    o = pd.DataFrame({"person": other["person"].to_numpy(), "pos": np.arange(len(other)),
                      "t": other["adm"].to_numpy() // DAY})
    o = o[o["person"].isin(st["person"])]
    mm = o.merge(st, on="person")
    hit = mm.loc[(mm["t"] >= mm["a"]) & (mm["t"] <= mm["d"]), "pos"].unique()
    keep = np.ones(len(other), dtype=bool)
    keep[hit] = False
    return other[keep]


# ---------------------------------------------------------------------------------------------
# Fee lines
# ---------------------------------------------------------------------------------------------

def _lines(ctx: Ctx, sid: np.ndarray, t: np.ndarray, item: np.ndarray, qty: np.ndarray,
           ds: np.ndarray | float = np.nan, rx: bool = False) -> pd.DataFrame:
    n = len(sid)
    return pd.DataFrame({"sid": sid, "t": t, "item": item, "qty": np.asarray(qty, dtype=float),
                         "ds": np.broadcast_to(np.asarray(ds, dtype=float), n).copy(),
                         "rx": rx})


def _drug_slots(ctx: Ctx, kind: Kind, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per slot: (mask of settlements receiving it, item rows)."""
    slots = kind.drugs
    if not slots or kind.n_drugs[1] == 0:
        return []
    nd = ctx.rng.integers(kind.n_drugs[0], kind.n_drugs[1] + 1, n)
    rank = np.argsort(np.argsort(ctx.rng.random((n, len(slots))), axis=1), axis=1)
    return [(rank[:, j] < nd, ctx.pick(slots[j], n)) for j in range(len(slots))]


def visit_lines(ctx: Ctx, s: pd.DataFrame, kind: Kind | None) -> pd.DataFrame:
    """Lines of outpatient, chronic, pharmacy and dialysis settlements."""
    rng = ctx.rng
    n = len(s)
    sid = s["sid"].to_numpy()
    adm = s["adm"].to_numpy()
    dis = s["dis"].to_numpy()
    span = np.maximum(dis - adm, 1)
    parts = []

    def at(frac: float | np.ndarray) -> np.ndarray:
        return adm + (span * frac).astype(np.int64)

    not_pharm = s["med_type"].to_numpy() != "41"
    if kind is not None and kind.consult and kind.setting != "pharm":
        m = not_pharm
        key = np.where(
            (ctx.f_level[s["fac"].to_numpy()] >= 2) & (rng.random(n) < 0.3)
            & (kind.consult == "consult_op"), 1, 0)
        items = np.where(key == 1, ctx.pick("consult_expert", n), ctx.pick(kind.consult, n))
        parts.append(_lines(ctx, sid[m], adm[m], items[m], np.ones(int(m.sum()))))
    if kind is not None:
        for key, p in kind.services:
            m = (rng.random(n) < p) & not_pharm
            parts.append(_lines(ctx, sid[m], at(rng.random(n) * 0.8)[m],
                                ctx.pick(key, int(m.sum())), np.ones(int(m.sum()))))
    if "fix1" in s and (s["fix1"].to_numpy() >= 0).any():
        for col in ("fix1", "fix2"):
            it = s[col].to_numpy()
            m = it >= 0
            parts.append(_lines(ctx, sid[m], at(0.9)[m], it[m], s["fixq"].to_numpy()[m],
                                s["fixds"].to_numpy()[m].astype(float), rx=True))
    elif kind is not None:
        for m, items in _drug_slots(ctx, kind, n):
            q = np.where(ctx.c_price[items] > 30, 1, rng.integers(1, 3, n))
            ds = rng.integers(3, 8, n).astype(float)
            parts.append(_lines(ctx, sid[m], at(0.9)[m], items[m], q[m], ds[m], rx=True))
        if kind.herbs:
            nh = rng.integers(3, 5, n)  # with at most one patent drug: <= 5 per prescription
            rank = np.argsort(np.argsort(rng.random((n, len(HERBS))), axis=1), axis=1)
            for j, h in enumerate(HERBS):
                m = rank[:, j] < nh
                g = rng.choice([6, 9, 10, 12, 15, 20, 30], n) * 7.0
                parts.append(_lines(ctx, sid[m], at(0.9)[m], ctx.pick(h, int(m.sum())), g[m],
                                    7.0, rx=True))
    return pd.concat(parts, ignore_index=True) if parts else _lines(
        ctx, sid[:0], adm[:0], sid[:0], sid[:0])


def pharmacy_lines(ctx: Ctx, s: pd.DataFrame) -> pd.DataFrame:
    """1-3 OTC products per purchase."""
    rng = ctx.rng
    n = len(s)
    sid, adm = s["sid"].to_numpy(), s["adm"].to_numpy()
    nd = rng.integers(1, 4, n)
    rank = np.argsort(np.argsort(rng.random((n, len(PHARMACY_OTC))), axis=1), axis=1)
    parts = []
    for j, slot in enumerate(PHARMACY_OTC):
        m = rank[:, j] < nd
        items = ctx.pick(slot, int(m.sum()))
        q = np.where(ctx.c_price[items] >= 50, rng.integers(1, 4, len(items)),
                     rng.integers(1, 3, len(items)))
        parts.append(_lines(ctx, sid[m], adm[m] + 30, items, q,
                            rng.integers(3, 8, len(items)).astype(float), rx=True))
    return pd.concat(parts, ignore_index=True)


def dialysis_lines(ctx: Ctx, s: pd.DataFrame) -> pd.DataFrame:
    """One session, dialyser and tubing per settlement; erythropoietin now and then."""
    n = len(s)
    sid, adm = s["sid"].to_numpy(), s["adm"].to_numpy()
    one = np.ones(n)
    parts = [
        _lines(ctx, sid, adm + 600, ctx.pick("haemodialysis", n), one),
        _lines(ctx, sid, adm + 300, ctx.pick("dialyser", n), one),
        _lines(ctx, sid, adm + 300, ctx.pick("blood_line", n), one),
    ]
    m = ctx.rng.random(n) < 0.3
    parts.append(_lines(ctx, sid[m], adm[m] + 900, ctx.pick("epo", int(m.sum())),
                        np.ones(int(m.sum()))))
    return pd.concat(parts, ignore_index=True)


def stay_lines(ctx: Ctx, s: pd.DataFrame, kind: Kind, only_bed_after: np.ndarray | None = None
               ) -> pd.DataFrame:
    """Daily bed/nursing/ward-round lines, daily drugs, admission tests and the operation.

    ``only_bed_after`` (days, per stay) keeps only bed and nursing lines from that day on,
    the daily profile of a phantom stay.
    """
    rng = ctx.rng
    n = len(s)
    sid = s["sid"].to_numpy()
    adm = s["adm"].to_numpy()
    dis = s["dis"].to_numpy()
    los = np.maximum((dis // DAY) - (adm // DAY), 1)
    rep = np.repeat(np.arange(n), los)
    first = np.repeat(np.cumsum(los) - los, los)
    d = np.arange(len(rep)) - first
    day0 = (adm // DAY)[rep]
    t = (day0 + d) * DAY + 8 * HOUR + rng.integers(0, 10 * HOUR, len(rep))
    t = np.where(d == 0, np.maximum(t, adm[rep] + 600) + rng.integers(0, HOUR, len(rep)), t)
    t = np.minimum(t, dis[rep] - 600)
    idle = np.zeros(len(rep), dtype=bool)
    if only_bed_after is not None:
        idle = d >= only_bed_after[rep]
    parts = []
    for key, p in kind.daily:
        m = rng.random(len(rep)) < p
        if key not in ("bed", "bed_double", "nursing1", "nursing2"):
            m &= ~idle
        q = np.ones(int(m.sum()))
        if key == "oxygen":
            q = rng.integers(2, 9, int(m.sum())).astype(float)
        elif key == "phototherapy":
            q = rng.integers(4, 13, int(m.sum())).astype(float)
        elif key == "iv_drip":
            q = rng.integers(1, 3, int(m.sum())).astype(float)
        parts.append(_lines(ctx, sid[rep[m]], t[m], ctx.pick(key, int(m.sum())), q))
    for m_stay, items in _drug_slots(ctx, kind, n):
        m = m_stay[rep] & (rng.random(len(rep)) < 0.85) & ~idle
        q = rng.integers(1, 3, int(m.sum())).astype(float)
        parts.append(_lines(ctx, sid[rep[m]], t[m] + 60, items[rep[m]], q))
    for key, p in kind.services:
        m = rng.random(n) < p
        tt = adm + 900 + rng.integers(0, 3 * HOUR, n)
        parts.append(_lines(ctx, sid[m], tt[m], ctx.pick(key, int(m.sum())),
                            np.ones(int(m.sum()))))
    if kind.surgery:
        op_t = np.where(los >= 2, (adm // DAY + 1) * DAY + 9 * HOUR, adm + HOUR)
        op_t = np.minimum(op_t, dis - HOUR)
        for key in kind.surgery:
            parts.append(_lines(ctx, sid, op_t + 1800, ctx.pick(key, n), np.ones(n)))
    if kind.rehab:
        for off in (0, 15, 30):
            m = los > off
            parts.append(_lines(ctx, sid[m], ((adm // DAY) + off)[m] * DAY + 10 * HOUR
                                + (off == 0) * 0, ctx.pick("rehab_assess", int(m.sum())),
                                np.ones(int(m.sum()))))
        parts.append(_lines(ctx, sid, adm + 1200, ctx.pick("hand_assess", n), np.ones(n)))
    out = pd.concat(parts, ignore_index=True)
    # the first day's time must follow admission even for the rehab assessment at 10:00
    pos = pd.Index(sid).get_indexer(out["sid"])
    out["t"] = np.clip(out["t"].to_numpy(), adm[pos] + 300, dis[pos] - 300)
    return out


def make_lines(ctx: Ctx, s: pd.DataFrame) -> pd.DataFrame:
    """Lines for any settlement frame, dispatched by kind, then sanitised."""
    parts = []
    for kname, grp in s.groupby("kind", sort=True):
        kname = str(kname)
        if kname == "pharm_otc":
            parts.append(pharmacy_lines(ctx, grp))
        elif kname == "dialysis":
            parts.append(dialysis_lines(ctx, grp))
        elif KINDS[kname].setting == "ip":
            parts.append(stay_lines(ctx, grp, KINDS[kname]))
        else:
            parts.append(visit_lines(ctx, grp, KINDS[kname]))
    lines = pd.concat(parts, ignore_index=True)
    parts.clear()  # free the per-kind frames before sanitising (peak memory)
    return sanitize(ctx, lines, s)


def sanitize(ctx: Ctx, lines: pd.DataFrame, s: pd.DataFrame) -> pd.DataFrame:
    """Apply catalogue versions and restrictions; set prices; give lines ids.

    A line whose item is not payable for this person, facility, care mode, insurance,
    diagnosis or department is dropped; unit prices are capped at the facility level's price
    and quantities/days' supply at their limits.
    """
    pos = pd.Index(s["sid"]).get_indexer(lines["sid"])
    item = lines["item"].to_numpy().copy()
    t = lines["t"].to_numpy()
    succ = ctx.c_succ[item]
    item = np.where((succ >= 0) & (t >= ctx.switch_s), succ, item)
    person = s["person"].to_numpy()[pos]
    fac = s["fac"].to_numpy()[pos]
    level = ctx.f_level[fac]
    age_days = t // DAY - ctx.p_birth[person]
    mt_bit = 1 << pd.Index(MEDICAL_TYPES).get_indexer(s["med_type"].to_numpy()[pos])
    ins_bit = 1 << pd.Index(INSURANCE_TYPES).get_indexer(s["ins"].to_numpy()[pos])
    dept_idx = pd.Index(DEPARTMENTS).get_indexer(s["dept"].to_numpy()[pos])
    dept_bit = np.where(dept_idx >= 0, 1 << np.maximum(dept_idx, 0), 0)
    ok = (ctx.c_sex[item] == "") | (ctx.c_sex[item] == ctx.p_sex[person])
    ok &= (age_days >= ctx.c_amin[item]) & (age_days <= ctx.c_amax[item])
    ok &= level >= ctx.c_level[item]
    ok &= (ctx.c_care[item] == 0) | ((ctx.c_care[item] & mt_bit) != 0)
    ok &= (ctx.c_ins[item] == 0) | ((ctx.c_ins[item] & ins_bit) != 0)
    ok &= (ctx.c_dept[item] == 0) | ((ctx.c_dept[item] & dept_bit) != 0)
    ind = np.zeros(len(item), dtype=bool)
    for col in ("dx1", "dx2", "dx3"):
        ind |= ctx.indication_ok(item, s[col].to_numpy()[pos])
    ok &= ind
    out = lines.loc[ok].copy()
    item, level = item[ok], level[ok]
    out["item"] = item
    cap = ctx.c_cap[item, np.minimum(level, 3)]
    out["price"] = np.round(np.minimum(ctx.c_price[item], cap), 2)
    out["qty"] = np.minimum(out["qty"].to_numpy(), ctx.c_qday[item])
    ds = out["ds"].to_numpy()
    out["ds"] = np.where(np.isnan(ds), np.nan, np.minimum(ds, ctx.c_ds[item]))
    out["dd"] = False
    out["stock"] = np.where(ctx.c_drug[item] | (ctx.c_class[item] == "consumable"), item, -1)
    out["traced"] = ctx.c_trace[item]
    out = out.sort_values(["sid", "t", "item"], kind="stable")
    # one line per item and day per settlement (duplicates merge into the first)
    day = out["t"].to_numpy() // DAY
    dup = pd.DataFrame({"s": out["sid"].to_numpy(), "d": day, "i": out["item"].to_numpy()}
                       ).duplicated().to_numpy()
    out = out[~dup]
    out.insert(0, "lid", ctx.lids(len(out)))
    return out.reset_index(drop=True)


def count_limits(ctx: Ctx, lines: pd.DataFrame, s: pd.DataFrame) -> pd.DataFrame:
    """Drop lines beyond per-stay, per-period and course limits (per person and item)."""
    item = lines["item"].to_numpy()
    lim = np.isfinite(ctx.c_stay[item]) | (ctx.c_period[item] > 0) | np.isfinite(
        ctx.c_course[item])
    if not lim.any():
        return lines
    sub = lines[lim].copy()
    pos = pd.Index(s["sid"]).get_indexer(sub["sid"])
    sub["person"] = s["person"].to_numpy()[pos]
    sub = sub.sort_values(["person", "item", "t"], kind="stable")
    it = sub["item"].to_numpy()
    t = sub["t"].to_numpy()
    n_in_stay = sub.groupby(["sid", "item"], sort=False).cumcount().to_numpy()
    bad = n_in_stay >= ctx.c_stay[it]
    first = sub.groupby(["person", "item"], sort=False)["t"].transform("min").to_numpy()
    bad |= (t // DAY - first // DAY) >= ctx.c_course[it]
    g = sub.groupby(["person", "item"], sort=False)["t"]
    for k in (1, 2, 3):
        prev = g.shift(k).to_numpy()
        per = ctx.c_period[it]
        mk = (ctx.c_permax[it] == k) & (per > 0)
        bad |= mk & ~np.isnan(prev) & ((t - np.nan_to_num(prev)) < per * DAY)
    drop = sub.index[bad]
    return lines.drop(index=drop)
