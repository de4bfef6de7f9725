"""Write `reports/index.html`, linking every rendered report with its title.

    python -m pnf.index REPORTS_DIR
"""

import html
import sys
import time
from pathlib import Path

import nbformat

import pnf


def title_of(notebook: Path) -> str:
    """The first Markdown heading of an executed notebook, else its file name."""
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown" and cell.source.startswith("#"):
            return cell.source.splitlines()[0].lstrip("# ").strip()
    return notebook.stem


def write_index(reports: Path) -> Path:
    items = []
    for page in sorted(reports.glob("*.html")):
        executed = page.with_suffix(".ipynb")
        if page.name == "index.html" or not executed.exists():
            continue
        items.append(f'<li><a href="{page.name}">{html.escape(title_of(executed))}</a> '
                     f'(<a href="{executed.name}">executed notebook</a>)</li>')
    index = reports / "index.html"
    index.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pnf reports</title>
<style>body{{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;line-height:1.5}}</style></head>
<body><h1>pnf — reproduction reports</h1>
<p>Chng, Saratchandran, Lucey, <em>Preconditioners for the Stochastic Training of Neural Fields</em>,
CVPR 2025 (arXiv 2402.08784). Built {time.strftime('%Y-%m-%d %H:%M')} by pnf {pnf.__version__}.</p>
<ul>
{chr(10).join(items)}
</ul></body></html>
""")
    return index


if __name__ == "__main__":
    print(write_index(Path(sys.argv[1] if len(sys.argv) > 1 else "reports")))
