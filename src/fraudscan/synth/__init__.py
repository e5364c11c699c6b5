"""``fraudscan synth``: a synthetic city with clean activity and labelled, injected fraud.

Usage::

    from fraudscan.synth import generate, SynthConfig
    ws = generate("work/city", persons=10_000, seed=7)

The same ``persons``, ``seed`` and config always give byte-identical Parquet tables. See
docs/synthetic-world.md for the tables, id formats and scenarios.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from fraudscan import schema
from fraudscan.synth.activity import (
    Ctx,
    chronic_skeletons,
    clean_settlements,
    count_limits,
    dialysis_skeletons,
    inpatient_skeletons,
    make_lines,
    outpatient_skeletons,
    pharmacy_skeletons,
)
from fraudscan.synth.catalogue import build_catalogue
from fraudscan.synth.config import SCENARIOS, SynthConfig
from fraudscan.synth.finalize import finalize
from fraudscan.synth.scenarios import REGISTRY, decoys, heavy_user_decoys
from fraudscan.synth.world import World, build_facilities, build_persons, build_staff
from fraudscan.workspace import Workspace

__all__ = ["SCENARIOS", "STAGES", "SynthConfig", "build_tables", "generate"]

STAGES = 8
"""Number of progress steps :func:`generate` reports (for a progress bar's total)."""

Progress = Callable[..., None]


def _noop(n: float = 1, desc: str | None = None) -> None:
    """Progress callback that does nothing."""


def build_tables(persons: int = 10_000, seed: int = 0, config: SynthConfig | None = None,
                 progress: Progress | None = None) -> dict[str, pd.DataFrame]:
    """Generate the canonical tables in memory (what :func:`generate` writes).

    String columns are kept as NumPy object arrays while generating: pandas 3's Arrow-backed
    ``str`` dtype costs several times more on the many small frames built here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        with pd.option_context("future.infer_string", False):
            return _build_tables(persons, seed, config, progress)


def _build_tables(persons: int, seed: int, config: SynthConfig | None,
                  progress: Progress | None) -> dict[str, pd.DataFrame]:
    cfg = config or SynthConfig()
    cfg.validate()
    if persons < 100:
        raise ValueError("persons must be at least 100")
    step = progress or _noop
    world_rng = np.random.default_rng([seed, 0])
    fac = build_facilities(persons, world_rng)
    staff, fac_depts = build_staff(fac, cfg, world_rng)
    people = build_persons(persons, cfg, world_rng)
    cat = build_catalogue(cfg.start, cfg.switch_date)
    world = World(facilities=fac, staff=staff, persons=people, fac_depts=fac_depts)
    ctx = Ctx(cfg=cfg, world=world, cat=cat, rng=np.random.default_rng([seed, 1]))
    retail = np.flatnonzero(ctx.f_type == "retail_pharmacy")
    ctx.decoy_pharmacy = int(retail[0])
    ctx.f_decoy[ctx.decoy_pharmacy] = True
    step(1, "world")

    parts = [outpatient_skeletons(ctx), pharmacy_skeletons(ctx), chronic_skeletons(ctx),
             dialysis_skeletons(ctx), inpatient_skeletons(ctx)]
    s = clean_settlements(ctx, pd.concat(parts, ignore_index=True))
    del parts
    s["staff"] = ctx.assign_staff(s["fac"].to_numpy(), s["dept"].to_numpy(),
                                  s["adm"].to_numpy(), s["dis"].to_numpy())
    step(1, "settlements")
    lines = make_lines(ctx, s)
    lines = count_limits(ctx, lines, s)
    s = s[s["sid"].isin(lines["sid"])]
    ctx.settlements, ctx.lines = [s], [lines]
    # scenarios draw their actors among persons without stays or chronic refills, so that
    # injected activity cannot make a clean claim look like a violation (R33, R37)
    busy = s["med_type"].isin(("21", "52")) | (s["fix1"] >= 0) | (s["kind"] == "dialysis")
    ctx.p_busy[s.loc[busy, "person"].to_numpy()] = True
    step(1, "fee lines")

    decoys(ctx)
    heavy_user_decoys(ctx, s)
    for i, name in enumerate(SCENARIOS):
        scale = cfg.scale(name)
        if scale > 0:
            REGISTRY[name](ctx, scale)
        if i % 6 == 5:
            step(1, f"scenario {name}")
    step(1, "scenarios")
    tables = finalize(ctx)
    step(1, "tables")
    # rule-level violations (R01-R43, owned by the rules engineer) scale with intensity too
    rv_cfg = dataclasses.replace(cfg, rule_violation_rate=cfg.rule_violation_rate
                                 * max(0.0, cfg.intensity))
    if rv_cfg.rule_violation_rate > 0 and importlib.util.find_spec(
            "fraudscan.synth.rule_violations") is not None:
        mod = importlib.import_module("fraudscan.synth.rule_violations")
        tables = mod.inject(tables, np.random.default_rng([seed, 99]), rv_cfg)
    return tables


def to_arrow_fast(df: pd.DataFrame, table: schema.Table) -> pa.Table:
    """Cast a generated frame to the canonical Arrow schema without per-value Python work.

    Equivalent to :func:`fraudscan.workspace.to_arrow` for the frames built here, but strings
    go to Arrow straight from their arrays, which keeps the peak memory of large worlds low.
    """
    unknown = [c for c in df.columns if c not in table.column_names]
    if unknown:
        raise ValueError(f"{table.name}: unknown columns {unknown}")
    n = len(df)
    arrays = []
    for col in table.columns:
        typ = col.arrow_type()
        if col.name not in df.columns:
            arrays.append(pa.nulls(n, type=typ))
            continue
        s = df[col.name]
        if col.dtype == "date":
            values = pd.to_datetime(s).to_numpy().astype("datetime64[D]")
        elif col.dtype == "timestamp":
            values = pd.to_datetime(s).to_numpy().astype("datetime64[s]")
        elif col.dtype == "string":
            values = s.to_numpy(dtype=object)
        else:
            values = s
        arrays.append(pa.array(values, type=typ, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=table.arrow_schema())


def generate(out: str | Path, persons: int = 10_000, seed: int = 0,
             config: SynthConfig | None = None, progress: Progress | None = None) -> Workspace:
    """Generate a synthetic city into workspace ``out`` and return the workspace.

    ``progress`` (optional) is called as ``progress(n, desc)`` :data:`STAGES` times.
    """
    cfg = config or SynthConfig()
    frames = build_tables(persons, seed, cfg, progress)
    tables: dict[str, pa.Table] = {}
    for name in list(frames):
        tables[name] = to_arrow_fast(frames.pop(name), schema.table(name))
    ws = Workspace(out)
    ws.write_tables(tables, source="synthetic", extra_meta={
        "synth": {"persons": persons, "seed": seed, "months": cfg.months,
                  "start": cfg.start.isoformat(), "intensity": cfg.intensity,
                  "scenario_intensity": dict(sorted(cfg.scenario_intensity.items())),
                  "rule_violation_rate": cfg.rule_violation_rate}})
    (progress or _noop)(1, "written")
    return ws
