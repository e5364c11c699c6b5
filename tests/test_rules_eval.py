"""Screening a synthetic world against its labels: every injected rule violation is found and
no clean claim is blocked (the figures of docs/rules-evaluation.md, on a small world)."""

from __future__ import annotations

import duckdb
import pytest

from fraudscan.rules import load_rules, screen_connection
from fraudscan.rules.evaluate import evaluate_connection
from fraudscan.workspace import Workspace, attach_views


@pytest.fixture(scope="module")
def evaluation(small_world: Workspace):  # type: ignore[no-untyped-def]
    con = duckdb.connect()  # small_world is shared and read-only: findings stay in memory
    attach_views(con, small_world)
    rules = load_rules()
    res = screen_connection(con, rules)
    ev = evaluate_connection(con, rules)
    yield res, ev
    con.close()


def test_every_rule_injected_and_found(evaluation) -> None:  # type: ignore[no-untyped-def]
    _res, ev = evaluation
    missing = ev.loc[ev["injected"] == 0, "rule_id"].tolist()
    assert not missing, f"no injected violations for {missing}"
    low = ev.loc[ev["recall"] < 1.0, ["rule_id", "injected", "found"]]
    assert low.empty, low.to_string()


def test_no_block_on_clean_claims(evaluation) -> None:  # type: ignore[no-untyped-def]
    _res, ev = evaluation
    bad = ev.loc[ev["clean_blocks"] > 0, ["rule_id", "clean_blocks", "clean_settlements"]]
    assert bad.empty, bad.to_string()


def test_findings_table_shape(evaluation) -> None:  # type: ignore[no-untyped-def]
    res, _ev = evaluation
    assert res.n_findings > 0 and res.n_lines > 10_000
    assert set(res.per_rule["rule_id"]) == set(load_rules().ids)


def test_single_claim_replay_equals_batch(small_world: Workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Replaying a slice of the world claim by claim (check, then settle, in admission order)
    gives exactly the batch findings on the same claims."""
    import pandas as pd

    from fraudscan.rules import RuleEngine, StateStore
    from fraudscan.rules.engine import claims_from_tables

    names = ("persons", "facilities", "staff", "catalogue", "settlements", "diagnoses",
             "procedures", "fee_lines", "trace_scans", "labels")
    t = {n: small_world.read_table(n) for n in names}
    s = t["settlements"]
    persons = sorted(s["person_id"].unique())[::10]  # every 10th person: 200 of 2,000
    keep = set(s.loc[s["person_id"].isin(persons), "settlement_id"])
    for n in ("settlements", "diagnoses", "procedures", "fee_lines"):
        t[n] = t[n][t[n]["settlement_id"].isin(keep)]
    scans = t["trace_scans"]
    t["trace_scans"] = scans[scans["line_id"].isin(t["fee_lines"]["line_id"])]
    ws = Workspace(tmp_path / "slice")
    ws.write_tables(t, source="test")
    rules = load_rules()
    con = duckdb.connect()
    attach_views(con, ws)
    screen_connection(con, rules)
    batch = con.execute("SELECT * FROM rule_findings").df()
    con.close()
    state = StateStore(tmp_path / "state.sqlite")
    state.load_registries(t["persons"], t["staff"])
    eng = RuleEngine(t["catalogue"], rules=rules, facilities=t["facilities"], state=state)
    single = []
    for c in claims_from_tables(t):
        single += [f.as_dict() for f in eng.check_claim(c)]
        eng.settle(c)
    eng.close()
    key = ["rule_id", "rule_version", "settlement_id", "line_id"]
    a = pd.DataFrame(single).fillna({"line_id": ""}).set_index(key).sort_index()
    b = batch.fillna({"line_id": ""}).set_index(key).sort_index()
    assert len(a) > 20
    assert set(a.index) == set(b.index), set(a.index) ^ set(b.index)
    j = a.merge(b, left_index=True, right_index=True, suffixes=("", "_b"))
    assert (j["amount"] - j["amount_b"]).abs().max() < 0.011


def test_salted_keys_give_the_same_findings(small_world: Workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The screen keys settlements and items by 64-bit hashes of their ids and salts the hash
    when two ids collide; forcing that path (the unsalted key is refused, so the screen runs
    with salt 1 or raises) changes no finding."""
    import pandas as pd

    from fraudscan.rules import batch

    con = duckdb.connect()
    attach_views(con, small_world)
    rules = load_rules()
    screen_connection(con, rules)
    plain = con.execute("SELECT * FROM rule_findings").df()
    refused = {
        table: (macro, (tests[-1].replace(
            "SELECT ", f"SELECT {macro}('probe') <> hash('probe') AND ", 1),))
        for table, (macro, tests) in batch.KEY_CHECKS.items()}
    monkeypatch.setattr(batch, "KEY_CHECKS", refused)
    screen_connection(con, rules)
    salted = con.execute("SELECT * FROM rule_findings").df()
    con.close()
    cols = list(plain.columns)
    a = plain.sort_values(cols, na_position="first").reset_index(drop=True)
    b = salted.sort_values(cols, na_position="first").reset_index(drop=True)
    assert len(a) > 100
    pd.testing.assert_frame_equal(a, b)


def test_failed_screen_keeps_the_previous_findings(small_world: Workspace, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A screen that fails part-way (here one rule's statement) replaces nothing: the earlier
    ``rule_findings`` and ``rule_catalogue`` stay as they were, and no context table is left."""
    from fraudscan.rules import batch

    con = duckdb.connect()
    attach_views(con, small_world)
    rules = load_rules()
    screen_connection(con, rules)
    before = con.execute("SELECT count(*), sum(amount) FROM rule_findings").fetchone()
    n_rules = con.execute("SELECT count(*) FROM rule_catalogue").fetchone()
    monkeypatch.setitem(batch.SQL, "item_frequency", lambda r: "SELECT no_such_column FROM _rs_s")
    with pytest.raises(duckdb.Error):
        screen_connection(con, rules)
    assert con.execute("SELECT count(*), sum(amount) FROM rule_findings").fetchone() == before
    assert con.execute("SELECT count(*) FROM rule_catalogue").fetchone() == n_rules
    assert "_rs_db" not in {r[0] for r in con.execute("SHOW DATABASES").fetchall()}
    monkeypatch.undo()
    assert screen_connection(con, rules).n_findings == before[0]
    con.close()
