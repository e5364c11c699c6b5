"""Shared by the benchmark scripts: cached synthetic worlds and peak-memory readings."""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

from fraudscan.workspace import Workspace

DEFAULT_ROOT = Path(os.environ.get("FRAUDSCAN_BENCH_DIR", "/tmp/fraudscan-bench"))


def world(persons: int, seed: int, root: Path = DEFAULT_ROOT) -> Workspace:
    """The workspace for (persons, seed) under ``root``, generated on first use."""
    from fraudscan.synth import generate

    path = root / f"w{persons}-s{seed}"
    ws = Workspace(path)
    if not ws.exists():
        t0 = time.perf_counter()
        generate(path, persons=persons, seed=seed)
        print(f"generated {persons:,} persons (seed {seed}) in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
    return ws


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
