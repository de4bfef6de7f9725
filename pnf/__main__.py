"""Command line for batch users.

    python -m pnf run --task image --activation sine --optimizer esgd --seed 0 [--profile quick]
    python -m pnf sweep quick [--family image] [--executor pool|local|slurm] [--estimate]
    python -m pnf cache [--clear]
    python -m pnf fit photo.jpg [--task image|occupancy|nerf] [--optimizer esgd | --compare esgd,adam] [--out results]
"""

import argparse
import json
import os
import sys
import time
from dataclasses import replace

from pnf import estimate, fit
from pnf.fields import ACTIVATIONS
from pnf.optim import OPTIMIZERS
from pnf.profiles import PROFILES
from pnf.runs.cache import CorruptEntry, cache_dir, clear_cache, is_cached, read_record, run
from pnf.runs.executors import EXECUTORS, run_all
from pnf.tasks import TASKS, get_task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pnf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    one = commands.add_parser("run", help="train one config (or load it from the cache)")
    one.add_argument("--task", required=True, choices=sorted(TASKS))
    one.add_argument("--activation", required=True, choices=list(ACTIVATIONS))
    one.add_argument("--optimizer", required=True, choices=list(OPTIMIZERS))
    one.add_argument("--seed", type=integer(0), default=0)
    one.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    one.add_argument("--epochs", type=integer(1), help="override the profile's epochs")
    one.add_argument("--option", type=option, action="append", default=[], metavar="KEY=JSON",
                     help="change an optimizer hyperparameter, e.g. --option lr=0.05")

    sweep = commands.add_parser("sweep", help="compute the runs a profile's reports read into the cache")
    sweep.add_argument("profile", choices=sorted(PROFILES))
    sweep.add_argument("--family", action="append", choices=sorted(TASKS),
                       help="only this task's reports' runs (default: every task's; image includes the image-set study)")
    sweep.add_argument("--executor", choices=EXECUTORS,
                       help="default: PNF_EXECUTOR, else inline")
    sweep.add_argument("--estimate", action="store_true",
                       help="first say about how long training the missing runs will take (pnf.estimate)")

    listing = commands.add_parser("cache", help="list cached runs (size, config, age)")
    listing.add_argument("--clear", action="store_true",
                         help="delete the cached runs (refused if the folder holds files pnf did not write)")

    fit.add_arguments(commands.add_parser("fit", help=fit.HELP, description=fit.__doc__,
                                          formatter_class=argparse.RawDescriptionHelpFormatter))

    args = parser.parse_args(argv)
    try:
        return {"run": run_one, "sweep": run_sweep, "cache": show_cache, "fit": fit.main}[args.command](args)
    except ValueError as error:  # a setting out of its range or form; the message says which and why
        print(f"python -m pnf {args.command}: error: {error}", file=sys.stderr)
        return 2


def integer(minimum: int):
    """An argparse type: an integer ≥ `minimum`."""

    def parse(text: str) -> int:
        value = int(text) if text.strip().lstrip("+-").isdigit() else None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer ≥ {minimum}, not {text!r}")
        return value

    return parse


def option(text: str) -> tuple:
    """An argparse type: `KEY=JSON` as (key, value)."""
    key, equals, value = text.partition("=")
    if not key or not equals:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=JSON, e.g. lr=0.05")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f"{key}: {value!r} is not JSON (a number with a dot, e.g. lr=0.05; "
                                         "a quoted string, e.g. curvature='\"jacobi\"')") from None


def run_one(args) -> int:
    task = get_task(args.task)
    template = task.configs(task.settings_for(args.profile), task.default_source(), [args.activation],
                            [args.optimizer])[0]
    epochs = args.epochs or template.epochs
    config = replace(template, seed=args.seed, epochs=epochs, optimizer_options=dict(args.option),
                     snapshot_epochs=tuple(e for e in template.snapshot_epochs if e <= epochs))
    result = run(config)
    ok = result.status == "ok"
    summary = {name: result.final(name) for name in sorted(result.history["metrics"])} if ok else {}
    print(json.dumps({"config": config.label, "key": config.key(), "status": result.status,
                      "diverged_step": result.diverged_step, "final": summary,
                      "seconds": round(result.seconds, 2)}))
    return 0 if ok else 1


def run_sweep(args) -> int:
    if args.executor:
        os.environ["PNF_EXECUTOR"] = args.executor
    os.environ["PNF_PROFILE"] = args.profile
    if args.estimate:
        print(estimate.announce(args.profile, args.family), flush=True)
    configs = estimate.configs(args.profile, args.family)
    try:
        results = run_all(configs)
    except KeyboardInterrupt:
        finished = sum(is_cached(config) for config in configs)
        print(f"\ninterrupted: {finished} of {len(configs)} runs finished (cached in {cache_dir()}); the other "
              f"{len(configs) - finished} run on the next sweep, an interrupted one from its last checkpoint",
              file=sys.stderr)
        return 130
    diverged = [r.config.label for r in results if r.status != "ok"]
    print(f"{len(results)} runs in {cache_dir()}; diverged: {', '.join(diverged) or 'none'}")
    return 0


def show_cache(args) -> int:
    folder = cache_dir()
    if args.clear:
        print(f"cleared {clear_cache(folder)} item(s) from {folder}")
        return 0
    entries = sorted(folder.glob("*/result.json"), key=lambda path: path.stat().st_mtime)
    total = 0
    for path in entries:
        size = sum(f.stat().st_size for f in path.parent.iterdir())
        total += size
        age_h = (time.time() - path.stat().st_mtime) / 3600
        try:
            record = read_record(path.parent)
            label = "{task}/{activation}/{optimizer}/seed{seed} epochs={epochs}".format(**record["config"])
            what = f"{record['status']:8s} {label}"
        except CorruptEntry as corrupt:
            what = f"CORRUPT  {corrupt}"
        print(f"{path.parent.name}  {size / 1e6:7.2f} MB  {age_h:7.1f} h  {what}")
    print(f"{len(entries)} runs, {total / 1e6:.1f} MB in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
