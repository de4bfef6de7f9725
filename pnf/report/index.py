"""Write `reports/index.html`: the reproduction scorecard and links to every report.

    python -m pnf.report.index REPORTS_DIR
"""

import html
import json
import sys
import time
from collections import Counter
from pathlib import Path

import pnf
from pnf import paper
from pnf.files import write_atomically
from pnf.report.scorecard import CLAIMS, VERDICTS, load_records, note, verdict
from pnf.report.text import literal

VERDICT_COLOR = {"reproduced": "#1a7f37", "ordering reproduced": "#9a6700", "undecided": "#8250df",
                 "not reproduced": "#cf222e", "diverged": "#a40e26", "not testable": "#0969da", "not run": "#6e7781"}
STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#1f2328}
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{border-bottom:1px solid #d0d7de;padding:.4rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}.verdict{font-weight:600;white-space:nowrap}.counts span{margin-right:1.2rem;font-weight:600}
.small{color:#57606a;font-size:.85rem}
"""


def title_of(notebook: Path) -> str:
    """The first Markdown heading of an executed notebook, else its file name."""
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith("#"):
            return source.splitlines()[0].lstrip("# ").strip()
    return notebook.stem


def _values(values: dict, keys: list[str]) -> str:
    """"esgd: 29.36 ± 0.1 (3 seeds)" per key of `values` (mean, half-range, seeds) in `keys`."""
    return "<br>".join(f"{key}: {values[key][0]:.4g}" + (
        f" ± {values[key][1]:.2g} ({values[key][2]} seeds)" if values[key][2] > 1 else "")
        for key in keys if key in values) or "—"


def scorecard_rows(reports: Path) -> tuple[list[str], Counter]:
    """One table row per claim and the count of each verdict."""
    records, rows, counts = load_records(reports), [], Counter()
    for claim in CLAIMS:
        entry = records.get(claim.id)
        outcome, keys, page = verdict(claim, entry), [claim.better, claim.worse], f"{claim.report}.html"
        link = f'<a href="{page}">{claim.report}</a>' if (reports / page).exists() else claim.report
        counts[outcome] += 1
        ours, where = "—", "—"
        if entry:
            ours = _values(entry["values"], keys) + ("<br>diverged: " + ", ".join(map(html.escape, entry["diverged"]))
                                                     if entry.get("diverged") else "")
            where = f"{html.escape(entry['profile'])} profile; {literal(entry['data'])}" + (
                f"; epoch {entry['reached']:,}" if entry.get("reached") is not None else "")
        rows.append(
            f"<tr><td>{html.escape(claim.figure)}</td><td>{html.escape(claim.statement)}"
            f"<div class=small>source: {claim.source}; unit: {html.escape(claim.unit)}</div></td>"
            f"<td>{_values({k: (v, 0, 1) for k, v in claim.paper.items()}, keys) if claim.paper else 'qualitative'}"
            f"</td><td>{ours}</td><td class=small>{where}</td>"
            f"<td class=small>{html.escape(claim.tolerance_text())}</td>"
            f'<td class=verdict style="color:{VERDICT_COLOR[outcome]}">{outcome}'
            f'<div class=small>{html.escape(note(claim, entry))}</div></td>'
            f"<td>{link}</td></tr>")
    return rows, counts


def write_index(reports: Path) -> Path:
    rows, counts = scorecard_rows(reports)
    executed = [page.with_suffix(".ipynb") for page in sorted(reports.glob("*.html")) if page.name != "index.html"]
    pages = [f'<li><a href="{notebook.stem}.html">{html.escape(title_of(notebook))}</a> '
             f'<span class=small>(<a href="{notebook.name}">executed notebook</a>)</span></li>'
             for notebook in executed if notebook.exists()]
    tally = "".join(f'<span style="color:{VERDICT_COLOR[v]}">{v}: {counts[v]}</span>' for v in VERDICTS)
    index = reports / "index.html"
    write_atomically(index, f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pnf — does the paper reproduce?</title>
<style>{STYLE}</style></head>
<body><h1>Does the paper reproduce?</h1>
<p>{paper.AUTHORS}, <em>{paper.TITLE}</em>, {paper.VENUE}. Built {time.strftime('%Y-%m-%d %H:%M')} by pnf {pnf.__version__}.</p>
<p class=counts>{tally}</p>
<p class=small>Reproduced: the ordering holds and, at the paper's scale and data, the values are within the stated
tolerance. Ordering reproduced: the ordering holds, values off or not comparable (reduced profile or other data).
An ordering counts only when its gap exceeds the spread across seeds (one seed: the claim's stated margin), else it is
undecided; a claim is not testable where the run stopped before the epoch the paper makes it at.
Sources: fig1 = the paper's Fig. 1; readme = the official README's plots (values read off log plots); secondary =
a summary of the paper, to be treated with care.</p>
<table id=scorecard><thead><tr><th>figure</th><th>claim</th><th>paper</th><th>ours (mean ± half-range)</th>
<th>profile, data</th><th>tolerance</th><th>verdict</th><th>report</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<h2>Reports</h2>
<ul>
{chr(10).join(pages)}
</ul>
<p class=small>Code cells are hidden in the HTML; the executed notebook beside each report has them.</p>
</body></html>
""")
    return index


if __name__ == "__main__":
    print(write_index(Path(sys.argv[1] if len(sys.argv) > 1 else "reports")))
