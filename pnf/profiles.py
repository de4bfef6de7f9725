"""Profiles: the paper's scale and the reduced scales, by name.

Each task (`pnf.tasks`), the curvature analysis and the SLURM executor keep their own
section of every profile beside their code, derived from the paper's in one visible
place. `paper` is the paper's setting; `quick` fits 2 CPU cores in minutes; `tiny`
only checks that the notebooks run (tests).
"""

PROFILES = {
    "paper": "the paper's scale (a GPU or a cluster)",
    "quick": "2 CPU cores, minutes: the paper's image size and batch, fewer epochs",
    "cpu": "every Fig. 1 claim testable on 2 CPU cores in about 3 hours (pool executor)",
    "tiny": "tests only: seconds",
}


def check_profile(name: str) -> str:
    """`name` if it is a profile, else a ValueError listing them."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; one of {', '.join(PROFILES)}")
    return name
