"""Shared by the benchmark scripts: cached synthetic worlds and peak-memory readings."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from fraudscan.workspace import Workspace

DEFAULT_ROOT = Path(os.environ.get("FRAUDSCAN_BENCH_DIR", "/tmp/fraudscan-bench"))


def world(persons: int, seed: int, root: Path = DEFAULT_ROOT) -> Workspace:
    """The workspace for (persons, seed) under ``root``, generated on first use.

    The world lives at ``root/w{persons}-s{seed}``; an existing ``tables/`` folder there (e.g. a
    copy of another benchmark's world) is used as is. Generation runs in a child process: Linux
    keeps a process's peak RSS across fork and exec, so generating in the benchmark's own
    process would leak the generator's peak into every measurement taken in its children.
    """
    path = root / f"w{persons}-s{seed}"
    ws = Workspace(path)
    if not ws.exists():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c",
                        "import sys; from fraudscan.synth import generate; "
                        "generate(sys.argv[1], persons=int(sys.argv[2]), seed=int(sys.argv[3]))",
                        str(path), str(persons), str(seed)], check=True)
        print(f"generated {persons:,} persons (seed {seed}) in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
    return ws


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
