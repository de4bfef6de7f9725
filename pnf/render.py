"""Execute report notebooks and write their HTML, each in a fresh kernel.

    python -m pnf.render --out REPORTS --profile quick [--jobs 2] [--index] [--depends-on FILE ... --] NOTEBOOK ...

Every report runs in a kernel of its own, started in the notebook's folder, as JupyterLab
would run it: nothing a report changes in its process (the default dtype, the environment,
rcParams, random states, registries) reaches another. `--jobs` kernels run reports side by
side (the longest last time first, those never rendered before them) while one more starts
and imports torch, matplotlib and pnf (modules only: no name is bound, nothing is run), so
the next report does not wait for Python to start. The `profile` parameter is injected as
Papermill injects it. A report is rendered only when its HTML is missing or older than its
notebook or any `--depends-on` file. The executed notebook always lands beside the HTML (a
failed one shows its error there); a failing report, or one whose kernel dies, leaves no
HTML, the others still render, and the command exits 1 after naming each failure with its
traceback or the kernel's exit status. `--index` then writes the site's index
(`pnf.report.index`) in a fresh kernel too.
"""

import argparse
import asyncio
import json
import math
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from jupyter_client import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from nbconvert import HTMLExporter
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from pnf.files import write_atomically

TEMPLATE = Path(__file__).resolve().parent / "templates" / "offline.html.j2"
KERNEL = "python3"
# what a report's first cell would import anyway, imported while the kernel waits for its report
PRELOAD = "__import__('torch'); __import__('matplotlib.pyplot'); __import__('pnf')"
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


def write_html(executed: Path) -> Path:
    """`executed`.html beside it: code cells hidden, nothing loaded from CDNs (the offline
    template); written whole or not at all, as its time stamp says it is up to date."""
    exporter = HTMLExporter(template_file=str(TEMPLATE), exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_filename(str(executed))
    html = executed.with_suffix(".html")
    write_atomically(html, body)
    return html


async def run_code(kernel: AsyncKernelManager, code: str) -> str | None:
    """Run `code` in `kernel` silently (no output, no history, no `_`); its traceback if it
    failed, else None."""
    client = kernel.client()
    client.start_channels()
    try:
        reply = await client.execute_interactive(code, silent=True, store_history=False,
                                                 output_hook=lambda message: None)
    finally:
        client.stop_channels()
    content = reply["content"]
    return None if content["status"] == "ok" else "\n".join(content.get("traceback", [content["status"]]))


async def start_kernel(folder: Path, sockets: Path) -> AsyncKernelManager:
    """A new kernel in `folder`, torch, matplotlib and pnf imported (`PRELOAD`), reached through
    Unix sockets named `sockets`-N (only this user can open them; no TCP port)."""
    kernel = AsyncKernelManager(kernel_name=KERNEL, transport="ipc", ip=str(sockets))
    await kernel.start_kernel(cwd=str(folder))
    error = await run_code(kernel, PRELOAD)
    if error:
        await kernel.shutdown_kernel(now=True)
        raise RuntimeError(f"importing torch, matplotlib and pnf in a new kernel failed:\n{error}")
    return kernel


async def death(kernel: AsyncKernelManager) -> str:
    """Why `kernel`'s process ended: its exit code or the signal that killed it."""
    code = await kernel.provisioner.poll() if kernel.provisioner else None
    if code is None:
        return "kernel died (stopped answering)"
    if code >= 0:
        return f"kernel died (exit code {code})"
    name = signal.Signals(-code).name
    hint = " (killed: out of memory?)" if -code == signal.SIGKILL else ""
    return f"kernel died (signal {-code}, {name}){hint}"


async def execute(notebook: Path, out: Path, profile: str, kernel: AsyncKernelManager) -> str | None:
    """Run `notebook` at `profile` in `kernel` into `out`; the error text if a cell failed or
    the kernel died, else None."""
    (out / notebook.with_suffix(".html").name).unlink(missing_ok=True)
    parameterized = parameterize_notebook(load_notebook_node(str(notebook)), {"profile": profile},
                                          kernel_name=KERNEL, language="python")
    client, error = NotebookClient(parameterized, km=kernel, kernel_name=KERNEL, timeout=None), None
    try:
        await client.async_execute()
    except CellExecutionError as failure:
        error = str(failure)
    except DeadKernelError:
        error = await death(kernel)
    finally:
        nbformat.write(parameterized, out / notebook.name)
        if client.kc is not None:
            client.kc.stop_channels()
    if error is None:
        write_html(out / notebook.name)
    return error


async def render_all(notebooks: list[Path], out: Path, profile: str, jobs: int, index: bool) -> dict[str, str]:
    """Render `notebooks`, `jobs` at a time, each in a fresh kernel (the next one started
    ahead), then (`index`) write `out`/index.html in one more; the error text of each
    failure by name."""
    folders = [notebook.parent for notebook in notebooks] + [out] * index  # kernel i's; the last the index's
    kernels: list[asyncio.Task] = []  # kernel i, started or starting
    queue, failures, done = list(notebooks), {}, 0
    sockets = Path(tempfile.mkdtemp(prefix="pnf-render-"))

    def start_up_to(last: int) -> None:
        while len(kernels) <= min(last, len(folders) - 1):
            i = len(kernels)
            kernels.append(asyncio.create_task(start_kernel(folders[i], sockets / f"kernel{i}")))

    async def in_fresh_kernel(i: int, job) -> str | None:
        """`job(kernel)` in kernel i, then shut it down, with kernel i + 1 starting; its error text or None."""
        start_up_to(i + 1)
        try:
            kernel = await kernels[i]
        except Exception as failure:
            return f"its kernel did not start: {failure}"
        try:
            return await job(kernel)
        finally:
            await kernel.shutdown_kernel(now=True)

    async def work():
        nonlocal done
        while queue:
            i, notebook, started = len(notebooks) - len(queue), queue.pop(0), time.perf_counter()
            error = await in_fresh_kernel(i, lambda kernel: execute(notebook, out, profile, kernel))
            done += 1
            print(f"[{done}/{len(notebooks)}] {notebook.stem}: {'FAILED' if error else 'rendered'} in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            if error:
                failures[notebook.stem] = error

    start_up_to(jobs)
    try:
        await asyncio.gather(*(work() for _ in range(jobs)))
        if index:
            error = await in_fresh_kernel(len(notebooks), lambda kernel: run_code(kernel, INDEX.format(out=str(out))))
            if error:
                failures["index"] = error
    finally:  # after an interrupt too, no kernel outlives the command
        for kernel in await asyncio.gather(*kernels, return_exceptions=True):
            if isinstance(kernel, AsyncKernelManager) and kernel.has_kernel:
                await kernel.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder of the executed notebooks and HTML")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--jobs", type=int, default=1, help="reports side by side, each in its kernel (default 1)")
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
    jobs = max(1, min(args.jobs, len(notebooks)))
    print(f"rendering {len(notebooks)} report(s), {jobs} at a time, each in a fresh kernel"
          + (" (the others are up to date)" if len(notebooks) < len(args.notebooks) else ""), flush=True)
    failures = asyncio.run(render_all(notebooks, args.out.resolve(), args.profile, jobs, args.index))
    for name, error in failures.items():
        print(f"\n{name} failed:\n{error}", file=sys.stderr)
    if failures:
        print(f"\n{len(failures)} failed: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
