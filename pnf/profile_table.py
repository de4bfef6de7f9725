"""`python -m pnf.profile_table`: what every profile runs, side by side, from the code.

Each task and study keeps its section of every profile beside its code; `SECTIONS` gathers
them (tasks from their registry, then the studies and the SLURM resources), and
`markdown()` prints one row per setting with a column per profile. The README's profile
table is this output (a test keeps the two equal).
"""

import dataclasses

from pnf.profiles import PROFILES
from pnf.runs.executors import SLURM
from pnf.studies import beyond_paper, curvature, esgd_failures, robustness
from pnf.tasks import TASKS

SECTIONS = {**{f"task {name}": task.settings for name, task in TASKS.items()},
            "study curvature": curvature.SETTINGS, "study esgd_failures": esgd_failures.SETTINGS,
            "study robustness": robustness.SETTINGS, "study beyond_paper": beyond_paper.SETTINGS,
            "slurm (a run's job)": SLURM}
ORDER = ("paper", "cpu", "quick", "tiny")  # largest first, as the README lists them


def flat(settings, prefix: str = "") -> dict:
    """A section's settings as {name: value}, nested dataclasses and dicts as `outer.inner`."""
    fields = dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else dict(settings)
    rows = {}
    for name, value in fields.items():
        if isinstance(value, dict) and value and all(isinstance(key, str) for key in value):
            rows.update(flat(value, f"{prefix}{name}."))
        else:
            rows[f"{prefix}{name}"] = value
    return rows


def shown(value) -> str:
    """A cell: numbers with thousands separators, sequences comma-separated, `|` escaped."""
    if isinstance(value, bool) or value is None:
        text = str(value)
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, (list, tuple)) and len(value) > 6:
        text = f"{shown(value[0])}, {shown(value[1])}, …, {shown(value[-1])} ({len(value)} in all)"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(shown(item) for item in value) or "–"
    else:
        text = str(value)
    return text.replace("|", "\\|")


def markdown() -> str:
    """The table: one row per section and setting, one column per profile."""
    assert set(ORDER) == set(PROFILES), "ORDER must list every profile"
    lines = ["| section | setting | " + " | ".join(f"`{name}`" for name in ORDER) + " |",
             "|---|---|" + "---|" * len(ORDER)]
    for section, by_profile in SECTIONS.items():
        values = {profile: flat(by_profile[profile]) for profile in ORDER}
        for name in dict.fromkeys(name for profile in ORDER for name in values[profile]):
            lines.append(f"| {section} | {name} | "
                         + " | ".join(shown(values[profile].get(name, "–")) for profile in ORDER) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
