"""Turn the internal frames into the canonical tables: ids, money, scans, stock, beds, labels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudscan.synth.activity import BIG, DAY, Ctx, drop_during_stays
from fraudscan.synth.scenarios import trace_codes

IP_TYPES = ("21", "52")
VICTIM_FACILITY_SCENARIOS = ("doctor_shopping", "drug_resale", "care_after_death")
"""Patient-driven scenarios: the facilities where the patient (or whoever holds a dead person's
card) bought or visited are victims, so they get no automatic facility label (only explicit
ones, e.g. the pharmacy that resells in ``drug_resale``)."""
FACILITY_CASE_SHARE = 0.5
"""A case is the facility's own scheme when at least this share of its fraudulent claims were
made there (a card cashed out at many pharmacies is not any one pharmacy's scheme)."""
FACILITY_MIN_CLAIMS = 3
FACILITY_MIN_SHARE = 0.01
FACILITY_MIN_AMOUNT = 5_000.0
"""Materiality of an automatic facility label: at least ``FACILITY_MIN_CLAIMS`` fraudulent
claims of the facility's own cases of one scenario, worth at least ``FACILITY_MIN_SHARE`` of the
fund the facility was paid or ``FACILITY_MIN_AMOUNT`` CNY (a 专项检查 threshold, not a trace)."""


def ids(prefix: str, values: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` + zero-padded integers, as an object array of str."""
    if len(values) == 0:
        return np.zeros(0, dtype=object)
    return np.char.add(prefix, np.char.zfill(np.asarray(values).astype(np.int64).astype(str),
                                             width)).astype(object)


def _clean_consistency(ctx: Ctx, s: pd.DataFrame) -> pd.DataFrame:
    """Drop clean settlements that scenarios made inconsistent (new deaths, new stays)."""
    clean = (s["origin"] == "clean").to_numpy()
    after_death = clean & ((s["dis"].to_numpy() // DAY) >= ctx.p_death[s["person"].to_numpy()])
    s = s[~after_death]
    ip = s["med_type"].isin(IP_TYPES).to_numpy()
    keep_other = drop_during_stays(s[~ip & (s["origin"] == "clean").to_numpy()], s[ip])
    other_fraud = s[~ip & (s["origin"] != "clean").to_numpy()]
    return pd.concat([s[ip], keep_other, other_fraud]).sort_values("sid", kind="stable")


def _payments(s: pd.DataFrame, total: np.ndarray, level: np.ndarray) -> tuple[np.ndarray, ...]:
    """Fund / personal account / cash split by care mode, scheme and facility level."""
    mt = s["med_type"].to_numpy().astype(str)
    ins = s["ins"].to_numpy().astype(str)
    emp = np.isin(ins, ("310", "510", "410"))
    ip_ratio = np.where(emp, 0.95 - 0.05 * np.clip(level, 1, 3),
                        0.9 - 0.1 * np.clip(level, 1, 3))
    ip_ratio = np.where(ins == "410", 1.0, np.where(ins == "510", 0.95, ip_ratio))
    ratio = np.select(
        [np.isin(mt, IP_TYPES), mt == "14", mt == "41"],
        [ip_ratio, np.full(len(mt), 0.7), np.where(emp, 0.0, 0.5)],
        0.5,
    )
    fund = np.round(total * ratio, 2)
    rest = np.round(total - fund, 2)
    account = np.where(emp & ~np.isin(mt, IP_TYPES), rest, 0.0)
    cash = np.round(total - fund - account, 2)
    cash = np.where(np.abs(cash) < 0.005, 0.0, cash)
    return fund, account, cash


def finalize(ctx: Ctx) -> dict[str, pd.DataFrame]:
    """Assemble the canonical tables (pandas) from everything generated in ``ctx``."""
    w = ctx.world
    t0 = np.datetime64(ctx.cfg.start, "s")
    s = pd.concat(ctx.settlements, ignore_index=True)
    lines = pd.concat(ctx.lines, ignore_index=True)
    ctx.settlements, ctx.lines = [], []  # the concatenated copies replace them (peak memory)
    s = _clean_consistency(ctx, s)
    lines = lines[lines["sid"].isin(s["sid"])]
    s = s[s["sid"].isin(lines["sid"])].reset_index(drop=True)
    lines = lines.sort_values("lid", kind="stable").reset_index(drop=True)
    lines["amount"] = np.round(lines["qty"].to_numpy() * lines["price"].to_numpy(), 2)
    tot = lines.groupby("sid", sort=True)["amount"].sum()
    total = np.round(tot.reindex(s["sid"]).to_numpy(), 2)
    fac = s["fac"].to_numpy()
    fund, account, cash = _payments(s, total, ctx.f_level[fac])
    pos = pd.Index(s["sid"]).get_indexer(lines["sid"])
    is_ip = s["med_type"].isin(IP_TYPES).to_numpy()
    rng = ctx.rng

    # -- settlements --------------------------------------------------------------------------
    persons, facilities, staff = w.persons, w.facilities.copy(), w.staff
    staff_ids = staff["staff_id"].to_numpy().astype(object)
    st_idx = s["staff"].to_numpy()
    settlements = pd.DataFrame({
        "settlement_id": ids("S", s["sid"], 9),
        "visit_id": ids("V", s["sid"], 9),
        "person_id": persons["person_id"].to_numpy()[s["person"].to_numpy()],
        "facility_id": facilities["facility_id"].to_numpy()[fac],
        "medical_type": s["med_type"].to_numpy().astype(object),
        "insurance_type": s["ins"].to_numpy().astype(object),
        "admission_time": t0 + s["adm"].to_numpy().astype("timedelta64[s]"),
        "discharge_time": t0 + s["dis"].to_numpy().astype("timedelta64[s]"),
        "settle_time": t0 + s["dis"].to_numpy().astype("timedelta64[s]"),
        "main_diagnosis": s["dx1"].to_numpy(),
        "department": s["dept"].to_numpy(),
        "attending_staff_id": np.where(st_idx >= 0, staff_ids[np.maximum(st_idx, 0)], None),
        "bed_no": np.where(is_ip, ids("", rng.integers(1, 60, len(s)), 3), None),
        "discharge_way": np.where(is_ip, s["dway"].fillna("1").to_numpy(), None),
        "drg_code": np.where(is_ip, s["drg"].to_numpy(), None),
        "planned_readmission": np.where(is_ip, s["planned"].to_numpy().astype(object), None),
        "total_amount": total,
        "fund_paid": fund,
        "account_paid": account,
        "cash_paid": cash,
        "full_self_pay": 0.0,
        "out_of_area": False,
        "voucher_type": rng.choice(np.array(["01", "03", "02"], dtype=object), len(s),
                                   p=[0.7, 0.25, 0.05]),
    })
    settlements["planned_readmission"] = settlements["planned_readmission"].astype(object)

    # -- fee lines ----------------------------------------------------------------------------
    rx = lines["rx"].to_numpy().astype(bool)
    lst = st_idx[pos]
    fee_lines = pd.DataFrame({
        "line_id": ids("L", lines["lid"], 10),
        "settlement_id": settlements["settlement_id"].to_numpy()[pos],
        "service_time": t0 + lines["t"].to_numpy().astype("timedelta64[s]"),
        "item_code": ctx.c_code[lines["item"].to_numpy()].astype(object),
        "qty": lines["qty"].to_numpy().astype(float),
        "unit_price": lines["price"].to_numpy().astype(float),
        "amount": lines["amount"].to_numpy(),
        "days_supply": pd.array(np.where(np.isnan(lines["ds"].to_numpy()), np.nan,
                                         lines["ds"].to_numpy()), dtype="Float64").astype(
                                             "Int64"),
        "staff_id": np.where(lst >= 0, staff_ids[np.maximum(lst, 0)], None),
        "department": s["dept"].to_numpy()[pos],
        "prescription_no": np.where(rx, ids("R", s["sid"], 9)[pos], None),
        "approval_flag": False,
        "discharge_drug": lines["dd"].fillna(False).to_numpy().astype(bool),
    })

    # -- trace scans --------------------------------------------------------------------------
    traced = lines[lines["traced"].fillna(False).to_numpy().astype(bool)
                   & (lines["qty"].to_numpy() > 0)]
    stock_item = np.where(traced["stock"].to_numpy() >= 0, traced["stock"].to_numpy(),
                          traced["item"].to_numpy())
    codes = trace_codes(ctx, traced["lid"].to_numpy(), stock_item, traced["qty"].to_numpy())
    src = traced.iloc[codes["src"].to_numpy()]
    scan_parts = [pd.DataFrame({
        "lid": src["lid"].to_numpy(), "code": codes["code"].to_numpy(),
        "t": src["t"].to_numpy(), "fac": fac[pd.Index(s["sid"]).get_indexer(src["sid"])],
        "item": src["item"].to_numpy()})]
    for extra in ctx.extra_scans:
        scan_parts.append(extra[extra["lid"].isin(lines["lid"])])
    sc = pd.concat(scan_parts, ignore_index=True)
    trace_scans = pd.DataFrame({
        "scan_id": ids("T", np.arange(1, len(sc) + 1), 10),
        "line_id": ids("L", sc["lid"], 10),
        "facility_id": facilities["facility_id"].to_numpy()[sc["fac"].to_numpy()],
        "item_code": ctx.c_code[sc["item"].to_numpy()].astype(object),
        "trace_code": sc["code"].to_numpy().astype(object),
        "scan_time": t0 + sc["t"].to_numpy().astype("timedelta64[s]"),
    })

    # -- stock movements ----------------------------------------------------------------------
    stock_movements = _stock(ctx, lines, fac[pos], t0)

    # -- beds ---------------------------------------------------------------------------------
    facilities["beds"] = _beds(ctx, s, is_ip)

    # -- diagnoses and procedures -------------------------------------------------------------
    dx = []
    for seq, col in enumerate(("dx1", "dx2", "dx3"), start=1):
        m = s[col].notna().to_numpy()
        dx.append(pd.DataFrame({"settlement_id": settlements["settlement_id"].to_numpy()[m],
                                "diag_code": s[col].to_numpy()[m], "_sid": s["sid"][m],
                                "_ord": seq}))
    diagnoses = pd.concat(dx, ignore_index=True).sort_values(["_sid", "_ord"], kind="stable")
    diagnoses["seq"] = diagnoses.groupby("_sid").cumcount() + 1
    diagnoses["is_main"] = diagnoses["_ord"] == 1
    diagnoses = diagnoses[["settlement_id", "seq", "diag_code", "is_main"]].reset_index(
        drop=True)
    surg_sids = np.unique(lines.loc[ctx.c_class[lines["item"].to_numpy()] == "surgery", "sid"])
    pm = s["proc"].notna().to_numpy() & np.isin(s["sid"].to_numpy(), surg_sids)
    sp = s[pm]
    los = (sp["dis"] // DAY - sp["adm"] // DAY).to_numpy()
    pday = sp["adm"].to_numpy() // DAY + (los >= 2)
    procedures = pd.DataFrame({
        "settlement_id": settlements["settlement_id"].to_numpy()[pm],
        "seq": 1,
        "procedure_code": sp["proc"].to_numpy(),
        "procedure_date": (np.datetime64(ctx.cfg.start, "D")
                           + pday.astype("timedelta64[D]")),
        "surgeon_staff_id": settlements["attending_staff_id"].to_numpy()[pm],
        "incision_group": "1",
    })

    # -- static tables ------------------------------------------------------------------------
    start_d = np.datetime64(ctx.cfg.start, "D")
    persons = persons.copy()
    death = np.where(ctx.p_death >= BIG, np.datetime64("NaT"),
                     start_d + np.minimum(ctx.p_death, BIG - 1).astype("timedelta64[D]"))
    persons["death_date"] = death.astype("datetime64[D]")
    labels = _labels(ctx, s, lines, settlements, fee_lines, fund + account, facilities)
    return {
        "persons": persons,
        "facilities": facilities.drop(columns=["_depts", "_size"]),
        "staff": staff.drop(columns=["_fi", "_first"]),
        "catalogue": ctx.cat.drop(columns=["_key", "_successor"]),
        "settlements": settlements,
        "diagnoses": diagnoses,
        "procedures": procedures,
        "fee_lines": fee_lines,
        "trace_scans": trace_scans,
        "stock_movements": stock_movements,
        "labels": labels,
    }


def _stock(ctx: Ctx, lines: pd.DataFrame, lfac: np.ndarray, t0: np.datetime64
           ) -> pd.DataFrame:
    """Monthly purchases covering the goods really dispensed; billed sales as sales.

    Lines billed without goods leaving stock (``stock`` = -1) or billed as another item
    (``stock`` != ``item``) therefore show as sales above purchases.
    """
    item = lines["item"].to_numpy()
    goods = ctx.c_drug[item] | (ctx.c_class[item] == "consumable")
    t = lines["t"].to_numpy()
    month = (t0 + t.astype("timedelta64[s]")).astype("datetime64[M]")
    df = pd.DataFrame({"fac": lfac, "item": item, "stock": lines["stock"].to_numpy(),
                       "qty": lines["qty"].to_numpy(), "price": lines["price"].to_numpy(),
                       "t": t, "month": month})[goods]
    sales = df.groupby(["fac", "item", "month"], sort=True).agg(
        qty=("qty", "sum"), price=("price", "mean"), t=("t", "max")).reset_index()
    real = df[df["stock"] >= 0]
    buys = real.groupby(["fac", "stock", "month"], sort=True)["qty"].sum().reset_index()
    rng = ctx.rng
    bq = np.ceil(buys["qty"].to_numpy() * rng.uniform(1.0, 1.25, len(buys)))
    month_start = (buys["month"].to_numpy().astype("datetime64[s]") - t0).astype(np.int64)
    bt = np.maximum(month_start, 0) + 7 * 3600 + rng.integers(0, 3600, len(buys))
    first_sale = real.groupby(["fac", "stock", "month"], sort=True)["t"].min().to_numpy()
    bt = np.minimum(bt, first_sale - 60)
    out = pd.concat([
        pd.DataFrame({"fac": buys["fac"], "item": buys["stock"], "movement_type": "purchase",
                      "qty": bq, "unit_price": ctx.c_price[buys["stock"].to_numpy()],
                      "t": bt}),
        pd.DataFrame({"fac": sales["fac"], "item": sales["item"], "movement_type": "sale",
                      "qty": -sales["qty"].to_numpy(), "unit_price": sales["price"].round(2),
                      "t": sales["t"]}),
    ], ignore_index=True).sort_values(["fac", "item", "t", "movement_type"], kind="stable")
    return pd.DataFrame({
        "movement_id": ids("M", np.arange(1, len(out) + 1), 10),
        "facility_id": ctx.world.facilities["facility_id"].to_numpy()[out["fac"].to_numpy()],
        "item_code": ctx.c_code[out["item"].to_numpy()].astype(object),
        "movement_type": out["movement_type"].to_numpy().astype(object),
        "qty": out["qty"].to_numpy().astype(float),
        "unit_price": out["unit_price"].to_numpy().astype(float),
        "movement_time": t0 + out["t"].to_numpy().astype(np.int64).astype("timedelta64[s]"),
    })


def _beds(ctx: Ctx, s: pd.DataFrame, is_ip: np.ndarray) -> np.ndarray:
    """Approved beds: above each facility's peak census, except the bed-overuse ones."""
    nf = len(ctx.f_level)
    st = s[is_ip]
    a = (st["adm"] // DAY).to_numpy()
    d = np.maximum((st["dis"] // DAY).to_numpy(), a + 1)
    f = st["fac"].to_numpy()
    occ = np.zeros((nf, ctx.n_days + 2), dtype=np.int64)
    np.add.at(occ, (f, a), 1)
    np.add.at(occ, (f, np.minimum(d, ctx.n_days + 1)), -1)
    census = np.cumsum(occ, axis=1)
    peak = census.max(axis=1)
    rng = ctx.rng
    beds = np.ceil(peak * rng.uniform(1.15, 1.6, nf)).astype(np.int64) + 2
    inpatient = np.isin(ctx.f_type, ("general_hospital", "tcm_hospital", "specialist_hospital",
                                     "community_health_centre", "township_health_centre",
                                     "rehabilitation_centre"))
    beds = np.where(inpatient, np.maximum(beds, 10), 0)
    stay_days = np.bincount(f, weights=d - a, minlength=nf)
    for fi in ctx.bed_overuse:
        beds[fi] = max(1, int(stay_days[fi] / ctx.n_days / rng.uniform(1.25, 1.6)))
    return beds


def _labels(ctx: Ctx, s: pd.DataFrame, lines: pd.DataFrame, settlements: pd.DataFrame,
            fee_lines: pd.DataFrame, paid: np.ndarray, facilities: pd.DataFrame
            ) -> pd.DataFrame:
    """Label intents -> labels table, with amounts and periods filled in."""
    sid_pos = pd.Index(s["sid"])
    lid_pos = pd.Index(lines["lid"])
    month = (np.datetime64(ctx.cfg.start, "s") + s["adm"].to_numpy().astype("timedelta64[s]")
             ).astype("datetime64[M]").astype(str).astype(object)
    line_month = month[sid_pos.get_indexer(lines["sid"])]
    total = settlements["total_amount"].to_numpy()
    share = np.divide(paid, total, out=np.zeros_like(paid), where=total > 0)
    year = str(ctx.cfg.start.year)
    rows = []
    sett_rows = []
    for rec in ctx.labels:
        keys, et = rec["key"], rec["etype"]
        amount = np.asarray(rec["amount"], dtype=float).copy()
        group = np.asarray(rec["group"], dtype=object)
        if et == "settlement":
            p = sid_pos.get_indexer(keys)
            ok = p >= 0
            p = p[ok]
            amt = np.where(np.isnan(amount[ok]), paid[p] * rec["frac"], amount[ok])
            df = pd.DataFrame({"entity_type": et, "_pos": p,
                               "entity_id": settlements["settlement_id"].to_numpy()[p],
                               "amount": np.round(amt, 2), "group": group[ok],
                               "period": month[p]})
            df["scenario"], df["fraud"] = rec["scenario"], rec["fraud"]
            sett_rows.append(df)
            rows.append(df.drop(columns=["_pos"]))
        elif et == "fee_line":
            p = lid_pos.get_indexer(keys)
            ok = p >= 0
            p = p[ok]
            spos = sid_pos.get_indexer(lines["sid"].to_numpy()[p])
            amt = np.where(np.isnan(amount[ok]), fee_lines["amount"].to_numpy()[p]
                           * share[spos], amount[ok])
            rows.append(pd.DataFrame({
                "entity_type": et, "entity_id": fee_lines["line_id"].to_numpy()[p],
                "amount": np.round(amt, 2), "group": group[ok], "period": line_month[p],
                "scenario": rec["scenario"], "fraud": rec["fraud"]}))
    sl = pd.concat(sett_rows, ignore_index=True) if sett_rows else pd.DataFrame(
        columns=["_pos", "scenario", "group", "amount", "period", "fraud"])
    sl = sl.drop_duplicates(["_pos", "scenario"])
    sl["person"] = s["person"].to_numpy()[sl["_pos"].to_numpy().astype(int)]
    sl["staff"] = s["staff"].to_numpy()[sl["_pos"].to_numpy().astype(int)]
    sl["fac"] = s["fac"].to_numpy()[sl["_pos"].to_numpy().astype(int)]
    fraud_sl = sl[sl["fraud"].astype(bool)]
    names = {"person": ctx.world.persons["person_id"].to_numpy(),
             "staff": ctx.world.staff["staff_id"].to_numpy(),
             "facility": facilities["facility_id"].to_numpy()}
    col = {"person": "person", "staff": "staff", "facility": "fac"}
    explicit_fac: set[tuple[int, str]] = set()
    for rec in ctx.labels:
        et = rec["etype"]
        if et in ("settlement", "fee_line"):
            continue
        keys = np.asarray(rec["key"])
        amount = np.asarray(rec["amount"], dtype=float)
        group = np.asarray(rec["group"], dtype=object)
        sub = fraud_sl[fraud_sl["scenario"] == rec["scenario"]]
        out_amt, out_per, eid, out_grp = [], [], [], []
        for k, a, g in zip(keys, amount, group, strict=True):
            if et == "ring":
                mine = sub[sub["group"] == g]
                eid.append(str(k))
            else:
                mine = sub[sub[col[et]] == k]
                if g is not None and (mine["group"] == g).any():
                    mine = mine[mine["group"] == g]
                eid.append(names[et][int(k)])
                if et == "facility":
                    explicit_fac.add((int(k), rec["scenario"]))
            out_amt.append(a if not np.isnan(a) else float(mine["amount"].sum()))
            out_per.append(mine["period"].min() if len(mine) else year)
            out_grp.append(g if g is not None or not len(mine) else mine["group"].iloc[0])
        rows.append(pd.DataFrame({
            "entity_type": et, "entity_id": eid, "amount": np.round(out_amt, 2),
            "group": out_grp, "period": out_per, "scenario": rec["scenario"],
            "fraud": rec["fraud"]}))
    # facility labels mean "this facility perpetrated": material fraud of its own schemes
    fac_paid = pd.Series(paid).groupby(s["fac"].to_numpy()).sum()
    # patient-driven scenarios: the facilities where the patient bought or visited are victims
    hosted = fraud_sl[~fraud_sl["scenario"].isin(VICTIM_FACILITY_SCENARIOS)]
    if len(hosted):
        # a case (group) is a facility's scheme only where most of its claims were made
        n_case = hosted.groupby(["scenario", "group"], sort=False)["amount"].transform("size")
        n_here = hosted.groupby(["scenario", "group", "fac"], sort=False)["amount"].transform(
            "size")
        hosted = hosted[(n_here >= FACILITY_CASE_SHARE * n_case).to_numpy()]
    if len(hosted):
        agg = hosted.groupby(["fac", "scenario"], sort=True).agg(
            amount=("amount", "sum"), n=("amount", "size"), period=("period", "min"),
            group=("group", "first")).reset_index()
        agg = agg[(agg["n"] >= FACILITY_MIN_CLAIMS) & (
            (agg["amount"] >= FACILITY_MIN_SHARE * fac_paid.reindex(agg["fac"]).to_numpy())
            | (agg["amount"] >= FACILITY_MIN_AMOUNT))]
        agg = agg[[(int(f), sc) not in explicit_fac for f, sc in zip(agg["fac"], agg["scenario"],
                                                                     strict=True)]]
        rows.append(pd.DataFrame({
            "entity_type": "facility", "entity_id": names["facility"][agg["fac"].to_numpy()],
            "amount": agg["amount"].round(2).to_numpy(), "group": agg["group"].to_numpy(),
            "period": agg["period"].to_numpy(), "scenario": agg["scenario"].to_numpy(),
            "fraud": True}))
    for fi in ctx.bed_overuse:
        here = fraud_sl[(fraud_sl["fac"] == fi) & (fraud_sl["scenario"] == "bed_overuse")]
        rows.append(pd.DataFrame({
            "entity_type": ["facility"], "entity_id": [names["facility"][fi]],
            "amount": [round(float(here["amount"].sum()), 2)],
            "group": [here["group"].iloc[0] if len(here) else None],
            "period": [here["period"].min() if len(here) else year],
            "scenario": ["bed_overuse"], "fraud": [True]}))
    lab = pd.concat(rows, ignore_index=True)
    lab = lab.drop_duplicates(["entity_type", "entity_id", "scenario"], keep="first")
    lab = lab[~lab["fraud"].astype(bool) | (lab["amount"] > 0)]
    order = {e: i for i, e in enumerate(("ring", "facility", "staff", "person", "settlement",
                                         "fee_line"))}
    lab = lab.assign(_o=lab["entity_type"].map(order)).sort_values(
        ["scenario", "_o", "entity_id"], kind="stable")
    return pd.DataFrame({
        "entity_type": lab["entity_type"].to_numpy(),
        "entity_id": lab["entity_id"].to_numpy(),
        "scenario": lab["scenario"].to_numpy(),
        "is_fraud": lab["fraud"].to_numpy().astype(bool),
        "amount_at_risk": lab["amount"].to_numpy().astype(float),
        "source": "synthetic",
        "group_id": lab["group"].to_numpy(),
        "period": lab["period"].to_numpy(),
    }).reset_index(drop=True)
