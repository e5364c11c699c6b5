"""The static city: supervision districts, facilities, staff and insured persons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from fraudscan.synth.config import SynthConfig

DISTRICTS = ("D1", "D2", "D3", "D4")
DISTRICT_NAMES = {"D1": "东湖片区", "D2": "西山片区", "D3": "南城片区", "D4": "北岸片区"}
DISTRICT_ADMDVS = {"D1": "429901", "D2": "429902", "D3": "429903", "D4": "429904"}
CITY_ADMDVS = "429900"

DEPT_NAMES = {
    "A02": "全科医疗科", "A03": "内科", "A03.06": "肾病学专业(血液透析)", "A04": "外科",
    "A05": "妇产科", "A07": "儿科", "A21": "康复医学科", "A50": "中医科",
}
DEPARTMENTS = tuple(DEPT_NAMES)

# (type, level, ownership, count per 10k persons, minimum, departments, name suffix)
FACILITY_PLAN: tuple[tuple[str, int, str, float, int, tuple[str, ...], str], ...] = (
    ("general_hospital", 3, "public", 0.25, 1,
     ("A03", "A04", "A05", "A07", "A21", "A03.06", "A50"), "市第{n}人民医院"),
    ("tcm_hospital", 3, "public", 0.1, 1, ("A50", "A03", "A04", "A21"), "市中医院{n}院区"),
    ("general_hospital", 2, "public", 0.6, 2, ("A03", "A04", "A05", "A07", "A21"),
     "区人民医院{n}"),
    ("general_hospital", 2, "private", 0.4, 1, ("A03", "A04", "A05", "A21"), "仁和医院{n}"),
    ("specialist_hospital", 2, "private", 0.3, 1, ("A04", "A05", "A03"), "康宁专科医院{n}"),
    ("tcm_hospital", 2, "public", 0.2, 1, ("A50", "A03", "A21"), "区中医医院{n}"),
    ("general_hospital", 1, "private", 0.6, 2, ("A03", "A04", "A02"), "民康医院{n}"),
    ("community_health_centre", 1, "public", 1.0, 2, ("A02", "A03", "A50"),
     "社区卫生服务中心{n}"),
    ("township_health_centre", 1, "public", 1.0, 2, ("A02", "A03", "A50"), "镇卫生院{n}"),
    ("village_clinic", 1, "public", 4.0, 4, ("A02",), "村卫生室{n}"),
    ("dialysis_centre", 2, "private", 0.15, 1, ("A03.06",), "血液透析中心{n}"),
    ("rehabilitation_centre", 2, "private", 0.2, 1, ("A21",), "康复医院{n}"),
    ("retail_pharmacy", 0, "private", 6.0, 6, (), "大药房{n}店"),
    ("dual_channel_pharmacy", 0, "private", 0.5, 1, (), "双通道药房{n}"),
)
INPATIENT_TYPES = ("general_hospital", "tcm_hospital", "specialist_hospital",
                   "community_health_centre", "township_health_centre",
                   "rehabilitation_centre")

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_EMPLOYER_WORDS = ("机械", "纺织", "食品", "物流", "建材", "电子", "化工", "制药", "商贸",
                   "印刷", "汽配", "服装")
_EMPLOYER_KINDS = ("有限公司", "股份有限公司", "厂", "集团有限公司")
_VILLAGE_WORDS = ("桃园", "柳湾", "石桥", "杨庄", "河口", "新村", "枣林", "兴隆", "青山",
                  "白沙", "长岭", "梅溪")


@dataclass
class World:
    """The static tables plus index arrays the activity generator works with."""

    facilities: pd.DataFrame
    staff: pd.DataFrame
    persons: pd.DataFrame
    fac_depts: dict[tuple[int, str], np.ndarray]
    """(facility row, department) -> staff rows of doctors there."""


def build_facilities(n_persons: int, rng: np.random.Generator) -> pd.DataFrame:
    """Facilities in proportion to the population, spread over the four districts."""
    f = n_persons / 10_000
    rows = []
    h = p = 0
    for ftype, level, own, per10k, minimum, depts, pattern in FACILITY_PLAN:
        count = max(minimum, round(per10k * f))
        for i in range(count):
            district = DISTRICTS[(i + len(rows)) % len(DISTRICTS)]
            pharmacy = ftype in ("retail_pharmacy", "dual_channel_pharmacy")
            if pharmacy:
                p += 1
                fid = f"Y{p:06d}"
            else:
                h += 1
                fid = f"H{h:06d}"
            sub_depts = depts
            if ftype == "specialist_hospital":
                sub_depts = ("A04", "A03") if i % 2 == 0 else ("A05", "A03")
            rows.append({
                "facility_id": fid,
                "facility_name": DISTRICT_NAMES[district][:2] + pattern.format(n=i + 1),
                "facility_type": ftype,
                "level": level,
                "ownership": own,
                "district": district,
                "admdvs": DISTRICT_ADMDVS[district],
                "beds": 0,
                "internet_hospital": bool(level == 3 and i == 0 and ftype == "general_hospital"),
                "agreement_status": "active",
                "opened_on": date(2010 + int(rng.integers(0, 14)), 1 + int(rng.integers(0, 12)),
                                  1),
                "_depts": ";".join(sub_depts),
                "_size": {3: 12.0, 2: 4.0, 1: 1.5, 0: 1.0}[level]
                * (0.25 if ftype == "village_clinic" else 1.0) * float(rng.lognormal(0, 0.3)),
            })
    return pd.DataFrame(rows)


def build_staff(fac: pd.DataFrame, cfg: SynthConfig, rng: np.random.Generator
                ) -> tuple[pd.DataFrame, dict[tuple[int, str], np.ndarray]]:
    """Doctors per department and pharmacists per pharmacy, a few suspended or terminated.

    The first doctor of every facility department is never sanctioned, so activity can always
    be re-assigned to someone with a valid payment qualification.
    """
    rows = []
    fac_depts: dict[tuple[int, str], list[int]] = {}
    titles = ("住院医师", "主治医师", "副主任医师", "主任医师")
    for fi, rec in enumerate(fac.to_dict("records")):
        r = pd.Series(rec)
        if r.facility_type in ("retail_pharmacy", "dual_channel_pharmacy"):
            for k in range(int(rng.integers(2, 4))):
                rows.append({"facility_id": r.facility_id, "role": "pharmacist",
                             "department": None, "title": "执业药师", "_fi": fi,
                             "_first": k == 0})
            continue
        per_dept = {3: 8, 2: 4, 1: 2}[r.level]
        if r.facility_type == "village_clinic":
            per_dept = 1
        for d in str(r["_depts"]).split(";"):
            n = max(1, int(rng.poisson(per_dept)))
            for k in range(n):
                fac_depts.setdefault((fi, d), []).append(len(rows))
                rows.append({"facility_id": r.facility_id, "role": "doctor", "department": d,
                             "title": titles[int(rng.integers(0, 4))], "_fi": fi,
                             "_first": k == 0})
        if r.level >= 2:
            for _ in range(2):
                rows.append({"facility_id": r.facility_id, "role": "nurse", "department": None,
                             "title": "护师", "_fi": fi, "_first": False})
    st = pd.DataFrame(rows)
    n = len(st)
    st.insert(0, "staff_id", [f"D{i + 1:07d}" for i in range(n)])
    st["qualification_status"] = "active"
    st["status_from"] = pd.NaT
    st["status_to"] = pd.NaT
    st["points_this_year"] = rng.choice([0, 0, 0, 0, 1, 2, 3], size=n)
    st["death_date"] = pd.NaT
    eligible = np.flatnonzero((st["role"] == "doctor").to_numpy() & ~st["_first"].to_numpy())
    k = min(len(eligible), max(2, round(cfg.suspended_staff_share * len(eligible))))
    chosen = np.sort(rng.choice(eligible, size=k, replace=False))
    start = pd.Timestamp(cfg.start)
    for j, i in enumerate(chosen):
        frm = start + pd.Timedelta(days=int(rng.integers(30, max(31, cfg.days - 60))))
        if j % 3 == 2:
            st.loc[i, ["qualification_status", "status_from", "points_this_year"]] = (
                "terminated", frm, 12)
        else:
            to = frm + pd.Timedelta(days=int(rng.integers(30, 181)))
            st.loc[i, ["qualification_status", "status_from", "status_to",
                       "points_this_year"]] = ("suspended", frm, to, 9)
    fd = {k2: np.asarray(v, dtype=np.int64) for k2, v in fac_depts.items()}
    return st, fd


def _employer_names(n: int, rng: np.random.Generator) -> list[str]:
    names = []
    for i in range(n):
        names.append(
            f"江城{_SURNAMES[i % len(_SURNAMES)]}氏{_EMPLOYER_WORDS[i % len(_EMPLOYER_WORDS)]}"
            f"{_EMPLOYER_KINDS[(i // 7) % len(_EMPLOYER_KINDS)]}{i // 84 + 1 if i >= 84 else ''}"
        )
    return names


def build_persons(n: int, cfg: SynthConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Insured persons with a realistic age pyramid, households, employers and villages."""
    start = np.datetime64(cfg.start, "D")
    # age pyramid (years at period start); about 1 % are born during the period
    bands = np.array([0, 5, 15, 25, 35, 45, 55, 65, 75, 85, 95])
    weights = np.array([0.05, 0.10, 0.10, 0.13, 0.15, 0.16, 0.14, 0.10, 0.05, 0.02])
    band = rng.choice(len(weights), size=n, p=weights / weights.sum())
    age_days = (bands[band] * 365 + rng.integers(0, 3650, size=n)).astype(np.int64)
    age_days = np.minimum(age_days, (bands[band + 1] * 365) - 1)
    newborn = rng.random(n) < 0.01
    age_days[newborn] = -rng.integers(1, cfg.days - 30, size=int(newborn.sum()))
    birth = start - age_days.astype("timedelta64[D]")
    sex = np.where(rng.random(n) < 0.5, "1", "2")
    age_y = age_days / 365.0
    employee = (age_y >= 20) & (age_y < 60) & (rng.random(n) < 0.55)
    retired_emp = (age_y >= 60) & (rng.random(n) < 0.35)
    emp_scheme = employee | retired_emp
    district_idx = rng.integers(0, len(DISTRICTS), size=n)
    district = np.asarray(DISTRICTS)[district_idx]
    n_employers = max(8, n // 150)
    employer_names = np.asarray(_employer_names(n_employers, rng), dtype=object)
    # employer size is heavy-tailed
    emp_w = rng.pareto(1.2, n_employers) + 1
    employer = np.where(employee, employer_names[rng.choice(n_employers, size=n,
                                                             p=emp_w / emp_w.sum())], None)
    n_villages = max(8, n // 250)
    village_names = np.asarray(
        [f"{DISTRICT_NAMES[DISTRICTS[i % 4]][:2]}{_VILLAGE_WORDS[i % len(_VILLAGE_WORDS)]}"
         f"{'村' if i % 3 else '社区'}{i // 48 + 1 if i >= 48 else ''}"
         for i in range(n_villages)], dtype=object)
    village_idx = (district_idx + 4 * rng.integers(0, max(1, n_villages // 4), size=n)) \
        % n_villages
    village = village_names[village_idx]
    # households: consecutive persons of one village share a family id
    order = np.argsort(village_idx, kind="stable")
    fam_size = rng.integers(1, 5, size=n)
    fam_break = np.zeros(n, dtype=bool)
    starts = np.cumsum(fam_size)
    starts = starts[starts < n]
    fam_break[0] = True
    fam_break[starts] = True
    fam_no = np.cumsum(fam_break) - 1
    family = np.empty(n, dtype=object)
    family[order] = np.char.add("F", np.char.zfill(fam_no.astype(str), 7))
    # deaths: annual mortality rising with age, dates spread over the period
    q = np.clip(0.0006 * np.exp(np.maximum(age_y, 0) / 11.5), 0, 0.25) * cfg.mortality_scale
    dies = (rng.random(n) < q) & ~newborn
    death = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    death[dies] = start + rng.integers(20, cfg.days - 5, size=int(dies.sum())).astype(
        "timedelta64[D]")
    insured_since = np.maximum(birth, start - rng.integers(200, 8000, size=n).astype(
        "timedelta64[D]"))
    ptype = np.select(
        [employee, retired_emp, age_y < 18], ["在职职工", "退休职工", "城乡居民(未成年)"],
        "城乡居民(成年)")
    return pd.DataFrame({
        "person_id": np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), 8)),
        "sex": sex,
        "birth_date": birth,
        "insurance_type": np.where(emp_scheme, "310", "390"),
        "person_type": ptype,
        "insured_area": CITY_ADMDVS,
        "district": district,
        "employer": employer,
        "village": village,
        "family_id": family,
        "insured_since": insured_since,
        "death_date": death,
        "settlement_restricted_until": pd.NaT,
        "restricted_facilities": None,
    })
