"""The single-claim path: request validation, properties, persistent state, CLI."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fraudscan.cli import app
from fraudscan.rules import ClaimRequestError, RuleEngine, StateStore, parse_request
from fraudscan.rules.claim import requests_to_tables
from fraudscan.workspace import Workspace

sys.path.insert(0, str(Path(__file__).parent))
from test_rules_fixtures import FILES, REF, RULES, make_engine

HERE = Path(__file__).parent / "fixtures" / "claims"
CLEAN = json.loads((HERE / "clean_outpatient.json").read_text(encoding="utf-8"))
PLAIN = ["XR05DAA002A001010100003", "XA02BCA018A001010100018", "XA03FAA019A001010100019",
         "XR06AXA020A001010100020", "XM01AEA021A001010100021", "250100000000050"]
_CAT = REF["catalogue"].set_index("item_code")
PRICE = {(c, lv): float(_CAT.loc[c, f"price_cap_lv{lv}"])
         if _CAT.loc[c, f"price_cap_lv{lv}"] == _CAT.loc[c, f"price_cap_lv{lv}"]
         else float(_CAT.loc[c, "unit_price"]) for c in _CAT.index for lv in (1, 2, 3)}
PERSONS = {"P001": ("1", "1980-05-01", "310"), "P002": ("2", "1985-07-15", "390"),
           "P003": ("1", "2020-06-01", "390"), "P007": ("2", "2016-09-01", "390")}
# (rule, order) pairs that violate their rule whatever the (clean, outpatient) context
VIOLATIONS = [
    ("R16", {"hilist_code": "XB05BAA012A001010100012", "cnt": 1, "pric": 186.0}),
    ("R44", {"hilist_code": "121100000000010", "cnt": 1, "pric": 40.0}),
    ("R23", {"hilist_code": "T000800030", "cnt": 5, "pric": 20.0}),
    ("R41", {"hilist_code": "XJ01CAA017A001010100017", "cnt": 1, "pric": 12.5}),
    ("R22", {"hilist_code": "XJ01DCA015A001010100015", "cnt": 1, "pric": 28.0, "prd_days": 9}),
    ("R38", {"hilist_code": "XR03BAA016A001010100016", "cnt": 30, "pric": 8.8, "prd_days": 5}),
    ("R12", {"hilist_code": "XM03BXA009A001010100009", "cnt": 1, "pric": 40.0}),
    ("R10", {"hilist_code": "XB02BAA008A001010100008", "cnt": 1, "pric": 2.1}),
    ("R29", {"hilist_code": "110200000000010", "cnt": 1, "pric": 50.0}),
    ("R42", {"hilist_code": "XV08ABY001B002010100000", "cnt": 1, "pric": 90.0}),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> RuleEngine:
    eng = make_engine(tmp_path_factory.mktemp("state"))
    yield eng
    eng.close()


@st.composite
def clean_claims(draw: st.DrawFn) -> dict:
    pid = draw(st.sampled_from(sorted(PERSONS)))
    sex, brdy, ins = PERSONS[pid]
    codes = draw(st.lists(st.sampled_from(PLAIN), min_size=1, max_size=5, unique=True))
    day = draw(st.integers(1, 28))
    fac = draw(st.sampled_from(["H3", "H2"]))
    lv = {"H3": 3, "H2": 2}[fac]
    orders = []
    for i, c in enumerate(codes):
        qty = draw(st.integers(1, 3))
        orders.append({"rx_id": f"L{i}", "hilist_code": c, "cnt": qty, "pric": PRICE[c, lv],
                       "sumamt": round(qty * PRICE[c, lv], 2), "rxno": "RX1"})
    enc = {"mdtrt_id": f"H{pid}{day}", "medins_id": fac,
           "adm_date": f"2025-04-{day:02d} 09:00:00", "med_type": "11", "insutype": ins,
           "dr_codg": "D001", "adm_dept_codg": "A03",
           "fsi_diagnose_dtos": [{"dise_codg": "J06.9", "maindise_flag": "1"}],
           "fsi_order_dtos": orders}
    return {"patient_dtos": [{"patn_id": pid, "gend": sex, "brdy": brdy,
                              "fsi_encounter_dtos": [enc]}]}


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(req=clean_claims())
def test_clean_claim_never_blocks(engine: RuleEngine, req: dict) -> None:
    resp = engine.check(req)
    assert resp.decision == "pass", [r.rule_id for r in resp.result]


@SETTINGS
@given(req=clean_claims(), v=st.sampled_from(VIOLATIONS))
def test_adding_a_violating_line_triggers_its_rule(engine: RuleEngine, req: dict,
                                                   v: tuple[str, dict]) -> None:
    rule_id, order = v
    req = copy.deepcopy(req)
    req["patient_dtos"][0]["fsi_encounter_dtos"][0]["fsi_order_dtos"].append(
        {"rx_id": "BAD", **order})
    resp = engine.check(req)
    hits = {(r.rule_id, d.rx_id) for r in resp.result for d in r.judge_result_detail_dtos}
    assert (rule_id, "BAD") in hits, hits


@SETTINGS
@given(data=st.data(), path=st.sampled_from(FILES))
def test_reordering_lines_changes_nothing(engine: RuleEngine, data: st.DataObject,
                                          path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("_history"):
        return  # cross-claim fixtures need their own state; covered in test_rules_fixtures
    shuffled = copy.deepcopy(doc)
    for p in shuffled["patient_dtos"]:
        for e in p["fsi_encounter_dtos"]:
            e["fsi_order_dtos"] = data.draw(st.permutations(e["fsi_order_dtos"]))
            e["fsi_diagnose_dtos"] = data.draw(st.permutations(e["fsi_diagnose_dtos"]))
    a, b = engine.check(doc), engine.check(shuffled)

    def key(resp):  # type: ignore[no-untyped-def]
        return sorted((r.rule_id, r.vola_amt, tuple(sorted(d.rx_id for d in
                                                           r.judge_result_detail_dtos)))
                      for r in resp.result)
    assert a.decision == b.decision and key(a) == key(b)


@pytest.mark.parametrize(("mutate", "needle"), [
    (lambda r: r.pop("patient_dtos"), "patient_dtos: Field required"),
    (lambda r: r["patient_dtos"][0].update(gend="M"), "patient_dtos[0].gend"),
    (lambda r: r["patient_dtos"][0]["fsi_encounter_dtos"][0]["fsi_order_dtos"][1].update(
        cnt="two"), "patient_dtos[0].fsi_encounter_dtos[0].fsi_order_dtos[1].cnt"),
    (lambda r: r["patient_dtos"][0]["fsi_encounter_dtos"][0].update(adm_date="yesterday"),
     "fsi_encounter_dtos[0].adm_date"),
    (lambda r: r["patient_dtos"][0]["fsi_encounter_dtos"][0]["fsi_order_dtos"][0].update(
        hosp_appr_flag="maybe"), "hosp_appr_flag"),
    (lambda r: r["patient_dtos"][0].update(curr_mdtrt_id="nope"), "matches no encounter"),
    (lambda r: r["patient_dtos"][0]["fsi_encounter_dtos"][0]["fsi_order_dtos"][1].update(
        rx_id="1"), "duplicate rx_id '1'"),
])
def test_malformed_requests_name_the_field(engine: RuleEngine, mutate, needle: str) -> None:  # type: ignore[no-untyped-def]
    req = copy.deepcopy(CLEAN)
    mutate(req)
    with pytest.raises(ClaimRequestError) as e:
        engine.check(req, source="claim.json")
    assert str(e.value).startswith("claim.json") or "encounter" in str(e.value) or \
        "patient" in str(e.value)
    assert needle in str(e.value), str(e.value)


def test_invalid_json_names_line() -> None:
    with pytest.raises(ClaimRequestError, match=r"c.json: line 2, column"):
        parse_request('{"patient_dtos":\n [}', "c.json")


def test_national_envelope_and_score_one(engine: RuleEngine) -> None:
    doc = json.loads((HERE / "R01_hit.json").read_text(encoding="utf-8"))
    wrapped = {"infno": "3101", "input": {"data": doc}}
    assert engine.check(wrapped).decision == "block"
    out = engine.score_one(doc)
    assert out["decision"] == "block" and out["hits"][0]["rule_id"] == "R01"
    assert out["hits"][0]["lines"] == ["3"]


_KILL = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {tests!r})
    from test_rules_fixtures import make_engine
    from pathlib import Path
    eng = make_engine(Path({d!r}))
    eng.settle(json.loads(Path({f!r}).read_text())["_history"][0])
    print("ACK", flush=True)
    time.sleep(60)
""")


def test_settled_state_survives_kill_9(tmp_path: Path) -> None:
    f = HERE / "R40_hit.json"
    code = _KILL.format(tests=str(Path(__file__).parent), d=str(tmp_path), f=str(f))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ACK"
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    st = StateStore(tmp_path / "state.sqlite")
    assert st.is_settled("R40p") and st.counts()["trace"] == 1
    st.close()
    eng = make_engine(tmp_path)  # reopens the same file
    try:
        doc = json.loads(f.read_text(encoding="utf-8"))
        assert [r.rule_id for r in eng.check(doc).result] == ["R40"]
    finally:
        eng.close()


def test_cli_check_and_screen(tmp_path: Path) -> None:
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in FILES if "clean" in p.stem]
    ws = Workspace(tmp_path / "ws")
    ws.write_tables({**REF, **requests_to_tables(docs)}, source="test")
    runner = CliRunner()
    r = runner.invoke(app, ["rules", "check", str(HERE / "R36_hit.json"), "-w", str(ws.path),
                            "--settle"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output[r.output.index("{"):r.output.rindex("}") + 1])
    assert out["decision"] == "block" and out["result"][0]["rule_id"] == "R36"
    assert StateStore(ws.path / "rules_state.sqlite").is_settled("R36h")
    r = runner.invoke(app, ["rules", "check", str(tmp_path / "missing.json"), "-w",
                            str(ws.path)])
    assert r.exit_code == 2 and "no such file" in " ".join(r.output.split())
    r = runner.invoke(app, ["rules", "screen", str(ws.path)])
    assert r.exit_code == 0 and "rule_findings" in r.output, r.output
    assert len(RULES) >= 40


def test_second_line_state_survives_reopen(tmp_path: Path) -> None:
    """R20: the first-line use settled before a restart still excuses the second-line drug."""
    doc = json.loads((Path(__file__).parent / "fixtures" / "claims" / "R20_miss.json")
                     .read_text(encoding="utf-8"))
    eng = make_engine(tmp_path)
    for h in doc["_history"]:
        eng.settle(h)
    eng.close()
    state = StateStore(tmp_path / "state.sqlite")
    assert state.counts()["usage"] >= 1
    eng2 = RuleEngine(REF["catalogue"], rules=RULES, facilities=REF["facilities"], state=state)
    try:
        assert not [r.rule_id for r in eng2.check(doc).result]
        fresh = make_engine(tmp_path / "empty")  # no history: the same claim is a hit
        assert [r.rule_id for r in fresh.check(doc).result] == ["R20"]
        fresh.close()
    finally:
        eng2.close()


def test_facility_restriction_set_at_runtime_and_old_state_file(tmp_path: Path) -> None:
    """R48 / R47: a restriction to named facilities recorded with ``set_person`` (what a
    running service does after a sanction) blocks other facilities only, survives a reopen,
    and a state file written before the column existed is migrated on open."""
    import sqlite3

    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE persons (person_id TEXT PRIMARY KEY, death_date TEXT, "
               "restricted_until TEXT)")
    db.execute("INSERT INTO persons VALUES ('P001', NULL, '2025-06-30')")
    db.commit()
    db.close()
    state = StateStore(old)
    assert state.person("P001") is not None and state.person_facilities("P001") is None
    state.set_person("P001", restricted_until=date(2025, 6, 30),
                     restricted_facilities=["H1", " H2 "])
    state.close()
    state = StateStore(old)
    assert state.person_facilities("P001") == frozenset({"H1", "H2"})
    eng = RuleEngine(REF["catalogue"], rules=RULES, facilities=REF["facilities"], state=state)
    try:
        doc = json.loads((Path(__file__).parent / "fixtures" / "claims" / "R48_hit.json")
                         .read_text(encoding="utf-8"))
        doc["patient_dtos"][0]["patn_id"] = "P001"
        assert [r.rule_id for r in eng.check(doc).result] == ["R48"]
        state.set_person("P001", restricted_until=date(2025, 6, 30))  # plain suspension
        assert [r.rule_id for r in eng.check(doc).result] == ["R47"]
    finally:
        eng.close()
