"""Rule-engine benchmarks: single-claim latency and batch screening throughput.

    .venv/bin/python benchmarks/bench_rules.py [--persons 5000] [--checks 10000]
        [--tiles 1,2,4] [--threads 2] [--workspace W] [--json out.json]
        [--repeat 2] [--batch-only] [--profile]

* single claim: p50 / p99 of :meth:`RuleEngine.check_claim` (in process, warm state, all rules)
  on a 30-line outpatient claim, over ``--checks`` calls; plus the same through the full
  3101 request path (JSON-shaped dict → validation → response);
* batch: :func:`fraudscan.rules.screen_connection` on the synthetic world tiled ``k`` times
  (ids suffixed, so cross-claim rules see k disjoint populations) in memory, lines per second
  by size; and once on the workspace's own Parquet files (the path ``fraudscan rules screen``
  takes: the same screen plus reading and decoding the files).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from fraudscan.rules import RuleEngine, load_rules, screen_connection
from fraudscan.rules.claim import claim_to_request
from fraudscan.rules.context import Claim, Line
from fraudscan.synth import generate
from fraudscan.workspace import Workspace, attach_views

ID_COLS = {
    "settlements": ("settlement_id", "visit_id", "person_id"),
    "fee_lines": ("line_id", "settlement_id", "prescription_no"),
    "diagnoses": ("settlement_id",),
    "procedures": ("settlement_id",),
    "trace_scans": ("scan_id", "line_id", "trace_code"),
    "persons": ("person_id", "family_id"),
}


def tiled(con: duckdb.DuckDBPyConnection, ws: Workspace, k: int) -> None:
    """Temp tables holding ``ws`` repeated ``k`` times with ids suffixed by the copy number."""
    attach_views(con, ws)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _tile AS SELECT range AS t FROM range({k})")
    for name, cols in ID_COLS.items():
        src = con.execute(f"SELECT * FROM {name} LIMIT 0").df().columns
        sel = ", ".join(f"CASE WHEN {c} IS NULL THEN NULL ELSE {c} || '~' || t END AS {c}"
                        if c in cols else c for c in src)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_x AS SELECT {sel} FROM {name}, _tile")
    for name in ID_COLS:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}_x")


def bench_batch(ws: Workspace, tiles: list[int], threads: int, repeat: int = 2,
                profile: bool = False) -> list[dict]:
    """Best of ``repeat`` screens (after a warm-up) per tiling, with the CPU time of that run
    and the load average before and after: the machine is shared, so wall time alone says
    little about the code."""
    rules = load_rules()
    out = []
    for k in tiles:
        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        tiled(con, ws, k)
        screen_connection(con, rules)  # warm-up (file cache, plans)
        best, cpu = None, 0.0
        load0 = os.getloadavg()[0]
        runs = []
        for _ in range(repeat):
            c0 = time.process_time()
            res = screen_connection(con, rules)
            c1 = time.process_time() - c0
            runs.append((round(res.seconds, 2), round(c1, 2)))
            if best is None or res.seconds < best.seconds:
                best, cpu = res, c1
        assert best is not None
        out.append({"tiles": k, "fee_lines": best.n_lines, "settlements": best.n_settlements,
                     "findings": best.n_findings, "seconds": round(best.seconds, 3),
                     "lines_per_s": round(best.lines_per_second),
                     "cpu_seconds": round(cpu, 3),
                     "runs_wall_cpu": runs,
                     "load_avg_1m_before": round(load0, 2),
                     "load_avg_1m": round(os.getloadavg()[0], 2),
                     "lines_per_s_if_2_cores_free": round(best.n_lines / (cpu / threads))})
        print(out[-1], flush=True)
        if profile:
            steps = sorted(best.steps.items(), key=lambda kv: -kv[1])
            rules_t = best.per_rule.sort_values("seconds", ascending=False).head(12)
            print("  steps (s):", ", ".join(f"{n} {t:.3f}" for n, t in steps), flush=True)
            print("  rules (s):", ", ".join(f"{r.rule_id}v{r.rule_version} {r.seconds:.3f}"
                                           for r in rules_t.itertuples()), flush=True)
            print("  timeline (connection start-end s, statements over 2 % of the run):")
            for name, conn, t1, t2 in best.timeline:
                if t2 - t1 > 0.02 * best.seconds:
                    print(f"    c{conn} {t1:6.3f}-{t2:6.3f} {'    ' * conn}{name}", flush=True)
        con.close()
    return out


def bench_files(ws: Workspace, threads: int, repeat: int = 2) -> dict:
    """Best of ``repeat`` screens (after a warm-up) reading the workspace's Parquet files."""
    rules = load_rules()
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    attach_views(con, ws)
    screen_connection(con, rules)
    runs = []
    best = None
    for _ in range(repeat):
        c0 = time.process_time()
        r = screen_connection(con, rules)
        runs.append((round(r.seconds, 2), round(time.process_time() - c0, 2)))
        if best is None or r.seconds < best.seconds:
            best = r
    con.close()
    assert best is not None
    out = {"source": "parquet files", "fee_lines": best.n_lines, "seconds": round(best.seconds, 3),
           "lines_per_s": round(best.lines_per_second), "runs_wall_cpu": runs,
           "load_avg_1m": round(os.getloadavg()[0], 2)}
    print(out, flush=True)
    return out


def thirty_line_claim(ws: Workspace) -> Claim:
    """A realistic 30-line outpatient claim built from catalogue items of the world."""
    cat = ws.read_table("catalogue")
    plain = cat[cat["sex_limit"].isna() & cat["age_min_days"].isna() & cat["age_max_days"].isna()
                & cat["min_facility_level"].isna() & cat["care_modes"].isna()
                & cat["insurance_types"].isna() & cat["indications"].isna()
                & cat["departments"].isna() & cat["valid_to"].isna()]
    items = plain.sample(30, random_state=1)
    fac = ws.read_table("facilities")
    f = fac[fac["level"] == 3].iloc[0]
    p = ws.read_table("persons").iloc[0]
    lines = [Line(f"L{i:02d}", date(2025, 6, 10), r.item_code, 1.0, float(r.unit_price),
                  float(r.unit_price), None, None, "A03", "RX1", False, False,
                  (f"9{i:019d}",) if r.trace_required else ())
             for i, r in enumerate(items.itertuples())]
    from datetime import datetime
    return Claim("BENCH1", str(p.person_id), str(f.facility_id), "11", str(p.insurance_type),
                 datetime(2025, 6, 10, 9), datetime(2025, 6, 10, 10), str(p.sex),
                 pd.Timestamp(p.birth_date).date(), int(f.level), False, "I10", "A03", None,
                 False, round(sum(ln.amount for ln in lines), 2), ("I10", "E11.9"), (), lines)


def bench_single(ws: Workspace, n: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        eng = RuleEngine.from_workspace(ws, state_path=Path(d) / "state.sqlite")
        # warm state: replay a slice of history so person / trace / usage indexes are populated
        from itertools import islice

        from fraudscan.rules import iter_workspace_claims
        history = list(islice(iter_workspace_claims(ws), 5000))
        t0 = time.perf_counter()
        for c in history:
            eng.settle(c)
        settle_s = (time.perf_counter() - t0) / len(history)
        claim = thirty_line_claim(ws)
        req = claim_to_request(claim)
        for _ in range(500):
            eng.check_claim(claim)
        lat, cpu = [], []
        for _ in range(n):
            t, tc = time.perf_counter_ns(), time.thread_time_ns()
            eng.check_claim(claim)
            cpu.append(time.thread_time_ns() - tc)
            lat.append(time.perf_counter_ns() - t)
        lat_req = []
        for _ in range(max(n // 5, 1000)):
            t = time.perf_counter_ns()
            eng.check(req)
            lat_req.append(time.perf_counter_ns() - t)
        eng.close()

    def q(xs: list[int], p: float) -> float:
        return round(statistics.quantiles(xs, n=1000)[int(p * 1000) - 1] / 1e3, 1)

    out = {"checks": n, "lines": len(claim.lines), "rules": len(eng.rules.rules),
           "p50_us": q(lat, 0.5), "p99_us": q(lat, 0.99), "p999_us": q(lat, 0.999),
           "cpu_p50_us": q(cpu, 0.5), "cpu_p99_us": q(cpu, 0.99),
           "state_claims": len(history),
           "request_p50_us": q(lat_req, 0.5), "request_p99_us": q(lat_req, 0.99),
           "settle_ms": round(settle_s * 1e3, 2)}
    print(out, flush=True)
    return out


def bench_single_growth(ws: Workspace) -> list[dict]:
    """Latency against claim size (lines), warm, no state."""
    base = thirty_line_claim(ws)
    eng = RuleEngine(ws.read_table("catalogue"), facilities=ws.read_table("facilities"))
    rows = []
    for n in (5, 10, 30, 60, 120):
        lines = [Line(f"L{i:03d}", ln.service_date, ln.item_code, 1.0, ln.unit_price,
                      ln.amount, None, None, "A03", f"RX{i // 5}", False, False, ln.trace_codes)
                 for i, ln in enumerate((base.lines * 5)[:n])]
        c = Claim(**{**{f: getattr(base, f) for f in base.__slots__}, "lines": lines})
        for _ in range(300):
            eng.check_claim(c)
        lat = []
        for _ in range(3000):
            t = time.perf_counter_ns()
            eng.check_claim(c)
            lat.append(time.perf_counter_ns() - t)
        qs = statistics.quantiles(lat, n=100)
        rows.append({"lines": n, "p50_us": round(qs[49] / 1e3, 1),
                     "p99_us": round(qs[98] / 1e3, 1)})
    print(rows, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--checks", type=int, default=10_000)
    ap.add_argument("--tiles", default="1,2,4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workspace", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="Write the results as JSON.")
    ap.add_argument("--repeat", type=int, default=2,
                    help="Batch runs per tiling after the warm-up (the best is kept).")
    ap.add_argument("--batch-only", action="store_true", help="Skip the single-claim part.")
    ap.add_argument("--profile", action="store_true",
                    help="Print the set-up step and per-rule times of the best batch run.")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        ws = Workspace(a.workspace) if a.workspace and Workspace(a.workspace).exists() else \
            generate(a.workspace or Path(d) / "ws", persons=a.persons, seed=a.seed)
        res: dict = {"machine": f"{platform.node()} "
                                f"{platform.processor() or platform.machine()}, "
                                f"{os.cpu_count()} cores", "date": date.today().isoformat()}
        if not a.batch_only:
            res["single"] = bench_single(ws, a.checks)
            res["single_growth"] = bench_single_growth(ws)
        res["batch"] = bench_batch(ws, [int(x) for x in a.tiles.split(",")], a.threads,
                                   a.repeat, a.profile)
        res["batch_files"] = bench_files(ws, a.threads, a.repeat)
    if a.json:
        a.json.write_text(json.dumps(res, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
