"""Registry of fraud-scenario injectors and the decoys (honest outliers).

Each injector adds settlements and lines (or alters clean ones), and records label intents
through :func:`label`. Amounts left as NaN are filled in by :mod:`fraudscan.synth.finalize`:
a settlement label carries the fund and personal-account money paid on it, a fee-line label its
share of that, and person, staff, facility and ring labels the sum over their labelled
settlements of the same scenario (and case/ring).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from fraudscan.synth.activity import (
    DAY,
    HOUR,
    Ctx,
    _drg,
    _lines,
    _skeleton,
    count_limits,
    dialysis_lines,
    new_settlements,
    pharmacy_lines,
    sanitize,
    stay_lines,
    visit_lines,
)
from fraudscan.synth.clinical import _IP_DAILY, KINDS, MCC, Kind

Injector = Callable[[Ctx, float], None]
REGISTRY: dict[str, Injector] = {}


def register(name: str) -> Callable[[Injector], Injector]:
    """Decorator adding an injector to :data:`REGISTRY` under ``name``."""

    def deco(fn: Injector) -> Injector:
        REGISTRY[name] = fn
        return fn

    return deco


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def label(ctx: Ctx, etype: str, keys: np.ndarray | list, scenario: str, *,
          group: str | np.ndarray | None = None, amount: float | np.ndarray = np.nan,
          frac: float = 1.0, fraud: bool = True) -> None:
    """Record label intents for ``keys`` (row numbers / ids of ``etype``)."""
    keys = np.asarray(keys)
    if not len(keys):
        return
    ctx.labels.append({
        "etype": etype, "key": keys, "scenario": scenario, "fraud": fraud,
        "group": np.broadcast_to(np.asarray(group, dtype=object), len(keys)),
        "amount": np.broadcast_to(np.asarray(amount, dtype=float), len(keys)),
        "frac": frac,
    })


def count(ctx: Ctx, scale: float, per10k: float, minimum: int) -> int:
    """Events for a scenario: proportional to population and intensity, at least ``minimum``."""
    if scale <= 0:
        return 0
    n = len(ctx.p_sex) / 10_000 * per10k * scale
    return max(round(minimum * min(1.0, scale)) or 1, round(n))


def free_persons(ctx: Ctx, n: int, min_age: float = 18, max_age: float = 120,
                 mask: np.ndarray | None = None) -> np.ndarray:
    """``n`` persons alive all period with no stays yet and not used by another scenario."""
    ok = (~ctx.p_busy) & (ctx.p_death >= 10**8) & (ctx.p_age0 >= min_age) & (
        ctx.p_age0 < max_age)
    if mask is not None:
        ok &= mask
    cand = np.flatnonzero(ok)
    n = min(n, len(cand))
    out = np.sort(ctx.rng.choice(cand, size=n, replace=False)) if n else cand[:0]
    ctx.p_busy[out] = True
    return out


def pick_facilities(ctx: Ctx, k: int, types: tuple[str, ...], max_level: int = 3,
                    min_level: int = 0, dept: str | None = None) -> np.ndarray:
    """``k`` facilities of the given types, preferring ones no scenario has used yet."""
    ok = np.isin(ctx.f_type, types) & (ctx.f_level <= max_level) & (ctx.f_level >= min_level)
    ok &= ~ctx.f_decoy
    if dept:
        ok &= np.array([dept in d for d in ctx.f_depts])
    cand = np.flatnonzero(ok)
    fresh = cand[~ctx.f_used[cand]]
    pool = fresh if len(fresh) >= k else cand
    k = min(k, len(pool))
    out = np.sort(ctx.rng.choice(pool, size=k, replace=False))
    ctx.f_used[out] = True
    return out


def split_counts(ctx: Ctx, total: int, k: int) -> np.ndarray:
    """Spread ``total`` events unevenly over ``k`` facilities (non-trivial ranking)."""
    w = ctx.rng.dirichlet(np.full(k, 1.2))
    c = np.floor(w * total).astype(int)
    c[np.argmax(w)] += total - c.sum()
    return np.maximum(c, 1)


def ip_kind(name: str, dx: tuple[str, ...], services: tuple[tuple[str, float], ...],
            daily: tuple[tuple[str, float], ...] = _IP_DAILY,
            drugs: tuple[tuple[str, ...], ...] = (), n_drugs: tuple[int, int] = (0, 0),
            drg: str = "IU2") -> Kind:
    """An ad-hoc inpatient kind for scenario-specific line profiles."""
    return Kind(name, "ip", "21", dx, ("A03", "A02", "A50", "A04"), los=(5, 0.2),
                services=services, daily=daily, drugs=drugs, n_drugs=n_drugs, drg=drg)


def stays(ctx: Ctx, persons: np.ndarray, fac: np.ndarray, kind: Kind, day: np.ndarray,
          los: np.ndarray, staff: np.ndarray | None = None,
          only_bed_after: np.ndarray | None = None, origin: str = "fraud",
          dept: str | None = None, dx: np.ndarray | None = None
          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stays of ``kind`` with given start day and length at given facilities, with lines."""
    n = len(persons)
    if n == 0:
        return _nothing(ctx)
    los = np.minimum(los, ctx.n_days - 2 - day).astype(np.int64)
    s = _skeleton(ctx, persons, kind, day, fac=fac)
    s["dis"] = (day + np.maximum(los, 1)) * DAY + 9 * HOUR + ctx.rng.integers(0, 2 * HOUR, n)
    if dept is not None:
        s["dept"] = dept
    if dx is not None:
        s["dx1"] = dx
    if s["dept"].isna().any():
        s["dept"] = [next((d for d in kind.depts if d in ctx.f_depts[f]), ctx.f_depts[f][0])
                     for f in s["fac"]]
    s["staff"] = staff if staff is not None else ctx.assign_staff(
        s["fac"].to_numpy(), s["dept"].to_numpy(), s["adm"].to_numpy(), s["dis"].to_numpy())
    s["origin"] = origin
    lines = stay_lines(ctx, s, kind, only_bed_after=only_bed_after)
    lines = count_limits(ctx, sanitize(ctx, lines, s), s)
    return add(ctx, s, lines)


def visits(ctx: Ctx, persons: np.ndarray, fac: np.ndarray, kind: Kind, adm: np.ndarray,
           med_type: str | np.ndarray = "11", dx: str | np.ndarray | None = None,
           fix: tuple[np.ndarray, np.ndarray] | None = None,
           fixq: np.ndarray | int = 1, fixds: int = 30, staff: np.ndarray | None = None,
           origin: str = "fraud", dur: int = 600) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Outpatient or pharmacy settlements at given times, lines from ``kind`` or ``fix``."""
    n = len(persons)
    if n == 0:
        return _nothing(ctx)
    s = _skeleton(ctx, persons, kind, adm // DAY, fac=fac)
    s["adm"] = adm
    s["dis"] = adm + dur
    s["med_type"] = med_type
    if dx is not None:
        s["dx1"] = dx
    pharmacy = ctx.f_pharmacy[s["fac"].to_numpy()]
    s["dept"] = [None if ph else next((d for d in kind.depts if d in ctx.f_depts[f]),
                                      ctx.f_depts[f][0])
                 for f, ph in zip(s["fac"], pharmacy, strict=True)]
    if fix is not None:
        s["fix1"], s["fix2"] = fix
        s["fixq"] = fixq
        s["fixds"] = fixds
    s["staff"] = staff if staff is not None else ctx.assign_staff(
        s["fac"].to_numpy(), s["dept"].to_numpy(), s["adm"].to_numpy(), s["dis"].to_numpy())
    s["origin"] = origin
    lines = visit_lines(ctx, s, None if fix is not None else kind)
    if not len(lines):
        lines = visit_lines(ctx, s, kind)
    lines = sanitize(ctx, lines, s)
    assert n == len(s)
    return add(ctx, s, lines)


def _nothing(ctx: Ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Empty settlement and line frames (a scenario found no eligible actors)."""
    z = np.zeros(0, dtype=np.int64)
    s = new_settlements(ctx, person=z, fac=z, adm=z, dis=z, staff=z)
    lines = pd.DataFrame({c: z for c in ("lid", "sid", "t", "item", "qty", "price", "ds",
                                         "stock")})
    for c in ("rx", "dd", "traced"):
        lines[c] = np.zeros(0, dtype=bool)
    return s, lines


def add(ctx: Ctx, s: pd.DataFrame, lines: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Append a batch (settlements without lines are dropped)."""
    s = s[s["sid"].isin(lines["sid"])]
    ctx.settlements.append(s)
    ctx.lines.append(lines)
    return s, lines


def group_name(scenario: str, i: int) -> str:
    return f"{scenario}-{i + 1:04d}"


def trace_codes(ctx: Ctx, lid: np.ndarray, stock_item: np.ndarray, qty: np.ndarray
                ) -> pd.DataFrame:
    """The boxes of traced lines: one 20-digit code per box, derived from line id and box."""
    n = np.maximum(qty.astype(np.int64), 0)
    if n.sum() == 0:
        return pd.DataFrame({"src": np.zeros(0, dtype=np.int64), "code": np.zeros(0, dtype=object)})
    rep = np.repeat(np.arange(len(lid)), n)
    box = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
    code = (np.char.add(np.char.add(
        np.char.add("8", np.char.zfill((1_000_000 + stock_item[rep]).astype(str), 7)),
        np.char.zfill(lid[rep].astype(str), 9)), np.char.zfill(box.astype(str), 3)))
    return pd.DataFrame({"src": rep, "code": code})


# ---------------------------------------------------------------------------------------------
# inpatient scenarios
# ---------------------------------------------------------------------------------------------

_MILD_IP = ip_kind("mild_ip", ("M54.5", "I10", "E11.9", "K29.7"),
                   (("blood_routine", 0.9), ("urine_routine", 0.6), ("ecg", 0.6),
                    ("kidney_fn", 0.4)),
                   daily=(*_IP_DAILY, ("iv_drip", 0.7), ("acupuncture", 0.3)),
                   drugs=(("saline", "glucose"), ("pantoprazole",)), n_drugs=(1, 2),
                   drg="IU2")
_LAB_HEAVY = ip_kind("lab_heavy", ("J06.9", "R51", "Z00.0", "I10"),
                     (("blood_routine", 0.95), ("urine_routine", 0.9), ("liver_fn", 0.9),
                      ("kidney_fn", 0.9), ("lipids", 0.9), ("glucose_test", 0.9),
                      ("electrolytes", 0.8), ("coag", 0.7), ("cardiac", 0.6), ("crp", 0.7),
                      ("ecg", 0.9), ("us_abd", 0.8), ("xray_chest", 0.7), ("ct", 0.7),
                      ("mri", 0.3)),
                     drugs=(("saline", "glucose"),), n_drugs=(0, 1), drg="XJ1")
_FAKE = ip_kind("fake_ip", ("I10", "E11.9", "M54.5", "I25.1"),
                (("blood_routine", 0.95), ("urine_routine", 0.9), ("liver_fn", 0.8),
                 ("kidney_fn", 0.8), ("glucose_test", 0.7), ("ecg", 0.9), ("us_abd", 0.5)),
                daily=(("bed", 1.0), ("nursing2", 1.0), ("consult_ip", 0.6)), drg="FT2")
_SMALL_IP = ("general_hospital", "township_health_centre", "community_health_centre")


@register("phantom_bed")
def phantom_bed(ctx: Ctx, scale: float) -> None:
    """挂床住院: long stays where after day 2 only bed and nursing are billed."""
    total = count(ctx, scale, 14, 6)
    if not total:
        return
    facs = pick_facilities(ctx, 2, _SMALL_IP, max_level=2, dept="A03")
    for fi, c in zip(facs, split_counts(ctx, total, len(facs)), strict=True):
        p = free_persons(ctx, c, 45)
        if not len(p):
            continue
        los = ctx.rng.integers(12, 26, len(p))
        day = ctx.rng.integers(0, ctx.n_days - 30, len(p))
        s, lines = stays(ctx, p, np.full(len(p), fi), _MILD_IP, day, los,
                         only_bed_after=np.full(len(p), 2), dept="A03")
        label(ctx, "settlement", s["sid"], "phantom_bed", group=group_name("phantom_bed", fi))
        adm_day = s.set_index("sid")["adm"] // DAY
        lday = lines["t"] // DAY - adm_day.reindex(lines["sid"]).to_numpy()
        idle = lines[(lday >= 2).to_numpy()]
        label(ctx, "fee_line", idle["lid"], "phantom_bed", group=group_name("phantom_bed", fi))
        label(ctx, "staff", np.unique(s["staff"]), "phantom_bed",
              group=group_name("phantom_bed", fi))
        # the absent patient shops at a pharmacy during the stay (the evidence of absence)
        away = s[ctx.rng.random(len(s)) < 0.6]
        if len(away):
            ph = np.flatnonzero(ctx.f_type == "retail_pharmacy")
            pfac = ph[ctx.rng.integers(0, len(ph), len(away))]
            t = (away["adm"].to_numpy() // DAY + ctx.rng.integers(3, 9, len(away))) * DAY \
                + 10 * HOUR
            t = np.minimum(t, (away["dis"].to_numpy() // DAY - 1) * DAY + 10 * HOUR)
            ev = _skeleton(ctx, away["person"].to_numpy(), KINDS["op_gi"], t // DAY, fac=pfac)
            ev["adm"], ev["dis"], ev["med_type"], ev["kind"] = t, t + 300, "41", "pharm_otc"
            ev["dx1"], ev["dept"], ev["origin"] = None, None, "evidence"
            ev["staff"] = ctx.assign_staff(ev["fac"].to_numpy(), ev["dept"].to_numpy(),
                                           ev["adm"].to_numpy(), ev["dis"].to_numpy())
            ev, _ = add(ctx, ev, sanitize(ctx, pharmacy_lines(ctx, ev), ev))
            # the fund paid for them during the stay (R33): part of the case, so labelled
            label(ctx, "settlement", ev["sid"], "phantom_bed",
                  group=group_name("phantom_bed", fi))


@register("fake_admission")
def fake_admission(ctx: Ctx, scale: float) -> None:
    """虚假住院: recruited elderly cohorts from one village, short stays of bed and tests only."""
    cohorts = count(ctx, scale, 2.5, 2)
    if not cohorts:
        return
    facs = pick_facilities(ctx, 2, _SMALL_IP, max_level=1, dept="A03")
    villages = ctx.world.persons["village"].to_numpy()
    for c in range(cohorts):
        fi = facs[c % len(facs)]
        v = villages[ctx.rng.integers(0, len(villages))]
        size = int(ctx.rng.integers(5, 13))
        p = free_persons(ctx, size, 60, mask=villages == v)
        if len(p) < 3:
            p = np.concatenate([p, free_persons(ctx, size - len(p), 60)])
        g = group_name("fake_admission", c)
        for wave in range(2 if ctx.rng.random() < 0.6 else 1):
            members = p if wave == 0 else p[ctx.rng.random(len(p)) < 0.6]
            base = int(ctx.rng.integers(0, ctx.n_days // 2 - 20)) + wave * (ctx.n_days // 2)
            day = base + ctx.rng.integers(0, 3, len(members))
            s, _ = stays(ctx, members, np.full(len(members), fi), _FAKE, day,
                         ctx.rng.integers(4, 8, len(members)), dept="A03")
            label(ctx, "settlement", s["sid"], "fake_admission", group=g)
        label(ctx, "person", p, "fake_admission", group=g)


@register("split_admission")
def split_admission(ctx: Ctx, scale: float) -> None:
    """分解住院: a second stay at the same facility 2-12 days after discharge, same diagnosis."""
    total = count(ctx, scale, 10, 5)
    if not total:
        return
    clean = ctx.settlements[0]
    st = clean[clean["med_type"].eq("21") & clean["kind"].isin(
        ("ip_pneumonia", "ip_copd", "ip_chd", "ip_htn_dm", "ip_gastro", "ip_lumbar"))]
    one = st["person"].map(st["person"].value_counts()) == 1
    st = st[one.to_numpy() & (ctx.p_death[st["person"].to_numpy()] >= 10**8)
            & ctx.f_level[st["fac"].to_numpy()].__ge__(2)]
    st = st[(st["dis"] // DAY) < ctx.n_days - 30]
    if not len(st):
        return
    facs = np.unique(st["fac"].to_numpy())
    chosen = np.sort(ctx.rng.choice(facs, size=min(2, len(facs)), replace=False))
    ctx.f_used[chosen] = True
    cand = st[st["fac"].isin(chosen)]
    pick = cand.iloc[np.sort(ctx.rng.choice(len(cand), size=min(total, len(cand)),
                                            replace=False))]
    ctx.p_busy[pick["person"].to_numpy()] = True
    for kname, grp in pick.groupby("kind", sort=True):
        kind = KINDS[str(kname)]
        day = grp["dis"].to_numpy() // DAY + ctx.rng.integers(2, 13, len(grp))
        s, _ = stays(ctx, grp["person"].to_numpy(), grp["fac"].to_numpy(), kind, day,
                     ctx.rng.integers(3, 8, len(grp)), staff=grp["staff"].to_numpy(),
                     dept=None, dx=grp["dx1"].to_numpy())
        label(ctx, "settlement", s["sid"], "split_admission",
              group=np.asarray([group_name("split_admission", int(f)) for f in s["fac"]]))


@register("low_indication_admission")
def low_indication_admission(ctx: Ctx, scale: float) -> None:
    """轻症/体检式住院: mild or check-up diagnoses, stays dominated by lab and imaging."""
    total = count(ctx, scale, 12, 6)
    if not total:
        return
    facs = pick_facilities(ctx, 2, ("general_hospital", "tcm_hospital"), max_level=2,
                           min_level=2, dept="A03")
    for fi, c in zip(facs, split_counts(ctx, total, len(facs)), strict=True):
        p = free_persons(ctx, c, 30)
        day = ctx.rng.integers(0, ctx.n_days - 10, len(p))
        s, _ = stays(ctx, p, np.full(len(p), fi), _LAB_HEAVY, day,
                     ctx.rng.integers(3, 7, len(p)), dept="A03")
        label(ctx, "settlement", s["sid"], "low_indication_admission",
              group=group_name("low_indication_admission", fi))


@register("group_admission")
def group_admission(ctx: Ctx, scale: float) -> None:
    """集中住院: 5-10 employees of one employer admitted to one facility within a week."""
    bursts = count(ctx, scale, 2, 2)
    if not bursts:
        return
    facs = pick_facilities(ctx, 1, ("general_hospital", "specialist_hospital"), max_level=2,
                           min_level=2, dept="A03")
    emp = ctx.world.persons["employer"].to_numpy()
    sizes = pd.Series(emp).value_counts()
    employers = sorted(sizes[sizes >= 12].index.tolist()) or sorted(sizes.index.tolist())
    for b in range(bursts):
        e = employers[int(ctx.rng.integers(0, len(employers)))]
        p = free_persons(ctx, int(ctx.rng.integers(5, 11)), 20, mask=emp == e)
        if len(p) < 3:
            continue
        base = int(ctx.rng.integers(0, ctx.n_days - 25))
        day = base + ctx.rng.integers(0, 7, len(p))
        kind = (KINDS["ip_lumbar"], KINDS["ip_gastro"], _MILD_IP)[b % 3]
        g = group_name("group_admission", b)
        s, _ = stays(ctx, p, np.full(len(p), facs[0]), kind, day,
                     ctx.rng.integers(6, 12, len(p)), dept="A03")
        label(ctx, "settlement", s["sid"], "group_admission", group=g)
        label(ctx, "person", p, "group_admission", group=g)


@register("templated_items")
def templated_items(ctx: Ctx, scale: float) -> None:
    """医疗项目雷同: one doctor's stays with an identical item list across different diagnoses."""
    total = count(ctx, scale, 10, 8)
    if not total:
        return
    fi = pick_facilities(ctx, 1, ("general_hospital",), max_level=2, min_level=1,
                         dept="A03")[0]
    pool = ctx.world.fac_depts[(int(fi), "A03")]
    doc = pool[-1]
    p = free_persons(ctx, total, 40)
    los = 7
    day = np.sort(ctx.rng.integers(0, ctx.n_days - 10, len(p)))
    kinds = [KINDS["ip_htn_dm"], KINDS["ip_gastro"], KINDS["ip_lumbar"], KINDS["ip_chd"]]
    proto, plines = stays(ctx, p[:1], np.array([fi]), kinds[0], day[:1], np.array([los]),
                          staff=np.array([doc]), dept="A03")
    g = group_name("templated_items", int(fi))
    label(ctx, "settlement", proto["sid"], "templated_items", group=g)
    if len(p) > 1:
        rest = p[1:]
        s = _skeleton(ctx, rest, kinds[0], day[1:], fac=np.full(len(rest), fi))
        dxs = np.asarray([k.dx[0] for k in kinds], dtype=object)
        s["dx1"] = dxs[np.arange(len(rest)) % len(dxs)]
        s["dx2"], s["dx3"] = None, None
        s["dis"] = (day[1:] + los) * DAY + 10 * HOUR
        s["adm"] = day[1:] * DAY + (proto["adm"].iloc[0] % DAY)
        s["dept"], s["staff"], s["origin"] = "A03", doc, "fraud"
        s["drg"] = _drg("FT2", s["dx2"].to_numpy(), s["dx3"].to_numpy())
        pl = plines.drop(columns=["lid"])
        shift = (s["adm"].to_numpy() - proto["adm"].iloc[0])
        rep = np.repeat(np.arange(len(s)), len(pl))
        lines = pd.concat([pl] * len(s), ignore_index=True)
        lines["sid"] = s["sid"].to_numpy()[rep]
        lines["t"] = lines["t"].to_numpy() + shift[rep]
        lines = sanitize(ctx, lines[["sid", "t", "item", "qty", "ds", "rx"]], s)
        s, _ = add(ctx, s, lines)
        label(ctx, "settlement", s["sid"], "templated_items", group=g)
    label(ctx, "staff", [doc], "templated_items", group=g)


@register("bed_overuse")
def bed_overuse(ctx: Ctx, scale: float) -> None:
    """床位率异常: a small hospital bills more stay-days than its approved beds allow."""
    total = count(ctx, scale, 20, 12)
    if not total:
        return
    # enough stay-days to exceed even a one-bed registry: ~1.5 beds' worth for the period
    total = max(total, int(1.5 * ctx.n_days / 11))
    fi = pick_facilities(ctx, 1, ("general_hospital",), max_level=1, dept="A03")[0]
    p = free_persons(ctx, total, 40)
    day = ctx.rng.integers(0, ctx.n_days - 20, len(p))
    s, _ = stays(ctx, p, np.full(len(p), fi), KINDS["ip_htn_dm"], day,
                 ctx.rng.integers(8, 16, len(p)), dept="A03")
    g = group_name("bed_overuse", int(fi))
    label(ctx, "settlement", s["sid"], "bed_overuse", group=g)
    ctx.bed_overuse.append(int(fi))


# ---------------------------------------------------------------------------------------------
# drug and pharmacy scenarios
# ---------------------------------------------------------------------------------------------

_RESALE = (("insulin_glargine", "E11.9"), ("entecavir", "B18.1"), ("angong", "I10"))


def _resale_chain(ctx: Ctx, buyers: np.ndarray, sellers_fac: np.ndarray, resale_fac: int,
                  scenario: str, group: str | np.ndarray, card_holders: np.ndarray,
                  staff: np.ndarray | None = None, med_type: str = "41") -> None:
    """Buy traced resale-prone boxes, then re-sell the same boxes at ``resale_fac``."""
    rng = ctx.rng
    n = len(buyers)
    which = rng.integers(0, len(_RESALE), n)
    item = np.array([ctx.var[_RESALE[w][0]][0] for w in which])
    dx = np.asarray([_RESALE[w][1] for w in which], dtype=object)
    t = rng.integers(5, ctx.n_days - 60, n) * DAY + 9 * HOUR + rng.integers(0, 8 * HOUR, n)
    kind = KINDS["ch_dm"]
    s, lines = visits(ctx, buyers, sellers_fac, kind, t, med_type=med_type, dx=dx,
                      fix=(item, np.full(n, -1)), fixq=rng.integers(3, 6, n), staff=staff)
    groups = np.broadcast_to(np.asarray(group, dtype=object), n)
    sgroup = pd.Series(groups[s["row"].to_numpy()], index=s["sid"].to_numpy())
    label(ctx, "settlement", s["sid"], scenario, group=sgroup.to_numpy())
    drug = lines[ctx.c_trace[lines["item"].to_numpy()] & ctx.c_drug[lines["item"].to_numpy()]]
    codes = trace_codes(ctx, drug["lid"].to_numpy(), drug["stock"].to_numpy(),
                        drug["qty"].to_numpy())
    resold = codes[rng.random(len(codes)) < 0.8]
    if not len(resold) or not len(card_holders):
        return
    src = drug.iloc[resold["src"].to_numpy()]
    src_pos = pd.Index(s["sid"]).get_indexer(src["sid"])
    # one re-sale settlement per box, 3-40 days later, on the card of another person
    m = len(src)
    holder = card_holders[rng.integers(0, len(card_holders), m)]
    t2 = src["t"].to_numpy() + rng.integers(3, 40, m) * DAY + rng.integers(0, 5 * HOUR, m)
    t2 = np.minimum(t2, (ctx.n_days - 1) * DAY - 12 * HOUR)
    s2, l2 = visits(ctx, holder, np.full(m, resale_fac), kind, t2, med_type="41",
                    dx=s["dx1"].to_numpy()[src_pos],
                    fix=(src["item"].to_numpy(), np.full(m, -1)), fixq=1)
    l2["traced"] = False
    l2["stock"] = -1
    row = s2.set_index("sid")["row"].reindex(l2["sid"]).to_numpy()
    ctx.extra_scans.append(pd.DataFrame({
        "lid": l2["lid"].to_numpy(), "code": resold["code"].to_numpy()[row],
        "t": l2["t"].to_numpy(), "fac": resale_fac, "item": l2["item"].to_numpy()}))
    g2 = sgroup.reindex(src["sid"].to_numpy()[row]).to_numpy()
    label(ctx, "settlement", l2["sid"], scenario, group=g2)
    label(ctx, "fee_line", l2["lid"], scenario, group=g2)


@register("drug_resale")
def drug_resale(ctx: Ctx, scale: float) -> None:
    """倒卖/回流药: resellers buy traced boxes at many places; the same codes sell again at B."""
    total = count(ctx, scale, 5, 3)
    if not total:
        return
    resale_fac = pick_facilities(ctx, 1, ("retail_pharmacy",))[0]
    resellers = free_persons(ctx, total, 35)
    sellers = np.flatnonzero(np.isin(ctx.f_type, ("dual_channel_pharmacy", "retail_pharmacy"))
                             & (np.arange(len(ctx.f_type)) != resale_fac))
    trips = ctx.rng.integers(3, 7, len(resellers))
    buyers = np.repeat(resellers, trips)
    fac = sellers[ctx.rng.integers(0, len(sellers), len(buyers))]
    holders = free_persons(ctx, max(5, total * 3), 40)
    groups = np.asarray([group_name("drug_resale", int(i)) for i in
                         np.repeat(np.arange(len(resellers)), trips)], dtype=object)
    _resale_chain(ctx, buyers, fac, int(resale_fac), "drug_resale", groups, holders)
    label(ctx, "person", resellers, "drug_resale",
          group=np.asarray([group_name("drug_resale", i) for i in range(len(resellers))],
                           dtype=object))
    label(ctx, "person", holders, "drug_resale", group=group_name("drug_resale", 9999))
    label(ctx, "facility", [resale_fac], "drug_resale", group=None)


@register("item_switching")
def item_switching(ctx: Ctx, scale: float) -> None:
    """串换: cheap drugs/consumables billed as a dearer item the facility never bought."""
    if scale <= 0:
        return
    lines = ctx.lines[0]
    clean = ctx.settlements[0]
    facs = pick_facilities(ctx, 3, ("retail_pharmacy", "community_health_centre",
                                    "general_hospital"), max_level=1)
    share = np.clip(np.array([0.15, 0.35, 0.6])[: len(facs)] * scale, 0.02, 0.9)
    pos = pd.Index(clean["sid"]).get_indexer(lines["sid"])
    lfac = clean["fac"].to_numpy()[pos]
    item = lines["item"].to_numpy()
    simple = ((ctx.c_care == 0) & (ctx.c_ins == 0) & (ctx.c_dept == 0) & (ctx.c_sex == "")
              & ~np.isfinite(ctx.c_amax) & (ctx.c_amin < 0) & (ctx.c_level == 0)
              & pd.isna(ctx.c_ind) & ~ctx.c_trace & (ctx.c_succ < 0)
              & ~np.isfinite(ctx.c_ds) & ~np.isfinite(ctx.c_qday))
    simple &= pd.isna(ctx.cat["drug_group"]).to_numpy() & ctx.cat["valid_to"].isna().to_numpy()
    simple &= ~ctx.cat["_key"].str.endswith("#new").to_numpy()
    for fi, sh in zip(facs, share, strict=True):
        here = lfac == fi
        sold = np.unique(item[here])
        elig = here & simple[item]
        idx = np.flatnonzero(elig)
        if not len(idx):
            continue
        chosen = idx[ctx.rng.random(len(idx)) < sh]
        g = group_name("item_switching", int(fi))
        new = item[chosen].copy()
        for y in np.unique(item[chosen]):
            cls = ctx.c_class[y]
            target = np.flatnonzero(simple & (ctx.c_class == cls)
                                    & (ctx.c_price >= ctx.c_price[y] * 1.5))
            target = target[~np.isin(target, sold)]
            m = item[chosen] == y
            if len(target):
                new[m] = target[np.argmin(ctx.c_price[target])]
            else:
                new[m] = -1
        ok = new >= 0
        chosen, new = chosen[ok], new[ok]
        if not len(chosen):
            continue
        old_amount = lines["qty"].to_numpy()[chosen] * lines["price"].to_numpy()[chosen]
        lv = np.minimum(ctx.f_level[fi], 3)
        price = np.round(np.minimum(ctx.c_price[new], ctx.c_cap[new, lv]), 2)
        col_item = lines.columns.get_loc("item")
        col_price = lines.columns.get_loc("price")
        lines.iloc[chosen, col_item] = new
        lines.iloc[chosen, col_price] = price
        diff = np.round(lines["qty"].to_numpy()[chosen] * price - old_amount, 2)
        label(ctx, "fee_line", lines["lid"].to_numpy()[chosen], "item_switching", group=g,
              amount=diff)
        sids = lines["sid"].to_numpy()[chosen]
        per = pd.Series(diff).groupby(sids).sum()
        label(ctx, "settlement", per.index.to_numpy(), "item_switching", group=g,
              amount=per.to_numpy())
        label(ctx, "facility", [fi], "item_switching", group=g, amount=float(diff.sum()))


@register("doctor_shopping")
def doctor_shopping(ctx: Ctx, scale: float) -> None:
    """跨机构频繁就诊: the same drug prescribed at four or more facilities within weeks."""
    total = count(ctx, scale, 5, 3)
    if not total:
        return
    p = free_persons(ctx, total, 45)
    kind = KINDS["ch_dm"]
    cand, _ = ctx.facilities_for(kind)
    for i, person in enumerate(p):
        k = int(ctx.rng.integers(6, 12))
        fac = cand[ctx.rng.choice(len(cand), size=k, replace=len(cand) < k)]
        start = int(ctx.rng.integers(0, ctx.n_days - 100))
        t = (start + np.sort(ctx.rng.integers(0, 60, k))) * DAY + 9 * HOUR + \
            ctx.rng.integers(0, 6 * HOUR, k)
        drug = ctx.var["insulin_glargine"][int(ctx.rng.integers(0, 3))]
        s, lines = visits(ctx, np.full(k, person), fac, kind, t, med_type="14",
                          dx="E11.9", fix=(np.full(k, drug), np.full(k, -1)), fixq=2)
        g = group_name("doctor_shopping", i)
        label(ctx, "settlement", s["sid"], "doctor_shopping", group=g)
        label(ctx, "fee_line", lines.loc[lines["item"] == drug, "lid"], "doctor_shopping",
              group=g)
        label(ctx, "person", [person], "doctor_shopping", group=g)


@register("group_visits")
def group_visits(ctx: Ctx, scale: float) -> None:
    """集中就诊/集中报销: a village's cards settled at one clinic within minutes, monthly."""
    bursts = count(ctx, scale, 2, 2)
    if not bursts:
        return
    facs = pick_facilities(ctx, 2, ("community_health_centre", "township_health_centre",
                                    "village_clinic"), max_level=1)
    villages = ctx.world.persons["village"].to_numpy()
    kind = KINDS["op_msk"]
    for b in range(bursts):
        fi = facs[b % len(facs)]
        v = villages[ctx.rng.integers(0, len(villages))]
        p = free_persons(ctx, int(ctx.rng.integers(10, 26)), 40, mask=villages == v)
        if len(p) < 5:
            p = np.concatenate([p, free_persons(ctx, 10, 40)])
        g = group_name("group_visits", b)
        first = int(ctx.rng.integers(0, max(1, ctx.n_days - 130)))
        items = (np.full(len(p), ctx.var["celecoxib"][0]),
                 np.full(len(p), ctx.var["diclofenac_gel"][0]))
        for r in range(int(ctx.rng.integers(2, 5))):
            day = first + 30 * r
            t = day * DAY + 14 * HOUR + np.sort(ctx.rng.integers(0, 45 * 60, len(p)))
            s, _ = visits(ctx, p, np.full(len(p), fi), kind, t, med_type="11", dx="M54.5",
                          fix=items, fixq=1, fixds=7, dur=120)
            label(ctx, "settlement", s["sid"], "group_visits", group=g)
        label(ctx, "person", p, "group_visits", group=g)


@register("dialysis_overbilling")
def dialysis_overbilling(ctx: Ctx, scale: float) -> None:
    """血透: a fourth weekly session for many patients and sessions billed after death."""
    if scale <= 0:
        return
    clean = ctx.settlements[0]
    dia = clean[clean["kind"] == "dialysis"]
    cand = np.flatnonzero((ctx.f_type == "dialysis_centre") & ~ctx.f_decoy)
    cand = cand[np.isin(cand, dia["fac"].to_numpy())]
    if not len(cand):
        return
    fi = int(cand[0])
    ctx.f_used[fi] = True
    here = dia[dia["fac"] == fi]
    pts = np.unique(here["person"].to_numpy())
    g = group_name("dialysis_overbilling", fi)
    extra_p = pts[ctx.rng.random(len(pts)) < min(0.9, 0.5 * scale)]
    if not len(extra_p):
        extra_p = pts[:1]
    parts_p, parts_t = [], []
    for person in extra_p:
        mine = here[here["person"] == person]
        days = np.unique(mine["adm"].to_numpy() // DAY)
        weeks = int(ctx.rng.integers(8, 27))
        start = int(ctx.rng.integers(0, max(1, len(days) - weeks * 3)))
        chosen = days[start:start + weeks * 3:3] + 1
        chosen = chosen[~np.isin(chosen, days) & (chosen < ctx.n_days - 1)]
        parts_p.append(np.full(len(chosen), person))
        parts_t.append(chosen * DAY + 7 * HOUR)
    # a patient who died mid-year keeps being billed for a few weeks
    dead = int(pts[-1])
    death_day = int(ctx.rng.integers(ctx.n_days // 3, ctx.n_days // 2))
    ctx.p_death[dead] = death_day
    ctx.new_deaths.append(dead)
    after = np.arange(death_day + 1, min(ctx.n_days - 1, death_day + 40), 2)
    parts_p.append(np.full(len(after), dead))
    parts_t.append(after * DAY + 12 * HOUR)
    persons = np.concatenate(parts_p)
    t = np.concatenate(parts_t)
    s = _skeleton(ctx, persons, KINDS["ch_htn"], t // DAY, fac=np.full(len(persons), fi))
    s["adm"], s["dis"] = t, t + 4 * HOUR
    s["dx1"], s["dx2"], s["dx3"] = "N18.5", None, None
    s["dept"], s["kind"], s["med_type"], s["origin"] = "A03.06", "dialysis", "14", "fraud"
    s["staff"] = ctx.assign_staff(s["fac"].to_numpy(), s["dept"].to_numpy(),
                                  s["adm"].to_numpy(), s["dis"].to_numpy())
    lines = sanitize(ctx, dialysis_lines(ctx, s), s)
    s, lines = add(ctx, s, lines)
    label(ctx, "settlement", s["sid"], "dialysis_overbilling", group=g)
    label(ctx, "fee_line", lines.loc[ctx.c_class[lines["item"].to_numpy()] == "dialysis",
                                     "lid"], "dialysis_overbilling", group=g)
    label(ctx, "person", [dead], "dialysis_overbilling", group=g)


@register("rehab_overbilling")
def rehab_overbilling(ctx: Ctx, scale: float) -> None:
    """康复理疗: several sessions of per-day items and assessments beyond the per-stay cap."""
    total = count(ctx, scale, 6, 4)
    if not total:
        return
    fi = pick_facilities(ctx, 1, ("rehabilitation_centre",), dept="A21")[0]
    p = free_persons(ctx, total, 50)
    day = ctx.rng.integers(0, ctx.n_days - 40, len(p))
    s, lines = stays(ctx, p, np.full(len(p), fi), KINDS["ip_rehab"], day,
                     ctx.rng.integers(18, 35, len(p)), dept="A21")
    g = group_name("rehab_overbilling", int(fi))
    per_day = np.isin(lines["item"].to_numpy(), np.concatenate(
        [ctx.var["pt"], ctx.var["ot"], ctx.var["hemiplegia"]]))
    bump = np.flatnonzero(per_day & (ctx.rng.random(len(lines)) < 0.6))
    extra_q = ctx.rng.integers(1, 3, len(bump)).astype(float)
    lines.iloc[bump, lines.columns.get_loc("qty")] = lines["qty"].to_numpy()[bump] + extra_q
    amt = np.round(extra_q * lines["price"].to_numpy()[bump], 2)
    label(ctx, "fee_line", lines["lid"].to_numpy()[bump], "rehab_overbilling", group=g,
          amount=amt)
    # extra comprehensive assessments on days 3, 6 and 9 (beyond 3 per stay, < 14 days apart)
    extra = _lines(ctx, np.repeat(s["sid"].to_numpy(), 3),
                   np.repeat(s["adm"].to_numpy() // DAY, 3) * DAY
                   + np.tile([3, 6, 9], len(s)) * DAY + 11 * HOUR,
                   ctx.pick("rehab_assess", 3 * len(s)), np.ones(3 * len(s)))
    extra = sanitize(ctx, extra, s)
    ctx.lines.append(extra)
    label(ctx, "fee_line", extra["lid"], "rehab_overbilling", group=g)
    sid_amt = pd.Series(amt, dtype=float).groupby(lines["sid"].to_numpy()[bump]).sum()
    extra_amt = (extra["qty"] * extra["price"]).groupby(extra["sid"]).sum()
    tot = sid_amt.add(extra_amt, fill_value=0.0)
    label(ctx, "settlement", tot.index.to_numpy(), "rehab_overbilling", group=g,
          amount=np.round(tot.to_numpy(), 2))
    label(ctx, "staff", np.unique(s["staff"]), "rehab_overbilling", group=g,
          amount=float(tot.sum()))


@register("card_cashout")
def card_cashout(ctx: Ctx, scale: float) -> None:
    """套现: round-sum tonic purchases with no goods leaving stock, many cards at one pharmacy."""
    total = count(ctx, scale, 8, 5)
    if not total:
        return
    facs = pick_facilities(ctx, 2, ("retail_pharmacy",))
    emp = ctx.p_ins == "310"
    g0 = group_name("card_cashout", int(facs[0]))
    # one pharmacy, many cards
    p = free_persons(ctx, total, 25, mask=emp)
    trips = ctx.rng.integers(3, 9, len(p))
    buyers = np.repeat(p, trips)
    fac = np.full(len(buyers), facs[0])
    parts = [(buyers, fac, np.full(len(buyers), g0, dtype=object))]
    # a few cards used at many pharmacies
    q = free_persons(ctx, max(2, total // 4), 25, mask=emp)
    ph = np.flatnonzero(ctx.f_type == "retail_pharmacy")
    qb = np.repeat(q, 8)
    parts.append((qb, ph[ctx.rng.integers(0, len(ph), len(qb))],
                  np.asarray([group_name("card_cashout", 5000 + int(x)) for x in qb],
                             dtype=object)))
    for buyers, fac, grp in parts:
        n = len(buyers)
        month_w = np.ones(ctx.n_days)
        month_w[-61:] = 3.0  # year-end spike
        day = ctx.rng.choice(ctx.n_days, size=n, p=month_w / month_w.sum())
        t = day * DAY + 17 * HOUR + ctx.rng.integers(0, 4 * HOUR, n)
        target = ctx.rng.choice([200, 300, 400, 500, 600, 1000], size=n)
        use_ejiao = ctx.rng.random(n) < 0.6
        item = np.where(use_ejiao, ctx.var["ejiao"][0], ctx.var["xiyangshen"][0])
        qty = target / ctx.c_price[item]
        s, lines = visits(ctx, buyers, fac, KINDS["op_gi"], t, med_type="41",
                          fix=(item, np.full(n, -1)), fixq=qty, fixds=30)
        s["dx1"] = None
        lines["stock"] = -1
        sg = pd.Series(grp[s["row"].to_numpy()], index=s["sid"].to_numpy())
        label(ctx, "settlement", s["sid"], "card_cashout", group=sg.to_numpy())
        label(ctx, "fee_line", lines["lid"], "card_cashout",
              group=sg.reindex(lines["sid"]).to_numpy())
    label(ctx, "person", p, "card_cashout", group=g0)
    label(ctx, "person", q, "card_cashout",
          group=np.asarray([group_name("card_cashout", 5000 + int(x)) for x in q],
                           dtype=object))
    pharmacists = ctx.world.staff.index[(ctx.world.staff["_fi"] == facs[0]).to_numpy()
                                        & (ctx.world.staff["role"] == "pharmacist").to_numpy()]
    label(ctx, "staff", pharmacists.to_numpy()[:1], "card_cashout", group=g0)


@register("care_after_death")
def care_after_death(ctx: Ctx, scale: float) -> None:
    """死亡后就医: refills keep being billed on a dead person's card."""
    total = count(ctx, scale, 4, 2)
    if not total:
        return
    p = free_persons(ctx, total, 60)
    death = ctx.rng.integers(ctx.n_days // 4, ctx.n_days - 100, len(p))
    ctx.p_death[p] = death
    ctx.new_deaths.extend(p.tolist())
    fac_cand, _ = ctx.facilities_for(KINDS["ch_htn"])
    fac_cand = fac_cand[ctx.f_level[fac_cand] <= 1]
    fac = ctx.choose_facility(fac_cand, p)
    ctx.f_used[np.unique(fac)] = True
    k = ctx.rng.integers(1, 4, len(p))
    rows = np.repeat(np.arange(len(p)), k)
    nth = np.arange(len(rows)) - np.repeat(np.cumsum(k) - k, k)
    t = (death[rows] + 5 + 30 * nth) * DAY + 9 * HOUR + ctx.rng.integers(0, 6 * HOUR, len(rows))
    drug = ctx.var["amlodipine"][1]
    s, _ = visits(ctx, p[rows], fac[rows], KINDS["ch_htn"], t, med_type="14", dx="I10",
                  fix=(np.full(len(rows), drug), np.full(len(rows), -1)), fixq=2)
    groups = np.asarray([group_name("care_after_death", int(i)) for i in range(len(p))],
                        dtype=object)
    label(ctx, "settlement", s["sid"], "care_after_death", group=groups[rows[s["row"]]])
    label(ctx, "person", p, "care_after_death", group=groups)


@register("drg_upcoding")
def drg_upcoding(ctx: Ctx, scale: float) -> None:
    """高编高套: a hospital adds MCC secondary diagnoses without supporting items."""
    if scale <= 0:
        return
    clean = ctx.settlements[0]
    st = clean[clean["drg"].notna() & (ctx.p_age0[clean["person"].to_numpy()] >= 18)
               & clean["med_type"].eq("21")]
    facs = np.unique(st["fac"].to_numpy())
    facs = facs[(ctx.f_level[facs] >= 2) & ~ctx.f_used[facs] & ~ctx.f_decoy[facs]]
    if not len(facs):
        return
    chosen = np.sort(ctx.rng.choice(facs, size=min(2, len(facs)), replace=False))
    ctx.f_used[chosen] = True
    share = np.clip(np.array([0.55, 0.3]) * scale, 0.05, 0.95)
    for fi, sh in zip(chosen, share, strict=False):
        here = st[(st["fac"] == fi) & ~st["drg"].str.endswith("1")]
        sel = here.index[ctx.rng.random(len(here)) < sh]
        if not len(sel):
            sel = here.index[:1]
        mcc = np.asarray(MCC, dtype=object)[ctx.rng.integers(0, len(MCC), len(sel))]
        clean.loc[sel, "dx3"] = mcc
        clean.loc[sel, "drg"] = clean.loc[sel, "drg"].str[:-1] + "1"
        label(ctx, "settlement", clean.loc[sel, "sid"], "drg_upcoding",
              group=group_name("drg_upcoding", int(fi)), frac=0.35)


@register("collusion_ring")
def collusion_ring(ctx: Ctx, scale: float) -> None:
    """团伙: a hospital, two of its doctors, two pharmacies and a circle of villagers."""
    rings = count(ctx, scale, 0.4, 1)
    if not rings:
        return
    villages = ctx.world.persons["village"].to_numpy()
    for r in range(rings):
        ring = f"RING{r + 1:04d}"
        fi = int(pick_facilities(ctx, 1, ("general_hospital",), max_level=2, dept="A03")[0])
        pha, phb = pick_facilities(ctx, 2, ("retail_pharmacy",))
        docs = ctx.world.fac_depts[(fi, "A03")][-2:]
        v = villages[ctx.rng.integers(0, len(villages))]
        members = free_persons(ctx, int(ctx.rng.integers(10, 21)), 40, mask=villages == v)
        if len(members) < 6:
            members = np.concatenate([members, free_persons(ctx, 10, 40)])
        # co-admissions in waves
        for w in range(3):
            wave = members[ctx.rng.random(len(members)) < 0.4]
            if not len(wave):
                continue
            base = w * (ctx.n_days // 3) + int(ctx.rng.integers(0, ctx.n_days // 3 - 20))
            s, _ = stays(ctx, wave, np.full(len(wave), fi), _MILD_IP,
                         base + ctx.rng.integers(0, 2, len(wave)),
                         ctx.rng.integers(7, 12, len(wave)),
                         staff=docs[ctx.rng.integers(0, len(docs), len(wave))], dept="A03")
            label(ctx, "settlement", s["sid"], "collusion_ring", group=ring)
        # ring doctors prescribe resale-prone drugs; boxes resold at pharmacy B
        buyers = np.repeat(members, 2)
        _resale_chain(ctx, buyers, np.full(len(buyers), fi), int(phb), "collusion_ring",
                      ring, members, staff=docs[ctx.rng.integers(0, len(docs), len(buyers))],
                      med_type="14")
        # cash-out at pharmacy A with members' cards
        n = len(members) * 2
        t = ctx.rng.integers(0, ctx.n_days, n) * DAY + 18 * HOUR
        item = np.full(n, ctx.var["ejiao"][1])
        s, _ = visits(ctx, np.tile(members, 2), np.full(n, pha), KINDS["op_gi"], t,
                      med_type="41", fix=(item, np.full(n, -1)),
                      fixq=ctx.rng.choice([2, 3, 5], n), fixds=30)
        s["dx1"] = None
        ctx.lines[-1]["stock"] = -1
        label(ctx, "settlement", s["sid"], "collusion_ring", group=ring)
        label(ctx, "person", members, "collusion_ring", group=ring)
        label(ctx, "staff", docs, "collusion_ring", group=ring)
        label(ctx, "facility", [fi, pha, phb], "collusion_ring", group=ring)
        label(ctx, "ring", [ring], "collusion_ring", group=ring)


# ---------------------------------------------------------------------------------------------
# decoys
# ---------------------------------------------------------------------------------------------

def decoys(ctx: Ctx) -> None:
    """Honest outliers, labelled ``decoy`` with ``is_fraud`` false."""
    rng = ctx.rng
    # a tertiary hospital with long, genuine rehabilitation and stroke stays
    tert = np.flatnonzero((ctx.f_type == "general_hospital") & (ctx.f_level == 3))
    fi = int(tert[0])
    ctx.f_decoy[fi] = True
    n = max(4, len(ctx.p_sex) // 800)
    p = free_persons(ctx, n, 55)
    day = rng.integers(0, ctx.n_days - 60, len(p))
    s, _ = stays(ctx, p, np.full(len(p), fi), KINDS["ip_rehab"], day,
                 rng.integers(30, 55, len(p)), origin="clean", dept="A21")
    label(ctx, "facility", [fi], "decoy", fraud=False, amount=0.0)
    label(ctx, "settlement", s["sid"], "decoy", fraud=False, amount=0.0)
    if ctx.decoy_pharmacy >= 0:
        label(ctx, "facility", [ctx.decoy_pharmacy], "decoy", fraud=False, amount=0.0)
    # a school outbreak: many children of one village at one clinic in two hours
    kids = np.flatnonzero((ctx.p_age0 >= 6) & (ctx.p_age0 < 13) & ~ctx.p_busy
                          & (ctx.p_death >= 10**8))
    if len(kids) >= 8:
        v = ctx.world.persons["village"].to_numpy()[kids]
        top = pd.Series(v).value_counts().index[0]
        group = kids[v == top][:15]
        ctx.p_busy[group] = True
        cand, _ = ctx.facilities_for(KINDS["op_uri_child"])
        fac = cand[0]
        day = int(rng.integers(10, 60))
        t = day * DAY + 9 * HOUR + np.sort(rng.integers(0, 2 * HOUR, len(group)))
        s2, _ = visits(ctx, group, np.full(len(group), fac), KINDS["op_uri_child"], t,
                       dx="J06.9", origin="clean")
        label(ctx, "settlement", s2["sid"], "decoy", fraud=False, amount=0.0)


def heavy_user_decoys(ctx: Ctx, clean: pd.DataFrame) -> None:
    """Dialysis patients: many legitimate settlements each."""
    dia = clean.loc[clean["kind"] == "dialysis", "person"].value_counts()
    top = np.sort(dia.index.to_numpy()[:5])
    top = top[~np.isin(top, ctx.new_deaths)]
    label(ctx, "person", top, "decoy", fraud=False, amount=0.0)
