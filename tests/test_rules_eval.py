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
