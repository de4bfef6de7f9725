"""Question 6 (opt-in, many minutes): wall time of `make figures` itself (data fetch,
estimate, the sweep of every run, the reports two at a time, the index), from an empty
result cache, again from the warm one, and from an empty cache beside one busy process."""

import multiprocessing
import os
import subprocess
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


def make_figures(profile: str, cache: str, reports: str, names: list[str] | None) -> float:
    """Seconds of `make figures` (or of the reports `names`) at `profile` into `reports`."""
    targets = [f"{reports}/{name}.html" for name in names] if names else ["figures"]
    for html in Path(reports).glob("*.html"):
        html.unlink()
    started = time.perf_counter()
    subprocess.run(["make", *targets, f"PROFILE={profile}", f"PNF_CACHE={cache}", f"REPORTS={reports}"], cwd=ROOT,
                   check=True, capture_output=True)
    return time.perf_counter() - started


def spin() -> None:
    while True:
        pass


def run(profile: str, names: list[str] | None = None) -> list[Table]:
    rows = []
    for cache_state, busy in (("empty", False), ("warm", False), ("empty", True)):
        if cache_state == "empty":
            cache, reports = tempfile.TemporaryDirectory(), tempfile.TemporaryDirectory()
        other = multiprocessing.Process(target=spin, daemon=True) if busy else None
        if other:
            other.start()
        try:
            seconds = make_figures(profile, cache.name, reports.name, names)
        finally:
            if other:
                other.terminate()
        rows.append([cache_state, "one busy process" if busy else "idle", seconds, seconds / 60])
    cold, built = rows[0][2], names or notebooks()
    table = Table(f"6. `make figures` at profile {profile} ({len(built)} reports)",
                  ["cache", "machine", "wall s", "wall min"], rows,
                  [f"{', '.join(built)}, built as `make figures` builds them ({os.cpu_count()} cores). "
                   f"Beside one busy process: {rows[2][2] / cold:.2f}× the idle cold time. Targets at quick: ≤ 12 "
                   "min cold, ≤ 30 s warm, ≤ 1.5× beside one busy process."])
    return [table]
