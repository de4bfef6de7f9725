"""Write `reports/index.html`: the reproduction scorecard and links to every report.

    python -m pnf.report.index REPORTS_DIR

The page is `pnf/templates/index.html.j2` rendered by Jinja2 with autoescaping, so every
name, value and note reaches the HTML as text.
"""

import json
import sys
import time
from collections import Counter
from pathlib import Path

import jinja2

import pnf
from pnf import paper
from pnf.files import write_atomically
from pnf.profiles import PROFILES
from pnf.report.scorecard import CLAIMS, VERDICTS, load_records, note, profiles_reaching, verdict

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
VERDICT_COLOR = {"reproduced": "#1a7f37", "ordering reproduced": "#9a6700", "undecided": "#8250df",
                 "not reproduced": "#cf222e", "diverged": "#a40e26", "not testable": "#0969da", "not run": "#6e7781"}
CHEAPEST_FIRST = ("tiny", "quick", "cpu", "paper")
FORMATS = {"dB": "{:.2f} dB", "MSE": "{:.2e}", "IoU": "{:.3f}", "s/epoch": "{:.3g} s"}  # else 3 significant digits


def title_of(notebook: Path) -> str:
    """The first Markdown heading of an executed notebook, else its file name."""
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith("#"):
            return source.splitlines()[0].lstrip("# ").strip()
    return notebook.stem


def formatted(value: float, unit: str) -> str:
    return FORMATS.get(unit, "{:.3g}").format(value)


def value_lines(values: dict, keys: list[str], unit: str) -> list[str]:
    """"esgd: 29.36 dB ± 0.10 (mean of 3 seeds)" per key of `values` (mean, half-range, seeds) in `keys`."""
    lines = []
    for key in (key for key in keys if key in values):
        mean, spread, seeds = values[key]
        lines.append(f"{key}: {formatted(mean, unit)}"
                     + (f" ± {formatted(spread, unit)} (mean of {seeds:.0f} seeds)" if seeds > 1 else ""))
    return lines


def claim_rows(reports: Path) -> list[dict]:
    """One row per claim: what the paper says, what we measured where, the verdict and its note."""
    records, rows = load_records(reports), []
    for claim in CLAIMS:
        entry, keys, page = records.get(claim.id), [claim.better, claim.worse], f"{claim.report}.html"
        ours = value_lines(entry["values"], keys, claim.unit) if entry else []
        if entry and entry.get("diverged"):
            ours.append("diverged: " + ", ".join(entry["diverged"]))
        rows.append(dict(
            id=claim.id, figure=claim.figure, statement=claim.statement, source=claim.source, unit=claim.unit,
            paper=value_lines({k: (v, 0, 1) for k, v in claim.paper.items()}, keys, claim.unit),
            ours=ours, profile=entry and entry["profile"], data=entry and entry["data"],
            reached=entry.get("reached") if entry else None, tolerance=claim.tolerance_text(),
            verdict=verdict(claim, entry), note=note(claim, entry), report=claim.report,
            page=page if (reports / page).exists() else None, claim=claim))
    return rows


def summary(rows: list[dict]) -> tuple[list, list, list[str]]:
    """(verdict counts, per task or study the count of each verdict, and for the claims not
    testable here the cheapest profile that tests them, with its claims)."""
    counts = Counter(row["verdict"] for row in rows)
    tasks = dict.fromkeys(row["report"].split("_")[0] for row in rows)
    by_task = [(task, [sum(row["verdict"] == v and row["report"].split("_")[0] == task for row in rows)
                       for v in VERDICTS]) for task in tasks]
    cheapest = {}
    for row in rows:
        if row["verdict"] == "not testable":
            reaching = [name.strip("`") for name in profiles_reaching(row["claim"])]
            name = next((name for name in CHEAPEST_FIRST if name in reaching), "none")
            cheapest.setdefault(name, []).append(row["id"])
    untestable = [f"{len(ids)} at make figures PROFILE={name} ({PROFILES.get(name, 'no profile reaches it')}): "
                  f"{', '.join(ids)}" for name, ids in cheapest.items()]
    return [(v, counts[v]) for v in VERDICTS], by_task, untestable


def write_index(reports: Path) -> Path:
    rows = claim_rows(reports)
    counts, by_task, untestable = summary(rows)
    executed = [page.with_suffix(".ipynb") for page in sorted(reports.glob("*.html")) if page.name != "index.html"]
    pages = [dict(html=f"{notebook.stem}.html", notebook=notebook.name, title=title_of(notebook))
             for notebook in executed if notebook.exists()]
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    page = environment.get_template("index.html.j2").render(
        authors=paper.AUTHORS, title=paper.TITLE, venue=paper.VENUE, built=time.strftime("%Y-%m-%d %H:%M"),
        version=pnf.__version__, counts=counts, verdicts=VERDICTS, by_task=by_task, untestable=untestable,
        colors=VERDICT_COLOR, rows=rows, pages=pages)
    index = reports / "index.html"
    write_atomically(index, page)
    return index


if __name__ == "__main__":
    print(write_index(Path(sys.argv[1] if len(sys.argv) > 1 else "reports")))
