"""Feature pipeline on DuckDB: definitions, values, absent tables, incremental months, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from _feature_world import make_world, write_rule_findings
from fraudscan.features import (
    FeatureError,
    build,
    built_months,
    get_backend,
    load,
    load_models,
    register_backend,
)
from fraudscan.features.docs import render
from fraudscan.features.duckdb_backend import DuckDBBackend

REPO = Path(__file__).resolve().parents[1]
SUBJECTS = ("claim", "facility", "staff", "person")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    ws = make_world(tmp_path_factory.mktemp("fworld"))
    findings = write_rule_findings(ws)
    result = build(ws)
    return ws, result, findings


def test_definitions_parse_with_every_column_documented() -> None:
    models = load_models()
    subjects = {m.subject for m in models if m.is_output}
    assert subjects == set(SUBJECTS)
    for m in models:
        if m.is_output:
            assert m.key in m.columns and "period" in m.columns
            assert all(d for d in m.columns.values())


def test_docs_catalogue_is_generated_from_sql() -> None:
    assert (REPO / "docs" / "features.md").read_text(encoding="utf-8") == render(), (
        "docs/features.md is stale: run `fraudscan features docs --out docs/features.md`"
    )


def test_build_writes_one_partition_per_subject_and_month(world) -> None:
    ws, result, _ = world
    assert result.months_built == ["2025-01", "2025-02", "2025-03"]
    for s in SUBJECTS:
        files = sorted(p.name for p in (ws.path / "features" / s).glob("*.parquet"))
        assert files == [f"2025-0{i}.parquet" for i in (1, 2, 3)]
        assert result.rows[s] == len(load(ws, s)) > 0
    assert set(built_months(ws)) == {"2025-01", "2025-02", "2025-03"}
    assert not result.warnings


def test_claim_features_match_pandas(world) -> None:
    ws, _, _ = world
    claims = load(ws, "claim").set_index("settlement_id")
    lines = ws.read_table("fee_lines").merge(
        ws.read_table("catalogue")[["item_code", "item_class"]], on="item_code"
    )
    total = lines.groupby("settlement_id")["amount"].sum()
    lab = lines[lines.item_class == "lab"].groupby("settlement_id")["amount"].sum()
    expected_lab = (lab.reindex(total.index, fill_value=0) / total).rename("share_lab")
    got = claims.loc[expected_lab.index, "share_lab"]
    np.testing.assert_allclose(got.to_numpy(), expected_lab.to_numpy(), rtol=1e-9)
    n = lines.groupby("settlement_id").size()
    assert (claims.loc[n.index, "n_lines"] == n).all()
    s = ws.read_table("settlements").set_index("settlement_id")
    np.testing.assert_allclose(
        claims.loc[s.index, "fund_share"], s.fund_paid / s.total_amount, rtol=1e-9
    )
    stays = s[s.medical_type == "21"]
    los = (stays.discharge_time.dt.normalize() - stays.admission_time.dt.normalize()).dt.days
    assert (claims.loc[stays.index, "los_days"] == los.clip(lower=1)).all()


def test_claim_peer_ratios_and_percentiles(world) -> None:
    ws, _, _ = world
    c = load(ws, "claim")
    stays = c[c.is_inpatient]
    med = stays.groupby(["period", "dx_group", "facility_level"])["los_days"].transform("median")
    np.testing.assert_allclose(stays.los_peer_ratio, stays.los_days / med, rtol=1e-9)
    for col in [x for x in c.columns if x.endswith("_pct")]:
        base = c[col.removesuffix("_pct")]
        assert c[col].isna().equals(base.isna()), col
        assert c[col].dropna().between(0, 1).all(), col
    assert c.loc[~c.is_inpatient, "los_peer_ratio_pct"].isna().all()


def test_patterns_are_visible(world) -> None:
    ws, _, findings = world
    c = load(ws, "claim")
    f = load(ws, "facility").set_index(["facility_id", "period"])
    # readmissions built into the world: P0000-P0001 unplanned, P0002 planned
    re = c[(c.facility_id == "F1") & c.readmit_31d.fillna(False).astype(bool)]
    assert {"P0000", "P0001"} <= set(re.person_id)
    assert (c[c.readmit_31d.fillna(False).astype(bool)].days_since_prev_stay <= 31).all()
    # templated stays at F2 look alike
    f2 = c[(c.facility_id == "F2") & c.is_inpatient]
    f3 = c[(c.facility_id == "F3") & c.is_inpatient]
    assert f2.max_jaccard.max() > f3.max_jaccard.median()
    # idle bed days
    st = c[c.is_inpatient]
    assert (st.idle_days > 0).any()
    assert (st.max_idle_run <= st.idle_days).all()
    # the PH1 burst: 8 settlements within 7 minutes
    assert (f.xs("PH1").max_settlements_10min >= 8).all()
    # resold boxes reuse trace codes at the pharmacies
    assert f.xs("PH1").trace_duplicates.sum() > 0
    assert f.xs("PH1").trace_coverage.between(0.5, 1).all()
    # findings add up
    assert c.n_findings.sum() == len(findings)
    np.testing.assert_allclose(c.findings_amount.sum(), findings.amount.sum())
    assert f.n_findings.sum() == len(findings)
    # month-over-month growth is relative to the previous month
    jan, feb = f.loc[("F1", "2025-01")], f.loc[("F1", "2025-02")]
    assert pytest.approx(feb.n_settlements / jan.n_settlements - 1) == feb.settlements_growth
    assert np.isnan(jan.settlements_growth)


def test_staff_and_person_features(world) -> None:
    ws, _, _ = world
    st = load(ws, "staff", ids=["D11"])
    assert len(st) == 3 and (st.n_patients > 0).all()
    assert st.findings_per_100_orders.notna().all()
    assert st.restricted_drug_share.between(0, 1).all()
    p = load(ws, "person", months=["2025-03"])
    assert (p.visits_30d <= p.visits_90d).all() and (p.visits_90d <= p.visits_365d).all()
    assert (p.pharmacies_365d <= p.facilities_365d).all()
    # the PH1 burst pair came together on one day every month
    pair = p[p.person_id.isin(["P0100", "P0101"])]
    assert (pair.covisit_max_days >= 1).all()
    # a year of history: March's 90-day window counts January's visits too
    p1 = load(ws, "person", months=["2025-01"]).set_index("person_id").visits_365d
    p3 = p.set_index("person_id").visits_365d
    both = p1.index.intersection(p3.index)
    assert (p3[both] >= p1[both]).all()


def test_absent_optional_tables_give_nulls(tmp_path: Path) -> None:
    ws = make_world(tmp_path / "medicare", months=("2025-01", "2025-02"), optional=False)
    result = build(ws)
    assert result.months_built == ["2025-01", "2025-02"]
    c = load(ws, "claim")
    for col in ("n_lines", "share_drug", "idle_days", "items_per_day", "max_jaccard"):
        assert c[col].isna().all(), col
    assert c.fund_share.notna().all() and c.los_days.notna().any()
    f = load(ws, "facility")
    assert f[["drug_share", "trace_coverage", "trace_duplicates"]].isna().all().all()
    assert f.avg_los.notna().any()
    st = load(ws, "staff")
    assert st.n_orders.isna().all() and st.fund_per_patient.notna().any()
    p = load(ws, "person")
    assert p.possession_ratio_90d.isna().all() and (p.visits_365d > 0).all()


def _mtimes(ws) -> dict[str, int]:
    return {
        str(p.relative_to(ws.path / "features")): p.stat().st_mtime_ns
        for p in (ws.path / "features").glob("*/*.parquet")
    }


def test_incremental_month_does_not_recompute_old_months(tmp_path: Path) -> None:
    ws = make_world(tmp_path / "w", months=("2025-01", "2025-02", "2025-03"))
    first = build(ws)
    assert first.months_built == ["2025-01", "2025-02", "2025-03"]
    before = _mtimes(ws)
    assert build(ws).months_built == []  # nothing changed

    # a new month arrives: canonical tables rewritten with April appended
    make_world(ws.path, months=("2025-01", "2025-02", "2025-03", "2025-04"))
    second = build(ws)
    assert second.months_built == ["2025-04"]
    assert second.months_skipped == ["2025-01", "2025-02", "2025-03"]
    after = _mtimes(ws)
    assert all(after[k] == v for k, v in before.items()), "old months were rewritten"
    assert {k for k in after if k not in before} == {f"{s}/2025-04.parquet" for s in SUBJECTS}

    # and the incremental result equals a full build from scratch
    ref = make_world(tmp_path / "ref", months=("2025-01", "2025-02", "2025-03", "2025-04"))
    build(ref)
    for s in SUBJECTS:
        pd.testing.assert_frame_equal(load(ws, s), load(ref, s))

    # a corrected February claim rebuilds February and the months that look back at it
    s = ws.read_table("settlements")
    i = s.index[s.settle_time.dt.strftime("%Y-%m") == "2025-02"][0]
    s.loc[i, "fund_paid"] = s.loc[i, "fund_paid"] - 1.0
    s.loc[i, "cash_paid"] = s.loc[i, "cash_paid"] + 1.0
    ws.write_tables({"settlements": s}, source="test", replace_all=False)
    third = build(ws)
    assert third.months_built == ["2025-02", "2025-03", "2025-04"]
    assert _mtimes(ws)["claim/2025-01.parquet"] == after["claim/2025-01.parquet"]


def test_months_full_and_removed(tmp_path: Path) -> None:
    ws = make_world(tmp_path / "w", months=("2025-01", "2025-02"))
    build(ws)
    assert build(ws, months=["2025-02"]).months_built == ["2025-02"]
    assert build(ws, full=True).months_built == ["2025-01", "2025-02"]
    with pytest.raises(FeatureError, match="no settlements in month"):
        build(ws, months=["2030-01"])
    make_world(ws.path, months=("2025-02",))
    r = build(ws)
    assert r.months_removed == ["2025-01"] and r.months_built == ["2025-02"]
    assert not (ws.path / "features" / "claim" / "2025-01.parquet").exists()
    assert set(load(ws, "claim").period) == {"2025-02"}


def test_errors_are_clear(tmp_path: Path) -> None:
    ws = make_world(tmp_path / "w", months=("2025-01",))
    with pytest.raises(FeatureError, match="no claim features built"):
        load(ws, "claim")
    with pytest.raises(FeatureError, match="unknown subject"):
        load(ws, "ring")
    with pytest.raises(FeatureError, match="unknown feature backend"):
        build(ws, backend="oracle")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "feat_x.sql").write_text("-- model: feat_y\n-- doc: x\nSELECT 1\n")
    with pytest.raises(FeatureError, match="header"):
        load_models(bad)


def test_backend_plugins_register(tmp_path: Path) -> None:
    class CountingBackend(DuckDBBackend):
        name = "counting"
        runs = 0

        def materialize(self, model):  # type: ignore[no-untyped-def]
            CountingBackend.runs += 1
            super().materialize(model)

    register_backend("counting", CountingBackend)
    assert isinstance(get_backend("counting"), CountingBackend)
    ws = make_world(tmp_path / "w", months=("2025-01",))
    assert build(ws, backend="counting").backend == "counting"
    assert CountingBackend.runs == len(load_models())


def test_cli_build_and_show(tmp_path: Path) -> None:
    from fraudscan.cli import features_cmd

    app = typer.Typer()
    features_cmd.register(app)

    @app.command()
    def noop() -> None:
        """Keeps typer from collapsing the single sub-app."""

    ws = make_world(tmp_path / "w", months=("2025-01", "2025-02"))
    runner = CliRunner()
    r = runner.invoke(app, ["features", "build", str(ws.path)])
    assert r.exit_code == 0, r.output
    assert "built 2 month(s)" in r.output
    r = runner.invoke(app, ["features", "build", str(ws.path), "--months", "2025-02"])
    assert r.exit_code == 0 and "built 1 month(s) (2025-02)" in r.output
    r = runner.invoke(app, ["features", "show", str(ws.path), "--subject", "facility",
                            "--id", "F1"])
    assert r.exit_code == 0, r.output
    assert "avg_los" in r.output and "2025-02" in r.output
    r = runner.invoke(app, ["features", "show", str(ws.path), "--subject", "claim", "--csv",
                            "--limit", "3"])
    assert r.exit_code == 0 and len(r.output.strip().splitlines()) == 4
    r = runner.invoke(app, ["features", "build", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "not a" in r.output and "workspace" in r.output


def test_definitions_dir_can_be_overridden(tmp_path: Path, monkeypatch) -> None:
    import shutil

    for p in (REPO / "features").glob("*.sql"):
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "feat_facility.sql").unlink()
    monkeypatch.setenv("FRAUDSCAN_FEATURES_DIR", str(tmp_path))
    assert "feat_facility" not in {m.name for m in load_models()}


def test_synthetic_world(small_world, tmp_path: Path) -> None:
    """The synthetic city: keys unique, percentiles in range, labelled fraud stands out."""
    import shutil

    from fraudscan.workspace import Workspace

    shutil.copytree(small_world.tables_dir, tmp_path / "ws" / "tables")  # fixture is read-only
    ws = Workspace(tmp_path / "ws")
    result = build(ws)
    assert len(result.months_built) >= 6
    models = {m.subject: m for m in load_models() if m.is_output}
    for s in SUBJECTS:
        df = load(ws, s)
        assert len(df) > 0
        assert not df.duplicated([models[s].key, "period"]).any(), s
        pct = df[[c for c in df.columns if c.endswith("_pct")]]
        assert ((pct >= 0) & (pct <= 1) | pct.isna()).all().all(), s
    c = load(ws, "claim")
    assert c.share_drug.notna().any() and c.max_jaccard.notna().any()
    assert len(c) == len(ws.read_table("settlements"))
