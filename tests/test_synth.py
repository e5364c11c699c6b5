"""Tests of the synthetic city: determinism, schema, clean-data invariants, injected fraud."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fraudscan import schema
from fraudscan.synth import SCENARIOS, SynthConfig, generate
from fraudscan.workspace import Workspace

DAY = pd.Timedelta(days=1)


def _hashes(ws: Workspace) -> dict[str, str]:
    return {n: hashlib.sha256(ws.table_path(n).read_bytes()).hexdigest()
            for n in ws.present_tables()}


@pytest.fixture(scope="module")
def t(small_world: Workspace) -> dict[str, pd.DataFrame]:
    return {n: small_world.read_table(n) for n in small_world.present_tables()}


@pytest.fixture(scope="module")
def clean(t: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Settlements and lines without any label (fraud or rule violation) on them or their lines."""
    lab = t["labels"]
    fraud = lab[lab["is_fraud"]]
    lines = t["fee_lines"]
    bad_lines = set(fraud.loc[fraud["entity_type"] == "fee_line", "entity_id"])
    bad_sett = set(fraud.loc[fraud["entity_type"] == "settlement", "entity_id"]) | set(
        lines.loc[lines["line_id"].isin(bad_lines), "settlement_id"])
    s = t["settlements"][~t["settlements"]["settlement_id"].isin(bad_sett)]
    fl = lines[lines["settlement_id"].isin(s["settlement_id"])]
    return {"settlements": s, "fee_lines": fl}


# -- determinism ---------------------------------------------------------------------------------

def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", persons=300, seed=3)
    b = generate(tmp_path / "b", persons=300, seed=3)
    # a different seed, and intensity 0 (no fraud at all)
    c = generate(tmp_path / "c", persons=300, seed=4, config=SynthConfig(intensity=0.0))
    ha, hb, hc = _hashes(a), _hashes(b), _hashes(c)
    assert ha == hb
    assert set(ha) == set(schema.TABLES)
    assert ha["settlements"] != hc["settlements"]
    assert ha["persons"] != hc["persons"]
    labels = c.read_table("labels")
    assert not labels["is_fraud"].any()
    assert (labels["scenario"] == "decoy").all()


# -- schema ------------------------------------------------------------------------------------

def test_every_table_matches_schema(small_world: Workspace) -> None:
    assert small_world.present_tables() == list(schema.TABLES)
    for name, tab in schema.TABLES.items():
        got = pq.read_schema(small_world.table_path(name))
        assert got.names == tab.column_names, name
        for f, want in zip(got, tab.arrow_schema(), strict=True):
            # Parquet has no second-resolution timestamps; they read back as milliseconds
            same = f.type == want.type or (pa.types.is_timestamp(f.type)
                                           and pa.types.is_timestamp(want.type))
            assert same, (name, f.name, f.type, want.type)


def test_id_formats(t: dict[str, pd.DataFrame]) -> None:
    # rows added by fraudscan.synth.rule_violations carry their own "RV" ids
    sid = t["settlements"]["settlement_id"]
    assert (sid.str.fullmatch(r"S\d{9}") | sid.str.startswith("SRV")).all()
    lid = t["fee_lines"]["line_id"]
    assert (lid.str.fullmatch(r"L\d{10}") | lid.str.startswith("LRV")).all()
    assert sid.is_unique and lid.is_unique
    assert t["persons"]["person_id"].str.fullmatch(r"P\d{8}").all()
    assert t["facilities"]["facility_id"].str.fullmatch(r"[HY]\d{6}").all()
    assert t["staff"]["staff_id"].str.fullmatch(r"D\d{7}").all()
    assert t["trace_scans"]["trace_code"].str.fullmatch(r"\d{20}").all()
    cat = t["catalogue"]
    lengths = cat["item_code"].str.len().groupby(cat["item_class"]).agg(["min", "max"])
    assert (lengths.loc[["western_drug", "patent_tcm"]] == 23).all().all()
    assert (lengths.loc["consumable"] == 20).all()
    assert (lengths.loc[["lab", "surgery", "bed"]] == 15).all().all()
    assert 300 <= len(cat) <= 600


def test_world_shape(t: dict[str, pd.DataFrame]) -> None:
    f = t["facilities"]
    assert set(f["district"]) == {"D1", "D2", "D3", "D4"}
    assert set(schema.FACILITY_TYPES) - set(f["facility_type"]) == {"other"}
    p = t["persons"]
    assert set(p["insurance_type"]) == {"310", "390"}
    assert p["death_date"].notna().any()
    st = t["staff"]
    assert {"suspended", "terminated"} <= set(st["qualification_status"])
    s = t["settlements"]
    assert {"11", "13", "14", "21", "41", "52"} <= set(s["medical_type"])
    cat = t["catalogue"]
    for col in ("sex_limit", "age_max_days", "min_facility_level", "care_modes",
                "insurance_types", "indications", "max_days_supply", "max_per_stay",
                "period_days", "course_days", "departments", "drug_group", "restriction_text",
                "valid_to"):
        assert cat[col].notna().any(), col
    assert (cat["age_max_days"] == 28).any()
    assert cat["trace_required"].any() and cat["resale_prone"].any()


# -- clean-data invariants --------------------------------------------------------------------

def test_amounts_add_up(t: dict[str, pd.DataFrame]) -> None:
    s, fl = t["settlements"], t["fee_lines"]
    assert np.allclose(fl["qty"] * fl["unit_price"], fl["amount"], atol=0.011)
    tot = fl.groupby("settlement_id")["amount"].sum().reindex(s["settlement_id"])
    assert np.allclose(tot.to_numpy(), s["total_amount"].to_numpy(), atol=0.05)
    paid = s["fund_paid"] + s["account_paid"] + s["cash_paid"]
    assert np.allclose(paid, s["total_amount"], atol=0.05)
    assert (s[["fund_paid", "account_paid", "cash_paid"]] >= 0).all().all()


def test_clean_lines_within_stays_and_life(t: dict[str, pd.DataFrame], clean: dict) -> None:
    s, fl = clean["settlements"], clean["fee_lines"]
    m = fl.merge(s[["settlement_id", "admission_time", "discharge_time", "person_id"]],
                 on="settlement_id")
    inside = (m["service_time"] >= m["admission_time"]) & (
        m["service_time"] <= m["discharge_time"])
    assert (inside | m["discharge_drug"]).all()
    dead = t["persons"].set_index("person_id")["death_date"].dropna()
    sd = s[s["person_id"].isin(dead.index)]
    death = pd.to_datetime(dead.reindex(sd["person_id"]).to_numpy())
    assert (sd["discharge_time"].to_numpy() < death).all()


def test_clean_stays_do_not_overlap_or_split(clean: dict) -> None:
    s = clean["settlements"]
    st = s[s["medical_type"].isin(("21", "52"))].sort_values(["person_id", "admission_time"])
    prev_end = st.groupby("person_id")["discharge_time"].shift(1)
    assert not (st["admission_time"] <= prev_end).any()
    prev_fac = st.groupby("person_id")["facility_id"].shift(1)
    prev_dx = st.groupby("person_id")["main_diagnosis"].shift(1).str[:1]
    readmit = ((prev_fac == st["facility_id"])
               & (st["admission_time"] - prev_end <= 15 * DAY)
               & (prev_dx == st["main_diagnosis"].str[:1]) & ~st["planned_readmission"].astype(
                   bool))
    assert not readmit.any()
    other = s[~s["medical_type"].isin(("21", "52"))]
    m = other[["person_id", "admission_time"]].merge(
        st[["person_id", "admission_time", "discharge_time"]], on="person_id",
        suffixes=("", "_stay"))
    during = (m["admission_time"].dt.floor("D") >= m["admission_time_stay"].dt.floor("D")) & (
        m["admission_time"].dt.floor("D") <= m["discharge_time"].dt.floor("D"))
    assert not during.any()


def test_clean_lines_respect_catalogue(t: dict[str, pd.DataFrame], clean: dict) -> None:
    s, fl = clean["settlements"], clean["fee_lines"]
    cat = t["catalogue"].set_index("item_code")
    fac = t["facilities"].set_index("facility_id")
    per = t["persons"].set_index("person_id")
    m = fl.merge(s[["settlement_id", "person_id", "facility_id", "medical_type",
                    "insurance_type"]], on="settlement_id")
    c = cat.reindex(m["item_code"])
    assert c["item_name"].notna().all()
    sex = per["sex"].reindex(m["person_id"]).to_numpy()
    assert ((c["sex_limit"].isna().to_numpy()) | (c["sex_limit"].to_numpy() == sex)).all()
    birth = pd.to_datetime(per["birth_date"].reindex(m["person_id"]).to_numpy())
    age = (m["service_time"].dt.floor("D").to_numpy() - birth) // DAY
    assert (c["age_max_days"].isna().to_numpy() | (age <= c["age_max_days"].fillna(0))).all()
    assert (c["age_min_days"].isna().to_numpy() | (age >= c["age_min_days"].fillna(0))).all()
    level = fac["level"].reindex(m["facility_id"]).to_numpy()
    assert (c["min_facility_level"].isna().to_numpy()
            | (level >= c["min_facility_level"].fillna(0).to_numpy())).all()
    care_ok = [pd.isna(cm) or mt in cm.split(";")
               for cm, mt in zip(c["care_modes"], m["medical_type"], strict=True)]
    assert all(care_ok)
    ins_ok = [pd.isna(it) or ins in it.split(";")
              for it, ins in zip(c["insurance_types"], m["insurance_type"], strict=True)]
    assert all(ins_ok)
    cap = np.select([level == 3, level == 2], [c["price_cap_lv3"], c["price_cap_lv2"]],
                    c["price_cap_lv1"])
    assert (np.isnan(cap) | (m["unit_price"].to_numpy() <= cap + 1e-9)).all()
    qd = c["max_qty_per_day"].to_numpy(dtype=float, na_value=np.nan)
    assert (np.isnan(qd) | (m["qty"].to_numpy() <= qd)).all()
    ds = c["max_days_supply"].to_numpy(dtype=float, na_value=np.nan)
    got = m["days_supply"].to_numpy(dtype=float, na_value=np.nan)
    assert (np.isnan(ds) | np.isnan(got) | (got <= ds)).all()
    vf = pd.to_datetime(c["valid_from"]).to_numpy()
    vt = pd.to_datetime(c["valid_to"]).to_numpy()
    day = m["service_time"].dt.floor("D").to_numpy()
    assert ((day >= vf) & (np.isnat(vt) | (day <= vt))).all()
    rx = m[m["prescription_no"].notna()]
    assert rx.groupby("prescription_no")["item_code"].nunique().max() <= 5


def test_clean_trace_scans(t: dict[str, pd.DataFrame], clean: dict) -> None:
    fl = clean["fee_lines"]
    scans = t["trace_scans"]
    cs = scans[scans["line_id"].isin(fl["line_id"])]
    assert not cs["trace_code"].duplicated().any()
    traced = t["catalogue"].set_index("item_code")["trace_required"]
    need = fl[traced.reindex(fl["item_code"]).to_numpy().astype(bool)]
    n_scans = cs.groupby("line_id").size().reindex(need["line_id"]).fillna(0).to_numpy()
    assert (n_scans == need["qty"].to_numpy()).all()


def test_clean_staff_and_diagnoses(t: dict[str, pd.DataFrame], clean: dict) -> None:
    s = clean["settlements"]
    st = t["staff"].set_index("staff_id")
    sanctioned = st[st["qualification_status"] != "active"]
    m = s[s["attending_staff_id"].isin(sanctioned.index)]
    frm = pd.to_datetime(sanctioned["status_from"].reindex(m["attending_staff_id"]).to_numpy())
    to = pd.to_datetime(sanctioned["status_to"].reindex(m["attending_staff_id"]).to_numpy())
    to = np.where(np.isnat(to), np.datetime64("2200-01-01"), to)
    day_a = m["admission_time"].dt.floor("D").to_numpy()
    day_d = m["discharge_time"].dt.floor("D").to_numpy()
    assert not ((frm <= day_d) & (day_a <= to)).any()
    dx = t["diagnoses"].merge(s[["settlement_id", "person_id", "admission_time"]],
                              on="settlement_id")
    per = t["persons"].set_index("person_id")
    sex = per["sex"].reindex(dx["person_id"]).to_numpy()
    assert not ((sex == "1") & dx["diag_code"].str.startswith("O").to_numpy()).any()
    assert not ((sex == "2") & dx["diag_code"].str[:3].isin(("N40", "N41", "N42"))).any()
    age = (dx["admission_time"].dt.floor("D").to_numpy()
           - pd.to_datetime(per["birth_date"].reindex(dx["person_id"]).to_numpy())) // DAY
    assert not ((age > 28) & dx["diag_code"].str.startswith("P").to_numpy()).any()


def test_clean_pharmacy_stock_covers_sales(t: dict[str, pd.DataFrame]) -> None:
    sm = t["stock_movements"]
    lab = t["labels"]
    bad = set(lab.loc[lab["is_fraud"] & (lab["entity_type"] == "facility"), "entity_id"])
    # a pharmacy where a fraudulent sale was settled (a roaming cash-out card) is not clean,
    # even when it is not the perpetrator of a scheme and carries no facility label
    s = t["settlements"]
    sold = lab.loc[lab["is_fraud"] & (lab["entity_type"] == "settlement"), "entity_id"]
    bad |= set(s.loc[s["settlement_id"].isin(sold), "facility_id"])
    net = sm[~sm["facility_id"].isin(bad)].groupby(["facility_id", "item_code"])["qty"].sum()
    assert (net >= -1e-9).all()


# -- fraud scenarios ---------------------------------------------------------------------------

def _fraud(t: dict[str, pd.DataFrame], scenario: str, etype: str) -> pd.DataFrame:
    lab = t["labels"]
    return lab[(lab["scenario"] == scenario) & (lab["entity_type"] == etype) & lab["is_fraud"]]


def test_every_scenario_labelled(t: dict[str, pd.DataFrame]) -> None:
    lab = t["labels"]
    fraud = lab[lab["is_fraud"]]
    for sc in SCENARIOS:
        sub = fraud[fraud["scenario"] == sc]
        assert len(sub), sc
        assert (sub["amount_at_risk"] > 0).all(), sc
        assert sub["period"].notna().all() and sub["group_id"].notna().all(), sc
        patient_driven = sc in ("care_after_death", "doctor_shopping")
        assert (sub["entity_type"] == "facility").any() or patient_driven, sc
    assert (lab["source"] == "synthetic").all()
    decoy = lab[lab["scenario"] == "decoy"]
    assert len(decoy) and not decoy["is_fraud"].any()
    assert {"facility", "person", "settlement"} <= set(decoy["entity_type"])


def _labelled_settlements(t: dict[str, pd.DataFrame], scenario: str) -> pd.DataFrame:
    ids = _fraud(t, scenario, "settlement")["entity_id"]
    return t["settlements"][t["settlements"]["settlement_id"].isin(ids)]


def test_evidence_resale_and_switching(t: dict[str, pd.DataFrame]) -> None:
    scans = t["trace_scans"]
    per_code = scans.groupby("trace_code")["facility_id"].nunique()
    assert (per_code >= 2).any()
    sm = t["stock_movements"]
    for fid in _fraud(t, "item_switching", "facility")["entity_id"]:
        net = sm[sm["facility_id"] == fid].groupby("item_code")["qty"].sum()
        assert (net < 0).any()
    cash = _labelled_settlements(t, "card_cashout")
    assert (cash["total_amount"] % 50 == 0).all()


def test_evidence_beds_and_stays(t: dict[str, pd.DataFrame]) -> None:
    s = t["settlements"]
    fac = t["facilities"].set_index("facility_id")
    days = (s["discharge_time"].max() - s["admission_time"].min()).days
    stays = s[s["medical_type"].isin(("21", "52"))]
    stay_days = (stays["discharge_time"].dt.floor("D") - stays["admission_time"].dt.floor("D")
                 ).dt.days.groupby(stays["facility_id"]).sum()
    for fid in _fraud(t, "bed_overuse", "facility")["entity_id"]:
        assert stay_days[fid] > fac.loc[fid, "beds"] * days
    split = _labelled_settlements(t, "split_admission")
    both = stays.merge(split[["person_id", "facility_id", "admission_time"]],
                       on=["person_id", "facility_id"], suffixes=("", "_re"))
    gap = both["admission_time_re"] - both["discharge_time"]
    assert ((gap > pd.Timedelta(0)) & (gap <= 15 * DAY)).any()
    cat = t["catalogue"].set_index("item_code")["item_class"]
    idle = t["fee_lines"][t["fee_lines"]["line_id"].isin(
        _fraud(t, "phantom_bed", "fee_line")["entity_id"])]
    assert set(cat.reindex(idle["item_code"])) <= {"bed", "nursing"}
    up = _labelled_settlements(t, "drg_upcoding")
    assert up["drg_code"].str.endswith("1").all()


def test_evidence_death_dialysis_groups(t: dict[str, pd.DataFrame]) -> None:
    death = t["persons"].set_index("person_id")["death_date"]
    after = _labelled_settlements(t, "care_after_death")
    assert (after["admission_time"].dt.floor("D").to_numpy()
            > pd.to_datetime(death.reindex(after["person_id"]).to_numpy())).all()
    dia = _labelled_settlements(t, "dialysis_overbilling")
    d = pd.to_datetime(death.reindex(dia["person_id"]).to_numpy())
    assert (dia["admission_time"].to_numpy() > d).any()
    gv = _labelled_settlements(t, "group_visits").sort_values("admission_time")
    burst = gv.groupby(["facility_id", gv["admission_time"].dt.floor("D")])["admission_time"]
    assert ((burst.max() - burst.min() <= pd.Timedelta(hours=1)) & (burst.size() >= 5)).any()
    ring = _fraud(t, "collusion_ring", "ring")
    assert len(ring) >= 1
    rid = ring["entity_id"].iloc[0]
    members = t["labels"][(t["labels"]["group_id"] == rid)]
    assert {"person", "staff", "facility", "settlement"} <= set(members["entity_type"])
    shop = _labelled_settlements(t, "doctor_shopping")
    assert shop.groupby("person_id")["facility_id"].nunique().max() >= 4


def test_rehab_and_templates(t: dict[str, pd.DataFrame]) -> None:
    cat = t["catalogue"].set_index("item_code")
    rl = t["fee_lines"][t["fee_lines"]["line_id"].isin(
        _fraud(t, "rehab_overbilling", "fee_line")["entity_id"])]
    over_qty = rl["qty"].to_numpy() > cat["max_qty_per_day"].reindex(rl["item_code"]).fillna(
        np.inf).to_numpy()
    assert over_qty.any()
    tpl = _labelled_settlements(t, "templated_items")
    items = t["fee_lines"][t["fee_lines"]["settlement_id"].isin(tpl["settlement_id"])]
    sets = items.groupby("settlement_id")["item_code"].apply(lambda x: tuple(sorted(set(x))))
    assert sets.value_counts().iloc[0] >= 2
    assert tpl["main_diagnosis"].nunique() >= 2


# -- CLI and validation ------------------------------------------------------------------------

def test_cli_synth(tmp_path: Path) -> None:
    from fraudscan.cli import app

    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["synth", "--persons", "500", "--seed", "1", "--out",
                                   str(out)])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "settlements" in res.output
    assert Workspace(out).has_table("settlements")
    help_ = CliRunner().invoke(app, ["synth", "--help"])
    assert help_.exit_code == 0 and "--intensity" in help_.output


@pytest.mark.skipif(importlib.util.find_spec("fraudscan.validation") is None,
                    reason="fraudscan.validation not available")
def test_small_world_validates(small_world: Workspace) -> None:
    from fraudscan.validation import validate_workspace

    report = validate_workspace(small_world)
    assert report.ok, report.problems[:10]
