"""Question 6 (opt-in, many minutes): wall time of `make figures` itself (data fetch,
estimate, the sweep of every run, the reports two at a time, the index), from an empty
result cache, again from the warm one, and from an empty cache beside one busy process;
and, for reference, the same ratio for the training alone: two single-thread runs side by
side, as the pool trains, idle and beside the busy process."""

import multiprocessing
import os
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import torch

from benchmarks.common import Table
from pnf.runs.cache import compute
from pnf.tasks import grid

ROOT = Path(__file__).resolve().parent.parent


def notebooks() -> list[str]:
    """The Makefile's NOTEBOOKS, so this times exactly what `make figures` builds."""
    listed = subprocess.run(["make", "-s", "--no-print-directory", "--eval", "print-notebooks: ; @echo $(NOTEBOOKS)",
                             "print-notebooks"], cwd=ROOT, capture_output=True, text=True, check=True)
    return listed.stdout.split()


def make_figures(profile: str, cache: str, reports: str, names: list[str] | None) -> tuple[float, float]:
    """Seconds of `make figures` (or of the reports `names`) at `profile` into `reports`, in
    its two stages: `make runs` (data check, estimate, the sweep of every run), then the
    reports and the index (`-o runs`: the same targets without remaking `runs`)."""
    targets = [f"{reports}/{name}.html" for name in names] if names else ["figures"]
    for html in Path(reports).glob("*.html"):
        html.unlink()
    seconds = []
    for stage in (["runs"], [*targets, "-o", "runs"]):
        started = time.perf_counter()
        subprocess.run(["make", *stage, f"PROFILE={profile}", f"PNF_CACHE={cache}", f"REPORTS={reports}"], cwd=ROOT,
                       check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return seconds[0], seconds[1]


def spin() -> None:
    while True:
        pass


@contextmanager
def beside_busy_process(busy: bool):
    """Run the body beside a process that spins on one core, if `busy`."""
    other = multiprocessing.Process(target=spin, daemon=True) if busy else None
    if other:
        other.start()
    try:
        yield
    finally:
        if other:
            other.terminate()


def one_run(profile: str) -> float:
    """Seconds to train and evaluate the first image run of `profile`, uncached, on one
    torch thread (as a pool worker does)."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    compute(grid(profile, ["image"])[0], progress=False)
    return time.perf_counter() - started


def side_by_side(profile: str, busy: bool) -> float:
    """Wall seconds of two `one_run`s in two processes at once, beside a spinning process if `busy`."""
    with beside_busy_process(busy), ProcessPoolExecutor(2) as pool:
        started = time.perf_counter()
        list(pool.map(one_run, [profile, profile]))
        return time.perf_counter() - started


def side_by_side_ratio(profile: str, repeats: int = 2) -> float:
    """Busy / idle wall time of `side_by_side`, interleaved `repeats` times (medians): a fair
    scheduler gives two workers beside a third busy process on two cores 2/3 of a core each
    (1.5×), time-slicing costs them a little more."""
    times = {False: [], True: []}
    for _ in range(repeats):
        for busy in (False, True):
            times[busy].append(side_by_side(profile, busy))
    return statistics.median(times[True]) / statistics.median(times[False])


def run(profile: str, names: list[str] | None = None) -> list[Table]:
    rows = []
    for cache_state, busy in (("empty", False), ("warm", False), ("empty", True)):
        if cache_state == "empty":
            cache, reports = tempfile.TemporaryDirectory(), tempfile.TemporaryDirectory()
        with beside_busy_process(busy):
            runs, rest = make_figures(profile, cache.name, reports.name, names)
        rows.append([cache_state, "one busy process" if busy else "idle", runs + rest, (runs + rest) / 60, runs, rest])
    (idle, _, busy), built, training = rows, names or notebooks(), side_by_side_ratio(profile)
    table = Table(f"6. `make figures` at profile {profile} ({len(built)} reports)",
                  ["cache", "machine", "wall s", "wall min", "runs s", "reports s"], rows,
                  [f"{', '.join(built)}, built as `make figures` builds them ({os.cpu_count()} cores), timed in "
                   "two stages: `make runs` (data check, estimate, sweep), then the reports and the index. Beside "
                   f"one busy process: {busy[2] / idle[2]:.2f}× the idle cold time (runs {busy[4] / idle[4]:.2f}×, "
                   f"reports {busy[5] / idle[5]:.2f}×). Targets at quick: ≤ 12 min cold, ≤ 30 s warm, ≤ 1.5× "
                   "beside one busy process.",
                   f"For reference, the training alone (most of a cold build): two of {profile}'s image runs "
                   f"trained side by side in two single-thread processes, as the pool trains, took {training:.2f}× "
                   "as long beside the busy process as idle (medians of two, interleaved). Fair sharing of two "
                   "cores among three busy threads gives each 2/3 of a core, 1.5×; the build's serial parts (data "
                   "check, the estimate's calibration) run at 1.0×."])
    return [table]
