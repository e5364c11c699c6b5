"""Feature-build benchmark: full build time, peak memory and growth with world size, and the
facility features against the same computation written the obvious pandas way.

    .venv/bin/python benchmarks/bench_features.py [--persons 10000,100000,300000] [--seed 1]
        [--workdir /tmp/fraudscan-bench] [--out docs/performance.md]

Worlds are generated with :func:`fraudscan.synth.generate` under ``--workdir`` (reused when
present, never inside the repository). Every measurement runs in a fresh subprocess so its peak
resident memory is its own. The pandas baseline must produce the same facility features as
fraudscan (asserted), otherwise the ratio would mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fraudscan.workspace import Workspace

SECTION = "## Feature build"

PANDAS_COLUMNS = [
    "n_settlements", "n_persons", "n_stays", "avg_los", "bed_days", "bed_occupancy",
    "total_amount", "fund_paid", "cost_per_visit", "cost_per_visit_growth", "fund_share",
    "self_pay_share", "drug_share", "test_share", "consumable_share", "transfer_rate",
    "readmission_31d_rate", "trace_coverage", "trace_duplicates", "max_settlements_10min",
    "elderly_share", "out_of_area_share", "settlements_growth", "fund_growth",
]
PEERS = ["period", "facility_type", "facility_level", "district"]


def _peak_mb() -> float:
    """Resident peak of this process (VmHWM).

    Not ``ru_maxrss``: Linux carries it over fork and exec, so a job started by the parent
    that generated a world would report the parent's peak instead of its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------
# measurements (each in its own process)
# ---------------------------------------------------------------------------------------------


def job_build(ws_path: str) -> dict:
    """Full DuckDB build of every subject, then the rebuild of the latest month alone."""
    from fraudscan.features import build

    t, c = time.perf_counter(), time.process_time()
    r = build(ws_path, full=True, register_views=False)
    full_s, full_cpu = time.perf_counter() - t, time.process_time() - c
    last = max(r.months_built)
    t, c = time.perf_counter(), time.process_time()
    build(ws_path, months=[last], register_views=False)
    month_s, month_cpu = time.perf_counter() - t, time.process_time() - c
    return {"full_s": full_s, "full_cpu": full_cpu, "month_s": month_s, "month_cpu": month_cpu,
            "months": len(r.months_built), "rows": r.rows, "peak_mb": _peak_mb()}


def job_facility_fraudscan(ws_path: str, out: str) -> dict:
    """Facility subject only (with the staging models it reads), through the engine interface."""
    import duckdb

    from fraudscan.features.build import _inputs, read_rule_findings
    from fraudscan.features.engine import get_backend, load_models, normalize

    t, c = time.perf_counter(), time.process_time()
    ws = Workspace(ws_path)
    models = load_models()
    by_name = {m.name: m for m in models}
    need: set[str] = set()

    def add(n: str) -> None:
        if n not in need:
            need.add(n)
            for d in by_name[n].deps:
                add(d)

    add("feat_facility")
    findings = read_rule_findings(ws)
    path = str(ws.table_path("settlements"))
    months = sorted(r[0] for r in duckdb.sql(
        f"SELECT DISTINCT strftime(settle_time, '%Y-%m') FROM read_parquet('{path}')").fetchall())
    with get_backend("duckdb") as engine:
        engine.prepare(_inputs(ws, months, findings))
        for m in models:
            if m.name in need:
                engine.materialize(m)
        table = normalize(engine.fetch(by_name["feat_facility"], months))
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    table.to_pandas().to_parquet(out)
    return {"seconds": secs, "cpu": cpu, "peak_mb": _peak_mb(), "rows": table.num_rows}


def pandas_facility(ws: Workspace) -> pd.DataFrame:
    """The facility features (PANDAS_COLUMNS and their percentiles) with groupby/merge."""
    s = ws.read_table("settlements")
    fac = ws.read_table("facilities")
    per = ws.read_table("persons", ["person_id", "birth_date"])
    lines = ws.read_table("fee_lines", ["line_id", "settlement_id", "item_code", "amount", "qty"])
    cat = ws.read_table("catalogue", ["item_code", "item_class"])
    scans = ws.read_table("trace_scans", ["scan_id", "line_id", "facility_id", "trace_code",
                                          "scan_time"])

    s["period"] = s.settle_time.dt.strftime("%Y-%m")
    s["inp"] = s.medical_type.isin(["21", "52"])
    los = (s.discharge_time.dt.normalize() - s.admission_time.dt.normalize()).dt.days.clip(lower=1)
    s["los"] = los.where(s.inp)
    s = s.merge(per, on="person_id", how="left")
    age = (s.settle_time.dt.normalize() - pd.to_datetime(s.birth_date)).dt.days / 365.25
    s["elderly"] = np.where(age.isna(), np.nan, (np.floor(age) >= 65).astype(float))
    s["ooa"] = s.out_of_area.fillna(False).astype(float)
    s["fsp"] = s.full_self_pay.fillna(0.0)
    s["transfer"] = s.inp & s.discharge_way.isin(["2", "3"])
    # readmission: previous stay of the person at the facility, by settlement time
    st = s[s.inp].sort_values(["settle_time", "settlement_id"])
    g = st.groupby(["person_id", "facility_id"])
    prev_dis = g.discharge_time.shift().dt.normalize()
    prev_set = g.settle_time.shift().dt.normalize()
    gap = (st.admission_time.dt.normalize() - prev_dis).dt.days
    recent = (st.settle_time.dt.normalize() - prev_set).dt.days <= 365
    planned = st.planned_readmission.fillna(False).astype(bool)
    st_readmit = recent & gap.between(0, 31) & ~planned
    s["readmit"] = st_readmit.reindex(s.index, fill_value=False)

    base = s.groupby(["facility_id", "period"]).agg(
        n_settlements=("settlement_id", "size"), n_persons=("person_id", "nunique"),
        n_stays=("inp", "sum"), avg_los=("los", "mean"), bed_days=("los", "sum"),
        total_amount=("total_amount", "sum"), fund_paid=("fund_paid", "sum"),
        fsp=("fsp", "sum"), n_transfers=("transfer", "sum"), n_readmit=("readmit", "sum"),
        elderly_share=("elderly", "mean"), out_of_area_share=("ooa", "mean"),
    ).reset_index()
    base["bed_days"] = base.bed_days.astype("int64")

    prev = base[["facility_id", "period", "n_settlements", "total_amount", "fund_paid"]].copy()
    p = pd.PeriodIndex(prev.period, freq="M") + 1
    prev["period"] = p.strftime("%Y-%m")
    df = base.merge(prev, on=["facility_id", "period"], how="left", suffixes=("", "_prev"))
    df = df.merge(fac[["facility_id", "facility_type", "level", "district", "beds"]],
                  on="facility_id", how="left")
    df["facility_level"] = df.level.fillna(0).astype("int64")
    days = pd.PeriodIndex(df.period, freq="M").days_in_month
    df["bed_occupancy"] = df.bed_days / (df.beds * days).replace(0, np.nan)
    df["cost_per_visit"] = df.total_amount / df.n_settlements
    df["cost_per_visit_growth"] = df.cost_per_visit / (
        df.total_amount_prev / df.n_settlements_prev).replace(0, np.nan) - 1
    df["fund_share"] = df.fund_paid / df.total_amount.replace(0, np.nan)
    df["self_pay_share"] = df.fsp / df.total_amount.replace(0, np.nan)
    df["transfer_rate"] = df.n_transfers / df.n_stays.replace(0, np.nan)
    df["readmission_31d_rate"] = df.n_readmit / df.n_stays.replace(0, np.nan)
    df["settlements_growth"] = df.n_settlements / df.n_settlements_prev - 1
    df["fund_growth"] = df.fund_paid / df.fund_paid_prev.replace(0, np.nan) - 1

    # fee mix
    ln = lines.merge(cat, on="item_code", how="left").merge(
        s[["settlement_id", "facility_id", "period"]], on="settlement_id")
    ln["drug"] = ln.item_class.isin(["western_drug", "patent_tcm", "herbal_piece"])
    ln["a_drug"] = ln.amount.where(ln.drug, 0.0)
    ln["a_test"] = ln.amount.where(ln.item_class.isin(["lab", "imaging"]), 0.0)
    ln["a_cons"] = ln.amount.where(ln.item_class == "consumable", 0.0)
    mix = ln.groupby(["facility_id", "period"]).agg(
        la=("amount", "sum"), amt_d=("a_drug", "sum"), amt_t=("a_test", "sum"),
        amt_c=("a_cons", "sum"))
    df = df.merge(mix.reset_index(), on=["facility_id", "period"], how="left")
    la = df.la.replace(0, np.nan)
    df["drug_share"] = df.amt_d / la
    df["test_share"] = df.amt_t / la
    df["consumable_share"] = df.amt_c / la
    # trace codes
    dl = ln[ln.drug & (ln.qty > 0) & ln.item_class.notna()]
    dl = dl.assign(scanned=dl.line_id.isin(scans.line_id))
    cov = dl.groupby(["facility_id", "period"]).scanned.mean().rename("trace_coverage")
    df = df.merge(cov.reset_index(), on=["facility_id", "period"], how="left")
    sc = scans.sort_values(["scan_time", "scan_id"])
    prev_scan = sc.groupby("trace_code").scan_time.shift().dt.normalize()
    sc = sc.assign(dup=(sc.scan_time.dt.normalize() - prev_scan).dt.days <= 365,
                   period=sc.scan_time.dt.strftime("%Y-%m"))
    dups = sc.groupby(["facility_id", "period"]).dup.sum().rename("trace_duplicates")
    df = df.merge(dups.reset_index(), on=["facility_id", "period"], how="left")
    has_scans = len(scans) > 0
    df["trace_duplicates"] = df.trace_duplicates.fillna(0).astype("int64") if has_scans \
        else np.nan
    if not has_scans or len(lines) == 0:
        df["trace_coverage"] = np.nan
    # bursts: most settlements in a 10-minute window, per facility and month of the window end
    ep = s[["facility_id", "period", "settle_time"]].copy()
    ep["t"] = ep.settle_time.astype("int64") // 10**9 if ep.settle_time.dt.unit == "s" else \
        ep.settle_time.astype("datetime64[s]").astype("int64")
    ep = ep.sort_values(["facility_id", "t"])
    counts = np.empty(len(ep), dtype=np.int64)
    start = 0
    for _, grp in ep.groupby("facility_id", sort=False).t:
        v = grp.to_numpy()
        counts[start:start + len(v)] = np.arange(len(v)) - np.searchsorted(v, v - 599) + 1
        start += len(v)
    # ties: RANGE frames count every row with the same time, so take the last of each tie
    ep["n"] = counts
    ep["n"] = ep.groupby(["facility_id", "t"]).n.transform("max")
    burst = ep.groupby(["facility_id", "period"]).n.max().rename("max_settlements_10min")
    df = df.merge(burst.reset_index(), on=["facility_id", "period"], how="left")
    # percentiles within peers (percent_rank: (rank - 1) / (n - 1), nulls apart)
    out = df[["facility_id", "period", "facility_type", "facility_level", "district",
              *PANDAS_COLUMNS]].copy()
    peers = out[PEERS].astype(str)
    for c in PANDAS_COLUMNS:
        if c in ("n_settlements", "n_persons", "n_stays", "bed_days", "total_amount",
                 "fund_paid", "trace_duplicates", "max_settlements_10min"):
            continue
        g = out[c].groupby([peers[k] for k in PEERS])
        r = g.rank(method="min")
        n = g.transform("count")
        out[c + "_pct"] = ((r - 1) / (n - 1).replace(0, np.nan)).where(n > 1, 0.0).where(
            out[c].notna())
    return out.sort_values(["period", "facility_id"]).reset_index(drop=True)


def job_facility_pandas(ws_path: str, out: str) -> dict:
    t, c = time.perf_counter(), time.process_time()
    df = pandas_facility(Workspace(ws_path))
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    df.to_parquet(out)
    return {"seconds": secs, "cpu": cpu, "peak_mb": _peak_mb(), "rows": len(df)}


def _run(job: str, *args: str) -> dict:
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks'); import bench_features as b; "
        f"print('RESULT' + json.dumps(b.{job}(*sys.argv[1:])))"
    )
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       check=False)
    for line in p.stdout.splitlines():
        if "RESULT" in line:  # DuckDB progress bars may share the line
            return json.loads(line.split("RESULT", 1)[1])
    raise RuntimeError(f"{job} failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")


def compare(fs_path: str, pd_path: str) -> int:
    """Assert the pandas facility features equal fraudscan's; returns the columns compared."""
    a = pd.read_parquet(fs_path).sort_values(["period", "facility_id"]).reset_index(drop=True)
    b = pd.read_parquet(pd_path)
    cols = [c for c in b.columns if c in a.columns]
    assert len(a) == len(b), (len(a), len(b))
    for c in cols:
        x, y = a[c], b[c]
        assert x.isna().equals(y.isna()), f"{c}: nulls differ"
        m = x.notna()
        if pd.api.types.is_numeric_dtype(x):
            np.testing.assert_allclose(x[m].astype(float), y[m].astype(float), rtol=1e-9,
                                       err_msg=c)
        else:
            assert (x[m].astype(str) == y[m].astype(str)).all(), c
    return len(cols)


# ---------------------------------------------------------------------------------------------


def world(workdir: Path, persons: int, seed: int) -> tuple[Workspace, float]:
    from fraudscan.synth import generate

    path = workdir / f"w{persons}-s{seed}"
    if Workspace(path).exists():
        return Workspace(path), float("nan")
    t = time.perf_counter()
    ws = generate(path, persons=persons, seed=seed)
    return ws, time.perf_counter() - t


def write_section(path: Path, text: str) -> None:
    """Replace (or add) the '## Feature build' section of docs/performance.md, nothing else."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    block = text.rstrip() + "\n\n"
    new = pattern.sub(lambda _: block, old) if pattern.search(old) else (
        old.rstrip() + "\n\n" + block)
    path.write_text(new.rstrip() + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", default="10000,100000,300000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", default="/tmp/fraudscan-bench")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in [int(x) for x in args.persons.split(",")]:
        ws, gen_s = world(workdir, n, args.seed)
        counts = ws.row_counts()
        load0 = os.getloadavg()[0]
        b = _run("job_build", str(ws.path))
        fs_out, pd_out = str(workdir / f"fac-fs-{n}.parquet"), str(workdir / f"fac-pd-{n}.parquet")
        f = _run("job_facility_fraudscan", str(ws.path), fs_out)
        p = _run("job_facility_pandas", str(ws.path), pd_out)
        ncols = compare(fs_out, pd_out)
        row = {"persons": n, "settlements": counts["settlements"],
               "fee_lines": counts.get("fee_lines", 0), "generate_s": gen_s, **b,
               "facility_fs_s": f["seconds"], "facility_pd_s": p["seconds"],
               "facility_fs_cpu": f["cpu"], "facility_pd_cpu": p["cpu"],
               "load": (load0, os.getloadavg()[0]),
               "facility_pd_peak_mb": p["peak_mb"], "facility_fs_peak_mb": f["peak_mb"],
               "compared_columns": ncols}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        write_section(Path(args.out), render(rows))


def render(rows: list[dict]) -> str:
    cpu = os.cpu_count()
    lines = [
        SECTION,
        "",
        f"`benchmarks/bench_features.py` on {platform.machine()}, {cpu} cores, Python "
        f"{platform.python_version()}, DuckDB backend, synthetic worlds "
        "(`fraudscan.synth.generate`, 12 months). *Full build*: every subject and month from",
        "scratch (`features build --full`); *one month*: rebuilding the latest month alone (what",
        "an incremental build does when a month arrives; its staging reads the 12 months before",
        "it, its output models compute that month only). Peak",
        "memory is the resident peak of the process that ran the build. The facility features",
        "are also computed the obvious pandas way (read Parquet, groupby/merge; same columns and",
        "peer percentiles) and asserted equal to fraudscan's before the ratio is taken.",
        "",
        "Times are wall / CPU seconds (CPU: user + system of the measuring process, all its",
        "threads); the load column is the 1-minute load average before and after the row.",
        "",
        "| persons | settlements | fee lines | full build s | one month s | peak MB | "
        "facility: fraudscan s | facility: pandas s | ratio wall / CPU | pandas peak MB | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['persons']:,} | {r['settlements']:,} | {r['fee_lines']:,} | "
            f"{r['full_s']:.1f} / {r['full_cpu']:.1f} | {r['month_s']:.1f} / "
            f"{r['month_cpu']:.1f} | {r['peak_mb']:,.0f} | "
            f"{r['facility_fs_s']:.1f} / {r['facility_fs_cpu']:.1f} | "
            f"{r['facility_pd_s']:.1f} / {r['facility_pd_cpu']:.1f} | "
            f"{r['facility_pd_s'] / r['facility_fs_s']:.1f}× / "
            f"{r['facility_pd_cpu'] / r['facility_fs_cpu']:.1f}× | "
            f"{r['facility_pd_peak_mb']:,.0f} | {r['load'][0]:.1f}–{r['load'][1]:.1f} |"
        )
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        k = b["persons"] / a["persons"]
        lines += ["", f"From {a['persons']:,} to {b['persons']:,} persons ({k:.0f}× data) the "
                  f"full build grows {b['full_s'] / a['full_s']:.1f}×."]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
