"""`make bench`: every benchmark in one process; prints the tables and writes
`reports/bench.md` and `reports/bench.json`.

    python benchmarks/run.py [--size full|reduced|tiny] [--tiny] [--threads N] [--figures]

No timing is asserted anywhere: the report states what was measured, where.
"""

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks import activations, costs, exp_floor, figures, loops, r_operator, steps, throughput  # noqa: E402
from benchmarks.common import SIZES, device, load_average, machine  # noqa: E402

SECTIONS = {"steps": steps, "activations": activations, "r_operator": r_operator, "loops": loops,
            "throughput": throughput, "exp_floor": exp_floor, "costs": costs}


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="full", help="full: the paper's 256², batch 512")
    parser.add_argument("--tiny", action="store_true", help="same as --size tiny (seconds; for tests)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--figures", action="store_true", help="also time the figure notebooks (many minutes)")
    parser.add_argument("--figures-profile", default="quick")
    parser.add_argument("--figures-notebooks", nargs="+", default=None, help="default: the Makefile's NOTEBOOKS")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench.md")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = arguments(argv)
    size = SIZES["tiny" if args.tiny else args.size]
    torch.set_num_threads(args.threads)
    dev = device()
    described = machine(dev)
    described["size"] = size.name
    tables = []
    for name in args.only:
        for table in SECTIONS[name].run(size, dev):
            print(table.markdown(), flush=True)
            tables.append(table)
    if args.figures:
        for table in figures.run(args.figures_profile, args.figures_notebooks):
            print(table.markdown(), flush=True)
            tables.append(table)
    described["load average (1, 5, 15 min) at end"] = load_average()
    write(args.out, described, tables)


def write(path: Path, described: dict, tables: list) -> None:
    """The report as Markdown and the same numbers as JSON beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["# pnf benchmarks", "", "Ratios are of variants timed interleaved in one process (medians).", ""]
    header += [f"- {key}: {value}" for key, value in described.items()] + [""]
    path.write_text("\n".join(header) + "\n".join(table.markdown() for table in tables))
    path.with_suffix(".json").write_text(json.dumps({"machine": described, "tables": [asdict(t) for t in tables]},
                                                    indent=1))


if __name__ == "__main__":
    main()
