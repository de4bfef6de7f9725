"""Question 6 (opt-in, many minutes): wall time of the figure notebooks, as
`make figures` executes them, from an empty result cache and again from the warm one."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Table

ROOT = Path(__file__).resolve().parent.parent


def notebooks() -> list[str]:
    """The Makefile's NOTEBOOKS, so this times exactly what `make figures` builds."""
    listed = subprocess.run(["make", "-s", "--no-print-directory", "--eval", "print-notebooks: ; @echo $(NOTEBOOKS)",
                             "print-notebooks"], cwd=ROOT, capture_output=True, text=True, check=True)
    return listed.stdout.split()


def execute_all(names: list[str], profile: str, cache: str, output: str) -> float:
    """Seconds to execute every notebook with papermill at `profile` into `output`."""
    environment = {**os.environ, "PNF_CACHE": cache, "MPLBACKEND": "Agg"}
    papermill = str(Path(sys.executable).parent / "papermill")
    started = time.perf_counter()
    for name in names:
        subprocess.run([papermill, "--no-progress-bar", f"{name}.ipynb", f"{output}/{name}.ipynb", "-p", "profile",
                        profile], cwd=ROOT / "notebooks", env=environment, check=True, capture_output=True)
    return time.perf_counter() - started


def run(profile: str, names: list[str] | None = None) -> list[Table]:
    names = names or notebooks()
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as output:
        cold = execute_all(names, profile, cache, output)
        warm = execute_all(names, profile, cache, output)
    table = Table(f"6. Figure notebooks at profile {profile} ({len(names)} notebooks)",
                  ["cache", "wall s", "wall min"], [["empty", cold, cold / 60], ["warm", warm, warm / 60]],
                  [f"Notebooks: {', '.join(names)}; executed with papermill as `make figures` does "
                   "(without the HTML conversion). Targets at quick: ≤ 15 min cold on 2 cores, ≤ 1 min warm."])
    return [table]
