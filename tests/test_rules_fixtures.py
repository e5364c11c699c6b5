"""Hand-written 3101 claims, one triggering each rule plus near misses and clean claims.

Each JSON file under tests/fixtures/claims/ carries ``_expect`` (the rule ids the current
encounter must trigger, exactly) and optionally ``_history`` (claims settled before it, for
cross-claim rules). The reference catalogue, facilities, persons and staff are CSVs beside them.
The same claims screened in batch must give the same findings (the two modes held together).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from fraudscan import schema
from fraudscan.rules import RuleEngine, StateStore, load_rules, screen
from fraudscan.rules.claim import claims_from_request, parse_request, requests_to_tables
from fraudscan.workspace import Workspace

HERE = Path(__file__).parent / "fixtures" / "claims"
FILES = sorted(HERE.glob("*.json"))
RULES = load_rules()


def load_reference() -> dict[str, pd.DataFrame]:
    """The reference CSVs cast to canonical dtypes."""
    out = {}
    for name in ("catalogue", "facilities", "persons", "staff"):
        df = pd.read_csv(HERE / "reference" / f"{name}.csv", dtype=str)
        t = schema.table(name)
        for c in df.columns:
            col = t.column(c)
            if col.dtype == "bool":
                df[c] = df[c].map({"true": True, "false": False})
            elif col.dtype == "int":
                df[c] = pd.to_numeric(df[c]).astype("Int64")
            elif col.dtype == "float":
                df[c] = pd.to_numeric(df[c])
            elif col.dtype in ("date", "timestamp"):
                df[c] = pd.to_datetime(df[c])
        out[name] = df
    return out


REF = load_reference()


def make_engine(tmp_path: Path, persons: pd.DataFrame | None = None) -> RuleEngine:
    state = StateStore(tmp_path / "state.sqlite")
    state.load_registries(REF["persons"] if persons is None else persons, REF["staff"])
    return RuleEngine(REF["catalogue"], rules=RULES, facilities=REF["facilities"], state=state)


def test_one_hit_fixture_per_rule() -> None:
    hit = {json.loads(f.read_text())["_expect"][0] for f in FILES if "_hit" in f.stem}
    assert hit == set(RULES.ids), set(RULES.ids) ^ hit
    assert len(RULES) >= 40
    for rid in RULES.ids:
        assert any(f.stem.startswith(rid + "_miss") for f in FILES), f"no near miss for {rid}"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_fixture(path: Path, tmp_path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    eng = make_engine(tmp_path)
    try:
        for h in doc.get("_history", []):
            eng.settle(h)
        resp = eng.check(doc, source=path.name)
        got = sorted({r.rule_id for r in resp.result})
        assert got == sorted(doc["_expect"]), (path.name, [r.vola_cont for r in resp.result])
        if not doc["_expect"]:
            assert resp.decision == "pass"
        else:
            actions = {RULES.by_id[r][0].action for r in doc["_expect"]}
            assert resp.decision == ("block" if "block" in actions else "warn")
            for r in resp.result:
                assert r.rule_name and r.vola_cont and r.sev_deg in ("1", "2", "3")
                if RULES.by_id[r.rule_id][0].scope == "line":
                    assert r.judge_result_detail_dtos, r.rule_id
    finally:
        eng.close()


def _prefixed(name: str, doc: dict) -> list[dict]:
    """The fixture's history + current claim with person ids and trace codes made unique."""
    out = []
    for raw in [*doc.get("_history", []), doc]:
        r = copy.deepcopy(raw)
        for p in r["patient_dtos"]:
            p["patn_id"] = f"{name}:{p['patn_id']}"
            for e in p["fsi_encounter_dtos"]:
                for o in e["fsi_order_dtos"]:
                    o["drug_trac_codg"] = [f"{name}:{c}" for c in o.get("drug_trac_codg", [])]
        out.append(r)
    return out


def test_batch_equals_single_claim(tmp_path: Path) -> None:
    reqs: list[dict] = []
    persons = []
    for f in FILES:
        doc = json.loads(f.read_text(encoding="utf-8"))
        for r in _prefixed(f.stem, doc):
            reqs.append(r)
            for p in r["patient_dtos"]:
                base = REF["persons"][REF["persons"]["person_id"] == p["patn_id"].split(":")[1]]
                persons.append(base.assign(person_id=p["patn_id"]))
    pers = pd.concat(persons).drop_duplicates("person_id")
    tables = requests_to_tables(reqs)
    ws = Workspace(tmp_path / "ws")
    ws.write_tables({**{k: v for k, v in REF.items() if k != "persons"}, "persons": pers,
                     **tables}, source="test")
    screen(ws, RULES)
    with ws.connect() as con:
        batch = con.execute("SELECT * FROM rule_findings").df()
    # single-claim: every encounter in (admission, settlement id) order, check then settle
    eng = make_engine(tmp_path, pers)
    claims = [c for r in reqs for _p, _e, c in claims_from_request(
        parse_request({**r, "patient_dtos": [{**p, "curr_mdtrt_id": None}
                                             for p in r["patient_dtos"]]}))]
    claims.sort(key=lambda c: (c.admission_time, c.settlement_id))
    single = []
    for c in claims:
        for fd in eng.check_claim(c):
            d = fd.as_dict()
            if d["line_id"] is not None:
                d["line_id"] = f"{c.settlement_id}/{d['line_id']}"
            single.append(d)
        eng.settle(c)
    eng.close()
    key = ["rule_id", "rule_version", "settlement_id", "line_id"]
    s = pd.DataFrame(single).fillna({"line_id": ""}).set_index(key).sort_index()
    b = batch.fillna({"line_id": ""}).set_index(key).sort_index()
    assert set(s.index) == set(b.index), (set(s.index) ^ set(b.index))
    j = s.merge(b, left_index=True, right_index=True, suffixes=("", "_b"))
    assert (j["amount"] - j["amount_b"]).abs().max() < 0.011
    assert (j["action"] == j["action_b"]).all() and (j["staff_id"].fillna("") ==
                                                     j["staff_id_b"].fillna("")).all()
    assert (pd.to_datetime(j["service_date"]) == pd.to_datetime(j["service_date_b"])).all()
    assert len(s) >= len(RULES)
