"""The main job: build a synthetic city and run every fraudscan step on it, end to end.

``fraudscan demo`` (the README's first command) calls :func:`run_demo`. Each step is the same
public function a user would call by hand (``fraudscan synth``, ``validate``, ``rules screen``,
``features build``, ``leads``, ``graph build``, ``train``, ``grade``, ``suspects``); the demo only
strings them together, times them and reports.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudscan.errors import FraudscanError
from fraudscan.workspace import Workspace

STEPS = (
    "generate",
    "validate",
    "rules",
    "features",
    "leads",
    "graph",
    "train",
    "grade",
    "suspects",
)


@dataclass
class DemoResult:
    """What the main job produced: the workspace, each step's output and its seconds."""

    workspace: Workspace
    timings: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


def run_demo(
    out: str | os.PathLike[str] = "workspaces/demo",
    *,
    persons: int = 20_000,
    seed: int = 2026,
    top: int = 10,
    tracking_uri: str | None = None,
    n_jobs: int = 1,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Generate a synthetic world into ``out`` and run the whole pipeline on it.

    Models are logged to MLflow (``tracking_uri``; default the SQLite store under ``mlflow/``)
    and registered with the ``champion`` alias that ``fraudscan serve`` loads.
    """
    from fraudscan import features, graph, leads, rules
    from fraudscan.grading import grade
    from fraudscan.models import train_all
    from fraudscan.suspects import suspects
    from fraudscan.synth import generate
    from fraudscan.validation import validate_workspace

    ws = Workspace(Path(out))
    result = DemoResult(workspace=ws)

    def step(name: str, what: str, fn: Callable[[], Any]) -> Any:
        log(f"→ {what} …")
        t0 = time.perf_counter()
        value = fn()
        result.timings[name] = time.perf_counter() - t0
        result.outputs[name] = value
        log(f"  done in {result.timings[name]:.1f} s")
        return value

    step("generate", f"generating a synthetic city of {persons:,} persons (seed {seed})",
         lambda: generate(ws.path, persons=persons, seed=seed))
    report = step("validate", "validating", lambda: validate_workspace(ws))
    if not report.ok:
        raise FraudscanError(
            "the generated workspace failed validation: "
            + "; ".join(str(p) for p in report.problems[:5])
        )
    step("rules", "screening every claim with the rule base", lambda: rules.screen(ws))
    step("features", "building claim, facility, staff and person features",
         lambda: features.build(ws))
    step("leads", "running the screening models", lambda: leads.run(ws))
    step("graph", "finding collusion rings", lambda: graph.build(ws))
    step("train", "training the 3+1 models (tracked in MLflow)",
         lambda: train_all(ws, tracking_uri=tracking_uri, n_jobs=n_jobs, seed=seed,
                           n_splits=3))
    step("grade", "grading facilities", lambda: grade(ws))
    step("suspects", "ranking suspects",
         lambda: {k: suspects(ws, k, top=top) for k in ("facility", "staff", "person", "ring")})
    result.timings["total"] = sum(result.timings.values())
    return result
