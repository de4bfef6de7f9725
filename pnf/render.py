"""Execute report notebooks and write their HTML, a few kernels reused from report to report.

    python -m pnf.render --out REPORTS --profile quick [--jobs 2] [--index] [--depends-on FILE ... --] NOTEBOOK ...

Each of `--jobs` kernels takes the next notebook as it frees (the longest last time first,
those never rendered before them), with its namespace reset and its figures closed in
between, so a build pays for starting Python and importing torch and pnf once per kernel,
not once per report. The `profile` parameter is injected as Papermill injects it. A
report is rendered only when its HTML is missing or older than its notebook or any
`--depends-on` file. The executed notebook always lands beside the HTML (a failed one
shows its error there); a failing report leaves no HTML, the others still render, and the
command exits 1 after naming each failure with its traceback. `--index` then writes the
site's index (`pnf.report.index`) in a kernel that has pnf loaded already.
"""

import argparse
import asyncio
import json
import math
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from jupyter_client import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

TEMPLATE = Path(__file__).resolve().parent / "templates" / "offline.html.j2"
KERNEL = "python3"
INDEX = "from pathlib import Path\nfrom pnf.report.index import write_index\nwrite_index(Path({out!r}))"


def stale(notebook: Path, html: Path, depends_on: list[Path]) -> bool:
    """Whether `html` is missing or older than `notebook` or any file of `depends_on`."""
    return not html.exists() or html.stat().st_mtime < max(path.stat().st_mtime for path in [notebook, *depends_on])


def seconds_last_time(executed: Path) -> float:
    """Seconds the cells of `executed` (a notebook rendered before) took, from nbclient's
    timing metadata; infinity when unknown."""
    try:
        code = [cell["metadata"]["execution"] for cell in json.loads(executed.read_text(encoding="utf-8"))["cells"]
                if cell["cell_type"] == "code"]
        took = datetime.fromisoformat(code[-1]["shell.execute_reply"]) - datetime.fromisoformat(
            code[0]["iopub.execute_input"])
        return took.total_seconds()
    except (OSError, ValueError, KeyError, IndexError):
        return math.inf


def fresh_namespace(folder: Path) -> str:
    """Kernel code that forgets the previous report: no variables, no open figures, cwd `folder`."""
    return (f"%reset -f\nimport os as _os, matplotlib.pyplot as _plt\n_os.chdir({str(folder)!r})\n"
            "_plt.close('all')\ndel _os, _plt")


def write_html(executed: Path) -> Path:
    """`executed`.html beside it: code cells hidden, nothing loaded from CDNs (the offline
    template); written whole or not at all, as its time stamp says it is up to date."""
    exporter = HTMLExporter(template_file=str(TEMPLATE), exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_filename(str(executed))
    html, staging = executed.with_suffix(".html"), executed.with_suffix(".html.partial")
    staging.write_text(body, encoding="utf-8")
    staging.replace(html)
    return html


async def run_code(kernel: AsyncKernelManager, code: str) -> str | None:
    """Run `code` in `kernel`, output discarded; its traceback if it failed, else None."""
    client = kernel.client()
    client.start_channels()
    try:
        reply = await client.execute_interactive(code, store_history=False, output_hook=lambda message: None)
    finally:
        client.stop_channels()
    content = reply["content"]
    return None if content["status"] == "ok" else "\n".join(content.get("traceback", [content["status"]]))


async def execute(notebook: Path, out: Path, profile: str, kernel: AsyncKernelManager) -> str | None:
    """Run `notebook` at `profile` in `kernel` into `out`; the error text if the kernel could not
    be reset or a cell failed, else None."""
    (out / notebook.with_suffix(".html").name).unlink(missing_ok=True)
    parameterized = parameterize_notebook(load_notebook_node(str(notebook)), {"profile": profile},
                                          kernel_name=KERNEL, language="python")
    error = await run_code(kernel, fresh_namespace(notebook.parent))
    if error:  # never run a report in what the previous one left
        return f"resetting the kernel failed:\n{error}"
    client = NotebookClient(parameterized, km=kernel, kernel_name=KERNEL, timeout=None)
    try:
        await client.async_execute()
    except CellExecutionError as failure:
        error = str(failure)
    finally:
        nbformat.write(parameterized, out / notebook.name)
        if client.kc is not None:
            client.kc.stop_channels()
    if error is None:
        write_html(out / notebook.name)
    return error


async def render_all(notebooks: list[Path], out: Path, profile: str, jobs: int, index: bool) -> dict[str, str]:
    """Render `notebooks` with `jobs` kernels, then (`index`) write `out`/index.html in one
    of them; the error text of each failure by name."""
    kernels = [AsyncKernelManager(kernel_name=KERNEL) for _ in range(jobs)]
    queue, failures, done = list(notebooks), {}, 0

    async def work(kernel: AsyncKernelManager):
        nonlocal done
        while queue:
            notebook, started = queue.pop(0), time.perf_counter()
            error = await execute(notebook, out, profile, kernel)
            done += 1
            print(f"[{done}/{len(notebooks)}] {notebook.stem}: {'FAILED' if error else 'rendered'} in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            if error:
                failures[notebook.stem] = error

    try:
        await asyncio.gather(*(kernel.start_kernel(cwd=str(out)) for kernel in kernels))
        await asyncio.gather(*(work(kernel) for kernel in kernels))
        if index:
            error = await run_code(kernels[0], INDEX.format(out=str(out)))
            if error:
                failures["index"] = error
    finally:
        await asyncio.gather(*(kernel.shutdown_kernel(now=True) for kernel in kernels))
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder of the executed notebooks and HTML")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--jobs", type=int, default=1, help="kernels side by side (default 1)")
    parser.add_argument("--index", action="store_true", help="then write OUT/index.html (pnf.report.index)")
    parser.add_argument("--depends-on", nargs="*", type=Path, default=[], help="files every report depends on")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: use a positive number of kernels")
    missing = [str(path) for path in args.notebooks if not path.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    missing = [str(path) for path in args.depends_on if not path.exists()]
    if missing:
        parser.error(f"--depends-on: no such file: {', '.join(missing)}")
    notebooks = sorted((path.resolve() for path in args.notebooks
                        if stale(path, args.out / path.with_suffix(".html").name, args.depends_on)),
                       key=lambda path: -seconds_last_time(args.out / path.name))
    if not notebooks and not args.index:
        print(f"every report in {args.out} is up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    kernels = max(1, min(args.jobs, len(notebooks)))  # one for the index alone
    print(f"rendering {len(notebooks)} report(s) with {kernels} kernel(s)"
          + (" (the others are up to date)" if len(notebooks) < len(args.notebooks) else ""), flush=True)
    failures = asyncio.run(render_all(notebooks, args.out.resolve(), args.profile, kernels, args.index))
    for name, error in failures.items():
        print(f"\n{name} failed:\n{error}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
